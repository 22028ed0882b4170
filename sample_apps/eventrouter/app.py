"""eventrouter: route events (webhook deliveries) through Python and WebAssembly plugins.

    eventrouter                              # the bundled example events
    eventrouter events.jsonl                 # JSON lines from a file
    some-producer | eventrouter -            # ... or from stdin
    eventrouter --json --state-dir ./state   # JSON output; keep kv state between runs

Each event passes three hooks: ``filter_event`` (firstresult: the first plugin that gives a
reason drops it), ``enrich`` (every plugin adds fields) and ``route`` (firstresult: the
destination). ``report`` collects counters at the end, once the messages the plugins sent
each other are all handled.

Bundled plugins, each granted only what it needs:

* ``router`` (hand-written WAT): routes by event kind. No rights at all; the host's
  ceiling for the ``route`` hook is empty, so a router could not be granted any.
* ``dedup`` (Python, componentize-py): drops redelivered events; kv and log.
* ``lookup`` (Python, componentize-py): adds the subject's team and name from a directory
  service over HTTP, cached in kv; http to that one origin, kv, config and log.
* ``triage`` (plain Python plugin, not sandboxed): drops pings, sets a priority, pages
  the subject's team for alerts.

Plugins that work together, through the host (all hand-written WAT):

* ``classify`` implements no hook: it exports ``eventrouter:classify/classifier``.
* ``tagger`` (``enrich``) imports that interface through a **link** to ``classify``: its
  call runs classify's export on classify's own instance. It adds the answer as the field
  ``class`` and **publishes** the enriched event on topic ``events.<class>``.
* ``tally`` and ``oncall`` (``report``) **subscribe** to ``events.*``: each has a mailbox
  and receives every event tagger publishes; tally counts them, oncall keeps the ids of
  the incidents. Their report shows what they received.

The directory service is a stand-in the app starts on 127.0.0.1 (an ephemeral port)
from ``directory.json``, so the demo runs offline; ``--directory URL`` uses a real one
and ``--no-lookup`` leaves the HTTP plugin out.
"""

from __future__ import annotations

import argparse
import contextlib
import http.server
import json
import logging
import os
import sys
import tempfile
import threading
import urllib.parse
from collections.abc import Iterable, Iterator, Mapping, Sequence
from importlib.resources import as_file, files
from pathlib import Path
from typing import Any, Final, Literal

import attrs
import pluggy

from airssys_plugins import Capabilities, HookCallError, Limits, Origin, PluginHost
from airssys_plugins.authoring.build import build_guest
from airssys_plugins.cli.progress import Activity
from airssys_plugins.cli.reporting import run_reporting
from airssys_plugins.host.composition import LinkInfo
from airssys_plugins.host.messaging import Counters
from airssys_plugins.host.status import StatusFile
from hookspecs.eventrouter import PACKAGE, Event, EventHooks, Field

from .plugins.triage import Triage

HERE: Final = Path(__file__).parent
PLUGIN_SOURCES: Final = HERE / "plugins"
EXAMPLE_EVENTS: Final = HERE / "events.jsonl"
EXAMPLE_DIRECTORY: Final = HERE / "directory.json"
# Loaded in this order: pluggy calls the last registered first, so tagger's class comes
# after lookup's team and name, and dedup's report before the subscribers'.
BUNDLED: Final = ("classify", "tagger", "tally", "oncall", "router", "dedup", "lookup")
#: tagger's link to classify's export, and the topics of the enriched events.
CLASSIFIER: Final = "classify:eventrouter:classify/classifier@^1"
EVENTS_TOPICS: Final = "events.*"

log = logging.getLogger("eventrouter")


# ----------------------------------------------------------------------------- plugins


def build_bundled(names: Sequence[str] = BUNDLED) -> dict[str, Path]:
    """Build (or fetch from the build cache) bundled components; name -> .wasm."""
    with as_file(files("hookspecs") / "eventrouter.wit") as contract_wit:
        return {
            name: build_guest(PLUGIN_SOURCES / name, wit_files=[contract_wit]) for name in names
        }


def origin_of(url: str) -> Origin:
    """The HTTP origin (scheme, host, port) of ``url``, which the lookup plugin may reach."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{url!r} is not an http(s) URL")
    return Origin.parse(f"{parts.scheme}://{parts.netloc}")


def requests_for(name: str, directory_url: str | None) -> Capabilities:
    """What each bundled plugin asks for. In a deployment this is each plugin's manifest
    (``[capabilities]`` in plugin.toml); the sample keeps it here to show it in one place."""
    if name == "dedup":
        return Capabilities(interfaces=["kv", "log"])
    if name == "lookup":
        assert directory_url is not None
        return Capabilities(
            interfaces=["http", "kv", "config", "log"], network=[origin_of(directory_url)]
        )
    if name == "tagger":
        return Capabilities(interfaces=["messaging"], plugins=[CLASSIFIER], publish=[EVENTS_TOPICS])
    if name in ("tally", "oncall"):
        return Capabilities(subscribe=[EVENTS_TOPICS])
    return Capabilities()


def make_host(
    state_dir: str | os.PathLike[str],
    directory_url: str | None,
    grants: str | os.PathLike[str] | None = None,
) -> tuple[pluggy.PluginManager, PluginHost]:
    """The PluginManager (with ``triage`` registered) and the host that loads components.

    The app is the operator here: it grants each plugin exactly what it asks for (unless
    an operator's ``grants`` file says otherwise), under a ceiling that allows nothing
    beyond the built-in interfaces, the directory's origin, tagger's link to classify and
    the ``events.*`` topics, and nothing at all to plugins implementing ``route``.
    """
    pm = pluggy.PluginManager("eventrouter")
    pm.add_hookspecs(EventHooks)
    pm.register(Triage(), name="triage")
    network = [] if directory_url is None else [origin_of(directory_url)]
    host = PluginHost(
        pm,
        package=PACKAGE,
        data_dir=state_dir,
        ceiling=Capabilities(
            interfaces=["log", "kv", "config", "http", "messaging"],
            network=network,
            plugins=[CLASSIFIER],
            publish=[EVENTS_TOPICS],
            subscribe=[EVENTS_TOPICS],
        ),
        hook_ceilings={"route": Capabilities()},
        grants=grants
        if grants is not None
        else {
            name: requests_for(name, directory_url)
            for name in BUNDLED
            if name != "lookup" or directory_url is not None
        },
        limits=Limits(timeout=2.0, host_call_timeout=3.0),
        # Enrichment is best effort: a failing enricher is logged and the event goes on.
        failure_policies={"enrich": "skip"},
    )
    return pm, host


def load_bundled(host: PluginHost, directory_url: str | None) -> None:
    """Load the bundled components (``lookup`` only with a directory to talk to)."""
    wanted = [n for n in BUNDLED if n != "lookup" or directory_url is not None]
    for name, wasm in build_bundled(wanted).items():
        config = {"directory-url": directory_url} if name == "lookup" and directory_url else {}
        host.load(wasm, name=name, requests=requests_for(name, directory_url), config=config)


# ----------------------------------------------------------------------------- the directory


class DirectoryServer:
    """A stand-in directory service on 127.0.0.1: ``GET /users/<name>`` answers the user's
    JSON from ``users`` or 404. Runs in a thread while the ``with`` block lasts."""

    def __init__(self, users: Mapping[str, Mapping[str, str]]):
        self.users = dict(users)
        #: The paths requested so far (the tests check the lookup plugin's cache with it).
        self.requests: list[str] = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.requests.append(self.path)
                prefix = "/users/"
                name = urllib.parse.unquote(self.path[len(prefix) :])
                user = server.users.get(name) if self.path.startswith(prefix) else None
                body = json.dumps(user if user is not None else {"error": "no such user"})
                self.send_response(200 if user is not None else 404)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body.encode())))
                self.end_headers()
                self.wfile.write(body.encode())

            def log_message(self, format: str, *args: Any) -> None:
                pass  # the demo's output is the events, not an access log

        self._httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, name="eventrouter-directory", daemon=True
        )

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> DirectoryServer:
        return cls(json.loads(Path(path).read_text(encoding="utf-8")))

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> DirectoryServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join()


# ----------------------------------------------------------------------------- events


def parse_events(lines: Iterable[str]) -> tuple[list[Event], list[str]]:
    """Events from JSON lines, and one message per line that is not a valid event.

    Each line is an object with string ``id``, ``source`` and ``kind``, an optional
    ``subject`` (string or null) and an optional ``payload`` (any JSON). Blank lines are
    skipped.
    """
    events: list[Event] = []
    problems: list[str] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
        except ValueError as exc:
            problems.append(f"line {number}: not JSON ({exc})")
            continue
        if not isinstance(data, dict):
            problems.append(f"line {number}: an event is a JSON object, got {type(data).__name__}")
            continue
        bad = [k for k in ("id", "source", "kind") if not isinstance(data.get(k), str)]
        subject = data.get("subject")
        if subject is not None and not isinstance(subject, str):
            bad.append("subject")
        if bad:
            problems.append(f"line {number}: missing or not a string: {', '.join(map(repr, bad))}")
            continue
        payload = json.dumps(data.get("payload", {}), separators=(",", ":"), sort_keys=True)
        events.append(Event(data["id"], data["source"], data["kind"], subject, payload, []))
    return events, problems


Status = Literal["routed", "unrouted", "dropped", "failed"]


@attrs.frozen
class Outcome:
    """What happened to one event: ``routed`` to ``destination``, ``unrouted`` (no plugin
    knew where), ``dropped`` (``reason`` says why and by which filter) or ``failed``."""

    event: Event
    status: Status
    destination: str | None = None
    reason: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.event.id,
            "source": self.event.source,
            "kind": self.event.kind,
            "status": self.status,
            "destination": self.destination,
            "reason": self.reason,
            "fields": {f.key: f.value for f in self.event.fields},
        }


def route_event(pm: pluggy.PluginManager, event: Event) -> Outcome:
    """Run one event through ``filter_event``, ``enrich`` and ``route``."""
    try:
        reason: str | None = pm.hook.filter_event(event=event)
        if reason is not None:
            return Outcome(event, "dropped", reason=reason)
        groups: list[list[Field]] = pm.hook.enrich(event=event)
        event = attrs.evolve(event, fields=[f for group in groups for f in group])
        destination: str | None = pm.hook.route(event=event)
    except HookCallError as exc:  # a component trapped or ran out of time: skip the event
        log.error("event %s failed: %s", event.id, exc)
        return Outcome(event, "failed", reason=f"{type(exc).__name__}: {exc}")
    if destination is None:
        return Outcome(event, "unrouted")
    return Outcome(event, "routed", destination=destination)


@attrs.frozen
class RunResult:
    """A run: the plugins and their rights, each event's outcome, the plugins' report; the
    links between plugins, and the messages each subscriber got (its mailbox counters)."""

    plugins: list[tuple[str, str, list[str]]]
    outcomes: list[Outcome]
    report: list[Field]
    links: list[LinkInfo] = attrs.Factory(list)
    messages: dict[str, Counters] = attrs.Factory(dict)


def run(
    events: Sequence[Event],
    *,
    state_dir: str | os.PathLike[str] | None = None,
    directory_url: str | None = None,
    grants: str | os.PathLike[str] | None = None,
) -> RunResult:
    """Route ``events``. Without ``state_dir`` the kv state lives in a temporary directory
    and is gone after the run; without ``directory_url`` the lookup plugin is not loaded;
    ``grants`` is an operator's grants file replacing the app's own grants.

    The host's messaging counters, dead letters and links go to the app's status file
    while it runs (``airssys-plugins status --app eventrouter`` shows them, during the run
    or after it)."""
    with contextlib.ExitStack() as stack:
        if state_dir is None:
            state_dir = stack.enter_context(tempfile.TemporaryDirectory(prefix="eventrouter-"))
        pm, host = make_host(state_dir, directory_url, grants)
        stack.enter_context(host)
        host.messaging.record_status(
            StatusFile.for_app(pm.project_name), app=pm.project_name, links=host.links
        )
        load_bundled(host, directory_url)
        plugins = []
        for plugin in pm.get_plugins():
            name = pm.get_name(plugin) or "?"
            wasm = host.plugins.get(name)
            if wasm is None:
                plugins.append((name, "python", ["not sandboxed"]))
            else:
                rights = wasm.capabilities.describe()
                plugins.append((name, "wasm", rights or ["no rights"]))
        outcomes = [route_event(pm, event) for event in events]
        # The subscribers' report counts what they received: let their mailboxes empty.
        if not host.messaging.drain(timeout=30.0):
            log.warning("some messages were still being handled after 30 s")
        report = [f for group in pm.hook.report() for f in group]
        counters = host.messaging.counters()["subscribers"]
        subscribers = host.messaging.subscribers()
        messages = {name: c for name, c in counters.items() if name in subscribers}
        return RunResult(sorted(plugins), outcomes, report, host.links(), messages)


# ----------------------------------------------------------------------------- command line


@contextlib.contextmanager
def _directory(args: argparse.Namespace) -> Iterator[str | None]:
    if args.no_lookup:
        yield None
    elif args.directory:
        yield args.directory
    else:
        with DirectoryServer.from_file(args.directory_file) as server:
            yield server.url


def _print_text(result: RunResult, directory: str | None, stub: bool) -> None:
    print("plugins:")
    for name, kind, rights in result.plugins:
        print(f"  {name:<8} {kind:<6} {', '.join(rights)}")
    if result.links:
        print("links:")
    for link in result.links:
        served = link.served or f"{link.interface}, range {link.versions}"
        print(f"  {link.importer:<8} imports {served} from {link.provider} ({link.state})")
    if directory is not None:
        print(f"directory: {directory}{' (local stand-in)' if stub else ''}")
    print("events:")
    for outcome in result.outcomes:
        event = outcome.event
        what = f"{event.source}/{event.kind}"
        if outcome.status == "routed":
            verdict = f"-> {outcome.destination}"
        elif outcome.status == "unrouted":
            verdict = "unrouted"
        else:
            verdict = f"{outcome.status}: {outcome.reason}"
        fields = " ".join(f"{f.key}={f.value}" for f in event.fields)
        print(f"  {event.id:<7} {what:<27} {verdict:<18} {fields}".rstrip())
    if result.messages:
        print("messages:")
    for name, c in result.messages.items():
        print(
            f"  {name:<8} delivered {c.delivered}, retried {c.retried}, "
            f"dead-lettered {c.dead_lettered}"
        )
    print("report:")
    for field in result.report:
        print(f"  {field.key} = {field.value}")


def _summary_json(result: RunResult) -> dict[str, Any]:
    return {
        "report": {f.key: f.value for f in result.report},
        "messages": {name: attrs.asdict(c) for name, c in result.messages.items()},
        "links": [
            {
                "importer": link.importer,
                "provider": link.provider,
                "interface": link.served or link.interface,
                "state": link.state,
            }
            for link in result.links
        ],
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="eventrouter",
        description=(__doc__ or "").splitlines()[0],
        epilog="Exit status: 0 all lines were events, 1 some lines were not (they are "
        "skipped and reported on stderr), 2 usage error.",
    )
    parser.add_argument(
        "events",
        nargs="?",
        default=str(EXAMPLE_EVENTS),
        metavar="FILE",
        help="JSON lines, one event each; '-' reads stdin (default: the bundled example)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object per event")
    parser.add_argument(
        "--state-dir",
        metavar="DIR",
        help="keep the plugins' kv state here between runs (default: a temporary directory)",
    )
    parser.add_argument(
        "--directory", metavar="URL", help="the directory service the lookup plugin asks"
    )
    parser.add_argument(
        "--directory-file",
        metavar="FILE",
        default=str(EXAMPLE_DIRECTORY),
        help="users served by the local stand-in directory (default: the bundled example)",
    )
    parser.add_argument(
        "--no-lookup", action="store_true", help="do not load the lookup plugin (no HTTP)"
    )
    parser.add_argument(
        "--grants",
        metavar="FILE",
        help="an operator's grants file (TOML, [plugins.NAME] tables) instead of granting "
        "each plugin what it asks for",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="show the plugins' logs")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of errors")
    args = parser.parse_args(argv)
    return run_reporting("eventrouter", lambda: _main(parser, args), debug=args.debug)


def _main(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="eventrouter: %(name)s: %(message)s",
    )
    if not args.verbose:
        # A refused plugin is reported once, as the error below; the audit log's
        # deny/refuse lines would say it twice more.
        logging.getLogger("airssys_plugins.audit").setLevel(logging.ERROR)
    if args.directory:
        try:
            origin_of(args.directory)
        except ValueError as exc:
            parser.error(f"--directory: {exc}")
    try:
        if args.events == "-":
            events, problems = parse_events(sys.stdin)
        else:
            with open(args.events, encoding="utf-8") as lines:
                events, problems = parse_events(lines)
    except OSError as exc:
        parser.error(f"cannot read events: {exc}")
    for problem in problems:
        print(f"eventrouter: {args.events}: {problem} (skipped)", file=sys.stderr)
    slow = ("airssys_plugins.build", "airssys_plugins.runtime")
    # Show the slow first-run steps (building and compiling the components) as they happen.
    with (
        _directory(args) as directory,
        Activity("starting eventrouter", logs=slow, prefix="eventrouter: "),
    ):
        result = run(events, state_dir=args.state_dir, directory_url=directory, grants=args.grants)
    if args.json:
        for outcome in result.outcomes:
            print(json.dumps(outcome.to_json()))
        print(json.dumps(_summary_json(result)))
    else:
        stub = directory is not None and not args.directory
        _print_text(result, directory, stub)
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
