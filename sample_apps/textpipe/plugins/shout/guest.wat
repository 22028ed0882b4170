;; shout: implements `textpipe:hooks/transform@1.0.0`.
;;   transform(text) = text with ASCII a-z uppercased, followed by "!".
;;
;; Canonical ABI, as used here:
;; - The host lowers the `string` argument by calling `cabi_realloc` to get guest
;;   memory, copying the UTF-8 bytes in, and passing (ptr, len) as two i32 params.
;; - A `string` result does not fit in one core value, so the export returns a
;;   pointer to a "return area" holding (ptr: i32, len: i32); the host lifts the
;;   string from there.
;; - After lifting, the host calls `cabi_post_<export>` with that pointer: the
;;   guest may then free everything, which for a bump allocator is a heap reset.
(module
  (memory (export "memory") 1)

  ;; Bump pointer. Everything below 1024 is reserved; the heap grows upwards.
  (global $heap (mut i32) (i32.const 1024))

  ;; cabi_realloc(old_ptr, old_size, align, new_size) -> ptr
  ;; Bump allocator: aligns the heap pointer, reserves new_size bytes, grows
  ;; memory when needed (traps if it cannot) and copies old data on realloc.
  (func $realloc (export "cabi_realloc")
        (param $old i32) (param $old_size i32) (param $align i32) (param $new_size i32)
        (result i32)
    (local $ptr i32)
    ;; ptr = (heap + align - 1) & ~(align - 1)
    (local.set $ptr
      (i32.and (i32.add (global.get $heap) (i32.sub (local.get $align) (i32.const 1)))
               (i32.xor (i32.sub (local.get $align) (i32.const 1)) (i32.const -1))))
    (global.set $heap (i32.add (local.get $ptr) (local.get $new_size)))
    ;; grow memory by enough 64 KiB pages if the new heap end is past it
    (block $ok
      (br_if $ok (i32.le_u (global.get $heap) (i32.mul (memory.size) (i32.const 65536))))
      (if (i32.eq (i32.const -1)
            (memory.grow (i32.add (i32.shr_u (i32.sub (global.get $heap)
                                                       (i32.mul (memory.size) (i32.const 65536)))
                                             (i32.const 16))
                                  (i32.const 1))))
        (then unreachable)))
    (if (local.get $old)
      (then (memory.copy (local.get $ptr) (local.get $old)  ;; a shrink copies only new_size
                         (select (local.get $new_size) (local.get $old_size)
                                 (i32.lt_u (local.get $new_size) (local.get $old_size))))))
    (local.get $ptr))

  ;; transform(text: string) -> string
  ;; Params: the lowered argument (ptr, len). Result: pointer to the return area.
  (func (export "textpipe:hooks/transform@1.0.0#transform")
        (param $p i32) (param $n i32) (result i32)
    (local $out i32) (local $i i32) (local $c i32) (local $ret i32)
    ;; output buffer: len + 1 bytes for the trailing "!"
    (local.set $out (call $realloc (i32.const 0) (i32.const 0) (i32.const 1)
                                   (i32.add (local.get $n) (i32.const 1))))
    ;; copy byte by byte, uppercasing 'a'..'z' (0x61..0x7a) by subtracting 0x20.
    ;; Multi-byte UTF-8 sequences only use bytes >= 0x80, so they pass through intact.
    ;; Range check in one compare: (c - 0x61) as unsigned is <= 25 only for a..z.
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (local.set $c (i32.load8_u (i32.add (local.get $p) (local.get $i))))
        (if (i32.le_u (i32.sub (local.get $c) (i32.const 0x61)) (i32.const 25))
          (then (local.set $c (i32.sub (local.get $c) (i32.const 0x20)))))
        (i32.store8 (i32.add (local.get $out) (local.get $i)) (local.get $c))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    (i32.store8 (i32.add (local.get $out) (local.get $n)) (i32.const 0x21)) ;; "!"
    ;; return area: 8 bytes, 4-aligned, holding (ptr, len) of the result string
    (local.set $ret (call $realloc (i32.const 0) (i32.const 0) (i32.const 4) (i32.const 8)))
    (i32.store (local.get $ret) (local.get $out))
    (i32.store offset=4 (local.get $ret) (i32.add (local.get $n) (i32.const 1)))
    (local.get $ret))

  ;; Called by the host once it has copied the result out: drop the whole heap
  ;; (argument and result buffers) by resetting the bump pointer.
  (func (export "cabi_post_textpipe:hooks/transform@1.0.0#transform") (param $ret i32)
    (global.set $heap (i32.const 1024)))
)
