"""How a host's collaborators are made and wired together, in one place.

:class:`~.plugin_host.PluginHost` is the facade; this module builds what it delegates
to, so the constructor reads as settings in, collaborators out.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, final

import pluggy

from .. import _attrs as attrs
from ..contract.versions import ContractVersion
from ..policy.audit import AuditLog
from ..policy.capabilities import Capabilities, Limits
from .asyncimpls import watch
from .bridge import HookBridge
from .bus import MessagingFront
from .circuits import Circuits
from .firstuse import FirstUse
from .links import Links, MissingProvider
from .loaded import LoadedPlugins
from .pipeline import LoadPipeline
from .registry import HostFunctionRegistry
from .rights import Rights
from .settings import LoadProgress, Reliability, SandboxPolicy, Signatures

if TYPE_CHECKING:
    from .aio import AsyncHooks
    from .messaging import Messaging, MessagingPolicy
    from .upgrades import Upgrades

__all__ = ["AsyncFront", "Parts", "assemble"]


@final
class AsyncFront(FirstUse["AsyncHooks"]):
    """A host's ``ahook``. Its hooks turn ``async def`` implementations into awaiting ones
    from the host's start (:func:`.asyncimpls.watch`); the awaitable callers, and
    :mod:`.aio` with them, are made when first asked for (``front()``, see
    :class:`.firstuse.FirstUse`)."""

    __slots__ = ()

    def __init__(self, pm: pluggy.PluginManager):
        super().__init__(functools.partial(_async_hooks, pm))
        watch(pm)


def _async_hooks(pm: pluggy.PluginManager) -> AsyncHooks:
    from .aio import AsyncHooks

    return AsyncHooks(pm)


@attrs.frozen
class Parts:
    """The collaborators of one host."""

    plugins: LoadedPlugins
    rights: Rights
    bridge: HookBridge
    functions: HostFunctionRegistry
    circuits: Circuits
    links: Links
    #: The host's :class:`~.messaging.Messaging`, made (its module imported) when first
    #: needed: a host whose plugins neither subscribe nor publish pays for neither.
    messaging: MessagingFront
    pipeline: LoadPipeline
    #: The host's :class:`~.upgrades.Upgrades`, made (its module imported) when a plugin is
    #: first reloaded: a host that never reloads pays for neither.
    upgrades: Callable[[], Upgrades]
    #: Upgrades held for approval: name -> (source, requests).
    pending_upgrades: dict[str, tuple[Path | bytes, Capabilities]]


def assemble(
    pm: pluggy.PluginManager,
    sandbox: SandboxPolicy,
    reliability: Reliability,
    *,
    limits: Limits,
    data_dir: Callable[[], Path],
    audit: AuditLog,
    package: str | None,
    bindings: Mapping[str, str],
    versions: Sequence[ContractVersion],
    missing_provider: MissingProvider,
    messaging: MessagingPolicy | None,
    compile_cache: bool,
    on_progress: Callable[[LoadProgress], object] | None,
    signatures: Callable[[], Signatures],
) -> Parts:
    """Build and wire the collaborators of a host on ``pm`` with these settings."""
    plugins = LoadedPlugins(pm, audit=audit)
    rights = Rights(sandbox, audit)
    bridge = HookBridge(pm, package=package, bindings=bindings, audit=audit, versions=versions)
    functions = HostFunctionRegistry(
        lambda: bridge.contract.package,
        kv_path=lambda: data_dir() / "kv.sqlite3",
        kv_timeout=limits.host_call_timeout,
    )
    circuits = Circuits(pm, plugins, restart=reliability.restart, audit=audit)
    links = Links(plugins, audit=audit, missing_provider=missing_provider)

    def made() -> Messaging:
        from .messaging import Messaging, MessagingPolicy

        return Messaging(plugins, policy=messaging or MessagingPolicy(), audit=audit)

    mail = MessagingFront(made)
    pipeline = LoadPipeline(
        bridge=bridge,
        functions=functions,
        rights=rights,
        audit=audit,
        supervisor=circuits.supervisor,
        limits=limits,
        data_dir=data_dir,
        compile_cache=compile_cache,
        links=links,
        messaging=mail,
    )
    pipeline.on_progress = on_progress
    pending: dict[str, tuple[Path | bytes, Capabilities]] = {}

    @functools.cache
    def upgrades() -> Upgrades:
        from .upgrades import Upgrades

        return Upgrades(
            pm, plugins, pipeline=pipeline, audit=audit, signatures=signatures, pending=pending
        )

    return Parts(
        plugins, rights, bridge, functions, circuits, links, mail, pipeline, upgrades, pending
    )
