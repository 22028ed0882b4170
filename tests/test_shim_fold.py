"""The tails' shim modules folded into the guest's own core module (issue 18, tenth round).

runtime/shimfold.py moves the latin1, measuring and raw shims' functions into the guest's
core module M when everything they import is M's, so a Store holds one core instance
less per shim. These tests check, on real components built by the toolchains, that the
folded binary instantiates no shim module, that its hooks behave as before (strings,
bytes, big bytes through the raw route, a measured result, a refused one), and that a
component laid out otherwise (memory in another module, a name M already exports) keeps
its shims separate and still works.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import weakref
from collections import OrderedDict
from pathlib import Path

import attrs
import pluggy
import pytest
import wasmtime
from wasmtime.component import Component

from airssys_plugins import Limits, PluginHost, PluginLimitExceeded, u32, wit_binding
from airssys_plugins.authoring.build import build_guest, find_tool
from airssys_plugins.runtime import engine, shimfold
from airssys_plugins.runtime.image import ComponentImage
from airssys_plugins.runtime.plans import ExportPlan, decode_export_plan, encode_export_plan
from airssys_plugins.runtime.rawbytes import export_tail

ROOT = Path(__file__).resolve().parent.parent
BENCH_GUEST = ROOT / "bench" / "guests" / "bench"
GUESTS = Path(__file__).parent / "guests"
PACKAGE = "bench:hooks@1.0.0"
MiB = 1 << 20

hookspec = pluggy.HookspecMarker("bench")


@attrs.frozen
class Point:
    x: u32
    y: u32


class Hooks:
    @hookspec
    def add_one(self, x: u32) -> u32: ...  # type: ignore[empty-body]

    @hookspec
    def echo(self, text: str) -> str: ...  # type: ignore[empty-body]

    @hookspec
    def echo_bytes(self, data: bytes) -> bytes: ...  # type: ignore[empty-body]

    @hookspec
    def swap(self, p: Point) -> Point: ...  # type: ignore[empty-body]


def instantiated_modules(binary: bytes) -> list[int]:
    """Sizes of the core modules the component's top level instantiates (one per
    instantiation): an empty module is 8 bytes."""
    top = shimfold._read_top(binary, len(binary))
    sizes = []
    for inst in top.instances:
        if isinstance(inst, shimfold._Instantiation):
            module = top.modules[inst.module]
            assert module is not None
            sizes.append(module.end - module.body)
    return sizes


def plan_of(data: bytes) -> ExportPlan:
    plan = export_tail(data)
    assert plan is not None
    return plan


@pytest.fixture(scope="module")
def bench_wasm() -> bytes:
    return build_guest(BENCH_GUEST).read_bytes()


def test_the_bench_guest_has_no_shim_instance(bench_wasm: bytes) -> None:
    """Folded, the bench guest instantiates only its own module (the three shims are
    empty modules, never instantiated); unfolded it instantiates four."""
    plan = plan_of(bench_wasm)
    assert plan.fold is not None
    unfolded = plan.without_fold().wider(bench_wasm)
    assert len(instantiated_modules(unfolded)) == 4
    folded = plan.wider(bench_wasm)
    assert len(instantiated_modules(folded)) == 1
    assert instantiated_modules(folded)[0] > instantiated_modules(unfolded)[0]  # M, grown
    Component(wasmtime.Engine(), folded)  # valid


def test_the_plan_keeps_the_fold(bench_wasm: bytes) -> None:
    """A warm load rebuilds the same folded binary from the plan it reads back."""
    plan = plan_of(bench_wasm)
    again = decode_export_plan(encode_export_plan(plan))
    assert again == plan
    assert again is not None
    assert again.wider(bench_wasm) == plan.wider(bench_wasm)


@pytest.fixture
def host(caplog: pytest.LogCaptureFixture) -> PluginHost:
    caplog.set_level(logging.INFO, logger="airssys_plugins.runtime")
    pm = pluggy.PluginManager("bench")
    pm.add_hookspecs(Hooks)
    return PluginHost(pm, package=PACKAGE)


def test_folded_hooks_behave_as_before(host: PluginHost, caplog: pytest.LogCaptureFixture) -> None:
    """Strings, bytes, 1 MiB through the raw route, a measured result within the limit
    and one over it: as on the separate shims."""
    wasm = build_guest(BENCH_GUEST)
    with host:
        host.load(wasm, name="folded", limits=Limits(max_result_bytes=2 * MiB))
        hook = host.pm.hook
        assert hook.add_one(x=41) == [42]
        assert hook.echo(text="hé, wasm") == ["hé, wasm"]
        assert hook.echo_bytes(data=b"\x00\xff\x80") == [b"\x00\xff\x80"]
        big = os.urandom(MiB)
        assert hook.echo_bytes(data=big) == [big]
        assert hook.echo(text="x" * 100_000) == ["x" * 100_000]
        assert hook.swap(p=Point(1, 2)) == [Point(2, 1)]
        plugin = host.plugins["folded"]
        assert plugin.image.raw_exports  # the raw route is there
        assert plugin.image.measured  # and the measuring exports
    assert "shims not folded" not in caplog.text
    with host.__class__(host.pm, package=PACKAGE) as limited:
        limited.load(wasm, name="limited", limits=Limits(max_result_bytes=1000))
        assert limited.pm.hook.echo(text="y" * 1000) == ["y" * 1000]
        with pytest.raises(PluginLimitExceeded) as info:
            limited.pm.hook.echo(text="y" * 1001)
        assert info.value.reason == "result too large"
        big = os.urandom(4096)
        with pytest.raises(PluginLimitExceeded):
            limited.pm.hook.echo_bytes(data=big)  # the raw route counts it too


# A component whose memory is defined by one core module and whose functions by another
# that never touches it (the lifts name the first's memory, the second's allocator): the
# raw shim cannot be folded into either, and stays a module of its own.
SPLIT_WAT = """
(component
  (core module $mem (memory (export "memory") 1))
  (core module $funcs
    (global $heap (mut i32) (i32.const 1024))
    (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32)
      (local $p i32)
      (local.set $p (global.get $heap))
      (global.set $heap (i32.add (global.get $heap) (i32.add (local.get 3) (i32.const 8))))
      (local.get $p))
    (func (export "test:split/size@1.0.0#size") (param i32 i32) (result i32)
      (local.get 1)))
  (core instance $m (instantiate $mem))
  (core instance $f (instantiate $funcs))
  (alias core export $m "memory" (core memory $memory))
  (alias core export $f "cabi_realloc" (core func $realloc))
  (alias core export $f "test:split/size@1.0.0#size" (core func $size))
  (type $size-t (func (param "data" string) (result u32)))
  (func $size-f (type $size-t)
    (canon lift (core func $size) (memory $memory) (realloc $realloc)))
  (instance $ops (export "size" (func $size-f)))
  (export "test:split/size@1.0.0" (instance $ops)))
"""


class SplitHooks:
    @hookspec
    def size(self, data: str) -> u32: ...  # type: ignore[empty-body]


def parse(tmp_path: Path, wat: str, name: str) -> Path:
    src, out = tmp_path / f"{name}.wat", tmp_path / f"{name}.wasm"
    src.write_text(wat)
    subprocess.run([find_tool("wasm-tools"), "parse", str(src), "-o", str(out)], check=True)
    return out


def test_memory_in_another_module_keeps_the_shims(tmp_path: Path) -> None:
    """The memory and the functions in two modules: no fold, and the raw route works."""
    wasm = parse(tmp_path, SPLIT_WAT, "split")
    data = wasm.read_bytes()
    plan = plan_of(data)
    assert plan.raw is not None
    assert plan.fold is None
    assert len(instantiated_modules(plan.wider(data))) == 3  # $mem, $funcs, the raw shim
    pm = pluggy.PluginManager("bench")
    pm.add_hookspecs(SplitHooks)
    with PluginHost(pm, package="test:split@1.0.0") as host:
        host.load(wasm, name="split")
        assert pm.hook.size(data="abc") == [3]
        assert pm.hook.size(data="é" * 5000) == [10_000]  # raw route (2 KiB and more)
        assert host.plugins["split"].image.raw_exports


def test_a_clash_of_names_keeps_that_shim(tmp_path: Path) -> None:
    """M already exports the name the first shim's function would get: that shim stays a
    module of its own (and the measuring shim, which calls its wrapper), the raw one is
    folded, and the hooks behave."""
    guest = tmp_path / "bench"
    shutil.copytree(BENCH_GUEST, guest)
    wat = (guest / "guest.wat").read_text()
    clash = f'(func (export "{shimfold.FOLD_PREFIX}0-realloc") (result i32) (i32.const 7))'
    (guest / "guest.wat").write_text(wat.replace("(module", "(module\n  " + clash, 1))
    wasm = build_guest(guest)
    data = wasm.read_bytes()
    plan = plan_of(data)
    assert plan.fold is not None
    assert len(instantiated_modules(plan.wider(data))) == 3  # M, the latin1 and measuring
    pm = pluggy.PluginManager("bench")
    pm.add_hookspecs(Hooks)
    with PluginHost(pm, package=PACKAGE) as host:
        host.load(wasm, name="clash")
        big = os.urandom(MiB)
        assert pm.hook.echo_bytes(data=big) == [big]
        assert pm.hook.echo_bytes(data=b"\x80") == [b"\x80"]
        assert pm.hook.echo(text="hello") == ["hello"]


def test_a_refused_fold_falls_back_to_the_separate_shims(
    bench_wasm: bytes, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """If wasmtime refuses the folded binary, the load compiles the shims as modules of
    their own, with every export as before."""
    from airssys_plugins.runtime import plans

    def broken(self: plans.ShimFold, data: bytes) -> bytes:
        return data + b"\x01\x04\x00asm"  # a core module cut short

    monkeypatch.setattr(plans.ShimFold, "apply", broken)
    # nothing compiled before in this process may stand in for the compile
    monkeypatch.setattr(engine, "_LIVE_COMPONENTS", weakref.WeakValueDictionary())
    monkeypatch.setattr(engine, "_kept", OrderedDict())
    caplog.set_level(logging.INFO, logger="airssys_plugins.runtime")
    image = ComponentImage.load("refused", bench_wasm, cache=False)
    assert "shims not folded" in caplog.text
    assert image.raw_exports
    assert image.measured
    assert image.byte_exports


@pytest.mark.parametrize(
    "guest",
    ["bytes", "raw-c", "raw-imports", "raw-imports-c", "raw-imports-rust", "kitchen"],
)
def test_toolchains_fold(guest: str) -> None:
    """WAT, C (clang), Rust (wit-bindgen) and componentize-py guests (whose module
    imports its memory) get their shims folded, and wasmtime takes the binary. The
    componentize-py guest's measuring shim stays apart: it calls functions of two core
    modules (``exports#init`` is the runtime library's)."""
    data = build_guest(GUESTS / guest).read_bytes()
    plan = plan_of(data)
    assert plan.fold is not None
    folded = plan.wider(data)
    unfolded = plan.without_fold().wider(data)
    tails = shimfold._read_top(unfolded, len(data)).modules
    shims = sum(1 for m in tails if m is not None and m.in_tail)
    left = 1 if guest == "kitchen" else 0  # its measuring shim: see below
    assert len(instantiated_modules(folded)) == len(instantiated_modules(unfolded)) - shims + left
    if guest != "kitchen":  # (18 MB: the suite compiles it elsewhere)
        Component(wasmtime.Engine(), folded)


def test_nested_components_keep_their_shims() -> None:
    """jco's nested layout: the shims stay in the inner component, unfolded."""
    data = build_guest(GUESTS / "raw-js").read_bytes()
    plan = plan_of(data)
    assert plan.nested is not None
    assert plan.fold is None


NESTED_UNDER_ANOTHER_NAME = """
(component
  (component $C
    (core module $m
      (memory (export "memory") 1)
      (func (export "realloc") (param i32 i32 i32 i32) (result i32) i32.const 64)
      (func (export "echo") (param i32 i32) (result i32)
        (i32.store (i32.const 8) (local.get 0))
        (i32.store (i32.const 12) (local.get 1))
        i32.const 8))
    (core instance $i (instantiate $m))
    (func (export "echo") (param "x" string) (result string)
      (canon lift (core func $i "echo") (memory (core memory $i "memory"))
        (realloc (core func $i "realloc")))))
  (instance $a (instantiate $C))
  (export "result" (instance $a)))
"""


def test_an_inner_component_the_outer_exports_under_another_name_gets_nothing_added(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The outer component exports an instance of the inner one as `result` (the shape of
    jco's list-adapter-fusion fixture; wasmtime's exceptions.wast has one that exports
    nothing of it): exports added inside would name functions no hook binds, so none are
    added, and a load logs no refused added export; its hook still echoes 6 KB."""
    data = bytes(wasmtime.wat2wasm(NESTED_UNDER_ANOTHER_NAME))
    assert export_tail(data) is None
    spec = pluggy.HookspecMarker("nested")

    class Hooks:
        @spec
        @wit_binding("result#echo")
        def echo(self, x: str) -> str: ...

    pm = pluggy.PluginManager("nested")
    pm.add_hookspecs(Hooks)
    text = "naïve ✓ " * 600
    with (
        caplog.at_level(logging.DEBUG, logger="airssys_plugins"),
        PluginHost(pm, compile_cache=False) as host,
    ):
        host.load(data, name="nested")
        assert pm.hook.echo(x=text) == [text]
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], caplog.text


def test_a_guest_module_of_too_many_types_keeps_its_shims(tmp_path: Path) -> None:
    """The fold reads the guest module's sections in Python at a cache miss, before the
    compile deadline: past 20,000 types (real guests have a few hundred; a hostile one may
    declare a million, about 1.3 s to read) it declines at the section's count, the shims
    stay apart, and the hooks behave."""
    guest = tmp_path / "bench"
    shutil.copytree(BENCH_GUEST, guest)
    wat = (guest / "guest.wat").read_text()
    types = "\n".join("  (type (func))" for _ in range(20_001))
    (guest / "guest.wat").write_text(wat.replace("(module", "(module\n" + types, 1))
    data = build_guest(guest).read_bytes()
    plan = plan_of(data)
    assert plan.raw is not None
    assert plan.fold is None
    assert len(instantiated_modules(plan.wider(data))) == 4  # M and the three shims
    pm = pluggy.PluginManager("bench")
    pm.add_hookspecs(Hooks)
    with PluginHost(pm, package=PACKAGE) as host:
        host.load(data, name="types")
        assert pm.hook.echo(text="hello") == ["hello"]
