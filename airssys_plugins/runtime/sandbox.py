"""What a plugin's Store gets: WASI configuration, limits, host interfaces, stdio logging."""

from __future__ import annotations

import collections
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Final

from wasmtime import Store, WasiConfig
from wasmtime.component import Linker

from .. import _attrs as attrs
from .. import _log as logging
from .._ratelimit import RateLimit
from ..contract import wit
from . import engine as _engine
from .callbacks import DeferredHostFunc, HostFunc, link_refusal
from .layout import CoreLayout

__all__ = ["HostLinker", "SandboxSpec", "StdioLogger", "StoreLimits", "store_limits"]

#: The WASI filesystem interface of wasmtime 50's WASI p2 (guests built for any 0.2.x link
#: to it; tests/test_hostile_calls.py checks the refusal below replaces its symlink-at).
WASI_FILESYSTEM_TYPES: Final = "wasi:filesystem/types@0.2.12"

_MAX_LINE: Final = 2000


@attrs.frozen
class SandboxSpec:
    """Everything a Store of one plugin is configured with (deny by default)."""

    preopens: tuple[tuple[Path, str, bool], ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    #: Host interfaces the plugin may import (full names without version, e.g. airssys:host/log).
    interfaces: frozenset[str] = frozenset()
    timeout: float | None = 1.0
    #: Seconds start-up (instantiation, the component's start functions) may take.
    startup_timeout: float = 10.0
    fuel: int | None = None
    memory: int | None = None
    instances: int | None = None
    tables: int | None = None
    max_result_bytes: int | None = None
    stdio_logger: str | None = None


class HostLinker:
    """A Linker with WASI p2 and the host functions a PluginHost provides.

    Every host interface is defined once here; whether a plugin may *use* one is decided per
    plugin (its imports are checked at load, each call is checked again).
    """

    def __init__(self, functions: Sequence[HostFunc | DeferredHostFunc] = ()):
        self._by_interface: dict[str, list[HostFunc | DeferredHostFunc]] = {}
        for func in functions:
            self._by_interface.setdefault(func.interface, []).append(func)
        #: What plugins may import from it: unversioned interface names, and the names of
        #: functions and resources imported at a world's root (:func:`wit.import_key`).
        self.interfaces = frozenset(wit.import_key(f.interface, f.name) for f in functions)
        self._linkers: dict[bool, Linker] = {}
        self._lock = threading.Lock()

    @property
    def linker(self) -> Linker:
        """The Linker for the Engine without fuel metering."""
        return self.for_engine(False)

    def for_engine(self, fuel: bool) -> Linker:
        """The Linker for :func:`engine` ``(fuel)`` (each made on first use)."""
        linker = self._linkers.get(fuel)
        if linker is None:
            with self._lock:
                linker = self._linkers.get(fuel)
                if linker is None:
                    linker = self._linkers[fuel] = self._build(fuel)
        return linker

    def _build(self, fuel: bool) -> Linker:
        linker = Linker(_engine.engine(fuel))
        linker.add_wasip2()
        # Guests may not create symbolic links: a link is made on the host's disk, and
        # one pointing out of the preopen (`../../etc`) would be followed by any host
        # process that reads the directory, though never by the guest. Hard links stay
        # (they name a file already inside the preopen).
        linker.allow_shadowing = True
        with linker.root() as root, root.add_instance(WASI_FILESYSTEM_TYPES) as types:
            link_refusal(types, "[method]descriptor.symlink-at")
        linker.allow_shadowing = False
        with linker.root() as root:
            for func in self._by_interface.get(wit.WORLD_ROOT, ()):
                func.link(root)  # imported at the world's root, not from an interface
            for interface, funcs in self._by_interface.items():
                if interface == wit.WORLD_ROOT:
                    continue
                with root.add_instance(interface) as target:
                    for func in funcs:
                        func.link(target)
        return linker


_default_linker: HostLinker | None = None
_default_lock = threading.Lock()


def default_linker() -> HostLinker:
    global _default_linker
    with _default_lock:
        if _default_linker is None:
            _default_linker = HostLinker()
        return _default_linker


#: Bytes one table element may take in wasmtime (a funcref is a pointer; externrefs are
#: smaller): 2**25 elements grown by a guest measured 266 MiB of RSS.
TABLE_ELEMENT_BYTES: Final = 8
#: Tables together get at most this fraction (1/16) of a plugin's memory limit.
TABLE_SHARE: Final = 16
# Store limits are i64 in the C API (larger values would wrap): anything above is "none".
_UNLIMITED: Final = 2**62


@attrs.frozen
class StoreLimits:
    """The wasmtime store limits of one instance of a plugin (-1: no limit)."""

    memory_size: int
    table_elements: int
    instances: int
    tables: int
    memories: int

    def total(self) -> int | None:
        """The most bytes all linear memories and tables together may take (None: no
        bound)."""
        if self.memory_size < 0 or self.table_elements < 0:
            return None
        return (
            self.memories * self.memory_size
            + self.tables * self.table_elements * TABLE_ELEMENT_BYTES
        )


def _cap(value: int | None) -> int:
    return -1 if value is None or value >= _UNLIMITED else value


def store_limits(spec: SandboxSpec, layout: CoreLayout | None) -> StoreLimits:
    """The store limits that keep *all* of a plugin instance's memory within
    ``spec.memory``.

    wasmtime bounds each linear memory and each table on its own, so the total is split:
    the memories and tables counts are capped at those the component defines (``layout``;
    one memory and ``spec.tables`` tables if unknown), tables share 1/16 of the limit
    (``table_elements = memory // 16 // (8 * tables)``), and each memory gets an equal part
    of the rest (``memory_size = (memory - tables * table_elements * 8) // memories``).
    So ``memories * memory_size + tables * table_elements * 8 <= memory``. Without a
    memory limit only the counts are bounded.
    """
    if spec.memory is None or spec.memory >= _UNLIMITED:
        return StoreLimits(-1, -1, _cap(spec.instances), _cap(spec.tables), -1)
    memories = 1 if layout is None else layout.memories
    tables = (spec.tables or 1) if layout is None else layout.tables
    if spec.tables is not None:
        tables = min(tables, spec.tables)
    budget = spec.memory
    table_elements = budget // TABLE_SHARE // (TABLE_ELEMENT_BYTES * max(tables, 1))
    memory_size = (budget - tables * table_elements * TABLE_ELEMENT_BYTES) // max(memories, 1)
    return StoreLimits(memory_size, table_elements, _cap(spec.instances), tables, memories)


#: :func:`store_limits` by what it reads (the spec's memory, instances and tables, the
#: layout's memories and tables): one record per distinct set, not one per instantiation.
_LIMITS: dict[tuple[int | None, int | None, int | None, tuple[int, int] | None], StoreLimits] = {}


def _store_limits(spec: SandboxSpec, layout: CoreLayout | None) -> StoreLimits:
    counts = None if layout is None else (layout.memories, layout.tables)
    key = (spec.memory, spec.instances, spec.tables, counts)
    found = _LIMITS.get(key)
    if found is None:
        if len(_LIMITS) >= 1024:
            _LIMITS.clear()
        found = _LIMITS[key] = store_limits(spec, layout)
    return found


def configure_store(
    store: Store,
    spec: SandboxSpec,
    needs_wasi: bool,
    name: str,
    *,
    fuel: bool = False,
    layout: CoreLayout | None = None,
) -> StdioLogger | None:
    """Configure a new Store of a plugin (``fuel``: its Engine meters fuel; ``layout``:
    the memories and tables its component defines, see :func:`store_limits`). Returns
    the guest's stderr, whose :meth:`StdioLogger.tail` a failed call attaches to its error
    (None: the plugin has no WASI stdio)."""
    stderr = None
    if needs_wasi:
        wasi = WasiConfig()
        if spec.env:
            wasi.env = [list(pair) for pair in spec.env]
        for host, guest, writable in spec.preopens:
            wasi.preopen_dir(str(host), guest, fs_mutable=writable)
        if spec.stdio_logger is not None:
            wasi.stdout_custom = StdioLogger(spec.stdio_logger, name, "stdout")
            wasi.stderr_custom = stderr = StdioLogger(spec.stdio_logger, name, "stderr")
        store.set_wasi(wasi)
    limits = _store_limits(spec, layout)
    store.set_limits(
        memory_size=limits.memory_size,
        table_elements=limits.table_elements,
        instances=limits.instances,
        tables=limits.tables,
        memories=limits.memories,
    )
    if fuel:
        store.set_fuel(2**64 - 1 if spec.fuel is None else spec.fuel)
    return stderr


def escape(text: str) -> str:
    """Make guest output safe for a terminal or log file: control characters escaped."""
    out = []
    for ch in text:
        code = ord(ch)
        if ch == "\t" or (32 <= code < 127) or (code >= 160 and not 0x2028 <= code <= 0x2029):
            out.append(ch)
        elif code < 256:
            out.append(f"\\x{code:02x}")
        else:
            out.append(f"\\u{code:04x}")
    return "".join(out)


#: Lines of a guest's stderr kept for the error of a failed call (its traceback's end).
RECENT_LINES: Final = 40


class StdioLogger:
    """Guest stdout/stderr -> Python logging, one record per line, escaped, rate-limited.

    The last :data:`RECENT_LINES` lines are also kept in ``recent`` (whatever the log
    level or the rate limit), so a failed call can show what the guest printed;
    the caller clears ``recent`` when a call begins.
    """

    def __init__(self, logger: str, plugin: str, stream: str):
        self.log = logging.getLogger(logger)
        self.plugin = plugin
        self.stream = stream
        self.partial = b""
        #: Its rate limit (a record per line; see :mod:`.._ratelimit`).
        self.limit = RateLimit(self.log, plugin, stream)
        self.lock = threading.Lock()
        self.recent: collections.deque[str] = collections.deque(maxlen=RECENT_LINES)

    def tail(self) -> tuple[str, ...]:
        """What the guest wrote since ``recent`` was last cleared, unfinished line too."""
        with self.lock:
            partial = escape(self.partial.decode("utf-8", "replace"))
            return (*self.recent, *([partial] if partial.strip() else []))

    def __call__(self, data: bytes) -> int:
        with self.lock:
            lines = (self.partial + data).split(b"\n")
            self.partial = lines.pop()[-_MAX_LINE:]
            self._emit(lines)
        return len(data)

    def _emit(self, lines: Iterable[bytes]) -> None:
        for raw in lines:
            text = escape(raw[:_MAX_LINE].decode("utf-8", "replace"))
            self.recent.append(text)
            if self.limit.allow():
                self.log.info(
                    "[%s %s] %s",
                    self.plugin,
                    self.stream,
                    text,
                    extra={"plugin": self.plugin, "stream": self.stream},
                )
