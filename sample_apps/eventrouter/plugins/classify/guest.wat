;; classify: exports `eventrouter:classify/classifier@1.0.0` to other plugins.
;;   classify(kind) = the class of the first rule whose prefix starts kind, else "other".
;; It implements no hook and imports nothing; `tagger` calls it through a link that the
;; host mediates (tagger's call runs here, on this plugin's own instance and limits).
;;
;; Canonical ABI, as used here: `kind` arrives as (ptr, len), copied in by the host
;; through `cabi_realloc` (a bump allocator); the `string` result is returned through a
;; return area holding (ptr, len), pointing into the rules' data segment.
(module
  (memory (export "memory") 1)

  ;; The rules: NUL-terminated prefix, NUL-terminated class, ..., then an empty prefix.
  (data (i32.const 64)
    "alert.\00incident\00"
    "payment.failed\00incident\00"
    "payment.\00money\00"
    "pull_request.\00code\00"
    "push\00code\00"
    "\00")
  (data (i32.const 960) "other")
  (global $rules i32 (i32.const 64))
  (global $ret i32 (i32.const 16))    ;; the return area (8 bytes at 16..24)
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

  ;; classify(kind: string) -> string
  (func (export "eventrouter:classify/classifier@1.0.0#classify")
        (param $kind_ptr i32) (param $kind_len i32) (result i32)
    (local $rule i32) (local $rule_len i32) (local $class i32) (local $class_len i32)
    (local.set $rule (global.get $rules))
    (block $none
      (loop $next
        (local.set $rule_len (call $strlen (local.get $rule)))
        (br_if $none (i32.eqz (local.get $rule_len)))          ;; end of the table
        (local.set $class (i32.add (local.get $rule) (i32.add (local.get $rule_len) (i32.const 1))))
        (local.set $class_len (call $strlen (local.get $class)))
        (if (call $starts_with (local.get $kind_ptr) (local.get $kind_len)
                               (local.get $rule) (local.get $rule_len))
          (then
            (i32.store (global.get $ret) (local.get $class))
            (i32.store offset=4 (global.get $ret) (local.get $class_len))
            (return (global.get $ret))))
        (local.set $rule (i32.add (local.get $class) (i32.add (local.get $class_len) (i32.const 1))))
        (br $next)))
    (i32.store (global.get $ret) (i32.const 960))                 ;; "other"
    (i32.store offset=4 (global.get $ret) (i32.const 5))
    (global.get $ret))

  ;; After the host has lifted the result: drop the argument's copy.
  (func (export "cabi_post_eventrouter:classify/classifier@1.0.0#classify") (param $ret i32)
    (global.set $heap (i32.const 1024)))
)
