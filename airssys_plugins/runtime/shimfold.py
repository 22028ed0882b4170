"""The shims folded into the guest's own core module (issue 18, tenth round).

The tails :mod:`.relift`, :mod:`.measure` and :mod:`.rawbytes` append to a component each
bring a small *shim* core module, instantiated with exports of the guest's core instance
(its memory, allocator, functions and post-returns, under module ``m``). Every such
module is one more core module instance in every Store: about 0.5 KiB of native memory
per shim and plugin (the ninth round's measurements). This module moves each shim's
types, functions, globals, code and exports *into* the guest's core module M, when every
item the shim imports is an export of one core instance of M, a module defined at the
component's top level:

* in M, the shim's types, functions and globals come after M's own; its code bodies are
  re-encoded with those indices moved, and its imports replaced by the M items they were
  given (found through M's export section); its memory must be M's memory 0 (the shims'
  code names memory 0). Its exports get names M does not use (``airssys-fold<s>-...``);
* in the component, the index spaces of core modules and core instances stay as they
  were: the shim's module becomes an empty module, its instantiation an empty bag of
  exports, and the aliases of its exports name M's instance and the new names. So every
  core function index stays the same, and the tails' lifts and exports are unchanged.

The result is a list of splices over the unfolded binary (:class:`.plans.ShimFold`), kept
in the export plan, so a warm load rebuilds the same binary without this module. The
decoder knows what the shims emit (the MVP instructions and the bulk-memory copy and
fill); anything else, and any layout it does not follow, declines (None): the shims then
stay separate modules, as before. Never raises; wasmtime validates the result, and the
runtime compiles the unfolded binary when it refuses the folded one.
"""

from __future__ import annotations

from typing import Final

from .. import _attrs as attrs
from .. import _log as logging
from . import relift as _r

__all__ = ["FOLD_PREFIX", "Splice", "fold_shims"]

log = logging.getLogger("airssys_plugins.runtime")

#: M's exports added for a folded shim ``s`` are named ``airssys-fold<s>-<shim's name>``.
FOLD_PREFIX: Final = "airssys-fold"

Splice = tuple[int, int, bytes]

_Unsupported = _r._Unsupported
_leb = _r._leb
_MODULE_PREAMBLE: Final = b"\0asm\x01\x00\x00\x00"
_EMPTY_MODULE: Final = b"\x01\x08" + _MODULE_PREAMBLE
_EMPTY_BAG: Final = b"\x01\x00"  # a core instance from no exports
_VALTYPES: Final = frozenset({0x7F, 0x7E, 0x7D, 0x7C, 0x7B, 0x70, 0x6F})
_FUNC, _TABLE, _MEMORY, _GLOBAL = 0x00, 0x01, 0x02, 0x03
_MODULE_SORT, _INSTANCE_SORT = 0x11, 0x12
#: A core module's sections in the order the binary format requires (custom ones aside).
_RANK: Final = {1: 1, 2: 2, 3: 3, 4: 4, 5: 5, 13: 6, 6: 7, 7: 8, 8: 9, 9: 10, 12: 11, 10: 12,
                11: 13}  # fmt: skip


def fold_shims(wide: bytes, tail_start: int) -> tuple[Splice, ...] | None:
    """The splices that fold the shim modules of ``wide`` (a component binary whose
    runtime tails start at ``tail_start``) into the guest's core module, in order; None
    when none can be folded. Never raises."""
    try:
        return _fold(wide, tail_start)
    except (_Unsupported, RecursionError):
        return None
    except Exception as exc:
        log.debug("shims not folded: reading the component failed (%r)", exc)
        return None


# ------------------------------------------------------------------ the component's top level


@attrs.define
class _Module:
    head: int
    body: int
    end: int
    in_tail: bool


@attrs.define
class _Instantiation:
    module: int
    args: dict[str, int]  # name -> core instance
    section: int  # head of the section 2 defining it
    entry: int  # its position in that section


#: A core instance: an instantiation, a bag of exports (name -> (core sort, index)), or
#: something else (None: aliased from a component instance).
_Instance = _Instantiation | dict[str, tuple[int, int]] | None
#: Where a core function or memory comes from: (core instance, export name), or None.
_Origin = tuple[int, str] | None


@attrs.define
class _Alias:
    raw: bytes
    instance: int | None  # the core instance whose export it aliases (target 0x01)
    name: str
    core_sort: int | None


@attrs.define
class _Top:
    modules: list[_Module | None] = attrs.Factory(list)
    instances: list[_Instance] = attrs.Factory(list)
    funcs: list[_Origin] = attrs.Factory(list)
    memories: list[_Origin] = attrs.Factory(list)
    #: section head -> (end, raw entries) of the core instance sections in the tail
    instance_sections: dict[int, tuple[int, list[bytes]]] = attrs.Factory(dict)
    #: section head -> (end, aliases) of the alias sections in the tail
    alias_sections: dict[int, tuple[int, list[_Alias]]] = attrs.Factory(dict)


def _sections(data: bytes, start: int, end: int) -> list[tuple[int, int, int, int]]:
    """(id, head, body, end) of the sections between ``start`` and ``end``."""
    out = []
    r = _r._Reader(data, start, end)
    while r.pos < r.end:
        head = r.pos
        sid = r.byte()
        size = r.u32()
        if r.pos + size > r.end:
            raise _Unsupported("truncated section")
        out.append((sid, head, r.pos, r.pos + size))
        r.pos += size
    return out


def _read_top(data: bytes, tail_start: int) -> _Top:
    if data[:8] != _r._PREFIX:
        raise _Unsupported("not a component")
    top = _Top()
    for sid, head, body, end in _sections(data, 8, len(data)):
        r = _r._Reader(data, body, end)
        in_tail = head >= tail_start
        if sid == 1:
            top.modules.append(_Module(head, body, end, in_tail))
        elif sid == 2:
            _read_core_instances(top, r, head, in_tail)
        elif sid == 6:
            _read_aliases(top, r, head, in_tail)
        elif sid == 8:
            _read_canon(top, r)
        elif sid == 10:
            for _ in range(r.u32()):
                r.extern_name()
                sort = r.byte()
                if sort == 0x00:
                    if r.byte() != _MODULE_SORT:
                        raise _Unsupported("core import")
                    r.u32()
                    top.modules.append(None)
                else:
                    r.pos -= 1
                    _r._externdesc(r)
        elif sid == 11:
            for _ in range(r.u32()):
                r.extern_name()
                sort = r.byte()
                if sort == 0x00 and r.byte() == _MODULE_SORT:
                    top.modules.append(None)  # the same module again: not folded into
                r.u32()
                if r.byte() == 0x01:
                    _r._externdesc(r)
        elif sid == 9:
            raise _Unsupported("start section")
    return top


def _read_core_instances(top: _Top, r: _r._Reader, head: int, in_tail: bool) -> None:
    raw: list[bytes] = []
    for _ in range(r.u32()):
        start = r.pos
        form = r.byte()
        if form == 0x00:
            module = r.u32()
            args = {}
            for _ in range(r.u32()):
                name = r.name()
                if r.byte() != _INSTANCE_SORT:
                    raise _Unsupported("instantiate argument")
                args[name] = r.u32()
            entry: _Instance = _Instantiation(module, args, head, len(raw))
        elif form == 0x01:
            items = {}
            for _ in range(r.u32()):
                name = r.name()
                sort = r.byte()
                items[name] = (sort, r.u32())
            entry = items
        else:
            raise _Unsupported(f"core instance form 0x{form:02x}")
        top.instances.append(entry)
        raw.append(bytes(r.data[start : r.pos]))
    if in_tail:
        top.instance_sections[head] = (r.end, raw)


def _read_aliases(top: _Top, r: _r._Reader, head: int, in_tail: bool) -> None:
    aliases: list[_Alias] = []
    for _ in range(r.u32()):
        start = r.pos
        sort = r.byte()
        core_sort = r.byte() if sort == 0x00 else None
        target = r.byte()
        instance: int | None = None
        name = ""
        if target == 0x02:
            r.u32()
            r.u32()
        elif target in (0x00, 0x01):
            index = r.u32()
            name = r.name()
            if target == 0x01:
                instance = index
        else:
            raise _Unsupported("alias target")
        origin: _Origin = None if instance is None else (instance, name)
        if core_sort == _FUNC:
            top.funcs.append(origin)
        elif core_sort == _MEMORY:
            top.memories.append(origin)
        elif core_sort == _MODULE_SORT:
            top.modules.append(None)
        elif core_sort == _INSTANCE_SORT:
            top.instances.append(None)
        aliases.append(_Alias(bytes(r.data[start : r.pos]), instance, name, core_sort))
    if in_tail:
        top.alias_sections[head] = (r.end, aliases)


def _read_canon(top: _Top, r: _r._Reader) -> None:
    """Core functions the canonical built-ins define (as :func:`.relift._read_canon`)."""
    view = memoryview(r.data)
    for _ in range(r.u32()):
        op = r.byte()
        if op == 0x00:  # lift: a component function
            r.byte()
            r.u32()
            _r._canon_options(r, view)
            r.u32()
            continue
        if op == 0x01:
            r.byte()
            r.u32()
            _r._canon_options(r, view)
        elif op in (0x02, 0x03, 0x04, 0x07):
            r.u32()
        elif op in (0x05, 0x0D, 0x1F, 0x22, 0x23):
            pass
        elif op == 0x06:
            r.byte()
        elif op in (0x0A, 0x0B):
            r.byte()
            r.u32()
        else:
            raise _Unsupported(f"canon 0x{op:02x}")
        top.funcs.append(None)


# ------------------------------------------------------------------ a core module, read


def _u64(r: _r._Reader) -> int:
    return r.uleb(63)


def _skip_sleb(r: _r._Reader, most: int) -> None:
    for _ in range(most):
        if r.byte() < 0x80:
            return
    raise _Unsupported("bad signed LEB128")


def _sleb(r: _r._Reader) -> int:
    result = shift = 0
    while True:
        b = r.byte()
        result |= (b & 0x7F) << shift
        shift += 7
        if b < 0x80:
            return result - (1 << shift) if b & 0x40 else result
        if shift > 35:
            raise _Unsupported("bad s33")


def _valtype(r: _r._Reader) -> int:
    b = r.byte()
    if b not in _VALTYPES:
        raise _Unsupported(f"value type 0x{b:02x}")
    return b


def _limits(r: _r._Reader) -> None:
    flags = r.byte()
    if flags > 0x07:
        raise _Unsupported("limits")
    _u64(r)
    if flags & 0x01:
        _u64(r)


def _functype(r: _r._Reader) -> bytes:
    start = r.pos
    if r.byte() != 0x60:
        raise _Unsupported("not a function type")
    for _ in range(2):
        for _ in range(r.u32()):
            _valtype(r)
    return bytes(r.data[start : r.pos])


@attrs.define
class _Core:
    """What a core module defines and exports, as far as folding needs it."""

    #: id -> (head, body, items start, end, count) of each known section
    sections: dict[int, tuple[int, int, int, int, int]] = attrs.Factory(dict)
    #: every section's (id, head, end), in order (custom ones too)
    order: list[tuple[int, int, int]] = attrs.Factory(list)
    types: list[bytes] = attrs.Factory(list)
    func_types: list[int] = attrs.Factory(list)  # imported then defined
    n_imported_funcs: int = 0
    n_globals: int = 0
    n_memories: int = 0
    imports: list[tuple[str, str, int, int]] = attrs.Factory(list)  # module, name, kind, type
    exports: dict[str, tuple[int, int]] = attrs.Factory(dict)
    globals_: list[bytes] = attrs.Factory(list)  # each, encoded (the shims' only)
    codes: list[bytes] = attrs.Factory(list)  # each body, without its size (the shims')
    export_items: list[tuple[str, int, int]] = attrs.Factory(list)


#: The most entries of a section of the guest's module the fold reads (types, imports,
#: functions, exports), far above any real guest's (componentize-py's largest module
#: defines 10,625 functions and 396 types): reading one runs in Python, at a load's cache
#: miss and before the compile deadline, so a hostile module of a million types (about
#: 1.3 s to read) is left with its shims apart instead.
_MOST: Final = {1: 20_000, 2: 100_000, 3: 200_000, 7: 100_000}


def _read_core(data: bytes, body: int, end: int, *, shim: bool) -> _Core:
    """Module ``data[body:end]``; a ``shim`` (ours) has its globals and code read too, and
    may hold only the sections the shims are made of."""
    if data[body : body + 8] != _MODULE_PREAMBLE:
        raise _Unsupported("not a core module")
    m = _Core()
    for sid, head, sbody, send in _sections(data, body + 8, end):
        m.order.append((sid, head, send))
        if sid == 0:
            continue
        if sid not in _RANK or sid in m.sections:
            raise _Unsupported(f"core section {sid}")
        if shim and sid not in (1, 2, 3, 6, 7, 10):
            raise _Unsupported(f"shim section {sid}")
        r = _r._Reader(data, sbody, send)
        count = r.u32() if sid != 8 else 0
        if not shim and count > _MOST.get(sid, count):
            raise _Unsupported(f"core section {sid} of {count:,} entries")
        m.sections[sid] = (head, sbody, r.pos, send, count)
        if sid == 1:
            m.types = [_functype(r) for _ in range(count)]
        elif sid == 2:
            for _ in range(count):
                module, name, kind = r.name(), r.name(), r.byte()
                type_index = -1
                if kind == _FUNC:
                    type_index = r.u32()
                    m.func_types.append(type_index)
                    m.n_imported_funcs += 1
                elif kind == _TABLE:
                    if r.byte() not in (0x70, 0x6F):
                        raise _Unsupported("table type")
                    _limits(r)
                elif kind == _MEMORY:
                    _limits(r)
                    m.n_memories += 1
                elif kind == _GLOBAL:
                    _valtype(r)
                    r.byte()
                    m.n_globals += 1
                elif kind == 0x04 and r.byte() == 0x00:  # a tag
                    r.u32()
                else:
                    raise _Unsupported("import kind")
                m.imports.append((module, name, kind, type_index))
        elif sid == 3:
            m.func_types += [r.u32() for _ in range(count)]
        elif sid == 5:
            m.n_memories += count
        elif sid == 6:
            m.n_globals += count
            if shim:
                for _ in range(count):
                    start = r.pos
                    _valtype(r)
                    r.byte()
                    op = r.byte()
                    if op not in (0x41, 0x42):
                        raise _Unsupported("global initialiser")
                    _skip_sleb(r, 10)
                    if r.byte() != 0x0B:
                        raise _Unsupported("global initialiser")
                    m.globals_.append(bytes(data[start : r.pos]))
        elif sid == 7:
            for _ in range(count):
                name, kind, index = r.name(), r.byte(), r.u32()
                if name in m.exports:
                    raise _Unsupported("duplicate export")
                m.exports[name] = (kind, index)
                m.export_items.append((name, kind, index))
        elif sid == 10 and shim:
            for _ in range(count):
                size = r.u32()
                m.codes.append(bytes(data[r.pos : r.pos + size]))
                r.pos += size
        if shim and r.pos != r.end:
            raise _Unsupported("section size")
    for t in m.func_types:
        if t >= len(m.types):
            raise _Unsupported("type index")
    return m


# ------------------------------------------------------------------ a shim's code, moved


def _blocktype(r: _r._Reader, out: bytearray, types: list[int]) -> None:
    b = r.data[r.pos] if r.pos < r.end else -1
    if b == 0x40 or b in _VALTYPES:
        r.pos += 1
        out.append(b)
        return
    index = _sleb(r)
    if not 0 <= index < len(types):
        raise _Unsupported("block type")
    out += _r._s33(types[index])


def _index(r: _r._Reader, out: bytearray, space: list[int]) -> None:
    index = r.u32()
    if index >= len(space):
        raise _Unsupported("index out of range")
    out += _leb(space[index])


def _memidx_zero(r: _r._Reader, out: bytearray) -> None:
    if r.byte() != 0x00:
        raise _Unsupported("memory other than 0")
    out.append(0x00)


def _moved_body(code: bytes, funcs: list[int], globals_: list[int], types: list[int]) -> bytes:
    """A shim function's body (locals and expression) with its function, global and type
    indices moved to M's (``funcs[i]`` is the new index of function ``i``, ...)."""
    r = _r._Reader(code)
    for _ in range(r.u32()):
        r.u32()
        _valtype(r)
    out = bytearray(code[: r.pos])
    depth = 1
    while depth:
        start = r.pos
        op = r.byte()
        out.append(op)
        if op in (0x02, 0x03, 0x04):
            _blocktype(r, out, types)
            depth += 1
        elif op == 0x0B:
            depth -= 1
        elif op in (0x00, 0x01, 0x05, 0x0F, 0x1A, 0x1B) or 0x45 <= op <= 0xC4:
            pass
        elif op in (0x0C, 0x0D, 0x20, 0x21, 0x22):
            out += _leb(r.u32())
        elif op == 0x0E:
            n = r.u32()
            out += _leb(n)
            for _ in range(n + 1):
                out += _leb(r.u32())
        elif op == 0x10:
            _index(r, out, funcs)
        elif op in (0x23, 0x24):
            _index(r, out, globals_)
        elif 0x28 <= op <= 0x3E:
            align = r.u32()
            if align >= 0x40:  # a memory index follows (multi-memory)
                raise _Unsupported("memory other than 0")
            out += _leb(align) + _leb(_u64(r))
        elif op in (0x3F, 0x40):
            _memidx_zero(r, out)
        elif op in (0x41, 0x42):
            _skip_sleb(r, 5 if op == 0x41 else 10)
            out += code[start + 1 : r.pos]
        elif op in (0x43, 0x44):
            width = 4 if op == 0x43 else 8
            if r.pos + width > r.end:
                raise _Unsupported("truncated constant")
            out += code[r.pos : r.pos + width]
            r.pos += width
        elif op == 0xFC:
            sub = r.u32()
            out += _leb(sub)
            if sub <= 7:  # saturating truncations
                pass
            elif sub == 10:  # memory.copy 0 0
                _memidx_zero(r, out)
                _memidx_zero(r, out)
            elif sub == 11:  # memory.fill 0
                _memidx_zero(r, out)
            else:  # data segments and tables are not moved
                raise _Unsupported(f"instruction 0xfc {sub}")
        else:
            raise _Unsupported(f"instruction 0x{op:02x}")
    if r.pos != r.end:
        raise _Unsupported("code after the end")
    return bytes(out)


# ------------------------------------------------------------------ the fold


@attrs.define
class _Target:
    """The guest's core module M and its instance, and what the folded shims add."""

    instance: int
    module: int
    module_span: _Module
    core: _Core
    types: list[bytes] = attrs.Factory(list)
    funcs: list[int] = attrs.Factory(list)  # type index of each added function
    globals_: list[bytes] = attrs.Factory(list)
    exports: list[bytes] = attrs.Factory(list)
    codes: list[bytes] = attrs.Factory(list)
    #: the added exports: name -> (kind, index)
    added: dict[str, tuple[int, int]] = attrs.Factory(dict)
    #: core instance of a folded shim -> its export names -> M's new ones
    gone: dict[int, dict[str, str]] = attrs.Factory(dict)

    def resolve(self, origin: _Origin) -> _Origin:
        """Where an item comes from once the shims folded so far are M's: an export
        of a folded shim is M's export under its new name."""
        if origin is None or origin[0] not in self.gone:
            return origin
        new = self.gone[origin[0]].get(origin[1])
        return None if new is None else (self.instance, new)

    def export(self, name: str) -> tuple[int, int] | None:
        return self.core.exports.get(name) or self.added.get(name)

    def func_type(self, index: int) -> bytes | None:
        func_types = self.core.func_types + self.funcs
        if index >= len(func_types):
            return None
        return (self.core.types + self.types)[func_types[index]]


def _origin(top: _Top, sort: int, index: int) -> _Origin:
    space = top.funcs if sort == _FUNC else top.memories if sort == _MEMORY else None
    if space is None or index >= len(space):
        return None
    return space[index]


def _target_of(
    top: _Top, bag: dict[str, tuple[int, int]], target: _Target | None
) -> tuple[int, int] | None:
    """(M's instance, M's module index) when every item of ``bag`` is an export of one
    instance of a module defined at the top level before the tails (or of a shim folded
    into it already); else None. Its memory is checked apart (:func:`_memory_zero`)."""
    origins = [_origin(top, sort, index) for sort, index in bag.values() if sort == _FUNC]
    if target is not None:
        origins = [target.resolve(o) for o in origins]
    instances = {o[0] if o is not None else -1 for o in origins}
    if len(instances) != 1 or -1 in instances:
        return None
    instance = instances.pop()
    inst = top.instances[instance] if instance < len(top.instances) else None
    if not isinstance(inst, _Instantiation) or inst.module >= len(top.modules):
        return None
    module = top.modules[inst.module]
    if module is None or module.in_tail:
        return None
    return instance, inst.module


def _memory_zero(top: _Top, target: _Target, index: int) -> bool:
    """Whether the component's core memory ``index`` is M's memory 0: an export of M's
    instance that is M's memory 0, or the memory M's instance was given for the memory
    it imports first (a module that imports its memory, as componentize-py's do)."""
    origin = _origin(top, _MEMORY, index)
    m = target.core
    if origin is not None and origin[0] == target.instance:
        return m.exports.get(origin[1]) == (_MEMORY, 0)
    imported = [(mod, name) for mod, name, kind, _ in m.imports if kind == _MEMORY]
    if not imported:
        return False
    module, name = imported[0]
    inst = top.instances[target.instance]
    assert isinstance(inst, _Instantiation)
    given = inst.args.get(module)
    if given is None or given >= len(top.instances):
        return False
    arg = top.instances[given]
    if isinstance(arg, dict):
        return arg.get(name) == (_MEMORY, index)
    return isinstance(arg, _Instantiation) and origin == (given, name)


def _fold_one(
    top: _Top, data: bytes, target: _Target, shim: _Module, bag: dict[str, tuple[int, int]], s: int
) -> dict[str, str] | None:
    """Add shim ``shim`` (the ``s``-th) to ``target``; its export names -> M's new ones,
    or None when it cannot be folded (``target`` is then unchanged)."""
    m = target.core
    core = _read_core(data, shim.body, shim.end, shim=True)
    if len(core.codes) != len(core.func_types) - core.n_imported_funcs:
        raise _Unsupported("functions and bodies differ")
    n_funcs = len(m.func_types) + len(target.funcs)
    first_type = len(m.types) + len(target.types)
    first_global = m.n_globals + len(target.globals_)
    types = [first_type + t for t in range(len(core.types))]
    funcs: list[int] = []
    for module, name, kind, type_index in core.imports:
        given = bag.get(name)
        if module != "m" or given is None or given[0] != kind:
            return None
        if kind == _MEMORY:
            if not _memory_zero(top, target, given[1]):
                return None  # the shims' code names M's memory 0
            continue
        origin = target.resolve(_origin(top, kind, given[1]))
        if kind != _FUNC or origin is None or origin[0] != target.instance:
            return None
        export = target.export(origin[1])
        if export is None or export[0] != kind:
            return None
        if target.func_type(export[1]) != core.types[type_index]:
            return None
        funcs.append(export[1])
    if core.n_globals != len(core.globals_):
        return None  # an imported global: not given by the shims
    funcs += [n_funcs + j for j in range(len(core.codes))]
    globals_ = [first_global + g for g in range(len(core.globals_))]
    codes = []
    for body in core.codes:
        moved = _moved_body(body, funcs, globals_, types)
        codes.append(_leb(len(moved)) + moved)
    renamed: dict[str, str] = {}
    exports: list[bytes] = []
    for name, kind, index in core.export_items:
        new = f"{FOLD_PREFIX}{s}-{name}"
        if kind != _FUNC or index >= len(funcs) or target.export(new) is not None:
            return None
        renamed[name] = new
        exports.append(_r._name(new) + b"\x00" + _leb(funcs[index]))
    defined = core.func_types[core.n_imported_funcs :]
    target.types += core.types
    target.funcs += [types[t] for t in defined]
    target.globals_ += core.globals_
    target.exports += exports
    target.codes += codes
    for name, _, index in core.export_items:
        target.added[renamed[name]] = (_FUNC, funcs[index])
    return renamed


def _module_splices(target: _Target) -> list[Splice]:
    """The splices that append ``target``'s additions to M's sections (making those M
    lacks), and M's section header with its new size."""
    module = target.module_span
    m = target.core
    added = {1: target.types, 3: [_leb(t) for t in target.funcs], 6: target.globals_,
             7: target.exports, 10: target.codes}  # fmt: skip
    splices: list[Splice] = []
    for sid in sorted(added, key=_RANK.__getitem__):
        items = added[sid]
        if not items:
            continue
        extra = b"".join(items)
        if sid in m.sections:
            head, _, items_start, end, count = m.sections[sid]
            size = len(_leb(count + len(items))) + (end - items_start) + len(extra)
            splices.append(
                (head, items_start, bytes([sid]) + _leb(size) + _leb(count + len(items)))
            )
            splices.append((end, end, extra))
        else:
            at = module.body + 8
            for other, _, other_end in m.order:
                if other and _RANK[other] < _RANK[sid]:
                    at = other_end
            splices.append((at, at, _r._section(sid, items)))
    splices.sort(key=lambda s: (s[0], s[1]))  # stable: insertions at one place keep order
    delta = sum(len(new) - (end - start) for start, end, new in splices)
    size = module.end - module.body + delta
    return [(module.head, module.body, b"\x01" + _leb(size)), *splices]


def _fold(wide: bytes, tail_start: int) -> tuple[Splice, ...] | None:
    top = _read_top(wide, tail_start)
    target: _Target | None = None
    folded: list[tuple[int, int, dict[str, str]]] = []  # (module, instance, renamed)
    ordinal = -1  # the shim's place among the tails' modules: its exports' names
    for k, module in enumerate(top.modules):
        if module is None or not module.in_tail:
            continue
        ordinal += 1
        found = [
            (j, inst)
            for j, inst in enumerate(top.instances)
            if isinstance(inst, _Instantiation) and inst.module == k
        ]
        if len(found) != 1 or list(found[0][1].args) != ["m"]:
            continue
        j, inst = found[0]
        bag = top.instances[inst.args["m"]] if inst.args["m"] < len(top.instances) else None
        if not isinstance(bag, dict):
            continue
        where = _target_of(top, bag, target)
        if where is None:
            continue
        if target is None:
            span = top.modules[where[1]]
            assert span is not None
            core = _read_core(wide, span.body, span.end, shim=False)
            if core.n_memories < 1:
                return None
            target = _Target(where[0], where[1], span, core)
        elif (target.instance, target.module) != where:
            continue  # another module's: left separate
        try:
            renamed = _fold_one(top, wide, target, module, bag, ordinal)
        except _Unsupported:
            renamed = None  # this one stays separate
        if renamed is not None:
            folded.append((k, j, renamed))
            target.gone[j] = renamed
    if target is None or not folded:
        return None
    splices = _module_splices(target) + _tail_splices(top, target, folded)
    return tuple(sorted(splices, key=lambda s: (s[0], s[1])))


def _tail_splices(
    top: _Top, target: _Target, folded: list[tuple[int, int, dict[str, str]]]
) -> list[Splice]:
    """The shims' modules emptied, their instantiations made empty bags and the aliases
    of their exports pointed at M's instance and the new names."""
    splices: list[Splice] = []
    gone = {j: renamed for _, j, renamed in folded}
    for k, _, _ in folded:
        module = top.modules[k]
        assert module is not None
        splices.append((module.head, module.end, _EMPTY_MODULE))
    for head, (end, raw) in top.instance_sections.items():
        entries = list(raw)
        changed = False
        for j, inst in enumerate(top.instances):
            if j in gone and isinstance(inst, _Instantiation) and inst.section == head:
                entries[inst.entry] = _EMPTY_BAG
                changed = True
        if changed:
            splices.append((head, end, _r._section(2, entries)))
    for head, (end, aliases) in top.alias_sections.items():
        items = []
        changed = False
        for a in aliases:
            renamed = gone.get(a.instance) if a.instance is not None else None
            if renamed is None:
                items.append(a.raw)
                continue
            if a.core_sort != _FUNC or a.name not in renamed:
                raise _Unsupported("an alias of a shim's export the fold does not know")
            items.append(b"\x00\x00\x01" + _leb(target.instance) + _r._name(renamed[a.name]))
            changed = True
        if changed:
            splices.append((head, end, _r._section(6, items)))
    return splices
