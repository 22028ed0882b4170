"""PluginHost(on_progress=...): the stages of a load, told to the app as LoadProgress."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import attrs
import pluggy
import pytest

from airssys_plugins import LoadProgress, PluginHost
from tests.demo import PACKAGE


def test_on_progress_tells_each_stage_and_compiling_only_when_it_compiles(
    demo: Callable[..., Path],
    pm: pluggy.PluginManager,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """reading, compiling (cold cache only, with its size), instantiating, done."""
    monkeypatch.setenv("AIRSSYS_PLUGINS_CACHE_DIR", str(tmp_path / "cache"))
    wasm = demo(k=9173, funcs=["add-one"])
    events: list[LoadProgress] = []
    with PluginHost(pm, package=PACKAGE, on_progress=events.append) as host:
        host.load(wasm, pool_size=2)
        assert [e.stage for e in events] == ["reading", "compiling", "instantiating", "done"]
        assert {e.plugin for e in events} == {wasm.stem}
        reading, compiling, instantiating, _ = events
        assert reading.detail == str(wasm)
        assert re.fullmatch(r"first time only, [\d,]+ bytes", compiling.detail)
        assert instantiating.detail == "2 instance(s)"
        elapsed = [e.elapsed for e in events]
        assert elapsed == sorted(elapsed)
        assert elapsed[0] >= 0
        assert str(compiling).startswith(f"{wasm.stem}: compiling (first time only, ")
        with pytest.raises(attrs.exceptions.FrozenInstanceError):
            compiling.stage = "done"  # type: ignore[misc]
        events.clear()
        host.load(wasm.read_bytes(), name="again")  # compiled already: no compiling stage
        assert [(e.plugin, e.stage) for e in events] == [
            ("again", "reading"),
            ("again", "instantiating"),
            ("again", "done"),
        ]
        assert events[0].detail.endswith(" bytes")
