;; tally: a subscriber to the enriched events `tagger` publishes (topics "events.*",
;; as its grant says), counting them; `report` returns tally/messages = the count.
;;
;; Canonical ABI, as used here:
;; - on-message(topic, payload) takes (ptr, len, ptr, len), copied in by the host through
;;   `cabi_realloc` (a bump allocator), and returns option<list<u8>> through a return
;;   area: tag (u8) at +0 (0: none, no reply), (ptr, len) at +4 and +8.
;; - report() returns list<field> through a return area holding (ptr, len); each field
;;   is four i32: key (ptr, len), value (ptr, len).
;; - `cabi_post_...` runs after the host has lifted a result: it resets the heap.
;; The count lives in the instance: a restart of the plugin starts it again from 0.
(module
  (memory (export "memory") 1)

  (data (i32.const 256) "tally/messages")
  (global $ret i32 (i32.const 16))      ;; return areas (12 bytes at 16..28)
  (global $heap (mut i32) (i32.const 1024))
  (global $messages (mut i32) (i32.const 0))

  ;; cabi_realloc(old_ptr, old_size, align, new_size) -> ptr: bump allocation.
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
      (then (memory.copy (local.get $ptr) (local.get $old)
                         (select (local.get $new_size) (local.get $old_size)
                                 (i32.lt_u (local.get $new_size) (local.get $old_size))))))
    (local.get $ptr))

;; alloc(align, size): fresh bytes on the heap.
  (func $alloc (param $align i32) (param $size i32) (result i32)
    (call $realloc (i32.const 0) (i32.const 0) (local.get $align) (local.get $size)))

  ;; decimal(n, at) -> length: n in decimal at `at` (at most 10 bytes).
  (func $decimal (param $n i32) (param $at i32) (result i32)
    (local $len i32) (local $i i32) (local $m i32) (local $c i32)
    (local.set $m (local.get $n))
    (loop $count                                   ;; how many digits
      (local.set $len (i32.add (local.get $len) (i32.const 1)))
      (local.set $m (i32.div_u (local.get $m) (i32.const 10)))
      (br_if $count (local.get $m)))
    (local.set $m (local.get $n))
    (local.set $i (local.get $len))
    (loop $digit                                   ;; write them from the right
      (local.set $i (i32.sub (local.get $i) (i32.const 1)))
      (i32.store8 (i32.add (local.get $at) (local.get $i))
                  (i32.add (i32.const 48) (i32.rem_u (local.get $m) (i32.const 10))))
      (local.set $m (i32.div_u (local.get $m) (i32.const 10)))
      (br_if $digit (local.get $i)))
    (local.get $len))

  ;; on-message(topic: string, payload: list<u8>) -> option<list<u8>>
  (func (export "airssys:host/subscriber@0.1.0#on-message")
        (param $topic_ptr i32) (param $topic_len i32)
        (param $payload_ptr i32) (param $payload_len i32) (result i32)
    (global.set $messages (i32.add (global.get $messages) (i32.const 1)))
    (i32.store8 (global.get $ret) (i32.const 0))                  ;; none: no reply
    (global.get $ret))

  (func (export "cabi_post_airssys:host/subscriber@0.1.0#on-message") (param $ret i32)
    (global.set $heap (i32.const 1024)))

  ;; report() -> list<field>: [tally/messages = count]
  (func (export "eventrouter:hooks/report@1.0.0#report") (result i32)
    (local $field i32) (local $digits i32)
    (local.set $digits (call $alloc (i32.const 1) (i32.const 10)))
    (local.set $field (call $alloc (i32.const 4) (i32.const 16)))
    (i32.store (local.get $field) (i32.const 256))
    (i32.store offset=4 (local.get $field) (i32.const 14))
    (i32.store offset=8 (local.get $field) (local.get $digits))
    (i32.store offset=12 (local.get $field)
      (call $decimal (global.get $messages) (local.get $digits)))
    (i32.store (global.get $ret) (local.get $field))
    (i32.store offset=4 (global.get $ret) (i32.const 1))
    (global.get $ret))

  (func (export "cabi_post_eventrouter:hooks/report@1.0.0#report") (param $ret i32)
    (global.set $heap (i32.const 1024)))
)
