;; Extism guest for bench/bench_calls.py: a plain core module (not a component) that talks
;; to the Extism kernel through its `extism:host/env` imports, as every Extism PDK does.
;; Built in-process with wasmtime.wat2wasm; loaded with `extism.Plugin(wasm, functions=[])`.
;;
;; Pointers and lengths into the kernel's memory are i64 ("ExtismPointer"). Each export
;; takes no wasm parameters and returns an i32 status (0 = success); input and output
;; travel through the kernel's buffers.
(module
  (import "extism:host/env" "input_length" (func $input_length (result i64)))
  (import "extism:host/env" "input_offset" (func $input_offset (result i64)))
  (import "extism:host/env" "input_load_u8" (func $input_load_u8 (param i64) (result i32)))
  (import "extism:host/env" "input_load_u64" (func $input_load_u64 (param i64) (result i64)))
  (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
  (import "extism:host/env" "store_u8" (func $store_u8 (param i64 i32)))
  (import "extism:host/env" "store_u64" (func $store_u64 (param i64 i64)))
  (import "extism:host/env" "output_set" (func $output_set (param i64 i64)))
  (import "extism:host/env" "error_set" (func $error_set (param i64)))

  ;; add_one: input = a u32 as 4 little-endian bytes; output = x + 1 (wrapping) as 4 LE bytes.
  ;; Reads and writes byte by byte through the kernel, the way the PDKs move a 4-byte buffer.
  (func (export "add_one") (result i32)
    (local $x i32) (local $out i64)
    (if (i64.ne (call $input_length) (i64.const 4))
      (then (return (i32.const 1))))
    (local.set $x
      (i32.or
        (i32.or (call $input_load_u8 (i64.const 0))
                (i32.shl (call $input_load_u8 (i64.const 1)) (i32.const 8)))
        (i32.or (i32.shl (call $input_load_u8 (i64.const 2)) (i32.const 16))
                (i32.shl (call $input_load_u8 (i64.const 3)) (i32.const 24)))))
    (local.set $x (i32.add (local.get $x) (i32.const 1)))
    (local.set $out (call $alloc (i64.const 4)))
    (call $store_u8 (local.get $out) (local.get $x))
    (call $store_u8 (i64.add (local.get $out) (i64.const 1)) (i32.shr_u (local.get $x) (i32.const 8)))
    (call $store_u8 (i64.add (local.get $out) (i64.const 2)) (i32.shr_u (local.get $x) (i32.const 16)))
    (call $store_u8 (i64.add (local.get $out) (i64.const 3)) (i32.shr_u (local.get $x) (i32.const 24)))
    (call $output_set (local.get $out) (i64.const 4))
    (i32.const 0))

  ;; echo: hand the input block back as the output (no copy): the same work as the
  ;; component guest, which returns the buffer the host lowered into its memory.
  (func (export "echo") (result i32)
    (call $output_set (call $input_offset) (call $input_length))
    (i32.const 0))

  ;; echo_copy: what a PDK-built echo does: alloc an output block, copy the input into it
  ;; 8 bytes at a time (then byte by byte), set it as the output.
  (func (export "echo_copy") (result i32)
    (local $n i64) (local $i i64) (local $out i64) (local $end8 i64)
    (local.set $n (call $input_length))
    (local.set $out (call $alloc (local.get $n)))
    (local.set $end8 (i64.and (local.get $n) (i64.const -8)))
    (block $done8
      (loop $copy8
        (br_if $done8 (i64.ge_u (local.get $i) (local.get $end8)))
        (call $store_u64 (i64.add (local.get $out) (local.get $i))
                         (call $input_load_u64 (local.get $i)))
        (local.set $i (i64.add (local.get $i) (i64.const 8)))
        (br $copy8)))
    (block $done
      (loop $copy1
        (br_if $done (i64.ge_u (local.get $i) (local.get $n)))
        (call $store_u8 (i64.add (local.get $out) (local.get $i))
                        (call $input_load_u8 (local.get $i)))
        (local.set $i (i64.add (local.get $i) (i64.const 1)))
        (br $copy1)))
    (call $output_set (local.get $out) (local.get $n))
    (i32.const 0))
)
