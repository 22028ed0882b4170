"""The audit log: every grant, denial and limit hit, queryable and exportable.

Events go to the ``airssys_plugins.audit`` logger (with structured fields in ``extra``) and
to an in-memory ring the operator can query or export as JSON lines.
"""

from __future__ import annotations

import collections
import os
import threading
import time
from collections.abc import Iterator
from typing import Any, Final

from .. import _attrs as attrs
from .. import _log as logging

__all__ = ["AuditEvent", "AuditLog"]

log = logging.getLogger("airssys_plugins.audit")

#: Event kinds.
KINDS: Final = frozenset(
    {"grant", "deny", "limit", "load", "unload", "refuse", "circuit", "signature", "link"}
)


@attrs.frozen
class AuditEvent:
    """One audited fact: ``kind`` (grant, deny, limit, load, unload, refuse), the plugin,
    a human ``detail`` and structured ``fields``. An event is read-only, its ``fields``
    too: the load events of one file with the same rights share one dict."""

    time: float
    kind: str
    plugin: str
    detail: str
    fields: dict[str, Any] = attrs.field(factory=dict)

    def to_json(self) -> str:
        import json

        return json.dumps(
            {
                "time": self.time,
                "kind": self.kind,
                "plugin": self.plugin,
                "detail": self.detail,
                **self.fields,
            },
            sort_keys=True,
            default=str,
        )


_set = object.__setattr__


def _event(when: float, kind: str, plugin: str, detail: str, fields: dict[str, Any]) -> AuditEvent:
    """``AuditEvent(when, kind, plugin, detail, fields)`` with every field given and none
    converted or validated (the record declares neither): its slots set directly, about
    a microsecond instead of the record's generic ``__init__`` (4-5 us until compiled)
    on every load and unload. tests/test_load_paths.py checks both make equal events."""
    event = object.__new__(AuditEvent)
    _set(event, "time", when)
    _set(event, "kind", kind)
    _set(event, "plugin", plugin)
    _set(event, "detail", detail)
    _set(event, "fields", fields)
    return event


class AuditLog:
    """Bounded in-memory record of audit events (newest ``capacity`` kept)."""

    def __init__(self, capacity: int = 10_000):
        self._events: collections.deque[AuditEvent] = collections.deque(maxlen=capacity)
        self._lock = threading.Lock()

    def record(self, kind: str, plugin: str, detail: str, **fields: Any) -> AuditEvent:
        return self.record_fields(kind, plugin, detail, fields)

    def record_fields(
        self, kind: str, plugin: str, detail: str, fields: dict[str, Any]
    ) -> AuditEvent:
        """:meth:`record` with the fields as one dict, which the event keeps as given: the
        loads of one file share theirs (an event's fields are read, never changed)."""
        if kind not in KINDS:
            raise ValueError(f"unknown audit event kind {kind!r}")
        event = _event(time.time(), kind, plugin, detail, fields)
        with self._lock:
            self._events.append(event)
        level = logging.WARNING if kind in ("deny", "limit", "refuse") else logging.INFO
        if log.isEnabledFor(level):  # (no record's extra made for a level nobody shows)
            log.log(
                level,
                "%s %s: %s",
                kind,
                plugin,
                detail,
                extra={"audit_kind": kind, "plugin": plugin, "audit_fields": fields},
            )
        return event

    def events(self, *, plugin: str | None = None, kind: str | None = None) -> list[AuditEvent]:
        """Recorded events, oldest first, optionally only one plugin's or one kind."""
        with self._lock:
            snapshot = list(self._events)
        return [
            e
            for e in snapshot
            if (plugin is None or e.plugin == plugin) and (kind is None or e.kind == kind)
        ]

    def __iter__(self) -> Iterator[AuditEvent]:
        return iter(self.events())

    def __len__(self) -> int:
        return len(self._events)

    def export_jsonl(self, path: str | os.PathLike[str]) -> int:
        """Append every recorded event to ``path`` as JSON lines; returns how many."""
        events = self.events()
        with open(path, "a", encoding="utf-8") as f:
            for event in events:
                f.write(event.to_json() + "\n")
        return len(events)
