"""The ``log`` host interface's ``list<field>``: read from the guest's memory, 32 kept.

wasmtime lifts a host function's ``list<record>`` into one value per field before the host
sees it: about 40 times the guest memory the list spans, and seconds of host time outside
the plugin's deadline (security.md, "Host functions' arguments"). ``log`` is therefore on
the raw import route (runtime/rawimports.py): its parameters arrive as their flat values
and the host lifts the first :data:`MAX_LOG_FIELDS` fields only. A component without an
allocator (hand-written WAT here) gets the probe that writes at address 0 and puts the
guest's bytes back (runtime/rawbytes.py, ``add_probe_at_zero``), so the route covers it too.
"""

from __future__ import annotations

import logging
import subprocess
from pathlib import Path

import pluggy
import pytest

from airssys_plugins import Capabilities, PluginHost, PluginLimitExceeded, u32, u64
from airssys_plugins.authoring.build import find_tool
from airssys_plugins.host.builtins import MAX_LOG_FIELDS
from airssys_plugins.runtime import image as _image
from airssys_plugins.runtime import plans, rawbytes
from airssys_plugins.runtime.image import ComponentImage

PACKAGE = "test:logfields@1.0.0"
LOG_RIGHTS = Capabilities(interfaces={"log"})

spec = pluggy.HookspecMarker("logfields")


class Hooks:
    @spec
    def flood(self, pages: u32) -> None:
        """Grow memory by ``pages`` and log that many pages of empty fields (the new
        pages, from address 65536)."""

    @spec
    def check(self) -> u64:
        """Log ``hello`` with two fields; return the 8 bytes at address 0."""

    @spec
    def pages(self) -> u32:
        """The memory's size in pages."""


_LOG_IMPORT = """
  (import "airssys:host/log@0.1.0" (instance $log
    (type $level (enum "trace" "debug" "info" "warning" "error"))
    (export "level" (type $lv (eq $level)))
    (type $field (record (field "key" string) (field "value" string)))
    (export "field" (type $f (eq $field)))
    (type $fl (list $f))
    (export "log" (func (param "level" $lv) (param "message" string) (param "fields" $fl)))))
  (alias export $log "log" (func $logf))
"""

#: The data at address 0 (what the probe must put back), the strings the fields name
#: (64: "key0", 68: "val0", 72: "key1", 76: "val1", 80: "hello") and two fields at 128.
_DATA = r"""(data (i32.const 0) "ABCDEFGHIJKLMNOP")
      (data (i32.const 64) "key0val0key1val1hello")
      (data (i32.const 128) "\40\00\00\00\04\00\00\00\44\00\00\00\04\00\00\00"
                            "\48\00\00\00\04\00\00\00\4c\00\00\00\04\00\00\00")"""


def no_allocator_wat(pages: int) -> str:
    """A component with no ``cabi_realloc`` (nothing a probe could allocate with) whose
    memory starts at ``pages`` pages, importing ``log``."""
    data = _DATA if pages else ""
    return f"""(component
  {_LOG_IMPORT}
  (core module $mem (memory (export "memory") {pages}) {data})
  (core instance $m (instantiate $mem))
  (alias core export $m "memory" (core memory $memory))
  (core func $lowered (canon lower (func $logf) (memory $memory)))
  (core module $main
    (import "env" "memory" (memory 0))
    (import "env" "log" (func $log (param i32 i32 i32 i32 i32)))
    (func (export "flood") (param $pages i32)
      (drop (memory.grow (local.get $pages)))
      (call $log (i32.const 3) (i32.const 0) (i32.const 0) (i32.const 65536)
        (i32.mul (local.get $pages) (i32.const 4096))))
    (func (export "check") (result i64)
      (call $log (i32.const 2) (i32.const 80) (i32.const 5) (i32.const 128) (i32.const 2))
      (i64.load (i32.const 0)))
    (func (export "pages") (result i32) (memory.size)))
  (core instance $i (instantiate $main (with "env" (instance
    (export "memory" (memory $memory)) (export "log" (func $lowered))))))
  (func $flood (param "pages" u32) (canon lift (core func $i "flood")))
  (func $check (result u64) (canon lift (core func $i "check")))
  (func $pages (result u32) (canon lift (core func $i "pages")))
  (instance $o1 (export "flood" (func $flood)))
  (instance $o2 (export "check" (func $check)))
  (instance $o3 (export "pages" (func $pages)))
  (export "{_iface("flood")}" (instance $o1))
  (export "{_iface("check")}" (instance $o2))
  (export "{_iface("pages")}" (instance $o3)))"""


def _iface(hook: str) -> str:
    return PACKAGE.replace("@", f"/{hook}@")


def build(tmp: Path, name: str, wat: str) -> Path:
    src, out = tmp / f"{name}.wat", tmp / f"{name}.wasm"
    src.write_text(wat)
    subprocess.run([find_tool("wasm-tools"), "parse", str(src), "-o", str(out)], check=True)
    return out


@pytest.fixture
def host() -> PluginHost:
    pm = pluggy.PluginManager("logfields")
    pm.add_hookspecs(Hooks)
    host = PluginHost(pm, package=PACKAGE)
    yield host
    host.close()


def load(host: PluginHost, wasm: Path, name: str = "g") -> None:
    host.grants[name] = LOG_RIGHTS
    host.load(wasm, name=name, requests=LOG_RIGHTS)


def wasmtime_lifts(monkeypatch: pytest.MonkeyPatch) -> PluginHost:
    """A host whose components' imports are left as given (wasmtime lifts every
    argument), without the compile cache, so nothing is shared with the raw route."""
    monkeypatch.setattr(rawbytes, "RAW_IMPORTS", False)
    monkeypatch.setattr(_image, "RAW_IMPORTS", False)
    pm = pluggy.PluginManager("logfields")
    pm.add_hookspecs(Hooks)
    return PluginHost(pm, package=PACKAGE, compile_cache=False)


def test_a_component_without_an_allocator_gets_the_probe_at_zero(
    tmp_path: Path, host: PluginHost, caplog: pytest.LogCaptureFixture
) -> None:
    """Its log call is read raw (the memory found by writing at address 0) and the 16
    bytes that were at address 0 are the guest's again before it runs."""
    wasm = build(tmp_path, "noalloc", no_allocator_wat(1))
    image = ComponentImage.load("noalloc", wasm, cache=False)
    assert image.raw_probe == plans.PROBE_AT_ZERO
    assert ("airssys:host/log@0.1.0", "log") in image.raw_imports
    load(host, wasm)
    with caplog.at_level(logging.INFO, logger="airssys_plugins.plugin.g"):
        (first,) = host.pm.hook.check()
        (again,) = host.pm.hook.check()
    assert first == again == int.from_bytes(b"ABCDEFGH", "little")
    records = [r for r in caplog.records if r.name == "airssys_plugins.plugin.g"]
    assert [r.getMessage() for r in records] == ["hello key0='val0' key1='val1'"] * 2
    assert records[0].plugin_fields == {"key0": "val0", "key1": "val1"}  # type: ignore[attr-defined]


def test_a_memory_of_no_page_gets_one(tmp_path: Path, host: PluginHost) -> None:
    """The probe at zero grows a memory of no page by one (as an allocator would), so the
    memory is found and an empty log call is read."""
    load(host, build(tmp_path, "nopage", no_allocator_wat(0)))
    assert host.pm.hook.pages() == [1]
    assert host.pm.hook.flood(pages=0) == []


def test_a_million_fields_are_counted_not_lifted(
    tmp_path: Path, host: PluginHost, caplog: pytest.LogCaptureFixture
) -> None:
    """16 MiB of empty fields, 1,048,576 of them, in one call: the record keeps the first
    32 and says how many more there were. Lifted by wasmtime, this call was refused by its
    hostcall fuel ("too much data copied") after about 320 MB of host memory; 786,432 fields
    took 5.7 s and 521 MB (security.md). A sibling plugin answers after it."""
    wasm = build(tmp_path, "flood", no_allocator_wat(1))
    load(host, wasm)
    load(host, wasm, name="sibling")
    with caplog.at_level(logging.INFO, logger="airssys_plugins.plugin.g"):
        host.plugins["g"].flood(pages=256)
    (record,) = [r for r in caplog.records if r.name == "airssys_plugins.plugin.g"]
    more = 256 * 4096 - MAX_LOG_FIELDS
    assert record.getMessage() == f" ='' ({more} more fields not shown)"
    assert record.plugin_fields == {"": ""}  # type: ignore[attr-defined]
    assert host.plugins["sibling"].pages() == 1


def test_wasmtime_lifting_keeps_32_fields_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Where the raw route does not apply, wasmtime lifts the list, and the host turns only
    its first 32 fields into Python objects: the same record. Past wasmtime's cap of copied
    values (1,048,576 fields), the call is refused, and the plugin answers the next one."""
    wasm = build(tmp_path, "given", no_allocator_wat(1))
    with wasmtime_lifts(monkeypatch) as host:
        load(host, wasm)
        assert ComponentImage.load("given", wasm, cache=False).raw_probe is None
        with caplog.at_level(logging.INFO, logger="airssys_plugins.plugin.g"):
            host.plugins["g"].flood(pages=2)
        (record,) = [r for r in caplog.records if r.name == "airssys_plugins.plugin.g"]
        assert record.getMessage() == f" ='' ({2 * 4096 - MAX_LOG_FIELDS} more fields not shown)"
        with pytest.raises(PluginLimitExceeded, match="too much data copied"):
            host.plugins["g"].flood(pages=256)
        assert host.plugins["g"].pages() == 1
