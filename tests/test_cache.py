"""The persistent compile cache: size bound, eviction, clear, concurrent writers."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pluggy
import pytest

from airssys_plugins import Limits, PluginHost, release_compiled
from airssys_plugins.cli import main
from airssys_plugins.runtime import aot_cache_dir, cache_clear, cache_info, evict

from .demo import PACKAGE

Demo = Callable[..., Path]


@pytest.fixture
def private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point the compile and build caches at an empty directory."""
    monkeypatch.setenv("AIRSSYS_PLUGINS_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache" / "aot"


def _load(pm: pluggy.PluginManager, wasm: Path, name: str) -> str:
    with PluginHost(pm, package=PACKAGE) as host:
        return host.load(wasm, name=name).sha256


def test_entries_are_written_and_reported(
    private_cache: Path, pm: pluggy.PluginManager, demo: Demo, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each compiled component leaves one entry; `cache info` reports them."""
    wasm = demo(k=21, funcs=["add-one"])
    digest = _load(pm, wasm, "a")
    assert [p.name.split("-")[0] for p in private_cache.glob("*.cwasm")] == [digest]
    info = cache_info()
    assert (info.directory, info.entries) == (aot_cache_dir(), 1)
    assert info.total_bytes == next(private_cache.glob("*.cwasm")).stat().st_size
    assert main(["cache", "info"]) == 0
    assert "entries:   1" in capsys.readouterr().out


def test_least_recently_used_entries_are_evicted(
    private_cache: Path, pm: pluggy.PluginManager, demo: Demo
) -> None:
    """Over the size bound, the oldest entries go first; the newest one is kept."""
    wasms = [demo(k=30 + i, funcs=["add-one"]) for i in range(3)]
    digests = []
    for i, wasm in enumerate(wasms):
        digests.append(_load(pm, wasm, f"p{i}"))
        entry = next(private_cache.glob(f"{digests[-1]}-*.cwasm"))
        os.utime(entry, (time.time() - 100 + i, time.time() - 100 + i))
    one_entry = next(private_cache.glob("*.cwasm")).stat().st_size
    assert evict(limit=one_entry * 2) == 1
    remaining = {p.name.split("-")[0] for p in private_cache.glob("*.cwasm")}
    assert remaining == set(digests[1:])


def test_a_cache_hit_refreshes_recency(
    private_cache: Path, pm: pluggy.PluginManager, demo: Demo
) -> None:
    """Loading from the cache marks the entry as recently used."""
    wasm = demo(k=40, funcs=["add-one"])
    digest = _load(pm, wasm, "hit")
    entry = next(private_cache.glob(f"{digest}-*.cwasm"))
    os.utime(entry, (1_000_000, 1_000_000))
    release_compiled()  # not served from memory: from the cache
    _load(pm, wasm, "hit")
    assert entry.stat().st_mtime > 1_000_000


def test_abandoned_temp_files_are_removed(private_cache: Path) -> None:
    """Temp files left by a crashed writer are cleaned up once they are old."""
    private_cache.mkdir(parents=True)
    old = private_cache / ".tmp-abandoned.cwasm"
    old.write_bytes(b"partial")
    os.utime(old, (time.time() - 7200, time.time() - 7200))
    fresh = private_cache / ".tmp-inflight.cwasm"
    fresh.write_bytes(b"being written")
    evict()
    assert not old.exists()
    assert fresh.exists()


def test_clear(
    private_cache: Path, pm: pluggy.PluginManager, demo: Demo, capsys: pytest.CaptureFixture[str]
) -> None:
    """`cache clear` removes every entry; loading again recompiles."""
    wasm = demo(k=50, funcs=["add-one"])
    _load(pm, wasm, "c")
    # --only compiled: the demo component itself was built into the cache's builds/.
    assert main(["cache", "clear", "--only", "compiled"]) == 0
    assert "removed 1 compiled component(s)" in capsys.readouterr().out
    assert cache_clear() == 0
    _load(pm, wasm, "c")
    assert cache_info().entries == 1


CONCURRENT = """
import sys, pluggy
sys.path.insert(0, {root!r})
from airssys_plugins import Limits, PluginHost
from tests.demo import DemoHooks, PACKAGE
pm = pluggy.PluginManager("demo"); pm.add_hookspecs(DemoHooks)
with PluginHost(pm, package=PACKAGE) as host:
    host.load({wasm!r}, name="x")
    assert pm.hook.add_one(x=1) == [2], pm.hook.add_one(x=1)
print("ok")
"""


def test_two_processes_compiling_at_once(private_cache: Path, demo: Demo) -> None:
    """Two processes filling the same entry at once both succeed; the entry is usable."""
    wasm = str(demo(k=1, funcs=["add-one"]))
    script = CONCURRENT.format(root=str(Path(__file__).resolve().parent.parent), wasm=wasm)
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    assert len(list(private_cache.glob("*.cwasm"))) == 1
    assert list(private_cache.glob(".tmp-*")) == []
    rerun = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert rerun.stdout.strip() == "ok", rerun.stderr


def test_a_fuel_limited_plugin_has_an_entry_of_its_own(
    private_cache: Path, pm: pluggy.PluginManager, demo: Demo
) -> None:
    """Fuel counting is compiled in: the same component gets one entry per Engine."""
    wasm = demo(k=43, funcs=["add-one"])
    with PluginHost(pm, package=PACKAGE) as host:
        host.load(wasm, name="free")
        host.load(wasm, name="metered", limits=Limits(fuel=10**9))
        assert pm.hook.add_one(x=1) == [44, 44]  # the demo guest adds k + 1
    names = sorted(p.name for p in private_cache.glob("*.cwasm"))
    assert len(names) == 2
    assert len({name.split("-")[0] for name in names}) == 1  # one digest, two configs
