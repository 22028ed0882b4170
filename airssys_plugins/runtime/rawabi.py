"""The canonical ABI in guest memory, done by the host: the raw route's converters.

A call through the raw exports of :mod:`.rawbytes` moves its values the way wasmtime
itself would, but with one ``memmove`` per buffer instead of a transcoding or a value per
byte:

1. :meth:`RawSignature.prepare` checks and converts every argument first (the same type
   and range checks, and messages, as :mod:`.convert`; strings are encoded to UTF-8), so
   a bad argument raises ``ConvertError`` before the guest is touched;
2. :meth:`RawSignature.lower` asks the guest's allocator for each list and string
   (``cabi_realloc(0, 0, align, size)``, in the canonical ABI's order), checks the block
   it answers against the memory size, copies the bytes in and gives the flat values;
3. after the call, the return area and every pointer and length read from it are checked
   (bounds, alignment, discriminants, UTF-8, chars: what wasmtime's lifting checks), the
   result's size is counted as :func:`.convert.measurer` counts it *before* anything is
   copied, then the values are copied out; only then does the guest's post-return run.

Any failure raises :class:`~.guestmem.GuestMemoryError` (``ResultTooLarge`` for a result
over the budget); the call path maps it to a named error and discards the instance,
without calling the post-return with a bad pointer.

Covered types: every primitive, ``string``, ``list<T>``, ``tuple``, ``option``,
``result``, ``record``, ``enum``, and ``variant`` and ``flags`` with their Python classes
(a hookspec's), of covered types: lowered from and lifted into the Python values
:mod:`.convert` takes and makes, with its checks and messages.

The same nodes lift a host function's parameters from the flat core values and the
guest's memory (:class:`ParamLift`, for the functions :mod:`.rawimports` rewrote to take
them so); lifting also covers ``Some[...]`` options and classless variants and flags
(``node(t, lifted=True)``), into the Python values :func:`.convert.lifter` makes.
"""

from __future__ import annotations

import ctypes
import enum
import struct
from array import array
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Final

from wasmtime import WasmtimeError

from ..contract import wit
from ..contract.annotations import Err, Ok, Some
from . import capi
from .capi import call as _call
from .convert import (
    _INT_KINDS,
    F32,
    F64,
    U32,
    U64,
    VAL,
    VAL_SIZE,
    ConvertError,
    Kept,
    _init_names,
    _lower_prim,
    _pack,
    _packed_elements,
    _short,
    _single_field,
    _type_name,
)
from .guestmem import GuestMemory, GuestMemoryError, find_base, find_memory
from .plans import PROBE_AT_ZERO, allocs_name

__all__ = [
    "BATCH_FROM",
    "MAX_FLAT_PARAMS",
    "RAW_BYTES_PER_BLOCK",
    "RAW_MIN_BYTES",
    "RECORD_UNITS",
    "ArgumentError",
    "CoreCall",
    "GrownMemory",
    "GuestCallError",
    "ParamLift",
    "RawBinding",
    "RawCallPlan",
    "RawSignature",
    "RawState",
    "ResultTooLarge",
    "result_budget",
    "wit_type",
]

#: Arguments of about this many bytes (or a previous result this large) take the raw
#: route: below it, its two or three calls into the guest cost more than the latin1
#: route's one (measured crossover: about 1 KiB for random bytes, 4 KiB for ASCII).
RAW_MIN_BYTES: Final = 2048
#: wasmtime's own lowering moves a list of bytes or numbers a value per element (about
#: 90 ns a byte) and a string as one buffer; the raw route costs about 1-2 µs per list it
#: allocates (the blocks allocated by batch: :data:`BATCH_FROM`), nothing more per string
#: than wasmtime's route, and about as much per record (:data:`RECORD_UNITS`). The route
#: is taken only when the lists of bytes and numbers the arguments hold come to this many
#: bytes per unit of that cost: 1,000 lists of 1 byte, 0.6x the time of wasmtime's route;
#: 1,000 lines of ``{start: point, end: point, tags: list<string>}``, 0.8x.
RAW_BYTES_PER_BLOCK: Final = 8
#: What a record or variant object costs the raw route, in blocks (its fields checked,
#: stored and read in Python; a record's numbers, strings and lists by one ``struct``).
RECORD_UNITS: Final = 2
#: A call lowering this many blocks or more allocates them with the batch allocator
#: (``airssys-raw-allocs``): one call into the guest for all but the first few.
BATCH_FROM: Final = 3

_I32, _I64, _F32, _F64 = 0x7F, 0x7E, 0x7D, 0x7C
_byref = ctypes.byref
_memmove = ctypes.memmove
_string_at = ctypes.string_at
_u32_pair = struct.Struct("<II")

#: With no ``max_result_bytes``, a result may count (as :func:`.convert.measurer`
#: counts) at most this many times the guest's memory, plus the slack: more is only
#: possible with entries aliasing one region (a small memory, a huge host result).
_ALIAS_FACTOR: Final = 8
_ALIAS_SLACK: Final = 64 << 20


class ResultTooLarge(GuestMemoryError):
    """The result counts more than the budget; nothing was copied."""

    def __init__(self, size: int, budget: int):
        super().__init__(
            f"the result counts at least {size:,} bytes, above {budget:,}",
            reason="result too large",
        )
        self.size = size


class GuestCallError(Exception):
    """A call into the guest failed (a trap, a timeout...): wasmtime's error."""

    def __init__(self, error: WasmtimeError):
        super().__init__(str(error))
        self.error = error


def result_budget(limit: int | None, memory_size: int) -> int:
    """The most a result may count: the plugin's limit, else a multiple of its memory."""
    return limit if limit is not None else _ALIAS_FACTOR * memory_size + _ALIAS_SLACK


def _up(offset: int, align: int) -> int:
    return (offset + align - 1) & -align


def _abi_error(message: str, reason: str) -> GuestMemoryError:
    return GuestMemoryError(message, reason=reason)


class _Cx:
    """One call's guest memory and allocator. ``where`` names what is read in messages;
    ``left``: what lifting may still build (:meth:`spend`), None for no bound (a result,
    measured before it is copied)."""

    __slots__ = ("ahead", "alloc_call", "budget", "left", "mem", "next", "where")

    def __init__(
        self,
        mem: GuestMemory,
        alloc_call: Callable[[int, int], int],
        budget: int,
        where: str = "a result",
    ):
        self.mem = mem
        self.alloc_call = alloc_call
        self.budget = budget
        self.where = where
        self.left: int | None = None
        #: The call's blocks, allocated ahead (:meth:`RawCallPlan.allocate`): flat
        #: ``align, size, pointer`` triples in the order lowering asks for them.
        self.ahead: list[int] | None = None
        self.next = 0

    def spend(self, n: int) -> None:
        """Count ``n`` bytes about to be built; past the bound, refuse (entries of a list
        may alias one region: without a bound, a small memory could make a huge value)."""
        left = self.left
        if left is not None:
            self.left = left = left - n
            if left < 0:
                raise _abi_error(
                    f"{self.where} would build more than {self.budget:,} bytes of values "
                    "(list entries aliasing one region?)",
                    "arguments too large",
                )

    def alloc(self, align: int, size: int) -> int:
        ahead = self.ahead
        if ahead is not None:  # checked when it was allocated
            i = self.next
            self.next = i + 3
            if ahead[i] != align or ahead[i + 1] != size:
                raise RuntimeError(
                    f"internal error: block {i // 3} of the call was allocated as "
                    f"({ahead[i]}, {ahead[i + 1]}) and is lowered as ({align}, {size})"
                )
            return ahead[i + 2]
        return self.checked(self.mem.update(self.alloc_call(align, size)), align, size)

    def checked(self, ptr: int, align: int, size: int) -> int:
        """``ptr``, a block of ``size`` bytes the guest's allocator answered, if it is
        aligned and inside the memory (as of the last call into the guest)."""
        if ptr % align:
            raise _abi_error(
                f"the guest's cabi_realloc returned {ptr:#x}, not aligned to {align}",
                "realloc misaligned",
            )
        if ptr + size > self.mem.size:
            raise _abi_error(
                f"the guest's cabi_realloc returned a block of {size:,} bytes at {ptr:#x}, "
                f"beyond the end of its memory ({self.mem.size:,} bytes)",
                "realloc out of bounds",
            )
        return ptr


# ------------------------------------------------------------------ flat value joins


def _coerce(value: Any, have: int, want: int) -> Any:
    """A flat value of core type ``have`` in a joined slot of type ``want`` (lowering)."""
    if have == want:
        return value
    if have == _F32:
        value = struct.unpack("<I", struct.pack("<f", value))[0]
    elif have == _F64:
        value = struct.unpack("<Q", struct.pack("<d", value))[0]
    return value  # i32 -> i64: the unsigned value, zero-extended


def _uncoerce(value: Any, have: int, want: int) -> Any:
    """The inverse of :func:`_coerce` (lifting a case's value from a joined slot)."""
    if have == want:
        return value
    if have == _I64 and want in (_I32, _F32):
        value &= 0xFFFFFFFF
    if want == _F32:
        return struct.unpack("<f", struct.pack("<I", value))[0]
    if want == _F64:
        return struct.unpack("<d", struct.pack("<Q", value))[0]
    return value


def _join(cases: Sequence[tuple[int, ...]]) -> tuple[int, ...]:
    joined: list[int] = []
    for flat in cases:
        for i, v in enumerate(flat):
            if i == len(joined):
                joined.append(v)
            elif joined[i] != v:
                joined[i] = _I32 if {joined[i], v} == {_I32, _F32} else _I64
    return tuple(joined)


# ------------------------------------------------------------------ one node per WIT type


class _Node:
    size: int
    align: int
    flat: tuple[int, ...]
    #: Whether convert.measurer counts anything for this type (strings, lists).
    measured: bool = False
    #: The records and variant objects a value holds outside its measured parts (what
    #: :meth:`moves` counts for them without looking: always the same number).
    fixed: int = 0

    def prepare(self, value: Any) -> Any:
        raise NotImplementedError

    def lower(self, cx: _Cx, prep: Any, out: list[Any]) -> None:
        raise NotImplementedError

    def store(self, cx: _Cx, prep: Any, buf: bytearray, off: int) -> None:
        raise NotImplementedError

    def load(self, cx: _Cx, blk: bytes, off: int) -> Any:
        raise NotImplementedError

    def lift_flat(self, cx: _Cx, values: Iterator[Any]) -> Any:
        """The value held in the next ``len(self.flat)`` core values (the canonical ABI's
        ``lift_flat``: a host function's parameters)."""
        raise NotImplementedError

    def measure(self, cx: _Cx, blk: bytes, off: int) -> int:
        return 0

    def blocks(self, prep: Any, out: list[int]) -> None:
        """Add to ``out`` the ``align, size`` of every block :meth:`lower` (or
        :meth:`store`) of ``prep`` allocates, in the order it asks for them (only called
        on a ``measured`` node: the others allocate nothing)."""

    def moves(self, value: Any, acc: list[int]) -> None:
        """Add to ``acc`` what lowering ``value`` raw takes: ``acc[0]``, the bytes of lists
        that wasmtime's lowering moves a value per element; ``acc[1]``, the blocks the raw
        route allocates (a list's first 64 elements are looked at, the rest estimated).
        Primitives, enums and flags take neither."""


_INT_FMT: Final = {
    "u8": "<B", "s8": "<b", "u16": "<H", "s16": "<h",
    "u32": "<I", "s32": "<i", "u64": "<Q", "s64": "<q",
}  # fmt: skip


class _Prim(_Node):
    def __init__(self, name: str):
        self.name = name
        self.check = _lower_prim(name)
        if name in _INT_FMT:
            self.fmt = struct.Struct(_INT_FMT[name])
        else:
            self.fmt = struct.Struct({"f32": "<f", "f64": "<d", "char": "<I", "bool": "<B"}[name])
        self.size = self.align = self.fmt.size
        wide = name in ("u64", "s64")
        self.flat = (
            (_I64 if wide else _F32 if name == "f32" else _F64 if name == "f64" else _I32),
        )
        self.bits = 64 if wide else 32
        #: An integer type's range: a plain int inside it is taken as it is (what the
        #: check below would give back, without its scratch value).
        self.range = _INT_KINDS[name][2:4] if name in _INT_KINDS else None
        self.is_int = name in _INT_FMT

    def prepare(self, value: Any) -> Any:
        span = self.range
        if span is not None and type(value) is int and span[0] <= value <= span[1]:
            return value
        if type(value) is float and self.name == "f64":
            return value
        if type(value) is bool and self.name == "bool":
            return 1 if value else 0
        scratch = VAL()
        self.check(value, scratch)  # convert's own checks and messages
        of = scratch.of
        name = self.name
        if name == "bool":
            return 1 if of.boolean else 0
        if name == "char":
            return of.character
        if name == "f32":
            return of.f32  # rounded to f32 as the element-by-element path does
        if name == "f64":
            return of.f64
        return value

    def lower(self, cx: _Cx, prep: Any, out: list[Any]) -> None:
        if self.name in ("f32", "f64"):
            out.append(prep)
        else:
            out.append(prep & ((1 << self.bits) - 1))  # two's complement, as the core value

    def store(self, cx: _Cx, prep: Any, buf: bytearray, off: int) -> None:
        self.fmt.pack_into(buf, off, prep)

    def from_int(self, raw: int) -> Any:
        """The value of this type held in core integer ``raw`` (a load or a flat result)."""
        name = self.name
        if name == "bool":
            return raw != 0
        if name == "char":
            if raw >= 0x110000 or 0xD800 <= raw <= 0xDFFF:
                raise _abi_error(f"{raw:#x} is out of range for `char`", "invalid char")
            return chr(raw)
        width = self.fmt.size * 8
        raw &= (1 << width) - 1
        if name[0] == "s" and raw >> (width - 1):
            raw -= 1 << width
        return raw

    def load(self, cx: _Cx, blk: bytes, off: int) -> Any:
        raw = self.fmt.unpack_from(blk, off)[0]
        if self.is_int or self.name in ("f32", "f64"):
            return raw  # (the format has the type's width and sign)
        return self.from_int(raw)

    def lift_flat(self, cx: _Cx, values: Iterator[Any]) -> Any:
        raw = next(values)
        if self.name in ("f32", "f64"):
            return raw
        return self.from_int(raw)


class _String(_Node):
    size, align, flat, measured = 8, 4, (_I32, _I32), True

    def moves(self, value: Any, acc: list[int]) -> None:
        pass  # one buffer on wasmtime's route too; no dearer raw (allocated by batch)

    def prepare(self, value: Any) -> Any:
        if not isinstance(value, str):
            raise ConvertError(f"expected str, got {_type_name(value)}")
        try:
            return value.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise ConvertError(
                f"string is not valid Unicode ({exc.reason} at {exc.start})"
            ) from None

    def blocks(self, prep: Any, out: list[int]) -> None:
        out += (1, len(prep))

    def lower(self, cx: _Cx, prep: Any, out: list[Any]) -> None:
        ptr = cx.alloc(1, len(prep))
        cx.mem.write(ptr, prep, "a string argument")
        out += (ptr, len(prep))

    def store(self, cx: _Cx, prep: Any, buf: bytearray, off: int) -> None:
        flat: list[Any] = []
        self.lower(cx, prep, flat)
        _u32_pair.pack_into(buf, off, *flat)

    def load(self, cx: _Cx, blk: bytes, off: int) -> Any:
        return self.text(cx, *_u32_pair.unpack_from(blk, off))

    def lift_flat(self, cx: _Cx, values: Iterator[Any]) -> Any:
        return self.text(cx, next(values), next(values))

    @staticmethod
    def text(cx: _Cx, ptr: int, n: int) -> str:
        """The UTF-8 string of ``n`` bytes at ``ptr``."""
        cx.spend(n)
        return _decoded(cx, cx.mem.read(ptr, n, "a string"))

    def measure(self, cx: _Cx, blk: bytes, off: int) -> int:
        return int(_u32_pair.unpack_from(blk, off)[1])


class _List(_Node):
    size, align, flat, measured = 8, 4, (_I32, _I32), True
    #: At most this many elements are lifted (a host function's parameter it keeps only
    #: the first elements of: :class:`ParamLift`), the others only bounds-checked.
    keep: int | None = None

    def __init__(self, t: wit.ListT, elem: _Node):
        self.elem = elem
        self.py_bytes = t.py_bytes
        self.elem_name = wit.render_type(t.element)
        packed = _packed_elements(t.element)
        self.code = None if packed is None else packed[1]
        self.elem_check = _lower_prim(t.element.name) if isinstance(t.element, wit.Prim) else None
        self.width = elem.size

    def prepare(self, value: Any) -> Any:
        if self.code is not None:
            assert self.elem_check is not None
            return _pack(value, self.code, self.elem_check, self.elem_name)
        if not isinstance(value, list | tuple):
            raise ConvertError(f"expected list[{self.elem_name}], got {_type_name(value)}")
        out = []
        for i, v in enumerate(value):
            try:
                out.append(self.elem.prepare(v))
            except ConvertError as exc:
                exc.path.insert(0, f"[{i}]")
                raise
        return out

    def moves(self, value: Any, acc: list[int]) -> None:
        acc[1] += 1
        if self.code is not None:  # bytes or numbers: one buffer here, a value each there
            if isinstance(value, bytes | bytearray):
                acc[0] += len(value)
            elif isinstance(value, memoryview):
                acc[0] += value.nbytes
            elif isinstance(value, list | tuple):
                acc[0] += len(value) * self.width
            return
        if not isinstance(value, list | tuple) or not value:
            return
        n = len(value)
        acc[0] += n * self.width  # the block of the elements
        elem = self.elem
        if not elem.measured:
            acc[1] += RECORD_UNITS * n * elem.fixed
            return
        sample = value[:64]
        each = [0, 0]
        for v in sample:
            elem.moves(v, each)
        scale = n / len(sample)
        acc[0] += int(each[0] * scale)
        acc[1] += int(each[1] * scale)

    def blocks(self, prep: Any, out: list[int]) -> None:
        elem = self.elem
        if self.code is not None:
            out += (elem.align, len(prep))
            return
        out += (elem.align, len(prep) * elem.size)
        if elem.measured:
            for p in prep:
                elem.blocks(p, out)

    def lower(self, cx: _Cx, prep: Any, out: list[Any]) -> None:
        elem = self.elem
        if self.code is not None:
            n = len(prep) // self.width
            ptr = cx.alloc(elem.align, len(prep))
            cx.mem.write(ptr, prep, "a list argument")
        else:
            n = len(prep)
            size = elem.size
            ptr = cx.alloc(elem.align, n * size)
            buf = bytearray(n * size)
            if type(elem) is _String:
                _lower_blocks(cx, prep, buf, 1, 1)
            elif type(elem) is _List and elem.code is not None:
                _lower_blocks(cx, prep, buf, elem.elem.align, elem.width)
            else:
                for i in range(n):  # elements lowered after their array, as wasmtime does
                    elem.store(cx, prep[i], buf, i * size)
            cx.mem.write(ptr, buf, "a list argument")
        out += (ptr, n)

    def store(self, cx: _Cx, prep: Any, buf: bytearray, off: int) -> None:
        flat: list[Any] = []
        self.lower(cx, prep, flat)
        _u32_pair.pack_into(buf, off, *flat)

    def _block(self, cx: _Cx, blk: bytes, off: int) -> tuple[int, int]:
        ptr, n = _u32_pair.unpack_from(blk, off)
        return self._checked(cx, ptr, n)

    def _checked(self, cx: _Cx, ptr: int, n: int) -> tuple[int, int]:
        if ptr % self.elem.align:
            raise _abi_error(
                f"list pointer {ptr:#x} is not aligned to {self.elem.align}",
                "misaligned pointer",
            )
        cx.mem.check(ptr, n * self.width, "a list")
        return ptr, n

    def load(self, cx: _Cx, blk: bytes, off: int) -> Any:
        return self.items(cx, *self._block(cx, blk, off))

    def lift_flat(self, cx: _Cx, values: Iterator[Any]) -> Any:
        return self.items(cx, *self._checked(cx, next(values), next(values)))

    def items(self, cx: _Cx, ptr: int, n: int) -> Any:
        """The ``n`` elements at ``ptr`` (checked by :meth:`_checked`)."""
        code = self.code
        total, keep = n, self.keep
        if keep is not None and n > keep:
            n = keep
        cx.spend(n * self.width if code is not None else n * (VAL_SIZE + self.width))
        data = cx.mem.read(ptr, n * self.width, "a list")
        items: list[Any]
        if code is not None:
            if self.py_bytes and total == n:
                return data
            items = array(code, data).tolist()
        else:
            elem, size = self.elem, self.width
            if type(elem) is _String and n >= _SPAN_FROM:
                items = _lift_strings(cx, data, n)
            elif type(elem) is _List and elem.code is not None and elem.keep is None:
                items = _lift_packed_lists(cx, data, n, elem)
            else:
                items = [elem.load(cx, data, i * size) for i in range(n)]
        return items if total == n else Kept(items, total)

    def measure(self, cx: _Cx, blk: bytes, off: int) -> int:
        ptr, n = self._block(cx, blk, off)
        if self.code is not None:
            return n * self.width
        total = n * VAL_SIZE
        elem = self.elem
        if not elem.measured or total > cx.budget:
            return total
        data = cx.mem.read(ptr, n * self.width, "a list")
        if type(elem) is _String:
            return total + sum(array("I", data)[1::2])
        if type(elem) is _List and elem.code is not None:
            return total + _measure_packed_lists(cx, data, elem)
        size, budget = self.width, cx.budget
        for i in range(n):
            total += elem.measure(cx, data, i * size)
            if total > budget:
                break  # over already: do not walk the rest
        return total


def _lower_blocks(cx: _Cx, prep: Sequence[bytes], buf: bytearray, align: int, width: int) -> None:
    """A list's elements that are each one block (strings, UTF-8; lists of bytes or
    numbers, packed), each into a block of its own, and their pointers and lengths (in
    elements of ``width`` bytes) into ``buf``, the list's array: what storing each does,
    without checking each block twice (the allocator's answer is checked against the
    memory's size, which only grows, and the memory does not move)."""
    base, alloc, pack = cx.mem.base, cx.alloc, _u32_pair.pack_into
    for i, data in enumerate(prep):
        n = len(data)
        ptr = alloc(align, n)
        if n:
            _memmove(base + ptr, data, n)
        pack(buf, 8 * i, ptr, n // width)


def _measure_packed_lists(cx: _Cx, array_data: bytes, inner: _List) -> int:
    """What the lists of bytes or numbers whose pointers and lengths are ``array_data``
    count, each checked as :meth:`_List.measure` checks it (aligned, inside memory)."""
    words = array("I", array_data)
    size, width, align = cx.mem.size, inner.width, inner.elem.align
    for i in range(0, len(words), 2):
        ptr, count = words[i], words[i + 1]
        if ptr % align or ptr + count * width > size:
            inner._checked(cx, ptr, count)  # raises
    return sum(words[1::2]) * width


def _lift_packed_lists(cx: _Cx, array_data: bytes, n: int, inner: _List) -> list[Any]:
    """The ``n`` lists of bytes or numbers whose pointers and lengths are ``array_data``,
    checked and copied in order as :meth:`_List.load` does each (the same errors). The
    body of :meth:`_List.items` for packed lists, inlined: calling it per element cost a
    quarter more (1,000 lists of 1-64 bytes: 2.2 against 1.7 ms a round trip)."""
    words = array("I", array_data)
    mem, code, width, align = cx.mem, inner.code, inner.width, inner.elem.align
    assert code is not None
    as_bytes = inner.py_bytes
    spend = cx.spend if cx.left is not None else None
    out: list[Any] = []
    for i in range(0, 2 * n, 2):
        ptr, count = words[i], words[i + 1]
        size = count * width
        if ptr % align:
            inner._checked(cx, ptr, count)  # raises
        if ptr + size > mem.size:
            mem.check(ptr, size, "a list")  # raises
        if spend is not None:
            spend(size)
        data = _string_at(mem.base + ptr, size) if size else b""
        out.append(data if as_bytes else array(code, data).tolist())
    return out


#: Lists of strings this long or longer are read by :func:`_lift_strings`.
_SPAN_FROM: Final = 8
#: Strings of a list are read in one copy of the memory they span when it is at most
#: this many times their bytes (plus _SPAN_SLACK): a run of blocks of one allocator.
_SPAN_FACTOR: Final = 2
_SPAN_SLACK: Final = 1 << 16


def _lift_strings(cx: _Cx, array_data: bytes, n: int) -> list[str]:
    """The ``n`` strings whose pointers and lengths are ``array_data``, checked and
    decoded in order as :meth:`_String.load` does each (the same errors, at the same
    string), the bytes they span copied once when they lie close together."""
    words = array("I", array_data)
    ptrs, lens = words[0::2], words[1::2]
    mem = cx.mem
    size = mem.size
    inside = [(p, k) for p, k in zip(ptrs, lens, strict=True) if k and p + k <= size]
    lo = hi = 0
    blob = memoryview(b"")
    if inside:
        lo = min(p for p, _ in inside)
        hi = max(p + k for p, k in inside)
        if hi - lo > _SPAN_FACTOR * sum(k for _, k in inside) + _SPAN_SLACK:
            lo = hi = 0  # far apart: each string read alone
        else:
            blob = memoryview(_string_at(mem.base + lo, hi - lo))
    spend = cx.spend if cx.left is not None else None
    out = []
    for p, k in zip(ptrs, lens, strict=True):
        if spend is not None:
            spend(k)
        if p + k > size:
            mem.check(p, k, "a string")  # raises
        if lo <= p and p + k <= hi:
            data: bytes | memoryview = blob[p - lo : p - lo + k]
        else:
            data = _string_at(mem.base + p, k) if k else b""
        out.append(_decoded(cx, data))
    return out


def _decoded(cx: _Cx, data: bytes | memoryview) -> str:
    """``data`` decoded as UTF-8, or the ABI error wasmtime's lifting raises for it."""
    try:
        return str(data, "utf-8")
    except UnicodeDecodeError as exc:
        raise _abi_error(
            f"invalid utf-8 in a string of {cx.where} ({exc.reason} at byte {exc.start})",
            "invalid UTF-8",
        ) from None


_IN_PLACE, _TEXT, _ITEMS, _NODE = range(4)


class _Tuple(_Node):
    def __init__(self, elems: list[_Node]):
        self.elems = elems
        offsets, off, align = [], 0, 1
        for e in elems:
            off = _up(off, e.align)
            offsets.append(off)
            off += e.size
            align = max(align, e.align)
        self.offsets = offsets
        self.parts = list(zip(elems, offsets, strict=True))
        self.align = align
        self.size = _up(off, align)
        self.flat = tuple(v for e in elems for v in e.flat)
        self.measured = any(e.measured for e in elems)
        #: the objects of the elements that are not measured
        self.fixed_parts = sum(e.fixed for e in elems if not e.measured)
        self.fixed = sum(e.fixed for e in elems)
        self._layout()

    def _layout(self) -> None:
        """One ``struct`` for the elements held in place (numbers; the pointer and length
        of strings and lists), read or written at once: ``steps`` says what each element
        is made from (``_IN_PLACE``: its slot; ``_TEXT``/``_ITEMS``: two slots, a string or
        a list; ``_NODE``: its own load at its offset, for records, variants, tuples,
        options, bools and chars, which check what they read)."""
        fmt, pos, slot = "<", 0, 0
        steps: list[tuple[int, _Node, int]] = []
        for e, o in self.parts:
            if type(e) is _Prim and e.name not in ("bool", "char"):
                code, kind, used = e.fmt.format[-1], _IN_PLACE, 1
            elif type(e) is _String:
                code, kind, used = "II", _TEXT, 2
            elif type(e) is _List:
                code, kind, used = "II", _ITEMS, 2
            else:
                steps.append((_NODE, e, o))
                continue
            fmt += "x" * (o - pos) + code
            pos = o + e.size
            steps.append((kind, e, slot))
            slot += used
        self.steps = steps
        self.in_place = struct.Struct(fmt)
        #: every element held in place: stored by one pack (else element by element)
        self.all_in_place = all(kind != _NODE for kind, _, _ in steps)

    def prepare(self, value: Any) -> Any:
        n = len(self.elems)
        if not isinstance(value, tuple | list) or len(value) != n:
            raise ConvertError(f"expected a tuple of {n} items, got {_short(value)}")
        out = []
        for i, e in enumerate(self.elems):
            try:
                out.append(e.prepare(value[i]))
            except ConvertError as exc:
                exc.path.insert(0, f"[{i}]")
                raise
        return out

    def moves(self, value: Any, acc: list[int]) -> None:
        acc[1] += RECORD_UNITS * self.fixed_parts
        if isinstance(value, tuple | list):
            for e, v in zip(self.elems, value, strict=False):
                if e.measured:
                    e.moves(v, acc)

    def blocks(self, prep: Any, out: list[int]) -> None:
        for e, p in zip(self.elems, prep, strict=True):
            if e.measured:
                e.blocks(p, out)

    def lower(self, cx: _Cx, prep: Any, out: list[Any]) -> None:
        for e, p in zip(self.elems, prep, strict=True):
            e.lower(cx, p, out)

    def store(self, cx: _Cx, prep: Any, buf: bytearray, off: int) -> None:
        if not self.all_in_place:
            for (e, o), p in zip(self.parts, prep, strict=True):
                e.store(cx, p, buf, off + o)
            return
        values: list[Any] = []  # in order: lists and strings allocated as one by one
        for (kind, e, _), p in zip(self.steps, prep, strict=True):
            if kind == _IN_PLACE:
                values.append(p)
            else:
                e.lower(cx, p, values)
        self.in_place.pack_into(buf, off, *values)

    def load(self, cx: _Cx, blk: bytes, off: int) -> Any:
        held = self.in_place.unpack_from(blk, off)
        out: list[Any] = []
        for kind, e, k in self.steps:  # in order: the same checks, at the same element
            if kind == _IN_PLACE:
                out.append(held[k])
            elif kind == _TEXT:
                out.append(_String.text(cx, held[k], held[k + 1]))
            elif kind == _ITEMS:
                assert isinstance(e, _List)
                out.append(e.items(cx, *e._checked(cx, held[k], held[k + 1])))
            else:
                out.append(e.load(cx, blk, off + k))
        return tuple(out)

    def lift_flat(self, cx: _Cx, values: Iterator[Any]) -> Any:
        return tuple(e.lift_flat(cx, values) for e in self.elems)

    def measure(self, cx: _Cx, blk: bytes, off: int) -> int:
        return sum(
            e.measure(cx, blk, off + o)
            for e, o in zip(self.elems, self.offsets, strict=True)
            if e.measured
        )


class _Variant(_Node):
    """A variant's layout and lifting (option, result and enum are variants too): a
    discriminant of 1, 2 or 4 bytes, then the case's payload; flat, the discriminant and
    the cases' values joined slot by slot. ``wrap`` makes the Python value of a case."""

    kind = "variant"

    def __init__(self, cases: list[_Node | None]):
        self.cases = cases
        n = len(cases)
        self.disc = disc = 1 if n <= 1 << 8 else 2 if n <= 1 << 16 else 4
        payload_align = max([c.align for c in cases if c is not None], default=1)
        self.payload = _up(disc, payload_align)
        self.align = max(disc, payload_align)
        self.size = _up(self.payload + max([c.size for c in cases if c], default=0), self.align)
        self.joined = _join([() if c is None else c.flat for c in cases])
        self.flat = (_I32, *self.joined)
        self.measured = any(c.measured for c in cases if c is not None)
        self.fixed = max([c.fixed for c in cases if c is not None], default=0)

    def wrap(self, index: int, value: Any) -> Any:
        return (index, value)

    def _index(self, cx: _Cx, index: int) -> _Node | None:
        if index >= len(self.cases):
            raise _abi_error(
                f"invalid {self.kind} discriminant {index} in {cx.where} "
                f"(out of range [0..{len(self.cases)}))",
                "invalid discriminant",
            )
        return self.cases[index]

    def _case(self, cx: _Cx, blk: bytes, off: int) -> tuple[int, _Node | None]:
        index = blk[off] if self.disc == 1 else int.from_bytes(blk[off : off + self.disc], "little")
        return index, self._index(cx, index)

    def load(self, cx: _Cx, blk: bytes, off: int) -> Any:
        index, case = self._case(cx, blk, off)
        value = None if case is None else case.load(cx, blk, off + self.payload)
        return self.wrap(index, value)

    def lift_flat(self, cx: _Cx, values: Iterator[Any]) -> Any:
        index = next(values)
        slots = [next(values) for _ in self.joined]
        case = self._index(cx, index)
        if case is None:
            return self.wrap(index, None)
        joined = self.joined
        own = iter([_uncoerce(slots[j], joined[j], want) for j, want in enumerate(case.flat)])
        return self.wrap(index, case.lift_flat(cx, own))

    def measure(self, cx: _Cx, blk: bytes, off: int) -> int:
        _, case = self._case(cx, blk, off)
        return 0 if case is None or not case.measured else case.measure(cx, blk, off + self.payload)

    def blocks(self, prep: Any, out: list[int]) -> None:
        index, payload = prep
        case = self.cases[index]
        if case is not None and case.measured:
            case.blocks(payload, out)

    def lower(self, cx: _Cx, prep: Any, out: list[Any]) -> None:
        """``prep``: (case index, the case's prepared payload or None)."""
        index, payload = prep
        out.append(index)
        case = self.cases[index]
        values: list[Any] = []
        if case is not None:
            case.lower(cx, payload, values)
        have = () if case is None else case.flat
        for j, want in enumerate(self.joined):
            if j < len(values):
                out.append(_coerce(values[j], have[j], want))
            else:
                out.append(0.0 if want in (_F32, _F64) else 0)

    def store(self, cx: _Cx, prep: Any, buf: bytearray, off: int) -> None:
        index, payload = prep
        if self.disc == 1:
            buf[off] = index
        else:
            buf[off : off + self.disc] = index.to_bytes(self.disc, "little")
        case = self.cases[index]
        if case is not None:
            case.store(cx, payload, buf, off + self.payload)


class _Cases(_Variant):
    """option<T> (cases none, some) and result<T, E> (ok, err): a u8 discriminant.
    ``some``: an option written ``Some[T] | None`` (lifted only)."""

    def __init__(self, cases: list[_Node | None], is_option: bool, some: bool = False):
        super().__init__(cases)
        self.is_option = is_option
        self.some = some
        self.kind = "option" if is_option else "result"

    def wrap(self, index: int, value: Any) -> Any:
        if self.is_option:
            return None if index == 0 else Some(value) if self.some else value
        return Ok(value) if index == 0 else Err(value)

    def moves(self, value: Any, acc: list[int]) -> None:
        if self.is_option:
            inner = self.cases[1]
            if value is not None and inner is not None:
                inner.moves(value, acc)
        elif isinstance(value, Ok | Err):
            case = self.cases[0 if isinstance(value, Ok) else 1]
            if case is not None:
                case.moves(value.value, acc)

    def prepare(self, value: Any) -> Any:
        if self.is_option:
            if value is None:
                return (0, None)
            inner = self.cases[1]
            assert inner is not None
            return (1, inner.prepare(value))
        if isinstance(value, Ok):
            index, payload = 0, value.value
        elif isinstance(value, Err):
            index, payload = 1, value.value
        else:
            raise ConvertError(
                f"expected Ok(...) or Err(...) for a result, got {_type_name(value)}"
            )
        case = self.cases[index]
        if case is None:
            if payload is not None:
                raise ConvertError(f"this result case carries no payload, got {_short(payload)}")
            return (index, None)
        try:
            return (index, case.prepare(payload))
        except ConvertError as exc:
            exc.path.insert(0, ".value")
            raise


# ------------------------------------------------------------------ named types


class _Record(_Tuple):
    """A record: laid out as a tuple of its fields, lifted into the hookspec's class (a
    dict without one), as :func:`.convert.lifter` builds it; lowered from any object with
    its fields' attributes, with :func:`.convert.lowerer`'s checks and messages."""

    def __init__(self, t: wit.RecordT, elems: list[_Node]):
        super().__init__(elems)
        self.cls = t.py
        self.wit_name = t.name
        self.shown = t.name if t.py is None else t.py.__name__
        snake = [n.replace("-", "_") for n, _ in t.fields]
        self.attrs = list(t.py_fields) if t.py_fields else snake
        self.cost = _object_cost(t.py, len(t.fields))
        self.fixed += 1  # the record's own object
        self.fixed_parts += 1
        #: the fields that can hold strings or lists (what :meth:`moves` looks at)
        self.variable = [(a, e) for a, e in zip(self.attrs, elems, strict=True) if e.measured]
        if t.py is None:
            self.keywords = snake
        else:
            self.keywords = _init_names(t.py, t.py_fields)

    def prepare(self, value: Any) -> Any:
        cls = self.cls
        if cls is not None and not isinstance(value, cls):
            missing = [a for a in self.attrs if not hasattr(value, a)]
            if missing:
                raise ConvertError(
                    f"expected {self.shown} (record {self.wit_name}), got {_type_name(value)} "
                    f"without attribute(s) {', '.join(missing)}"
                )
        out = []
        for name, e in zip(self.attrs, self.elems, strict=True):
            try:
                out.append(e.prepare(getattr(value, name)))
            except AttributeError:
                raise ConvertError(
                    f"expected {self.shown} (record {self.wit_name}), got {_type_name(value)}"
                ) from None
            except ConvertError as exc:
                exc.path.insert(0, f".{name}")
                raise
        return out

    def moves(self, value: Any, acc: list[int]) -> None:
        acc[1] += RECORD_UNITS * self.fixed_parts
        for name, e in self.variable:
            e.moves(getattr(value, name, None), acc)

    def make(self, values: tuple[Any, ...]) -> Any:
        fields = dict(zip(self.keywords, values, strict=True))
        return fields if self.cls is None else self.cls(**fields)

    def load(self, cx: _Cx, blk: bytes, off: int) -> Any:
        cx.spend(self.cost)
        return self.make(super().load(cx, blk, off))

    def lift_flat(self, cx: _Cx, values: Iterator[Any]) -> Any:
        cx.spend(self.cost)
        return self.make(super().lift_flat(cx, values))


def _object_cost(cls: Any, n_fields: int) -> int:
    """About the bytes of one Python object of ``cls`` with ``n_fields`` fields (None: a
    dict), as lifting counts it against its bound: an object's header and a slot per
    field, and a dict of the fields where instances have one (a dataclass's, say). A list
    of one-byte records would otherwise build some 200 bytes of objects per byte read."""
    per_dict = 104 + 24 * n_fields
    if cls is None:
        return per_dict
    header = 48 + 8 * n_fields
    return header + (per_dict if getattr(cls, "__dictoffset__", 0) else 0)


class _VariantOf(_Variant):
    """A WIT variant, lifted into its case's class and lowered from one (as
    :mod:`.convert` does)."""

    def __init__(self, t: wit.VariantT, cases: list[_Node | None]):
        super().__init__(cases)
        self.name = t.name
        self.shown = t.name if t.py is None else t.py.__name__
        self.made: list[tuple[Any, str | None]] = []
        self.fields: list[str | None] = []
        self.by_class: dict[Any, int] = {}
        for i, (_, ct) in enumerate(t.cases):
            cls = t.py_cases[i] if t.py_cases else None
            field = _single_field(cls) if cls is not None else None
            keyword = _init_names(cls, (field,))[0] if cls is not None and field else field
            self.made.append((cls, None if ct is None else keyword))
            self.fields.append(field)
            if cls is not None:
                self.by_class[cls] = i
        self.cost = max(_object_cost(cls, 1) for cls, _ in self.made) if self.made else 0
        self.fixed += 1  # the case's object

    def load(self, cx: _Cx, blk: bytes, off: int) -> Any:
        cx.spend(self.cost)
        return super().load(cx, blk, off)

    def lift_flat(self, cx: _Cx, values: Iterator[Any]) -> Any:
        cx.spend(self.cost)
        return super().lift_flat(cx, values)

    def _index_of(self, value: Any) -> int:
        by_class = self.by_class
        index = by_class.get(type(value))
        if index is None:
            index = next((i for c, i in by_class.items() if isinstance(value, c)), None)
        if index is None:
            choices = ", ".join(c.__name__ for c in by_class)
            raise ConvertError(
                f"expected a case of {self.shown} ({choices}), got {_type_name(value)}"
            )
        return index

    def prepare(self, value: Any) -> Any:
        index = self._index_of(value)
        case, field = self.cases[index], self.fields[index]
        if case is None:
            return (index, None)
        assert field is not None
        try:
            return (index, case.prepare(getattr(value, field)))
        except ConvertError as exc:
            exc.path.insert(0, f".{field}")
            raise

    def moves(self, value: Any, acc: list[int]) -> None:
        acc[1] += RECORD_UNITS
        index = self.by_class.get(type(value))
        if index is not None:
            case, field = self.cases[index], self.fields[index]
            if case is not None and field is not None:
                if case.measured:
                    case.moves(getattr(value, field, None), acc)
                else:
                    acc[1] += RECORD_UNITS * case.fixed

    def wrap(self, index: int, value: Any) -> Any:
        cls, keyword = self.made[index]
        if cls is None:
            raise TypeError(f"variant {self.name} has no Python class to build")
        if self.cases[index] is None or keyword is None:
            return cls()
        return cls(**{keyword: value})


class _Enum(_Variant):
    kind = "enum"

    def __init__(self, t: wit.EnumT):
        super().__init__([None] * len(t.names))
        self.members: list[Any] = list(t.names) if t.py is None else list(t.py)
        self.index = {} if t.py is None else {m: i for i, m in enumerate(t.py)}
        self.shown = t.name if t.py is None else t.py.__name__
        self.names = t.names

    def prepare(self, value: Any) -> Any:
        index = self.index.get(value) if isinstance(value, enum.Enum) else None
        if index is None:
            raise ConvertError(
                f"expected a member of {self.shown} ({', '.join(self.names)}), got {_short(value)}"
            )
        return (index, None)

    def wrap(self, index: int, value: Any) -> Any:
        return self.members[index]


class _Flags(_Node):
    """Flags: one bit each, in 1, 2 or 4-byte words (flat: one i32 per 32). Bits past the
    last flag are ignored, as wasmtime ignores them."""

    def __init__(self, t: wit.FlagsT):
        n = len(t.names)
        self.size = self.align = 1 if n <= 8 else 2 if n <= 16 else 4
        words = -(-n // 32)
        if n > 16:
            self.size = 4 * words
        self.flat = (_I32,) * words
        self.cls = t.py
        self.members = [] if t.py is None else list(t.py)
        self.shown = t.name if t.py is None else t.py.__name__

    def prepare(self, value: Any) -> Any:
        cls = self.cls
        if cls is None or not isinstance(value, cls):
            raise ConvertError(f"expected {self.shown} flags, got {_short(value)}")
        bits = 0
        for i, member in enumerate(self.members):
            if member in value:
                bits |= 1 << i
        return bits

    def lower(self, cx: _Cx, prep: Any, out: list[Any]) -> None:
        for k in range(len(self.flat)):
            out.append(prep >> (32 * k) & 0xFFFFFFFF)

    def store(self, cx: _Cx, prep: Any, buf: bytearray, off: int) -> None:
        buf[off : off + self.size] = prep.to_bytes(self.size, "little")

    def make(self, bits: int) -> Any:
        if self.cls is None:
            raise TypeError("flags without a Python class")
        value = self.cls(0)
        for i, member in enumerate(self.members):
            if bits >> i & 1:
                value |= member
        return value

    def load(self, cx: _Cx, blk: bytes, off: int) -> Any:
        return self.make(int.from_bytes(blk[off : off + self.size], "little"))

    def lift_flat(self, cx: _Cx, values: Iterator[Any]) -> Any:
        bits = 0
        for k in range(len(self.flat)):
            bits |= (next(values) & 0xFFFFFFFF) << (32 * k)
        return self.make(bits)


def node(t: wit.WitType, *, lifted: bool = False) -> _Node:
    """The converter of WIT type ``t``; TypeError for a type the raw route does not cover.
    ``lifted``: only lifted from guest memory (a host function's parameters), which
    covers ``Some[...]`` options too, and variants and flags without a Python class
    (a hook's are lowered and lifted through their classes, as :mod:`.convert` does)."""
    if isinstance(t, wit.Prim):
        return _String() if t.name == "string" else _Prim(t.name)
    if isinstance(t, wit.ListT):
        return _List(t, node(t.element, lifted=lifted))
    if isinstance(t, wit.TupleT):
        return _Tuple([node(e, lifted=lifted) for e in t.elements])
    if isinstance(t, wit.OptionT):
        if t.some and not lifted:  # option<option<T>> written Some[...]: per value
            raise TypeError("the raw route does not cover Some[...] options")
        return _Cases([None, node(t.inner, lifted=lifted)], is_option=True, some=t.some)
    if isinstance(t, wit.ResultT):
        return _Cases(
            [None if c is None else node(c, lifted=lifted) for c in (t.ok, t.err)],
            is_option=False,
        )
    if isinstance(t, wit.RecordT):
        return _Record(t, [node(ft, lifted=lifted) for _, ft in t.fields])
    if not lifted and isinstance(t, wit.FlagsT | wit.VariantT) and not _classed(t):
        raise TypeError(f"the raw route does not cover {wit.render_type(t)} without its class")
    if isinstance(t, wit.VariantT):
        cases = [None if ct is None else node(ct, lifted=lifted) for _, ct in t.cases]
        return _VariantOf(t, cases)
    if isinstance(t, wit.EnumT):
        return _Enum(t)
    if isinstance(t, wit.FlagsT):
        return _Flags(t)
    raise TypeError(f"the raw route does not cover WIT type {wit.render_type(t)}")


def _classed(t: wit.FlagsT | wit.VariantT) -> bool:
    """Whether ``t`` has its Python class (its cases' classes): without one, :mod:`.convert`
    can neither lower nor lift it (a classless enum's members are its names)."""
    return bool(t.py_cases) if isinstance(t, wit.VariantT) else t.py is not None


# ------------------------------------------------------------------ a host function's parameters

#: The canonical ABI's MAX_FLAT_PARAMS: past it, a function's parameters are stored in
#: memory and the core function takes a pointer to them.
MAX_FLAT_PARAMS: Final = 16

_PRIM_NAMES: Final = frozenset(wit.PRIMITIVES)


def wit_type(desc: object, depth: int = 0) -> wit.WitType:
    """The WIT type a parameter description of :class:`.plans.RawImport` ``types``
    stands for (a primitive's name, or ``(kind, ...)``); ValueError for anything else."""
    if depth > 64:
        raise ValueError("type too deep")
    if isinstance(desc, str) and desc in _PRIM_NAMES:
        return wit.Prim(desc)
    if not isinstance(desc, tuple) or not desc:
        raise ValueError(f"not a type: {desc!r:.60}")
    kind, *rest = desc

    def of(d: object) -> wit.WitType:
        return wit_type(d, depth + 1)

    def maybe(d: object) -> wit.WitType | None:
        return None if d is None else of(d)

    if kind == "list" and len(rest) == 1:
        return wit.ListT(of(rest[0]))
    if kind == "option" and len(rest) == 1:
        return wit.OptionT(of(rest[0]))
    if kind == "result" and len(rest) == 2:
        return wit.ResultT(maybe(rest[0]), maybe(rest[1]))
    if kind == "tuple" and len(rest) == 1 and isinstance(rest[0], tuple):
        return wit.TupleT(tuple(of(e) for e in rest[0]))
    if kind in ("record", "variant", "enum", "flags") and len(rest) == 2:
        name, parts = rest
        if not isinstance(name, str) or not isinstance(parts, tuple):
            raise ValueError(f"not a type: {desc!r:.60}")
        if kind == "record":
            return wit.RecordT(name, tuple((str(n), of(ft)) for n, ft in parts))
        if kind == "variant":
            return wit.VariantT(name, tuple((str(n), maybe(ct)) for n, ct in parts))
        names = tuple(str(n) for n in parts)
        return wit.EnumT(name, names) if kind == "enum" else wit.FlagsT(name, names)
    raise ValueError(f"not a type: {desc!r:.60}")


class GrownMemory(GuestMemory):
    """A caller's memory read during a host call: it may have grown since its size was
    last reported, so every range past that size is checked as
    :meth:`.GuestMemory.read_grown` checks it (nothing past 4 GiB)."""

    __slots__ = ()

    def check(self, ptr: int, n: int, what: str) -> None:
        if ptr + n > self.size or ptr < 0 or n < 0:
            try:
                self.read_grown(ptr + n, 0, what)  # (its last byte readable, or refused)
            except GuestMemoryError:
                raise GuestMemoryError(
                    f"{what} (pointer {ptr:#x}, {n:,} bytes) is outside the guest's memory",
                    reason="out-of-bounds pointer",
                ) from None

    def read(self, ptr: int, n: int, what: str = "a block") -> bytes:
        self.check(ptr, n, what)
        return self.read_grown(ptr, n, what)


class ArgumentError(GuestMemoryError):
    """An argument the guest passed does not hold a value of its type: ``name`` says
    which (None: the block of all of them)."""

    def __init__(self, name: str | None, exc: GuestMemoryError):
        where = "the arguments' block" if name is None else f"argument {name!r}"
        super().__init__(f"{where}: {exc}", reason=exc.reason)
        self.name = name


def _no_alloc(align: int, size: int) -> int:  # pragma: no cover - lifting never allocates
    raise AssertionError("lifting a host function's parameters allocates nothing")


class ParamLift:
    """A host function's parameters lifted from the flat core values wasmtime hands it
    (a function :mod:`.rawimports` rewrote to take them so) and the caller's memory, by
    the canonical ABI's rules and with its checks (bounds, alignment, discriminants,
    UTF-8, chars). ``core``: the core values' types; one i32 when the flat values are
    more than :data:`MAX_FLAT_PARAMS` (a pointer to the parameters, stored as a tuple)."""

    def __init__(
        self,
        types: Sequence[wit.WitType],
        names: Sequence[str],
        keep: Sequence[int | None] = (),
    ):
        self.params = [node(t, lifted=True) for t in types]
        for p, k in zip(self.params, keep, strict=False):  # (see HostFunc.keep)
            if k is not None and isinstance(p, _List):
                p.keep = k
        self.names = tuple(names)
        flat = tuple(v for p in self.params for v in p.flat)
        self.block = _Tuple(self.params) if len(flat) > MAX_FLAT_PARAMS else None
        self.core: tuple[int, ...] = (_I32,) if self.block is not None else flat

    def lift(self, mem: GuestMemory, values: Sequence[Any]) -> list[Any]:
        """The Python arguments; :class:`ArgumentError` for what the guest got wrong."""
        grown = GrownMemory(mem.base, mem.size)
        cx = _Cx(grown, _no_alloc, result_budget(None, mem.size), "an argument")
        cx.left = cx.budget
        out: list[Any] = []
        try:
            block = self.block
            if block is None:
                it = iter(values)
                for i, p in enumerate(self.params):
                    try:
                        out.append(p.lift_flat(cx, it))
                    except GuestMemoryError as exc:
                        raise ArgumentError(self.names[i], exc) from None
                return out
            ptr = values[0]
            try:
                if ptr % block.align:
                    raise _abi_error(
                        f"pointer {ptr:#x} is not aligned to {block.align}", "misaligned pointer"
                    )
                blk = grown.read(ptr, block.size, "the block")
            except GuestMemoryError as exc:
                raise ArgumentError(None, exc) from None
            for i, (p, o) in enumerate(zip(self.params, block.offsets, strict=True)):
                try:
                    out.append(p.load(cx, blk, o))
                except GuestMemoryError as exc:
                    raise ArgumentError(self.names[i], exc) from None
            return out
        finally:
            mem.size = max(mem.size, grown.size)


# ------------------------------------------------------------------ a function's plan


def _most_blocks(nodes: Sequence[_Node], depth: int = 0) -> int:
    """The most blocks lowering values of ``nodes`` allocates (a list of lists or
    strings: any number, given as 2**32)."""
    if depth > 64:
        return 1 << 32
    total = 0
    for n in nodes:
        if isinstance(n, _String):
            total += 1
        elif isinstance(n, _List):
            total += 1 << 32 if n.elem.measured else 1
        elif isinstance(n, _Tuple):
            total += _most_blocks(n.elems, depth + 1)
        elif isinstance(n, _Variant):
            total += max(
                (_most_blocks([c], depth + 1) for c in n.cases if c is not None), default=0
            )
    return total


def _holds_list(n: _Node, packed: bool = False, depth: int = 0) -> bool:
    """Whether a value of node ``n`` can hold a list (what the route's rule counts), or
    with ``packed`` a list of bytes or numbers (one buffer on the raw route, a value per
    element on wasmtime's)."""
    if depth > 64:
        return True
    if isinstance(n, _List):
        return not packed or n.code is not None or _holds_list(n.elem, packed, depth + 1)
    if isinstance(n, _Tuple):
        return any(_holds_list(e, packed, depth + 1) for e in n.elems)
    if isinstance(n, _Variant):
        return any(c is not None and _holds_list(c, packed, depth + 1) for c in n.cases)
    return False


class RawSignature:
    """The converters of one function's parameters and result."""

    def __init__(self, signature: wit.FuncSig):
        self.params = [node(t) for t in signature.param_types]
        self.result = None if signature.result is None else node(signature.result)
        flat = tuple(v for p in self.params for v in p.flat)
        #: More than MAX_FLAT_PARAMS flat values: the parameters are stored in a block of
        #: the guest's memory laid out as this tuple, and the function takes its pointer.
        self.block = _Tuple(self.params) if len(flat) > MAX_FLAT_PARAMS else None
        self.flat_params: tuple[int, ...] = (_I32,) if self.block is not None else flat
        flat_result = () if self.result is None else self.result.flat
        #: Whether the result can hold a list of bytes or numbers, which wasmtime's route
        #: lifts a value per element: only then does a large result send the function's
        #: next call on the instance to the raw route (strings cross as one buffer there).
        self.bulky_result = self.result is not None and _holds_list(self.result, packed=True)
        #: Whether :meth:`is_large` can ever say yes with the rule's thresholds: the
        #: arguments can hold a list, or the result a list of bytes or numbers (strings,
        #: numbers and records of them count nothing).
        self.can_be_large = self.bulky_result or any(_holds_list(p) for p in self.params)
        #: Whether the arguments can need :data:`BATCH_FROM` blocks or more (only then
        #: are they listed ahead for the batch allocator).
        self.many_blocks = _most_blocks(self.params) + (self.block is not None) >= BATCH_FROM
        self.retptr = len(flat_result) > 1
        self.flat_result = flat_result[0] if len(flat_result) == 1 else None
        if not self.retptr and self.result is not None and not isinstance(self.result, _Prim):
            raise TypeError("a compound result in one core value is not covered")

    def is_large(self, args: Sequence[Any], after_large: bool = False) -> bool:
        """Whether the raw route pays for ``args``: their lists of bytes and numbers hold
        :data:`RAW_MIN_BYTES` or more (or ``after_large``: the function's previous result
        on the instance was that large), and :data:`RAW_BYTES_PER_BLOCK` or more per
        block it allocates (the per-call check: cheap for the common case of bytes and
        str arguments)."""
        bulk = blocks = 0
        for a in args:
            t = type(a)
            if t is bytes:
                bulk += len(a)
                blocks += 1
            elif t is not str and t is not int and t is not float and t is not bool:
                bulk, blocks = self.payload(args)
                break
        return (after_large or bulk >= RAW_MIN_BYTES) and bulk >= RAW_BYTES_PER_BLOCK * blocks

    def payload(self, args: Sequence[Any]) -> tuple[int, int]:
        """(bytes, blocks): the bytes of lists ``args`` hold that wasmtime's lowering
        moves a value per element, anywhere in lists, tuples, options, results, records
        and variant cases, and the blocks the raw route allocates for their lists and
        strings (to choose the route; not exact). A value that cannot be read counts
        nothing: its argument check then says what is wrong."""
        acc = [0, 0]
        try:
            for p, a in zip(self.params, args, strict=False):
                if p.measured:
                    p.moves(a, acc)
        except Exception:
            return 0, 0
        return acc[0], acc[1]

    def prepare(self, index: int, value: Any) -> Any:
        """Argument ``index`` checked and converted; ConvertError if it does not fit."""
        return self.params[index].prepare(value)


class CoreCall:
    """One raw export of one instance: the function handle and a reusable value array.
    Calling it runs the guest; wasmtime's error raises :class:`GuestCallError`."""

    __slots__ = ("context", "func", "kinds", "params", "result")

    def __init__(self, func: Any, context: Any, params: Sequence[int], result: int | None):
        self.func = _byref(capi.func_handle(func))
        self.context = context
        self.kinds = [_KIND[p] for p in params]
        self.params = (VAL * max(len(params), 1))()
        for i, k in enumerate(self.kinds):
            self.params[i].kind = k
        self.result = None if result is None else VAL()

    def __call__(self, *values: Any) -> Any:
        params = self.params
        for i, v in enumerate(values):
            setattr(params[i].of, _FIELD[self.kinds[i]], v)
        result = self.result
        if result is None:
            err = _call(self.func, self.context, params, len(values), None, 0)
        else:
            err = _call(self.func, self.context, params, len(values), _byref(result), 1)
        if err:
            raise GuestCallError(capi.error_from_ptr(err))
        return None if result is None else getattr(result.of, _FIELD[result.kind])


_KIND: Final = {_I32: U32, _I64: U64, _F32: F32, _F64: F64}
_FIELD: Final = {U32: "u32", U64: "u64", F32: "f32", F64: "f64"}


class RawCallPlan:
    """Everything one raw call needs on one instance (see the module docstring).

    ``allocs``: the batch allocator beside ``alloc`` (None: one call per block)."""

    def __init__(
        self,
        sig: RawSignature,
        mem: GuestMemory,
        alloc: CoreCall,
        call: CoreCall,
        post: CoreCall | None,
        allocs: CoreCall | None = None,
    ):
        self.sig = sig
        self.mem = mem
        self.alloc = alloc
        self.allocs = allocs
        self.call = call
        self.post = post
        #: What the last result counted (as convert.measurer counts), 0 if not measured.
        self.last_size = 0

    def run(self, prepared: Sequence[Any], limit: int | None) -> Any:
        """Lower ``prepared`` (from :meth:`RawSignature.prepare`), call, lift."""
        sig, mem = self.sig, self.mem
        cx = _Cx(mem, self.alloc, 0)
        flat: list[Any] = []
        block = sig.block
        if self.allocs is not None and sig.many_blocks:
            wanted: list[int] = []
            if block is None:
                for p, value in zip(sig.params, prepared, strict=True):
                    if p.measured:
                        p.blocks(value, wanted)
            else:
                wanted += (block.align, block.size)
                block.blocks(prepared, wanted)
            if len(wanted) >= 2 * BATCH_FROM:
                cx.ahead = self.allocate(cx, wanted)
        if block is None:
            for p, value in zip(sig.params, prepared, strict=True):
                p.lower(cx, value, flat)
        else:  # the block first, then what its values hold, as wasmtime allocates them
            ptr = cx.alloc(block.align, block.size)
            buf = bytearray(block.size)
            block.store(cx, prepared, buf, 0)
            mem.write(ptr, buf, "the parameters")
            flat.append(ptr)
        out = self.call(*flat)
        result = sig.result
        if result is None:
            if self.post is not None:
                self.post()
            return None
        if not sig.retptr:
            assert isinstance(result, _Prim)
            value = out if result.name in ("f32", "f64") else result.from_int(out)
            if self.post is not None:
                self.post(out)
            return value
        ret = mem.update(out)
        if ret % result.align:
            raise _abi_error(
                f"the return area {ret:#x} is not aligned to {result.align}", "misaligned pointer"
            )
        blk = mem.read(ret, result.size, "the return area")
        if result.measured:
            cx.budget = budget = result_budget(limit, mem.size)
            self.last_size = size = result.measure(cx, blk, 0)
            if size > budget:
                raise ResultTooLarge(size, budget)
        value = result.load(cx, blk, 0)
        if self.post is not None:
            self.post(ret)
        return value

    def allocate(self, cx: _Cx, wanted: list[int]) -> list[int]:
        """The blocks ``wanted`` (flat ``align, size`` pairs, in lowering's order), each
        asked of the guest's allocator as lowering would ask, as flat ``align, size,
        pointer`` triples for :meth:`_Cx.alloc`.

        The batch allocator reads its ``(align, size)`` pairs from a table in guest
        memory, and the table is a block already allocated for this call and not yet
        filled (lowering writes every block after all are allocated): the largest so far,
        8 bytes an entry. So the first blocks are asked one by one until one holds two
        entries (a list of strings: its array holds an entry per string), and no block
        the guest does not know of is made, kept or written."""
        assert self.allocs is not None
        mem, allocs = self.mem, self.allocs
        n = len(wanted) // 2
        out: list[int] = []
        table = room = 0  # the table's block and how many entries it holds
        i = 0
        while i < n:
            if room >= 2 and n - i >= 2:
                k = min(room, n - i)
                pairs = wanted[2 * i : 2 * (i + k)]
                mem.write(table, struct.pack(f"<{2 * k}I", *pairs), "the allocation table")
                mem.update(allocs(table, k))
                got = struct.unpack(f"<{2 * k}I", mem.read(table, 8 * k, "the allocation table"))
                for j in range(k):
                    align, size = pairs[2 * j], pairs[2 * j + 1]
                    ptr = cx.checked(got[2 * j], align, size)
                    out += (align, size, ptr)
                    if size >> 3 > room:
                        table, room = ptr, size >> 3
                i += k
            else:
                align, size = wanted[2 * i], wanted[2 * i + 1]
                ptr = cx.alloc(align, size)
                out += (align, size, ptr)
                if size >> 3 > room:
                    table, room = ptr, size >> 3
                i += 1
        return out


# ------------------------------------------------------------------ per hook, per instance

_POST_RETPTR: Final = (_I32,)


class RawBinding:
    """A hook's raw route, built once when it is bound: the export names and converters.

    ``threshold``: the route is taken for arguments of about this many bytes or more, or
    when the function's previous result on the instance was that large (below it, the
    three guest calls cost more than the one call of the latin1 route)."""

    __slots__ = (
        "alloc", "allocs", "call", "params", "post", "post_params", "probe", "result", "sig"
    )  # fmt: skip

    def __init__(self, sig: RawSignature, call: str, post: str | None, alloc: str, probe: str):
        self.sig = sig
        self.call = call
        self.post = post
        self.alloc = alloc
        self.allocs = allocs_name(alloc)
        self.probe = probe
        self.params = sig.flat_params
        self.result = _I64 if sig.retptr else sig.flat_result
        if sig.retptr:
            self.post_params: tuple[int, ...] = _POST_RETPTR
        else:
            self.post_params = () if sig.flat_result is None else (sig.flat_result,)


class RawState:
    """One instance's raw route: its memory (found on first use) and call handles.

    ``get_func(name)`` gives the instance's wasmtime Func of a root export, ``context``
    its store's context. A memory that cannot be found (not Linux, or not found exactly
    once) turns the route off for this instance: calls take the latin1 route."""

    def __init__(self, get_func: Callable[[str], Any], context: Any):
        self.get_func = get_func
        self.context = context
        self.mem: GuestMemory | None = None
        self.off = False
        self.plans: dict[int, RawCallPlan] = {}
        #: ids of bindings whose last result here was large
        self.large: set[int] = set()

    def core(self, name: str, params: Sequence[int], result: int | None) -> CoreCall:
        return CoreCall(self.get_func(name), self.context, params, result)

    def find_memory(self, probe: str) -> GuestMemory | None:
        """Find the memory now (an instance whose imports take bytes raw: a host function
        cannot call the guest's probe, see :mod:`.rawimports`); None when it is not found
        (the route is then off). A trap in the probe raises GuestCallError."""
        if self.mem is None and not self.off:
            call = self.core(probe, (_I64, _I64), _I64)
            try:
                self.mem = find_memory(call)
            except GuestMemoryError:
                self.off = True
            finally:
                if probe == PROBE_AT_ZERO:  # the guest's own bytes at address 0, back
                    call(0, 0)
        return self.mem

    def plan(self, binding: RawBinding) -> RawCallPlan | None:
        """The call plan of ``binding`` here, or None when the route is off. The guest's
        errors while finding the memory raise GuestCallError (as from a call)."""
        plan = self.plans.get(id(binding))
        if plan is not None:
            return plan
        if self.off:
            return None
        if self.mem is None:
            probe = self.core(binding.probe, (_I64, _I64), _I64)
            try:
                self.mem = GuestMemory(find_base(probe))
            except GuestMemoryError:
                self.off = True
                return None
        post = None
        if binding.post is not None:
            post = self.core(binding.post, binding.post_params, None)
        allocs = None
        if binding.sig.many_blocks:
            allocs = self.core(binding.allocs, (_I32, _I32), _I64)
        plan = RawCallPlan(
            binding.sig,
            self.mem,
            self.core(binding.alloc, (_I32, _I32), _I64),
            self.core(binding.call, binding.params, binding.result),
            post,
            allocs,
        )
        self.plans[id(binding)] = plan
        return plan
