"""Per-call isolation (``load(isolation="per-call")``): every call on a fresh instance.

The guests keep state where a guest can: a global, linear memory, a Python module global.
Under per-call isolation no call sees what an earlier call left; under the default
(``"shared"``) the same guests count up, so each test also shows what it rules out.
"""

from __future__ import annotations

import concurrent.futures
import shutil
import threading
from collections.abc import Callable
from pathlib import Path

import pluggy
import pytest

from airssys_plugins import (
    Limits,
    PluginHost,
    PluginLimitExceeded,
    PluginLoadError,
    PluginTimeout,
    PluginTrap,
    u32,
)
from airssys_plugins.authoring.build import build_guest
from airssys_plugins.runtime import PluginInstance
from airssys_plugins.testing import run_async

Demo = Callable[..., Path]


def _export(f: str) -> str:
    return f'"demo:hooks/{f}@1.0.0#{f}"'


#: add-one(x): bump the global counter and return it (x is ignored).
COUNTING = {
    "add-one": f"""(func (export {_export("add-one")}) (param i32) (result i32)
    (global.set $g (i32.add (global.get $g) (i32.const 1)))
    (global.get $g))""",
}
#: pick(x): return what the previous call stored in linear memory (none: 0), then store x.
MEMORY = {
    "pick": f"""(func (export {_export("pick")}) (param $x i32) (result i32)
    (i32.store8 (i32.const 256) (i32.const 1))
    (i32.store (i32.const 260) (i32.load (i32.const 512)))
    (i32.store (i32.const 512) (local.get $x))
    (i32.const 256))""",
}


@pytest.fixture
def counting(demo: Demo) -> Path:
    """The demo guest whose add_one counts its calls in a global; get_setup reads the
    global that the historic setup writes."""
    return demo(
        k=1,
        funcs=["add-one", "pick", "setup", "get-setup", "fail", "spin"],
        core_overrides={**COUNTING, **MEMORY},
    )


@pytest.fixture
def isolated(host: PluginHost, counting: Path) -> PluginHost:
    host.load(counting, name="counter", isolation="per-call")
    return host


def test_a_counter_in_a_global_is_1_on_every_call(
    isolated: PluginHost, pm: pluggy.PluginManager
) -> None:
    """Each call starts from the guest's initial state: a call counter reads 1 every time."""
    assert [pm.hook.add_one(x=0) for _ in range(20)] == [[1]] * 20


def test_shared_instances_keep_state_between_calls(
    host: PluginHost, pm: pluggy.PluginManager, counting: Path
) -> None:
    """The same guest under the default isolation counts up (what per-call rules out)."""
    plugin = host.load(counting, name="counter")
    assert plugin.isolation == "shared"
    assert plugin.fresh is None
    assert [pm.hook.add_one(x=0) for _ in range(3)] == [[1], [2], [3]]


def test_memory_written_by_one_call_is_not_seen_by_the_next(
    isolated: PluginHost, pm: pluggy.PluginManager
) -> None:
    """pick returns what the previous call stored in linear memory: always 0 here."""
    assert [pm.hook.pick(x=n) for n in (5, 6, 7)] == [0, 0, 0]


def test_memory_is_seen_by_the_next_call_when_shared(
    host: PluginHost, pm: pluggy.PluginManager, counting: Path
) -> None:
    """Control: with a shared instance the next call reads what the previous one stored."""
    host.load(counting, name="counter")
    assert [pm.hook.pick(x=n) for n in (5, 6, 7)] == [0, 5, 6]


def test_spares_are_refilled_under_a_stream_of_calls(
    isolated: PluginHost, pm: pluggy.PluginManager
) -> None:
    """A stream of calls: each used instance is replaced by the refill thread, every call
    gets a fresh one, and the plugin keeps pool_size + 1 slots."""
    plugin = isolated.plugins["counter"]
    fresh = plugin.fresh
    assert fresh is not None
    assert (plugin.pool_size, len(plugin.instances)) == (1, 2)
    results = [pm.hook.add_one(x=0) for _ in range(200)]
    assert results == [[1]] * 200
    assert fresh.wait_ready()
    # one new instance per call, none reused: made by the refill thread, or by a call
    # that found none ready
    assert fresh.refills + fresh.inline_refills == 200
    assert fresh.refills > 0
    assert fresh.ready() == 2
    generations = sum(slot.generation for slot in plugin.instances)
    assert generations == 200 + 2  # the two loaded at start, one more per call
    assert fresh.failed_refills == 0


def test_a_trap_does_not_affect_the_next_call(
    isolated: PluginHost, pm: pluggy.PluginManager
) -> None:
    """A call that traps fails alone; the next call runs on a fresh instance."""
    with pytest.raises(PluginTrap) as info:
        pm.hook.fail(x=1)
    assert info.value.plugin == "counter"
    assert pm.hook.add_one(x=0) == [1]
    assert isolated.status("counter").consecutive_failures == 0  # reset by the success
    assert isolated.status("counter").restarts == 1


def test_a_timeout_does_not_affect_the_next_call(
    host: PluginHost, pm: pluggy.PluginManager, counting: Path
) -> None:
    """An endless loop is stopped by the plugin's deadline; the next call answers."""
    host.load(counting, name="counter", isolation="per-call", timeout=0.05)
    with pytest.raises(PluginTimeout):
        pm.hook.spin()
    assert [pm.hook.add_one(x=0) for _ in range(3)] == [[1]] * 3


def test_fuel_is_given_to_every_fresh_instance(
    host: PluginHost, pm: pluggy.PluginManager, counting: Path
) -> None:
    """Each call gets the plugin's full fuel; running out fails that call only."""
    host.load(
        counting, name="counter", isolation="per-call", limits=Limits(fuel=100_000, timeout=None)
    )
    assert [pm.hook.add_one(x=0) for _ in range(5)] == [[1]] * 5
    with pytest.raises(PluginLimitExceeded, match="fuel"):
        pm.hook.spin()
    assert pm.hook.add_one(x=0) == [1]


def test_historic_calls_are_replayed_into_every_fresh_instance(
    isolated: PluginHost, pm: pluggy.PluginManager
) -> None:
    """A historic call is the host's configuration: every later instance starts with it,
    including the spare prepared before it was made."""
    plugin = isolated.plugins["counter"]
    fresh = plugin.fresh
    assert fresh is not None
    assert pm.hook.get_setup() == [0]
    assert fresh.wait_ready()
    pm.hook.setup.call_historic(kwargs={"x": 7})
    assert [pm.hook.get_setup() for _ in range(5)] == [[7]] * 5
    assert fresh.top_ups >= 1  # the spare made before setup(7) got it when taken
    pm.hook.setup.call_historic(kwargs={"x": 9})
    assert fresh.wait_ready()
    assert [pm.hook.get_setup() for _ in range(3)] == [[9]] * 3
    # add_one counts in the global setup wrote: from 9, every time
    assert [pm.hook.add_one(x=0) for _ in range(3)] == [[10]] * 3


def test_historic_calls_reach_a_plugin_loaded_later(
    host: PluginHost, pm: pluggy.PluginManager, counting: Path
) -> None:
    """pluggy's replay at registration reaches the fresh instances of a new plugin."""
    pm.hook.setup.call_historic(kwargs={"x": 4})
    host.load(counting, name="counter", isolation="per-call")
    assert [pm.hook.get_setup() for _ in range(3)] == [[4]] * 3


def test_a_pool_serves_concurrent_calls_on_fresh_instances(
    host: PluginHost, pm: pluggy.PluginManager, counting: Path
) -> None:
    """pool_size=2: calls from several threads at once, each on its own fresh instance."""
    plugin = host.load(counting, name="counter", isolation="per-call", pool_size=2)
    assert (plugin.pool_size, len(plugin.instances)) == (2, 3)
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: pm.hook.add_one(x=0), range(100)))
    assert results == [[1]] * 100
    assert plugin.fresh is not None
    assert plugin.fresh.wait_ready()
    assert plugin.fresh.refills + plugin.fresh.inline_refills == 100


def test_awaited_calls_are_isolated(isolated: PluginHost) -> None:
    """host.ahook runs the call on a worker thread, on a fresh instance as well."""

    async def calls() -> list[object]:
        return [await isolated.ahook.add_one(x=0) for _ in range(5)]

    assert run_async(calls()) == [[1]] * 5


def test_reload_keeps_per_call_isolation(
    host: PluginHost, pm: pluggy.PluginManager, counting: Path, tmp_path: Path
) -> None:
    """A reload carries the isolation and the pool size over, unless given."""
    wasm = tmp_path / "counter.wasm"
    shutil.copy(counting, wasm)
    old = host.load(wasm, isolation="per-call", pool_size=2)
    assert pm.hook.add_one(x=0) == [1]  # starts the old version's refill thread
    new = host.reload("counter")
    assert (new.isolation, new.pool_size, len(new.instances)) == ("per-call", 2, 3)
    assert [pm.hook.add_one(x=0) for _ in range(3)] == [[1]] * 3
    assert old.fresh is not None
    assert old.fresh._thread is not None
    assert not old.fresh._thread.is_alive()  # the old version's refill thread ended


def test_unload_stops_the_refill_thread(isolated: PluginHost, pm: pluggy.PluginManager) -> None:
    """Unloading ends the refill thread and closes every instance."""
    plugin = isolated.plugins["counter"]
    for _ in range(10):
        pm.hook.add_one(x=0)
    fresh = plugin.fresh
    assert fresh is not None
    assert fresh._thread is not None
    isolated.unload("counter")
    assert not fresh._thread.is_alive()
    assert all(slot._store is None for slot in plugin.instances)


def test_unload_while_calls_stream_in(
    host: PluginHost, pm: pluggy.PluginManager, counting: Path
) -> None:
    """Unloading a plugin while another thread calls it: the calls stop reaching it, no
    refill outlives the unload, and every instance is closed."""
    plugin = host.load(counting, name="counter", isolation="per-call")
    stop = threading.Event()
    answers: list[object] = []

    def stream() -> None:
        while not stop.is_set():
            answers.append(pm.hook.add_one(x=0))

    thread = threading.Thread(target=stream)
    thread.start()
    while len(answers) < 50:
        threading.Event().wait(0.001)
    host.unload("counter")
    stop.set()
    thread.join()
    assert all(a in ([1], []) for a in answers)
    assert plugin.fresh is not None
    assert plugin.fresh._thread is not None
    assert not plugin.fresh._thread.is_alive()
    assert all(slot._store is None for slot in plugin.instances)


def test_isolation_from_a_plugin_directory_and_load_plugins(
    host: PluginHost, pm: pluggy.PluginManager, counting: Path, tmp_path: Path
) -> None:
    """load(directory, isolation=...) and load_plugins(..., isolation=...) apply it."""
    for name in ("a", "b"):
        plugin_dir = tmp_path / name
        plugin_dir.mkdir()
        shutil.copy(counting, plugin_dir / "plugin.wasm")
        (plugin_dir / "plugin.toml").write_text(
            f'name = "{name}"\ncomponent = "plugin.wasm"\n', encoding="utf-8"
        )
    a = host.load(tmp_path / "a", isolation="per-call")
    report = host.load_plugins([tmp_path / "b"], isolation="per-call")
    assert a.isolation == report.loaded["b"].isolation == "per-call"
    assert [pm.hook.add_one(x=0) for _ in range(3)] == [[1, 1]] * 3


def test_an_unknown_isolation_is_refused(host: PluginHost, counting: Path) -> None:
    """A misspelt isolation mode is refused before anything loads, naming the choices."""
    with pytest.raises(ValueError, match=r"'per-call'.*not 'per_call'"):
        host.load(counting, name="counter", isolation="per_call")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="not 'fresh'"):
        host.load_plugins([], isolation="fresh")  # type: ignore[arg-type]
    assert "counter" not in host.plugins


# --------------------------------------------------------------------------- Python guest

PY_WIT = """package pcount:hooks@1.0.0;
interface bump { bump: func() -> u32; }
interface remember { remember: func(x: string); }
interface recall { recall: func() -> string; }
world guest { export bump; export remember; export recall; }
"""

PY_APP = '''"""Keeps state in module globals: a call counter and a list of remembered strings."""

from wit_world import exports

COUNT = 0
SEEN: list[str] = []


class Bump(exports.Bump):
    def bump(self) -> int:
        global COUNT
        COUNT += 1
        return COUNT


class Remember(exports.Remember):
    def remember(self, x: str) -> None:
        SEEN.append(x)


class Recall(exports.Recall):
    def recall(self) -> str:
        return ",".join(SEEN)
'''

py_hookspec = pluggy.HookspecMarker("pcount")


class CounterHooks:
    @py_hookspec
    def bump(self) -> u32:
        """Count this call; return the count."""

    @py_hookspec
    def remember(self, x: str) -> None:
        """Remember x."""

    @py_hookspec
    def recall(self) -> str:
        """Everything remembered, comma-separated."""


@pytest.fixture(scope="module")
def py_counter(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A componentize-py guest keeping state in module globals (built once, cached)."""
    guest = tmp_path_factory.mktemp("py") / "pcounter"
    (guest / "wit").mkdir(parents=True)
    (guest / "wit" / "pcount.wit").write_text(PY_WIT, encoding="utf-8")
    (guest / "app.py").write_text(PY_APP, encoding="utf-8")
    return build_guest(guest)


def test_a_python_guest_starts_from_its_initial_state_on_every_call(py_counter: Path) -> None:
    """componentize-py: module globals (a counter, a list) never carry over a call."""
    pm = pluggy.PluginManager("pcount")
    pm.add_hookspecs(CounterHooks)
    with PluginHost(pm, package="pcount:hooks@1.0.0") as host:
        plugin = host.load(py_counter, name="pcounter", isolation="per-call")
        assert [pm.hook.bump() for _ in range(5)] == [[1]] * 5
        pm.hook.remember(x="tenant-a secret")
        assert pm.hook.recall() == [""]
        assert plugin.fresh is not None
        assert plugin.fresh.wait_ready(timeout=60)
        assert plugin.fresh.refills + plugin.fresh.inline_refills == 7
        host.unload("pcounter")
        shared = host.load(py_counter, name="shared")  # control: state carries over
        assert [pm.hook.bump() for _ in range(3)] == [[1], [2], [3]]
        assert shared.isolation == "shared"


def test_a_failed_refill_is_retried_by_the_call_that_takes_the_slot(
    isolated: PluginHost, pm: pluggy.PluginManager, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A refill that fails (here: start-up refused once) leaves its slot empty and counted;
    the call that takes the slot instantiates it itself and answers."""
    plugin = isolated.plugins["counter"]
    fresh = plugin.fresh
    assert fresh is not None
    assert pm.hook.add_one(x=0) == [1]
    assert fresh.wait_ready()
    slot = plugin.instances[0]
    real = type(slot).instantiate
    failures = iter([PluginLoadError("plugin 'counter' failed to start: once", plugin="counter")])

    def flaky(self: PluginInstance) -> None:
        starting = self is slot and self._instance is None  # a refill, not a no-op
        error = next(failures, None) if starting else None
        if error is not None:
            raise error
        real(self)

    monkeypatch.setattr(type(slot), "instantiate", flaky)
    for _ in range(4):  # every slot is used and refilled at least once
        assert pm.hook.add_one(x=0) == [1]
    assert fresh.wait_ready()
    assert fresh.failed_refills == 1
    assert [pm.hook.add_one(x=0) for _ in range(4)] == [[1]] * 4
