"""The pluggy plugin object that stands for one loaded component."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, final

from .. import _log as logging
from .._errors import PluginError, PluginLoadError
from ..contract.annotations import Err
from ..contract.mapping import HookOptions
from ..policy.audit import AuditLog
from ..policy.capabilities import Capabilities, Limits
from ..runtime import BoundFunc, ComponentImage, PluginInstance
from .isolation_modes import SPARES, Isolation, check_isolation
from .supervision import Supervisor

if TYPE_CHECKING:
    import queue

    from .isolation import FreshInstances

__all__ = ["WasmPlugin"]

log = logging.getLogger("airssys_plugins")
_DEFAULT_LIMITS = Limits()
_NO_LIFECYCLE: dict[str, BoundFunc] = {}
#: The historic calls of every plugin that has had none (most): one empty list, never
#: appended to (:meth:`WasmPlugin._record` gives a plugin its own list first).
_NO_HISTORY: list[tuple[BoundFunc, tuple[Any, ...]]] = []


@final
class WasmPlugin:
    """A loaded component as pluggy sees it: one attribute per implemented hook.

    pluggy registers it like any plugin object; ``name`` is its registration name. With an
    instance pool (``load(pool_size=n)``) each call takes an idle instance, so ``n`` calls
    can run at once. With ``isolation="per-call"`` each call takes a fresh instance instead
    (``instances`` then holds ``pool_size + 1`` slots; see :mod:`.isolation`).
    """

    # Its fixed members in slots; its hookimpls (a bound method per hook, named after the
    # hook) in its ``__dict__``, where pluggy's ``register`` finds them.
    __slots__ = (
        "__dict__",
        "_audit",
        "_context",
        "_history",
        "_idle",
        "_impl_attrs",
        "capabilities",
        "config",
        "contract_version",
        "fresh",
        "hook_options",
        "hooks",
        "image",
        "instances",
        "isolation",
        "lifecycle",
        "limits",
        "name",
        "pool_size",
        "requested",
        "supervisor",
    )

    #: Guards every plugin's ``_history`` (held for a list operation; historic calls are
    #: rare): one lock for all plugins instead of one each.
    _history_lock: Final = threading.Lock()

    def __init__(
        self,
        name: str,
        image: ComponentImage,
        instances: Sequence[PluginInstance],
        *,
        isolation: Isolation = "shared",
    ):
        self.name = name
        self.image = image
        #: Its instances (one, or the pool's), fixed at load: a tuple (a list costs more).
        self.instances = tuple(instances)
        #: ``"shared"`` or ``"per-call"`` (every call on a fresh instance).
        self.isolation: Isolation = check_isolation(isolation, name)
        #: How many calls may run at once (``load(pool_size=...)``).
        self.pool_size = len(instances) - (SPARES if isolation == "per-call" else 0)
        #: Hook name -> the WIT function implementing it,
        #: e.g. ``textpipe:hooks/transform@1.0.0#transform``. Read-only: the plugins of
        #: one component with the same hooks share one.
        self.hooks: dict[str, str] = {}
        #: The package id of the contract version the component was checked against:
        #: the host's current one, or an older one it accepts (``PluginHost(versions=)``).
        self.contract_version: str | None = None
        #: What the plugin asked for, what it was granted (request ∩ ceiling ∩ grants),
        #: and its limits.
        self.requested = Capabilities.nothing()
        self.capabilities = Capabilities.nothing()
        self.limits = _DEFAULT_LIMITS
        self.supervisor: Supervisor | None = None
        #: Where limit failures of its calls are audited (the host's log; set at load).
        self._audit: AuditLog | None = None
        # the host layer's state of the plugin, handed to host functions: a hook call
        # from a host function serving this plugin is refused (re-entrance)
        self._context: object = instances[0].context if instances else None
        #: Its lifecycle exports (init, health, shutdown), bound. Most plugins have none:
        #: they share one empty dict, which the load pipeline never fills (it gives a
        #: plugin with lifecycle exports a dict of its own).
        self.lifecycle: dict[str, BoundFunc] = _NO_LIFECYCLE
        #: The config it was loaded with (what ``config.get`` answers it). Read-only:
        #: the plugins loaded without one share one empty dict.
        self.config: dict[str, str] = {}
        #: The per-hook options it was loaded with (kept across reloads).
        self.hook_options: dict[str, HookOptions] = {}
        self._history: list[tuple[BoundFunc, tuple[Any, ...]]] = _NO_HISTORY
        #: The attribute names of its hookimpls (a tuple shared by the plugins loaded
        #: with the same hooks; set once, when they are attached).
        self._impl_attrs: tuple[str, ...] = ()
        self._idle: queue.SimpleQueue[PluginInstance] | FreshInstances | None = None
        #: The fresh-instance slots of a plugin with per-call isolation (else None).
        self.fresh: FreshInstances | None = None
        if self.isolation == "per-call":
            # Where a pool keeps its idle instances: every borrower gets a fresh one.
            from .isolation import FreshInstances

            self.fresh = self._idle = FreshInstances(name, instances, lambda: self._history)
        elif len(instances) > 1:
            import queue  # imported here: a plugin of one instance keeps no idle queue

            idle: queue.SimpleQueue[PluginInstance] = queue.SimpleQueue()
            for instance in instances:
                idle.put(instance)
            self._idle = idle

    @property
    def instance(self) -> PluginInstance:
        """The (first) instance."""
        return self.instances[0]

    @property
    def path(self) -> Path | None:
        return self.image.path

    @property
    def sha256(self) -> str:
        return self.image.sha256

    def __repr__(self) -> str:
        return f"<WasmPlugin {self.name!r} hooks={sorted(self.hooks)} from {self.path}>"

    def __dir__(self) -> list[str]:
        """Its hookimpls, by attribute name (its data and methods are WasmPlugin's
        documented attributes).

        pluggy's ``register`` looks every name of ``dir(plugin)`` up with
        ``inspect.getattr_static``: listing only the hookimpls (instance attributes set at
        load) keeps registering a small plugin cheap, and nothing else is ever a hook."""
        return list(self._impl_attrs)

    def call(self, bound: BoundFunc, args: tuple[Any, ...]) -> Any:
        """Call a bound hook function on an idle instance (a fresh one with per-call
        isolation)."""
        if self._idle is None:
            return self.instances[0].call(bound, args)
        if self.fresh is not None:
            return self.fresh.call(bound, args)
        instance = self._idle.get()
        try:
            return instance.call(bound, args)
        finally:
            self._idle.put(instance)

    def broadcast(self, bound: BoundFunc, args: tuple[Any, ...]) -> Any:
        """Call every instance of the pool (historic hooks: each instance keeps state).

        With per-call isolation the call runs on one fresh instance, as any call does;
        once recorded, it is replayed into every instance prepared after it."""
        if self.fresh is not None:
            return self.call(bound, args)
        results = [instance.call(bound, args) for instance in self.instances]
        return results[0]

    def _record(self, bound: BoundFunc, args: tuple[Any, ...]) -> None:
        with self._history_lock:
            if self._history is _NO_HISTORY:
                self._history = []
            self._history.append((bound, args))

    def _started(self, instance: PluginInstance) -> None:
        """A (re)started instance: run its ``init`` export, then replay historic calls."""
        init = self.lifecycle.get("init")
        if init is not None:
            outcome = instance.call(init, (sorted(self.config.items()),))
            if isinstance(outcome, Err):
                raise PluginLoadError(
                    f"plugin {self.name!r}: init failed: {outcome.value}", plugin=self.name
                )
        if instance.generation > 1:
            with self._history_lock:
                history = list(self._history)
            for bound, args in history:
                instance.call(bound, args)
            if self.fresh is not None:
                self.fresh.seen(instance, len(history))

    def close(self, *, shutdown: bool = True) -> None:
        """Run the ``shutdown`` export (unless ``shutdown=False``), close the instances
        (waiting for calls in flight) and drop the hookimpls."""
        if self.fresh is not None:
            self.fresh.stop()  # no instance is refilled once closing starts
        shutdown_func = self.lifecycle.get("shutdown") if shutdown else None
        # bounded like start-up (Limits.startup_deadline: startup_timeout, else timeout,
        # else 10 s), waiting for a call in flight included: unloading never hangs
        bound = self.limits.startup_deadline
        for instance in self.instances:
            if shutdown_func is not None:
                try:
                    instance.call_within(shutdown_func, (), bound)
                except PluginError as exc:
                    log.warning("plugin %r: shutdown failed: %s", self.name, exc)
            instance.close(wait=bound)
        # The hook functions close over the plugin: drop them so that it (and its compiled
        # component, memory-mapped) is freed now rather than at the next GC.
        for attr in self._impl_attrs:
            with contextlib.suppress(AttributeError):
                delattr(self, attr)
        self._impl_attrs = ()
