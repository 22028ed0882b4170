"""Fan-out: one hook implemented by 50 component plugins, against 50 single-plugin calls.

Run from the repository root::

    python bench/bench_fanout.py            # about 30 s
    python bench/bench_fanout.py --quick    # smoke run

The bench component is loaded 50 times under different names (``p00`` ... ``p49``) into one
PluginManager, so ``pm50.hook.add_one(x=1)`` returns a list of 50 answers. The baseline is
the same hook called 50 times on a manager whose only plugin is one copy of that component.
Rows are timed like bench_calls.py (timeit loops, medians of interleaved batches); every
row is reported per 50 component calls.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from benchlib import (
    CLOCK_HELP,
    CLOCKS,
    PACKAGE,
    SHORT_TEXT,
    Bench,
    NativePlugin,
    Report,
    Result,
    Target,
    bench_pm,
    bench_wasm,
    fmt_ns,
    machine_info,
)

from airssys_plugins import PluginHost

FAN = 50


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--repeat", type=int, default=7, help="batches per row (default 7)")
    ap.add_argument("--target", type=float, default=0.2, help="seconds per batch (default 0.2)")
    ap.add_argument("--quick", action="store_true", help="3 batches of ~0.05 s")
    ap.add_argument("--clock", choices=sorted(CLOCKS), default="cpu", help=CLOCK_HELP)
    ap.add_argument("--json", metavar="PATH", help="write the targets and key numbers here")
    args = ap.parse_args(argv)
    if args.quick:
        args.repeat, args.target = 3, 0.05

    print(f"\nairssys-plugins fan-out benchmark (bench/bench_fanout.py): {FAN} plugins, one hook")
    for line in machine_info():
        print("  " + line)
    wasm = bench_wasm()

    # pm50: one manager, 50 copies of the component. pm1: one manager, one copy.
    pm50 = bench_pm()
    host50 = PluginHost(pm50, package=PACKAGE)
    plugins = [host50.load(wasm, name=f"p{i:02d}") for i in range(FAN)]
    pm1 = bench_pm()
    host1 = PluginHost(pm1, package=PACKAGE)
    host1.load(wasm, name="single")
    # 50 managers with one copy each: 50 single calls that touch 50 different instances
    # (what the fan-out touches) instead of one instance 50 times.
    singles = [bench_pm() for _ in range(FAN)]
    hosts = [PluginHost(pm, package=PACKAGE) for pm in singles]
    for i, h in enumerate(hosts):
        h.load(wasm, name=f"s{i:02d}")
    # pluggy's own fan-out cost, for reference: 50 Python hookimpls.
    pm_native50 = bench_pm()
    for i in range(FAN):
        pm_native50.register(NativePlugin(), name=f"n{i:02d}")
    pm_native1 = bench_pm()
    pm_native1.register(NativePlugin(), name="n")

    all_hosts = [host50, host1, *hosts]
    try:
        assert pm50.hook.add_one(x=1) == [2] * FAN
        assert pm50.hook.echo(text=SHORT_TEXT) == [SHORT_TEXT] * FAN
        assert pm1.hook.add_one(x=1) == [2]
        assert all(pm.hook.add_one(x=1) == [2] for pm in singles)
        assert [p.add_one(1) for p in plugins] == [2] * FAN  # type: ignore[attr-defined]
        print(f"  checks     : pm50.hook.add_one(x=1) == [2] * {FAN}, echo likewise")
        print(
            f"  timing     : median of {args.repeat} batches of ~{args.target:g} s each, clock "
            f"{args.clock} ({CLOCKS[args.clock].__name__}); "
            f"every row is ns per {FAN} component calls"
        )

        env: dict[str, Any] = {
            "pm50": pm50,
            "pm1": pm1,
            "R": range(FAN),
            "callers_add": [pm.hook.add_one for pm in singles],
            "callers_echo": [pm.hook.echo for pm in singles],
            "impls_add": [p.add_one for p in plugins],  # type: ignore[attr-defined]
            "pm_native50": pm_native50,
            "pm_native1": pm_native1,
            "S": SHORT_TEXT,
        }
        bench = Bench(env, repeat=args.repeat, target_s=args.target, clock=args.clock)
        m = bench.add
        print("  calibrating and timing (progress on stderr) ...", file=sys.stderr)
        a_fan = m(f"pm50.hook.add_one(x=1)  ({FAN} impls)", "pm50.hook.add_one(x=1)")
        a_single = m(
            f"{FAN} x pm1.hook.add_one(x=1)  (1 impl)", "for _ in R: pm1.hook.add_one(x=1)"
        )
        a_spread = m(
            f"{FAN} managers x .hook.add_one(x=1), 1 impl each",
            "for c in callers_add: c(x=1)",
        )
        a_impls = m(f"{FAN} hookimpls called directly (no pluggy)", "for f in impls_add: f(1)")
        e_fan = m(f"pm50.hook.echo(text=s)  ({FAN} impls)", "pm50.hook.echo(text=S)")
        e_single = m(
            f"{FAN} x pm1.hook.echo(text=s)  (1 impl)", "for _ in R: pm1.hook.echo(text=S)"
        )
        e_spread = m(
            f"{FAN} managers x .hook.echo(text=s), 1 impl each",
            "for c in callers_echo: c(text=S)",
        )
        n_fan = m(
            f"native: pm.hook.add_one(x=1), {FAN} Python impls", "pm_native50.hook.add_one(x=1)"
        )
        n_single = m(
            f"native: {FAN} x pm.hook.add_one(x=1), 1 Python impl",
            "for _ in R: pm_native1.hook.add_one(x=1)",
        )
        bench.run()
    finally:
        for h in all_hosts:
            h.close()

    rows: list[tuple[str, Result]] = [
        ("a1", a_fan),
        ("a2", a_single),
        ("a3", a_spread),
        ("a4", a_impls),
        ("e1", e_fan),
        ("e2", e_single),
        ("e3", e_spread),
        ("n1", n_fan),
        ("n2", n_single),
    ]
    head = f"  {'#':<3} {'row':<50} {'median ns':>11} {'per call':>9} {'spread':>7} {'N/batch':>8}"
    print(f"\nfan-out: ns per {FAN} calls (per call = median / {FAN})")
    print(head)
    print("  " + "-" * (len(head) - 2))
    for key, r in rows:
        print(
            f"  {key:<3} {r.label:<50} {fmt_ns(r.median):>11} {fmt_ns(r.median / FAN):>9} "
            f"{r.spread:>6.1%} {r.number:>8,}"
        )

    def target(key: str, what: str, a: Result, b: Result) -> Target:
        return Target(
            key, what, a.median / b.median, "<=", 1.2, detail=f"on min: {a.best / b.best:.3f}x"
        )

    targets = [
        target("fanout/add_one", "add_one: fan-out / 50 single calls (a1/a2)", a_fan, a_single),
        target("fanout/echo", "echo: fan-out / 50 single calls (e1/e2)", e_fan, e_single),
    ]
    print("  targets (issue 7; medians):")
    for t in targets:
        print(f"    {t.what:<52} = {t.line()}  [{t.detail}]")
    print("  other ratios (medians):")
    for what, a, b in (
        ("add_one: fan-out / 50 managers x 1 (a1/a3)", a_fan, a_spread),
        ("add_one: fan-out / 50 direct hookimpls (a1/a4)", a_fan, a_impls),
        ("echo: fan-out / 50 managers x 1 (e1/e3)", e_fan, e_spread),
        ("native pluggy: fan-out / 50 single calls (n1/n2)", n_fan, n_single),
    ):
        print(f"    {what:<52} = {a.median / b.median:7.3f}x")
    print(
        f"    {'pluggy cost per impl in the fan-out, (a1 - a4) / 50':<52} = "
        f"{fmt_ns((a_fan.median - a_impls.median) / FAN)} ns"
    )
    report = Report("bench_fanout", targets)
    report.values = {
        "fanout/add_one ns": a_fan.median,
        "fanout/add_one single x50 ns": a_single.median,
        "fanout/echo ns": e_fan.median,
        "fanout/echo single x50 ns": e_single.median,
    }
    report.write(args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
