"""Circuit breaking and health of a host's plugins: opening a failing plugin's circuit,
closing it after the cool-down or on :meth:`PluginHost.unblock`, and status reports."""

from __future__ import annotations

import threading
from typing import final

import pluggy

from ..contract.annotations import Err
from ..policy.audit import AuditLog
from .loaded import LoadedPlugins
from .plugin import WasmPlugin
from .supervision import CircuitFile, RestartPolicy, Supervisor, SupervisorStatus

__all__ = ["Circuits"]


@final
class Circuits:
    """The circuits of the host's loaded plugins.

    An open circuit blocks the plugin in pluggy and is recorded in ``file`` (the app's by
    default, which ``airssys-plugins list`` reads); it closes after ``restart.cooldown``
    seconds.
    """

    def __init__(
        self,
        pm: pluggy.PluginManager,
        plugins: LoadedPlugins,
        *,
        restart: RestartPolicy,
        audit: AuditLog,
        file: CircuitFile | None = None,
    ):
        self._pm = pm
        self._plugins = plugins
        self.restart = restart
        self._audit = audit
        self.file = CircuitFile.for_app(pm.project_name) if file is None else file
        self._on_open = self.open  # one bound method for every plugin's supervisor

    def supervisor(self, name: str) -> Supervisor:
        """A fresh supervisor for plugin ``name`` that opens its circuit here."""
        return Supervisor(name, self.restart, self._on_open)

    def open(self, name: str, reason: str) -> None:
        plugin = self._plugins.get(name)
        if plugin is None:
            return
        self._pm.set_blocked(name)  # unregisters it; pluggy refuses it until unblocked
        self._audit.record("circuit", name, f"circuit opened: {reason}", reason=reason)
        self.file.set(name, reason)
        cooldown = self.restart.cooldown
        if cooldown is not None:
            timer = threading.Timer(cooldown, self._cooldown_over, args=(name, plugin))
            timer.daemon = True
            timer.start()

    def _cooldown_over(self, name: str, plugin: WasmPlugin) -> None:
        with self._plugins.lock:
            if self._plugins.get(name) is plugin and self._pm.is_blocked(name):
                self.unblock(name)

    def unblock(self, name: str) -> None:
        """Close a plugin's open circuit: register it again with fresh instances."""
        with self._plugins.lock:
            plugin = self._plugins[name]
            if not self._pm.is_blocked(name):
                return
            self._pm.unblock(name)
            for instance in plugin.instances:
                instance.discard()
            with plugin._history_lock:
                plugin._history.clear()  # pluggy replays the historic calls on register
            assert plugin.supervisor is not None
            plugin.supervisor.reset()
            self._pm.register(plugin, name=name)
            self._audit.record("circuit", name, "circuit closed: plugin serving again")
            self.file.set(name, None)

    def forget(self, name: str) -> None:
        """Plugin ``name`` was unloaded: its circuit is no longer shown as open."""
        self.file.set(name, None)

    def status(self, name: str) -> SupervisorStatus:
        supervisor = self._plugins[name].supervisor
        assert supervisor is not None
        return supervisor.status()

    def statuses(self) -> dict[str, SupervisorStatus]:
        return {plugin.name: self.status(plugin.name) for plugin in self._plugins}

    def health(self, name: str) -> bool:
        plugin = self._plugins[name]
        check = plugin.lifecycle.get("health")
        if check is None:
            return True
        return not isinstance(plugin.call(check, ()), Err)
