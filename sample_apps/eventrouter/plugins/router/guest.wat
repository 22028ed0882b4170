;; router: implements `eventrouter:hooks/route@1.0.0`.
;;   route(event) = the destination of the first rule whose prefix starts event.kind,
;;   or none. It imports nothing: the host grants the router no rights at all.
;;
;; Canonical ABI, as used here:
;; - The `event` record flattens to 13 core params: id, source, kind (ptr, len each),
;;   subject (option<string>: tag, ptr, len), payload (ptr, len), fields (ptr, len).
;;   Only `kind` (params 4 and 5) is read.
;; - The host copies the strings in through `cabi_realloc` (a bump allocator) before the
;;   call and calls `cabi_post_...` after lifting the result, which resets the heap.
;; - `option<string>` does not fit one core value, so the export returns a pointer to a
;;   return area: tag (u8) at +0, then (ptr, len) of the string at +4 and +8.
(module
  (memory (export "memory") 1)

  ;; The rules: NUL-terminated prefix, NUL-terminated destination, ..., then an empty
  ;; prefix. Destinations are returned straight from this data segment.
  (data (i32.const 64)
    "alert.\00pager\00"
    "payment.\00billing\00"
    "pull_request.\00code-review\00"
    "push\00ci\00"
    "\00")
  (global $rules i32 (i32.const 64))
  (global $ret i32 (i32.const 16))    ;; the return area (12 bytes at 16..28)

  (global $heap (mut i32) (i32.const 1024))

  ;; cabi_realloc(old_ptr, old_size, align, new_size) -> ptr: bump allocation, growing
  ;; memory when needed (the same allocator as textpipe's shout).
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

  ;; strlen(p): bytes before the next NUL.
  (func $strlen (param $p i32) (result i32)
    (local $n i32)
    (block $done
      (loop $next
        (br_if $done (i32.eqz (i32.load8_u (i32.add (local.get $p) (local.get $n)))))
        (local.set $n (i32.add (local.get $n) (i32.const 1)))
        (br $next)))
    (local.get $n))

  ;; starts_with(s, slen, prefix, plen): 1 if the first plen bytes of s are the prefix.
  (func $starts_with (param $s i32) (param $slen i32) (param $p i32) (param $plen i32)
        (result i32)
    (local $i i32)
    (if (i32.lt_u (local.get $slen) (local.get $plen)) (then (return (i32.const 0))))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $plen)))
        (if (i32.ne (i32.load8_u (i32.add (local.get $s) (local.get $i)))
                    (i32.load8_u (i32.add (local.get $p) (local.get $i))))
          (then (return (i32.const 0))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    (i32.const 1))

  ;; route(event: event) -> option<string>
  (func (export "eventrouter:hooks/route@1.0.0#route")
        (param $id_ptr i32) (param $id_len i32)
        (param $source_ptr i32) (param $source_len i32)
        (param $kind_ptr i32) (param $kind_len i32)
        (param $subject_tag i32) (param $subject_ptr i32) (param $subject_len i32)
        (param $payload_ptr i32) (param $payload_len i32)
        (param $fields_ptr i32) (param $fields_len i32)
        (result i32)
    (local $rule i32) (local $rule_len i32) (local $dest i32) (local $dest_len i32)
    (local.set $rule (global.get $rules))
    (block $none
      (loop $next
        (local.set $rule_len (call $strlen (local.get $rule)))
        (br_if $none (i32.eqz (local.get $rule_len)))          ;; end of the table
        (local.set $dest (i32.add (local.get $rule) (i32.add (local.get $rule_len) (i32.const 1))))
        (local.set $dest_len (call $strlen (local.get $dest)))
        (if (call $starts_with (local.get $kind_ptr) (local.get $kind_len)
                               (local.get $rule) (local.get $rule_len))
          (then
            (i32.store8 (global.get $ret) (i32.const 1))           ;; some
            (i32.store offset=4 (global.get $ret) (local.get $dest))
            (i32.store offset=8 (global.get $ret) (local.get $dest_len))
            (return (global.get $ret))))
        (local.set $rule (i32.add (local.get $dest) (i32.add (local.get $dest_len) (i32.const 1))))
        (br $next)))
    (i32.store8 (global.get $ret) (i32.const 0))                  ;; none
    (global.get $ret))

  ;; After the host has lifted the result: drop the event's strings and list.
  (func (export "cabi_post_eventrouter:hooks/route@1.0.0#route") (param $ret i32)
    (global.set $heap (i32.const 1024)))
)
