"""A Python plugin for bench_scaleout.py's fault run, in a module of its own so that worker
processes (local or Dask) import it by name."""

from __future__ import annotations

import os
from pathlib import Path

from benchlib import burn_reference, hookimpl


class KillOnce:
    """Kills its worker process the first time it sees ``burn(n=at)`` (a marker file
    remembers it happened); answers like the guest otherwise."""

    def __init__(self, at: int, marker: Path):
        self.at = at
        self.marker = marker

    @hookimpl
    def burn(self, n: int) -> int:
        if n == self.at and not self.marker.exists():
            self.marker.write_text(str(os.getpid()))
            os._exit(17)
        return burn_reference(0)  # constant and cheap: the guest does the work
