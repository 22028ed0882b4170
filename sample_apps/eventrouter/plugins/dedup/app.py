"""dedup: a componentize-py guest for `eventrouter:hooks@1.0.0` (hooks `filter-event`, `report`).

Webhook senders redeliver events they are not sure arrived. This plugin remembers every
(source, id) it has kept in the host's kv store and drops a second delivery of the same
event. It also counts events per source and outcome, and returns the counters from
`report`. Its state lives in the kv store, not in the instance, so it survives restarts
of the instance (and of the app, when the app keeps its state directory).

Imports (see `wit/guest.wit`): `airssys:host/kv` (a per-plugin namespace: this plugin
cannot see another plugin's keys) and `airssys:host/log`.

Build (from this directory, with the contract WIT copied into wit/):
`componentize-py -d wit/ -w guest componentize app -o dedup.wasm`
"""

from __future__ import annotations

from componentize_py_types import Err
from wit_world import exports
from wit_world.exports.filter_event import Event
from wit_world.exports.report import Field
from wit_world.imports import kv, log

_COUNT = "count/"


def _bump(counter: str) -> None:
    """Add one to a counter in kv; a full store is logged, not fatal (fail open)."""
    key = _COUNT + counter
    current = kv.get(key)
    value = int(current.decode()) + 1 if current is not None else 1
    try:
        kv.set(key, str(value).encode())
    except Err as exc:
        log.log(log.Level.ERROR, "cannot store counter", [log.Field("error", str(exc.value))])


class FilterEvent(exports.FilterEvent):
    def filter_event(self, event: Event) -> str | None:
        seen = f"seen/{event.source}/{event.id}"
        if kv.get(seen) is not None:
            _bump(f"{event.source}/duplicate")
            log.log(
                log.Level.INFO,
                "dropped a redelivered event",
                [log.Field("source", event.source), log.Field("id", event.id)],
            )
            return f"duplicate delivery of {event.source} event {event.id}"
        try:
            kv.set(seen, b"1")
        except Err as exc:
            log.log(log.Level.ERROR, "cannot remember event", [log.Field("error", str(exc.value))])
        _bump(f"{event.source}/new")
        return None


class Report(exports.Report):
    def report(self) -> list[Field]:
        fields = []
        for key in kv.keys(_COUNT):
            value = kv.get(key)
            if value is not None:
                fields.append(Field(key[len(_COUNT) :], value.decode()))
        return fields
