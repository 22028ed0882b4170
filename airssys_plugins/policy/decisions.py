"""Rights decisions: a plugin's request against the host's ceilings and the operator's grants.

Every grant and denial is written to the audit log here, so the host never decides rights
without a record.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Set
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._errors import CapabilityDenied
from .audit import AuditLog
from .capabilities import Capabilities, PluginLink, decide, topic_covers

if TYPE_CHECKING:
    # .tables (the grants-file reader) is imported when a grants file is read: a host given
    # its grants as a mapping, or none, does not import it.
    from .tables import GrantsError, grants_from_mapping

__all__ = [
    "GrantsError",
    "decide_for_hooks",
    "grants_from_mapping",
    "intersect",
    "load_grants",
    "wider_rights",
]


def wider_rights(new: Capabilities, old: Capabilities) -> list[str]:
    """Rights ``new`` asks for that ``old`` did not."""
    return old.beyond(new)


def intersect(a: Capabilities, b: Capabilities) -> Capabilities:
    """The rights both ``a`` and ``b`` allow (two ceilings met, e.g. for several hooks).

    For rights that cover others (folders, plugin links, topic patterns) an entry of either
    side that the other side covers is kept: ``/data`` rw met with ``/data`` ro is
    ``/data`` ro, and ``orders.>`` met with ``orders.eu`` is ``orders.eu``.
    """
    files = [g for g in a.filesystem if b.allows(g)]
    files += [g for g in b.filesystem if a.allows(g) and g not in files]

    def links(x: Capabilities, y: Capabilities) -> set[PluginLink]:
        return {link for link in x.plugins if any(p.covers(link) for p in y.plugins)}

    def topics(x: frozenset[str], y: frozenset[str]) -> set[str]:
        return {t for t in x if any(topic_covers(p, t) for p in y)}

    return Capabilities(
        filesystem=files,
        env=a.env & b.env,
        network=a.network & b.network,
        interfaces=a.interfaces & b.interfaces,
        plugins=links(a, b) | links(b, a),
        publish=topics(a.publish, b.publish) | topics(b.publish, a.publish),
        subscribe=topics(a.subscribe, b.subscribe) | topics(b.subscribe, a.subscribe),
    )


def load_grants(
    grants: Mapping[str, Capabilities] | str | os.PathLike[str] | None,
) -> dict[str, Capabilities]:
    if grants is None:
        return {}
    if isinstance(grants, Mapping):
        return dict(grants)
    from .tables import read_grants

    return read_grants(Path(grants))  # every problem at once, as a GrantsError


def __getattr__(name: str) -> Any:
    if name in ("GrantsError", "grants_from_mapping"):  # re-exported from .tables
        from . import tables

        value = getattr(tables, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def decide_for_hooks(
    name: str,
    requests: Capabilities,
    hooks: list[str],
    *,
    ceiling: Capabilities,
    hook_ceilings: Mapping[str, Capabilities],
    grant: Capabilities,
    strict: bool,
    provided: Set[str],
    audit: AuditLog,
) -> Capabilities:
    """The rights plugin ``name`` runs with when it serves ``hooks``: its request within
    the narrowest ceiling of those hooks and the operator's ``grant``.

    ``provided`` holds the short names of the host interfaces that exist; asking for any
    other is refused. With ``strict`` a denied right refuses the plugin instead of being
    dropped.
    """
    if requests is Capabilities.nothing():
        # nothing asked: nothing granted and nothing denied, whatever the ceilings and
        # grants say (they only take rights away); no walk of them, no audit record
        return requests
    for hook in hooks:  # a plugin serving several hooks gets the narrowest ceiling
        narrower = hook_ceilings.get(hook)
        if narrower is not None:
            ceiling = (
                narrower if ceiling is Capabilities.everything() else intersect(ceiling, narrower)
            )
    missing = sorted(requests.interfaces - provided)
    if missing:
        raise CapabilityDenied(
            name, [f"interface {m} (the host provides no such interface)" for m in missing]
        )
    try:
        effective, denied = decide(name, requests, ceiling, grant, strict=strict)
    except CapabilityDenied as exc:
        for line in exc.denied:
            audit.record("deny", name, line)
        audit.record("refuse", name, f"not loaded: {len(exc.denied)} right(s) denied")
        raise
    for line in denied:
        audit.record("deny", name, line)
    for line in effective.describe():
        audit.record("grant", name, line)
    return effective
