"""The hook functions of plugins loaded from one compiled component: made by one shared
maker per hook, call plan and options, yet each calls, counts and refuses for its own
plugin (see "Density" in docs/explanation/performance.md)."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Callable
from pathlib import Path

import pluggy
import pytest

from airssys_plugins import (
    HookOptions,
    PluginHost,
    PluginTrap,
    PluginUnavailable,
    Reliability,
    RestartPolicy,
    release_compiled,
)
from airssys_plugins.host import bridge

from .demo import PACKAGE, AddOnlyHooks, PickTooHooks, demo_pm

Demo = Callable[..., Path]


def test_plugins_of_one_component_share_what_does_not_depend_on_the_plugin(
    demo: Demo, private_cache: Path
) -> None:
    """Two plugins of one component get two hook functions that share one ``__dict__``
    (pluggy's marker options, the signature template) and their strings, and pluggy reads
    the hook's argument names through it as for any hookimpl."""
    wasm = demo(k=3, funcs=["add-one", "fail"])
    pm = demo_pm()
    with PluginHost(pm, package=PACKAGE) as host:
        a = host.load(wasm, name="a")
        b = host.load(wasm, name="b")
        assert a.add_one is not b.add_one
        assert a.add_one.__dict__ is b.add_one.__dict__
        assert a.add_one.__qualname__ is b.add_one.__qualname__
        assert a.add_one.__doc__ is not None
        assert "add-one" in a.add_one.__doc__
        impls = {i.plugin_name: i for i in pm.hook.add_one.get_hookimpls()}
        assert impls["a"].argnames == impls["b"].argnames == ("x",)
        assert impls["a"].function is a.add_one
        assert impls["a"].plugin is a
        assert pm.hook.add_one(x=1) == [4, 4]
        assert a.hooks["add_one"] is b.hooks["add_one"]  # one export-name string


def test_each_plugin_keeps_its_own_failures_and_circuit(demo: Demo, private_cache: Path) -> None:
    """The shared maker's functions read their own plugin's supervisor: failures of one
    plugin open its circuit only, and its sibling from the same component still serves."""
    wasm = demo(k=3, funcs=["add-one", "fail"])
    pm = demo_pm()
    policy = RestartPolicy(max_failures=2, window=60, cooldown=None, backoff_base=0)
    with PluginHost(pm, package=PACKAGE, reliability=Reliability(restart=policy)) as host:
        a = host.load(wasm, name="a")
        b = host.load(wasm, name="b")
        for _ in range(2):
            with pytest.raises(PluginTrap) as info:
                a.fail(1)
            assert info.value.plugin == "a"
        assert a.supervisor is not None
        assert a.supervisor.open
        assert b.supervisor is not None
        assert not b.supervisor.open
        assert b.supervisor.restarts == 0
        with pytest.raises(PluginUnavailable, match="circuit open"):
            a.add_one(1)
        assert b.add_one(1) == 4
        assert pm.hook.add_one(x=1) == [4]  # pluggy skips the blocked plugin


def test_the_shared_maker_follows_the_options_and_the_contract(
    demo: Demo, private_cache: Path
) -> None:
    """Other hook options make another maker (pluggy sees the options each load gave), and
    so do hookspecs added later (a new contract object): the shared parts are only
    shared between loads that would make them alike."""
    wasm = demo(k=5, funcs=["add-one", "pick"])
    pm = pluggy.PluginManager("demo")

    pm.add_hookspecs(AddOnlyHooks)
    with PluginHost(pm, package=PACKAGE) as host:
        plain = host.load(wasm, name="plain")
        first = host.load(wasm, name="first", hooks={"add_one": HookOptions(tryfirst=True)})
        assert first.add_one.__dict__ is not plain.add_one.__dict__
        impls = {i.plugin_name: i for i in pm.hook.add_one.get_hookimpls()}
        assert impls["first"].tryfirst
        assert not impls["plain"].tryfirst
        pm.add_hookspecs(PickTooHooks)  # the contract is made again: new hook objects
        later = host.load(wasm, name="later")
        assert later.add_one.__dict__ is not plain.add_one.__dict__
        assert sorted(later.hooks) == ["add_one", "pick"]
        assert pm.hook.pick(x=5) == 50
        assert pm.hook.add_one(x=1) == [6, 6, 6]


def test_the_makers_do_not_keep_a_compiled_component_alive(demo: Demo, private_cache: Path) -> None:
    """The makers and what a load attaches are kept per compiled component, weakly: once
    its plugins are unloaded and kept components released, the component (and its makers
    and hook plans) are freed."""
    wasm = demo(k=7, funcs=["add-one"])
    with PluginHost(demo_pm(), package=PACKAGE) as host:
        plugin = host.load(wasm, name="p")
        component = weakref.ref(plugin.image.component)
        assert component() in bridge._MAKERS
        assert component() in bridge._HOOK_PLANS
        del plugin
        host.unload("p")
        release_compiled()
        gc.collect()
        assert component() is None
