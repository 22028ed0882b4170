"""Peak RSS a hostile result adds, against ``max_result_bytes`` (issue 12, hole 3).

    python bench/bench_hostile_results.py [--json PATH] [--cases strings,raw,...]
                                          [--layout top|nested]

The cases of tests/test_result_bounds.py: hand-written components whose export returns
a result in every shape a result takes (lists of strings, of byte lists, of records, of
options, nested lists, records, tuples, options, results, variants), whose entries all
alias one 1 MiB region of guest memory (64 entries), plus flat data the host's values
amplify (2 MiB of ``list<u8>`` or ``list<u32>``, 1 Mi ``bool``) or that is simply long
(a 2 MiB string). Each case runs in its own child process (the test's driver), which loads
a healthy sibling, reads VmHWM, calls the hostile plugin and reports the peak RSS added,
what was raised, and whether the sibling still answers, under ``max_result_bytes = 1 MiB``:

* ``after``: as the runtime runs now, the result measured in guest memory before copying;
* ``before``: with ``AIRSSYS_PLUGINS_NO_BYTE_EXPORTS=1``, which compiles components as
  given (no byte-buffer and no measuring exports), so the result is measured after
  wasmtime copied it, as every result was before.

``--layout nested`` puts each case one component down, as jco lays components out (an
outer component re-exporting the inner one's interface).

The ratio columns are peak added / limit: hole 3 is closed when ``after`` is a small
multiple (it is about 0).

``--cost`` instead times the same layouts, small (3 entries of 3 bytes), called through
the measured path (a measuring call, then the real lift) against the plain export
(``max_result_bytes=None``), in one process: median of 7 batches of 3,000 calls, thread
CPU time, as a ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.test_hostile_calls import RESULT_SIBLING, parse_component  # noqa: E402
from tests.test_result_bounds import CASES, big_component, run_driver  # noqa: E402

MiB = 2**20
LIMIT = 1 * MiB


def _outcome(out: dict[str, object]) -> str:
    return f"{out['reason']}" if "error" in out else "returned"


def cost(wanted: set[str] | None) -> list[dict[str, object]]:
    """ns per call, measured path against the plain export (see the docstring)."""
    from airssys_plugins.runtime.image import ComponentImage
    from airssys_plugins.runtime.instance import PluginInstance
    from airssys_plugins.runtime.sandbox import SandboxSpec
    from tests.test_result_bounds import _bind_all, component

    rows: list[dict[str, object]] = []
    print(f"load average {os.getloadavg()[0]:.2f}")
    with tempfile.TemporaryDirectory() as tmp:
        for case in CASES:
            if wanted is not None and case.hook not in wanted:
                continue
            wasm = parse_component(Path(tmp), case.hook, component(case, 3, 3))
            image = ComponentImage.load(case.hook, wasm, cache=False)
            paths = {"measured": 2**26, "plain": None}
            instances = {
                k: PluginInstance(image, sandbox=SandboxSpec(max_result_bytes=limit))
                for k, limit in paths.items()
            }
            bound = {k: _bind_all(i, image)[case.hook] for k, i in instances.items()}
            times: dict[str, list[float]] = {k: [] for k in paths}
            for _ in range(7):
                for k, instance in instances.items():
                    start = time.thread_time_ns()
                    for _ in range(3000):
                        instance.call(bound[k], [])
                    times[k].append((time.thread_time_ns() - start) / 3000)
            med = {k: sorted(v)[3] for k, v in times.items()}
            rows.append({"case": case.hook, **med, "ratio": med["measured"] / med["plain"]})
            print(
                f"{case.hook:10} measured {med['measured']:8,.0f} ns  plain {med['plain']:8,.0f}"
                f" ns  {med['measured'] / med['plain']:5.2f}x"
            )
            for instance in instances.values():
                instance.close()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="write the rows as JSON here")
    parser.add_argument("--cases", help="comma-separated case names (default: all)")
    parser.add_argument("--cost", action="store_true", help="time the measured path")
    parser.add_argument(
        "--layout", choices=["top", "nested"], default="top", help="where the lift sits"
    )
    args = parser.parse_args()
    wanted = None if args.cases is None else set(args.cases.split(","))
    if args.cost:
        rows = cost(wanted)
        if args.json is not None:
            args.json.write_text(json.dumps(rows, indent=2))
        return
    before_env = {**os.environ, "AIRSSYS_PLUGINS_NO_BYTE_EXPORTS": "1"}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        sibling = parse_component(Path(tmp), "sibling", RESULT_SIBLING)
        print(
            f"limit {LIMIT / MiB:.0f} MiB; layout {args.layout}; "
            f"load average {os.getloadavg()[0]:.2f}"
        )
        print(f"{'case':10} {'before':>10} {'ratio':>6} {'after':>9} {'ratio':>6}  outcome")
        for case in CASES:
            if wanted is not None and case.hook not in wanted:
                continue
            wasm = big_component(Path(tmp), case, args.layout)
            before = run_driver(wasm, case.hook, sibling, LIMIT, env=before_env)
            after = run_driver(wasm, case.hook, sibling, LIMIT)
            row = {
                "case": case.hook,
                "layout": args.layout,
                "limit": LIMIT,
                "before": before,
                "after": after,
                "before_ratio": before["peak_added"] / LIMIT,
                "after_ratio": after["peak_added"] / LIMIT,
            }
            rows.append(row)
            print(
                f"{case.hook:10} {before['peak_added'] / MiB:6.1f} MiB {row['before_ratio']:6.1f} "
                f"{after['peak_added'] / MiB:5.1f} MiB {row['after_ratio']:6.1f}  "
                f"{_outcome(before)} -> {_outcome(after)}; sibling {after['sibling']}"
            )
    if args.json is not None:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
