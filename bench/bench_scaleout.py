"""Scale-out: a CPU-bound hook over 2,000 items in 1 process, a local pool of 2 processes
and a Dask LocalCluster of 2 workers; dispatch overhead; a fault run.

Run from the repository root::

    python bench/bench_scaleout.py            # about 1 min
    python bench/bench_scaleout.py --quick    # smoke run (200 items)

The hook is the bench guest's ``burn(n)`` (pure wasm, no host calls), with ``n`` chosen
so that one call takes about 2 ms here. Rows:

* ``1 process``: ``pm.hook.burn(n=...)`` in a loop in this process: the baseline;
* ``local pool (2)``: ``host.map`` on a :class:`LocalPool` of 2 processes, started and
  warmed (host built, component deserialised) before timing;
* ``dask (2 workers)``: ``host.map(client=...)`` on a ``LocalCluster`` of 2 worker
  processes with one thread each, warmed the same way.

Throughput is items/s; rounds are interleaved (each round runs every row) and the table
shows medians. ``first result`` is the time from the call to the first item back;
``chunks`` how many chunks the batch was cut into (sized by the workers' measured time
per item). ``CPU`` is the CPU time of this process and every worker process (and Dask's
nannies) during the batch, against the 1-process loop's: on a machine shared with other
work the wall-clock ratio is noisy, while this one says what the batch itself costs
beyond the work (the parent's dispatch, Dask's scheduler and event loops). The dispatch
overhead row runs the trivial ``add_one`` hook, where nearly all the time is dispatch:
(wall time x workers / items) minus a local call. The fault run kills one worker process
mid-batch (a Python plugin exits on one item) and checks that every item came back, and
which were run again. ``worker build`` starts a new process with an empty compile cache
(a worker on another machine) and builds the host there from a shipment with the host's
compiled artefacts and from one without (then it compiles). The machine is shared:
ratios are noisy; the load average is printed before and after.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import psutil  # installed with the [dask] extra (distributed needs it)
from benchlib import PACKAGE, REPO, bench_pm, bench_wasm, burn_reference, machine_info
from scaleout_plugins import KillOnce

from airssys_plugins import LocalPool, PluginHost
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


def tree_cpu() -> float:
    """CPU seconds used so far by this process and every process under it (pool workers,
    Dask's nannies and workers); a process gone since is not counted."""
    me = psutil.Process()
    total = 0.0
    for proc in [me, *me.children(recursive=True)]:
        try:
            times = proc.cpu_times()
        except psutil.Error:
            continue
        total += times.user + times.system
    return total


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
) -> tuple[float, float, Any, float]:
    cpu = tree_cpu()
    started = time.perf_counter()
    result = host.map(hook, items, **where)
    wall = time.perf_counter() - started
    cpu = tree_cpu() - cpu
    assert len(result) == len(items), (len(result), len(items))
    return len(items) / wall, result.report.first_result_after or 0.0, result, cpu


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

    from distributed import Client, LocalCluster

    pm = bench_pm()
    host = PluginHost(pm, package=PACKAGE)
    host.load(bench_wasm(), name="bench")
    n = calibrate(host)
    items = [{"n": n + (i % 7)} for i in range(count)]  # a little variety, same cost
    assert host.pm.hook.burn(n=n) == [burn_reference(n)]

    rows: dict[str, dict[str, list[float]]] = {
        k: {"rate": [], "first": [], "cpu": [], "chunks": []}
        for k in ("1 process", "local pool (2)", "dask (2 workers)")
    }
    pool_started = time.perf_counter()
    pool = LocalPool(2)
    _, cold_first, _, _ = batch(host, "burn", items[:50], pool=pool)  # spawn + build
    pool_cold = time.perf_counter() - pool_started
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cluster = LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
        )
        client = Client(cluster)
    batch(host, "burn", items[:50], client=client)  # warm: each worker builds its host
    for _ in range(rounds):
        rate, first, cpu = one_process(host, items)
        rows["1 process"]["rate"].append(rate)
        rows["1 process"]["first"].append(first)
        rows["1 process"]["cpu"].append(cpu)
        rows["1 process"]["chunks"].append(0)
        for label, where in (
            ("local pool (2)", {"pool": pool}),
            ("dask (2 workers)", {"client": client}),
        ):
            rate, first, result, cpu = batch(host, "burn", items, **where)
            rows[label]["rate"].append(rate)
            rows[label]["first"].append(first)
            rows[label]["cpu"].append(cpu)
            rows[label]["chunks"].append(result.report.chunks)

    # Dispatch: the trivial hook, where the work is nearly all dispatch.
    trivial = [{"x": i} for i in range(count)]
    started = time.perf_counter()
    for item in trivial:
        host.pm.hook.add_one(**item)
    local_call = (time.perf_counter() - started) / count
    overhead: dict[str, float] = {}
    for label, where in (
        ("local pool (2)", {"pool": pool}),
        ("dask (2 workers)", {"client": client}),
    ):
        rate, _, _, _ = batch(host, "add_one", trivial, **where)
        overhead[label] = 2 / rate - local_call

    # Fault run: one worker dies mid-batch; every item must come back.
    faults: dict[str, Any] = {}
    for label, where in (
        ("local pool (2)", {"pool": pool}),
        ("dask (2 workers)", {"client": client}),
    ):
        with tempfile.TemporaryDirectory() as tmp:
            killer = KillOnce(n + 1000, Path(tmp) / "killed")
            pm.register(killer, name="killer")
            fault_items = [*items[: count // 2], {"n": n + 1000}, *items[count // 2 :]]
            try:
                started = time.perf_counter()
                result = host.map("burn", fault_items, **where)
                wall = time.perf_counter() - started
            finally:
                pm.unregister(killer)
            killed = (Path(tmp) / "killed").exists()
        faults[label] = {
            "items": len(fault_items),
            "returned": len(result),
            "all_indices": list(result.indices) == list(range(len(fault_items))),
            "worker_killed": killed,
            "rerun": len(result.report.retried),
            "seconds": round(wall, 2),
        }

    client.close()
    cluster.close()
    pool.close()
    builds = {
        "compiles": worker_build(host, artefacts=False),
        "shipped artefact": worker_build(host, artefacts=True),
    }
    host.close()

    base = statistics.median(rows["1 process"]["rate"])
    base_cpu = statistics.median(rows["1 process"]["cpu"])
    print("\n".join(machine_info()))
    print(f"\nburn(n={n}) over {count} items, {rounds} round(s), medians; shared machine: noisy")
    print(f"{'row':<18} {'items/s':>9} {'ratio':>6} {'first result':>13} {'CPU':>6} {'chunks':>7}")
    summary: dict[str, Any] = {"n": n, "items": count, "rows": {}}
    for label, data in rows.items():
        rate = statistics.median(data["rate"])
        first = statistics.median(data["first"])
        cpu = statistics.median(data["cpu"]) / base_cpu
        chunks = statistics.median(data["chunks"])
        print(
            f"{label:<18} {rate:>9.0f} {rate / base:>5.2f}x {first * 1000:>10.1f} ms "
            f"{cpu:>5.2f}x {chunks:>7.0f}"
        )
        summary["rows"][label] = {
            "rate": rate,
            "ratio": rate / base,
            "first_result_s": first,
            "cpu_ratio": cpu,
            "chunks": chunks,
        }
    print(
        f"\nlocal pool cold start (2 processes spawned, host built, first 50 items): "
        f"{pool_cold:.2f} s, first result after {cold_first:.2f} s"
    )
    print(f"local add_one call: {local_call * 1e6:.0f} us")
    for label, extra in overhead.items():
        print(f"dispatch overhead per item, {label}: {extra * 1e6:.0f} us beyond a local call")
    for label, fault in faults.items():
        print(f"fault run, {label}: {fault}")
    for label, (seconds, used) in builds.items():
        print(
            f"worker build, empty compile cache, {label}: {seconds * 1000:.1f} ms ({used or '-'})"
        )
    load = os.getloadavg()
    print(
        f"load average (1 / 5 min): {load_at_start[0]:.2f} / {load_at_start[1]:.2f} when "
        f"the bench started, {load[0]:.2f} / {load[1]:.2f} at its end"
    )
    summary.update(
        local_call_s=local_call,
        overhead_s=overhead,
        faults=faults,
        pool_cold_s=pool_cold,
        worker_build_s={k: v[0] for k, v in builds.items()},
    )
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
