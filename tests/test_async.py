"""Awaitable hooks: ``await host.ahook.<name>(...)`` over Python and WebAssembly plugins,
with pluggy's semantics, concurrency, and cancellation that stops the guest."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pluggy
import pytest

from airssys_plugins import (
    AsyncHookError,
    Capabilities,
    HookFailures,
    PluginCancelled,
    PluginHost,
    RestartPolicy,
    current_plugin,
    u32,
)
from airssys_plugins.runtime.cancel import CancelScope, cancel_scope
from airssys_plugins.testing import acall_hook, run_async

from .async_guest import PACKAGE, hookimpl, work_reference

RIGHTS = Capabilities(interfaces=["fetch", "rendezvous"])


class Behaviour:
    """What the host functions do in one test (they are provided before loading)."""

    def __init__(self) -> None:
        self.fetch: Callable[[int], Awaitable[int]] = self._double
        self.rendezvous: Callable[[], int] = lambda: 0
        self.fetch_callers: list[str] = []

    async def _double(self, x: int) -> int:
        await asyncio.sleep(0)
        return 2 * x


@pytest.fixture
def behaviour() -> Behaviour:
    return Behaviour()


@pytest.fixture
def ahost(apm: pluggy.PluginManager, behaviour: Behaviour) -> Iterator[PluginHost]:
    with PluginHost(apm, package=PACKAGE, timeout=60) as host:

        @host.provide
        async def fetch(x: u32) -> u32:
            behaviour.fetch_callers.append(current_plugin().name)
            return await behaviour.fetch(x)

        @host.provide
        def rendezvous() -> u32:
            return behaviour.rendezvous()

        yield host


def load(host: PluginHost, wasm: Path, name: str, **kwargs: Any) -> None:
    host.grants[name] = RIGHTS
    host.load(wasm, name=name, requests=RIGHTS, **kwargs)


class AsyncAdder:
    @hookimpl
    async def add_one(self, x: int) -> int:
        await asyncio.sleep(0.001)
        return x + 100

    @hookimpl(trylast=True)
    async def pick(self, x: int) -> int | None:
        return 7 if x == 7 else None


class PlainAdder:
    @hookimpl(tryfirst=True)
    def add_one(self, x: int) -> int:
        return x + 1000


# --------------------------------------------------------------------------- semantics


def test_ahook_returns_what_pm_hook_returns(
    ahost: PluginHost, apm: pluggy.PluginManager, ademo: Callable[[int], Path]
) -> None:
    """Same results in the same order (tryfirst/trylast too), firstresult honoured."""
    load(ahost, ademo(1), "one")
    load(ahost, ademo(2), "two")
    apm.register(PlainAdder(), name="plain")
    expected = apm.hook.add_one(x=1)
    expected_pick = apm.hook.pick(x=2)
    apm.register(AsyncAdder(), name="async")

    async def main() -> tuple[Any, ...]:
        return (
            await ahost.ahook.add_one(x=1),
            await ahost.ahook.pick(x=2),
            await ahost.ahook.pick(x=7),
            await ahost.ahook.pick(x=9),
        )

    results, pick2, pick7, pick9 = asyncio.run(main())
    assert expected == [1001, 3, 2]
    assert results == [1001, 101, 3, 2]  # the async plugin registered last: called first
    assert (expected_pick, pick2, pick7, pick9) == (20, 20, 7, None)


def test_sync_call_refuses_async_hookimpl(
    ahost: PluginHost, apm: pluggy.PluginManager, ademo: Callable[[int], Path]
) -> None:
    """pm.hook meeting an async def impl raises AsyncHookError before anything runs."""
    calls: list[int] = []

    class Recorder:
        @hookimpl(tryfirst=True)
        def add_one(self, x: int) -> int:
            calls.append(x)
            return x

    apm.register(Recorder(), name="recorder")
    apm.register(AsyncAdder(), name="async")
    with pytest.raises(AsyncHookError, match=r"plugin 'async' implements it with 'async def'"):
        apm.hook.add_one(x=1)
    assert calls == [1]  # pluggy reached it after the tryfirst plugin
    assert isinstance(AsyncHookError("x"), TypeError)
    with pytest.raises(AsyncHookError, match=r"await host\.ahook\.pick"):
        apm.hook.pick(x=7)  # firstresult hooks too
    # once the host has awaited a hook, sync calls are refused before anything runs
    assert asyncio.run(ahost.ahook.get_setup()) == []
    with pytest.raises(AsyncHookError):
        apm.hook.add_one(x=2)
    assert calls == [1]


def test_async_hookimpl_runs_on_the_loop_plain_ones_off_it(
    ahost: PluginHost, apm: pluggy.PluginManager
) -> None:
    """async def impls run on the event loop's thread; plain impls on a worker thread."""
    seen: dict[str, int] = {}

    class Where:
        @hookimpl
        async def add_one(self, x: int) -> int:
            seen["async"] = threading.get_ident()
            return 1

        @hookimpl
        def get_setup(self) -> int:
            seen["plain"] = threading.get_ident()
            return 2

    apm.register(Where(), name="where")

    async def main() -> None:
        assert await ahost.ahook.add_one(x=0) == [1]
        assert await ahost.ahook.get_setup() == [2]

    asyncio.run(main())
    assert seen["async"] == threading.get_ident()
    assert seen["plain"] != threading.get_ident()


def test_wrappers_specname_monitoring_and_historic(
    ahost: PluginHost, apm: pluggy.PluginManager, ademo: Callable[[int], Path]
) -> None:
    """New and old-style wrappers, specname, hook-call monitoring and historic calls
    behave as under pm.hook."""
    events: list[str] = []

    class Wrappers:
        @hookimpl(wrapper=True)
        def add_one(self, x: int) -> Any:
            events.append("new-before")
            result = yield
            return [r * 2 for r in result]

        @hookimpl(hookwrapper=True, specname="add_one")
        def old_style(self, x: int) -> Any:
            outcome = yield
            events.append(f"old-saw-{outcome.get_result()}")

        @hookimpl(specname="add_one")
        async def aliased(self, x: int) -> int:
            return x + 50

    load(ahost, ademo(3), "three")
    apm.register(Wrappers(), name="wrappers")
    undo = apm.add_hookcall_monitoring(
        lambda name, impls, kwargs: events.append(f"before-{name}-{len(impls)}"),
        lambda outcome, name, impls, kwargs: events.append(f"after-{name}"),
    )
    remembered: list[Any] = []

    async def main() -> Any:
        await ahost.ahook.setup.call_historic(kwargs={"x": 41}, result_callback=remembered.append)
        return await ahost.ahook.add_one(x=1)

    try:
        assert asyncio.run(main()) == [102, 8]
    finally:
        undo()
    assert events == [
        "before-setup-1",
        "after-setup",
        "before-add_one-4",
        "new-before",
        "old-saw-[102, 8]",  # registered before the new-style one: outside it
        "after-add_one",
    ]
    load(ahost, ademo(4), "four")  # historic replay at registration
    assert apm.hook.get_setup() == [41, 41]
    assert remembered == []  # setup returns nothing


def test_async_wrapper_is_refused(apm: pluggy.PluginManager) -> None:
    """An async def wrapper is refused at registration (pluggy wants a generator)."""

    class AsyncWrapper:
        @hookimpl(wrapper=True)
        async def add_one(self, x: int) -> Any:
            return None

    with pytest.raises(pluggy.PluginValidationError, match="generator function"):
        apm.register(AsyncWrapper(), name="awrap")


def test_failure_policies_apply_to_awaited_calls(
    ahost: PluginHost,
    apm: pluggy.PluginManager,
    ademo: Callable[[int], Path],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """skip drops a failing async impl (logged), collect raises HookFailures naming it."""

    class Broken:
        @hookimpl
        async def add_one(self, x: int) -> int:
            raise ZeroDivisionError("async plugin fails")

    load(ahost, ademo(1), "one")
    apm.register(Broken(), name="broken")
    ahost.set_failure_policy("add_one", "skip")
    with caplog.at_level(logging.WARNING, "airssys_plugins"):
        assert asyncio.run(ahost.ahook.add_one(x=1)) == [2]
    assert "plugin 'broken' failed and was skipped" in caplog.text
    ahost.set_failure_policy("add_one", "collect")
    with pytest.raises(HookFailures) as info:
        asyncio.run(ahost.ahook.add_one(x=1))
    assert [getattr(e, "plugin", None) for e in info.value.exceptions] == ["broken"]
    ahost.set_failure_policy("add_one", "raise")
    with pytest.raises(ZeroDivisionError):
        asyncio.run(ahost.ahook.add_one(x=1))


def test_unknown_hook_no_loop_and_closed_host(ahost: PluginHost) -> None:
    """An unknown hook is an AttributeError listing the hooks; ahook needs a running loop
    and an open host."""
    with pytest.raises(AttributeError, match=r"no hook named 'nope'.*add_one"):
        _ = ahost.ahook.nope
    coro = ahost.ahook.add_one(x=1)
    with pytest.raises(RuntimeError, match="running asyncio event loop"):
        coro.send(None)
    coro.close()
    ahost.close()
    with pytest.raises(RuntimeError, match="the host is closed"):
        asyncio.run(ahost.ahook.add_one(x=1))


# --------------------------------------------------------------------------- concurrency


def test_loop_keeps_running_while_a_guest_works(
    ahost: PluginHost, ademo: Callable[[int], Path]
) -> None:
    """A long WASM call does not block the event loop: a ticker advances meanwhile."""
    load(ahost, ademo(1), "one")
    n = 30_000_000

    async def main() -> tuple[Any, int]:
        ticks = 0
        call = asyncio.ensure_future(ahost.ahook.work(n=n))
        while not call.done():
            ticks += 1
            await asyncio.sleep(0.001)
        return call.result(), ticks

    result, ticks = asyncio.run(main())
    assert result == [work_reference(n)]
    assert ticks > 1


def test_different_plugins_and_pool_instances_run_in_parallel(
    ahost: PluginHost, behaviour: Behaviour, ademo: Callable[[int], Path]
) -> None:
    """Two plugins meet at a barrier inside a host call: possible only in parallel; so do
    two calls to one plugin with a pool of two."""
    barrier = threading.Barrier(2, timeout=20)
    behaviour.rendezvous = lambda: barrier.wait()
    load(ahost, ademo(1), "one")
    load(ahost, ademo(2), "two", pool_size=2)
    one = ahost.pm.subset_hook_caller("meet", remove_plugins=[ahost.plugins["two"]])
    assert one.get_hookimpls()[0].plugin_name == "one"

    async def main() -> list[Any]:
        # the hook calls both plugins; order_independent runs them at once
        ahost.ahook.order_independent("meet")
        both = await ahost.ahook.meet()
        ahost.ahook.order_independent("meet", enabled=False)
        return [both]

    assert asyncio.run(main()) == [[2, 1]]  # pluggy's order, though run concurrently

    # the pool: two concurrent calls into plugin "two" alone
    ahost.unload("one")

    async def pooled() -> list[Any]:
        return list(await asyncio.gather(ahost.ahook.meet(), ahost.ahook.meet()))

    assert asyncio.run(pooled()) == [[2], [2]]


def test_one_instance_is_entered_by_one_call_at_a_time(
    ahost: PluginHost, behaviour: Behaviour, ademo: Callable[[int], Path]
) -> None:
    """Concurrent awaited calls into a single-instance plugin are serialised."""
    inside = 0
    most = 0
    lock = threading.Lock()

    def rendezvous() -> int:
        nonlocal inside, most
        with lock:
            inside += 1
            most = max(most, inside)
        time.sleep(0.01)
        with lock:
            inside -= 1
        return 0

    behaviour.rendezvous = rendezvous
    load(ahost, ademo(5), "solo")

    async def main() -> list[Any]:
        return list(await asyncio.gather(*(ahost.ahook.meet() for _ in range(6))))

    assert asyncio.run(main()) == [[5]] * 6
    assert most == 1


def test_order_independent_is_refused_for_firstresult(ahost: PluginHost) -> None:
    """pluggy stops at a firstresult hook's first answer: it cannot run concurrently."""
    with pytest.raises(ValueError, match="'pick' is firstresult"):
        ahost.ahook.order_independent("pick")
    assert ahost.ahook.order_independent_hooks == frozenset()


# --------------------------------------------------------------------------- cancellation


def test_cancelling_stops_the_guest_and_the_next_call_works(
    ahost: PluginHost, ademo: Callable[[int], Path]
) -> None:
    """asyncio.timeout on an endless guest stops it long before its 60 s deadline; the
    instance is replaced, no failure is counted, the next call answers."""
    load(ahost, ademo(1), "looper")
    instance = ahost.plugins["looper"].instance
    generation = instance.generation

    async def main() -> float:
        start = time.monotonic()
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.1):
                await ahost.ahook.spin()
        stopped = time.monotonic() - start
        assert await ahost.ahook.add_one(x=1) == [2]
        return stopped

    assert asyncio.run(main()) < 10
    assert instance.generation == generation + 1  # discarded, then a fresh instance
    status = ahost.status("looper")
    assert (status.state, status.consecutive_failures) == ("running", 0)


def test_task_cancel_and_wait_for_stop_the_guest(
    ahost: PluginHost, ademo: Callable[[int], Path]
) -> None:
    """task.cancel() and asyncio.wait_for stop the guest as asyncio.timeout does."""
    load(ahost, ademo(1), "looper")

    async def main() -> None:
        task = asyncio.ensure_future(ahost.ahook.spin())
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(ahost.ahook.spin(), 0.05)
        assert await ahost.ahook.add_one(x=1) == [2]

    asyncio.run(main())
    assert ahost.plugins["looper"].instance.generation == 3


def test_cancel_scope_stops_a_synchronous_call_from_another_thread(
    ahost: PluginHost, apm: pluggy.PluginManager, ademo: Callable[[int], Path]
) -> None:
    """The runtime mechanism alone: a call in a CancelScope raises PluginCancelled once
    another thread cancels it (and PluginCancelled is no Exception policies swallow)."""
    load(ahost, ademo(1), "looper")
    scope = CancelScope()
    caught: list[BaseException] = []

    def run() -> None:
        with cancel_scope(scope):
            try:
                apm.hook.spin()
            except BaseException as exc:
                caught.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    time.sleep(0.05)
    ahost.plugins["looper"].instance.interrupt()
    thread.join(timeout=10)
    assert not thread.is_alive()
    (exc,) = caught
    assert isinstance(exc, PluginCancelled)
    assert isinstance(exc, asyncio.CancelledError)
    assert (exc.plugin, exc.hook) == ("looper", "spin")
    assert apm.hook.add_one(x=1) == [2]
    with cancel_scope(scope), pytest.raises(PluginCancelled, match="cancelled before it ran"):
        apm.hook.add_one(x=1)


def test_timeouts_still_apply_inside_awaited_calls(
    apm: pluggy.PluginManager, ademo: Callable[[int], Path]
) -> None:
    """A plugin's own timeout ends an awaited call as PluginTimeout, as a sync call."""
    from airssys_plugins import PluginTimeout

    no_backoff = RestartPolicy(backoff_base=0.0)
    with PluginHost(apm, package=PACKAGE, timeout=0.1, restart=no_backoff) as host:

        @host.provide
        def fetch(x: u32) -> u32:
            return x

        @host.provide
        def rendezvous() -> u32:
            return 0

        load(host, ademo(1), "looper")
        with pytest.raises(PluginTimeout, match=r"timed out in hook 'spin' after 0\.1 s"):
            asyncio.run(host.ahook.spin())
        with pytest.raises(PluginTimeout, match=r"timed out in hook 'spin' after 0\.1 s"):
            apm.hook.spin()  # the store now has the deadline callback: same error
        assert asyncio.run(host.ahook.add_one(x=1)) == [2]


def test_cancel_abandons_a_blocked_host_function_safely(
    ahost: PluginHost, behaviour: Behaviour, ademo: Callable[[int], Path]
) -> None:
    """A guest blocked in a synchronous host call: the await returns after the grace
    period; the guest stops once the host call returns, and the plugin serves again."""
    release = threading.Event()
    behaviour.rendezvous = lambda: release.wait(20) and 0
    load(ahost, ademo(1), "blocked")

    async def main() -> None:
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.05):
                await ahost.ahook.meet()
        release.set()
        assert await ahost.ahook.add_one(x=1) == [2]

    asyncio.run(main())


def test_cancel_cancels_an_awaited_async_host_function(
    ahost: PluginHost, behaviour: Behaviour, ademo: Callable[[int], Path]
) -> None:
    """A guest waiting for an async host function: cancelling cancels that coroutine."""
    cancelled = threading.Event()

    async def forever(x: int) -> int:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return 0  # pragma: no cover

    load(ahost, ademo(1), "waiter")

    async def main() -> None:
        # a first call first: its one-off work (binding the hook, a busy machine) must
        # not use up the timeout before the guest is waiting in the host function
        assert await ahost.ahook.ask(x=1) == [3]
        behaviour.fetch = forever
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.5):
                await ahost.ahook.ask(x=1)
        assert cancelled.is_set()
        behaviour.fetch = behaviour._double
        assert await ahost.ahook.ask(x=4) == [9]

    asyncio.run(main())


def test_cancel_stops_an_awaited_python_impl_and_skips_the_rest(
    ahost: PluginHost, apm: pluggy.PluginManager
) -> None:
    """Cancelling cancels the async impl being awaited; later impls do not run."""
    ran: list[str] = []

    class Slow:
        @hookimpl
        async def add_one(self, x: int) -> int:
            try:
                await asyncio.sleep(30)
            except asyncio.CancelledError:
                ran.append("slow cancelled")
                raise
            return 0  # pragma: no cover

    class Later:
        @hookimpl
        def add_one(self, x: int) -> int:
            ran.append("later")
            return 1

    apm.register(Later(), name="later")
    apm.register(Slow(), name="slow")  # registered last: called first

    async def main() -> None:
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.05):
                await ahost.ahook.add_one(x=1)

    asyncio.run(main())
    assert ran == ["slow cancelled"]


# --------------------------------------------------------------------------- host functions


def test_async_host_function_runs_on_the_callers_loop(
    ahost: PluginHost, behaviour: Behaviour, ademo: Callable[[int], Path]
) -> None:
    """An async def host function runs on the loop of the awaited call, knows its plugin,
    and also works (on a private loop) under a synchronous pm.hook call."""
    loops: list[asyncio.AbstractEventLoop] = []

    async def fetch(x: int) -> int:
        loops.append(asyncio.get_running_loop())
        await asyncio.sleep(0)
        return x + 1

    behaviour.fetch = fetch
    load(ahost, ademo(10), "asker")

    async def main() -> asyncio.AbstractEventLoop:
        assert await ahost.ahook.ask(x=1) == [12]
        return asyncio.get_running_loop()

    loop = asyncio.run(main())
    assert loops == [loop]
    assert behaviour.fetch_callers == ["asker"]
    assert ahost.pm.hook.ask(x=2) == [13]
    assert loops[1] is not loop


# --------------------------------------------------------------------------- testing helpers


def test_testing_helpers(ahost: PluginHost, ademo: Callable[[int], Path]) -> None:
    """run_async runs a coroutine under a deadline; acall_hook awaits one plugin's impl."""
    load(ahost, ademo(3), "three")
    load(ahost, ademo(4), "four")
    assert run_async(acall_hook(ahost.plugins["three"], "add_one", x=1)) == 4
    with pytest.raises(TimeoutError, match=r"did not finish within 0\.05 s"):
        run_async(acall_hook(ahost.plugins["three"], "spin"), timeout=0.05)
    assert run_async(ahost.ahook.add_one(x=1)) == [5, 4]


# --------------------------------------------------------------------------- the sample


def test_asyncrouter_sample(capsys: pytest.CaptureFixture[str]) -> None:
    """The asyncrouter sample routes the small events over HTTP and times out the big one,
    whose slow guest is stopped while the others are served."""
    import json

    from sample_apps.asyncrouter.app import main

    assert main(["--json"]) == 0
    answers = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(a["id"], a["http"], a["status"]) for a in answers] == [
        ("e1", 200, "routed"),
        ("e2", 200, "routed"),
        ("e3", 504, "timeout"),
        ("e4", 200, "routed"),
        ("e5", 200, "routed"),
    ]
    assert {a["destination"] for a in answers if a["status"] == "routed"} <= {
        "queue",
        "pager",
        "log",
    }


# --------------------------------------------------------------------------- anyio


def test_anyio_on_asyncio_backend(ahost: PluginHost, ademo: Callable[[int], Path]) -> None:
    """Under anyio's asyncio backend ahook works, and anyio's fail_after (a cancel scope)
    stops the guest like asyncio.timeout."""
    import anyio  # in the dev extra: a missing one fails here, loudly

    load(ahost, ademo(1), "looper")

    async def main() -> list[Any]:
        with pytest.raises(TimeoutError):
            with anyio.fail_after(0.05):
                await ahost.ahook.spin()
        results: list[Any] = [await ahost.ahook.add_one(x=1)]
        return results

    assert anyio.run(main, backend="asyncio") == [[2]]
    assert ahost.plugins["looper"].instance.generation == 2
