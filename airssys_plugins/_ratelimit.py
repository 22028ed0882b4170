"""How many log records a plugin may write: a token bucket that counts what it drops.

A plugin's stdout and stderr (:class:`.runtime.sandbox.StdioLogger`) and its calls of the
``log`` host interface (:func:`.host.builtins.log`) each have one: a burst of
:data:`BURST` records, then :data:`PER_SECOND` a second. Past it, records are dropped, with
one warning when dropping starts and one saying how many were dropped when a record is
let through again (at most one warning a second), so a plugin that floods cannot fill
the host's logs or hold its logging handlers.
"""

from __future__ import annotations

import threading
import time
from typing import Final

from . import _log as logging

__all__ = ["BURST", "PER_SECOND", "WARN_EVERY", "RateLimit"]

#: Records a second a plugin may write to one stream once its burst is spent.
PER_SECOND: Final = 50
#: Records a plugin may write at once.
BURST: Final = 200


#: The clock of every bucket (its own name, so a test can move it without moving
#: ``time.monotonic`` for the whole process, whose epoch thread reads it).
_now = time.monotonic
#: The least seconds between two warnings of one stream about dropped records.
WARN_EVERY: Final = 1.0


class RateLimit:
    """The token bucket of one plugin's stream (``stdout``, ``stderr`` or ``log``).

    :meth:`allow` answers whether one more record may be written now, and logs to ``log``
    the warnings about dropped records: one when dropping starts, and one with the number
    dropped once a record is let through again, at most one a :data:`WARN_EVERY` seconds
    (a sustained flood adds about one warning a second, and every dropped record is
    counted in one of them). Thread-safe."""

    __slots__ = ("_lock", "_log", "dropped", "plugin", "stamp", "stream", "tokens", "warned")

    def __init__(self, log: logging.Logger, plugin: str, stream: str):
        self._log = log
        self.plugin = plugin
        self.stream = stream
        self.tokens = float(BURST)
        self.stamp = _now()
        #: Records dropped and not yet counted in a warning.
        self.dropped = 0
        #: When the last warning was logged.
        self.warned = -WARN_EVERY
        self._lock = threading.Lock()

    def allow(self) -> bool:
        """Whether one more record may be written now (a token is taken if so)."""
        with self._lock:
            now = _now()
            self.tokens = min(BURST, self.tokens + (now - self.stamp) * PER_SECOND)
            self.stamp = now
            quiet = now - self.warned >= WARN_EVERY
            extra = {"plugin": self.plugin, "stream": self.stream}
            if self.tokens < 1:
                if not self.dropped and quiet:
                    self._log.warning(
                        "plugin %s: %s rate limit reached (%d lines/s); dropping lines",
                        self.plugin,
                        self.stream,
                        PER_SECOND,
                        extra=extra,
                    )
                    self.warned = now
                self.dropped += 1
                return False
            if self.dropped and quiet:
                self._log.warning(
                    "plugin %s: %d %s line(s) dropped (rate limit)",
                    self.plugin,
                    self.dropped,
                    self.stream,
                    extra=extra,
                )
                self.dropped = 0
                self.warned = now
            self.tokens -= 1
            return True
