"""pluggy semantics with WebAssembly components in the PluginManager."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pluggy
import pytest

from airssys_plugins import (
    ContractMismatchError,
    HookOptions,
    PluginConflictError,
    PluginHost,
    PluginLoadError,
    PluginTrap,
    Result,
    u32,
)

from .demo import hookimpl

Demo = Callable[..., Path]


class PyPlugin:
    @hookimpl
    def add_one(self, x: int) -> int:
        return x + 1000


def test_one_call_reaches_python_and_wasm(
    pm: pluggy.PluginManager, host: PluginHost, demo: Demo
) -> None:
    """A hook call returns the results of Python and WASM implementations (1:N, LIFO)."""
    pm.register(PyPlugin(), name="py")
    host.load(demo(k=1), name="one")
    host.load(demo(k=2), name="two")
    assert pm.hook.add_one(x=5) == [7, 6, 1005]


def test_component_may_implement_a_subset(
    pm: pluggy.PluginManager, host: PluginHost, demo: Demo
) -> None:
    """A component exporting only some hook interfaces registers for just those."""
    plugin = host.load(demo(k=3, funcs=["add-one"]), name="sub")
    assert set(plugin.hooks) == {"add_one"}
    assert plugin.hooks["add_one"] == "demo:hooks/add-one@1.0.0#add-one"
    assert pm.hook.add_one(x=1) == [4]
    assert pm.hook.get_setup() == []


def test_firstresult_treats_none_as_no_result(
    pm: pluggy.PluginManager, host: PluginHost, demo: Demo
) -> None:
    """option::none from a component lets the next implementation answer."""
    host.load(demo(k=7, funcs=["pick"]), name="seven")
    host.load(demo(k=3, funcs=["pick"]), name="three")
    assert pm.hook.pick(x=7) == 70  # 'three' (called first) returns none
    assert pm.hook.pick(x=3) == 30
    assert pm.hook.pick(x=4) is None


def test_historic_call_is_replayed_to_a_component_loaded_later(
    pm: pluggy.PluginManager, host: PluginHost, demo: Demo
) -> None:
    """call_historic reaches components registered after the call."""
    pm.hook.setup.call_historic(kwargs={"x": 42})
    host.load(demo(k=1, funcs=["setup", "get-setup"]), name="late")
    assert pm.hook.get_setup() == [42]


class ResultSetupHooks:
    """DemoHooks' setup and get_setup, setup returning a WIT result (unwrapped by the host)."""

    @pluggy.HookspecMarker("demo")(historic=True)
    def setup(self, x: u32) -> Result[None, str]:
        """Remember x."""

    @pluggy.HookspecMarker("demo")
    def get_setup(self) -> u32:
        """Return what setup remembered."""

    @pluggy.HookspecMarker("demo")
    def fail(self, x: u32) -> u32:
        """Trap."""


def test_a_historic_hook_with_a_result_is_replayed_into_a_restarted_instance(
    demo: Demo,
) -> None:
    """A historic call is replayed into each new instance, whether its hook's result is
    unwrapped (``Result[...]``) or not: after a trap the plugin still knows setup(7)."""
    pm = pluggy.PluginManager("demo")
    pm.add_hookspecs(ResultSetupHooks)
    host = PluginHost(pm, package="demo:hooks@1.0.0")
    wasm = demo(
        k=1,
        funcs=["setup", "get-setup", "fail"],
        wit_overrides={"setup": "setup: func(x: u32) -> result<_, string>;"},
        core_overrides={
            "setup": '(func (export "demo:hooks/setup@1.0.0#setup") (param i32) (result i32)'
            " (global.set $g (local.get 0)) (i32.store8 (i32.const 256) (i32.const 0))"
            " (i32.const 256))"
        },
    )
    host.load(wasm, name="resulting")
    outcomes: list[Any] = []
    pm.hook.setup.call_historic(kwargs={"x": 7}, result_callback=outcomes.append)
    assert outcomes == []  # ok(()) unwraps to None, which pluggy does not pass on
    assert pm.hook.get_setup() == [7]
    with pytest.raises(PluginTrap):
        pm.hook.fail(x=0)
    assert pm.hook.get_setup() == [7]  # the new instance got setup(7) again
    host.close()


def test_tryfirst_trylast_order(pm: pluggy.PluginManager, host: PluginHost, demo: Demo) -> None:
    """HookOptions give components pluggy's ordering."""
    host.load(
        demo(k=1, funcs=["add-one"]), name="first", hooks={"add_one": HookOptions(tryfirst=True)}
    )
    host.load(
        demo(k=2, funcs=["add-one"]), name="last", hooks={"add_one": HookOptions(trylast=True)}
    )
    host.load(demo(k=3, funcs=["add-one"]), name="middle")
    assert pm.hook.add_one(x=0) == [1, 3, 2]


def test_specname_registers_an_export_for_another_hook(
    pm: pluggy.PluginManager, host: PluginHost, demo: Demo
) -> None:
    """specname points a component's implementation at a differently named hookspec."""
    # The component exports `add-one`; register it for `recurse` (same u32 -> u32 shape).
    plugin = host.load(
        demo(k=5, funcs=["add-one"]),
        name="renamed",
        hooks={"add_one": HookOptions(specname="recurse")},
    )
    assert pm.hook.recurse(n=1) == [6]
    assert pm.hook.add_one(x=1) == []
    assert "recurse" in plugin.hooks


def test_unload_and_unregister(pm: pluggy.PluginManager, host: PluginHost, demo: Demo) -> None:
    """Unloading removes the component from the PluginManager."""
    host.load(demo(k=1, funcs=["add-one"]), name="gone")
    assert pm.hook.add_one(x=1) == [2]
    host.unload("gone")
    assert pm.hook.add_one(x=1) == []
    assert pm.get_plugin("gone") is None
    with pytest.raises(KeyError, match="gone"):
        host.unload("gone")


def test_set_blocked(pm: pluggy.PluginManager, host: PluginHost, demo: Demo) -> None:
    """pm.set_blocked blocks a component like any plugin."""
    host.load(demo(k=1, funcs=["add-one"]), name="blocked")
    pm.set_blocked("blocked")
    assert pm.hook.add_one(x=1) == []
    assert pm.is_blocked("blocked")


def test_monitoring_sees_component_calls(
    pm: pluggy.PluginManager, host: PluginHost, demo: Demo
) -> None:
    """add_hookcall_monitoring reports calls into components with their results."""
    seen: list[tuple[str, Any, Any]] = []
    host.load(demo(k=1, funcs=["add-one"]), name="watched")
    undo = pm.add_hookcall_monitoring(
        lambda name, impls, kwargs: seen.append(
            ("before", name, [pm.get_name(i.plugin) for i in impls])
        ),
        lambda outcome, name, impls, kwargs: seen.append(("after", name, outcome.get_result())),
    )
    pm.hook.add_one(x=9)
    undo()
    assert seen == [("before", "add_one", ["watched"]), ("after", "add_one", [10])]


def test_duplicate_name_is_refused(host: PluginHost, demo: Demo) -> None:
    """Loading a second plugin under a taken name raises PluginConflictError."""
    host.load(demo(k=1, funcs=["add-one"]), name="dup")
    with pytest.raises(PluginConflictError, match="'dup' is already registered"):
        host.load(demo(k=2, funcs=["add-one"]), name="dup")


def test_every_mismatch_reported_at_once(host: PluginHost, demo: Demo) -> None:
    """Wrong parameter types and an incompatible version are all in one error."""
    wasm = demo(
        k=1,
        funcs=["add-one", "get-setup"],
        version="2.0.0",
        wit_overrides={"add-one": "add-one: func(x: string) -> u32;"},
        core_overrides={
            "add-one": '(func (export "demo:hooks/add-one@2.0.0#add-one") (param i32 i32) (result i32) (i32.const 0))'
        },
    )
    with pytest.raises(ContractMismatchError) as info:
        host.load(wasm, name="bad")
    err = info.value
    assert err.plugin == "bad"
    details = [(m.hook, m.detail) for m in err.mismatches]
    assert ("add_one", "demo:hooks/add-one@2.0.0#add-one: incompatible package version") in details
    assert (
        "get_setup",
        "demo:hooks/get-setup@2.0.0#get-setup: incompatible package version",
    ) in details
    type_problem = next(
        m for m in err.mismatches if m.hook == "add_one" and "parameter" in m.detail
    )
    assert type_problem.expected == "func(x: u32) -> u32"
    assert type_problem.actual == "func(x: string) -> u32"
    assert "plugin 'bad'" in str(err)
    assert "expected: func(x: u32) -> u32" in str(err)
    assert host.plugins == {}


def test_minor_version_difference_is_compatible(
    host: PluginHost, pm: pluggy.PluginManager, demo: Demo
) -> None:
    """A component built for 1.1.0 of the contract loads into a 1.0.0 host (same major)."""
    host.load(demo(k=4, funcs=["add-one"], version="1.1.0"), name="newer")
    assert pm.hook.add_one(x=1) == [5]


def test_component_with_no_hooks_is_refused(host: PluginHost, guest_dir: Path) -> None:
    """A component that implements none of the hooks says what it exports instead."""
    from airssys_plugins.authoring.build import build_guest

    src = guest_dir / "other"
    (src / "wit").mkdir(parents=True, exist_ok=True)
    (src / "wit" / "x.wit").write_text(
        "package other:thing@1.0.0;\ninterface calc { twice: func(x: u32) -> u32; }\nworld guest { export calc; }\n"
    )
    (src / "guest.wat").write_text(
        '(module (func (export "other:thing/calc@1.0.0#twice") (param i32) (result i32) (i32.mul (local.get 0) (i32.const 2))))'
    )
    with pytest.raises(ContractMismatchError, match="implements none of the host's hooks") as info:
        host.load(build_guest(src), name="other")
    assert "other:thing/calc@1.0.0#twice" in str(info.value)


def test_extra_exports_are_ignored_with_debug_log(
    host: PluginHost, pm: pluggy.PluginManager, guest_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Exports that match no hook are skipped and logged at debug level."""
    from airssys_plugins.authoring.build import build_guest

    src = guest_dir / "extra"
    (src / "wit").mkdir(parents=True, exist_ok=True)
    (src / "wit" / "x.wit").write_text(
        "package demo:hooks@1.0.0;\ninterface add-one { add-one: func(x: u32) -> u32; }\n"
        "interface bonus { bonus: func() -> u32; }\nworld guest { export add-one; export bonus; }\n"
    )
    (src / "guest.wat").write_text(
        '(module (func (export "demo:hooks/add-one@1.0.0#add-one") (param i32) (result i32) (i32.add (local.get 0) (i32.const 1)))'
        ' (func (export "demo:hooks/bonus@1.0.0#bonus") (result i32) (i32.const 7)))'
    )
    with caplog.at_level(logging.DEBUG, logger="airssys_plugins"):
        plugin = host.load(build_guest(src), name="extra")
    assert set(plugin.hooks) == {"add_one"}
    assert "ignoring export demo:hooks/bonus@1.0.0#bonus" in caplog.text
    assert pm.hook.add_one(x=1) == [2]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "not a WebAssembly binary"),
        (b"hello world", "not a WebAssembly binary"),
        (b"\0asm\x01\0\0\0", "core WebAssembly module, not a component"),
        (b"\0asm\x0d\0\x01\0garbage", "not a valid component"),
    ],
    ids=["empty", "text", "core-module", "corrupt"],
)
def test_bad_files_raise_load_error(
    host: PluginHost, tmp_path: Path, content: bytes, message: str
) -> None:
    """Files that are not components give PluginLoadError naming the plugin and file."""
    path = tmp_path / "broken.wasm"
    path.write_bytes(content)
    with pytest.raises(PluginLoadError, match=message) as info:
        host.load(path)
    assert info.value.plugin == "broken"
    assert "plugin 'broken'" in str(info.value)


def test_missing_file(host: PluginHost, tmp_path: Path) -> None:
    """A path that does not exist gives PluginLoadError, not a bare OSError traceback."""
    with pytest.raises(PluginLoadError, match="cannot read"):
        host.load(tmp_path / "nope.wasm")


def test_foreign_imports_are_refused(host: PluginHost, guest_dir: Path) -> None:
    """A component importing an interface the host does not provide fails to load, named."""
    from airssys_plugins.authoring.build import build_guest

    src = guest_dir / "needy"
    (src / "wit").mkdir(parents=True, exist_ok=True)
    (src / "wit" / "x.wit").write_text(
        "package demo:hooks@1.0.0;\ninterface add-one { add-one: func(x: u32) -> u32; }\n"
        "interface secret { peek: func() -> u32; }\nworld guest { import secret; export add-one; }\n"
    )
    (src / "guest.wat").write_text(
        '(module (import "demo:hooks/secret@1.0.0" "peek" (func $peek (result i32)))'
        ' (func (export "demo:hooks/add-one@1.0.0#add-one") (param i32) (result i32) (call $peek)))'
    )
    with pytest.raises(
        PluginLoadError,
        match=r"imports interface\(s\) the host does not provide: demo:hooks/secret@1.0.0",
    ):
        host.load(build_guest(src), name="needy")


def test_trap_names_plugin_and_hook_and_next_call_works(
    pm: pluggy.PluginManager, host: PluginHost, demo: Demo
) -> None:
    """A trap raises PluginTrap (cause: the wasmtime error); the instance is replaced."""
    plugin = host.load(demo(k=1, funcs=["add-one", "fail", "setup", "get-setup"]), name="crashy")
    pm.hook.setup.call_historic(kwargs={"x": 9})
    generation = plugin.instance.generation
    with pytest.raises(PluginTrap) as info:
        pm.hook.fail(x=1)
    err = info.value
    assert (err.plugin, err.hook, err.reason) == ("crashy", "fail", "unreachable executed")
    assert type(err.__cause__).__name__ == "WasmtimeError"
    assert pm.hook.add_one(x=1) == [2]
    assert plugin.instance.generation == generation + 1
    # the historic setup call was replayed into the fresh instance
    assert pm.hook.get_setup() == [9]
