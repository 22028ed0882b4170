"""The host's settings as value objects: :class:`SandboxPolicy` and :class:`Reliability`.

``PluginHost(pm, policy=SandboxPolicy(...), reliability=Reliability(...))`` and the older
keywords (``ceiling=``, ``grants=``, ``restart=``...) build the same objects here; giving
both ways at once is a ``TypeError``. :class:`Unset` marks an option that was not given
where ``None`` already means something (``timeout=None``: no deadline).
"""

from __future__ import annotations

import enum
import os
import types
from collections.abc import Mapping
from pathlib import Path
from typing import Literal, final

import pluggy

from .. import _attrs as attrs
from ..policy.capabilities import Capabilities, Limits
from ..policy.decisions import load_grants
from ..policy.signing import Signatures
from .supervision import POLICIES, FailurePolicy, RestartPolicy

__all__ = [
    "LoadProgress",
    "OnDenied",
    "Reliability",
    "SandboxPolicy",
    "Signatures",
    "Unset",
    "with_timeout",
]

OnDenied = Literal["refuse", "drop"]

LoadStage = Literal["reading", "compiling", "instantiating", "done"]


@final
@attrs.frozen
class LoadProgress:
    """What ``PluginHost(pm, on_progress=callback)`` tells ``callback`` while a plugin loads.

    ``stage`` is ``"reading"`` (``detail``: the file), ``"compiling"`` (only when no
    compiled copy is cached; ``detail``: ``"first time only, 18.3 MB"``),
    ``"instantiating"`` (``detail``: how many instances) or ``"done"``; ``elapsed`` the
    seconds since this plugin's load began. Each stage ends when the next one is told.
    """

    plugin: str
    stage: LoadStage
    detail: str
    elapsed: float

    def __str__(self) -> str:
        detail = f" ({self.detail})" if self.detail else ""
        return f"{self.plugin}: {self.stage}{detail}"


class Unset(enum.Enum):
    """The type of an option that was not given: ``X | Literal[Unset.UNSET]``."""

    UNSET = "unset"

    def __repr__(self) -> str:
        return "<unset>"


def with_timeout(limits: Limits, timeout: float | Literal[Unset.UNSET] | None) -> Limits:
    """``limits`` with its ``timeout`` replaced, unless ``timeout`` was not given."""
    if timeout is Unset.UNSET:
        return limits
    return attrs.evolve(limits, timeout=timeout)


def data_dir(pm: pluggy.PluginManager, given: str | os.PathLike[str] | None) -> Path:
    """``given``, or ``<user data dir of the app>/plugin-data``."""
    if given is not None:
        return Path(given)
    import platformdirs  # imported on first use: a host given its data_dir never pays it

    return Path(platformdirs.user_data_dir(pm.project_name)) / "plugin-data"


@final
class DataDir:
    """A host's data directory (:func:`data_dir`), found when first asked for: only a
    plugin granted its data directory, or ``kv``, needs it, and finding the default
    imports platformdirs (about 11 ms of a new process)."""

    def __init__(self, pm: pluggy.PluginManager, given: str | os.PathLike[str] | None):
        self._path = None if given is None else Path(given)
        self._pm = pm

    def __call__(self) -> Path:
        if self._path is None:
            self._path = data_dir(self._pm, None)
        return self._path


def _read_only(value: Mapping[str, Capabilities] | None) -> Mapping[str, Capabilities]:
    return types.MappingProxyType(dict(value or {}))


def _grants(
    value: Mapping[str, Capabilities] | str | os.PathLike[str] | None,
) -> Mapping[str, Capabilities]:
    return types.MappingProxyType(load_grants(value))


def _signatures(value: Signatures | str | os.PathLike[str] | None) -> Signatures:
    """A :class:`Signatures`, or those of a grants file (its path)."""
    if value is None:
        return Signatures()
    return value if isinstance(value, Signatures) else Signatures.from_grants_file(value)


def _on_denied(_: object, __: attrs.Attribute[str], value: str) -> None:
    if value not in ("refuse", "drop"):
        raise ValueError("on_denied must be 'refuse' or 'drop'")


@final
@attrs.frozen
class SandboxPolicy:
    """What plugins may be granted: ``PluginHost(pm, policy=SandboxPolicy(...))``.

    A plugin gets what it requests, but only as far as ``ceiling`` (the host's maximum,
    narrowed per hook by ``hook_ceilings``) and ``grants`` (the operator's: plugin name ->
    :class:`Capabilities`, or the path of a grants TOML file, read at construction)
    allow. ``on_denied="refuse"`` refuses a plugin asking for more with
    :class:`CapabilityDenied`; ``"drop"`` loads it without the refused rights.
    ``signatures`` is the :class:`Signatures` policy of discovered plugins (or a grants
    file's path to read it from); given ``grants`` as a file path and no ``signatures``,
    the keywords of :class:`PluginHost` read both from that file.
    """

    ceiling: Capabilities = attrs.field(factory=Capabilities.everything)
    hook_ceilings: Mapping[str, Capabilities] = attrs.field(factory=dict, converter=_read_only)
    grants: Mapping[str, Capabilities] = attrs.field(factory=dict, converter=_grants)
    on_denied: OnDenied = attrs.field(default="refuse", validator=_on_denied)
    signatures: Signatures = attrs.field(factory=Signatures, converter=_signatures)


def _failure_policies(value: Mapping[str, FailurePolicy] | None) -> Mapping[str, FailurePolicy]:
    for hook, policy in (value or {}).items():
        if policy not in POLICIES:
            raise ValueError(f"hook {hook!r}: failure policy must be one of {POLICIES}")
    return types.MappingProxyType(dict(value or {}))


@final
@attrs.frozen
class Reliability:
    """How the host copes with failing plugins: ``PluginHost(pm, reliability=...)``.

    ``restart`` is the :class:`RestartPolicy` of every plugin (restarts, backoff, the
    circuit breaker); ``failure_policies`` maps hook names to ``raise``, ``skip`` or
    ``collect``.
    """

    restart: RestartPolicy = attrs.field(factory=RestartPolicy)
    failure_policies: Mapping[str, FailurePolicy] = attrs.field(
        factory=dict, converter=_failure_policies
    )


def _refuse_both(group: str, cls: type, passed: Mapping[str, object]) -> None:
    given = {k: v for k, v in passed.items() if v is not None}
    if given:
        names = ", ".join(f"{k}=" for k in given)
        raise TypeError(
            f"PluginHost() got {group}= and also {names}: give these settings one way, "
            f"inside {cls.__name__}(...) or as keywords, not both"
        )


def sandbox_policy(
    policy: SandboxPolicy | None,
    *,
    ceiling: Capabilities | None,
    hook_ceilings: Mapping[str, Capabilities] | None,
    grants: Mapping[str, Capabilities] | str | os.PathLike[str] | None,
    on_denied: OnDenied | None,
    signatures: Signatures | str | os.PathLike[str] | None = None,
) -> SandboxPolicy:
    """``policy``, or the one the keywords describe (a keyword given as ``None`` is not
    given); ``TypeError`` when both are given. A grants file given as ``grants`` also
    supplies the signature settings, unless ``signatures`` is given."""
    if policy is not None:
        passed = {"ceiling": ceiling, "hook_ceilings": hook_ceilings, "grants": grants}
        _refuse_both(
            "policy", SandboxPolicy, {**passed, "on_denied": on_denied, "signatures": signatures}
        )
        return policy
    if signatures is None and isinstance(grants, str | os.PathLike):
        signatures = grants
    return SandboxPolicy(
        signatures=signatures,
        ceiling=Capabilities.everything() if ceiling is None else ceiling,
        hook_ceilings=hook_ceilings,
        grants=grants,
        on_denied="refuse" if on_denied is None else on_denied,
    )


def reliability(
    given: Reliability | None,
    *,
    restart: RestartPolicy | None,
    failure_policies: Mapping[str, FailurePolicy] | None,
) -> Reliability:
    """``given``, or the one the keywords describe; ``TypeError`` when both are given."""
    if given is not None:
        passed = {"restart": restart, "failure_policies": failure_policies}
        _refuse_both("reliability", Reliability, passed)
        return given
    return Reliability(restart=restart or RestartPolicy(), failure_policies=failure_policies)
