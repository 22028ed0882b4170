"""Hostile guests at call time: memory beyond the limit, ABI violations in wasmtime's own
words, bad argument values. Corpus cases 23, 25 and 26 of ../shared/notes/security.md.

Pass rule for every case: a named project error that names the plugin, the host alive, a
healthy sibling plugin still answering, RSS back near its baseline. The memory cases run
in a child process each, so their peak RSS (VmHWM) is measured against their own limit.
"""

from __future__ import annotations

import enum
import json
import math
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import pluggy
import pytest

from airssys_plugins import (
    ArgumentError,
    Capabilities,
    FileGrant,
    HookOptions,
    Limits,
    Manifest,
    ManifestError,
    PluginABIError,
    PluginHost,
    PluginLimitExceeded,
    PluginResultError,
    Result,
    char,
    f32,
    u8,
    u32,
    variant,
)
from airssys_plugins.authoring.build import build_guest, find_tool
from airssys_plugins.runtime import TRAP_TABLE
from airssys_plugins.runtime import image as _image
from airssys_plugins.runtime.image import ComponentImage
from airssys_plugins.runtime.instance import PluginInstance
from airssys_plugins.runtime.layout import CoreLayout, core_layout, read_layout
from airssys_plugins.runtime.sandbox import (
    TABLE_ELEMENT_BYTES,
    TABLE_SHARE,
    SandboxSpec,
    store_limits,
)

MiB = 2**20
ROOT = Path(__file__).resolve().parent.parent


def parse_component(tmp: Path, name: str, wat: str) -> Path:
    """A component binary from component WAT text (wasm-tools parse)."""
    src, out = tmp / f"{name}.wat", tmp / f"{name}.wasm"
    src.write_text(wat)
    subprocess.run([find_tool("wasm-tools"), "parse", str(src), "-o", str(out)], check=True)
    return out


# --------------------------------------------------------------------------- memory (case 23)

# A core module instantiated many times by one component, each copy with its own memory
# that its start function fills (so the pages are really resident, not just reserved).
FILLED_MODULE = """(core module $m
    (memory (export "memory") {pages})
    (func $touch (memory.fill (i32.const 0) (i32.const 1) (i32.const {size})))
    (start $touch)
    (func (export "boom") (result i32) (i32.const 7)))"""


def _many_instances(copies: int, pages: int) -> str:
    instances = "\n".join(f"  (core instance $i{k} (instantiate $m))" for k in range(copies))
    module = FILLED_MODULE.format(pages=pages, size=pages * 65536)
    return f"""(component
  {module}
{instances}
  (func $boom (result u32) (canon lift (core func $i0 "boom")))
  (instance $iface (export "boom" (func $boom)))
  (export "hostile:mem/boom@1.0.0" (instance $iface)))"""


def _nested_instances(copies: int, pages: int) -> str:
    """The same, one level down: a nested component (with its module) instantiated often."""
    module = FILLED_MODULE.format(pages=pages, size=pages * 65536)
    instances = "\n".join(f"  (instance $c{k} (instantiate $inner))" for k in range(copies))
    return f"""(component
  (component $inner
    {module}
    (core instance $i0 (instantiate $m))
    (func $boom (result u32) (canon lift (core func $i0 "boom")))
    (export "boom" (func $boom)))
{instances}
  (alias export $c0 "boom" (func $boom))
  (instance $iface (export "boom" (func $boom)))
  (export "hostile:mem/boom@1.0.0" (instance $iface)))"""


def _grower(memories: int, tables: int) -> str:
    """One module with ``memories`` memories and ``tables`` tables; ``boom`` grows each in
    1 MiB / 64 Ki-element steps until refused, touching every new page, then traps."""
    mems = "\n".join(f"    (memory $m{k} 1)" for k in range(memories))
    tabs = "\n".join(f"    (table $t{k} 1 funcref)" for k in range(tables))
    grow_mems = "\n".join(
        f"""      (block $done{k} (loop $l{k}
        (local.set $p (memory.grow $m{k} (i32.const 16)))
        (br_if $done{k} (i32.eq (local.get $p) (i32.const -1)))
        (memory.fill $m{k} (i32.mul (local.get $p) (i32.const 65536)) (i32.const 1)
                     (i32.const 0x100000))
        (br $l{k})))"""
        for k in range(memories)
    )
    grow_tabs = "\n".join(
        f"""      (block $tdone{k} (loop $tl{k}
        (br_if $tdone{k} (i32.eq (table.grow $t{k} (ref.null func) (i32.const 65536))
                                (i32.const -1)))
        (br $tl{k})))"""
        for k in range(tables)
    )
    return f"""(component
  (core module $m
{mems}
{tabs}
    (func (export "boom") (result i32) (local $p i32)
{grow_mems}
{grow_tabs}
      unreachable))
  (core instance $i (instantiate $m))
  (func $boom (result u32) (canon lift (core func $i "boom")))
  (instance $iface (export "boom" (func $boom)))
  (export "hostile:mem/boom@1.0.0" (instance $iface)))"""


SIBLING = """(component
  (core module $m (func (export "pong") (result i32) (i32.const 42)))
  (core instance $i (instantiate $m))
  (func $pong (result u32) (canon lift (core func $i "pong")))
  (instance $iface (export "pong" (func $pong)))
  (export "hostile:mem/pong@1.0.0" (instance $iface)))"""

# Runs in a child process: loads the sibling, measures VmHWM, loads the hostile plugin
# and calls it, then reports what happened and the peak RSS added.
DRIVER = r"""
import gc, json, sys
import pluggy
from airssys_plugins import Limits, PluginError, PluginHost, u32
from airssys_plugins.runtime.image import ComponentImage

spec = pluggy.HookspecMarker("hostile")

class Hooks:
    @spec
    def boom(self) -> u32: ...
    @spec
    def pong(self) -> u32: ...

def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key):
            return int(line.split()[1]) * 1024

hostile, sibling, limit = sys.argv[1], sys.argv[2], int(sys.argv[3])
ComponentImage.load("warm", __import__("pathlib").Path(hostile))  # compile outside the peak
gc.collect()
pm = pluggy.PluginManager("hostile")
pm.add_hookspecs(Hooks)
out = {}
with PluginHost(pm, package="hostile:mem@1.0.0") as host:
    host.load(sibling, name="sibling")
    assert pm.hook.pong() == [42]
    before = status("VmHWM:")
    try:
        host.load(hostile, name="hostile", limits=Limits(memory=limit))
        out["result"] = pm.hook.boom()
    except PluginError as exc:
        out.update(error=type(exc).__name__, reason=getattr(exc, "reason", None),
                   plugin=exc.plugin, message=str(exc))
    out["peak_added"] = status("VmHWM:") - before
    out["sibling"] = pm.hook.pong()
    if "hostile" in host.plugins:
        host.unload("hostile")
    gc.collect()
    out["rss_after"] = status("VmRSS:") - before
print(json.dumps(out))
"""


def run_driver(hostile: Path, sibling: Path, limit: int) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, "-c", DRIVER, str(hostile), str(sibling), str(limit)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.splitlines()[-1])  # type: ignore[no-any-return]


MEMORY_CASES = [
    # (id, component WAT, memory limit, error class, reason)
    # each copy's memory gets a 16th (an 8th) of the limit, less than it starts with
    ("16-instances-x-32MiB", _many_instances(16, 512), 32 * MiB, "PluginLimitExceeded",
     "memory limit"),
    ("nested-8-x-16MiB", _nested_instances(8, 256), 32 * MiB, "PluginLimitExceeded",
     "memory limit"),
    ("16-memories-grown", _grower(16, 0), 32 * MiB, "PluginTrap", "unreachable executed"),
    ("table-grown", _grower(1, 1), 32 * MiB, "PluginTrap", "unreachable executed"),
    ("8-tables-grown", _grower(1, 8), 32 * MiB, "PluginTrap", "unreachable executed"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("wat", "limit", "error", "reason"),
    [case[1:] for case in MEMORY_CASES],
    ids=[case[0] for case in MEMORY_CASES],
)
def test_memory_limit_bounds_the_plugins_total(
    tmp_path: Path, wat: str, limit: int, error: str, reason: str
) -> None:
    """Memories of many core instances, many memories, grown tables: all of a plugin's
    memory stays within its one memory limit (peak RSS measured in a child process)."""
    hostile = parse_component(tmp_path, "hostile", wat)
    sibling = parse_component(tmp_path, "sibling", SIBLING)
    out = run_driver(hostile, sibling, limit)
    assert (out.get("error"), out.get("reason"), out.get("plugin")) == (error, reason, "hostile")
    assert out["sibling"] == [42]
    # the limit, plus a little for wasmtime's own bookkeeping (before: 16 x 32 MiB = +525
    # MiB, a table grown by 2**25 elements +266 MiB)
    assert out["peak_added"] < limit + 12 * MiB, out
    assert out["rss_after"] < 12 * MiB, out


def test_store_limits_arithmetic() -> None:
    """The documented split: memories * memory_size + tables * elements * 8 <= memory."""
    for memory in (64 * 1024, 8 * MiB, 256 * MiB, 3 * MiB + 7):
        for layout in (CoreLayout(1, 0), CoreLayout(1, 2), CoreLayout(2, 2), CoreLayout(16, 8)):
            limits = store_limits(SandboxSpec(memory=memory, tables=100), layout)
            assert limits.memories == layout.memories
            assert limits.tables == layout.tables
            assert (limits.total() or 0) <= memory
            table_bytes = limits.tables * limits.table_elements * TABLE_ELEMENT_BYTES
            assert table_bytes <= memory // TABLE_SHARE
    # one memory and no table: the memory gets the whole limit, as before
    assert store_limits(SandboxSpec(memory=8 * MiB), CoreLayout(1, 0)).memory_size == 8 * MiB
    # the plugin's own tables limit still caps the count
    assert store_limits(SandboxSpec(memory=8 * MiB, tables=1), CoreLayout(1, 3)).tables == 1
    unbounded = store_limits(SandboxSpec(memory=None, instances=10), CoreLayout(3, 3))
    assert (unbounded.memory_size, unbounded.memories, unbounded.instances) == (-1, -1, 10)
    assert unbounded.total() is None


def test_core_layout_counts_instantiations(tmp_path: Path) -> None:
    """Memories and tables each instantiation of a core module creates, nested components
    included, once per instantiation (of the module, or of the component holding it);
    imported memories are not counted."""
    assert core_layout(parse_component(tmp_path, "g", _grower(3, 2)).read_bytes()) == CoreLayout(
        3, 2
    )
    many = parse_component(tmp_path, "many", _many_instances(4, 1)).read_bytes()
    assert core_layout(many) == CoreLayout(4, 0)
    nested = parse_component(tmp_path, "nested", _nested_instances(4, 1)).read_bytes()
    assert core_layout(nested) == CoreLayout(4, 0)
    unused = parse_component(tmp_path, "unused", UNINSTANTIATED).read_bytes()
    assert core_layout(unused) == CoreLayout(1, 0)  # a module defined, never instantiated
    assert core_layout(parse_component(tmp_path, "fused", FUSED).read_bytes()) == CoreLayout(2, 0)
    assert core_layout(b"\0asm\x0d\x00\x01\x00\x01\xff") is None  # truncated section
    assert core_layout(b"not wasm") is None


def _doubling(levels: int, fan: int, inner: str) -> str:
    """Nested components, each instantiating the previous one ``fan`` times: ``inner`` (the
    innermost's body) is instantiated fan**levels times."""
    parts = [f"(component $c0 {inner})"]
    for i in range(1, levels + 1):
        instantiations = " ".join(["(instance (instantiate $p))"] * fan)
        parts.append(f"(component $c{i} (alias outer 1 $c{i - 1} (component $p)) {instantiations})")
    return " ".join(parts) + f" (instance (instantiate $c{levels}))"


@pytest.mark.parametrize(("levels", "fan", "copies"), [(0, 1, 1), (3, 2, 2), (2, 3, 1), (1, 5, 3)])
def test_expansion_counts_what_wasmtimes_instance_limit_counts(
    tmp_path: Path, levels: int, fan: int, copies: int
) -> None:
    """read_layout's instance count is the number wasmtime's store limit counts: the
    component instantiates under a limit of exactly that many, and not one fewer."""
    import wasmtime
    from wasmtime.component import Component, Linker

    inner = "(core module $m (memory 1))" + " (core instance (instantiate $m))" * copies
    wat = f"(component {_doubling(levels, fan, inner)})"
    data = parse_component(tmp_path, f"d{levels}-{fan}-{copies}", wat).read_bytes()
    layout, expansion = read_layout(data)
    assert expansion is not None
    n = expansion.instances
    assert n == copies * fan**levels
    assert layout == CoreLayout(n, 0)
    engine = wasmtime.Engine()
    component = Component(engine, data)
    store = wasmtime.Store(engine)
    store.set_limits(instances=n)
    Linker(engine).instantiate(store, component)
    store = wasmtime.Store(engine)
    store.set_limits(instances=n - 1)
    with pytest.raises(wasmtime.WasmtimeError, match="instance count too high"):
        Linker(engine).instantiate(store, component)


def test_expansion_is_counted_past_what_is_not_known(tmp_path: Path) -> None:
    """An imported module (its memories unknown: no layout) does not hide what the rest
    expands to: 2**40 instantiations are counted, in no time, and grow with the nesting."""
    bomb = _doubling(40, 2, "(core module $m) (core instance (instantiate $m))")
    wat = f'(component (import "m" (core module $im)) (core instance (instantiate $im)) {bomb})'
    layout, expansion = read_layout(parse_component(tmp_path, "unknown", wat).read_bytes())
    assert layout is None
    assert expansion is not None
    assert expansion.instances == 2**40 + 1
    assert expansion.inlined > 2**40
    assert read_layout(b"not wasm") == (None, None)


def test_expansion_counts_functions_and_locals_once_per_module(tmp_path: Path) -> None:
    """The functions a component's core modules define and the locals they declare
    (what compiling them costs beyond their size) are counted once per module, however
    often it is instantiated, in nested components too, reference-typed locals included."""
    module = (
        "(core module $m (func (local i32 i64) (local f32)) (func)"
        " (func (local (ref null func)) (local i32)))"
    )
    wat = (
        f"(component {module} (core instance (instantiate $m)) (core instance (instantiate $m))"
        f" (component $n (core module (func (local i32 i32 i32))) {module}"
        " (core instance (instantiate 1))) (instance (instantiate $n)) (instance (instantiate $n)))"
    )
    data = parse_component(tmp_path, "locals", wat).read_bytes()
    expansion = read_layout(data)[1]
    assert expansion is not None
    assert (expansion.functions, expansion.locals) == (3 + 1 + 3, 5 + 3 + 5)
    assert expansion.instances == 2 + 2


def test_counting_locals_stops_past_the_thresholds() -> None:
    """The count of functions and locals reads no more than it needs to decide: past
    IN_PROCESS_FUNCTIONS functions no body is read, and past IN_PROCESS_LOCALS locals
    (a declaration of none counting as one) the reading stops, so a binary of millions of
    empty declarations costs the reader a bounded time and compiles in the child."""
    from airssys_plugins.runtime import layout
    from airssys_plugins.runtime.image import _check_expansion

    from .demo import hostile_shapes

    shapes = hostile_shapes()
    component, core_module, leb = shapes.component, shapes.core_module, shapes.leb
    empty = leb(2_000_000) + b"\x00\x7f" * 2_000_000  # 2 million declarations of no local
    expansion = read_layout(component(core_module([empty])))[1]
    assert expansion is not None
    assert expansion.locals == layout.IN_PROCESS_LOCALS + 1
    assert _check_expansion("empty", None, expansion, None)
    many = read_layout(component(core_module([leb(1) + leb(7) + b"\x7f"] * 10_001)))[1]
    assert many is not None
    assert (many.functions, many.locals) == (10_001, 0)  # no body read
    assert _check_expansion("many", None, many, None)


# A module defined twice, one instantiated.
UNINSTANTIATED = """(component
  (core module $a (memory 1))
  (core module $b (memory 1))
  (core instance (instantiate $b)))"""

# jco's list-adapter-fusion, in small: one nested component (its module reached by an
# outer alias) instantiated twice, the second instance given the first one's export.
FUSED = """(component
  (core module $libc (memory (export "memory") 1) (func (export "f") (result i32) i32.const 7))
  (component $c
    (import "in" (instance $in (export "f" (func (result u32)))))
    (alias outer 1 $libc (core module $libc))
    (core instance $i (instantiate $libc))
    (func $f (result u32) (canon lift (core func $i "f")))
    (instance $out (export "f" (func $f)))
    (export "out" (instance $out)))
  (component $seed
    (core module $m (func (export "f") (result i32) i32.const 1))
    (core instance $i (instantiate $m))
    (func $f (result u32) (canon lift (core func $i "f")))
    (instance $out (export "f" (func $f)))
    (export "out" (instance $out)))
  (instance $s (instantiate $seed))
  (instance $i1 (instantiate $c (with "in" (instance $s "out"))))
  (instance $i2 (instantiate $c (with "in" (instance $i1 "out"))))
  (export "hostile:mem/fused@1.0.0" (instance $i2 "out")))"""


def test_a_component_instantiated_twice_loads_with_both_memories(tmp_path: Path) -> None:
    """A component that instantiates one nested component twice (as jco's
    list-adapter-fusion does) starts, with the memory limit split over both copies."""
    wasm = parse_component(tmp_path, "fused", FUSED)
    image = ComponentImage.load("fused", wasm, cache=False)
    assert image.layout == CoreLayout(2, 0)  # counted once per instantiation
    instance = PluginInstance(image, sandbox=SandboxSpec(memory=8 * MiB))
    try:
        instance.instantiate()
    finally:
        instance.close()


def test_instance_count_at_load_is_a_resource_limit(tmp_path: Path) -> None:
    """Too many core instances at load: PluginLimitExceeded with a reason saying which
    limit, not reason='trap'."""
    pm = pluggy.PluginManager("hostile")
    pm.add_hookspecs(MemHooks)
    wasm = parse_component(tmp_path, "many", _many_instances(8, 0))
    with PluginHost(pm, package="hostile:mem@1.0.0") as host:
        with pytest.raises(PluginLimitExceeded, match="Limits\\(instances=") as info:
            host.load(wasm, name="crowd", limits=Limits(instances=4, memory=None))
        assert info.value.reason == "too many instances"
        assert info.value.plugin == "crowd"
        host.load(parse_component(tmp_path, "sibling", SIBLING), name="sibling")
        assert pm.hook.pong() == [42]


mem_spec = pluggy.HookspecMarker("hostile")


class MemHooks:
    @mem_spec
    def boom(self) -> u32: ...

    @mem_spec
    def pong(self) -> u32: ...


# --------------------------------------------------------------------------- ABI (case 25)

ABI_WIT = """package hostile:abi@1.0.0;
interface get-enum { enum color { red, green, blue } get-enum: func() -> color; }
interface get-option { get-option: func() -> option<u32>; }
interface get-result { get-result: func() -> result<u32, u32>; }
interface get-variant {
  variant shape { dot, tag(u32), name(string) }
  get-variant: func() -> shape;
}
interface get-char { get-char: func() -> char; }
interface get-list { get-list: func() -> list<u32>; }
interface get-string { get-string: func() -> string; }
interface get-oob-string { get-oob-string: func() -> string; }
interface get-oob-list { get-oob-list: func() -> list<u32>; }
interface get-flags { flags perms { read, write, exec } get-flags: func() -> perms; }
interface get-bool { get-bool: func() -> bool; }
interface take-string { take-string: func(s: string) -> u32; }
interface take-list { take-list: func(l: list<u32>) -> u32; }
interface ok { ok: func() -> u32; }
world guest {
  export get-enum; export get-option; export get-result; export get-variant;
  export get-char; export get-list; export get-string; export get-oob-string;
  export get-oob-list; export get-flags; export get-bool; export take-string;
  export take-list; export ok;
}
"""


def _ret(hook: str, body: str, params: str = "", result: str = "(result i32)") -> str:
    return f'  (func (export "hostile:abi/{hook}@1.0.0#{hook}") {params} {result}\n    {body})\n'


def _pair(ptr: int, length: int) -> str:
    """Store (ptr, len) in the return area at 16 and return its address."""
    return (
        f"(i32.store (i32.const 16) (i32.const {ptr})) "
        f"(i32.store (i32.const 20) (i32.const {length})) (i32.const 16)"
    )


ABI_WAT = (
    """(module
  (memory (export "memory") 1)
  (data (i32.const 64) "\\ff\\fe")
  ;; a 7-byte allocation gets a pointer past memory's end; a 4-aligned one an odd pointer
  (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32)
    (if (i32.eq (local.get 3) (i32.const 7)) (then (return (i32.const 0x7ffffff0))))
    (if (i32.eq (local.get 2) (i32.const 4)) (then (return (i32.const 1025))))
    (i32.const 1024))
"""
    + _ret("get-enum", "(i32.const 7)")
    + _ret("get-option", "(i32.store (i32.const 16) (i32.const 7)) (i32.const 16)")
    + _ret("get-result", "(i32.store (i32.const 16) (i32.const 7)) (i32.const 16)")
    + _ret("get-variant", "(i32.store8 (i32.const 16) (i32.const 7)) (i32.const 16)")
    + _ret("get-char", "(i32.const 0xD800)")
    + _ret("get-list", _pair(1026, 2))
    + _ret("get-string", _pair(64, 2))
    + _ret("get-oob-string", _pair(65000, 4096))
    + _ret("get-oob-list", _pair(65000, 4096))
    + _ret("get-flags", "(i32.const 0xff)")
    + _ret("get-bool", "(i32.const 7)")
    + _ret("take-string", "(local.get 1)", "(param i32 i32)")
    + _ret("take-list", "(local.get 1)", "(param i32 i32)")
    + _ret("ok", "(i32.const 42)")
    + ")\n"
)

abi_spec = pluggy.HookspecMarker("hostile")


class Color(enum.Enum):
    RED = 1
    GREEN = 2
    BLUE = 3


class Perms(enum.Flag):
    READ = 1
    WRITE = 2
    EXEC = 4


@variant
class Shape:
    """dot | tag(u32) | name(string)"""


@attrs.frozen
class Dot(Shape):
    pass


@attrs.frozen
class Tag(Shape):
    value: u32


@attrs.frozen
class Name(Shape):
    value: str


class AbiHooks:
    @abi_spec
    def get_enum(self) -> Color: ...
    @abi_spec
    def get_option(self) -> u32 | None: ...
    @abi_spec
    def get_result(self) -> Result[u32, u32]: ...
    @abi_spec
    def get_variant(self) -> Shape: ...
    @abi_spec
    def get_char(self) -> char: ...
    @abi_spec
    def get_list(self) -> list[u32]: ...
    @abi_spec
    def get_string(self) -> str: ...
    @abi_spec
    def get_oob_string(self) -> str: ...
    @abi_spec
    def get_oob_list(self) -> list[u32]: ...
    @abi_spec
    def get_flags(self) -> Perms: ...
    @abi_spec
    def get_bool(self) -> bool: ...
    @abi_spec
    def take_string(self, s: str) -> u32: ...
    @abi_spec
    def take_list(self, l: list[u32]) -> u32: ...  # noqa: E741
    @abi_spec
    def ok(self) -> u32: ...


@pytest.fixture(scope="module")
def abi_wasm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    src = tmp_path_factory.mktemp("abi")
    (src / "wit").mkdir()
    (src / "wit" / "abi.wit").write_text(ABI_WIT)
    (src / "guest.wat").write_text(ABI_WAT)
    return build_guest(src)


@pytest.fixture
def abi_host(abi_wasm: Path) -> Iterator[pluggy.PluginManager]:
    pm = pluggy.PluginManager("hostile")
    pm.add_hookspecs(AbiHooks)
    with PluginHost(pm, package="hostile:abi@1.0.0") as host:
        host.load(abi_wasm, name="liar")
        yield pm


# (hook, kwargs, reason, the wasmtime 50 message it comes from): one hostile export per
# row of TRAP_TABLE's ABI part; a wasmtime upgrade that rewords one fails here.
ABI_CASES = [
    ("get_enum", {}, "invalid discriminant", "discriminant 7 out of range [0..3)"),
    ("get_option", {}, "invalid discriminant", "discriminant 7 out of range [0..2)"),
    ("get_result", {}, "invalid discriminant", "discriminant 7 out of range [0..2)"),
    ("get_variant", {}, "invalid discriminant", "discriminant 7 out of range [0..3)"),
    ("get_char", {}, "invalid char", "converted integer out of range for `char`"),
    ("get_list", {}, "misaligned pointer", "list pointer is not aligned"),
    ("get_string", {}, "invalid UTF-8", "invalid utf-8 sequence"),
    ("get_oob_string", {}, "out-of-bounds pointer", "string pointer/length out of bounds"),
    ("get_oob_list", {}, "out-of-bounds pointer", "list pointer/length out of bounds"),
    ("take_string", {"s": "7 bytes"}, "realloc out of bounds", "realloc return: beyond end"),
    ("take_list", {"l": [1, 2]}, "realloc misaligned", "realloc return: result not aligned"),
]


@pytest.mark.parametrize(
    ("hook", "kwargs", "reason", "wasmtime_says"), ABI_CASES, ids=[c[0] for c in ABI_CASES]
)
def test_abi_violations_are_abi_errors(
    abi_host: pluggy.PluginManager,
    hook: str,
    kwargs: dict[str, Any],
    reason: str,
    wasmtime_says: str,
) -> None:
    """Each canonical ABI violation, from a real hostile export, is a PluginABIError with
    its specific reason, naming the plugin; the plugin answers the next call."""
    with pytest.raises(PluginABIError) as info:
        getattr(abi_host.hook, hook)(**kwargs)
    assert info.value.reason == reason
    assert (info.value.plugin, info.value.hook) == ("liar", hook)
    assert wasmtime_says in str(info.value.__cause__)
    assert abi_host.hook.ok() == [42]


def test_every_abi_row_has_a_hostile_case() -> None:
    """No ABI row of TRAP_TABLE is untested (a row whose wording no real guest produces
    would never match after an upgrade, silently)."""
    abi_reasons = {reason for _, reason, cls in TRAP_TABLE if cls is PluginABIError}
    assert abi_reasons == {case[2] for case in ABI_CASES}


def test_abi_leniencies_follow_the_canonical_abi(abi_host: pluggy.PluginManager) -> None:
    """Flag bits beyond the declared flags are ignored and any non-zero bool is true, as
    the canonical ABI specifies: not errors."""
    assert abi_host.hook.get_flags() == [Perms.READ | Perms.WRITE | Perms.EXEC]
    assert abi_host.hook.get_bool() == [True]


# --------------------------------------------------------------------------- arguments (case 26)

NUMS_WIT = """package hostile:nums@1.0.0;
interface take-pt { record pt { f: f32, d: f64 } take-pt: func(p: pt) -> u32; }
interface take-f32s { take-f32s: func(x: list<f32>) -> u32; }
interface take-pair { take-pair: func(t: tuple<f32, u8>) -> u32; }
interface take-bytes { take-bytes: func(b: list<u8>) -> u32; }
interface take-nested { take-nested: func(x: list<tuple<u8, list<u8>>>) -> u32; }
world guest {
  export take-pt; export take-f32s; export take-pair; export take-bytes; export take-nested;
}
"""
NUMS_WAT = """(module
  (memory (export "memory") 1)
  (global $heap (mut i32) (i32.const 1024))
  (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32) (local $p i32)
    (local.set $p (i32.and (i32.add (global.get $heap) (i32.const 7)) (i32.const -8)))
    (global.set $heap (i32.add (local.get $p) (local.get 3)))
    (local.get $p))
  (func (export "hostile:nums/take-pt@1.0.0#take-pt") (param f32 f64) (result i32)
    (global.set $heap (i32.const 1024)) (i32.trunc_sat_f32_u (local.get 0)))
  (func (export "hostile:nums/take-f32s@1.0.0#take-f32s") (param i32 i32) (result i32)
    (global.set $heap (i32.const 1024)) (local.get 1))
  (func (export "hostile:nums/take-pair@1.0.0#take-pair") (param f32 i32) (result i32)
    (global.set $heap (i32.const 1024)) (local.get 1))
  (func (export "hostile:nums/take-bytes@1.0.0#take-bytes") (param i32 i32) (result i32)
    (global.set $heap (i32.const 1024)) (local.get 1))
  (func (export "hostile:nums/take-nested@1.0.0#take-nested") (param i32 i32) (result i32)
    (global.set $heap (i32.const 1024)) (local.get 1))
)
"""

nums_spec = pluggy.HookspecMarker("nums")


@attrs.frozen
class Pt:
    f: f32
    d: float


class NumHooks:
    @nums_spec
    def take_pt(self, p: Pt) -> u32: ...
    @nums_spec
    def take_f32s(self, x: list[f32]) -> u32: ...
    @nums_spec
    def take_pair(self, t: tuple[f32, u8]) -> u32: ...
    @nums_spec
    def take_bytes(self, b: bytes) -> u32: ...
    @nums_spec
    def take_nested(self, x: list[tuple[u8, bytes]]) -> u32: ...


@pytest.fixture(scope="module")
def nums_wasm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    src = tmp_path_factory.mktemp("nums")
    (src / "wit").mkdir()
    (src / "wit" / "nums.wit").write_text(NUMS_WIT)
    (src / "guest.wat").write_text(NUMS_WAT)
    return build_guest(src)


@pytest.fixture(params=[True, False], ids=["byte-buffers", "element-wise"])
def nums(
    request: pytest.FixtureRequest, nums_wasm: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[pluggy.PluginManager]:
    """The plugin, with and without the byte-buffer exports (bytes cross differently)."""
    monkeypatch.setattr(_image, "BYTE_EXPORTS", request.param)
    pm = pluggy.PluginManager("nums")
    pm.add_hookspecs(NumHooks)
    with PluginHost(pm, package="hostile:nums@1.0.0") as host:
        host.load(nums_wasm, name="nums")
        yield pm


HUGE = 10**400
BAD_NUMBERS = [
    ("take_pt", {"p": Pt(HUGE, 1.0)}, "p", ".f", "out of range for f32"),
    ("take_pt", {"p": Pt(1.0, HUGE)}, "p", ".d", "out of range for f64"),
    ("take_pt", {"p": Pt(1.0, -(10**5000))}, "p", ".d", "an int of about 5001 digits"),
    ("take_pt", {"p": Pt(1e300, 1.0)}, "p", ".f", "1e+300 is out of range for f32"),
    ("take_pt", {"p": Pt(-3.5e38, 1.0)}, "p", ".f", "out of range for f32"),
    ("take_f32s", {"x": [1.0, HUGE]}, "x", "[1]", "out of range for f32"),
    ("take_f32s", {"x": [1.0, 2.0, 1e39]}, "x", "[2]", "out of range for f32"),
    ("take_f32s", {"x": [1.0, "2"]}, "x", "[1]", "expected float (f32), got str"),
    ("take_pair", {"t": (1.0, "x")}, "t", "[1]", "expected int (u8), got str"),
    ("take_pair", {"t": (HUGE, 1)}, "t", "[0]", "out of range for f32"),
    ("take_pair", {"t": (1.0, 2**80)}, "t", "[1]", "out of range for u8"),
    ("take_pair", {"t": (1.0,)}, "t", "", "expected a tuple of 2 items"),
    ("take_bytes", {"b": [1, 256]}, "b", "[1]", "256 is out of range for u8"),
    ("take_bytes", {"b": "text"}, "b", "", "expected list[u8], got str"),
    ("take_nested", {"x": [(1, b"ok"), (2, [300])]}, "x", "[1][1][0]", "out of range for u8"),
    ("take_nested", {"x": [(1, b"ok"), (2, "no")]}, "x", "[1][1]", "expected list[u8]"),
]


@pytest.mark.parametrize(
    ("hook", "kwargs", "parameter", "where", "says"),
    BAD_NUMBERS,
    ids=[f"{c[0]}-{c[3] or 'top'}-{c[4][:20]}" for c in BAD_NUMBERS],
)
def test_bad_values_anywhere_are_argument_errors(
    nums: pluggy.PluginManager,
    hook: str,
    kwargs: dict[str, Any],
    parameter: str,
    where: str,
    says: str,
) -> None:
    """Numbers beyond their type's range and wrong types, at any depth of an argument:
    an ArgumentError naming plugin, hook, parameter and position; never OverflowError or
    TypeError; the plugin still answers."""
    with pytest.raises(ArgumentError) as info:
        getattr(nums.hook, hook)(**kwargs)
    error = info.value
    assert (error.plugin, error.hook, error.parameter) == ("nums", hook, parameter)
    assert f"argument {parameter!r}{where}" in str(error)
    assert says in str(error)
    assert nums.hook.take_pt(p=Pt(3.0, 1.0)) == [3]


def test_f32_limits_and_infinities(nums: pluggy.PluginManager) -> None:
    """An f32 takes its largest finite value (and what rounds to it), inf and NaN as they
    are; only a finite value that would become inf is refused."""
    big = 3.4028234663852886e38
    rounds_down = math.nextafter(2.0**128 - 2.0**103, 0.0)  # nearest f32: big
    assert nums.hook.take_pt(p=Pt(big, 1.0)) == [2**32 - 1]  # saturating truncation
    assert nums.hook.take_pt(p=Pt(rounds_down, 1.0)) == [2**32 - 1]
    with pytest.raises(ArgumentError, match="out of range for f32"):
        nums.hook.take_pt(p=Pt(2.0**128 - 2.0**103, 1.0))
    assert nums.hook.take_pt(p=Pt(math.inf, 1.0)) == [2**32 - 1]
    assert nums.hook.take_pt(p=Pt(math.nan, math.inf)) == [0]
    assert nums.hook.take_f32s(x=[big, -big, math.inf, 2**100, rounds_down]) == [5]


def test_memoryviews_of_any_format_are_bytes(nums: pluggy.PluginManager) -> None:
    """A memoryview argument crosses as its raw bytes, whatever its format or shape; a
    released one is an ArgumentError."""
    data = bytes(range(16))
    for view in (
        memoryview(data).cast("I"),
        memoryview(data).cast("B", (4, 4)),
        memoryview(bytearray(data))[::2],
        memoryview(data).cast("d"),
    ):
        assert nums.hook.take_bytes(b=view) == [len(view.tobytes())]
        assert nums.hook.take_nested(x=[(1, view)]) == [1]
    released = memoryview(data)
    released.release()
    with pytest.raises(ArgumentError, match="argument 'b'"):
        nums.hook.take_bytes(b=released)


class Hostile:
    """A value whose own code raises while it is read."""

    @property
    def f(self) -> float:
        raise RuntimeError("boom")

    d = 1.0


def test_a_value_that_raises_while_read_is_an_argument_error(nums: pluggy.PluginManager) -> None:
    """A property that raises inside a record is the argument's fault: ArgumentError, the
    original exception chained."""
    with pytest.raises(ArgumentError, match=r"argument 'p'.*RuntimeError: boom") as info:
        nums.hook.take_pt(p=Hostile())
    assert isinstance(info.value.__cause__, RuntimeError)


# --------------------------------------------------------------------------- symlinks (case 8)

link_spec = pluggy.HookspecMarker("linker")


class LinkHooks:
    @link_spec
    def make_symlink(self, target: str, path: str) -> Result[None, str]: ...
    @link_spec
    def make_hardlink(self, source: str, path: str) -> Result[None, str]: ...
    @link_spec
    def write_file(self, path: str, data: str) -> Result[None, str]: ...
    @link_spec
    def read_file(self, path: str) -> Result[str, str]: ...


@pytest.fixture(scope="session")
def linker_wasm() -> Path:
    """The componentize-py guest that tries to make links (built once per session)."""
    return build_guest(Path(__file__).resolve().parent / "guests" / "linker")


def test_guests_cannot_create_symlinks(linker_wasm: Path, tmp_path: Path) -> None:
    """Every symlink a guest tries to create in its writable preopen fails in the guest
    with EPERM (outside targets, relative ones, '..'): none appears on the host's disk.
    Hard links to its own files still work; a sibling still answers."""
    pm = pluggy.PluginManager("linker")
    pm.add_hookspecs(LinkHooks)
    secret = tmp_path / "secret.txt"
    secret.write_text("top secret")
    with PluginHost(pm, package="hostile:linker@1.0.0", data_dir=tmp_path / "plugins") as host:
        rights = Capabilities(filesystem=[FileGrant("/data", "data", "rw")])
        for name in ("linker", "sibling"):
            host.grants[name] = rights
        host.load(linker_wasm, name="linker", requests=rights)
        data = tmp_path / "plugins" / "linker"
        assert pm.hook.write_file(path="/data/own.txt", data="mine") == []
        depth = len(data.parts)
        for target in (
            str(secret),
            "../" * depth + str(secret).lstrip("/"),
            "..",
            "own.txt",
            "sub/../own.txt",
        ):
            with pytest.raises(PluginResultError, match="Operation not permitted") as info:
                pm.hook.make_symlink(target=target, path="/data/link")
            assert info.value.plugin == "linker"
            assert not (data / "link").is_symlink()
        assert [p.name for p in data.iterdir()] == ["own.txt"]
        assert pm.hook.make_hardlink(source="/data/own.txt", path="/data/hard") == []
        assert (data / "hard").read_text() == "mine"
        assert secret.read_text() == "top secret"
        host.load(linker_wasm, name="sibling", requests=rights)
        assert pm.hook.write_file(path="/data/both.txt", data="ok") == []
        assert pm.hook.read_file(path="/data/both.txt") == ["ok", "ok"]  # each its own dir


@pytest.mark.parametrize("seconds", [1e308, math.inf, 2.0**33])
def test_huge_timeouts_are_named_errors(seconds: float) -> None:
    """A timeout beyond 2**32 s, in Limits or in plugin.toml, is refused naming the field;
    no OverflowError when a deadline is computed."""
    with pytest.raises(ValueError, match=r"limit timeout is .* above the longest timeout"):
        Limits(timeout=seconds)
    with pytest.raises(ValueError, match="limit host_call_timeout is"):
        Limits(host_call_timeout=seconds)
    if math.isfinite(seconds):
        with pytest.raises(ManifestError, match=r"limits\.timeout: .* above the longest timeout"):
            Manifest.from_toml(f'name = "x"\n[limits]\ntimeout = {seconds!r}')


def test_a_huge_hook_timeout_is_no_deadline(nums_wasm: Path) -> None:
    """HookOptions(timeout=1e308) or inf means no deadline for that hook, not an
    OverflowError."""
    pm = pluggy.PluginManager("nums")
    pm.add_hookspecs(NumHooks)
    with PluginHost(pm, package="hostile:nums@1.0.0") as host:
        host.load(
            nums_wasm,
            name="nums",
            hooks={
                "take_pt": HookOptions(timeout=1e308),
                "take_bytes": HookOptions(timeout=math.inf),
            },
        )
        assert pm.hook.take_pt(p=Pt(2.0, 1.0)) == [2]
        assert pm.hook.take_bytes(b=b"abc") == [3]


# ------------------------------------------------------- aliased results (issue 12, hole 3)

RESULT_SIBLING = """(component
  (core module $m (func (export "pong") (result i32) (i32.const 42)))
  (core instance $i (instantiate $m))
  (func $pong (result u32) (canon lift (core func $i "pong")))
  (instance $iface (export "pong" (func $pong)))
  (export "hostile:res/pong@1.0.0" (instance $iface)))"""


def aliased_result(hook: str, wit_type: str, entries: int, nested: bool = False) -> str:
    """A component whose ``hook`` returns ``entries`` list entries that all point at one
    1 MiB region (ptr=65536, len=1 MiB); ``nested``: the outer entries all point at one
    inner list of one such entry. The flat data is a few hundred bytes of guest memory."""
    fill = f"""
      (loop $l
        (i32.store (i32.add (i32.const 1024) (i32.shl (local.get $i) (i32.const 3)))
                   (i32.const {2048 if nested else 65536}))
        (i32.store (i32.add (i32.const 1028) (i32.shl (local.get $i) (i32.const 3)))
                   (i32.const {1 if nested else MiB}))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br_if $l (i32.lt_u (local.get $i) (i32.const {entries}))))"""
    inner = (
        f"(i32.store (i32.const 2048) (i32.const 65536)) (i32.store (i32.const 2052) "
        f"(i32.const {MiB}))"
        if nested
        else ""
    )
    return f"""(component
  (core module $m
    (memory (export "memory") {16 + 2 + entries * 8 // 65536})
    (func (export "{hook}") (result i32)
      (local $i i32)
      (i32.store (i32.const 16) (i32.const 1024))
      (i32.store (i32.const 20) (i32.const {entries}))
      {inner}{fill}
      (i32.const 16)))
  (core instance $i (instantiate $m))
  (type $t {wit_type})
  (func $f (result $t) (canon lift (core func $i "{hook}") (memory (core memory $i "memory"))))
  (instance $iface (export "{hook}" (func $f)))
  (export "hostile:res/{hook}@1.0.0" (instance $iface)))"""


# Runs in a child process: loads the sibling and the hostile plugin (max_result_bytes as
# given), reads VmHWM, calls the hook, then reports what happened and the peak RSS added.
RESULT_DRIVER = r"""
import gc, json, sys
import pluggy
from airssys_plugins import Limits, PluginError, PluginHost, u32

spec = pluggy.HookspecMarker("hostile")

class Hooks:
    @spec
    def strings(self) -> list[str]: ...
    @spec
    def nested(self) -> list[list[str]]: ...
    @spec
    def blobs(self) -> list[bytes]: ...
    @spec
    def pong(self) -> u32: ...

def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key):
            return int(line.split()[1]) * 1024

hostile, hook, sibling, limit = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
pm = pluggy.PluginManager("hostile")
pm.add_hookspecs(Hooks)
out = {}
with PluginHost(pm, package="hostile:res@1.0.0") as host:
    host.load(sibling, name="sibling")
    assert pm.hook.pong() == [42]
    host.load(hostile, name="hostile", limits=Limits(max_result_bytes=limit))
    gc.collect()
    before = status("VmHWM:")
    try:
        out["entries"] = len(getattr(pm.hook, hook)()[0])
    except PluginError as exc:
        out.update(error=type(exc).__name__, reason=getattr(exc, "reason", None),
                   plugin=exc.plugin, hook=getattr(exc, "hook", None), message=str(exc))
    out["peak_added"] = status("VmHWM:") - before
    out["sibling"] = pm.hook.pong()
print(json.dumps(out))
"""


def run_result_driver(hostile: Path, hook: str, sibling: Path, limit: int) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, "-c", RESULT_DRIVER, str(hostile), hook, str(sibling), str(limit)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.splitlines()[-1])  # type: ignore[no-any-return]


RESULT_CASES = [
    # (id, hook, component WAT, entries x 1 MiB the host would copy, reason)
    ("16-aliased-strings", "strings", aliased_result("strings", "(list string)", 16), 16,
     "result too large"),
    ("64-aliased-strings", "strings", aliased_result("strings", "(list string)", 64), 64,
     "result too large"),
    ("nested-aliased-lists", "nested",
     aliased_result("nested", "(list (list string))", 64, nested=True), 64, "result too large"),
    ("4096-aliased-strings", "strings", aliased_result("strings", "(list string)", 4096), 4096,
     "result too large"),
    ("aliased-bytes", "blobs", aliased_result("blobs", "(list (list u8))", 4), 4,
     "result too large"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("hook", "wat", "reason"),
    [(c[1], c[2], c[4]) for c in RESULT_CASES],
    ids=[c[0] for c in RESULT_CASES],
)
def test_aliased_results_are_limit_errors(tmp_path: Path, hook: str, wat: str, reason: str) -> None:
    """A result whose entries alias one region is PluginLimitExceeded('result too large')
    naming plugin and hook, measured in guest memory before wasmtime copies anything: the
    peak RSS the call adds stays within 2 MiB under a 1 MiB limit (it was up to 200 MiB),
    and the sibling still answers. More shapes: tests/test_result_bounds.py."""
    hostile = parse_component(tmp_path, "hostile", wat)
    sibling = parse_component(tmp_path, "sibling", RESULT_SIBLING)
    out = run_result_driver(hostile, hook, sibling, MiB)
    assert (out.get("error"), out.get("reason")) == ("PluginLimitExceeded", reason), out
    assert (out["plugin"], out["hook"]) == ("hostile", hook)
    assert "plugin 'hostile'" in out["message"]
    assert out["sibling"] == [42]
    assert out["peak_added"] < 2 * MiB, out


# ------------------------------------------- ABI and argument cases, again and again (RSS)

# Runs in a child process: loads the ABI liar, the numbers plugin and a sibling, runs every
# ABI and bad-argument case once to warm up, records RSS, open fds and threads, runs them
# all ``rounds`` times more, and reports how far each moved from its baseline.
REPEAT_DRIVER = r"""
import gc, json, os, sys, threading
import pluggy
from airssys_plugins import PluginError, PluginHost, RestartPolicy
from tests.test_hostile_calls import ABI_CASES, BAD_NUMBERS, AbiHooks, NumHooks, MemHooks

# every call really reaches the guest: no circuit opening, no backoff
restart = RestartPolicy(max_failures=10**9, backoff_base=1e-9, backoff_max=1e-9)

def rss():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024

abi, nums, sibling, rounds = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
pms = {}
for project, specs in (("hostile", (AbiHooks, MemHooks)), ("nums", (NumHooks,))):
    pms[project] = pluggy.PluginManager(project)
    for s in specs:
        pms[project].add_hookspecs(s)
out = {"errors": {}, "escaped": []}
h1 = PluginHost(pms["hostile"], package="hostile:abi@1.0.0", restart=restart)
h2 = PluginHost(pms["nums"], package="hostile:nums@1.0.0", restart=restart)
with h1, h2:
    h1.load(abi, name="liar")
    h2.load(nums, name="nums")
    h1.load(sibling, name="sibling")
    cases = [(pms["hostile"], c[0], c[1]) for c in ABI_CASES]
    cases += [(pms["nums"], c[0], c[1]) for c in BAD_NUMBERS]

    def once():
        for pm, hook, kwargs in cases:
            try:
                getattr(pm.hook, hook)(**kwargs)
                out["escaped"].append(hook)
            except PluginError as exc:
                out["errors"][type(exc).__name__] = out["errors"].get(type(exc).__name__, 0) + 1
                out.setdefault("messages", {}).setdefault(type(exc).__name__, str(exc)[:300])
            except BaseException as exc:
                out["escaped"].append(f"{hook}: {type(exc).__name__}")
        assert pms["hostile"].hook.pong() == [42]

    for _ in range(3):
        once()
    gc.collect()
    base = rss(), len(os.listdir("/proc/self/fd")), threading.active_count()
    for _ in range(rounds):
        once()
    gc.collect()
    out["rss_added"] = rss() - base[0]
    out["fds_added"] = len(os.listdir("/proc/self/fd")) - base[1]
    out["threads_added"] = threading.active_count() - base[2]
    out["sibling"] = pms["hostile"].hook.pong()
    out["cases"] = len(cases)
print(json.dumps(out))
"""


def test_abi_and_argument_cases_leave_nothing_behind(tmp_path: Path, nums_wasm: Path) -> None:
    """Every ABI violation and bad argument, 30 times over in one process: only named
    project errors escape, the sibling answers, and RSS, open fds and threads stay at
    their baseline (each ABI trap replaces an instance: none may leak)."""
    src = tmp_path / "abi"
    (src / "wit").mkdir(parents=True)
    (src / "wit" / "abi.wit").write_text(ABI_WIT)
    (src / "guest.wat").write_text(ABI_WAT)
    abi = build_guest(src)
    sibling = parse_component(tmp_path, "sibling", SIBLING.replace("hostile:mem", "hostile:abi"))
    proc = subprocess.run(
        [sys.executable, "-c", REPEAT_DRIVER, str(abi), str(nums_wasm), str(sibling), "30"],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.splitlines()[-1])
    assert out["escaped"] == []
    assert sum(out["errors"].values()) == 33 * out["cases"]
    assert set(out["errors"]) == {"PluginABIError", "ArgumentError"}, out["messages"].get(
        "PluginUnavailable"
    )
    assert out["sibling"] == [42]
    assert (out["fds_added"], out["threads_added"]) == (0, 0), out
    assert out["rss_added"] < 8 * MiB, out


# ------------------------------------------------------------- shutdown is bounded (hole 3)

NEVER_STOPS = """(component
  (core module $m
    (func (export "shutdown") (loop $l (br $l)))
    (func (export "spin") (result i32) (loop $l (br $l)) (i32.const 0))
    (func (export "pong") (result i32) (i32.const 42)))
  (core instance $i (instantiate $m))
  (func $shutdown (canon lift (core func $i "shutdown")))
  (instance $lc (export "shutdown" (func $shutdown)))
  (export "airssys:host/lifecycle@0.1.0" (instance $lc))
  (func $spin (result u32) (canon lift (core func $i "spin")))
  (instance $s (export "spin" (func $spin)))
  (export "hostile:stop/spin@1.0.0" (instance $s))
  (func $pong (result u32) (canon lift (core func $i "pong")))
  (instance $p (export "pong" (func $pong)))
  (export "hostile:stop/pong@1.0.0" (instance $p)))"""

stop_spec = pluggy.HookspecMarker("hostile")


class StopHooks:
    @stop_spec
    def spin(self) -> u32: ...

    @stop_spec
    def pong(self) -> u32: ...


@pytest.mark.timeout(60)
def test_a_shutdown_that_never_returns_is_bounded(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A shutdown export that loops forever, in a plugin without a timeout, is stopped
    after the plugin's start-up bound (Limits.startup_timeout): unloading returns, the
    failure is logged as a PluginTimeout naming the plugin, and the sibling answers."""
    pm = pluggy.PluginManager("hostile")
    pm.add_hookspecs(StopHooks)
    wasm = parse_component(tmp_path, "stuck", NEVER_STOPS)
    with PluginHost(pm, package="hostile:stop@1.0.0") as host:
        host.load(wasm, name="stuck", limits=Limits(timeout=None, startup_timeout=0.3))
        sibling = parse_component(tmp_path, "sibling", SIBLING.replace("mem", "stop"))
        host.load(sibling, name="sibling")
        assert pm.hook.pong() == [42, 42]
        with caplog.at_level("WARNING", logger="airssys_plugins"):
            host.unload("stuck")
        assert "stuck" not in host.plugins
        assert "plugin 'stuck': shutdown failed" in caplog.text
        assert "timed out" in caplog.text
        assert pm.hook.pong() == [42]


@pytest.mark.timeout(60)
def test_unloading_does_not_wait_for_a_call_that_never_returns(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A hook call still running (here for up to 3 s) does not hold up unloading for more
    than the plugin's shutdown bound: unload returns while the call runs, the skipped
    shutdown is logged as 'busy', and the store is closed once the call ends."""
    import threading

    pm = pluggy.PluginManager("hostile")
    pm.add_hookspecs(StopHooks)
    wasm = parse_component(tmp_path, "stuck", NEVER_STOPS)
    outcome: list[BaseException] = []

    def spin() -> None:
        try:
            pm.hook.spin()
        except BaseException as exc:
            outcome.append(exc)

    with PluginHost(pm, package="hostile:stop@1.0.0") as host:
        host.load(
            wasm,
            name="stuck",
            limits=Limits(timeout=None, startup_timeout=0.3),
            hooks={"spin": HookOptions(timeout=3.0)},
        )
        instance = host.plugins["stuck"].instances[0]
        worker = threading.Thread(target=spin)
        worker.start()
        while not instance._active:  # the call has entered the guest
            worker.join(0.01)
        with caplog.at_level("WARNING", logger="airssys_plugins"):
            host.unload("stuck")
        assert worker.is_alive()  # unload did not wait for the call
        assert "another call was still running" in caplog.text
        assert "its instance is closed when it returns" in caplog.text
        worker.join()
        assert [getattr(e, "reason", None) for e in outcome] == ["timeout"]
        for _ in range(500):  # the helper thread closes the store right after the call
            if instance._store is None:
                break
            worker.join(0.01)
        assert instance._store is None
