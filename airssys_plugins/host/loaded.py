"""The components a host has registered with pluggy, by name."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import final

import pluggy

from .._errors import PluginConflictError
from ..policy.audit import AuditLog
from ..policy.capabilities import Capabilities
from .memos import kept
from .plugin import WasmPlugin

__all__ = ["LoadedPlugins"]


def _described(rights: Capabilities) -> tuple[str, ...]:
    """``rights.describe()``, as a tuple (an event's fields are read, not changed); no
    walk of its seven kinds of rights for a plugin granted nothing (most plugins), whose
    events share the empty tuple."""
    return () if rights is Capabilities.nothing() else tuple(rights.describe())


#: The detail of a load's audit event for each set of hooks lately seen: many plugins
#: implementing the same hooks share one string.
_DETAILS: dict[tuple[str, ...], str] = {}


def _loaded_detail(hooks: tuple[str, ...]) -> str:
    return kept(_DETAILS, hooks, lambda: f"loaded with hooks {', '.join(sorted(hooks))}", 256)


#: The fields of a load's audit event by (digest, rights): the loads of one file with the
#: same rights share one dict (an event's fields are read, never changed).
_FIELDS: dict[tuple[str, tuple[str, ...]], dict[str, object]] = {}


def _loaded_fields(sha256: str, rights: tuple[str, ...]) -> dict[str, object]:
    return kept(_FIELDS, (sha256, rights), lambda: {"sha256": sha256, "rights": rights}, 256)


@final
class LoadedPlugins:
    """A host's table of loaded components. ``lock`` (re-entrant) serialises loads,
    unloads, reloads and circuit changes; hook calls never take it."""

    def __init__(self, pm: pluggy.PluginManager, *, audit: AuditLog):
        self._pm = pm
        self._audit = audit
        self._by_name: dict[str, WasmPlugin] = {}
        self.lock = threading.RLock()

    def __getitem__(self, name: str) -> WasmPlugin:
        try:
            return self._by_name[name]
        except KeyError:
            raise KeyError(f"no component plugin named {name!r} is loaded") from None

    def get(self, name: str) -> WasmPlugin | None:
        return self._by_name.get(name)

    def __iter__(self) -> Iterator[WasmPlugin]:
        return iter(list(self._by_name.values()))

    def snapshot(self) -> dict[str, WasmPlugin]:
        return dict(self._by_name)

    def add(self, name: str, stage: Callable[[], WasmPlugin]) -> WasmPlugin:
        """Register the plugin ``stage()`` makes as ``name`` (refused before staging when
        the name is taken)."""
        with self.lock:
            if name in self._by_name or self._pm.get_plugin(name) is not None:
                raise PluginConflictError(
                    f"a plugin named {name!r} is already registered; unload it first or "
                    "load this one with another name=",
                    plugin=name,
                )
            plugin = stage()
            try:
                self._pm.register(plugin, name=name)
            except BaseException:
                plugin.close()
                raise
            self._by_name[name] = plugin
            self._audit.record_fields(
                "load",
                name,
                _loaded_detail(tuple(plugin.hooks)),
                _loaded_fields(plugin.sha256, _described(plugin.capabilities)),
            )
            return plugin

    def replace(self, new: WasmPlugin) -> None:
        """``new`` (registered with pluggy already) stands for its name from now on."""
        with self.lock:
            self._by_name[new.name] = new

    def remove(self, name: str) -> None:
        """Unregister plugin ``name`` from pluggy (blocked or not) and close it."""
        with self.lock:
            plugin = self[name]
            del self._by_name[name]
            if self._pm.get_plugin(name) is plugin:
                self._pm.unregister(plugin, name=name)
            self._pm.unblock(name)
            plugin.close()
            plugin.image.retain()  # loaded well once: a load of the same bytes is cheap
            self._audit.record("unload", name, "unloaded")
