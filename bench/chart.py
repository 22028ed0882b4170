"""Draw the headline rows of a bench run as an SVG chart: ours against peers and floors.

Run from the repository root, after a run that kept its numbers::

    python bench/run_all.py --json bench/results.json
    python bench/chart.py bench/results.json docs/benchmarks.svg

Four panels: the cost of one small call, a 1 MiB round trip, a warm load, a call on a fresh
instance. Each bar is one row of the JSON, looked up by its script and value name in
:data:`PANELS`; a row the run did not measure (a script not run, a peer not installed, a
row another script adds later) is left out, and the chart's footnote names it. Bars are
on a log scale, since the rows of one panel span up to four orders of magnitude. The SVG
is written by hand (no plotting library), so the same JSON always gives the same file.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import Any

#: Colours by kind of row: ours, a peer's, a floor (what the hardware or wasmtime allows).
COLOURS = {"ours": "#1f6feb", "peer": "#d97706", "floor": "#6b7280"}
KIND_NAMES = {"ours": "airssys-plugins", "peer": "peer (Extism, pluggy)", "floor": "floor"}


@dataclass(frozen=True)
class Row:
    script: str
    key: str  # the value's name in the script's report, e.g. "add_one/pluggy ns"
    label: str
    kind: str  # "ours", "peer" or "floor"
    scale: float = 1e-3  # value -> the panel's unit (ns -> µs by default)


@dataclass(frozen=True)
class Panel:
    title: str
    unit: str
    rows: tuple[Row, ...]


NS_MS = 1e-6
CALLS, LOADS, ISOLATION = "bench_calls", "bench_loads", "bench_isolation"
PANELS: tuple[Panel, ...] = (
    Panel(
        "One call: add_one(u32) -> u32",
        "µs",
        (
            Row(CALLS, "add_one/pluggy ns", "pm.hook into a component", "ours"),
            Row(CALLS, "add_one/direct ns", "instance.call, no pluggy", "ours"),
            Row(CALLS, "add_one/extism ns", "Extism plugin.call", "peer"),
            Row(CALLS, "add_one/native ns", "pluggy, Python hookimpl", "peer"),
            Row(CALLS, "add_one/raw ns", "wasmtime-py Func.__call__", "floor"),
            Row(CALLS, "add_one/floor ns", "C API call, prebuilt args", "floor"),
        ),
    ),
    Panel(
        "1 MiB round trip",
        "ms",
        (
            Row(CALLS, "1MiB/bytes ns", "bytes, os.urandom", "ours", NS_MS),
            Row(CALLS, "1MiB/bytes_pattern ns", "bytes, range(256) pattern", "ours", NS_MS),
            Row(CALLS, "1MiB/bytes_ascii ns", "bytes, ASCII", "ours", NS_MS),
            Row(CALLS, "1MiB/bytes_zeros ns", "bytes, zeros", "ours", NS_MS),
            Row(CALLS, "1MiB/str ns", "str", "ours", NS_MS),
            Row(CALLS, "1MiB/extism ns", "Extism echo (no copy)", "peer", NS_MS),
            Row(CALLS, "1MiB/extism_copy ns", "Extism echo (copying)", "peer", NS_MS),
            Row(CALLS, "1MiB/copy_floor ns", "bytes(bytearray(x))", "floor", NS_MS),
        ),
    ),
    Panel(
        "Warm load (compiled component cached; CPU time)",
        "ms",
        (
            Row(LOADS, "warm python ms", "18 MB Python guest: host.load", "ours", 1),
            Row(LOADS, "warm python raw kept ms", "raw: instantiate a held Component", "floor", 1),
            Row(LOADS, "warm python raw ms", "raw: deserialize_file + instantiate", "floor", 1),
            Row(LOADS, "warm wat ms", "small WAT guest: host.load", "ours", 1),
            Row(LOADS, "warm wat raw kept ms", "raw: small WAT guest, held", "floor", 1),
            Row(LOADS, "warm wat raw ms", "raw: small WAT guest, mapped", "floor", 1),
        ),
    ),
    Panel(
        "A call on a fresh instance (isolation='per-call')",
        "µs",
        (
            Row(ISOLATION, "isolation/wat/per-call ns", "WAT: per-call isolated", "ours"),
            Row(ISOLATION, "isolation/wat/warm ns", "WAT: warm call", "ours"),
            Row(
                ISOLATION,
                "isolation/wat/raw_floor ns",
                "WAT: raw instantiate+call",
                "floor",
            ),
            Row(
                ISOLATION,
                "isolation/python/per-call ns",
                "Python: per-call isolated",
                "ours",
            ),
            Row(ISOLATION, "isolation/python/warm ns", "Python: warm call", "ours"),
            Row(
                ISOLATION,
                "isolation/python/raw_floor ns",
                "Python: raw instantiate+call",
                "floor",
            ),
        ),
    ),
)

# Layout, in SVG user units (px).
WIDTH = 860
LABEL_W = 250
BAR_X = LABEL_W + 10
BAR_W = WIDTH - BAR_X - 90
BAR_H = 16
GAP = 6
TITLE_H = 30
PANEL_GAP = 18
FONT = "font-family='DejaVu Sans, Arial, sans-serif'"


def values_of(results: dict[str, Any]) -> dict[str, dict[str, float]]:
    """script -> value name -> value, from run_all.py's JSON (or one script's)."""
    if "scripts" in results:
        return {name: r.get("values", {}) for name, r in results["scripts"].items()}
    return {results["script"]: results.get("values", {})}


def found_rows(panel: Panel, values: dict[str, dict[str, float]]) -> list[tuple[Row, float]]:
    out = []
    for row in panel.rows:
        value = values.get(row.script, {}).get(row.key)
        if isinstance(value, int | float) and value > 0 and math.isfinite(value):
            out.append((row, value * row.scale))
    return out


def missing_rows(values: dict[str, dict[str, float]]) -> list[str]:
    missing = []
    for panel in PANELS:
        have = {row.key for row, _ in found_rows(panel, values)}
        missing += [f"{row.script}: {row.key}" for row in panel.rows if row.key not in have]
    return missing


def _fmt(value: float) -> str:
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def render(results: dict[str, Any]) -> str:
    """The SVG text of the chart of ``results`` (run_all.py's JSON)."""
    values = values_of(results)
    run = results.get("run", {})
    parts: list[str] = []
    y = 50
    for panel in PANELS:
        rows = found_rows(panel, values)
        if not rows:
            continue
        parts.append(
            f"<text x='10' y='{y + 18}' {FONT} font-size='15' font-weight='bold'>"
            f"{escape(panel.title)} ({escape(panel.unit)}, log scale)</text>"
        )
        y += TITLE_H
        low = min(v for _, v in rows)
        high = max(v for _, v in rows)
        lo = 10 ** math.floor(math.log10(low))
        hi = 10 ** math.ceil(math.log10(high))
        if hi <= lo * 10:
            hi = lo * 100
        span = math.log10(hi) - math.log10(lo)
        for row, value in rows:
            width = max(2.0, BAR_W * (math.log10(value) - math.log10(lo)) / span)
            parts.append(
                f"<text x='{LABEL_W}' y='{y + BAR_H - 4}' {FONT} font-size='12' "
                f"text-anchor='end'>{escape(row.label)}</text>"
                f"<rect x='{BAR_X}' y='{y}' width='{width:.1f}' height='{BAR_H}' "
                f"fill='{COLOURS[row.kind]}'><title>{escape(row.script)}: "
                f"{escape(row.key)} = {value:.4g} {escape(panel.unit)}</title></rect>"
                f"<text x='{BAR_X + width + 5:.1f}' y='{y + BAR_H - 4}' {FONT} "
                f"font-size='12'>{_fmt(value)} {escape(panel.unit)}</text>"
            )
            y += BAR_H + GAP
        y += PANEL_GAP
    legend_x = 10
    legend = []
    for kind, colour in COLOURS.items():
        legend.append(
            f"<rect x='{legend_x}' y='{y}' width='12' height='12' fill='{colour}'/>"
            f"<text x='{legend_x + 16}' y='{y + 11}' {FONT} font-size='12'>"
            f"{escape(KIND_NAMES[kind])}</text>"
        )
        legend_x += 200
    parts += legend
    y += 26
    missing = missing_rows(values)
    if missing:
        note = "not measured in this run: " + "; ".join(missing)
        for line in _wrap(note, 130):
            parts.append(
                f"<text x='10' y='{y}' {FONT} font-size='11' fill='#555'>{escape(line)}</text>"
            )
            y += 15
    load = run.get("load_average_at_end")
    detail = ", ".join(
        part
        for part in (
            f"commit {run.get('commit', '?')}",
            run.get("when") or "",
            f"load average {load[0]} (1 min) at the end" if load else "",
            "quick run" if run.get("quick") else "",
        )
        if part
    )
    height = y + 10
    return (
        f"<svg xmlns='http://www.w3.org/2000/svg' width='{WIDTH}' height='{height}' "
        f"viewBox='0 0 {WIDTH} {height}'>"
        f"<rect width='100%' height='100%' fill='white'/>"
        f"<text x='10' y='20' {FONT} font-size='16' font-weight='bold'>airssys-plugins "
        f"benchmarks: headline rows</text>"
        f"<text x='10' y='38' {FONT} font-size='12' fill='#555'>{escape(detail)}</text>"
        + "".join(parts)
        + "</svg>\n"
    )


def _wrap(text: str, width: int) -> list[str]:
    lines, line = [], ""
    for word in text.split(" "):
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}" if line else word
    return [*lines, line] if line else lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("results", type=Path, help="run_all.py --json output (or one script's)")
    ap.add_argument("output", type=Path, help="the SVG file to write")
    args = ap.parse_args(argv)
    try:
        results = json.loads(args.results.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        print(f"chart.py: cannot read {args.results}: {exc}", file=sys.stderr)
        return 2
    values = values_of(results)
    if not any(found_rows(panel, values) for panel in PANELS):
        print(f"chart.py: {args.results} holds none of the charted rows", file=sys.stderr)
        return 2
    args.output.write_text(render(results), encoding="utf-8")
    for name in missing_rows(values):
        print(f"chart.py: skipped {name} (not in {args.results})", file=sys.stderr)
    print(f"chart written to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
