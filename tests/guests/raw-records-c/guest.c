// C guest for tests/test_raw_params.py, written against the canonical ABI by hand (as
// tests/guests/raw-imports-c): relay hands its request's core values (a record: eight
// i32) straight to host.fetch, whose return area is its own; tags-back passes the host a
// list<string> of the guest's own strings, at odd addresses.
typedef unsigned int u32;
typedef unsigned char u8;
extern u8 __heap_base;
static u32 heap = 0;

static u32 top(void) { return heap ? heap : (u32)&__heap_base; }

__attribute__((export_name("cabi_realloc")))
void *cabi_realloc(void *old, u32 old_size, u32 align, u32 new_size) {
    if (old && new_size <= old_size) return old;
    u32 p = (top() + align - 1) & ~(align - 1);
    u32 end = p + new_size;
    u32 have = __builtin_wasm_memory_size(0) << 16;
    if (end > have) {
        if (__builtin_wasm_memory_grow(0, ((end - have) >> 16) + 1) == (u32)-1)
            __builtin_trap();
    }
    if (old) __builtin_memcpy((void *)p, old, old_size);
    heap = end;
    return (void *)p;
}

__attribute__((import_module("test:rawrecords/host@1.0.0"), import_name("fetch")))
extern void host_fetch(u32 method, u32 method_len, u32 url, u32 url_len, u32 headers,
                       u32 headers_len, u32 body, u32 body_len, u32 *ret);
__attribute__((import_module("test:rawrecords/host@1.0.0"), import_name("tags")))
extern u32 host_tags(u32 *tags, u32 len);

// result<response, string>: discriminant at 0; response at 4 (status, headers, body)
static u32 ret_area[6];

__attribute__((export_name("test:rawrecords/relay@1.0.0#relay")))
u32 *relay(u32 a, u32 b, u32 c, u32 d, u32 e, u32 f, u32 g, u32 h) {
    host_fetch(a, b, c, d, e, f, g, h, ret_area);
    return ret_area;
}

__attribute__((export_name("cabi_post_test:rawrecords/relay@1.0.0#relay")))
void relay_post(u32 *r) { (void)r; heap = 0; }

// "xnaïve ✓" in UTF-8; the tags start at offsets 1, 3 and 8
static const u8 text[] = "xna\xc3\xafve \xe2\x9c\x93";

__attribute__((export_name("test:rawrecords/relay@1.0.0#tags-back")))
u32 tags_back(void) {
    u32 tags[6] = {(u32)text + 1, 6, (u32)text + 3, 4, (u32)text + 8, 3};
    return host_tags(tags, 3);
}
