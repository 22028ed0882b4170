"""Peak RSS a hostile result adds, against ``max_result_bytes`` (issue 12, hole 3).

    python bench/bench_hostile_results.py [--json PATH]

Each case is a hand-written component whose export returns list entries that all point at
one region of its memory (aliases): the flat data in guest memory stays small, the value
the host would copy is many times ``max_result_bytes`` (1 MiB here). Each case runs in its
own child process, which loads a healthy sibling, reads VmHWM, loads and calls the hostile
plugin, and reports the peak RSS added, what was raised, and whether the sibling still
answers. The ratio column is peak added / limit: the goal of hole 3 is a small multiple.

Cases: ``64-aliased-strings`` (list<string>, 64 x one 1 MiB string), ``nested-aliased``
(list<list<string>>, 64 x one inner list holding that string), ``aliased-bytes``
(list<list<u8>>, 4 x one 1 MiB byte run; bytes below the top level take wasmtime's
per-element path, 32 bytes per byte, so 4 aliases suffice).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.test_hostile_calls import parse_component  # noqa: E402

MiB = 2**20
LIMIT = 1 * MiB

SIBLING = """(component
  (core module $m (func (export "pong") (result i32) (i32.const 42)))
  (core instance $i (instantiate $m))
  (func $pong (result u32) (canon lift (core func $i "pong")))
  (instance $iface (export "pong" (func $pong)))
  (export "hostile:res/pong@1.0.0" (instance $iface)))"""


def _aliased(hook: str, wit_type: str, entries: int, nested: bool) -> str:
    """A component whose ``hook`` returns ``entries`` list entries, all (ptr=65536,
    len=1 MiB); nested: the outer entries all point at one inner list of one such entry."""
    fill = f"""
      (loop $l
        (i32.store (i32.add (i32.const 1024) (i32.shl (local.get $i) (i32.const 3)))
                   (i32.const {2048 if nested else 65536}))
        (i32.store (i32.add (i32.const 1028) (i32.shl (local.get $i) (i32.const 3)))
                   (i32.const {1 if nested else MiB}))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br_if $l (i32.lt_u (local.get $i) (i32.const {entries}))))"""
    inner = (
        "(i32.store (i32.const 2048) (i32.const 65536)) "
        f"(i32.store (i32.const 2052) (i32.const {MiB}))"
        if nested
        else ""
    )
    return f"""(component
  (core module $m
    (memory (export "memory") 18)
    (func (export "{hook}") (result i32)
      (local $i i32)
      (i32.store (i32.const 16) (i32.const 1024))
      (i32.store (i32.const 20) (i32.const {entries}))
      {inner}{fill}
      (i32.const 16)))
  (core instance $i (instantiate $m))
  (type $t {wit_type})
  (func $f (result $t) (canon lift (core func $i "{hook}") (memory (core memory $i "memory"))))
  (instance $iface (export "{hook}" (func $f)))
  (export "hostile:res/{hook}@1.0.0" (instance $iface)))"""


CASES = [
    # (id, hook, component WAT, the value's size on the host)
    ("64-aliased-strings", "strings", _aliased("strings", "(list string)", 64, False), 64 * MiB),
    ("nested-aliased", "nested", _aliased("nested", "(list (list string))", 64, True), 64 * MiB),
    ("aliased-bytes", "blobs", _aliased("blobs", "(list (list u8))", 4, False), 4 * MiB),
]

DRIVER = r"""
import gc, json, sys
import pluggy
from airssys_plugins import Limits, PluginError, PluginHost, u32
from airssys_plugins.runtime.instance import ComponentImage

spec = pluggy.HookspecMarker("hostile")

class Hooks:
    @spec
    def strings(self) -> list[str]: ...
    @spec
    def nested(self) -> list[list[str]]: ...
    @spec
    def blobs(self) -> list[bytes]: ...
    @spec
    def pong(self) -> u32: ...

def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key):
            return int(line.split()[1]) * 1024

hostile, hook, sibling, limit = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
ComponentImage.load("warm", __import__("pathlib").Path(hostile))  # compile outside the peak
gc.collect()
pm = pluggy.PluginManager("hostile")
pm.add_hookspecs(Hooks)
out = {}
with PluginHost(pm, package="hostile:res@1.0.0") as host:
    host.load(sibling, name="sibling")
    assert pm.hook.pong() == [42]
    host.load(hostile, name="hostile", limits=Limits(max_result_bytes=limit))
    gc.collect()
    before = status("VmHWM:")
    try:
        result = getattr(pm.hook, hook)()
        out["result_entries"] = len(result[0])
    except PluginError as exc:
        out.update(error=type(exc).__name__, reason=getattr(exc, "reason", None),
                   plugin=exc.plugin, message=str(exc))
    out["peak_added"] = status("VmHWM:") - before
    out["sibling"] = pm.hook.pong()
print(json.dumps(out))
"""


def run_case(hostile: Path, hook: str, sibling: Path, limit: int) -> dict[str, Any]:
    """One case in a child process: what it raised and the peak RSS it added."""
    proc = subprocess.run(
        [sys.executable, "-c", DRIVER, str(hostile), hook, str(sibling), str(limit)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    if proc.returncode != 0:
        raise SystemExit(proc.stderr[-3000:])
    return json.loads(proc.stdout.splitlines()[-1])  # type: ignore[no-any-return]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="write the rows as JSON here")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        sibling = parse_component(Path(tmp), "sibling", SIBLING)
        print(f"{'case':20} {'value':>8} {'limit':>7} {'peak added':>11} {'ratio':>6}  outcome")
        for case_id, hook, wat, value in CASES:
            out = run_case(parse_component(Path(tmp), case_id, wat), hook, sibling, LIMIT)
            ratio = out["peak_added"] / LIMIT
            rows.append({"case": case_id, "limit": LIMIT, "value": value, **out, "ratio": ratio})
            outcome = (
                f"{out['error']} ({out['reason']})"
                if "error" in out
                else f"returned {out['result_entries']} entries"
            )
            print(
                f"{case_id:20} {value / MiB:4.0f} MiB {LIMIT / MiB:3.0f} MiB "
                f"{out['peak_added'] / MiB:7.1f} MiB {ratio:6.1f}  {outcome}; "
                f"sibling {out['sibling']}"
            )
    if args.json is not None:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
