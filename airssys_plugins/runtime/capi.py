"""Every private name of wasmtime-py the runtime relies on, in one place.

wasmtime-py's public API converts values slowly and ambiguously (see :mod:`.convert`) and
carries host-function exceptions through a global slot (see :mod:`.callbacks`), so the
runtime calls wasmtime's C API itself, through wasmtime-py's own ctypes bindings
(``wasmtime._ffi``) and a few private attributes of its objects. Those are not a stable
interface: a wasmtime-py upgrade may rename or retype any of them. Keeping every such use
here means one file to read on an upgrade, and ``tests/test_wasmtime_internals.py`` checks
each name below against the installed wasmtime-py, naming the one that changed.

The per-call path never calls a function of this module: callers take the C functions
(``call``, ``set_fuel``...) and the handles (``func_handle``) once, at import or bind time.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable
from typing import Any, Final

from wasmtime import Store, WasmtimeError
from wasmtime import _ffi as ffi
from wasmtime.component import Func, FuncType, LinkerInstance

__all__ = [
    "CALLBACK",
    "C_FUNCTIONS",
    "DEADLINE_CALLBACK",
    "DEADLINE_FINALIZER",
    "VAL",
    "RESOURCE_KIND",
    "VALRECORD_ENTRY",
    "address",
    "byte_vec_new",
    "error_from_ptr",
    "error_new",
    "ffi",
    "func_handle",
    "func_type_is_async",
    "linker_instance_handle",
    "resource_any_drop",
    "store_context",
    "store_handle",
    "wasmtime_version",
]

# The component value struct that lowering writes and lifting reads, and the callback
# type of a host function.
VAL: Final[Any] = ffi.wasmtime_component_val_t
VALRECORD_ENTRY: Final[Any] = ffi.wasmtime_component_valrecord_entry
CALLBACK: Final[Any] = ffi.wasmtime_component_func_callback_t

# C functions called directly: wasmtime-py wraps each in a Python function (one frame
# more per call). ``ffi.dll.<name>`` is the ctypes function wasmtime-py set argtypes and
# restype on, so these check their arguments as wasmtime-py's bindings declare them.
call: Final[Any] = ffi.dll.wasmtime_component_func_call
val_new: Final[Any] = ffi.dll.wasmtime_component_val_new
val_delete: Final[Any] = ffi.dll.wasmtime_component_val_delete
vallist_new_uninit: Final[Any] = ffi.dll.wasmtime_component_vallist_new_uninit
valtuple_new_uninit: Final[Any] = ffi.dll.wasmtime_component_valtuple_new_uninit
valrecord_new_uninit: Final[Any] = ffi.dll.wasmtime_component_valrecord_new_uninit
valflags_new_uninit: Final[Any] = ffi.dll.wasmtime_component_valflags_new_uninit
set_epoch_deadline: Final[Any] = ffi.dll.wasmtime_context_set_epoch_deadline
set_fuel: Final[Any] = ffi.dll.wasmtime_context_set_fuel
linker_instance_add_func: Final[Any] = ffi.dll.wasmtime_component_linker_instance_add_func
_func_type_async: Final[Any] = ffi.dll.wasmtime_component_func_type_async
# Called on the guest's own thread when a store's epoch deadline is reached, it decides
# whether the call goes on (another slice of ticks), or stops (cancelled or timed out):
# see runtime/cancel.py. Its callback and finalizer types, as wasmtime-py declares them.
epoch_deadline_callback: Final[Any] = ffi.dll.wasmtime_store_epoch_deadline_callback
DEADLINE_CALLBACK: Final[Any] = epoch_deadline_callback.argtypes[1]
DEADLINE_FINALIZER: Final[Any] = epoch_deadline_callback.argtypes[3]
_error_new: Final[Any] = ffi.dll.wasmtime_error_new
# Ends a borrow a host function was given (wasmtime traps a call that returns with one
# still held), and the kind tag of a resource value.
resource_any_drop: Final[Any] = ffi.dll.wasmtime_component_resource_any_drop
RESOURCE_KIND: Final[int] = ffi.WASMTIME_COMPONENT_RESOURCE.value
# A WasmtimeError owning a C error pointer (an exit status becomes ExitTrap); the
# classmethod itself, not a wrapper around it.
error_from_ptr: Final[Callable[[Any], WasmtimeError]] = WasmtimeError._from_ptr

# wasmtime-py's wasm_byte_vec_new takes a uint8_t* that bytes would have to be cast to
# (ctypes.cast costs more than the call itself); this copy of it (``dll[...]`` makes a
# new function object, leaving wasmtime-py's untouched) takes bytes as a char*: no copy,
# no cast, and the length is passed, so NULs are fine.
byte_vec_new: Final[Any] = ffi.dll["wasm_byte_vec_new"]
byte_vec_new.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_char_p]
byte_vec_new.restype = None

# The C functions above, by name, for the internals test (name -> function).
C_FUNCTIONS: Final[dict[str, Any]] = {
    "wasmtime_component_func_call": call,
    "wasmtime_component_val_new": val_new,
    "wasmtime_component_val_delete": val_delete,
    "wasmtime_component_vallist_new_uninit": vallist_new_uninit,
    "wasmtime_component_valtuple_new_uninit": valtuple_new_uninit,
    "wasmtime_component_valrecord_new_uninit": valrecord_new_uninit,
    "wasmtime_component_valflags_new_uninit": valflags_new_uninit,
    "wasmtime_context_set_epoch_deadline": set_epoch_deadline,
    "wasmtime_context_set_fuel": set_fuel,
    "wasmtime_component_linker_instance_add_func": linker_instance_add_func,
    "wasmtime_component_func_type_async": _func_type_async,
    "wasmtime_error_new": _error_new,
    "wasmtime_component_resource_any_drop": resource_any_drop,
    "wasmtime_store_epoch_deadline_callback": epoch_deadline_callback,
}


def wasmtime_version() -> str:
    """The installed wasmtime-py's version, for messages about its internals."""
    from .engine import wasmtime_version as version  # cheap: no importlib.metadata

    try:
        return version()
    except ImportError:  # pragma: no cover - imported, so installed
        return "unknown"


def address(pointer: Any) -> int:
    """The address a ctypes pointer holds (0 for NULL).

    Not ``ctypes.cast(pointer, c_void_p).value``: a cast gives the pointer it is handed a
    dict holding the pointer itself (ctypes' keep-alive for the cast's result), which a
    store's context pointer, kept as long as its plugin, then carries for good (about 260
    bytes a plugin, and a reference cycle); this is also faster (0.3 us against 2)."""
    return ctypes.addressof(pointer.contents) if pointer else 0


def store_context(store: Store) -> Any:
    """The store's ``wasmtime_context_t*`` (what every C call on the store takes)."""
    return store._context()


def store_handle(store: Store) -> Any:
    """The store's ``wasmtime_store_t*`` (what store-wide settings take)."""
    return store.ptr()


def func_handle(func: Func) -> Any:
    """The ``wasmtime_component_func_t`` struct of ``func`` (pass it by reference)."""
    return func._func


def func_type_is_async(ty: FuncType) -> bool:
    """Whether a component function type is ``async`` (wasmtime-py's FuncType does not say)."""
    return bool(_func_type_async(ty.ptr()))


def linker_instance_handle(target: LinkerInstance) -> Any:
    """The ``wasmtime_component_linker_instance_t*`` of a linker instance."""
    return target.ptr()


def error_new(message: str) -> int:
    """The address of a new C error with ``message`` (its owner frees it)."""
    pointer = _error_new(ctypes.create_string_buffer(message.encode()))
    return ctypes.cast(pointer, ctypes.c_void_p).value or 0
