//! A Rust guest for tests/test_raw_params.py, glue written by hand in wit-bindgen's shape
//! (as tests/guests/raw-imports-rust): `relay` hands its request's core values (a
//! record: eight i32) to host.fetch, whose return area is its own; `tags-back` passes
//! the host a list<string> of the guest's own `&str`s, at odd addresses.

#[allow(dead_code)]
mod _rt {
    pub use std::alloc;

    #[no_mangle]
    pub unsafe extern "C" fn cabi_realloc(
        old_ptr: *mut u8,
        old_len: usize,
        align: usize,
        new_len: usize,
    ) -> *mut u8 {
        let layout;
        let ptr = if old_len == 0 {
            if new_len == 0 {
                return align as *mut u8;
            }
            layout = alloc::Layout::from_size_align_unchecked(new_len, align);
            alloc::alloc(layout)
        } else {
            layout = alloc::Layout::from_size_align_unchecked(old_len, align);
            alloc::realloc(old_ptr, layout, new_len)
        };
        if ptr.is_null() {
            core::arch::wasm32::unreachable();
        }
        ptr
    }
}

pub mod host {
    //! `import test:rawrecords/host@1.0.0`
    #[link(wasm_import_module = "test:rawrecords/host@1.0.0")]
    extern "C" {
        #[link_name = "fetch"]
        pub fn wit_import_fetch(
            method: usize, method_len: usize, url: usize, url_len: usize, headers: usize,
            headers_len: usize, body: usize, body_len: usize, ret: *mut u32,
        );
        #[link_name = "tags"]
        fn wit_import_tags(tags: *const usize, len: usize) -> i32;
    }

    pub fn tags(tags: &[&str]) -> u32 {
        // a list<string>: (ptr, len) per string, as wit-bindgen lays it out
        let flat: Vec<usize> = tags.iter().flat_map(|t| [t.as_ptr() as usize, t.len()]).collect();
        unsafe { wit_import_tags(flat.as_ptr(), tags.len()) as u32 }
    }
}

pub mod exports {
    //! `export test:rawrecords/relay@1.0.0`
    static mut RET: [u32; 6] = [0; 6];

    #[export_name = "test:rawrecords/relay@1.0.0#relay"]
    unsafe extern "C" fn export_relay(
        a: usize, b: usize, c: usize, d: usize, e: usize, f: usize, g: usize, h: usize,
    ) -> *const u32 {
        let ret = core::ptr::addr_of_mut!(RET) as *mut u32;
        super::host::wit_import_fetch(a, b, c, d, e, f, g, h, ret);
        ret
    }

    #[export_name = "test:rawrecords/relay@1.0.0#tags-back"]
    unsafe extern "C" fn export_tags_back() -> i32 {
        <super::Plugin as Guest>::tags_back() as i32
    }

    pub trait Guest {
        fn tags_back() -> u32;
    }
}

// ----------------------------------------------------------------------------- the plugin

struct Plugin;

/// "xnaïve ✓": the tags start at byte offsets 1, 3 and 8
static TEXT: &str = "xnaïve ✓";

impl exports::Guest for Plugin {
    fn tags_back() -> u32 {
        host::tags(&[&TEXT[1..7], &TEXT[3..7], &TEXT[8..11]])
    }
}
