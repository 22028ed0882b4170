"""Run every benchmark of bench/ and print the issue 7 targets: met, missed or inconclusive.

Run from the repository root::

    python bench/run_all.py                 # everything, about 5 min on 2 cores
    python bench/run_all.py --quick         # smoke run for CI, about 1 min
    python bench/run_all.py --profile       # ... plus cProfile of the call paths and of
                                            #     a warm 18 MB load
    python bench/run_all.py --only calls,fanout
    python bench/run_all.py --rev HEAD      # benchmark a commit of airssys_plugins/ instead
                                            # of the work tree (git archive into a temp dir)
    python bench/run_all.py --json bench/results.json   # ... and keep every script's numbers
                                            # (read by bench/chart.py)

Each script (bench_calls.py, bench_fanout.py, bench_parallel.py, bench_startup.py,
bench_loads.py) runs in its own Python process, so one cannot warm up or fill memory for
the next. They print their
own tables; this script adds the summary at the end. It exits non-zero only when a script
fails, never because a target was missed: timings are reported, not asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
SCRIPTS = {
    "calls": "bench_calls.py",
    "fanout": "bench_fanout.py",
    "parallel": "bench_parallel.py",
    "startup": "bench_startup.py",
    "isolation": "bench_isolation.py",
    "loads": "bench_loads.py",
}
PROFILED = {"calls", "startup"}  # the scripts that take --profile


def export_rev(rev: str, into: Path) -> str:
    """``git archive`` airssys_plugins/ at ``rev`` into ``into``; the full commit id."""
    sha = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "--verify", f"{rev}^{{commit}}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", "--format=tar", sha, "airssys_plugins"],
        capture_output=True,
        check=True,
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return sha


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--quick", action="store_true", help="smoke run (CI): short batches")
    ap.add_argument("--profile", action="store_true", help="add cProfile output")
    ap.add_argument(
        "--only", default=",".join(SCRIPTS), help=f"comma-separated subset of {','.join(SCRIPTS)}"
    )
    ap.add_argument("--rev", help="benchmark airssys_plugins/ as committed at this git rev")
    ap.add_argument(
        "--json",
        metavar="PATH",
        help="write every script's targets and values here, with the machine and commit "
        "(bench/chart.py draws the headline rows from it)",
    )
    args = ap.parse_args(argv)
    chosen = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = [name for name in chosen if name not in SCRIPTS]
    if unknown:
        ap.error(f"unknown benchmark(s) {', '.join(unknown)}; choose from {', '.join(SCRIPTS)}")

    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="airssys-bench-run-") as tmp_name:
        tmp = Path(tmp_name)
        env = dict(os.environ)
        # Extism's runtime captures a Rust backtrace on every call when RUST_BACKTRACE=1
        # (set on the project's machines) and RUST_LIB_BACKTRACE is unset: ~2x its call cost.
        env["RUST_LIB_BACKTRACE"] = "0"
        if args.rev:
            framework = tmp / "framework"
            framework.mkdir()
            sha = export_rev(args.rev, framework)
            env["PYTHONPATH"] = os.pathsep.join(
                [str(framework), *filter(None, [env.get("PYTHONPATH")])]
            )
            env["BENCH_FRAMEWORK_LABEL"] = f"git archive of {args.rev} ({sha[:10]})"
        reports: list[dict[str, Any]] = []
        for name in chosen:
            out = tmp / f"{name}.json"
            cmd = [sys.executable, str(HERE / SCRIPTS[name]), "--json", str(out)]
            if args.quick:
                cmd.append("--quick")
            if args.profile and name in PROFILED:
                cmd.append("--profile")
            sys.stdout.flush()
            proc = subprocess.run(cmd, env=env)
            if proc.returncode != 0:
                print(f"\n{SCRIPTS[name]} FAILED (exit {proc.returncode})", file=sys.stderr)
                return proc.returncode
            reports.append(json.loads(out.read_text()))

    if args.json:
        write_results(Path(args.json), reports, quick=args.quick, rev=args.rev)
    print(
        f"\nsummary: issue 7 targets ({'quick' if args.quick else 'full'} run, "
        f"{time.perf_counter() - started:.0f} s)"
    )
    print("| script | target | measured | goal | verdict | detail |")
    print("|---|---|---|---|---|---|")
    for report in reports:
        for t in report["targets"]:
            sign = "≤" if t["op"] == "<=" else "≥"
            print(
                f"| {report['script']} | {t['what']} | {t['value']:.3f}x | {sign} {t['limit']:g}x "
                f"| {verdict(t)} | {t['detail']} |"
            )
    return 0


def write_results(
    path: Path, reports: list[dict[str, Any]], *, quick: bool, rev: str | None
) -> None:
    """Every report in one JSON file: ``{"run": {...}, "scripts": {name: report}}``."""
    head = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "--short", rev or "HEAD"],
        capture_output=True,
        text=True,
    ).stdout.strip()
    load1, load5, _ = os.getloadavg()
    run = {
        "commit": head,
        "rev": rev,
        "quick": quick,
        "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "load_average_at_end": [round(load1, 2), round(load5, 2)],
        "cpus": os.cpu_count(),
    }
    data = {"run": run, "scripts": {r["script"]: r for r in reports}}
    path.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    print(f"\nresults written to {path}")


def verdict(t: dict[str, Any]) -> str:
    if t.get("inconclusive"):
        return "inconclusive"
    met = t["value"] <= t["limit"] if t["op"] == "<=" else t["value"] >= t["limit"]
    return "met" if met else "**missed**"


if __name__ == "__main__":
    sys.exit(main())
