"""Plugin directories, precedence, broken and disabled plugins, lockfiles, load_plugins."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pluggy
import pytest

from airssys_plugins import (
    Capabilities,
    CapabilityDenied,
    ContractMismatchError,
    IntegrityError,
    LockEntry,
    Lockfile,
    ManifestError,
    PluginHost,
    PluginLoadError,
    PluginShadowedWarning,
    PluginSource,
    PluginTimeout,
    discover_plugins,
)
from airssys_plugins.discovery.state import PluginState

Demo = Callable[..., Path]


def plugin_dir(root: Path, name: str, wasm: Path, extra: str = "", version: str = "1.0.0") -> Path:
    """A plugin directory: plugin.toml and the component beside it."""
    d = root / name
    d.mkdir(parents=True, exist_ok=True)
    shutil.copy(wasm, d / f"{name}.wasm")
    (d / "plugin.toml").write_text(f'name = "{name}"\nversion = "{version}"\n{extra}')
    return d


def user_dir(app: str = "demo") -> Path:
    return Path(os.environ["XDG_DATA_HOME"]) / app / "plugins"


def site_dir(app: str = "demo") -> Path:
    return Path(os.environ["XDG_DATA_DIRS"]) / app / "plugins"


def lock_of(app: str, *sources: PluginSource) -> Lockfile:
    return Lockfile.from_entries(
        app, [LockEntry.for_source(s, s.read_component()[1]) for s in sources]
    )


def test_directories_precedence_and_shadow_warnings(
    demo: Demo, host: PluginHost, pm: pluggy.PluginManager, tmp_path: Path
) -> None:
    """Explicit dirs in order, then user, then site; first of a name wins, with a warning."""
    first, second = tmp_path / "first", tmp_path / "second"
    one_add = demo(k=1, funcs=["add-one"])
    plugin_dir(first, "adder", demo(k=10, funcs=["add-one"]))
    plugin_dir(second, "adder", one_add)  # shadowed by first/
    second.mkdir(exist_ok=True)
    shutil.copy(demo(k=2, funcs=["add-one"]), second / "bare.wasm")  # a bare component
    (second / "notes.txt").write_text("not a plugin")
    plugin_dir(user_dir(), "adder", one_add)  # shadowed by first/
    plugin_dir(user_dir(), "personal", demo(k=3, funcs=["add-one"]))
    plugin_dir(site_dir(), "personal", one_add)  # shadowed by the user dir
    plugin_dir(site_dir(), "shared", demo(k=5, funcs=["add-one"]))

    with pytest.warns(PluginShadowedWarning) as caught:
        found = discover_plugins("demo", [first, second], packs=False)
    messages = [str(w.message) for w in caught]
    assert len(messages) == 3
    assert any(
        str(second / "adder" / "plugin.toml") in m and str(first / "adder" / "plugin.toml") in m
        for m in messages
    )
    assert [(s.name, s.kind) for s in found] == [
        ("adder", "dir"),
        ("bare", "dir"),
        ("personal", "user"),
        ("shared", "site"),
    ]
    assert found.get("adder") is not None
    assert found.get("adder").origin == str(first)
    assert [(loser.kind, winner.kind) for loser, winner in found.shadowed] == [
        ("dir", "dir"),
        ("user", "dir"),
        ("site", "user"),
    ]

    report = host.load_plugins(found)
    assert sorted(report.loaded) == ["adder", "bare", "personal", "shared"]
    assert sorted(pm.hook.add_one(x=1)) == [3, 4, 6, 11]
    assert [e.name for e in report.shadowed] == ["adder", "adder", "personal"]


def test_single_plugins_and_paths(demo: Demo, host: PluginHost, tmp_path: Path) -> None:
    """A dir holding plugin.toml, a plugin.toml, or a .wasm given directly is one plugin."""
    one = plugin_dir(tmp_path, "one", demo(k=1, funcs=["add-one"]))
    two = plugin_dir(tmp_path, "two", demo(k=2, funcs=["add-one"]))
    found = discover_plugins(
        "demo",
        [one, two / "plugin.toml", demo(k=3, funcs=["add-one"])],
        user_dirs=False,
        site_dirs=False,
        packs=False,
    )
    assert [s.kind for s in found] == ["path", "path", "path"]
    assert [s.name for s in found][:2] == ["one", "two"]
    report = host.load_plugins([one, str(two)])  # paths work without discovery too
    assert sorted(report.loaded) == ["one", "two"]


def test_broken_plugins_are_collected(
    demo: Demo, host: PluginHost, pm: pluggy.PluginManager, tmp_path: Path
) -> None:
    """Bad manifest, corrupt wasm, missing file and contract mismatches are reported by
    name; the healthy plugin still loads."""
    good = demo(k=1, funcs=["add-one"])
    plugin_dir(tmp_path, "good", good)
    plugin_dir(tmp_path, "badmanifest", good, 'tryfirst = true\n[limits]\nmemroy = "1 MiB"')
    (plugin_dir(tmp_path, "corrupt", good) / "corrupt.wasm").write_bytes(b"\0asm garbage")
    plugin_dir(tmp_path, "missing", good, 'component = "nowhere.wasm"')
    plugin_dir(tmp_path, "v2", demo(k=1, funcs=["add-one"], version="2.0.0"))
    plugin_dir(tmp_path, "target", good, '[contract]\npackage = "demo:hooks"\nversion = "^2.0"')
    found = discover_plugins("demo", [tmp_path], user_dirs=False, site_dirs=False, packs=False)
    assert found.get("badmanifest").broken  # type: ignore[union-attr]  # found, not loaded yet

    report = host.load_plugins(found)
    assert list(report.loaded) == ["good"]
    assert pm.hook.add_one(x=1) == [2]
    errors = {e.name: e.error for e in report.broken}
    assert sorted(errors) == ["badmanifest", "corrupt", "missing", "target", "v2"]
    assert isinstance(errors["badmanifest"], ManifestError)
    assert [p.field for p in errors["badmanifest"].problems] == ["tryfirst", "limits.memroy"]
    assert isinstance(errors["corrupt"], PluginLoadError)
    assert isinstance(errors["missing"], PluginLoadError)
    assert "nowhere.wasm" in str(errors["missing"])
    assert isinstance(errors["v2"], ContractMismatchError)
    assert isinstance(errors["target"], ContractMismatchError)
    assert "targets demo:hooks ^2.0" in str(errors["target"])
    assert all(e.plugin == name for name, e in errors.items())
    assert report["corrupt"].reason.startswith("PluginLoadError: plugin 'corrupt'")


def test_strict_mode_raises_and_loads_nothing(
    demo: Demo, host: PluginHost, pm: pluggy.PluginManager, tmp_path: Path
) -> None:
    """strict=True raises the first failure and unloads what the call had loaded."""
    plugin_dir(tmp_path, "a-good", demo(k=1, funcs=["add-one"]))
    plugin_dir(tmp_path, "b-broken", demo(k=1, funcs=["add-one"]), "nmae = 1")
    with pytest.raises(ManifestError) as info:
        host.load_plugins([tmp_path / "a-good", tmp_path / "b-broken"], strict=True)
    assert info.value.plugin == "b-broken"
    assert host.plugins == {}
    assert pm.get_plugin("a-good") is None


def test_disabled_plugins_are_found_but_not_loaded(
    demo: Demo, host: PluginHost, pm: pluggy.PluginManager
) -> None:
    """A disabled plugin stays on disk and in the listing; enabling it loads it again."""
    plugin_dir(user_dir(), "adder", demo(k=1, funcs=["add-one"]))
    state = PluginState.for_app("demo")
    assert state.path == Path(os.environ["XDG_CONFIG_HOME"]) / "demo" / "plugins.toml"
    assert state.set_enabled("adder", False) is True
    assert state.set_enabled("adder", False) is False  # already disabled
    report = host.load_plugins(discover_plugins("demo", packs=False))
    assert [(e.name, e.status) for e in report] == [("adder", "disabled")]
    assert pm.get_plugin("adder") is None
    assert (user_dir() / "adder" / "adder.wasm").is_file()

    state.set_enabled("adder", True)
    report = host.load_plugins(discover_plugins("demo", packs=False))
    assert [(e.name, e.status) for e in report] == [("adder", "loaded")]


def test_lockfile_digest_mismatch_loads_nothing(
    demo: Demo, host: PluginHost, pm: pluggy.PluginManager, tmp_path: Path
) -> None:
    """A component that differs from the lockfile is refused before it is compiled."""
    plugin_dir(tmp_path, "adder", demo(k=1, funcs=["add-one"]))
    plugin_dir(tmp_path, "other", demo(k=2, funcs=["add-one"]))
    found = discover_plugins("demo", [tmp_path], user_dirs=False, site_dirs=False, packs=False)
    lock = lock_of("demo", *found)
    lock.write(tmp_path / "plugins.lock")
    assert Lockfile.read(tmp_path / "plugins.lock") == Lockfile(
        "demo", lock.entries, tmp_path / "plugins.lock"
    )

    # Not even a WebAssembly file: only a digest check that runs first can refuse it
    # with IntegrityError instead of a PluginLoadError from the compiler.
    (tmp_path / "adder" / "adder.wasm").write_bytes(b"tampered")
    report = host.load_plugins(found, lockfile=tmp_path / "plugins.lock")
    [broken] = report.broken
    assert broken.name == "adder"
    assert isinstance(broken.error, IntegrityError)
    assert lock.entries["adder"].sha256 in str(broken.error)
    assert pm.get_plugin("adder") is None
    assert list(report.loaded) == ["other"]

    host.unload("other")
    shutil.copy(demo(k=7, funcs=["add-one"]), tmp_path / "adder" / "adder.wasm")
    with pytest.raises(IntegrityError, match="nothing of it was loaded") as info:
        host.load_plugins(found, lockfile=tmp_path / "plugins.lock", strict=True)
    assert info.value.plugin == "adder"
    assert host.plugins == {}


def test_strict_lockfile_refuses_unlisted_plugins(
    demo: Demo, host: PluginHost, tmp_path: Path
) -> None:
    """In strict mode a plugin missing from the lockfile is refused; collect mode notes it."""
    locked = PluginSource.from_path(plugin_dir(tmp_path, "locked", demo(k=1, funcs=["add-one"])))
    lock = lock_of("demo", locked)
    extra = plugin_dir(tmp_path, "extra", demo(k=2, funcs=["add-one"]))
    with pytest.raises(IntegrityError, match=r"plugin 'extra' \(.*\) is not in the lockfile"):
        host.load_plugins([locked, extra], lockfile=lock, strict=True)
    assert host.plugins == {}

    report = host.load_plugins([locked, extra], lockfile=lock)
    assert sorted(report.loaded) == ["extra", "locked"]
    assert report["extra"].note == "not in the lockfile"


def test_lockfile_holds_back_new_capability_requests(
    demo: Demo, host: PluginHost, tmp_path: Path
) -> None:
    """An upgrade asking for more capabilities than were locked stays unloaded."""
    d = plugin_dir(tmp_path, "adder", demo(k=1, funcs=["add-one"]))
    lock = lock_of("demo", PluginSource.from_path(d))
    (d / "plugin.toml").write_text('name = "adder"\n[capabilities]\nenv = ["HOME"]\n')
    report = host.load_plugins([d], lockfile=lock)
    [broken] = report.broken
    assert isinstance(broken.error, IntegrityError)
    assert "env:HOME" in str(broken.error)


def test_manifest_sha256_is_checked(demo: Demo, host: PluginHost, tmp_path: Path) -> None:
    """A manifest's sha256 must match its component."""
    d = plugin_dir(tmp_path, "adder", demo(k=1, funcs=["add-one"]), f'sha256 = "{"0" * 64}"')
    [broken] = host.load_plugins([d]).broken
    assert isinstance(broken.error, IntegrityError)
    assert "its manifest" in str(broken.error)


def test_manifest_options_limits_and_requests_apply(
    demo: Demo, host: PluginHost, pm: pluggy.PluginManager, tmp_path: Path
) -> None:
    """Hook options, the per-plugin timeout and capability requests come from the manifest."""
    plugin_dir(tmp_path, "a", demo(k=1, funcs=["add-one"]), "[hooks.add_one]\ntryfirst = true")
    plugin_dir(tmp_path, "b", demo(k=2, funcs=["add-one"]))
    plugin_dir(tmp_path, "c", demo(funcs=["spin"]), "[limits]\ntimeout = 0.05")
    plugin_dir(tmp_path, "d", demo(k=4, funcs=["add-one"]), '[capabilities]\nenv = ["HOME"]')
    report = host.load_plugins([tmp_path / n for n in "abcd"])
    assert pm.hook.add_one(x=1) == [2, 3]  # a is tryfirst although registered first
    with pytest.raises(PluginTimeout, match=r"after 0\.05 s"):
        pm.hook.spin()
    # Requests go to the sandbox, which refuses what the operator did not grant.
    assert isinstance(report["d"].error, CapabilityDenied)
    assert "env HOME" in str(report["d"].error)


def test_load_takes_a_plugin_directory_or_its_manifest(
    demo: Demo, host: PluginHost, pm: pluggy.PluginManager, tmp_path: Path
) -> None:
    """host.load() of a directory or plugin.toml reads the manifest as load_plugins does."""
    a = plugin_dir(tmp_path, "a", demo(k=1, funcs=["add-one"]), "[hooks.add_one]\ntryfirst = true")
    b = plugin_dir(tmp_path, "b", demo(k=2, funcs=["add-one"]))
    c = plugin_dir(tmp_path, "c", demo(funcs=["spin"]), "[limits]\ntimeout = 0.05")
    d = plugin_dir(tmp_path, "d", demo(k=4, funcs=["add-one"]), '[capabilities]\nenv = ["HOME"]')
    assert host.load(a).name == "a"
    assert host.load(b / "plugin.toml").name == "b"
    assert pm.hook.add_one(x=1) == [2, 3]  # a is tryfirst (its manifest) though registered first
    host.load(c)
    with pytest.raises(PluginTimeout, match=r"after 0\.05 s"):
        pm.hook.spin()
    with pytest.raises(CapabilityDenied, match="env HOME"):
        host.load(d)
    host.load(d, name="d2", requests=Capabilities())  # explicit arguments win
    assert sorted(pm.hook.add_one(x=1)) == [2, 3, 5]
    (tmp_path / "e").mkdir()
    with pytest.raises(PluginLoadError, match="is not a plugin"):
        host.load(tmp_path / "e")
    (a / "plugin.toml").write_text(f'name = "a"\nsha256 = "{"0" * 64}"\n')
    with pytest.raises(IntegrityError, match="its manifest"):
        host.load(a, name="a3")


def test_lockfile_errors_are_integrity_errors(tmp_path: Path) -> None:
    """An unreadable or malformed lockfile cannot vouch for anything."""
    path = tmp_path / "plugins.lock"
    with pytest.raises(IntegrityError, match="cannot read the lockfile"):
        Lockfile.read(path)
    path.write_text("version = 99\n")
    with pytest.raises(IntegrityError, match="has version 99"):
        Lockfile.read(path)
    path.write_text('version = 1\napp = "x"\n[plugins.a]\nversion = "1"\n')
    with pytest.raises(IntegrityError, match="lacks source, sha256"):
        Lockfile.read(path)


def test_discovered_plugins_remember_their_file_and_reload(
    demo: Demo, host: PluginHost, pm: pluggy.PluginManager, tmp_path: Path
) -> None:
    """A plugin loaded through discovery knows its file, so reload() can re-read it."""
    d = plugin_dir(tmp_path / "plugins", "adder", demo(k=1, funcs=["add-one"]))
    report = host.load_plugins(
        discover_plugins(
            "demo", [tmp_path / "plugins"], user_dirs=False, site_dirs=False, packs=False
        )
    )
    assert [e.status for e in report] == ["loaded"]
    assert host.plugins["adder"].path == d / "adder.wasm"
    shutil.copy(demo(k=4, funcs=["add-one"]), d / "adder.wasm")
    host.reload("adder")
    assert pm.hook.add_one(x=1) == [5]
