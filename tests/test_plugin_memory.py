"""What each loaded plugin holds (issue 18 §5, eighth round): what plugins of one file
share is shared only where it is equal and never written, what each plugin must keep is
its own, and what an instance makes at its first call behaves the same when several
threads make it at once."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import pluggy
import pytest

from airssys_plugins import PluginHost, PluginTrap
from airssys_plugins.host import pipeline as _pipeline
from airssys_plugins.host.plugin import WasmPlugin
from airssys_plugins.policy.audit import AuditLog
from airssys_plugins.runtime import PluginInstance
from airssys_plugins.runtime import instance as _instance

from .demo import PACKAGE, DemoHooks

Demo = Callable[..., Path]


def _demo_pm() -> pluggy.PluginManager:
    pm = pluggy.PluginManager("demo")
    pm.add_hookspecs(DemoHooks)
    return pm


def test_plugins_of_one_file_share_their_hook_table_and_empty_config(
    demo: Demo, private_cache: Path
) -> None:
    """Loads of one file share the hook-to-export table and, without config, one empty
    config (the context's too); a plugin given config keeps its own, and a component
    with other exports gets a table of its own."""
    pm = _demo_pm()
    wasm = demo(k=2, funcs=["add-one", "pick"])
    other = demo(k=3, funcs=["add-one"])
    with PluginHost(pm, package=PACKAGE) as host:
        a = host.load(wasm, name="a")
        b = host.load(wasm, name="b")
        c = host.load(wasm, name="c", config={"who": "c"})
        d = host.load(other, name="d")
        assert a.hooks is b.hooks is c.hooks
        assert a.hooks == {
            "add_one": "demo:hooks/add-one@1.0.0#add-one",
            "pick": "demo:hooks/pick@1.0.0#pick",
        }
        assert d.hooks == {"add_one": "demo:hooks/add-one@1.0.0#add-one"}
        assert d.hooks is not a.hooks
        assert a.config is b.config == {}
        assert a.instance.context.config is a.config  # type: ignore[attr-defined]
        assert c.config == {"who": "c"}
        assert c.config is not a.config
        assert c.instance.context.config is c.config  # type: ignore[attr-defined]
        assert pm.hook.add_one(x=1) == [4, 3, 3, 3]
    assert _pipeline._NO_CONFIG == {}  # never written


def test_load_events_share_their_fields_but_name_their_own_plugin(
    demo: Demo, private_cache: Path
) -> None:
    """The load events of one file with the same rights share one fields dict; each
    event still names its own plugin, and record(**fields) gives every event its own."""
    pm = _demo_pm()
    wasm = demo(k=2, funcs=["add-one"])
    other = demo(k=5, funcs=["add-one"])
    with PluginHost(pm, package=PACKAGE) as host:
        a = host.load(wasm, name="a")
        host.load(wasm, name="b")
        host.load(other, name="c")
        first, second, third = host.audit.events(kind="load")
        assert [e.plugin for e in (first, second, third)] == ["a", "b", "c"]
        assert first.fields is second.fields
        assert first.fields == {"sha256": a.sha256, "rights": ()}
        assert third.fields is not first.fields
        assert third.fields["sha256"] != a.sha256
        assert [e.plugin for e in host.audit.events(plugin="b")] == ["b"]
    log = AuditLog()
    one = log.record("grant", "x", "granted", what="kv")
    two = log.record("grant", "y", "granted", what="kv")
    assert one.fields == two.fields
    assert one.fields is not two.fields


def test_an_instance_keeps_its_first_function_in_slots_and_others_in_its_own_dict(
    demo: Demo, private_cache: Path
) -> None:
    """The first function an instance calls is kept beside it, a second one in a dict
    of its own (the shared empty one is never written); a trap drops both, and the
    next calls prepare them again on the fresh instance."""
    pm = _demo_pm()
    wasm = demo(k=2, funcs=["add-one", "pick", "fail"])
    with PluginHost(pm, package=PACKAGE) as host:
        a = host.load(wasm, name="a")
        b = host.load(wasm, name="b")
        instance = a.instance
        assert instance._bound is None
        assert instance._funcs is _instance._NO_FUNCS
        assert pm.hook.add_one(x=1) == [3, 3]
        assert instance._bound is not None
        assert instance._bound.hook == "add_one"
        assert instance._funcs is _instance._NO_FUNCS
        assert a.pick(2) == 20  # type: ignore[attr-defined]
        assert pm.hook.add_one(x=5) == [7, 7]
        assert instance._funcs is not _instance._NO_FUNCS
        assert len(instance._funcs) == 1
        assert b.instance._funcs is not instance._funcs
        with pytest.raises(PluginTrap):
            a.fail(1)  # type: ignore[attr-defined]
        assert instance._bound is None
        assert instance._funcs is _instance._NO_FUNCS
        assert a.add_one(4) == 6  # type: ignore[attr-defined]
        assert a.pick(2) == 20  # type: ignore[attr-defined]
        assert instance.generation == 2
    assert _instance._NO_FUNCS == {}


def _first_calls_at_once(plugin: WasmPlugin, threads: int = 8) -> list[object]:
    """Each of ``threads`` threads, released together, calls add_one (odd ones) or pick
    (even ones) 20 times on ``plugin``; their results, or the first error."""
    start = threading.Barrier(threads)
    results: list[object] = []
    errors: list[BaseException] = []

    def run(i: int) -> None:
        start.wait()
        try:
            for _ in range(20):
                hook = plugin.add_one if i % 2 else plugin.pick  # type: ignore[attr-defined]
                results.append(hook(i))
        except BaseException as exc:  # pragma: no cover - shown by the caller's assert
            errors.append(exc)

    workers = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    assert errors == []
    return results


def test_first_calls_from_many_threads_prepare_each_function_once(
    demo: Demo, private_cache: Path
) -> None:
    """Threads making an instance's first calls of two hooks at once all get the right
    answers; the instance ends with one function beside it and the other in its dict."""
    pm = _demo_pm()
    wasm = demo(k=2, funcs=["add-one", "pick"])
    # add_one adds k = 2; pick answers 10 * x for x = k only
    expected = [(i + 2) if i % 2 else (20 if i == 2 else None) for i in range(8)] * 20
    with PluginHost(pm, package=PACKAGE) as host:
        for round_ in range(5):
            plugin = host.load(wasm, name=f"p{round_}")
            results = _first_calls_at_once(plugin)
            assert sorted(results, key=repr) == sorted(expected, key=repr)
            instance = plugin.instance
            assert instance._bound is not None
            assert instance._bound.hook in ("add_one", "pick")
            assert len(instance._funcs) == 1
            host.unload(f"p{round_}")
    assert _instance._NO_FUNCS == {}


def test_one_plugins_failures_never_reach_another_of_the_same_file(
    demo: Demo, private_cache: Path
) -> None:
    """Plugins of one file share their tables, never their supervision: a failing
    plugin's counts are its own, and the other's supervisor and instance are untouched."""
    pm = _demo_pm()
    wasm = demo(k=2, funcs=["add-one", "fail"])
    with PluginHost(pm, package=PACKAGE) as host:
        a = host.load(wasm, name="a")
        b = host.load(wasm, name="b")
        assert a.add_one(1) == b.add_one(1) == 3  # type: ignore[attr-defined]
        with pytest.raises(PluginTrap) as info:
            a.fail(1)  # type: ignore[attr-defined]
        assert info.value.plugin == "a"
        failed, other = host.status("a"), host.status("b")
        assert (failed.restarts, failed.consecutive_failures, failed.recent_failures) == (1, 1, 1)
        assert failed.last_error is not None
        assert (other.state, other.restarts, other.recent_failures) == ("running", 0, 0)
        assert other.last_error is None
        assert a.supervisor is not b.supervisor
        assert b.instance.generation == 1
        assert b.instance._bound is not None  # b's prepared function survived a's trap
        assert pm.hook.add_one(x=1) == [3, 3]  # a restarted on a fresh instance
        assert a.instance.generation == 2


def test_plugins_and_instances_take_no_attribute_outside_their_slots(
    demo: Demo, private_cache: Path
) -> None:
    """PluginInstance is slotted (no instance dict); a WasmPlugin's dict holds only its
    hookimpls, which pluggy finds there."""
    pm = _demo_pm()
    wasm = demo(k=2, funcs=["add-one", "pick"])
    with PluginHost(pm, package=PACKAGE) as host:
        plugin = host.load(wasm, name="a")
        assert not hasattr(plugin.instance, "__dict__")
        with pytest.raises(AttributeError):
            plugin.instance.unknown = 1  # type: ignore[attr-defined]
        assert sorted(vars(plugin)) == ["add_one", "pick"]
        assert isinstance(plugin.instances, tuple)
        assert isinstance(plugin.instance, PluginInstance)
        assert [i.plugin for i in pm.hook.pick.get_hookimpls()] == [plugin]
