from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pluggy
import pytest

from airssys_plugins import PluginHost, _files, release_compiled
from airssys_plugins.authoring.build import build_guest

from .async_guest import AsyncDemoHooks, async_component
from .demo import PACKAGE, DemoHooks, demo_component

ROOT = Path(__file__).resolve().parent.parent
GUESTS = Path(__file__).resolve().parent / "guests"

# Builds and compiled artefacts are keyed by content hash: keeping them between runs is
# safe and makes re-runs fast. CI starts from a fresh clone, so it builds everything once.
os.environ.setdefault("AIRSSYS_PLUGINS_CACHE_DIR", str(ROOT / ".cache" / "airssys-plugins"))


@pytest.fixture(autouse=True)
def _isolated_app_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Plugin dirs and enable/disable settings (platformdirs) point into tmp_path, so no
    test sees the developer's own plugins or changes their settings."""
    for var, sub in (
        ("XDG_DATA_HOME", "data"),
        ("XDG_CONFIG_HOME", "config"),
        ("XDG_DATA_DIRS", "site-data"),
        ("XDG_CONFIG_DIRS", "site-config"),
        ("XDG_STATE_HOME", "state"),
    ):
        monkeypatch.setenv(var, str(tmp_path / "xdg" / sub))


@pytest.fixture(scope="session")
def guest_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("guests")


@pytest.fixture(scope="session")
def demo(guest_dir: Path) -> Callable[..., Path]:
    """Build a demo component: ``demo(k=2, funcs=["add-one"])``."""

    def make(**kwargs: object) -> Path:
        return demo_component(guest_dir, **kwargs)  # type: ignore[arg-type]

    return make


@pytest.fixture
def pm() -> pluggy.PluginManager:
    manager = pluggy.PluginManager("demo")
    manager.add_hookspecs(DemoHooks)
    return manager


@pytest.fixture(scope="session")
def ademo(tmp_path_factory: pytest.TempPathFactory) -> Callable[[int], Path]:
    """Build the async demo component for ``k`` (tests/async_guest.py)."""
    workdir = tmp_path_factory.mktemp("ademo")
    return lambda k: async_component(workdir, k)


@pytest.fixture
def apm() -> pluggy.PluginManager:
    """A plugin manager with the async demo's hookspecs."""
    manager = pluggy.PluginManager("ademo")
    manager.add_hookspecs(AsyncDemoHooks)
    return manager


@pytest.fixture
def host(pm: pluggy.PluginManager) -> Iterator[PluginHost]:
    with PluginHost(pm, package=PACKAGE) as h:
        yield h


@pytest.fixture(scope="session")
def kitchen_wasm() -> Path:
    """The componentize-py guest with one echo per WIT type (built once per session)."""
    return build_guest(GUESTS / "kitchen")


@pytest.fixture(scope="session")
def textpipe_wasm() -> dict[str, Path]:
    from sample_apps.textpipe.app import build_bundled

    return build_bundled()


@pytest.fixture(scope="session")
def eventrouter_wasm() -> dict[str, Path]:
    """The eventrouter sample's components (router in WAT, dedup and lookup in Python)."""
    from sample_apps.eventrouter.app import build_bundled

    return build_bundled()


@pytest.fixture
def private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty compile cache, and no digest remembered from another test."""
    monkeypatch.setenv("AIRSSYS_PLUGINS_CACHE_DIR", str(tmp_path / "cache"))
    _files.forget_digests()
    release_compiled()  # nor a compiled component kept from another test's load
    return tmp_path / "cache" / "aot"


@pytest.fixture
def settled(monkeypatch: pytest.MonkeyPatch) -> None:
    """Files written by the test count as written long ago: FileKey.of refuses a file
    changed within RACY_NS, and a test cannot age a file's ctime otherwise."""
    monkeypatch.setattr(_files, "_now_ns", lambda: time.time_ns() + 10 * _files.RACY_NS)
