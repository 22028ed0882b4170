"""Python plugins and a host function for tests/test_scaleout.py, importable by worker
processes (a test module's own classes would be too, but these are shared by the CLI test)."""

from __future__ import annotations

import ctypes
import os
import threading
from pathlib import Path

from tblib import pickling_support  # installed with distributed (the [dask] extra)

from airssys_plugins import PluginTimeout

from .demo import hookimpl


class Doubler:
    """A picklable Python plugin: add_one answers 2x; raises for x == 13."""

    @hookimpl
    def add_one(self, x: int) -> int:
        if x == 13:
            raise ValueError("13 is unlucky")
        return 2 * x


class Killer:
    """Kills its worker process at x == ``at``: once (a marker file says it happened),
    or every time when ``always``."""

    def __init__(self, at: int, marker: Path, *, always: bool = False):
        self.at = at
        self.marker = marker
        self.always = always

    @hookimpl
    def add_one(self, x: int) -> int:
        if x == self.at and (self.always or not self.marker.exists()):
            self.marker.write_text(str(os.getpid()))
            os._exit(17)
        return x


class Unpicklable:
    """Holds a lock: cannot travel to a worker."""

    def __init__(self) -> None:
        self.lock = threading.Lock()

    @hookimpl
    def add_one(self, x: int) -> int:
        return x


def pid_of_worker(x: int) -> int:
    """A host function defined at module level: it travels by name."""
    return os.getpid()


class Sleeper:
    """add_one takes ``seconds``: a batch long enough to be interrupted."""

    def __init__(self, seconds: float):
        self.seconds = seconds

    @hookimpl
    def add_one(self, x: int) -> int:
        import time

        time.sleep(self.seconds)
        return x


class WorkerPid:
    """add_one answers the pid of the worker process it runs in."""

    @hookimpl
    def add_one(self, x: int) -> int:
        return os.getpid()


class _HoldsPointer(Exception):
    """An exception that does not pickle: like a wasmtime error, it holds a ctypes
    pointer."""

    def __init__(self) -> None:
        super().__init__("native error")
        self.ptr = ctypes.pointer(ctypes.c_int(7))


class TimesOutNatively:
    """add_one raises a PluginTimeout caused by an exception that cannot be pickled, as
    the runtime does for a guest stopped at its deadline (the cause: a wasmtime error)."""

    @hookimpl
    def add_one(self, x: int) -> int:
        if x == 5:
            # As on a Dask worker where the project's errors were imported before
            # distributed (a script importing airssys_plugins first): distributed installs
            # tblib's exception pickling, which takes an exception's cause along.
            pickling_support.install(PluginTimeout)
            raise PluginTimeout(
                f"plugin 'native' timed out in hook 'add_one' for x={x}",
                plugin="native",
                hook="add_one",
            ) from _HoldsPointer()
        return x
