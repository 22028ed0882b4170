"""The load pipeline: compile, match, grant, sandbox, instantiate and ``init`` a plugin."""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Callable, Hashable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar, cast, final

from .. import _attrs as attrs
from .._errors import ContractMismatchError, Mismatch
from ..contract import wit
from ..contract.mapping import HookOptions
from ..policy.audit import AuditLog
from ..policy.capabilities import Capabilities, Effective, Limits
from ..runtime import ComponentImage, PluginInstance, SandboxSpec
from .bridge import HookBridge, Match
from .bus import MessagingFront, check_subscriber
from .interfaces import (
    LIFECYCLE_INTERFACE,
    SUBSCRIBER_INTERFACE,
    PluginContext,
    lifecycle_signatures,
)
from .isolation_modes import SPARES, Isolation, check_isolation
from .memos import kept
from .plugin import WasmPlugin
from .provenance import checked_digest
from .registry import HostFunctionRegistry
from .rights import Rights
from .settings import LoadProgress, LoadStage, Unset, with_timeout
from .supervision import Supervisor

if TYPE_CHECKING:
    from .composition import Link
    from .links import Links

__all__ = ["LoadOptions", "LoadPipeline", "origin_of"]

Lifecycle = list[tuple[str | None, str, wit.FuncSig]]


@final
@attrs.frozen
class LoadOptions:
    """The options of :meth:`PluginHost.load` that shape a plugin (see there)."""

    hooks: Mapping[str, HookOptions] | None = None
    timeout: float | Literal[Unset.UNSET] | None = Unset.UNSET
    requests: Capabilities | None = None
    limits: Limits | None = None
    config: Mapping[str, str] | None = None
    pool_size: int = 1
    isolation: Isolation = "shared"

    @classmethod
    def of(
        cls,
        hooks: Mapping[str, HookOptions] | None,
        timeout: float | Literal[Unset.UNSET] | None,
        requests: Capabilities | None,
        limits: Limits | None,
        config: Mapping[str, str] | None,
        pool_size: int,
        isolation: Isolation,
    ) -> LoadOptions:
        """``LoadOptions(...)``; the options of a plain ``load(path)`` are one shared
        record (frozen: no load can change what another sees)."""
        if (
            hooks is None
            and timeout is Unset.UNSET
            and requests is None
            and limits is None
            and config is None
            and pool_size == 1
            and isolation == "shared"
        ):
            return _PLAIN_OPTIONS
        return cls(hooks, timeout, requests, limits, config, pool_size, isolation)


_PLAIN_OPTIONS = LoadOptions()  # shared by every plain load(path)


@final
class LoadPipeline:
    """Makes a ready :class:`WasmPlugin` from a component, not yet registered with pluggy
    (``load`` and ``reload`` register it)."""

    def __init__(
        self,
        *,
        bridge: HookBridge,
        functions: HostFunctionRegistry,
        rights: Rights,
        audit: AuditLog,
        supervisor: Callable[[str], Supervisor],
        limits: Limits,
        data_dir: Callable[[], Path],
        compile_cache: bool,
        links: Links | None = None,
        messaging: MessagingFront | None = None,
    ):
        self.bridge = bridge
        #: Links between plugins (see :mod:`.composition`); None: imports of other
        #: plugins' exports are refused as unknown.
        self.links = links
        #: Topics and mailboxes, handed to plugins granted the ``messaging`` interface.
        self.messaging = messaging
        self.functions = functions
        self.rights = rights
        self.audit = audit
        self.new_supervisor = supervisor
        #: The default limits of every plugin.
        self.limits = limits
        self._data_dir = data_dir
        self.compile_cache = compile_cache
        #: Told of each stage of a load (``PluginHost(on_progress=...)``); None: nobody.
        self.on_progress: Callable[[LoadProgress], object] | None = None
        # shared sandboxes (see _sandbox): (interfaces, limits) ids -> (them, the spec)
        self._sandboxes: dict[tuple[int, int], tuple[frozenset[str], Limits, SandboxSpec]] = {}

    def stage(
        self,
        name: str,
        origin: Path | bytes,
        options: LoadOptions,
        *,
        path: str | os.PathLike[str] | None = None,
    ) -> WasmPlugin:
        """Compile, check, grant, instantiate and ``init`` a plugin, not yet registered."""
        hooks, config = options.hooks, options.config
        if options.pool_size < 1:
            raise ValueError("pool_size must be at least 1")
        isolation = check_isolation(options.isolation, name)
        # per-call isolation: a spare beyond the pool, prepared while the others serve
        slots = options.pool_size + (SPARES if isolation == "per-call" else 0)
        plugin_limits = with_timeout(options.limits or self.limits, options.timeout)
        progress = self._progress(name)
        if self.on_progress is not None:
            given = f"{len(origin):,} bytes" if isinstance(origin, bytes) else str(origin)
            progress("reading", str(path) if path is not None else given)
        image = ComponentImage.load(
            name,
            origin,
            cache=self.compile_cache,
            path=None if path is None else Path(path),
            fuel=plugin_limits.fuel is not None,  # fuel metering only where it is asked for
            max_bytes=plugin_limits.max_component_bytes,
            compile_timeout=plugin_limits.compile_timeout,
            instances=plugin_limits.instances,
            progress=progress,
            sha256=checked_digest(name, origin),  # a signature's: refused if it changed since
        )
        matches = self._match(name, image, dict(hooks or {}))
        lifecycle = _lifecycle_exports(name, image)
        wanted = options.requests or Capabilities.nothing()
        effective = self.rights.decide(
            name,
            wanted,
            [m[0].name for m in matches],
            provided=self.functions.provided_interfaces(),
        )
        # the plugin's and its context's (both read it); most plugins share the empty one
        own_config = dict(config) if config else _NO_CONFIG
        context = PluginContext(
            name=name,
            config=own_config,
            network=effective.network,
            limits=plugin_limits,
            kv=self.functions.kv() if "kv" in effective.interfaces else None,
            audit=self.audit,
            messaging=self.messaging if "messaging" in effective.interfaces else None,
            publish=effective.publish,
        )
        check_subscriber(name, image, effective)
        links = self._links(name, image, effective)
        self.functions.check_imports(name, image)
        wasi = any(i.startswith("wasi:") for i in image.imports)
        sandbox = self._sandbox(name, effective, plugin_limits, links, wasi=wasi)
        linker = self.functions.linker([f for link in links for f in link.host_funcs()])
        progress("instantiating", f"{slots} instance(s)")
        instances = tuple(
            PluginInstance(image, sandbox=sandbox, linker=linker, context=context)
            for _ in range(slots)
        )
        plugin = WasmPlugin(name, image, instances, isolation=isolation)
        plugin.requested = wanted
        plugin.capabilities = effective
        plugin.limits = plugin_limits
        plugin.config = own_config
        plugin.hook_options = dict(hooks) if hooks else _NO_HOOK_OPTIONS
        plugin.contract_version = self.bridge.contract_versions.get(name)
        plugin.supervisor = self.new_supervisor(name)
        plugin._audit = self.audit
        try:
            self._start(plugin, lifecycle, matches)
        except BaseException:
            plugin.close(shutdown=False)
            raise
        if self.messaging is not None:
            self.messaging.prepare(plugin)
        if self.links is not None:
            self.links.prepare_provider(plugin)
            self.links.commit(name, links)
        progress("done", "")
        return plugin

    @property
    def data_dir(self) -> Path:
        """Where plugin data lives (found on first use, see :class:`.settings.DataDir`)."""
        return self._data_dir()

    def _progress(self, name: str) -> Callable[[str, str], None]:
        """``progress(stage, detail)`` for one load of ``name``: a :class:`LoadProgress`
        to ``on_progress``, its ``elapsed`` counted from now."""
        callback = self.on_progress
        if callback is None:
            return _unheard  # nobody listens: nothing to time or tell
        started = time.perf_counter()

        def progress(stage: str, detail: str) -> None:
            if callback is not None:
                elapsed = time.perf_counter() - started
                callback(LoadProgress(name, cast("LoadStage", stage), detail, elapsed))

        return progress

    def _match(
        self, name: str, image: ComponentImage, hooks: dict[str, HookOptions]
    ) -> list[Match]:
        """The hooks the component implements. A component implementing none is refused,
        unless it serves other plugins: a provider some link names, or a subscriber."""
        try:
            return self.bridge.match(name, image, hooks)
        except ContractMismatchError as exc:
            nothing = all(m.hook == "*" for m in exc.mismatches)
            serves = self.links is not None and self.links.provides_for(name, self.rights.grants)
            if nothing and (serves or image.find_export(SUBSCRIBER_INTERFACE, "on-message")):
                return []
            raise

    def _links(self, name: str, image: ComponentImage, rights: Capabilities) -> list[Link]:
        """The links plugin ``name`` imports through; refuses it as a provider that no
        longer serves a dependant."""
        if self.links is None:
            return []
        self.links.check_provider(name, image)
        return self.links.plan(name, image, rights, host_interfaces=self.functions.interfaces())

    def _start(self, plugin: WasmPlugin, lifecycle: Lifecycle, matches: list[Match]) -> None:
        """Bind lifecycle exports, instantiate (running ``init``) and attach hookimpls."""
        instances = plugin.instances
        if lifecycle:  # (a plugin without lifecycle exports keeps the shared empty dict)
            plugin.lifecycle = {}
        for iface, func, sig in lifecycle:
            # init is start-up too: bounded like the start functions, also without a timeout
            timeout = plugin.limits.startup_deadline if func == "init" else None
            plugin.lifecycle[func] = instances[0].bind(
                f"lifecycle.{func}", iface, func, sig, timeout=timeout
            )
        # a restarted instance runs init, gets the historic calls replayed and tells the
        # fresh slots; a plugin with none of these has nothing to do on a restart
        restarts = (
            plugin.lifecycle.get("init") is not None
            or plugin.fresh is not None
            or any(hook.historic for hook, _, _ in matches)
        )
        for instance in instances:
            if restarts:
                instance.on_new_instance = functools.partial(plugin._started, instance)
            instance.instantiate()
            if plugin.lifecycle.get("init") is not None:
                plugin._started(instance)  # the first start runs init too
        attached = []
        exports = []
        for hook_name, attr, make, export in self.bridge.hook_functions(plugin, matches):
            setattr(plugin, attr, make(plugin))
            attached.append(attr)
            exports.append((hook_name, export))
        plugin._impl_attrs = _shared(tuple(attached))
        plugin.hooks = _hook_table(tuple(exports))

    def _sandbox(
        self,
        name: str,
        rights: Capabilities,
        limits: Limits,
        links: Sequence[Link] = (),
        *,
        wasi: bool = True,
    ) -> SandboxSpec:
        """The plugin's sandbox. Without WASI (no stdio to log, nothing to preopen, no
        environment), links, directories or environment variables granted, nothing of it
        depends on the plugin's name or this moment: one (frozen) spec per granted
        interface set and limits object, shared by the plugins loaded with them."""
        if wasi or links or rights.filesystem or rights.env:
            return self._new_sandbox(name, rights, limits, links, wasi)
        # the one set equal to what the registry links now (so the key names its value)
        interfaces = _shared(self.functions.linked_interfaces(rights))
        key = (id(interfaces), id(limits))
        known = self._sandboxes.get(key)
        if known is not None and known[0] is interfaces and known[1] is limits:
            return known[2]
        spec = self._new_sandbox(name, rights, limits, links, wasi)
        if len(self._sandboxes) >= 256:  # e.g. a timeout= per load: a Limits object each
            self._sandboxes.clear()
        self._sandboxes[key] = (interfaces, limits, spec)
        return spec

    def _new_sandbox(
        self, name: str, rights: Capabilities, limits: Limits, links: Sequence[Link], wasi: bool
    ) -> SandboxSpec:
        # the plugin's data directory matters only to a filesystem grant ("data"); without
        # one there is nothing to preopen (most plugins: no Effective made, no env read)
        preopens: tuple[tuple[Path, str, bool], ...] = ()
        if rights.filesystem:
            preopens = tuple(Effective(rights, limits, self.data_dir / name).preopens())
        env = tuple((k, os.environ[k]) for k in sorted(rights.env) if k in os.environ)
        interfaces = self.functions.linked_interfaces(rights)
        if links:
            interfaces = interfaces | {wit.unversioned(link.interface) for link in links}
        return SandboxSpec(
            preopens=preopens,
            env=env,
            interfaces=_shared(interfaces),
            timeout=limits.timeout,
            startup_timeout=limits.startup_deadline,
            fuel=limits.fuel,
            memory=limits.memory,
            instances=limits.instances,
            tables=limits.tables,
            max_result_bytes=limits.max_result_bytes,
            stdio_logger=f"airssys_plugins.plugin.{name}" if wasi else None,
        )


#: The hook options of every plugin loaded with none (most): one empty dict, read only.
_NO_HOOK_OPTIONS: dict[str, HookOptions] = {}
#: The config of every plugin loaded without one (the plugin's and its context's): one
#: empty dict, read and never written, as the hook options above.
_NO_CONFIG: dict[str, str] = {}
#: Hook name -> export name tables by their items: plugins implementing the same hooks
#: with the same exports (every copy of a component) share one, read and never written.
_HOOK_TABLES: dict[tuple[tuple[str, str], ...], dict[str, str]] = {}


def _hook_table(items: tuple[tuple[str, str], ...]) -> dict[str, str]:
    """``dict(items)``, or the equal one made before for the same items."""
    return kept(_HOOK_TABLES, items, lambda: dict(items), 4096)


#: One of each distinct frozenset of granted interface names and tuple of hookimpl
#: attribute names lately made (most plugins share few).
_SHARED: dict[Hashable, Any] = {}

_Shared = TypeVar("_Shared", frozenset[str], tuple[str, ...])


def _shared(value: _Shared) -> _Shared:
    """``value``, or an equal one made before (the sandboxes and plugins of many loads
    then hold one, not one each)."""
    known: _Shared = kept(_SHARED, value, lambda: value, 4096)
    return known


def origin_of(source: str | os.PathLike[str] | bytes, name: str | None) -> tuple[str, Path | bytes]:
    """The plugin name and component origin ``load(source, name=...)`` means."""
    if isinstance(source, bytes):
        if name is None:
            raise ValueError("give a name= when loading a component from bytes")
        return name, source
    origin = source if isinstance(source, Path) else _path(source)  # a Path is not parsed again
    return name or origin.stem, origin


#: The Path of each file name loaded lately: loads of one file (a plugin loaded many
#: times, under other names) share one Path, as its images then do, not one each.
_PATHS: dict[str, Path] = {}


def _path(source: str | os.PathLike[str]) -> Path:
    if not isinstance(source, str):
        return Path(source)
    return kept(_PATHS, source, lambda: Path(source), 1024)


def _unheard(stage: str, detail: str) -> None:
    """The progress of a load nobody listens to."""


def _lifecycle_exports(name: str, image: ComponentImage) -> Lifecycle:
    """The ``lifecycle`` exports (init, health, shutdown) the component has, type-checked;
    worked out once per component (:attr:`ComponentImage.shared`: they depend on its
    exports alone), a component with a mismatch refused at every load."""
    known = image.shared.get("lifecycle exports")
    if known is None:
        known = image.shared["lifecycle exports"] = tuple(_read_lifecycle(name, image))
    return list(known)


def _read_lifecycle(name: str, image: ComponentImage) -> Lifecycle:
    found: Lifecycle = []
    problems = []
    for func in ("init", "health", "shutdown"):
        export = image.find_export(LIFECYCLE_INTERFACE, func)
        if export is None:
            continue
        expected = lifecycle_signatures()[func]  # (mapped only for a component with one)
        iface, sig = export
        if sig != expected:
            problems.append(
                Mismatch(
                    f"lifecycle.{func}",
                    expected.render(expanded=True),
                    sig.render(expanded=True),
                    f"{iface}#{func} has the wrong type",
                )
            )
        found.append((iface, func, expected))
    if problems:
        raise ContractMismatchError(name, problems)
    return found
