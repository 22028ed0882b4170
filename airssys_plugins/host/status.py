"""A running host's messaging counters, dead letters and links, in a small state file
that other processes (``airssys-plugins status``) read.

The counters live in the host's process. A :class:`StatusWriter` copies them to
``<user state dir>/<app>/host-status.json`` (beside ``circuits.json``): atomically, so a
reader sees the old content or the new, never half; at most once per ``interval`` seconds
while they change (changes in between go into the next write), never on the publishing
thread (a timer thread writes); and a last time when the host closes, marked
``"closed": true``. A write that fails is logged, never raised: a status display must not
break the host. Two hosts of one app in two processes write the same file; the last
write wins (the file names its ``pid``).

A reader decides whether the file is current with :func:`freshness`: written by a host
that closed, by a process that is no longer running (it ended without closing: the
counters are its last ones, ``stale``), or by one that runs (``running``; a quiet host
rewrites nothing, so an old ``updated`` time is not by itself stale).
"""

from __future__ import annotations

import json
import math
import os
import socket
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Final, Literal, final

from .. import _log as logging
from .._errors import PluginError
from .._files import FileRefusedError, atomic_write, read_metadata_file

__all__ = [
    "STATUS_FILE",
    "StatusFile",
    "StatusFileError",
    "StatusWriter",
    "freshness",
]

log = logging.getLogger("airssys_plugins.status")

#: The file's name in the app's state directory.
STATUS_FILE: Final = "host-status.json"
#: The layout version written in ``"format"``.
FORMAT: Final = 1

Freshness = Literal["running", "closed", "stale", "unknown"]


class StatusFileError(PluginError, ValueError):
    """A host status file that cannot be read: not a regular file, too big, not the JSON
    a host writes. ``path`` is the file."""

    def __init__(self, message: str, *, path: Path):
        super().__init__(message)
        self.path = path


@final
class StatusFile:
    """One app's host status file."""

    def __init__(self, path: str | os.PathLike[str]):
        # absolute now: a writer thread must not follow a later chdir of the process
        self.path = Path(path).absolute()

    @classmethod
    def for_app(cls, app: str) -> StatusFile:
        """``<user state dir>/<app>/host-status.json`` (platformdirs), where the circuit
        file of the app is too."""
        import platformdirs  # on first use: ~10 ms of every start otherwise

        return cls(Path(platformdirs.user_state_dir(app)) / STATUS_FILE)

    def write(self, data: Mapping[str, Any]) -> bool:
        """Replace the file with ``data`` (atomically); False, logged, when it fails."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(self.path, json.dumps(data, indent=1, sort_keys=True), durable=False)
        except OSError as exc:  # a status display must never break the host
            log.warning("cannot write the host status to %s: %s", self.path, exc)
            return False
        return True

    def read(self) -> dict[str, Any] | None:
        """The status a host wrote, or None when there is no file. Raises
        :class:`StatusFileError` for a file that is not one a host writes."""
        if not self.path.exists() and not self.path.is_symlink():
            return None
        try:
            raw = read_metadata_file(self.path, what="host status file")
        except FileRefusedError as exc:
            if not self.path.exists():  # removed since the check: as if never written
                return None
            raise StatusFileError(
                f"cannot read {self.path}: {exc.strerror}", path=self.path
            ) from exc
        except OSError as exc:
            raise StatusFileError(f"cannot read {self.path}: {exc}", path=self.path) from exc
        try:
            data = json.loads(raw.decode("utf-8"))
        except ValueError as exc:
            raise StatusFileError(
                f"{self.path} is not a host status file (not JSON: {exc}); delete it, the "
                "host writes it again when its counters change",
                path=self.path,
            ) from exc
        if not isinstance(data, dict) or not isinstance(data.get("format"), int):
            raise StatusFileError(
                f"{self.path} is not a host status file (no 'format' number); delete it, "
                "the host writes it again when its counters change",
                path=self.path,
            )
        if data["format"] > FORMAT:
            raise StatusFileError(
                f"{self.path} has format {data['format']}, newer than this version of "
                f"airssys-plugins reads ({FORMAT}); upgrade airssys-plugins",
                path=self.path,
            )
        return data


def _pid_running(pid: int) -> bool | None:
    """Whether process ``pid`` runs on this machine (None: cannot tell)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, under another user
        return True
    except (OSError, OverflowError, ValueError):
        return None
    return True


def freshness(
    data: Mapping[str, Any], *, pid_running: Callable[[int], bool | None] = _pid_running
) -> tuple[Freshness, str]:
    """Whether a status ``data`` is current, and a sentence saying why."""
    pid = data.get("pid")
    updated = data.get("updated")
    when = (
        time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(updated))
        if isinstance(updated, int | float)
        else "an unknown time"
    )
    age = time.time() - updated if isinstance(updated, int | float) else None
    ago = "" if age is None else f", {_duration(age)} ago"
    who = f"pid {pid}" if isinstance(pid, int) else "an unknown process"
    if data.get("closed"):
        return "closed", (
            f"closed: written by {who} when its host closed at {when}{ago}: the last counters of a "
            "host that has ended, not live ones"
        )
    if not isinstance(pid, int) or data.get("hostname") != socket.gethostname():
        return "unknown", (
            f"written by {who} on {data.get('hostname')!r} at {when}{ago}; whether it still "
            "runs cannot be checked from this machine"
        )
    running = pid_running(pid)
    if running is False:
        return "stale", (
            f"STALE: written by {who} at {when}{ago}, which is no longer running (it ended "
            "without closing its host): these are its last counters"
        )
    if running is None:
        return "unknown", f"written by {who} at {when}{ago}; cannot tell whether it runs"
    return "running", (
        f"live: {who} is running; last written at {when}{ago} (written at most every "
        f"{data.get('interval', 1.0):g} s while counters change)"
    )


def _duration(seconds: float) -> str:
    seconds = max(seconds, 0.0)
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.0f} h"
    return f"{seconds / 86400:.0f} days"


@final
class StatusWriter:
    """Writes ``snapshot(closed)`` to ``file`` when :meth:`changed` says something
    changed, at most once per ``interval`` seconds, from a timer thread."""

    def __init__(
        self,
        file: StatusFile,
        snapshot: Callable[[bool], dict[str, Any]],
        *,
        app: str,
        interval: float = 1.0,
    ):
        if not interval > 0:
            raise ValueError(f"interval must be above 0 seconds, not {interval!r}")
        self.file = file
        self.app = app
        self.interval = float(interval)
        self._snapshot = snapshot
        self._lock = threading.Lock()
        self._timer: threading.Timer | None = None
        # when the file was last written (monotonic); never yet: the first write is due
        # at once (not ``interval`` after the clock's zero, which is the machine's boot)
        self._last = -math.inf
        self._closed = False
        #: How many times the file was written (the tests count the rate limit with it).
        self.writes = 0

    def changed(self) -> None:
        """Something changed: write soon (now, or ``interval`` after the last write)."""
        if self._scheduled_or_closed():  # a write is due already: this change goes into it
            return
        with self._lock:
            if self._scheduled_or_closed():
                return
            delay = max(self._last + self.interval - time.monotonic(), 0.0)
            timer = threading.Timer(delay, self._due)
            timer.name = f"airssys-status-{self.app}"
            timer.daemon = True
            self._timer = timer
            timer.start()

    def _scheduled_or_closed(self) -> bool:
        return self._timer is not None or self._closed

    def _due(self) -> None:
        with self._lock:
            self._timer = None
            if self._closed:
                return
            self._write(closed=False)

    def _write(self, *, closed: bool) -> None:
        try:
            body = self._snapshot(closed)
        except Exception as exc:  # a status display must never break the host
            log.warning("cannot take the host status of %s: %s", self.app, exc)
            return
        data = {
            "format": FORMAT,
            "app": self.app,
            "pid": os.getpid(),
            "hostname": socket.gethostname(),
            "updated": time.time(),
            "interval": self.interval,
            "closed": closed,
            **body,
        }
        if self.file.write(data):
            self.writes += 1
        self._last = time.monotonic()

    def flush(self) -> None:
        """Write now (what changed since the last write)."""
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            if not self._closed:
                self._write(closed=False)

    def close(self) -> None:
        """The host closes: a last write, marked closed; nothing is written after it."""
        with self._lock:
            if self._closed:
                return
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            self._write(closed=True)
            self._closed = True
