"""What loads share, and what a new process does not import (issue 18 §3, §5): the
per-component and per-signature memos of a load are exact, and never let one host's
contract, one hook's Python classes or one plugin's options leak into another's."""

from __future__ import annotations

import gc
import os
import shutil
import subprocess
import sys
import time
import weakref
from collections.abc import Callable
from pathlib import Path

import attrs
import pluggy
import pytest

from airssys_plugins import (
    ContractMismatchError,
    HookOptions,
    IntegrityError,
    PluginHost,
    _files,
    keep_compiled,
    release_compiled,
    u32,
)
from airssys_plugins.authoring.build import find_tool
from airssys_plugins.contract import wit
from airssys_plugins.discovery.lockfile import LockEntry, Lockfile
from airssys_plugins.discovery.sources import discover_plugins
from airssys_plugins.runtime import ComponentImage, engine
from airssys_plugins.runtime import instance as _instance

from .demo import PACKAGE, AddOnlyHooks, DemoHooks, PickTooHooks

Demo = Callable[..., Path]
ROOT = Path(__file__).resolve().parent.parent


def _demo_pm() -> pluggy.PluginManager:
    pm = pluggy.PluginManager("demo")
    pm.add_hookspecs(DemoHooks)
    return pm


# --------------------------------------------------------------------------- pluggy


def test_pluggy_sees_the_hookimpls_and_their_options(demo: Demo, private_cache: Path) -> None:
    """dir() of a plugin lists its hookimpls (what pluggy's register scans): every
    hookimpl with its options is registered, its data and the class's methods are never
    taken for hooks, and a plugin blocked and unblocked by its circuit registers the same
    way."""
    pm = _demo_pm()
    wasm = demo(k=3, funcs=["add-one", "pick"])
    with PluginHost(pm, package=PACKAGE) as host:
        plugin = host.load(wasm, name="p", hooks={"add_one": HookOptions(tryfirst=True)})
        names = dir(plugin)
        assert sorted(names) == ["add_one", "pick"]
        assert "close" not in names
        assert "call" not in names
        [impl] = pm.hook.add_one.get_hookimpls()
        assert impl.plugin is plugin
        assert impl.tryfirst
        assert not impl.trylast
        assert [i.plugin_name for i in pm.hook.pick.get_hookimpls()] == ["p"]
        host.load(wasm, name="q")
        assert [i.plugin_name for i in pm.hook.add_one.get_hookimpls()] == ["q", "p"]
        assert pm.hook.add_one(x=1) == [4, 4]
        assert pm.hook.pick(x=3) == 30  # the demo guest answers 10 * k for its own k


# --------------------------------------------------------------------------- contracts


class _OtherHooks:
    """add_one with another result type than the demo component exports."""

    @pluggy.HookspecMarker("demo")
    def add_one(self, x: u32) -> str:  # type: ignore[empty-body]
        """The demo component returns a u32 here."""


def test_a_contract_check_kept_for_one_host_never_passes_another(
    demo: Demo, private_cache: Path
) -> None:
    """A component's export checks are kept per component and contract: a host whose
    contract disagrees with the export refuses the component that another host (with a
    matching contract) loaded from the same bytes, and each again on a second load."""
    wasm = demo(k=2, funcs=["add-one"])
    matching = _demo_pm()
    other = pluggy.PluginManager("demo")
    other.add_hookspecs(_OtherHooks)
    with PluginHost(matching, package=PACKAGE) as ok, PluginHost(other, package=PACKAGE) as no:
        for round_ in range(2):
            ok.load(wasm, name=f"ok{round_}")
            with pytest.raises(ContractMismatchError) as info:
                no.load(wasm, name=f"no{round_}")
            assert info.value.plugin == f"no{round_}"
            assert "add_one" in str(info.value)
        assert matching.hook.add_one(x=1) == [3, 3]
        assert no.plugins == {}


# --------------------------------------------------------------------------- converters


@attrs.frozen
class _PointA:
    x: int
    y: int


@attrs.frozen
class _PointB:
    x: int
    y: int


def _point_sig(py: type) -> wit.FuncSig:
    record = wit.RecordT(
        "point", (("x", wit.Prim("u32")), ("y", wit.Prim("u32"))), py=py, py_fields=("x", "y")
    )
    return wit.FuncSig((("p", record),), record)


def test_converters_are_shared_by_signature_object_not_by_equality() -> None:
    """Equal signatures whose records are different Python classes get converters of
    their own (equality leaves the classes out); one signature object gets one set."""
    a, b = _point_sig(_PointA), _point_sig(_PointB)
    assert a == b  # WIT equality: the Python classes are not compared
    conv_a, conv_b = _instance._converters(a, False), _instance._converters(b, False)
    assert conv_a is not conv_b
    assert conv_a.lift is not conv_b.lift
    assert _instance._converters(a, False) is conv_a
    assert _instance._converters(a, True) is not conv_a  # latin1 lowers differently


def test_converters_kept_for_a_freed_signature_are_not_reused() -> None:
    """A converter entry names its signature object: a new signature that happens to get
    the id of a freed one is not served the old converters."""
    for _ in range(50):
        sig = _point_sig(_PointA)
        conv = _instance._converters(sig, False)
        key = (id(sig), False)
        assert _instance._CONVERTERS[key][0] is sig
        assert _instance._converters(sig, False) is conv
        del sig, conv


# --------------------------------------------------------------------------- load_plugins


def test_load_plugins_loads_a_warm_component_without_reading_it(
    demo: Demo, private_cache: Path, settled: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """load_plugins checks the digest (lockfile included) and loads the file by path: a
    warm component is neither read into memory nor hashed again, and a lockfile that
    disagrees still refuses it before anything is compiled."""
    d = tmp_path / "plugins" / "adder"
    d.mkdir(parents=True)
    shutil.copy(demo(k=5, funcs=["add-one"]), d / "adder.wasm")
    (d / "plugin.toml").write_text('name = "adder"\nversion = "1.0.0"\n')
    found = discover_plugins(
        "demo", [tmp_path / "plugins"], user_dirs=False, site_dirs=False, packs=False
    )
    pm = _demo_pm()
    with PluginHost(pm, package=PACKAGE) as host:
        assert list(host.load_plugins(found).loaded) == ["adder"]  # compiles: reads it
        host.unload("adder")
        reads: list[str] = []
        real_read, real_sha = _files.RegularFile.read, _files.RegularFile.sha256
        monkeypatch.setattr(
            _files.RegularFile, "read", lambda self: reads.append("read") or real_read(self)
        )
        monkeypatch.setattr(
            _files.RegularFile, "sha256", lambda self: reads.append("sha") or real_sha(self)
        )
        [source] = found
        lock = Lockfile.from_entries(
            "demo", [LockEntry.for_source(source, source.component_digest())]
        )
        report = host.load_plugins(found, lockfile=lock, strict=True)
        assert list(report.loaded) == ["adder"]
        assert reads == []
        assert pm.hook.add_one(x=1) == [6]
        host.unload("adder")
        wrong = attrs.evolve(lock.entries["adder"], sha256="0" * 64)
        report = host.load_plugins(found, lockfile=Lockfile.from_entries("demo", [wrong]))
        [broken] = report.broken
        assert isinstance(broken.error, IntegrityError)
        assert host.plugins == {}


# --------------------------------------------------------------------------- imports


def test_imported_functions_leave_wasi_out(tmp_path: Path) -> None:
    """imported_functions lists what host functions or other plugins must provide: not
    WASI's interfaces, which the sandbox links (their signatures are never read)."""
    wat = """(component
  (import "wasi:cli/environment@0.2.0" (instance
    (export "get-arguments" (func (result (list string))))))
  (import "test:lib/api@1.0.0" (instance
    (export "twice" (func (param "x" u32) (result u32)))))
)"""
    src, out = tmp_path / "imports.wat", tmp_path / "imports.wasm"
    src.write_text(wat)
    subprocess.run([find_tool("wasm-tools"), "parse", str(src), "-o", str(out)], check=True)
    image = ComponentImage.load("imports", out, cache=False)
    assert set(image.imports) == {"wasi:cli/environment@0.2.0", "test:lib/api@1.0.0"}
    found = image.imported_functions()
    assert list(found) == [("test:lib/api@1.0.0", "twice")]
    assert found[("test:lib/api@1.0.0", "twice")].result == wit.Prim("u32")


def test_the_wasmtime_version_is_read_without_importlib_metadata() -> None:
    """The compile cache's key names the installed wasmtime-py exactly as
    importlib.metadata does, read from its dist-info."""
    from importlib.metadata import version

    assert engine._dist_info_version() == version("wasmtime") == engine.wasmtime_version()


_TEXTS = ["wasmtime-50.0.1.dist-info", "WASMTIME-50.0.1.DIST-INFO", "wasmtime-.dist-info",
          "wasmtime-50-1.dist-info", "wasmtime-50.0.1.dist-infox", "xwasmtime-1.dist-info",
          "wasmtime-50.0.1.egg-info", "wasmtime-a b.dist-info", "", "1", "50.0.1", "a1",
          "1.0+local!x_y-z", "1 0", "1é", "0", "9.dist-info"]  # fmt: skip


@pytest.mark.parametrize("text", _TEXTS)
def test_the_cache_keys_hand_checks_agree_with_the_patterns_they_replaced(text: str) -> None:
    """The dist-info name, the version text and the digest index's entries are checked by
    hand (compiling the patterns cost every new process about 0.2 ms); each accepts what
    its pattern accepted."""
    import re

    dist_info = re.fullmatch(r"wasmtime-[^-]+\.dist-info", text, re.IGNORECASE) is not None
    assert engine._is_dist_info(text) == dist_info
    assert engine._is_version_text(text) == (
        re.fullmatch(r"[0-9][0-9A-Za-z.+!_-]*", text) is not None
    )


@pytest.mark.parametrize(
    "blob", [b"0" * 64, b"a" * 63 + b"f", b"0" * 63, b"0" * 65, b"A" * 64, b"0" * 63 + b"\n",
             b"g" + b"0" * 63, b"0" * 31 + b"#" + b"0" * 32, b""],
)  # fmt: skip
def test_the_digest_index_reads_only_hex_digests(blob: bytes, private_cache: Path) -> None:
    import re

    token = "t" + str(len(blob))
    (private_cache / "digests").mkdir(parents=True, exist_ok=True)
    (private_cache / "digests" / token).write_bytes(blob)
    expected = blob.decode() if re.fullmatch(rb"[0-9a-f]{64}", blob) else None
    assert engine.load_digest(token) == expected


def test_a_warm_load_in_a_new_process_imports_no_metadata_machinery(
    demo: Demo, private_cache: Path, tmp_path: Path
) -> None:
    """Importing the package imports neither asyncio, platformdirs nor importlib.metadata;
    a new process that creates a host (with its data dir given) and loads a component
    from the warm compile cache imports neither importlib.metadata nor tempfile's writers
    of ours (platformdirs and asyncio come with modules this work does not own)."""
    wasm = tmp_path / "adder.wasm"
    shutil.copy(demo(k=8, funcs=["add-one"]), wasm)
    ComponentImage.load("adder", wasm)  # fills the compile cache
    code = f"""
import sys
import airssys_plugins
bare = [m for m in ("asyncio", "platformdirs", "importlib.metadata") if m in sys.modules]
assert not bare, bare
import pluggy
sys.path.insert(0, {str(ROOT)!r})
from tests.demo import DemoHooks, PACKAGE
pm = pluggy.PluginManager("demo")
pm.add_hookspecs(DemoHooks)
with airssys_plugins.PluginHost(pm, package=PACKAGE, data_dir={str(tmp_path / "data")!r}) as h:
    h.load({str(wasm)!r}, name="adder")
    assert pm.hook.add_one(x=1) == [9]
assert "importlib.metadata" not in sys.modules
print("ok")
"""
    env = dict(os.environ, AIRSSYS_PLUGINS_CACHE_DIR=str(private_cache.parent))
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


def test_the_cache_directory_follows_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """aot_cache_dir is remembered per environment, so changing the variables it reads
    moves the cache as before."""
    monkeypatch.setenv("AIRSSYS_PLUGINS_CACHE_DIR", str(tmp_path / "one"))
    assert engine.aot_cache_dir() == tmp_path / "one" / "aot"
    monkeypatch.setenv("AIRSSYS_PLUGINS_CACHE_DIR", str(tmp_path / "two"))
    assert engine.aot_cache_dir() == tmp_path / "two" / "aot"
    monkeypatch.delenv("AIRSSYS_PLUGINS_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert engine.aot_cache_dir() == tmp_path / "xdg" / "airssys-plugins" / "aot"


@pytest.mark.parametrize(
    ("xdg", "home", "plain"),
    [
        ("/srv/cache", "/home/ann", True),
        ("/srv/cache/", None, True),
        ("//srv/cache", "/home/ann", True),
        (None, "/home/ann", True),
        (None, "/home/ann/", True),
        ("", "/root", True),
        (None, "/", True),
        (None, "//", True),
        ("relative/cache", "/home/ann", True),  # a relative XDG_CACHE_HOME is ignored
        (None, "relative/home", False),
        ("relative/cache", None, False),
        (None, None, False),
    ],
)
def test_the_user_cache_directory_is_platformdirs_own(
    xdg: str | None, home: str | None, plain: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On Linux the user cache directory is read from the environment without importing
    platformdirs where the answer is plain, and it is platformdirs' answer; the rest
    (a relative or missing HOME) is left to platformdirs."""
    import platformdirs

    for name, value in (("XDG_CACHE_HOME", xdg), ("HOME", home)):
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
    monkeypatch.delenv("ANDROID_DATA", raising=False)
    fast = engine._linux_cache_dir(xdg, home)
    if not plain:
        assert fast is None
        return
    assert fast is not None
    assert Path(fast) == Path(platformdirs.user_cache_dir("airssys-plugins"))


def test_the_user_cache_directory_is_left_to_platformdirs_off_linux(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Other systems, and Android, get platformdirs' answer (their directories differ)."""
    monkeypatch.setattr(engine.sys, "platform", "darwin")
    assert engine._linux_cache_dir("/srv/cache", "/home/ann") is None
    monkeypatch.setattr(engine.sys, "platform", "linux")
    monkeypatch.setenv("ANDROID_DATA", "/data")
    assert engine._linux_cache_dir("/srv/cache", "/home/ann") is None


def test_a_warm_load_in_a_new_process_with_the_user_cache_imports_no_platformdirs(
    demo: Demo, tmp_path: Path
) -> None:
    """The first load of a new process using the user cache directory (no
    AIRSSYS_PLUGINS_CACHE_DIR) finds it without importing platformdirs or tempfile."""
    wasm = tmp_path / "adder.wasm"
    shutil.copy(demo(k=8, funcs=["add-one"]), wasm)
    code = f"""
import sys
import pluggy
import airssys_plugins
from airssys_plugins import u32

class Hooks:  # (tests.demo's would import the guest builder, and tempfile with it)
    @pluggy.HookspecMarker("demo")
    def add_one(self, x: u32) -> u32: ...

pm = pluggy.PluginManager("demo")
pm.add_hookspecs(Hooks)
with airssys_plugins.PluginHost(pm, package={PACKAGE!r}, data_dir={str(tmp_path / "d")!r}) as h:
    h.load({str(wasm)!r}, name="adder")
    assert pm.hook.add_one(x=1) == [9]
from airssys_plugins.runtime import engine
print(engine.aot_cache_dir())
print(sorted(m for m in ("platformdirs", "tempfile") if m in sys.modules))
"""
    env = {k: v for k, v in os.environ.items() if k != "AIRSSYS_PLUGINS_CACHE_DIR"}
    env["XDG_CACHE_HOME"] = str(tmp_path / "xdg")

    def run() -> list[str]:
        done = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=tmp_path
        )
        assert done.returncode == 0, done.stderr
        return done.stdout.splitlines()

    # A file changed less than RACY_NS ago has no key its digest can be kept under: wait
    # until the copy is older, so that the first run keeps it in the digest index and the
    # second only reads it (else a second run more than RACY_NS after the copy would be
    # the first to write the index, which imports tempfile: a test that failed when slow).
    age_ns = time.time_ns() - max(wasm.stat().st_mtime_ns, wasm.stat().st_ctime_ns)
    time.sleep(max(0, _files.RACY_NS - age_ns) / 1e9 + 0.05)
    run()  # compiles the component into the cache, keeps its digest
    where, imported = run()
    assert where == str(tmp_path / "xdg" / "airssys-plugins" / "aot")
    assert imported == "[]"


def test_what_loads_share_does_not_keep_an_unloaded_component(
    demo: Demo, private_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The memos of a load (export indices, converters, contract checks) hold no
    wasmtime object: with no compiled component kept (``keep_compiled(0)``), an unloaded
    plugin's compiled component, and the mapping of its artefact, are freed at once."""
    monkeypatch.setattr(engine, "_keep_count", 0)
    pm = _demo_pm()
    wasm = demo(k=4, funcs=["add-one", "pick"])
    with PluginHost(pm, package=PACKAGE) as host:
        plugin = host.load(wasm, name="p")
        assert pm.hook.add_one(x=1) == [5]
        component = weakref.ref(plugin.image.component)
        del plugin
        host.unload("p")
        gc.collect()
        assert component() is None
        host.load(wasm, name="p")  # loads again from the cache, with the memos
        assert pm.hook.add_one(x=2) == [6]


def test_unloaded_components_are_kept_most_recent_first(
    demo: Demo, private_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An unloaded plugin's compiled component stays in memory, among the
    ``keep_compiled()`` most recently unloaded: loading the same bytes again maps nothing
    (the very same compiled component serves it). ``release_compiled`` and
    ``keep_compiled(0)`` let them go."""
    monkeypatch.setattr(engine, "_keep_count", engine.DEFAULT_KEEP_COMPILED)
    assert keep_compiled() == 8
    with pytest.raises(ValueError, match="give 0 or more"):
        keep_compiled(-1)
    assert keep_compiled(2) == 2
    pm = _demo_pm()
    wasms = [demo(k=k, funcs=["add-one"]) for k in (21, 22, 23)]
    refs = []
    with PluginHost(pm, package=PACKAGE) as host:
        for i, wasm in enumerate(wasms):
            plugin = host.load(wasm, name=f"p{i}")
            refs.append(weakref.ref(plugin.image.component))
            del plugin
            host.unload(f"p{i}")
        gc.collect()
        # the last two unloaded are kept; the first was pushed out
        assert [r() is not None for r in refs] == [False, True, True]
        mapped = []
        monkeypatch.setattr(
            engine.Component,
            "deserialize_file",
            lambda *a: mapped.append(a) or pytest.fail("a kept component was mapped again"),
        )
        again = host.load(wasms[2], name="again")
        assert again.image.component is refs[2]()
        assert pm.hook.add_one(x=1) == [24]
        assert mapped == []
        monkeypatch.undo()
        del again
        host.unload("again")
        assert release_compiled() == 2
        gc.collect()
        assert [r() is None for r in refs] == [True, True, True]
        host.load(wasms[1], name="p1")  # mapped from the compile cache again
        host.unload("p1")
        assert keep_compiled(0) == 0  # releases at once
        gc.collect()
        assert refs[1]() is None
    keep_compiled(engine.DEFAULT_KEEP_COMPILED)


def test_a_failed_load_keeps_no_compiled_component(
    demo: Demo, private_cache: Path, tmp_path: Path
) -> None:
    """Only plugins that loaded and were unloaded leave their compiled component kept; a
    load refused after compiling (here: no hook matches the host's hookspecs) does not."""
    pm = pluggy.PluginManager("other")

    class Other:
        @pluggy.HookspecMarker("other")
        def nothing_like_it(self, x: int) -> int:  # type: ignore[empty-body]
            ...

    pm.add_hookspecs(Other)
    wasm = demo(k=31, funcs=["add-one"])
    with PluginHost(pm, package=PACKAGE) as host, pytest.raises(ContractMismatchError):
        host.load(wasm, name="nope")
    gc.collect()
    assert release_compiled() == 0


def test_what_loads_remember_follows_the_contract_and_the_options(
    demo: Demo, private_cache: Path
) -> None:
    """A second load of a component reuses what the first worked out (hook matches, call
    plans) only for the same contract and the same options: hookspecs added meanwhile are
    matched, other options are applied, and the plugins' calls stay their own."""
    pm = pluggy.PluginManager("demo")

    pm.add_hookspecs(AddOnlyHooks)
    wasm = demo(k=6, funcs=["add-one", "pick"])
    with PluginHost(pm, package=PACKAGE) as host:
        first = host.load(wasm, name="first")
        assert sorted(first.hooks) == ["add_one"]
        pm.add_hookspecs(PickTooHooks)  # pick is a hook now
        second = host.load(wasm, name="second", hooks={"add_one": HookOptions(trylast=True)})
        assert sorted(second.hooks) == ["add_one", "pick"]
        assert pm.hook.pick(x=6) == 60
        [impl] = [i for i in pm.hook.add_one.get_hookimpls() if i.plugin is second]
        assert impl.trylast
        third = host.load(wasm, name="third")
        [impl] = [i for i in pm.hook.add_one.get_hookimpls() if i.plugin is third]
        assert not impl.trylast
        assert pm.hook.add_one(x=1) == [7, 7, 7]
        host.unload("first")
        assert pm.hook.add_one(x=2) == [8, 8]


def test_a_host_without_the_compile_cache_keeps_no_compiled_component(
    demo: Demo, private_cache: Path
) -> None:
    """``PluginHost(compile_cache=False)`` starts every load from scratch: an unloaded
    plugin's compiled component is not kept for the next load."""
    pm = _demo_pm()
    wasm = demo(k=9, funcs=["add-one"])
    with PluginHost(pm, package=PACKAGE, compile_cache=False) as host:
        plugin = host.load(wasm, name="p")
        component = weakref.ref(plugin.image.component)
        del plugin
        host.unload("p")
        gc.collect()
        assert component() is None
        assert release_compiled() == 0


# --------------------------------------------------------------------------- density


def test_plugins_loaded_from_one_file_share_what_does_not_differ(
    demo: Demo, private_cache: Path
) -> None:
    """Issue 18 §5: loads of one file under other names share its Path, the tuple of
    hookimpl names, the empty hook options and the empty history; a plugin's config is
    its context's; each plugin's own state stays its own (a historic call gives the
    plugin that records it a list of its own, and a restart replays it)."""
    pm = _demo_pm()
    wasm = demo(k=2, funcs=["add-one", "setup", "get-setup"])
    with PluginHost(pm, package=PACKAGE) as host:
        a = host.load(str(wasm), name="a", config={"who": "a"})
        b = host.load(str(wasm), name="b")
        assert a.path is b.path
        assert a.image is not b.image
        assert a._impl_attrs is b._impl_attrs
        assert sorted(a._impl_attrs) == ["add_one", "get_setup", "setup"]
        assert a.hook_options is b.hook_options == {}
        assert a._history is b._history == []
        assert a.config == {"who": "a"}
        assert a.instance.context.config is a.config  # type: ignore[attr-defined]
        pm.hook.setup.call_historic(kwargs={"x": 7})
        assert a._history is not b._history
        assert len(a._history) == len(b._history) == 1
        assert len(host.load(str(wasm), name="c")._history) == 1  # pluggy replays it
        a.instance.discard()  # the next call restarts it: its history is replayed
        assert pm.hook.get_setup() == [7, 7, 7]
        c = host.plugins["c"]
        options = {"add_one": HookOptions(tryfirst=True)}
        d = host.load(str(wasm), name="d", hooks=options)
        assert d.hook_options == options
        assert d.hook_options is not c.hook_options


def test_a_load_is_audited_with_one_detail_per_set_of_hooks(
    demo: Demo, private_cache: Path
) -> None:
    """The audit event of a load says which hooks it has; loads with the same hooks
    share the text, and a plugin granted nothing records its rights as the empty tuple."""
    pm = _demo_pm()
    wasm = demo(k=2, funcs=["add-one", "pick"])
    with PluginHost(pm, package=PACKAGE) as host:
        host.load(wasm, name="a")
        host.load(wasm, name="b")
        first, second = host.audit.events(kind="load")
        assert first.detail == "loaded with hooks add_one, pick"
        assert first.detail is second.detail
        assert first.fields["rights"] == ()
        assert '"rights": []' in first.to_json()


def test_a_stores_context_address_leaves_its_pointer_untouched() -> None:
    """capi.address reads the address a context pointer holds without ctypes.cast, which
    would give the pointer (kept as long as its plugin) a dict holding itself."""
    import ctypes

    from wasmtime import Engine, Store

    from airssys_plugins.runtime import capi

    store = Store(Engine())
    pointer = capi.store_context(store)
    address = capi.address(pointer)
    assert pointer._objects is None
    assert address == ctypes.cast(capi.store_context(store), ctypes.c_void_p).value
    assert address != 0
    assert capi.address(type(pointer)()) == 0  # NULL
