"""Awaitable hook calls: ``await host.ahook.<name>(**kwargs)``.

pluggy calls hook implementations one after the other on the caller's thread, and a
component call blocks that thread until the guest returns. ``ahook`` keeps pluggy's
semantics by running **pluggy's own hook call** (ordering, ``firstresult``, ``historic``,
``tryfirst``/``trylast``, wrappers, ``specname``, blocking, hook-call monitoring and the
host's failure policies) on a worker thread, while the event loop goes on:

* WebAssembly implementations run on that worker thread, on the plugin's instances (its
  pool with ``pool_size > 1``), never on the loop. Calls into one instance stay
  serialised by its lock; calls to different plugins, or to a pooled plugin, proceed in
  parallel (guests release the GIL).
* ``async def`` Python implementations are awaited **on the event loop**, in pluggy's
  order (the worker waits for each); plain ones run on the worker thread.
* Wrappers (``hookwrapper=True`` and ``wrapper=True``) are plain generators and run on
  the worker thread around the others; ``async`` wrappers are refused
  (:class:`AsyncHookError`).
* Hooks marked with :meth:`AsyncHooks.order_independent` run their WebAssembly
  implementations concurrently (one thread each); results keep pluggy's order.

Cancelling the awaiting task (``asyncio.timeout``, ``wait_for``, ``task.cancel()``)
cancels the call's :class:`~airssys_plugins.runtime.cancel.CancelScope`: the running
guest stops at its next epoch check (about 5 ms), its instance is discarded as after a
timeout, an awaited ``async def`` implementation or async host function is cancelled, and
later implementations do not run. The await then re-raises the cancellation, after at
most :data:`CANCEL_GRACE` seconds (a guest blocked in a synchronous host function is left
to finish it on the worker thread; it is stopped when it returns to the guest).

A synchronous ``pm.hook`` call that meets an ``async def`` implementation raises
:class:`AsyncHookError`: each hook's list of implementations turns an ``async def`` one
into an awaiting one as pluggy registers it (free for every call), and from the first
``ahook`` call on, a wrapper of pluggy's hook execution (beside the failure policies')
refuses such a call before any implementation runs and runs order-independent hooks
concurrently; :meth:`AsyncHooks.close` takes it out again.
"""

from __future__ import annotations

import contextvars
import copy
import threading
import types
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final, final

import pluggy
from pluggy import HookImpl

from .._errors import PluginTimeout
from ..runtime.cancel import CancelScope, cancel_scope
from .asyncimpls import (
    AWAITED,
    CALL,
    AsyncCall,
    AsyncHookError,
    await_on_loop,
    is_async_function,
    prepare,
    sync_error,
    watch,
    watch_caller,
)
from .hookexec import unwrap_hookexec, wrap_hookexec
from .interfaces import HostFunction, current_plugin, set_async_plugin
from .plugin import WasmPlugin

if TYPE_CHECKING:
    # asyncio (~20 ms with ssl, socket, subprocess) is imported by the first awaited call:
    # a host that never awaits a hook does not pay for it (nor for concurrent.futures).
    import asyncio
    import concurrent.futures
    from concurrent.futures import ThreadPoolExecutor

    from .hookexec import HookExec

__all__ = [
    "CANCEL_GRACE",
    "AsyncHookCaller",
    "AsyncHookError",
    "AsyncHooks",
    "async_host_function",
    "is_async_function",
]

#: Seconds a cancelled ``ahook`` call waits for its worker to stop before re-raising.
CANCEL_GRACE: Final = 0.25


# -- the hook execution wrapper ------------------------------------------------------------


@final
class _AsyncAwareHookExec:
    """What ``pm._inner_hookexec`` is while a host is open: refuses ``async def``
    implementations in synchronous calls, runs order-independent hooks concurrently in
    ``ahook`` calls."""

    __slots__ = ("active", "inner")

    def __init__(self, inner: HookExec):
        self.inner = inner
        self.active = True

    def __call__(
        self,
        hook_name: str,
        hook_impls: Sequence[HookImpl],
        caller_kwargs: Mapping[str, object],
        firstresult: bool,
    ) -> object:
        if not self.active:
            return self.inner(hook_name, hook_impls, caller_kwargs, firstresult)
        call = CALL.get()
        if prepare(hook_name, hook_impls) and call is None:
            impl = next(i for i in hook_impls if getattr(i.function, "__code__", 0) is AWAITED)
            raise sync_error(impl.plugin_name, hook_name)
        if call is not None and hook_name in call.order_independent and not firstresult:
            hook_impls = _run_concurrently(call, hook_name, hook_impls, caller_kwargs)
        result = self.inner(hook_name, hook_impls, caller_kwargs, firstresult)
        if type(result) is types.CoroutineType or (
            type(result) is list and any(type(r) is types.CoroutineType for r in result)
        ):
            # an async implementation another wrapper hid from prepare (failure policies
            # installed after this host): never hand back an un-awaited coroutine
            for r in result if type(result) is list else [result]:
                if type(r) is types.CoroutineType:
                    r.close()
            raise AsyncHookError(
                f"hook {hook_name!r}: an implementation returned a coroutine; call async "
                f"hook implementations with 'await host.ahook.{hook_name}(...)'",
                hook=hook_name,
            )
        return result


def _run_concurrently(
    call: AsyncCall,
    hook_name: str,
    hook_impls: Sequence[HookImpl],
    caller_kwargs: Mapping[str, object],
) -> list[HookImpl]:
    """Run the WebAssembly implementations at once; pluggy then sees their outcomes in
    its own order (so wrappers, policies and result order are unchanged)."""
    wasm = [
        impl
        for impl in hook_impls
        if isinstance(impl.plugin, WasmPlugin) and not (impl.hookwrapper or impl.wrapper)
    ]
    if len(wasm) < 2:
        return list(hook_impls)
    futures = {}
    for impl in wasm:
        args = [caller_kwargs[name] for name in impl.argnames]
        context = contextvars.copy_context()  # the call's cancel scope goes along
        futures[id(impl)] = call.fanout.submit(context.run, impl.function, *args)
    done: list[HookImpl] = []
    for impl in hook_impls:
        future = futures.get(id(impl))
        if future is None:
            done.append(impl)
            continue
        clone = copy.copy(impl)
        clone.function = _outcome_of(future)  # type: ignore[misc]
        done.append(clone)
    return done


def _outcome_of(future: concurrent.futures.Future[Any]) -> Callable[..., Any]:
    def outcome(*args: Any, **kwargs: Any) -> Any:
        return future.result()

    return outcome


# -- the public face -----------------------------------------------------------------------


@final
class AsyncHookCaller:
    """``host.ahook.<name>``: ``await`` it as you would call ``pm.hook.<name>``."""

    def __init__(self, hooks: AsyncHooks, name: str):
        self._hooks = hooks
        self.name = name

    def __repr__(self) -> str:
        return f"<AsyncHookCaller {self.name!r}>"

    async def __call__(self, **kwargs: Any) -> Any:
        """``pm.hook.<name>(**kwargs)``, awaited: the same results, in the same order."""
        caller = self._hooks._caller(self.name)
        return await self._hooks._run(self.name, lambda: caller(**kwargs))

    async def call_historic(
        self,
        kwargs: Mapping[str, object] | None = None,
        result_callback: Callable[[Any], None] | None = None,
    ) -> None:
        """``pm.hook.<name>.call_historic(...)``, awaited (plugins registered later get
        the call at registration, synchronously: their implementations must be plain)."""
        caller = self._hooks._caller(self.name)
        await self._hooks._run(
            self.name, lambda: caller.call_historic(result_callback, kwargs=kwargs)
        )


@final
class AsyncHooks:
    """Awaitable hook callers of one host (``host.ahook``), with the worker threads that
    run them. ``max_workers`` bounds the ``ahook`` calls running at once (more wait)."""

    def __init__(self, pm: pluggy.PluginManager, *, max_workers: int = 32):
        self._pm = pm
        # The worker threads' executors are made by the first ``ahook`` call (see
        # _executors): concurrent.futures is not imported by a host that never awaits.
        self._max_workers = max_workers
        self._pools: tuple[ThreadPoolExecutor, ThreadPoolExecutor] | None = None
        self._order_independent: frozenset[str] = frozenset()
        self._guard: _AsyncAwareHookExec | None = None
        self._lock = threading.Lock()
        self._closed = False
        self.watch()

    def __getattr__(self, name: str) -> AsyncHookCaller:
        if name.startswith("_"):
            raise AttributeError(name)
        self._caller(name)
        return AsyncHookCaller(self, name)

    def __repr__(self) -> str:
        return f"<AsyncHooks of {self._pm.project_name!r}>"

    @property
    def order_independent_hooks(self) -> frozenset[str]:
        """Hooks whose WebAssembly implementations ``ahook`` runs concurrently."""
        return self._order_independent

    def order_independent(self, *hooks: str, enabled: bool = True) -> None:
        """Mark ``hooks`` order-independent: an ``ahook`` call runs their WebAssembly
        implementations concurrently (results still in pluggy's order). Only for hooks
        whose implementations do not depend on each other's side effects; not for
        ``firstresult`` hooks (pluggy stops at the first answer)."""
        for hook in hooks:
            caller = self._caller(hook)
            if enabled and caller.spec is not None and caller.spec.opts.get("firstresult"):
                raise ValueError(
                    f"hook {hook!r} is firstresult: pluggy stops at the first answer, so "
                    "its implementations cannot run concurrently"
                )
        with self._lock:
            if enabled:
                self._order_independent = self._order_independent | set(hooks)
            else:
                self._order_independent = self._order_independent - set(hooks)

    def _caller(self, name: str) -> Any:
        caller = getattr(self._pm.hook, name, None)
        if caller is None:
            raise AttributeError(
                f"no hook named {name!r} in {self._pm.project_name!r}; known hooks: "
                f"{', '.join(sorted(n for n in vars(self._pm.hook) if not n.startswith('_')))}"
            )
        return caller

    async def _run(self, hook: str, job: Callable[[], Any]) -> Any:
        import asyncio

        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            raise RuntimeError(
                f"host.ahook.{hook}(...) must be awaited in a running asyncio event loop "
                "(asyncio, or anyio on its asyncio backend); trio is not supported"
            ) from None
        if self._closed:
            raise RuntimeError(
                f"host.ahook.{hook}(...): the host is closed; make a new PluginHost to call "
                "hooks again"
            )
        caller = self._caller(hook)
        watch_caller(caller)
        prepare(hook, caller.get_hookimpls())
        if self._guard is None:
            self.install()
        workers, fanout = self._executors()
        scope = CancelScope()
        call = AsyncCall(loop, scope, self._order_independent, fanout)

        def work() -> Any:
            CALL.set(call)
            with cancel_scope(scope):
                return job()

        context = contextvars.copy_context()
        future = loop.run_in_executor(workers, context.run, work)
        try:
            # shielded: a cancelled await must not mark the worker's future done while
            # the worker still runs (it is waited for below)
            return await asyncio.shield(future)
        except asyncio.CancelledError:
            scope.cancel()
            future.add_done_callback(_retrieve)
            # the guest stops within a tick or so: wait for it, briefly, so that a call
            # made right after sees the plugin free again
            await asyncio.wait([future], timeout=CANCEL_GRACE)
            raise

    def _executors(self) -> tuple[ThreadPoolExecutor, ThreadPoolExecutor]:
        """The ``ahook`` calls' worker threads and the order-independent hooks' fan-out."""
        with self._lock:
            if self._pools is None:
                from concurrent.futures import ThreadPoolExecutor

                self._pools = (
                    ThreadPoolExecutor(self._max_workers, thread_name_prefix="airssys-ahook"),
                    ThreadPoolExecutor(
                        self._max_workers, thread_name_prefix="airssys-ahook-fanout"
                    ),
                )
            return self._pools

    def watch(self) -> None:
        """Make every hook of ``pm`` turn ``async def`` implementations into awaiting
        ones as they are registered (see :func:`.asyncimpls.watch`); done by the host."""
        watch(self._pm)

    def install(self) -> None:
        """Wrap ``pm``'s hook execution (see the module docs): done at the first
        ``ahook`` call, so that a host that never awaits keeps pluggy's call path."""
        with self._lock:
            if self._guard is None:
                self.watch()
                self._guard = wrap_hookexec(self._pm, _AsyncAwareHookExec)

    def close(self) -> None:
        """Give ``pm`` its hook execution back and stop the worker threads."""
        self._closed = True
        guard, self._guard = self._guard, None
        if guard is not None:
            unwrap_hookexec(self._pm, guard)
        with self._lock:
            pools = self._pools
        for pool in pools or ():
            pool.shutdown(wait=False, cancel_futures=True)


def _retrieve(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()  # seen: no "exception was never retrieved" at collection


# -- async def host functions --------------------------------------------------------------

_fallback_loop: asyncio.AbstractEventLoop | None = None
_fallback_lock: Final = threading.Lock()


def _private_loop() -> asyncio.AbstractEventLoop:
    """A loop on a daemon thread, for async host functions called outside ``ahook``."""
    import asyncio

    global _fallback_loop
    with _fallback_lock:
        if _fallback_loop is None:
            loop = asyncio.new_event_loop()
            threading.Thread(target=loop.run_forever, name="airssys-host-loop", daemon=True).start()
            _fallback_loop = loop
        return _fallback_loop


def async_host_function(function: HostFunction) -> HostFunction:
    """``function`` (an ``async def``) as a host function guests call synchronously: each
    call runs the coroutine on the loop of the ``ahook`` call the guest runs in (a private
    loop outside one) and blocks only that guest, up to its ``host_call_timeout``."""
    coroutine_function = function.func

    def run(*args: Any) -> Any:
        import concurrent.futures

        context = current_plugin()
        call = CALL.get()
        loop = call.loop if call is not None else _private_loop()
        timeout = context.limits.host_call_timeout
        what = f"host call {function.interface}#{function.name}"

        async def as_plugin() -> Any:
            set_async_plugin(context)  # this task's current_plugin()
            return await coroutine_function(*args)

        try:
            return await_on_loop(
                loop,
                None if call is None else call.scope,
                as_plugin(),
                timeout=timeout,
                what=what,
                plugin=context.name,
            )
        except concurrent.futures.TimeoutError:
            exc = PluginTimeout(
                f"plugin {context.name!r}: {what} did not finish within {timeout} s",
                plugin=context.name,
            )
            exc.reason = "host call timeout"
            raise exc from None

    run.__name__ = getattr(coroutine_function, "__name__", function.name)
    return HostFunction(function.interface, function.name, run, function.signature, False)
