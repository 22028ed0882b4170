"""Host functions: Python callables that components import, called with our converters.

wasmtime-py's own ``LinkerInstance.add_func`` converts values with its ambiguous slow path
and carries exceptions back through a module-global slot that other threads can overwrite
(see the notes, pitfall 3). Here each host function is registered through the C API with a
callback that

* finds the calling plugin from the store context (a table filled at instantiation);
* lifts arguments and lowers the result with the converters built from the function's WIT
  signature;
* never lets a Python exception reach wasmtime-py: it stores the exception on the calling
  plugin instance (the caller holds that instance's lock, so no other thread can see it)
  and returns a plain wasmtime error, which makes the guest trap; the instance then
  raises the stored exception, correctly attributed.
"""

from __future__ import annotations

import ctypes
import enum
import threading
from collections.abc import Callable
from typing import Any, Final, Protocol

import attrs
from wasmtime.component import LinkerInstance

from ..contract import wit
from ..contract.annotations import Err
from . import capi
from .convert import ConvertError, Lift, Lower, lifter, lowerer

__all__ = ["Caller", "HostFunc", "link_refusal", "register_context", "unregister_context"]


class Caller(Protocol):
    """The plugin instance a host function is called from (``PluginInstance`` is one)."""

    host_error: BaseException | None

    @property
    def name(self) -> str: ...
    def may_call(self, interface: str) -> bool: ...


# store context address -> the plugin instance that owns the store
_CONTEXTS: dict[int, Caller] = {}
_CONTEXTS_LOCK: Final = threading.Lock()
# ctypes callbacks must stay alive as long as the linker that holds them
_KEEP_ALIVE: list[Any] = []


def _address(pointer: Any) -> int:
    return ctypes.cast(pointer, ctypes.c_void_p).value or 0


def register_context(context: Any, instance: Caller) -> None:
    with _CONTEXTS_LOCK:
        _CONTEXTS[_address(context)] = instance


def unregister_context(context: Any) -> None:
    with _CONTEXTS_LOCK:
        _CONTEXTS.pop(_address(context), None)


@capi.CALLBACK  # type: ignore[untyped-decorator]
def _trampoline(
    data: Any, context: Any, ty: Any, args: Any, nargs: int, results: Any, nresults: int
) -> int:
    # Everything here must be caught: an exception escaping a ctypes callback is printed
    # and turned into a zero return, which wasmtime would read as success.
    try:
        func: HostFunc = _FUNCS[data or 0]
        instance = _CONTEXTS.get(_address(context))
        if instance is None:
            return _error(f"host function {func.name} called from an unknown store")
        try:
            if not instance.may_call(func.interface):
                raise PermissionError(
                    f"plugin {instance.name!r} is not granted interface {func.interface}"
                )
            pyargs = [func.lifts[i](args[i]) for i in range(nargs)]
            value = func.impl(instance, *pyargs)
            if func.lower is not None:
                try:
                    func.lower(value, results[0])
                except ConvertError as exc:
                    raise TypeError(
                        f"host function {func.name} returned {value!r:.80}: {exc.located()}"
                    ) from None
        except BaseException as exc:
            instance.host_error = exc
            return _error(f"host function {func.name} failed: {type(exc).__name__}")
        return 0
    except BaseException:  # pragma: no cover - last line of defence
        return _error("host function failed")


def _error(message: str) -> int:
    """A new wasmtime error (owned by wasmtime once returned), as the callback's result."""
    return capi.error_new(message)


def _no_finalize(data: int) -> None:  # functions stay in _FUNCS: nothing to free
    return None


_finalize = ctypes.CFUNCTYPE(None, ctypes.c_void_p)(_no_finalize)


_FUNCS: dict[int, HostFunc] = {}


@attrs.define(eq=False)
class HostFunc:
    """A Python implementation of WIT function ``name`` of ``interface``.

    ``impl(instance, *args)`` receives the calling instance (a :class:`Caller`) first.
    """

    interface: str
    name: str
    signature: wit.FuncSig
    impl: Callable[..., Any]
    lifts: tuple[Lift, ...] = attrs.field(init=False)
    lower: Lower | None = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        self.lifts = tuple(lifter(t) for t in self.signature.param_types)
        self.lower = None if self.signature.result is None else lowerer(self.signature.result)

    def link(self, target: LinkerInstance) -> None:
        """Add this function to a linker instance (an interface being defined)."""
        key = len(_FUNCS) + 1
        _FUNCS[key] = self
        name = self.name.encode()
        err = capi.linker_instance_add_func(
            capi.linker_instance_handle(target),
            ctypes.create_string_buffer(name),
            len(name),
            _trampoline,
            key,
            _finalize,
        )
        if err:
            raise capi.error_from_ptr(err)


class _ErrorCode(enum.Enum):
    """The one case of ``wasi:filesystem/types.error-code`` a refusal returns."""

    NOT_PERMITTED = "not-permitted"


_lower_refusal: Final = lowerer(
    wit.ResultT(None, wit.EnumT("error-code", ("not-permitted",), py=_ErrorCode))
)
_REFUSED: Final = Err(_ErrorCode.NOT_PERMITTED)


@capi.CALLBACK  # type: ignore[untyped-decorator]
def _refuse(
    data: Any, context: Any, ty: Any, args: Any, nargs: int, results: Any, nresults: int
) -> int:
    # A WASI function returning result<_, error-code> that always answers not-permitted
    # (errno EPERM in the guest), whatever its arguments: the guest gets an ordinary
    # error, no trap.
    try:
        for i in range(nargs):  # the descriptor is borrowed: give it back
            if args[i].kind == capi.RESOURCE_KIND:
                err = capi.resource_any_drop(context, args[i].of.resource)
                if err:
                    return err  # type: ignore[no-any-return]
        _lower_refusal(_REFUSED, results[0])
        return 0
    except BaseException:  # pragma: no cover - last line of defence
        return _error("refused")


def link_refusal(target: LinkerInstance, name: str) -> None:
    """Define ``name`` in ``target`` (a WASI interface whose functions return
    ``result<_, error-code>``) as always failing with ``not-permitted``."""
    raw = name.encode()
    err = capi.linker_instance_add_func(
        capi.linker_instance_handle(target),
        ctypes.create_string_buffer(raw),
        len(raw),
        _refuse,
        0,
        _finalize,
    )
    if err:
        raise capi.error_from_ptr(err)
