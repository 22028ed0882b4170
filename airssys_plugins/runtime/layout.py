"""How many linear memories and tables a component's core modules define.

wasmtime's store limits bound each linear memory (``memory_size``) and each table
(``table_elements``) separately, and the *number* of memories, tables and instances; the
C API has no limiter for a store's total. A component's core instances are all created
when it is instantiated, from its binary (the component model has no dynamic
instantiation), so the memories and tables a well-formed component creates are the ones
its core modules define, each module instantiated once. :mod:`.sandbox` splits a
plugin's memory limit over exactly that many memories and tables, and caps their counts
at those numbers: a component that instantiates one module many times (each copy with its
own memory) is refused when the count is reached, instead of multiplying its memory.

Pure Python, no wasmtime: it walks section headers only, descending into nested
components and core modules (their code is skipped by size). A binary it cannot read
gives None; wasmtime then refuses it anyway.
"""

from __future__ import annotations

from typing import Final

import attrs

__all__ = ["CoreLayout", "core_layout", "sections_layout"]

_COMPONENT_PREAMBLE: Final = b"\0asm\x0d\x00\x01\x00"
_MODULE_PREAMBLE: Final = b"\0asm\x01\x00\x00\x00"
_CORE_MODULE_SECTION: Final = 1
_COMPONENT_SECTION: Final = 4
_TABLE_SECTION: Final = 4
_MEMORY_SECTION: Final = 5
_MAX_DEPTH: Final = 64


@attrs.frozen
class CoreLayout:
    """Linear memories and tables defined (not imported) by a component's core modules."""

    memories: int
    tables: int

    def __add__(self, other: CoreLayout) -> CoreLayout:
        return CoreLayout(self.memories + other.memories, self.tables + other.tables)


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


def _module(data: bytes, start: int, end: int) -> tuple[int, int]:
    if data[start : start + 8] != _MODULE_PREAMBLE:
        raise _Bad
    memories = tables = 0
    for sid, body, body_end in _sections(data, start + 8, end):
        if sid == _MEMORY_SECTION:
            memories += _leb(data, body, body_end)[0]
        elif sid == _TABLE_SECTION:
            tables += _leb(data, body, body_end)[0]
    return memories, tables


def _component(data: bytes, start: int, end: int, depth: int) -> tuple[int, int]:
    if depth > _MAX_DEPTH or data[start : start + 8] != _COMPONENT_PREAMBLE:
        raise _Bad
    return _component_sections(data, start + 8, end, depth)


def _component_sections(data: bytes, start: int, end: int, depth: int) -> tuple[int, int]:
    memories = tables = 0
    for sid, body, body_end in _sections(data, start, end):
        if sid == _CORE_MODULE_SECTION:
            m, t = _module(data, body, body_end)
        elif sid == _COMPONENT_SECTION:
            m, t = _component(data, body, body_end, depth + 1)
        else:
            continue
        memories += m
        tables += t
    return memories, tables


def core_layout(data: bytes, tail: bytes = b"") -> CoreLayout | None:
    """The memories and tables ``data`` (a component binary) defines, with ``tail``
    (component sections appended to it, see :mod:`.relift`), or None if either cannot
    be read."""
    try:
        memories, tables = _component(data, 0, len(data), 0)
        more_memories, more_tables = _component_sections(tail, 0, len(tail), 0)
    except (_Bad, IndexError):
        return None
    return CoreLayout(memories + more_memories, tables + more_tables)


def sections_layout(tail: bytes) -> CoreLayout | None:
    """The memories and tables defined by ``tail``, component sections without a preamble
    (what :mod:`.relift` appends), or None if they cannot be read."""
    try:
        return CoreLayout(*_component_sections(tail, 0, len(tail), 0))
    except (_Bad, IndexError):
        return None
