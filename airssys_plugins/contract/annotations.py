"""The annotation vocabulary hookspecs use to say which WIT type a Python value has.

Plain Python types map to their natural WIT type (``int`` -> ``s64``, ``float`` -> ``f64``);
these names give the other widths and the WIT types Python has no word for::

    from airssys_plugins import u32, Result, variant

    @hookspec
    def resize(self, width: u32, height: u32) -> Result[Image, Problem]: ...

Each integer alias is ``Annotated[int, ...]``: to the type checker it is just ``int``.
"""

from __future__ import annotations

from typing import Annotated, Any, Generic, TypeVar, final

from .. import _attrs as attrs

__all__ = [
    "Borrow",
    "Err",
    "HandleKind",
    "Ok",
    "Own",
    "Result",
    "Some",
    "WitPrimitive",
    "char",
    "f32",
    "f64",
    "is_resource",
    "is_variant",
    "resource",
    "s8",
    "s16",
    "s32",
    "s64",
    "u8",
    "u16",
    "u32",
    "u64",
    "variant",
]

T = TypeVar("T")
E = TypeVar("E")
C = TypeVar("C", bound=type)


@final
@attrs.frozen
class WitPrimitive:
    """Marker inside ``Annotated[...]`` naming the WIT primitive a Python value maps to."""

    name: str


u8 = Annotated[int, WitPrimitive("u8")]
u16 = Annotated[int, WitPrimitive("u16")]
u32 = Annotated[int, WitPrimitive("u32")]
u64 = Annotated[int, WitPrimitive("u64")]
s8 = Annotated[int, WitPrimitive("s8")]
s16 = Annotated[int, WitPrimitive("s16")]
s32 = Annotated[int, WitPrimitive("s32")]
s64 = Annotated[int, WitPrimitive("s64")]
f32 = Annotated[float, WitPrimitive("f32")]
f64 = Annotated[float, WitPrimitive("f64")]
char = Annotated[str, WitPrimitive("char")]


class Result(Generic[T, E]):
    """Annotation for WIT ``result<T, E>``; use ``None`` for a missing payload.

    As a hook's return type, ``ok`` becomes the return value and ``err`` raises
    :class:`~airssys_plugins.PluginResultError` carrying the error payload. Nested inside
    another type (a list of results, say) values are :class:`Ok` and :class:`Err`.
    """


@final
@attrs.frozen
class Ok(Generic[T]):
    """The ``ok`` case of a nested ``result``."""

    value: T


@final
@attrs.frozen
class Err(Generic[E]):
    """The ``err`` case of a nested ``result``."""

    value: E


@final
@attrs.frozen
class Some(Generic[T]):
    """The ``some`` case of an option, for ``option<option<T>>`` (``T | None | None`` is
    just ``T | None`` in Python): annotate it ``Some[T | None] | None``. ``None`` is
    ``none``, ``Some(None)`` is ``some(none)`` and ``Some(x)`` is ``some(some(x))``."""

    value: T


_VARIANT_ATTR = "__airssys_variant__"


def variant(cls: C) -> C:
    """Mark a base class as a WIT ``variant``; its direct subclasses are the cases.

    Each case is an attrs class or dataclass with no field (a case without payload) or
    exactly one field (the payload). Cases keep their definition order, which is the
    order of the WIT cases::

        @variant
        class Shape: ...

        @attrs.frozen
        class Circle(Shape):
            radius: float

        @attrs.frozen
        class Empty(Shape):
            pass
    """
    setattr(cls, _VARIANT_ATTR, cls)
    return cls


def is_variant(tp: Any) -> bool:
    """Whether ``tp`` is a class marked with :func:`variant` (not one of its cases)."""
    return isinstance(tp, type) and tp.__dict__.get(_VARIANT_ATTR) is tp


_RESOURCE_ATTR = "__airssys_resource__"


def resource(cls: C) -> C:
    """Mark a class as a WIT ``resource``: a handle to an object that lives on one side
    (the component that exports it, or the host that provides it) and is used from the
    other through its methods::

        @resource
        class Counter:
            def __init__(self, start: u32) -> None: ...   # constructor(start: u32)
            def get(self) -> u32: ...                      # get: func() -> u32
            @staticmethod
            def zero() -> Counter: ...                     # zero: static func() -> counter

    Every public function of the class body is a method (its annotations give the WIT
    signature, ``self`` being the handle); ``@staticmethod`` functions are static
    functions; an ``__init__`` defined in the class body is the constructor. Names
    starting with ``_`` are left out. In annotations, the class itself or ``Own[Counter]``
    is ``own<counter>``, ``Borrow[Counter]`` is ``borrow<counter>``.
    """
    setattr(cls, _RESOURCE_ATTR, cls)
    return cls


def is_resource(tp: Any) -> bool:
    """Whether ``tp`` is a class marked with :func:`resource`."""
    return isinstance(tp, type) and tp.__dict__.get(_RESOURCE_ATTR) is tp


R = TypeVar("R")


@final
@attrs.frozen
class HandleKind:
    """Marker inside ``Annotated[...]``: ``own`` or ``borrow`` handle of a resource."""

    own: bool


#: ``own<T>`` of a :func:`resource` class ``T`` (the same as ``T`` alone): the receiver
#: owns the handle, and passing it gives it away. To a type checker it is just ``T``.
Own = Annotated[R, HandleKind(own=True)]
#: ``borrow<T>`` of a :func:`resource` class ``T``: the handle is lent for one call only.
#: To a type checker it is just ``T``.
Borrow = Annotated[R, HandleKind(own=False)]
