"""The isolation modes of a plugin (``host.load(..., isolation=...)``), checked at every
load; the per-call machinery, :class:`.isolation.FreshInstances` and its refill thread,
is imported when a plugin is first loaded with ``isolation="per-call"``."""

from __future__ import annotations

from typing import Final, Literal

__all__ = ["ISOLATIONS", "SPARES", "Isolation", "check_isolation"]

#: ``"shared"``: calls share the plugin's instances (state carries from one call to the
#: next); ``"per-call"``: every call runs on a fresh instance.
Isolation = Literal["shared", "per-call"]
ISOLATIONS: Final = ("shared", "per-call")

#: Instances prepared beyond the ``pool_size`` calls that may run at once.
SPARES: Final = 1


def check_isolation(value: object, plugin: str | None = None) -> Isolation:
    """``value`` if it is an isolation mode, else a ``ValueError`` saying which exist."""
    if value == "shared" or value == "per-call":
        return value
    who = f"plugin {plugin!r}: " if plugin else ""
    raise ValueError(
        f"{who}isolation must be 'shared' (calls share the plugin's instances) or "
        f"'per-call' (every call on a fresh instance), not {value!r}"
    )
