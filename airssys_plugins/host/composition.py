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
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final, Literal, final

from .. import _attrs as attrs
from .._errors import (
    HookCallError,
    PluginError,
    PluginLimitExceeded,
    PluginLoadError,
    PluginTimeout,
)
from ..contract import wit
from ..policy.audit import AuditLog
from ..policy.capabilities import Capabilities, PluginLink
from ..runtime import BoundFunc, ComponentImage, HostFunc, PluginInstance, imported_functions
from .loaded import LoadedPlugins
from .plugin import WasmPlugin
from .supervision import PluginUnavailable

__all__ = [
    "LinkCycleError",
    "LinkError",
    "LinkInfo",
    "LinkedCallError",
    "Links",
    "MissingProvider",
]

MissingProvider = Literal["wait", "fail"]
MISSING_PROVIDER: Final = ("wait", "fail")


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


@final
class Links:
    """Every link of a host's plugins, by importer."""

    def __init__(
        self, plugins: LoadedPlugins, *, audit: AuditLog, missing_provider: MissingProvider
    ):
        if missing_provider not in MISSING_PROVIDER:
            raise ValueError(f"missing_provider must be 'wait' or 'fail', not {missing_provider!r}")
        self._plugins = plugins
        self._audit = audit
        self.missing_provider: MissingProvider = missing_provider
        self._by_importer: dict[str, list[Link]] = {}

    def plan(
        self,
        name: str,
        image: ComponentImage,
        rights: Capabilities,
        *,
        host_interfaces: Iterable[str],
    ) -> list[Link]:
        """The links plugin ``name`` needs for its imports that no host function serves;
        refuses (a :class:`LinkError`) imports without a granted link, a missing provider
        under ``missing_provider="fail"``, a provider whose exports do not fit, a cycle."""
        imported = imported_functions(image)
        if not imported:  # imports nothing but WASI: no link, no cycle through it
            return []
        provided = set(host_interfaces)
        wanted: dict[str, dict[str, wit.FuncSig]] = {}
        for (iface, fname), sig in imported.items():
            if iface.startswith("wasi:") or wit.unversioned(iface) in provided:
                continue
            wanted.setdefault(iface, {})[fname] = sig
        if not wanted:  # every import is the host's: no link, no cycle through it
            return []
        links: list[Link] = []
        unknown: list[str] = []
        for iface, functions in sorted(wanted.items()):
            bare = wit.unversioned(iface)
            spec = next((s for s in sorted(rights.plugins, key=str) if s.interface == bare), None)
            if spec is None:
                unknown.append(iface)
            else:
                links.append(Link(name, spec, iface, functions, self._plugins, self._audit))
        if unknown:
            raise PluginLoadError(
                f"plugin {name!r} imports interface(s) the host does not provide: "
                f"{', '.join(unknown)}. Build it against the host's WIT only; or, if another "
                f"plugin exports it, ask for the link in {name}'s manifest ([capabilities] "
                f'plugins = ["<provider>:{wit.unversioned(unknown[0])}@^<major>"]) and grant '
                f"it under [plugins.{name}]",
                plugin=name,
                path=None if image.path is None else str(image.path),
            )
        for link in links:
            carrying = sorted(
                fname
                for fname, sig in link.functions.items()
                if any(any(wit.resources_in(t)) for t in (*sig.param_types, sig.result))
            )
            if carrying:
                raise LinkError(
                    f"plugin {name!r} imports {link.interface} from plugin {link.provider!r}, "
                    f"but its function(s) {', '.join(carrying)} pass resource handles: links "
                    "between plugins carry values only. Provide the resource from the host "
                    "(host.provide), or compose the two components into one before loading",
                    plugin=name,
                    importer=name,
                    provider=link.provider,
                )
        self._check_cycle(name, links)
        for link in links:
            provider = self._plugins.get(link.provider)
            if provider is None and link.provider != name:
                if self.missing_provider == "fail":
                    raise LinkError(
                        f"plugin {name!r} links to {link.spec.interface} of plugin "
                        f"{link.provider!r}, which is not loaded; load {link.provider!r} "
                        "first, or let the host wait for it (missing_provider='wait')",
                        plugin=name,
                        importer=name,
                        provider=link.provider,
                    )
                continue
            if provider is not None:
                self._refuse_mismatch(name, link, provider.image)
        return links

    def _refuse_mismatch(self, plugin: str, link: Link, image: ComponentImage) -> None:
        problems = link.problems(image)
        if problems:
            raise LinkError(
                f"plugin {link.importer!r} links to {link.spec} but plugin "
                f"{link.provider!r} cannot serve it: {'; '.join(problems)}. Load a version of "
                f"{link.provider!r} that exports it, or change the link's version range",
                plugin=plugin,
                importer=link.importer,
                provider=link.provider,
            )

    def _check_cycle(self, name: str, links: list[Link]) -> None:
        graph = {
            importer: [link.provider for link in found]
            for importer, found in self._by_importer.items()
            if importer != name
        }
        graph[name] = [link.provider for link in links]

        def path_to(start: str, seen: list[str]) -> list[str] | None:
            for nxt in graph.get(start, []):
                if nxt == name:
                    return [*seen, nxt]
                if nxt not in seen:
                    found = path_to(nxt, [*seen, nxt])
                    if found is not None:
                        return found
            return None

        cycle = path_to(name, [name])
        if cycle is not None:
            self._audit.record("refuse", name, f"import cycle: {' -> '.join(cycle)}")
            raise LinkCycleError(name, cycle)

    def check_provider(self, name: str, image: ComponentImage) -> None:
        """Refuse ``image`` as plugin ``name`` if it cannot serve a dependant's link (a
        late provider, or a reload that dropped or changed an export)."""
        for link in self.dependants(name):
            self._refuse_mismatch(name, link, image)

    def provides_for(self, name: str, grants: Mapping[str, Capabilities]) -> bool:
        """Whether plugin ``name`` is a provider someone links to (or may: a grant names it)."""
        if self.dependants(name):
            return True
        return any(link.provider == name for caps in grants.values() for link in caps.plugins)

    def dependants(self, name: str) -> list[Link]:
        return [
            link
            for importer, found in self._by_importer.items()
            if importer != name
            for link in found
            if link.provider == name
        ]

    def prepare_provider(self, plugin: WasmPlugin) -> None:
        """``plugin`` (staged, not serving yet) will provide for its dependants: bind."""
        for link in self.dependants(plugin.name):
            link.prepare(plugin)

    def commit(self, name: str, links: list[Link]) -> None:
        """Plugin ``name`` loaded (or reloaded) with ``links``: bind the providers loaded
        already, record and audit the links."""
        for link in links:
            provider = self._plugins.get(link.provider)
            if provider is not None:
                link.prepare(provider)
        if links:
            self._by_importer[name] = links
        else:  # only importers with links are kept: a load's dependants() scan stays short
            self._by_importer.pop(name, None)
        for link in links:
            self._audit.record(
                "link",
                name,
                f"{link.interface} linked to plugin {link.provider!r} ({link.state()})",
                provider=link.provider,
                interface=link.interface,
                state=link.state(),
            )
        for link in self.dependants(name):
            self._audit.record(
                "link",
                link.importer,
                f"{link.interface} now served by plugin {name!r}",
                provider=name,
                interface=link.interface,
                state="linked",
            )

    def forget(self, name: str) -> None:
        """Plugin ``name`` was unloaded: its own links go; its dependants wait for it."""
        self._by_importer.pop(name, None)
        for link in self.dependants(name):
            self._audit.record(
                "link",
                link.importer,
                f"{link.interface}: provider {name!r} unloaded; calls fail until it loads again",
                provider=name,
                interface=link.interface,
                state="waiting",
            )

    def infos(self) -> list[LinkInfo]:
        return [link.info() for found in self._by_importer.values() for link in found]
