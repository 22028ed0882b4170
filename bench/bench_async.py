"""Awaitable hooks: ``host.ahook`` overhead, concurrency, and cancel-to-stop latency.

Run from the repository root::

    python bench/bench_async.py            # about 1 min
    python bench/bench_async.py --quick    # smoke run

1. Overhead: ``await host.ahook.add_one(x=1)`` (awaited one after the other in one
   coroutine) against ``pm.hook.add_one(x=1)`` on the same one-plugin host; also a sync
   call inside a cancel scope (the sliced deadlines every awaited WASM call uses).
2. Concurrency: 1,000 hook calls of ``burn(n)`` (CPU work, no host calls) to a hook
   implemented by 4 plugins, each loaded with ``pool_size=2``: sequential ``pm.hook``
   calls, against 1,000 concurrent awaited calls (``asyncio.gather``), with pluggy's order
   and with the hook marked order-independent. Throughput is bounded by the cores.
3. Cancel-to-stop latency: a guest looping for seconds (``burn`` with n = 4e9) is
   cancelled 50-55 ms into its call; the time from ``task.cancel()`` until the awaiting task
   has finished, which ``ahook`` makes wait for the guest to stop (median and max).

Batches are interleaved and the tables show medians; GC is off while timing. Numbers
from a shared 2-core machine are noisy: read the ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import random
import statistics
import time
from collections.abc import Callable
from typing import Any

from benchlib import PACKAGE, Report, bench_pm, bench_wasm, burn_reference, machine_info

from airssys_plugins import PluginHost
from airssys_plugins.runtime.cancel import cancel_scope


def timed(fn: Callable[[], Any], number: int) -> float:
    """ns per call of ``fn`` over ``number`` calls."""
    gc.disable()
    try:
        start = time.perf_counter_ns()
        for _ in range(number):
            fn()
        return (time.perf_counter_ns() - start) / number
    finally:
        gc.enable()


def overhead(rounds: int, number: int) -> dict[str, float]:
    pm = bench_pm()
    with PluginHost(pm, package=PACKAGE) as host:
        host.load(bench_wasm(), name="bench")
        assert pm.hook.add_one(x=1) == [2]

        async def awaited(n: int) -> float:
            start = time.perf_counter_ns()
            for _ in range(n):
                await host.ahook.add_one(x=1)
            return (time.perf_counter_ns() - start) / n

        def in_scope() -> float:
            with cancel_scope():
                return timed(lambda: pm.hook.add_one(x=1), number)

        loop = asyncio.new_event_loop()
        sync, scoped, aw = [], [], []
        try:
            for _ in range(rounds):
                sync.append(timed(lambda: pm.hook.add_one(x=1), number))
                scoped.append(in_scope())
                gc.disable()
                try:
                    aw.append(loop.run_until_complete(awaited(max(1, number // 10))))
                finally:
                    gc.enable()
        finally:
            loop.close()
    out = {
        "pm.hook": statistics.median(sync),
        "pm.hook in a cancel scope": statistics.median(scoped),
        "await ahook": statistics.median(aw),
    }
    print("\n1. overhead, one WASM plugin (add-one u32 -> u32), ns per call (median)")
    base = out["pm.hook"]
    for label, ns in out.items():
        print(f"   {label:<28} {ns:>10,.0f} ns   {ns / base:5.2f}x")
    return out


def concurrency(rounds: int, calls: int, n: int) -> dict[str, float]:
    pm = bench_pm()
    with PluginHost(pm, package=PACKAGE) as host:
        for i in range(4):
            host.load(bench_wasm(), name=f"burn{i}", pool_size=2)
        expected = [burn_reference(n)] * 4
        assert pm.hook.burn(n=n) == expected

        def sequential() -> float:
            start = time.perf_counter()
            for _ in range(calls):
                pm.hook.burn(n=n)
            return time.perf_counter() - start

        async def concurrent() -> float:
            start = time.perf_counter()
            results = await asyncio.gather(*(host.ahook.burn(n=n) for _ in range(calls)))
            elapsed = time.perf_counter() - start
            assert all(r == expected for r in results)
            return elapsed

        seq, conc, indep = [], [], []
        for _ in range(rounds):
            gc.disable()
            try:
                seq.append(sequential())
                conc.append(asyncio.run(concurrent()))
                host.ahook.order_independent("burn")
                indep.append(asyncio.run(concurrent()))
                host.ahook.order_independent("burn", enabled=False)
            finally:
                gc.enable()
    out = {
        "sequential pm.hook": statistics.median(seq),
        "concurrent ahook": statistics.median(conc),
        "concurrent ahook, order-independent": statistics.median(indep),
    }
    print(
        f"\n2. {calls:,} calls of burn(n={n:,}) to 4 plugins (pool_size=2 each), wall time (median)"
    )
    base = out["sequential pm.hook"]
    for label, s in out.items():
        print(f"   {label:<38} {s * 1000:>9,.0f} ms   speed-up {base / s:4.2f}x")
    return out


def cancel_latency(trials: int) -> dict[str, float]:
    pm = bench_pm()
    with PluginHost(pm, package=PACKAGE) as host:
        host.load(bench_wasm(), name="looper")

        async def one() -> float:
            task = asyncio.ensure_future(host.ahook.burn(n=4_000_000_000))
            # a random phase against the 5 ms epoch ticker
            await asyncio.sleep(0.05 + random.uniform(0, 0.005))
            start = time.perf_counter()
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            return time.perf_counter() - start

        async def main() -> list[float]:
            latencies = [await one() for _ in range(trials)]
            assert await host.ahook.add_one(x=1) == [2]  # the next call works
            return latencies

        latencies = asyncio.run(main())
        generation = host.plugins["looper"].instance.generation
    assert generation == trials + 1, generation  # each cancel replaced the instance
    out = {
        "median": statistics.median(latencies),
        "max": max(latencies),
        "min": min(latencies),
    }
    print(f"\n3. cancel-to-stop latency of a looping guest, {trials} trials")
    for label, s in out.items():
        print(f"   {label:<8} {s * 1000:8.2f} ms")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run")
    parser.add_argument("--json", metavar="PATH", help="write the numbers for run_all.py")
    args = parser.parse_args()
    for line in machine_info():
        print(line)
    report = Report("bench_async.py")
    rounds = 2 if args.quick else 7
    for key, value in overhead(rounds, 2_000 if args.quick else 20_000).items():
        report.values[f"overhead {key} ns"] = value
    for key, value in concurrency(
        1 if args.quick else 5, 100 if args.quick else 1_000, 200_000
    ).items():
        report.values[f"1000 calls {key} s"] = value
    for key, value in cancel_latency(5 if args.quick else 30).items():
        report.values[f"cancel-to-stop {key} s"] = value
    report.write(args.json)


if __name__ == "__main__":
    main()
