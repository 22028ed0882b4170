"""Topics and mailboxes: plugins and Python code message each other through the host.

The subscriber component is WAT built with wasm-tools here. Its ``on-message`` echoes the
payload as its reply and publishes it to ``seen``; a payload starting with ``!`` traps,
``?`` answers none, ``E`` echoes without publishing, ``R`` makes it ``request`` topic
``svc`` and reply with the answer.
"""

from __future__ import annotations

import json
import queue
import re
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import attrs
import pluggy
import pytest

from airssys_plugins import (
    Capabilities,
    CapabilityDenied,
    MailboxFull,
    MessagingError,
    MessagingPolicy,
    NoReply,
    PluginHost,
    PluginLoadError,
    RestartPolicy,
)
from airssys_plugins.authoring.build import build_guest
from airssys_plugins.policy.capabilities import topic_covers

from .demo import DemoHooks

SUBSCRIBER = "airssys:host/subscriber@0.1.0#on-message"
RIGHTS = Capabilities(
    interfaces=["messaging"], publish=["seen", "svc"], subscribe=["work", "jobs.*"]
)

_WAT = f"""(module
  (import "airssys:host/messaging@0.1.0" "publish" (func $publish (param i32 i32 i32 i32)))
  (import "airssys:host/messaging@0.1.0" "request"
    (func $request (param i32 i32 i32 i32 i32 i32)))
  (memory (export "memory") 1)
  (data (i32.const 256) "seen")
  (data (i32.const 264) "svc")
  (global $bump (mut i32) (i32.const 1024))
  (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32)
    (local $p i32)
    (local.set $p (global.get $bump))
    (global.set $bump (i32.add (local.get $p) (local.get 3)))
    (local.get $p))
  (func (export "{SUBSCRIBER}")
    (param $tp i32) (param $tl i32) (param $pp i32) (param $pl i32) (result i32)
    (local $c i32)
    (if (i32.gt_u (local.get $pl) (i32.const 0))
      (then (local.set $c (i32.load8_u (local.get $pp)))))
    (if (i32.eq (local.get $c) (i32.const 33)) (then unreachable))
    (if (i32.eq (local.get $c) (i32.const 63))
      (then (i32.store8 (i32.const 16) (i32.const 0)) (return (i32.const 16))))
    (if (i32.eq (local.get $c) (i32.const 82))
      (then
        (call $request (i32.const 264) (i32.const 3) (local.get $pp) (local.get $pl)
          (i32.const 1000) (i32.const 32))
        (i32.store8 (i32.const 16) (i32.const 1))
        (i32.store (i32.const 20) (i32.load (i32.const 36)))
        (i32.store (i32.const 24) (i32.load (i32.const 40)))
        (return (i32.const 16))))
    (if (i32.ne (local.get $c) (i32.const 69))
      (then (call $publish (i32.const 256) (i32.const 4) (local.get $pp) (local.get $pl))))
    (i32.store8 (i32.const 16) (i32.const 1))
    (i32.store (i32.const 20) (local.get $pp))
    (i32.store (i32.const 24) (local.get $pl))
    (i32.const 16))
  (func (export "cabi_post_{SUBSCRIBER}") (param i32)
    (global.set $bump (i32.const 1024))))
"""


def subscriber_source(root: Path, host_wit: str) -> Path:
    """The echoing subscriber's sources (also used by bench/bench_messaging.py)."""
    src = root / "echo-subscriber"
    (src / "wit" / "deps" / "host").mkdir(parents=True, exist_ok=True)
    (src / "wit" / "deps" / "host" / "host.wit").write_text(host_wit)
    (src / "wit" / "world.wit").write_text(
        "package test:sub@1.0.0;\nworld guest {\n  import airssys:host/messaging@0.1.0;\n"
        "  export airssys:host/subscriber@0.1.0;\n}\n"
    )
    (src / "guest.wat").write_text(_WAT)
    return src


@pytest.fixture(scope="module")
def echo_wasm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pm = pluggy.PluginManager("demo")
    pm.add_hookspecs(DemoHooks)
    with PluginHost(pm, package="demo:hooks@1.0.0") as host:
        wit = host.host_wit()["airssys:host@0.1.0"]
    return build_guest(subscriber_source(tmp_path_factory.mktemp("messaging"), wit))


MakeHost = Callable[..., PluginHost]


@pytest.fixture
def make_host(pm: pluggy.PluginManager) -> Iterator[MakeHost]:
    hosts: list[PluginHost] = []

    def make(**kwargs: object) -> PluginHost:
        kwargs.setdefault("grants", {"echo": RIGHTS})
        host = PluginHost(pm, package="demo:hooks@1.0.0", **kwargs)  # type: ignore[arg-type]
        hosts.append(host)
        return host

    yield make
    for host in hosts:
        host.close()


def _collect(host: PluginHost, pattern: str) -> queue.Queue[tuple[str, bytes]]:
    got: queue.Queue[tuple[str, bytes]] = queue.Queue()

    def handler(topic: str, payload: bytes) -> None:
        got.put((topic, payload))

    host.subscribe(pattern, handler)
    return got


def _drain(got: queue.Queue[tuple[str, bytes]], n: int) -> list[tuple[str, bytes]]:
    return [got.get(timeout=10) for _ in range(n)]


def _wait_for(check: Callable[[], bool]) -> None:
    done = threading.Event()
    for _ in range(1000):
        if check():
            return
        done.wait(0.01)
    raise AssertionError("condition not reached within 10 s")


def test_python_subscribers_get_matching_topics_in_order(make_host: MakeHost) -> None:
    """A pattern subscriber gets what matches, in publish order; counters count it."""
    host = make_host()
    got = _collect(host, "orders.*")
    for i in range(50):
        assert host.publish(f"orders.n{i % 3}", str(i).encode()) == 1
    assert [int(p) for _, p in _drain(got, 50)] == list(range(50))
    _wait_for(lambda: host.messaging.counters()["topics"]["orders.n0"].delivered == 17)
    assert host.messaging.counters()["topics"]["orders.n0"].queue_depth == 0


def test_a_message_nobody_takes_is_dead_lettered(make_host: MakeHost) -> None:
    """Nothing is lost silently: no subscriber means a dead letter."""
    host = make_host()
    assert host.publish("nobody.home", b"x") == 0
    [letter] = host.messaging.dead_letters()
    assert (letter.reason, letter.message.topic, letter.message.payload) == (
        "no subscriber",
        "nobody.home",
        b"x",
    )
    assert host.messaging.counters()["topics"]["nobody.home"].dead_lettered == 1


def test_a_plugin_subscriber_handles_and_publishes(make_host: MakeHost, echo_wasm: Path) -> None:
    """A component exporting on-message receives its granted topics and publishes from
    its handler; messages from one sender arrive in order."""
    host = make_host()
    host.load(echo_wasm, name="echo", requests=RIGHTS)
    assert host.messaging.subscribers()["echo"] == ("jobs.*", "work")
    seen = _collect(host, "seen")
    for i in range(30):
        host.publish("work" if i % 2 else "jobs.a", f"m{i}".encode())
    assert [p for _, p in _drain(seen, 30)] == [f"m{i}".encode() for i in range(30)]
    _wait_for(lambda: host.messaging.counters()["subscribers"]["echo"].delivered == 30)


def test_requests_get_the_first_reply(make_host: MakeHost, echo_wasm: Path) -> None:
    """host.request returns a subscriber's reply; all-none answers are NoReply."""
    host = make_host()
    host.load(echo_wasm, name="echo", requests=RIGHTS)
    assert host.request("work", b"hello") == b"hello"
    assert host.request("work", b"Echo only") == b"Echo only"
    with pytest.raises(NoReply, match="all returned none"):
        host.request("work", b"?")
    with pytest.raises(NoReply, match="no subscriber"):
        host.request("nothing", b"x")


def test_a_plugin_requests_through_the_host(make_host: MakeHost, echo_wasm: Path) -> None:
    """messaging.request from a guest reaches a Python subscriber and returns its reply."""
    host = make_host()
    host.load(echo_wasm, name="echo", requests=RIGHTS)
    host.subscribe("svc", lambda topic, payload: b"pong:" + payload)
    assert host.request("work", b"R1") == b"pong:R1"


def test_a_trapping_handler_is_retried_restarted_and_dead_lettered(
    make_host: MakeHost, echo_wasm: Path
) -> None:
    """A trap restarts the plugin; the message is retried, then dead-lettered; the next
    message is handled by the fresh instance."""
    host = make_host(messaging=MessagingPolicy(retries=1))
    plugin = host.load(echo_wasm, name="echo", requests=RIGHTS)
    seen = _collect(host, "seen")
    host.publish("work", b"!boom")
    host.publish("work", b"after")
    assert _drain(seen, 1) == [("seen", b"after")]
    [letter] = host.messaging.dead_letters()
    assert (letter.subscriber, letter.reason, letter.attempts) == ("echo", "handler failed", 2)
    assert letter.error is not None
    assert "unreachable" in letter.error
    assert host.messaging.counters()["subscribers"]["echo"].retried == 1
    assert host.status("echo").restarts == 2
    assert plugin.instance.generation >= 3


def test_the_circuit_breaker_stops_delivery(make_host: MakeHost, echo_wasm: Path) -> None:
    """A plugin whose circuit opened gets no messages: they are dead-lettered."""
    host = make_host(
        messaging=MessagingPolicy(retries=0),
        restart=RestartPolicy(max_failures=2, cooldown=None, backoff_base=0.001),
    )
    host.load(echo_wasm, name="echo", requests=RIGHTS)
    for _ in range(3):
        host.publish("work", b"!")
    _wait_for(lambda: len(host.messaging.dead_letters()) == 3)
    reasons = [d.reason for d in host.messaging.dead_letters()]
    assert reasons == ["handler failed", "handler failed", "circuit open"]
    assert host.status("echo").state == "open"


def test_publishing_to_a_topic_not_granted_fails_named(
    make_host: MakeHost, echo_wasm: Path
) -> None:
    """A guest publishing outside its publish grants gets TopicDenied (here: dead letter)."""
    narrow = Capabilities(interfaces=["messaging"], publish=["other.*"], subscribe=["work"])
    host = make_host(grants={"echo": narrow}, messaging=MessagingPolicy(retries=0))
    host.load(echo_wasm, name="echo", requests=narrow)
    host.publish("work", b"hi")
    _wait_for(lambda: len(host.messaging.dead_letters()) == 1)
    [letter] = host.messaging.dead_letters()
    assert letter.error is not None
    assert "may not publish to topic 'seen'" in letter.error
    assert any(e.kind == "deny" and "publish to 'seen'" in e.detail for e in host.audit.events())


def test_subscriptions_beyond_the_grants_are_denied_at_load(
    make_host: MakeHost, echo_wasm: Path
) -> None:
    """A subscribe pattern wider than the grant is refused when the plugin loads."""
    host = make_host()
    wider = Capabilities(interfaces=["messaging"], subscribe=["jobs.>"])
    with pytest.raises(CapabilityDenied, match=r"subscribe jobs\.> \(not granted\)"):
        host.load(echo_wasm, name="echo", requests=wider)


def test_subscribing_without_a_handler_is_refused(
    make_host: MakeHost, demo: Callable[..., Path]
) -> None:
    """A plugin granted subscribe patterns must export on-message."""
    host = make_host(grants={"adder": Capabilities(subscribe=["work"])})
    with pytest.raises(PluginLoadError, match="does not export airssys:host/subscriber"):
        host.load(
            demo(k=1, funcs=["add-one"]), name="adder", requests=Capabilities(subscribe=["work"])
        )


@pytest.mark.parametrize("when_full", ["fail", "block"])
def test_a_full_mailbox_applies_backpressure(make_host: MakeHost, when_full: str) -> None:
    """A bounded mailbox refuses (at once, or after waiting) and dead-letters the message."""
    host = make_host(
        messaging=MessagingPolicy(mailbox_size=2, when_full=when_full, block_timeout=0.05)  # type: ignore[arg-type]
    )
    release = threading.Event()
    started = threading.Event()

    def slow(topic: str, payload: bytes) -> None:
        started.set()
        release.wait(10)

    host.subscribe("q", slow)
    host.publish("q", b"1")
    started.wait(10)
    host.publish("q", b"2")
    host.publish("q", b"3")
    assert host.messaging.counters()["topics"]["q"].queue_depth == 2
    with pytest.raises(MailboxFull, match="is full; the message was dead-lettered"):
        host.publish("q", b"4")
    release.set()
    assert [d.reason for d in host.messaging.dead_letters()] == ["mailbox full"]
    assert host.messaging.dead_letters()[0].message.payload == b"4"


def test_unloading_closes_the_mailbox(make_host: MakeHost, echo_wasm: Path) -> None:
    """After unload the plugin receives nothing; its topic has no subscriber."""
    host = make_host()
    host.load(echo_wasm, name="echo", requests=RIGHTS)
    host.unload("echo")
    assert "echo" not in host.messaging.subscribers()
    assert host.publish("work", b"x") == 0


def test_a_reload_keeps_the_mailbox(make_host: MakeHost, echo_wasm: Path) -> None:
    """A reloaded subscriber keeps its subscriptions and serves from the new version."""
    host = make_host()
    host.load(echo_wasm, name="echo", requests=RIGHTS)
    host.reload("echo", echo_wasm)
    assert host.request("work", b"again") == b"again"


def test_bad_topics_are_named_errors(make_host: MakeHost) -> None:
    """Wildcards in a published topic, or a malformed pattern, say how to write one."""
    host = make_host()
    with pytest.raises(MessagingError, match="has a wildcard"):
        host.publish("orders.*", b"")
    with pytest.raises(MessagingError, match="is not a topic pattern"):
        host.subscribe("orders..x", lambda t, p: None)


@pytest.mark.parametrize(
    ("pattern", "other", "covers"),
    [
        ("orders.*", "orders.created", True),
        ("orders.*", "orders.a.b", False),
        ("orders.>", "orders.a.b", True),
        ("orders.>", "orders", False),
        ("orders.>", "orders.*", True),
        ("orders.*", "orders.>", False),
        ("*.created", "orders.created", True),
        ("orders", "orders", True),
    ],
)
def test_topic_patterns(pattern: str, other: str, covers: bool) -> None:
    """``*`` is one word, a final ``>`` one or more; a pattern covers narrower patterns."""
    assert topic_covers(pattern, other) is covers


def test_the_host_wit_has_messaging_and_the_subscriber_export(make_host: MakeHost) -> None:
    """Guests build against messaging (import) and subscriber (export) of airssys:host."""
    wit = make_host().host_wit()["airssys:host@0.1.0"]
    assert "request: func(topic: string, payload: list<u8>, timeout-ms: u32)" in wit
    assert "on-message: func(topic: string, payload: list<u8>) -> option<list<u8>>;" in wit


def test_messages_during_reloads_are_all_handled(make_host: MakeHost, echo_wasm: Path) -> None:
    """A subscriber reloaded while messages flow handles every one (old or new version)."""
    host = make_host()
    host.load(echo_wasm, name="echo", requests=RIGHTS)
    sent = 0
    stop = threading.Event()

    def publisher() -> None:
        nonlocal sent
        while not stop.is_set():
            host.publish("work", b"E")  # echoed, nothing published by the handler
            sent += 1

    thread = threading.Thread(target=publisher)
    thread.start()
    try:
        for _ in range(6):
            host.reload("echo", echo_wasm)
    finally:
        stop.set()
        thread.join(30)
    _wait_for(lambda: host.messaging.counters()["subscribers"]["echo"].delivered == sent)
    assert host.messaging.dead_letters() == []


# ----------------------------------------------------------------------------- status file


@pytest.fixture
def status_file(tmp_path: Path) -> Path:
    return tmp_path / "state" / "host-status.json"


def _status(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    from airssys_plugins.cli import main

    code = main(["status", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_drain_waits_for_every_message_to_be_handled(make_host: MakeHost) -> None:
    """drain() returns once every queued message was handled (none left in a mailbox)."""
    host = make_host()
    handled: list[bytes] = []
    release = threading.Event()

    def slow(topic: str, payload: bytes) -> None:
        release.wait(10)
        handled.append(payload)

    host.subscribe("jobs.*", slow)
    for i in range(20):
        host.publish("jobs.a", str(i).encode())
    assert host.messaging.drain(timeout=0) is False  # the first handler is still waiting
    release.set()
    assert host.messaging.drain(timeout=10) is True
    assert len(handled) == 20
    assert host.messaging.counters()["subscribers"]
    assert host.messaging.drain(timeout=0) is True


def test_status_shows_a_running_hosts_counters_dead_letters_and_mailboxes(
    make_host: MakeHost, echo_wasm: Path, status_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`airssys-plugins status` reads what a live host wrote: counters per topic and per
    subscriber (delivered, retried, dead-lettered, queued), dead letters, and says live."""
    from airssys_plugins.host.status import StatusFile

    host = make_host(messaging=MessagingPolicy(retries=1))
    writer = host.messaging.record_status(StatusFile(status_file), app="demo", links=host.links)
    assert writer is not None
    host.load(echo_wasm, name="echo", requests=RIGHTS)
    seen = _collect(host, "seen")
    host.publish("work", b"!boom")  # traps twice (one retry), then dead-lettered
    for i in range(3):
        host.publish("jobs.a", f"m{i}".encode())
    host.publish("nobody.home", b"x")
    _drain(seen, 3)
    assert host.messaging.drain(timeout=10)
    writer.flush()
    code, out, _ = _status(capsys, "--file", str(status_file))
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == f"status of demo ({status_file})"
    assert re.match(r"host: live: pid \d+ is running; last written at ", lines[1])
    rows = {line.split()[0]: line.split()[1:] for line in lines if line[:1] not in (" ", "-", "")}
    assert rows["jobs.a"] == ["3", "0", "0", "0"]
    assert rows["work"] == ["0", "1", "1", "0"]
    assert rows["nobody.home"] == ["0", "0", "1", "0"]
    assert rows["echo"] == ["jobs.*,", "work", "3", "1", "1", "0"]
    assert "dead letters: 2 kept, the last 2 shown (oldest first)" in lines
    [trap] = [line for line in lines if "#1 work from host to echo" in line]
    assert "handler failed (PluginTrap: " in trap
    assert "after 2 attempt(s)" in trap
    assert any(line.startswith("  #5 nobody.home from host: no subscriber at ") for line in lines)
    assert out.rstrip().endswith("links: none")
    code, out, _ = _status(capsys, "--file", str(status_file), "--json")
    data = json.loads(out)
    counters = host.messaging.counters()
    assert data["freshness"] == "running"
    assert data["subscribers"]["echo"] == attrs.asdict(counters["subscribers"]["echo"])
    assert data["topics"]["work"] == {
        "delivered": 0, "retried": 1, "dead_lettered": 1, "queue_depth": 0
    }  # fmt: skip
    assert data["mailboxes"]["echo"] == ["jobs.*", "work"]
    assert sorted(d["reason"] for d in data["dead_letters"]["recent"]) == [
        "handler failed", "no subscriber"
    ]  # fmt: skip


def test_status_file_writes_are_rate_limited(make_host: MakeHost, status_file: Path) -> None:
    """Many changes within the interval make one write (the first is written at once);
    closing the host writes the last counters, marked closed."""
    from airssys_plugins.host.status import StatusFile

    host = make_host()
    writer = host.messaging.record_status(StatusFile(status_file), app="demo", interval=3600)
    assert writer is not None
    _wait_for(lambda: writer.writes == 1)
    got = _collect(host, "t.*")
    for i in range(200):
        host.publish("t.x", str(i).encode())
    _drain(got, 200)
    assert host.messaging.drain(timeout=10)
    assert writer.writes == 1  # the next write is due an hour after the first
    assert json.loads(status_file.read_text())["topics"] == {}
    host.close()
    assert writer.writes == 2
    data = json.loads(status_file.read_text())
    assert data["closed"] is True
    assert data["topics"]["t.x"]["delivered"] == 200


def test_status_says_when_the_host_closed_or_its_process_ended(
    make_host: MakeHost, status_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A closed host's file is shown as its last counters; a file whose process ended
    without closing is STALE; both exit 0 and say so."""
    import subprocess
    import sys

    from airssys_plugins.host.status import StatusFile

    host = make_host()
    host.messaging.record_status(StatusFile(status_file), app="demo")
    host.close()
    code, out, _ = _status(capsys, "--file", str(status_file))
    assert code == 0
    assert "when its host closed at" in out.splitlines()[1]
    assert "the last counters of a host that has ended, not live ones" in out
    ended = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                           capture_output=True, text=True, check=True)  # fmt: skip
    data = json.loads(status_file.read_text())
    data.update(closed=False, pid=int(ended.stdout))
    status_file.write_text(json.dumps(data))
    code, out, _ = _status(capsys, "--file", str(status_file))
    assert code == 0
    assert out.splitlines()[1].startswith(f"host: STALE: written by pid {int(ended.stdout)} at ")
    assert "which is no longer running (it ended without closing its host)" in out
    code, out, _ = _status(capsys, "--file", str(status_file), "--json")
    assert json.loads(out)["freshness"] == "stale"


def test_status_without_a_file_or_with_a_bad_one_is_one_message(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """No status file: exit 1 saying where it looked; a FIFO or a file that is not a
    host's status: exit 1 with a named error, never a traceback or a hang."""
    import os

    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    code, out, err = _status(capsys, "--app", "nosuchapp")
    assert code == 1
    assert out == ""
    expected = tmp_path / "state" / "nosuchapp" / "host-status.json"
    assert err.startswith(f"absent: {expected} does not exist: no host of 'nosuchapp' ")
    code, out, _ = _status(capsys, "--app", "nosuchapp", "--json")
    assert (code, json.loads(out)["freshness"]) == (1, "absent")
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    code, _, err = _status(capsys, "--file", str(fifo))
    assert code == 1
    assert "a FIFO" in err
    assert "Traceback" not in err
    junk = tmp_path / "junk.json"
    junk.write_text("[1, 2]")
    code, _, err = _status(capsys, "--file", str(junk))
    assert code == 1
    assert "is not a host status file (no 'format' number)" in err
    junk.write_text("{not json")
    code, _, err = _status(capsys, "--file", str(junk))
    assert (code, "is not a host status file (not JSON" in err) == (1, True)
    with pytest.raises(SystemExit, match="give --app NAME"):
        _status(capsys)


def test_a_relative_status_path_is_where_the_writer_was_made(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A relative status file path is resolved when the StatusFile is made: the writer
    thread does not follow a later chdir (it wrote into whatever the cwd was)."""
    from airssys_plugins.host.status import StatusFile

    (tmp_path / "here").mkdir()
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "here")
    status = StatusFile("host-status.json")
    monkeypatch.chdir(tmp_path / "elsewhere")
    assert status.write({"format": 1})
    assert (tmp_path / "here" / "host-status.json").is_file()
    assert not (tmp_path / "elsewhere" / "host-status.json").exists()


def test_the_first_status_write_is_at_once_on_a_machine_just_booted(
    status_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The monotonic clock counts from the machine's boot: on one up for less than the
    interval, the first write must still be at once (it was due ``interval`` after boot)."""
    import time
    import types

    from airssys_plugins.host import status as status_module
    from airssys_plugins.host.status import StatusFile, StatusWriter

    # status.py's own view of the clock only (the epoch ticker reads the real one)
    clock = types.SimpleNamespace(monotonic=lambda: 5.0, time=time.time)
    monkeypatch.setattr(status_module, "time", clock)
    writer = StatusWriter(StatusFile(status_file), lambda closed: {}, app="demo", interval=3600)
    writer.changed()
    _wait_for(lambda: writer.writes == 1)
    writer.changed()  # within the interval of the first: held for an hour
    assert writer.writes == 1
    writer.close()
    assert writer.writes == 2
