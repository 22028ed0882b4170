"""Per-call cost of a component hook: native pluggy, raw wasmtime-py, airssys-plugins, Extism.

Run from the repository root::

    python bench/bench_calls.py              # the table (about 1-2 min)
    python bench/bench_calls.py --profile    # ... plus cProfile of the framework rows
    python bench/bench_calls.py --quick      # 3 batches of ~0.05 s (smoke run)

Everything is measured in one process. Each row is timed timeit-style (the statement is
compiled into a tight loop, GC off while timing; the clock is the thread's CPU time, or
``time.perf_counter_ns`` with ``--clock wall``): N is chosen so one batch takes about
0.2 s, and the row reports the median of 7 batches. Batches are
interleaved across rows (round k times batch k of every row) so that load from elsewhere
on the machine spreads over all rows. See bench/README.md for what each row means and how
to read the ratios. The Extism rows need the Extism Python SDK (``pip install -e '.[bench]'``);
without it they are skipped.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import os
import pstats
import sys
from collections.abc import Callable
from typing import Any

import pluggy
from benchlib import (
    BIG_BYTES,
    BIG_TEXT,
    CLOCK_HELP,
    CLOCKS,
    GUEST_DIR,
    HERE,
    MB,
    PACKAGE,
    SHORT_TEXT,
    Bench,
    Point,
    RawWasmtime,
    Report,
    Result,
    Target,
    bench_pm,
    bench_wasm,
    extism_plugin,
    fmt_ns,
    framework_bound,
    import_extism,
    machine_info,
    native_pm,
)

from airssys_plugins import PluginHost

POINT = Point(1, 2)

# 1 MiB payloads (issue 18, section 1). Real payloads (images, compressed data, protobuf)
# look like random bytes: that is the headline row. The others show how the cost depends
# on the data: every byte value in order (the kindest non-ASCII pattern), ASCII, zeros.
RANDOM_BYTES = os.urandom(MB)
PATTERN_BYTES = BIG_BYTES  # bytes(range(256)) * 4096
ASCII_BYTES = BIG_TEXT.encode()
ZERO_BYTES = bytes(MB)

# ----------------------------------------------------------------------------- output


def print_table(title: str, rows: list[tuple[str, Result]], base: Result) -> None:
    print(f"\n{title}")
    head = (
        f"  {'#':<3} {'row':<50} {'median ns':>10} {'min ns':>9} {'vs pluggy':>10} "
        f"{'spread':>7} {'N/batch':>9}"
    )
    print(head)
    print("  " + "-" * (len(head) - 2))
    for key, r in rows:
        print(
            f"  {key:<3} {r.label:<50} {fmt_ns(r.median):>10} {fmt_ns(r.best):>9} "
            f"{r.median / base.median:>9.2f}x {r.spread:>6.1%} {r.number:>9,}"
        )


def both(a: Result, b: Result) -> str:
    return f"{a.median / b.median:6.2f}x   (on min: {a.best / b.best:5.2f}x)"


def print_ratios(name: str, native: Result, raw: Result, direct: Result, fw: Result) -> None:
    print(f"  ratios for {name} (medians; the same ratio on batch minimums in brackets):")
    print(f"    framework-through-pluggy / native pluggy    = {both(fw, native)}")
    print(
        f"    raw wasmtime-py / framework-through-pluggy  = {both(raw, fw)}"
        "  speed-up over Func.__call__"
    )
    print(f"    framework-through-pluggy / raw wasmtime-py  = {both(fw, raw)}")
    print(
        f"    pluggy dispatch (row 4 - row 3)             = "
        f"{fmt_ns(fw.median - direct.median):>6} ns/call  "
        f"(on min: {fmt_ns(fw.best - direct.best)} ns)"
    )


def ratio(key: str, what: str, a: Result, b: Result, op: str, limit: float) -> Target:
    return Target(
        key, what, a.median / b.median, op, limit, detail=f"on min: {a.best / b.best:.3f}x"
    )


def print_targets(targets: list[Target]) -> None:
    for t in targets:
        print(f"    {t.what:<52} = {t.line()}  [{t.detail}]")


def print_pair(what: str, a: Result, b: Result) -> None:
    print(f"    {what:<52} = {both(a, b)}")


# ----------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--repeat", type=int, default=7, help="batches per row (default 7)")
    ap.add_argument("--target", type=float, default=0.2, help="seconds per batch (default 0.2)")
    ap.add_argument("--quick", action="store_true", help="3 batches of ~0.05 s, no raw list")
    ap.add_argument(
        "--profile", action="store_true", help="cProfile the framework rows after timing"
    )
    ap.add_argument(
        "--skip-raw-list",
        action="store_true",
        help="skip raw wasmtime-py on 1 MiB list<u8> (about 1-2 s per call)",
    )
    ap.add_argument("--clock", choices=sorted(CLOCKS), default="cpu", help=CLOCK_HELP)
    ap.add_argument("--json", metavar="PATH", help="write the targets and key numbers here")
    args = ap.parse_args(argv)
    if args.quick:
        args.repeat, args.target, args.skip_raw_list = 3, 0.05, True
    repeat, target = args.repeat, args.target

    extism = import_extism()  # before anything runs: it sets RUST_LIB_BACKTRACE=0
    print("airssys-plugins call benchmark (bench/bench_calls.py)")
    for line in machine_info():
        print("  " + line)

    wasm = bench_wasm()
    print(
        f"  guest      : {wasm.name} ({wasm.stat().st_size:,} bytes, "
        f"built from {GUEST_DIR.relative_to(HERE.parent)})"
    )
    if extism is None:
        print("  extism     : NOT INSTALLED, Extism rows skipped (pip install -e '.[bench]')")
    else:
        print(
            "  extism     : bench/guests/extism/bench.wat (core module, extism:host/env "
            "imports); add_one takes and returns a u32 as 4 little-endian bytes"
        )
    print(
        f"  timing     : median of {repeat} batches of ~{target:g} s each, clock "
        f"{args.clock} ({CLOCKS[args.clock].__name__}), GC disabled while timing"
    )

    # Separate managers: each hook has exactly one implementation in each.
    pm_native = native_pm()
    pm = bench_pm()
    host = PluginHost(pm, package=PACKAGE)
    plugin = host.load(wasm, name="bench")
    raw = RawWasmtime(wasm)
    ext = extism_plugin(extism) if extism is not None else None
    inst = plugin.instance
    bound = {
        hook: framework_bound(host, plugin, hook)
        for hook in ("add_one", "echo", "echo_bytes", "swap")
    }
    floor_call, floor_args, floor_result = raw.ctypes_floor()

    try:
        # -- correctness first ------------------------------------------------------------
        assert pm_native.hook.add_one(x=1) == [2]
        assert raw.funcs["add-one"](raw.store, 1) == 2
        assert not floor_call(*floor_args)  # a NULL wasmtime_error_t*
        assert floor_result.of.u32 == 2
        assert inst.call(bound["add_one"], (1,)) == 2
        assert pm.hook.add_one(x=1) == [2]
        assert pm_native.hook.echo(text=SHORT_TEXT) == [SHORT_TEXT]
        assert raw.funcs["echo"](raw.store, SHORT_TEXT) == SHORT_TEXT
        assert inst.call(bound["echo"], (SHORT_TEXT,)) == SHORT_TEXT
        assert pm.hook.echo(text=SHORT_TEXT) == [SHORT_TEXT]
        assert pm.hook.echo(text=BIG_TEXT) == [BIG_TEXT]
        assert raw.funcs["echo"](raw.store, BIG_TEXT) == BIG_TEXT
        for payload in (RANDOM_BYTES, PATTERN_BYTES, ASCII_BYTES, ZERO_BYTES):
            out = pm.hook.echo_bytes(data=payload)
            assert out == [payload], "1 MiB bytes echo mismatch"
            assert type(out[0]) is bytes, f"echo_bytes returned {type(out[0]).__name__}"
        assert inst.call(bound["echo_bytes"], (b"",)) == b""
        assert pm.hook.echo_bytes(data=b"\x00\xff") == [b"\x00\xff"]
        assert pm_native.hook.swap(p=POINT) == [Point(2, 1)]
        assert pm.hook.swap(p=POINT) == [Point(2, 1)]
        assert inst.call(bound["swap"], (POINT,)) == Point(2, 1)
        swapped = raw.funcs["swap"](raw.store, POINT)
        assert (swapped.x, swapped.y) == (2, 1)
        if ext is not None:
            assert ext.call("add_one", (1).to_bytes(4, "little")) == (2).to_bytes(4, "little")
            assert ext.call("add_one", b"\xff\xff\xff\xff") == b"\0\0\0\0"  # wraps like u32
            assert ext.call("echo", SHORT_TEXT).decode() == SHORT_TEXT
            assert ext.call("echo", BIG_BYTES) == BIG_BYTES
            assert ext.call("echo", RANDOM_BYTES) == RANDOM_BYTES
            assert ext.call("echo_copy", BIG_BYTES) == BIG_BYTES
            assert ext.call("echo_copy", SHORT_TEXT + "!!") == (SHORT_TEXT + "!!").encode()
        print("  checks     : add_one(1) == 2 and every echo returns its input, on every path")

        env: dict[str, Any] = {
            "pm_native": pm_native,
            "pm": pm,
            "raw": raw,
            "inst": inst,
            "bound": bound,
            "f_add": raw.funcs["add-one"],
            "f_echo": raw.funcs["echo"],
            "f_echo_bytes": raw.funcs["echo-bytes"],
            "store": raw.store,
            "floor_call": floor_call,
            "floor_args": floor_args,
            "b_add": bound["add_one"],
            "b_echo": bound["echo"],
            "b_swap": bound["swap"],
            "f_swap": raw.funcs["swap"],
            "POINT": POINT,
            "ext": ext,
            "ONE_LE": (1).to_bytes(4, "little"),
            "SHORT": SHORT_TEXT,
            "BIG_TEXT": BIG_TEXT,
            "BIG_BYTES": BIG_BYTES,
            "BIG_ASCII_BYTES": ASCII_BYTES,
            "RANDOM_BYTES": RANDOM_BYTES,
            "ZERO_BYTES": ZERO_BYTES,
        }

        bench = Bench(env, repeat=repeat, target_s=target, clock=args.clock)
        m = bench.add
        print("  calibrating and timing (progress on stderr) ...", file=sys.stderr)
        loop = m("empty timeit loop (pass)", "pass")

        a_native = m("native pluggy  pm.hook.add_one(x=1)", "pm_native.hook.add_one(x=1)")
        a_raw = m("raw wasmtime-py  Func(store, 1)", "f_add(store, 1)")
        a_floor = m("raw C API floor  func_call(*prebuilt args)", "floor_call(*floor_args)")
        a_direct = m("framework direct  instance.call(bound,(1,))", "inst.call(b_add, (1,))")
        a_fw = m("framework via pluggy  pm.hook.add_one(x=1)", "pm.hook.add_one(x=1)")

        e_native = m("native pluggy  pm.hook.echo(text=s)", "pm_native.hook.echo(text=SHORT)")
        e_raw = m("raw wasmtime-py  Func(store, s)", "f_echo(store, SHORT)")
        e_direct = m("framework direct  instance.call(bound,(s,))", "inst.call(b_echo, (SHORT,))")
        e_fw = m("framework via pluggy  pm.hook.echo(text=s)", "pm.hook.echo(text=SHORT)")

        r_native = m("native pluggy  pm.hook.swap(p=point)", "pm_native.hook.swap(p=POINT)")
        r_raw = m("raw wasmtime-py  Func(store, point)", "f_swap(store, POINT)")
        r_direct = m("framework direct  instance.call(bound,(p,))", "inst.call(b_swap, (POINT,))")
        r_fw = m("framework via pluggy  pm.hook.swap(p=point)", "pm.hook.swap(p=POINT)")

        a_ext = a_ext_int = e_ext = e_ext_str = ext_big = ext_big_copy = None
        if ext is not None:
            a_ext = m(
                'Extism  plugin.call("add_one", 4 bytes) -> bytes', 'ext.call("add_one", ONE_LE)'
            )
            a_ext_int = m(
                "Extism  int -> 4 bytes -> call -> int",
                'int.from_bytes(ext.call("add_one", (1).to_bytes(4, "little")), "little")',
            )
            e_ext = m('Extism  plugin.call("echo", s) -> bytes', 'ext.call("echo", SHORT)')
            e_ext_str = m(
                'Extism  plugin.call("echo", s).decode() -> str', 'ext.call("echo", SHORT).decode()'
            )

        big_bytes = m(
            "framework via pluggy  echo_bytes(1 MiB os.urandom)",
            "pm.hook.echo_bytes(data=RANDOM_BYTES)",
        )
        big_pattern = m(
            "framework via pluggy  echo_bytes(1 MiB range(256) pattern)",
            "pm.hook.echo_bytes(data=BIG_BYTES)",
        )
        big_ascii = m(
            "framework via pluggy  echo_bytes(1 MiB ASCII bytes)",
            "pm.hook.echo_bytes(data=BIG_ASCII_BYTES)",
        )
        big_zeros = m(
            "framework via pluggy  echo_bytes(1 MiB zeros)", "pm.hook.echo_bytes(data=ZERO_BYTES)"
        )
        copy_floor = m(
            "floor  bytes(bytearray(x)) of 1 MiB (two copies)", "bytes(bytearray(RANDOM_BYTES))"
        )
        big_text = m("framework via pluggy  echo(1 MiB str)", "pm.hook.echo(text=BIG_TEXT)")
        raw_big_text = m("raw wasmtime-py  Func(store, 1 MiB str)", "f_echo(store, BIG_TEXT)")
        if ext is not None:
            ext_big = m(
                'Extism  call("echo", 1 MiB os.urandom), no-copy guest',
                'ext.call("echo", RANDOM_BYTES)',
            )
            ext_big_copy = m(
                'Extism  call("echo_copy", 1 MiB os.urandom), copying guest',
                'ext.call("echo_copy", RANDOM_BYTES)',
            )
        bench.run()
        raw_big_bytes = None
        if not args.skip_raw_list:
            # ~1-2 us per byte each way: one call per batch, 3 batches. Timed last and on its
            # own: its million-object temporaries raise glibc's mmap threshold, which makes
            # every later 1 MiB allocation fault-free and the 1 MiB str rows ~8x faster.
            late = Bench(env, repeat=min(3, repeat), target_s=target, clock=args.clock)
            raw_big_bytes = late.add(
                "raw wasmtime-py  Func(store, 1 MiB bytes)",
                "f_echo_bytes(store, BIG_BYTES)",
                number=1,
            )
            late.run()
        prof_text = profile(pm) if args.profile else ""
    finally:
        host.close()  # close Stores before the interpreter exits
        raw.close()

    # -- report ------------------------------------------------------------------------------
    report = Report("bench_calls")
    print(
        f"\nempty timeit loop: {loop.median:.1f} ns/iteration "
        "(included in every row, not subtracted)"
    )
    a_rows = [("1", a_native), ("2", a_raw), ("2f", a_floor), ("3", a_direct), ("4", a_fw)]
    if a_ext is not None and a_ext_int is not None:
        a_rows += [("5", a_ext), ("5i", a_ext_int)]
    print_table("add_one(x: u32) -> u32, x=1", a_rows, a_native)
    print_ratios("add_one", a_native, a_raw, a_direct, a_fw)
    add_targets = [
        ratio(
            "add_one/floor",
            "add_one: framework direct / raw C API floor",
            a_direct,
            a_floor,
            "<=",
            1.5,
        ),
        ratio(
            "add_one/func_call",
            "add_one: raw wasmtime-py / framework direct",
            a_raw,
            a_direct,
            ">=",
            2.5,
        ),
    ]
    if a_ext is not None:
        add_targets.append(
            ratio(
                "add_one/extism",
                "add_one: framework via pluggy / Extism call (4/5)",
                a_fw,
                a_ext,
                "<=",
                0.6,
            )
        )
    print("  targets (issue 7; medians):")
    print_targets(add_targets)
    print_pair("framework-through-pluggy / raw C API floor", a_fw, a_floor)
    print_pair("raw wasmtime-py / framework-through-pluggy", a_raw, a_fw)
    if a_ext is not None and a_ext_int is not None:
        print_pair("framework direct / Extism call (row 3/5)", a_direct, a_ext)
        print_pair("framework-through-pluggy / Extism int in/out (4/5i)", a_fw, a_ext_int)

    e_rows = [("1", e_native), ("2", e_raw), ("3", e_direct), ("4", e_fw)]
    if e_ext is not None and e_ext_str is not None:
        e_rows += [("5", e_ext), ("5s", e_ext_str)]
    print_table(f"echo(text: str) -> str, {len(SHORT_TEXT.encode())}-byte string", e_rows, e_native)
    print_ratios("echo", e_native, e_raw, e_direct, e_fw)
    echo_targets = [
        ratio(
            "echo/func_call",
            "echo: raw wasmtime-py / framework direct",
            e_raw,
            e_direct,
            ">=",
            2.5,
        )
    ]
    if e_ext is not None and e_ext_str is not None:
        echo_targets.append(
            ratio(
                "echo/extism",
                "echo: framework via pluggy / Extism call (4/5)",
                e_fw,
                e_ext,
                "<=",
                0.6,
            )
        )
    print("  targets (issue 7; medians):")
    print_targets(echo_targets)

    if e_ext is not None and e_ext_str is not None:
        print_pair("framework direct / Extism call (row 3/5)", e_direct, e_ext)
        print_pair("framework-through-pluggy / Extism str in/out (4/5s)", e_fw, e_ext_str)

    r_rows = [("1", r_native), ("2", r_raw), ("3", r_direct), ("4", r_fw)]
    print_table(
        "swap(p: point) -> point, a record of two u32 (no Extism row: no records)",
        r_rows,
        r_native,
    )
    print_ratios("swap", r_native, r_raw, r_direct, r_fw)
    swap_targets = [
        ratio(
            "swap/func_call", "swap: raw wasmtime-py / framework direct", r_raw, r_direct, ">=", 2.5
        )
    ]
    print("  targets (issue 7; medians):")
    print_targets(swap_targets)

    print(
        "\n1 MiB round trips (ms per call; faults/call = minor page faults per call, ~4 KiB each)"
    )
    head = (
        f"  {'row':<60} {'median ms':>10} {'min ms':>9} {'spread':>7} {'N/batch':>8} "
        f"{'faults/call':>12}"
    )
    print(head)
    print("  " + "-" * (len(head) - 2))
    big_rows = [big_bytes, big_pattern, big_ascii, big_zeros, big_text, raw_big_text, copy_floor]
    big_rows += [r for r in (ext_big, ext_big_copy, raw_big_bytes) if r is not None]
    for r in big_rows:
        print(
            f"  {r.label:<60} {r.median / 1e6:>10.3f} {r.best / 1e6:>9.3f} {r.spread:>6.1%} "
            f"{r.number:>8,} {r.faults_per_call:>12,.0f}"
        )
    print("  ratios (medians):")
    print(f"    {'framework random bytes, per payload byte':<52} = {big_bytes.median / MB:7.1f} ns")
    print(f"    {'framework str, cost per payload byte':<52} = {big_text.median / MB:7.1f} ns")
    if raw_big_bytes is not None:
        print_pair("raw wasmtime-py bytes / framework bytes", raw_big_bytes, big_bytes)
    print_pair("raw wasmtime-py str / framework str", raw_big_text, big_text)
    print_pair("framework ASCII bytes / framework str", big_ascii, big_text)
    print_pair("framework random bytes / range(256) pattern", big_bytes, big_pattern)
    print_pair("framework random bytes / zeros", big_bytes, big_zeros)
    print_pair("framework random bytes / bytes(bytearray(x)) floor", big_bytes, copy_floor)
    big_targets = [
        ratio(
            "bytes/str",
            "1 MiB: framework random bytes / framework str",
            big_bytes,
            big_text,
            "<=",
            3.0,
        )
    ]
    if ext_big is not None and ext_big_copy is not None:
        big_targets.append(
            ratio(
                "bytes/extism",
                "1 MiB: framework random bytes / Extism no-copy echo",
                big_bytes,
                ext_big,
                "<=",
                1.0,
            )
        )
        print_pair("framework random bytes / Extism copying echo (1 MiB)", big_bytes, ext_big_copy)
        print_pair("framework str / Extism no-copy echo (1 MiB)", big_text, ext_big)
    print("  targets (issue 7; medians):")
    print_targets(big_targets)

    report.targets = add_targets + echo_targets + swap_targets + big_targets
    rows: dict[str, Result | None] = {
        "add_one/native": a_native,
        "add_one/raw": a_raw,
        "add_one/floor": a_floor,
        "add_one/direct": a_direct,
        "add_one/pluggy": a_fw,
        "add_one/extism": a_ext,
        "echo/native": e_native,
        "echo/raw": e_raw,
        "echo/direct": e_direct,
        "echo/pluggy": e_fw,
        "echo/extism": e_ext,
        "swap/native": r_native,
        "swap/raw": r_raw,
        "swap/direct": r_direct,
        "swap/pluggy": r_fw,
        "1MiB/bytes": big_bytes,  # os.urandom: the headline row (issue 18)
        "1MiB/bytes_pattern": big_pattern,
        "1MiB/bytes_ascii": big_ascii,
        "1MiB/bytes_zeros": big_zeros,
        "1MiB/str": big_text,
        "1MiB/copy_floor": copy_floor,
        "1MiB/extism": ext_big,
        "1MiB/extism_copy": ext_big_copy,
    }
    for key, row in rows.items():
        if row is not None:
            report.values[key + " ns"] = row.median
    report.write(args.json)
    if prof_text:
        print(prof_text)
    return 0


def profile(pm: pluggy.PluginManager) -> str:
    """cProfile the framework paths: where a hook call spends its time."""
    cases: list[tuple[str, Callable[[], object], int]] = [
        ("pm.hook.add_one(x=1)", lambda: pm.hook.add_one(x=1), 50_000),
        ("pm.hook.echo(text=13 bytes)", lambda: pm.hook.echo(text=SHORT_TEXT), 50_000),
        (
            "pm.hook.echo_bytes(data=1 MiB random)",
            lambda: pm.hook.echo_bytes(data=RANDOM_BYTES),
            20,
        ),
    ]
    out = io.StringIO()
    for title, fn, n in cases:
        prof = cProfile.Profile()
        gc.disable()
        prof.enable()
        for _ in range(n):
            fn()
        prof.disable()
        gc.enable()
        print(
            f"\ncProfile: {n:,} x {title} (sorted by own time; profiler overhead inflates "
            "Python-level entries)",
            file=out,
        )
        stats = pstats.Stats(prof, stream=out)
        stats.sort_stats("tottime").print_stats(12)
    return out.getvalue()


if __name__ == "__main__":
    sys.exit(main())
