"""What a hostile component costs to compile: wasmtime compile time against binary size.

    python bench/bench_hostile_load.py [--quick] [--json PATH]

wasmtime cannot interrupt a compilation and leaves compile-time denial of service to the
embedder, so airssys-plugins bounds the *size* of what it compiles
(``Limits.max_component_bytes``, 256 MiB by default). This script measures what that size
buys an attacker: components made of one core module of a pathological shape, generated
as binary (no WAT parse in the timing), compiled with the framework's Engine
(``runtime.engine.engine()``: epoch interruption on) and no cache:

* ``many-funcs``: N tiny functions (per-function overhead of Cranelift);
* ``huge-func``: one function of straight-line arithmetic, up to wasmparser's 7,654,321-byte
  body limit (the most code one function may hold);
* ``many-locals``: functions with wasmparser's maximum 50,000 locals, each touched
  (register allocation and stack frames);
* ``declared-locals``: functions declaring 50,000 locals each in five bytes, none touched
  (the compiler zeroes them all: the most compiling per byte; the framework counts the
  declarations, ``layout.Expansion.locals``, and compiles such a component in the child);
* ``nested``: one function of deeply nested blocks with a ``br_table`` over all of them.

Each row: size, compile seconds, MB/s, and the ratio of seconds per MB against the
``many-funcs`` baseline of the same run; the next column extrapolates the seconds a
component of the default cap would take at that rate, and the last says what a load does
with it before compiling (``framework_verdict``: in process, in the child process, or
refused).

A second table times what comes before compiling at a cache miss: the rewriters that add
the byte-buffer, raw and measuring exports read the component's own sections in Python
(``rawbytes.export_tail``). Components of many component-level aliases or type
definitions, below and past ``relift.MOST_COMPONENT_BYTES``: the seconds the rewriters
took, the seconds they would have taken without the cap (their readers called directly),
and wasmtime's compile seconds of the same binary.

A third table times nesting: a component of a kilobyte whose nested components each
instantiate the previous one twice, which wasmtime's compiler inlines 2**levels times
(``layout.Expansion``): its size, the items it expands to, the seconds and the peak memory
(``ru_maxrss`` of a child process) wasmtime takes to compile it, the seconds the
framework's check takes (``layout.read_layout``), and what the framework does with it
(compile in process, in the child, or refuse before compiling).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections.abc import Callable

import wasmtime
from wasmtime.component import Component

from airssys_plugins.policy.capabilities import MAX_COMPONENT_BYTES
from airssys_plugins.runtime import engine as _engine
from airssys_plugins.runtime import layout, rawbytes, relift
from airssys_plugins.runtime.measure import _sleb as sleb  # signed LEB128, as measure writes it
from airssys_plugins.runtime.relift import _leb as leb  # unsigned LEB128, as relift writes it


def section(sid: int, body: bytes) -> bytes:
    return bytes([sid]) + leb(len(body)) + body


def vec(items: list[bytes]) -> bytes:
    return leb(len(items)) + b"".join(items)


def core_module(bodies: list[bytes], *, params: int = 0) -> bytes:
    """A core module of functions of type ``(i32 x params) -> ()`` with these bodies
    (each: locals declaration + code, without the final ``end``)."""
    functype = b"\x60" + vec([b"\x7f"] * params) + vec([])
    code = [leb(len(body) + 1) + body + b"\x0b" for body in bodies]
    return (
        b"\0asm\x01\0\0\0"
        + section(1, vec([functype]))
        + section(3, vec([leb(0)] * len(bodies)))
        + section(10, vec(code))
    )


def component(module: bytes) -> bytes:
    """A component holding the one core module (compiled, never instantiated)."""
    return b"\0asm\x0d\0\x01\0" + section(1, module)


def no_locals() -> bytes:
    return leb(0)


def many_funcs(n: int) -> bytes:
    body = no_locals() + b"\x41\x01\x1a"  # i32.const 1; drop
    return component(core_module([body] * n))


def huge_func(size: int) -> bytes:
    # local 0 = local 0 * 3 + 1, over and over: a long dependent chain Cranelift must schedule
    step = b"\x20\x00\x41\x03\x6c\x41\x01\x6a\x21\x00"
    body = leb(1) + leb(1) + b"\x7f" + step * (size // len(step))
    return component(core_module([body]))


def many_locals(n_funcs: int, locals_: int = 50_000) -> bytes:
    touch = b"".join(b"\x41" + sleb(i & 63) + b"\x21" + leb(i) for i in range(locals_))
    body = leb(1) + leb(locals_) + b"\x7f" + touch
    return component(core_module([body] * n_funcs))


def declared_locals(n_funcs: int, locals_: int = 50_000) -> bytes:
    """Functions that declare ``locals_`` locals each in one declaration (five bytes) and
    touch none: the compiler still zeroes every one (about 70 ns a local), so 16 KB of
    them take seconds, far below the in-process size (``layout.IN_PROCESS_LOCALS``)."""
    body = leb(1) + leb(locals_) + b"\x7e"  # one declaration: locals_ x i64
    return component(core_module([body] * n_funcs))


def nested(depth: int) -> bytes:
    opens = b"\x02\x40" * depth  # block (empty type)
    table = b"\x20\x00\x0e" + leb(depth) + b"".join(leb(i) for i in range(depth)) + leb(0)
    closes = b"\x0b" * depth
    body = no_locals() + opens + table + closes
    return component(core_module([body], params=1))


def many_aliases(n: int) -> bytes:
    """A component aliasing one core function ``n`` times (component-level aliases)."""
    module = (
        b"\0asm\x01\0\0\0"
        + section(1, vec([b"\x60\x00\x00"]))
        + section(3, vec([leb(0)]))
        + section(7, vec([b"\x01f\x00\x00"]))  # export "f" = func 0
        + section(10, vec([b"\x02\x00\x0b"]))
    )
    instance = section(2, vec([b"\x00\x00\x00"]))  # instantiate module 0, no arguments
    alias = b"\x00\x00\x01\x00\x01f"  # (alias core export 0 "f" (core func))
    return b"\0asm\x0d\0\x01\0" + section(1, module) + instance + section(6, vec([alias] * n))


def many_types(n: int) -> bytes:
    """A component of ``n`` component-level type definitions of ``list<u8>``."""
    return b"\0asm\x0d\0\x01\0" + section(7, vec([b"\x70\x7d"] * n))


def read_seconds(data: bytes, *, capped: bool) -> float:
    """Seconds the rewriters take on ``data``: through ``export_tail`` (``capped``) or
    their readers called directly, as before the cap."""
    started = time.perf_counter()
    if capped:
        rawbytes.export_tail(data)
    elif rawbytes._top_plan(data, True) is None:
        rawbytes.nested_exports(data)
    return time.perf_counter() - started


def rewriter_rows() -> list[dict[str, object]]:
    cases = [  # each shape below and past the cap
        ("aliases 80k", many_aliases(80_000)),
        ("aliases 200k", many_aliases(200_000)),
        ("types 250k", many_types(250_000)),
        ("types 300k", many_types(300_000)),
    ]
    print(
        f"\nrewriters' reading at a cache miss (cap {relift.MOST_COMPONENT_BYTES:,} bytes of "
        "component-level sections)"
    )
    print(
        f"{'case':24} {'level KB':>9} {'read s':>8} {'uncapped s':>11} {'compile s':>10} "
        f"{'past cap':>9}"
    )
    rows: list[dict[str, object]] = []
    for label, data in cases:
        level = relift.component_level_bytes(data, 1 << 62)
        past = relift.component_level_bytes(data) > relift.MOST_COMPONENT_BYTES
        read = read_seconds(data, capped=True)
        uncapped = read_seconds(data, capped=False)
        compiled = compile_seconds(data)
        rows.append(
            {
                "case": label,
                "component_level_bytes": level,
                "read_seconds": read,
                "uncapped_read_seconds": uncapped,
                "compile_seconds": compiled,
                "past_cap": past,
            }
        )
        print(
            f"{label:24} {level / 1e3:9.0f} {read:8.3f} {uncapped:11.3f} {compiled:10.3f} "
            f"{'yes' if past else 'no':>9}"
        )
    return rows


def doubling_wat(levels: int, *, module: bool) -> str:
    """The body of a component's WAT (without ``(component`` and its closing paren) whose
    nested component i instantiates component i-1 twice, so the innermost is
    instantiated 2**levels times once every nested component is inlined, as wasmtime's
    compiler does; with ``module`` the innermost instantiates a core module (each
    instantiation a core instance). A few hundred bytes, whatever ``levels``."""
    inner = "(core module $m) (core instance (instantiate $m))" if module else ""
    parts = [f"(component $c0 {inner})"]
    for i in range(1, levels + 1):
        parts.append(
            f"(component $c{i} (alias outer 1 $c{i - 1} (component $p))"
            " (instance (instantiate $p)) (instance (instantiate $p)))"
        )
    parts.append(f"(instance (instantiate $c{levels}))")
    return " ".join(parts)


def doubling(levels: int, *, module: bool) -> bytes:
    """The binary of :func:`doubling_wat`'s component."""
    return bytes(wasmtime.wat2wasm(f"(component {doubling_wat(levels, module=module)})"))


#: Compiles stdin's component; prints the seconds and the peak growth of its RSS (KiB).
#: The peak is VmHWM, reset to the current RSS first (``clear_refs`` 5): ``ru_maxrss``
#: starts at the parent's RSS when it forked (Linux carries the high-water mark across
#: fork and exec), so after the first table's compiles it hid every child's own peak.
_CHILD_COMPILE = """
import sys, time, wasmtime
from wasmtime.component import Component

def status(field):
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(field + ":"))

data = sys.stdin.buffer.read()
cfg = wasmtime.Config(); cfg.epoch_interruption = True
engine = wasmtime.Engine(cfg)
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")
before = status("VmRSS")
started = time.perf_counter()
Component(engine, data)
print(time.perf_counter() - started, status("VmHWM") - before)
"""


def framework_verdict(data: bytes, expansion: layout.Expansion | None = None) -> str:
    """What a load does with ``data`` before compiling it, by the framework's own check
    (``image._check_expansion``, with wasmtime's default instance limit, then the size
    ``engine._compile_or_load`` compiles in process): "refused", "child" (compiled in the
    child process) or "in process". ``expansion``: ``data``'s, if already read."""
    from airssys_plugins import PluginError
    from airssys_plugins.runtime.image import _check_expansion

    if expansion is None:
        expansion = layout.read_layout(data)[1]
    try:
        in_child = _check_expansion("bench", None, expansion, None)
    except PluginError:
        return "refused"
    return "child" if in_child or len(data) > _engine.IN_PROCESS_COMPILE_BYTES else "in process"


def nesting_rows(quick: bool) -> list[dict[str, object]]:
    levels = (12, 16, 18) if quick else (12, 16, 18, 20, 22)
    print("\nnested components instantiated twice per level (compiled in a child process)")
    print(
        f"{'case':24} {'bytes':>6} {'inlined':>10} {'compile s':>10} {'peak MB':>8} "
        f"{'check ms':>9}  framework"
    )
    rows: list[dict[str, object]] = []
    for module in (True, False):
        for n in levels:
            data = doubling(n, module=module)
            started = time.perf_counter()
            expansion = layout.read_layout(data)[1]
            check = time.perf_counter() - started
            assert expansion is not None
            verdict = framework_verdict(data, expansion)
            done = subprocess.run(
                [sys.executable, "-c", _CHILD_COMPILE], input=data, capture_output=True, check=True
            )
            seconds, peak_kb = done.stdout.split()
            label = f"2**{n} {'instances' if module else 'components'}"
            rows.append(
                {
                    "case": label,
                    "bytes": len(data),
                    "inlined": expansion.inlined,
                    "instances": expansion.instances,
                    "compile_seconds": float(seconds),
                    "peak_mb": int(peak_kb) / 1024,
                    "check_seconds": check,
                    "framework": verdict,
                }
            )
            print(
                f"{label:24} {len(data):6} {expansion.inlined:10,} {float(seconds):10.3f} "
                f"{int(peak_kb) / 1024:8.0f} {check * 1000:9.2f}  {verdict}"
            )
    return rows


def compile_seconds(data: bytes) -> float:
    eng = _engine.engine()
    started = time.perf_counter()
    Component(eng, data)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", help="also write the rows as JSON to this path")
    args = parser.parse_args()
    scale = 1 if args.quick else 4
    cases: list[tuple[str, Callable[[], bytes]]] = [
        (f"many-funcs {25 * scale}k", lambda: many_funcs(25_000 * scale)),
        ("huge-func 1.9 MB", lambda: huge_func(1_900_000)),
        ("huge-func 7.6 MB", lambda: huge_func(7_654_000)),
        ("many-locals 50k x1", lambda: many_locals(1)),
        (f"many-locals 50k x{scale * 2}", lambda: many_locals(scale * 2)),
        (f"declared-locals 50k x{250 * scale}", lambda: declared_locals(250 * scale)),
        ("nested 10k", lambda: nested(10_000)),
        ("nested 50k", lambda: nested(50_000)),
    ]
    rows = []
    base_rate = None
    print(
        f"{'case':24} {'size MB':>9} {'compile s':>10} {'MB/s':>7} {'s/MB ratio':>11} "
        f"{'cap-size s':>11}  framework"
    )
    for label, make in cases:
        data = make()
        mb = len(data) / 1e6
        seconds = compile_seconds(data)
        per_mb = seconds / mb
        if base_rate is None:
            base_rate = per_mb
        at_cap = per_mb * MAX_COMPONENT_BYTES / 1e6
        rows.append(
            {
                "case": label,
                "bytes": len(data),
                "seconds": seconds,
                "s_per_mb": per_mb,
                "ratio": per_mb / base_rate,
                "seconds_at_cap": at_cap,
                "framework": framework_verdict(data),
            }
        )
        print(
            f"{label:24} {mb:9.2f} {seconds:10.2f} {mb / seconds:7.2f} "
            f"{per_mb / base_rate:11.2f} {at_cap:11.0f}  {rows[-1]['framework']}"
        )
    readers = rewriter_rows()
    nesting = nesting_rows(args.quick)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump({"compile": rows, "rewriters": readers, "nesting": nesting}, f, indent=2)


if __name__ == "__main__":
    main()
