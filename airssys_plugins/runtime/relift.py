"""Byte-buffer exports: ``list<u8>`` carried as a latin1 string.

wasmtime's C API passes a ``list<u8>`` as one 32-byte ``wasmtime_component_val_t`` per
byte, and lowers and lifts it element by element: a 1 MiB ``bytes`` argument costs about
100 ms each way. A ``string`` crosses as one buffer. In guest memory the two are laid out
alike (a pointer and a length), and with the ``latin1+utf16`` string encoding every byte
0-255 is one latin1 code unit, so the same core function lifted a second time, with
``list<u8>`` replaced by ``string`` in its type and ``string-encoding=latin1+utf16``,
moves exactly the same bytes, as one buffer.

This module appends such a second lift, and an export for it, to a component's binary,
for every exported function whose type holds a ``list<u8>`` and no ``string`` (a real
string would be transcoded by that encoding, so those keep the slow path), built from
lists, tuples, options and results only (records and variants would need named exports
of rewritten types). The original exports are left as they are. The lifted core function
is found by the canonical ABI's export naming (``<interface>#<function>``, or
``<function>`` at the root), which every component-model toolchain that uses
wit-component follows (componentize-py, jco, cargo-component, wit-bindgen for C and Go);
components laid out otherwise simply keep the slow path.

Pure Python, no wasmtime: it only reads the top-level sections (the large core modules
and nested components are skipped by their size). Anything it does not understand makes
it give up and return None, never guess: the worst case is the slow path.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Final

from .. import _attrs as attrs
from .. import _log as logging
from .plans import FAST_EXPORT_PREFIX, PLAN_VERSION, FastExport, leb128

__all__ = [
    "FAST_EXPORT_PREFIX",
    "PLAN_VERSION",
    "MOST_COMPONENT_BYTES",
    "FastExport",
    "add_byte_exports",
    "byte_export_tail",
    "component_level_bytes",
    "decode_plan",
    "encode_plan",
]


_PREFIX: Final = b"\0asm\x0d\x00\x01\x00"
_STRING: Final = 0x73
_U8: Final = 0x7D
_PRIMS: Final = frozenset(range(0x73, 0x80)) | {0x64}  # 0x64: error-context
_LATIN1_UTF16: Final = 0x02
_ENCODINGS: Final = frozenset({0x00, 0x01, 0x02})

# Decoded value types: an int is a primitive opcode; tuples are compound types.
ValType = int | tuple[object, ...]

log = logging.getLogger("airssys_plugins.runtime")


class _Unsupported(Exception):
    """Something this reader does not handle: keep the slow path."""


class _Reader:
    def __init__(self, data: bytes | memoryview, pos: int = 0, end: int | None = None):
        self.data = data
        self.pos = pos
        self.end = len(data) if end is None else end

    def byte(self) -> int:
        if self.pos >= self.end:
            raise _Unsupported("truncated")
        b = self.data[self.pos]
        self.pos += 1
        return b

    def u32(self) -> int:
        return self.uleb(35)

    def uleb(self, most: int) -> int:
        """An unsigned LEB128 of at most ``most`` bits' worth of 7-bit groups."""
        result = shift = 0
        while True:
            b = self.byte()
            result |= (b & 0x7F) << shift
            if b < 0x80:
                return result
            shift += 7
            if shift > most:
                raise _Unsupported("bad LEB128")

    def name(self) -> str:
        n = self.u32()
        if self.pos + n > self.end:
            raise _Unsupported("truncated name")
        text = bytes(self.data[self.pos : self.pos + n]).decode("utf-8")
        self.pos += n
        return text

    def extern_name(self) -> str:
        if self.byte() not in (0x00, 0x01):
            raise _Unsupported("extern name kind")
        return self.name()

    def valtype(self) -> ValType:
        # A type index is a non-negative s33, so a one-byte 0x40..0x7f is always an opcode.
        b = self.data[self.pos] if self.pos < self.end else None
        if b is not None and 0x40 <= b <= 0x7F:
            if b not in _PRIMS:
                raise _Unsupported(f"value type 0x{b:02x}")
            self.pos += 1
            return b
        return ("ref", self.u32())

    def casetype(self) -> ValType | None:
        return self.valtype() if self.byte() == 0x01 else None


#: The rewriter's name for :func:`.plans.leb128` (one encoder for the plans and the binaries).
_leb = leb128


#: The most bytes of component-level sections (a component's own, and its nested
#: components', outside their core modules and custom sections) that the rewriters read.
#: They read them in Python on a cache miss before the compile deadline applies, at up to
#: 2 µs a byte (a hostile component of 200,000 aliases, 1.2 MB, took 1.5 s). Real
#: components hold far less: 89 KB for the 18 MB componentize-py guest of 28 hooks, at
#: most 85 KB among jco's 158 test components. A component past it loads as given.
MOST_COMPONENT_BYTES: Final = 512 * 2**10
_MOST_NESTING: Final = 100  # components inside components (jco's: 2 levels)


def component_level_bytes(data: bytes | memoryview, most: int = MOST_COMPONENT_BYTES) -> int:
    """The bytes of ``data``'s component-level sections (:data:`MOST_COMPONENT_BYTES`),
    counted by the section headers alone, nested components' too. Stops past ``most``
    and returns ``most + 1`` then, or for a binary it cannot walk. Never raises."""
    view = memoryview(data)
    try:
        return _level_bytes(view, 8, len(view), most, 0, 0)
    except (_Unsupported, IndexError):
        return most + 1


def _level_bytes(view: memoryview, pos: int, end: int, most: int, total: int, depth: int) -> int:
    if depth > _MOST_NESTING:
        return most + 1
    r = _Reader(view, pos, end)
    while r.pos < r.end:
        sid = r.byte()
        size = r.u32()
        stop = r.pos + size
        if stop > r.end:
            return most + 1
        if sid == 4:  # a nested component: its own header, then its sections
            total = _level_bytes(view, r.pos + 8, stop, most, total, depth + 1)
        elif sid not in (0, 1):
            total += size
        if total > most:
            return most + 1
        r.pos = stop
    return total


def _s33(n: int) -> bytes:
    """A non-negative type index where a value type may stand (signed LEB128)."""
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n == 0 and not b & 0x40:
            out.append(b)
            return bytes(out)
        out.append(b | 0x80)


def _name(text: str) -> bytes:
    raw = text.encode("utf-8")
    return _leb(len(raw)) + raw


def _section(sid: int, items: list[bytes]) -> bytes:
    body = _leb(len(items)) + b"".join(items)
    return bytes([sid]) + _leb(len(body)) + body


def _core_module(sections: list[tuple[int, list[bytes]]]) -> bytes:
    """A core module binary of ``(section id, items)`` in order (the generated shims)."""
    return b"\0asm\x01\0\0\0" + b"".join(_section(sid, items) for sid, items in sections)


@attrs.define
class _Lift:
    core_func: int
    options: list[bytes]  # each canonopt, encoded
    type_index: int
    func_index: int = -1  # the component function this lift defines

    def option(self, code: int) -> int | None:
        """The index given with canon option ``code`` (memory, realloc, post-return)."""
        for opt in self.options:
            if opt[0] == code:
                return _Reader(opt, 1).u32()
        return None


@attrs.define
class _Component:
    """What the top level of a component defines, as far as this module needs it."""

    types: dict[int, object] = attrs.Factory(dict)  # index -> decoded deftype
    n_types: int = 0
    n_funcs: int = 0
    n_core_funcs: int = 0
    n_core_modules: int = 0
    n_core_instances: int = 0
    core_func_names: dict[int, str] = attrs.Factory(dict)
    #: core function index -> the core instance it is an export of (aliased by name)
    core_func_instances: dict[int, int] = attrs.Factory(dict)
    lifts: list[_Lift] = attrs.Factory(list)
    export_names: set[str] = attrs.Factory(set)
    #: root export name -> component function index, for exported functions
    func_exports: dict[str, int] = attrs.Factory(dict)
    #: imported function index -> import name
    func_imports: dict[int, str] = attrs.Factory(dict)
    #: root export name -> component instance index, for exported instances
    instance_exports: dict[str, int] = attrs.Factory(dict)
    #: type indices a root export names: an exported type and the index its export makes,
    #: the types of an exported bag of exports (a root function's type may name a
    #: resource only through one of these)
    exported_types: set[int] = attrs.Factory(set)
    n_components: int = 0
    n_instances: int = 0
    #: type index -> the type it equals (a root type export names its type again)
    type_equals: dict[int, int] = attrs.Factory(dict)
    #: type index -> (instance index, name): a type aliased from an instance's exports
    type_aliases: dict[int, tuple[int, str]] = attrs.Factory(dict)
    #: type index -> the offsets of its definition and of its section's end, for instance
    #: types (not decoded here; read within their section)
    instance_type_at: dict[int, tuple[int, int]] = attrs.Factory(dict)
    #: instance index -> its instance type's index, for imported instances
    instance_imports: dict[int, int] = attrs.Factory(dict)
    #: component index -> (start, end) in the binary, for the nested components defined
    components: dict[int, tuple[int, int]] = attrs.Factory(dict)
    #: instance index -> (component index or None for a bag of exports, name -> (sort,
    #: index)) for the instances defined by an instance section
    instances: dict[int, tuple[int | None, dict[str, tuple[int, int]]]] = attrs.Factory(dict)


def _deftype(r: _Reader) -> object:
    """One component type definition; raises _Unsupported past what is needed here."""
    b = r.byte()
    if b in _PRIMS:
        return b
    if b == 0x70:
        return ("list", r.valtype())
    if b == 0x6F:
        return ("tuple", tuple(r.valtype() for _ in range(r.u32())))
    if b == 0x6B:
        return ("option", r.valtype())
    if b == 0x6A:
        return ("result", r.casetype(), r.casetype())
    if b == 0x72:
        return ("record", tuple((r.name(), r.valtype()) for _ in range(r.u32())))
    if b == 0x71:
        cases = []
        for _ in range(r.u32()):
            cases.append((r.name(), r.casetype()))
            if r.byte() != 0x00:
                raise _Unsupported("variant case refines")
        return ("variant", tuple(cases))
    if b in (0x6D, 0x6E):
        return ("enum" if b == 0x6D else "flags", tuple(r.name() for _ in range(r.u32())))
    if b in (0x69, 0x68):  # own<T>, borrow<T>: a handle (an i32) of resource type T
        return ("own" if b == 0x69 else "borrow", r.u32())
    if b == 0x3F:  # resource (rep i32) with an optional destructor
        if r.byte() != 0x7F:
            raise _Unsupported("resource representation")
        if r.byte() == 0x01:
            r.u32()
        return ("resource",)
    if b == 0x40:
        params = tuple((r.name(), r.valtype()) for _ in range(r.u32()))
        kind = r.byte()
        if kind == 0x00:
            result: ValType | None = r.valtype()
        elif kind == 0x01 and r.byte() == 0x00:
            result = None
        else:
            raise _Unsupported("named results")
        return ("func", params, result)
    raise _Unsupported(f"type opcode 0x{b:02x}")


def _externdesc(r: _Reader) -> int:
    """Skip an externdesc; return its sort byte (0x01 func, 0x03 type, ...)."""
    sort = r.byte()
    if sort == 0x00:
        if r.byte() != 0x11:
            raise _Unsupported("core extern")
        r.u32()
    elif sort in (0x01, 0x04, 0x05):
        r.u32()
    elif sort == 0x02:  # value bound
        if r.byte() == 0x00:
            r.u32()
        else:
            r.valtype()
    elif sort == 0x03:  # type bound
        if r.byte() == 0x00:
            r.u32()
    else:
        raise _Unsupported(f"externdesc 0x{sort:02x}")
    return sort


def _count(c: _Component, sort: int) -> None:
    if sort == 0x01:
        c.n_funcs += 1
    elif sort == 0x03:
        c.n_types += 1
    elif sort == 0x04:
        c.n_components += 1
    elif sort == 0x05:
        c.n_instances += 1


def _sortidx(r: _Reader) -> tuple[int, int]:
    sort = r.byte()
    if sort == 0x00:
        r.byte()
    return sort, r.u32()


def _read_instances(c: _Component, r: _Reader) -> None:
    """Component instances: instantiations (their arguments) and bags of exports."""
    for _ in range(r.u32()):
        form = r.byte()
        if form == 0x00:
            component: int | None = r.u32()
            items = {r.name(): _sortidx(r) for _ in range(r.u32())}
        elif form == 0x01:
            component = None
            items = {r.extern_name(): _sortidx(r) for _ in range(r.u32())}
        else:
            raise _Unsupported(f"instance form 0x{form:02x}")
        c.instances[c.n_instances] = (component, items)
        c.n_instances += 1


def _read_aliases(c: _Component, r: _Reader) -> None:
    for _ in range(r.u32()):
        sort = r.byte()
        core_sort = r.byte() if sort == 0x00 else None
        target = r.byte()
        instance = -1
        if target == 0x02:
            r.u32()
            r.u32()
            name = None
        else:
            instance = r.u32()
            name = r.name()
            if sort == 0x03 and target == 0x00:
                c.type_aliases[c.n_types] = (instance, name)
        if core_sort == 0x00:
            if target == 0x01 and name is not None:
                c.core_func_names[c.n_core_funcs] = name
                c.core_func_instances[c.n_core_funcs] = instance
            c.n_core_funcs += 1
        elif core_sort == 0x11:
            c.n_core_modules += 1
        elif core_sort == 0x12:
            c.n_core_instances += 1
        elif sort != 0x00:
            _count(c, sort)


def _read_types(c: _Component, r: _Reader) -> None:
    """Decode what can be decoded, count all."""
    n = r.u32()
    decodable = True
    for k in range(n):
        if decodable:
            if r.pos < r.end and r.data[r.pos] == 0x42:  # an instance type: where it is
                c.instance_type_at[c.n_types + k] = (r.pos, r.end)
            try:
                c.types[c.n_types + k] = _deftype(r)
            except _Unsupported:
                decodable = False  # later entries' offsets are unknown
    c.n_types += n


def _canon_options(r: _Reader, view: memoryview) -> list[bytes]:
    options = []
    for _ in range(r.u32()):
        start = r.pos
        opt = r.byte()
        if opt in (0x03, 0x04, 0x05):
            r.u32()
        elif opt not in _ENCODINGS:
            raise _Unsupported(f"canon option 0x{opt:02x}")
        options.append(bytes(view[start : r.pos]))
    return options


def _read_canon(c: _Component, r: _Reader, view: memoryview) -> None:
    for _ in range(r.u32()):
        op = r.byte()
        if op == 0x00:
            if r.byte() != 0x00:
                raise _Unsupported("lift sort")
            func = r.u32()
            options = _canon_options(r, view)
            c.lifts.append(_Lift(func, options, r.u32(), c.n_funcs))
            c.n_funcs += 1
        elif op == 0x01:
            if r.byte() != 0x00:
                raise _Unsupported("lower sort")
            r.u32()
            _canon_options(r, view)
            c.n_core_funcs += 1
        elif op in (0x02, 0x03, 0x04, 0x07):  # resource.new/drop/rep, drop async
            r.u32()
            c.n_core_funcs += 1
        elif op in (0x05, 0x0D, 0x1F, 0x22, 0x23):
            # async built-ins jco emits (task.cancel, subtask.drop, waitable-set.new
            # and .drop, waitable.join): one core function each, no immediates
            c.n_core_funcs += 1
        elif op == 0x06:  # subtask.cancel async?
            r.byte()
            c.n_core_funcs += 1
        elif op in (0x0A, 0x0B):  # context.get / context.set i32 <slot>
            if r.byte() != 0x7F:
                raise _Unsupported("context type")
            r.u32()
            c.n_core_funcs += 1
        else:
            raise _Unsupported(f"canon 0x{op:02x}")


def _read_exports(c: _Component, r: _Reader) -> None:
    for _ in range(r.u32()):
        name = r.extern_name()
        c.export_names.add(name)
        sort = r.byte()
        if sort == 0x00 and r.byte() != 0x11:
            raise _Unsupported("core export")
        index = r.u32()
        if r.byte() == 0x01:
            _externdesc(r)
        if sort == 0x00:
            c.n_core_modules += 1
        elif sort == 0x01:
            c.func_exports[name] = index
        elif sort == 0x05:
            c.instance_exports[name] = index
            bag = c.instances.get(index)
            if bag is not None and bag[0] is None:  # a bag of exports: its types are named
                c.exported_types.update(i for s, i in bag[1].values() if s == 0x03)
        elif sort == 0x03:
            c.exported_types.update((index, c.n_types))
            c.type_equals[c.n_types] = index
        _count(c, sort)


def _read(data: bytes) -> _Component:
    if data[:8] != _PREFIX:
        raise _Unsupported("not a component of the version this reader knows")
    c = _Component()
    view = memoryview(data)
    top = _Reader(view, 8)
    while top.pos < top.end:
        sid = top.byte()
        size = top.u32()
        end = top.pos + size
        if end > top.end:
            raise _Unsupported("truncated section")
        r = _Reader(view, top.pos, end)
        top.pos = end
        if sid == 6:
            _read_aliases(c, r)
        elif sid == 7:
            _read_types(c, r)
        elif sid == 8:
            _read_canon(c, r, view)
        elif sid == 10:  # imports
            for _ in range(r.u32()):
                name = r.extern_name()
                if r.pos < r.end and r.data[r.pos] == 0x05:  # an instance: its type
                    c.instance_imports[c.n_instances] = _Reader(view, r.pos + 1, end).u32()
                sort = _externdesc(r)
                if sort == 0x01:
                    c.func_imports[c.n_funcs] = name
                if sort == 0x00:
                    c.n_core_modules += 1
                _count(c, sort)
        elif sid == 11:
            _read_exports(c, r)
        elif sid == 1:
            c.n_core_modules += 1
        elif sid == 2:
            c.n_core_instances += r.u32()
        elif sid == 4:
            c.components[c.n_components] = (r.pos, end)
            c.n_components += 1
        elif sid == 5:
            _read_instances(c, r)
        elif sid == 9:
            raise _Unsupported("start section")
        # 0 custom, 3 core types: nothing in the index spaces this module adds to.
    return c


class _Rewriter:
    """Rewrites a function type with list<u8> -> string into new type definitions."""

    def __init__(self, c: _Component):
        self.c = c
        self.items: list[bytes] = []

    def resolve(self, t: ValType) -> object:
        if isinstance(t, tuple):
            index = t[1]
            assert isinstance(index, int)
            if index not in self.c.types:
                raise _Unsupported("type not decoded")
            return self.c.types[index]
        return t

    def scan(self, t: ValType | None) -> tuple[bool, bool]:
        """(has list<u8>, has string or something unsupported)."""
        if t is None:
            return False, False
        d = self.resolve(t)
        if isinstance(d, int):
            return False, d == _STRING
        assert isinstance(d, tuple)
        kind = d[0]
        if kind == "list":
            inner = self.resolve(d[1])
            if inner == _U8:
                return True, False
            return self.scan(d[1])
        if kind == "tuple":
            parts = [self.scan(e) for e in d[1]]
        elif kind == "option":
            parts = [self.scan(d[1])]
        elif kind == "result":
            parts = [self.scan(d[1]), self.scan(d[2])]
        else:
            return False, True
        return any(p[0] for p in parts), any(p[1] for p in parts)

    def emit(self, t: ValType) -> bytes:
        """The encoding of ``t`` rewritten, defining new types as needed."""
        d = self.resolve(t)
        if isinstance(d, int):
            return bytes([d])
        assert isinstance(d, tuple)
        kind = d[0]
        if kind == "list" and self.resolve(d[1]) == _U8:
            return bytes([_STRING])
        if kind == "list":
            body = b"\x70" + self.emit(d[1])
        elif kind == "tuple":
            elems = d[1]
            assert isinstance(elems, tuple)
            body = b"\x6f" + _leb(len(elems)) + b"".join(self.emit(e) for e in elems)
        elif kind == "option":
            body = b"\x6b" + self.emit(d[1])
        elif kind == "result":
            body = b"\x6a" + b"".join(
                b"\x00" if part is None else b"\x01" + self.emit(part) for part in (d[1], d[2])
            )
        else:
            raise _Unsupported(kind)  # pragma: no cover - scan() refused it first
        self.items.append(body)
        return _s33(self.c.n_types + len(self.items) - 1)

    def func(
        self,
        params: tuple[tuple[str, ValType], ...],
        result: ValType | None,
        *,
        rewrite_result: bool,
    ) -> int:
        encoded = _leb(len(params)) + b"".join(_name(n) + self.emit(t) for n, t in params)
        if result is None:
            encoded += b"\x01\x00"
        elif rewrite_result:
            encoded += b"\x00" + self.emit(result)
        else:
            encoded += b"\x00" + self.original(result)
        self.items.append(b"\x40" + encoded)
        return self.c.n_types + len(self.items) - 1

    @staticmethod
    def original(t: ValType) -> bytes:
        return bytes([t]) if isinstance(t, int) else _s33(int(t[1]))  # type: ignore[call-overload]

    def is_bytes(self, t: ValType | None) -> bool:
        if t is None:
            return False
        d = self.resolve(t)
        return isinstance(d, tuple) and d[0] == "list" and self.resolve(d[1]) == _U8

    def flat(self, t: ValType) -> list[int]:
        """The canonical ABI's flattening of ``t`` into core value types."""
        d = self.resolve(t)
        if isinstance(d, int):
            if d in (0x78, 0x77):  # s64, u64
                return [_I64]
            if d == 0x76:
                return [_F32]
            if d == 0x75:
                return [_F64]
            if d == _STRING:
                return [_I32, _I32]
            return [_I32]
        assert isinstance(d, tuple)
        kind = d[0]
        if kind == "list":
            return [_I32, _I32]
        if kind == "tuple":
            return [v for e in d[1] for v in self.flat(e)]
        if kind == "record":
            return [v for _, e in d[1] for v in self.flat(e)]
        if kind in ("enum", "own", "borrow"):
            return [_I32]
        if kind == "flags":
            return [_I32] * ((len(d[1]) + 31) // 32)
        if kind == "variant":
            cases = [ct for _, ct in d[1]]
        else:
            cases = [d[1]] if kind == "option" else [d[1], d[2]]
        joined: list[int] = []
        for case in cases:
            if case is None:
                continue
            for i, v in enumerate(self.flat(case)):
                if i == len(joined):
                    joined.append(v)
                elif joined[i] != v:
                    both = {joined[i], v}
                    joined[i] = _I32 if both == {_I32, _F32} else _I64
        return [_I32, *joined]


# ------------------------------------------------------------------ the shim core module
#
# The added lifts point their `realloc` at the shim's, which shrinks a block in place
# (wasmtime shrinks the block it lowered a non-ASCII latin1 string into, and not every
# guest's cabi_realloc can: componentize-py's traps, sloppy ones do not copy). A function
# returning `list<u8>` is lifted through a shim wrapper: a latin1 string must start at an
# even address while a byte list may start anywhere (Rust's empty Vec sits at 1), so the
# wrapper copies an odd-addressed result to a fresh even block of the guest's, and its
# post-return puts the guest's own pointer back before the guest's post-return frees it.

_I32, _I64, _F32, _F64 = 0x7F, 0x7E, 0x7D, 0x7C


def _functype(params: list[int], results: list[int]) -> bytes:
    return b"\x60" + _leb(len(params)) + bytes(params) + _leb(len(results)) + bytes(results)


def _code(locals_i32: int, body: bytes) -> bytes:
    decl = (b"\x01" + _leb(locals_i32) + bytes([_I32])) if locals_i32 else b"\x00"
    func = decl + body + b"\x0b"
    return _leb(len(func)) + func


def _get(i: int) -> bytes:
    return b"\x20" + _leb(i)


def _call(f: int) -> bytes:
    return b"\x10" + _leb(f)


@attrs.frozen
class _Wrapped:
    flat_params: tuple[int, ...]
    has_post: bool


def _shim_module(wrapped: list[_Wrapped]) -> bytes:
    """Imports m.memory, m.realloc, m.f<k> and m.p<k>; exports realloc, f<k>, p<k>."""
    types = [_functype([_I32] * 4, [_I32]), _functype([_I32], [])]
    imports = [
        _name("m") + _name("memory") + b"\x02\x00\x00",
        _name("m") + _name("realloc") + b"\x00\x00",
    ]
    f_imports: list[int] = []
    p_imports: list[int | None] = []
    n_imported = 1
    for k, w in enumerate(wrapped):
        types.append(_functype(list(w.flat_params), [_I32]))
        imports.append(_name("m") + _name(f"f{k}") + b"\x00" + _leb(len(types) - 1))
        f_imports.append(n_imported)
        n_imported += 1
        if w.has_post:
            imports.append(_name("m") + _name(f"p{k}") + b"\x00\x01")
            p_imports.append(n_imported)
            n_imported += 1
        else:
            p_imports.append(None)
    # realloc(old, old_size, align, new): in place when shrinking, else the guest's
    realloc = (
        _get(0) + b"\x04\x7f"  # if (result i32) old != 0
        + _get(3) + _get(1) + b"\x4d"  # new <= old_size
        + b"\x04\x7f" + _get(0)  # if: old
        + b"\x05" + _get(0) + _get(1) + _get(2) + _get(3) + _call(0) + b"\x0b"
        + b"\x05" + _get(0) + _get(1) + _get(2) + _get(3) + _call(0) + b"\x0b"
    )  # fmt: skip
    funcs = [0]
    codes = [_code(0, realloc)]
    exports = [_name("realloc") + b"\x00" + _leb(n_imported)]
    for k, w in enumerate(wrapped):
        n = len(w.flat_params)
        r, ptr, size, copy = n, n + 1, n + 2, n + 3
        body = (
            b"".join(_get(i) for i in range(n)) + _call(f_imports[k])
            + b"\x22" + _leb(r)  # local.tee r (the return area)
            + b"\x28\x02\x00" + b"\x22" + _leb(ptr)  # ptr = i32.load r
            + b"\x24\x00"  # global.set 0: the guest's pointer, for the post-return
            + _get(ptr) + b"\x41\x01\x71" + b"\x04\x40"  # if ptr & 1
            + _get(r) + b"\x28\x02\x04" + b"\x21" + _leb(size)  # size = i32.load offset=4
            + b"\x41\x00\x41\x00\x41\x02" + _get(size) + _call(0)  # guest realloc(0,0,2,size)
            + b"\x21" + _leb(copy)
            + _get(copy) + _get(ptr) + _get(size) + b"\xfc\x0a\x00\x00"  # memory.copy
            + _get(r) + _get(copy) + b"\x36\x02\x00"  # i32.store r copy
            + b"\x0b" + _get(r)
        )  # fmt: skip
        funcs.append(2 + k)
        codes.append(_code(4, body))
        exports.append(_name(f"f{k}") + b"\x00" + _leb(n_imported + len(funcs) - 1))
        post = p_imports[k]
        if post is not None:
            # put the guest's pointer back, then let the guest free what it allocated
            restore = _get(0) + b"\x23\x00" + b"\x36\x02\x00" + _get(0) + _call(post)
            funcs.append(1)
            codes.append(_code(0, restore))
            exports.append(_name(f"p{k}") + b"\x00" + _leb(n_imported + len(funcs) - 1))
    globals_ = [b"\x7f\x01\x41\x00\x0b"]  # (global (mut i32) (i32.const 0))
    sections = [
        (1, types),
        (2, imports),
        (3, [_leb(t) for t in funcs]),
        (6, globals_),
        (7, exports),
        (10, codes),
    ]
    return _core_module(sections)


def _core_sort(sort: int, index: int) -> bytes:
    return bytes([sort]) + _leb(index)


def _func_exports(first_func: int, names: list[str]) -> list[bytes]:
    """Export items naming component functions ``first_func``, ``first_func + 1``, ... in
    order (each appended shim's new lifts)."""
    return [
        b"\x00" + _name(n) + b"\x01" + _leb(first_func + j) + b"\x00" for j, n in enumerate(names)
    ]


def _wire_shim(
    c: _Component, imports: list[tuple[str, int, int]], exports: list[str]
) -> tuple[bytes, dict[str, int]]:
    """Sections 2 and 6 that instantiate the shim module appended next (the component's
    next core module) with ``imports`` — (name, core sort, index) of the guest's own core
    items, under module "m" — and alias its ``exports`` as core functions; and the core
    function index each of those gets. The three shims (this module's, measure's and
    rawbytes') are wired alike."""
    args = [_name(n) + _core_sort(sort, index) for n, sort, index in imports]
    arg_instance = c.n_core_instances
    instances = [
        b"\x01" + _leb(len(args)) + b"".join(args),
        b"\x00" + _leb(c.n_core_modules) + _leb(1) + _name("m") + b"\x12" + _leb(arg_instance),
    ]
    aliases = [b"\x00\x00\x01" + _leb(arg_instance + 1) + _name(n) for n in exports]
    core = {n: c.n_core_funcs + j for j, n in enumerate(exports)}
    return _section(2, instances) + _section(6, aliases), core


def _shim_tail(
    shim: bytes, wiring: bytes, types: bytes, lifts: list[bytes], exports: list[bytes]
) -> bytes:
    """The bytes appended to a component: the shim module, its wiring (:func:`_wire_shim`),
    the new function types (encoded sections), the new lifts and their exports."""
    return (
        b"\x01" + _leb(len(shim)) + shim
        + wiring
        + types
        + _section(8, lifts)
        + _section(11, exports)
    )  # fmt: skip


Plan = tuple[bytes, tuple[FastExport, ...]]


def add_byte_exports(data: bytes) -> Plan | None:
    """``data`` with a latin1-string export added for every eligible exported function,
    and what was added; None when there is nothing to add or the layout is not understood.
    """
    plan = byte_export_tail(data)
    return None if plan is None else (data + plan[0], plan[1])


def encode_plan(plan: Plan | None) -> bytes:
    """``plan`` (or its absence) as bytes, to keep beside the compile cache."""
    import json

    added = [] if plan is None else [[a.interface, a.function, a.name, a.kind] for a in plan[1]]
    header = json.dumps({"version": PLAN_VERSION, "added": added}).encode()
    return header + b"\n" + (b"" if plan is None else plan[0])


def decode_plan(blob: bytes) -> Plan | None:
    """The inverse of :func:`encode_plan`; ValueError for anything else."""
    import json

    header, sep, tail = blob.partition(b"\n")
    meta = json.loads(header)
    if not sep or not isinstance(meta, dict) or meta.get("version") != PLAN_VERSION:
        raise ValueError("not a byte-export plan of this version")
    added = tuple(FastExport(*entry) for entry in meta["added"])
    if not added:
        return None
    if not tail:
        raise ValueError("plan without its sections")
    return tail, added


def byte_export_tail(data: bytes) -> Plan | None:
    """The sections to append to ``data`` (see the module docstring) and what they add;
    None when there is nothing to add or the layout is not understood.

    Never raises: the byte-buffer exports are an optimisation, and this reader sees the
    binary before wasmtime has validated it. Whatever goes wrong reading a malformed
    component (a RecursionError from deeply nested types, IndexError, struct.error,
    UnicodeDecodeError...) only declines the fast path; loading goes on and wasmtime's
    own validation reports what is wrong with the component.
    """
    try:
        return _byte_export_tail(data)
    except _Unsupported:
        return None
    except Exception as exc:
        log.debug("no byte-buffer exports: reading the component failed (%r)", exc)
        return None


#: The most nodes the parameter and result types of one function may expand to, each use
#: of a named type counted again: the rewriters' walks (and the code measure.py makes)
#: follow a type so, and a few hundred bytes of types naming the one before twice expand
#: to billions (26 such tuples, 439 bytes, held a load for hours). wasmtime itself
#: refuses a type past 1,000,000 (its effective type size). Our 173 built guests' largest
#: function is 57 nodes and their largest component 188 in all. Past either bound a
#: function is left as it is (element by element).
MOST_TYPE_NODES: Final = 5_000
#: The most nodes one rewriter walks for all of a component's functions together.
MOST_COMPONENT_TYPE_NODES: Final = 50_000


class TypeBudget:
    """What one rewriter's pass may walk of a component's function types: each function
    at most :data:`MOST_TYPE_NODES`, all together :data:`MOST_COMPONENT_TYPE_NODES`."""

    __slots__ = ("left",)

    def __init__(self) -> None:
        self.left = MOST_COMPONENT_TYPE_NODES

    def most(self) -> int:
        return min(MOST_TYPE_NODES, self.left)

    def check(self, resolve: Callable[[ValType], object], types: Iterable[ValType | None]) -> None:
        """Spend what ``types`` expand to; _Unsupported (nothing spent) past the bounds."""
        self.left -= check_type_size(resolve, types, self.most())


def type_parts(d: tuple[object, ...]) -> list[Any]:
    """The types a decoded definition ``d`` holds (its fields, elements or cases; none
    for enums, flags and handles)."""
    kind, rest = d[0], d[1:]
    if kind == "tuple":
        return list(rest[0])  # type: ignore[call-overload, no-any-return]
    if kind in ("record", "variant"):
        return [p for _, p in rest[0]]  # type: ignore[attr-defined]
    if kind in ("list", "option", "result"):
        return list(rest)
    return []


def check_type_size(
    resolve: Callable[[ValType], object],
    types: Iterable[ValType | None],
    most: int = MOST_TYPE_NODES,
) -> int:
    """The nodes ``types`` expand to (a primitive is one), counted in time linear in the
    definitions (each definition's count is remembered); _Unsupported past ``most``, or
    for a type that names itself or is not decoded (``resolve``'s own error)."""

    def children(t: ValType) -> tuple[int, list[Any]] | None:
        d = resolve(t)
        return (id(d), type_parts(d)) if isinstance(d, tuple) else None

    return count_type_nodes(children, types, most)


def count_type_nodes(
    children: Callable[[Any], tuple[int, list[Any]] | None],
    types: Iterable[Any],
    most: int,
) -> int:
    """The nodes ``types`` expand to, each use of a definition counted again, in time
    linear in the definitions: ``children(t)`` is None for a primitive, else the
    definition's key (its count is remembered by it) and the types it holds; None counts
    nothing. _Unsupported past ``most``, or for a definition that holds itself."""
    memo: dict[int, int] = {}
    busy: set[int] = set()

    def nodes(t: Any) -> int:
        if t is None:
            return 0
        found = children(t)
        if found is None:
            return 1
        key, parts = found
        n = memo.get(key)
        if n is not None:
            return n
        if key in busy or len(busy) > 64:
            raise _Unsupported("a type naming itself, or nested too deep")
        busy.add(key)
        n = 1
        for p in parts:
            n += nodes(p)
            if n > most:
                raise _Unsupported(f"types expanding to more than {most:,} nodes")
        busy.discard(key)
        memo[key] = n
        return n

    total = 0
    for t in types:
        total += nodes(t)
        if total > most:
            raise _Unsupported(f"types expanding to more than {most:,} nodes")
    return total


_Picked = list[tuple[_Lift, str | None, str, bool]]


def _pick(c: _Component, rewriter: _Rewriter) -> tuple[_Picked, int | None, int | None]:
    """The lifts to add a byte-buffer export for, their memory and the guest's realloc."""
    names = {v: k for k, v in c.core_func_names.items()}
    guest_realloc = names.get("cabi_realloc")
    memory: int | None = None
    picked: _Picked = []
    seen: set[tuple[str | None, str]] = set()
    budget = TypeBudget()
    for lift in c.lifts:
        core_name = c.core_func_names.get(lift.core_func)
        if core_name is None or core_name.startswith("cabi_"):
            continue
        interface, _, function = core_name.rpartition("#")
        key = (interface or None, function)
        if key in seen or (interface and interface not in c.export_names):
            continue
        deftype = c.types.get(lift.type_index)
        if not (isinstance(deftype, tuple) and deftype[0] == "func"):
            continue
        params, result = deftype[1], deftype[2]
        assert isinstance(params, tuple)
        try:
            budget.check(rewriter.resolve, [*(t for _, t in params), result])
            scans = [rewriter.scan(t) for _, t in params]
            result_scan = rewriter.scan(result)
        except _Unsupported:
            continue
        if any(s[1] for s in scans) or result_scan[1]:
            continue  # a string would be transcoded, or a type this module leaves alone
        rewrite_result = rewriter.is_bytes(result)
        if not any(s[0] for s in scans) and not rewrite_result:
            continue  # bytes only deeper inside the result: nothing to gain
        lift_memory = lift.option(0x03)
        guest_realloc = lift.option(0x04) if guest_realloc is None else guest_realloc
        if lift_memory is None or (memory is not None and lift_memory != memory):
            continue
        memory = lift_memory
        seen.add(key)
        picked.append((lift, key[0], function, rewrite_result))
    return picked, memory, guest_realloc


def _byte_lifts(
    c: _Component,
    rewriter: _Rewriter,
    picked: _Picked,
    wrapper_of: dict[int, int],
    shim_func: dict[str, int],
    memory: int,
) -> tuple[list[bytes], list[FastExport]] | None:
    """The canon lifts of the byte-buffer exports, and what they add."""
    lifts: list[bytes] = []
    added: list[FastExport] = []
    for i, (lift, iface, function, rewrite_result) in enumerate(picked):
        name = f"{FAST_EXPORT_PREFIX}{len(added)}"
        if name in c.export_names:
            return None
        deftype = c.types[lift.type_index]
        assert isinstance(deftype, tuple)
        try:
            type_index = rewriter.func(deftype[1], deftype[2], rewrite_result=rewrite_result)
        except _Unsupported:
            return None
        core_func = lift.core_func
        post = lift.option(0x05)
        if i in wrapper_of:
            core_func = shim_func[f"f{wrapper_of[i]}"]
            if post is not None:
                post = shim_func[f"p{wrapper_of[i]}"]
        options = [
            b"\x03" + _leb(memory),
            b"\x04" + _leb(shim_func["realloc"]),
            bytes([_LATIN1_UTF16]),
        ]
        if post is not None:
            options.append(b"\x05" + _leb(post))
        lifts.append(
            b"\x00\x00"
            + _leb(core_func)
            + _leb(len(options))
            + b"".join(options)
            + _leb(type_index)
        )
        added.append(FastExport(iface, function, name))
    return lifts, added


def _byte_export_tail(data: bytes) -> Plan | None:
    c = _read(data)
    rewriter = _Rewriter(c)
    picked, memory, guest_realloc = _pick(c, rewriter)
    if not picked or memory is None or guest_realloc is None:
        return None

    wrapped: list[_Wrapped] = []
    wrapper_of: dict[int, int] = {}
    for i, (lift, _, _, rewrite_result) in enumerate(picked):
        if rewrite_result:
            deftype = c.types[lift.type_index]
            assert isinstance(deftype, tuple)
            flat = [v for _, t in deftype[1] for v in rewriter.flat(t)]
            if len(flat) > 16:  # passed through memory as one pointer
                flat = [_I32]
            wrapper_of[i] = len(wrapped)
            wrapped.append(_Wrapped(tuple(flat), lift.option(0x05) is not None))

    # The shim: one core module, instantiated with the guest's memory, realloc and the
    # wrapped functions, and its exports aliased as core functions.
    imports = [("memory", 0x02, memory), ("realloc", 0x00, guest_realloc)]
    for i, k in wrapper_of.items():
        lift = picked[i][0]
        imports.append((f"f{k}", 0x00, lift.core_func))
        post = lift.option(0x05)
        if post is not None:
            imports.append((f"p{k}", 0x00, post))
    alias_names = ["realloc"]
    for k, w in enumerate(wrapped):
        alias_names.append(f"f{k}")
        if w.has_post:
            alias_names.append(f"p{k}")
    wiring, shim_func = _wire_shim(c, imports, alias_names)

    made = _byte_lifts(c, rewriter, picked, wrapper_of, shim_func, memory)
    if made is None:
        return None
    lifts, added = made
    exports = _func_exports(c.n_funcs, [fast.name for fast in added])
    tail = _shim_tail(_shim_module(wrapped), wiring, _section(7, rewriter.items), lifts, exports)
    return tail, tuple(added)
