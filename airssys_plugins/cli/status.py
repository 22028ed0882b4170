"""The ``status`` subcommand: a running (or ended) host's messaging and links, from outside.

airssys-plugins status --app APP [--file FILE] [--dead-letters N] [--json]

A host writes its messaging counters (per topic and per subscriber: delivered, retried,
dead-lettered, queue depth), its last dead letters and its links between plugins to the
app's status file (see :mod:`airssys_plugins.host.status`); this command reads it and says
whether it is live, the last state of a host that closed, or stale (its process ended
without closing the host).

Exit codes: 0 the status was shown (live, closed or stale: the output says which); 1 no
status file, or one that cannot be read; 2 usage error.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..host.status import StatusFile, freshness
from .plugins import table

__all__ = ["register"]

_COUNTS = ("delivered", "retried", "dead_lettered", "queue_depth")


def _file(args: argparse.Namespace) -> StatusFile:
    if args.file is not None:
        return StatusFile(args.file)
    if not args.app:
        raise SystemExit("error: give --app NAME (the app's pluggy project name), or --file FILE")
    return StatusFile.for_app(args.app)


def _counts(counts: object) -> list[str]:
    data = counts if isinstance(counts, Mapping) else {}
    return [str(data.get(k, "?")) for k in _COUNTS]


def _letter(d: Mapping[str, Any]) -> str:
    at = d.get("at")
    when = time.strftime("%H:%M:%S", time.localtime(at)) if isinstance(at, int | float) else "?"
    to = f" to {d['subscriber']}" if d.get("subscriber") else ""
    error = f" ({d['error']})" if d.get("error") else ""
    tries = f" after {d['attempts']} attempt(s)" if d.get("attempts") else ""
    return (
        f"  #{d.get('id', '?')} {d.get('topic', '?')} from {d.get('sender', '?')}{to}: "
        f"{d.get('reason', '?')}{error}{tries} at {when}"
    )


def _print(path: Path, data: Mapping[str, Any], note: str, shown: int) -> None:
    out = sys.stdout
    print(f"status of {data.get('app', '?')} ({path})")
    print(f"host: {note}")
    topics = data.get("topics") or {}
    print("\ntopics:" if topics else "\ntopics: none (nothing published yet)")
    header = ["DELIVERED", "RETRIED", "DEAD-LETTERED", "QUEUED"]
    if topics:
        out.write(table(["TOPIC", *header], [[t, *_counts(c)] for t, c in sorted(topics.items())]))
    subscribers = data.get("subscribers") or {}
    mailboxes = data.get("mailboxes") or {}
    names = sorted(set(subscribers) | set(mailboxes))
    print("\nsubscribers:" if names else "\nsubscribers: none")
    if names:
        rows = [
            [
                n,
                ", ".join(mailboxes.get(n, [])) or "(gone)",
                *_counts(subscribers.get(n, {})),
            ]
            for n in names
        ]
        out.write(table(["SUBSCRIBER", "PATTERNS", *header], rows))
    dead = data.get("dead_letters") or {}
    recent = list(dead.get("recent") or [])[-shown:] if shown else []
    kept = dead.get("kept", 0)
    if not kept:
        print("\ndead letters: none")
    else:
        print(f"\ndead letters: {kept} kept, the last {len(recent)} shown (oldest first)")
        for letter in recent:
            print(_letter(letter))
    links = data.get("links") or []
    print("\nlinks:" if links else "\nlinks: none")
    if links:
        rows = [
            [
                link.get("importer", "?"),
                link.get("interface", "?"),
                link.get("provider", "?"),
                f"{link.get('served') or '-'} (range {link.get('versions', '*')})",
                link.get("state", "?"),
            ]
            for link in links
        ]
        out.write(table(["IMPORTER", "IMPORTS", "PROVIDER", "SERVED AS", "STATE"], rows))


def _cmd_status(args: argparse.Namespace) -> int:
    file = _file(args)
    data = file.read()  # a StatusFileError (a PluginError) is reported as its message
    if data is None:
        who = f"no host of {args.app!r}" if args.file is None else "no host"
        note = (
            f"absent: {file.path} does not exist: {who} has written a status yet. A host "
            "writes it while it runs (once plugins load or messages flow); check --app is "
            "the app's pluggy project name, or give the file with --file"
        )
        if args.json:
            print(json.dumps({"path": str(file.path), "freshness": "absent", "note": note}))
        else:
            print(note, file=sys.stderr)
        return 1
    state, note = freshness(data)
    if args.json:
        shown = {**data, "path": str(file.path), "freshness": state, "note": note}
        print(json.dumps(shown, indent=2, sort_keys=True))
    else:
        _print(file.path, data, note, args.dead_letters)
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "status",
        help="a host's messaging counters, dead letters and links, from its status file",
    )
    p.add_argument("--app", help="the app's name (its pluggy project name)")
    p.add_argument(
        "--file",
        type=Path,
        metavar="FILE",
        help="read this status file instead of the app's (<user state dir>/APP/host-status.json)",
    )
    p.add_argument(
        "--dead-letters",
        type=int,
        default=10,
        metavar="N",
        help="show the last N dead letters (default 10; the file keeps the last 20)",
    )
    p.add_argument("--json", action="store_true", help="print the status as JSON")
    p.set_defaults(func=_cmd_status)
