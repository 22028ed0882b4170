"""The sandbox: capability decisions, WASI grants, host interfaces, and the hostile corpus.

Each hostile case checks the named exception, that the host process is alive, that a
healthy sibling plugin still answers, and that live stores/threads/open files return to
their baseline (see ../shared/notes/security.md for the corpus).
"""

from __future__ import annotations

import gc
import http.server
import json
import logging
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pluggy
import pytest

from airssys_plugins import (
    Capabilities,
    CapabilityDenied,
    FileGrant,
    HostFunctionError,
    Limits,
    PluginExit,
    PluginHost,
    PluginLimitExceeded,
    PluginResultError,
    PluginTimeout,
    PluginTrap,
    current_plugin,
    u32,
)
from airssys_plugins.authoring.build import build_guest
from airssys_plugins.runtime import callbacks as _hostfuncs
from airssys_plugins.runtime import instance as _instance
from airssys_plugins.runtime.instance import PluginInstance
from airssys_plugins.runtime.sandbox import SandboxSpec

from .demo import PACKAGE as DEMO_PACKAGE
from .probe_hooks import PACKAGE, ProbeHooks

GUESTS = Path(__file__).resolve().parent / "guests"
ALL_HOST = Capabilities(interfaces=["log", "config", "kv", "http"])


@pytest.fixture(scope="session")
def probe_wasm() -> Path:
    """The componentize-py probe guest (built once per session)."""
    return build_guest(GUESTS / "probe")


def _baseline() -> tuple[int, int, int]:
    """Live plugin instances (found by the collector), registered stores, threads."""
    gc.collect()
    live = sum(1 for o in gc.get_objects() if type(o) is _instance.PluginInstance)
    return (live, len(_hostfuncs._CONTEXTS), threading.active_count())


@pytest.fixture
def probe_host(tmp_path: Path) -> Iterator[tuple[pluggy.PluginManager, PluginHost]]:
    pm = pluggy.PluginManager("probe")
    pm.add_hookspecs(ProbeHooks)
    with PluginHost(pm, package=PACKAGE, data_dir=tmp_path / "data") as host:
        yield pm, host


def one(results: list[Any]) -> Any:
    assert len(results) <= 1
    return results[0] if results else None


def load_probe(
    host: PluginHost,
    wasm: Path,
    *,
    name: str = "probe",
    requests: Capabilities = ALL_HOST,
    grants: Capabilities | None = None,
    **kwargs: Any,
) -> Any:
    host.grants[name] = requests if grants is None else grants
    return host.load(wasm, name=name, requests=requests, **kwargs)


def healthy_sibling(pm: pluggy.PluginManager, host: PluginHost, wasm: Path) -> None:
    """A second, well-behaved plugin still answers after a hostile call."""
    if "sibling" not in host.plugins:
        load_probe(host, wasm, name="sibling", config={"who": "sibling"})
    results = pm.hook.config_get(key="who")
    assert "sibling" in results


# --------------------------------------------------------------------------- decisions


def test_request_ceiling_grants_intersection(tmp_path: Path) -> None:
    """A right is effective only if requested, under the ceiling and granted."""
    from airssys_plugins.policy.capabilities import decide

    request = Capabilities(env=["A", "B", "C"], interfaces=["log", "kv"])
    ceiling = Capabilities(env=["A", "B"], interfaces=["log", "kv"])
    grants = Capabilities(env=["A"], interfaces=["log", "kv"])
    effective, denied = decide("p", request, ceiling, grants, strict=False)
    assert effective.env == {"A"}
    assert effective.interfaces == {"log", "kv"}
    assert denied == ["env B (not granted)", "env C (above the host's ceiling)"]
    with pytest.raises(CapabilityDenied) as info:
        decide("p", request, ceiling, grants)
    assert info.value.denied == ("env B (not granted)", "env C (above the host's ceiling)")
    assert "[plugins.p]" in str(info.value)


def test_ungranted_request_refuses_load_and_is_audited(probe_host: Any, probe_wasm: Path) -> None:
    """Default policy: a plugin asking for ungranted rights does not load; audit says why."""
    _, host = probe_host
    with pytest.raises(CapabilityDenied) as info:
        host.load(probe_wasm, name="greedy", requests=ALL_HOST)
    assert "interface kv (not granted)" in info.value.denied
    assert host.plugins == {}
    kinds = [(e.kind, e.detail) for e in host.audit.events(plugin="greedy")]
    assert ("deny", "interface kv (not granted)") in kinds
    assert kinds[-1][0] == "refuse"


def test_importing_an_ungranted_interface_fails_at_load(probe_host: Any, probe_wasm: Path) -> None:
    """Case 11: a component importing interfaces it was not granted names the imports."""
    _, host = probe_host
    with pytest.raises(CapabilityDenied) as info:
        host.load(probe_wasm, name="sneaky", requests=Capabilities())
    text = str(info.value)
    for iface in ("log", "config", "kv", "http"):
        assert f"interface airssys:host/{iface}@0.1.0 (imported, not granted)" in text


def test_drop_policy_loads_without_refused_rights(tmp_path: Path, probe_wasm: Path) -> None:
    """on_denied='drop' loads the plugin with only what is granted (imports still checked)."""
    pm = pluggy.PluginManager("probe")
    pm.add_hookspecs(ProbeHooks)
    grants = {"p": Capabilities(interfaces=["log", "config", "kv", "http"])}
    with PluginHost(
        pm, package=PACKAGE, grants=grants, on_denied="drop", data_dir=tmp_path
    ) as host:
        plugin = host.load(
            probe_wasm,
            name="p",
            requests=Capabilities(interfaces=["log", "config", "kv", "http"], env=["HOME"]),
        )
        assert plugin.capabilities.env == frozenset()
        assert ("deny", "env HOME (not granted)") in [
            (e.kind, e.detail) for e in host.audit.events()
        ]


def test_grants_file(tmp_path: Path, probe_wasm: Path) -> None:
    """Grants can come from a TOML file with [plugins.<name>] tables."""
    grants = tmp_path / "grants.toml"
    grants.write_text('[plugins.p]\ninterfaces = ["log", "config", "kv", "http"]\nenv = ["LANG"]\n')
    pm = pluggy.PluginManager("probe")
    pm.add_hookspecs(ProbeHooks)
    with PluginHost(pm, package=PACKAGE, grants=grants, data_dir=tmp_path) as host:
        plugin = host.load(
            probe_wasm,
            name="p",
            requests=Capabilities(interfaces=["log", "config", "kv", "http"], env=["LANG"]),
        )
        assert plugin.capabilities.env == {"LANG"}
    bad = tmp_path / "bad.toml"
    bad.write_text('[plugins.p]\nenvs = ["LANG"]\n')
    with pytest.raises(ValueError, match=r"plugins\.p\.envs: unknown key"):
        PluginHost(pm, package=PACKAGE, grants=bad)


def test_audit_export(probe_host: Any, probe_wasm: Path, tmp_path: Path) -> None:
    """Every grant is recorded and exportable as JSON lines."""
    _, host = probe_host
    load_probe(host, probe_wasm)
    out = tmp_path / "audit.jsonl"
    count = host.audit.export_jsonl(out)
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert count == len(lines) > 0
    assert {"kind": "grant", "plugin": "probe", "detail": "interface kv"}.items() <= next(
        entry for entry in lines if entry["detail"] == "interface kv"
    ).items()


# --------------------------------------------------------------------------- host interfaces


def test_log_config_kv(probe_host: Any, probe_wasm: Path, caplog: pytest.LogCaptureFixture) -> None:
    """log reaches Python logging with fields; config returns the plugin's values; kv persists."""
    pm, host = probe_host
    load_probe(host, probe_wasm, config={"colour": "blue"})
    with caplog.at_level(logging.WARNING, logger="airssys_plugins.plugin.probe"):
        pm.hook.log_it(message="hello \x1b[31mred")
    record = next(r for r in caplog.records if r.name == "airssys_plugins.plugin.probe")
    assert record.getMessage() == "hello \\x1b[31mred source='probe'"
    assert record.plugin_fields == {"source": "probe"}  # type: ignore[attr-defined]
    assert one(pm.hook.config_get(key="colour")) == "blue"
    assert one(pm.hook.config_get(key="missing")) is None
    pm.hook.kv_put(key="k", value="v1")
    assert one(pm.hook.kv_fetch(key="k")) == "v1"
    host.unload("probe")
    load_probe(host, probe_wasm, name="other")
    assert one(pm.hook.kv_fetch(key="k")) is None  # namespaces are per plugin
    host.unload("other")
    load_probe(host, probe_wasm)
    assert one(pm.hook.kv_fetch(key="k")) == "v1"  # and persist across loads


def test_kv_quota(probe_host: Any, probe_wasm: Path) -> None:
    """Writes past the quota come back to the guest as an error."""
    pm, host = probe_host
    load_probe(host, probe_wasm)
    assert host._kv is not None
    host._kv.quota = 100
    with pytest.raises(PluginResultError, match="quota of 100 bytes exceeded"):
        pm.hook.kv_put(key="big", value="x" * 200)


@pytest.fixture
def web_server() -> Iterator[str]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/redirect":
                self.send_response(302)
                self.send_header("Location", "http://127.0.0.1:1/elsewhere")
                self.end_headers()
                return
            body = b"hello from host"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_http_allowlist(probe_host: Any, probe_wasm: Path, web_server: str) -> None:
    """http reaches allowlisted origins only; a refusal is audited."""
    pm, host = probe_host
    load_probe(
        host,
        probe_wasm,
        requests=Capabilities(interfaces=["log", "config", "kv", "http"], network=[web_server]),
    )
    assert one(pm.hook.http_get(url=f"{web_server}/x")) == "200 hello from host"
    other = web_server.rsplit(":", 1)[0] + ":1"
    with pytest.raises(PluginResultError, match="is not allowed for this plugin"):
        pm.hook.http_get(url=f"{other}/x")
    with pytest.raises(PluginResultError, match="redirect to an origin not allowed"):
        pm.hook.http_get(url=f"{web_server}/redirect")
    assert any(e.kind == "deny" and "http to" in e.detail for e in host.audit.events())


# --------------------------------------------------------------------------- hostile corpus


def test_case8_filesystem_escapes(probe_host: Any, probe_wasm: Path, tmp_path: Path) -> None:
    """Case 8: '..', absolute paths, symlinks and writes in a read-only preopen all fail in
    the guest; host files stay byte-identical."""
    pm, host = probe_host
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "note.txt").write_text("original")
    secret = tmp_path / "secret.txt"
    secret.write_text("top secret")
    (shared / "link").symlink_to(secret)
    requests = Capabilities(
        interfaces=["log", "config", "kv", "http"],
        filesystem=[FileGrant("/shared", str(shared), "ro"), FileGrant("/data", "data", "rw")],
    )
    load_probe(host, probe_wasm, requests=requests)
    assert one(pm.hook.read_file(path="/shared/note.txt")) == "original"
    attempts = {
        "/shared/../secret.txt": "read",
        str(secret): "read",
        "/shared/link": "read",
        "/etc/passwd": "read",
        "/shared/note.txt": "write",
        "/shared/new.txt": "write",
    }
    for path, op in attempts.items():
        hook = pm.hook.read_file if op == "read" else pm.hook.write_file
        kwargs = {"path": path} if op == "read" else {"path": path, "data": "pwned"}
        with pytest.raises(PluginResultError):
            hook(**kwargs)
    assert (shared / "note.txt").read_text() == "original"
    assert not (shared / "new.txt").exists()
    assert secret.read_text() == "top secret"
    # the data directory is writable, and it is the plugin's own
    pm.hook.write_file(path="/data/state.txt", data="mine")
    assert (tmp_path / "data" / "probe" / "state.txt").read_text() == "mine"
    healthy_sibling(pm, host, probe_wasm)


def test_root_and_symlinked_grants_are_refused(
    probe_host: Any, probe_wasm: Path, tmp_path: Path
) -> None:
    """'/' is never preopened, nor a path through a symlink."""
    _, host = probe_host
    link = tmp_path / "via-link"
    link.symlink_to(tmp_path)
    for grant, reason in [("/", "never preopened"), (str(link), "goes through a symlink")]:
        requests = Capabilities(
            interfaces=["log", "config", "kv", "http"], filesystem=[FileGrant("/x", grant, "ro")]
        )
        with pytest.raises(CapabilityDenied, match=reason):
            load_probe(host, probe_wasm, name="fs", requests=requests)


def test_case9_env_canary(
    probe_host: Any, probe_wasm: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Case 9: an env var that was not granted never reaches the guest."""
    pm, host = probe_host
    monkeypatch.setenv("AIRSSYS_CANARY", "s3cr3t-canary")
    monkeypatch.setenv("AIRSSYS_ALLOWED", "fine")
    requests = Capabilities(interfaces=["log", "config", "kv", "http"], env=["AIRSSYS_ALLOWED"])
    load_probe(host, probe_wasm, requests=requests)
    assert one(pm.hook.get_env(name="AIRSSYS_CANARY")) is None
    assert one(pm.hook.get_env(name="AIRSSYS_ALLOWED")) == "fine"
    assert not any("s3cr3t-canary" in entry for entry in one(pm.hook.all_env()))


def test_case10_sockets_and_dns_denied(probe_host: Any, probe_wasm: Path, web_server: str) -> None:
    """Case 10: no sockets and no name resolution, even to a reachable local server."""
    pm, host = probe_host
    load_probe(host, probe_wasm)
    port = int(web_server.rsplit(":", 1)[1])
    with pytest.raises(PluginResultError):
        pm.hook.open_socket(host="127.0.0.1", port=port)
    with pytest.raises(PluginResultError):
        pm.hook.resolve(host="localhost")
    healthy_sibling(pm, host, probe_wasm)


def test_case13_exit(probe_host: Any, probe_wasm: Path) -> None:
    """Case 13: wasi:cli/exit becomes PluginExit with the status; the plugin recovers.

    WASI 0.2's exit carries only ok/err, so sys.exit(3) in the guest arrives as status 1.
    """
    pm, host = probe_host
    load_probe(host, probe_wasm, config={"who": "probe"})
    with pytest.raises(PluginExit) as info:
        pm.hook.quit(code=3)
    assert info.value.code == 1
    assert info.value.plugin == "probe"
    assert "probe" in pm.hook.config_get(key="who")


def test_case17_stdout_flood_escaped_and_rate_limited(
    probe_host: Any, probe_wasm: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Case 17: guest stdout goes to logging, escape sequences escaped, flood rate-limited."""
    pm, host = probe_host
    # 5000 writes through the stdout callback take ~0.6 s alone, more beside a compile on
    # the other core: this case is about escaping and dropping, not the call's deadline
    load_probe(host, probe_wasm, timeout=30)
    with caplog.at_level(logging.INFO, logger="airssys_plugins.plugin.probe"):
        assert one(pm.hook.flood(lines=5000, text="\x1b[2J\x07boom")) == 5000
        pm.hook.flood(lines=1, text="after")
    lines = [r.getMessage() for r in caplog.records if "stdout]" in r.getMessage()]
    assert lines[0] == "[probe stdout] 0 \\x1b[2J\\x07boom"
    assert all("\x1b" not in line for line in lines)
    assert len(lines) < 1000  # 5000 written: the burst allowance, then drops
    assert any("stdout rate limit reached" in r.getMessage() for r in caplog.records)


def test_case17_log_flood_rate_limited(
    probe_host: Any, probe_wasm: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Case 17 through the ``log`` host interface: a plugin that logs in a loop gets the
    rate limit its stdout has (a burst, then 50 records a second), with one warning when
    dropping starts and a count of the dropped records once one is let through again, at
    most one of each a second."""
    from airssys_plugins import _ratelimit

    pm, host = probe_host
    load_probe(host, probe_wasm, timeout=30)
    calls = _ratelimit.BURST + 1000  # more than a slow machine's seconds refill
    with caplog.at_level(logging.INFO, logger="airssys_plugins.plugin.probe"):
        started = time.monotonic()
        for i in range(calls):
            pm.hook.log_it(message=f"line {i} \x1b[2J")
        elapsed = time.monotonic() - started
        time.sleep(1.1)  # tokens for the next record
        pm.hook.log_it(message="after")
    logged = [r.getMessage() for r in caplog.records if "source='probe'" in r.getMessage()]
    assert logged[0] == "line 0 \\x1b[2J source='probe'"
    allowed = _ratelimit.BURST + _ratelimit.PER_SECOND * elapsed + 1
    assert _ratelimit.BURST <= len(logged) - 1 <= allowed
    assert logged[-1] == "after source='probe'"
    messages = [r.getMessage() for r in caplog.records]
    started_dropping = [m for m in messages if "log rate limit reached" in m]
    counts = re.findall(
        r"plugin probe: (\d+) log line\(s\) dropped \(rate limit\)", "\n".join(messages)
    )
    # every dropped record is counted, in at most one warning of each kind a second
    assert sum(int(n) for n in counts) == calls - (len(logged) - 1) > 0
    assert 1 <= len(started_dropping) <= elapsed + 2
    assert 1 <= len(counts) <= elapsed + 2


def test_log_keeps_a_bounded_record(caplog: pytest.LogCaptureFixture) -> None:
    """What a ``log`` call may hand the host is bounded in the record it makes: the
    message and the fields shown are cut to MAX_LOG_TEXT characters, the fields to
    MAX_LOG_FIELDS (saying how many more there were), each key and value to their caps,
    and every control character is escaped."""
    from airssys_plugins.host import builtins
    from airssys_plugins.host.interfaces import PluginContext, _run_as

    fields = [builtins.Field(f"k{i}\x1b" + "k" * 500, "v" * 5000) for i in range(1000)]
    context = PluginContext(name="chatty")
    with caplog.at_level(logging.INFO, logger="airssys_plugins.plugin.chatty"):
        _run_as(context, builtins.log, [builtins.Level.INFO, "m\x07" * 10_000, fields])
    (record,) = caplog.records
    message = record.getMessage()
    assert "\x07" not in message
    assert "\x1b" not in message
    head, _, shown = message.partition(" ")
    assert head == "m\\x07" * (builtins.MAX_LOG_TEXT // 2)
    assert shown.startswith("k0\\x1b" + "k" * (builtins.MAX_FIELD_KEY - 3) + "='vvv")
    assert len(message) <= 2 * builtins.MAX_LOG_TEXT * len("\\x07") + 100
    assert message.endswith(" (968 more fields not shown)")
    kept = record.plugin_fields  # type: ignore[attr-defined]
    assert len(kept) == builtins.MAX_LOG_FIELDS
    assert all(len(k) <= builtins.MAX_FIELD_KEY for k in kept)
    assert all(len(v) == builtins.MAX_FIELD_VALUE for v in kept.values())
    assert record.plugin == "chatty"  # type: ignore[attr-defined]
    few = [builtins.Field("a", "1"), builtins.Field("b", "2")]
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="airssys_plugins.plugin.chatty"):
        _run_as(context, builtins.log, [builtins.Level.INFO, "hello", few])
    assert caplog.records[0].getMessage() == "hello a='1' b='2'"
    assert "more fields not shown" not in caplog.records[0].getMessage()


# --------------------------------------------------------------------------- WAT cases

LIMITS_WIT = """package demo:hooks@1.0.0;
interface add-one { add-one: func(x: u32) -> u32; }
interface spin { spin: func(); }
interface get-setup { get-setup: func() -> u32; }
interface recurse { recurse: func(n: u32) -> u32; }
interface big { big: func(n: u32) -> string; }
interface ping { ping: func() -> u32; }
world guest {
  import ping;
  export add-one; export spin; export get-setup; export recurse; export big;
}
"""
LIMITS_WAT = """(module
  (import "demo:hooks/ping@1.0.0" "ping" (func $ping (result i32)))
  (memory (export "memory") 1)
  (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32) (i32.const 1024))
  ;; add-one: burns x iterations of a loop first (for fuel), then returns x + 1
  (func (export "demo:hooks/add-one@1.0.0#add-one") (param $x i32) (result i32)
    (local $i i32)
    (block $done (loop $l
      (br_if $done (i32.ge_u (local.get $i) (local.get $x)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $l)))
    (i32.add (local.get $x) (i32.const 1)))
  ;; spin: grows memory one page at a time until refused, then traps (memory bomb)
  (func (export "demo:hooks/spin@1.0.0#spin")
    (loop $l (br_if $l (i32.ne (memory.grow (i32.const 1)) (i32.const -1))))
    unreachable)
  ;; get-setup: calls the host's ping (re-entrancy / blocking host call tests)
  (func (export "demo:hooks/get-setup@1.0.0#get-setup") (result i32) (call $ping))
  (func $rec (export "demo:hooks/recurse@1.0.0#recurse") (param $n i32) (result i32)
    (i32.add (call $rec (i32.add (local.get $n) (i32.const 1))) (i32.const 1)))
  ;; big: a string of n bytes (memory grown to fit)
  (func (export "demo:hooks/big@1.0.0#big") (param $n i32) (result i32)
    (drop (memory.grow (i32.add (i32.shr_u (local.get $n) (i32.const 16)) (i32.const 1))))
    (i32.store (i32.const 16) (i32.const 2048))
    (i32.store (i32.const 20) (local.get $n))
    (i32.const 16))
)
"""

limits_spec = pluggy.HookspecMarker("demo")


class LimitHooks:
    @limits_spec
    def add_one(self, x: u32) -> u32: ...
    @limits_spec
    def spin(self) -> None: ...
    @limits_spec
    def get_setup(self) -> u32: ...
    @limits_spec
    def recurse(self, n: u32) -> u32: ...
    @limits_spec
    def big(self, n: u32) -> str: ...


@pytest.fixture(scope="session")
def limits_wasm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    src = tmp_path_factory.mktemp("limits")
    (src / "wit").mkdir()
    (src / "wit" / "demo.wit").write_text(LIMITS_WIT)
    (src / "guest.wat").write_text(LIMITS_WAT)
    return build_guest(src)


@pytest.fixture
def limits_host(
    tmp_path: Path,
) -> Iterator[tuple[pluggy.PluginManager, PluginHost, list[Callable[[], int]]]]:
    pm = pluggy.PluginManager("demo")
    pm.add_hookspecs(LimitHooks)
    ping_impl: list[Callable[[], int]] = [lambda: 7]
    with PluginHost(pm, package=DEMO_PACKAGE, data_dir=tmp_path) as host:

        @host.provide
        def ping() -> u32:
            return ping_impl[0]()

        yield pm, host, ping_impl


def load_limited(host: PluginHost, wasm: Path, name: str, **limits: Any) -> Any:
    host.grants[name] = Capabilities(interfaces=["ping"])
    return host.load(
        wasm, name=name, requests=Capabilities(interfaces=["ping"]), limits=Limits(**limits)
    )


def test_case1_infinite_loop_and_sibling(limits_host: Any, limits_wasm: Path) -> None:
    """Case 1 (with a CPU loop): fuel runs out -> PluginLimitExceeded; siblings unaffected."""
    pm, host, _ = limits_host
    before = _baseline()
    load_limited(host, limits_wasm, "hog", fuel=100_000)
    load_limited(host, limits_wasm, "ok")
    host.unload("ok")
    load_limited(host, limits_wasm, "ok", fuel=10**9)
    pm.unregister(name="ok")
    with pytest.raises(PluginLimitExceeded) as info:
        pm.hook.add_one(x=10_000_000)
    assert info.value.reason == "fuel exhausted"
    limit_events = host.audit.events(plugin="hog", kind="limit")
    assert limit_events[-1].fields["reason"] == "fuel exhausted"
    assert pm.hook.add_one(x=10) == [11]  # the trapped hog got a fresh instance
    host.unload("hog")
    host.unload("ok")
    del info  # (its traceback's frames hold the trapped call's instance)
    assert _baseline()[:2] == before[:2]


def test_only_plugins_with_a_fuel_limit_count_fuel(limits_host: Any, limits_wasm: Path) -> None:
    """Fuel counting slows every loop, so one Engine counts it and one does not; a plugin
    is compiled for the counting one only when it has a fuel limit."""
    pm, host, _ = limits_host
    free = load_limited(host, limits_wasm, "free")
    metered = load_limited(host, limits_wasm, "metered", fuel=10**9)
    assert not free.instance.image.fuel
    assert metered.instance.image.fuel
    assert free.instance.image.component is not metered.instance.image.component
    assert pm.hook.add_one(x=1000) == [1001, 1001]
    pm.unregister(name="free")
    pm.unregister(name="metered")
    load_limited(host, limits_wasm, "hog", fuel=10_000)  # the same file, a small budget
    with pytest.raises(PluginLimitExceeded, match="fuel"):
        pm.hook.add_one(x=10_000_000)
    with pytest.raises(ValueError, match="load its image with fuel=True"):
        PluginInstance(free.instance.image, sandbox=SandboxSpec(fuel=1000))


def test_case2_blocking_host_call_times_out(limits_host: Any, limits_wasm: Path) -> None:
    """Case 2: a host call that blocks is cut off by the host-call timeout."""
    pm, host, ping = limits_host
    ping[0] = lambda: time.sleep(3) or 1  # type: ignore[func-returns-value]
    load_limited(host, limits_wasm, "waiter", host_call_timeout=0.2)
    started = time.monotonic()
    with pytest.raises(PluginTimeout) as info:
        pm.hook.get_setup()
    assert time.monotonic() - started < 2.5
    assert info.value.reason == "host call timeout"
    assert info.value.hook == "get_setup"
    ping[0] = lambda: 7
    assert pm.hook.get_setup() == [7]


def test_host_function_error_is_attributed(limits_host: Any, limits_wasm: Path) -> None:
    """An exception in a host function surfaces as HostFunctionError with the cause."""
    pm, host, ping = limits_host

    def broken() -> int:
        raise LookupError("no such thing")

    ping[0] = broken
    load_limited(host, limits_wasm, "caller")
    with pytest.raises(HostFunctionError, match="LookupError: no such thing") as info:
        pm.hook.get_setup()
    assert isinstance(info.value.__cause__, LookupError)
    assert info.value.plugin == "caller"


def test_current_plugin_inside_host_function(limits_host: Any, limits_wasm: Path) -> None:
    """current_plugin() tells a host function which plugin called it."""
    pm, host, ping = limits_host
    ping[0] = lambda: len(current_plugin().name)
    load_limited(host, limits_wasm, "twelve-chars")
    assert pm.hook.get_setup() == [12]


def test_case14_reentrant_call_is_refused(limits_host: Any, limits_wasm: Path) -> None:
    """Case 14: a host function calling back into the same plugin gets a named error."""
    pm, host, ping = limits_host
    ping[0] = lambda: pm.hook.add_one(x=1)[0]
    load_limited(host, limits_wasm, "loop")
    with pytest.raises(PluginTrap, match="re-entrant call of hook 'add_one'"):
        pm.hook.get_setup()
    ping[0] = lambda: 7
    assert pm.hook.get_setup() == [7]


def test_case3_memory_bomb(limits_host: Any, limits_wasm: Path) -> None:
    """Case 3: memory.grow is refused at the cap; the guest traps; RSS stays bounded."""
    pm, host, _ = limits_host
    rss_before = _rss()
    load_limited(host, limits_wasm, "bomb", memory=8 * 2**20)
    with pytest.raises(PluginTrap):
        pm.hook.spin()
    assert _rss() - rss_before < 64 * 2**20
    assert pm.hook.add_one(x=1) == [2]


def test_case5_huge_result(limits_host: Any, limits_wasm: Path) -> None:
    """Case 5: a result above max_result_bytes is refused before it is copied to Python."""
    pm, host, _ = limits_host
    load_limited(host, limits_wasm, "big", max_result_bytes=1000)
    assert pm.hook.big(n=1000) == ["\0" * 1000]
    with pytest.raises(
        PluginLimitExceeded, match=r"returned 100,000 bytes .* limit of 1,000 bytes"
    ):
        pm.hook.big(n=100_000)


def test_case4_recursion_on_a_small_stack_thread(limits_host: Any, limits_wasm: Path) -> None:
    """Case 4: unbounded recursion traps, also on a thread with a 2 MiB stack."""
    pm, host, _ = limits_host
    load_limited(host, limits_wasm, "deep")
    errors: list[BaseException] = []

    def run() -> None:
        try:
            pm.hook.recurse(n=0)
        except BaseException as exc:
            errors.append(exc)

    old = threading.stack_size(2 * 2**20)
    try:
        thread = threading.Thread(target=run)
        thread.start()
        thread.join()
    finally:
        threading.stack_size(old)
    assert len(errors) == 1
    assert isinstance(errors[0], PluginTrap)
    assert errors[0].reason == "stack overflow"  # type: ignore[attr-defined]


def test_case20_invalid_engine_config() -> None:
    """Case 20: a wasm stack larger than the thread stack is refused before the Engine exists."""
    script = (
        "from airssys_plugins import configure_engine, EngineConfigError\n"
        "try:\n"
        "    configure_engine(max_wasm_stack=1 << 40)\n"
        "except EngineConfigError as e:\n"
        "    print('refused:', e)\n"
        "configure_engine(max_wasm_stack=256 * 1024)\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert (
        "refused: max_wasm_stack=1,099,511,627,776 bytes does not fit the native thread stack"
        in out.stdout
    )
    assert out.stdout.strip().endswith("ok")


def test_configure_engine_after_start_is_refused(limits_host: Any, limits_wasm: Path) -> None:
    """Changing the engine once plugins are loaded is an error, not a silent no-op."""
    from airssys_plugins import EngineConfigError, configure_engine

    _, host, _ = limits_host
    load_limited(host, limits_wasm, "any")
    with pytest.raises(EngineConfigError, match="already exists"):
        configure_engine(max_wasm_stack=256 * 1024)


def test_per_hook_timeout(limits_host: Any, limits_wasm: Path) -> None:
    """HookOptions(timeout=...) gives one hook its own deadline."""
    from airssys_plugins import HookOptions

    pm, host, _ = limits_host
    host.grants["slow"] = Capabilities(interfaces=["ping"])
    host.load(
        limits_wasm,
        name="slow",
        requests=Capabilities(interfaces=["ping"]),
        limits=Limits(timeout=5.0),
        hooks={"add_one": HookOptions(timeout=0.05)},
    )
    with pytest.raises(PluginTimeout, match=r"after 0\.05 s"):
        pm.hook.add_one(x=4_000_000_000)


def _rss() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def test_open_files_return_to_baseline(probe_host: Any, probe_wasm: Path, tmp_path: Path) -> None:
    """Loading and unloading plugins with preopens leaves no file descriptors behind."""
    pm, host = probe_host
    requests = Capabilities(
        interfaces=["log", "config", "kv", "http"], filesystem=[FileGrant("/data", "data", "rw")]
    )

    def cycle(name: str) -> None:
        load_probe(host, probe_wasm, name=name, requests=requests)
        pm.hook.write_file(path="/data/x", data="y")
        host.unload(name)

    cycle("warm-up")  # the first WASI file access starts wasmtime's I/O runtime (3 fds, once)
    fds = sorted(os.listdir("/proc/self/fd"))
    live = _baseline()
    for i in range(5):
        cycle(f"p{i}")
    leaked = {}
    for fd in set(os.listdir("/proc/self/fd")) - set(fds):
        try:
            leaked[fd] = os.readlink(f"/proc/self/fd/{fd}")
        except FileNotFoundError:  # the listing's own descriptor
            continue
    assert leaked == {}
    assert _baseline() == live
