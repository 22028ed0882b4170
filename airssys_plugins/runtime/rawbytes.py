"""Raw exports: what the host needs to move bytes through a guest's memory itself.

The latin1 byte-buffer exports of :mod:`.relift` still make wasmtime transcode every byte
at or above 0x80, twice per direction. The raw route transcodes nothing: the host asks
the guest's allocator for a block, copies the bytes in with ``memmove``, calls the same
core function with the pointers and lengths, reads the result out of the guest's memory
and lets the guest free it, exactly as the canonical ABI does it (see :mod:`.rawabi` for
the host side and :mod:`.guestmem` for how the memory is found). For every exported
function moving a list or a string, a component gets, appended to its binary:

* ``airssys-raw-alloc: func(align: u32, size: u32) -> u64``: the guest's own
  ``cabi_realloc(0, 0, align, size)`` (the one the function's lift names: a component
  with several gets ``airssys-raw-alloc1``, ...); the result is ``memory pages << 32 |
  pointer``, so the host checks every pointer against the memory size as of that call;
* ``airssys-raw-allocs: func(table: u32, n: u32) -> u64`` beside it: the same allocator
  called ``n`` times in one call, for the ``(align, size)`` pairs the host wrote at
  ``table`` (a block of the call's own, not yet filled), each pointer written over its
  pair; the result is ``table`` packed likewise (a call lowering many strings or lists
  then calls into the guest a few times, not once per block);
* ``airssys-raw-probe: func(a: u64, b: u64) -> u64``: a fresh 16-byte block holding
  ``a ^ b`` and ``a + b`` (packed likewise), used once per instance to find the memory.
  A component with no allocator (a hand-written one, say) whose imports take lists or
  strings raw gets ``airssys-raw-probe-at-zero`` instead: it writes the 16 bytes at
  address 0, keeping the bytes that were there in its own globals, and ``probe(0, 0)``
  writes those back (the host calls it once the memory is found); a memory of no page
  grows one first;
* ``airssys-raw-f<k>: func(p0: u32, ...) -> u64``: the *same* core function as the export
  ``interface#function``, lifted with its core signature (the flat parameters as
  ``u32``/``u64``/``f32``/``f64``; a result read from a return area gives that area's
  pointer, packed; a single flat result is returned as is), and *without* post-return,
  so the result is still allocated when the call returns;
* ``airssys-raw-p<k>: func(r: ...)``: that export's post-return, lifted on its own; the
  host calls it once the result is copied out.

wasmtime validates nothing on these calls (no list or string in their types), so the host
checks every pointer and length. The binary is emitted with :mod:`.relift`'s reader and
encoders; pure Python, no wasmtime. Anything not understood declines (returns None): the
worst case is the latin1 route, or the element-by-element one.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Collection, Sequence
from typing import Final

from .. import _attrs as attrs
from .. import _log as logging
from ..contract import wit
from . import relift as _r
from .plans import (
    ALLOC,
    PROBE,
    PROBE_AT_ZERO,
    RAW_IMPORTS,
    RAW_PLAN_VERSION,
    RAW_PREFIX,
    ExportPlan,
    NestedPatch,
    RawExport,
    RawExports,
    RawPlan,
    ShimFold,
    allocs_name,
    decode_raw_plan,
    encode_raw_plan,
    raw_names,
)
from .rawimports import AliasedTypes, import_patch, imported_instances

__all__ = [
    "RAW_PLAN_VERSION",
    "RAW_PREFIX",
    "RawExport",
    "RawPlan",
    "add_raw_exports",
    "decode_raw_plan",
    "encode_raw_plan",
    "raw_export_tail",
    "raw_names",
]

log = logging.getLogger("airssys_plugins.runtime")


_I32, _I64, _F32, _F64 = _r._I32, _r._I64, _r._F32, _r._F64
#: The component primitive a core value type is lifted as (u32, u64, f32, f64).
_CORE_TO_PRIM: Final = {_I32: 0x79, _I64: 0x77, _F32: 0x76, _F64: 0x75}
_U32, _U64 = 0x79, 0x77
_STRING: Final = 0x73
_UTF8: Final = 0x00
#: Component primitives the host side (rawabi) reads and writes: bool .. string.
_COVERED_PRIMS: Final = frozenset(range(0x73, 0x80))
#: Flattened parameters beyond this go through memory (canonical ABI MAX_FLAT_PARAMS).
_MAX_FLAT_PARAMS: Final = 16


# ------------------------------------------------------------------ a small core module


@attrs.define
class _CoreModule:
    """A core module under construction; functions are referred to by name, and each
    body is built once every index is known (imported functions come first)."""

    types: list[bytes] = attrs.Factory(list)
    imports: list[bytes] = attrs.Factory(list)
    func_names: list[str] = attrs.Factory(list)  # imported, then defined
    n_imported: int = 0
    defined: list[tuple[int, int, Callable[[Callable[[str], int]], bytes]]] = attrs.Factory(list)
    exports: list[tuple[str, str]] = attrs.Factory(list)
    globals_: list[bytes] = attrs.Factory(list)  # each encoded: type, mutability, init

    def global_i64(self) -> int:
        """A new mutable ``i64`` global set to 0; its index."""
        self.globals_.append(b"\x7e\x01\x42\x00\x0b")
        return len(self.globals_) - 1

    def type(self, params: list[int], results: list[int]) -> int:
        encoded = _r._functype(params, results)
        if encoded not in self.types:
            self.types.append(encoded)
        return self.types.index(encoded)

    def import_memory(self, module: str, name: str) -> None:
        # any 32-bit, unshared memory (min 0, no max)
        self.imports.append(_r._name(module) + _r._name(name) + b"\x02\x00\x00")

    def import_func(self, module: str, name: str, params: list[int], results: list[int]) -> None:
        assert not self.defined, "imports come before definitions"
        t = self.type(params, results)
        self.imports.append(_r._name(module) + _r._name(name) + b"\x00" + _r._leb(t))
        self.func_names.append(name)
        self.n_imported += 1

    def func(
        self,
        name: str,
        params: list[int],
        results: list[int],
        locals_i32: int,
        body: Callable[[Callable[[str], int]], bytes],
        *,
        export: str | None = None,
    ) -> None:
        self.defined.append((self.type(params, results), locals_i32, body))
        self.func_names.append(name)
        if export is not None:
            self.exports.append((export, name))

    def encode(self) -> bytes:
        index = {n: i for i, n in enumerate(self.func_names)}
        codes = [
            _r._code(locals_i32, body(index.__getitem__)) for _, locals_i32, body in self.defined
        ]
        sections = [
            (1, self.types),
            (2, self.imports),
            (3, [_r._leb(t) for t, _, _ in self.defined]),
            *([(6, self.globals_)] if self.globals_ else []),
            (7, [_r._name(e) + b"\x00" + _r._leb(index[f]) for e, f in self.exports]),
            (10, codes),
        ]
        return _r._core_module(sections)


def _pack_pages(local_ptr: int) -> bytes:
    """``i64.extend_i32_u(memory.size) << 32 | i64.extend_i32_u(local ptr)``"""
    return (
        b"\x3f\x00\xad"  # memory.size 0, i64.extend_i32_u
        + b"\x42\x20\x86"  # i64.const 32, i64.shl
        + _r._get(local_ptr) + b"\xad"  # local.get ptr, i64.extend_i32_u
        + b"\x84"  # i64.or
    )  # fmt: skip


def add_raw_shim_functions(
    module: _CoreModule, n_reallocs: int, wrapped: list[tuple[int, ...]]
) -> None:
    """Add ``alloc<j>``, ``probe`` and a ``rw<k>`` wrapper per function returning through a
    return area to ``module``, which imports ``memory``, ``realloc<j>`` (the guest's
    allocators) and ``rf<k>`` (the wrapped core functions) already."""

    def alloc(idx: Callable[[str], int], j: int = 0) -> bytes:
        # p = realloc(0, 0, align, size): exactly the call wasmtime makes to lower a list
        return (
            b"\x41\x00\x41\x00" + _r._get(0) + _r._get(1) + _r._call(idx(f"realloc{j}"))
            + b"\x21\x02" + _pack_pages(2)
        )  # fmt: skip

    def probe(idx: Callable[[str], int]) -> bytes:
        # The values are mixed after the allocation, right before they are stored: a
        # spill of the arguments (kept across the call) is never the 16 bytes looked for.
        return (
            b"\x41\x00\x41\x00\x41\x08\x41\x10" + _r._call(idx("realloc0")) + b"\x21\x02"
            + _r._get(2) + _r._get(0) + _r._get(1) + b"\x85"  # a ^ b
            + b"\x37\x03\x00"  # i64.store align=8 offset=0
            + _r._get(2) + _r._get(0) + _r._get(1) + b"\x7c"  # a + b
            + b"\x37\x03\x08"  # i64.store align=8 offset=8
            + _pack_pages(2)
        )  # fmt: skip

    def allocs(idx: Callable[[str], int], j: int = 0) -> bytes:
        # for i in 0..n: at = table + 8 i; *at = realloc(0, 0, at[0], at[4]), in order
        # (locals: 0 table, 1 n, 2 i, 3 at, 4 p; unaligned loads and stores: the table
        # is any block of the call's own, see rawabi.RawCallPlan)
        return (
            b"\x02\x40\x03\x40"  # block, loop
            + _r._get(2) + _r._get(1) + b"\x4f\x0d\x01"  # i >= n: br_if out
            + _r._get(0) + _r._get(2) + b"\x41\x03\x74\x6a\x21\x03"  # at = table + (i << 3)
            + b"\x41\x00\x41\x00"
            + _r._get(3) + b"\x28\x00\x00" + _r._get(3) + b"\x28\x00\x04"  # align, size
            + _r._call(idx(f"realloc{j}")) + b"\x21\x04"
            + _r._get(3) + _r._get(4) + b"\x36\x00\x00"  # *at = p
            + _r._get(2) + b"\x41\x01\x6a\x21\x02"  # i += 1
            + b"\x0c\x00\x0b\x0b"  # br loop, end, end
            + _pack_pages(0)
        )  # fmt: skip

    for j in range(n_reallocs):
        body = functools.partial(alloc, j=j)
        module.func(f"alloc{j}", [_I32, _I32], [_I64], 1, body, export=f"alloc{j}")
        many = functools.partial(allocs, j=j)
        module.func(f"allocs{j}", [_I32, _I32], [_I64], 3, many, export=f"allocs{j}")
    if n_reallocs:
        module.func("probe", [_I64, _I64], [_I64], 1, probe, export="probe")
    else:
        add_probe_at_zero(module)
    for k, flat in enumerate(wrapped):
        n = len(flat)

        def wrapper(idx: Callable[[str], int], k: int = k, n: int = n) -> bytes:
            return (
                b"".join(_r._get(i) for i in range(n)) + _r._call(idx(f"rf{k}"))
                + b"\x21" + _r._leb(n) + _pack_pages(n)
            )  # fmt: skip

        module.func(f"rw{k}", list(flat), [_I64], 1, wrapper, export=f"rw{k}")


def add_probe_at_zero(module: _CoreModule) -> None:
    """Add ``probe`` for a component without an allocator: ``probe(a, b)`` keeps the 16
    bytes at address 0 (the first call only), writes ``a ^ b`` and ``a + b`` there and
    returns ``pages << 32``; ``probe(0, 0)`` writes the kept bytes back. A memory of no
    page grows one first (as an allocator would); if it cannot, the result is 0 and the
    host finds no memory."""
    low, high, held = module.global_i64(), module.global_i64(), module.global_i64()

    def body(idx: Callable[[str], int]) -> bytes:
        at0 = b"\x41\x00"  # i32.const 0
        return (
            b"\x3f\x00\x45\x04\x40"  # no page: grow one, or return 0 if it cannot
            + b"\x41\x01\x40\x00\x41\x7f\x46\x04\x40\x42\x00\x0f\x0b\x0b"
            + _r._get(0) + b"\x50" + _r._get(1) + b"\x50\x71"  # a == 0 and b == 0:
            + b"\x04\x40"  # put the kept bytes back
            + _global_get(held) + b"\x50\x45\x04\x40"
            + at0 + _global_get(low) + b"\x37\x03\x00"
            + at0 + _global_get(high) + b"\x37\x03\x08"
            + b"\x42\x00" + _global_set(held)
            + b"\x0b\x42\x00\x0f\x0b"
            + _global_get(held) + b"\x50\x04\x40"  # first probe: keep the 16 bytes
            + at0 + b"\x29\x03\x00" + _global_set(low)
            + at0 + b"\x29\x03\x08" + _global_set(high)
            + b"\x42\x01" + _global_set(held)
            + b"\x0b"
            + at0 + _r._get(0) + _r._get(1) + b"\x85\x37\x03\x00"  # a ^ b at 0
            + at0 + _r._get(0) + _r._get(1) + b"\x7c\x37\x03\x08"  # a + b at 8
            + _pack_pages(2)  # (local 2, the pointer, is 0)
        )  # fmt: skip

    module.func("probe", [_I64, _I64], [_I64], 1, body, export="probe")


def _global_get(index: int) -> bytes:
    return b"\x23" + _r._leb(index)


def _global_set(index: int) -> bytes:
    return b"\x24" + _r._leb(index)


# ------------------------------------------------------------------ choosing functions


@attrs.frozen
class RawPick:
    """A lifted export the raw route covers."""

    lift: _r._Lift
    interface: str | None
    function: str
    params: tuple[int, ...]
    results: tuple[int, ...]
    realloc: int | None

    @property
    def retptr(self) -> bool:
        return len(self.results) > 1


def _covered(rw: _r._Rewriter, t: _r.ValType | None, depth: int = 0) -> tuple[bool, bool]:
    """(covered by rawabi, holds a list or a string); raises _Unsupported."""
    if t is None:
        return True, False
    if depth > 32:
        raise _r._Unsupported("type too deep")
    d = rw.resolve(t)
    if isinstance(d, int):
        return d in _COVERED_PRIMS, d == _STRING
    assert isinstance(d, tuple)
    kind = d[0]
    if kind == "list":
        ok, _ = _covered(rw, d[1], depth + 1)
        return ok, True
    if kind == "tuple":
        parts = [_covered(rw, e, depth + 1) for e in d[1]]
    elif kind == "option":
        parts = [_covered(rw, d[1], depth + 1)]
    elif kind == "result":
        parts = [_covered(rw, d[1], depth + 1), _covered(rw, d[2], depth + 1)]
    elif kind in ("record", "variant"):
        parts = [_covered(rw, e, depth + 1) for _, e in d[1]]
    elif kind in ("enum", "flags"):
        return True, False
    else:
        return False, False  # resource handles
    return all(p[0] for p in parts), any(p[1] for p in parts)


def _has_string(rw: _r._Rewriter, t: _r.ValType | None) -> bool:
    if t is None:
        return False
    d = rw.resolve(t)
    if isinstance(d, int):
        return d == _STRING
    assert isinstance(d, tuple)
    return any(_has_string(rw, p) for p in _r.type_parts(d) if p is not None)


class _Resolver(_r._Rewriter):
    """The root's types as :mod:`.relift` decodes them, and the types a root function
    names through an imported instance's exports (see :class:`.rawimports.AliasedTypes`)."""

    def __init__(self, c: _r._Component, data: bytes):
        super().__init__(c)
        self.aliased = AliasedTypes(c, data)

    def resolve(self, t: _r.ValType) -> object:
        return self.aliased.resolve(t)


def raw_picks(c: _r._Component, data: bytes) -> tuple[list[RawPick], int | None, list[int]]:
    """The lifted exports of ``c`` (read from ``data``) the raw route covers, the memory
    they share (functions with another memory are left out) and the allocators they
    name, in order."""
    rw = _Resolver(c, data)
    budget = _r.TypeBudget()
    names = {v: k for k, v in c.core_func_names.items()}
    reallocs: list[int] = []
    memory: int | None = None
    picked: list[RawPick] = []
    seen: set[tuple[str | None, str]] = set()
    for lift in c.lifts:
        core_name = c.core_func_names.get(lift.core_func)
        if core_name is None or core_name.startswith("cabi_"):
            continue
        interface, _, function = core_name.rpartition("#")
        key = (interface or None, function)
        exported = interface if interface else function
        if key in seen or exported not in c.export_names:
            continue
        deftype = c.types.get(lift.type_index)
        if not (isinstance(deftype, tuple) and deftype[0] == "func"):
            continue
        params, result = deftype[1], deftype[2]
        assert isinstance(params, tuple)
        try:
            budget.check(rw.resolve, [*(t for _, t in params), result])
            scans = [_covered(rw, t) for _, t in params] + [_covered(rw, result)]
            if not all(s[0] for s in scans) or not any(s[1] for s in scans):
                continue
            flat = [v for _, t in params for v in rw.flat(t)]
            flat_result = [] if result is None else rw.flat(result)
            strings = any(_has_string(rw, t) for _, t in params) or _has_string(rw, result)
        except _r._Unsupported:
            continue
        if len(flat) > _MAX_FLAT_PARAMS:  # the parameters stored in memory, by pointer
            if lift.option(0x04) is None:
                continue  # (a lift storing parameters names an allocator)
            flat = [_I32]
        if len(flat_result) == 1 and not isinstance(rw.resolve(result), int):
            continue  # a compound result in one core value (tuple<u32>): not handled
        encodings = [o[0] for o in lift.options if o[0] in _r._ENCODINGS]
        if strings and any(e != _UTF8 for e in encodings):
            continue  # the host writes and reads strings as UTF-8 only
        lift_memory, lift_realloc = lift.option(0x03), lift.option(0x04)
        if lift_memory is None or (memory is not None and lift_memory != memory):
            continue
        memory = lift_memory
        if lift_realloc is not None and lift_realloc not in reallocs:
            reallocs.append(lift_realloc)
        seen.add(key)
        picked.append(
            RawPick(lift, key[0], function, tuple(flat), tuple(flat_result), lift_realloc)
        )
    kept = _one_module(c, picked)
    if len(kept) < len(picked):  # the allocators the kept ones name, in order
        picked = kept
        reallocs = list(dict.fromkeys(p.realloc for p in kept if p.realloc is not None))
    if not reallocs and "cabi_realloc" in names:
        reallocs.append(names["cabi_realloc"])
    return picked, memory, reallocs


def _one_module(c: _r._Component, picked: list[RawPick]) -> list[RawPick]:
    """The picks whose core functions are exports of the core instance that most of the
    component's lifted functions are exports of (the guest's own module). A wrapper's
    shim calling functions of two instances could not be folded into the guest's module
    (:mod:`.shimfold`), and every instance would pay for it: componentize-py's runtime
    exports its ``init``, called once, beside the module holding the hooks."""
    instances = {c.core_func_instances.get(p.lift.core_func) for p in picked}
    if len(instances) <= 1:
        return picked
    lifted: dict[int | None, int] = {}
    for lift in c.lifts:
        key = c.core_func_instances.get(lift.core_func)
        lifted[key] = lifted.get(key, 0) + 1
    # ties: the later instance (componentize-py instantiates its runtime before the
    # module of a guest with one hook, each lifting one function)
    main = max(instances, key=lambda i: (lifted.get(i, 0), -1 if i is None else i))
    return [p for p in picked if c.core_func_instances.get(p.lift.core_func) == main]


# ------------------------------------------------------------------ the tail


def _functype_bytes(params: list[int], result: int | None) -> bytes:
    body = _r._leb(len(params)) + b"".join(
        _r._name(f"p{j}") + bytes([t]) for j, t in enumerate(params)
    )
    body += b"\x01\x00" if result is None else b"\x00" + bytes([result])
    return b"\x40" + body


def raw_export_tail(data: bytes, probe_memory: int | None = None) -> tuple[bytes, RawPlan] | None:
    """The sections to append to ``data`` for its raw exports, and what they add; None
    when there is nothing to add or the layout is not understood. ``probe_memory``: the
    core memory raw imports read (:mod:`.rawimports`): the probe is added even without
    raw exports, and None is returned when the raw exports use another memory. Never
    raises."""
    try:
        return _raw_export_tail(data, probe_memory)
    except _r._Unsupported:
        return None
    except Exception as exc:
        log.debug("no raw exports: reading the component failed (%r)", exc)
        return None


def add_raw_exports(data: bytes) -> tuple[bytes, RawPlan] | None:
    """``data`` with its raw exports appended (see :func:`raw_export_tail`)."""
    plan = raw_export_tail(data)
    return None if plan is None else (data + plan[0], plan[1])


def _raw_export_tail(data: bytes, probe_memory: int | None) -> tuple[bytes, RawPlan] | None:
    c = _r._read(data)
    picked, memory, reallocs = raw_picks(c, data)
    if not picked and probe_memory is not None:  # only the probe, for raw imports
        memory = probe_memory
    if memory is None or (not picked and probe_memory is None):
        return None
    if not reallocs and picked:  # (a lift moving a list names an allocator)
        return None
    if probe_memory is not None and memory != probe_memory:
        return None
    wrapped = [i for i, p in enumerate(picked) if p.retptr]
    module = _CoreModule()
    module.import_memory("m", "memory")
    for j in range(len(reallocs)):
        module.import_func("m", f"realloc{j}", [_I32] * 4, [_I32])
    for k, i in enumerate(wrapped):
        module.import_func("m", f"rf{k}", list(picked[i].params), [_I32])
    add_raw_shim_functions(module, len(reallocs), [picked[i].params for i in wrapped])

    imports = [("memory", 0x02, memory)]
    imports += [(f"realloc{j}", 0x00, f) for j, f in enumerate(reallocs)]
    imports += [(f"rf{k}", 0x00, picked[i].lift.core_func) for k, i in enumerate(wrapped)]
    alias_names = [f"{a}{j}" for j in range(len(reallocs)) for a in ("alloc", "allocs")]
    alias_names += ["probe"] + [f"rw{k}" for k in range(len(wrapped))]
    wiring, shim_func = _r._wire_shim(c, imports, alias_names)
    types, lifts, exports, plan = raw_lifts(c, picked, reallocs, shim_func)
    tail = _r._shim_tail(module.encode(), wiring, _r._section(7, types), lifts, exports)
    return tail, plan


def raw_lifts(
    c: _r._Component,
    picked: list[RawPick],
    reallocs: list[int],
    shim_func: dict[str, int],
    *,
    first_type: int | None = None,
    first_func: int | None = None,
) -> tuple[list[bytes], list[bytes], list[bytes], RawPlan]:
    """The types, lifts and exports of the raw exports, given the core function index of
    each shim export (``alloc<j>``, ``probe``, ``rw<k>``); indices of the new types and
    functions start at ``first_type``/``first_func`` (default: right after ``c``'s)."""
    first_type = c.n_types if first_type is None else first_type
    first_func = c.n_funcs if first_func is None else first_func
    types: list[bytes] = []
    lifts: list[bytes] = []
    names: list[str] = []

    def add(core_func: int, functype: bytes, name: str) -> None:
        if name in c.export_names:
            raise _r._Unsupported(f"export {name} exists")
        types.append(functype)
        lifts.append(
            b"\x00\x00" + _r._leb(core_func) + b"\x00" + _r._leb(first_type + len(types) - 1)
        )
        names.append(name)

    alloc_names = [ALLOC if j == 0 else f"{ALLOC}{j}" for j in range(len(reallocs))]
    for j, name in enumerate(alloc_names):
        add(shim_func[f"alloc{j}"], _functype_bytes([_U32, _U32], _U64), name)
        add(shim_func[f"allocs{j}"], _functype_bytes([_U32, _U32], _U64), allocs_name(name))
    probe = PROBE if reallocs else PROBE_AT_ZERO
    add(shim_func["probe"], _functype_bytes([_U64, _U64], _U64), probe)
    added: list[RawExport] = []
    k = 0
    for i, pick in enumerate(picked):
        params = [_CORE_TO_PRIM[v] for v in pick.params]
        call = f"{RAW_PREFIX}f{i}"
        if pick.retptr:
            add(shim_func[f"rw{k}"], _functype_bytes(params, _U64), call)
            k += 1
            post_params = [_U32]
            result = None
        else:
            result = pick.results[0] if pick.results else None
            add(
                pick.lift.core_func,
                _functype_bytes(params, None if result is None else _CORE_TO_PRIM[result]),
                call,
            )
            post_params = [] if result is None else [_CORE_TO_PRIM[result]]
        post = pick.lift.option(0x05)
        post_name = None
        if post is not None:
            post_name = f"{RAW_PREFIX}p{i}"
            add(post, _functype_bytes(post_params, None), post_name)
        alloc = alloc_names[0 if pick.realloc is None else reallocs.index(pick.realloc)]
        added.append(
            RawExport(
                pick.interface,
                pick.function,
                call,
                post_name,
                alloc,
                pick.params,
                pick.retptr,
                result,
            )
        )
    exports = _r._func_exports(first_func, names)
    return types, lifts, exports, RawPlan(tuple(added), probe)


# ------------------------------------------------------------------ plans on disk


# ------------------------------------------------------------------ with the latin1 exports


def export_tail(data: bytes, *, raw: bool = True, label: str = "component") -> ExportPlan | None:
    """The latin1 and measuring exports' tail (:func:`.measure.result_plan`) and, after
    it, the raw exports' (read from ``data`` with the first tail appended, so their
    indices follow it); for a component with none of them at its top level, the same
    added inside its inner component (:func:`nested_exports`). None when nothing applies,
    and for a component past :data:`.relift.MOST_COMPONENT_BYTES` of component-level
    sections (what the readers would read in Python before the compile deadline applies).
    Never raises."""
    level = _r.component_level_bytes(data)
    if level > _r.MOST_COMPONENT_BYTES:
        log.info(
            "%s: component-level sections past %s bytes: loaded as given, without the "
            "byte-buffer, raw or measuring exports",
            label,
            f"{_r.MOST_COMPONENT_BYTES:,}",
        )
        return None
    top = _top_plan(data, raw)
    return top if top is not None else nested_exports(data, raw=raw)


def _top_plan(data: bytes, raw: bool) -> ExportPlan | None:
    from .measure import result_plan  # (making a plan: a cache miss)

    latin1 = result_plan(data)  # the latin1 exports, then the measuring ones (.measure)
    fast_tail, fast = (b"", ()) if latin1 is None else latin1
    raw_plan = raw_export_tail(data + fast_tail) if raw else None
    # Raw imports need the probe on the memory their lowers name (indices do not move:
    # the patch rewrites types in place, so the tail read from ``data`` still fits).
    imports = import_patch(data) if raw and RAW_IMPORTS else None
    if imports is not None:
        with_probe = raw_export_tail(data + fast_tail, imports.memory)
        if with_probe is not None:
            raw_plan = with_probe
        else:
            imports = None
    if raw_plan is not None:
        plan = ExportPlan(fast_tail + raw_plan[0], fast, raw_plan[1], None, fast_tail, imports)
    elif latin1 is not None:
        plan = ExportPlan(fast_tail, fast, None, None, fast_tail)
    else:
        return None
    return _folded(plan, data)


def _folded(plan: ExportPlan, data: bytes) -> ExportPlan:
    """``plan`` with its shims folded into the guest's core module where that can be
    done (:mod:`.shimfold`); else as it is."""
    from .shimfold import fold_shims

    wide = plan.wider(data)
    splices = fold_shims(wide, len(wide) - len(plan.tail))
    if splices is None:
        return plan
    return ExportPlan(
        plan.tail, plan.fast, plan.raw, None, plan.fast_tail, plan.imports, ShimFold(splices)
    )


# ------------------------------------------------------------------ nested components


def _sortidx(r: _r._Reader) -> int:
    sort = r.byte()
    if sort == 0x00:
        r.byte()
    r.u32()
    return sort


def nested_exports(data: bytes, *, raw: bool = True) -> ExportPlan | None:
    """What :func:`export_tail` adds at the top level of a component, added inside the
    inner component that nests its implementation one level down (see
    :class:`NestedPatch`) and re-exported from the outer one: so a guest's results are
    measured before they are copied, and its bytes move by the latin1 or raw route,
    however deep its functions are lifted. None when it is not laid out so, or anything
    is not understood. Never raises."""
    try:
        return _nested_exports(data, raw)
    except _r._Unsupported:
        return None
    except Exception as exc:
        log.debug("no nested exports: reading the component failed (%r)", exc)
        return None


def _nested_exports(data: bytes, raw: bool) -> ExportPlan | None:
    if data[:8] != _r._PREFIX:
        return None
    outer = _r._read(data)  # the outer's counts (and a check that it reads)
    n_components = n_instances = 0
    plans: dict[int, tuple[int, int, int, ExportPlan]] = {}
    instance_of: dict[int, int] = {}  # component index -> the instance instantiating it
    top = _r._Reader(data, 8)
    while top.pos < top.end:
        head = top.pos
        sid = top.byte()
        size = top.u32()
        body, end = top.pos, top.pos + size
        top.pos = end
        r = _r._Reader(data, body, end)
        if sid == 4:
            found = _inner_plan(data[body:end], raw)
            if found is not None:
                plans[n_components] = (head, body, end, found)
            n_components += 1
        elif sid == 5:
            for _ in range(r.u32()):
                kind = r.byte()
                if kind == 0x00:
                    component = r.u32()
                    for _ in range(r.u32()):
                        r.name()
                        _sortidx(r)
                    instance_of.setdefault(component, n_instances)
                elif kind == 0x01:
                    for _ in range(r.u32()):
                        r.extern_name()
                        _sortidx(r)
                else:
                    return None
                n_instances += 1
        elif sid == 6:
            for _ in range(r.u32()):
                sort = r.byte()
                if sort == 0x00:
                    r.byte()
                if r.byte() == 0x02:
                    r.u32()
                    r.u32()
                else:
                    r.u32()
                    r.name()
                n_instances += sort == 0x05
                n_components += sort == 0x04
        elif sid in (10, 11):
            for _ in range(r.u32()):
                r.extern_name()
                if sid == 10:
                    sort = _r._externdesc(r)
                else:
                    sort = _sortidx(r)
                    if r.byte() == 0x01:
                        _r._externdesc(r)
                n_instances += sort == 0x05
                n_components += sort == 0x04
    # Only an inner component whose functions the outer one exports under their own
    # names (jco's: the guest's, beside a module loader it uses inside). One that is not
    # re-exported so gets nothing: its added exports would name functions no hook binds
    # (wasmtime's exceptions.wast: two inner components, the one lifting a string not
    # exported; jco's list-adapter-fusion: the outer exports an instance of it as
    # `result`), and the checks at load refused them one by one.
    picked = [k for k in plans if k in instance_of]
    picked = [k for k in picked if _reexported(plans[k][3], outer.export_names)]
    if len(picked) != 1:
        return None  # none, or more than one inner component lifting what is exported
    k = picked[0]
    head, body, end, plan = plans[k]
    inner_imports = outer_imports = None
    if raw and RAW_IMPORTS:
        inner_imports = import_patch(data[body:end], only=imported_instances(data))
        if inner_imports is not None:
            outer_imports = import_patch(data, require=inner_imports)
            with_probe = _inner_plan(data[body:end], raw, inner_imports.memory)
            if outer_imports is None or with_probe is None or with_probe.raw is None:
                inner_imports = outer_imports = None
            else:
                plan = with_probe
    names = [a.name for a in plan.fast] + (raw_names(plan.raw) if plan.raw is not None else [])
    if any(n in outer.export_names for n in names):
        return None
    sections: list[bytes] = []
    aliases: list[bytes] = []
    exports: list[bytes] = []
    fast: tuple[_r.FastExport, ...] = ()
    if plan.fast:  # the measuring exports, each ascribed its type (see reexport_measured)
        from .measure import reexport_measured

        try:
            sections, aliases, exports, fast = reexport_measured(
                data[body:end], outer, instance_of[k], plan.fast
            )
        except _r._Unsupported:
            if plan.raw is None:
                return None
    raw_list = raw_names(plan.raw) if plan.raw is not None else []
    aliases += [b"\x01\x00" + _r._leb(instance_of[k]) + _r._name(n) for n in raw_list]
    exports += _r._func_exports(outer.n_funcs + len(exports), raw_list)
    outer_tail = b"".join(sections) + _r._section(6, aliases) + _r._section(11, exports)
    patch = NestedPatch(head, body, end, plan.tail, outer_tail, inner_imports, outer_imports)
    return ExportPlan(b"", fast, plan.raw, patch, b"", outer_imports)


def _reexported(plan: ExportPlan, names: Collection[str]) -> bool:
    """Whether the outer component exports (by its exports' names) any function ``plan``
    adds exports for."""
    keys = [(a.interface, a.function) for a in plan.fast if a.function]
    keys += [(r.interface, r.function) for r in (plan.raw.functions if plan.raw else ())]
    return any((i if i is not None else f) in names for i, f in keys)


def _inner_plan(data: bytes, raw: bool, probe_memory: int | None = None) -> ExportPlan | None:
    """What a nested component's inner one gets: the measuring exports and the raw
    ones (with the probe on ``probe_memory`` for raw imports). Not the latin1 exports:
    their types would have to be defined again in the outer component, and big byte
    payloads take the raw route anyway."""
    from .measure import measure_tail

    measured = measure_tail(data, {})
    tail, fast = (b"", ()) if measured is None else measured
    raw_plan = raw_export_tail(data + tail, probe_memory) if raw else None
    if raw_plan is not None:
        return ExportPlan(tail + raw_plan[0], fast, raw_plan[1], None, tail)
    return ExportPlan(tail, fast, None, None, tail) if fast else None


# ------------------------------------------------------------------ checked against wasmtime

_WIT_PRIM: Final = {_I32: "u32", _I64: "u64", _F32: "f32", _F64: "f64"}


def _sig_is(sig: wit.FuncSig | None, params: Sequence[int], result: int | None) -> bool:
    return (
        sig is not None
        and sig.param_types == tuple(wit.Prim(_WIT_PRIM[p]) for p in params)
        and sig.result == (None if result is None else wit.Prim(_WIT_PRIM[result]))
    )


def checked_raw(exports: dict[tuple[str | None, str], wit.FuncSig], plan: RawPlan) -> RawExports:
    """(interface, function) -> its raw exports, for those whose types wasmtime reports
    as expected (all of them, unless the binary reader misread something); every raw
    export is removed from ``exports`` (the runtime's business, not the plugin's)."""
    found = {name: exports.pop((None, name), None) for name in raw_names(plan)}
    if not _sig_is(found[plan.probe], (_I64, _I64), _I64):
        log.warning("raw export %s does not have the expected type", plan.probe)
        return {}
    raw: RawExports = {}
    for f in plan.functions:
        result = _I64 if f.retptr else f.result
        post = (_I32,) if f.retptr else () if f.result is None else (f.result,)
        original = exports.get((f.interface, f.function))
        if (
            original is not None
            and _sig_is(found[f.alloc], (_I32, _I32), _I64)
            and _sig_is(found[f.call], f.params, result)
            and (f.post is None or _sig_is(found[f.post], post, None))
        ):
            raw[(f.interface, f.function)] = f
        else:  # a bug in this module, or a binary it misread
            log.warning("raw export %s does not match %s", f.call, f.function)
    return raw


def checked_probe(exports: dict[tuple[str | None, str], wit.FuncSig], plan: RawPlan) -> bool:
    """Whether wasmtime reports ``plan``'s probe with the expected type (before
    :func:`checked_raw` removes it from ``exports``)."""
    return _sig_is(exports.get((None, plan.probe)), (_I64, _I64), _I64)
