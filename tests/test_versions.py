"""Versioned contracts side by side: plugins built for an older contract version load
beside current ones, through an adapter where a hook changed."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pluggy
import pytest

from airssys_plugins import (
    ContractMismatchError,
    ContractVersion,
    HookspecError,
    PluginHost,
    u32,
    u64,
)
from airssys_plugins.authoring.build import build_guest
from airssys_plugins.cli import main
from airssys_plugins.contract.mapping import Contract

spec = pluggy.HookspecMarker("calc")


class V1Hooks:
    """calc:hooks@1.0.0, which older plugins were built for."""

    @spec
    def scale(self, x: u32) -> u32:
        """Scale x by the plugin's fixed factor."""

    @spec
    def add(self, a: u32, b: u32) -> u32: ...

    @spec(firstresult=True)
    def pick(self, x: u32) -> u32: ...

    @spec(historic=True)
    def record_level(self, level: u32) -> None: ...

    @spec
    def level(self) -> u32: ...

    @spec
    def old_only(self, x: u32) -> u32:
        """Dropped in 2.0.0."""


class V2Hooks:
    """calc:hooks@2.0.0, the host's current contract."""

    @spec
    def scale(self, x: u32, factor: u32) -> u64:
        """Scale x by factor."""

    @spec
    def add(self, a: u32, b: u32) -> u32: ...

    @spec(firstresult=True)
    def pick(self, x: u32) -> u32: ...

    @spec(historic=True)
    def record_level(self, level: u32) -> None: ...

    @spec
    def level(self) -> u32: ...


def _exports(version: str) -> str:
    return f"""
  (global $level (mut i32) (i32.const 0))
  (func (export "calc:hooks/add@{version}#add") (param i32 i32) (result i32)
    (i32.add (local.get 0) (local.get 1)))
  (func (export "calc:hooks/record-level@{version}#record-level") (param i32)
    (global.set $level (local.get 0)))
  (func (export "calc:hooks/level@{version}#level") (result i32) (global.get $level))
"""


V1_WAT = f"""(module {_exports("1.0.0")}
  (func (export "calc:hooks/scale@1.0.0#scale") (param i32) (result i32)
    (i32.mul (local.get 0) (i32.const 10)))
  (func (export "calc:hooks/pick@1.0.0#pick") (param i32) (result i32) (i32.const 1))
  (func (export "calc:hooks/old-only@1.0.0#old-only") (param i32) (result i32) (local.get 0)))
"""
V2_WAT = f"""(module {_exports("2.0.0")}
  (func (export "calc:hooks/scale@2.0.0#scale") (param i32 i32) (result i64)
    (i64.mul (i64.extend_i32_u (local.get 0)) (i64.extend_i32_u (local.get 1))))
  (func (export "calc:hooks/pick@2.0.0#pick") (param i32) (result i32) (i32.const 2)))
"""


def scale_v1(old: Any, x: int, factor: int) -> int:
    """Serve the 2.0.0 hook with a 1.0.0 plugin: its fixed factor, times the new one."""
    return int(old(x=x)) * factor


def _build(
    tmp_path: Path, name: str, specs: type, package: str, wat: str, hooks: list[str] | None = None
) -> Path:
    src = tmp_path / name
    (src / "wit").mkdir(parents=True)
    contract = Contract.from_hookspecs(specs, package=package)
    (src / "wit" / "world.wit").write_text(contract.wit(hooks=hooks))
    (src / "guest.wat").write_text(wat)
    return build_guest(src, world="plugin")


@pytest.fixture
def plugins(tmp_path: Path) -> dict[str, Path]:
    return {
        "old": _build(tmp_path, "old", V1Hooks, "calc:hooks@1.0.0", V1_WAT),
        "new": _build(tmp_path, "new", V2Hooks, "calc:hooks@2.0.0", V2_WAT),
    }


def _pm() -> pluggy.PluginManager:
    pm = pluggy.PluginManager("calc")
    pm.add_hookspecs(V2Hooks)
    return pm


V1 = ContractVersion(V1Hooks, "calc:hooks@1.0.0", adapters={"scale": scale_v1})
# What the CLI reads beside the hookspecs (`--contract tests.test_versions:V2Hooks`).
PACKAGE = "calc:hooks@2.0.0"
CONTRACT_VERSIONS = [V1]


def test_plugins_of_both_versions_in_one_host(plugins: dict[str, Path]) -> None:
    """A 1.0.0 and a 2.0.0 plugin serve the same hooks; the changed hook goes through the
    adapter, unchanged ones call the old export as is, dropped ones are not served."""
    pm = _pm()
    with PluginHost(pm, package="calc:hooks@2.0.0", versions=[V1]) as host:
        old = host.load(plugins["old"], name="old")
        new = host.load(plugins["new"], name="new")
        assert old.contract_version == "calc:hooks@1.0.0"
        assert new.contract_version == "calc:hooks@2.0.0"
        assert old.hooks["scale"] == "calc:hooks/scale@1.0.0#scale"
        assert "old_only" not in old.hooks
        assert sorted(pm.hook.scale(x=3, factor=2)) == [6, 60]
        assert pm.hook.add(a=1, b=2) == [3, 3]


def test_firstresult_and_historic_behave_the_same_across_versions(
    plugins: dict[str, Path],
) -> None:
    """firstresult takes the first answer whatever version serves it; a historic call is
    replayed to a plugin of the older version loaded later."""
    pm = _pm()
    with PluginHost(pm, package="calc:hooks@2.0.0", versions=[V1]) as host:
        pm.hook.record_level.call_historic(kwargs={"level": 7})
        host.load(plugins["old"], name="old")
        assert pm.hook.level() == [7]
        assert pm.hook.pick(x=0) == 1
        host.load(plugins["new"], name="new")
        assert pm.hook.level() == [7, 7]
        assert pm.hook.pick(x=0) == 2  # the last registered is called first, as in pluggy
        host.unload("new")
        assert pm.hook.pick(x=0) == 1


def test_without_versions_an_older_plugin_is_a_version_mismatch(
    plugins: dict[str, Path],
) -> None:
    """A host that accepts only its current contract refuses a 1.0.0 plugin, as before."""
    with (
        PluginHost(_pm(), package="calc:hooks@2.0.0") as host,
        pytest.raises(ContractMismatchError, match="incompatible package version"),
    ):
        host.load(plugins["old"], name="old")


def test_a_changed_hook_without_adapter_is_refused_at_construction() -> None:
    """An older version whose hook changed, with no adapter, is a HookspecError naming the
    hook, both signatures and the fix, before any plugin loads."""
    with pytest.raises(HookspecError) as info:
        PluginHost(
            _pm(),
            package="calc:hooks@2.0.0",
            versions=[ContractVersion(V1Hooks, "calc:hooks@1.0.0")],
        )
    message = str(info.value)
    assert "hook 'scale' changed between calc:hooks@1.0.0 (func(x: u32) -> u32)" in message
    assert "calc:hooks@2.0.0 (func(x: u32, factor: u32) -> u64)" in message
    assert "ContractVersion(adapters={'scale': ...})" in message


def test_every_version_problem_at_once() -> None:
    """Adapters for unknown or dropped hooks and a changed hook are reported together."""
    version = ContractVersion(
        V1Hooks, "calc:hooks@1.0.0", adapters={"nope": scale_v1, "old_only": scale_v1}
    )
    with pytest.raises(ExceptionGroup) as info:
        PluginHost(_pm(), package="calc:hooks@2.0.0", versions=[version])
    messages = sorted(str(e) for e in info.value.exceptions)
    assert len(messages) == 3
    assert any("adapter for 'nope', which is no hook of that version" in m for m in messages)
    assert any("'old_only', which the current contract" in m for m in messages)
    assert any("hook 'scale' changed" in m for m in messages)


V3_WAT = """(module
  (func (export "calc:hooks/add@3.0.0#add") (param i32 i32) (result i32) (local.get 0)))
"""


def test_a_plugin_of_no_accepted_version_names_the_versions(tmp_path: Path) -> None:
    """A 3.0.0 plugin fits neither version: the error lists the versions the host accepts."""
    wasm = _build(tmp_path, "v3", V2Hooks, "calc:hooks@3.0.0", V3_WAT, ["add"])
    with (
        PluginHost(_pm(), package="calc:hooks@2.0.0", versions=[V1]) as host,
        pytest.raises(ContractMismatchError) as info,
    ):
        host.load(wasm, name="v3")
    assert "contract versions calc:hooks@2.0.0, calc:hooks@1.0.0" in str(info.value)
    assert "incompatible package version" in str(info.value)


def test_an_adapter_calling_the_old_hook_wrongly_says_so(plugins: dict[str, Path]) -> None:
    """An adapter that passes the old hook arguments it does not take gets a TypeError that
    names the old hook's arguments."""

    def wrong(old: Any, x: int, factor: int) -> int:
        return int(old(x=x, factor=factor))

    pm = _pm()
    version = ContractVersion(V1Hooks, "calc:hooks@1.0.0", adapters={"scale": wrong})
    with PluginHost(pm, package="calc:hooks@2.0.0", versions=[version]) as host:
        host.load(plugins["old"], name="old")
        with pytest.raises(TypeError, match=r"it takes \['x'\]"):
            pm.hook.scale(x=1, factor=2)


def test_validate_and_list_show_the_contract_version(
    plugins: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """With CONTRACT_VERSIONS beside the hookspecs, validate accepts a 1.0.0 plugin and
    says so; list shows which version each plugin uses."""
    spec = "tests.test_versions:V2Hooks"
    assert main(["validate", str(plugins["old"]), "--contract", spec]) == 0
    out = capsys.readouterr().out
    assert "ok  scale                    calc:hooks/scale@1.0.0#scale" in out
    assert "contract calc:hooks@1.0.0 (an older version the host accepts)" in out

    folder = tmp_path / "plugins"
    folder.mkdir()
    for name, wasm in plugins.items():
        shutil.copy(wasm, folder / f"{name}.wasm")
    argv = ["list", "--app", "calc", "--contract", spec, "--dir", str(folder)]
    argv += ["--no-user-dirs", "--no-site-dirs", "--no-packs"]
    assert main([*argv, "--json"]) == 0
    rows = {r["name"]: r["contract"] for r in json.loads(capsys.readouterr().out)}
    assert rows == {"old": "calc:hooks@1.0.0", "new": "calc:hooks@2.0.0"}
    assert main(argv) == 0
    table = capsys.readouterr().out
    (old_row,) = [line for line in table.splitlines() if line.startswith("old ")]
    assert "(contract calc:hooks@1.0.0)" in old_row
    (new_row,) = [line for line in table.splitlines() if line.startswith("new ")]
    assert "(contract" not in new_row
