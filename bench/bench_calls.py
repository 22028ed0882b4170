"""Per-call cost of a component hook: native pluggy vs raw wasmtime-py vs airssys-plugins.

Run from the repository root::

    python bench/bench_calls.py              # the table (30-60 s)
    python bench/bench_calls.py --profile    # ... plus cProfile of the framework rows
    python bench/bench_calls.py --quick      # 3 batches of ~0.05 s (smoke run)

Everything is measured in one process. Each row is timed timeit-style (the statement is
compiled into a tight loop, ``time.perf_counter_ns``, GC off while timing): N is chosen so
one batch takes about 0.2 s, and the row reports the median of 7 batches. Batches are
interleaved across rows (round k times batch k of every row) so that load from elsewhere
on the machine spreads over all rows. See
bench/README.md for what each row means and how to read the ratios.
"""

# mypy: disable-error-code="empty-body"
# (hookspecs are declarations: `...` bodies, as in pluggy's docs)
from __future__ import annotations

import argparse
import cProfile
import gc
import io
import os
import platform
import pstats
import resource
import statistics
import sys
import time
import timeit
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pluggy
import wasmtime
from wasmtime.component import Component, Linker

import airssys_plugins
from airssys_plugins import PluginHost, u32
from airssys_plugins._build import build_guest

HERE = Path(__file__).resolve().parent
GUEST_DIR = HERE / "guests" / "bench"

hookspec = pluggy.HookspecMarker("bench")
hookimpl = pluggy.HookimplMarker("bench")


class Hooks:
    @hookspec
    def add_one(self, x: u32) -> u32: ...

    @hookspec
    def echo(self, text: str) -> str: ...

    @hookspec
    def echo_bytes(self, data: bytes) -> bytes: ...


class NativePlugin:
    """The pure-Python baseline: one hookimpl per hook, doing what the guest does."""

    @hookimpl
    def add_one(self, x: int) -> int:
        return x + 1

    @hookimpl
    def echo(self, text: str) -> str:
        return text

    @hookimpl
    def echo_bytes(self, data: bytes) -> bytes:
        return data


SHORT_TEXT = "hello, world!"  # 13 bytes of UTF-8
assert len(SHORT_TEXT.encode()) == 13
MB = 1 << 20
BIG_TEXT = "0123456789abcdef" * (MB // 16)  # 1 MiB of ASCII
BIG_BYTES = bytes(range(256)) * (MB // 256)  # 1 MiB, every byte value


# ----------------------------------------------------------------------------- timing


@dataclass
class Result:
    label: str
    number: int  # calls per batch
    batches: list[float]  # ns per call, one per batch
    minflt: int = 0  # minor page faults while timing (all batches)

    @property
    def faults_per_call(self) -> float:
        return self.minflt / (self.number * len(self.batches))

    @property
    def median(self) -> float:
        return statistics.median(self.batches)

    @property
    def best(self) -> float:
        return min(self.batches)

    @property
    def spread(self) -> float:
        """(max - min) / median of the batches: how noisy the row was."""
        return (max(self.batches) - min(self.batches)) / self.median


def calibrate(timer: timeit.Timer, target_s: float) -> int:
    """timeit.autorange-style: N such that one batch of N calls takes about ``target_s``."""
    number = 1
    while True:
        elapsed = timer.timeit(number) / 1e9
        if elapsed >= target_s / 10:
            break
        number *= 2 if elapsed > 0 else 10
    return max(1, round(number * target_s / elapsed))


class Bench:
    """Rows are calibrated one by one, then timed round-robin: batch k of every row runs in
    round k, so a burst of load from elsewhere on the machine hits all rows alike instead
    of whichever row happened to be running."""

    def __init__(self, env: dict[str, Any], *, repeat: int, target_s: float):
        self.env, self.repeat, self.target_s = env, repeat, target_s
        self.rows: list[tuple[Result, timeit.Timer, int]] = []

    def add(
        self, label: str, stmt: str, *, number: int | None = None, repeat: int | None = None
    ) -> Result:
        timer = timeit.Timer(stmt, globals=self.env, timer=time.perf_counter_ns)
        timer.timeit(3 if number is None else 1)  # warm-up: first-call caches, lazy binds
        if number is None:
            number = calibrate(timer, self.target_s)
        result = Result(label, number, [])
        self.rows.append((result, timer, self.repeat if repeat is None else repeat))
        return result

    def run(self) -> None:
        for k in range(self.repeat):
            started = time.perf_counter()
            for result, timer, repeat in self.rows:
                if k < repeat:
                    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
                    result.batches.append(timer.timeit(result.number) / result.number)
                    result.minflt += resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
            print(
                f"    round {k + 1}/{self.repeat} done in {time.perf_counter() - started:.1f} s",
                file=sys.stderr,
            )


# ----------------------------------------------------------------------------- set-up


def machine_info() -> list[str]:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return [
        f"platform   : {platform.platform()}",
        f"cpu        : {cpu} ({os.cpu_count()} logical CPUs)",
        f"python     : {sys.version.split()[0]} ({platform.python_implementation()})",
        f"wasmtime   : {version('wasmtime')}   pluggy: {pluggy.__version__}   "
        f"airssys-plugins: {airssys_plugins.__version__}",
    ]


def native_pm() -> pluggy.PluginManager:
    pm = pluggy.PluginManager("bench")
    pm.add_hookspecs(Hooks)
    pm.register(NativePlugin(), name="native")
    return pm


class RawWasmtime:
    """The same component through wasmtime-py alone: own Engine, Store, Linker."""

    def __init__(self, wasm: Path):
        self.engine = wasmtime.Engine()
        self.component = Component.from_file(self.engine, str(wasm))
        self.linker = Linker(self.engine)
        self.store = wasmtime.Store(self.engine)
        self.instance = self.linker.instantiate(self.store, self.component)
        self.funcs = {
            name: self._func(f"bench:hooks/{name}@1.0.0", name)
            for name in ("add-one", "echo", "echo-bytes")
        }

    def _func(self, interface: str, function: str) -> Any:
        iface = self.instance.get_export_index(self.store, interface)
        assert iface is not None, f"interface {interface} not exported"
        index = self.instance.get_export_index(self.store, function, iface)
        assert index is not None, f"{interface}#{function} not exported"
        func = self.instance.get_func(self.store, index)
        assert func is not None, f"{interface}#{function} not exported"
        return func

    def close(self) -> None:
        self.store.close()


def framework_bound(host: PluginHost, plugin: airssys_plugins.WasmPlugin, hook: str) -> Any:
    """A BoundFunc for ``hook``, built the way PluginHost.load builds the ones pluggy calls."""
    iface, _, func = plugin.hooks[hook].rpartition("#")
    return plugin.instance.bind(hook, iface or None, func, host.contract.hooks[hook].signature)


# ----------------------------------------------------------------------------- output


def fmt_ns(ns: float) -> str:
    return f"{ns:,.0f}"


def print_table(title: str, rows: list[tuple[str, Result]], base: Result) -> None:
    print(f"\n{title}")
    head = (
        f"  {'#':<3} {'row':<44} {'median ns':>10} {'min ns':>9} {'vs pluggy':>10} "
        f"{'spread':>7} {'N/batch':>9}"
    )
    print(head)
    print("  " + "-" * (len(head) - 2))
    for key, r in rows:
        print(
            f"  {key:<3} {r.label:<44} {fmt_ns(r.median):>10} {fmt_ns(r.best):>9} "
            f"{r.median / base.median:>9.2f}x {r.spread:>6.1%} {r.number:>9,}"
        )


def print_ratios(name: str, native: Result, raw: Result, direct: Result | None, fw: Result) -> None:
    def both(a: Result, b: Result) -> str:
        return f"{a.median / b.median:6.2f}x   (on min: {a.best / b.best:5.2f}x)"

    print(f"  ratios for {name} (medians; the same ratio on batch minimums in brackets):")
    print(f"    framework-through-pluggy / native pluggy    = {both(fw, native)}")
    print(
        f"    raw wasmtime-py / framework-through-pluggy  = {both(raw, fw)}"
        "  speed-up over Func.__call__"
    )
    print(f"    framework-through-pluggy / raw wasmtime-py  = {both(fw, raw)}")
    if direct is not None:
        print(
            f"    pluggy dispatch (row 4 - row 3)             = "
            f"{fmt_ns(fw.median - direct.median):>6} ns/call  "
            f"(on min: {fmt_ns(fw.best - direct.best)} ns)"
        )


# ----------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--repeat", type=int, default=7, help="batches per row (default 7)")
    ap.add_argument("--target", type=float, default=0.2, help="seconds per batch (default 0.2)")
    ap.add_argument("--quick", action="store_true", help="3 batches of ~0.05 s")
    ap.add_argument(
        "--profile", action="store_true", help="cProfile the framework rows after timing"
    )
    ap.add_argument(
        "--skip-raw-list",
        action="store_true",
        help="skip raw wasmtime-py on 1 MiB list<u8> (about 1-2 s per call)",
    )
    args = ap.parse_args(argv)
    if args.quick:
        args.repeat, args.target = 3, 0.05
    repeat, target = args.repeat, args.target

    print("airssys-plugins call benchmark")
    for line in machine_info():
        print("  " + line)

    wasm = build_guest(GUEST_DIR)
    print(
        f"  guest      : {wasm.name} ({wasm.stat().st_size:,} bytes, "
        f"built from {GUEST_DIR.relative_to(HERE.parent)})"
    )
    print(
        f"  timing     : median of {repeat} batches of ~{target:g} s each, "
        "time.perf_counter_ns, GC disabled while timing"
    )

    # Separate managers: each hook has exactly one implementation in each.
    pm_native = native_pm()
    pm = pluggy.PluginManager("bench")
    pm.add_hookspecs(Hooks)
    host = PluginHost(pm, package="bench:hooks@1.0.0")
    plugin = host.load(wasm, name="bench")
    raw = RawWasmtime(wasm)
    inst = plugin.instance
    bound = {
        hook: framework_bound(host, plugin, hook) for hook in ("add_one", "echo", "echo_bytes")
    }

    try:
        # -- correctness first ------------------------------------------------------------
        assert pm_native.hook.add_one(x=1) == [2]
        assert raw.funcs["add-one"](raw.store, 1) == 2
        assert inst.call(bound["add_one"], (1,)) == 2
        assert pm.hook.add_one(x=1) == [2]
        assert pm_native.hook.echo(text=SHORT_TEXT) == [SHORT_TEXT]
        assert raw.funcs["echo"](raw.store, SHORT_TEXT) == SHORT_TEXT
        assert inst.call(bound["echo"], (SHORT_TEXT,)) == SHORT_TEXT
        assert pm.hook.echo(text=SHORT_TEXT) == [SHORT_TEXT]
        assert pm.hook.echo(text=BIG_TEXT) == [BIG_TEXT]
        assert raw.funcs["echo"](raw.store, BIG_TEXT) == BIG_TEXT
        out = pm.hook.echo_bytes(data=BIG_BYTES)
        assert out == [BIG_BYTES], "1 MiB bytes echo mismatch"
        assert type(out[0]) is bytes, f"echo_bytes returned {type(out[0]).__name__}"
        assert inst.call(bound["echo_bytes"], (b"",)) == b""
        assert pm.hook.echo_bytes(data=b"\x00\xff") == [b"\x00\xff"]
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
            "b_add": bound["add_one"],
            "b_echo": bound["echo"],
            "SHORT": SHORT_TEXT,
            "BIG_TEXT": BIG_TEXT,
            "BIG_BYTES": BIG_BYTES,
        }

        bench = Bench(env, repeat=repeat, target_s=target)
        m = bench.add
        print("  calibrating and timing (progress on stderr) ...", file=sys.stderr)
        loop = m("empty timeit loop (pass)", "pass")

        a_native = m("native pluggy  pm.hook.add_one(x=1)", "pm_native.hook.add_one(x=1)")
        a_raw = m("raw wasmtime-py  Func(store, 1)", "f_add(store, 1)")
        a_direct = m("framework direct  instance.call(bound,(1,))", "inst.call(b_add, (1,))")
        a_fw = m("framework via pluggy  pm.hook.add_one(x=1)", "pm.hook.add_one(x=1)")

        e_native = m("native pluggy  pm.hook.echo(text=s)", "pm_native.hook.echo(text=SHORT)")
        e_raw = m("raw wasmtime-py  Func(store, s)", "f_echo(store, SHORT)")
        e_direct = m("framework direct  instance.call(bound,(s,))", "inst.call(b_echo, (SHORT,))")
        e_fw = m("framework via pluggy  pm.hook.echo(text=s)", "pm.hook.echo(text=SHORT)")

        big_bytes = m(
            "framework via pluggy  echo_bytes(1 MiB bytes)", "pm.hook.echo_bytes(data=BIG_BYTES)"
        )
        big_text = m("framework via pluggy  echo(1 MiB str)", "pm.hook.echo(text=BIG_TEXT)")
        raw_big_text = m("raw wasmtime-py  Func(store, 1 MiB str)", "f_echo(store, BIG_TEXT)")
        bench.run()
        raw_big_bytes = None
        if not args.skip_raw_list:
            # ~1-2 us per byte each way: one call per batch, 3 batches. Timed last and on its
            # own: its million-object temporaries raise glibc's mmap threshold, which makes
            # every later 1 MiB allocation fault-free and the 1 MiB str rows ~8x faster.
            late = Bench(env, repeat=min(3, repeat), target_s=target)
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
    print(
        f"\nempty timeit loop: {loop.median:.1f} ns/iteration "
        "(included in every row, not subtracted)"
    )
    print_table(
        "add_one(x: u32) -> u32, x=1",
        [("1", a_native), ("2", a_raw), ("3", a_direct), ("4", a_fw)],
        a_native,
    )
    print_ratios("add_one", a_native, a_raw, a_direct, a_fw)
    print_table(
        f"echo(text: str) -> str, {len(SHORT_TEXT.encode())}-byte string",
        [("1", e_native), ("2", e_raw), ("3", e_direct), ("4", e_fw)],
        e_native,
    )
    print_ratios("echo", e_native, e_raw, e_direct, e_fw)

    print(
        "\n1 MiB round trips (ms per call; faults/call = minor page faults per call, ~4 KiB each)"
    )
    head = (
        f"  {'row':<50} {'median ms':>10} {'min ms':>9} {'spread':>7} {'N/batch':>8} "
        f"{'faults/call':>12}"
    )
    print(head)
    print("  " + "-" * (len(head) - 2))
    big_rows = [big_bytes, big_text, raw_big_text] + ([raw_big_bytes] if raw_big_bytes else [])
    for r in big_rows:
        print(
            f"  {r.label:<50} {r.median / 1e6:>10.3f} {r.best / 1e6:>9.3f} {r.spread:>6.1%} "
            f"{r.number:>8,} {r.faults_per_call:>12,.0f}"
        )
    print("  ratios (medians):")
    bytes_vs_str = big_bytes.median / big_text.median
    print(f"    framework bytes / framework str (1 MiB)      = {bytes_vs_str:6.2f}x")
    print(f"    framework bytes, cost per payload byte       = {big_bytes.median / MB:6.1f} ns")
    print(f"    framework str, cost per payload byte         = {big_text.median / MB:6.1f} ns")
    if raw_big_bytes is not None:
        speedup = raw_big_bytes.median / big_bytes.median
        print(
            f"    raw wasmtime-py bytes / framework bytes      = {speedup:6.2f}x"
            "  (speed-up of the packed list<u8> path)"
        )
    str_speedup = raw_big_text.median / big_text.median
    print(f"    raw wasmtime-py str / framework str          = {str_speedup:6.2f}x")
    if prof_text:
        print(prof_text)
    return 0


def profile(pm: pluggy.PluginManager) -> str:
    """cProfile the framework paths: where a hook call spends its time."""
    cases: list[tuple[str, Callable[[], object], int]] = [
        ("pm.hook.add_one(x=1)", lambda: pm.hook.add_one(x=1), 50_000),
        ("pm.hook.echo(text=13 bytes)", lambda: pm.hook.echo(text=SHORT_TEXT), 50_000),
        ("pm.hook.echo_bytes(data=1 MiB)", lambda: pm.hook.echo_bytes(data=BIG_BYTES), 20),
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
