"""Parallelism: CPU-bound hook calls to 2 plugins from 2 threads, against 1 thread.

Run from the repository root::

    python bench/bench_parallel.py            # about 1 min
    python bench/bench_parallel.py --quick    # smoke run

The hook is ``burn(n: u32) -> u32`` of the bench guest: n rounds of a 32-bit LCG, pure wasm
with no host calls. wasmtime-py calls the C API through ctypes, which releases the GIL
while the guest runs, so two threads can run two guests at once; only the Python part of
each call (argument conversion, pluggy dispatch) holds the GIL.

A batch does the same work either way: 1 thread makes K calls to plugin A and K calls to
plugin B, alternating; 2 threads make K calls each, thread 1 to A and thread 2 to B.
Throughput is 2K / wall time. Batches are interleaved (round k runs the 1-thread and the
2-thread batch of every row) and the table shows medians. GC is off while timing.

Each thread needs a caller that reaches its own plugin only: ``pm.hook.burn(n=...)`` calls
every registered implementation, so with both plugins in one manager each hook call would
run both plugins one after the other in the calling thread. The rows give each thread
its own PluginHost and PluginManager (one plugin each), or use one host with both plugins
and ``pm.subset_hook_caller`` per thread. Two threads on the same plugin do not run in
parallel: a plugin's Store is entered by one thread at a time (its instance holds a lock).
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import statistics
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from benchlib import (
    PACKAGE,
    RawWasmtime,
    Report,
    Target,
    bench_pm,
    bench_wasm,
    burn_reference,
    machine_info,
)

from airssys_plugins import PluginHost

Call = Callable[[], Any]


@dataclass
class Row:
    label: str
    n: int  # burn rounds per call
    call_a: Call
    call_b: Call
    k: int = 0  # calls per plugin per batch
    one: list[float] = field(default_factory=list)  # calls/s, 1 thread
    two: list[float] = field(default_factory=list)  # calls/s, 2 threads

    @property
    def ratio(self) -> float:
        return statistics.median(self.two) / statistics.median(self.one)

    @property
    def paired(self) -> float:
        """Median over rounds of (2-thread / 1-thread) within the same round."""
        return statistics.median(t / o for t, o in zip(self.two, self.one, strict=True))


def one_thread(a: Call, b: Call, k: int) -> float:
    gc.disable()
    try:
        started = time.perf_counter()
        for _ in range(k):
            a()
            b()
        return 2 * k / (time.perf_counter() - started)
    finally:
        gc.enable()


def two_threads(a: Call, b: Call, k: int) -> float:
    gate = threading.Barrier(3)

    def work(f: Call) -> None:
        gate.wait()
        for _ in range(k):
            f()

    threads = [threading.Thread(target=work, args=(f,)) for f in (a, b)]
    for t in threads:
        t.start()
    gc.disable()
    try:
        gate.wait()
        started = time.perf_counter()
        for t in threads:
            t.join()
        return 2 * k / (time.perf_counter() - started)
    finally:
        gc.enable()


def calibrate(row: Row, target_s: float) -> None:
    k = 1
    while True:
        rate = one_thread(row.call_a, row.call_b, k)
        if 2 * k / rate >= target_s / 10:
            break
        k *= 4
    row.k = max(1, round(rate * target_s / 2))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--repeat", type=int, default=7, help="rounds (default 7)")
    ap.add_argument("--target", type=float, default=0.3, help="seconds per batch (default 0.3)")
    ap.add_argument("--quick", action="store_true", help="3 rounds of ~0.08 s batches")
    ap.add_argument("--json", metavar="PATH", help="write the targets and key numbers here")
    args = ap.parse_args(argv)
    if args.quick:
        args.repeat, args.target = 3, 0.08

    print("\nairssys-plugins parallelism benchmark (bench/bench_parallel.py)")
    for line in machine_info():
        print("  " + line)
    wasm = bench_wasm()

    # A: one PluginHost and PluginManager per thread, one plugin each.
    pm_a, pm_b = bench_pm(), bench_pm()
    host_a, host_b = PluginHost(pm_a, package=PACKAGE), PluginHost(pm_b, package=PACKAGE)
    host_a.load(wasm, name="a")
    host_b.load(wasm, name="b")
    # B: one host with both plugins; each thread calls a subset hook caller.
    pm_ab = bench_pm()
    host_ab = PluginHost(pm_ab, package=PACKAGE)
    plug_a, plug_b = host_ab.load(wasm, name="a"), host_ab.load(wasm, name="b")
    only_a = pm_ab.subset_hook_caller("burn", remove_plugins=[plug_b])
    only_b = pm_ab.subset_hook_caller("burn", remove_plugins=[plug_a])
    # Controls: raw wasmtime-py with 2 Stores, on a default Engine and on the framework's
    # Engine (same Config, so the same compiled guest code); and 2 threads on one plugin.
    raw_a, raw_b = RawWasmtime(wasm), RawWasmtime(wasm)
    same_a, same_b = RawWasmtime(wasm, same_config=True), RawWasmtime(wasm, same_config=True)
    hosts = [host_a, host_b, host_ab]

    sizes = (2_000, 50_000, 1_000_000)
    rows: list[Row] = []
    try:
        expect = burn_reference(1000)
        assert pm_a.hook.burn(n=1000) == [expect]
        assert pm_b.hook.burn(n=1000) == [expect]
        assert pm_ab.hook.burn(n=1000) == [expect, expect]
        assert only_a(n=1000) == [expect]
        assert only_b(n=1000) == [expect]
        assert raw_a.funcs["burn"](raw_a.store, 1000) == expect
        assert same_a.funcs["burn"](same_a.store, 1000) == expect
        print(f"  checks     : burn(1000) == {expect} on every path (Python reference)")
        print(
            f"  timing     : {args.repeat} interleaved rounds, batches of ~{args.target:g} s "
            "(1 thread), median throughput"
        )

        fa, fb = raw_a.funcs["burn"], raw_b.funcs["burn"]
        sa, sb = raw_a.store, raw_b.store
        big = sizes[-1]
        # Rows run in this order in every round, so each framework row sits next to the
        # controls it is compared with. The machine probe shows what the machine gives at
        # the moment: hashlib releases the GIL while it hashes.
        blob = bytes(4 << 20)
        rows.append(
            Row(
                "machine probe: sha256 of 4 MiB (no GIL)",
                0,
                lambda: hashlib.sha256(blob).digest(),
                lambda: hashlib.sha256(blob).digest(),
            )
        )
        rows.append(
            Row(
                "raw wasmtime-py, 2 Stores (control)",
                big,
                partial(fa, sa, big),
                partial(fb, sb, big),
            )
        )
        ga, gb = same_a.funcs["burn"], same_b.funcs["burn"]
        rows.append(
            Row(
                "raw wasmtime-py, framework's Engine",
                big,
                partial(ga, same_a.store, big),
                partial(gb, same_b.store, big),
            )
        )
        for n in sorted(sizes, reverse=True):
            rows.append(
                Row(
                    "framework, a PluginHost per thread",
                    n,
                    partial(pm_a.hook.burn, n=n),
                    partial(pm_b.hook.burn, n=n),
                )
            )
            rows.append(
                Row(
                    "framework, 1 host, subset_hook_caller",
                    n,
                    partial(only_a, n=n),
                    partial(only_b, n=n),
                )
            )
        rows.append(
            Row(
                "framework, both threads on ONE plugin",
                big,
                partial(pm_a.hook.burn, n=big),
                partial(pm_a.hook.burn, n=big),
            )
        )
        print("  calibrating ...", file=sys.stderr)
        for row in rows:
            calibrate(row, args.target)
        for k in range(args.repeat):
            started = time.perf_counter()
            for row in rows:
                row.one.append(one_thread(row.call_a, row.call_b, row.k))
                row.two.append(two_threads(row.call_a, row.call_b, row.k))
            print(
                f"    round {k + 1}/{args.repeat} done in {time.perf_counter() - started:.1f} s",
                file=sys.stderr,
            )
    finally:
        for h in hosts:
            h.close()
        for raw in (raw_a, raw_b, same_a, same_b):
            raw.close()

    probe = rows[0]
    raw_big = rows[1]
    # The control `vs raw` divides by: bare wasmtime-py running the same compiled code as the
    # framework (the framework's Engine: epoch checks in every loop; fuel checks only for a
    # plugin with a fuel limit, which these have not). A default Engine compiles a shorter
    # loop, which may scale differently on a machine whose two vCPUs share a core's
    # execution units: comparing with it mixes the Config's effect into the framework's.
    same_big = rows[2]

    def vs_raw(row: Row) -> float:
        """Median over rounds of this row's 2/1-thread ratio over the same-Config control's."""
        return statistics.median(
            (t / o) / (rt / ro)
            for t, o, rt, ro in zip(row.two, row.one, same_big.two, same_big.one, strict=True)
        )

    print("\nparallelism: throughput of burn(n) calls, 2 threads vs 1 thread (2 plugins)")
    head = (
        f"  {'row':<40} {'n':>9} {'us/call':>9} {'1 thread/s':>11} {'2 threads/s':>12} "
        f"{'ratio':>7} {'paired':>7} {'vs raw':>7} {'K':>6}"
    )
    print(head)
    print("  " + "-" * (len(head) - 2))
    for row in rows:
        one, two = statistics.median(row.one), statistics.median(row.two)
        rounds = f"{row.n:,}" if row.n else "-"
        print(
            f"  {row.label:<40} {rounds:>9} {1e6 / one:>9,.1f} {one:>11,.0f} {two:>12,.0f} "
            f"{row.ratio:>6.2f}x {row.paired:>6.2f}x {vs_raw(row):>6.2f}x {row.k:>6,}"
        )
    print(
        "  ratio = median 2-thread throughput / median 1-thread throughput; paired = median of\n"
        "  the per-round ratios; vs raw = median of (this row's per-round ratio / that of raw\n"
        "  wasmtime-py on the framework's Engine in the same round): about 1.0 when the\n"
        "  framework scales as well as bare wasmtime-py running the same guest code"
    )
    clean = [k for k, (t, o) in enumerate(zip(probe.two, probe.one, strict=True)) if t / o >= 1.75]
    hosts_big = next(r for r in rows if r.n == big and r.label.startswith("framework, a Plug"))
    subset_big = next(r for r in rows if r.n == big and "subset" in r.label)
    fw_rate, raw_rate = statistics.median(hosts_big.one), statistics.median(raw_big.one)
    print(
        f"  one burn({big:,}) call in 1 thread: framework {1e6 / fw_rate:,.0f} us, raw "
        f"wasmtime-py {1e6 / raw_rate:,.0f} us; the guest takes {raw_rate / fw_rate:.2f}x as "
        "long\n  under the framework's Engine (its Config compiles epoch checks into the guest)"
    )
    if clean:
        print(
            f"  rounds in which the probe reached 1.75x: {len(clean)} of {len(probe.one)}; "
            "median ratio in those rounds:"
        )
        for row in (probe, raw_big, same_big, hosts_big, subset_big):
            in_clean = statistics.median(row.two[k] / row.one[k] for k in clean)
            print(f"    {row.label:<52} = {in_clean:6.2f}x")
    else:
        print(f"  the probe reached 1.75x in none of the {len(probe.one)} rounds")
    # The target assumes 2 free cores. On a shared VM the two vCPUs are not always backed
    # by two physical cores. When the GIL-free probe, or bare wasmtime-py running the same
    # guest, does not reach the target in this run, the run cannot tell whether the
    # framework would: the framework's own share shows in the `vs raw` column.
    machine = ""
    if probe.ratio < 1.8:
        machine = f"the machine itself scaled {probe.ratio:.2f}x (GIL-free probe)"
    elif same_big.ratio < 1.8:
        machine = (
            f"bare wasmtime-py on the framework's Engine itself scaled {same_big.ratio:.2f}x "
            "in this run"
        )
    targets = [
        Target(
            "parallel/hosts",
            f"framework, a host per thread, burn({big:,})",
            hosts_big.ratio,
            ">=",
            1.8,
            detail=f"probe {probe.ratio:.2f}x, raw wasmtime-py {raw_big.ratio:.2f}x "
            f"(framework's Engine {same_big.ratio:.2f}x), vs raw {vs_raw(hosts_big):.2f}",
            inconclusive=machine,
        ),
        Target(
            "parallel/subset",
            f"framework, subset_hook_caller, burn({big:,})",
            subset_big.ratio,
            ">=",
            1.8,
            detail=f"probe {probe.ratio:.2f}x, raw wasmtime-py {raw_big.ratio:.2f}x "
            f"(framework's Engine {same_big.ratio:.2f}x), vs raw {vs_raw(subset_big):.2f}",
            inconclusive=machine,
        ),
    ]
    print("  targets (issue 7; 2-thread / 1-thread throughput, medians):")
    for t in targets:
        print(f"    {t.what:<52} = {t.line()}  [{t.detail}]")
    if machine:
        print(f"    INCONCLUSIVE: {machine}, below the 1.8x the target needs")
        print(
            f"    the framework's own share: 'vs raw' = {vs_raw(hosts_big):.2f} "
            f"(host per thread), {vs_raw(subset_big):.2f} (subset_hook_caller)"
        )
    report = Report("bench_parallel", targets)
    for row in rows:
        report.values[f"{row.label} n={row.n} ratio"] = row.ratio
        report.values[f"{row.label} n={row.n} vs raw"] = vs_raw(row)
    report.write(args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
