"""wasmtime's own component-model tests, through the framework (tests/wast/README.md).

Each script's components are hand-written WAT that test the canonical ABI's corners:
strings between nested components in every encoding, the largest string lengths,
misaligned pointers, invalid discriminants, resources, exceptions at a component
boundary. Every component goes through all a load does (the binary rewriters, the
measuring walks, the raw and latin1 routes), and every call must give the script's
expected value, or fail with the framework's error carrying wasmtime's trap text.
The number of calls checked per script is pinned: a component that stops loading, or a
call that stops being made, fails here instead of going quiet.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parent.parent
WAST = Path(__file__).resolve().parent / "wast"

#: Calls checked (as the script expects) per script; the others are not made, for the
#: reasons docs/explanation/real-components.md gives (no WIT for the component, an
#: Engine feature not turned on). The runner's own host functions and resource are
#: provided as wasmtime's runner defines them (``wast_coverage.SPECTEST``).
CHECKED = {
    "alias-region-known-imported-adapter-memory": 2,
    "alias-region-known-imported-canonical-abi-memory": 3,
    "alias-region-known-imported-entities": 3,
    "alias-region-multiple-instantiations": 3,
    "alias-region-reexported-ambiguous-entities": 6,
    "alias-region-reexported-known-entities": 3,
    "big-strings": 108,
    "exceptions": 5,
    "nested-many-instantiations": 1,
    "resources": 26,
    "simple": 1,
    "string-transcode-invalid": 1,
    "strings": 8,
    "trap": 1,
    "types": 15,
}


def _harness() -> ModuleType:
    name = "bench_wast_coverage"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, ROOT / "bench" / "wast_coverage.py")
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def test_every_script_here_is_pinned() -> None:
    assert {p.stem for p in WAST.glob("*.wast")} == set(CHECKED)


@pytest.mark.parametrize("name", sorted(CHECKED))
def test_wasmtime_component_model_script(name: str, tmp_path: Path) -> None:
    harness = _harness()
    checks = harness.run_wast(WAST / f"{name}.wast", tmp_path)
    wrong = [
        f"line {c.line} {c.kind} {c.field}: {c.verdict}"
        for c in checks
        if c.group in ("bug", "differs")
    ]
    assert not wrong, "\n".join(wrong)
    assert sum(c.group == "ok" for c in checks) == CHECKED[name], [
        f"line {c.line} {c.field}: {c.verdict}" for c in checks if c.group != "ok"
    ]
