"""Hot reload by polling: a thread that reloads plugins whose files change."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Protocol

from .. import _log as logging
from .._errors import PluginError

__all__ = ["Watcher"]

log = logging.getLogger("airssys_plugins")


class _Watched(Protocol):
    @property
    def path(self) -> Path | None: ...


class _Reloader(Protocol):
    """What the watcher needs of a host (``PluginHost`` is one)."""

    @property
    def plugins(self) -> Mapping[str, _Watched]: ...
    def reload(self, name: str) -> object: ...


class Watcher:
    """Polls loaded plugins' files and reloads the ones that change."""

    def __init__(self, host: _Reloader, interval: float):
        self.host = host
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="airssys-plugins-watch", daemon=True)
        self._seen: dict[str, tuple[int, int]] = {}
        #: (plugin, error) of reloads that failed and were rolled back.
        self.failures: list[tuple[str, BaseException]] = []

    def start(self) -> None:
        self._seen = self._snapshot()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _snapshot(self) -> dict[str, tuple[int, int]]:
        seen = {}
        for name, plugin in self.host.plugins.items():
            if plugin.path is not None:
                with contextlib.suppress(OSError):
                    st = plugin.path.stat()
                    seen[name] = (st.st_mtime_ns, st.st_size)
        return seen

    def poll(self) -> list[str]:
        """Check once; reload changed plugins; returns the names reloaded."""
        reloaded = []
        current = self._snapshot()
        for name, stamp in current.items():
            if self._seen.get(name, stamp) != stamp:
                try:
                    self.host.reload(name)
                    reloaded.append(name)
                except (PluginError, OSError, KeyError) as exc:  # KeyError: unloaded meanwhile
                    log.warning("reload of plugin %r failed, old version kept: %s", name, exc)
                    self.failures.append((name, exc))
        self._seen = current
        return reloaded

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.poll()
