"""Peak RSS a hostile component adds, against its memory limit.

    python bench/bench_hostile_memory.py [--quick] [--json PATH]

The cases of tests/test_hostile_calls.py (corpus case 23): a module with a 32 MiB memory
instantiated 16 times, a nested component instantiated 8 times, one module with 16
memories grown until refused, one and eight tables grown until refused, each under
``Limits(memory=32 MiB)``. Each runs in its own child process (the test's driver), which
loads a healthy sibling, reads VmHWM, loads and calls the hostile plugin, and reports the
peak RSS it added, what was raised, and the RSS left after unloading it. The ratio column
is peak added / limit: below 1 means the limit bounded the plugin's total.

The second table: one ``log`` call whose ``fields`` are N empty records (16 bytes each of
guest memory) from a component without an allocator (tests/test_log_fields.py's), in a
child process per row: wall and CPU time of the call, the peak RSS it added (VmHWM after
``/proc/self/clear_refs``), and the outcome; on the raw import route (the default) and
with the imports left to wasmtime (``AIRSSYS_PLUGINS_NO_RAW_IMPORTS=1``, the route before
the log was rewritten). See docs/explanation/security.md, "Host functions' arguments".
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.test_hostile_calls import (  # noqa: E402
    MEMORY_CASES,
    SIBLING,
    parse_component,
    run_driver,
)

MiB = 2**20

#: Pages of empty fields (4096 fields a page) in one log call.
LOG_PAGES = (16, 64, 192, 256)

_LOG_CHILD = """
import json, logging, sys, time
sys.path.insert(0, {root!r})
import pluggy
from airssys_plugins import PluginError, PluginHost
from tests.test_log_fields import LOG_RIGHTS, PACKAGE, Hooks

def hwm():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM"):
            return int(line.split()[1]) * 1024

pm = pluggy.PluginManager("logfields")
pm.add_hookspecs(Hooks)
host = PluginHost(pm, package=PACKAGE, grants={{"g": LOG_RIGHTS}}, compile_cache=False)
host.load({wasm!r}, name="g", requests=LOG_RIGHTS)
logging.disable(logging.CRITICAL)
open("/proc/self/clear_refs", "w").write("5")
base = hwm()
wall, cpu = time.perf_counter(), time.process_time()
try:
    pm.hook.flood(pages={pages})
    outcome = "logged"
except PluginError as exc:
    outcome = type(exc).__name__ + ": " + str(getattr(exc, "reason", ""))
print(json.dumps({{"wall": time.perf_counter() - wall, "cpu": time.process_time() - cpu,
                  "peak_added": hwm() - base, "outcome": outcome}}))
"""


def log_fields(tmp: Path, quick: bool) -> list[dict[str, object]]:
    """The second table: one log call of many empty fields, both routes."""
    from tests.test_log_fields import build, no_allocator_wat

    wasm = build(tmp, "logflood", no_allocator_wat(1))
    rows: list[dict[str, object]] = []
    head = f"{'log fields':>10} {'route':<12} {'wall s':>7} {'cpu s':>6} {'peak added':>11}"
    print(f"\n{head}  outcome")
    for pages in LOG_PAGES[:2] if quick else LOG_PAGES:
        for route in ("raw", "wasmtime"):
            env = dict(os.environ)
            if route == "wasmtime":
                env["AIRSSYS_PLUGINS_NO_RAW_IMPORTS"] = "1"
            code = _LOG_CHILD.format(root=str(ROOT), wasm=str(wasm), pages=pages)
            proc = subprocess.run(
                [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
            )
            out = json.loads(proc.stdout.strip().splitlines()[-1])
            rows.append({"fields": pages * 4096, "route": route, **out})
            print(
                f"{pages * 4096:>10,} {route:<12} {out['wall']:7.2f} {out['cpu']:6.2f} "
                f"{out['peak_added'] / MiB:7.1f} MiB  {out['outcome']}"
            )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the first two cases only")
    parser.add_argument("--json", type=Path, help="write the rows as JSON here")
    args = parser.parse_args()
    cases = MEMORY_CASES[:2] if args.quick else MEMORY_CASES
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        sibling = parse_component(Path(tmp), "sibling", SIBLING)
        print(f"{'case':24} {'limit':>8} {'peak added':>11} {'ratio':>6} {'after':>8}  outcome")
        for case_id, wat, limit, _, _ in cases:
            out = run_driver(parse_component(Path(tmp), case_id, wat), sibling, limit)
            ratio = out["peak_added"] / limit
            rows.append({"case": case_id, "limit": limit, **out, "ratio": ratio})
            print(
                f"{case_id:24} {limit / MiB:6.0f} MiB {out['peak_added'] / MiB:7.1f} MiB "
                f"{ratio:6.2f} {out['rss_after'] / MiB:5.1f} MiB  "
                f"{out.get('error')} ({out.get('reason')})"
            )
        log_rows = log_fields(Path(tmp), args.quick)
    if args.json is not None:
        args.json.write_text(json.dumps({"memory": rows, "log_fields": log_rows}, indent=2))


if __name__ == "__main__":
    main()
