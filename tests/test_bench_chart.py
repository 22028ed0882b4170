"""bench/chart.py: the headline chart drawn from run_all.py's JSON, rows read by name."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from xml.etree import ElementTree

import pytest

ROOT = Path(__file__).resolve().parent.parent
CHART = ROOT / "bench" / "chart.py"
SVG = "{http://www.w3.org/2000/svg}"


def _chart() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_chart", CHART)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_chart"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def _results() -> dict[str, object]:
    return {
        "run": {"commit": "abc1234", "quick": False, "load_average_at_end": [0.4, 0.5]},
        "scripts": {
            "bench_calls": {
                "script": "bench_calls",
                "targets": [],
                "values": {
                    "add_one/pluggy ns": 7_500.0,
                    "add_one/extism ns": 10_000.0,
                    "add_one/floor ns": 2_500.0,
                    "1MiB/bytes ns": 38_000_000.0,
                    "1MiB/copy_floor ns": 160_000.0,
                },
            },
            "bench_isolation": {
                "script": "bench_isolation",
                "targets": [],
                "values": {"isolation/wat/per-call ns": 12_000.0},
            },
        },
    }


def test_bars_are_the_rows_found_and_the_rest_is_named(tmp_path: Path) -> None:
    """Each row present becomes a bar labelled with its value; absent rows are listed."""
    results = tmp_path / "results.json"
    results.write_text(json.dumps(_results()))
    out = tmp_path / "chart.svg"
    run = subprocess.run(
        [sys.executable, str(CHART), str(results), str(out)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "skipped bench_loads: warm python ms" in run.stderr
    root = ElementTree.parse(out).getroot()
    titles = [t.text for t in root.iter(f"{SVG}title")]
    assert titles == [
        "bench_calls: add_one/pluggy ns = 7.5 µs",
        "bench_calls: add_one/extism ns = 10 µs",
        "bench_calls: add_one/floor ns = 2.5 µs",
        "bench_calls: 1MiB/bytes ns = 38 ms",
        "bench_calls: 1MiB/copy_floor ns = 0.16 ms",
        "bench_isolation: isolation/wat/per-call ns = 12 µs",
    ]
    text = " ".join(t.text or "" for t in root.iter(f"{SVG}text"))
    assert "abc1234" in text
    assert "load average 0.4" in text
    assert "not measured in this run" in text
    assert "bench_loads: warm python ms" in text
    assert "Warm load" not in text  # a panel with no row is left out


def test_longer_values_get_longer_bars() -> None:
    """The scale is logarithmic and monotonic within a panel."""
    chart = _chart()
    root = ElementTree.fromstring(chart.render(_results()))
    widths = {
        r.find(f"{SVG}title").text.split(" = ")[0]: float(r.get("width"))  # type: ignore[union-attr]
        for r in root.iter(f"{SVG}rect")
        if r.find(f"{SVG}title") is not None
    }
    assert (
        widths["bench_calls: add_one/floor ns"]
        < widths["bench_calls: add_one/pluggy ns"]
        < widths["bench_calls: add_one/extism ns"]
    )
    assert widths["bench_calls: 1MiB/copy_floor ns"] < widths["bench_calls: 1MiB/bytes ns"]


def test_the_same_results_give_the_same_file() -> None:
    """No timestamps or random ids: the chart is a function of the JSON."""
    chart = _chart()
    assert chart.render(_results()) == chart.render(_results())


@pytest.mark.parametrize(
    ("content", "message"),
    [("not json", "cannot read"), ('{"script": "x", "values": {}}', "none of the charted rows")],
    ids=["bad-json", "no-rows"],
)
def test_unusable_input_is_refused_with_a_message(
    tmp_path: Path, content: str, message: str
) -> None:
    """A file that is not JSON, or holds none of the rows: exit 2 and say why."""
    results = tmp_path / "results.json"
    results.write_text(content)
    run = subprocess.run(
        [sys.executable, str(CHART), str(results), str(tmp_path / "chart.svg")],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 2
    assert message in run.stderr
    assert not (tmp_path / "chart.svg").exists()
