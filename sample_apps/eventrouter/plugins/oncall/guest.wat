;; oncall: a subscriber to the enriched events `tagger` publishes (topics "events.*",
;; as its grant says). It receives every one and keeps those on topic "events.incident":
;; their count and their ids (the payload up to the first TAB), space-separated, in
;; order of arrival. `report` returns oncall/incidents = the count and, once there is
;; one, oncall/ids = the ids.
;;
;; Canonical ABI, as used here:
;; - on-message(topic, payload) takes (ptr, len, ptr, len), copied in by the host through
;;   `cabi_realloc` (a bump allocator), and returns option<list<u8>> through a return
;;   area: tag (u8) at +0 (0: none, no reply), (ptr, len) at +4 and +8.
;; - report() returns list<field> through a return area holding (ptr, len); each field
;;   is four i32: key (ptr, len), value (ptr, len).
;; - `cabi_post_...` runs after the host has lifted a result: it resets the heap.
;; The state lives in the instance: a restart of the plugin starts it again.
(module
  (memory (export "memory") 1)

  (data (i32.const 256) "oncall/incidents")
  (data (i32.const 288) "oncall/ids")
  (data (i32.const 304) "events.incident")
  (global $ret i32 (i32.const 16))      ;; return areas (12 bytes at 16..28)
  (global $ids i32 (i32.const 4096))    ;; the ids kept, at most $ids_cap bytes
  (global $ids_cap i32 (i32.const 4096))
  (global $ids_len (mut i32) (i32.const 0))
  (global $heap (mut i32) (i32.const 8192))
  (global $incidents (mut i32) (i32.const 0))

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

  ;; equal(a, alen, b, blen): 1 if the two byte strings are equal.
  (func $equal (param $a i32) (param $alen i32) (param $b i32) (param $blen i32) (result i32)
    (local $i i32)
    (if (i32.ne (local.get $alen) (local.get $blen)) (then (return (i32.const 0))))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $alen)))
        (if (i32.ne (i32.load8_u (i32.add (local.get $a) (local.get $i)))
                    (i32.load8_u (i32.add (local.get $b) (local.get $i))))
          (then (return (i32.const 0))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    (i32.const 1))

  ;; on-message(topic: string, payload: list<u8>) -> option<list<u8>>
  (func (export "airssys:host/subscriber@0.1.0#on-message")
        (param $topic_ptr i32) (param $topic_len i32)
        (param $payload_ptr i32) (param $payload_len i32) (result i32)
    (local $id_len i32) (local $at i32)
    (i32.store8 (global.get $ret) (i32.const 0))                  ;; none: no reply
    (if (i32.eqz (call $equal (local.get $topic_ptr) (local.get $topic_len)
                              (i32.const 304) (i32.const 15)))
      (then (return (global.get $ret))))
    (global.set $incidents (i32.add (global.get $incidents) (i32.const 1)))
    ;; the id: the payload up to its first TAB
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $id_len) (local.get $payload_len)))
        (br_if $done (i32.eq (i32.load8_u (i32.add (local.get $payload_ptr) (local.get $id_len)))
                             (i32.const 9)))
        (local.set $id_len (i32.add (local.get $id_len) (i32.const 1)))
        (br $next)))
    ;; keep it (after a space) while it fits
    (if (i32.le_u (i32.add (i32.add (global.get $ids_len) (local.get $id_len)) (i32.const 1))
                  (global.get $ids_cap))
      (then
        (local.set $at (i32.add (global.get $ids) (global.get $ids_len)))
        (if (global.get $ids_len)
          (then (i32.store8 (local.get $at) (i32.const 32))
                (local.set $at (i32.add (local.get $at) (i32.const 1)))))
        (memory.copy (local.get $at) (local.get $payload_ptr) (local.get $id_len))
        (global.set $ids_len (i32.sub (i32.add (local.get $at) (local.get $id_len))
                                      (global.get $ids)))))
    (global.get $ret))

  (func (export "cabi_post_airssys:host/subscriber@0.1.0#on-message") (param $ret i32)
    (global.set $heap (i32.const 8192)))

  ;; report() -> list<field>: [oncall/incidents = count, oncall/ids = ids (if any)]
  (func (export "eventrouter:hooks/report@1.0.0#report") (result i32)
    (local $fields i32) (local $digits i32)
    (local.set $digits (call $alloc (i32.const 1) (i32.const 10)))
    (local.set $fields (call $alloc (i32.const 4) (i32.const 32)))
    (i32.store (local.get $fields) (i32.const 256))
    (i32.store offset=4 (local.get $fields) (i32.const 16))
    (i32.store offset=8 (local.get $fields) (local.get $digits))
    (i32.store offset=12 (local.get $fields)
      (call $decimal (global.get $incidents) (local.get $digits)))
    (i32.store offset=16 (local.get $fields) (i32.const 288))
    (i32.store offset=20 (local.get $fields) (i32.const 10))
    (i32.store offset=24 (local.get $fields) (global.get $ids))
    (i32.store offset=28 (local.get $fields) (global.get $ids_len))
    (i32.store (global.get $ret) (local.get $fields))
    (i32.store offset=4 (global.get $ret)
      (select (i32.const 2) (i32.const 1) (global.get $ids_len)))
    (global.get $ret))

  (func (export "cabi_post_eventrouter:hooks/report@1.0.0#report") (param $ret i32)
    (global.set $heap (i32.const 8192)))
)
