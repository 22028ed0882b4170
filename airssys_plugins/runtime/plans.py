"""What the binary rewriter added to a component, as a warm load reads it back.

:mod:`.relift` (latin1 byte-buffer exports), :mod:`.rawbytes` (raw exports, and nested
components) and :mod:`.rawimports` (raw imports) read and rewrite a component's binary
when it is first compiled. What they add is recorded as an :class:`ExportPlan` and kept
beside the compile cache (:func:`encode_export_plan`). A load of a component compiled
before only decodes that record: this module holds the records, their codecs and the
names and versions they carry, so such a load (the common one, and the whole first load
of a new process with a warm cache) imports none of the rewriters, whose readers and
encoders are about 180 KiB of bytecode. The rewriters import these names from here and
re-export them.
"""

from __future__ import annotations

import marshal
import os
from typing import Final

from .. import _attrs as attrs

__all__ = [
    "ALLOC",
    "ALLOCS",
    "ELEMENTS",
    "EXPORT_PLAN_VERSION",
    "FAST_EXPORT_PREFIX",
    "IMPORT_PLAN_VERSION",
    "KINDS",
    "PLAN_VERSION",
    "PROBE",
    "PROBE_AT_ZERO",
    "RAW_IMPORTS",
    "RAW_PLAN_VERSION",
    "RAW_PREFIX",
    "ExportPlan",
    "FastExport",
    "ImportPatch",
    "Mask",
    "NestedPatch",
    "RawExport",
    "RawExports",
    "RawImport",
    "RawPlan",
    "ShimFold",
    "allocs_name",
    "decode_export_plan",
    "decode_import_patch",
    "decode_raw_plan",
    "encode_export_plan",
    "encode_import_patch",
    "encode_raw_plan",
    "leb128",
    "raw_names",
]


def leb128(n: int) -> bytes:
    """``n`` (unsigned) as LEB128, as the binary format writes sizes and indices."""
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


# ------------------------------------------------------------------ latin1 exports (relift)

#: Root export names of the added functions: ``airssys-bytes-f0``, ``-f1``, ...
FAST_EXPORT_PREFIX: Final = "airssys-bytes-f"
#: Bumped whenever what byte_export_tail() appends changes: cached plans of another
#: version are not used. 5: resources and handles are decoded.
PLAN_VERSION: Final = 5


@attrs.frozen
class FastExport:
    """An added export: ``name`` lifts the same core function as ``interface#function``
    with every ``list<u8>`` parameter, and a ``list<u8>`` result, as a latin1 string."""

    interface: str | None
    function: str
    name: str
    #: "bytes" for these; :mod:`.measure` adds "shape", "real" and "limit" exports.
    kind: str = "bytes"


# ------------------------------------------------------------------ raw imports (rawimports)

#: Bumped whenever what import_patch() rewrites changes. 5: no latin1 results for a
#: function with a string inside its parameters (they would be lifted as latin1+utf16).
#: 6: a function with a string or list inside a parameter takes every parameter as its
#: flat core values (RawImport.types), and may have latin1 results again.
IMPORT_PLAN_VERSION: Final = 6

#: List elements moved raw (their array code and size): s8 .. f64, not char and bool
#: (their values need checks).
ELEMENTS: Final = {
    0x7E: ("b", 1),  # s8
    0x7D: ("B", 1),  # u8
    0x7C: ("h", 2),  # s16
    0x7B: ("H", 2),  # u16
    0x7A: ("i", 4),  # s32
    0x79: ("I", 4),  # u32
    0x78: ("q", 8),  # s64
    0x77: ("Q", 8),  # u64
    0x76: ("f", 4),  # f32
    0x75: ("d", 8),  # f64
}

#: Decoded deftypes of an instance type that results are rewritten through, by opcode.
KINDS: Final = {0x70: "list", 0x6B: "option", 0x6A: "result", 0x6F: "tuple", 0x72: "record",
                0x71: "variant"}  # fmt: skip


#: Where a rewritten result's ``list<u8>`` became ``string``: True at such a list, None
#: where nothing changed, else ``(kind, child masks...)`` for a list, option, result,
#: tuple, record or variant holding one (kinds as in :data:`KINDS`).
Mask = bool | None | tuple[object, ...]


@attrs.frozen
class RawImport:
    """Imported ``interface#function`` whose list and string parameters arrive as a
    pointer and a length. ``params[i]`` is None for a parameter left as it was, else
    the element's primitive code (0x73: a UTF-8 string, 0x7d: bytes). ``result``: None
    when the result is as declared, else where its ``list<u8>`` became ``string``
    (:data:`Mask`): the import is then lowered with ``string-encoding=latin1+utf16`` and
    the host writes its result with ``lowerer(latin1=True)``.

    ``types``: for a function whose every parameter arrives as its flat core values (one
    holds a string or a list inside it: a record, a list of strings...), the original
    parameters' types (``params`` then all None; :func:`.rawabi.wit_type` reads them),
    and ``core`` the core values' types (0x7f i32, 0x7e i64, 0x7d f32, 0x7c f64): one i32,
    a pointer to the parameters stored in memory, past 16 flat values."""

    interface: str
    function: str
    names: tuple[str, ...]
    params: tuple[int | None, ...]
    result: Mask = None
    types: tuple[object, ...] | None = None
    core: tuple[int, ...] = ()

    @property
    def arity(self) -> int:
        """Core-level parameter count wasmtime hands the host (two per raw one)."""
        if self.types is not None:
            return len(self.core)
        return len(self.params) + sum(p is not None for p in self.params)

    @property
    def raw_params(self) -> bool:
        """Whether any parameter arrives as a pointer and a length (or flat)."""
        return self.types is not None or any(p is not None for p in self.params)


@attrs.frozen
class ImportPatch:
    """Type sections of a component replaced (``(start, end, new bytes)``, in order)."""

    splices: tuple[tuple[int, int, bytes], ...]
    functions: tuple[RawImport, ...]
    #: The core memory every rewritten lower names (the probe must find this one).
    memory: int

    def apply(self, data: bytes) -> bytes:
        out = []
        at = 0
        for start, end, new in self.splices:
            out.append(data[at:start])
            out.append(new)
            at = end
        out.append(data[at:])
        return b"".join(out)

    def find(self, interface: str, function: str) -> RawImport | None:
        for f in self.functions:
            if f.interface == interface and f.function == function:
                return f
        return None


def _mask_data(mask: object) -> object:
    return [_mask_data(m) for m in mask] if isinstance(mask, tuple) else mask


def _tupled(data: object, depth: int = 0) -> object:
    """A parameter type description read back (lists as the tuples they were)."""
    if depth > 64:
        raise ValueError("type too deep")
    if isinstance(data, list | tuple):
        return tuple(_tupled(d, depth + 1) for d in data)
    if data is None or isinstance(data, str):
        return data
    raise ValueError(f"not a type description: {data!r:.60}")


def _mask_of(data: object, depth: int = 0) -> Mask:
    if data is None or data is True:
        return data
    if depth > 32 or not isinstance(data, list) or not data or data[0] not in KINDS.values():
        raise ValueError(f"not a result mask: {data!r:.60}")
    return (data[0], *(_mask_of(d, depth + 1) for d in data[1:]))


def encode_import_patch(patch: ImportPatch | None) -> tuple[object, bytes]:
    """``patch`` as JSON-ready data and the bytes of its new sections."""
    if patch is None:
        return None, b""
    meta = {
        "version": IMPORT_PLAN_VERSION,
        "memory": patch.memory,
        "splices": [[s, e, len(b)] for s, e, b in patch.splices],
        "functions": [[f.interface, f.function, list(f.names), list(f.params),
                       _mask_data(f.result), _mask_data(f.types), list(f.core)]
                      for f in patch.functions],
    }  # fmt: skip
    return meta, b"".join(b for _, _, b in patch.splices)


def decode_import_patch(meta: object, blob: bytes) -> ImportPatch | None:
    """The inverse of :func:`encode_import_patch`; ValueError for anything else."""
    if meta is None:
        return None
    if not isinstance(meta, dict) or meta.get("version") != IMPORT_PLAN_VERSION:
        raise ValueError("not an import plan of this version")
    try:
        splices = []
        at = 0
        for s, e, n in meta["splices"]:
            splices.append((int(s), int(e), blob[at : at + int(n)]))
            at += int(n)
        if at != len(blob):
            raise ValueError("import plan sections do not add up")
        functions = tuple(
            RawImport(str(i), str(f), tuple(str(x) for x in names),
                      tuple(None if c is None else int(c) for c in codes), _mask_of(mask),
                      None if types is None else tuple(_tupled(t) for t in types),
                      tuple(int(c) for c in core))
            for i, f, names, codes, mask, types, core in meta["functions"]
        )  # fmt: skip
        return ImportPatch(tuple(splices), functions, int(meta["memory"]))
    except (TypeError, ValueError, KeyError) as exc:
        raise ValueError(f"unreadable import plan: {exc}") from None


# ------------------------------------------------------------------ raw exports (rawbytes)

#: Root export names of the added functions start with this.
RAW_PREFIX: Final = "airssys-raw-"
ALLOC: Final = RAW_PREFIX + "alloc"
#: The batch allocator beside each ``alloc`` export (``airssys-raw-allocs``,
#: ``airssys-raw-allocs1``, ...): see :func:`allocs_name`.
ALLOCS: Final = RAW_PREFIX + "allocs"
PROBE: Final = RAW_PREFIX + "probe"
#: The probe of a component without an allocator (:mod:`.rawbytes`): it writes its 16
#: bytes at address 0, keeping what was there, and ``probe(0, 0)`` puts that back.
PROBE_AT_ZERO: Final = RAW_PREFIX + "probe-at-zero"
#: Set AIRSSYS_PLUGINS_NO_RAW_IMPORTS=1 to leave host functions' list and string
#: parameters element by element (see :mod:`.rawimports`).
RAW_IMPORTS: Final = not os.environ.get("AIRSSYS_PLUGINS_NO_RAW_IMPORTS")
#: Bumped whenever what raw_export_tail() appends changes.
RAW_PLAN_VERSION: Final = 4


def allocs_name(alloc: str) -> str:
    """The batch allocator export beside the allocator export ``alloc``:
    ``func(table: u32, n: u32) -> u64`` makes the ``n`` allocations whose ``(align,
    size)`` pairs of ``u32`` are at ``table``, in order, each writing its pointer over its
    pair's ``align``, and returns ``table`` packed with the memory's pages."""
    return ALLOCS + alloc[len(ALLOC) :]


@attrs.frozen
class RawExport:
    """The raw exports of ``interface#function``: ``call`` (core signature) and ``post``."""

    interface: str | None
    function: str
    call: str
    post: str | None
    #: The allocator export for this function's arguments.
    alloc: str
    #: Core value types (0x7f i32, 0x7e i64, 0x7d f32, 0x7c f64) of the flat parameters.
    params: tuple[int, ...]
    #: True: the result is read from a return area whose pointer ``call`` returns (packed
    #: with the memory size). False: ``result`` is the one flat result's core type, or
    #: None for a function without result.
    retptr: bool
    result: int | None


@attrs.frozen
class RawPlan:
    """What :func:`raw_export_tail` added."""

    functions: tuple[RawExport, ...]
    probe: str = PROBE

    def find(self, interface: str | None, function: str) -> RawExport | None:
        for f in self.functions:
            if f.interface == interface and f.function == function:
                return f
        return None


RawExports = dict[tuple[str | None, str], RawExport]


def raw_names(plan: RawPlan) -> list[str]:
    """The names of every export ``plan`` adds."""
    names = {plan.probe}
    for f in plan.functions:
        names.update(n for n in (f.alloc, allocs_name(f.alloc), f.call, f.post) if n is not None)
    return sorted(names)


def encode_raw_plan(plan: RawPlan | None) -> dict[str, object] | None:
    """``plan`` as JSON-ready data (kept beside the compile cache)."""
    if plan is None:
        return None
    return {
        "version": RAW_PLAN_VERSION,
        "probe": plan.probe,
        "functions": [
            [f.interface, f.function, f.call, f.post, f.alloc, list(f.params), f.retptr, f.result]
            for f in plan.functions
        ],
    }


def decode_raw_plan(data: object) -> RawPlan | None:
    """The inverse of :func:`encode_raw_plan`; ValueError for anything else."""
    if data is None:
        return None
    if not isinstance(data, dict) or data.get("version") != RAW_PLAN_VERSION:
        raise ValueError("not a raw-export plan of this version")
    functions = []
    try:
        for iface, func, call, post, alloc, params, retptr, result in data["functions"]:
            functions.append(
                RawExport(
                    iface,
                    func,
                    call,
                    post,
                    alloc,
                    tuple(int(p) for p in params),
                    bool(retptr),
                    result,
                )
            )
    except (TypeError, ValueError, KeyError) as exc:
        raise ValueError(f"unreadable raw-export plan: {exc}") from None
    probe = data.get("probe")
    if probe not in (PROBE, PROBE_AT_ZERO):
        raise ValueError(f"unreadable raw-export plan: probe {probe!r}")
    return RawPlan(tuple(functions), probe)


# ------------------------------------------------------------------ shims folded (shimfold)


@attrs.frozen
class ShimFold:
    """The tails' shim modules folded into the guest's own core module (:mod:`.shimfold`):
    splices (``(start, end, new bytes)``, in order) over the unfolded wider binary."""

    splices: tuple[tuple[int, int, bytes], ...]

    def apply(self, data: bytes) -> bytes:
        return ImportPatch(self.splices, (), 0).apply(data)


def _encode_fold(fold: ShimFold | None) -> tuple[object, bytes]:
    if fold is None:
        return None, b""
    return [[s, e, len(b)] for s, e, b in fold.splices], b"".join(b for _, _, b in fold.splices)


def _decode_fold(meta: object, blob: bytes) -> ShimFold | None:
    if meta is None:
        return None
    if not isinstance(meta, list):
        raise ValueError("not a shim fold")
    splices = []
    at = 0
    last = 0
    for s, e, n in meta:
        s, e, n = int(s), int(e), int(n)
        if not last <= s <= e or n < 0:
            raise ValueError("shim fold splices out of order")
        splices.append((s, e, blob[at : at + n]))
        at, last = at + n, e
    if at != len(blob):
        raise ValueError("shim fold sections do not add up")
    return ShimFold(tuple(splices))


# ------------------------------------------------------------------ the whole plan


@attrs.frozen
class ExportPlan:
    """Everything added to a component at load: the latin1 byte-buffer exports of
    :mod:`.relift` and the raw exports, appended as ``tail``; or, for a component that
    nests its implementation (jco), the raw exports added inside it (``nested``)."""

    tail: bytes
    fast: tuple[FastExport, ...]
    raw: RawPlan | None
    nested: NestedPatch | None = None
    #: The tail without the raw exports (compiled when the wider binary is refused).
    fast_tail: bytes = b""
    #: Import types rewritten for the raw import route (:mod:`.rawimports`); top level only.
    imports: ImportPatch | None = None
    #: The shims folded into the guest's core module (:mod:`.shimfold`); top level only.
    fold: ShimFold | None = None

    def wider(self, data: bytes) -> bytes:
        if self.nested is not None:
            return self.nested.apply(data)
        wide = (data if self.imports is None else self.imports.apply(data)) + self.tail
        return wide if self.fold is None else self.fold.apply(wide)

    def without_fold(self) -> ExportPlan:
        """The same exports, each shim a core module of its own (when wasmtime refuses
        the folded binary)."""
        return ExportPlan(self.tail, self.fast, self.raw, self.nested, self.fast_tail, self.imports)

    def without_raw(self) -> ExportPlan | None:
        if not self.fast or self.nested is not None:  # a nested plan is all or nothing
            return None
        return ExportPlan(self.fast_tail, self.fast, None, None, self.fast_tail)

    @property
    def added_sections(self) -> bytes:
        """The component sections it adds (for :func:`.layout.core_layout`)."""
        return self.tail if self.nested is None else self.nested.inner_tail


@attrs.frozen
class NestedPatch:
    """Exports added inside the one inner component that lifts the functions (jco's
    layout: the outer component instantiates inner ones and re-exports their exports):
    the inner component's section ``[head, end)`` (body from ``body``) gets ``inner_tail``
    appended, and ``outer_tail`` re-exports the new functions from the outer one."""

    head: int
    body: int
    end: int
    inner_tail: bytes
    outer_tail: bytes
    #: Raw imports: the inner component's import types rewritten where it lowers them,
    #: and the outer component's imports of the same names alike (:mod:`.rawimports`).
    inner_imports: ImportPatch | None = None
    outer_imports: ImportPatch | None = None

    def apply(self, data: bytes) -> bytes:
        inner = data[self.body : self.end]
        if self.inner_imports is not None:
            inner = self.inner_imports.apply(inner)
        inner += self.inner_tail
        section = b"\x04" + leb128(len(inner)) + inner
        if self.outer_imports is None:
            return data[: self.head] + section + data[self.end :] + self.outer_tail
        splices = sorted((*self.outer_imports.splices, (self.head, self.end, section)))
        return ImportPatch(tuple(splices), (), 0).apply(data) + self.outer_tail


#: Bumped whenever what export_tail() adds changes (with relift's and rawbytes').
#: .3: a nested component gets the measuring exports too, not only the raw ones.
#: .4: raw imports (:mod:`.rawimports`).
#: .6: written with marshal, not JSON (.5 was an unreleased first layout of that).
#: .7: the shims folded into the guest's core module (``fold``, :mod:`.shimfold`).
#: .8: no measuring exports for a function whose result names a resource the component
#: does not export at its root (the rest keep theirs), nor for a nested inner component
#: the outer one does not re-export.
EXPORT_PLAN_VERSION: Final = f"{PLAN_VERSION}.{RAW_PLAN_VERSION}.8.{IMPORT_PLAN_VERSION}"


def encode_export_plan(plan: ExportPlan | None) -> bytes:
    """``plan`` (or its absence) as bytes (:mod:`marshal`'s, cheap to read in a new
    process), to keep beside the compile cache."""
    meta: dict[str, object] = {"version": EXPORT_PLAN_VERSION}
    blob = b""
    if plan is not None:
        meta["added"] = [[a.interface, a.function, a.name, a.kind] for a in plan.fast]
        meta["raw"] = encode_raw_plan(plan.raw)
        meta["fast_tail"] = len(plan.fast_tail)
        meta["imports"], import_blob = encode_import_patch(plan.imports)
        meta["imports_size"] = len(import_blob)
        if plan.nested is not None:
            n = plan.nested
            meta["nested"] = [n.head, n.body, n.end, len(n.inner_tail)]
            meta["inner_imports"], inner_blob = encode_import_patch(n.inner_imports)
            meta["inner_imports_size"] = len(inner_blob)
            blob = import_blob + inner_blob + n.inner_tail + n.outer_tail
        else:
            meta["fold"], fold_blob = _encode_fold(plan.fold)
            meta["fold_size"] = len(fold_blob)
            blob = import_blob + fold_blob + plan.tail
    return marshal.dumps((meta, blob), 4)


def decode_export_plan(blob: bytes) -> ExportPlan | None:
    """The inverse of :func:`encode_export_plan`; ValueError for anything else."""
    try:
        meta, tail = marshal.loads(blob)
    except (ValueError, TypeError, EOFError) as exc:
        raise ValueError(f"not an export plan: {exc}") from None
    if not isinstance(tail, bytes) or not isinstance(meta, dict):
        raise ValueError("not an export plan")
    if meta.get("version") != EXPORT_PLAN_VERSION:
        raise ValueError("not an export plan of this version")
    if "added" not in meta:
        return None
    try:
        fast = tuple(FastExport(i, f, n, k) for i, f, n, k in meta["added"])
        raw = decode_raw_plan(meta["raw"])
        cut = int(meta["fast_tail"])
        cut_imports = int(meta.get("imports_size", 0))
        imports = decode_import_patch(meta.get("imports"), tail[:cut_imports])
        tail = tail[cut_imports:]
        nested = meta.get("nested")
        if nested is not None:
            cut_inner = int(meta.get("inner_imports_size", 0))
            inner_imports = decode_import_patch(meta.get("inner_imports"), tail[:cut_inner])
            tail = tail[cut_inner:]
            head, body, end, inner = (int(x) for x in nested)
            patch = NestedPatch(head, body, end, tail[:inner], tail[inner:], inner_imports, imports)
            return ExportPlan(b"", fast, raw, patch, b"", imports)
        cut_fold = int(meta.get("fold_size", 0))
        fold = _decode_fold(meta.get("fold"), tail[:cut_fold])
        tail = tail[cut_fold:]
    except (TypeError, ValueError, KeyError) as exc:
        raise ValueError(f"unreadable export plan: {exc}") from None
    if not tail:
        raise ValueError("plan without its sections")
    return ExportPlan(tail, fast, raw, None, tail[:cut], imports, fold)
