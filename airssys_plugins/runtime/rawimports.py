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

In a nested layout (jco's: the inner component lowers what it imports from the outer
one), the inner component's import types are rewritten and the outer one's alike
(:func:`import_patch` with ``require``), see :class:`.rawbytes.NestedPatch`.

Only types defined inside an imported instance type are rewritten (interface imports, not
WASI's: wasmtime implements those itself and checks their types; nor the built-in ``log``
and ``config``, which take short strings only, see :data:`LEFT_AS_GIVEN`;
functions imported at the world's root keep their types: their type may be shared with
an export). Every lower of a rewritten function must name the memory the probe finds
(:mod:`.rawbytes`), and strings must be lowered as UTF-8. Results stay as they are: a
``list<u8>`` result would need the guest's allocator during the host call (re-entrance).
Anything not understood declines (None): the function then crosses element by element.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Final

from .. import _attrs as attrs
from .. import _log as logging
from ..contract import wit
from ..policy.capabilities import HOST_PACKAGE
from . import relift as _r

__all__ = [
    "ELEMENTS",
    "IMPORT_PLAN_VERSION",
    "ImportPatch",
    "RawImport",
    "decode_import_patch",
    "encode_import_patch",
    "import_patch",
    "imported_instances",
    "original_sig",
]

log = logging.getLogger("airssys_plugins.runtime")

#: Bumped whenever what import_patch() rewrites changes.
IMPORT_PLAN_VERSION: Final = 3

#: Imported interfaces left as given besides WASI's: the built-in ones whose functions take
#: only short strings (a log line, a config key). A rewritten component's every new
#: instance has its memory found (two probe calls and two kernel reads, about 90 µs), more
#: than such strings ever cost element by element.
LEFT_AS_GIVEN: Final = (f"{HOST_PACKAGE}/log@", f"{HOST_PACKAGE}/config@")

_STRING: Final = 0x73
_U8: Final = 0x7D
_U32: Final = 0x79
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
_WIT_NAMES: Final = {
    0x7E: "s8", 0x7D: "u8", 0x7C: "s16", 0x7B: "u16", 0x7A: "s32", 0x79: "u32",
    0x78: "s64", 0x77: "u64", 0x76: "f32", 0x75: "f64",
}  # fmt: skip


@attrs.frozen
class RawImport:
    """Imported ``interface#function`` whose list and string parameters arrive as a
    pointer and a length. ``params[i]`` is None for a parameter left as it was, else
    the element's primitive code (0x73: a UTF-8 string, 0x7d: bytes)."""

    interface: str
    function: str
    names: tuple[str, ...]
    params: tuple[int | None, ...]

    @property
    def arity(self) -> int:
        """Core-level parameter count wasmtime hands the host (two per raw one)."""
        return len(self.params) + sum(p is not None for p in self.params)


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


def _skip_alias(r: _r._Reader) -> int:
    sort = r.byte()
    if sort == 0x00:
        r.byte()
    target = r.byte()
    if target == 0x02:
        r.u32()
        r.u32()
    elif target in (0x00, 0x01):
        r.u32()
        r.name()
    else:
        raise _r._Unsupported("alias target")
    return sort


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


def _rewrite_instance_type(
    data: bytes, r: _r._Reader, strings: bool
) -> tuple[bytes, dict[str, tuple[tuple[str, ...], tuple[int | None, ...]]]]:
    """Read the instance type at ``r`` (after its 0x42): its bytes rewritten, and per
    rewritten function export its original parameter names and raw element codes."""
    out = bytearray()
    n = r.u32()
    out += _r._leb(n)
    local_types: dict[int, tuple[object, ...]] = {}
    n_types = 0
    rewritten: dict[int, tuple[tuple[str, ...], tuple[int | None, ...]]] = {}
    found: dict[str, tuple[tuple[str, ...], tuple[int | None, ...]]] = {}
    for _ in range(n):
        start = r.pos
        kind = r.byte()
        if kind == 0x01:
            head = r.pos
            b = data[head]
            if b == 0x70:
                r.pos += 1
                element = r.valtype()
                local_types[n_types] = ("list", element)
                out += data[start : r.pos]
            elif b == 0x40:
                r.pos += 1
                params = [(r.name(), r.valtype()) for _ in range(r.u32())]
                result_at = r.pos
                _skip_result(r)
                new = _rewrite_params(params, local_types, strings)
                if new is None:
                    out += data[start : r.pos]
                else:
                    encoded, names, codes = new
                    rewritten[n_types] = (names, codes)
                    out += b"\x01\x40" + encoded + data[result_at : r.pos]
            else:
                _skip_deftype(r)
                out += data[start : r.pos]
            n_types += 1
        elif kind == 0x02:
            n_types += _skip_alias(r) == 0x03
            out += data[start : r.pos]
        elif kind == 0x04:
            name = r.extern_name()
            desc = r.pos
            sort = r.byte()
            if sort == 0x01:
                t = r.u32()
                if t in rewritten:
                    found[name] = rewritten[t]
            else:
                r.pos = desc
                sort = _r._externdesc(r)
                n_types += sort == 0x03
            out += data[start : r.pos]
        else:
            raise _r._Unsupported("instance declaration")
    return bytes(out), found


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
    lowers: list[tuple[int, list[bytes]]] = []
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
                sort = r.byte()
                if sort == 0x00:
                    r.byte()
                target = r.byte()
                if target == 0x02:
                    r.u32()
                    r.u32()
                else:
                    inst = r.u32()
                    name = r.name()
                    if sort == 0x01 and target == 0x00 and inst in imported:
                        func_of[c.n_funcs] = (imported[inst], name)
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
                    lowers.append((func, _r._canon_options(r, view)))
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
    for func, options in lowers:
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
    splices: dict[int, list[tuple[int, int, bytes]]] = {}
    functions: list[RawImport] = []
    for t, (section, start, end) in instance_types.items():
        iface = imported_types.get(t)
        if not iface or (only is not None and iface not in only):
            continue
        r = _r._Reader(view, start + 1, end)
        new, found = _rewrite_instance_type(data, r, for_strings)
        keep = {}
        for fname, (names, codes) in found.items():
            ok = (iface, fname) in lowered and lowered[(iface, fname)] is not False
            if not ok or (_STRING in codes and not lowered[(iface, fname)]):
                keep[fname] = True  # lowered with another memory or encoding
                continue
            functions.append(RawImport(iface, fname, names, codes))
        if keep:  # all functions of a type or none: redo with those left out
            functions = [f for f in functions if f.interface != iface]
            continue
        if found:
            splices.setdefault(section, []).append((start, end, b"\x42" + new))
    if not functions:
        return None
    if require is not None and set(functions) != set(require.functions):
        return None
    out: list[tuple[int, int, bytes]] = []
    for section, parts in sorted(splices.items()):
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
    for name, code in zip(raw.names, raw.params, strict=True):
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
    return attrs.evolve(sig, params=tuple(out))


# ------------------------------------------------------------------ plans on disk


def encode_import_patch(patch: ImportPatch | None) -> tuple[object, bytes]:
    """``patch`` as JSON-ready data and the bytes of its new sections."""
    if patch is None:
        return None, b""
    meta = {
        "version": IMPORT_PLAN_VERSION,
        "memory": patch.memory,
        "splices": [[s, e, len(b)] for s, e, b in patch.splices],
        "functions": [[f.interface, f.function, list(f.names), list(f.params)]
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
                      tuple(None if c is None else int(c) for c in codes))
            for i, f, names, codes in meta["functions"]
        )  # fmt: skip
        return ImportPatch(tuple(splices), functions, int(meta["memory"]))
    except (TypeError, ValueError, KeyError) as exc:
        raise ValueError(f"unreadable import plan: {exc}") from None
