"""Peak RSS a hostile component adds, against its memory limit.

    python bench/bench_hostile_memory.py [--quick] [--json PATH]

The cases of tests/test_hostile_calls.py (corpus case 23): a module with a 32 MiB memory
instantiated 16 times, a nested component instantiated 8 times, one module with 16
memories grown until refused, one and eight tables grown until refused, each under
``Limits(memory=32 MiB)``. Each runs in its own child process (the test's driver), which
loads a healthy sibling, reads VmHWM, loads and calls the hostile plugin, and reports the
peak RSS it added, what was raised, and the RSS left after unloading it. The ratio column
is peak added / limit: below 1 means the limit bounded the plugin's total.
"""

from __future__ import annotations

import argparse
import json
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
    if args.json is not None:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
