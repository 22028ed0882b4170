"""triage: the eventrouter's plain Python plugin (no sandbox: it is part of the app).

* ``filter_event`` (``tryfirst``): drops the health-check ``ping`` events senders emit,
  before any component sees them.
* ``enrich``: adds ``priority`` (``high`` for alerts and failed payments).
* ``route`` (``tryfirst``): sends an alert to the pager of the subject's team when an
  enrichment found the team; every other event falls through to the next ``route``
  implementation (pluggy ``firstresult``: the first non-None answer wins).
"""

from __future__ import annotations

from hookspecs.eventrouter import Event, Field, hookimpl

HIGH_PRIORITY = ("alert.", "payment.failed")


class Triage:
    @hookimpl(tryfirst=True)
    def filter_event(self, event: Event) -> str | None:
        return "health-check ping" if event.kind == "ping" else None

    @hookimpl
    def enrich(self, event: Event) -> list[Field]:
        high = event.kind.startswith(HIGH_PRIORITY)
        return [Field("priority", "high" if high else "normal")]

    @hookimpl(tryfirst=True)
    def route(self, event: Event) -> str | None:
        team = next((f.value for f in event.fields if f.key == "team"), None)
        if event.kind.startswith("alert.") and team not in (None, "unknown"):
            return f"pager-{team}"
        return None
