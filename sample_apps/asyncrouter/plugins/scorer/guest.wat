;; scorer: `work` rounds of a 32-bit LCG (CPU work), the score is the last value mod 100.
(module
  (memory (export "memory") 1)
  (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32) (i32.const 1024))
  (func (export "asyncrouter:hooks/score@1.0.0#score") (param $n i32) (result i32)
    (local $acc i32)
    (local.set $acc (local.get $n))
    (block $done (loop $round
      (br_if $done (i32.eqz (local.get $n)))
      (local.set $acc (i32.add (i32.mul (local.get $acc) (i32.const 1664525))
                               (i32.const 1013904223)))
      (local.set $n (i32.sub (local.get $n) (i32.const 1)))
      (br $round)))
    (i32.rem_u (local.get $acc) (i32.const 100)))
)
