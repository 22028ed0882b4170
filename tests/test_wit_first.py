"""WIT-first hosts: hookspecs bound to functions of existing WIT packages."""

from __future__ import annotations

from pathlib import Path

import pluggy
import pytest

from airssys_plugins import ContractMismatchError, PluginHost, u32, wit_binding
from airssys_plugins.authoring.build import build_guest

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
