"""PluginHost: WebAssembly components registered as ordinary pluggy plugins.

The host is a facade; each job lives in its own module:

* :mod:`.settings`: ``SandboxPolicy`` and ``Reliability``, the constructor's value objects;
* :mod:`.rights`: ceilings and grants, the rights decision of each load;
* :mod:`.registry`: host functions, their linker and the ``kv`` store;
* :mod:`.loaded`: the table of loaded plugins, and the host's lock;
* :mod:`.bridge`: the contract, matching exports to hooks, the hookimpls pluggy calls;
* :mod:`.pipeline`: staging a plugin (compile, match, grant, sandbox, instantiate, init);
* :mod:`.upgrades`: blue-green reload, rollback, upgrades held for approval;
* :mod:`.circuits` and :mod:`.supervision`: restarts, circuit breaking, health;
* :mod:`.hookexec`: failure policies, the one patch of pluggy's hook execution;
* :mod:`.loading` and :mod:`.watch`: discovered plugins, reloading changed files;
* :mod:`.composition`: links between plugins (one's export serving another's import);
* :mod:`.messaging`: topics, mailboxes, dead letters and counters.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import pluggy

from .. import _attrs as attrs
from ..contract.mapping import Contract, HookOptions
from ..contract.versions import ContractVersion
from ..policy.audit import AuditLog
from ..policy.capabilities import Capabilities, Limits
from . import settings
from .assembly import AsyncFront, assemble
from .hookexec import FailurePolicies
from .interfaces import HostFunction, KVStore
from .isolation_modes import Isolation
from .links import MissingProvider
from .pipeline import LoadOptions, origin_of
from .plugin import WasmPlugin
from .provenance import check_load
from .settings import OnDenied, Reliability, SandboxPolicy, Signatures, Unset
from .supervision import FailurePolicy, RestartPolicy, SupervisorStatus

if TYPE_CHECKING:
    from ..discovery.lockfile import Lockfile
    from ..discovery.sources import Discovery, PluginSource
    from .aio import AsyncHooks
    from .composition import LinkInfo
    from .loading import LoadReport
    from .messaging import Messaging, MessagingPolicy, Subscription
    from .scaleout import BatchResult, BatchRun
    from .watch import Watcher

__all__ = [
    "HookOptions",
    "PluginHost",
    "Reliability",
    "SandboxPolicy",
    "WasmPlugin",
]

_UNSET: Literal[Unset.UNSET] = Unset.UNSET


def _load_source(
    source: str | os.PathLike[str] | bytes | bytearray | memoryview,
) -> str | os.PathLike[str] | bytes:
    """What ``load`` was given, its bytes as ``bytes`` (a copy: the caller may change a
    bytearray meanwhile); a TypeError saying what ``load`` takes for anything else."""
    if isinstance(source, bytearray | memoryview):
        return bytes(source)
    if not isinstance(source, bytes | str | os.PathLike):
        raise TypeError(
            "load() takes a component's path or bytes, or a plugin's directory or "
            f"plugin.toml; got {type(source).__name__}"
        )
    return source


def _is_plugin_path(source: str | os.PathLike[str]) -> bool:
    """Whether ``load(source)`` names a plugin directory or a manifest, not a component."""
    text = os.fspath(source)
    return text.endswith(".toml") or os.path.isdir(text)


class PluginHost:
    """Loads WebAssembly components into a pluggy ``PluginManager``.

    The contract is the manager's hookspecs: ``pm.hook.transform(text=...)`` then calls
    Python plugins and components alike::

        pm = pluggy.PluginManager("textpipe")
        pm.add_hookspecs(TextHooks)
        host = PluginHost(pm, package="textpipe:hooks@1.0.0")
        host.load("plugins/shout.wasm")
        pm.hook.transform(text="hi")

    ``package`` is the WIT package id of the generated interfaces (default
    ``<project>:hooks@1.0.0``); ``bindings`` binds hooks to existing WIT functions
    (see :func:`wit_binding`). ``versions`` are older :class:`ContractVersion` s the host
    still accepts beside the current contract (each component is checked against the one
    it targets; ``plugin.contract_version`` says which).

    Sandbox: ``policy`` is the :class:`SandboxPolicy` (ceiling, per-hook ceilings, the
    operator's grants, what to do with denied requests), or give its fields as the
    keywords ``ceiling``, ``hook_ceilings``, ``grants``, ``on_denied``, ``signatures`` (the
    :class:`Signatures` policy ``load_plugins`` checks before compiling; a grants file given
    as ``grants`` supplies it unless ``signatures`` is given). ``limits`` are the
    default :class:`Limits` (``timeout`` overrides its timeout). Every grant, denial and
    limit hit goes to ``audit``.

    Reliability: ``reliability`` is the :class:`Reliability` (the :class:`RestartPolicy`
    and per-hook failure policies), or give them as ``restart`` and ``failure_policies``.
    Giving a value object and one of its keywords is a ``TypeError``.

    Plugins together: ``missing_provider`` says what loading a plugin that links to a
    provider not loaded yet does, ``"wait"`` (load it; calls into the link fail until the
    provider loads) or ``"fail"``; ``messaging`` is the :class:`MessagingPolicy` of the
    mailboxes (:meth:`publish`, :meth:`subscribe`, :meth:`request`).

    Progress: ``on_progress`` is called with a :class:`LoadProgress` at each stage of a
    load (reading, compiling, the first time only, instantiating, done), so an app can
    show what a slow first load is doing without configuring logging."""

    def __init__(
        self,
        pm: pluggy.PluginManager,
        *,
        package: str | None = None,
        bindings: Mapping[str, str] | None = None,
        timeout: float | Literal[Unset.UNSET] | None = _UNSET,
        limits: Limits | None = None,
        ceiling: Capabilities | None = None,
        hook_ceilings: Mapping[str, Capabilities] | None = None,
        grants: Mapping[str, Capabilities] | str | os.PathLike[str] | None = None,
        on_denied: OnDenied | None = None,
        data_dir: str | os.PathLike[str] | None = None,
        audit: AuditLog | None = None,
        restart: RestartPolicy | None = None,
        failure_policies: Mapping[str, FailurePolicy] | None = None,
        compile_cache: bool = True,
        policy: SandboxPolicy | None = None,
        reliability: Reliability | None = None,
        missing_provider: MissingProvider = "wait",
        messaging: MessagingPolicy | None = None,
        signatures: Signatures | str | os.PathLike[str] | None = None,
        versions: Sequence[ContractVersion] = (),
        on_progress: Callable[[settings.LoadProgress], object] | None = None,
    ):
        sandbox = settings.sandbox_policy(
            policy, ceiling=ceiling, hook_ceilings=hook_ceilings, grants=grants,
            on_denied=on_denied, signatures=signatures,
        )  # fmt: skip
        self.signatures = sandbox.signatures  # checked by load_plugins before compiling
        coping = settings.reliability(
            reliability, restart=restart, failure_policies=failure_policies
        )
        self.pm = pm
        self.audit = audit if audit is not None else AuditLog()
        base = settings.with_timeout(limits or Limits(), timeout)
        data = settings.DataDir(pm, data_dir)
        parts = assemble(
            pm, sandbox, coping, limits=base, data_dir=data, audit=self.audit,
            package=package, bindings=bindings or {}, versions=versions,
            missing_provider=missing_provider, messaging=messaging,
            compile_cache=compile_cache, on_progress=on_progress,
            signatures=lambda: self.signatures,
        )  # fmt: skip
        self._plugins, self._rights, self._bridge = parts.plugins, parts.rights, parts.bridge
        self._functions, self._circuits, self._links = parts.functions, parts.circuits, parts.links
        self._pipeline, self._upgrades, self._mail = parts.pipeline, parts.upgrades, parts.messaging
        # Shared, changed in place: per-hook ceilings, the operator's grants, upgrades held
        # for approval (name -> (source, requests)), open circuits (`airssys-plugins list`).
        self.hook_ceilings = self._rights.hook_ceilings
        self.grants = self._rights.grants
        self.pending_upgrades = parts.pending_upgrades
        self.circuits = self._circuits.file
        # Last: nothing above may fail once pluggy's hook execution is wrapped.
        self._failures = FailurePolicies(pm, coping.failure_policies)
        self._async = AsyncFront(pm)  # refuses async def hookimpls in pm.hook calls

    # -- settings, as given to the constructor ---------------------------------------------

    @property
    def limits(self) -> Limits:
        """The default :class:`Limits` of every plugin."""
        return self._pipeline.limits

    @property
    def timeout(self) -> float | None:
        """Default per-call deadline in seconds (``limits.timeout``)."""
        return self.limits.timeout

    @property
    def data_dir(self) -> Path:
        """Where plugin data lives (``<data_dir>/<name>``, ``kv.sqlite3``)."""
        return self._pipeline.data_dir

    @property
    def compile_cache(self) -> bool:
        """Whether compiled components are kept in the AOT cache."""
        return self._pipeline.compile_cache

    @property
    def ceiling(self) -> Capabilities:
        """The most any plugin may get (``policy.ceiling``)."""
        return self._rights.ceiling

    @property
    def on_denied(self) -> OnDenied:
        """``refuse`` or ``drop`` requests beyond the ceiling and grants."""
        return self._rights.on_denied

    @property
    def restart_policy(self) -> RestartPolicy:
        """The :class:`RestartPolicy` of every plugin."""
        return self._circuits.restart

    @property
    def policy(self) -> SandboxPolicy:
        """The :class:`SandboxPolicy` in force (grants added since included)."""
        return attrs.evolve(self._rights.policy, signatures=self.signatures)

    @property
    def reliability(self) -> Reliability:
        """The :class:`Reliability` in force (failure policies set since included)."""
        return Reliability(self._circuits.restart, self._failures.policies)

    @property
    def contract(self) -> Contract:
        """The host's contract, rebuilt if hookspecs were added since."""
        return self._bridge.contract

    @property
    def messaging(self) -> Messaging:
        """Topics, mailboxes, dead letters and counters (see :mod:`.messaging`)."""
        return self._mail()

    @property
    def plugins(self) -> Mapping[str, WasmPlugin]:
        """The loaded components by name."""
        return self._plugins.snapshot()

    @property
    def _kv(self) -> KVStore | None:
        return self._functions.kv_store

    def __iter__(self) -> Iterator[WasmPlugin]:
        return iter(self._plugins)

    def __enter__(self) -> PluginHost:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def ahook(self) -> AsyncHooks:
        """``await host.ahook.<name>(**kwargs)``: what ``pm.hook.<name>`` returns, without
        blocking the event loop; cancelling the task stops the guest (see :mod:`.aio`)."""
        return self._async()

    # -- host functions --------------------------------------------------------------------

    def provide(
        self,
        func: Callable[..., Any] | None = None,
        *,
        interface: str | None = None,
        name: str | None = None,
    ) -> Any:
        """Expose a Python function to components as a host interface (a decorator).

        The WIT comes from the annotations, as for hookspecs. By default the function is
        ``<package ns>:<package name>/<function>@<version>#<function>`` of the host's own
        package; plugins must be granted the interface (by its short name) to import it.
        The function runs under each plugin's ``host_call_timeout``; inside it,
        :func:`current_plugin` says which plugin called. Call before loading plugins."""
        return self._functions.provide(func, interface=interface, name=name)

    @property
    def host_functions(self) -> list[HostFunction]:
        """Every host function components may import (built-in and provided)."""
        return self._functions.functions

    def host_wit(self) -> dict[str, str]:
        """WIT of the host interfaces components may import, one document per package
        (put each in ``wit/deps/<name>/`` of a guest to import from it)."""
        return self._functions.wit()

    # -- loading and unloading -------------------------------------------------------------

    def load(
        self,
        source: str | os.PathLike[str] | bytes | bytearray | memoryview,
        *,
        name: str | None = None,
        hooks: Mapping[str, HookOptions] | None = None,
        timeout: float | Literal[Unset.UNSET] | None = _UNSET,
        requests: Capabilities | None = None,
        limits: Limits | None = None,
        config: Mapping[str, str] | None = None,
        pool_size: int = 1,
        path: str | os.PathLike[str] | None = None,
        isolation: Isolation = "shared",
    ) -> WasmPlugin:
        """Load a component (a ``.wasm`` path, or its bytes in any bytes-like object) or a plugin
        (its directory or ``plugin.toml``) and register it. Its exports are checked against the
        contract first (every mismatch at once, in a :class:`ContractMismatchError`). ``hooks``
        gives per-hook options; ``requests`` the capabilities asked for (within the host's
        ceiling and the operator's grants); ``limits`` its limits (default: the host's;
        ``timeout`` overrides the timeout); ``config`` the values of its ``config``
        interface and ``init`` export; ``pool_size`` how many calls may run at once;
        ``isolation="per-call"`` a fresh instance for every call, prepared off the call
        path (default ``"shared"``: instances kept across calls; see :mod:`.isolation`);
        ``path`` the file ``source`` bytes came from (for listings, :meth:`reload` and
        :meth:`watch`). A directory or ``plugin.toml`` is read as :meth:`load_plugins`
        reads it (the manifest's values; the arguments given here win)."""
        source = _load_source(source)
        if not isinstance(source, bytes) and _is_plugin_path(source):
            from .loading import Overrides, load_path  # imported on first use, as below

            given = Overrides(hooks, requests, limits, config, timeout, pool_size, isolation)
            return load_path(self, source, name=name, overrides=given)
        name, origin, file = _verified(self, source, name, path, limits or self.limits)
        options = LoadOptions.of(hooks, timeout, requests, limits, config, pool_size, isolation)
        plugin = self._plugins.add(
            name, lambda: self._pipeline.stage(name, origin, options, path=file)
        )
        self._mail.attach(plugin)
        self._failures.resume()
        return plugin

    def unload(self, name: str) -> None:
        """Unregister the plugin from pluggy and free its instance (plugins linking to
        it wait for it; its mailbox closes, dead-lettering what waits in it)."""
        self._mail.detach(name)
        self._plugins.remove(name)
        self._links.forget(name)
        self._circuits.forget(name)

    def close(self) -> None:
        """Unload every component (close Stores before the interpreter exits), close the
        ``kv`` store and give the PluginManager pluggy's own hook execution back."""
        for plugin in self._plugins:
            self.unload(plugin.name)
        self._mail.close()
        self._functions.close()
        self._async.close()
        self._failures.uninstall()

    def load_plugins(
        self,
        sources: Discovery | Iterable[PluginSource | str | os.PathLike[str]],
        *,
        strict: bool = False,
        lockfile: Lockfile | str | os.PathLike[str] | None = None,
        isolation: Isolation = "shared",
    ) -> LoadReport:
        """Load many plugins: a :func:`discover_plugins` result, or sources and paths.

        Each plugin's manifest supplies its hook options, capability requests, limits and
        config; ``isolation`` applies to all (see :meth:`load`). Disabled plugins are
        skipped. With ``lockfile``, a component whose sha256 differs from the pinned one is
        refused with :class:`IntegrityError` before it is compiled. A broken plugin (bad
        manifest, corrupt file, contract mismatch, refused digest, or any other error while
        loading it, then a :class:`PluginLoadError`) is reported in the returned
        :class:`LoadReport` and the others still load; with ``strict=True`` the first
        failure is raised instead, the plugins this call loaded are unloaded again, and
        plugins missing from the lockfile are refused."""
        from .loading import load_sources  # imported on first use: most hosts never discover

        return load_sources(self, sources, strict=strict, lockfile=lockfile, isolation=isolation)

    # -- supervision -----------------------------------------------------------------------

    def unblock(self, name: str) -> None:
        """Close a plugin's open circuit: register it again with fresh instances."""
        self._circuits.unblock(name)

    def status(self, name: str) -> SupervisorStatus:
        """Supervision state of one plugin (running, backoff, open)."""
        return self._circuits.status(name)

    def statuses(self) -> dict[str, SupervisorStatus]:
        """Supervision state of every loaded component."""
        return self._circuits.statuses()

    def health(self, name: str) -> bool:
        """Call the plugin's ``health`` export (True when it has none or it answers ok)."""
        return self._circuits.health(name)

    def set_failure_policy(self, hook: str, policy: FailurePolicy) -> None:
        """Per-hook failure policy: ``raise`` (default), ``skip`` or ``collect``."""
        self._failures.set(hook, policy)

    def call(self, hook: str, *, policy: FailurePolicy, **kwargs: Any) -> Any:
        """Call ``pm.hook.<hook>(**kwargs)`` under a failure policy for this call only."""
        return self._failures.call(hook, policy, kwargs)

    # -- batches ---------------------------------------------------------------------------

    def map(self, hook: str, items: Iterable[Mapping[str, Any]], **options: Any) -> BatchResult:
        """Call ``pm.hook.<hook>(**item)`` for every item in worker processes (a local pool,
        or a Dask cluster given as ``client``); a :class:`BatchResult` in input order. Each
        item is one full hook call on a worker rebuilt from this host. Options (``client``,
        ``processes``, ``pool``, ``policy``, ``max_retries``, ``chunksize``, ``progress``)
        are described in the batch how-to; what cannot travel raises :class:`NotShippable`."""
        from .scaleout import map_items  # imported on first use: most hosts never batch

        return map_items(self, hook, items, **options)

    def imap(self, hook: str, items: Iterable[Mapping[str, Any]], **options: Any) -> BatchRun:
        """As :meth:`map`, but yield ``(index, result)`` as items finish (a
        :class:`BatchRun`, whose ``report`` fills in as it goes)."""
        from .scaleout import imap

        return imap(self, hook, items, **options)

    # -- plugins together ------------------------------------------------------------------

    def links(self) -> list[LinkInfo]:
        """Every link between loaded plugins (importer, provider, interface, state)."""
        return self._links.infos()

    def publish(self, topic: str, payload: bytes) -> int:
        """Queue ``payload`` for every subscriber of ``topic`` (plugins and Python);
        returns how many mailboxes took it. See :class:`Messaging`."""
        return self.messaging.publish(topic, payload)

    def subscribe(
        self, pattern: str, handler: Callable[[str, bytes], bytes | None]
    ) -> Subscription:
        """Call ``handler(topic, payload)`` for each message matching ``pattern``, on a
        mailbox thread of its own; a ``bytes`` return answers a :meth:`request`."""
        return self.messaging.subscribe(pattern, handler)

    def request(self, topic: str, payload: bytes, *, timeout: float = 1.0) -> bytes:
        """The first reply of ``topic``'s subscribers to ``payload`` (:class:`NoReply`
        when none comes within ``timeout`` seconds)."""
        return self.messaging.request(topic, payload, timeout=timeout)

    # -- upgrades --------------------------------------------------------------------------

    def reload(
        self,
        name: str,
        source: str | os.PathLike[str] | bytes | None = None,
        *,
        requests: Capabilities | None = None,
        approve: bool = False,
        hooks: Mapping[str, HookOptions] | Literal[Unset.UNSET] | None = _UNSET,
        timeout: float | Literal[Unset.UNSET] | None = _UNSET,
        limits: Limits | Literal[Unset.UNSET] | None = _UNSET,
        config: Mapping[str, str] | Literal[Unset.UNSET] | None = _UNSET,
        pool_size: int | Literal[Unset.UNSET] = _UNSET,
    ) -> WasmPlugin:
        """Replace a loaded plugin with a new version without downtime (blue-green).

        The new version is compiled, checked, granted, instantiated and ``init``-ed first;
        only then does it replace the old one in the PluginManager (historic calls are
        replayed into it). Calls in flight finish on the old instance. If any step fails
        the old version keeps serving and :class:`ReloadError` says why. A new version
        asking for more rights than the old one had is held until ``approve=True``
        (:class:`UpgradeHeld`). Options are as for :meth:`load`; those not given carry
        over from the old version (``timeout`` not given: the one in the limits)."""
        new = self._upgrades().reload(
            name, source, requests=requests, approve=approve,
            hooks=hooks, timeout=timeout, limits=limits, config=config, pool_size=pool_size,
        )  # fmt: skip
        self._mail.attach(new)  # its mailbox, and the messages in it, carry over
        return new

    def approve_upgrade(self, name: str) -> WasmPlugin:
        """Apply an upgrade held for asking more rights (the operator approves)."""
        return self._upgrades().approve(name)

    def watch(self, *, interval: float = 1.0) -> Watcher:
        """Reload plugins whose files change (polling every ``interval`` s); returns the
        watcher (``.stop()`` it). Failed reloads are logged and the old version stays."""
        from .watch import Watcher  # imported on first use, as reloads are

        watcher = Watcher(self, interval)
        watcher.start()
        return watcher


def _verified(
    host: PluginHost,
    source: str | os.PathLike[str] | bytes,
    name: str | None,
    path: str | os.PathLike[str] | None,
    limits: Limits,
) -> tuple[str, Path | bytes, Path | None]:
    """The name, origin and file of what ``host.load(source)`` compiles, its signature
    checked under the host's policy before anything compiles."""
    name, origin = origin_of(source, name)
    origin, file = check_load(
        name,
        origin,
        None if path is None else Path(path),
        signatures=host.signatures,
        audit=host.audit,
        max_bytes=limits.max_component_bytes,
    )
    return name, origin, file
