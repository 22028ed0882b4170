"""Soak: many plugins, many calls from several threads, ~1% faults from the hostile corpus.

    python bench/soak.py                 # 20 plugins, 4 threads, 40,000 calls per phase
    python bench/soak.py --quick         # the CI version (tests/test_soak.py runs it)

Phase 1 runs fault-free; phase 2 the same load with faults injected (trap, stack
overflow, infinite loop cut by the timeout). Printed: calls, faults injected, faults
attributed to the right plugin and hook, restarts, circuit openings, RSS at start /
middle / end, and healthy-call latency p50/p99 in both phases. Exit status 1 if any fault
was lost or misattributed, or a healthy call returned a wrong result.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import pluggy

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from airssys_plugins import (  # noqa: E402
    HookCallError,
    PluginHost,
    PluginTimeout,
    PluginTrap,
    PluginUnavailable,
    RestartPolicy,
)
from tests.demo import PACKAGE, DemoHooks, demo_component  # noqa: E402

FAULTS = {"fail": PluginTrap, "recurse": PluginTrap, "spin": PluginTimeout}


def rss() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def run_phase(
    plugins: dict[str, Any], calls: int, threads: int, fault_rate: float, seed: int
) -> dict[str, Any]:
    stats: dict[str, Any] = {
        "calls": 0,
        "injected": 0,
        "attributed": 0,
        "misattributed": [],
        "wrong": [],
        "unavailable": 0,
        "latencies": [],
    }
    lock = threading.Lock()
    names = sorted(plugins)

    def worker(index: int) -> None:
        rng = random.Random(seed * 1000 + index)
        latencies = []
        for _ in range(calls // threads):
            name = rng.choice(names)
            plugin, k = plugins[name]
            if rng.random() < fault_rate:
                hook = rng.choice(sorted(FAULTS))
                with lock:
                    stats["injected"] += 1
                try:
                    getattr(plugin, hook)(*(() if hook == "spin" else (1,)))
                    with lock:
                        stats["misattributed"].append(f"{name}.{hook} did not fail")
                except PluginUnavailable:
                    with lock:
                        stats["unavailable"] += 1
                        stats["attributed"] += 1
                except HookCallError as exc:
                    ok = exc.plugin == name and exc.hook == hook and isinstance(exc, FAULTS[hook])
                    with lock:
                        if ok:
                            stats["attributed"] += 1
                        else:
                            stats["misattributed"].append(f"{name}.{hook}: {exc!r}")
                continue
            x = rng.randrange(10_000)
            started = time.perf_counter_ns()
            try:
                result = plugin.add_one(x)
            except PluginUnavailable:
                with lock:
                    stats["unavailable"] += 1
                continue
            latencies.append(time.perf_counter_ns() - started)
            if result != x + k:
                with lock:
                    stats["wrong"].append(f"{name}: {x} -> {result}")
        with lock:
            stats["calls"] += calls // threads
            stats["latencies"].extend(latencies)

    workers = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return stats


def percentile(values: list[int], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] / 1000 if ordered else 0.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plugins", type=int, default=20)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--calls", type=int, default=40_000)
    parser.add_argument("--fault-rate", type=float, default=0.01)
    parser.add_argument("--quick", action="store_true", help="small run for CI")
    args = parser.parse_args()
    if args.quick:
        args.plugins, args.calls = 6, 3_000

    workdir = Path(tempfile.mkdtemp(prefix="airssys-soak-"))
    pm = pluggy.PluginManager("demo")
    pm.add_hookspecs(DemoHooks)
    policy = RestartPolicy(max_failures=3, window=2.0, cooldown=0.5, backoff_base=0.0)
    host = PluginHost(pm, package=PACKAGE, timeout=0.05, restart=policy)
    plugins = {}
    for k in range(1, args.plugins + 1):
        wasm = demo_component(workdir, k=k, funcs=["add-one", "fail", "recurse", "spin"])
        plugins[f"p{k}"] = (host.load(wasm, name=f"p{k}"), k)
    rss_start = rss()
    clean = run_phase(plugins, args.calls, args.threads, 0.0, seed=1)
    rss_middle = rss()
    faulty = run_phase(plugins, args.calls, args.threads, args.fault_rate, seed=2)
    rss_end = rss()
    restarts = sum(s.restarts for s in host.statuses().values())
    openings = sum(
        1 for e in host.audit.events(kind="circuit") if e.detail.startswith("circuit opened")
    )
    host.close()

    def row(label: str, a: object, b: object) -> None:
        print(f"{label:32}{a:>14}{b:>14}")

    print(f"plugins {args.plugins}, threads {args.threads}, fault rate {args.fault_rate:.1%}")
    row("", "fault-free", "with faults")
    for label, key in [
        ("calls", "calls"),
        ("faults injected", "injected"),
        ("faults correctly attributed", "attributed"),
        ("calls refused (backoff/open)", "unavailable"),
    ]:
        row(label, f"{clean[key]:,}", f"{faulty[key]:,}")
    row("misattributed or lost", len(clean["misattributed"]), len(faulty["misattributed"]))
    row("wrong results", len(clean["wrong"]), len(faulty["wrong"]))
    for q in (0.5, 0.99):
        row(
            f"healthy p{round(q * 100)} (us)",
            f"{percentile(clean['latencies'], q):.1f}",
            f"{percentile(faulty['latencies'], q):.1f}",
        )
    print(f"restarts {restarts}, circuit openings {openings}")
    mib = [f"{v / 2**20:.1f}" for v in (rss_start, rss_middle, rss_end)]
    print(f"RSS start {mib[0]} MiB, middle {mib[1]} MiB, end {mib[2]} MiB")
    if clean["latencies"] and faulty["latencies"]:
        ratio = statistics.median(faulty["latencies"]) / statistics.median(clean["latencies"])
        print(f"healthy median latency with faults / without: {ratio:.2f}x")
    bad = clean["misattributed"] + faulty["misattributed"] + clean["wrong"] + faulty["wrong"]
    lost = faulty["injected"] - faulty["attributed"] - len(faulty["misattributed"])
    for line in bad[:10]:
        print("PROBLEM:", line)
    if bad or lost:
        print(f"FAILED: {len(bad)} problem(s), {lost} lost fault(s)")
        return 1
    print("OK: every fault attributed to its plugin and hook, every result correct")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
