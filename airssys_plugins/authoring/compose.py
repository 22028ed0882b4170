"""Offline composition: a provider component fused into a consumer, one component out.

At run time the host links plugins itself (:mod:`..host.composition`): each plugin keeps
its own instance, sandbox and limits, and the provider can be reloaded. Fusing is the other
choice: the consumer's imports of the provider's interfaces are satisfied inside one
component, by the tool that does this for the component model. The fused component imports
only what neither satisfies (host interfaces, WASI), and runs as one plugin, in one sandbox,
with one set of limits: the provider no longer has a sandbox of its own.

The tool is ``wac`` (``wac plug``) when it is installed, else ``wasm-tools compose`` (in
wasm-tools up to at least 1.262, which prints a deprecation warning pointing at wac).
Without either, :class:`ToolchainMissing` says how to install one; nothing is fused.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import final

from .. import _attrs as attrs
from ..runtime import ComponentImage
from .build import BuildError, ToolchainMissing

__all__ = ["ComposeResult", "compose_components", "composer"]


@final
@attrs.frozen
class ComposeResult:
    """What :func:`compose_components` made: the fused component, the tool (and its
    version) that made it, what it still imports, and which imports the providers
    satisfied."""

    path: Path
    tool: str
    imports: tuple[str, ...]
    satisfied: tuple[str, ...]


def composer() -> tuple[str, list[str]]:
    """``(name and version, command prefix)`` of the composition tool found: ``wac`` when
    installed, else ``wasm-tools`` (its ``compose`` command)."""
    for name in ("wac", "wasm-tools"):
        beside = Path(sys.executable).parent / name
        found = str(beside) if beside.is_file() else shutil.which(name)
        if found is None:
            continue
        try:
            version = subprocess.run(
                [found, "--version"], capture_output=True, text=True, timeout=60
            ).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            continue
        if name == "wasm-tools":
            listed = subprocess.run(
                [found, "--help"], capture_output=True, text=True, timeout=60
            ).stdout
            if not re.search(r"^\s+compose\s", listed, re.MULTILINE):
                continue  # a wasm-tools without its composer
        return version or name, [found]
    raise ToolchainMissing(
        "no component composition tool found: install wac (`cargo install wac-cli`) or a "
        "wasm-tools that has `compose` (`pip install wasm-tools`, or `cargo install "
        "wasm-tools`). Without one, load the plugins separately and link them at run time "
        '(plugins = ["<provider>:<ns>:<pkg>/<interface>@<range>"] in the manifest)'
    )


def _kebab(path: Path, used: set[str]) -> str:
    """A kebab-case file stem for ``path`` (wasm-tools names the instance after it)."""
    stem = re.sub(r"[^a-z0-9]+", "-", path.stem.lower()).strip("-") or "component"
    if stem[0].isdigit():
        stem = f"c-{stem}"
    stem = re.sub(r"-(\d)", r"\1", stem)  # a WIT word may not start with a digit
    name, n = stem, 2
    while name in used:
        name, n = f"{stem}{n}", n + 1
    used.add(name)
    return name


def compose_components(
    consumer: str | os.PathLike[str],
    providers: Sequence[str | os.PathLike[str]],
    out: str | os.PathLike[str],
    *,
    timeout: float = 120.0,
) -> ComposeResult:
    """Fuse ``providers`` into ``consumer``, writing ``out``. Refused (:class:`BuildError`)
    when no provider satisfies any of the consumer's imports, or the tool fails."""
    consumer_path = Path(consumer)
    provider_paths = [Path(p) for p in providers]
    if not provider_paths:
        raise BuildError("compose needs at least one provider component")
    tool, command = composer()
    before = ComponentImage.load(consumer_path.stem, consumer_path, cache=True).imports
    exported: set[str] = set()
    for path in provider_paths:
        image = ComponentImage.load(path.stem, path, cache=True)
        exported |= {iface for iface, _ in image.exports if iface is not None}
    satisfied = tuple(sorted(set(before) & exported))
    if not satisfied:
        raise BuildError(
            f"{consumer_path.name} imports {', '.join(before) or 'nothing'}; none of it is "
            f"exported by {', '.join(p.name for p in provider_paths)}: nothing to compose"
        )
    target = Path(out)
    with tempfile.TemporaryDirectory(prefix="airssys-compose-") as tmp_name:
        tmp = Path(tmp_name)
        used: set[str] = set()
        root = tmp / f"{_kebab(consumer_path, used)}.wasm"
        shutil.copyfile(consumer_path, root)
        copies = []
        for path in provider_paths:
            copy = tmp / f"{_kebab(path, used)}.wasm"
            shutil.copyfile(path, copy)
            copies.append(copy)
        fused = tmp / "fused.wasm"
        if Path(command[0]).name.startswith("wac"):
            argv = [*command, "plug", str(root)]
            for copy in copies:
                argv += ["--plug", str(copy)]
            argv += ["-o", str(fused)]
        else:
            argv = [*command, "compose", "-q", str(root)]
            for copy in copies:
                argv += ["-d", str(copy)]
            argv += ["-o", str(fused)]
        try:
            run = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, cwd=tmp)
        except subprocess.TimeoutExpired as exc:
            raise BuildError(f"{tool} did not finish composing within {timeout:g} s") from exc
        if run.returncode != 0 or not fused.is_file():
            output = (run.stderr or run.stdout).strip()
            error = BuildError(f"{tool} could not compose {consumer_path.name}:\n{output}")
            error.output = output
            raise error
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(fused, target)
    after = ComponentImage.load(target.stem, target, cache=False).imports
    return ComposeResult(target, tool, tuple(after), satisfied)
