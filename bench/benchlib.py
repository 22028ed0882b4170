"""Shared pieces of the bench/ scripts: the hookspecs, the guests, the timer, targets, output.

Nothing here times anything by itself. Each script (bench_calls.py, bench_fanout.py,
bench_parallel.py, bench_startup.py) imports what it needs; run_all.py runs them all.
"""

# mypy: disable-error-code="empty-body"
# (hookspecs are declarations: `...` bodies, as in pluggy's docs)
from __future__ import annotations

import contextlib
import ctypes
import importlib
import importlib.util
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
import timeit
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from types import ModuleType
from typing import Any

import attrs
import pluggy
import wasmtime
from wasmtime import _ffi as ffi
from wasmtime.component import Component, Linker

import airssys_plugins
from airssys_plugins import PluginHost, u32
from airssys_plugins.authoring.build import build_guest

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
GUEST_DIR = HERE / "guests" / "bench"
EXTISM_WAT = HERE / "guests" / "extism" / "bench.wat"
KITCHEN_DIR = REPO / "tests" / "guests" / "kitchen"
PACKAGE = "bench:hooks@1.0.0"

hookspec = pluggy.HookspecMarker("bench")
hookimpl = pluggy.HookimplMarker("bench")


@attrs.frozen
class Point:
    """The record of the ``swap`` hook (WIT ``record point { x: u32, y: u32 }``)."""

    x: u32
    y: u32


class Hooks:
    @hookspec
    def add_one(self, x: u32) -> u32: ...

    @hookspec
    def echo(self, text: str) -> str: ...

    @hookspec
    def echo_bytes(self, data: bytes) -> bytes: ...

    @hookspec
    def burn(self, n: u32) -> u32:
        """n rounds of a 32-bit LCG starting from n: a CPU-bound hook."""

    @hookspec
    def swap(self, p: Point) -> Point:
        """A record in, a record out: (x, y) -> (y, x)."""


def burn_reference(n: int) -> int:
    """What the guest's ``burn`` returns, in Python (to check the guest)."""
    acc = n
    for _ in range(n):
        acc = (acc * 1664525 + 1013904223) & 0xFFFFFFFF
    return acc


class NativePlugin:
    """The pure-Python baseline: one hookimpl per hook, doing what the guest does."""

    @hookimpl
    def add_one(self, x: int) -> int:
        return x + 1

    @hookimpl
    def echo(self, text: str) -> str:
        return text

    @hookimpl
    def echo_bytes(self, data: bytes) -> bytes:
        return data

    @hookimpl
    def swap(self, p: Point) -> Point:
        return Point(p.y, p.x)


SHORT_TEXT = "hello, world!"  # 13 bytes of UTF-8
assert len(SHORT_TEXT.encode()) == 13
MB = 1 << 20
BIG_TEXT = "0123456789abcdef" * (MB // 16)  # 1 MiB of ASCII
BIG_BYTES = bytes(range(256)) * (MB // 256)  # 1 MiB, every byte value


# ----------------------------------------------------------------------------- guests


def kitchen_hooks() -> tuple[type, str]:
    """The hookspecs of the 18 MB componentize-py guest (tests/kitchen_hooks.py), and
    their package, imported from the file (tests/ is not a package the benches import)."""
    spec = importlib.util.spec_from_file_location(
        "kitchen_hooks", REPO / "tests" / "kitchen_hooks.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["kitchen_hooks"] = module  # attrs/dataclasses look their module up
    spec.loader.exec_module(module)
    return module.KitchenHooks, module.PACKAGE


def bench_wasm() -> Path:
    """The bench component (built from guests/bench with wasm-tools; cached by content)."""
    return build_guest(GUEST_DIR)


def bench_pm() -> pluggy.PluginManager:
    pm = pluggy.PluginManager("bench")
    pm.add_hookspecs(Hooks)
    return pm


def native_pm() -> pluggy.PluginManager:
    pm = bench_pm()
    pm.register(NativePlugin(), name="native")
    return pm


def framework_pm(wasm: Path, name: str = "bench") -> tuple[pluggy.PluginManager, PluginHost]:
    """A fresh manager whose only plugin is the bench component, loaded by a PluginHost."""
    pm = bench_pm()
    host = PluginHost(pm, package=PACKAGE)
    host.load(wasm, name=name)
    return pm, host


def framework_bound(host: PluginHost, plugin: airssys_plugins.WasmPlugin, hook: str) -> Any:
    """A BoundFunc for ``hook``, built the way PluginHost.load builds the ones pluggy calls."""
    iface, _, func = plugin.hooks[hook].rpartition("#")
    return plugin.instance.bind(hook, iface or None, func, host.contract.hooks[hook].signature)


class RawWasmtime:
    """The same component through wasmtime-py alone: own Engine, Store, Linker.

    With ``same_config=True`` it uses the framework's Engine instead (epoch interruption on,
    ticked by the framework's epoch thread; fuel off, as for a plugin without a fuel
    limit), so the guest runs the very machine code a plugin runs: a control that differs
    from the framework only by the Python call path.
    """

    def __init__(self, wasm: Path, *, same_config: bool = False):
        self.engine = framework_engine() if same_config else wasmtime.Engine()
        self.component = Component.from_file(self.engine, str(wasm))
        self.linker = Linker(self.engine)
        self.store = wasmtime.Store(self.engine)
        if same_config:  # what the framework gives a plugin without limits
            self.store.set_epoch_deadline(2**62)
        self.instance = self.linker.instantiate(self.store, self.component)
        self.funcs = {
            name: self._func(f"bench:hooks/{name}@1.0.0", name)
            for name in ("add-one", "echo", "echo-bytes", "burn", "swap")
        }

    def _func(self, interface: str, function: str) -> Any:
        iface = self.instance.get_export_index(self.store, interface)
        assert iface is not None, f"interface {interface} not exported"
        index = self.instance.get_export_index(self.store, function, iface)
        assert index is not None, f"{interface}#{function} not exported"
        func = self.instance.get_func(self.store, index)
        assert func is not None, f"{interface}#{function} not exported"
        return func

    def ctypes_floor(self) -> tuple[Any, tuple[Any, ...], Any]:
        """``add-one(1)`` as a bare C API call with every argument built in advance.

        Returns ``(call, args, result)``: ``call(*args)`` runs the function and leaves the
        answer in ``result.of.u32``. Nothing is converted, checked or freed: this is the
        floor any Python caller of wasmtime-py's C API pays.
        """
        val = ffi.wasmtime_component_val_t
        params = (val * 1)()
        params[0].kind = 6  # WASMTIME_COMPONENT_U32
        params[0].of.u32 = 1
        result = val()
        func = self.funcs["add-one"]
        args = (
            ctypes.byref(func._func),
            self.store._context(),
            params,
            1,
            ctypes.byref(result),
            1,
        )
        return ffi.wasmtime_component_func_call, args, result

    def close(self) -> None:
        self.store.close()


def framework_engine() -> wasmtime.Engine:
    """The Engine the framework compiles plugins without a fuel limit for (epoch only)."""
    from airssys_plugins.runtime import engine as _engine

    return _engine.engine()


def import_extism() -> ModuleType | None:
    """The Extism Python SDK, or None when it is not installed (``pip install -e '.[bench]'``).

    RUST_LIB_BACKTRACE=0 is set first: with RUST_BACKTRACE=1 in the environment (as on the
    project's machines) and no RUST_LIB_BACKTRACE, Extism's runtime captures a backtrace on
    every call, which roughly doubles its per-call cost. It is set before the import and
    before any call, because Rust reads it once and caches the answer.
    """
    os.environ["RUST_LIB_BACKTRACE"] = "0"
    try:
        return importlib.import_module("extism")
    except ImportError:
        return None


def extism_wasm() -> bytes:
    """The Extism guest (a core module) compiled from its WAT text."""
    return bytes(wasmtime.wat2wasm(EXTISM_WAT.read_text()))


def extism_plugin(extism: ModuleType) -> Any:
    """An Extism Plugin of the bench guest, no WASI, no host functions."""
    return extism.Plugin(extism_wasm(), wasi=False, functions=[])


# ----------------------------------------------------------------------------- timing


@dataclass
class Result:
    label: str
    number: int  # calls per batch
    batches: list[float]  # ns per call, one per batch
    minflt: int = 0  # minor page faults while timing (all batches)

    @property
    def faults_per_call(self) -> float:
        return self.minflt / (self.number * len(self.batches))

    @property
    def median(self) -> float:
        return statistics.median(self.batches)

    @property
    def best(self) -> float:
        return min(self.batches)

    @property
    def spread(self) -> float:
        """(max - min) / median of the batches: how noisy the row was."""
        return (max(self.batches) - min(self.batches)) / self.median


def calibrate(timer: timeit.Timer, target_s: float) -> int:
    """timeit.autorange-style: N such that one batch of N calls takes about ``target_s``."""
    number = 1
    while True:
        elapsed = timer.timeit(number) / 1e9
        if elapsed >= target_s / 10:
            break
        number *= 2 if elapsed > 0 else 10
    return max(1, round(number * target_s / elapsed))


#: The clocks a Bench can time with. "cpu" is the calling thread's CPU time
#: (CLOCK_THREAD_CPUTIME_ID, user + system): it leaves out the time the thread waits while
#: other processes, or the hypervisor, run something else on its core, which on a shared VM
#: is most of the noise. Every call measured here runs on the calling thread (wasm included)
#: and nothing in it sleeps or waits, so on an idle machine both clocks agree.
CLOCKS: dict[str, Callable[[], int]] = {
    "cpu": time.thread_time_ns,
    "wall": time.perf_counter_ns,
}
CLOCK_HELP = (
    "cpu (default): the calling thread's CPU time, robust to load from other processes; "
    "wall: time.perf_counter_ns"
)


class Bench:
    """Rows are calibrated one by one, then timed round-robin: batch k of every row runs in
    round k, so a burst of load from elsewhere on the machine hits all rows alike instead
    of whichever row happened to be running."""

    def __init__(self, env: dict[str, Any], *, repeat: int, target_s: float, clock: str = "cpu"):
        self.env, self.repeat, self.target_s = env, repeat, target_s
        self.clock = CLOCKS[clock]
        self.rows: list[tuple[Result, timeit.Timer, int]] = []

    def add(
        self, label: str, stmt: str, *, number: int | None = None, repeat: int | None = None
    ) -> Result:
        timer = timeit.Timer(stmt, globals=self.env, timer=self.clock)
        timer.timeit(3 if number is None else 1)  # warm-up: first-call caches, lazy binds
        if number is None:
            number = calibrate(timer, self.target_s)
        result = Result(label, number, [])
        self.rows.append((result, timer, self.repeat if repeat is None else repeat))
        return result

    def run(self) -> None:
        for k in range(self.repeat):
            started = time.perf_counter()
            for result, timer, repeat in self.rows:
                if k < repeat:
                    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
                    result.batches.append(timer.timeit(result.number) / result.number)
                    result.minflt += resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
            print(
                f"    round {k + 1}/{self.repeat} done in {time.perf_counter() - started:.1f} s",
                file=sys.stderr,
            )


# ----------------------------------------------------------------------------- targets


@dataclass
class Target:
    """One target of issue 7: ``value <op> limit``, a ratio measured in this run."""

    key: str  # short id, e.g. "fast-calls/extism"
    what: str
    value: float
    op: str  # "<=" or ">="
    limit: float
    detail: str = ""
    inconclusive: str = ""  # why this run cannot judge the target (e.g. the machine)

    @property
    def met(self) -> bool:
        return self.value <= self.limit if self.op == "<=" else self.value >= self.limit

    def line(self) -> str:
        sign = "≤" if self.op == "<=" else "≥"
        verdict = "INCONCLUSIVE" if self.inconclusive else "MET" if self.met else "MISSED"
        return f"{self.value:7.3f}x  (target {sign} {self.limit:g}x: {verdict})"


@dataclass
class Report:
    """What a script hands back to run_all.py (``--json PATH``)."""

    script: str
    targets: list[Target] = field(default_factory=list)
    values: dict[str, float] = field(default_factory=dict)

    def write(self, path: str | None) -> None:
        if path:
            Path(path).write_text(json.dumps(asdict(self), indent=1))


# ----------------------------------------------------------------------------- machine


def _git(*args: str) -> str:
    try:
        out = subprocess.run(
            ["git", "-C", str(REPO), *args], capture_output=True, text=True, timeout=10
        )
    except OSError:
        return ""
    return out.stdout.strip() if out.returncode == 0 else ""


def machine_info() -> list[str]:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        extism_v = f"extism: {version('extism')} (extism-sys {version('extism-sys')})"
    except PackageNotFoundError:
        extism_v = "extism: not installed"
    src = Path(airssys_plugins.__file__).resolve().parent
    if src.is_relative_to(REPO):
        commit = _git("rev-parse", "--short", "HEAD") or "?"
        dirty = _git("status", "--porcelain", "--", "airssys_plugins")
        where = f"work tree at {commit}" + (", with uncommitted changes" if dirty else "")
    else:  # run_all.py --rev REV puts a `git archive` of REV first on PYTHONPATH
        where = os.environ.get("BENCH_FRAMEWORK_LABEL", str(src))
    load1, load5, _ = os.getloadavg()
    return [
        f"platform   : {platform.platform()}",
        f"cpu        : {cpu} ({os.cpu_count()} logical CPUs), load average {load1:.2f} / "
        f"{load5:.2f} (1 / 5 min) at start",
        f"python     : {sys.version.split()[0]} ({platform.python_implementation()})",
        f"wasmtime   : {version('wasmtime')}   pluggy: {pluggy.__version__}   "
        f"airssys-plugins: {airssys_plugins.__version__} ({where})",
        f"peer       : {extism_v}",
        "env        : RUST_BACKTRACE="
        f"{os.environ.get('RUST_BACKTRACE', '(unset)')} "
        f"RUST_LIB_BACKTRACE={os.environ.get('RUST_LIB_BACKTRACE', '(unset)')}",
    ]


def median_ms(f: Callable[[], object], rounds: int) -> float:
    """The median wall time of ``rounds`` calls of ``f`` (after one warm-up call), in ms."""
    f()
    times = []
    for _ in range(rounds):
        t = time.perf_counter()
        f()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1e3


def rss_kib() -> int:
    """Resident set size of this process now (VmRSS from /proc/self/status), in KiB."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS in /proc/self/status")


def fmt_ns(ns: float) -> str:
    return f"{ns:,.0f}"


#: The routes :func:`on_route` forces (``taken``: the default's choice).
ROUTES = ("taken", "raw", "raw, a call per block", "wasmtime's")


@contextlib.contextmanager
def on_route(name: str) -> Iterator[None]:
    """This process's hook calls on route ``name`` of :data:`ROUTES`: ``raw`` every call
    with a raw export (the batch allocator used), ``raw, a call per block`` the same with
    the guest's allocator called once per block, ``wasmtime's`` the raw route switched off
    (every argument below the threshold, and a large result not remembered)."""
    from airssys_plugins.runtime import instance as _instance
    from airssys_plugins.runtime import rawabi

    saved = (rawabi.RAW_MIN_BYTES, rawabi.RAW_BYTES_PER_BLOCK, rawabi.BATCH_FROM,
             _instance.RAW_MIN_BYTES)  # fmt: skip
    if name == "wasmtime's":
        rawabi.RAW_MIN_BYTES = _instance.RAW_MIN_BYTES = 1 << 62  # type: ignore[misc]
    elif name.startswith("raw"):
        rawabi.RAW_MIN_BYTES = rawabi.RAW_BYTES_PER_BLOCK = 0  # type: ignore[misc]
        if name != "raw":
            rawabi.BATCH_FROM = 1 << 62  # type: ignore[misc]
    try:
        yield
    finally:
        (rawabi.RAW_MIN_BYTES, rawabi.RAW_BYTES_PER_BLOCK, rawabi.BATCH_FROM,
         _instance.RAW_MIN_BYTES) = saved  # type: ignore[misc]  # fmt: skip
