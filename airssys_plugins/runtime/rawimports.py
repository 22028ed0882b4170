"""Raw imports: bytes a guest passes to a host function, read straight from its memory.

wasmtime's C API hands a host function a ``list<u8>`` as one 32-byte value per byte
(35-100 ms per MiB). In the core ABI that parameter is a pointer and a length, two
``i32``, exactly as two ``u32`` parameters are. So at load this module rewrites the
*component-level* type of every imported interface function whose parameters hold a
``list<u8>``, a ``string`` or a list of integers or floats at the top level: ``data:
list<u8>`` becomes ``data-ptr: u32, data-len: u32``; every other parameter and the result
stay. The ``canon lower`` and the core modules are untouched, so the guest's core call is
bit for bit the same (wasmtime accepts the ``memory``/``string-encoding`` options a lower
of the new type no longer needs). The host's callback (:mod:`.callbacks`) then receives
the pointer and the length and reads the bytes from the calling instance's memory with
one copy, bounds-checked (:func:`.guestmem.read_guest`).

A function with a string or a list *inside* a parameter (a record's field, a
``list<string>``, a list of records, an option or variant holding one; also a top-level
list of ``bool`` or ``char``) has every parameter rewritten to its flat core values: one
``u32``/``u64``/``f32``/``f64`` component parameter per flat slot (``p0``, ``p1``...),
or, past the canonical ABI's 16, one ``u32`` (``params``), the pointer to them stored in
memory: the lowered core signature is the same. :attr:`RawImport.types` keeps the
original parameter types; the host lifts the values itself (:class:`.rawabi.ParamLift`,
with wasmtime's checks). Such a function has no string left for wasmtime to lift, so it
may have latin1 results (below). A parameter holding what cannot be described here (a
resource handle, a type defined outside the instance type) leaves the function to the
top-level rule.

In a nested layout (jco's: the inner component lowers what it imports from the outer
one), the inner component's import types are rewritten and the outer one's alike
(:func:`import_patch` with ``require``), see :class:`.rawbytes.NestedPatch`.

Only types defined inside an imported instance type are rewritten (interface imports, not
WASI's: wasmtime implements those itself and checks their types; nor the built-in
``config``, which takes a short string only, see :data:`LEFT_AS_GIVEN`;
functions imported at the world's root keep their types: their type may be shared with
an export). Every lower of a rewritten function must name the memory the probe finds
(:mod:`.rawbytes`), and strings must be lowered as UTF-8.

Results: the host cannot call the guest's allocator during a host call (re-entrance), so
wasmtime must still write a result into guest memory, and it writes a ``list<u8>`` one
value per byte. A ``string`` it writes as one buffer, and with ``string-encoding=
latin1+utf16`` a string of code points 0-255 lands as latin1, one byte each: the layout of
a ``list<u8>`` (a pointer and a length, memory from the guest's ``cabi_realloc``). So every
``list<u8>`` of an imported function's result (at the top level, or inside a list, option,
result, tuple, record or variant defined in the imported instance type) becomes ``string``,
and that function's every ``canon lower`` gets ``string-encoding=latin1+utf16``: the
guest's core code is unchanged. :class:`RawImport.result <RawImport>` says where; the host
writes the result with ``convert.lowerer(latin1=True)`` (bytes as code points 0-255, real
strings as their UTF-8 bytes read as latin1, so the guest gets the UTF-8 it expects). The
encoding covers the whole import, so the strings the guest passes to such a function would
be lifted as latin1 too, and wasmtime lifts those only from an address aligned to 2 (the
canonical ABI's rule for latin1+utf16), which a guest's UTF-8 strings need not be: so only
a function whose every string parameter arrives raw (a pointer and a length at the top
level, or every parameter flat, as ``http.fetch``'s request) gets latin1 results; one
with a string inside a parameter left to wasmtime keeps its results as given. A type on
a rewritten result's path is rewritten in place, so only when nothing else (a parameter, a
result left as it is, the component outside the instance type) names it; a type not
defined in the instance type
(``use``d from another interface) declines.
Anything not understood declines (None): the function then crosses element by element.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any, Final

from .. import _attrs as attrs
from .. import _log as logging
from ..contract import wit
from ..policy.capabilities import HOST_PACKAGE
from . import relift as _r
from .plans import (
    ELEMENTS,
    IMPORT_PLAN_VERSION,
    ImportPatch,
    Mask,
    RawImport,
    decode_import_patch,
    encode_import_patch,
)
from .plans import KINDS as _KINDS

__all__ = [
    "AliasedTypes",
    "ELEMENTS",
    "IMPORT_PLAN_VERSION",
    "NO_SHRINK",
    "ImportPatch",
    "RawImport",
    "decode_import_patch",
    "encode_import_patch",
    "import_patch",
    "imported_instances",
    "original_sig",
]

log = logging.getLogger("airssys_plugins.runtime")


#: Imported interfaces left as given besides WASI's: the built-in ``config``, whose
#: functions take one short string (a key). A rewritten component's every new instance has
#: its memory found (two probe calls and two kernel reads, about 90 µs), more than such a
#: string ever costs element by element. ``log`` is rewritten: its ``list<field>`` would
#: be lifted by wasmtime before the host sees it, about 40 times the guest memory it
#: names (security.md, "Host functions' arguments").
LEFT_AS_GIVEN: Final = (f"{HOST_PACKAGE}/config@",)

#: Guests whose ``cabi_realloc`` refuses to move or shrink a block (componentize-py's
#: asserts ``old_ptr == NULL``; its trap message then needs stderr, mid-lowering, and the
#: call traps): wasmtime shrinks the block it wrote a non-ASCII latin1 string into, so
#: their results are left as given. Found by their runtime module's name.
NO_SHRINK: Final = (b"componentize_py_runtime",)

_STRING: Final = 0x73
_U8: Final = 0x7D
_LATIN1_UTF16: Final = b"\x02"  # the canon option string-encoding=latin1+utf16
_U32: Final = 0x79

_WIT_NAMES: Final = {
    0x7E: "s8", 0x7D: "u8", 0x7C: "s16", 0x7B: "u16", 0x7A: "s32", 0x79: "u32",
    0x78: "s64", 0x77: "u64", 0x76: "f32", 0x75: "f64",
}  # fmt: skip


# ------------------------------------------------------------------ reading


def _skip_deftype(r: _r._Reader, depth: int = 0) -> None:
    """Skip one component deftype (any form this reader knows); _Unsupported otherwise."""
    if depth > 16:
        raise _r._Unsupported("type too deep")
    b = r.byte()
    if b in _r._PRIMS:
        return
    if b in (0x70, 0x6B):
        r.valtype()
    elif b == 0x67:  # fixed-size list
        r.valtype()
        r.u32()
    elif b == 0x6F:
        for _ in range(r.u32()):
            r.valtype()
    elif b == 0x6A:
        r.casetype()
        r.casetype()
    elif b == 0x72:
        for _ in range(r.u32()):
            r.name()
            r.valtype()
    elif b == 0x71:
        for _ in range(r.u32()):
            r.name()
            r.casetype()
            if r.byte() != 0x00:
                raise _r._Unsupported("variant refines")
    elif b in (0x6D, 0x6E):
        for _ in range(r.u32()):
            r.name()
    elif b in (0x69, 0x68):
        r.u32()
    elif b in (0x66, 0x65):  # stream, future
        if r.byte() == 0x01:
            r.valtype()
    elif b == 0x3F:
        if r.byte() != 0x7F:
            raise _r._Unsupported("resource rep")
        if r.byte() == 0x01:
            r.u32()
    elif b == 0x40:
        for _ in range(r.u32()):
            r.name()
            r.valtype()
        kind = r.byte()
        if kind == 0x00:
            r.valtype()
        elif not (kind == 0x01 and r.byte() == 0x00):
            raise _r._Unsupported("named results")
    elif b in (0x41, 0x42):
        for _ in range(r.u32()):
            _skip_decl(r, depth + 1)
    else:
        raise _r._Unsupported(f"type opcode 0x{b:02x}")


def _read_alias(r: _r._Reader) -> tuple[int, int, int, str | None]:
    """One alias: its sort, its target (0x00 an instance export, 0x01 a core instance
    export, 0x02 outer), the instance and the export name (outer: the count and None)."""
    sort = r.byte()
    if sort == 0x00:
        r.byte()
    target = r.byte()
    if target == 0x02:
        count = r.u32()
        r.u32()
        return sort, target, count, None
    if target in (0x00, 0x01):
        return sort, target, r.u32(), r.name()
    raise _r._Unsupported("alias target")


def _skip_alias(r: _r._Reader) -> int:
    return _read_alias(r)[0]


def _skip_decl(r: _r._Reader, depth: int) -> None:
    kind = r.byte()
    if kind == 0x01:
        _skip_deftype(r, depth)
    elif kind == 0x02:
        _skip_alias(r)
    elif kind in (0x03, 0x04):
        r.extern_name()
        _r._externdesc(r)
    else:
        raise _r._Unsupported("declaration kind")


#: Every parameter of a function passed as its flat core values: the parameters' type
#: descriptions, the core values' types, whether a string is among them.
_Flat = tuple[tuple[object, ...], tuple[int, ...], bool]

#: One imported function's rewrite: its original parameter names, raw element codes,
#: result mask and flat parameters (or None).
_Found = tuple[tuple[str, ...], tuple[int | None, ...], Mask, _Flat | None]


#: Deftypes holding neither a string nor a list (enum, flags, own, borrow, resource).
_PLAIN: Final = frozenset({0x6D, 0x6E, 0x69, 0x68, 0x3F})
#: The kinds of those as :class:`_Decl` reads them.
_PLAIN_KINDS: Final = frozenset({"plain", "enum", "flags"})

#: Primitive value types by opcode, as WIT names them.
_PRIM_NAMES: Final = {
    0x7F: "bool", 0x7E: "s8", 0x7D: "u8", 0x7C: "s16", 0x7B: "u16", 0x7A: "s32",
    0x79: "u32", 0x78: "s64", 0x77: "u64", 0x76: "f32", 0x75: "f64", 0x74: "char",
    0x73: "string",
}  # fmt: skip
#: A flat core value's type (rawabi's codes) -> the component type of a parameter
#: holding it: u32, u64, f32, f64.
_FLAT_PARAM: Final = {0x7F: 0x79, 0x7E: 0x77, 0x7D: 0x76, 0x7C: 0x75}


@attrs.define
class _Decl:
    """One declaration of an instance type: its bytes ``[start, end)``, and for a type
    the deftype decoded (``kind``: a :data:`_KINDS` value, "func", "eq" (an exported type:
    ``parts[0]`` is the type it equals), "plain", or "opaque": unknown here)."""

    start: int
    end: int
    index: int | None = None  # the type index it defines
    kind: str = ""
    parts: list[_r.ValType | None] = attrs.Factory(list)  # what it is made of
    names: list[str] = attrs.Factory(list)  # record fields, variant cases, exported name
    params: list[tuple[str, _r.ValType]] = attrs.Factory(list)
    result: _r.ValType | None = None
    export: tuple[str, int] | None = None  # a function export: (name, its type index)


def _read_decls(data: bytes, r: _r._Reader) -> tuple[list[_Decl], dict[int, _Decl]]:
    decls: list[_Decl] = []
    types: dict[int, _Decl] = {}
    n_types = 0
    for _ in range(r.u32()):
        d = _Decl(r.pos, r.pos)
        kind = r.byte()
        if kind == 0x01:
            d.index = n_types
            b = data[r.pos]
            if b in _KINDS:
                r.pos += 1
                d.kind = _KINDS[b]
                if b in (0x70, 0x6B):
                    d.parts = [r.valtype()]
                elif b == 0x6A:
                    d.parts = [r.casetype(), r.casetype()]
                elif b == 0x6F:
                    d.parts = [r.valtype() for _ in range(r.u32())]
                elif b == 0x72:
                    for _ in range(r.u32()):
                        d.names.append(r.name())
                        d.parts.append(r.valtype())
                else:
                    for _ in range(r.u32()):
                        d.names.append(r.name())
                        d.parts.append(r.casetype())
                        if r.byte() != 0x00:
                            raise _r._Unsupported("variant refines")
            elif b == 0x40:
                r.pos += 1
                d.kind = "func"
                d.params = [(r.name(), r.valtype()) for _ in range(r.u32())]
                if r.byte() == 0x00:
                    d.result = r.valtype()
                elif r.byte() != 0x00:
                    raise _r._Unsupported("named results")
            elif b in (0x6E, 0x6D):  # flags, enum: their names (a parameter's type)
                r.pos += 1
                d.kind = "flags" if b == 0x6E else "enum"
                d.names = [r.name() for _ in range(r.u32())]
            else:
                d.kind = "plain" if b in _PLAIN else "opaque"
                _skip_deftype(r)
            types[n_types] = d
            n_types += 1
        elif kind == 0x02:
            if _skip_alias(r) == 0x03:
                d.index, d.kind = n_types, "opaque"
                types[n_types] = d
                n_types += 1
        elif kind == 0x04:
            name = r.extern_name()
            desc = r.pos
            sort = r.byte()
            if sort == 0x01:
                d.export = (name, r.u32())
            else:
                r.pos = desc
                if _r._externdesc(r) == 0x03:
                    d.index, d.kind = n_types, "opaque"
                    r2 = _r._Reader(data, desc + 1, r.pos)
                    if r2.byte() == 0x00:  # (eq N): the same type, named
                        d.kind, d.parts = "eq", [("ref", r2.u32())]
                    d.names = [name]
                    types[n_types] = d
                    n_types += 1
        else:
            raise _r._Unsupported("instance declaration")
        d.end = r.pos
        decls.append(d)
    return decls, types


class _Types:
    """Questions about the value types of one instance type."""

    def __init__(self, types: dict[int, _Decl]):
        self.types = types

    def base(self, vt: _r.ValType | None) -> _Decl | None:
        """The definition ``vt`` names, past exported names; None for a primitive."""
        ref: object = vt
        for _ in range(32):
            if not isinstance(ref, tuple):
                return None
            d = self.types.get(ref[1]) if isinstance(ref[1], int) else None
            if d is None:
                break
            if d.kind != "eq":
                return d
            ref = d.parts[0]
        raise _r._Unsupported("unknown type")

    def check_size(self, vts: list[_r.ValType | None], most: int = _r.MOST_TYPE_NODES) -> int:
        """The nodes ``vts`` expand to; _Unsupported past ``most`` (see
        :func:`.relift.count_type_nodes`)."""

        def children(vt: _r.ValType) -> tuple[int, list[Any]] | None:
            d = self.base(vt)
            return None if d is None or d.index is None else (d.index, list(d.parts))

        return _r.count_type_nodes(children, vts, most)

    def mask(self, vt: _r.ValType | None, path: set[int], depth: int = 0) -> Mask:
        """Where ``vt`` holds a ``list<u8>`` (:data:`Mask`); each definition holding one
        (to be rewritten) is added to ``path``. _Unsupported for an unknown type."""
        if depth > 32:
            raise _r._Unsupported("type too deep")
        if vt is None or isinstance(vt, int):
            return None
        d = self.base(vt)
        assert d is not None
        if d.kind in _PLAIN_KINDS:
            return None
        if d.kind not in _KINDS.values():
            raise _r._Unsupported("a result of a type not known here")
        if d.kind == "list" and d.parts[0] == _U8:
            return True
        masks = [self.mask(c, path, depth + 1) for c in d.parts]
        if all(m is None for m in masks):
            return None
        assert d.index is not None
        path.add(d.index)
        return (d.kind, *masks)

    def holds_string(self, vt: _r.ValType | None, depth: int = 0, lists: bool = False) -> bool:
        """Whether a value of ``vt`` can hold a ``string`` (``lists``: or a list); True
        where it cannot tell (a type defined outside the instance type, or one not known
        here)."""
        if depth > 32:
            return True
        if vt is None or isinstance(vt, int):
            return vt == _STRING
        try:
            d = self.base(vt)
        except _r._Unsupported:
            return True
        if d is None or d.kind in _PLAIN_KINDS:
            return False
        if d.kind not in _KINDS.values() or (lists and d.kind == "list"):
            return True
        return any(self.holds_string(c, depth + 1, lists) for c in d.parts)

    def describe(self, vt: _r.ValType | None, depth: int = 0) -> object:
        """``vt`` as :attr:`RawImport.types` describes a parameter's type (named types by
        the name the instance type exports them under); _Unsupported for a handle, a
        type defined elsewhere or anything not known here."""
        if depth > 32:
            raise _r._Unsupported("type too deep")
        if isinstance(vt, int):
            if vt not in _PRIM_NAMES:
                raise _r._Unsupported(f"value type 0x{vt:02x}")
            return _PRIM_NAMES[vt]
        if vt is None:
            raise _r._Unsupported("no type")
        named = self.types.get(vt[1]) if isinstance(vt[1], int) else None
        name = named.names[0] if named is not None and named.kind == "eq" else ""
        d = self.base(vt)
        if d is None:
            raise _r._Unsupported("unknown type")

        def of(c: _r.ValType | None) -> object:
            return None if c is None else self.describe(c, depth + 1)

        if d.kind in ("list", "option"):
            return (d.kind, of(d.parts[0]))
        if d.kind == "result":
            return ("result", of(d.parts[0]), of(d.parts[1]))
        if d.kind == "tuple":
            return ("tuple", tuple(of(c) for c in d.parts))
        if d.kind in ("record", "variant"):
            return (d.kind, name, tuple((n, of(c)) for n, c in zip(d.names, d.parts, strict=True)))
        if d.kind in ("enum", "flags"):
            return (d.kind, name, tuple(d.names))
        raise _r._Unsupported(f"a parameter of a {d.kind} type")


class AliasedTypes:
    """A component root's types as :mod:`.relift` decodes them (``c.types``), and the
    types its functions name through an imported instance's exports: wit-component
    aliases the records, variants, enums and flags an exported interface uses from an
    imported one. Those are read from the imported instance's type and expanded into
    relift's form with no index left, each definition once (a definition named twice is
    one object: walks count it twice, bounded by :func:`.relift.check_type_size`)."""

    def __init__(self, c: _r._Component, data: bytes):
        self.c = c
        self.data = data
        self.scopes: dict[int, _Types] = {}
        self.expanded: dict[tuple[int, int], object] = {}

    def resolve(self, t: _r.ValType | None) -> object:
        """``t``'s definition: a primitive, or a decoded definition (its parts indices
        of the root, or, for an aliased one, definitions themselves); _Unsupported when
        it is not known here."""
        if not isinstance(t, tuple) or t[0] != "ref":
            return t  # a primitive, None, or a definition expanded from an instance type
        c = self.c
        index = t[1]
        assert isinstance(index, int)
        for _ in range(32):
            if index in c.types:
                return c.types[index]
            if index not in c.type_equals:
                break
            index = c.type_equals[index]
        alias = c.type_aliases.get(index)
        if alias is None:
            raise _r._Unsupported("type not decoded")
        return self._aliased(*alias)

    def imported(self, index: int) -> bool:
        """Whether root type ``index`` is an alias of an imported instance's type export
        (a root export's function type may name it as it is)."""
        alias = self.c.type_aliases.get(index)
        return alias is not None and alias[0] in self.c.instance_imports

    def _aliased(self, instance: int, name: str) -> object:
        type_index = self.c.instance_imports.get(instance)
        at = None if type_index is None else self.c.instance_type_at.get(type_index)
        if type_index is None or at is None:
            raise _r._Unsupported("a type of an instance not imported at the root")
        types = self.scopes.get(type_index)
        if types is None:  # (read within its type section, as relift's reader is bounded)
            _, table = _read_decls(self.data, _r._Reader(self.data, at[0] + 1, at[1]))
            types = self.scopes[type_index] = _Types(table)
        for d in types.types.values():
            if d.kind == "eq" and d.names == [name] and d.index is not None:
                return self._expand(type_index, types, ("ref", d.index), 0)
        raise _r._Unsupported(f"instance type exports no type {name!r}")

    def _expand(self, scope: int, types: _Types, vt: _r.ValType | None, depth: int) -> object:
        if vt is None or isinstance(vt, int):
            return vt
        if depth > 32:
            raise _r._Unsupported("type too deep")
        d = types.base(vt)
        if d is None or d.index is None:
            raise _r._Unsupported("unknown type")
        key = (scope, d.index)
        made = self.expanded.get(key)
        if made is not None:
            return made
        if d.kind == "opaque" and self.data[d.start + 1] in _r._PRIMS:
            return self.data[d.start + 1]  # a primitive under a name (`type t = string`)
        parts = [self._expand(scope, types, p, depth + 1) for p in d.parts]
        kind = d.kind
        if kind in ("list", "option"):
            made = (kind, parts[0])
        elif kind == "result":
            made = ("result", parts[0], parts[1])
        elif kind == "tuple":
            made = ("tuple", tuple(parts))
        elif kind in ("record", "variant"):
            made = (kind, tuple(zip(d.names, parts, strict=True)))
        elif kind in ("enum", "flags"):
            made = (kind, tuple(d.names))
        else:
            raise _r._Unsupported(f"a {kind} type in an instance type")
        self.expanded[key] = made
        return made


def _refs(decls: list[_Decl], t: _Types) -> dict[int, set[tuple[str, int]]]:
    """Per type definition: who names it (("type", index) or ("param"/"result", func
    type index)), exported names followed to what they name."""
    refs: dict[int, set[tuple[str, int]]] = {}

    def note(vt: _r.ValType | None, who: tuple[str, int]) -> None:
        try:
            d = t.base(vt)
        except _r._Unsupported:
            return
        if d is not None and d.index is not None:
            refs.setdefault(d.index, set()).add(who)

    for d in decls:
        if d.index is None:
            continue
        if d.kind == "func":
            for _, vt in d.params:
                note(vt, ("param", d.index))
            note(d.result, ("result", d.index))
        elif d.kind in _KINDS.values():
            for c in d.parts:
                note(c, ("type", d.index))
    return refs


def _rewrite_instance_type(
    data: bytes,
    r: _r._Reader,
    strings: bool,
    results: Collection[str] = (),
    aliased: Collection[str] = (),
    budget: list[int] | None = None,
) -> tuple[bytes, dict[str, _Found]]:
    """Read the instance type at ``r`` (after its 0x42): its bytes rewritten, and per
    rewritten function export its original parameter names, raw element codes and
    result mask. ``results``: the functions whose ``list<u8>`` results may become
    strings (their lowers allow latin1); ``aliased``: its type names the component
    uses outside it (types it defines there are never rewritten); ``budget``: the type
    nodes the component's instance types may still expand to, spent here (see
    :class:`.relift.TypeBudget`)."""
    decls, types = _read_decls(data, r)
    t = _Types(types)
    local_types: dict[int, tuple[object, ...]] = {
        i: ("list", d.parts[0]) for i, d in types.items() if d.kind == "list"
    }
    names_of: dict[int, list[str]] = {}
    for d in decls:
        if d.export is not None:
            names_of.setdefault(d.export[1], []).append(d.export[0])
    params: dict[int, tuple[bytes, tuple[str, ...], tuple[int | None, ...]] | None] = {}
    flats: dict[int, _Flat] = {}
    masks: dict[int, tuple[Mask, set[int]]] = {}
    left = [_r.MOST_COMPONENT_TYPE_NODES] if budget is None else budget
    for i, d in types.items():
        if d.kind != "func" or i not in names_of:
            continue
        try:
            vts = [*(vt for _, vt in d.params), d.result]
            left[0] -= t.check_size(vts, min(_r.MOST_TYPE_NODES, left[0]))
        except _r._Unsupported:
            continue  # left as given (wasmtime refuses such types, or lifts them)
        params[i] = _rewrite_params(d.params, local_types, strings)
        flat = _flat_params(d.params, params[i], t)
        if flat is not None:
            params[i] = (flat[0], (), (None,) * len(d.params))
            flats[i] = flat[1]
        if d.result is None or not all(n in results for n in names_of[i]):
            continue
        # The encoding covers the lower's parameters too, and wasmtime lifts a string
        # under latin1+utf16 only from an address aligned to 2 (the canonical ABI's
        # load_string), which a guest's UTF-8 strings need not be (jco's flavorful
        # fixture trapped so): only a function whose every string parameter arrives raw,
        # a pointer and a length at the top level, may get latin1 results.
        rewritten = params[i]
        codes_ = rewritten[2] if rewritten is not None else (None,) * len(d.params)
        if i not in flats and any(
            c is None and t.holds_string(vt) for (_, vt), c in zip(d.params, codes_, strict=True)
        ):
            continue
        try:
            path: set[int] = set()
            mask = t.mask(d.result, path)
        except _r._Unsupported:
            continue
        if mask is not None:
            masks[i] = (mask, path)
    # A definition on a rewritten result's path is rewritten in place: only when nothing
    # but rewritten results (and definitions so rewritten) names it.
    refs = _refs(decls, t)
    named = {i for i, d in types.items() if d.kind == "eq" and d.names[0] in aliased}
    outside = set()
    for i in named:
        base = t.base(("ref", i))
        if base is not None and base.index is not None:
            outside.add(base.index)
    while True:
        path_types = set().union(*(p for _, p in masks.values()))
        allowed = {("result", f) for f in masks} | {("type", k) for k in path_types}
        bad = {k for k in path_types if k in outside or not refs.get(k, set()) <= allowed}
        if not bad:
            break
        masks = {f: mp for f, mp in masks.items() if not mp[1] & bad}
    # the bytes, rewritten
    out = bytearray(_r._leb(len(decls)))
    found: dict[str, _Found] = {}
    for d in decls:
        if d.index in path_types:
            out += _encode_rewritten(d, t)
        elif d.kind == "func" and (params.get(d.index) or d.index in masks):  # type: ignore[arg-type]
            assert d.index is not None
            new = params[d.index]
            mask = masks[d.index][0] if d.index in masks else None
            encoded = new[0] if new is not None else _encode_params(d.params)
            if new is not None:
                codes: tuple[int | None, ...] = new[2]
            else:
                codes = (None,) * len(d.params)
            result = _STRING if mask is True else d.result
            out += b"\x01\x40" + encoded + _encode_result(result)
            for name in names_of[d.index]:
                found[name] = (tuple(n for n, _ in d.params), codes, mask, flats.get(d.index))
        else:
            out += data[d.start : d.end]
    return bytes(out), found


def _encode_params(params: list[tuple[str, _r.ValType]]) -> bytes:
    return _r._leb(len(params)) + b"".join(_r._name(n) + _valtype(vt) for n, vt in params)


def _encode_result(vt: _r.ValType | None) -> bytes:
    return b"\x01\x00" if vt is None else b"\x00" + _valtype(vt)


def _encode_rewritten(d: _Decl, t: _Types) -> bytes:
    """Definition ``d`` with every ``list<u8>`` it names directly replaced by ``string``."""

    def swap(vt: _r.ValType | None) -> _r.ValType | None:
        b = t.base(vt) if isinstance(vt, tuple) else None
        return _STRING if b is not None and b.kind == "list" and b.parts[0] == _U8 else vt

    def case(vt: _r.ValType | None) -> bytes:
        return b"\x00" if vt is None else b"\x01" + _valtype(vt)

    op = {v: k for k, v in _KINDS.items()}[d.kind]
    out = bytearray(b"\x01" + bytes([op]))
    if d.kind in ("list", "option"):
        out += _valtype(swap(d.parts[0]))  # type: ignore[arg-type]
    elif d.kind == "result":
        out += case(swap(d.parts[0])) + case(swap(d.parts[1]))
    elif d.kind == "tuple":
        out += _r._leb(len(d.parts)) + b"".join(_valtype(swap(p)) for p in d.parts)  # type: ignore[arg-type]  # fmt: skip
    elif d.kind == "record":
        out += _r._leb(len(d.parts))
        for name, vt in zip(d.names, d.parts, strict=True):
            out += _r._name(name) + _valtype(swap(vt))  # type: ignore[arg-type]
    else:
        out += _r._leb(len(d.parts))
        for name, vt in zip(d.names, d.parts, strict=True):
            out += _r._name(name) + case(swap(vt)) + b"\x00"
    return bytes(out)


def _skip_result(r: _r._Reader) -> None:
    kind = r.byte()
    if kind == 0x00:
        r.valtype()
    elif not (kind == 0x01 and r.byte() == 0x00):
        raise _r._Unsupported("named results")


def _rewrite_params(
    params: list[tuple[str, _r.ValType]],
    local_types: dict[int, tuple[object, ...]],
    strings: bool,
) -> tuple[bytes, tuple[str, ...], tuple[int | None, ...]] | None:
    codes: list[int | None] = []
    for _, t in params:
        code = None
        if t == _STRING and strings:
            code = _STRING
        elif isinstance(t, tuple) and t[0] == "ref":
            d = local_types.get(t[1])  # type: ignore[call-overload]
            element = None if d is None else d[1]
            if isinstance(element, int) and element in ELEMENTS:
                code = element
        codes.append(code)
    if all(c is None for c in codes):
        return None
    names = [n for n, _ in params]
    flat: list[bytes] = []
    taken = set(names)
    for (name, t), code in zip(params, codes, strict=True):
        if code is None:
            flat.append(_r._name(name) + _valtype(t))
            continue
        ptr, length = f"{name}-ptr", f"{name}-len"
        if ptr in taken or length in taken:
            return None
        taken.update((ptr, length))
        flat.append(_r._name(ptr) + bytes([_U32]))
        flat.append(_r._name(length) + bytes([_U32]))
    return _r._leb(len(flat)) + b"".join(flat), tuple(names), tuple(codes)


def flat_names(core: tuple[int, ...]) -> tuple[str, ...]:
    """The names of a rewritten function's parameters holding ``core`` (its flat values:
    ``p0``, ``p1``...; one pointer to them past 16: ``params``)."""
    from .rawabi import MAX_FLAT_PARAMS

    if len(core) == 1:  # (a string or list takes two: one value is the pointer)
        return ("params",)
    assert len(core) <= MAX_FLAT_PARAMS
    return tuple(f"p{k}" for k in range(len(core)))


def _flat_params(
    params: list[tuple[str, _r.ValType]],
    rewritten: tuple[bytes, tuple[str, ...], tuple[int | None, ...]] | None,
    t: _Types,
) -> tuple[bytes, _Flat] | None:
    """For a function with a string or list inside a parameter (where a pointer and a
    length at the top level do not reach it): every parameter as its flat core values,
    the encoded parameter list and what :attr:`RawImport.types` records; None when no
    parameter needs it, or one cannot be described (a handle, a type defined elsewhere):
    then wasmtime lifts what the top-level rewrite leaves."""
    codes = rewritten[2] if rewritten is not None else (None,) * len(params)
    if not any(
        c is None and t.holds_string(vt, lists=True)
        for (_, vt), c in zip(params, codes, strict=True)
    ):
        return None
    from . import rawabi  # (the flattening is the host's lifting's own)

    try:
        types = tuple(t.describe(vt) for _, vt in params)
        lift = rawabi.ParamLift([rawabi.wit_type(d) for d in types], [n for n, _ in params])
    except (_r._Unsupported, TypeError, ValueError):
        return None
    core = lift.core
    strings = any(t.holds_string(vt) for _, vt in params)
    encoded = _r._leb(len(core)) + b"".join(
        _r._name(n) + bytes([_FLAT_PARAM[c]]) for n, c in zip(flat_names(core), core, strict=True)
    )
    return encoded, (types, core, strings)


def _valtype(t: _r.ValType) -> bytes:
    if isinstance(t, int):
        return bytes([t])
    return _r._s33(t[1])  # type: ignore[arg-type]


def import_patch(
    data: bytes,
    memory: int | None = None,
    *,
    require: ImportPatch | None = None,
    only: Collection[str] | None = None,
) -> ImportPatch | None:
    """The rewritten import types of ``data`` (see the module doc), or None when there is
    nothing to rewrite or anything is not understood. ``memory``: the core memory the
    raw exports use, if any (imports lowered with another memory are left alone).
    ``require``: the patch of the inner component that lowers the imports (a nested
    layout, as jco's): the outer component's imports of the same names are rewritten
    exactly alike, without lowers of their own (None unless every one is). ``only``:
    the import names that may be rewritten (an inner component's: those its outer one
    imports too). Never raises."""
    try:
        return _import_patch(data, memory, require, only)
    except _r._Unsupported:
        return None
    except Exception as exc:
        log.debug("no raw imports: reading the component failed (%r)", exc)
        return None


def _import_patch(
    data: bytes,
    memory: int | None,
    require: ImportPatch | None,
    only: Collection[str] | None = None,
) -> ImportPatch | None:
    if data[:8] != _r._PREFIX:
        return None
    view = memoryview(data)
    top = _r._Reader(view, 8)
    c = _r._Component()  # what the top level defines so far, counted as relift counts
    #: type index -> (section index, the type's (start, end) in the binary)
    instance_types: dict[int, tuple[int, int, int]] = {}
    sections: list[tuple[int, int, int]] = []  # (sid, start, end) of every section
    imported: dict[int, str] = {}  # instance index -> import name
    imported_types: dict[int, str] = {}  # type index -> import name
    func_of: dict[int, tuple[str, str]] = {}  # component func -> (import name, function)
    #: (component func, its options, section index, the options' (start, end))
    lowers: list[tuple[int, list[bytes], int, int, int]] = []
    aliased: dict[str, set[str]] = {}  # import name -> its type names aliased here
    for_strings = True
    while top.pos < top.end:
        head = top.pos
        sid = top.byte()
        size = top.u32()
        body, end = top.pos, top.pos + size
        if end > top.end:
            raise _r._Unsupported("truncated section")
        top.pos = end
        sections.append((sid, head, end))
        r = _r._Reader(view, body, end)
        if sid == 7:
            count = r.u32()
            for k in range(count):
                start = r.pos
                try:
                    if data[start] == 0x42:
                        r.pos += 1
                        for _ in range(r.u32()):
                            _skip_decl(r, 1)
                        instance_types[c.n_types + k] = (len(sections) - 1, start, r.pos)
                    else:
                        _skip_deftype(r)
                except (_r._Unsupported, IndexError):
                    break  # later entries' offsets unknown: counted, not rewritten
            c.n_types += count
        elif sid == 10:
            for _ in range(r.u32()):
                name = r.extern_name()
                desc = r.pos
                sort = _r._externdesc(r)
                if sort == 0x05 and not name.startswith(("wasi:", *LEFT_AS_GIVEN)):
                    # (WASI is wasmtime's own, which checks the types it is linked with)
                    t = _r._Reader(view, desc + 1, end).u32()
                    imported[c.n_instances] = name
                    # a type two imports share is left alone (one name per rewrite)
                    imported_types[t] = "" if t in imported_types else name
                elif sort == 0x05:
                    t = _r._Reader(view, desc + 1, end).u32()
                    imported_types[t] = ""
                _r._count(c, sort)
        elif sid == 6:
            for _ in range(r.u32()):
                sort, target, inst, export = _read_alias(r)
                if target == 0x00 and export is not None and inst in imported:
                    if sort == 0x01:
                        func_of[c.n_funcs] = (imported[inst], export)
                    elif sort == 0x03:
                        aliased.setdefault(imported[inst], set()).add(export)
                _r._count(c, sort)
        elif sid == 8:
            for _ in range(r.u32()):
                op = r.byte()
                if op == 0x00:
                    r.byte()
                    r.u32()
                    _r._canon_options(r, view)
                    r.u32()
                    c.n_funcs += 1
                elif op == 0x01:
                    r.byte()
                    func = r.u32()
                    at = r.pos
                    options = _r._canon_options(r, view)
                    lowers.append((func, options, len(sections) - 1, at, r.pos))
                elif op in (0x02, 0x03, 0x04, 0x07):  # resource.new/drop/rep, drop async
                    r.u32()
                elif op == 0x06:  # subtask.cancel async?
                    r.byte()
                elif op in (0x0A, 0x0B):  # context.get / context.set i32 <slot>
                    r.byte()
                    r.u32()
                elif op not in (0x05, 0x0D, 0x1F, 0x22, 0x23):  # (no immediates)
                    # anything else: its size is unknown, and so are the indices after it
                    raise _r._Unsupported(f"canon 0x{op:02x}")
        elif sid == 5:
            c.n_instances += r.u32()
        elif sid == 11:
            for _ in range(r.u32()):
                r.extern_name()
                sort = r.byte()
                if sort == 0x00:
                    r.byte()
                r.u32()
                if r.byte() == 0x01:
                    _r._externdesc(r)
                _r._count(c, sort)
        elif sid == 9:
            raise _r._Unsupported("start section")
    # Which imported functions every lower names the one memory for, with UTF-8 strings.
    lowered: dict[tuple[str, str], bool] = {}  # -> strings lowered as UTF-8
    memories: set[int] = set()
    for func, options, *_ in lowers:
        key = func_of.get(func)
        if key is None:
            continue
        opts = {o[0]: _r._Reader(o, 1).u32() for o in options if o[0] in (0x03, 0x04, 0x05)}
        utf8 = all(o[0] == 0x00 for o in options if o[0] in _r._ENCODINGS)
        mem = opts.get(0x03)
        if mem is None or (memory is not None and mem != memory):
            lowered[key] = False
            continue
        memories.add(mem)
        lowered[key] = lowered.get(key, True) and utf8
    if require is not None:  # the inner component's lowers decided
        lowered = {(f.interface, f.function): True for f in require.functions}
        memories = {require.memory}
    if len(memories) != 1:
        return None
    mem = memories.pop()
    # Whose results may become latin1 strings: every lower names the memory and an
    # allocator, with UTF-8 strings (or, nested, the inner component's rewrite says so).
    latin1: dict[tuple[str, str], bool] = {}
    for func, options, *_ in lowers:
        key = func_of.get(func)
        if key is not None:
            codes_ = {o[0] for o in options}
            ok = 0x04 in codes_ and not codes_ & {0x01, 0x02}
            ok = ok and any(o[0] == 0x03 and _r._Reader(o, 1).u32() == mem for o in options)
            latin1[key] = latin1.get(key, True) and ok
    if any(marker in data for marker in NO_SHRINK):
        latin1 = {}
    if require is not None:
        if latin1:  # lowered here too: not the layout this knows
            latin1 = {k: False for k in latin1}
        else:
            latin1 = {(f.interface, f.function): f.result is not None for f in require.functions}
    splices: dict[int, list[tuple[int, int, bytes]]] = {}
    functions: list[RawImport] = []
    budget = [_r.MOST_COMPONENT_TYPE_NODES]  # (all the instance types together)
    for t, (section, start, end) in instance_types.items():
        iface = imported_types.get(t)
        if not iface or (only is not None and iface not in only):
            continue
        r = _r._Reader(view, start + 1, end)
        results = {f for (i, f), ok in latin1.items() if i == iface and ok}
        new, found = _rewrite_instance_type(
            data, r, for_strings, results, aliased.get(iface, ()), budget
        )
        keep = {}
        for fname, (names, codes, mask, flat) in found.items():
            ok = (iface, fname) in lowered and lowered[(iface, fname)] is not False
            strings = _STRING in codes or (flat is not None and flat[2])
            if not ok or (strings and not lowered[(iface, fname)]):
                keep[fname] = True  # lowered with another memory or encoding
                continue
            types, core = (None, ()) if flat is None else flat[:2]
            functions.append(RawImport(iface, fname, names, codes, mask, types, core))
        if keep:  # all functions of a type or none: redo with those left out
            functions = [f for f in functions if f.interface != iface]
            continue
        if found:
            splices.setdefault(section, []).append((start, end, b"\x42" + new))
    if not functions:
        return None
    if require is not None and set(functions) != set(require.functions):
        return None
    # The lowers of functions whose results became strings: string-encoding=latin1+utf16.
    by_result = {(f.interface, f.function) for f in functions if f.result is not None}
    for func, options, section, at, stop in lowers:
        if func_of.get(func) in by_result:
            kept = [o for o in options if o[0] not in _r._ENCODINGS] + [_LATIN1_UTF16]
            splices.setdefault(section, []).append((at, stop, _r._leb(len(kept)) + b"".join(kept)))
    out: list[tuple[int, int, bytes]] = []
    for section, parts in sorted(splices.items()):
        parts.sort()
        sid, head, end = sections[section]
        r = _r._Reader(view, head + 1, end)
        size = r.u32()
        body = r.pos
        assert body + size == end
        inner = bytearray()
        at = body
        for start, stop, new in parts:
            inner += data[at:start] + new
            at = stop
        inner += data[at:end]
        out.append((head, end, bytes([sid]) + _r._leb(len(inner)) + bytes(inner)))
    return ImportPatch(tuple(out), tuple(functions), mem)


def imported_instances(data: bytes) -> set[str]:
    """The names of the instances ``data`` imports at its top level (empty when it
    cannot be read)."""
    names: set[str] = set()
    try:
        top = _r._Reader(data, 8)
        while top.pos < top.end:
            sid = top.byte()
            size = top.u32()
            body, top.pos = top.pos, top.pos + size
            if sid == 10:
                r = _r._Reader(data, body, top.pos)
                for _ in range(r.u32()):
                    name = r.extern_name()
                    if _r._externdesc(r) == 0x05:
                        names.add(name)
    except _r._Unsupported:
        return set()
    return names


# ------------------------------------------------------------------ the original types


def _wit_of(code: int) -> wit.WitType:
    if code == _STRING:
        return wit.Prim("string")
    return wit.ListT(wit.Prim(_WIT_NAMES[code]))


def original_sig(sig: wit.FuncSig, raw: RawImport) -> wit.FuncSig | None:
    """The signature the guest's WIT gives ``raw``, from the rewritten one wasmtime
    reports; None when ``sig`` is not what the rewrite made (then the function is not
    served raw)."""
    params = list(sig.params)
    out: list[tuple[str, wit.WitType]] = []
    i = 0
    if raw.types is not None:  # every parameter as its flat core values
        from .rawabi import wit_type

        want = [
            (n, wit.Prim(_WIT_NAMES[_FLAT_PARAM[c]]))
            for n, c in zip(flat_names(raw.core), raw.core, strict=True)
        ]
        if [(n, t) for n, t in params] != want:
            return None
        out = [(n, wit_type(d)) for n, d in zip(raw.names, raw.types, strict=True)]
        i = len(params)
    for name, code in zip(raw.names, raw.params if raw.types is None else (), strict=False):
        if i >= len(params):
            return None
        if code is None:
            if params[i][0] != name:
                return None
            out.append(params[i])
            i += 1
            continue
        pair = params[i : i + 2]
        if [n for n, _ in pair] != [f"{name}-ptr", f"{name}-len"] or any(
            t != wit.Prim("u32") for _, t in pair
        ):
            return None
        out.append((name, _wit_of(code)))
        i += 2
    if i != len(params):
        return None
    result = sig.result
    if raw.result is not None:
        result = _original_result(sig.result, raw.result)
        if result is None:
            return None
    return attrs.evolve(sig, params=tuple(out), result=result)


def _original_result(t: wit.WitType | None, mask: object) -> wit.WitType | None:
    """``t`` (a rewritten result, as wasmtime reports it) with the strings ``mask`` marks
    as ``list<u8>`` again; None when ``t`` is not shaped as ``mask`` says."""
    if mask is None:
        return t
    if mask is True:
        return wit.ListT(wit.Prim("u8")) if t == wit.Prim("string") else None
    if not isinstance(mask, tuple) or t is None:
        return None
    kind, *masks = mask

    def each(types: tuple[wit.WitType | None, ...]) -> list[Any] | None:
        if len(types) != len(masks):
            return None
        out = [_original_result(c, m) for c, m in zip(types, masks, strict=True)]
        ok = all(o is not None or c is None for o, c in zip(out, types, strict=True))
        return out if ok else None

    def named(
        pairs: tuple[tuple[str, Any], ...],
    ) -> tuple[tuple[str, Any], ...] | None:  # a record's fields, a variant's cases
        parts = each(tuple(pt for _, pt in pairs))
        return (
            None
            if parts is None
            else tuple((n, pt) for (n, _), pt in zip(pairs, parts, strict=True))
        )

    if kind == "list" and isinstance(t, wit.ListT):
        parts = each((t.element,))
        return None if parts is None else attrs.evolve(t, element=parts[0])
    if kind == "option" and isinstance(t, wit.OptionT):
        parts = each((t.inner,))
        return None if parts is None else attrs.evolve(t, inner=parts[0])
    if kind == "result" and isinstance(t, wit.ResultT):
        parts = each((t.ok, t.err))
        return None if parts is None else attrs.evolve(t, ok=parts[0], err=parts[1])
    if kind == "tuple" and isinstance(t, wit.TupleT):
        parts = each(t.elements)
        return None if parts is None else attrs.evolve(t, elements=tuple(parts))
    if kind == "record" and isinstance(t, wit.RecordT):
        fields = named(t.fields)
        return None if fields is None else attrs.evolve(t, fields=fields)
    if kind == "variant" and isinstance(t, wit.VariantT):
        cases = named(t.cases)
        return None if cases is None else attrs.evolve(t, cases=cases)
    return None


# ------------------------------------------------------------------ plans on disk
