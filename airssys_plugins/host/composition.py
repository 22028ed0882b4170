"""Links between plugins: one plugin's export serving another plugin's import.

wasmtime cannot link two component instances at run time, so the host mediates: each
function the importer imports from a linked interface is defined, in the importer's own
linker, as a host function whose implementation calls the provider's export on the
provider's own instance, under the provider's sandbox, limits and supervisor. The call's
deadline is the shorter of the provider's timeout and what is left of the importer's.

The provider is looked up by name on every call (one dict read), and its bound exports
are cached per provider object: a reload swaps the table entry in one step, so a caller
sees the old provider or the new one, never half of each. A reload or a late load of a
provider is refused when its exports no longer satisfy a dependant's link.

Lifecycle policy when an importer loads before its provider (``missing_provider``):
``"wait"`` (default) loads it and its calls into the link fail with
:class:`LinkedCallError` until the provider loads; ``"fail"`` refuses the importer with a
:class:`LinkError`. An import cycle (a -> b -> a) is refused at load, naming the cycle:
calls along it would re-enter a busy instance.

The host's record of its links, asked at every load, is :class:`.links.Links`: it imports
this module when a plugin first needs a link.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Any, final

from .. import _attrs as attrs
from .._errors import HookCallError, PluginError, PluginLimitExceeded, PluginTimeout
from ..contract import wit
from ..policy.audit import AuditLog
from ..policy.capabilities import PluginLink
from ..runtime import BoundFunc, ComponentImage, HostFunc, PluginInstance
from .loaded import LoadedPlugins
from .plugin import WasmPlugin
from .supervision import PluginUnavailable

__all__ = [
    "LinkCycleError",
    "LinkError",
    "LinkInfo",
    "LinkedCallError",
]


class LinkError(PluginError, LookupError):
    """A link between two plugins cannot be made: not requested or granted, no provider
    loaded (under ``missing_provider="fail"``), or the provider's exports do not fit.
    ``plugin`` is the plugin being loaded, ``importer`` and ``provider`` the two ends."""

    def __init__(self, message: str, *, plugin: str, importer: str, provider: str | None):
        super().__init__(message, plugin=plugin)
        self.importer = importer
        self.provider = provider


class LinkCycleError(LinkError):
    """Loading the plugin would close a cycle of links; ``cycle`` lists it (a, b, a)."""

    def __init__(self, plugin: str, cycle: list[str]):
        self.cycle = tuple(cycle)
        path = " -> ".join(cycle)
        super().__init__(
            f"plugin {plugin!r} would close an import cycle: {path}. A call along it would "
            "re-enter a plugin that is still busy; break the cycle (move the shared "
            "interface into a third plugin) or remove the link from a manifest",
            plugin=plugin,
            importer=cycle[0],
            provider=cycle[1] if len(cycle) > 1 else None,
        )


class LinkedCallError(HookCallError):
    """A call from one plugin into another's export failed: the provider trapped, timed
    out, is unavailable (not loaded, restarting, circuit open) or refused the values.
    ``plugin`` is the importer (whose call fails), ``provider`` the other plugin; the
    provider's own error is ``__cause__`` and its ``reason`` is kept."""

    def __init__(self, message: str, *, importer: str, provider: str, reason: str):
        super().__init__(message, plugin=importer)
        self.importer = importer
        self.provider = provider
        self.reason = reason


@final
@attrs.frozen
class LinkInfo:
    """One link as listings show it: ``importer`` imports ``interface`` from ``provider``
    (any version in the range ``versions``); ``state`` is ``linked`` (the provider is
    loaded) or ``waiting`` (it is not); ``served`` is the interface, with its version, that
    the loaded provider exports and serves the link with (None while waiting)."""

    importer: str
    provider: str
    interface: str
    versions: str
    functions: tuple[str, ...]
    state: str
    served: str | None = None


def _exported_version(image: ComponentImage, interface: str) -> list[str | None]:
    """The versions at which ``image`` exports unversioned ``interface``."""
    found = []
    for iface, _ in image.exports:
        if iface is not None and wit.unversioned(iface) == interface:
            split = wit.split_interface_name(iface)
            found.append(None if split is None else split[2])
    return sorted(set(found), key=str)


@final
class Link:
    """The importer's side of one link: the host functions it imports, and the call into
    the current provider."""

    def __init__(
        self,
        importer: str,
        spec: PluginLink,
        interface: str,
        functions: Mapping[str, wit.FuncSig],
        plugins: LoadedPlugins,
        audit: AuditLog,
    ):
        self.importer = importer
        self.spec = spec
        self.provider = spec.provider
        #: The interface as the importer imports it (with its version).
        self.interface = interface
        self.functions = dict(functions)
        self._plugins = plugins
        self._audit = audit
        #: id(provider version) -> (that version, its bound exports): see prepare().
        self._prepared: dict[int, tuple[WasmPlugin, dict[str, BoundFunc]]] = {}
        self._lock = threading.Lock()

    def problems(self, image: ComponentImage) -> list[str]:
        """Why ``image`` cannot serve this link (empty: it can)."""
        versions = _exported_version(image, self.spec.interface)
        if not versions:
            return [f"it does not export {self.spec.interface}"]
        good = [v for v in versions if self.spec.accepts(v)]
        if not good:
            shown = ", ".join(str(v) for v in versions)
            return [
                f"it exports {self.spec.interface} at version {shown}, outside the "
                f"range {self.spec.versions} the link asks for"
            ]
        export_iface = self._export_interface(image, good)
        out = []
        for fname, sig in self.functions.items():
            have = image.exports.get((export_iface, fname))
            if have is None:
                out.append(f"{export_iface} has no function {fname!r}")
            elif have.param_types != sig.param_types or have.result != sig.result:
                out.append(
                    f"{export_iface}#{fname} is {have.render()}, the importer expects "
                    f"{sig.render()}"
                )
        return out

    def _export_interface(self, image: ComponentImage, versions: list[str | None]) -> str:
        best = versions[-1]
        return self.spec.interface if best is None else f"{self.spec.interface}@{best}"

    def state(self) -> str:
        return "linked" if self._plugins.get(self.provider) is not None else "waiting"

    def info(self) -> LinkInfo:
        plugin = self._plugins.get(self.provider)
        served = None
        if plugin is not None:
            versions = [
                v
                for v in _exported_version(plugin.image, self.spec.interface)
                if self.spec.accepts(v)
            ]
            served = self._export_interface(plugin.image, versions) if versions else None
        return LinkInfo(
            self.importer,
            self.provider,
            self.interface,
            self.spec.versions,
            tuple(sorted(self.functions)),
            "linked" if plugin is not None else "waiting",
            served,
        )

    def host_funcs(self) -> list[HostFunc]:
        """The importer's imports of this interface, as host functions calling the provider."""
        return [
            HostFunc(self.interface, fname, sig, self._impl(fname))
            for fname, sig in self.functions.items()
        ]

    def _impl(self, fname: str) -> Callable[..., Any]:
        def impl(caller: PluginInstance, *args: Any) -> Any:
            return self.call(fname, caller, args)

        return impl

    def prepare(self, plugin: WasmPlugin) -> None:
        """Bind the provider's exports for ``plugin`` (a provider version being loaded).

        Called on the loading thread, under the host's lock, before ``plugin`` serves:
        binding reads the compiled component, which must not happen on a caller's thread
        while another thread loads a new version of it (wasmtime-py crashes). At most the
        current and the incoming version are kept."""
        problems = self.problems(plugin.image)
        if problems:  # refused before by check_provider/plan; never bind a mismatch
            return
        versions = [
            v for v in _exported_version(plugin.image, self.spec.interface) if self.spec.accepts(v)
        ]
        export_iface = self._export_interface(plugin.image, versions)
        first = plugin.instances[0]
        bounds = {
            fname: first.bind(f"{self.importer}->{fname}", export_iface, fname, sig)
            for fname, sig in self.functions.items()
        }
        with self._lock:
            current = self._plugins.get(self.provider)
            kept = {k: v for k, v in self._prepared.items() if v[0] is current}
            kept[id(plugin)] = (plugin, bounds)
            self._prepared = kept  # replaced whole: readers never see a half-built dict

    def _target(self) -> tuple[WasmPlugin, dict[str, BoundFunc]]:
        plugin = self._plugins.get(self.provider)
        if plugin is None:
            raise self._error(
                f"plugin {self.importer!r} called {self.interface}, which plugin "
                f"{self.provider!r} provides, but {self.provider!r} is not loaded; load it "
                "(its calls succeed from then on)",
                "provider not loaded",
            )
        found = self._prepared.get(id(plugin))
        if found is None or found[0] is not plugin:  # loaded without preparing: a bug
            raise self._error(
                f"plugin {self.importer!r}: plugin {self.provider!r} does not serve "
                f"{self.interface}: {'; '.join(self.problems(plugin.image)) or 'not linked'}",
                "provider mismatch",
            )
        return found

    def _error(self, message: str, reason: str) -> LinkedCallError:
        return LinkedCallError(
            message, importer=self.importer, provider=self.provider, reason=reason
        )

    def call(self, fname: str, caller: PluginInstance, args: tuple[Any, ...]) -> Any:
        """Run the provider's ``fname`` for ``caller``: the provider's limits and
        supervisor, and no longer than the caller's deadline leaves."""
        plugin, bounds = self._target()
        bound = bounds[fname]
        supervisor = plugin.supervisor
        timeout = plugin.limits.timeout
        left = caller.time_left()
        if left is not None:
            if left <= 0:
                exc = PluginTimeout(
                    f"plugin {self.importer!r} ran out of time before calling "
                    f"{self.provider!r} ({self.interface}#{fname})",
                    plugin=self.importer,
                )
                exc.reason = "timeout"
                raise exc
            timeout = left if timeout is None else min(timeout, left)
        try:
            if supervisor is not None and (supervisor.open or supervisor.retry_at is not None):
                supervisor.before_call(bound.hook)
            if plugin._idle is None:
                result = plugin.instances[0].call(bound, args, timeout=timeout)
            else:
                instance = plugin._idle.get()
                try:
                    result = instance.call(bound, args, timeout=timeout)
                finally:
                    plugin._idle.put(instance)
        except HookCallError as exc:
            if supervisor is not None and not isinstance(exc, PluginUnavailable):
                supervisor.failure(exc)  # the provider's supervisor restarts the provider
            if isinstance(exc, PluginTimeout | PluginLimitExceeded):
                self._audit.record(
                    "limit", self.provider, str(exc), hook=bound.hook, reason=exc.reason
                )
            raise self._error(
                f"plugin {self.importer!r} called {self.interface}#{fname} of plugin "
                f"{self.provider!r}, which failed ({exc.reason}): {exc}",
                exc.reason,
            ) from exc
        except PluginError as exc:  # e.g. an argument the provider's types refuse
            raise self._error(
                f"plugin {self.importer!r} called {self.interface}#{fname} of plugin "
                f"{self.provider!r}, which refused the call: {exc}",
                "refused",
            ) from exc
        if supervisor is not None and supervisor.consecutive:
            supervisor.success()
        return result
