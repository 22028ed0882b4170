;; tagger: implements `eventrouter:hooks/enrich@1.0.0`, with two cooperations.
;;   enrich(event) asks plugin `classify` for the class of event.kind (an import that
;;   no host interface provides: the host links it to classify's export), publishes the
;;   enriched event as "<id>\t<class>\t<kind>" on topic "events.<class>" through the
;;   host's messaging interface, and returns the field class=<class>.
;;
;; Canonical ABI, as used here:
;; - The `event` record flattens to 13 core params: id, source, kind (ptr, len each),
;;   subject (option<string>: tag, ptr, len), payload (ptr, len), fields (ptr, len).
;;   `id` and `kind` are read.
;; - The imported classify(kind) -> string takes (ptr, len, retptr): the host writes the
;;   result's (ptr, len) at retptr, the string itself allocated through cabi_realloc.
;; - publish(topic, payload) takes (ptr, len, ptr, len) and returns nothing.
;; - The list<field> result is returned through a return area holding (ptr, len); each
;;   field is four i32: key (ptr, len), value (ptr, len).
;; - `cabi_post_...` runs after the host has lifted the result: it resets the heap.
(module
  (import "eventrouter:classify/classifier@1.0.0" "classify"
    (func $classify (param i32 i32 i32)))
  (import "airssys:host/messaging@0.1.0" "publish"
    (func $publish (param i32 i32 i32 i32)))
  (memory (export "memory") 1)

  (data (i32.const 256) "events.")
  (data (i32.const 272) "class")
  (global $ret i32 (i32.const 16))      ;; the result's return area (8 bytes at 16..24)
  (global $answer i32 (i32.const 32))   ;; classify's return area (8 bytes at 32..40)
  (global $heap (mut i32) (i32.const 1024))

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

  ;; append(dst, src, len) -> dst + len: copy len bytes to dst.
  (func $append (param $dst i32) (param $src i32) (param $len i32) (result i32)
    (memory.copy (local.get $dst) (local.get $src) (local.get $len))
    (i32.add (local.get $dst) (local.get $len)))

  ;; enrich(event: event) -> list<field>
  (func (export "eventrouter:hooks/enrich@1.0.0#enrich")
        (param $id_ptr i32) (param $id_len i32)
        (param $source_ptr i32) (param $source_len i32)
        (param $kind_ptr i32) (param $kind_len i32)
        (param $subject_tag i32) (param $subject_ptr i32) (param $subject_len i32)
        (param $payload_ptr i32) (param $payload_len i32)
        (param $fields_ptr i32) (param $fields_len i32)
        (result i32)
    (local $class i32) (local $class_len i32)
    (local $topic i32) (local $topic_len i32)
    (local $message i32) (local $message_len i32) (local $at i32)
    (local $field i32)
    ;; the class, from the other plugin
    (call $classify (local.get $kind_ptr) (local.get $kind_len) (global.get $answer))
    (local.set $class (i32.load (global.get $answer)))
    (local.set $class_len (i32.load offset=4 (global.get $answer)))
    ;; topic = "events." + class
    (local.set $topic_len (i32.add (i32.const 7) (local.get $class_len)))
    (local.set $topic (call $alloc (i32.const 1) (local.get $topic_len)))
    (local.set $at (call $append (local.get $topic) (i32.const 256) (i32.const 7)))
    (drop (call $append (local.get $at) (local.get $class) (local.get $class_len)))
    ;; message = id TAB class TAB kind
    (local.set $message_len
      (i32.add (i32.add (local.get $id_len) (local.get $class_len))
               (i32.add (local.get $kind_len) (i32.const 2))))
    (local.set $message (call $alloc (i32.const 1) (local.get $message_len)))
    (local.set $at (call $append (local.get $message) (local.get $id_ptr) (local.get $id_len)))
    (i32.store8 (local.get $at) (i32.const 9))
    (local.set $at (call $append (i32.add (local.get $at) (i32.const 1))
                                 (local.get $class) (local.get $class_len)))
    (i32.store8 (local.get $at) (i32.const 9))
    (drop (call $append (i32.add (local.get $at) (i32.const 1))
                        (local.get $kind_ptr) (local.get $kind_len)))
    (call $publish (local.get $topic) (local.get $topic_len)
                   (local.get $message) (local.get $message_len))
    ;; [field("class", class)]
    (local.set $field (call $alloc (i32.const 4) (i32.const 16)))
    (i32.store (local.get $field) (i32.const 272))
    (i32.store offset=4 (local.get $field) (i32.const 5))
    (i32.store offset=8 (local.get $field) (local.get $class))
    (i32.store offset=12 (local.get $field) (local.get $class_len))
    (i32.store (global.get $ret) (local.get $field))
    (i32.store offset=4 (global.get $ret) (i32.const 1))
    (global.get $ret))

  ;; After the host has lifted the result: drop the event's copy and our allocations.
  (func (export "cabi_post_eventrouter:hooks/enrich@1.0.0#enrich") (param $ret i32)
    (global.set $heap (i32.const 1024)))
)
