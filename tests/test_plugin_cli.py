"""The plugin commands (list, lock, enable, disable), validate with manifests, and inspect
on components from three toolchains: wasm-tools (WAT), componentize-py, and component
text compiled by wasmtime's own parser."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
import wasmtime

from airssys_plugins import Lockfile
from airssys_plugins.cli import main
from sample_apps.textpipe.app import bundled_plugin_dir

CONTRACT = ["--contract", "hookspecs.textpipe:TextHooks"]

# A component written directly in component-model text: an imported interface with a
# resource (constructor, method, own/borrow handles) and a named record, an imported core
# module and root function, an exported interface, root function and root type.
RAW_COMPONENT = """
(component
  (type $counters (instance
    (export "counter" (type $c (sub resource)))
    (export "[constructor]counter" (func (param "start" u32) (result (own $c))))
    (export "[method]counter.next" (func (param "self" (borrow $c)) (result u32)))
    (type $pt (record (field "x" s32) (field "y" s32)))
    (export "point" (type $p (eq $pt)))
    (export "origin" (func (result $p)))
  ))
  (import "test:raw/counters@0.1.0" (instance $ctr (type $counters)))
  (import "plugin-core" (core module (export "run" (func))))
  (import "log" (func (param "message" string)))
  (type $point (record (field "x" s32) (field "y" s32)))
  (export "point" (type $point))
  (core module $m
    (func (export "add") (param i32 i32) (result i32) local.get 0 local.get 1 i32.add))
  (core instance $i (instantiate $m))
  (func $add (param "a" u32) (param "b" u32) (result u32) (canon lift (core func $i "add")))
  (instance $math (export "add" (func $add)))
  (export "test:raw/math@0.1.0" (instance $math))
  (export "add" (func $add))
)
"""

# Component-model-async types: wasmtime reads streams and futures, not error-context.
ASYNC_COMPONENT = """
(component
  (type $s (stream u8))
  (type $f (future string))
  (import "test:raw/pipes@0.1.0" (instance
    (export "open" (func (param "name" string) (result $s)))
    (export "later" (func (result $f)))))
)
"""
ERROR_CONTEXT_COMPONENT = """
(component
  (import "test:raw/oops@0.1.0" (instance
    (export "oops" (func (param "e" error-context)))
    (export "ping" (func (result (stream u8))))))
)
"""


@pytest.fixture
def bundled(textpipe_wasm: dict[str, Path]) -> Path:
    """textpipe's bundled plugin directory (shout and wordstats with their manifests)."""
    return bundled_plugin_dir()


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_list_shows_the_sample_plugins(bundled: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A table: name, version, source, hooks, capabilities, status."""
    code, out, _ = run(capsys, "list", *CONTRACT, "--dir", str(bundled), "--no-packs")
    assert code == 0
    lines = out.splitlines()
    assert lines[1].split() == ["NAME", "VERSION", "SOURCE", "HOOKS", "CAPABILITIES", "STATUS"]
    assert lines[3].split() == ["shout", "1.0.0", "dir", str(bundled), "transform", "-", "loaded"]
    assert lines[4].split() == [
        "wordstats", "1.0.0", "dir", str(bundled), "analyze,", "configure,", "detect_language",
        "-", "loaded",
    ]  # fmt: skip


def test_list_reports_broken_disabled_and_shadowed(
    bundled: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Status and reason of every plugin; exit 1 when one is broken."""
    extra = tmp_path / "extra"
    (extra / "typo").mkdir(parents=True)
    (extra / "typo" / "plugin.toml").write_text('name = "typo"\n[capabilites]\n')
    shutil.copy(bundled / "shout" / "shout.wasm", extra / "shout.wasm")  # shadowed
    assert run(capsys, "disable", "wordstats", "--app", "textpipe", "--dir", str(bundled))[0] == 0
    code, out, err = run(
        capsys, "list", *CONTRACT, "--dir", str(bundled), "--dir", str(extra), "--no-packs"
    )
    assert code == 1
    status = {line.split()[0]: line.split()[-1] for line in out.splitlines()[3:7]}
    assert status == {
        "shout": "shadowed",  # the second shout row wins the dict: the shadowed one
        "wordstats": "disabled",
        "typo": "(ManifestError)",
    }
    assert "capabilites: unknown key. Fix: did you mean 'capabilities'?" in out
    assert f"warning: plugin 'shout' at {extra / 'shout.wasm'} is shadowed" in err

    code, out, _ = run(capsys, "list", *CONTRACT, "--dir", str(bundled), "--no-packs", "--json")
    rows = {r["name"]: r for r in json.loads(out)}
    assert rows["wordstats"]["status"] == "disabled"
    assert not rows["wordstats"]["enabled"]
    assert run(capsys, "enable", "wordstats", "--app", "textpipe")[1].startswith(
        "wordstats enabled for textpipe"
    )
    code, out, _ = run(capsys, "list", *CONTRACT, "--dir", str(bundled), "--no-packs", "--json")
    rows = {r["name"]: r for r in json.loads(out)}
    assert rows["wordstats"]["status"] == "loaded"
    assert rows["wordstats"]["hooks"]["analyze"] == "textpipe:hooks/analyze@1.0.0#analyze"
    assert rows["shout"]["sha256"] == sha256(bundled / "shout" / "shout.wasm")


def test_lock_writes_what_list_then_checks(
    bundled: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`lock` pins name, version, source, sha256 and capabilities; `list --lockfile` then
    refuses a changed component."""
    lockfile = tmp_path / "plugins.lock"
    code, out, _ = run(
        capsys, "lock", *CONTRACT, "--dir", str(bundled), "--no-packs", "-o", str(lockfile)
    )
    assert code == 0
    assert f"wrote {lockfile} (2 plugin(s) of textpipe)" in out
    lock = Lockfile.read(lockfile)
    assert sorted(lock.entries) == ["shout", "wordstats"]
    shout = lock.entries["shout"]
    assert (shout.version, shout.source) == ("1.0.0", f"dir {bundled}")
    assert shout.sha256 == sha256(bundled / "shout" / "shout.wasm")
    assert lock.entries["wordstats"].limits.timeout == 2.0

    copy = tmp_path / "copy"
    shutil.copytree(bundled / "shout", copy / "shout")
    (copy / "shout" / "shout.wasm").write_bytes(b"\0asm\x0d\0\x01\0")
    code, out, _ = run(
        capsys, "list", *CONTRACT, "--dir", str(copy), "--no-packs", "--lockfile", str(lockfile)
    )
    assert code == 1
    assert "broken (IntegrityError)" in out
    assert f"but {lockfile} pins {shout.sha256}" in out


def test_validate_a_plugin_directory(
    bundled: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """validate takes a manifest; with a broken one it lists the manifest's problems and
    the component's contract problems together."""
    code, out, _ = run(capsys, "validate", str(bundled / "wordstats"), *CONTRACT)
    assert code == 0
    assert "ok  detect_language" in out
    bad = tmp_path / "bad"
    bad.mkdir()
    shutil.copy(bundled / "shout" / "shout.wasm", bad / "bad.wasm")
    (bad / "plugin.toml").write_text('name = "bad"\nverison = "1.0.0"\n')
    code, _, err = run(
        capsys, "validate", str(bad), "--contract", "tests.demo:DemoHooks", "--package",
        "demo:hooks@1.0.0",
    )  # fmt: skip
    assert code == 1
    assert "verison: unknown key. Fix: did you mean 'version'?" in err
    assert "the component implements none of the host's hooks" in err


def test_inspect_wat_component(
    textpipe_wasm: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """Toolchain 1, wasm-tools from WAT: text and JSON."""
    code, out, _ = run(capsys, "inspect", str(textpipe_wasm["shout"]))
    assert code == 0
    assert out.splitlines()[1:] == [
        "imports (0):",
        "  (none)",
        "exports (1):",
        "  interface textpipe:hooks/transform@1.0.0 {",
        "    transform: func(text: string) -> string;",
        "  }",
    ]
    code, out, _ = run(capsys, "inspect", "--json", str(textpipe_wasm["shout"]))
    data = json.loads(out)
    assert data["imports"] == []
    assert data["loadable"] is True
    [iface] = data["exports"]
    assert iface["name"] == "textpipe:hooks/transform@1.0.0"
    assert iface["kind"] == "interface"
    [func] = iface["items"]
    assert func == {
        "name": "transform",
        "kind": "func",
        "params": [{"name": "text", "type": {"kind": "string"}}],
        "result": {"kind": "string"},
        "wit": "func(text: string) -> string",
    }


def test_inspect_componentize_py_component(
    textpipe_wasm: dict[str, Path], bundled: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Toolchain 2, componentize-py: WASI imports with resources, named types, records."""
    code, out, _ = run(capsys, "inspect", str(bundled / "wordstats"))  # a plugin dir works
    assert code == 0
    assert out.startswith("plugin wordstats 1.0.0 (manifest ")
    for line in [
        "  interface wasi:io/streams@0.2.9 {"[: len("  interface wasi:io/streams@")],
        "    resource output-stream;",
        "    variant stream-error { last-operation-failed(own<error>), closed }",
        "    [method]output-stream.write: func(self: borrow<output-stream>, contents: list<u8>) "
        "-> result<_, stream-error>;",
        "    record datetime { seconds: u64, nanoseconds: u32 }",
        "    get-stdout: func() -> own<output-stream>;",
        "  interface textpipe:hooks/analyze@1.0.0 {",
        "    record stat { name: string, value: f64 }",
        "    analyze: func(text: string) -> list<stat>;",
    ]:
        assert line in out
    data = json.loads(run(capsys, "inspect", "--json", str(textpipe_wasm["wordstats"]))[1])
    streams = next(i for i in data["imports"] if i["name"].startswith("wasi:io/streams@"))
    write = next(i for i in streams["items"] if i["name"] == "[method]output-stream.write")
    assert write["params"][0]["type"] == {
        "kind": "borrow",
        "wit": "borrow<output-stream>",
        "resource": "output-stream",
    }


def test_inspect_component_text(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Toolchain 3, component-model text compiled by wasmtime's own WAT parser: every item
    kind (interfaces, resources, core modules, root functions and types)."""
    wasm = tmp_path / "raw.wasm"
    wasm.write_bytes(wasmtime.wat2wasm(RAW_COMPONENT))
    code, out, _ = run(capsys, "inspect", str(wasm))
    assert code == 0
    assert out.splitlines()[1:] == [
        "imports (3):",
        "  interface test:raw/counters@0.1.0 {",
        "    resource counter;",
        "    [constructor]counter: func(start: u32) -> own<counter>;",
        "    [method]counter.next: func(self: borrow<counter>) -> u32;",
        "    record point { x: s32, y: s32 }",
        "    origin: func() -> point;",
        "  }",
        "  module plugin-core;",
        "  log: func(message: string);",
        "exports (3):",
        "  record point { x: s32, y: s32 }",
        "  interface test:raw/math@0.1.0 {",
        "    add: func(a: u32, b: u32) -> u32;",
        "  }",
        "  add: func(a: u32, b: u32) -> u32;",
    ]
    data = json.loads(run(capsys, "inspect", "--json", str(wasm))[1])
    assert [(i["name"], i["kind"]) for i in data["imports"]] == [
        ("test:raw/counters@0.1.0", "interface"),
        ("plugin-core", "module"),
        ("log", "func"),
    ]
    assert data["exports"][0]["type"]["kind"] == "record"


def test_inspect_does_not_fail_on_streams_futures_and_error_context(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Streams and futures are described; a component wasmtime-py cannot compile at all
    (error-context) is shown through wasm-tools instead of failing."""
    wasm = tmp_path / "async.wasm"
    wasm.write_bytes(wasmtime.wat2wasm(ASYNC_COMPONENT))
    code, out, _ = run(capsys, "inspect", str(wasm))
    assert code == 0
    assert "    open: func(name: string) -> stream<u8>;" in out
    assert "    later: func() -> future<string>;" in out
    data = json.loads(run(capsys, "inspect", "--json", str(wasm))[1])
    assert data["imports"][0]["items"][0]["result"] == {"kind": "stream", "wit": "stream<u8>"}

    wasm = tmp_path / "oops.wasm"
    wasm.write_bytes(wasmtime.wat2wasm(ERROR_CONTEXT_COMPONENT))
    code, out, _ = run(capsys, "inspect", str(wasm))
    assert code == 0
    assert "cannot be loaded by wasmtime" in out
    assert "error-context feature" in out
    assert "oops: func(e: error-context);" in out
    data = json.loads(run(capsys, "inspect", "--json", str(wasm))[1])
    assert data["loadable"] is False
    assert "ping: func() -> stream<u8>;" in data["wit"]


def test_inspect_reports_non_components(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A file that is no component at all is an error (exit 1), not a traceback."""
    (tmp_path / "x.wasm").write_bytes(b"hello")
    code, _, err = run(capsys, "inspect", str(tmp_path / "x.wasm"))
    assert code == 1
    assert "is not a WebAssembly binary" in err
