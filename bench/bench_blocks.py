"""Lists of many small blocks through a hook: the raw route's batch allocator, and the
route each call takes.

Run from the repository root::

    python bench/bench_blocks.py            # about 1 min (the 18 MB guest is built once)
    python bench/bench_blocks.py --quick    # smoke run

A call on the raw route asks the guest's allocator for every list and string it lowers.
Through wasmtime's C API each call into the guest costs 2.5-6 µs, so the raw route makes
a call's blocks with one call of its batch allocator (``airssys-raw-allocs``, see
docs/explanation/performance.md). Guests: the 18 MB componentize-py guest of
tests/guests/kitchen (``echo-strings``, ``echo-lines``) and the hand-written WAT guest of
tests/guests/bytes (``nested: func(list<list<u8>>) -> list<list<u8>>``), each returning
its argument. Rows, medians of round trips through ``pm.hook``, in one process:

* ``taken``: the route the call takes by default (named in the table);
* ``raw``: the raw route, forced for every call;
* ``raw, a call per block``: the same with the batch allocator left unused (the
  allocator called once per block, as before it existed);
* ``wasmtime's``: the raw route switched off (wasmtime lowers and lifts every value).

Timings are reported, never asserted; ``--json PATH`` writes the numbers.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pluggy

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchlib import KITCHEN_DIR, ROUTES, kitchen_hooks, median_ms, on_route  # noqa: E402

from airssys_plugins import PluginHost, wit_binding  # noqa: E402
from airssys_plugins.authoring.build import build_guest  # noqa: E402
from airssys_plugins.runtime import rawabi  # noqa: E402

BYTES_GUEST = REPO / "tests" / "guests" / "bytes"
OPS = "test:bytes/ops@1.0.0"

spec = pluggy.HookspecMarker("blocks")


class BytesHooks:
    @spec
    @wit_binding(f"{OPS}#nested")
    def nested(self, data: list[bytes]) -> list[bytes]: ...


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few rounds (a smoke run)")
    parser.add_argument("--json", type=Path, help="write the numbers here")
    args = parser.parse_args()
    rounds = 5 if args.quick else 21
    hooks, package = kitchen_hooks()
    kitchen_pm = pluggy.PluginManager("kitchen")
    kitchen_pm.add_hookspecs(hooks)
    bytes_pm = pluggy.PluginManager("blocks")
    bytes_pm.add_hookspecs(BytesHooks)
    kitchen_host = PluginHost(kitchen_pm, package=package)
    bytes_host = PluginHost(bytes_pm)
    # deadlines far above the slowest route here (tens of ms; more on a busy machine)
    kitchen_host.load(build_guest(KITCHEN_DIR), name="kitchen", timeout=60.0)
    bytes_host.load(build_guest(BYTES_GUEST), name="bytes", timeout=60.0)
    module = sys.modules["kitchen_hooks"]
    line = module.Line(module.Point(1, 2, "a"), module.Point(3, 4, "bb"), ["t1", "t2"])
    cases: list[tuple[str, Callable[[], Any], Any]] = []

    def case(label: str, hook: Any, **kw: Any) -> None:
        (value,) = kw.values()
        cases.append((label, lambda: hook(**kw), value))

    case("1,000 strings of 8 bytes", kitchen_pm.hook.echo_strings, x=["abcdefgh"] * 1000)
    case("10,000 strings of 8 bytes", kitchen_pm.hook.echo_strings, x=["abcdefgh"] * 10_000)
    for n, size in ((1000, 1), (1000, 16), (1000, 64), (100, 1024)):
        data = [os.urandom(size) for _ in range(n)]
        unit = "byte" if size == 1 else "bytes"
        case(f"{n:,} byte lists of {size:,} {unit}", bytes_pm.hook.nested, data=data)
    case("1,000 lines (records holding strings)", kitchen_pm.hook.echo_lines, x=[line] * 1000)

    rows: dict[str, dict[str, float | str]] = {}
    try:
        for label, call, value in cases:
            row: dict[str, float | str] = {}
            for name in ROUTES:
                with on_route(name), _raw_calls() as raw_calls:
                    assert call() == [value], (label, name)
                    row[name] = median_ms(call, rounds)
                if name == "taken":
                    row["route taken"] = "raw" if raw_calls else "wasmtime's"
            rows[label] = row
    finally:
        kitchen_host.close()
        bytes_host.close()
    load = os.getloadavg()
    print(f"round trips through pm.hook, ms (medians of {rounds}); load average {load[0]:.2f}")
    print(f"{'arguments':<40}" + "".join(f"{n:>24}" for n in ROUTES) + f"{'taken':>12}")
    for label, row in rows.items():
        cells = "".join(f"{row[n]:>24.3f}" for n in ROUTES)
        print(f"{label:<40}{cells}{row['route taken']:>12}")
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "load": load[0]}, indent=2) + "\n")


@contextlib.contextmanager
def _raw_calls() -> Iterator[list[int]]:
    """The raw calls made in the block (one entry each)."""
    calls: list[int] = []
    run = rawabi.RawCallPlan.run

    def counting(plan: rawabi.RawCallPlan, prepared: Any, limit: int | None) -> Any:
        calls.append(1)
        return run(plan, prepared, limit)

    rawabi.RawCallPlan.run = counting  # type: ignore[method-assign]
    try:
        yield calls
    finally:
        rawabi.RawCallPlan.run = run  # type: ignore[method-assign]


if __name__ == "__main__":
    main()
