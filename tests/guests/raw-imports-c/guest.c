// C guest for tests/test_raw_imports.py, written against the canonical ABI by hand (no
// wit-bindgen here): each export hands its argument buffer to the host (give-back and
// give-blob-back: what a host function returned); post-returns reset the bump allocator.
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

__attribute__((import_module("test:rawimports/host@1.0.0"), import_name("take")))
extern u32 host_take(u8 *data, u32 len);
__attribute__((import_module("test:rawimports/host@1.0.0"), import_name("take-text")))
extern u32 host_take_text(u8 *text, u32 len);

__attribute__((export_name("test:rawimports/relay@1.0.0#send")))
u32 send(u8 *data, u32 len) { return host_take(data, len); }

__attribute__((export_name("cabi_post_test:rawimports/relay@1.0.0#send")))
void send_post(u32 r) { (void)r; heap = 0; }

__attribute__((export_name("test:rawimports/relay@1.0.0#send-text")))
u32 send_text(u8 *text, u32 len) { return host_take_text(text, len); }

__attribute__((export_name("cabi_post_test:rawimports/relay@1.0.0#send-text")))
void send_text_post(u32 r) { (void)r; heap = 0; }

// results are written at a return pointer: (ptr, len); a blob is name (ptr, len), data (ptr, len)
__attribute__((import_module("test:rawimports/host@1.0.0"), import_name("give")))
extern void host_give(u32 n, u32 *ret);
__attribute__((import_module("test:rawimports/host@1.0.0"), import_name("give-blob")))
extern void host_give_blob(u32 n, u32 *ret);

__attribute__((export_name("test:rawimports/relay@1.0.0#give-back")))
u32 give_back(u32 n) {
    u32 ret[2];
    host_give(n, ret);
    return host_take((u8 *)ret[0], ret[1]);
}

__attribute__((export_name("cabi_post_test:rawimports/relay@1.0.0#give-back")))
void give_back_post(u32 r) { (void)r; heap = 0; }

__attribute__((export_name("test:rawimports/relay@1.0.0#give-blob-back")))
u32 give_blob_back(u32 n) {
    u32 ret[4];
    host_give_blob(n, ret);
    return host_take_text((u8 *)ret[0], ret[1]) + host_take((u8 *)ret[2], ret[3]);
}

__attribute__((export_name("cabi_post_test:rawimports/relay@1.0.0#give-blob-back")))
void give_blob_back_post(u32 r) { (void)r; heap = 0; }
