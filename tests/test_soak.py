"""The short soak run (bench/soak.py --quick): faults from the corpus under concurrent load."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SOAK = Path(__file__).resolve().parent.parent / "bench" / "soak.py"


def test_quick_soak_attributes_every_fault() -> None:
    """No fault is lost or misattributed and every healthy result is right."""
    run = subprocess.run(
        [sys.executable, str(SOAK), "--quick"], capture_output=True, text=True, timeout=600
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "OK: every fault attributed to its plugin and hook" in run.stdout
    injected = next(line for line in run.stdout.splitlines() if line.startswith("faults injected"))
    assert int(injected.split()[-1].replace(",", "")) > 0
