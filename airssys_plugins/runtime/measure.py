"""Results measured in guest memory before wasmtime copies them (issue 12, hole 3).

wasmtime lifts a result into host values before the host sees any of it: a guest that
returns a list of 64 strings all pointing at one 1 MiB region of its memory costs the host
64 MiB (and twice that at peak) however small ``max_result_bytes`` is. This module
appends to a component, for every exported function whose result holds a string or a
list, three more lifts (see :mod:`.relift` for how the function is found):

``airssys-measure-s<k>``
    the same core function (the one the host would call: the byte-buffer export's when
    there is one), through a shim core function that calls it, keeps its return-area
    pointer in a global, and walks the result's flat data in guest memory, returning the
    size the host would count (as :func:`.convert.measurer` counts: the bytes of each
    string, each list's elements at their packed width or 32 bytes each, recursively,
    every alias counted again). It stops as soon as the size is above the limit, so the
    walk is bounded by the limit too. Its result is a ``u64``, and it has no post-return:
    wasmtime copies nothing but that number. A pointer out of bounds, a misaligned one or
    a bad discriminant gives ``INVALID``: the host then lets the real lift fail on it,
    with wasmtime's own ABI error (the walk visits the result in the order the lift does,
    so what the lift copies before the bad spot is what was counted, within the limit).
``airssys-measure-r<k>``
    the real lift of that stashed result: a shim function returning the stashed pointer,
    lifted with the result type the host expects and the original post-return. It runs
    no guest code, so the guest function runs once per call.
``airssys-measure-limit``
    sets the limit the walks stop at, once per instance.

Named types (records, variants, enums, flags) in the new functions' signatures are
defined again and exported under ``airssys-measure-t<j>``, as wit-component does, since a
root export may only use named types that the component exports. Pure Python, no
wasmtime, and never raises: anything not understood leaves the function to the old path
(the result measured after wasmtime's copy).
"""

from __future__ import annotations

from typing import Any, Final

from .. import _attrs as attrs
from .. import _log as logging
from ..contract import wit
from .measured import INVALID, Measured, MeasuredExports
from .rawimports import AliasedTypes
from .relift import (
    _F32,
    _F64,
    _I32,
    _I64,
    _STRING,
    FastExport,
    Plan,
    TypeBudget,
    ValType,
    _call,
    _code,
    _Component,
    _core_module,
    _func_exports,
    _functype,
    _get,
    _leb,
    _Lift,
    _name,
    _read,
    _s33,
    _section,
    _shim_tail,
    _Unsupported,
    _wire_shim,
    byte_export_tail,
)

__all__ = [
    "reexport_measured",
    "INVALID",
    "LIMIT_EXPORT",
    "MEASURE_PREFIX",
    "VAL_SIZE",
    "Measured",
    "checked_measured",
    "measure_tail",
    "result_plan",
]

log = logging.getLogger("airssys_plugins.runtime")

MEASURE_PREFIX: Final = "airssys-measure-"
LIMIT_EXPORT: Final = "airssys-measure-limit"
#: Bytes counted per list element that is not a packed number: the size of one
#: ``wasmtime_component_val_t`` (pinned against convert.VAL_SIZE by a test).
VAL_SIZE: Final = 32

_SIZES: Final = {
    0x7F: 1, 0x7E: 1, 0x7D: 1, 0x7C: 2, 0x7B: 2, 0x7A: 4, 0x79: 4,
    0x78: 8, 0x77: 8, 0x76: 4, 0x75: 8, 0x74: 4, 0x64: 4,
}  # fmt: skip
_PACKED: Final = frozenset(range(0x75, 0x7F))  # s8..u64, f32, f64: not bool, not char
_NAMED: Final = frozenset({"record", "variant", "enum", "flags"})
#: Handles of resources: an i32 in the flat data, never walked (a handle can be lifted
#: only once, so it cannot alias), exported as the component's own resource type.
_HANDLES: Final = frozenset({"own", "borrow"})
_UTF8, _UTF16 = 0x00, 0x01


def _align(offset: int, align: int) -> int:
    return (offset + align - 1) // align * align


def _disc_size(n: int) -> int:
    return 1 if n <= 256 else 2 if n <= 65536 else 4


class _Types:
    """The canonical ABI's view of decoded types: size, alignment, flattening. With the
    component's ``data``, the types its root names through an imported instance's exports
    too (:class:`.rawimports.AliasedTypes`)."""

    def __init__(self, c: _Component, data: bytes | None = None):
        self.c = c
        self.aliased = None if data is None else AliasedTypes(c, data)

    def resolve(self, t: ValType | None) -> object:
        if self.aliased is not None:
            return self.aliased.resolve(t)
        if isinstance(t, tuple):
            index = t[1]
            if index not in self.c.types:
                raise _Unsupported("type not decoded")
            return self.c.types[index]
        return t

    def cases(self, d: Any) -> list[ValType | None]:
        kind = d[0]
        if kind == "option":
            return [None, d[1]]
        if kind == "result":
            return [d[1], d[2]]
        return [ct for _, ct in d[1]]

    def fields(self, d: Any) -> list[ValType]:
        if d[0] == "tuple":
            return list(d[1])
        return [ft for _, ft in d[1]]

    def layout(self, t: ValType | None) -> tuple[int, int]:
        """(size, alignment) in linear memory."""
        d = self.resolve(t)
        if isinstance(d, int):
            if d == _STRING:
                return 8, 4
            if d not in _SIZES:
                raise _Unsupported(f"value type 0x{d:02x}")
            return _SIZES[d], _SIZES[d]
        assert isinstance(d, tuple)
        kind = d[0]
        if kind == "list":
            return 8, 4
        if kind in ("tuple", "record"):
            size, align = 0, 1
            for f in self.fields(d):
                fs, fa = self.layout(f)
                size = _align(size, fa) + fs
                align = max(align, fa)
            return _align(size, align), align
        if kind in ("option", "result", "variant"):
            cases = self.cases(d)
            disc = _disc_size(len(cases))
            payload = [self.layout(ct) for ct in cases if ct is not None]
            case_align = max((a for _, a in payload), default=1)
            align = max(disc, case_align)
            size = _align(disc, case_align) + max((s for s, _ in payload), default=0)
            return _align(size, align), align
        if kind == "enum":
            disc = _disc_size(len(d[1]))
            return disc, disc
        if kind in _HANDLES:
            return 4, 4
        if kind == "flags":
            n = len(d[1])
            if n <= 8:
                return (1 if n else 0), 1
            if n <= 16:
                return 2, 2
            return 4 * ((n + 31) // 32), 4
        raise _Unsupported(str(kind))

    def payload_offset(self, d: tuple[object, ...]) -> int:
        cases = self.cases(d)
        case_align = max((self.layout(ct)[1] for ct in cases if ct is not None), default=1)
        return _align(_disc_size(len(cases)), case_align)

    def has_var(self, t: ValType | None) -> bool:
        """Whether a value of ``t`` holds a string or a list."""
        if t is None:
            return False
        d = self.resolve(t)
        if isinstance(d, int):
            return d == _STRING
        assert isinstance(d, tuple)
        kind = d[0]
        if kind == "list":
            return True
        if kind in ("tuple", "record"):
            return any(self.has_var(f) for f in self.fields(d))
        if kind in ("option", "result", "variant"):
            return any(self.has_var(ct) for ct in self.cases(d))
        if kind in ("enum", "flags") or kind in _HANDLES:
            return False
        raise _Unsupported(str(kind))

    def flat(self, t: ValType) -> list[int]:
        """The canonical ABI's flattening of ``t`` into core value types."""
        d = self.resolve(t)
        if isinstance(d, int):
            return {0x78: [_I64], 0x77: [_I64], 0x76: [_F32], 0x75: [_F64]}.get(
                d, [_I32, _I32] if d == _STRING else [_I32]
            )
        assert isinstance(d, tuple)
        kind = d[0]
        if kind == "list":
            return [_I32, _I32]
        if kind in ("tuple", "record"):
            return [v for f in self.fields(d) for v in self.flat(f)]
        if kind == "enum" or kind in _HANDLES:
            return [_I32]
        if kind == "flags":
            return [_I32] * ((len(d[1]) + 31) // 32)
        joined: list[int] = []
        for case in self.cases(d):
            if case is None:
                continue
            for i, v in enumerate(self.flat(case)):
                if i == len(joined):
                    joined.append(v)
                elif joined[i] != v:
                    joined[i] = _I32 if {joined[i], v} == {_I32, _F32} else _I64
        return [_I32, *joined]


# ------------------------------------------------------------------- the walk, as wasm code


def _sleb(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if (n == 0 and not b & 0x40) or (n == -1 and b & 0x40):
            out.append(b)
            return bytes(out)
        out.append(b | 0x80)


def _i32(n: int) -> bytes:
    return b"\x41" + _sleb(n - (1 << 32) if n >= 1 << 31 else n)


def _i64(n: int) -> bytes:
    return b"\x42" + _sleb(n - (1 << 64) if n >= 1 << 63 else n)


def _set(i: int) -> bytes:
    return b"\x21" + _leb(i)


_RETURN_INVALID: Final = _i64(INVALID) + b"\x0f"
_LOADS: Final = {1: b"\x2d\x00\x00", 2: b"\x2f\x00\x00", 4: b"\x28\x00\x00"}  # *_u, align 1
_EXTEND: Final = b"\xad"  # i64.extend_i32_u
_STASH, _LIMIT = 0, 1  # the shim's globals


def _load_at(base: int, offset: int, width: int = 4) -> bytes:
    return _get(base) + (_i32(offset) + b"\x6a" if offset else b"") + _LOADS[width]


class _Walker:
    """Generates the body of one measuring function: locals ``R`` (the return area),
    ``S`` (the size so far, i64) and ``M`` (memory's size in bytes, i64), then its own."""

    def __init__(self, types: _Types, encoding: int, n_params: int):
        self.types = types
        self.encoding = encoding
        self.r, self.s, self.m = n_params, n_params + 1, n_params + 2
        self.local_types = [_I32, _I64, _I64]
        self.first = n_params

    def local(self, ty: int = _I32) -> int:
        self.local_types.append(ty)
        return self.first + len(self.local_types) - 1

    def add(self, amount: bytes) -> bytes:
        """S += amount; return S at once when it is above the limit."""
        return (
            _get(self.s) + amount + b"\x7c" + b"\x22" + _leb(self.s)
            + b"\x23" + _leb(_LIMIT) + b"\x56"  # i64.gt_u
            + b"\x04\x40" + _get(self.s) + b"\x0f\x0b"
        )  # fmt: skip

    def in_bounds(self, ptr: int, nbytes: bytes, align: int) -> bytes:
        """Return INVALID unless [ptr, ptr + nbytes) is in memory and ptr is aligned."""
        code = b""
        if align > 1:
            code += _get(ptr) + _i32(align - 1) + b"\x71" + b"\x04\x40" + _RETURN_INVALID + b"\x0b"
        return code + (
            _get(ptr) + _EXTEND + nbytes + b"\x7c" + _get(self.m) + b"\x56"
            + b"\x04\x40" + _RETURN_INVALID + b"\x0b"
        )  # fmt: skip

    def body(self, result: ValType) -> bytes:
        size, align = self.types.layout(result)
        return (
            _i64(0) + _set(self.s)
            + b"\x3f\x00" + _EXTEND + _i64(16) + b"\x86" + _set(self.m)  # memory.size << 16
            + self.in_bounds(self.r, _i64(size), align)
            + self.value(result, self.r)
            + _get(self.s)
        )  # fmt: skip

    def value(self, t: ValType | None, a: int) -> bytes:
        if not self.types.has_var(t):
            return b""
        d = self.types.resolve(t)
        if d == _STRING:
            return self.string(a)
        assert isinstance(d, tuple)
        kind = d[0]
        if kind == "list":
            return self.list_of(d[1], a)
        if kind in ("tuple", "record"):
            code, offset = b"", 0
            for f in self.types.fields(d):
                size, align = self.types.layout(f)
                offset = _align(offset, align)
                if self.types.has_var(f):
                    at = self.local()
                    code += _get(a) + _i32(offset) + b"\x6a" + _set(at) + self.value(f, at)
                offset += size
            return code
        cases = self.types.cases(d)  # option, result, variant
        disc = self.local()
        code = _load_at(a, 0, _disc_size(len(cases))) + _set(disc)
        code += _get(disc) + _i32(len(cases)) + b"\x4f\x04\x40" + _RETURN_INVALID + b"\x0b"
        offset = self.types.payload_offset(d)
        for i, case in enumerate(cases):
            if self.types.has_var(case):
                at = self.local()
                code += (
                    _get(disc) + _i32(i) + b"\x46\x04\x40"
                    + _get(a) + _i32(offset) + b"\x6a" + _set(at)
                    + self.value(case, at) + b"\x0b"
                )  # fmt: skip
        return code

    def string(self, a: int) -> bytes:
        ptr, length, nbytes = self.local(), self.local(), self.local(_I64)
        code = _load_at(a, 0) + _set(ptr) + _load_at(a, 4) + _set(length)
        if self.encoding == _UTF8:
            code += _get(length) + _EXTEND
        elif self.encoding == _UTF16:
            code += _get(length) + _EXTEND + _i64(1) + b"\x86"
        else:  # latin1+utf16: the length's top bit tags UTF-16 code units
            code += (
                _get(length) + _i32(1 << 31) + b"\x71" + b"\x04\x7e"
                + _get(length) + _i32((1 << 31) - 1) + b"\x71" + _EXTEND + _i64(1) + b"\x86"
                + b"\x05" + _get(length) + _EXTEND + b"\x0b"
            )  # fmt: skip
        code += _set(nbytes)
        align = 1 if self.encoding == _UTF8 else 2
        return code + self.in_bounds(ptr, _get(nbytes), align) + self.add(_get(nbytes))

    def list_of(self, element: ValType, a: int) -> bytes:
        ptr, length = self.local(), self.local()
        size, align = self.types.layout(element)
        d = self.types.resolve(element)
        code = _load_at(a, 0) + _set(ptr) + _load_at(a, 4) + _set(length)
        code += self.in_bounds(ptr, _get(length) + _EXTEND + _i64(size) + b"\x7e", align)
        width = size if isinstance(d, int) and d in _PACKED else VAL_SIZE
        code += self.add(_get(length) + _EXTEND + _i64(width) + b"\x7e")
        if not self.types.has_var(element):
            return code
        at, left = self.local(), self.local()
        return code + (
            _get(ptr) + _set(at) + _get(length) + _set(left)
            + b"\x02\x40\x03\x40"  # block loop
            + _get(left) + b"\x45\x0d\x01"  # br_if 1 when no element is left
            + self.value(element, at)
            + _get(at) + _i32(size) + b"\x6a" + _set(at)
            + _get(left) + _i32(1) + b"\x6b" + _set(left)
            + b"\x0c\x00\x0b\x0b"  # br 0, end loop, end block
        )  # fmt: skip

    def locals_decl(self) -> list[tuple[int, int]]:
        runs: list[list[int]] = []
        for ty in self.local_types:
            if runs and runs[-1][1] == ty:
                runs[-1][0] += 1
            else:
                runs.append([1, ty])
        return [(n, ty) for n, ty in runs]


def _func_code(locals_: list[tuple[int, int]], body: bytes) -> bytes:
    decl = _leb(len(locals_)) + b"".join(_leb(n) + bytes([ty]) for n, ty in locals_)
    func = decl + body + b"\x0b"
    return _leb(len(func)) + func


@attrs.frozen
class _Pick:
    interface: str | None
    function: str
    lift: _Lift  # the lift the host calls: the byte-buffer export's, or the original
    params: tuple[tuple[str, ValType], ...]
    result: ValType
    flat_params: tuple[int, ...]
    body: bytes
    locals: tuple[tuple[int, int], ...]


def _shim(picks: list[_Pick]) -> bytes:
    """Imports m.memory and m.g<k>; exports limit, stash and s<k> (see the docstring)."""
    types = [_functype([_I64], []), _functype([], [_I32])]
    imports = [_name("m") + _name("memory") + b"\x02\x00\x00"]
    for k, p in enumerate(picks):
        types.append(_functype(list(p.flat_params), [_I32]))
        imports.append(_name("m") + _name(f"g{k}") + b"\x00" + _leb(len(types) - 1))
    n = len(picks)
    funcs = [0, 1]
    codes = [
        _code(0, _get(0) + b"\x24" + _leb(_LIMIT)),
        _code(0, b"\x23" + _leb(_STASH)),
    ]
    exports = [_name("limit") + b"\x00" + _leb(n), _name("stash") + b"\x00" + _leb(n + 1)]
    for k, p in enumerate(picks):
        types.append(_functype(list(p.flat_params), [_I64]))
        funcs.append(len(types) - 1)
        call = b"".join(_get(i) for i in range(len(p.flat_params))) + _call(k)
        stash = b"\x22" + _leb(len(p.flat_params)) + b"\x24" + _leb(_STASH)  # tee R, stash
        codes.append(_func_code(list(p.locals), call + stash + p.body))
        exports.append(_name(f"s{k}") + b"\x00" + _leb(n + len(funcs) - 1))
    globals_ = [b"\x7f\x01\x41\x00\x0b", b"\x7e\x01" + _i64(INVALID) + b"\x0b"]
    sections = [
        (1, types),
        (2, imports),
        (3, [_leb(t) for t in funcs]),
        (6, globals_),
        (7, exports),
        (10, codes),
    ]
    return _core_module(sections)


class _Exportable:
    """Type definitions a root export may use: named types defined again and exported.
    Handles refer to the resource types of ``types``' component, so they are only
    possible when that is the component ``c`` the exports are added to."""

    def __init__(self, c: _Component, types: _Types):
        self.c = c
        self.types = types
        self.own_resources = types.c is c
        self.n_types = c.n_types
        self.sections: list[bytes] = []
        self.memo: dict[tuple[str, int], int] = {}
        self.exported = 0

    def define(self, body: bytes) -> int:
        self.sections.append(_section(7, [body]))
        self.n_types += 1
        return self.n_types - 1

    def ref(self, t: ValType | None) -> bytes:
        if t is None:
            raise _Unsupported("no type")
        if isinstance(t, int):
            return bytes([t])
        if t[0] == "ref":
            index = t[1]
            assert isinstance(index, int)
            key = ("index", index)
            aliased = self.types.aliased
            if self.own_resources and aliased is not None and aliased.imported(index):
                return _s33(index)  # an imported type: a root export may name it as it is
            d = self.types.resolve(t)
        else:  # a definition expanded from an instance type (AliasedTypes)
            key, d = ("made", id(t)), t
        if key in self.memo:
            return _s33(self.memo[key])
        if isinstance(d, int):
            return bytes([d])
        assert isinstance(d, tuple)
        kind = d[0]
        if kind == "list":
            body = b"\x70" + self.ref(d[1])
        elif kind == "tuple":
            body = b"\x6f" + _leb(len(d[1])) + b"".join(self.ref(e) for e in d[1])
        elif kind == "option":
            body = b"\x6b" + self.ref(d[1])
        elif kind == "result":
            body = b"\x6a" + b"".join(self.optional(x) for x in d[1:])
        elif kind == "record":
            fields = d[1]
            assert isinstance(fields, tuple)
            body = b"\x72" + _leb(len(fields)) + b"".join(_name(n) + self.ref(f) for n, f in fields)
        elif kind == "variant":
            cases = d[1]
            assert isinstance(cases, tuple)
            body = b"\x71" + _leb(len(cases))
            body += b"".join(_name(n) + self.optional(ct) + b"\x00" for n, ct in cases)
        elif kind in ("enum", "flags"):
            names = d[1]
            assert isinstance(names, tuple)
            body = (b"\x6d" if kind == "enum" else b"\x6e") + _leb(len(names))
            body += b"".join(_name(n) for n in names)
        elif kind in _HANDLES and self.own_resources and d[1] in self.c.exported_types:
            # (a root export may name a resource only when the component exports it, at
            # its root or in an exported bag of exports: componentize-py's come out of an
            # instance of an inner component, and wasmtime refused the whole binary, "func
            # not valid to be used as export")
            resource = d[1]
            assert isinstance(resource, int)
            body = (b"\x69" if kind == "own" else b"\x68") + _leb(resource)
        else:
            raise _Unsupported(str(kind))
        new = self.define(body)
        if kind in _NAMED:
            name = f"{MEASURE_PREFIX}t{self.exported}"
            if name in self.c.export_names:
                raise _Unsupported("export name taken")
            self.exported += 1
            self.sections.append(
                _section(11, [b"\x00" + _name(name) + b"\x03" + _leb(new) + b"\x00"])
            )
            self.n_types += 1
            new = self.n_types - 1
        self.memo[key] = new
        return _s33(new)

    def optional(self, t: ValType | None) -> bytes:
        return b"\x00" if t is None else b"\x01" + self.ref(t)

    def func(self, params: tuple[tuple[str, ValType], ...], result: ValType | None) -> int:
        body = b"\x40" + _leb(len(params)) + b"".join(_name(n) + self.ref(t) for n, t in params)
        body += b"\x01\x00" if result is None else b"\x00" + self.ref(result)
        return self.define(body)


def _host_lift(
    c: _Component, interface: str | None, function: str, fast: dict[tuple[str | None, str], str]
) -> _Lift | None:
    name = fast.get((interface, function))
    if name is None:
        return None
    index = c.func_exports.get(name)
    return next((lift for lift in c.lifts if lift.func_index == index), None)


def _instance_funcs(c: _Component, data: bytes, index: int) -> dict[str, int]:
    """Function name -> top-level function index, for what instance ``index`` exports: a
    bag of exports, or a nested component re-exporting the functions it imports (the
    layout wit-component gives every interface)."""
    component, items = c.instances.get(index, (None, {}))
    if component is None:
        return {name: i for name, (sort, i) in items.items() if sort == 0x01}
    span = c.components.get(component)
    if span is None:
        return {}
    inner = _read(data[span[0] : span[1]])
    found = {}
    for name, i in inner.func_exports.items():
        arg = items.get(inner.func_imports.get(i, ""))
        if arg is not None and arg[0] == 0x01:
            found[name] = arg[1]
    return found


def exported_lifts(c: _Component, data: bytes) -> dict[tuple[str | None, str], _Lift]:
    """(interface or None, function) -> the top-level lift each exported function is,
    found from the structure of the component (not from names, which a hostile
    component chooses)."""
    lifts = {lift.func_index: lift for lift in c.lifts}
    found: dict[tuple[str | None, str], _Lift] = {}
    for name, i in c.func_exports.items():
        if i in lifts and not name.startswith("airssys-"):
            found[(None, name)] = lifts[i]
    for iface, index in c.instance_exports.items():
        for fname, i in _instance_funcs(c, data, index).items():
            if i in lifts:
                found[(iface, fname)] = lifts[i]
    return found


def _picks(
    c: _Component, data: bytes, types: _Types, fast: dict[tuple[str | None, str], str]
) -> list[_Pick]:
    picks: list[_Pick] = []
    budget = TypeBudget()
    for key, original in exported_lifts(c, data).items():
        function = key[1]
        lift = _host_lift(c, key[0], function, fast) or original
        deftype = c.types.get(lift.type_index)
        if not (isinstance(deftype, tuple) and deftype[0] == "func") or deftype[2] is None:
            continue
        params, result = deftype[1], deftype[2]
        assert isinstance(params, tuple)
        if lift.option(0x03) is None:
            continue
        try:
            budget.check(types.resolve, [*(t for _, t in params), result])
            if not types.has_var(result):
                continue
            flat = [v for _, t in params for v in types.flat(t)]
            encoding = next((o[0] for o in lift.options if o[0] in (0, 1, 2)), _UTF8)
            walker = _Walker(types, encoding, len(flat) if len(flat) <= 16 else 1)
            body = walker.body(result)
        except (_Unsupported, RecursionError):
            continue
        picks.append(
            _Pick(
                key[0], function, lift, params, result,
                tuple(flat if len(flat) <= 16 else [_I32]),
                body, tuple(walker.locals_decl()),
            )
        )  # fmt: skip
    return picks


def measure_tail(
    data: bytes, fast: dict[tuple[str | None, str], str]
) -> tuple[bytes, tuple[FastExport, ...]] | None:
    """The sections to append to ``data`` (a component, with its byte-buffer exports
    ``fast`` already appended), and what they add; None when nothing is added. Never
    raises (see :func:`.relift.byte_export_tail`)."""
    try:
        return _measure_tail(data, fast)
    except _Unsupported:
        return None
    except Exception as exc:
        log.debug("no measured results: reading the component failed (%r)", exc)
        return None


def _measure_tail(
    data: bytes, fast: dict[tuple[str | None, str], str]
) -> tuple[bytes, tuple[FastExport, ...]] | None:
    c = _read(data)
    types = _Types(c, data)
    # a function whose types cannot be exported at the root is measured after the copy;
    # the others keep their measuring exports
    picks = [p for p in _picks(c, data, types, fast) if _exportable_alone(c, types, p)]
    memories = {p.lift.option(0x03) for p in picks}
    if not picks or len(memories) != 1:
        return None
    memory = memories.pop()
    assert memory is not None
    imports = [("memory", 0x02, memory)]
    imports += [(f"g{k}", 0x00, p.lift.core_func) for k, p in enumerate(picks)]
    alias_names = ["limit", "stash"] + [f"s{k}" for k in range(len(picks))]
    wiring, core = _wire_shim(c, imports, alias_names)

    exportable = _Exportable(c, types)
    lifts: list[bytes] = []
    added: list[FastExport] = []
    for k, p in enumerate(picks):
        shape_type = exportable.func(p.params, 0x77)  # -> u64
        real_type = exportable.func((), p.result)
        keep = [o for o in p.lift.options if o[0] != 0x05]  # memory, realloc, encoding
        lifts.append(_lift(core[f"s{k}"], keep, shape_type))
        lifts.append(_lift(core["stash"], p.lift.options, real_type))
        added.append(FastExport(p.interface, p.function, f"{MEASURE_PREFIX}s{k}", "shape"))
        added.append(FastExport(p.interface, p.function, f"{MEASURE_PREFIX}r{k}", "real"))
    limit_type = exportable.func((("limit", 0x77),), None)
    lifts.append(_lift(core["limit"], [], limit_type))
    added.append(FastExport(None, "", LIMIT_EXPORT, "limit"))
    if any(a.name in c.export_names for a in added):
        return None
    exports = _func_exports(c.n_funcs, [a.name for a in added])
    tail = _shim_tail(_shim(picks), wiring, b"".join(exportable.sections), lifts, exports)
    return tail, tuple(added)


def _exportable_alone(c: _Component, types: _Types, p: _Pick) -> bool:
    """Whether the measuring exports of ``p`` can be typed at ``c``'s root (a trial
    whose type definitions are thrown away)."""
    trial = _Exportable(c, types)
    try:
        trial.func(p.params, 0x77)
        trial.func((), p.result)
    except _Unsupported:
        return False
    return True


def reexport_measured(
    inner: bytes, outer: _Component, instance: int, added: tuple[FastExport, ...]
) -> tuple[list[bytes], list[bytes], list[bytes], tuple[FastExport, ...]]:
    """What an outer component needs to re-export the measuring exports ``added`` that
    :func:`measure_tail` gave its inner component (``inner``, the tail not appended):
    the type sections (each function's type defined again in the outer, with its named
    types exported, as the component model requires of an exported function), the
    aliases of the functions from ``instance`` (the outer's instance of the inner one),
    their exports, each ascribed its type, and which of ``added`` they are. A function
    whose types cannot be defined in the outer (handles of the inner's resources) is
    left out: its result is measured after the copy. Raises _Unsupported when nothing
    can be re-exported."""
    c = _read(inner)
    types = _Types(c, inner)
    picks = _picks(c, inner, types, {})
    by_name = {a.name: a for a in added}
    exportable = _Exportable(outer, types)
    signature: dict[str, int] = {}
    for k, p in enumerate(picks):
        shape, real = f"{MEASURE_PREFIX}s{k}", f"{MEASURE_PREFIX}r{k}"
        if shape not in by_name or real not in by_name:
            raise _Unsupported("the measuring exports were not read alike")
        try:
            pair = exportable.func(p.params, 0x77), exportable.func((), p.result)
        except _Unsupported:
            continue  # types it leaves behind in the outer are unused, and valid
        signature[shape], signature[real] = pair
    if not signature or LIMIT_EXPORT not in by_name:
        raise _Unsupported("no measuring export can be re-exported")
    signature[LIMIT_EXPORT] = exportable.func((("limit", 0x77),), None)
    kept = tuple(a for a in added if a.name in signature)
    names = [a.name for a in kept]
    aliases = [b"\x01\x00" + _leb(instance) + _name(n) for n in names]
    exports = [
        b"\x00" + _name(n) + b"\x01" + _leb(outer.n_funcs + j) + b"\x01\x01" + _leb(signature[n])
        for j, n in enumerate(names)
    ]
    return exportable.sections, aliases, exports, kept


def result_plan(data: bytes) -> Plan | None:
    """Everything the runtime appends to component ``data``: the byte-buffer exports
    (:func:`.relift.byte_export_tail`), then the measuring ones; None when nothing."""
    byte = byte_export_tail(data)
    tail, added = byte if byte is not None else (b"", ())
    fast = {(a.interface, a.function): a.name for a in added}
    measured = measure_tail(data + tail if tail else data, fast)
    if measured is not None:
        tail, added = tail + measured[0], added + measured[1]
    return (tail, added) if added else None


def _lift(core_func: int, options: list[bytes], type_index: int) -> bytes:
    return b"\x00\x00" + _leb(core_func) + _leb(len(options)) + b"".join(options) + _leb(type_index)


def checked_measured(
    exports: dict[tuple[str | None, str], wit.FuncSig],
    added: tuple[FastExport, ...],
    fast: dict[tuple[str | None, str], str],
) -> tuple[MeasuredExports, str | None]:
    """(interface, function) -> its measuring exports, and the limit setter's name; the
    added exports are removed from ``exports`` (they are the runtime's, not hooks)."""
    shapes: dict[tuple[str | None, str], str] = {}
    reals: dict[tuple[str | None, str], wit.FuncSig] = {}
    names: dict[tuple[str | None, str], str] = {}
    limit = None
    for extra in added:
        if extra.kind == "bytes":
            continue
        sig = exports.pop((None, extra.name), None)
        if sig is None:
            continue
        if extra.kind == "limit":
            limit = extra.name
        elif extra.kind == "shape":
            shapes[(extra.interface, extra.function)] = extra.name
        elif extra.kind == "real":
            reals[(extra.interface, extra.function)] = sig
            names[(extra.interface, extra.function)] = extra.name
    found: MeasuredExports = {}
    for key, shape in shapes.items():
        real, original = reals.get(key), exports.get(key)
        if real is None or original is None:
            continue
        byte_result = key in fast and original.result is not None and _is_bytes(original.result)
        want = wit.Prim("string") if byte_result else original.result
        if real.params or real.result != want:  # pragma: no cover - a misread binary
            log.warning("measuring export %s does not match %s", shape, key[1])
            continue
        found[key] = Measured(shape, names[key])
    return (found, limit) if limit is not None else ({}, None)


def _is_bytes(t: wit.WitType) -> bool:
    return isinstance(t, wit.ListT) and t.element == wit.Prim("u8")
