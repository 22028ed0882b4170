// C guest written against the canonical ABI by hand (no wit-bindgen here): a bump
// allocator, `echo` returns its argument buffer, `invert` a new one; post-returns reset.
typedef unsigned int u32;
typedef unsigned char u8;
extern u8 __heap_base;
static u32 heap = 0;
static u32 ret_area[2];

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

__attribute__((export_name("test:raw/ops@1.0.0#echo")))
u32 *echo(u8 *data, u32 len) {
    ret_area[0] = (u32)data;
    ret_area[1] = len;
    return ret_area;
}

__attribute__((export_name("cabi_post_test:raw/ops@1.0.0#echo")))
void echo_post(u32 *r) { (void)r; heap = 0; }

__attribute__((export_name("test:raw/ops@1.0.0#invert")))
u32 *invert(u8 *data, u32 len) {
    u8 *out = cabi_realloc(0, 0, 1, len);
    for (u32 i = 0; i < len; i++) out[i] = (u8)~data[i];
    ret_area[0] = (u32)out;
    ret_area[1] = len;
    return ret_area;
}

__attribute__((export_name("cabi_post_test:raw/ops@1.0.0#invert")))
void invert_post(u32 *r) { (void)r; heap = 0; }
