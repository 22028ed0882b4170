"""Stopping a running guest from another thread: cancel scopes and the epoch callback.

wasmtime lets only the thread inside a Store touch it, so another thread cannot move a
running guest's epoch deadline. Instead, a call made inside a :class:`CancelScope` (a
context variable of the calling thread) runs in *slices*: its Store's deadline is one
epoch tick away, and when it is reached wasmtime calls :func:`_on_deadline` **on the
guest's own thread**. That callback reads the scope: cancelled, the call stops (the
guest traps, its instance is discarded as after a timeout); past the call's own
timeout, it stops as a timeout; otherwise the guest gets one more tick. Cancelling is
therefore a flag write from any thread, and the guest stops within about one tick
(``EPOCH_TICK``, 5 ms) of it. Calls outside a scope keep one deadline for the whole
call and never enter the callback before it.
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Final, Protocol, final

from .._errors import PluginError
from . import capi

__all__ = ["SLICE_TICKS", "CancelScope", "PluginCancelled", "cancel_scope", "current_scope"]

#: Epoch ticks a cancellable call runs before the callback looks at its scope again.
SLICE_TICKS: Final = 1


_CANCELLED_DOC: Final = """A call into a plugin was cancelled (its awaiting task was); the guest
    was stopped and its instance discarded. It is also an :class:`asyncio.CancelledError`; it is no
    :class:`HookCallError`, so supervision does not count it as the plugin's failure.
    ``plugin`` and ``hook`` name the call stopped."""

if TYPE_CHECKING:
    import asyncio

    class PluginCancelled(PluginError, asyncio.CancelledError):
        __doc__ = _CANCELLED_DOC

else:
    # Created on first use (`cancel.PluginCancelled`): its base, asyncio.CancelledError,
    # costs importing asyncio (~20 ms), which a process that never awaits a hook, nor
    # cancels a call, does not pay. One class for every thread (the lock): what one
    # thread raises, another catches.
    _CLASS_LOCK: Final = threading.Lock()

    def __getattr__(name: str) -> Any:
        if name != "PluginCancelled":
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        import asyncio

        with _CLASS_LOCK:
            cls = globals().get("PluginCancelled")
            if cls is None:
                cls = type(
                    "PluginCancelled",
                    (PluginError, asyncio.CancelledError),
                    {"__doc__": _CANCELLED_DOC, "__module__": __name__},
                )
                globals()["PluginCancelled"] = cls
        return cls


@final
class CancelScope:
    """The calls made by one awaited hook call; :meth:`cancel` stops them from any thread.

    A scope cancelled before a call enters the guest stops it before any guest code
    runs; a call running in it stops at its next epoch check.
    """

    __slots__ = ("_callbacks", "_lock", "cancelled")

    def __init__(self) -> None:
        self.cancelled = False
        self._lock = threading.Lock()
        self._callbacks: list[Any] = []

    def cancel(self) -> None:
        """Stop every call of the scope (idempotent, callable from any thread)."""
        with self._lock:
            self.cancelled = True
            callbacks, self._callbacks = self._callbacks, []
        for callback in callbacks:
            callback()

    def on_cancel(self, callback: Any) -> None:
        """Run ``callback()`` on cancellation (at once if cancelled already): e.g. cancel
        a host coroutine a guest is waiting for."""
        with self._lock:
            if not self.cancelled:
                self._callbacks.append(callback)
                return
        callback()

    def discard_callback(self, callback: Any) -> None:
        with self._lock:
            if callback in self._callbacks:
                self._callbacks.remove(callback)


_SCOPE: Final[contextvars.ContextVar[CancelScope | None]] = contextvars.ContextVar(
    "airssys_plugins_cancel_scope", default=None
)
#: The scope of the current thread's (context's) calls, if any (the call path's read).
current_scope: Final = _SCOPE.get


@contextmanager
def cancel_scope(scope: CancelScope | None = None) -> Iterator[CancelScope]:
    """Make the calls into plugins inside the ``with`` block cancellable by ``scope``."""
    scope = scope if scope is not None else CancelScope()
    token = _SCOPE.set(scope)
    try:
        yield scope
    finally:
        _SCOPE.reset(token)


if TYPE_CHECKING:  # (a protocol only the type checker reads: not made at import)

    class DeadlineOwner(Protocol):
        """What the callback asks: ticks to go on for, or ``None`` to stop the guest."""

        def on_deadline(self) -> int | None: ...


# key -> the instance whose Store the callback was installed on (removed by the finalizer
# when wasmtime drops the Store)
_OWNERS: dict[int, DeadlineOwner] = {}
_OWNERS_LOCK: Final = threading.Lock()
_next_key = 0


@capi.DEADLINE_CALLBACK  # type: ignore[untyped-decorator]
def _on_deadline(context: Any, data: Any, delta: Any, kind: Any) -> int:
    # Nothing may escape a ctypes callback (it would read as success).
    try:
        owner = _OWNERS.get(data or 0)
        ticks = None if owner is None else owner.on_deadline()
        if ticks is None:
            return capi.error_new("airssys-plugins: call stopped at its epoch deadline")
        delta[0] = ticks
        kind[0] = 0  # WASMTIME_UPDATE_DEADLINE_CONTINUE
        return 0
    except BaseException:  # pragma: no cover - last line of defence
        return capi.error_new("airssys-plugins: epoch deadline callback failed")


def _forget(data: Any) -> None:
    with _OWNERS_LOCK:
        _OWNERS.pop(data or 0, None)


_finalize: Final = capi.DEADLINE_FINALIZER(_forget)


def install(store: Any, owner: DeadlineOwner) -> None:
    """Let ``owner`` decide, at each deadline of ``store``, whether its guest goes on.
    Called by the thread that holds the store (wasmtime's rule for store settings)."""
    global _next_key
    with _OWNERS_LOCK:
        _next_key += 1
        key = _next_key
        _OWNERS[key] = owner
    capi.epoch_deadline_callback(capi.store_handle(store), _on_deadline, key, _finalize)
