"""A real component pack: built as a wheel, pip-installed into a fresh venv, picked up by
the textpipe sample app running in that venv."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACK = ROOT / "sample_apps" / "textpipe_pack"


def _build_pack_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("build_pack", PACK / "build_pack.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def pack_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A new venv with the textpipe-reverse wheel installed, seeing this interpreter's
    packages (airssys-plugins, the sample app) through a .pth file."""
    tmp = tmp_path_factory.mktemp("pack")
    wheel = _build_pack_module().build_wheel(tmp / "dist")
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps",
         "--no-index", "--quiet", str(wheel)],
        check=True,
    )  # fmt: skip
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    here = sysconfig.get_paths()["purelib"]
    # addsitedir (not a bare path line) so the .pth files there, e.g. editable installs, run.
    (Path(site) / "host_packages.pth").write_text(f"import site; site.addsitedir({here!r})\n")
    return python


def _run(python: Path, *args: str) -> subprocess.CompletedProcess[str]:
    # wasm-tools (for building the bundled guests) lives beside this interpreter.
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    return subprocess.run(
        [str(python), *args], capture_output=True, text=True, env=env, cwd=ROOT, timeout=300
    )


def test_pack_is_found_without_importing_it(pack_venv: Path) -> None:
    """Discovery locates the component through the distribution's RECORD, and loading it
    imports none of the pack's Python code."""
    script = textwrap.dedent(
        """
        import json, sys, pluggy
        from airssys_plugins import PluginHost, discover_plugins
        from hookspecs.textpipe import PACKAGE, TextHooks

        found = discover_plugins("textpipe", user_dirs=False, site_dirs=False)
        pm = pluggy.PluginManager("textpipe")
        pm.add_hookspecs(TextHooks)
        with PluginHost(pm, package=PACKAGE) as host:
            report = host.load_plugins(found)
            out = pm.hook.transform(text="añb 😀!")
        [source] = found
        print(json.dumps({
            "name": source.name, "kind": source.kind, "origin": source.origin,
            "record": source.record_sha256, "loaded": sorted(report.loaded),
            "transform": out, "imported": "textpipe_reverse" in sys.modules,
        }))
        """
    )
    proc = _run(pack_venv, "-c", script)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["name"] == "reverse"
    assert result["kind"] == "pack"
    assert result["origin"] == "textpipe-reverse 1.0.0"
    assert result["record"] is not None
    assert len(result["record"]) == 64
    assert result["loaded"] == ["reverse"]
    assert result["transform"] == ["!😀 bña"]
    assert result["imported"] is False


def test_textpipe_picks_up_the_installed_pack(pack_venv: Path) -> None:
    """The sample app runs the pack's component beside its own plugins, and pluggy loads
    the pack's Python plugin from the ordinary `textpipe` entry-point group."""
    proc = _run(pack_venv, "-m", "sample_apps.textpipe.app", "the cat is here")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[:7] == [
        "plugins:    question [python], reverse [wasm], shout [wasm], titlecase [python], "
        "wordstats [wasm]",
        "input:      the cat is here",
        "language:   en",
        "transform:  ereh si tac eht",  # reverse is tryfirst (its manifest says so)
        "transform:  THE CAT IS HERE!",
        "transform:  the cat is here?",
        "transform:  The Cat Is Here",
    ]


def test_tampered_pack_file_is_refused(pack_venv: Path, tmp_path: Path) -> None:
    """A component changed after installation no longer matches the wheel's RECORD."""
    site = Path(
        _run(
            pack_venv, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"
        ).stdout.strip()
    )
    wasm = site / "textpipe_reverse" / "reverse" / "reverse.wasm"
    original = wasm.read_bytes()
    try:
        wasm.write_bytes(original + b"\0")
        proc = _run(pack_venv, "-m", "sample_apps.textpipe.app", "hi")
    finally:
        wasm.write_bytes(original)
    assert proc.returncode == 0, proc.stderr
    assert "plugin reverse broken: IntegrityError" in proc.stderr
    assert "RECORD of textpipe-reverse 1.0.0" in proc.stderr
    assert "reverse [wasm]" not in proc.stdout
