"""The canonical ABI of the component model, for the guests we write by hand (C, WAT).

How a WIT value travels between host and guest: as *flat* core values (``i32``, ``i64``,
``f32``, ``f64``) for parameters and small results, or laid out in linear memory (sizes,
alignments, field offsets) when there are too many of them. Follows the component-model
``CanonicalABI.md``: at most 16 flat parameters (else one pointer to a tuple of them in
memory) and one flat result (else a pointer to a return area the guest owns).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Final

from ..contract import wit as _wit

__all__ = [
    "MAX_FLAT_PARAMS",
    "MAX_FLAT_RESULTS",
    "Leaf",
    "align_to",
    "alignment",
    "cases",
    "discriminant_size",
    "flat_params",
    "flat_result",
    "flatten",
    "leaves",
    "payload_offset",
    "record_offsets",
    "size",
]

MAX_FLAT_PARAMS: Final = 16
MAX_FLAT_RESULTS: Final = 1

_PRIM_SIZE: Final = {
    "bool": 1,
    "u8": 1,
    "s8": 1,
    "u16": 2,
    "s16": 2,
    "u32": 4,
    "s32": 4,
    "f32": 4,
    "char": 4,
    "u64": 8,
    "s64": 8,
    "f64": 8,
}
_PRIM_FLAT: Final = {"u64": "i64", "s64": "i64", "f32": "f32", "f64": "f64"}


def align_to(offset: int, align: int) -> int:
    return -(-offset // align) * align


def cases(t: _wit.WitType) -> list[tuple[str, _wit.WitType | None]] | None:
    """The cases of a variant-like type (variant, option, result); None for others."""
    if isinstance(t, _wit.VariantT):
        return list(t.cases)
    if isinstance(t, _wit.OptionT):
        return [("none", None), ("some", t.inner)]
    if isinstance(t, _wit.ResultT):
        return [("ok", t.ok), ("err", t.err)]
    return None


def _fields(t: _wit.WitType) -> list[_wit.WitType] | None:
    if isinstance(t, _wit.RecordT):
        return [ft for _, ft in t.fields]
    if isinstance(t, _wit.TupleT):
        return list(t.elements)
    return None


def discriminant_size(count: int) -> int:
    """Bytes of the discriminant of a variant or enum with ``count`` cases."""
    return 1 if count <= 2**8 else 2 if count <= 2**16 else 4


def _flags_size(count: int) -> int:
    if count > 32:
        raise ValueError("flags with more than 32 members")
    return 1 if count <= 8 else 2 if count <= 16 else 4


def size(t: _wit.WitType) -> int:
    """Bytes of ``t`` in linear memory."""
    if isinstance(t, _wit.Prim):
        return 8 if t.name == "string" else _PRIM_SIZE[t.name]
    if isinstance(t, _wit.ListT):
        return 8
    if isinstance(t, _wit.EnumT):
        return discriminant_size(len(t.names))
    if isinstance(t, _wit.FlagsT):
        return _flags_size(len(t.names))
    fields = _fields(t)
    if fields is not None:
        end = 0
        for ft in fields:
            end = align_to(end, alignment(ft)) + size(ft)
        return align_to(end, alignment(t))
    variant = cases(t)
    if variant is not None:
        biggest = max((size(c) for _, c in variant if c is not None), default=0)
        return align_to(payload_offset(t) + biggest, alignment(t))
    raise ValueError(f"{_wit.render_type(t)} has no canonical ABI layout")


def alignment(t: _wit.WitType) -> int:
    """Alignment of ``t`` in linear memory."""
    if isinstance(t, _wit.Prim):
        return 4 if t.name == "string" else _PRIM_SIZE[t.name]
    if isinstance(t, _wit.ListT):
        return 4
    if isinstance(t, _wit.EnumT | _wit.FlagsT):
        return size(t)
    fields = _fields(t)
    if fields is not None:
        return max(alignment(ft) for ft in fields)
    variant = cases(t)
    if variant is not None:
        return max(
            [discriminant_size(len(variant))] + [alignment(c) for _, c in variant if c is not None]
        )
    raise ValueError(f"{_wit.render_type(t)} has no canonical ABI layout")


def payload_offset(t: _wit.WitType) -> int:
    """Offset of the payload of a variant-like value (after its discriminant)."""
    variant = cases(t)
    assert variant is not None
    payload_align = max((alignment(c) for _, c in variant if c is not None), default=1)
    return align_to(discriminant_size(len(variant)), payload_align)


def record_offsets(t: _wit.WitType) -> list[int]:
    """Offsets of the fields of a record or tuple."""
    fields = _fields(t)
    assert fields is not None
    offsets, end = [], 0
    for ft in fields:
        end = align_to(end, alignment(ft))
        offsets.append(end)
        end += size(ft)
    return offsets


def _join(a: str, b: str) -> str:
    if a == b:
        return a
    if {a, b} == {"i32", "f32"}:
        return "i32"
    return "i64"


def flatten(t: _wit.WitType) -> list[str]:
    """The core value types ``t`` flattens to (``i32``, ``i64``, ``f32``, ``f64``)."""
    if isinstance(t, _wit.Prim):
        if t.name == "string":
            return ["i32", "i32"]
        return [_PRIM_FLAT.get(t.name, "i32")]
    if isinstance(t, _wit.ListT):
        return ["i32", "i32"]
    if isinstance(t, _wit.EnumT):
        return ["i32"]
    if isinstance(t, _wit.FlagsT):
        _flags_size(len(t.names))
        return ["i32"]
    fields = _fields(t)
    if fields is not None:
        return [flat for ft in fields for flat in flatten(ft)]
    variant = cases(t)
    if variant is not None:
        joined: list[str] = []
        for _, c in variant:
            for i, flat in enumerate(flatten(c) if c is not None else []):
                if i < len(joined):
                    joined[i] = _join(joined[i], flat)
                else:
                    joined.append(flat)
        return ["i32", *joined]
    raise ValueError(f"{_wit.render_type(t)} cannot be passed through the canonical ABI")


def flat_params(sig: _wit.FuncSig) -> list[str] | None:
    """The flat parameters of an export; None when they go through memory (one ``i32``)."""
    flat = [f for t in sig.param_types for f in flatten(t)]
    return flat if len(flat) <= MAX_FLAT_PARAMS else None


def flat_result(sig: _wit.FuncSig) -> list[str] | None:
    """The flat result of an export (``[]`` for none); None when it goes through memory."""
    if sig.result is None:
        return []
    flat = flatten(sig.result)
    return flat if len(flat) <= MAX_FLAT_RESULTS else None


class Leaf:
    """One scalar of a value laid out in memory: where it is and what it holds."""

    __slots__ = ("name", "note", "offset", "store")

    def __init__(self, offset: int, name: str, store: str, note: str = ""):
        self.offset = offset
        self.name = name
        self.store = store  # u8, u16, i32, i64, f32, f64
        self.note = note


_STORE: Final = {
    "bool": "u8",
    "u8": "u8",
    "s8": "u8",
    "u16": "u16",
    "s16": "u16",
    "u32": "i32",
    "s32": "i32",
    "char": "i32",
    "u64": "i64",
    "s64": "i64",
    "f32": "f32",
    "f64": "f64",
}


def leaves(t: _wit.WitType, name: str, offset: int = 0) -> Iterator[Leaf]:
    """Every scalar of ``t`` laid out at ``offset``, with a dotted name (for comments)."""
    if isinstance(t, _wit.Prim):
        if t.name == "string":
            yield Leaf(offset, f"{name}.ptr", "i32", "UTF-8 bytes")
            yield Leaf(offset + 4, f"{name}.len", "i32", "byte count")
        else:
            yield Leaf(offset, name, _STORE[t.name], t.name)
    elif isinstance(t, _wit.ListT):
        elem = _wit.render_type(t.element)
        yield Leaf(offset, f"{name}.ptr", "i32", f"{elem} elements, {size(t.element)} bytes each")
        yield Leaf(offset + 4, f"{name}.len", "i32", "element count")
    elif isinstance(t, _wit.EnumT):
        shown = ", ".join(f"{i}={n}" for i, n in enumerate(t.names))
        yield Leaf(offset, name, _int_store(size(t)), shown)
    elif isinstance(t, _wit.FlagsT):
        shown = ", ".join(f"bit {i}={n}" for i, n in enumerate(t.names))
        yield Leaf(offset, name, _int_store(size(t)), shown)
    elif (fields := _fields(t)) is not None:
        names = (
            [n for n, _ in t.fields]
            if isinstance(t, _wit.RecordT)
            else [str(i) for i in range(len(fields))]
        )
        for field_name, ft, at in zip(names, fields, record_offsets(t), strict=True):
            yield from leaves(ft, f"{name}.{field_name}", offset + at)
    else:
        variant = cases(t)
        if variant is None:
            raise ValueError(f"{_wit.render_type(t)} has no canonical ABI layout")
        shown = ", ".join(f"{i}={n}" for i, (n, _) in enumerate(variant))
        yield Leaf(offset, f"{name}.tag", _int_store(discriminant_size(len(variant))), shown)
        at = offset + payload_offset(t)
        for case, payload in variant:
            if payload is not None:
                yield from leaves(payload, f"{name}.{case}", at)


def _int_store(nbytes: int) -> str:
    return {1: "u8", 2: "u16", 4: "i32"}[nbytes]
