"""Runtime: trap classification against real wasmtime messages, timeouts, compile cache."""

from __future__ import annotations

import gc
import logging
import time
from collections.abc import Callable
from pathlib import Path

import pluggy
import pytest

from airssys_plugins import (
    HookCallError,
    PluginABIError,
    PluginHost,
    PluginTimeout,
    PluginTrap,
    release_compiled,
)
from airssys_plugins.authoring.build import build_guest
from airssys_plugins.runtime import TRAP_TABLE, aot_cache_dir, classify_error

Demo = Callable[..., Path]
abi_spec = pluggy.HookspecMarker("abi")


def fail_body(instructions: str) -> dict[str, str]:
    return {
        "fail": f'(func (export "demo:hooks/fail@1.0.0#fail") (param i32) (result i32) {instructions})'
    }


@pytest.mark.parametrize(
    ("hook", "kwargs", "overrides", "reason", "cls"),
    [
        ("fail", {"x": 1}, {}, "unreachable executed", PluginTrap),
        ("recurse", {"n": 0}, {}, "stack overflow", PluginTrap),
        (
            "fail",
            {"x": 0},
            fail_body("(i32.div_u (i32.const 1) (local.get 0))"),
            "division by zero",
            PluginTrap,
        ),
        (
            "fail",
            {"x": 1},
            fail_body("(i32.load (i32.const 0x7ffffff0))"),
            "out-of-bounds memory access",
            PluginTrap,
        ),
    ],
    ids=["unreachable", "stack", "div-zero", "oob-load"],
)
def test_real_traps_are_classified(
    pm: pluggy.PluginManager,
    host: PluginHost,
    demo: Demo,
    hook: str,
    kwargs: dict[str, int],
    overrides: dict[str, str],
    reason: str,
    cls: type[HookCallError],
) -> None:
    """Each trap wasmtime 50 reports maps to its reason (fails if wasmtime rewords one)."""
    host.load(demo(k=1, funcs=["fail", "recurse"], core_overrides=overrides), name="trappy")
    with pytest.raises(cls) as info:
        getattr(pm.hook, hook)(**kwargs)
    assert info.value.reason == reason
    assert info.value.plugin == "trappy"
    assert info.value.hook == hook
    assert info.value.__cause__ is not None


def test_infinite_loop_times_out(pm: pluggy.PluginManager, demo: Demo) -> None:
    """An infinite loop is interrupted at the deadline; the plugin keeps serving."""
    with PluginHost(pm, package="demo:hooks@1.0.0", timeout=0.2) as host:
        host.load(demo(k=1, funcs=["spin", "add-one"]), name="spinner")
        started = time.monotonic()
        with pytest.raises(
            PluginTimeout, match=r"plugin 'spinner' timed out in hook 'spin' after 0\.2 s"
        ) as info:
            pm.hook.spin()
        elapsed = time.monotonic() - started
        assert info.value.reason == "timeout"
        assert isinstance(info.value, TimeoutError)
        assert elapsed >= 0.2  # interrupted by the deadline, not by anything earlier
        assert pm.hook.add_one(x=1) == [2]


def test_per_plugin_timeout_overrides_host_default(
    pm: pluggy.PluginManager, host: PluginHost, demo: Demo
) -> None:
    """load(timeout=...) sets this plugin's deadline."""
    host.load(demo(k=1, funcs=["spin"]), name="quick", timeout=0.05)
    with pytest.raises(PluginTimeout, match=r"after 0\.05 s"):
        pm.hook.spin()


def test_deadline_moves_with_the_epoch(
    pm: pluggy.PluginManager, host: PluginHost, demo: Demo
) -> None:
    """A call's deadline counts from that call, however long the plugin has been busy
    before it: the runtime sets it again whenever the epoch has ticked since the last
    call (and skips that while it has not)."""
    host.load(demo(k=1, funcs=["add-one", "spin"]), name="quick", timeout=0.03)
    started = time.monotonic()
    calls = 0
    while time.monotonic() - started < 0.5:  # ~100 epoch ticks, ~16 timeouts' worth
        assert pm.hook.add_one(x=calls) == [calls + 1]
        calls += 1
    assert calls > 100
    started = time.monotonic()
    with pytest.raises(PluginTimeout, match=r"after 0\.03 s"):
        pm.hook.spin()
    assert time.monotonic() - started >= 0.02  # its own deadline, not a stale earlier one


ABI_WIT = """package abi:test@1.0.0;
interface bad-utf8 { bad-utf8: func() -> string; }
interface bad-pointer { bad-pointer: func() -> string; }
world guest { export bad-utf8; export bad-pointer; }
"""
ABI_WAT = """(module
  (memory (export "memory") 1)
  (data (i32.const 100) "\\ff\\fe\\fd")
  (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32) (i32.const 2048))
  (func (export "abi:test/bad-utf8@1.0.0#bad-utf8") (result i32)
    (i32.store (i32.const 16) (i32.const 100)) (i32.store (i32.const 20) (i32.const 3)) (i32.const 16))
  (func (export "abi:test/bad-pointer@1.0.0#bad-pointer") (result i32)
    (i32.store (i32.const 16) (i32.const 0xfffff000)) (i32.store (i32.const 20) (i32.const 64)) (i32.const 16))
)
"""


class AbiHooks:
    @abi_spec
    def bad_utf8(self) -> str: ...

    @abi_spec
    def bad_pointer(self) -> str: ...


@pytest.mark.parametrize(
    ("hook", "reason"), [("bad_utf8", "invalid UTF-8"), ("bad_pointer", "out-of-bounds pointer")]
)
def test_abi_violations_are_traps(tmp_path: Path, hook: str, reason: str) -> None:
    """A guest returning invalid UTF-8 or a wild pointer gets a PluginABIError."""
    src = tmp_path / "abi"
    (src / "wit").mkdir(parents=True)
    (src / "wit" / "abi.wit").write_text(ABI_WIT)
    (src / "guest.wat").write_text(ABI_WAT)
    pm = pluggy.PluginManager("abi")
    pm.add_hookspecs(AbiHooks)
    with PluginHost(pm, package="abi:test@1.0.0") as host:
        host.load(build_guest(src), name="liar")
        with pytest.raises(PluginABIError) as info:
            getattr(pm.hook, hook)()
        assert info.value.reason == reason


def test_trap_table_order_and_fallback() -> None:
    """Specific messages win over generic ones; unknown messages are plain traps."""
    assert classify_error("error while executing at wasm backtrace:\n wasm trap: interrupt") == (
        "timeout",
        PluginTimeout,
    )
    assert classify_error("out of bounds memory access")[0] == "out-of-bounds memory access"
    assert classify_error("something new") == ("trap", PluginTrap)
    assert len({needle for needle, _, _ in TRAP_TABLE}) == len(TRAP_TABLE)


def test_compile_cache_is_used_and_survives_corruption(
    pm: pluggy.PluginManager,
    demo: Demo,
    caplog: pytest.LogCaptureFixture,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A compiled artefact is written once; a corrupted entry is recompiled and logged."""
    wasm = demo(k=11, funcs=["add-one"])
    monkeypatch.setenv("AIRSSYS_PLUGINS_CACHE_DIR", str(tmp_path))
    with PluginHost(pm, package="demo:hooks@1.0.0") as host:
        digest = host.load(wasm, name="cached").sha256
    release_compiled()
    gc.collect()  # nothing holds the compiled component now: the next load reads the cache
    entries = list(aot_cache_dir().glob(f"{digest}-*.cwasm"))
    assert len(entries) == 1
    # Replace, never rewrite in place: live components memory-map their cache entry, and
    # truncating a mapped file kills the process with SIGBUS (the cache itself only ever
    # writes a temp file and renames it).
    corrupt = entries[0].with_suffix(".tmp")
    corrupt.write_bytes(b"not a compiled artefact")
    corrupt.replace(entries[0])
    with caplog.at_level(logging.WARNING), PluginHost(pm, package="demo:hooks@1.0.0") as host:
        host.load(wasm, name="cached")
        assert pm.hook.add_one(x=1) == [12]
    assert "is unusable" in caplog.text
    assert "recompiling" in caplog.text
    assert entries[0].read_bytes()[:4] != b"not "
