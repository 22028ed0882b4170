"""Reliability: supervision, failure policies, lifecycle, concurrency, pools, hot reload."""

from __future__ import annotations

import random
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pluggy
import pytest

from airssys_plugins import (
    Capabilities,
    HookFailures,
    HookOptions,
    PluginHost,
    PluginLoadError,
    PluginTrap,
    PluginUnavailable,
    ReloadError,
    RestartPolicy,
    UpgradeHeld,
    u32,
)
from airssys_plugins.authoring.build import build_guest

from .demo import PACKAGE, hookimpl

Demo = Callable[..., Path]


class PyAdder:
    @hookimpl
    def add_one(self, x: int) -> int:
        return x + 100


class PyBroken:
    @hookimpl
    def add_one(self, x: int) -> int:
        raise ZeroDivisionError("python plugin fails")


# --------------------------------------------------------------------------- supervision


def test_restart_backoff_and_circuit(pm: pluggy.PluginManager, demo: Demo) -> None:
    """One trap restarts at once; a crash loop backs off; N failures open the circuit."""
    policy = RestartPolicy(max_failures=3, window=60, cooldown=None, backoff_base=0.2)
    with PluginHost(pm, package=PACKAGE, restart=policy) as host:
        host.load(demo(k=1, funcs=["add-one", "fail"]), name="flaky")
        with pytest.raises(PluginTrap):
            pm.hook.fail(x=1)
        assert pm.hook.add_one(x=1) == [2]  # restarted at once
        assert host.status("flaky").state == "running"
        with pytest.raises(PluginTrap):
            pm.hook.fail(x=1)
        with pytest.raises(PluginTrap):
            pm.hook.fail(x=1)
        # second consecutive failure -> backoff; third failure in the window -> circuit open
        status = host.status("flaky")
        assert status.state == "open"
        assert status.recent_failures == 3
        assert "PluginTrap" in (status.last_error or "")
        assert pm.is_blocked("flaky")
        assert pm.hook.add_one(x=1) == []
        assert [e.kind for e in host.audit.events(plugin="flaky")][-1] == "circuit"
        host.unblock("flaky")
        assert pm.hook.add_one(x=1) == [2]
        assert host.status("flaky").state == "running"


def test_backoff_fails_fast(pm: pluggy.PluginManager, demo: Demo) -> None:
    """During backoff calls fail fast with PluginUnavailable; afterwards they run again."""
    policy = RestartPolicy(max_failures=100, backoff_base=0.3)
    with PluginHost(pm, package=PACKAGE, restart=policy) as host:
        host.load(demo(k=1, funcs=["add-one", "fail"]), name="loop")
        for _ in range(2):
            with pytest.raises(PluginTrap):
                pm.hook.fail(x=1)
        with pytest.raises(PluginUnavailable, match="restarting after 2 failure"):
            pm.hook.add_one(x=1)
        assert host.status("loop").state == "backoff"
        time.sleep(0.35)
        assert pm.hook.add_one(x=1) == [2]
        assert host.status("loop").consecutive_failures == 0


def test_circuit_closes_after_cooldown(pm: pluggy.PluginManager, demo: Demo) -> None:
    """An open circuit closes by itself after the cool-down; historic calls are replayed."""
    policy = RestartPolicy(max_failures=1, cooldown=0.2)
    with PluginHost(pm, package=PACKAGE, restart=policy) as host:
        pm.hook.setup.call_historic(kwargs={"x": 5})
        host.load(demo(k=1, funcs=["fail", "setup", "get-setup"]), name="cool")
        with pytest.raises(PluginTrap):
            pm.hook.fail(x=1)
        assert pm.is_blocked("cool")
        deadline = time.monotonic() + 5
        while pm.is_blocked("cool") and time.monotonic() < deadline:
            time.sleep(0.02)
        assert pm.hook.get_setup() == [5]


# --------------------------------------------------------------------------- policies


def test_failure_policies_for_python_and_wasm(pm: pluggy.PluginManager, demo: Demo) -> None:
    """raise stops at the first failure; skip returns healthy results; collect raises all."""
    no_backoff = RestartPolicy(backoff_base=0.0, max_failures=100)
    with PluginHost(pm, package=PACKAGE, restart=no_backoff) as host:
        host.load(demo(k=1, funcs=["add-one"]), name="good")
        pm.register(PyAdder(), name="py-good")
        pm.register(PyBroken(), name="py-broken")
        # a component whose `fail` export (always traps) serves add_one
        host.load(
            demo(k=1, funcs=["fail"]),
            name="wasm-broken",
            hooks={"fail": HookOptions(specname="add_one")},
        )
        with pytest.raises((ZeroDivisionError, PluginTrap)):
            pm.hook.add_one(x=1)
        assert sorted(host.call("add_one", policy="skip", x=1)) == [2, 101]
        with pytest.raises(HookFailures) as info:
            host.call("add_one", policy="collect", x=1)
        failures = info.value.exceptions
        assert {type(e) for e in failures} == {ZeroDivisionError, PluginTrap}
        assert {getattr(e, "plugin", None) for e in failures} == {"py-broken", "wasm-broken"}
        assert any(
            "in plugin 'py-broken', hook 'add_one'" in n
            for e in failures
            for n in getattr(e, "__notes__", [])
        )
        host.set_failure_policy("add_one", "skip")
        assert sorted(pm.hook.add_one(x=1)) == [2, 101]


# --------------------------------------------------------------------------- lifecycle

LIFECYCLE_WIT = """package demo:hooks@1.0.0;
interface add-one { add-one: func(x: u32) -> u32; }
interface note { note: func(x: u32); }
world guest {
  import note;
  export add-one;
  export airssys:host/lifecycle@0.1.0;
}
"""
LIFECYCLE_WAT = """(module
  (import "demo:hooks/note@1.0.0" "note" (func $note (param i32)))
  (memory (export "memory") 1)
  (global $heap (mut i32) (i32.const 1024))
  (data (i32.const 200) "no config given")
  (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32)
    (global.get $heap) (global.set $heap (i32.add (global.get $heap) (local.get 3))))
  (func (export "demo:hooks/add-one@1.0.0#add-one") (param i32) (result i32)
    (i32.add (local.get 0) (i32.const 1)))
  ;; init(config: list<tuple<string,string>>) -> result<_, string>: err when config is empty
  (func (export "airssys:host/lifecycle@0.1.0#init") (param $ptr i32) (param $len i32) (result i32)
    (call $note (i32.add (i32.const 1000) (local.get $len)))
    (if (i32.eqz (local.get $len))
      (then (i32.store8 (i32.const 64) (i32.const 1))
            (i32.store (i32.const 68) (i32.const 200))
            (i32.store (i32.const 72) (i32.const 15)))
      (else (i32.store8 (i32.const 64) (i32.const 0))))
    (i32.const 64))
  (func (export "airssys:host/lifecycle@0.1.0#health") (result i32)
    (i32.store8 (i32.const 64) (i32.const 0)) (i32.const 64))
  (func (export "airssys:host/lifecycle@0.1.0#shutdown") (call $note (i32.const 99)))
)
"""


@pytest.fixture(scope="module")
def lifecycle_wasm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import airssys_plugins
    from airssys_plugins.host.interfaces import LIFECYCLE_WIT as HOST_LIFECYCLE

    src = tmp_path_factory.mktemp("lifecycle")
    (src / "wit" / "deps" / "airssys-host").mkdir(parents=True)
    (src / "wit" / "deps" / "airssys-host" / "host.wit").write_text(
        "package airssys:host@0.1.0;\n" + HOST_LIFECYCLE
    )
    (src / "wit" / "demo.wit").write_text(LIFECYCLE_WIT)
    (src / "guest.wat").write_text(LIFECYCLE_WAT)
    assert airssys_plugins
    return build_guest(src)


@pytest.fixture
def noted(pm: pluggy.PluginManager) -> Iterator[tuple[PluginHost, list[int]]]:
    notes: list[int] = []
    with PluginHost(pm, package=PACKAGE) as host:

        @host.provide
        def note(x: u32) -> None:
            notes.append(x)

        host.grants.update({n: Capabilities(interfaces=["note"]) for n in ("life", "bare")})
        yield host, notes


def test_lifecycle_init_health_shutdown(
    pm: pluggy.PluginManager, noted: Any, lifecycle_wasm: Path
) -> None:
    """init runs with the config at every start, health answers, shutdown runs at unload."""
    host, notes = noted
    host.load(
        lifecycle_wasm,
        name="life",
        requests=Capabilities(interfaces=["note"]),
        config={"a": "1", "b": "2"},
    )
    assert notes == [1002]  # init saw two config entries
    assert host.health("life") is True
    assert pm.hook.add_one(x=1) == [2]
    host.unload("life")
    assert notes == [1002, 99]


def test_failing_init_refuses_the_plugin(
    pm: pluggy.PluginManager, noted: Any, lifecycle_wasm: Path
) -> None:
    """An err from init means the plugin does not load."""
    host, _ = noted
    with pytest.raises(PluginLoadError, match="init failed: no config given"):
        host.load(lifecycle_wasm, name="bare", requests=Capabilities(interfaces=["note"]))
    assert host.plugins == {}
    assert pm.get_plugin("bare") is None


# --------------------------------------------------------------------------- concurrency


def test_sixteen_threads_with_random_faults(pm: pluggy.PluginManager, demo: Demo) -> None:
    """16 threads x many calls across 4 plugins, ~20% faults: every result right, every
    exception attributed to the plugin called, no deadlock."""
    with PluginHost(
        pm, package=PACKAGE, restart=RestartPolicy(max_failures=10**6, backoff_base=0.0)
    ) as host:
        plugins = {
            f"p{k}": host.load(demo(k=k, funcs=["add-one", "fail"]), name=f"p{k}")
            for k in range(1, 5)
        }
        problems: list[str] = []
        counts = {"ok": 0, "faults": 0}
        lock = threading.Lock()

        def worker(seed: int) -> None:
            rng = random.Random(seed)
            for _ in range(300):
                name = rng.choice(list(plugins))
                plugin = plugins[name]
                k = int(name[1:])
                x = rng.randrange(1000)
                try:
                    if rng.random() < 0.2:
                        plugin.fail(x)
                        problems.append(f"{name}: fail did not fail")
                    else:
                        result = plugin.add_one(x)
                        if result != x + k:
                            problems.append(f"{name}: {x} -> {result}")
                        with lock:
                            counts["ok"] += 1
                except PluginTrap as exc:
                    if exc.plugin != name or exc.hook != "fail":
                        problems.append(
                            f"misattributed: called {name}, got {exc.plugin}/{exc.hook}"
                        )
                    with lock:
                        counts["faults"] += 1
                except PluginUnavailable as exc:
                    if exc.plugin != name:
                        problems.append(f"misattributed backoff: {name} vs {exc.plugin}")

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        assert not any(t.is_alive() for t in threads), "deadlock"
        assert problems == []
        assert counts["ok"] > 3000
        assert counts["faults"] > 500


def test_instance_pool_serves_concurrent_calls(pm: pluggy.PluginManager, demo: Demo) -> None:
    """A pool of instances serves calls from several threads; historic calls reach all."""
    with PluginHost(pm, package=PACKAGE) as host:
        pm.hook.setup.call_historic(kwargs={"x": 42})
        plugin = host.load(
            demo(k=1, funcs=["add-one", "setup", "get-setup"]), name="pooled", pool_size=4
        )
        assert len(plugin.instances) == 4
        results: list[list[int]] = []

        def worker() -> None:
            for _ in range(200):
                results.append(pm.hook.get_setup())

        threads = [threading.Thread(target=worker) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(results) == 800
        assert all(r == [42] for r in results)  # every instance got the historic call
        assert all(i.generation == 1 for i in plugin.instances)


# --------------------------------------------------------------------------- reload


def test_reload_blue_green(pm: pluggy.PluginManager, demo: Demo, tmp_path: Path) -> None:
    """A reload swaps in the new version; historic calls are replayed into it."""
    target = tmp_path / "live.wasm"
    shutil.copy(demo(k=1, funcs=["add-one", "setup", "get-setup"]), target)
    with PluginHost(pm, package=PACKAGE) as host:
        pm.hook.setup.call_historic(kwargs={"x": 7})
        old = host.load(target, name="live")
        assert pm.hook.add_one(x=1) == [2]
        shutil.copy(demo(k=5, funcs=["add-one", "setup", "get-setup"]), target)
        new = host.reload("live")
        assert new is not old
        assert pm.hook.add_one(x=1) == [6]
        assert pm.hook.get_setup() == [7]
        assert old.instance._store is None  # the old version was closed


def test_reload_rolls_back_on_failure(pm: pluggy.PluginManager, demo: Demo, tmp_path: Path) -> None:
    """A broken or mismatched new version leaves the old one serving."""
    target = tmp_path / "live.wasm"
    shutil.copy(demo(k=1, funcs=["add-one"]), target)
    with PluginHost(pm, package=PACKAGE) as host:
        host.load(target, name="live")
        target.write_bytes(b"\0asm garbage")
        with pytest.raises(ReloadError, match="the old version keeps serving") as info:
            host.reload("live")
        assert isinstance(info.value.__cause__, PluginLoadError)
        assert pm.hook.add_one(x=1) == [2]
        shutil.copy(demo(k=1, funcs=["add-one"], version="2.0.0"), target)
        with pytest.raises(ReloadError, match="ContractMismatchError"):
            host.reload("live")
        assert pm.hook.add_one(x=1) == [2]


def test_in_flight_call_finishes_on_old_version(pm: pluggy.PluginManager, tmp_path: Path) -> None:
    """A call running during a reload completes on the old instance; later calls see the new."""
    from .test_sandbox import LIMITS_WAT, LIMITS_WIT, LimitHooks

    lpm = pluggy.PluginManager("demo")
    lpm.add_hookspecs(LimitHooks)
    sources = {}
    for k in (1, 2):
        src = tmp_path / f"v{k}"
        (src / "wit").mkdir(parents=True)
        (src / "wit" / "demo.wit").write_text(LIMITS_WIT)
        (src / "guest.wat").write_text(
            LIMITS_WAT.replace(
                "(i32.add (local.get $x) (i32.const 1))",
                f"(i32.add (local.get $x) (i32.const {k}))",
            )
        )
        sources[k] = build_guest(src)
    with PluginHost(lpm, package=PACKAGE, timeout=30) as host:

        @host.provide
        def ping() -> u32:
            return 0

        host.grants["slow"] = Capabilities(interfaces=["ping"])
        host.load(sources[1], name="slow", requests=Capabilities(interfaces=["ping"]))
        out: list[Any] = []
        busy = threading.Thread(target=lambda: out.append(lpm.hook.add_one(x=300_000_000)))
        busy.start()
        time.sleep(0.05)
        host.reload("slow", sources[2])
        busy.join()
        assert out == [[300_000_001]]  # the old version answered
        assert lpm.hook.add_one(x=1) == [3]


def test_upgrade_asking_more_rights_is_held(
    pm: pluggy.PluginManager, demo: Demo, tmp_path: Path
) -> None:
    """An upgrade widening the rights is held until approved; the old version keeps serving."""
    target = tmp_path / "live.wasm"
    shutil.copy(demo(k=1, funcs=["add-one"]), target)
    with PluginHost(pm, package=PACKAGE, grants={"live": Capabilities(env=["LANG"])}) as host:
        host.load(target, name="live")
        shutil.copy(demo(k=2, funcs=["add-one"]), target)
        with pytest.raises(UpgradeHeld, match="asks for more rights") as info:
            host.reload("live", requests=Capabilities(env=["LANG"]))
        assert info.value.wider == ("env LANG",)
        assert pm.hook.add_one(x=1) == [2]
        assert "live" in host.pending_upgrades
        host.approve_upgrade("live")
        assert pm.hook.add_one(x=1) == [3]
        assert host.plugins["live"].capabilities.env == {"LANG"}


def test_watcher_reloads_changed_files(
    pm: pluggy.PluginManager, demo: Demo, tmp_path: Path
) -> None:
    """The watcher notices a changed file and reloads it; a broken one is rolled back."""
    target = tmp_path / "watched.wasm"
    shutil.copy(demo(k=1, funcs=["add-one"]), target)
    with PluginHost(pm, package=PACKAGE) as host:
        host.load(target, name="watched")
        watcher = host.watch(interval=3600)  # polled by hand below
        try:
            shutil.copy(demo(k=3, funcs=["add-one"]), target)
            assert watcher.poll() == ["watched"]
            assert pm.hook.add_one(x=1) == [4]
            target.write_bytes(b"broken")
            assert watcher.poll() == []
            assert watcher.failures[0][0] == "watched"
            assert pm.hook.add_one(x=1) == [4]
        finally:
            watcher.stop()


def test_open_circuit_is_visible_in_cli_list(
    pm: pluggy.PluginManager, demo: Demo, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`airssys-plugins list` (another process in real life) shows a running host's open circuit."""
    from airssys_plugins.cli import main

    plugins = tmp_path / "plugins"
    plugins.mkdir()
    shutil.copy(demo(k=1, funcs=["add-one", "fail"]), plugins / "tripped.wasm")
    with PluginHost(
        pm, package=PACKAGE, restart=RestartPolicy(max_failures=1, cooldown=None)
    ) as host:
        host.load(plugins / "tripped.wasm")
        with pytest.raises(PluginTrap):
            pm.hook.fail(x=1)
        assert main(["list", "--app", "demo", "--dir", str(plugins), "--no-packs"]) == 0
        out = capsys.readouterr().out
        row = next(line for line in out.splitlines() if line.startswith("tripped"))
        assert row.endswith("open (circuit)")
        assert "tripped (circuit open in a running host): 1 failures within 60 s" in out
        host.unblock("tripped")
        main(["list", "--app", "demo", "--dir", str(plugins), "--no-packs"])
        assert "circuit open" not in capsys.readouterr().out


def test_reload_rolls_back_when_history_replay_fails(
    pm: pluggy.PluginManager, demo: Demo, tmp_path: Path
) -> None:
    """A new version that traps on the replayed historic call is taken out again."""
    target = tmp_path / "live.wasm"
    shutil.copy(demo(k=1, funcs=["add-one", "setup", "get-setup"]), target)
    with PluginHost(pm, package=PACKAGE) as host:
        pm.hook.setup.call_historic(kwargs={"x": 3})
        old = host.load(target, name="live")
        trapping_setup = {
            "setup": '(func (export "demo:hooks/setup@1.0.0#setup") (param i32) unreachable)'
        }
        shutil.copy(
            demo(k=9, funcs=["add-one", "setup", "get-setup"], core_overrides=trapping_setup),
            target,
        )
        with pytest.raises(ReloadError, match="while historic hook calls were replayed"):
            host.reload("live")
        assert host.plugins["live"] is old
        assert pm.get_plugin("live") is old
        assert pm.hook.add_one(x=1) == [2]
        assert pm.hook.get_setup() == [3]  # the old version got its history back


def test_open_circuit_refuses_direct_calls(pm: pluggy.PluginManager, demo: Demo) -> None:
    """With the circuit open, calling the plugin object directly is refused too."""
    with PluginHost(
        pm, package=PACKAGE, restart=RestartPolicy(max_failures=1, cooldown=None)
    ) as host:
        plugin = host.load(demo(k=1, funcs=["add-one", "fail"]), name="direct")
        with pytest.raises(PluginTrap):
            pm.hook.fail(x=1)
        with pytest.raises(PluginUnavailable, match="circuit open"):
            plugin.add_one(1)


def test_the_circuit_file_is_written_only_for_open_circuits(
    pm: pluggy.PluginManager, demo: Demo
) -> None:
    """A host writes the app's circuit file when a circuit opens, and clears the entry when
    the plugin is unloaded; plugins whose circuits never opened touch no file (so finding
    the state directory, which imports platformdirs, waits for the first open circuit)."""
    from airssys_plugins.host.supervision import CircuitFile

    wasm = demo(k=1, funcs=["add-one", "fail"])
    with PluginHost(pm, package=PACKAGE, restart=RestartPolicy(max_failures=1)) as host:
        host.load(wasm, name="calm")
        host.unload("calm")
        circuits = host._circuits.file
        assert not isinstance(circuits._path, Path)  # never needed: not even found
        host.load(wasm, name="tripped")
        with pytest.raises(PluginTrap):
            pm.hook.fail(x=1)
        assert set(CircuitFile.for_app("demo").read()) == {"tripped"}
        host.unload("tripped")
        assert CircuitFile.for_app("demo").read() == {}
