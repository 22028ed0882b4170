"""Python values <-> the C API's ``wasmtime_component_val_t``, compiled once per WIT type.

wasmtime-py's own converters re-read every type on every call, wrap integers silently,
represent variants and results without tags when payload types differ, and build one
ctypes object per list element (1 MB of ``list<u8>`` takes a second). These converters
are built once from the :mod:`.._wit` model of a hook's signature and write the C
structures directly:

* every scalar is range- and type-checked before it reaches wasmtime;
* variants, results and enums map to the hookspec's own Python classes, tagged;
* lists of numbers (``bytes`` included) are packed with strided byte copies, not a Python
  object per element;
* for a function lifted a second time by :mod:`._relift`, where ``list<u8>`` travels as
  a latin1 string, ``bytes`` cross as one string buffer (``lowerer(latin1=True)``,
  :func:`latin1_lifter`).

A lowering function writes into a ``wasmtime_component_val_t`` it is given; on error it
leaves it holding only what can be deleted safely. A lifting function reads a value and
does not free it: the caller deletes the root once.
"""

from __future__ import annotations

import ctypes
import dataclasses
import enum
import math
import struct
import sys
from array import array
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from .. import _attrs as attrs
from ..contract import wit
from ..contract.annotations import Err, Ok, Some
from . import capi

# wasmtime's C functions, called directly (see capi for why and which).
from .capi import byte_vec_new as _vec_new
from .capi import val_delete as _val_delete
from .capi import val_new as _val_new
from .capi import valflags_new_uninit as _flags_new
from .capi import vallist_new_uninit as _list_new
from .capi import valrecord_new_uninit as _record_new
from .capi import valtuple_new_uninit as _tuple_new

__all__ = [
    "ConvertError",
    "Kept",
    "Lift",
    "Lower",
    "Measure",
    "is_byte_list",
    "latin1_lifter",
    "lifter",
    "lifter_keeping",
    "lowerer",
    "measure_latin1",
    "measure_latin1_exact",
    "install_handle_converters",
    "measurer",
]

Lower = Callable[[Any, Any], None]
Lift = Callable[[Any], Any]

VAL = capi.VAL
VAL_SIZE = ctypes.sizeof(VAL)
PAYLOAD_OFFSET = VAL.of.offset
_byref = ctypes.byref

BOOL, S8, U8, S16, U16, S32, U32, S64, U64, F32, F64, CHAR, STRING = range(13)
LIST, RECORD, TUPLE, VARIANT, ENUM, OPTION, RESULT, FLAGS = range(13, 21)

_INT_KINDS: dict[str, tuple[int, str, int, int, str]] = {
    # name: (kind, union field, min, max, array typecode)
    "u8": (U8, "u8", 0, 2**8 - 1, "B"),
    "u16": (U16, "u16", 0, 2**16 - 1, "H"),
    "u32": (U32, "u32", 0, 2**32 - 1, "I"),
    "u64": (U64, "u64", 0, 2**64 - 1, "Q"),
    "s8": (S8, "s8", -(2**7), 2**7 - 1, "b"),
    "s16": (S16, "s16", -(2**15), 2**15 - 1, "h"),
    "s32": (S32, "s32", -(2**31), 2**31 - 1, "i"),
    "s64": (S64, "s64", -(2**63), 2**63 - 1, "q"),
}
_FLOAT_KINDS: dict[str, tuple[int, str, str]] = {"f32": (F32, "f32", "f"), "f64": (F64, "f64", "d")}


class ConvertError(Exception):
    """A value does not fit its WIT type. ``path`` locates it inside the argument."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message
        self.path: list[str] = []

    def located(self) -> str:
        where = "".join(self.path)
        return f"{where}: {self.message}" if where else self.message


_U8_TYPE = wit.Prim("u8")


def _view(pointer: Any, size: int) -> memoryview:
    """A writable byte view of ``size`` bytes of C memory at ``pointer`` (no copy)."""
    address = ctypes.cast(pointer, ctypes.c_void_p).value
    return memoryview((ctypes.c_char * size).from_address(address or 0)).cast("B")


def _type_name(value: Any) -> str:
    return type(value).__name__


def _string_to(dst: Any, text: str) -> None:
    try:
        data = text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ConvertError(f"string is not valid Unicode ({exc.reason} at {exc.start})") from None
    _vec_new(_byref(dst), len(data), data)


def _string_from(vec: Any) -> str:
    size = vec.size
    return ctypes.string_at(vec.data, size).decode("utf-8") if size else ""


# ------------------------------------------------------------------- resource handles


if TYPE_CHECKING:  # (a protocol only the type checker reads: not made at import)

    class HandleConverters(Protocol):
        """Converters of ``own<R>`` / ``borrow<R>``: they need the calling store and plugin,
        which :mod:`.resources` knows (it installs itself here: it imports this module)."""

        def lowerer(self, t: wit.HandleT) -> Lower: ...
        def lifter(self, t: wit.HandleT) -> Lift: ...


_handles: HandleConverters | None = None


def install_handle_converters(converters: HandleConverters) -> None:
    global _handles
    _handles = converters


def _handle_converters(t: wit.HandleT) -> HandleConverters:
    if _handles is None:  # pragma: no cover - the host imports resources where it meets one
        raise TypeError(
            f"cannot pass {wit.render_type_expanded(t)}: import airssys_plugins.runtime."
            "resources first (the host layer does where a signature passes handles; code "
            "using the runtime directly must)"
        )
    return _handles


# ----------------------------------------------------------------------------- lowering


def is_byte_list(t: wit.WitType | None) -> bool:
    return isinstance(t, wit.ListT) and t.element == _U8_TYPE


def lowerer(t: wit.WitType, *, latin1: bool = False) -> Lower:
    """A function ``lower(value, dst)`` writing ``value`` of WIT type ``t`` into ``dst``.

    ``latin1``: write every ``list<u8>`` as a string of latin1 code points, and every
    ``string`` as its UTF-8 bytes read as latin1 code points, for a function whose strings
    cross as latin1 (``string-encoding=latin1+utf16``: :mod:`._relift`'s second lifts,
    :mod:`.rawimports`' rewritten results); the guest's memory then holds exactly the
    bytes, and the UTF-8, it expects. Records and variants are looked into too.
    """
    if isinstance(t, wit.Prim):
        if latin1 and t.name == "string":
            return _lower_string_latin1
        return _lower_prim(t.name)
    if isinstance(t, wit.ListT):
        if latin1 and is_byte_list(t):
            return _lower_latin1(t)
        return _lower_list(t, latin1)
    if isinstance(t, wit.TupleT):
        return _lower_tuple(t, latin1)
    if isinstance(t, wit.OptionT):
        return _lower_option(t, latin1)
    if isinstance(t, wit.ResultT):
        return _lower_result(t, latin1)
    if isinstance(t, wit.RecordT):
        return _lower_record(t, latin1)
    if isinstance(t, wit.VariantT):
        return _lower_variant(t, latin1)
    if isinstance(t, wit.EnumT):
        return _lower_enum(t)
    if isinstance(t, wit.FlagsT):
        return _lower_flags(t)
    if isinstance(t, wit.HandleT):
        return _handle_converters(t).lowerer(t)
    raise TypeError(f"cannot pass WIT type {wit.render_type(t)} from Python")


#: The largest finite f32, and the magnitude from which a double rounds to an f32
#: infinity (half an f32 ulp above it): smaller values round to a finite f32.
_F32_MAX = struct.unpack("<f", b"\xff\xff\x7f\x7f")[0]
_F32_OVERFLOW = 2.0**128 - 2.0**103


def _short(value: Any) -> str:
    """``value`` shown in an error message: huge ints and long reprs shortened."""
    if isinstance(value, int) and value.bit_length() > 128:
        # not str(): ints above 4300 digits refuse it (ValueError)
        return f"an int of about {int(value.bit_length() * math.log10(2)) + 1} digits"
    try:
        text = repr(value)
    except Exception:  # a hostile or broken __repr__ must not replace the real error
        text = f"<{_type_name(value)} object>"
    return text if len(text) <= 60 else text[:57] + "..."


def _as_float(value: Any, name: str) -> float:
    """``value`` (a float or a non-bool int) as a float, or a ConvertError saying why not."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise ConvertError(f"expected float ({name}), got {_type_name(value)}")
    try:
        return float(value)
    except OverflowError:
        raise ConvertError(
            f"{_short(value)} is out of range for {name} (its largest finite value is "
            f"{_F32_MAX if name == 'f32' else sys.float_info.max:.8g})"
        ) from None


def _f32_overflow(value: float) -> None:
    # An f32 parameter refuses a finite value that would become infinity (the C API
    # would store inf silently); infinities and NaN themselves pass unchanged.
    raise ConvertError(
        f"{value!r} is out of range for f32 (largest finite value {_F32_MAX:.8g}); pass "
        "math.inf explicitly if infinity is meant"
    )


def _lower_prim(name: str) -> Lower:
    if name in _INT_KINDS:
        kind, field, lo, hi, _ = _INT_KINDS[name]

        def lower_int(value: Any, dst: Any) -> None:
            if type(value) is not int and (not isinstance(value, int) or isinstance(value, bool)):
                raise ConvertError(f"expected int ({name}), got {_type_name(value)}")
            if not lo <= value <= hi:
                raise ConvertError(f"{_short(value)} is out of range for {name} ({lo}..{hi})")
            dst.kind = kind
            setattr(dst.of, field, value)

        return lower_int
    if name in _FLOAT_KINDS:
        fkind, ffield, _ = _FLOAT_KINDS[name]
        is_f32 = name == "f32"

        def lower_float(value: Any, dst: Any) -> None:
            if type(value) is not float:
                value = _as_float(value, name)
            if is_f32 and not -_F32_OVERFLOW < value < _F32_OVERFLOW and math.isfinite(value):
                _f32_overflow(value)
            dst.kind = fkind
            setattr(dst.of, ffield, value)

        return lower_float
    if name == "bool":

        def lower_bool(value: Any, dst: Any) -> None:
            if not isinstance(value, bool):
                raise ConvertError(f"expected bool, got {_type_name(value)}")
            dst.kind = BOOL
            dst.of.boolean = value

        return lower_bool
    if name == "char":

        def lower_char(value: Any, dst: Any) -> None:
            if not isinstance(value, str) or len(value) != 1:
                raise ConvertError(f"expected a one-character str (char), got {_short(value)}")
            code = ord(value)
            if 0xD800 <= code <= 0xDFFF:
                raise ConvertError(f"char U+{code:04X} is a surrogate, not a Unicode scalar")
            dst.kind = CHAR
            dst.of.character = code

        return lower_char

    def lower_string(value: Any, dst: Any) -> None:
        if not isinstance(value, str):
            raise ConvertError(f"expected str, got {_type_name(value)}")
        _string_to(dst.of.string, value)
        dst.kind = STRING

    return lower_string


def _lower_string_latin1(value: Any, dst: Any) -> None:
    if not isinstance(value, str):
        raise ConvertError(f"expected str, got {_type_name(value)}")
    try:
        data = value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ConvertError(f"string is not valid Unicode ({exc.reason} at {exc.start})") from None
    # One latin1 code point per UTF-8 byte: wasmtime writes them back as those bytes.
    _string_to(dst.of.string, data.decode("latin-1"))
    dst.kind = STRING


def _fill_bool(data: Any, count: int, item_size: int) -> None:
    # Zeroed entries are `bool false`: safe to delete whatever happens next.
    ctypes.memset(data, 0, count * item_size)


def _packed_elements(t: wit.WitType) -> tuple[int, str] | None:
    """(kind, array typecode) when list elements can be packed without per-item objects."""
    if isinstance(t, wit.Prim):
        if t.name in _INT_KINDS:
            kind, _, _, _, code = _INT_KINDS[t.name]
            return kind, code
        if t.name in _FLOAT_KINDS:
            fkind, _, fcode = _FLOAT_KINDS[t.name]
            return fkind, fcode
    return None


def _explain_element(value: Any, elem: Lower) -> None:
    """Raise the scalar check's ConvertError for the first bad element of ``value``."""
    for i, v in enumerate(value):
        try:
            elem(v, VAL())
        except ConvertError as exc:
            exc.path.insert(0, f"[{i}]")
            raise


def _pack(value: Any, code: str, elem: Lower, elem_name: str) -> bytes:
    """``value`` (bytes, or a list of numbers) as packed machine values, checked."""
    if isinstance(value, bytes | bytearray | memoryview) and code == "B":
        try:
            # bytes() of a memoryview is its raw bytes whatever its format or shape
            return bytes(value)
        except (ValueError, TypeError) as exc:  # e.g. a released memoryview
            raise ConvertError(
                f"cannot read the bytes of this {_type_name(value)}: {exc}"
            ) from None
    if not isinstance(value, list | tuple):
        raise ConvertError(f"expected list[{elem_name}], got {_type_name(value)}")
    if code in "fd":
        bad = next(
            (v for v in value if not isinstance(v, int | float) or isinstance(v, bool)), None
        )
    else:
        bad = next((v for v in value if type(v) is not int), None)
    if bad is not None:
        _explain_element(value, elem)  # locate it and let the scalar check explain
    try:
        packed = array(code, value)
    except (OverflowError, TypeError, ValueError):
        _explain_element(value, elem)
        raise
    if code == "f" and (math.inf in packed or -math.inf in packed):
        # array("f") turns a finite double beyond f32's range into inf silently: let the
        # scalar check find the element that did (an infinity given as such passes)
        _explain_element(value, elem)
    return packed.tobytes()


def _lower_latin1(t: wit.ListT) -> Lower:
    elem = lowerer(t.element)

    def lower_latin1(value: Any, dst: Any) -> None:
        data = _pack(value, "B", elem, "u8")
        # Code points 0-255, one per byte; wasmtime stores them as latin1.
        _string_to(dst.of.string, data.decode("latin-1"))
        dst.kind = STRING

    return lower_latin1


def _lower_list(t: wit.ListT, latin1: bool = False) -> Lower:
    packed = _packed_elements(t.element)
    elem = lowerer(t.element, latin1=latin1)
    elem_name = wit.render_type(t.element)

    def lower_packed(value: Any, dst: Any) -> None:
        assert packed is not None
        kind, code = packed
        data = _pack(value, code, elem, elem_name)
        width = array(code).itemsize
        n = len(data) // width  # not len(value): a memoryview's len counts its items
        raw = dst.of.list
        _list_new(_byref(raw), n)
        if n:
            # Write kinds and payload bytes straight into the C array with strided copies:
            # no Python object, and no temporary buffer, per element.
            view = _view(raw.data, n * VAL_SIZE)
            view[0::VAL_SIZE] = bytes([kind]) * n
            for k in range(width):
                view[PAYLOAD_OFFSET + k :: VAL_SIZE] = data[k::width]
        dst.kind = LIST

    if packed is not None:
        return lower_packed

    def lower_list(value: Any, dst: Any) -> None:
        if not isinstance(value, list | tuple):
            raise ConvertError(f"expected list[{elem_name}], got {_type_name(value)}")
        n = len(value)
        raw = dst.of.list
        _list_new(_byref(raw), n)
        data = raw.data
        _fill_bool(data, n, VAL_SIZE)
        dst.kind = LIST
        for i in range(n):
            try:
                elem(value[i], data[i])
            except ConvertError as exc:
                exc.path.insert(0, f"[{i}]")
                _val_delete(_byref(dst))
                dst.kind = BOOL
                raise

    return lower_list


def _lower_tuple(t: wit.TupleT, latin1: bool = False) -> Lower:
    elems = [lowerer(e, latin1=latin1) for e in t.elements]
    n = len(elems)

    def lower_tuple(value: Any, dst: Any) -> None:
        if not isinstance(value, tuple | list) or len(value) != n:
            raise ConvertError(f"expected a tuple of {n} items, got {_short(value)}")
        raw = dst.of.tuple
        _tuple_new(_byref(raw), n)
        data = raw.data
        _fill_bool(data, n, VAL_SIZE)
        dst.kind = TUPLE
        for i in range(n):
            try:
                elems[i](value[i], data[i])
            except ConvertError as exc:
                exc.path.insert(0, f"[{i}]")
                _val_delete(_byref(dst))
                dst.kind = BOOL
                raise

    return lower_tuple


def _boxed(lower: Lower, value: Any) -> Any:
    tmp = VAL()
    lower(value, tmp)
    return _val_new(_byref(tmp))


def _lower_option(t: wit.OptionT, latin1: bool = False) -> Lower:
    inner = lowerer(t.inner, latin1=latin1)
    if t.some:  # `Some[T] | None`: the payload comes wrapped

        def lower_some(value: Any, dst: Any) -> None:
            if value is None:
                dst.of.option = None
            elif isinstance(value, Some):
                dst.of.option = _boxed(inner, value.value)
            else:
                raise ConvertError(
                    f"expected Some(...) or None for {wit.render_type(t)} (annotated "
                    f"Some[...] | None), got {_type_name(value)}"
                )
            dst.kind = OPTION

        return lower_some

    def lower_option(value: Any, dst: Any) -> None:
        dst.of.option = None if value is None else _boxed(inner, value)
        dst.kind = OPTION

    return lower_option


def _lower_result(t: wit.ResultT, latin1: bool = False) -> Lower:
    ok = None if t.ok is None else lowerer(t.ok, latin1=latin1)
    err = None if t.err is None else lowerer(t.err, latin1=latin1)

    def lower_result(value: Any, dst: Any) -> None:
        if isinstance(value, Ok):
            is_ok, case, payload = True, ok, value.value
        elif isinstance(value, Err):
            is_ok, case, payload = False, err, value.value
        else:
            raise ConvertError(
                f"expected Ok(...) or Err(...) for a result, got {_type_name(value)}"
            )
        if case is None:
            if payload is not None:
                raise ConvertError(f"this result case carries no payload, got {_short(payload)}")
            box = None
        else:
            try:
                box = _boxed(case, payload)
            except ConvertError as exc:
                exc.path.insert(0, ".value")
                raise
        dst.of.result.is_ok = is_ok
        dst.of.result.val = box
        dst.kind = RESULT

    return lower_result


def _init_names(cls: Any, names: tuple[str, ...]) -> list[str]:
    """The keyword each field takes in ``cls.__init__`` (attrs strips leading underscores)."""
    if attrs.has(cls):
        by_name = {f.name: f.alias for f in attrs.fields(cls)}
        return [by_name.get(n, n) for n in names]
    return list(names)


def _lower_record(t: wit.RecordT, latin1: bool = False) -> Lower:
    fields = [(wit_name.encode(), lowerer(ft, latin1=latin1)) for wit_name, ft in t.fields]
    attrs_ = list(t.py_fields) if t.py_fields else [n.replace("-", "_") for n, _ in t.fields]
    n = len(fields)
    entry_size = ctypes.sizeof(capi.VALRECORD_ENTRY)
    cls = t.py
    shown = t.name if cls is None else cls.__name__

    def lower_record(value: Any, dst: Any) -> None:
        if cls is not None and not isinstance(value, cls):
            missing = [a for a in attrs_ if not hasattr(value, a)]
            if missing:
                raise ConvertError(
                    f"expected {shown} (record {t.name}), got {_type_name(value)} "
                    f"without attribute(s) {', '.join(missing)}"
                )
        raw = dst.of.record
        _record_new(_byref(raw), n)
        data = raw.data
        _fill_bool(data, n, entry_size)  # zeroed: empty names, `false` values
        dst.kind = RECORD
        for i in range(n):
            entry = data[i]
            name, lower_field = fields[i]
            _vec_new(_byref(entry.name), len(name), name)
            try:
                lower_field(getattr(value, attrs_[i]), entry.val)
            except (ConvertError, AttributeError) as exc:
                _val_delete(_byref(dst))
                dst.kind = BOOL
                if isinstance(exc, AttributeError):
                    raise ConvertError(
                        f"expected {shown} (record {t.name}), got {_type_name(value)}"
                    ) from None
                exc.path.insert(0, f".{attrs_[i]}")
                raise

    return lower_record


def _single_field(case: Any) -> str | None:
    if attrs.has(case):
        names = [f.name for f in attrs.fields(case)]
    elif dataclasses.is_dataclass(case):
        names = [f.name for f in dataclasses.fields(case)]
    else:
        names = []
    return names[0] if names else None


def _lower_variant(t: wit.VariantT, latin1: bool = False) -> Lower:
    cases: list[tuple[bytes, Lower | None, str | None]] = []
    by_class: dict[Any, int] = {}
    for i, (name, ct) in enumerate(t.cases):
        cls = t.py_cases[i] if t.py_cases else None
        field = _single_field(cls) if cls is not None else None
        cases.append((name.encode(), None if ct is None else lowerer(ct, latin1=latin1), field))
        if cls is not None:
            by_class[cls] = i
    base = t.py
    shown = t.name if base is None else base.__name__

    def lower_variant(value: Any, dst: Any) -> None:
        index = by_class.get(type(value))
        if index is None:
            index = next((i for c, i in by_class.items() if isinstance(value, c)), None)
        if index is None:
            choices = ", ".join(c.__name__ for c in by_class)
            raise ConvertError(f"expected a case of {shown} ({choices}), got {_type_name(value)}")
        name, lower, field = cases[index]
        box = None
        if lower is not None:
            assert field is not None
            try:
                box = _boxed(lower, getattr(value, field))
            except ConvertError as exc:
                exc.path.insert(0, f".{field}")
                raise
        _vec_new(_byref(dst.of.variant.discriminant), len(name), name)
        dst.of.variant.val = box
        dst.kind = VARIANT

    return lower_variant


def _lower_enum(t: wit.EnumT) -> Lower:
    cls = t.py
    members = {} if cls is None else {m: n.encode() for m, n in zip(cls, t.names, strict=True)}
    shown = t.name if cls is None else cls.__name__

    def lower_enum(value: Any, dst: Any) -> None:
        name = members.get(value) if isinstance(value, enum.Enum) else None
        if name is None:
            raise ConvertError(
                f"expected a member of {shown} ({', '.join(t.names)}), got {_short(value)}"
            )
        _vec_new(_byref(dst.of.enumeration), len(name), name)
        dst.kind = ENUM

    return lower_enum


def _lower_flags(t: wit.FlagsT) -> Lower:
    cls = t.py
    members = [] if cls is None else list(zip(cls, [n.encode() for n in t.names], strict=True))
    shown = t.name if cls is None else cls.__name__

    def lower_flags(value: Any, dst: Any) -> None:
        if cls is None or not isinstance(value, cls):
            raise ConvertError(f"expected {shown} flags, got {_short(value)}")
        chosen = [name for member, name in members if member in value]
        raw = dst.of.flags
        _flags_new(_byref(raw), len(chosen))
        for i, name in enumerate(chosen):
            _vec_new(_byref(raw.data[i]), len(name), name)
        dst.kind = FLAGS

    return lower_flags


# ----------------------------------------------------------------------------- lifting


def lifter(t: wit.WitType, *, latin1: bool = False) -> Lift:
    """A function ``lift(src)`` reading a value of WIT type ``t`` into Python.

    ``latin1``: every string was lifted from a ``string-encoding=latin1+utf16`` function
    (:mod:`.rawimports`' rewritten results: their parameters' strings too), so its code
    points are the guest's UTF-8 bytes: they are decoded as UTF-8 (UnicodeError when they
    are not UTF-8: the guest's fault).
    """
    if isinstance(t, wit.Prim):
        if latin1 and t.name == "string":
            return _lift_string_latin1
        return _lift_prim(t.name)
    if isinstance(t, wit.ListT):
        return _lift_list(t, latin1)
    if isinstance(t, wit.TupleT):
        elems = [lifter(e, latin1=latin1) for e in t.elements]

        def lift_tuple(src: Any) -> Any:
            data = src.of.tuple.data
            return tuple(elems[i](data[i]) for i in range(len(elems)))

        return lift_tuple
    if isinstance(t, wit.OptionT):
        inner = lifter(t.inner, latin1=latin1)
        if t.some:

            def lift_some(src: Any) -> Any:
                ptr = src.of.option
                return Some(inner(ptr.contents)) if ptr else None

            return lift_some

        def lift_option(src: Any) -> Any:
            ptr = src.of.option
            return inner(ptr.contents) if ptr else None

        return lift_option
    if isinstance(t, wit.ResultT):
        return _lift_result(t, latin1)
    if isinstance(t, wit.RecordT):
        return _lift_record(t, latin1)
    if isinstance(t, wit.VariantT):
        return _lift_variant(t, latin1)
    if isinstance(t, wit.EnumT):
        members: list[Any] = list(t.names) if t.py is None else list(t.py)
        by_name = dict(zip(t.names, members, strict=True))

        def lift_enum(src: Any) -> Any:
            return by_name[_string_from(src.of.enumeration)]

        return lift_enum
    if isinstance(t, wit.FlagsT):
        return _lift_flags(t)
    if isinstance(t, wit.HandleT):
        return _handle_converters(t).lifter(t)
    raise TypeError(f"cannot read WIT type {wit.render_type(t)} into Python")


def _lift_prim(name: str) -> Lift:
    if name in _INT_KINDS:
        field = _INT_KINDS[name][1]
        return lambda src: getattr(src.of, field)
    if name in _FLOAT_KINDS:
        ffield = _FLOAT_KINDS[name][1]
        return lambda src: getattr(src.of, ffield)
    if name == "bool":
        return lambda src: bool(src.of.boolean)
    if name == "char":
        return lambda src: chr(src.of.character)
    return lambda src: _string_from(src.of.string)


def _lift_string_latin1(src: Any) -> str:
    vec = src.of.string
    if not vec.size:
        return ""
    raw = ctypes.string_at(vec.data, vec.size).decode("utf-8").encode("latin-1")
    return raw.decode("utf-8")


def _latin1_bytes(vec: Any) -> bytes:
    size = vec.size
    return ctypes.string_at(vec.data, size).decode("utf-8").encode("latin-1") if size else b""


def latin1_lifter(t: wit.WitType) -> Lift:
    """A lifter for a ``list<u8>`` result that a byte-buffer export returns as a latin1
    string (see :mod:`._relift`: only a top-level ``list<u8>`` result is)."""
    assert isinstance(t, wit.ListT) and is_byte_list(t)  # noqa: PT018
    if t.py_bytes:
        return lambda src: _latin1_bytes(src.of.string)
    return lambda src: list(_latin1_bytes(src.of.string))


def measure_latin1(src: Any) -> int:
    """An upper bound of the bytes in such a result: its UTF-8 size, which is one or two
    bytes per latin1 character."""
    return int(src.of.string.size)


def measure_latin1_exact(src: Any) -> int:
    """The bytes in such a result, counted (it copies the string: for when the bound of
    :func:`measure_latin1` is over a limit)."""
    return len(_latin1_bytes(src.of.string))


def _lift_list(t: wit.ListT, latin1: bool = False) -> Lift:
    packed = _packed_elements(t.element)
    if packed is not None:
        code = packed[1]
        width = array(code).itemsize

        def lift_packed(src: Any) -> Any:
            lst = src.of.list
            n = lst.size
            if not n:
                data = b""
            else:
                view = _view(lst.data, n * VAL_SIZE)
                if width == 1:
                    data = view[PAYLOAD_OFFSET::VAL_SIZE].tobytes()
                else:
                    out = bytearray(n * width)
                    for k in range(width):
                        out[k::width] = view[PAYLOAD_OFFSET + k :: VAL_SIZE]
                    data = bytes(out)
            if t.py_bytes:
                return data
            return array(code, data).tolist()

        return lift_packed
    elem = lifter(t.element, latin1=latin1)

    def lift_list(src: Any) -> Any:
        lst = src.of.list
        data = lst.data
        return [elem(data[i]) for i in range(lst.size)]

    return lift_list


class Kept(list[Any]):
    """The first elements of a list argument longer than its host function keeps (see
    ``HostFunc.keep``): ``total`` is how many the guest passed; the others were never
    lifted into Python."""

    __slots__ = ("total",)

    def __init__(self, items: list[Any], total: int):
        super().__init__(items)
        self.total = total


def lifter_keeping(t: wit.WitType, keep: int | None, *, latin1: bool = False) -> Lift:
    """:func:`lifter` of ``t``; when ``t`` is a list and ``keep`` is not None, one that
    lifts its first ``keep`` elements only, as a :class:`Kept`, when there are more."""
    full = lifter(t, latin1=latin1)
    if keep is None or not isinstance(t, wit.ListT):
        return full
    elem = lifter(t.element, latin1=latin1)

    def lift_kept(src: Any) -> Any:
        lst = src.of.list
        n = lst.size
        if n <= keep:
            return full(src)
        data = lst.data
        return Kept([elem(data[i]) for i in range(keep)], n)

    return lift_kept


def _lift_result(t: wit.ResultT, latin1: bool = False) -> Lift:
    ok = None if t.ok is None else lifter(t.ok, latin1=latin1)
    err = None if t.err is None else lifter(t.err, latin1=latin1)

    def lift_result(src: Any) -> Any:
        res = src.of.result
        ptr = res.val
        if res.is_ok:
            return Ok(ok(ptr.contents) if ok is not None and ptr else None)
        return Err(err(ptr.contents) if err is not None and ptr else None)

    return lift_result


def _lift_record(t: wit.RecordT, latin1: bool = False) -> Lift:
    fields = [lifter(ft, latin1=latin1) for _, ft in t.fields]
    cls = t.py
    if cls is None:
        names = [n.replace("-", "_") for n, _ in t.fields]

        def lift_plain(src: Any) -> Any:
            data = src.of.record.data
            return {names[i]: fields[i](data[i].val) for i in range(len(fields))}

        return lift_plain
    keywords = _init_names(cls, t.py_fields)

    def lift_record(src: Any) -> Any:
        data = src.of.record.data
        return cls(**{keywords[i]: fields[i](data[i].val) for i in range(len(fields))})

    return lift_record


def _lift_variant(t: wit.VariantT, latin1: bool = False) -> Lift:
    by_name: dict[str, tuple[Any, Lift | None, str | None]] = {}
    for i, (name, ct) in enumerate(t.cases):
        cls = t.py_cases[i] if t.py_cases else None
        field = _single_field(cls) if cls is not None else None
        keyword = _init_names(cls, (field,))[0] if cls is not None and field else field
        by_name[name] = (cls, None if ct is None else lifter(ct, latin1=latin1), keyword)

    def lift_variant(src: Any) -> Any:
        var = src.of.variant
        cls, lift, keyword = by_name[_string_from(var.discriminant)]
        if cls is None:
            raise TypeError(f"variant {t.name} has no Python class to build")
        if lift is None or keyword is None:
            return cls()
        return cls(**{keyword: lift(var.val.contents)})

    return lift_variant


def _lift_flags(t: wit.FlagsT) -> Lift:
    cls = t.py
    by_name = dict(zip(t.names, cls, strict=True)) if cls is not None else {}

    def lift_flags(src: Any) -> Any:
        flags = src.of.flags
        value = cls(0)
        for i in range(flags.size):
            value |= by_name[_string_from(flags.data[i])]
        return value

    return lift_flags


# ----------------------------------------------------------------------------- measuring

Measure = Callable[[Any], int]


def measurer(t: wit.WitType) -> Measure | None:
    """A function giving the bytes of strings and lists inside a C value of type ``t``
    (checked against a result-size limit before anything is copied into Python), or
    None when the type has no variable-size part."""
    if isinstance(t, wit.Prim):
        if t.name != "string":
            return None

        def measure_string(src: Any) -> int:
            return int(src.of.string.size)

        return measure_string
    if isinstance(t, wit.ListT):
        packed = _packed_elements(t.element)
        inner = measurer(t.element)
        if packed is not None or inner is None:
            width = array(packed[1]).itemsize if packed is not None else VAL_SIZE
            return lambda src: src.of.list.size * width
        measure_elem = inner

        def measure_list(src: Any) -> int:
            lst = src.of.list
            data = lst.data
            size = int(lst.size)
            return size * VAL_SIZE + sum(measure_elem(data[i]) for i in range(size))

        return measure_list
    if isinstance(t, wit.OptionT):
        inner_opt = measurer(t.inner)
        if inner_opt is None:
            return None
        measure_inner = inner_opt
        return lambda src: measure_inner(src.of.option.contents) if src.of.option else 0
    if isinstance(t, wit.TupleT | wit.RecordT):
        parts = [
            measurer(e)
            for e in (t.elements if isinstance(t, wit.TupleT) else [f for _, f in t.fields])
        ]
        if all(p is None for p in parts):
            return None
        is_tuple = isinstance(t, wit.TupleT)

        def measure_fields(src: Any) -> int:
            data = src.of.tuple.data if is_tuple else src.of.record.data
            total = 0
            for i, part in enumerate(parts):
                if part is not None:
                    total += part(data[i] if is_tuple else data[i].val)
            return total

        return measure_fields
    if isinstance(t, wit.ResultT):
        ok = None if t.ok is None else measurer(t.ok)
        err = None if t.err is None else measurer(t.err)
        if ok is None and err is None:
            return None

        def measure_result(src: Any) -> int:
            res = src.of.result
            part = ok if res.is_ok else err
            return part(res.val.contents) if part is not None and res.val else 0

        return measure_result
    if isinstance(t, wit.VariantT):
        cases = {name: (None if ct is None else measurer(ct)) for name, ct in t.cases}
        if all(c is None for c in cases.values()):
            return None

        def measure_variant(src: Any) -> int:
            var = src.of.variant
            part = cases.get(_string_from(var.discriminant))
            return part(var.val.contents) if part is not None and var.val else 0

        return measure_variant
    return None
