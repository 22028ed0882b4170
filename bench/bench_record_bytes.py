"""Bytes inside a record, through a hook: the export's raw route against wasmtime's.

Run from the repository root::

    python bench/bench_record_bytes.py            # about 5 s
    python bench/bench_record_bytes.py --quick    # smoke run

The guest (tests/guests/bytes, hand-written WAT) exports ``boxed: func(b: blob) -> blob``
with ``record blob { data: list<u8>, tag: u32 }``, returning its argument where it lies
in the guest's memory, and ``echo: func(data: list<u8>) -> list<u8>``, the same for bare
bytes. Rows, in one process, medians, for ``os.urandom`` bytes of each size:

* ``boxed``, raw route: the host lowers the record into the guest's memory and lifts the
  result from it (one copy of the bytes each way), the default from 2 KiB up;
* ``boxed``, wasmtime's route: the same hook with the raw route switched off in-process
  (what a record holding bytes took before the raw route covered records);
* ``echo``, raw route: the same bytes bare (the route's cost without the record);
* ``bytes(bytearray(x))``: two copies of the bytes (the floor of one copy each way).

Timings are reported, never asserted; ``--json PATH`` writes the numbers.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from pathlib import Path

import pluggy

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchlib import median_ms, on_route  # noqa: E402

from airssys_plugins import PluginHost, wit_binding  # noqa: E402
from airssys_plugins.authoring.build import build_guest  # noqa: E402
from airssys_plugins.contract.annotations import u32  # noqa: E402

GUEST = REPO / "tests" / "guests" / "bytes"
OPS = "test:bytes/ops@1.0.0"
SIZES = (1 << 20, 64 << 10)

spec = pluggy.HookspecMarker("recordbytes")


@dataclasses.dataclass
class Blob:
    data: bytes
    tag: u32


class Hooks:
    @spec
    @wit_binding(f"{OPS}#boxed")
    def boxed(self, b: Blob) -> Blob: ...

    @spec
    @wit_binding(f"{OPS}#echo")
    def echo(self, data: bytes) -> bytes: ...


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few rounds (a smoke run)")
    parser.add_argument("--json", type=Path, help="write the numbers here")
    args = parser.parse_args()
    rounds = 5 if args.quick else 31
    pm = pluggy.PluginManager("recordbytes")
    pm.add_hookspecs(Hooks)
    # a deadline far above wasmtime's route at 1 MiB (tens of ms; seconds on a busy machine)
    host = PluginHost(pm)
    host.load(build_guest(GUEST), name="bytes", timeout=60.0)
    rows: dict[str, dict[str, float]] = {}
    try:
        for size in SIZES:
            data = os.urandom(size)
            blob = Blob(data, 7)
            assert pm.hook.boxed(b=blob) == [blob]
            with on_route("wasmtime's"):
                assert pm.hook.boxed(b=blob) == [blob]
                slow = median_ms(lambda blob=blob: pm.hook.boxed(b=blob), max(5, rounds // 3))
            rows[f"{size >> 10} KiB"] = {
                "boxed, raw route": median_ms(lambda blob=blob: pm.hook.boxed(b=blob), rounds),
                "boxed, wasmtime's route": slow,
                "echo, raw route": median_ms(lambda data=data: pm.hook.echo(data=data), rounds),
                "bytes(bytearray(x))": median_ms(lambda data=data: bytes(bytearray(data)), rounds),
            }
    finally:
        host.close()
    load = os.getloadavg()
    for size, table in rows.items():
        print(f"a record holding {size} of random bytes, round trip; load average {load[0]:.2f}")
        print(f"{'row':<28}{'ms':>10}{'vs copy':>10}")
        copy = table["bytes(bytearray(x))"]
        for name, ms in table.items():
            print(f"{name:<28}{ms:>10.3f}{ms / copy:>9.1f}x")
        gain = table["boxed, wasmtime's route"] / table["boxed, raw route"]
        print(f"raw route vs wasmtime's: {gain:.0f}x faster")
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "load": load[0]}, indent=2) + "\n")


if __name__ == "__main__":
    main()
