;; Benchmark guest for the bench/ scripts (calls, fan-out, parallelism, start-up): a core
;; module following the canonical ABI, wrapped into a component by
;; airssys_plugins._build.build_guest (wasm-tools).
;;
;; Memory layout: bytes 8..16 are the return area for the echo functions; the heap
;; (bump-allocated by cabi_realloc) starts at 1024 and is reset by every cabi_post_*.
(module
  (memory (export "memory") 1)
  (global $heap (mut i32) (i32.const 1024))

  ;; bump allocator: cabi_realloc(old_ptr, old_size, align, new_size) -> ptr
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
      (then (memory.copy (local.get $ptr) (local.get $old)  ;; a shrink copies only new_size
                         (select (local.get $new_size) (local.get $old_size)
                                 (i32.lt_u (local.get $new_size) (local.get $old_size))))))
    (local.get $ptr))

  ;; write (ptr, len) into the static return area and return its address
  (func $ret_pair (param $p i32) (param $n i32) (result i32)
    (i32.store (i32.const 8) (local.get $p))
    (i32.store offset=4 (i32.const 8) (local.get $n))
    (i32.const 8))

  (func (export "bench:hooks/add-one@1.0.0#add-one") (param i32) (result i32)
    (i32.add (local.get 0) (i32.const 1)))

  ;; echo: hand back the (ptr, len) the host lowered into our memory
  (func (export "bench:hooks/echo@1.0.0#echo") (param $p i32) (param $n i32) (result i32)
    (call $ret_pair (local.get $p) (local.get $n)))
  (func (export "cabi_post_bench:hooks/echo@1.0.0#echo") (param i32)
    (global.set $heap (i32.const 1024)))

  ;; burn: n rounds of a 32-bit LCG (acc = acc * 1664525 + 1013904223, from acc = n), a
  ;; CPU-bound hook for the parallelism benchmark. A serial dependency chain: ~1-2 ns a round.
  (func (export "bench:hooks/burn@1.0.0#burn") (param $n i32) (result i32)
    (local $acc i32)
    (local.set $acc (local.get $n))
    (block $done
      (loop $round
        (br_if $done (i32.eqz (local.get $n)))
        (local.set $acc (i32.add (i32.mul (local.get $acc) (i32.const 1664525))
                                 (i32.const 1013904223)))
        (local.set $n (i32.sub (local.get $n) (i32.const 1)))
        (br $round)))
    (local.get $acc))

  ;; swap: a record of two u32 arrives flat as (x, y); the result record goes through the
  ;; return area (two flat values are more than a core function returns): y at 8, x at 12
  (func (export "bench:hooks/swap@1.0.0#swap") (param $x i32) (param $y i32) (result i32)
    (call $ret_pair (local.get $y) (local.get $x)))

  (func (export "bench:hooks/echo-bytes@1.0.0#echo-bytes") (param $p i32) (param $n i32) (result i32)
    (call $ret_pair (local.get $p) (local.get $n)))
  (func (export "cabi_post_bench:hooks/echo-bytes@1.0.0#echo-bytes") (param i32)
    (global.set $heap (i32.const 1024)))
)
