"""PluginHost: WebAssembly components registered as ordinary pluggy plugins."""

from __future__ import annotations

import contextlib
import functools
import keyword
import logging
import os
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal

import attrs
import platformdirs
import pluggy

from .._errors import (
    ContractMismatchError,
    HookCallError,
    Mismatch,
    PluginConflictError,
    PluginError,
    PluginLimitExceeded,
    PluginResultError,
    PluginTimeout,
    PluginTrap,
)
from ..contract import wit
from ..contract import wit as _wit
from ..contract.annotations import Err
from ..contract.mapping import Contract, HookContract, HookOptions, WitBinding
from ..policy.audit import AuditLog
from ..policy.capabilities import Capabilities, Effective, Limits
from ..policy.decisions import decide_for_hooks, load_grants, wider_rights
from ..runtime import (
    BoundFunc,
    ComponentImage,
    HostFunc,
    HostLinker,
    PluginInstance,
    SandboxSpec,
)
from .interfaces import (
    LIFECYCLE,
    LIFECYCLE_INTERFACE,
    HostFunction,
    KVStore,
    PluginContext,
    builtin_functions,
    calling_plugin,
    host_wit,
)
from .supervision import (
    POLICIES,
    CircuitFile,
    FailurePolicy,
    PluginUnavailable,
    RestartPolicy,
    Supervisor,
    SupervisorStatus,
    call_policy,
    install_policies,
)

if TYPE_CHECKING:
    from ..discovery.lockfile import Lockfile
    from ..discovery.sources import Discovery, PluginSource
    from .loading import LoadReport

from .plugin import WasmPlugin
from .watch import Watcher

__all__ = ["HookOptions", "PluginHost", "ReloadError", "UpgradeHeld", "WasmPlugin", "Watcher"]

log = logging.getLogger("airssys_plugins")

_UNSET: Final[Any] = object()


class ReloadError(PluginError, RuntimeError):
    """An upgrade failed; the old version keeps serving. The cause is ``__cause__``."""


class UpgradeHeld(PluginError, PermissionError):
    """An upgrade asks for more rights than the running version; approve it first."""

    def __init__(self, plugin: str, wider: list[str]):
        self.wider = tuple(wider)
        super().__init__(
            f"plugin {plugin!r}: the new version asks for more rights ({'; '.join(wider)}); "
            "the old version keeps serving until the operator approves "
            f"(host.approve_upgrade({plugin!r}))",
            plugin=plugin,
        )


def _trampoline_for(function: HostFunction) -> Callable[..., Any]:
    def impl(instance: PluginInstance, *args: Any) -> Any:
        context = instance.context
        assert isinstance(context, PluginContext)
        return function.invoke(context, list(args))

    return impl


def _signature_template(name: str, argnames: tuple[str, ...]) -> Callable[..., None]:
    """A no-op function whose parameters are ``argnames``, for pluggy's introspection."""
    for arg in (name, *argnames):
        if not arg.isidentifier() or keyword.iskeyword(arg):
            raise ValueError(f"{arg!r} is not a Python identifier")
    namespace: dict[str, Any] = {}
    exec(f"def {name}({', '.join(argnames)}): pass", namespace)  # identifiers checked above
    template: Callable[..., None] = namespace[name]
    return template


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
    (see :func:`wit_binding`).

    Sandbox: a plugin gets what it requests (``load(requests=...)`` or its manifest), but
    only as far as ``ceiling`` (the host's maximum, optionally narrowed per hook with
    ``hook_ceilings``) and ``grants`` (the operator's: a mapping plugin name ->
    :class:`Capabilities`, or the path of a grants TOML file) allow. With
    ``on_denied="refuse"`` (default) a plugin asking for more fails to load with
    :class:`CapabilityDenied`; with ``"drop"`` it loads without the refused rights.
    ``limits`` are the default :class:`Limits` (``timeout`` overrides its timeout).
    Every grant, denial and limit hit goes to ``audit``.

    Reliability: ``restart`` is the :class:`RestartPolicy` (backoff, circuit breaker);
    ``failure_policies`` maps hooks to ``raise``/``skip``/``collect``.
    """

    def __init__(
        self,
        pm: pluggy.PluginManager,
        *,
        package: str | None = None,
        bindings: Mapping[str, str] | None = None,
        timeout: float | object | None = _UNSET,
        limits: Limits | None = None,
        ceiling: Capabilities | None = None,
        hook_ceilings: Mapping[str, Capabilities] | None = None,
        grants: Mapping[str, Capabilities] | str | os.PathLike[str] | None = None,
        on_denied: Literal["refuse", "drop"] = "refuse",
        data_dir: str | os.PathLike[str] | None = None,
        audit: AuditLog | None = None,
        restart: RestartPolicy | None = None,
        failure_policies: Mapping[str, FailurePolicy] | None = None,
        compile_cache: bool = True,
    ):
        self.pm = pm
        base = limits or Limits()
        if timeout is not _UNSET:
            base = attrs.evolve(base, timeout=timeout)  # type: ignore[arg-type]
        self.limits = base
        self.compile_cache = compile_cache
        self.ceiling = Capabilities.everything() if ceiling is None else ceiling
        self.hook_ceilings = dict(hook_ceilings or {})
        self.grants = load_grants(grants)
        if on_denied not in ("refuse", "drop"):
            raise ValueError("on_denied must be 'refuse' or 'drop'")
        self.on_denied = on_denied
        self.audit = audit if audit is not None else AuditLog()
        self.data_dir = (
            Path(data_dir)
            if data_dir is not None
            else Path(platformdirs.user_data_dir(pm.project_name)) / "plugin-data"
        )
        self._package = package
        self._bindings = dict(bindings or {})
        self._contract = Contract.from_hookspecs(pm, package=package, bindings=self._bindings)
        self._plugins: dict[str, WasmPlugin] = {}
        self._lock = threading.RLock()
        self._mark = pluggy.HookimplMarker(pm.project_name)
        self._provided: list[HostFunction] = []
        self.restart_policy = restart if restart is not None else RestartPolicy()
        self._policies: dict[str, FailurePolicy] = dict(failure_policies or {})
        for hook, policy in self._policies.items():
            if policy not in POLICIES:
                raise ValueError(f"hook {hook!r}: failure policy must be one of {POLICIES}")
        # The policy wrapper around pluggy's hook execution is installed only once a
        # policy is in use: hosts that never use one keep pluggy's own call path.
        self._policies_installed = False
        if self._policies:
            self._install_policies()
        #: Open circuits, shared with `airssys-plugins list`.
        self.circuits = CircuitFile.for_app(pm.project_name)
        #: Upgrades held because they ask for more rights: name -> (source, requests).
        self.pending_upgrades: dict[str, tuple[Path | bytes, Capabilities]] = {}
        self._linker: HostLinker | None = None
        self._kv: KVStore | None = None

    @property
    def timeout(self) -> float | None:
        """Default per-call deadline in seconds (``limits.timeout``)."""
        return self.limits.timeout

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
        :func:`current_plugin` says which plugin called. Call before loading plugins.
        """

        def register(f: Callable[..., Any]) -> Callable[..., Any]:
            if self._linker is not None:
                raise RuntimeError("provide() host functions before loading the first plugin")
            fname = name or _wit.kebab(f.__name__)
            iface = interface or self.contract.package.interface(fname)
            self._provided.append(HostFunction.from_function(iface, f, name=fname))
            return f

        return register if func is None else register(func)

    @property
    def host_functions(self) -> list[HostFunction]:
        """Every host function components may import (built-in and provided)."""
        return [*builtin_functions(), *self._provided]

    def host_wit(self) -> dict[str, str]:
        """WIT of the host interfaces components may import, one document per package
        (put each in ``wit/deps/<name>/`` of a guest to import from it)."""
        return host_wit(self.host_functions)

    def _host_linker(self) -> HostLinker:
        if self._linker is None:
            self._linker = HostLinker(
                [
                    HostFunc(f.interface, f.name, f.signature, _trampoline_for(f))
                    for f in self.host_functions
                ]
            )
        return self._linker

    def _kv_store(self) -> KVStore:
        if self._kv is None:
            self._kv = KVStore(self.data_dir / "kv.sqlite3", timeout=self.limits.host_call_timeout)
        return self._kv

    @property
    def contract(self) -> Contract:
        """The host's contract, rebuilt if hookspecs were added since."""
        names = {n for n, c in vars(self.pm.hook).items() if getattr(c, "spec", None)}
        if names != set(self._contract.hooks):
            self._contract = Contract.from_hookspecs(
                self.pm, package=self._package, bindings=self._bindings
            )
        return self._contract

    @property
    def plugins(self) -> Mapping[str, WasmPlugin]:
        """The loaded components by name."""
        return dict(self._plugins)

    def __iter__(self) -> Iterator[WasmPlugin]:
        return iter(list(self._plugins.values()))

    def __enter__(self) -> PluginHost:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def load(
        self,
        source: str | os.PathLike[str] | bytes,
        *,
        name: str | None = None,
        hooks: Mapping[str, HookOptions] | None = None,
        timeout: float | object | None = _UNSET,
        requests: Capabilities | None = None,
        limits: Limits | None = None,
        config: Mapping[str, str] | None = None,
        pool_size: int = 1,
        path: str | os.PathLike[str] | None = None,
    ) -> WasmPlugin:
        """Load a component (a path to a ``.wasm`` file, or its bytes) and register it.

        Its exports are checked against the contract first: every mismatch is reported at
        once in a :class:`ContractMismatchError`. ``hooks`` gives per-hook options;
        ``requests`` the capabilities the plugin asks for (intersected with the host's
        ceiling and the operator's grants); ``limits`` its limits (default: the host's;
        ``timeout`` overrides the timeout); ``config`` the values of its ``config``
        interface (and of its ``init`` export); ``pool_size`` how many instances serve
        concurrent calls; ``path`` the file ``source`` bytes were read from (shown in
        listings, used by :meth:`reload` and :meth:`watch`).
        """
        if isinstance(source, bytes):
            if name is None:
                raise ValueError("give a name= when loading a component from bytes")
            origin: Path | bytes = source
        else:
            origin = Path(source)
            name = name or origin.stem
        with self._lock:
            if name in self._plugins or self.pm.get_plugin(name) is not None:
                raise PluginConflictError(
                    f"a plugin named {name!r} is already registered; unload it first or "
                    "load this one with another name=",
                    plugin=name,
                )
            plugin = self._stage(
                name,
                origin,
                path=None if path is None else Path(path),
                hooks=hooks,
                timeout=timeout,
                requests=requests,
                limits=limits,
                config=config,
                pool_size=pool_size,
            )
            try:
                self.pm.register(plugin, name=name)
            except BaseException:
                self._close_plugin(plugin)
                raise
            self._plugins[name] = plugin
            self.audit.record(
                "load",
                name,
                f"loaded with hooks {', '.join(sorted(plugin.hooks))}",
                sha256=plugin.sha256,
                rights=plugin.capabilities.describe(),
            )
            return plugin

    def _stage(
        self,
        name: str,
        origin: Path | bytes,
        *,
        hooks: Mapping[str, HookOptions] | None,
        timeout: float | object | None,
        requests: Capabilities | None,
        limits: Limits | None,
        config: Mapping[str, str] | None,
        pool_size: int,
        path: Path | None = None,
    ) -> WasmPlugin:
        """Compile, check, grant, instantiate and ``init`` a plugin, not yet registered."""
        if pool_size < 1:
            raise ValueError("pool_size must be at least 1")
        plugin_limits = limits or self.limits
        if timeout is not _UNSET:
            plugin_limits = attrs.evolve(plugin_limits, timeout=timeout)  # type: ignore[arg-type]
        image = ComponentImage.load(
            name,
            origin,
            cache=self.compile_cache,
            path=path,
            fuel=plugin_limits.fuel is not None,  # fuel metering only where it is asked for
        )
        matches = self._match(name, image, dict(hooks or {}))
        lifecycle = self._lifecycle_exports(name, image)
        wanted = requests or Capabilities()
        effective = self._decide(name, wanted, [m[0].name for m in matches])
        context = PluginContext(
            name=name,
            config=dict(config or {}),
            network=effective.network,
            limits=plugin_limits,
            kv=self._kv_store() if "kv" in effective.interfaces else None,
            audit=self.audit,
        )
        sandbox = self._sandbox(name, effective, plugin_limits)
        linker = self._host_linker()
        instances = [
            PluginInstance(image, sandbox=sandbox, linker=linker, context=context)
            for _ in range(pool_size)
        ]
        plugin = WasmPlugin(name, image, instances)
        plugin.requested = wanted
        plugin.capabilities = effective
        plugin.limits = plugin_limits
        plugin.config = dict(config or {})
        plugin.hook_options = dict(hooks or {})
        plugin.supervisor = Supervisor(name, self.restart_policy, self._open_circuit)
        try:
            for iface, func, sig in lifecycle:
                plugin.lifecycle[func] = instances[0].bind(f"lifecycle.{func}", iface, func, sig)
            for instance in instances:
                instance.on_new_instance = functools.partial(plugin._started, instance)
                instance.instantiate()
                if plugin.lifecycle.get("init") is not None:
                    plugin._started(instance)  # the first start runs init too
            for hook, (iface, func), opts in matches:
                bound = instances[0].bind(
                    hook.name, iface, func, hook.signature, timeout=opts.timeout
                )
                attr = (opts.specname and f"{opts.specname}__via__{hook.name}") or hook.name
                setattr(plugin, attr, self._impl(plugin, hook, bound, opts))
                plugin._impl_attrs.append(attr)
                plugin.hooks[hook.name] = f"{iface}#{func}" if iface else func
        except BaseException:
            self._close_plugin(plugin, shutdown=False)
            raise
        return plugin

    def _lifecycle_exports(
        self, name: str, image: ComponentImage
    ) -> list[tuple[str | None, str, _wit.FuncSig]]:
        found = []
        problems = []
        for func, expected in LIFECYCLE.items():
            export = image.find_export(LIFECYCLE_INTERFACE, func)
            if export is None:
                continue
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

    def _close_plugin(self, plugin: WasmPlugin, *, shutdown: bool = True) -> None:
        shutdown_func = plugin.lifecycle.get("shutdown") if shutdown else None
        for instance in plugin.instances:
            if shutdown_func is not None:
                try:
                    instance.call(shutdown_func, ())
                except PluginError as exc:
                    log.warning("plugin %r: shutdown failed: %s", plugin.name, exc)
            instance.close()
        # The hook functions close over the plugin: drop them so that it (and its compiled
        # component, memory-mapped) is freed now rather than at the next GC.
        for attr in plugin._impl_attrs:
            with contextlib.suppress(AttributeError):
                delattr(plugin, attr)
        plugin._impl_attrs.clear()

    def _decide(self, name: str, requests: Capabilities, hooks: list[str]) -> Capabilities:
        provided = {_wit.unversioned(f.interface).rsplit("/", 1)[1] for f in self.host_functions}
        return decide_for_hooks(
            name,
            requests,
            hooks,
            ceiling=self.ceiling,
            hook_ceilings=self.hook_ceilings,
            grant=self.grants.get(name, Capabilities()),
            strict=self.on_denied == "refuse",
            provided=provided,
            audit=self.audit,
        )

    def _sandbox(self, name: str, rights: Capabilities, limits: Limits) -> SandboxSpec:
        effective = Effective(rights, limits, self.data_dir / name)
        env = tuple((k, os.environ[k]) for k in sorted(rights.env) if k in os.environ)
        return SandboxSpec(
            preopens=tuple(effective.preopens()),
            env=env,
            interfaces=frozenset(
                _wit.unversioned(f.interface)
                for f in self.host_functions
                if _wit.unversioned(f.interface).rsplit("/", 1)[1] in rights.interfaces
            ),
            timeout=limits.timeout,
            fuel=limits.fuel,
            memory=limits.memory,
            instances=limits.instances,
            tables=limits.tables,
            max_result_bytes=limits.max_result_bytes,
            stdio_logger=f"airssys_plugins.plugin.{name}",
        )

    def unload(self, name: str) -> None:
        """Unregister the plugin from pluggy and free its instance."""
        with self._lock:
            if name not in self._plugins:
                raise KeyError(f"no component plugin named {name!r} is loaded")
            plugin = self._plugins.pop(name)
            if self.pm.get_plugin(name) is plugin:
                self.pm.unregister(plugin, name=name)
            self.pm.unblock(name)
            self._close_plugin(plugin)
            self.circuits.set(name, None)
            self.audit.record("unload", name, "unloaded")

    # -- supervision ------------------------------------------------------------------

    def _open_circuit(self, name: str, reason: str) -> None:
        plugin = self._plugins.get(name)
        if plugin is None:
            return
        self.pm.set_blocked(name)  # unregisters it; pluggy refuses it until unblocked
        self.audit.record("circuit", name, f"circuit opened: {reason}", reason=reason)
        self.circuits.set(name, reason)
        cooldown = self.restart_policy.cooldown
        if cooldown is not None:
            timer = threading.Timer(cooldown, self._cooldown_over, args=(name, plugin))
            timer.daemon = True
            timer.start()

    def _cooldown_over(self, name: str, plugin: WasmPlugin) -> None:
        with self._lock:
            if self._plugins.get(name) is plugin and self.pm.is_blocked(name):
                self.unblock(name)

    def unblock(self, name: str) -> None:
        """Close a plugin's open circuit: register it again with fresh instances."""
        with self._lock:
            plugin = self._plugins.get(name)
            if plugin is None:
                raise KeyError(f"no component plugin named {name!r} is loaded")
            if not self.pm.is_blocked(name):
                return
            self.pm.unblock(name)
            for instance in plugin.instances:
                instance.discard()
            with plugin._history_lock:
                plugin._history.clear()  # pluggy replays the historic calls on register
            assert plugin.supervisor is not None
            plugin.supervisor.reset()
            self.pm.register(plugin, name=name)
            self.audit.record("circuit", name, "circuit closed: plugin serving again")
            self.circuits.set(name, None)

    def status(self, name: str) -> SupervisorStatus:
        """Supervision state of one plugin (running, backoff, open)."""
        plugin = self._plugins.get(name)
        if plugin is None or plugin.supervisor is None:
            raise KeyError(f"no component plugin named {name!r} is loaded")
        return plugin.supervisor.status()

    def statuses(self) -> dict[str, SupervisorStatus]:
        """Supervision state of every loaded component."""
        return {name: self.status(name) for name in list(self._plugins)}

    def health(self, name: str) -> bool:
        """Call the plugin's ``health`` export (True when it has none or it answers ok)."""
        plugin = self._plugins[name]
        check = plugin.lifecycle.get("health")
        if check is None:
            return True
        return not isinstance(plugin.call(check, ()), Err)

    def _install_policies(self) -> None:
        if not self._policies_installed:
            install_policies(self.pm, self._policies)
            self._policies_installed = True

    def set_failure_policy(self, hook: str, policy: FailurePolicy) -> None:
        """Per-hook failure policy: ``raise`` (default), ``skip`` or ``collect``."""
        if policy not in POLICIES:
            raise ValueError(f"failure policy must be one of {POLICIES}, got {policy!r}")
        self._install_policies()
        if not hasattr(self.pm.hook, hook):
            raise ValueError(f"no hook named {hook!r}")
        self._policies[hook] = policy

    def call(self, hook: str, *, policy: FailurePolicy, **kwargs: Any) -> Any:
        """Call ``pm.hook.<hook>(**kwargs)`` under a failure policy for this call only."""
        self._install_policies()
        with call_policy(policy):
            return getattr(self.pm.hook, hook)(**kwargs)

    # -- upgrades ---------------------------------------------------------------------

    def reload(
        self,
        name: str,
        source: str | os.PathLike[str] | bytes | None = None,
        *,
        requests: Capabilities | None = None,
        approve: bool = False,
        **options: Any,
    ) -> WasmPlugin:
        """Replace a loaded plugin with a new version without downtime (blue-green).

        The new version is compiled, checked, granted, instantiated and ``init``-ed first;
        only then does it replace the old one in the PluginManager (historic calls are
        replayed into it). Calls in flight finish on the old instance. If any step fails
        the old version keeps serving and :class:`ReloadError` says why. A new version
        asking for more rights than the old one had is held until ``approve=True``
        (:class:`UpgradeHeld`). ``options`` are :meth:`load` options (hooks, limits...).
        """
        with self._lock:
            if name not in self._plugins:
                raise KeyError(f"no component plugin named {name!r} is loaded")
            old = self._plugins[name]
            origin: Path | bytes
            if source is None:
                if old.path is None:
                    raise ValueError(f"plugin {name!r} was loaded from bytes: give source=")
                origin = old.path
            else:
                origin = source if isinstance(source, bytes) else Path(source)
            wanted = old.requested if requests is None else requests
            wider = wider_rights(wanted, old.requested)
            if wider and not approve:
                self.pending_upgrades[name] = (origin, wanted)
                self.audit.record(
                    "refuse", name, f"upgrade held: asks for more rights ({'; '.join(wider)})"
                )
                raise UpgradeHeld(name, wider)
            options.setdefault("config", old.config)
            options.setdefault("limits", old.limits)
            options.setdefault("hooks", old.hook_options)
            try:
                new = self._stage(
                    name,
                    origin,
                    hooks=options.get("hooks"),
                    timeout=options.get("timeout", _UNSET),
                    requests=wanted,
                    limits=options.get("limits"),
                    config=options.get("config"),
                    pool_size=options.get("pool_size", len(old.instances)),
                )
            except PluginError as exc:
                self.audit.record("refuse", name, f"upgrade failed, old version kept: {exc}")
                raise ReloadError(
                    f"plugin {name!r}: the new version failed ({type(exc).__name__}); the old "
                    f"version keeps serving:\n{exc}",
                    plugin=name,
                ) from exc
            blocked = self.pm.is_blocked(name)
            if blocked:
                self.pm.unblock(name)
            elif self.pm.get_plugin(name) is old:
                self.pm.unregister(old, name=name)
            try:
                self.pm.register(new, name=name)  # replays historic calls into it
            except BaseException as exc:
                # Roll back. pluggy keeps a plugin registered even when a historic replay
                # into it fails; take it out, and put the old version back with fresh
                # instances (pluggy replays the history into them, as after a restart).
                if self.pm.get_plugin(name) is new:
                    self.pm.unregister(new, name=name)
                self._close_plugin(new)
                for instance in old.instances:
                    instance.discard()
                with old._history_lock:
                    old._history.clear()
                self.pm.register(old, name=name)
                self.audit.record("refuse", name, f"upgrade failed, old version kept: {exc}")
                raise ReloadError(
                    f"plugin {name!r}: the new version failed while historic hook calls were "
                    f"replayed into it; the old version keeps serving:\n{exc}",
                    plugin=name,
                ) from exc
            self._plugins[name] = new
            self.pending_upgrades.pop(name, None)
            self.audit.record(
                "load", name, f"upgraded {old.sha256[:12]} -> {new.sha256[:12]}", sha256=new.sha256
            )
        self._close_plugin(old)  # waits for calls in flight on the old instances
        return new

    def approve_upgrade(self, name: str) -> WasmPlugin:
        """Apply an upgrade held for asking more rights (the operator approves)."""
        origin, wanted = self.pending_upgrades[name]
        return self.reload(name, origin, requests=wanted, approve=True)

    def watch(self, *, interval: float = 1.0) -> Watcher:
        """Reload plugins whose files change (polling every ``interval`` s); returns the
        watcher (``.stop()`` it). Failed reloads are logged and the old version stays."""
        watcher = Watcher(self, interval)
        watcher.start()
        return watcher

    def close(self) -> None:
        """Unload every component (close Stores before the interpreter exits)."""
        for name in list(self._plugins):
            self.unload(name)
        if self._kv is not None:
            self._kv.close()
            self._kv = None

    # -- matching exports to hooks --------------------------------------------------------

    def _match(
        self, name: str, image: ComponentImage, options: dict[str, HookOptions]
    ) -> list[tuple[HookContract, tuple[str | None, str], HookOptions]]:
        contract = self.contract
        unknown_spec = [
            o.specname for o in options.values() if o.specname and o.specname not in contract.hooks
        ]
        problems: list[Mismatch] = []
        for spec in unknown_spec:
            problems.append(
                Mismatch(spec or "", "a hookspec", "(none)", f"specname {spec!r} is no hook")
            )
        matches: list[tuple[HookContract, tuple[str | None, str], HookOptions]] = []
        used: set[tuple[str | None, str]] = set()
        # Hooks the component can implement: every contract hook, plus option keys that
        # only exist through specname.
        wanted: dict[str, WitBinding] = {h: c.binding for h, c in contract.hooks.items()}
        for key, opts in options.items():
            if key not in wanted:
                if not opts.specname:
                    problems.append(
                        Mismatch(
                            key,
                            "a hook of the contract",
                            "(none)",
                            f"options for unknown hook {key!r}",
                        )
                    )
                    continue
                local = wit.kebab(key)
                wanted[key] = WitBinding(contract.package.interface(local), local)
        for key, binding in sorted(wanted.items()):
            opts = options.get(key, HookOptions())
            target = contract.hooks.get(opts.specname or key)
            if target is None:
                continue
            found = image.find_export(binding.interface, binding.function)
            if found is None:
                if binding.interface is not None and any(
                    self._same_interface(i, binding.interface) for i, _ in image.exports
                ):
                    problems.append(
                        Mismatch(
                            target.name,
                            target.signature.render(expanded=True),
                            "(not exported)",
                            f"interface {binding.interface} is exported without function "
                            f"{binding.function!r}",
                        )
                    )
                continue
            iface, sig = found
            problems.extend(contract.check(target, sig, iface))
            matches.append((target, (iface, binding.function), opts))
            used.add((iface, binding.function))
        if problems:
            raise ContractMismatchError(name, problems)
        if not matches:
            exported = (
                ", ".join(sorted(f"{i}#{f}" if i else f for i, f in image.exports)) or "nothing"
            )
            expected = ", ".join(sorted(str(c.binding) for c in contract.hooks.values()))
            raise ContractMismatchError(
                name,
                [
                    Mismatch(
                        "*",
                        f"at least one of: {expected}",
                        exported,
                        "the component implements none of the host's hooks",
                    )
                ],
            )
        for export in sorted(set(image.exports) - used, key=str):
            log.debug("plugin %r: ignoring export %s#%s (no hook)", name, *export)
        return matches

    @staticmethod
    def _same_interface(a: str | None, b: str) -> bool:
        return a is not None and _wit.unversioned(a) == _wit.unversioned(b)

    def _impl(
        self, plugin: WasmPlugin, hook: HookContract, bound: BoundFunc, opts: HookOptions
    ) -> Callable[..., Any]:
        context = plugin.instance.context
        historic = hook.historic
        raw_call = plugin.broadcast if historic else plugin.call
        supervisor = plugin.supervisor
        assert supervisor is not None
        audit = self.audit
        name = plugin.name

        def call(*args: Any) -> Any:
            # A host function (possibly on a worker thread) calling back into the plugin
            # that is waiting for it would deadlock; the component model forbids it anyway.
            if calling_plugin() is context:
                raise PluginTrap(
                    f"plugin {name!r}: re-entrant call of hook {hook.name!r} from inside one "
                    "of its own host calls",
                    plugin=name,
                    hook=hook.name,
                )
            if supervisor.open or supervisor.retry_at is not None:  # read without a lock
                supervisor.before_call(hook.name)
            try:
                if plugin._idle is None and not historic:  # one instance: call it directly
                    result = plugin.instances[0].call(bound, args)
                else:
                    result = raw_call(bound, args)
            except HookCallError as exc:
                if not isinstance(exc, PluginUnavailable):
                    supervisor.failure(exc)
                if isinstance(exc, PluginTimeout | PluginLimitExceeded):
                    audit.record("limit", name, str(exc), hook=hook.name, reason=exc.reason)
                raise
            if supervisor.consecutive:
                supervisor.success()
            return result

        impl: Callable[..., Any]
        if hook.unwrap_result:

            def impl(*args: Any) -> Any:
                value = call(*args)
                if isinstance(value, Err):
                    raise PluginResultError(
                        f"plugin {name!r} returned an error from hook {hook.name!r}: "
                        f"{value.value!r}",
                        plugin=name,
                        hook=hook.name,
                        error=value.value,
                    )
                return value.value

        elif hook.historic:

            def impl(*args: Any) -> Any:
                result = call(*args)
                plugin._record(bound, args)
                return result

        else:
            impl = call  # the common case: pluggy calls it directly, no frame in between

        impl.__name__ = hook.name
        impl.__qualname__ = f"WasmPlugin[{name}].{hook.name}"
        impl.__doc__ = f"{plugin.hooks.get(hook.name, bound.function)} in component {name!r}"
        # pluggy reads argument names from the code object behind __wrapped__.
        impl.__wrapped__ = _signature_template(hook.name, hook.argnames)  # type: ignore[attr-defined]
        marked: Callable[..., Any] = self._mark(
            tryfirst=opts.tryfirst, trylast=opts.trylast, specname=opts.specname
        )(impl)
        return marked

    # -- discovered plugins ---------------------------------------------------------------

    def load_plugins(
        self,
        sources: Discovery | Iterable[PluginSource | str | os.PathLike[str]],
        *,
        strict: bool = False,
        lockfile: Lockfile | str | os.PathLike[str] | None = None,
    ) -> LoadReport:
        """Load many plugins: a :func:`discover_plugins` result, or sources and paths.

        Each plugin's manifest supplies its hook options, capability requests, limits and
        config. Disabled plugins are skipped. With ``lockfile``, a component whose sha256
        differs from the pinned one is refused with :class:`IntegrityError` before it is
        compiled. A broken plugin (bad manifest, corrupt file, contract mismatch, refused
        digest) is reported in the returned :class:`LoadReport` and the others still load;
        with ``strict=True`` the first failure is raised instead, the plugins this call
        loaded are unloaded again, and plugins missing from the lockfile are refused.
        """
        from .loading import load_sources  # imported on first use: most hosts never discover

        return load_sources(self, sources, strict=strict, lockfile=lockfile)
