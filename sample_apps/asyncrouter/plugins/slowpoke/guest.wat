;; slowpoke: scores like scorer but does 20,000 rounds per unit of work: a plugin that is
;; fine on small events and far too slow on big ones (the app's timeout cancels it).
(module
  (memory (export "memory") 1)
  (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32) (i32.const 1024))
  (func (export "asyncrouter:hooks/score@1.0.0#score") (param $work i32) (result i32)
    (local $n i64) (local $acc i32)
    (local.set $n (i64.mul (i64.extend_i32_u (local.get $work)) (i64.const 2000)))
    (local.set $acc (local.get $work))
    (block $done (loop $round
      (br_if $done (i64.eqz (local.get $n)))
      (local.set $acc (i32.add (i32.mul (local.get $acc) (i32.const 1664525))
                               (i32.const 1013904223)))
      (local.set $n (i64.sub (local.get $n) (i64.const 1)))
      (br $round)))
    (i32.rem_u (local.get $acc) (i32.const 10)))
)
