"""Scale-out: a CPU-bound hook over 2,000 items in 1 process, a local pool of 2 processes
and a Dask LocalCluster of 2 workers (with Dask's defaults, and with quiet workers);
dispatch overhead; a fault run.

Run from the repository root::

    python bench/bench_scaleout.py            # about 2 min
    python bench/bench_scaleout.py --quick    # smoke run (200 items)

The hook is the bench guest's ``burn(n)`` (pure wasm, no host calls), with ``n`` chosen
so that one call takes about 2 ms of CPU here. Each engine is measured in a block of its
own, with only its own processes alive (an idle Dask cluster beside the local pool would
take CPU from it), in rounds that each run both:

* ``1 process``: ``pm.hook.burn(n=...)`` in a loop in this process: the block's baseline;
* ``local pool (2)``: ``host.map`` on a :class:`LocalPool` of 2 processes, started and
  warmed (host built, component deserialised) before timing;
* ``dask (2 workers)``: ``host.map(client=...)`` on a ``LocalCluster`` of 2 worker
  processes with one thread each, warmed the same way, with Dask's default settings;
* ``dask, quiet workers``: the same with the settings of ``QUIET_DASK`` (the how-to's
  advice for CPU-bound batches: no statistical profiler, slower monitors).

Throughput is items/s and its ratio to the block's 1-process rate (medians, and each
round's ratio). ``first`` is the time from the call to the first item back; ``chunks``
how many chunks the batch was cut into (sized by the workers' CPU time per item).
``CPU`` is the CPU time of this process and every process under it (workers, Dask's)
during the batch, against the 1-process loop's, and is split by part: ``work`` (the CPU
the workers report for their hook calls), the workers' other CPU (Dask's worker event
loop and profiler, the epoch ticker, pickling), and this process's by thread: dispatch
(the main thread, the pool's feeder threads), Dask's event loop (a LocalCluster's client,
scheduler and nannies), the epoch ticker. ``beyond work`` is everything but the work
against the work of the same batch: unlike wall-clock ratios, it barely moves when the
machine is shared, and 2 / (1 + beyond work) is the ratio 2 workers on 2 cores could
reach at best. The dispatch overhead rows run the trivial ``add_one`` hook, where
nearly all the time is dispatch: (wall time x workers / items) minus a local call. The
fault runs kill one worker process mid-batch (a Python plugin exits on one item) and
check that every item came back, and which were run again. ``worker build`` starts a new
process with an empty compile cache (a worker on another machine) and builds the host
there from a shipment with the host's compiled artefacts and from one without (then it
compiles). The load average is printed before and after.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from pathlib import Path
from typing import Any

import attrs
import psutil  # installed with the [dask] extra (distributed needs it)
from benchlib import PACKAGE, REPO, bench_pm, bench_wasm, burn_reference, machine_info
from scaleout_plugins import KillOnce

from airssys_plugins import Limits, LocalPool, PluginHost
from airssys_plugins.host.shipment import Shipment, capture


def calibrate(host: PluginHost, target: float = 0.002) -> int:
    """The burn n that takes about ``target`` seconds of CPU per call here (CPU time of
    this thread, where the guest runs: waiting for a core on a busy machine is left out)."""
    n = 10_000
    while True:
        took = min(_cpu_time(host, n) for _ in range(5))
        if took > target / 4:
            return max(1, int(n * target / took))
        n *= 4


def _cpu_time(host: PluginHost, n: int) -> float:
    started = time.thread_time()
    host.pm.hook.burn(n=n)
    return time.thread_time() - started


#: Dask settings for quiet workers: the cluster advice of docs/howto/batch.md ("Quiet
#: Dask workers"). They must be set where the workers start (here: before LocalCluster).
QUIET_DASK: dict[str, Any] = {
    "distributed.worker.profile.enabled": False,
    "distributed.admin.tick.interval": "1s",
    "distributed.worker.memory.monitor-interval": "500ms",
    "distributed.admin.system-monitor.interval": "2s",
}

#: How the parent's threads are counted: Dask's event loop runs its client, scheduler and
#: nannies (a LocalCluster keeps them in this process); the epoch ticker is the
#: runtime's; everything else (the main thread, the pool's feeder threads) is dispatch.
PARENT_PARTS = ("dispatch", "dask loop", "epoch ticker")


def _thread_part(name: str) -> str:
    if name == "airssys-plugins-epoch":
        return "epoch ticker"
    if name == "IO loop" or name.startswith("Dask-") or name.startswith("TCP-Executor"):
        return "dask loop"
    return "dispatch"


def tree_snapshot() -> dict[int, dict[int, float]]:
    """CPU seconds used so far by each thread of this process and of every process under
    it (pool workers, Dask's workers): pid -> thread id -> seconds."""
    me = psutil.Process()
    out: dict[int, dict[int, float]] = {}
    for proc in [me, *me.children(recursive=True)]:
        try:
            out[proc.pid] = {t.id: t.user_time + t.system_time for t in proc.threads()}
        except psutil.Error:
            continue
    return out


def breakdown(
    before: dict[int, dict[int, float]], after: dict[int, dict[int, float]], worker_cpu: float
) -> dict[str, float]:
    """CPU seconds between two snapshots: the work on the workers (what the workers
    report for their hook calls), the rest of the worker processes' CPU, and the parent's
    by part; a process or thread gone since the first snapshot is not counted."""
    names = {t.native_id: t.name for t in threading.enumerate()}
    parts = dict.fromkeys(("work", "workers' other", *PARENT_PARTS), 0.0)
    me = os.getpid()
    for pid, threads in after.items():
        old = before.get(pid, {})
        for tid, cpu in threads.items():
            used = cpu - old.get(tid, 0.0)
            if pid == me:
                parts[_thread_part(names.get(tid, ""))] += used
            else:
                parts["workers' other"] += used
    parts["workers' other"] -= worker_cpu
    parts["work"] = worker_cpu
    return parts


def one_process(host: PluginHost, items: list[dict[str, int]]) -> tuple[float, float, float]:
    cpu = time.process_time()
    started = time.perf_counter()
    first = None
    for item in items:
        host.pm.hook.burn(**item)
        if first is None:
            first = time.perf_counter() - started
    rate = len(items) / (time.perf_counter() - started)
    return rate, first or 0.0, time.process_time() - cpu


def batch(
    host: PluginHost, hook: str, items: list[dict[str, int]], **where: Any
) -> tuple[float, float, Any, dict[str, float]]:
    before = tree_snapshot()
    started = time.perf_counter()
    result = host.map(hook, items, **where)
    wall = time.perf_counter() - started
    parts = breakdown(before, tree_snapshot(), result.report.worker_cpu)
    assert len(result) == len(items), (len(result), len(items))
    return len(items) / wall, result.report.first_result_after or 0.0, result, parts


def fault_run(
    host: PluginHost, items: list[dict[str, int]], n: int, **where: Any
) -> dict[str, Any]:
    """One worker process dies mid-batch (a Python plugin exits on one item): every item
    must come back, in order."""
    count = len(items)
    with tempfile.TemporaryDirectory() as tmp:
        killer = KillOnce(n + 1000, Path(tmp) / "killed")
        host.pm.register(killer, name="killer")
        fault_items = [*items[: count // 2], {"n": n + 1000}, *items[count // 2 :]]
        try:
            started = time.perf_counter()
            result = host.map("burn", fault_items, **where)
            wall = time.perf_counter() - started
        finally:
            host.pm.unregister(killer)
        killed = (Path(tmp) / "killed").exists()
    return {
        "items": len(fault_items),
        "returned": len(result),
        "all_indices": list(result.indices) == list(range(len(fault_items))),
        "worker_killed": killed,
        "rerun": len(result.report.retried),
        "seconds": round(wall, 2),
    }


@attrs.define
class Block:
    """One engine, measured with only its own processes alive, in rounds interleaved
    with the 1-process baseline (each round runs both)."""

    label: str
    base: dict[str, list[float]] = attrs.field(factory=lambda: _series())
    row: dict[str, list[float]] = attrs.field(factory=lambda: _series())
    parts: list[dict[str, float]] = attrs.field(factory=list)
    overhead: float = 0.0
    fault: dict[str, Any] = attrs.field(factory=dict)

    def measure(
        self, host: PluginHost, items: list[dict[str, int]], rounds: int, **where: Any
    ) -> None:
        for _ in range(rounds):
            rate, first, cpu = one_process(host, items)
            self.base["rate"].append(rate)
            self.base["first"].append(first)
            self.base["cpu"].append(cpu)
            rate, first, result, parts = batch(host, "burn", items, **where)
            self.row["rate"].append(rate)
            self.row["first"].append(first)
            self.row["cpu"].append(sum(parts.values()))
            self.row["chunks"].append(result.report.chunks)
            self.parts.append(parts)

    def dispatch(self, host: PluginHost, count: int, **where: Any) -> None:
        """Per-item dispatch overhead: the trivial hook, where nearly all is dispatch:
        (wall time x workers / items) minus a local call."""
        trivial = [{"x": i} for i in range(count)]
        started = time.perf_counter()
        for item in trivial:
            host.pm.hook.add_one(**item)
        local_call = (time.perf_counter() - started) / count
        rate, _, _, _ = batch(host, "add_one", trivial, **where)
        self.overhead = 2 / rate - local_call
        self.base["local_call"] = [local_call]

    def summary(self) -> dict[str, Any]:
        base_rate = statistics.median(self.base["rate"])
        base_cpu = statistics.median(self.base["cpu"])
        rate = statistics.median(self.row["rate"])
        return {
            "baseline_rate": base_rate,
            "baseline_first_s": statistics.median(self.base["first"]),
            "rate": rate,
            "ratio": rate / base_rate,
            "ratios": [r / b for r, b in zip(self.row["rate"], self.base["rate"], strict=True)],
            "first_result_s": statistics.median(self.row["first"]),
            "cpu_ratio": statistics.median(self.row["cpu"]) / base_cpu,
            "cpu_parts": {
                k: statistics.median(p[k] for p in self.parts) / base_cpu for k in self.parts[0]
            },
            "beyond_work": statistics.median(
                (sum(p.values()) - p["work"]) / p["work"] for p in self.parts
            ),
            "chunks": statistics.median(self.row["chunks"]),
            "overhead_s": self.overhead,
            "local_call_s": self.base["local_call"][0],
            "fault": self.fault,
        }


def _series() -> dict[str, list[float]]:
    return {"rate": [], "first": [], "cpu": [], "chunks": []}


def dask_block(
    label: str,
    config: dict[str, Any],
    host: PluginHost,
    items: list[dict[str, int]],
    rounds: int,
    n: int,
) -> Block:
    """A LocalCluster of 2 worker processes (one thread each) with ``config``, warmed
    (each worker builds its host), measured, then closed."""
    import dask
    from distributed import Client, LocalCluster

    block = Block(label)
    with dask.config.set(config), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cluster = LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
        )
        client = Client(cluster)
        try:
            batch(host, "burn", items[:50], client=client)  # warm
            block.measure(host, items, rounds, client=client)
            block.dispatch(host, len(items), client=client)
            block.fault = fault_run(host, items, n, client=client)
        finally:
            client.close()
            cluster.close()
    return block


BUILD = """
import sys, time
from pathlib import Path
from airssys_plugins.host.shipment import Shipment
from airssys_plugins.host.worker import facts
shipment = Shipment(sys.argv[1], Path(sys.argv[2]).read_bytes())
started = time.perf_counter()
seen = facts(shipment)
print(time.perf_counter() - started, ",".join(seen["deserialised"]))
"""


def worker_build(host: PluginHost, *, artefacts: bool) -> tuple[float, str]:
    """Seconds to build ``host`` from its shipment in a new process whose compile cache is
    empty, and which components it deserialised from shipped artefacts."""
    shipment = Shipment.of(capture(host, artefacts=artefacts))
    with tempfile.TemporaryDirectory() as tmp:
        blob = Path(tmp) / "host"
        blob.write_bytes(shipment.blob)
        env = {**os.environ, "AIRSSYS_PLUGINS_CACHE_DIR": str(Path(tmp) / "cache")}
        env["PYTHONPATH"] = os.pathsep.join([str(REPO), str(REPO / "bench")])
        done = subprocess.run(
            [sys.executable, "-c", BUILD, shipment.key, str(blob)],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
    seconds, used = done.stdout.split()[0], done.stdout.split()[1:]
    return float(seconds), ",".join(used)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    load_at_start = os.getloadavg()
    count = 200 if args.quick else 2000
    rounds = 1 if args.quick else 3

    pm = bench_pm()
    host = PluginHost(pm, package=PACKAGE)
    # A 2 ms call on a machine this busy can wait for a core longer than the default 1 s
    # timeout; a timed-out item would stop the batch (policy "raise"), not measure it.
    host.load(bench_wasm(), name="bench", limits=Limits(timeout=60.0))
    n = calibrate(host)
    items = [{"n": n + (i % 7)} for i in range(count)]  # a little variety, same cost
    assert host.pm.hook.burn(n=n) == [burn_reference(n)]

    pool_started = time.perf_counter()
    local = Block("local pool (2)")
    with LocalPool(2) as pool:
        _, cold_first, _, _ = batch(host, "burn", items[:50], pool=pool)  # spawn + build
        pool_cold = time.perf_counter() - pool_started
        local.measure(host, items, rounds, pool=pool)
        local.dispatch(host, count, pool=pool)
        local.fault = fault_run(host, items, n, pool=pool)
    blocks = [
        local,
        dask_block("dask (2 workers)", {}, host, items, rounds, n),
        dask_block("dask, quiet workers", QUIET_DASK, host, items, rounds, n),
    ]
    builds = {
        "compiles": worker_build(host, artefacts=False),
        "shipped artefact": worker_build(host, artefacts=True),
    }
    host.close()

    summaries = {b.label: b.summary() for b in blocks}
    print("\n".join(machine_info()))
    print(
        f"\nburn(n={n}) over {count} items, {rounds} round(s) per engine, medians; each engine "
        "alone with its own 1-process baseline; shared machine: noisy"
    )
    print(
        f"{'row':<20} {'1 proc/s':>9} {'items/s':>9} {'ratio':>6} {'first':>9} "
        f"{'CPU':>6} {'chunks':>7}"
    )
    for label, row in summaries.items():
        print(
            f"{label:<20} {row['baseline_rate']:>9.0f} {row['rate']:>9.0f} "
            f"{row['ratio']:>5.2f}x {row['first_result_s'] * 1000:>6.1f} ms "
            f"{row['cpu_ratio']:>5.2f}x {row['chunks']:>7.0f}"
        )
        print(f"{'':<20} ratios by round: " + ", ".join(f"{r:.2f}x" for r in row["ratios"]))
    print(
        "\nCPU by part, against the 1-process loop's CPU (medians); 'beyond work' is the CPU "
        "of everything but the workers' hook calls, against those calls' CPU in the same "
        "batch (load-robust), and 'ceiling' 2 / (1 + beyond work)"
    )
    parts = list(next(iter(summaries.values()))["cpu_parts"])
    print(f"{'row':<20} " + " ".join(f"{p:>15}" for p in parts) + "  beyond work  ceiling")
    for label, row in summaries.items():
        print(
            f"{label:<20} "
            + " ".join(f"{row['cpu_parts'][p]:>14.3f}x" for p in parts)
            + f" {row['beyond_work']:>11.3f} {2 / (1 + row['beyond_work']):>7.2f}x"
        )
    print(
        f"\nlocal pool cold start (2 processes spawned, host built, first 50 items): "
        f"{pool_cold:.2f} s, first result after {cold_first:.2f} s"
    )
    for label, row in summaries.items():
        print(
            f"dispatch overhead per item, {label}: {row['overhead_s'] * 1e6:.0f} us beyond "
            f"a local call ({row['local_call_s'] * 1e6:.0f} us)"
        )
    for label, row in summaries.items():
        print(f"fault run, {label}: {row['fault']}")
    for label, (seconds, used) in builds.items():
        print(
            f"worker build, empty compile cache, {label}: {seconds * 1000:.1f} ms ({used or '-'})"
        )
    load = os.getloadavg()
    print(
        f"load average (1 / 5 min): {load_at_start[0]:.2f} / {load_at_start[1]:.2f} when "
        f"the bench started, {load[0]:.2f} / {load[1]:.2f} at its end"
    )
    if args.json:
        summary = {
            "n": n,
            "items": count,
            "rows": summaries,
            "pool_cold_s": pool_cold,
            "quiet_dask": QUIET_DASK,
            "worker_build_s": {k: v[0] for k, v in builds.items()},
        }
        args.json.write_text(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
