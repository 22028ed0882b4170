//! A Rust guest for tests/test_raw_imports.py: each export hands its argument to a host
//! function. Built with a plain rustc, no crates (see tests/guests/rust/lib.rs for the
//! steps); the first half is the glue wit-bindgen would generate from `wit/guest.wit`,
//! written by hand in its shape (`#[link(wasm_import_module = ...)]` imports taking a
//! pointer and a length, exports lifting theirs into a `Vec`/`String`).

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
    //! `import test:rawimports/host@1.0.0`
    #[link(wasm_import_module = "test:rawimports/host@1.0.0")]
    extern "C" {
        #[link_name = "take"]
        fn wit_import_take(ptr: *const u8, len: usize) -> i32;
        #[link_name = "take-text"]
        fn wit_import_take_text(ptr: *const u8, len: usize) -> i32;
        #[link_name = "give"]
        fn wit_import_give(n: i32, ret: *mut usize);
        #[link_name = "give-blob"]
        fn wit_import_give_blob(n: i32, ret: *mut usize);
    }

    pub struct Blob {
        pub name: String,
        pub data: Vec<u8>,
    }

    pub fn take(data: &[u8]) -> u32 {
        unsafe { wit_import_take(data.as_ptr(), data.len()) as u32 }
    }

    pub fn take_text(text: &str) -> u32 {
        unsafe { wit_import_take_text(text.as_ptr(), text.len()) as u32 }
    }

    pub fn give(n: u32) -> Vec<u8> {
        let mut ret = [0usize; 2];
        unsafe {
            wit_import_give(n as i32, ret.as_mut_ptr());
            Vec::from_raw_parts(ret[0] as *mut u8, ret[1], ret[1])
        }
    }

    pub fn give_blob(n: u32) -> Blob {
        let mut ret = [0usize; 4];
        unsafe {
            wit_import_give_blob(n as i32, ret.as_mut_ptr());
            let name = Vec::from_raw_parts(ret[0] as *mut u8, ret[1], ret[1]);
            Blob {
                name: String::from_utf8_unchecked(name),
                data: Vec::from_raw_parts(ret[2] as *mut u8, ret[3], ret[3]),
            }
        }
    }
}

pub mod exports {
    //! `export test:rawimports/relay@1.0.0`
    pub trait Guest {
        fn send(data: Vec<u8>) -> u32;
        fn send_text(text: String) -> u32;
        fn give_back(n: u32) -> u32;
        fn give_blob_back(n: u32) -> u32;
    }

    #[export_name = "test:rawimports/relay@1.0.0#give-back"]
    unsafe extern "C" fn export_give_back(n: i32) -> i32 {
        <super::Plugin as Guest>::give_back(n as u32) as i32
    }

    #[export_name = "test:rawimports/relay@1.0.0#give-blob-back"]
    unsafe extern "C" fn export_give_blob_back(n: i32) -> i32 {
        <super::Plugin as Guest>::give_blob_back(n as u32) as i32
    }

    #[export_name = "test:rawimports/relay@1.0.0#send"]
    unsafe extern "C" fn export_send(arg0: *mut u8, arg1: usize) -> i32 {
        <super::Plugin as Guest>::send(Vec::from_raw_parts(arg0, arg1, arg1)) as i32
    }

    #[export_name = "test:rawimports/relay@1.0.0#send-text"]
    unsafe extern "C" fn export_send_text(arg0: *mut u8, arg1: usize) -> i32 {
        let bytes = Vec::from_raw_parts(arg0, arg1, arg1);
        <super::Plugin as Guest>::send_text(String::from_utf8_unchecked(bytes)) as i32
    }
}

// ----------------------------------------------------------------------------- the plugin

struct Plugin;

impl exports::Guest for Plugin {
    fn send(data: Vec<u8>) -> u32 {
        host::take(&data)
    }

    fn send_text(text: String) -> u32 {
        host::take_text(&text)
    }

    fn give_back(n: u32) -> u32 {
        host::take(&host::give(n))
    }

    fn give_blob_back(n: u32) -> u32 {
        let blob = host::give_blob(n);
        host::take_text(&blob.name).wrapping_add(host::take(&blob.data))
    }
}
