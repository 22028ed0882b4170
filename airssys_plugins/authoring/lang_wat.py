"""WAT skeletons: a core module that follows the canonical ABI, ready for wasm-tools.

Every hook becomes an exported function named ``<interface>#<function>`` whose core
signature is the flattened WIT signature (named parameters such as ``$text.ptr`` and
``$text.len``). A result that does not fit one core value goes through a return area, a
fixed block of memory per hook; the stub zero-fills it, and all zero bytes are a valid
value of every WIT type (empty string, none, false, the first case...). A bump allocator
(``cabi_realloc``) serves the call and is reset by the ``cabi_post_`` export.
"""

from __future__ import annotations

from typing import Final

from ..contract import wit as _wit
from ..contract.mapping import Contract, HookContract
from . import abi as _abi
from .common import ScaffoldError, hook_comment, zero_description

__all__ = ["SUPPORTED_TYPES", "wat_module"]

SUPPORTED_TYPES: Final = (
    "every WIT type a hookspec can declare: bool, s8-s64, u8-u64, f32, f64, char, string, "
    "list<T>, option<T>, result<T, E>, tuple<...>, records, variants, enums and flags (up to "
    "32)"
)

_RET_START: Final = 16
_ZERO_CONST: Final = {"i32": "(i32.const 0)", "i64": "(i64.const 0)", "f32": "(f32.const 0)"}


def _flat_names(t: _wit.WitType, name: str) -> list[str]:
    """Names for the flat core values of ``t``, parallel to ``_abi.flatten(t)``."""
    if isinstance(t, _wit.Prim | _wit.ListT) and len(_abi.flatten(t)) == 2:
        return [f"{name}.ptr", f"{name}.len"]
    if isinstance(t, _wit.RecordT):
        return [n for fname, ft in t.fields for n in _flat_names(ft, f"{name}.{fname}")]
    if isinstance(t, _wit.TupleT):
        return [n for i, et in enumerate(t.elements) for n in _flat_names(et, f"{name}.{i}")]
    if isinstance(t, _wit.OptionT):
        return [f"{name}.is_some", *_flat_names(t.inner, f"{name}.some")]
    if _abi.cases(t) is not None:
        payload = _abi.flatten(t)[1:]
        return [f"{name}.tag", *(f"{name}.payload{i}" for i in range(len(payload)))]
    return [name]


def _layout(t: _wit.WitType, name: str, indent: str) -> str:
    rows = [
        f"{indent}  +{leaf.offset:<3} {leaf.store:<3} {leaf.name}"
        + (f"  ({leaf.note})" if leaf.note else "")
        for leaf in _abi.leaves(t, name)
    ]
    return "\n".join(rows) + "\n"


def wat_module(contract: Contract, hooks: list[str], *, plugin: str) -> str:
    """The ``guest.wat`` of a plugin implementing ``hooks`` of ``contract``."""
    funcs: list[str] = []
    ret_at = _RET_START
    for hook_name in hooks:
        hook = contract.hooks[hook_name]
        try:
            func, ret_at = _hook_func(hook, ret_at)
        except ValueError as exc:
            raise ScaffoldError(
                f"hook {hook.name!r}: {exc}; WAT skeletons support {SUPPORTED_TYPES}",
                hook=hook.name,
            ) from exc
        funcs.append(func)
    data_start = _abi.align_to(ret_at, 16)
    heap_base = _abi.align_to(data_start, 1024) + 1024
    rows = [
        (f"{_RET_START}..{data_start}", "return areas of the hooks (see each hook)"),
        (
            f"{data_start}..{heap_base}",
            f'free for your own (data (i32.const {data_start}) "...") segments',
        ),
        (
            f"{heap_base}..",
            "the call heap: $cabi_realloc hands it out (the host copies arguments there);\n"
            "it is reset after every call, so keep what must outlive a call in globals\n"
            "or in your data area",
        ),
    ]
    width = max(len(r) for r, _ in rows) + 2
    memory_map = "".join(
        f";;   {where:<{width}}" + f"\n;;   {'':<{width}}".join(what.splitlines()) + "\n"
        for where, what in rows
    )
    return _MODULE.format(
        plugin=plugin, memory_map=memory_map, heap_base=heap_base, funcs="\n".join(funcs)
    )


def _hook_func(hook: HookContract, ret_at: int) -> tuple[str, int]:
    sig = hook.signature
    export = f"{hook.binding.interface}#{hook.binding.function}"
    comment = hook_comment(hook, "  ;; ")
    flat_in = _abi.flat_params(sig)
    notes: list[str] = []
    if flat_in is None:
        params = " (param $args i32)"
        args = _wit.TupleT(sig.param_types)
        notes.append(
            "  ;; More than 16 flat parameters: $args points to them in memory, laid out as\n"
            + _layout(args, "args", "  ;;")
        )
    else:
        names = [
            n
            for (_, t), arg in zip(sig.params, hook.argnames, strict=True)
            for n in _flat_names(t, arg)
        ]
        params = "".join(f" (param ${n} {f})" for n, f in zip(names, flat_in, strict=True))
    flat_out = _abi.flat_result(sig)
    todo = "    ;; TODO: implement this hook."
    body: list[str] = [todo]
    if flat_out == []:
        result, post_params = "", ""
    elif flat_out is not None:
        assert sig.result is not None
        result = f" (result {flat_out[0]})"
        post_params = f" (param {flat_out[0]})"
        zero = _ZERO_CONST.get(flat_out[0], "(f64.const 0)")
        body = [f"{todo} The stub returns {zero_description(sig.result)}.", f"    {zero}"]
    else:
        assert sig.result is not None
        at = _abi.align_to(ret_at, max(_abi.alignment(sig.result), 8))
        nbytes = _abi.size(sig.result)
        ret_at = at + nbytes
        result, post_params = " (result i32)", " (param i32)"
        notes.append(
            "  ;; Result: return the address of the value, laid out as below; this hook's\n"
            f"  ;; return area is at {at} ({nbytes} bytes). Strings and lists it points to\n"
            "  ;; live in memory from $cabi_realloc or in your data area.\n"
            + _layout(sig.result, "result", "  ;;")
        )
        body = [
            f"{todo} The stub returns {zero_description(sig.result)}.",
            f"    (memory.fill (i32.const {at}) (i32.const 0) (i32.const {nbytes}))",
            f"    (i32.const {at})",
        ]
    func = (
        comment
        + "".join(notes)
        + f'  (func ${_wit.kebab(hook.name)} (export "{export}"){params}{result}\n'
        + "\n".join(body)
        + ("\n  )\n" if body[-1].lstrip().startswith(";;") else ")\n")
        + f'  (func (export "cabi_post_{export}"){post_params}\n'
        + "    (global.set $heap (global.get $heap_base)))\n"
    )
    return func, ret_at


_MODULE: Final = """\
;; Plugin {plugin}: a core WebAssembly module that follows the component model's canonical
;; ABI by hand. `airssys-plugins build` embeds wit/ (world `guest`) into it and makes it a
;; component with wasm-tools.
;;
;; Memory map:
{memory_map}
(module
  (memory (export "memory") 1)
  (global $heap_base i32 (i32.const {heap_base}))
  (global $heap (mut i32) (i32.const {heap_base}))

  ;; cabi_realloc(old, old_size, align, new_size) -> ptr: bump allocation, growing the
  ;; memory when needed.
  (func $cabi_realloc (export "cabi_realloc")
        (param $old i32) (param $old_size i32) (param $align i32) (param $new_size i32)
        (result i32)
    (local $ptr i32)
    (local.set $ptr
      (i32.and (i32.add (global.get $heap) (i32.sub (local.get $align) (i32.const 1)))
               (i32.sub (i32.const 0) (local.get $align))))
    (global.set $heap (i32.add (local.get $ptr) (local.get $new_size)))
    (if (i32.gt_u (global.get $heap) (i32.mul (memory.size) (i32.const 65536)))
      (then
        (if (i32.eq (i32.const -1)
              (memory.grow
                (i32.add (i32.shr_u (i32.sub (global.get $heap)
                                             (i32.mul (memory.size) (i32.const 65536)))
                                    (i32.const 16))
                         (i32.const 1))))
          (then unreachable))))
    (if (local.get $old)
      (then (memory.copy (local.get $ptr) (local.get $old)  ;; a shrink copies only new_size
                         (select (local.get $new_size) (local.get $old_size)
                                 (i32.lt_u (local.get $new_size) (local.get $old_size))))))
    (local.get $ptr))

{funcs})
"""
