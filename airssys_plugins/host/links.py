"""The links of a host's plugins, by importer: planned, checked and recorded at each load.

Every load asks (a plugin that imports no other plugin's interface plans no link), so this
is on every host's path; a link itself, the host functions that call the provider, and the
errors of links (:mod:`.composition`) are imported when a plugin first needs one.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Final, Literal, final

from .._errors import PluginLoadError
from ..contract import wit
from ..policy.audit import AuditLog
from ..policy.capabilities import Capabilities
from ..runtime import ComponentImage, imported_functions
from .loaded import LoadedPlugins
from .plugin import WasmPlugin

if TYPE_CHECKING:
    from .composition import Link, LinkInfo

__all__ = ["MISSING_PROVIDER", "Links", "MissingProvider"]

MissingProvider = Literal["wait", "fail"]
MISSING_PROVIDER: Final = ("wait", "fail")


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
        refuses (a :class:`.composition.LinkError`) imports without a granted link, a
        missing provider under ``missing_provider="fail"``, a provider whose exports do not
        fit, a cycle."""
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
        from .composition import Link, LinkError

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
            from .composition import LinkError

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
            from .composition import LinkCycleError

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
            state = link.state()
            detail = f"{link.interface} linked to plugin {link.provider!r} ({state})"
            self._audit_link(name, link, detail, link.provider, state)
        for link in self.dependants(name):
            detail = f"{link.interface} now served by plugin {name!r}"
            self._audit_link(link.importer, link, detail, name, "linked")

    def forget(self, name: str) -> None:
        """Plugin ``name`` was unloaded: its own links go; its dependants wait for it."""
        self._by_importer.pop(name, None)
        for link in self.dependants(name):
            detail = (
                f"{link.interface}: provider {name!r} unloaded; calls fail until it loads again"
            )
            self._audit_link(link.importer, link, detail, name, "waiting")

    def _audit_link(
        self, importer: str, link: Link, detail: str, provider: str, state: str
    ) -> None:
        self._audit.record(
            "link", importer, detail, provider=provider, interface=link.interface, state=state
        )

    def infos(self) -> list[LinkInfo]:
        return [link.info() for found in self._by_importer.values() for link in found]
