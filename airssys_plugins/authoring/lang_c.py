"""C skeletons: the canonical ABI written out by hand, for clang's ``wasm32`` target.

Three files: ``bindings.h`` (the WIT types as C types, one prototype per hook),
``bindings.c`` (memory helpers, ``cabi_realloc`` and one exported wrapper per hook that
lifts the flat arguments, calls the author's function and lowers its result) and
``guest.c`` (the author's functions, stubbed). No libc: ``-nostdlib``, a bump allocator
reset after every call.

The C layout of every generated type equals its canonical-ABI memory layout (``bool``
is one byte, a string is ``{ptr, len}``, an option is ``{bool, T}``, a variant is
``{tag, union}``), so results that travel through memory are stored as plain structs.
Parameters travel flattened; a flattened variant or result would need bit casts between
joined core types, so those are refused as parameters (they are fine inside a list and
as results).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Final

from ..contract import wit as _wit
from ..contract.mapping import Contract, HookContract
from . import abi as _abi
from .common import ScaffoldError, hook_comment, points_to_memory, snake, zero_description

__all__ = ["SUPPORTED_TYPES", "c_files"]

#: For the generated README and error messages.
SUPPORTED_TYPES: Final = (
    "bool, s8-s64, u8-u64, f32, f64, char, string, list<T>, option<T>, tuple<...>, records, "
    "enums and flags (up to 32) anywhere; variant and result only as a result or inside a "
    "list (not as a flattened parameter)"
)

# C keywords, and names the bindings define: a hook or field named so gets a trailing "_".
_C_RESERVED: Final = frozenset(
    {
        *("auto", "break", "case", "char", "const", "continue", "default", "do", "double"),
        *("else", "enum", "extern", "float", "for", "goto", "if", "inline", "int", "long"),
        *("register", "restrict", "return", "short", "signed", "sizeof", "static", "struct"),
        *("switch", "typedef", "union", "unsigned", "void", "volatile", "while", "bool"),
        *("true", "false", "_Bool", "_Complex", "_Imaginary", "main", "memcpy", "memset"),
        *("strlen", "cabi_realloc"),
    }
)
_PRIM_C: Final = {
    "bool": "bool",
    "u8": "uint8_t",
    "s8": "int8_t",
    "u16": "uint16_t",
    "s16": "int16_t",
    "u32": "uint32_t",
    "s32": "int32_t",
    "u64": "uint64_t",
    "s64": "int64_t",
    "f32": "float",
    "f64": "double",
    "char": "uint32_t",
    "string": "guest_string_t",
}
_FLAT_C: Final = {"i32": "int32_t", "i64": "int64_t", "f32": "float", "f64": "double"}
_INT_C: Final = {1: "uint8_t", 2: "uint16_t", 4: "uint32_t"}


def c_ident(name: str) -> str:
    ident = snake(name)
    return f"{ident}_" if ident in _C_RESERVED or ident.startswith("guest_") else ident


class _Types:
    """C names for WIT types; definitions collected in dependency order."""

    def __init__(self) -> None:
        self.defs: list[str] = []
        self._done: set[str] = set()

    def mangle(self, t: _wit.WitType | None, scope: str) -> str:
        if t is None:
            return "void"
        if isinstance(t, _wit.Prim):
            return t.name
        if isinstance(t, _wit.ListT):
            return f"list_{self.mangle(t.element, scope)}"
        if isinstance(t, _wit.OptionT):
            return f"option_{self.mangle(t.inner, scope)}"
        if isinstance(t, _wit.TupleT):
            return f"tuple{len(t.elements)}_" + "_".join(self.mangle(e, scope) for e in t.elements)
        if isinstance(t, _wit.ResultT):
            return f"result_{self.mangle(t.ok, scope)}_{self.mangle(t.err, scope)}"
        if isinstance(t, _wit.Unsupported):
            raise ScaffoldError(f"{t.description} cannot be used in a C skeleton")
        return f"{snake(scope)}_{snake(t.name)}"

    def name(self, t: _wit.WitType, scope: str) -> str:
        """The C type of ``t`` (defining it first if needed)."""
        if isinstance(t, _wit.Prim):
            return _PRIM_C[t.name]
        key = self.mangle(t, scope)
        c_name = (
            f"{key}_t"
            if isinstance(t, _wit.RecordT | _wit.VariantT | _wit.EnumT | _wit.FlagsT)
            else f"guest_{key}_t"
        )
        if key not in self._done:
            self._done.add(key)
            self.defs.append(self._define(t, c_name, scope))
        return c_name

    def _define(self, t: _wit.WitType, c_name: str, scope: str) -> str:
        wit = _wit.render_type_expanded(t)
        head = f"/* {wit} */\n"
        if isinstance(t, _wit.ListT):
            elem = self.name(t.element, scope)
            return f"{head}typedef struct {{ {elem} *ptr; size_t len; }} {c_name};\n"
        if isinstance(t, _wit.OptionT):
            inner = self.name(t.inner, scope)
            return f"{head}typedef struct {{ bool is_some; {inner} val; }} {c_name};\n"
        if isinstance(t, _wit.TupleT):
            members = " ".join(f"{self.name(e, scope)} f{i};" for i, e in enumerate(t.elements))
            return f"{head}typedef struct {{ {members} }} {c_name};\n"
        if isinstance(t, _wit.RecordT):
            members = "".join(f"  {self.name(ft, scope)} {c_ident(n)};\n" for n, ft in t.fields)
            return f"{head}typedef struct {{\n{members}}} {c_name};\n"
        macro = c_name[: -len("_t")].upper()
        if isinstance(t, _wit.EnumT):
            int_c = _INT_C[_abi.size(t)]
            consts = "".join(
                f"#define {macro}_{snake(n).upper()} {i}\n" for i, n in enumerate(t.names)
            )
            return f"{head}typedef {int_c} {c_name};\n{consts}"
        if isinstance(t, _wit.FlagsT):
            if len(t.names) > 32:
                raise ScaffoldError(f"flags {t.name} has more than 32 members")
            int_c = _INT_C[_abi.size(t)]
            consts = "".join(
                f"#define {macro}_{snake(n).upper()} ((({int_c})1) << {i})\n"
                for i, n in enumerate(t.names)
            )
            return f"{head}typedef {int_c} {c_name};\n{consts}"
        if isinstance(t, _wit.ResultT):
            members = "".join(
                f"{self.name(p, scope)} {label}; "
                for label, p in (("ok", t.ok), ("err", t.err))
                if p is not None
            )
            union = f" union {{ {members}}} val;" if members else ""
            return f"{head}typedef struct {{ bool is_err;{union} }} {c_name};\n"
        if isinstance(t, _wit.VariantT):
            tag_c = _INT_C[_abi.discriminant_size(len(t.cases))]
            members = "".join(
                f"{self.name(p, scope)} {c_ident(n)}; " for n, p in t.cases if p is not None
            )
            union = f" union {{ {members}}} val;" if members else ""
            consts = "".join(
                f"#define {macro}_{snake(n).upper()} {i}\n" for i, (n, _) in enumerate(t.cases)
            )
            return f"{head}typedef struct {{ {tag_c} tag;{union} }} {c_name};\n{consts}"
        raise ScaffoldError(f"{wit} cannot be used in a C skeleton")


def _check_param(hook: HookContract, param: str, t: _wit.WitType, top: _wit.WitType) -> None:
    if isinstance(t, _wit.VariantT | _wit.ResultT):
        raise ScaffoldError(
            f"hook {hook.name!r}, parameter {param!r}: the C skeleton generator cannot pass "
            f"{_wit.render_type_expanded(top)} as a parameter (a variant or result outside a "
            f"list). C skeletons support: {SUPPORTED_TYPES}. Use --lang wat, python or js, "
            "or change the hookspec",
            hook=hook.name,
        )
    if isinstance(t, _wit.Unsupported):
        raise ScaffoldError(f"hook {hook.name!r}: {t.description} is not supported")
    if isinstance(t, _wit.OptionT):
        _check_param(hook, param, t.inner, top)
    elif isinstance(t, _wit.RecordT):
        for _, ft in t.fields:
            _check_param(hook, param, ft, top)
    elif isinstance(t, _wit.TupleT):
        for et in t.elements:
            _check_param(hook, param, et, top)
    # list<T>: elements travel in memory, where every type has a C layout


def _lift(t: _wit.WitType, flat: Iterator[str], types: _Types, scope: str) -> str:
    """A C expression building a value of ``t`` from the next flat arguments."""
    if isinstance(t, _wit.Prim):
        if t.name == "string":
            ptr, length = next(flat), next(flat)
            return f"(guest_string_t){{ {_ptr(ptr, 'uint8_t')}, {_len(length)} }}"
        value = next(flat)
        if t.name == "bool":
            return f"({value} != 0)"
        return f"({_PRIM_C[t.name]}){value}"
    c_name = types.name(t, scope)
    if isinstance(t, _wit.ListT):
        ptr, length = next(flat), next(flat)
        elem = types.name(t.element, scope)
        return f"({c_name}){{ {_ptr(ptr, elem)}, {_len(length)} }}"
    if isinstance(t, _wit.EnumT | _wit.FlagsT):
        return f"({c_name}){next(flat)}"
    if isinstance(t, _wit.OptionT):
        tag = next(flat)
        return f"({c_name}){{ {tag} != 0, {_lift(t.inner, flat, types, scope)} }}"
    if isinstance(t, _wit.RecordT | _wit.TupleT):
        members = [ft for _, ft in t.fields] if isinstance(t, _wit.RecordT) else t.elements
        return f"({c_name}){{ " + ", ".join(_lift(m, flat, types, scope) for m in members) + " }"
    raise AssertionError(f"unexpected parameter type {t}")  # refused by _check_param


def _ptr(flat: str, target: str) -> str:
    return f"({target} *)(uintptr_t)(uint32_t){flat}"


def _len(flat: str) -> str:
    return f"(size_t)(uint32_t){flat}"


def _lower_single(t: _wit.WitType, expr: str) -> str:
    """The single flat value of a result that flattens to one core value."""
    if isinstance(t, _wit.Prim):
        flat = _abi.flatten(t)[0]
        return expr if flat in ("f32", "f64") else f"({_FLAT_C[flat]}){expr}"
    if isinstance(t, _wit.EnumT | _wit.FlagsT):
        return f"(int32_t){expr}"
    if isinstance(t, _wit.RecordT):
        return _lower_single(t.fields[0][1], f"{expr}.{c_ident(t.fields[0][0])}")
    if isinstance(t, _wit.TupleT):
        return _lower_single(t.elements[0], f"{expr}.f0")
    if isinstance(t, _wit.ResultT):
        return f"(int32_t){expr}.is_err"
    if isinstance(t, _wit.VariantT):
        return f"(int32_t){expr}.tag"
    raise AssertionError(f"{t} does not flatten to one value")


def _zero(t: _wit.WitType | None, types: _Types, scope: str) -> str:
    if t is None:
        return ""
    if isinstance(t, _wit.Prim) and t.name != "string":
        return {"f32": "0.0f", "f64": "0.0", "bool": "false"}.get(t.name, "0")
    if isinstance(t, _wit.EnumT | _wit.FlagsT):
        return "0"
    return f"({types.name(t, scope)}){{0}}"


def c_files(contract: Contract, hooks: list[str]) -> dict[str, str]:
    """``bindings.h``, ``bindings.c`` and ``guest.c`` for ``hooks`` of ``contract``."""
    types = _Types()
    protos: list[str] = []
    wrappers: list[str] = []
    stubs: list[str] = []
    for hook_name in hooks:
        hook = contract.hooks[hook_name]
        scope = _wit.kebab(hook.name)
        sig = hook.signature
        for (_, t), param in zip(sig.params, hook.argnames, strict=True):
            _check_param(hook, param, t, t)
        func = c_ident(hook.name)
        ret_c = "void" if sig.result is None else types.name(sig.result, scope)
        params_c = (
            ", ".join(
                f"{types.name(t, scope)} {c_ident(p)}"
                for (_, t), p in zip(sig.params, hook.argnames, strict=True)
            )
            or "void"
        )
        proto = f"{ret_c} {func}({params_c})"
        comment = hook_comment(hook, " * ", extra=_result_note(hook))
        protos.append(f"/*\n{comment} */\n{proto};\n")
        zero = _zero(sig.result, types, scope)
        if sig.result is None:
            ret_line = "  return;\n"
        elif isinstance(sig.result, _wit.Prim):
            ret_line = f"  return {zero};\n"
        else:
            ret_line = f"  return {zero}; /* {zero_description(sig.result)} */\n"
        stubs.append(
            f"/*\n{comment} */\n{proto} {{\n"
            + "  /* TODO: implement this hook. */\n"
            + ret_line
            + "}\n"
        )
        wrappers.append(_wrapper(hook, func, types, scope))
    header = _HEADER.format(types="\n".join(types.defs), protos="\n".join(protos))
    bindings = _BINDINGS.format(wrappers="\n".join(wrappers))
    guest = _GUEST_HEAD + "\n" + "\n".join(stubs)
    return {"bindings.h": header, "bindings.c": bindings, "guest.c": guest}


def _result_note(hook: HookContract) -> str:
    if not points_to_memory(hook.signature.result):
        return ""
    return "Strings and lists you return must point into static data or guest_alloc() memory."


def _wrapper(hook: HookContract, func: str, types: _Types, scope: str) -> str:
    sig = hook.signature
    export = f"{hook.binding.interface}#{hook.binding.function}"
    flat_in = _abi.flat_params(sig)
    lines: list[str] = []
    if flat_in is None:  # too many: one pointer to a tuple of the parameters in memory
        members = " ".join(
            f"{types.name(t, scope)} {c_ident(p)};"
            for (_, t), p in zip(sig.params, hook.argnames, strict=True)
        )
        params_c = "int32_t args_ptr"
        lines.append(f"  struct {{ {members} }} *args = (void *)(uintptr_t)(uint32_t)args_ptr;\n")
        call_args = ", ".join(f"args->{c_ident(p)}" for p in hook.argnames)
    else:
        names = [f"arg{i}" for i in range(len(flat_in))]
        params_c = ", ".join(f"{_FLAT_C[f]} {n}" for f, n in zip(flat_in, names, strict=True))
        flat = iter(names)
        call_args = ", ".join(_lift(t, flat, types, scope) for t in sig.param_types)
    flat_out = _abi.flat_result(sig)
    if flat_out == []:
        ret_c, post_params = "void", "void"
        lines.append(f"  {func}({call_args});\n")
    elif flat_out is not None:
        assert sig.result is not None
        ret_c = _FLAT_C[flat_out[0]]
        post_params = f"{ret_c} ret"
        lines.append(f"  {types.name(sig.result, scope)} ret = {func}({call_args});\n")
        lines.append(f"  return {_lower_single(sig.result, 'ret')};\n")
    else:
        assert sig.result is not None
        ret_c, post_params = "int32_t", "int32_t ret"
        result_c = types.name(sig.result, scope)
        lines.append(f"  static {result_c} ret_area;\n")
        lines.append(f"  ret_area = {func}({call_args});\n")
        lines.append("  return (int32_t)(uintptr_t)&ret_area;\n")
    return (
        f"/* {hook.name}: {sig.render()} */\n"
        f'__attribute__((export_name("{export}")))\n'
        f"{ret_c} guest_export_{func}({params_c or 'void'}) {{\n" + "".join(lines) + "}\n"
        f'__attribute__((export_name("cabi_post_{export}")))\n'
        f"void guest_post_{func}({post_params}) {{\n"
        + ("  (void)ret;\n" if post_params != "void" else "")
        + "  guest_reset();\n}\n"
    )


_HEADER: Final = """\
/* Generated by `airssys-plugins new`: the WIT types of this plugin's hooks as C types,
 * laid out exactly as the component model's canonical ABI lays them out in memory.
 * Regenerate it rather than editing it. Your code goes in guest.c. */
#ifndef GUEST_BINDINGS_H
#define GUEST_BINDINGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* string: UTF-8 bytes, not NUL-terminated. */
typedef struct {{ uint8_t *ptr; size_t len; }} guest_string_t;

{types}
/* Memory that lives until the host has read this call's result: the allocator is reset
 * after every call. Keep state across calls in static variables, never in this memory. */
void *guest_alloc(size_t size, size_t align);
/* A string viewing a NUL-terminated C string (no copy: for literals and static buffers). */
guest_string_t guest_string(const char *text);
/* A copy of len bytes in call memory. */
guest_string_t guest_string_copy(const uint8_t *ptr, size_t len);
/* Reset the allocator (bindings.c calls it after each call). */
void guest_reset(void);

/* No libc here (-nostdlib): these are the only library functions. */
void *memcpy(void *dest, const void *src, size_t n);
void *memset(void *dest, int c, size_t n);
size_t strlen(const char *text);

/* Your hooks (implement them in guest.c). */
{protos}
#endif
"""

_BINDINGS: Final = """\
/* Generated by `airssys-plugins new`: the canonical ABI glue between the component
 * model and the functions in guest.c. Regenerate it rather than editing it. */
#include "bindings.h"

void *memcpy(void *dest, const void *src, size_t n) {{
  __builtin_memcpy(dest, src, n); /* memory.copy (-mbulk-memory) */
  return dest;
}}

void *memset(void *dest, int c, size_t n) {{
  __builtin_memset(dest, c, n); /* memory.fill (-mbulk-memory) */
  return dest;
}}

size_t strlen(const char *text) {{
  size_t n = 0;
  while (text[n]) n++;
  return n;
}}

/* A bump allocator over the memory above the data and the stack. */
extern unsigned char __heap_base;
static uintptr_t heap_top;

void guest_reset(void) {{ heap_top = (uintptr_t)&__heap_base; }}

void *guest_alloc(size_t size, size_t align) {{
  if (!heap_top) guest_reset();
  if (align == 0) align = 1;
  uintptr_t ptr = (heap_top + align - 1) & ~(uintptr_t)(align - 1);
  uintptr_t end = ptr + size;
  uintptr_t have = (uintptr_t)__builtin_wasm_memory_size(0) * 65536;
  if (end > have && __builtin_wasm_memory_grow(0, (end - have + 65535) / 65536) == (size_t)-1)
    __builtin_trap(); /* out of memory */
  heap_top = end;
  return (void *)ptr;
}}

/* The host allocates arguments with this before each call. */
__attribute__((export_name("cabi_realloc")))
void *cabi_realloc(void *old, size_t old_size, size_t align, size_t new_size) {{
  void *ptr = guest_alloc(new_size, align);
  if (old) memcpy(ptr, old, old_size < new_size ? old_size : new_size);
  return ptr;
}}

guest_string_t guest_string(const char *text) {{
  return (guest_string_t){{ (uint8_t *)text, strlen(text) }};
}}

guest_string_t guest_string_copy(const uint8_t *ptr, size_t len) {{
  uint8_t *copy = guest_alloc(len, 1);
  memcpy(copy, ptr, len);
  return (guest_string_t){{ copy, len }};
}}

/* One export per hook: lift the flat arguments, call guest.c, lower the result. After the
 * host has copied the result out, it calls the cabi_post_ function, which frees the call's
 * memory. */
{wrappers}"""

_GUEST_HEAD: Final = """\
/* Your plugin's hooks. Each function below is one hook; fill in the bodies.
 * The types are in bindings.h; strings are {ptr, len} (UTF-8, not NUL-terminated).
 * Build: airssys-plugins build   (clang --target=wasm32 -nostdlib, then wasm-tools) */
#include "bindings.h"
"""
