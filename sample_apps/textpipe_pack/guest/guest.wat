;; reverse: implements `textpipe:hooks/transform@1.0.0`.
;;   transform(text) = text with its characters in reverse order.
;;
;; Reversing bytes would break multi-byte UTF-8 characters (and the host rejects invalid
;; UTF-8), so it walks back from the end one character at a time: a character starts at
;; the first byte that is not a continuation byte (10xxxxxx), and is copied whole.
;; The canonical ABI parts (cabi_realloc, return area, cabi_post) are as in textpipe's
;; `shout` guest, which explains them line by line.
(module
  (memory (export "memory") 1)
  (global $heap (mut i32) (i32.const 1024))

  ;; cabi_realloc(old_ptr, old_size, align, new_size) -> ptr: a bump allocator
  (func $realloc (export "cabi_realloc")
        (param $old i32) (param $old_size i32) (param $align i32) (param $new_size i32)
        (result i32)
    (local $ptr i32)
    (local.set $ptr
      (i32.and (i32.add (global.get $heap) (i32.sub (local.get $align) (i32.const 1)))
               (i32.xor (i32.sub (local.get $align) (i32.const 1)) (i32.const -1))))
    (global.set $heap (i32.add (local.get $ptr) (local.get $new_size)))
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
  (func (export "textpipe:hooks/transform@1.0.0#transform")
        (param $p i32) (param $n i32) (result i32)
    (local $out i32) (local $w i32) (local $end i32) (local $start i32) (local $len i32)
    (local $ret i32)
    (local.set $out (call $realloc (i32.const 0) (i32.const 0) (i32.const 1) (local.get $n)))
    (local.set $w (local.get $out))
    (local.set $end (local.get $n))
    (block $done
      (loop $next
        (br_if $done (i32.eqz (local.get $end)))
        ;; step back from the character's last byte over continuation bytes
        (local.set $start (i32.sub (local.get $end) (i32.const 1)))
        (block $found
          (loop $back
            (br_if $found (i32.eqz (local.get $start)))
            (br_if $found
              (i32.ne (i32.and (i32.load8_u (i32.add (local.get $p) (local.get $start)))
                               (i32.const 0xC0))
                      (i32.const 0x80)))
            (local.set $start (i32.sub (local.get $start) (i32.const 1)))
            (br $back)))
        (local.set $len (i32.sub (local.get $end) (local.get $start)))
        (memory.copy (local.get $w) (i32.add (local.get $p) (local.get $start)) (local.get $len))
        (local.set $w (i32.add (local.get $w) (local.get $len)))
        (local.set $end (local.get $start))
        (br $next)))
    ;; return area: (ptr, len) of the result string
    (local.set $ret (call $realloc (i32.const 0) (i32.const 0) (i32.const 4) (i32.const 8)))
    (i32.store (local.get $ret) (local.get $out))
    (i32.store offset=4 (local.get $ret) (local.get $n))
    (local.get $ret))

  ;; after the host copied the result out: drop the whole heap
  (func (export "cabi_post_textpipe:hooks/transform@1.0.0#transform") (param $ret i32)
    (global.set $heap (i32.const 1024)))
)
