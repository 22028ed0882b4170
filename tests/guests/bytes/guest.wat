;; Test guest for the byte-buffer exports (tests/test_byte_buffers.py): every function
;; hands back what it was given (or builds bytes), following the canonical ABI.
;; Bytes 16..32 are the return area; the heap starts at 1024, bump-allocated by
;; cabi_realloc (a real realloc: it copies min(old, new) bytes) and reset after each call.
(module
  (memory (export "memory") 1)
  (global $heap (mut i32) (i32.const 1024))

  (func $realloc (export "cabi_realloc")
        (param $old i32) (param $old_size i32) (param $align i32) (param $new_size i32) (result i32)
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
      (then (memory.copy (local.get $ptr) (local.get $old)
                         (select (local.get $new_size) (local.get $old_size)
                                 (i32.lt_u (local.get $new_size) (local.get $old_size))))))
    (local.get $ptr))

  (func $reset (param i32) (global.set $heap (i32.const 1024)))

  (func $ret2 (param $a i32) (param $b i32) (result i32)
    (i32.store (i32.const 16) (local.get $a))
    (i32.store (i32.const 20) (local.get $b))
    (i32.const 16))

  (func $ret3 (param $a i32) (param $b i32) (param $c i32) (result i32)
    (i32.store (i32.const 16) (local.get $a))
    (i32.store (i32.const 20) (local.get $b))
    (i32.store (i32.const 24) (local.get $c))
    (i32.const 16))

  (func (export "test:bytes/ops@1.0.0#echo") (param $p i32) (param $n i32) (result i32)
    (call $ret2 (local.get $p) (local.get $n)))
  (func (export "cabi_post_test:bytes/ops@1.0.0#echo") (param i32) (call $reset (local.get 0)))

  (func (export "test:bytes/ops@1.0.0#tail") (param $p i32) (param $n i32) (result i32)
    (if (result i32) (local.get $n)
      (then (call $ret2 (i32.add (local.get $p) (i32.const 1)) (i32.sub (local.get $n) (i32.const 1))))
      (else (call $ret2 (i32.const 1) (i32.const 0)))))
  (func (export "cabi_post_test:bytes/ops@1.0.0#tail") (param i32) (call $reset (local.get 0)))

  (func (export "test:bytes/ops@1.0.0#empty") (result i32)
    (call $ret2 (i32.const 1) (i32.const 0)))

  (func (export "test:bytes/ops@1.0.0#length") (param $p i32) (param $n i32) (result i32)
    (global.set $heap (i32.const 1024))  ;; no post-return for a scalar result
    (local.get $n))

  (func (export "test:bytes/ops@1.0.0#make") (param $n i32) (param $fill i32) (result i32)
    (local $p i32)
    (local.set $p (call $realloc (i32.const 0) (i32.const 0) (i32.const 1) (local.get $n)))
    (memory.fill (local.get $p) (local.get $fill) (local.get $n))
    (call $ret2 (local.get $p) (local.get $n)))
  (func (export "cabi_post_test:bytes/ops@1.0.0#make") (param i32) (call $reset (local.get 0)))

  ;; option<list<u8>>: flat (discriminant, ptr, len); stored as u8 at 0, ptr at 4, len at 8
  (func (export "test:bytes/ops@1.0.0#maybe") (param $d i32) (param $p i32) (param $n i32) (result i32)
    (i32.store8 (i32.const 16) (local.get $d))
    (i32.store (i32.const 20) (local.get $p))
    (i32.store (i32.const 24) (local.get $n))
    (i32.const 16))
  (func (export "cabi_post_test:bytes/ops@1.0.0#maybe") (param i32) (call $reset (local.get 0)))

  (func (export "test:bytes/ops@1.0.0#nested") (param $p i32) (param $n i32) (result i32)
    (call $ret2 (local.get $p) (local.get $n)))
  (func (export "cabi_post_test:bytes/ops@1.0.0#nested") (param i32) (call $reset (local.get 0)))

  (func (export "test:bytes/ops@1.0.0#pair") (param $p i32) (param $n i32) (param $x i32) (result i32)
    (call $ret3 (local.get $p) (local.get $n) (local.get $x)))
  (func (export "cabi_post_test:bytes/ops@1.0.0#pair") (param i32) (call $reset (local.get 0)))

  (func (export "test:bytes/ops@1.0.0#mixed") (param i32 i32) (param $p i32) (param $n i32) (result i32)
    (call $ret2 (local.get $p) (local.get $n)))
  (func (export "cabi_post_test:bytes/ops@1.0.0#mixed") (param i32) (call $reset (local.get 0)))

  (func (export "test:bytes/ops@1.0.0#boxed") (param $p i32) (param $n i32) (param $tag i32) (result i32)
    (call $ret3 (local.get $p) (local.get $n) (local.get $tag)))
  (func (export "cabi_post_test:bytes/ops@1.0.0#boxed") (param i32) (call $reset (local.get 0)))
)
