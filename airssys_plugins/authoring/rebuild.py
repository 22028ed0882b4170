"""``airssys-plugins build --watch``: rebuild a plugin project whenever a source changes.

Polling (the files' mtimes and sizes, every ``interval`` seconds) rather than OS events:
a plugin project is a handful of files, polling them costs microseconds, and it behaves
the same on every platform and filesystem (network mounts and containers included). A
host that ``watch()``es the plugin picks up each new component, because every build
replaces the component beside ``plugin.toml``.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path

from .._errors import PluginError
from .build import Progress, source_files
from .project import BuiltPlugin, build_plugin

__all__ = ["watch_builds"]

_Snapshot = dict[Path, tuple[int, int]]


def _snapshot(root: Path) -> _Snapshot:
    seen: _Snapshot = {}
    for path in source_files(root):
        try:
            st = path.stat()
        except OSError:  # removed between listing and stat: the next poll sees it
            continue
        seen[path] = (st.st_mtime_ns, st.st_size)
    return seen


def watch_builds(
    directory: str | os.PathLike[str],
    *,
    on_built: Callable[[BuiltPlugin], None],
    on_error: Callable[[PluginError], None],
    on_change: Callable[[list[Path]], None] | None = None,
    progress: Progress | None = None,
    interval: float = 0.2,
    stop: threading.Event | None = None,
    js_backend: str = "quickjs",
    timeout: float | None = None,
) -> None:
    """Build ``directory`` now and after every change of its sources, until ``stop`` is set
    (or forever). A failed build is reported to ``on_error`` and watching goes on: the
    last good component stays in place."""
    root = Path(directory).resolve()
    stop = stop if stop is not None else threading.Event()
    seen = _snapshot(root)

    def build() -> None:
        try:
            on_built(build_plugin(root, progress=progress, js_backend=js_backend, timeout=timeout))
        except PluginError as exc:
            on_error(exc)

    build()
    while not stop.wait(interval):
        now = _snapshot(root)
        if now == seen:
            continue
        changed = sorted(p for p in now.keys() | seen.keys() if now.get(p) != seen.get(p))
        seen = now
        if on_change is not None:
            on_change(changed)
        build()
        # Edits saved while the build ran are caught by the next poll (the snapshot was
        # taken before the build started).
