//! A Rust guest for the `test:rust@1.0.0` contract (tests/rust_hooks.py).
//!
//! Built with a plain rustc, no crates:
//!
//!     rustc --edition 2021 --target wasm32-unknown-unknown --crate-type cdylib \
//!         -C opt-level=2 -C strip=debuginfo -o core.wasm lib.rs
//!     wasm-tools component embed <contract WIT> core.wasm --world guest -o embedded.wasm
//!     wasm-tools component new embedded.wasm -o component.wasm
//!
//! (`airssys_plugins._build.build_guest` runs exactly these steps.) wit-bindgen is not
//! reachable offline, so the first half of this file is the glue it would generate from
//! the contract's WIT, written by hand in the same shape: one module per exported
//! interface with a `Guest` trait, `_export_*_cabi` functions that lift the flat
//! arguments and lower the result into a static return area, `__post_return_*` functions
//! that free what the result points to, and `cabi_realloc`. The second half is what a
//! plugin author writes: `impl Guest for Plugin`.

// ----------------------------------------------------------------------------- bindings

#[allow(dead_code)]
mod _rt {
    pub use std::alloc;

    /// The canonical ABI allocator the host calls to pass strings and lists in.
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
            debug_assert_ne!(new_len, 0, "non-zero old_len requires non-zero new_len!");
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

    pub unsafe fn string_lift(bytes: Vec<u8>) -> String {
        if cfg!(debug_assertions) {
            String::from_utf8(bytes).unwrap()
        } else {
            String::from_utf8_unchecked(bytes)
        }
    }

    /// A string's bytes, owned by the caller from now on (freed by a post-return).
    pub fn string_lower(s: String) -> (*mut u8, usize) {
        bytes_lower(s.into_bytes())
    }

    pub fn bytes_lower(v: Vec<u8>) -> (*mut u8, usize) {
        let boxed = v.into_boxed_slice();
        let len = boxed.len();
        let ptr = Box::into_raw(boxed) as *mut u8;
        (ptr, len)
    }

    pub fn as_i32(x: u32) -> i32 {
        x as i32
    }
}

pub mod exports {
    /// `interface transform { transform: func(text: string) -> string; }`
    pub mod transform {
        use super::super::_rt;

        pub trait Guest {
            fn transform(text: String) -> String;
        }

        #[repr(align(4))]
        struct RetArea([core::mem::MaybeUninit<u8>; 8]);
        static mut RET_AREA: RetArea = RetArea([core::mem::MaybeUninit::uninit(); 8]);

        pub unsafe fn _export_transform_cabi<T: Guest>(arg0: *mut u8, arg1: usize) -> *mut u8 {
            let bytes0 = Vec::from_raw_parts(arg0, arg1, arg1);
            let result1 = T::transform(_rt::string_lift(bytes0));
            let ptr2 = RET_AREA.0.as_mut_ptr().cast::<u8>();
            let (ptr3, len3) = _rt::string_lower(result1);
            *ptr2.add(4).cast::<usize>() = len3;
            *ptr2.add(0).cast::<*mut u8>() = ptr3;
            ptr2
        }

        pub unsafe fn __post_return_transform<T: Guest>(arg0: *mut u8) {
            let l0 = *arg0.add(0).cast::<*mut u8>();
            let l1 = *arg0.add(4).cast::<usize>();
            _rt::cabi_dealloc(l0, l1, 1);
        }
    }

    /// `interface invert { invert: func(data: list<u8>) -> list<u8>; }`
    pub mod invert {
        use super::super::_rt;

        pub trait Guest {
            fn invert(data: Vec<u8>) -> Vec<u8>;
        }

        #[repr(align(4))]
        struct RetArea([core::mem::MaybeUninit<u8>; 8]);
        static mut RET_AREA: RetArea = RetArea([core::mem::MaybeUninit::uninit(); 8]);

        pub unsafe fn _export_invert_cabi<T: Guest>(arg0: *mut u8, arg1: usize) -> *mut u8 {
            let len0 = arg1;
            let result1 = T::invert(Vec::from_raw_parts(arg0, len0, len0));
            let ptr2 = RET_AREA.0.as_mut_ptr().cast::<u8>();
            let (ptr3, len3) = _rt::bytes_lower(result1);
            *ptr2.add(4).cast::<usize>() = len3;
            *ptr2.add(0).cast::<*mut u8>() = ptr3;
            ptr2
        }

        pub unsafe fn __post_return_invert<T: Guest>(arg0: *mut u8) {
            let l0 = *arg0.add(0).cast::<*mut u8>();
            let l1 = *arg0.add(4).cast::<usize>();
            _rt::cabi_dealloc(l0, l1, 1);
        }
    }

    /// `interface detect-language { detect-language: func(text: string) -> option<string>; }`
    pub mod detect_language {
        use super::super::_rt;

        pub trait Guest {
            fn detect_language(text: String) -> Option<String>;
        }

        // option<string>: discriminant (u8) at 0, the string's pointer at 4, length at 8.
        #[repr(align(4))]
        struct RetArea([core::mem::MaybeUninit<u8>; 12]);
        static mut RET_AREA: RetArea = RetArea([core::mem::MaybeUninit::uninit(); 12]);

        pub unsafe fn _export_detect_language_cabi<T: Guest>(
            arg0: *mut u8,
            arg1: usize,
        ) -> *mut u8 {
            let bytes0 = Vec::from_raw_parts(arg0, arg1, arg1);
            let result1 = T::detect_language(_rt::string_lift(bytes0));
            let ptr2 = RET_AREA.0.as_mut_ptr().cast::<u8>();
            match result1 {
                Some(e) => {
                    *ptr2.add(0).cast::<u8>() = 1u8;
                    let (ptr3, len3) = _rt::string_lower(e);
                    *ptr2.add(8).cast::<usize>() = len3;
                    *ptr2.add(4).cast::<*mut u8>() = ptr3;
                }
                None => {
                    *ptr2.add(0).cast::<u8>() = 0u8;
                }
            }
            ptr2
        }

        pub unsafe fn __post_return_detect_language<T: Guest>(arg0: *mut u8) {
            let l0 = i32::from(*arg0.add(0).cast::<u8>());
            if l0 != 0 {
                let l1 = *arg0.add(4).cast::<*mut u8>();
                let l2 = *arg0.add(8).cast::<usize>();
                _rt::cabi_dealloc(l1, l2, 1);
            }
        }
    }

    /// `interface describe { record point { x: s32, y: s32, label: string }
    ///   describe: func(point: point) -> string; }`
    pub mod describe {
        use super::super::_rt;

        #[derive(Clone, Debug)]
        pub struct Point {
            pub x: i32,
            pub y: i32,
            pub label: String,
        }

        pub trait Guest {
            fn describe(point: Point) -> String;
        }

        #[repr(align(4))]
        struct RetArea([core::mem::MaybeUninit<u8>; 8]);
        static mut RET_AREA: RetArea = RetArea([core::mem::MaybeUninit::uninit(); 8]);

        // The record flattens to four core parameters: x, y, label's pointer and length.
        pub unsafe fn _export_describe_cabi<T: Guest>(
            arg0: i32,
            arg1: i32,
            arg2: *mut u8,
            arg3: usize,
        ) -> *mut u8 {
            let bytes0 = Vec::from_raw_parts(arg2, arg3, arg3);
            let result1 = T::describe(Point {
                x: arg0,
                y: arg1,
                label: _rt::string_lift(bytes0),
            });
            let ptr2 = RET_AREA.0.as_mut_ptr().cast::<u8>();
            let (ptr3, len3) = _rt::string_lower(result1);
            *ptr2.add(4).cast::<usize>() = len3;
            *ptr2.add(0).cast::<*mut u8>() = ptr3;
            ptr2
        }

        pub unsafe fn __post_return_describe<T: Guest>(arg0: *mut u8) {
            let l0 = *arg0.add(0).cast::<*mut u8>();
            let l1 = *arg0.add(4).cast::<usize>();
            _rt::cabi_dealloc(l0, l1, 1);
        }
    }

    /// `interface summarize { record summary { chars: u32, words: u32,
    ///   longest: option<string> } summarize: func(text: string) -> summary; }`
    pub mod summarize {
        use super::super::_rt;

        #[derive(Clone, Debug)]
        pub struct Summary {
            pub chars: u32,
            pub words: u32,
            pub longest: Option<String>,
        }

        pub trait Guest {
            fn summarize(text: String) -> Summary;
        }

        // chars at 0, words at 4, longest at 8 (discriminant 8, pointer 12, length 16).
        #[repr(align(4))]
        struct RetArea([core::mem::MaybeUninit<u8>; 20]);
        static mut RET_AREA: RetArea = RetArea([core::mem::MaybeUninit::uninit(); 20]);

        pub unsafe fn _export_summarize_cabi<T: Guest>(arg0: *mut u8, arg1: usize) -> *mut u8 {
            let bytes0 = Vec::from_raw_parts(arg0, arg1, arg1);
            let result1 = T::summarize(_rt::string_lift(bytes0));
            let ptr2 = RET_AREA.0.as_mut_ptr().cast::<u8>();
            let Summary {
                chars: chars3,
                words: words3,
                longest: longest3,
            } = result1;
            *ptr2.add(0).cast::<i32>() = _rt::as_i32(chars3);
            *ptr2.add(4).cast::<i32>() = _rt::as_i32(words3);
            match longest3 {
                Some(e) => {
                    *ptr2.add(8).cast::<u8>() = 1u8;
                    let (ptr4, len4) = _rt::string_lower(e);
                    *ptr2.add(16).cast::<usize>() = len4;
                    *ptr2.add(12).cast::<*mut u8>() = ptr4;
                }
                None => {
                    *ptr2.add(8).cast::<u8>() = 0u8;
                }
            }
            ptr2
        }

        pub unsafe fn __post_return_summarize<T: Guest>(arg0: *mut u8) {
            let l0 = i32::from(*arg0.add(8).cast::<u8>());
            if l0 != 0 {
                let l1 = *arg0.add(12).cast::<*mut u8>();
                let l2 = *arg0.add(16).cast::<usize>();
                _rt::cabi_dealloc(l1, l2, 1);
            }
        }
    }

    /// `interface split-words { split-words: func(text: string) -> list<string>; }`
    pub mod split_words {
        use super::super::_rt;

        pub trait Guest {
            fn split_words(text: String) -> Vec<String>;
        }

        #[repr(align(4))]
        struct RetArea([core::mem::MaybeUninit<u8>; 8]);
        static mut RET_AREA: RetArea = RetArea([core::mem::MaybeUninit::uninit(); 8]);

        pub unsafe fn _export_split_words_cabi<T: Guest>(arg0: *mut u8, arg1: usize) -> *mut u8 {
            let bytes0 = Vec::from_raw_parts(arg0, arg1, arg1);
            let result1 = T::split_words(_rt::string_lift(bytes0));
            let ptr2 = RET_AREA.0.as_mut_ptr().cast::<u8>();
            // list<string>: an array of (pointer, length) pairs, 8 bytes each, align 4.
            let vec4 = result1;
            let len4 = vec4.len();
            let layout4 = _rt::alloc::Layout::from_size_align_unchecked(len4 * 8, 4);
            let result4 = if layout4.size() != 0 {
                let ptr = _rt::alloc::alloc(layout4);
                if ptr.is_null() {
                    _rt::alloc::handle_alloc_error(layout4);
                }
                ptr
            } else {
                core::ptr::null_mut()
            };
            for (i, e) in vec4.into_iter().enumerate() {
                let base = result4.add(i * 8);
                let (ptr3, len3) = _rt::string_lower(e);
                *base.add(4).cast::<usize>() = len3;
                *base.add(0).cast::<*mut u8>() = ptr3;
            }
            *ptr2.add(4).cast::<usize>() = len4;
            *ptr2.add(0).cast::<*mut u8>() = result4;
            ptr2
        }

        pub unsafe fn __post_return_split_words<T: Guest>(arg0: *mut u8) {
            let l0 = *arg0.add(0).cast::<*mut u8>();
            let l1 = *arg0.add(4).cast::<usize>();
            for i in 0..l1 {
                let base = l0.add(i * 8);
                let l2 = *base.add(0).cast::<*mut u8>();
                let l3 = *base.add(4).cast::<usize>();
                _rt::cabi_dealloc(l2, l3, 1);
            }
            _rt::cabi_dealloc(l0, l1 * 8, 4);
        }
    }
}

/// What wit-bindgen's `export!(Plugin)` expands to: the core exports, named
/// `<interface>#<function>` and `cabi_post_<interface>#<function>`.
macro_rules! export {
    ($ty:ident) => {
        #[export_name = "test:rust/transform@1.0.0#transform"]
        unsafe extern "C" fn export_transform(arg0: *mut u8, arg1: usize) -> *mut u8 {
            exports::transform::_export_transform_cabi::<$ty>(arg0, arg1)
        }
        #[export_name = "cabi_post_test:rust/transform@1.0.0#transform"]
        unsafe extern "C" fn post_return_transform(arg0: *mut u8) {
            exports::transform::__post_return_transform::<$ty>(arg0)
        }

        #[export_name = "test:rust/invert@1.0.0#invert"]
        unsafe extern "C" fn export_invert(arg0: *mut u8, arg1: usize) -> *mut u8 {
            exports::invert::_export_invert_cabi::<$ty>(arg0, arg1)
        }
        #[export_name = "cabi_post_test:rust/invert@1.0.0#invert"]
        unsafe extern "C" fn post_return_invert(arg0: *mut u8) {
            exports::invert::__post_return_invert::<$ty>(arg0)
        }

        #[export_name = "test:rust/detect-language@1.0.0#detect-language"]
        unsafe extern "C" fn export_detect_language(arg0: *mut u8, arg1: usize) -> *mut u8 {
            exports::detect_language::_export_detect_language_cabi::<$ty>(arg0, arg1)
        }
        #[export_name = "cabi_post_test:rust/detect-language@1.0.0#detect-language"]
        unsafe extern "C" fn post_return_detect_language(arg0: *mut u8) {
            exports::detect_language::__post_return_detect_language::<$ty>(arg0)
        }

        #[export_name = "test:rust/describe@1.0.0#describe"]
        unsafe extern "C" fn export_describe(
            arg0: i32,
            arg1: i32,
            arg2: *mut u8,
            arg3: usize,
        ) -> *mut u8 {
            exports::describe::_export_describe_cabi::<$ty>(arg0, arg1, arg2, arg3)
        }
        #[export_name = "cabi_post_test:rust/describe@1.0.0#describe"]
        unsafe extern "C" fn post_return_describe(arg0: *mut u8) {
            exports::describe::__post_return_describe::<$ty>(arg0)
        }

        #[export_name = "test:rust/summarize@1.0.0#summarize"]
        unsafe extern "C" fn export_summarize(arg0: *mut u8, arg1: usize) -> *mut u8 {
            exports::summarize::_export_summarize_cabi::<$ty>(arg0, arg1)
        }
        #[export_name = "cabi_post_test:rust/summarize@1.0.0#summarize"]
        unsafe extern "C" fn post_return_summarize(arg0: *mut u8) {
            exports::summarize::__post_return_summarize::<$ty>(arg0)
        }

        #[export_name = "test:rust/split-words@1.0.0#split-words"]
        unsafe extern "C" fn export_split_words(arg0: *mut u8, arg1: usize) -> *mut u8 {
            exports::split_words::_export_split_words_cabi::<$ty>(arg0, arg1)
        }
        #[export_name = "cabi_post_test:rust/split-words@1.0.0#split-words"]
        unsafe extern "C" fn post_return_split_words(arg0: *mut u8) {
            exports::split_words::__post_return_split_words::<$ty>(arg0)
        }
    };
}

// ----------------------------------------------------------------------------- the plugin

use exports::describe::Point;
use exports::summarize::Summary;

struct Plugin;

impl exports::transform::Guest for Plugin {
    fn transform(text: String) -> String {
        format!("{}!", text.to_uppercase())
    }
}

impl exports::invert::Guest for Plugin {
    fn invert(mut data: Vec<u8>) -> Vec<u8> {
        data.reverse();
        for b in data.iter_mut() {
            *b = !*b;
        }
        data
    }
}

impl exports::detect_language::Guest for Plugin {
    fn detect_language(text: String) -> Option<String> {
        if text.starts_with("der ") || text.starts_with("die ") || text.starts_with("das ") {
            Some("de".to_string())
        } else {
            None
        }
    }
}

impl exports::describe::Guest for Plugin {
    fn describe(point: Point) -> String {
        format!("{} at ({}, {})", point.label, point.x, point.y)
    }
}

impl exports::summarize::Guest for Plugin {
    fn summarize(text: String) -> Summary {
        let mut longest: Option<&str> = None;
        let mut words = 0u32;
        for word in text.split_whitespace() {
            words += 1;
            if longest.map_or(true, |l| word.chars().count() > l.chars().count()) {
                longest = Some(word);
            }
        }
        Summary {
            chars: text.chars().count() as u32,
            words,
            longest: longest.map(str::to_string),
        }
    }
}

impl exports::split_words::Guest for Plugin {
    fn split_words(text: String) -> Vec<String> {
        text.split_whitespace().map(str::to_string).collect()
    }
}

export!(Plugin);
