"""The rights a plugin runs with: the host's ceilings and the operator's grants."""

from __future__ import annotations

from collections.abc import Set
from typing import final

from ..policy.audit import AuditLog
from ..policy.capabilities import Capabilities
from ..policy.decisions import decide_for_hooks
from .settings import OnDenied, SandboxPolicy

__all__ = ["Rights"]


@final
class Rights:
    """A host's :class:`SandboxPolicy`, live: ``grants`` and ``hook_ceilings`` are dicts an
    application (or a test) may change before loading a plugin."""

    __slots__ = ("audit", "ceiling", "grants", "hook_ceilings", "on_denied")

    def __init__(self, policy: SandboxPolicy, audit: AuditLog):
        self.ceiling: Capabilities = policy.ceiling
        self.hook_ceilings: dict[str, Capabilities] = dict(policy.hook_ceilings)
        self.grants: dict[str, Capabilities] = dict(policy.grants)
        self.on_denied: OnDenied = policy.on_denied
        self.audit = audit

    @property
    def policy(self) -> SandboxPolicy:
        """The policy as it stands now (grants changed since construction included)."""
        return SandboxPolicy(self.ceiling, self.hook_ceilings, self.grants, self.on_denied)

    def decide(
        self, name: str, requests: Capabilities, hooks: list[str], *, provided: Set[str]
    ) -> Capabilities:
        """What plugin ``name`` serving ``hooks`` gets of ``requests`` (every grant and
        denial goes to the audit log); raises ``CapabilityDenied`` under ``refuse``."""
        return decide_for_hooks(
            name,
            requests,
            hooks,
            ceiling=self.ceiling,
            hook_ceilings=self.hook_ceilings,
            grant=self.grants.get(name, Capabilities.nothing()),
            strict=self.on_denied == "refuse",
            provided=provided,
            audit=self.audit,
        )
