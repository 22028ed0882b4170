"""The eventrouter sample: WAT and componentize-py components plus a Python plugin filter,
enrich and route events, with kv state and HTTP to one allowlisted local origin; and WAT
plugins that work together through the host: tagger calls classify's export (a link) and
publishes the enriched events, which tally and oncall both receive (messaging)."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

import hookspecs.eventrouter
from airssys_plugins import Capabilities, Limits
from airssys_plugins.testing import ComponentLoader, HostFactory, call_hook, raises_denied
from hookspecs.eventrouter import Event, Field
from sample_apps.eventrouter.app import (
    EXAMPLE_DIRECTORY,
    EXAMPLE_EVENTS,
    DirectoryServer,
    load_bundled,
    main,
    make_host,
    parse_events,
    requests_for,
    run,
)

# What the bundled example events become with the stand-in directory:
# (id, status, destination or reason, fields).
EXPECTED = [
    (
        "gh-101",
        "routed",
        "ci",
        {"team": "platform", "name": "Ada Lovelace", "class": "code", "priority": "normal"},
    ),
    (
        "gh-102",
        "routed",
        "code-review",
        {"team": "kernel", "name": "Linus Torvalds", "class": "code", "priority": "normal"},
    ),
    ("gh-101", "dropped", "duplicate delivery of github event gh-101", {}),
    (
        "st-9",
        "routed",
        "billing",
        {"team": "payments", "name": "Grace Hopper", "class": "incident", "priority": "high"},
    ),
    (
        "mon-7",
        "routed",
        "pager-platform",
        {"team": "platform", "name": "Ada Lovelace", "class": "incident", "priority": "high"},
    ),
    ("gh-103", "dropped", "health-check ping", {}),
    ("st-10", "routed", "billing", {"team": "unknown", "class": "money", "priority": "normal"}),
    (
        "mx-1",
        "unrouted",
        None,
        {"team": "payments", "name": "Grace Hopper", "class": "other", "priority": "normal"},
    ),
]
# What tagger published (one message per event that reached enrich) and the subscribers'
# report of what they received.
PUBLISHED = 6
SUBSCRIBERS_REPORT = [
    Field("oncall/incidents", "2"),
    Field("oncall/ids", "st-9 mon-7"),
    Field("tally/messages", "6"),
]
COOPERATING = [
    ("classify", "wasm", ["no rights"]),
    ("oncall", "wasm", ["subscribe events.*"]),
    (
        "tagger",
        "wasm",
        [
            "interface messaging",
            "plugin link classify:eventrouter:classify/classifier@^1",
            "publish events.*",
        ],
    ),
    ("tally", "wasm", ["subscribe events.*"]),
]


@pytest.fixture(autouse=True)
def state_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The app's host status file goes to tmp_path, not the user's state directory."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg-state"))
    return tmp_path / "xdg-state"


@pytest.fixture
def directory() -> Iterator[DirectoryServer]:
    with DirectoryServer.from_file(EXAMPLE_DIRECTORY) as server:
        yield server


def example_events() -> list[Event]:
    events, problems = parse_events(EXAMPLE_EVENTS.read_text().splitlines())
    assert problems == []
    return events


def summary(outcomes: list[object]) -> list[tuple[str, str, str | None, dict[str, str]]]:
    rows = []
    for outcome in outcomes:
        data = outcome.to_json()  # type: ignore[attr-defined]
        detail = data["destination"] if data["status"] != "dropped" else data["reason"]
        rows.append((data["id"], data["status"], detail, data["fields"]))
    return rows


def test_example_run(eventrouter_wasm: dict[str, Path], directory: DirectoryServer) -> None:
    """Every hook and plugin kind: filters drop a redelivery and a ping, enrichment comes
    from kv-backed HTTP lookups and a Python plugin, routes from Python (alerts to the
    team's pager) or the WAT router; the report comes from dedup's kv counters."""
    result = run(example_events(), directory_url=directory.url)
    assert summary(result.outcomes) == EXPECTED
    assert result.report == [
        Field("github/duplicate", "1"),
        Field("github/new", "2"),
        Field("mailer/new", "1"),
        Field("monitor/new", "1"),
        Field("stripe/new", "2"),
        *SUBSCRIBERS_REPORT,
    ]
    assert sorted(result.plugins) == sorted([
        *COOPERATING,
        ("dedup", "wasm", ["interface kv", "interface log"]),
        (
            "lookup",
            "wasm",
            [
                f"network {directory.url}",
                "interface config",
                "interface http",
                "interface kv",
                "interface log",
            ],
        ),
        ("router", "wasm", ["no rights"]),
        ("triage", "python", ["not sandboxed"]),
    ])  # fmt: skip


def test_plugins_cooperate_through_a_link_and_messages(
    eventrouter_wasm: dict[str, Path], directory: DirectoryServer
) -> None:
    """tagger's class comes from classify's export, called through the host's link; each
    enriched event tagger publishes reaches both subscribers' mailboxes and is handled
    (delivered, nothing dead-lettered), and their reports say what they received."""
    result = run(example_events(), directory_url=directory.url)
    [link] = result.links
    assert (link.importer, link.provider, link.state) == ("tagger", "classify", "linked")
    assert link.interface == link.served == "eventrouter:classify/classifier@1.0.0"
    assert link.versions == "^1"
    classes = [o.to_json()["fields"].get("class") for o in result.outcomes]
    assert classes == ["code", "code", None, "incident", "incident", None, "money", "other"]
    assert set(result.messages) == {"tally", "oncall"}
    for name in ("tally", "oncall"):
        counts = result.messages[name]
        assert (counts.delivered, counts.retried, counts.dead_lettered, counts.queue_depth) == (
            PUBLISHED, 0, 0, 0
        )  # fmt: skip
    assert result.report[-3:] == SUBSCRIBERS_REPORT


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("alert.triggered", "incident"),
        ("payment.failed", "incident"),
        ("payment.failed.twice", "incident"),
        ("payment.succeeded", "money"),
        ("pull_request.opened", "code"),
        ("push", "code"),
        ("alert", "other"),
        ("", "other"),
        ("p" * 10_000, "other"),
    ],
    ids=lambda v: repr(v)[:30],
)
def test_tagger_publishes_what_classify_answers(
    eventrouter_wasm: dict[str, Path], tmp_path: Path, kind: str, expected: str
) -> None:
    """For any kind (empty, long), tagger's field is classify's answer and its message
    goes to events.<class> with "<id> TAB <class> TAB <kind>"."""
    import queue

    _, host = make_host(tmp_path, None)
    with host:
        for name in ("classify", "tagger"):
            host.load(eventrouter_wasm[name], name=name, requests=requests_for(name, None))
        got: queue.Queue[tuple[str, bytes]] = queue.Queue()
        host.subscribe("events.*", lambda topic, payload: got.put((topic, payload)))
        event = Event("ev-1", "src", kind, None, "{}", [])
        assert call_hook(host.plugins["tagger"], "enrich", event=event) == [
            Field("class", expected)
        ]
        assert got.get(timeout=10) == (f"events.{expected}", f"ev-1\t{expected}\t{kind}".encode())


def test_tagger_without_its_provider_fails_the_enrichment_only(
    eventrouter_wasm: dict[str, Path], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """With classify unloaded, tagger's call into the link fails as a LinkedCallError
    naming both plugins; enrich is best effort, so the event is routed without a class
    and nothing is published."""
    from sample_apps.eventrouter.app import route_event

    pm, host = make_host(tmp_path, None)
    with host:
        load_bundled(host, None)
        host.unload("classify")
        assert [(x.importer, x.state) for x in host.links()] == [("tagger", "waiting")]
        with caplog.at_level(logging.WARNING):
            outcome = route_event(pm, Event("1", "monitor", "alert.fired", None, "{}", []))
        assert (outcome.status, outcome.destination) == ("routed", "pager")
        assert outcome.event.fields == [Field("priority", "high")]
        assert "plugin 'tagger' called eventrouter:classify/classifier@1.0.0" in caplog.text
        assert "'classify' is not loaded" in caplog.text
        assert host.messaging.drain(timeout=10)
        assert host.messaging.counters()["topics"] == {}


def test_the_run_leaves_its_status_for_airssys_plugins_status(
    eventrouter_wasm: dict[str, Path], state_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """After a run, `airssys-plugins status --app eventrouter` shows the host's last
    counters per topic and subscriber and its link, and says the host has closed."""
    from airssys_plugins.cli import main as cli

    run(example_events())
    assert cli(["status", "--app", "eventrouter", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["freshness"] == "closed"
    assert data["path"] == str(state_home / "eventrouter" / "host-status.json")
    assert {n: c["delivered"] for n, c in data["subscribers"].items()} == {
        "oncall": PUBLISHED, "tally": PUBLISHED
    }  # fmt: skip
    assert {t: c["delivered"] for t, c in data["topics"].items()} == {
        "events.code": 4, "events.incident": 4, "events.money": 2, "events.other": 2
    }  # fmt: skip
    assert data["mailboxes"] == {"oncall": ["events.*"], "tally": ["events.*"]}
    [link] = data["links"]
    assert (link["importer"], link["provider"], link["served"]) == (
        "tagger", "classify", "eventrouter:classify/classifier@1.0.0"
    )  # fmt: skip
    assert cli(["status", "--app", "eventrouter"]) == 0
    out = capsys.readouterr().out
    assert "tagger    eventrouter:classify/classifier@1.0.0  classify" in out


def test_new_guests_import_the_current_host_wit() -> None:
    """The airssys:host WIT the cooperating guests build against is what the host provides."""
    from airssys_plugins.host.builtins import builtin_functions
    from airssys_plugins.host.interfaces import host_wit

    current = host_wit(builtin_functions())["airssys:host@0.1.0"]
    for guest in ("tagger", "tally", "oncall"):
        copy = Path(__file__).parent.parent / "sample_apps/eventrouter/plugins" / guest
        assert (copy / "wit/deps/airssys-host/host.wit").read_text() == current, guest


def test_lookup_caches_answers_in_kv(
    eventrouter_wasm: dict[str, Path], directory: DirectoryServer
) -> None:
    """ada and grace appear twice but are fetched once; the cache lives in kv."""
    run(example_events(), directory_url=directory.url)
    assert directory.requests == ["/users/ada", "/users/linus", "/users/grace", "/users/mallory"]


def test_state_dir_keeps_dedup_state(eventrouter_wasm: dict[str, Path], tmp_path: Path) -> None:
    """With a state directory, a second run sees every event as a redelivery."""
    events = example_events()
    run(events, state_dir=tmp_path)
    again = run(events, state_dir=tmp_path)
    assert {o.status for o in again.outcomes} == {"dropped"}
    assert Field("github/duplicate", "4") in again.report
    assert (tmp_path / "kv.sqlite3").is_file()


def test_without_lookup_nothing_talks_http(eventrouter_wasm: dict[str, Path]) -> None:
    """--no-lookup: no HTTP plugin; alerts fall through to the WAT router's pager."""
    result = run(example_events())
    assert [name for name, _, _ in result.plugins] == [
        "classify", "dedup", "oncall", "router", "tagger", "tally", "triage"
    ]  # fmt: skip
    routed = {o.event.id: o.destination for o in result.outcomes if o.status == "routed"}
    assert routed == {
        "gh-101": "ci",
        "gh-102": "code-review",
        "st-9": "billing",
        "mon-7": "pager",
        "st-10": "billing",
    }


def test_lookup_reaches_only_its_origin(
    eventrouter_wasm: dict[str, Path],
    directory: DirectoryServer,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A lookup configured for another origin is refused by the host: no fields, a
    warning from the plugin, an audited denial, and no request reaches the server."""
    with DirectoryServer({"ada": {"team": "x"}}) as other:
        pm, host = make_host(tmp_path, directory.url)
        with host:
            host.load(
                eventrouter_wasm["lookup"],
                name="lookup",
                requests=requests_for("lookup", directory.url),
                config={"directory-url": other.url},
            )
            event = Event("1", "github", "push", "ada", "{}", [])
            with caplog.at_level(logging.WARNING, logger="airssys_plugins.plugin.lookup"):
                fields = pm.hook.enrich(event=event)
            assert fields == [[], [Field("priority", "normal")]]  # lookup: none; triage
            assert other.requests == []
            assert "directory lookup failed" in caplog.text
            assert "is not allowed for this plugin" in caplog.text
            assert [e.detail for e in host.audit.events(plugin="lookup", kind="deny")] == [
                f"http to '{other.url}/users/ada' refused"
            ]


def test_router_gets_no_rights(eventrouter_wasm: dict[str, Path], tmp_path: Path) -> None:
    """The ceiling for the route hook is empty: a router asking for kv is refused."""
    _, host = make_host(tmp_path, None)
    with host:
        host.grants["router"] = Capabilities(interfaces=["kv"])
        with raises_denied("router", "interface kv (above the host's ceiling)"):
            host.load(
                eventrouter_wasm["router"],
                name="router",
                requests=Capabilities(interfaces=["kv"]),
            )
        load_bundled(host, None)
        assert host.plugins["router"].capabilities == Capabilities()


@pytest.mark.parametrize(
    ("kind", "destination"),
    [
        ("alert.triggered", "pager"),
        ("alert.", "pager"),
        ("payment.refunded", "billing"),
        ("pull_request.closed", "code-review"),
        ("push", "ci"),
        ("pushed", "ci"),
        ("alert", None),
        ("", None),
        ("ping", None),
        ("pay", None),
    ],
    ids=lambda v: repr(v),
)
def test_wat_router_rules(
    load_component: ComponentLoader,
    eventrouter_wasm: dict[str, Path],
    kind: str,
    destination: str | None,
) -> None:
    """The hand-written router matches kind prefixes (and handles the empty string)."""
    plugin = load_component(
        eventrouter_wasm["router"], name="router", contract="hookspecs.eventrouter:EventHooks"
    )
    fields = [Field("team", "x" * 100)] * 3  # lowered too, and ignored
    event = Event("1", "s", kind, None, '{"big": "' + "y" * 5000 + '"}', fields)
    assert call_hook(plugin, "route", event=event) == destination


def test_dedup_survives_a_restart(
    plugin_host: HostFactory, load_component: ComponentLoader, eventrouter_wasm: dict[str, Path]
) -> None:
    """dedup keeps its state in kv, not in the instance: a reload still knows the event."""
    host = plugin_host("hookspecs.eventrouter:EventHooks", limits=Limits(timeout=2.0))
    requests = requests_for("dedup", None)
    load_component(eventrouter_wasm["dedup"], name="dedup", host=host, requests=requests)
    event = Event("7", "github", "push", None, "{}", [])
    assert host.pm.hook.filter_event(event=event) is None
    fresh = host.reload("dedup")
    assert call_hook(fresh, "filter_event", event=event) == "duplicate delivery of github event 7"


def test_parse_events_reports_every_bad_line() -> None:
    """Invalid lines are reported with their numbers; valid ones are kept."""
    lines = [
        '{"id": "a", "source": "s", "kind": "k", "payload": {"b": 1, "a": [2]}}',
        "",
        "not json",
        "[1, 2]",
        '{"id": 1, "source": "s"}',
        '{"id": "b", "source": "s", "kind": "k", "subject": 5}',
    ]
    events, problems = parse_events(lines)
    assert events == [Event("a", "s", "k", None, '{"a":[2],"b":1}', [])]
    assert [p.split(":")[0] for p in problems] == ["line 3", "line 4", "line 5", "line 6"]
    assert problems[2] == "line 5: missing or not a string: 'id', 'kind'"
    assert problems[3] == "line 6: missing or not a string: 'subject'"


def test_cli_text(eventrouter_wasm: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    """`eventrouter` with no arguments routes the bundled example through a local
    stand-in directory and prints plugins, rights, one line per event and the report."""
    assert main([]) == 0
    out = re.sub(r"127\.0\.0\.1:\d+", "127.0.0.1:PORT", capsys.readouterr().out)
    assert out == (
        "plugins:\n"
        "  classify wasm   no rights\n"
        "  dedup    wasm   interface kv, interface log\n"
        "  lookup   wasm   network http://127.0.0.1:PORT, interface config, interface http, "
        "interface kv, interface log\n"
        "  oncall   wasm   subscribe events.*\n"
        "  router   wasm   no rights\n"
        "  tagger   wasm   interface messaging, plugin link "
        "classify:eventrouter:classify/classifier@^1, publish events.*\n"
        "  tally    wasm   subscribe events.*\n"
        "  triage   python not sandboxed\n"
        "links:\n"
        "  tagger   imports eventrouter:classify/classifier@1.0.0 from classify (linked)\n"
        "directory: http://127.0.0.1:PORT (local stand-in)\n"
        "events:\n"
        "  gh-101  github/push                 -> ci              "
        "team=platform name=Ada Lovelace class=code priority=normal\n"
        "  gh-102  github/pull_request.opened  -> code-review     "
        "team=kernel name=Linus Torvalds class=code priority=normal\n"
        "  gh-101  github/push                 dropped: duplicate delivery of github event gh-101\n"
        "  st-9    stripe/payment.failed       -> billing         "
        "team=payments name=Grace Hopper class=incident priority=high\n"
        "  mon-7   monitor/alert.triggered     -> pager-platform  "
        "team=platform name=Ada Lovelace class=incident priority=high\n"
        "  gh-103  github/ping                 dropped: health-check ping\n"
        "  st-10   stripe/payment.succeeded    -> billing         "
        "team=unknown class=money priority=normal\n"
        "  mx-1    mailer/bounce               unrouted           "
        "team=payments name=Grace Hopper class=other priority=normal\n"
        "messages:\n"
        "  oncall   delivered 6, retried 0, dead-lettered 0\n"
        "  tally    delivered 6, retried 0, dead-lettered 0\n"
        "report:\n"
        "  github/duplicate = 1\n"
        "  github/new = 2\n"
        "  mailer/new = 1\n"
        "  monitor/new = 1\n"
        "  stripe/new = 2\n"
        "  oncall/incidents = 2\n"
        "  oncall/ids = st-9 mon-7\n"
        "  tally/messages = 6\n"
    )


def test_cli_json_from_stdin_with_bad_lines(
    eventrouter_wasm: dict[str, Path],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`eventrouter --json --no-lookup -`: JSON lines out, bad input lines on stderr and
    exit status 1."""
    stdin = '{"id": "x", "source": "monitor", "kind": "alert.fired"}\n{"id": "y"}\n'
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    assert main(["--json", "--no-lookup", "-"]) == 1
    captured = capsys.readouterr()
    lines = [json.loads(line) for line in captured.out.splitlines()]
    assert lines == [
        {
            "id": "x",
            "source": "monitor",
            "kind": "alert.fired",
            "status": "routed",
            "destination": "pager",
            "reason": None,
            "fields": {"class": "incident", "priority": "high"},
        },
        {
            "report": {
                "monitor/new": "1",
                "oncall/incidents": "1",
                "oncall/ids": "x",
                "tally/messages": "1",
            },
            "messages": {
                name: {"delivered": 1, "retried": 0, "dead_lettered": 0, "queue_depth": 0}
                for name in ("oncall", "tally")
            },
            "links": [
                {
                    "importer": "tagger",
                    "provider": "classify",
                    "interface": "eventrouter:classify/classifier@1.0.0",
                    "state": "linked",
                }
            ],
        },
    ]
    assert captured.err == (
        "eventrouter: -: line 2: missing or not a string: 'source', 'kind' (skipped)\n"
    )


def test_cli_usage_errors(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """A missing file or a bad --directory is a usage error (status 2) that says why."""
    with pytest.raises(SystemExit) as info:
        main([str(tmp_path / "nope.jsonl")])
    assert info.value.code == 2
    assert "cannot read events: [Errno 2] No such file or directory" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--directory", "ftp://example.com"])
    assert "--directory: 'ftp://example.com' is not an http(s) URL" in capsys.readouterr().err


CRASHY_WAT = """(module
  (memory (export "memory") 1)
  (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32) (i32.const 1024))
  ;; filter-event: traps for kinds of length 4 ("push"), else answers none
  (func (export "eventrouter:hooks/filter-event@1.0.0#filter-event")
        (param i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32) (result i32)
    (if (i32.eq (local.get 5) (i32.const 4)) (then unreachable))
    (i32.store8 (i32.const 16) (i32.const 0))
    (i32.const 16))
  ;; enrich: always traps
  (func (export "eventrouter:hooks/enrich@1.0.0#enrich")
        (param i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32) (result i32)
    unreachable)
)
"""


def test_failing_plugins_do_not_stop_the_stream(
    eventrouter_wasm: dict[str, Path], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A trap in filter_event fails that event only; a trapping enricher is skipped."""
    from airssys_plugins.authoring.build import build_guest
    from sample_apps.eventrouter.app import route_event

    guest = tmp_path / "crashy"
    (guest / "wit").mkdir(parents=True)
    (guest / "wit" / "guest.wit").write_text(
        "package eventrouter:hooks@1.0.0;\nworld guest { export filter-event; export enrich; }\n"
    )
    (guest / "guest.wat").write_text(CRASHY_WAT)
    contract_wit = Path(hookspecs.eventrouter.__file__).with_suffix(".wit")
    crashy = build_guest(guest, wit_files=[contract_wit])
    pm, host = make_host(tmp_path / "state", None)
    with host:
        load_bundled(host, None)
        host.load(crashy, name="crashy")
        push = route_event(pm, Event("1", "github", "push", None, "{}", []))
        assert push.status == "failed"
        assert push.reason is not None
        assert push.reason.startswith("PluginTrap: plugin 'crashy' trapped in hook 'filter_event'")
        with caplog.at_level(logging.WARNING):
            alert = route_event(pm, Event("2", "monitor", "alert.fired", None, "{}", []))
        assert (alert.status, alert.destination) == ("routed", "pager")
        assert alert.event.fields == [Field("class", "incident"), Field("priority", "high")]
        assert "plugin 'crashy' failed and was skipped" in caplog.text
