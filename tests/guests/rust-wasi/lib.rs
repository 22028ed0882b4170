//! A Rust guest using the standard library's files and environment through WASI: four
//! hooks of the probe contract (`hostile:probe@1.0.0`, tests/probe_hooks.py).
//!
//! Built for wasm32-wasi as a reactor (rustc 1.63 links cdylibs as commands, which run
//! the C constructors around every export, cabi_realloc included, and those call WASI
//! where the canonical ABI forbids it), then adapted to WASI 0.2:
//!
//!     rustc --edition 2021 --target wasm32-wasi --crate-type cdylib -C opt-level=2 \
//!         -C strip=debuginfo -C link-self-contained=no -L native=$SC \
//!         -C link-arg=$SC/crt1-reactor.o -o core.wasm lib.rs
//!     wasm-tools component embed <contract WIT> core.wasm --world guest -o embedded.wasm
//!     wasm-tools component new embedded.wasm \
//!         --adapt wasi_snapshot_preview1=wasi_snapshot_preview1.reactor.wasm -o component.wasm
//!
//! where $SC is `$(rustc --print target-libdir --target wasm32-wasi)/self-contained`.
//! The reactor's `_initialize` becomes the component's start function. The canonical-ABI
//! glue is written by hand in the shape wit-bindgen generates (see tests/guests/rust).

// ----------------------------------------------------------------------------- bindings

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

    pub unsafe fn cabi_dealloc(ptr: *mut u8, size: usize, align: usize) {
        if size == 0 {
            return;
        }
        alloc::dealloc(ptr, alloc::Layout::from_size_align_unchecked(size, align));
    }

    pub unsafe fn string_lift(ptr: *mut u8, len: usize) -> String {
        String::from_utf8_unchecked(Vec::from_raw_parts(ptr, len, len))
    }

    pub fn string_lower(s: String) -> (*mut u8, usize) {
        let boxed = s.into_bytes().into_boxed_slice();
        let len = boxed.len();
        (Box::into_raw(boxed) as *mut u8, len)
    }

    /// Store a string's (pointer, length) at `at` and `at + 4`.
    pub unsafe fn store_string(at: *mut u8, s: String) {
        let (ptr, len) = string_lower(s);
        *at.add(4).cast::<usize>() = len;
        *at.cast::<*mut u8>() = ptr;
    }

    pub unsafe fn free_string(at: *mut u8) {
        cabi_dealloc(*at.cast::<*mut u8>(), *at.add(4).cast::<usize>(), 1);
    }

    /// One return area for every export: 12 bytes, align 4, enough for each result here
    /// (result/option of a string: discriminant at 0, string at 4; a list at 0).
    #[repr(align(4))]
    pub struct RetArea(pub [core::mem::MaybeUninit<u8>; 12]);
    pub static mut RET_AREA: RetArea = RetArea([core::mem::MaybeUninit::uninit(); 12]);
}

pub mod exports {
    use super::_rt;

    pub trait Guest {
        fn read_file(path: String) -> Result<String, String>;
        fn write_file(path: String, data: String) -> Result<(), String>;
        fn get_env(name: String) -> Option<String>;
        fn all_env() -> Vec<String>;
    }

    /// `read-file: func(path: string) -> result<string, string>`
    pub unsafe fn _export_read_file_cabi<T: Guest>(arg0: *mut u8, arg1: usize) -> *mut u8 {
        let result = T::read_file(_rt::string_lift(arg0, arg1));
        let ret = _rt::RET_AREA.0.as_mut_ptr().cast::<u8>();
        let (disc, s) = match result {
            Ok(s) => (0u8, s),
            Err(s) => (1u8, s),
        };
        *ret = disc;
        _rt::store_string(ret.add(4), s);
        ret
    }

    pub unsafe fn __post_return_read_file<T: Guest>(arg0: *mut u8) {
        _rt::free_string(arg0.add(4)); // both cases hold a string
    }

    /// `write-file: func(path: string, data: string) -> result<_, string>`
    pub unsafe fn _export_write_file_cabi<T: Guest>(
        arg0: *mut u8,
        arg1: usize,
        arg2: *mut u8,
        arg3: usize,
    ) -> *mut u8 {
        let result = T::write_file(_rt::string_lift(arg0, arg1), _rt::string_lift(arg2, arg3));
        let ret = _rt::RET_AREA.0.as_mut_ptr().cast::<u8>();
        match result {
            Ok(()) => *ret = 0,
            Err(e) => {
                *ret = 1;
                _rt::store_string(ret.add(4), e);
            }
        }
        ret
    }

    pub unsafe fn __post_return_write_file<T: Guest>(arg0: *mut u8) {
        if *arg0 != 0 {
            _rt::free_string(arg0.add(4));
        }
    }

    /// `get-env: func(name: string) -> option<string>`
    pub unsafe fn _export_get_env_cabi<T: Guest>(arg0: *mut u8, arg1: usize) -> *mut u8 {
        let result = T::get_env(_rt::string_lift(arg0, arg1));
        let ret = _rt::RET_AREA.0.as_mut_ptr().cast::<u8>();
        match result {
            Some(s) => {
                *ret = 1;
                _rt::store_string(ret.add(4), s);
            }
            None => *ret = 0,
        }
        ret
    }

    pub unsafe fn __post_return_get_env<T: Guest>(arg0: *mut u8) {
        if *arg0 != 0 {
            _rt::free_string(arg0.add(4));
        }
    }

    /// `all-env: func() -> list<string>`
    pub unsafe fn _export_all_env_cabi<T: Guest>() -> *mut u8 {
        let result = T::all_env();
        let ret = _rt::RET_AREA.0.as_mut_ptr().cast::<u8>();
        let len = result.len();
        let layout = _rt::alloc::Layout::from_size_align_unchecked(len * 8, 4);
        let array = if len == 0 {
            core::ptr::null_mut()
        } else {
            _rt::alloc::alloc(layout)
        };
        if len != 0 && array.is_null() {
            _rt::alloc::handle_alloc_error(layout);
        }
        for (i, s) in result.into_iter().enumerate() {
            _rt::store_string(array.add(i * 8), s);
        }
        *ret.add(4).cast::<usize>() = len;
        *ret.cast::<*mut u8>() = array;
        ret
    }

    pub unsafe fn __post_return_all_env<T: Guest>(arg0: *mut u8) {
        let array = *arg0.cast::<*mut u8>();
        let len = *arg0.add(4).cast::<usize>();
        for i in 0..len {
            _rt::free_string(array.add(i * 8));
        }
        _rt::cabi_dealloc(array, len * 8, 4);
    }
}

macro_rules! export {
    ($ty:ident) => {
        #[export_name = "hostile:probe/read-file@1.0.0#read-file"]
        unsafe extern "C" fn export_read_file(arg0: *mut u8, arg1: usize) -> *mut u8 {
            exports::_export_read_file_cabi::<$ty>(arg0, arg1)
        }
        #[export_name = "cabi_post_hostile:probe/read-file@1.0.0#read-file"]
        unsafe extern "C" fn post_return_read_file(arg0: *mut u8) {
            exports::__post_return_read_file::<$ty>(arg0)
        }

        #[export_name = "hostile:probe/write-file@1.0.0#write-file"]
        unsafe extern "C" fn export_write_file(
            arg0: *mut u8,
            arg1: usize,
            arg2: *mut u8,
            arg3: usize,
        ) -> *mut u8 {
            exports::_export_write_file_cabi::<$ty>(arg0, arg1, arg2, arg3)
        }
        #[export_name = "cabi_post_hostile:probe/write-file@1.0.0#write-file"]
        unsafe extern "C" fn post_return_write_file(arg0: *mut u8) {
            exports::__post_return_write_file::<$ty>(arg0)
        }

        #[export_name = "hostile:probe/get-env@1.0.0#get-env"]
        unsafe extern "C" fn export_get_env(arg0: *mut u8, arg1: usize) -> *mut u8 {
            exports::_export_get_env_cabi::<$ty>(arg0, arg1)
        }
        #[export_name = "cabi_post_hostile:probe/get-env@1.0.0#get-env"]
        unsafe extern "C" fn post_return_get_env(arg0: *mut u8) {
            exports::__post_return_get_env::<$ty>(arg0)
        }

        #[export_name = "hostile:probe/all-env@1.0.0#all-env"]
        unsafe extern "C" fn export_all_env() -> *mut u8 {
            exports::_export_all_env_cabi::<$ty>()
        }
        #[export_name = "cabi_post_hostile:probe/all-env@1.0.0#all-env"]
        unsafe extern "C" fn post_return_all_env(arg0: *mut u8) {
            exports::__post_return_all_env::<$ty>(arg0)
        }
    };
}

// ----------------------------------------------------------------------------- the plugin

struct Plugin;

impl exports::Guest for Plugin {
    fn read_file(path: String) -> Result<String, String> {
        if path == "/panic" {
            // a Rust panic: its message goes to stderr, then the guest aborts (a trap)
            panic!("asked to panic while reading {path}");
        }
        std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))
    }

    fn write_file(path: String, data: String) -> Result<(), String> {
        std::fs::write(&path, data).map_err(|e| format!("{path}: {e}"))
    }

    fn get_env(name: String) -> Option<String> {
        std::env::var(name).ok()
    }

    fn all_env() -> Vec<String> {
        std::env::vars().map(|(k, v)| format!("{k}={v}")).collect()
    }
}

export!(Plugin);
