"""Per-call isolation (issue 18, section 4): a hook call on a fresh instance.

Run from the repository root::

    python bench/bench_isolation.py            # about 1-2 min (the 18 MB guest is built once)
    python bench/bench_isolation.py --quick    # smoke run
    python bench/bench_isolation.py --skip-python   # the WAT guest only

Rows, for the bench WAT guest (``add_one``) and the 18 MB componentize-py guest of
tests/guests/kitchen (``echo_u32``):

* ``warm``: ``pm.hook.<hook>(...)`` on a plugin loaded as usual (``isolation="shared"``),
  whose instance lives across calls;
* ``per-call``: the same call on a plugin loaded with ``isolation="per-call"``, a fresh
  instance ready for it (the refill thread had time to prepare it);
* ``per-call stream``: per-call calls back to back: each waits for the refill, so this is
  the throughput bound (about one instantiation per call);
* ``fresh inline``: the framework's fresh instance made on the call path (the instance is
  discarded before each call): what the prepared spare saves;
* ``raw floor``: raw wasmtime-py, default Engine: a new Store (and WASI for the Python
  guest), instantiate, look the function up, call it, close the Store.

Every call of the latency rows is timed alone with the wall clock (the refill runs on
another thread, so the thread CPU clock would leave it out) after the same idle gap, rows
interleaved round by round; each row reports the median over all its calls. Memory: the
RSS a plugin adds, shared against per-call, measured in a child process each.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pluggy
import wasmtime
from benchlib import (
    KITCHEN_DIR,
    PACKAGE,
    Report,
    Target,
    bench_pm,
    bench_wasm,
    kitchen_hooks,
    machine_info,
    rss_kib,
)
from wasmtime.component import Component, Linker

from airssys_plugins import PluginHost, WasmPlugin
from airssys_plugins.authoring.build import build_guest

#: The idle time before each timed call of the latency rows (a stream of calls that
#: leaves the refill thread time to work, as a server's requests do).
GAP_S = 0.0005


class Guest:
    """One guest loaded twice (shared and per-call), and raw wasmtime-py beside them."""

    def __init__(
        self,
        label: str,
        wasm: Path,
        make_pm: Callable[[], pluggy.PluginManager],
        package: str,
        hook: str,
        export: tuple[str, str],
        wasi: bool,
    ):
        self.label, self.hook, self.wasi = label, hook, wasi
        self.hosts = [PluginHost(make_pm(), package=package) for _ in range(3)]
        warm_host, fresh_host, inline_host = self.hosts
        self.warm = warm_host.load(wasm, name="warm")
        self.fresh: WasmPlugin = fresh_host.load(wasm, name="fresh", isolation="per-call")
        self.inline = inline_host.load(wasm, name="inline")
        assert self.fresh.fresh is not None
        self.slots = self.fresh.fresh
        self.call_warm = _caller(warm_host.pm, hook)
        self.call_fresh = _caller(fresh_host.pm, hook)
        self.call_inline = _caller(inline_host.pm, hook)
        # raw wasmtime-py: its own default Engine
        self.engine = wasmtime.Engine()
        self.component = Component.from_file(self.engine, str(wasm))
        self.linker = Linker(self.engine)
        if wasi:
            self.linker.add_wasip2()
        iface = self.component.get_export_index(export[0])
        assert iface is not None
        self.index = self.component.get_export_index(export[1], iface)
        assert self.index is not None

    def raw_fresh_call(self) -> Any:
        store = wasmtime.Store(self.engine)
        if self.wasi:
            store.set_wasi(wasmtime.WasiConfig())
        instance = self.linker.instantiate(store, self.component)
        func = instance.get_func(store, self.index)
        assert func is not None
        result = func(store, 1)
        store.close()
        return result

    def close(self) -> None:
        for host in self.hosts:
            host.close()


def _caller(pm: pluggy.PluginManager, hook: str) -> Callable[[], Any]:
    caller = getattr(pm.hook, hook)
    arg = caller.spec.argnames[0]
    return lambda: caller(**{arg: 1})


def time_each(fn: Callable[[], Any], n: int, before: Callable[[], None]) -> list[float]:
    """ns of each of ``n`` calls of ``fn``, each after ``before()`` (not timed)."""
    out = []
    clock = time.perf_counter_ns
    for _ in range(n):
        before()
        t0 = clock()
        fn()
        out.append(clock() - t0)
    return out


def time_stream(fn: Callable[[], Any], n: int) -> float:
    """ns per call of ``n`` calls back to back."""
    t0 = time.perf_counter_ns()
    for _ in range(n):
        fn()
    return (time.perf_counter_ns() - t0) / n


def measure(guest: Guest, rounds: int, n: int) -> dict[str, float]:
    """Median ns per call of each row, rows interleaved round by round."""
    slots = guest.slots
    inline_inst = guest.inline.instance

    def gap() -> None:
        time.sleep(GAP_S)

    def ready_then_gap() -> None:
        slots.wait_ready()
        time.sleep(GAP_S)

    def discard_then_gap() -> None:
        inline_inst.discard()  # the next call instantiates on the call path
        time.sleep(GAP_S)

    rows: dict[str, list[float]] = {
        "warm": [],
        "per-call": [],
        "fresh inline": [],
        "raw floor": [],
        "per-call stream": [],
        "warm stream": [],
    }
    for fn in (guest.call_warm, guest.call_fresh, guest.call_inline, guest.raw_fresh_call):
        for _ in range(5):
            fn()  # warm-up: first-call caches, the refill thread
    gc.disable()
    try:
        for r in range(rounds):
            rows["warm"] += time_each(guest.call_warm, n, gap)
            rows["per-call"] += time_each(guest.call_fresh, n, ready_then_gap)
            rows["fresh inline"] += time_each(guest.call_inline, n, discard_then_gap)
            rows["raw floor"] += time_each(guest.raw_fresh_call, n, gap)
            slots.wait_ready()
            rows["per-call stream"].append(time_stream(guest.call_fresh, n))
            slots.wait_ready()
            rows["warm stream"].append(time_stream(guest.call_warm, n))
            print(f"    {guest.label}: round {r + 1}/{rounds} done", file=sys.stderr)
    finally:
        gc.enable()
    return {name: statistics.median(values) for name, values in rows.items()}


# ----------------------------------------------------------------------------- memory


def child_rss(wasm: str, isolation: str) -> None:
    """In a child process: the RSS the kitchen plugin adds, loaded with ``isolation``."""
    hooks, package = kitchen_hooks()
    pm = pluggy.PluginManager("kitchen")
    pm.add_hookspecs(hooks)
    host = PluginHost(pm, package=package)
    # a first plugin pays for the Engine, the WASI linker, the epoch thread: not counted
    host.load(wasm, name="first")
    assert pm.hook.echo_u32(x=1) == [1]
    before = rss_kib()
    plugin = host.load(wasm, name="measured", isolation=isolation)  # type: ignore[arg-type]
    for _ in range(20):
        pm.hook.echo_u32(x=1)
    if plugin.fresh is not None:
        plugin.fresh.wait_ready(timeout=60)
    after = rss_kib()
    host.close()
    print(json.dumps({"rss_kib": after - before, "instances": len(plugin.instances)}))


def memory(wasm: Path) -> dict[str, dict[str, int]]:
    out = {}
    for isolation in ("shared", "per-call"):
        proc = subprocess.run(
            [sys.executable, __file__, "--child-rss", str(wasm), isolation],
            capture_output=True,
            text=True,
            check=True,
            env=dict(os.environ),
        )
        out[isolation] = json.loads(proc.stdout.strip().splitlines()[-1])
    return out


# ----------------------------------------------------------------------------- main


def wat_guest() -> Guest:
    return Guest(
        "WAT guest add_one",
        bench_wasm(),
        bench_pm,
        PACKAGE,
        "add_one",
        ("bench:hooks/add-one@1.0.0", "add-one"),
        wasi=False,
    )


def python_guest(wasm: Path) -> Guest:
    hooks, package = kitchen_hooks()

    def make_pm() -> pluggy.PluginManager:
        pm = pluggy.PluginManager("kitchen")
        pm.add_hookspecs(hooks)
        return pm

    return Guest(
        "18 MB Python guest echo_u32",
        wasm,
        make_pm,
        package,
        "echo_u32",
        ("test:kitchen/echo-u32@1.0.0", "echo-u32"),
        wasi=True,
    )


def print_rows(label: str, rows: dict[str, float]) -> None:
    warm = rows["warm"]
    print(f"\n{label} (µs per call, medians; vs warm = row / warm call)")
    print(f"  {'row':<18} {'µs/call':>9} {'vs warm':>8}")
    for name, ns in rows.items():
        print(f"  {name:<18} {ns / 1e3:>9.2f} {ns / warm:>7.2f}x")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--quick", action="store_true", help="3 rounds of 50 calls")
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--calls", type=int, default=200, help="calls per row per round")
    ap.add_argument("--skip-python", action="store_true", help="skip the 18 MB Python guest")
    ap.add_argument("--json", metavar="PATH", help="write the targets and key numbers here")
    ap.add_argument("--child-rss", nargs=2, metavar=("WASM", "ISOLATION"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child_rss:
        child_rss(*args.child_rss)
        return 0
    if args.quick:
        args.rounds, args.calls = 3, 50
    print("airssys-plugins per-call isolation benchmark (bench/bench_isolation.py)")
    for line in machine_info():
        print("  " + line)
    print(
        f"  timing     : {args.rounds} rounds x {args.calls} calls per row, each call timed "
        f"alone (wall clock) after a {GAP_S * 1e3:g} ms idle gap; stream rows: calls back "
        "to back"
    )
    report = Report("bench_isolation")
    guests: list[tuple[str, Callable[[], Guest]]] = [("wat", wat_guest)]
    kitchen: Path | None = None
    if not args.skip_python:
        kitchen = build_guest(KITCHEN_DIR)
        guests.append(("python", lambda: python_guest(kitchen)))  # type: ignore[arg-type]
    for key, make in guests:
        guest = make()
        try:
            expected = guest.raw_fresh_call()  # add_one(1) == 2, echo_u32(1) == 1
            assert guest.call_warm() == guest.call_fresh() == guest.call_inline() == [expected]
            rows = measure(guest, args.rounds, args.calls)
        finally:
            guest.close()
        print_rows(guest.label, rows)
        for name, ns in rows.items():
            report.values[f"isolation/{key}/{name.replace(' ', '_')} ns"] = ns
        if key == "wat":
            report.targets.append(
                Target(
                    "isolation/wat",
                    "per-call isolated call / warm call, WAT guest",
                    rows["per-call"] / rows["warm"],
                    "<=",
                    2.0,
                    detail=f"stream {rows['per-call stream'] / rows['warm stream']:.2f}x of a "
                    f"warm stream; raw floor {rows['raw floor'] / rows['warm']:.2f}x",
                )
            )
        else:
            report.targets.append(
                Target(
                    "isolation/python",
                    "per-call isolated call, 18 MB Python guest / 1 ms",
                    rows["per-call"] / 1e6,
                    "<=",
                    1.0,
                    detail=f"{rows['per-call'] / rows['warm']:.2f}x a warm call; stream "
                    f"{rows['per-call stream'] / 1e6:.2f} ms; raw floor "
                    f"{rows['raw floor'] / 1e6:.2f} ms",
                )
            )
    if kitchen is not None:
        mem = memory(kitchen)
        print("\nRSS one more kitchen plugin adds (after 20 calls; child process each)")
        for isolation, m in mem.items():
            print(
                f"  {isolation:<9} {m['rss_kib'] / 1024:7.1f} MiB  ({m['instances']} instance(s))"
            )
            report.values[f"isolation/python/rss_{isolation} KiB"] = m["rss_kib"]
    print("\n  targets (issue 18, section 4):")
    for t in report.targets:
        print(f"    {t.what:<52} = {t.line()}  [{t.detail}]")
    report.write(args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
