"""Hook functions bound at their first call: a load decides everything that can refuse it
(the export, its type against the contract, the rights) and binds no call plan; a hook's
plan and its real code come at its first call, once per compiled component, and from
then on the function is what an eager bind made (see "A first load binds what is called"
in docs/explanation/performance.md)."""

from __future__ import annotations

import gc
import threading
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pluggy
import pytest

from airssys_plugins import (
    ContractMismatchError,
    HookOptions,
    PluginHost,
    PluginLoadError,
    PluginTimeout,
    PluginTrap,
    release_compiled,
    u32,
)
from airssys_plugins.runtime import ComponentImage
from airssys_plugins.runtime import instance as runtime_instance

from .demo import PACKAGE, demo_pm

Demo = Callable[..., Path]
hookspec = pluggy.HookspecMarker("demo")


def _bound_hooks(component: object) -> list[str]:
    """The hooks whose call plans were bound for ``component`` (the shared plan table)."""
    plans = runtime_instance._PLANS.get(component, {})
    return sorted(key[0] for key in plans)


def _is_lazy(function: Any) -> bool:
    return function.__func__.__kwdefaults__ is not None


def test_a_load_binds_nothing_and_a_first_call_binds_its_hook_alone(
    demo: Demo, private_cache: Path
) -> None:
    """A load of a component with four hooks binds no call plan; calling one binds that
    one, with its real code (its own name and parameters), and the others stay lazy."""
    wasm = demo(k=3, funcs=["add-one", "pick", "fail", "get-setup"])
    pm = demo_pm()
    with PluginHost(pm, package=PACKAGE) as host:
        plugin = host.load(wasm, name="p")
        component = plugin.image.component
        assert sorted(plugin.hooks) == ["add_one", "fail", "get_setup", "pick"]
        assert _bound_hooks(component) == []
        assert all(_is_lazy(getattr(plugin, h)) for h in plugin.hooks)
        assert pm.hook.add_one(x=1) == [4]
        assert _bound_hooks(component) == ["add_one"]
        function = plugin.add_one.__func__
        assert not _is_lazy(plugin.add_one)
        assert function.__code__.co_name == "add_one"
        assert function.__code__.co_varnames[:2] == ("_ap_plugin", "x")
        assert function.__closure__[0].cell_contents.hook == "add_one"
        assert _is_lazy(plugin.pick)
        assert pm.hook.add_one(x=2) == [5]  # the bound code, no second bind
        assert _bound_hooks(component) == ["add_one"]
        # pluggy's view of the hookimpls is the same before and after the bind
        impls = {i.plugin_name: i for i in pm.hook.pick.get_hookimpls()}
        assert impls["p"].argnames == ("x",)
        assert pm.hook.pick(x=3) == 30
        assert _bound_hooks(component) == ["add_one", "pick"]


def test_what_refuses_a_load_still_refuses_it_at_load(demo: Demo, private_cache: Path) -> None:
    """A wrong export type is a ContractMismatchError at ``host.load`` with nothing bound
    and nothing registered, as before: binding later changes no error's moment."""
    wasm = demo(
        k=1,
        funcs=["add-one", "get-setup"],
        wit_overrides={"add-one": "add-one: func(x: string) -> u32;"},
        core_overrides={
            "add-one": '(func (export "demo:hooks/add-one@1.0.0#add-one")'
            " (param i32 i32) (result i32) (i32.const 0))"
        },
    )
    pm = demo_pm()
    with PluginHost(pm, package=PACKAGE) as host:
        with pytest.raises(ContractMismatchError) as info:
            host.load(wasm, name="bad")
        assert [m.hook for m in info.value.mismatches] == ["add_one"]
        assert "parameter 'x'" in info.value.mismatches[0].detail
        assert pm.get_plugin("bad") is None
        assert host.plugins == {}


def test_first_calls_from_many_threads_bind_once(demo: Demo, private_cache: Path) -> None:
    """Threads calling a lazy hook at once all get their answers, through one call plan."""
    wasm = demo(k=5, funcs=["add-one"])
    pm = demo_pm()
    with PluginHost(pm, package=PACKAGE) as host:
        plugin = host.load(wasm, name="p", pool_size=4)
        start = threading.Barrier(8)
        results: list[Any] = []

        def call(x: int) -> None:
            start.wait()
            results.append((x, plugin.add_one(x)))

        threads = [threading.Thread(target=call, args=(x,)) for x in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(results) == [(x, x + 5) for x in range(8)]
        assert _bound_hooks(plugin.image.component) == ["add_one"]
        assert not _is_lazy(plugin.add_one)


def test_a_first_call_keeps_the_hook_functions_calling_rules(
    demo: Demo, private_cache: Path
) -> None:
    """Called directly, the lazy function takes the hook's arguments as the bound one
    does: by position or by name; a wrong call is the same TypeError and leaves the
    function working."""
    wasm = demo(k=2, funcs=["add-one", "pick"])
    with PluginHost(demo_pm(), package=PACKAGE) as host:
        plugin = host.load(wasm, name="p")
        with pytest.raises(TypeError, match="add_one"):
            plugin.add_one(1, 2)
        assert plugin.add_one(x=1) == 3
        assert plugin.add_one(1) == 3
        with pytest.raises(TypeError, match="unexpected keyword"):
            plugin.pick(y=1)
        assert plugin.pick(2) == 20


def test_a_plan_follows_the_options_of_its_load(demo: Demo, private_cache: Path) -> None:
    """A per-hook timeout goes into the plan bound at the first call; loads with other
    options get their own function and plan, bound at their own first call."""
    wasm = demo(k=1, funcs=["add-one", "spin"])
    pm = demo_pm()
    with PluginHost(pm, package=PACKAGE) as host:
        plain = host.load(wasm, name="plain")
        quick = host.load(wasm, name="quick", hooks={"spin": HookOptions(timeout=0.05)})
        assert quick.spin.__func__ is not plain.spin.__func__
        with pytest.raises(PluginTimeout, match=r"after 0\.05 s") as info:
            quick.spin()
        assert info.value.plugin == "quick"
        bound = quick.spin.__func__.__closure__[0].cell_contents
        assert bound.timeout == 0.05
        assert _is_lazy(plain.spin)
        assert plain.add_one.__func__ is quick.add_one.__func__  # same options: shared
        assert pm.hook.add_one(x=1) == [2, 2]


def test_a_historic_hook_binds_at_its_first_call(demo: Demo, private_cache: Path) -> None:
    """A historic hook (its calls recorded, replayed into new instances and later
    plugins) is lazy too, and does all that once bound (test_host's unwrapped historic
    ``Result`` hook goes the same way)."""
    wasm = demo(k=1, funcs=["setup", "get-setup", "fail"])
    pm = demo_pm()
    with PluginHost(pm, package=PACKAGE) as host:
        plugin = host.load(wasm, name="p")
        assert _is_lazy(plugin.setup)
        pm.hook.setup.call_historic(kwargs={"x": 7})
        assert not _is_lazy(plugin.setup)
        assert plugin.setup.__func__.__code__.co_name == "setup"
        assert pm.hook.get_setup() == [7]
        with pytest.raises(PluginTrap):
            pm.hook.fail(x=0)
        assert pm.hook.get_setup() == [7]  # replayed into the new instance
        late = host.load(wasm, name="late")  # a historic call reaches a later plugin too
        assert late.setup.__func__ is plugin.setup.__func__
        assert pm.hook.get_setup() == [7, 7]


class UnderscoreHooks:
    """A hook whose argument is named like the lazy function's own parameters."""

    @hookspec
    def add_one(self, _ap_lazy: u32) -> u32:  # type: ignore[empty-body]
        ...


def test_arguments_named_like_the_lazy_functions_own_are_bound_at_load(
    demo: Demo, private_cache: Path
) -> None:
    """A hook argument starting with ``_ap_`` would meet the lazy function's keyword:
    such a hook is bound at load and called as before, by name too."""
    wasm = demo(k=4, funcs=["add-one"])
    pm = pluggy.PluginManager("demo")
    pm.add_hookspecs(UnderscoreHooks)
    with PluginHost(pm, package=PACKAGE) as host:
        plugin = host.load(wasm, name="p")
        assert not _is_lazy(plugin.add_one)
        assert _bound_hooks(plugin.image.component) == ["add_one"]
        assert plugin.add_one(_ap_lazy=1) == 5
        assert pm.hook.add_one(_ap_lazy=2) == [6]


def test_lazy_functions_let_their_compiled_component_go(demo: Demo, private_cache: Path) -> None:
    """Hook functions never called (still holding what binds them) and bound ones alike
    keep no compiled component alive once its plugins are unloaded."""
    wasm = demo(k=9, funcs=["add-one", "pick"])
    pm = demo_pm()
    with PluginHost(pm, package=PACKAGE) as host:
        plugin = host.load(wasm, name="p")
        assert plugin.add_one(1) == 10  # bound; pick stays lazy
        component = weakref.ref(plugin.image.component)
        assert _is_lazy(plugin.pick)
        lazy = weakref.ref(plugin.pick.__func__)  # (it and its _LazyHook hold each other)
        del plugin
        host.unload("p")
        release_compiled()
        gc.collect()
        assert component() is None
        assert lazy() is None


def test_an_export_index_missing_at_the_first_call_is_refused_and_tried_again(
    demo: Demo, private_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The export's index is looked up at the first call. If the compiled component lacks
    it (a damaged compile cache: its types listed the export), that call raises a
    PluginLoadError naming the plugin and the export, nothing runs, and the function
    stays unbound, so a later call binds it once the index is there."""
    wasm = demo(k=2, funcs=["add-one"])
    with PluginHost(demo_pm(), package=PACKAGE) as host:
        plugin = host.load(wasm, name="p")
        monkeypatch.setattr(ComponentImage, "export_index", lambda self, name, iface=None: None)
        with pytest.raises(PluginLoadError, match=r"plugin 'p' does not export .*add-one"):
            plugin.add_one(1)
        assert _is_lazy(plugin.add_one)
        assert _bound_hooks(plugin.image.component) == []
        monkeypatch.undo()
        assert plugin.add_one(1) == 3
        assert not _is_lazy(plugin.add_one)
