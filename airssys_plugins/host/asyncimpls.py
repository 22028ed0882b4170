"""``async def`` hook implementations, as pluggy registers them: turned into awaiting ones,
so a synchronous ``pm.hook`` call that reaches one raises :class:`AsyncHookError`.

Every host watches its hooks for them from its start (``watch``), so this is on every
host's path; the awaited calls themselves (:mod:`.aio`: worker threads, the hook
execution guard, asyncio) are imported by the first ``host.ahook`` access.
"""

from __future__ import annotations

import contextvars
import inspect
import types
from collections.abc import Callable, Coroutine, Iterable, Sequence
from typing import TYPE_CHECKING, Any, Final, SupportsIndex, cast, final

import pluggy
from pluggy import HookImpl

from .._errors import PluginError
from .hookexec import watch_hookimpls

if TYPE_CHECKING:
    import asyncio
    import concurrent.futures

    from ..runtime.cancel import CancelScope

__all__ = ["AsyncHookError", "is_async_function", "watch"]

_CO_ASYNC: Final = inspect.CO_COROUTINE | inspect.CO_ASYNC_GENERATOR


class AsyncHookError(PluginError, TypeError):
    """An ``async def`` hook implementation met a synchronous hook call (use
    ``await host.ahook.<hook>(...)``), or an ``async`` wrapper (write it as a plain
    generator)."""


@final
class AsyncCall:
    """One ``ahook`` call, as its worker thread sees it (a context variable)."""

    __slots__ = ("fanout", "loop", "order_independent", "scope")

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        scope: CancelScope,
        order_independent: frozenset[str],
        fanout: concurrent.futures.Executor,
    ):
        self.loop = loop
        self.scope = scope
        self.order_independent = order_independent
        self.fanout = fanout


CALL: Final[contextvars.ContextVar[AsyncCall | None]] = contextvars.ContextVar(
    "airssys_plugins_async_call", default=None
)


def await_on_loop(
    loop: asyncio.AbstractEventLoop,
    scope: CancelScope | None,
    coro: Coroutine[Any, Any, Any],
    *,
    timeout: float | None = None,
    what: str,
    plugin: str | None = None,
) -> Any:
    """Run ``coro`` on ``loop`` and wait for it on this (worker) thread."""
    import asyncio
    import concurrent.futures

    from ..runtime.cancel import PluginCancelled

    future = asyncio.run_coroutine_threadsafe(coro, loop)
    if scope is not None:
        scope.on_cancel(future.cancel)
    try:
        return future.result(timeout=timeout)
    except concurrent.futures.CancelledError:
        raise PluginCancelled(f"{what} was cancelled", plugin=plugin) from None
    except concurrent.futures.TimeoutError:
        future.cancel()
        raise
    finally:
        if scope is not None:
            scope.discard_callback(future.cancel)


# -- async def hookimpls -------------------------------------------------------------------


def _describe(impl: HookImpl, hook: str) -> str:
    return f"hook implementation {impl.plugin_name}.{hook} ({impl.function.__qualname__})"


def _is_async(function: object) -> bool:
    code = getattr(function, "__code__", None)
    if code is not None:
        return bool(code.co_flags & _CO_ASYNC)
    return inspect.iscoroutinefunction(function) or inspect.isasyncgenfunction(function)


def _awaiting(impl: HookImpl) -> Callable[..., Any]:
    """What an ``async def`` implementation becomes: awaited on the loop of the
    ``ahook`` call running it; an error under a synchronous call."""
    function = impl.function
    plugin_name = impl.plugin_name

    def awaited(*args: Any, **kwargs: Any) -> Any:
        call = CALL.get()
        if call is None:
            raise sync_error(plugin_name, getattr(function, "__name__", "?"))
        return await_on_loop(
            call.loop,
            call.scope,
            cast("Coroutine[Any, Any, Any]", function(*args, **kwargs)),
            what=f"async hook implementation of plugin {plugin_name!r}",
            plugin=plugin_name,
        )

    awaited.__wrapped__ = function  # type: ignore[attr-defined]
    awaited.__qualname__ = getattr(function, "__qualname__", "awaited")
    return awaited


def sync_error(plugin: str, hook: str) -> AsyncHookError:
    return AsyncHookError(
        f"hook {hook!r}: plugin {plugin!r} implements it with 'async def', which a "
        f"synchronous pm.hook.{hook}(...) call cannot await; call it with "
        f"'await host.ahook.{hook}(...)', or make the implementation a plain 'def'",
        plugin=plugin,
        hook=hook,
    )


def prepare(hook_name: str, hook_impls: Sequence[HookImpl]) -> bool:
    """Turn ``async def`` implementations into awaiting ones (in place: pluggy keeps the
    same ``HookImpl`` objects); whether any implementation awaits."""
    found = False
    for impl in hook_impls:
        function = impl.function
        code = getattr(function, "__code__", None)
        if code is AWAITED:
            found = True
        elif (code is not None and code.co_flags & _CO_ASYNC) or (
            code is None and _is_async(function)
        ):
            if impl.hookwrapper or impl.wrapper:
                raise AsyncHookError(
                    f"hook {hook_name!r}: {_describe(impl, hook_name)} is an async wrapper; "
                    "wrappers run on the worker thread of the call: write it as a plain "
                    "generator",
                    plugin=impl.plugin_name,
                    hook=hook_name,
                )
            impl.function = _awaiting(impl)  # type: ignore[misc]
            found = True
    return found


def _awaited_code() -> types.CodeType:
    class _Probe:
        plugin_name = "probe"

        @staticmethod
        async def function() -> None:
            pass

    code: types.CodeType = _awaiting(_Probe()).__code__  # type: ignore[arg-type]
    return code


AWAITED: Final = _awaited_code()


@final
class _ConvertingImpls(list[HookImpl]):
    """A hook's list of implementations that turns an ``async def`` one into an awaiting
    one as pluggy inserts it: synchronous calls then raise :class:`AsyncHookError` on
    reaching it, at no cost to any call."""

    __slots__ = ("hook",)

    def __init__(self, hook: str, impls: Iterable[HookImpl]):
        super().__init__(impls)
        self.hook = hook
        prepare(hook, self)

    def insert(self, index: SupportsIndex, impl: HookImpl) -> None:
        prepare(self.hook, [impl])
        super().insert(index, impl)

    def append(self, impl: HookImpl) -> None:
        prepare(self.hook, [impl])
        super().append(impl)


def watch_caller(caller: pluggy.HookCaller) -> None:
    """Give ``caller`` a converting list of implementations (see :func:`watch_hookimpls`)."""
    watch_hookimpls(caller, _ConvertingImpls)


def watch(pm: pluggy.PluginManager) -> None:
    """Make every hook of ``pm`` turn ``async def`` implementations into awaiting ones as
    they are registered (see :func:`watch_caller`)."""
    for caller in list(vars(pm.hook).values()):
        if isinstance(caller, pluggy.HookCaller):
            watch_caller(caller)


def is_async_function(function: object) -> bool:
    """Whether ``function`` is an ``async def`` (a coroutine function)."""
    return _is_async(function)
