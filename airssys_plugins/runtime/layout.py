"""How many linear memories and tables a component's core modules define.

wasmtime's store limits bound each linear memory (``memory_size``) and each table
(``table_elements``) separately, and the *number* of memories, tables and instances; the
C API has no limiter for a store's total. A component's core instances are all created
when it is instantiated, from its binary (the component model has no dynamic
instantiation), so the memories and tables it creates can be counted from the binary:
those of every core module it instantiates, once per instantiation, and of every
component it instantiates, recursively (jco's ``list-adapter-fusion`` instantiates one
nested component twice). :mod:`.sandbox` splits a plugin's memory limit over exactly that
many memories and tables, and caps their counts at those numbers: a component that
instantiates one module 16 times gets a 16th of the limit for each copy's memory.

Pure Python, no wasmtime: it walks section headers, instance and alias sections only,
descending into nested components and core modules (their code is skipped by size). A
binary it cannot read, or one that instantiates a module or component whose contents it
cannot see (imported, or taken from an instance's exports), gives None; wasmtime refuses
the first anyway, and the sandbox assumes one memory for the second.

The same walk counts what compiling the component costs beyond its size
(:class:`Expansion`): wasmtime's compiler inlines every nested component once per
instantiation, so a component of a kilobyte whose nested components each instantiate the
previous one twice expands to 2**k instances (k = 22: 4 million, 5 s and 1.2 GB of the
compiling process's memory; k = 70 never finishes). :mod:`.image` refuses a component
that expands beyond what its instance limit lets run, or beyond :data:`MAX_INLINED`, before
it is compiled, and compiles one that expands beyond :data:`IN_PROCESS_INLINED` in the
bounded child process (see :func:`.engine.compile_component`).
"""

from __future__ import annotations

from typing import Final

from .. import _attrs as attrs

__all__ = [
    "IN_PROCESS_FUNCTIONS",
    "IN_PROCESS_INLINED",
    "IN_PROCESS_LOCALS",
    "MAX_INLINED",
    "CoreLayout",
    "Expansion",
    "core_layout",
    "read_layout",
    "sections_layout",
]

_COMPONENT_PREAMBLE: Final = b"\0asm\x0d\x00\x01\x00"
_MODULE_PREAMBLE: Final = b"\0asm\x01\x00\x00\x00"
_CORE_MODULE_SECTION: Final = 1
_COMPONENT_SECTION: Final = 4
_TABLE_SECTION: Final = 4
_MEMORY_SECTION: Final = 5
_CODE_SECTION: Final = 10
#: Value types followed by a heap type (``(ref ht)``, ``(ref null ht)``).
_REF_TYPES: Final = frozenset({0x63, 0x64})
_MAX_DEPTH: Final = 64


@attrs.frozen
class CoreLayout:
    """Linear memories and tables defined (not imported) by a component's core modules."""

    memories: int
    tables: int

    def __add__(self, other: CoreLayout) -> CoreLayout:
        return CoreLayout(self.memories + other.memories, self.tables + other.tables)


@attrs.frozen
class Expansion:
    """What a component expands to when wasmtime compiles it, every nested component
    inlined once per instantiation: ``instances``, the core module instances instantiating
    it creates (what a store's instance limit counts); ``inlined``, the items the compiler
    processes (instantiations, their arguments, aliases, imports, exports, canonical
    functions and types, once per instantiation of the component holding them);
    ``functions`` and ``locals``, the functions its core modules define and the locals
    they declare, each module counted once (it is compiled once): a local costs the
    compiler about 70 ns of CPU (its zeroing is compiled in) and takes five bytes to
    declare 50,000 of, so a kilobyte of declarations is about a second of CPU. ``locals``
    is counted only up to the point where either count passes its in-process threshold
    (past it, a lower bound: see :func:`_count_code`)."""

    instances: int
    inlined: int
    functions: int
    locals: int

    def __add__(self, other: Expansion) -> Expansion:
        return Expansion(
            self.instances + other.instances,
            self.inlined + other.inlined,
            self.functions + other.functions,
            self.locals + other.locals,
        )


#: The most items (:attr:`Expansion.inlined`) a component may expand to: about a second
#: and a few hundred MB of compiling (wasmtime 50: ~0.2 us and ~50 bytes an item). Real
#: components are far below: jco's 152 fixture components at most 3,084 (a composed
#: WASI virtualization), a componentize-py interpreter 2,237.
MAX_INLINED: Final = 1_000_000
#: A component that expands to more items than this compiles in the child process (its
#: time bounded by ``compile_timeout``, its memory its own), whatever its size.
IN_PROCESS_INLINED: Final = 50_000
#: A component whose core modules declare more locals than this (about 50 ms of
#: compiling), or define more functions than :data:`IN_PROCESS_FUNCTIONS` (about 0.3 s),
#: compiles in the child process too, whatever its size: 400 functions of 50,000 locals
#: each (wasmparser's most) are 3 KB that take 0.7 s to compile, 5,000 are 40 KB and 9 s.
#: Real components below the in-process size stay far under both: jco's fixtures at most
#: 470 functions and 3,523 locals, our guests 148 and 280; an 18 MB componentize-py
#: interpreter (compiled in the child for its size) 13,407 and 47,900.
IN_PROCESS_LOCALS: Final = 1_000_000
IN_PROCESS_FUNCTIONS: Final = 10_000


class _Bad(Exception):
    pass


def _leb(data: bytes, pos: int, end: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= end or shift > 35:
            raise _Bad
        b = data[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, pos
        shift += 7


def _sections(data: bytes, start: int, end: int) -> list[tuple[int, int, int]]:
    """(id, body start, body end) of each section between ``start`` and ``end``."""
    out = []
    pos = start
    while pos < end:
        sid = data[pos]
        size, pos = _leb(data, pos + 1, end)
        if pos + size > end:
            raise _Bad
        out.append((sid, pos, pos + size))
        pos += size
    return out


@attrs.define
class _Code:
    """The functions the core modules read so far define, and the locals they declare:
    each module counted once, as it is compiled once however often it is instantiated."""

    functions: int = 0
    locals: int = 0


def _module(data: bytes, start: int, end: int, code: _Code) -> tuple[int, int]:
    if data[start : start + 8] != _MODULE_PREAMBLE:
        raise _Bad
    memories = tables = 0
    for sid, body, body_end in _sections(data, start + 8, end):
        if sid == _MEMORY_SECTION:
            memories += _leb(data, body, body_end)[0]
        elif sid == _TABLE_SECTION:
            tables += _leb(data, body, body_end)[0]
        elif sid == _CODE_SECTION:
            _count_code(data, body, body_end, code)
    return memories, tables


def _count_code(data: bytes, body: int, end: int, code: _Code) -> None:
    """Add the functions of a code section and the locals they declare: each body's
    declarations are ``count type`` pairs (a type of one byte, or a reference type
    ``0x63``/``0x64`` and a heap type), read up to the body's code, which is skipped.

    A declaration of no local counts as one (it costs the reading, not the compiler).
    The reading stops once the totals pass :data:`IN_PROCESS_FUNCTIONS` or
    :data:`IN_PROCESS_LOCALS` (the component then compiles in the child, whatever the
    rest holds), so it reads at most about a million declarations of any binary."""
    count, pos = _leb(data, body, end)
    code.functions += count
    if code.functions > IN_PROCESS_FUNCTIONS:
        return
    for _ in range(count):
        size, pos = _leb(data, pos, end)
        after = pos + size
        if after > end:
            raise _Bad
        decls, pos = _leb(data, pos, after)
        for _ in range(decls):
            n, pos = _leb(data, pos, after)
            code.locals += n or 1
            if code.locals > IN_PROCESS_LOCALS:
                return
            kind = data[pos]
            pos = _leb(data, pos + 1, after)[1] if kind in _REF_TYPES else pos + 1
        pos = after


def _instantiating(data: bytes, start: int, end: int, code: _Code) -> Counts:
    """What instantiating the core module between ``start`` and ``end`` creates."""
    memories, tables = _module(data, start, end, code)
    return memories, tables, 1, 1, True


_CORE_INSTANCE_SECTION: Final = 2
_ALIAS_SECTION: Final = 6
_COMPONENT_INSTANCE_SECTION: Final = 5
_IMPORT_SECTION: Final = 10
_EXPORT_SECTION: Final = 11
_CORE_MODULE_SORT: Final = 0x11
_COMPONENT_SORT: Final = 0x04
#: What instantiating a module or component creates: (memories, tables, core instances,
#: inlined items, whether the memories and tables are known).
Counts = tuple[int, int, int, int, bool]
_NOTHING: Final[Counts] = (0, 0, 0, 0, True)
#: An entry of an index space whose contents are not known here (an imported module or
#: component, one taken from an instance's exports): instantiating it counts one instance
#: and one item, and its memories and tables are unknown (the layout is then None: the
#: caller assumes one memory, see sandbox.store_limits).
_UNKNOWN: Final[Counts] = (0, 0, 1, 1, False)
#: Section ids whose body starts with a count of entries, each an item the compiler
#: processes per instantiation: core types, instances, aliases, types, canonical
#: functions, imports, exports (core instance and instance sections are counted as read).
_COUNTED_SECTIONS: Final = frozenset({3, 6, 7, 8, 10, 11})


@attrs.define
class _Scope:
    """A component's index spaces of core modules and components, as far as read: what
    instantiating each creates (memories, tables)."""

    modules: list[Counts] = attrs.Factory(list)
    components: list[Counts] = attrs.Factory(list)


def _name(data: bytes, pos: int, end: int) -> int:
    size, pos = _leb(data, pos, end)
    if pos + size > end:
        raise _Bad
    return pos + size


def _sort(data: bytes, pos: int) -> tuple[int | None, int]:
    """(the sort at ``pos``: _CORE_MODULE_SORT, _COMPONENT_SORT or None for any other,
    the position after it: one byte, or two for a core sort)."""
    sort = data[pos]
    if sort == 0x00:
        return (_CORE_MODULE_SORT if data[pos + 1] == _CORE_MODULE_SORT else None), pos + 2
    return (_COMPONENT_SORT if sort == _COMPONENT_SORT else None), pos + 1


def _sortidx(data: bytes, pos: int, end: int) -> tuple[int | None, int, int]:
    """(the sort, as :func:`_sort` says it, the index, the position after it)."""
    sort, pos = _sort(data, pos)
    index, pos = _leb(data, pos, end)
    return sort, index, pos


def _lookup(space: list[Counts], index: int) -> Counts:
    if index >= len(space):
        raise _Bad
    return space[index]


def _add(total: Counts, more: Counts) -> Counts:
    return (
        total[0] + more[0],
        total[1] + more[1],
        total[2] + more[2],
        total[3] + more[3],
        total[4] and more[4],
    )


def _component(data: bytes, start: int, end: int, scopes: list[_Scope], code: _Code) -> Counts:
    if len(scopes) > _MAX_DEPTH or data[start : start + 8] != _COMPONENT_PREAMBLE:
        raise _Bad
    return _instantiated(data, start + 8, end, scopes, code)


def _instantiated(data: bytes, start: int, end: int, scopes: list[_Scope], code: _Code) -> Counts:
    """What instantiating the component whose sections lie between ``start`` and ``end``
    creates: the memories and tables of every core module it instantiates, and of every
    component it instantiates (recursively), once per instantiation. ``scopes``: the
    enclosing components' index spaces (for outer aliases)."""
    scope = _Scope()
    scopes = [*scopes, scope]
    total: Counts = _NOTHING
    items = 0
    for sid, body, body_end in _sections(data, start, end):
        if sid in _COUNTED_SECTIONS:
            items += _leb(data, body, body_end)[0]
        if sid == _CORE_MODULE_SECTION:
            scope.modules.append(_instantiating(data, body, body_end, code))
            items += 1
        elif sid == _COMPONENT_SECTION:
            scope.components.append(_component(data, body, body_end, scopes, code))
            items += 1
        elif sid in (_CORE_INSTANCE_SECTION, _COMPONENT_INSTANCE_SECTION):
            count, pos = _leb(data, body, body_end)
            items += count
            for _ in range(count):
                form = data[pos]
                if form == 0x00:  # instantiate: count what it creates
                    index, pos = _leb(data, pos + 1, body_end)
                    space = scope.modules if sid == _CORE_INSTANCE_SECTION else scope.components
                    total = _add(total, _lookup(space, index))
                    n, pos = _leb(data, pos, body_end)
                    items += n
                    for _ in range(n):  # instantiate args: name, sort index
                        pos = _name(data, pos, body_end)
                        if sid == _CORE_INSTANCE_SECTION:
                            pos += 1  # always an instance
                            pos = _leb(data, pos, body_end)[1]
                        else:
                            pos = _sortidx(data, pos, body_end)[2]
                elif form == 0x01:  # a bag of exports: creates nothing
                    n, pos = _leb(data, pos + 1, body_end)
                    for _ in range(n):
                        if sid == _CORE_INSTANCE_SECTION:
                            pos = _name(data, pos, body_end)
                            pos = _leb(data, pos + 1, body_end)[1]
                        else:
                            pos = _extern_name(data, pos, body_end)
                            pos = _sortidx(data, pos, body_end)[2]
                else:
                    raise _Bad
        elif sid == _ALIAS_SECTION:
            _aliases(data, body, body_end, scopes)
        elif sid == _IMPORT_SECTION:
            _imports(data, body, body_end, scope)
        elif sid == _EXPORT_SECTION:
            _exports(data, body, body_end, scope)
    return _add(total, (0, 0, 0, items, True))


def _aliases(data: bytes, body: int, end: int, scopes: list[_Scope]) -> None:
    scope = scopes[-1]
    count, pos = _leb(data, body, end)
    for _ in range(count):
        sort, pos = _sort(data, pos)
        target = data[pos]
        pos += 1
        is_module = sort == _CORE_MODULE_SORT
        is_component = sort == _COMPONENT_SORT
        if target == 0x02:  # outer: a module or component of an enclosing component
            depth, pos = _leb(data, pos, end)
            index, pos = _leb(data, pos, end)
            if depth >= len(scopes):
                raise _Bad
            outer = scopes[-1 - depth]
            if is_module:
                scope.modules.append(_lookup(outer.modules, index))
            elif is_component:
                scope.components.append(_lookup(outer.components, index))
        elif target in (0x00, 0x01):  # an export of an instance
            pos = _leb(data, pos, end)[1]
            pos = _name(data, pos, end)
            if is_module:
                scope.modules.append(_UNKNOWN)
            elif is_component:
                scope.components.append(_UNKNOWN)
        else:
            raise _Bad


def _imports(data: bytes, body: int, end: int, scope: _Scope) -> None:
    count, pos = _leb(data, body, end)
    for _ in range(count):
        pos = _extern_name(data, pos, end)
        sort = data[pos]
        if sort == 0x00 and data[pos + 1] == _CORE_MODULE_SORT:
            scope.modules.append(_UNKNOWN)
        elif sort == _COMPONENT_SORT:
            scope.components.append(_UNKNOWN)
        pos = _externdesc_end(data, pos, end)


def _exports(data: bytes, body: int, end: int, scope: _Scope) -> None:
    """An export of a module or component adds its index again in that space."""
    count, pos = _leb(data, body, end)
    for _ in range(count):
        pos = _extern_name(data, pos, end)
        sort, index, pos = _sortidx(data, pos, end)
        if sort == _CORE_MODULE_SORT:
            scope.modules.append(_lookup(scope.modules, index))
        elif sort == _COMPONENT_SORT:
            scope.components.append(_lookup(scope.components, index))
        if data[pos] == 0x01:  # an ascribed type
            pos = _externdesc_end(data, pos + 1, end)
        else:
            pos += 1


def _extern_name(data: bytes, pos: int, end: int) -> int:
    kind = data[pos]
    if kind not in (0x00, 0x01):
        raise _Bad
    return _name(data, pos + 1, end)


def _externdesc_end(data: bytes, pos: int, end: int) -> int:
    sort = data[pos]
    if sort == 0x00:  # core module: 0x11 typeidx
        return _leb(data, pos + 2, end)[1]
    if sort in (0x01, 0x04, 0x05):  # func, component, instance: typeidx
        return _leb(data, pos + 1, end)[1]
    if sort == 0x02:  # value: eq valueidx, or a valtype
        if data[pos + 1] == 0x00:
            return _leb(data, pos + 2, end)[1]
        return _valtype_end(data, pos + 2, end)
    if sort == 0x03:  # type: eq typeidx, or sub resource
        if data[pos + 1] == 0x00:
            return _leb(data, pos + 2, end)[1]
        if data[pos + 1] == 0x01:
            return pos + 2
    raise _Bad


def _valtype_end(data: bytes, pos: int, end: int) -> int:
    if pos >= end:
        raise _Bad
    if 0x40 <= data[pos] <= 0x7F:  # a value type's opcode (one byte)
        return pos + 1
    return _leb(data, pos, end)[1]  # a type index (s33, positive)


def _defined(data: bytes, start: int, end: int, code: _Code) -> Counts:
    """The memories and tables the core modules between ``start`` and ``end`` define,
    nested components included, each counted once (the runtime's own appended sections:
    each shim module is instantiated once)."""
    total = _NOTHING
    for sid, body, body_end in _sections(data, start, end):
        if sid in _COUNTED_SECTIONS:
            total = _add(total, (0, 0, 0, _leb(data, body, body_end)[0], True))
        if sid == _CORE_MODULE_SECTION:
            total = _add(total, _instantiating(data, body, body_end, code))
        elif sid == _COMPONENT_SECTION:
            if data[body : body + 8] != _COMPONENT_PREAMBLE:
                raise _Bad
            total = _add(total, _defined(data, body + 8, body_end, code))
    return total


def read_layout(data: bytes, tail: bytes = b"") -> tuple[CoreLayout | None, Expansion | None]:
    """The memories and tables ``data`` (a component binary) creates when instantiated,
    with ``tail`` (component sections appended to it, see :mod:`.relift`), or None if they
    cannot be known; and what it expands to when compiled, or None if it cannot be read."""
    code = _Code()
    try:
        counts = _add(_component(data, 0, len(data), [], code), _defined(tail, 0, len(tail), code))
    except (_Bad, IndexError, RecursionError):
        return None, None
    memories, tables, instances, inlined, known = counts
    expansion = Expansion(instances, inlined, code.functions, code.locals)
    return (CoreLayout(memories, tables) if known else None), expansion


def core_layout(data: bytes, tail: bytes = b"") -> CoreLayout | None:
    """The memories and tables of :func:`read_layout`."""
    return read_layout(data, tail)[0]


def sections_layout(tail: bytes) -> CoreLayout | None:
    """The memories and tables defined by ``tail``, component sections without a preamble
    (what :mod:`.relift` appends), or None if they cannot be read."""
    try:
        return CoreLayout(*_defined(tail, 0, len(tail), _Code())[:2])
    except (_Bad, IndexError):
        return None
