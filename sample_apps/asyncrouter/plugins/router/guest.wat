;; router: priority >= 100 -> destination 2 (pager), >= 30 -> 1 (queue), else none (the
;; next implementation, or the default, decides). option<u32> is returned in memory:
;; a tag byte at 256 and the payload at 260.
(module
  (memory (export "memory") 1)
  (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32) (i32.const 1024))
  (func (export "asyncrouter:hooks/route@1.0.0#route") (param $p i32) (result i32)
    (i32.store8 (i32.const 256) (i32.const 1))
    (if (i32.ge_u (local.get $p) (i32.const 100))
      (then (i32.store (i32.const 260) (i32.const 2)))
      (else (if (i32.ge_u (local.get $p) (i32.const 30))
        (then (i32.store (i32.const 260) (i32.const 1)))
        (else (i32.store8 (i32.const 256) (i32.const 0))))))
    (i32.const 256))
)
