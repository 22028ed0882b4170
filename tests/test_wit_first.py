"""WIT-first hosts: hookspecs bound to functions of existing WIT packages."""

from __future__ import annotations

import logging
from pathlib import Path

import pluggy
import pytest
import wasmtime

from airssys_plugins import (
    Capabilities,
    CapabilityDenied,
    ContractMismatchError,
    PluginHost,
    PluginLoadError,
    u32,
    wit_binding,
)
from airssys_plugins.authoring.build import build_guest
from airssys_plugins.cli import main as cli_main

spec = pluggy.HookspecMarker("calc")

# The component model book's example package, as a third party would have published it.
ADDER_WIT = """package docs:adder@0.1.0;

interface add {
  add: func(x: u32, y: u32) -> u32;
}

world adder {
  export add;
}
"""
ADDER_WAT = """(module
  (func (export "docs:adder/add@0.1.0#add") (param i32 i32) (result i32)
    (i32.add (local.get 0) (local.get 1))))
"""
ROOT_WIT = """package example:root@1.0.0;

world guest {
  export add: func(a: u32, b: u32) -> u32;
}
"""
ROOT_WAT = """(module
  (func (export "add") (param i32 i32) (result i32)
    (i32.mul (i32.add (local.get 0) (local.get 1)) (i32.const 10))))
"""


class CalcHooks:
    @spec
    @wit_binding("docs:adder/add@0.1.0#add")
    def add_numbers(self, left: u32, right: u32) -> u32:
        """Bound to the published interface; parameter names differ, positions bind."""


class RootHooks:
    @spec
    def combine(self, first: u32, second: u32) -> u32:
        """Bound through PluginHost(bindings=...) to a root export."""


def _build(tmp_path: Path, name: str, wit: str, wat: str, world: str) -> Path:
    src = tmp_path / name
    (src / "wit").mkdir(parents=True)
    (src / "wit" / "world.wit").write_text(wit)
    (src / "guest.wat").write_text(wat)
    return build_guest(src, world=world)


def test_hookspec_bound_to_published_interface(tmp_path: Path) -> None:
    """A component built for docs:adder/add@0.1.0 serves a hook bound to it."""
    pm = pluggy.PluginManager("calc")
    pm.add_hookspecs(CalcHooks)
    with PluginHost(pm) as host:
        plugin = host.load(_build(tmp_path, "adder", ADDER_WIT, ADDER_WAT, "adder"))
        assert plugin.hooks == {"add_numbers": "docs:adder/add@0.1.0#add"}
        assert pm.hook.add_numbers(left=2, right=40) == [42]


def test_hookspec_bound_to_root_export(tmp_path: Path) -> None:
    """bindings={'hook': 'func'} binds a hook to a function exported at the root."""
    pm = pluggy.PluginManager("calc")
    pm.add_hookspecs(RootHooks)
    with PluginHost(pm, bindings={"combine": "add"}) as host:
        plugin = host.load(_build(tmp_path, "root", ROOT_WIT, ROOT_WAT, "guest"))
        assert plugin.hooks == {"combine": "add"}
        assert pm.hook.combine(first=1, second=2) == [30]


def test_binding_checks_types_against_the_component(tmp_path: Path) -> None:
    """A binding whose annotations do not fit the component's function is a mismatch."""

    class WrongHooks:
        @spec
        @wit_binding("docs:adder/add@0.1.0#add")
        def add_numbers(self, left: u32, right: str) -> u32: ...

    pm = pluggy.PluginManager("calc")
    pm.add_hookspecs(WrongHooks)
    with PluginHost(pm) as host, pytest.raises(ContractMismatchError) as info:
        host.load(_build(tmp_path, "adder", ADDER_WIT, ADDER_WAT, "adder"), name="adder")
    (mismatch,) = info.value.mismatches
    assert mismatch.hook == "add_numbers"
    assert mismatch.expected == "func(left: u32, right: string) -> u32"
    assert mismatch.actual == "func(x: u32, y: u32) -> u32"
    assert (
        "parameter 'right' (component calls it 'y') has type u32, expected string"
        in mismatch.detail
    )


def test_binding_to_incompatible_version(tmp_path: Path) -> None:
    """A 0.x package with another minor version is incompatible."""

    class NewerHooks:
        @spec
        @wit_binding("docs:adder/add@0.2.0#add")
        def add_numbers(self, left: u32, right: u32) -> u32: ...

    pm = pluggy.PluginManager("calc")
    pm.add_hookspecs(NewerHooks)
    with (
        PluginHost(pm) as host,
        pytest.raises(ContractMismatchError, match="incompatible package version"),
    ):
        host.load(_build(tmp_path, "adder", ADDER_WIT, ADDER_WAT, "adder"), name="adder")


# --------------------------------------------------------------------------- real-world gaps

# The shape of wit-bindgen's many-arguments test component: a world-level (bare) import.
BARE_IMPORT_WIT = """package example:many@1.0.0;

world guest {
  import imports: interface {
    double: func(a: u32) -> u32;
  }
  export run: func(a: u32) -> u32;
}
"""
BARE_IMPORT_WAT = """(module
  (import "imports" "double" (func $double (param i32) (result i32)))
  (func (export "run") (param i32) (result i32) (call $double (local.get 0))))
"""


class RunHooks:
    @spec
    @wit_binding("run")
    def run(self, a: u32) -> u32: ...


def test_world_level_import_can_be_provided(tmp_path: Path) -> None:
    """provide(interface='imports') serves a bare world-level import, granted by that name."""
    wasm = _build(tmp_path, "many", BARE_IMPORT_WIT, BARE_IMPORT_WAT, "guest")
    pm = pluggy.PluginManager("calc")
    pm.add_hookspecs(RunHooks)
    with PluginHost(pm, grants={"many": Capabilities(interfaces={"imports"})}) as host:

        @host.provide(interface="imports")
        def double(a: u32) -> u32:
            return a * 2

        assert all("imports" not in doc for doc in host.host_wit().values())
        host.load(wasm, name="many", requests=Capabilities(interfaces={"imports"}))
        assert pm.hook.run(a=21) == [42]


def test_world_level_import_needs_a_grant(tmp_path: Path) -> None:
    """Asking for a bare import that is not granted is a CapabilityDenied naming it."""
    wasm = _build(tmp_path, "many", BARE_IMPORT_WIT, BARE_IMPORT_WAT, "guest")
    pm = pluggy.PluginManager("calc")
    pm.add_hookspecs(RunHooks)
    with PluginHost(pm) as host:

        @host.provide(interface="imports")
        def double(a: u32) -> u32:
            return a * 2

        with pytest.raises(CapabilityDenied, match="interface imports"):
            host.load(wasm, name="many", requests=Capabilities(interfaces={"imports"}))


@pytest.mark.parametrize("interface", ["Imports", "docs:adder/", "a b"])
def test_provide_rejects_a_malformed_interface_name(interface: str) -> None:
    """provide() refuses an interface that is neither ns:pkg/iface@v nor a bare WIT name."""
    pm = pluggy.PluginManager("calc")
    pm.add_hookspecs(RunHooks)
    with PluginHost(pm) as host, pytest.raises(ValueError, match="world-level import"):

        @host.provide(interface=interface)
        def double(a: u32) -> u32:
            return a * 2


# Component-model async: an async-lifted export, a stream result, an error-context param.
ASYNC_EXPORT = """(component
  (core module $m
    (func (export "run") (param i32) (result i32) i32.const 0)
    (func (export "cb") (param i32 i32 i32) (result i32) i32.const 0))
  (core instance $i (instantiate $m))
  (type $ft (func async (param "a" u32) (result u32)))
  (func $run (type $ft) (canon lift (core func $i "run") async (callback (core func $i "cb"))))
  (export "run" (func $run)))
"""
STREAM_EXPORT = """(component
  (core module $m (func (export "run") (param i32) (result i32) i32.const 0))
  (core instance $i (instantiate $m))
  (type $s (stream u8))
  (func $run (param "a" u32) (result $s) (canon lift (core func $i "run")))
  (export "run" (func $run)))
"""
ERROR_CONTEXT_EXPORT = """(component
  (core module $m (func (export "run") (param i32) (result i32) i32.const 0))
  (core instance $i (instantiate $m))
  (func $run (param "a" error-context) (result u32) (canon lift (core func $i "run")))
  (export "run" (func $run)))
"""


def _component(tmp_path: Path, wat: str, name: str = "c") -> Path:
    path = tmp_path / f"{name}.wasm"
    path.write_bytes(wasmtime.wat2wasm(wat))
    return path


@pytest.mark.parametrize(
    ("wat", "what", "actual"),
    [
        (ASYNC_EXPORT, "async func", "async func(a: u32) -> u32"),
        (STREAM_EXPORT, "stream<u8>", "func(a: u32) -> stream<u8>"),
    ],
    ids=["async-func", "stream"],
)
def test_component_model_async_is_refused_at_the_contract_check(
    tmp_path: Path, wat: str, what: str, actual: str
) -> None:
    """An async export (or one using streams) bound to a sync hook is a mismatch that says
    why, not a trap on the first call."""
    pm = pluggy.PluginManager("calc")
    pm.add_hookspecs(RunHooks)
    with PluginHost(pm) as host, pytest.raises(ContractMismatchError) as info:
        host.load(_component(tmp_path, wat), name="p3")
    (mismatch,) = info.value.mismatches
    assert mismatch.actual == actual
    assert f"uses component-model async ({what})" in mismatch.detail
    assert "export a plain (sync) `func`" in mismatch.detail
    assert pm.hook.run(a=1) == []


def test_error_context_component_load_gives_the_reason(tmp_path: Path) -> None:
    """A component wasmtime-py cannot compile (error-context) fails as PluginLoadError with
    wasmtime's reason, not only its headline."""
    pm = pluggy.PluginManager("calc")
    pm.add_hookspecs(RunHooks)
    with PluginHost(pm) as host, pytest.raises(PluginLoadError, match="error-context"):
        host.load(_component(tmp_path, ERROR_CONTEXT_EXPORT), name="oops")


# An adder whose author left the version off its interface.
UNVERSIONED_ADDER = """(component
  (core module $m
    (func (export "add") (param i32 i32) (result i32) local.get 0 local.get 1 i32.add))
  (core instance $i (instantiate $m))
  (func $add (param "x" u32) (param "y" u32) (result u32) (canon lift (core func $i "add")))
  (instance $add (export "add" (func $add)))
  (export "docs:adder/add" (instance $add)))
"""


def test_unversioned_interface_is_shown_as_unversioned(tmp_path: Path) -> None:
    """A component exporting docs:adder/add (no version) for a hook bound to @0.1.0 is an
    incompatible version, shown as 'unversioned', never 'version None'."""
    pm = pluggy.PluginManager("calc")
    pm.add_hookspecs(CalcHooks)
    with PluginHost(pm) as host, pytest.raises(ContractMismatchError) as info:
        host.load(_component(tmp_path, UNVERSIONED_ADDER), name="adder")
    (mismatch,) = info.value.mismatches
    assert (mismatch.expected, mismatch.actual) == ("version 0.1.0", "unversioned")
    assert "None" not in str(info.value)


# A calculator exporting docs:adder/add and docs:adder/mul.
CALCULATOR = """(component
  (core module $m
    (func (export "add") (param i32 i32) (result i32) local.get 0 local.get 1 i32.add)
    (func (export "mul") (param i32 i32) (result i32) local.get 0 local.get 1 i32.mul))
  (core instance $i (instantiate $m))
  (func $add (param "x" u32) (param "y" u32) (result u32) (canon lift (core func $i "add")))
  (func $mul (param "x" u32) (param "y" u32) (result u32) (canon lift (core func $i "mul")))
  (instance $a (export "add" (func $add)))
  (instance $m2 (export "mul" (func $mul)))
  (export "docs:adder/add@0.1.0" (instance $a))
  (export "docs:adder/mul@0.1.0" (instance $m2)))
"""
TYPO_HOOKS = """
import pluggy
from airssys_plugins import u32, wit_binding

spec = pluggy.HookspecMarker("calc")


class TypoHooks:
    @spec
    @wit_binding("docs:adder/add@0.1.0#add")
    def add(self, x: u32, y: u32) -> u32: ...

    @spec
    @wit_binding("docs:adder/multiply@0.1.0#mul")
    def times(self, x: u32, y: u32) -> u32: ...
"""


def test_binding_to_an_interface_the_component_lacks_warns(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A misspelt binding is logged as a warning naming the export it probably meant."""
    hooks = tmp_path / "typo_hooks.py"
    hooks.write_text(TYPO_HOOKS)
    namespace: dict[str, object] = {}
    exec(compile(TYPO_HOOKS, str(hooks), "exec"), namespace)
    pm = pluggy.PluginManager("calc")
    pm.add_hookspecs(namespace["TypoHooks"])
    with PluginHost(pm) as host, caplog.at_level(logging.WARNING, logger="airssys_plugins"):
        plugin = host.load(_component(tmp_path, CALCULATOR), name="calc")
    assert set(plugin.hooks) == {"add"}
    (record,) = [r for r in caplog.records if "misspelt" in r.getMessage()]
    assert record.levelno == logging.WARNING
    assert "hook 'times' is bound to docs:adder/multiply@0.1.0#mul" in record.getMessage()
    assert "it exports docs:adder/mul@0.1.0#mul" in record.getMessage()


def test_validate_reports_a_binding_the_component_lacks(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`airssys-plugins validate` warns about a bound hook the component does not export."""
    hooks = tmp_path / "typo_hooks.py"
    hooks.write_text(TYPO_HOOKS)
    wasm = _component(tmp_path, CALCULATOR, "calc")
    assert cli_main(["validate", str(wasm), "--contract", f"{hooks}:TypoHooks"]) == 0
    out, err = capsys.readouterr()
    assert "ok  add" in out
    assert "warning: hook 'times' is bound to docs:adder/multiply@0.1.0#mul" in err
    assert "docs:adder/mul@0.1.0#mul: is the binding misspelt?" in err


RESOURCE_EXPORT = """(component
  (type $thing (resource (rep i32)))
  (core module $m (func (export "size") (param i32) (result i32) local.get 0))
  (core instance $i (instantiate $m))
  (func $size (param "t" (borrow $thing)) (result u32) (canon lift (core func $i "size")))
  (instance $things (export "thing" (type $thing)) (export "size" (func $size)))
  (export "test:res/things@1.0.0" (instance $things)))
"""


def test_a_resource_parameter_keeps_its_name_in_the_mismatch(tmp_path: Path) -> None:
    """A resource handle is shown as borrow<thing> and said to be a resource."""

    class SizeHooks:
        @spec
        @wit_binding("test:res/things@1.0.0#size")
        def size(self, t: u32) -> u32: ...

    pm = pluggy.PluginManager("calc")
    pm.add_hookspecs(SizeHooks)
    with PluginHost(pm) as host, pytest.raises(ContractMismatchError) as info:
        host.load(_component(tmp_path, RESOURCE_EXPORT), name="res")
    (mismatch,) = info.value.mismatches
    assert mismatch.actual == "func(t: borrow<thing>) -> u32"
    assert (
        "has type borrow<thing>, expected u32 (borrow<thing> is a resource handle: annotate it "
        "Borrow[T] with T a @resource class named 'thing')"
    ) in mismatch.detail
