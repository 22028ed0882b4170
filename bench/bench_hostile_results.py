"""Peak RSS a hostile result adds, against ``max_result_bytes`` (issue 12, hole 3).

    python bench/bench_hostile_results.py [--json PATH]

The cases of tests/test_hostile_calls.py (aliased results): hand-written components whose
export returns list entries that all point at one 1 MiB region of their memory (aliases),
so the flat data in guest memory stays small while the value the host copies is many
times ``max_result_bytes`` (1 MiB here). Each case runs in its own child process (the
test's driver), which loads a healthy sibling, reads VmHWM, calls the hostile plugin and
reports the peak RSS added, what was raised, and whether the sibling still answers. The
ratio column is peak added / limit: hole 3 is closed when it is a small multiple.
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
    RESULT_CASES,
    RESULT_SIBLING,
    parse_component,
    run_result_driver,
)

MiB = 2**20
LIMIT = 1 * MiB


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="write the rows as JSON here")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        sibling = parse_component(Path(tmp), "sibling", RESULT_SIBLING)
        print(f"{'case':22} {'value':>9} {'limit':>7} {'peak added':>11} {'ratio':>6}  outcome")
        for case_id, hook, wat, entries, _ in RESULT_CASES:
            out = run_result_driver(parse_component(Path(tmp), case_id, wat), hook, sibling, LIMIT)
            ratio = out["peak_added"] / LIMIT
            rows.append(
                {"case": case_id, "limit": LIMIT, "entries": entries, **out, "ratio": ratio}
            )
            outcome = (
                f"{out['error']} ({out['reason']})"
                if "error" in out
                else f"returned {out['entries']} entries"
            )
            print(
                f"{case_id:22} {entries:5} MiB {LIMIT / MiB:3.0f} MiB "
                f"{out['peak_added'] / MiB:7.1f} MiB {ratio:6.1f}  {outcome}; "
                f"sibling {out['sibling']}"
            )
    if args.json is not None:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
