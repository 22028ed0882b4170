"""``airssys-plugins build``: build a plugin project and record its digest in the manifest.

The component is built by :func:`~airssys_plugins.authoring.build.build_guest` (cached by content
hash), copied beside ``plugin.toml`` under the manifest's ``component`` name, and its
sha256 is written into ``plugin.toml``, editing only the ``sha256`` line so the author's
comments and layout stay as they are.
"""

from __future__ import annotations

import hashlib
import os
import re
import time
from pathlib import Path
from typing import Final

from .. import _attrs as attrs
from .._files import atomic_write
from ..discovery.manifest import Manifest
from .build import BuildError, Progress, build_guest, guest_kind

__all__ = ["BuiltPlugin", "build_plugin", "set_manifest_digest"]

_TABLE_RE: Final = re.compile(r"^\s*\[")
_SHA_RE: Final = re.compile(r"^\s*sha256\s*=")
_COMPONENT_RE: Final = re.compile(r"^\s*component\s*=")


@attrs.frozen
class BuiltPlugin:
    """What :func:`build_plugin` made."""

    name: str
    component: Path
    sha256: str
    size: int
    seconds: float
    manifest: Path | None
    #: Whether this build changed the manifest's ``sha256``.
    digest_written: bool = False


def build_plugin(
    directory: str | os.PathLike[str],
    *,
    progress: Progress | None = None,
    js_backend: str = "quickjs",
    timeout: float | None = None,
) -> BuiltPlugin:
    """Build the plugin project in ``directory``; the component lands beside its manifest.

    ``timeout`` bounds each build tool's run in seconds (default
    ``$AIRSSYS_PLUGINS_BUILD_TIMEOUT`` or 600).

    Without a ``plugin.toml`` the component is ``<directory name>.wasm`` and no digest is
    recorded.
    """
    started = time.perf_counter()
    root = Path(directory).resolve()
    if not root.is_dir():
        raise BuildError(f"{root} is not a directory")
    guest_kind(root)  # a clear error before anything else
    manifest_path = root / "plugin.toml"
    manifest = Manifest.from_file(manifest_path) if manifest_path.is_file() else None
    name = manifest.name if manifest is not None else root.name
    component = manifest.component_path if manifest is not None else root / f"{root.name}.wasm"
    built = build_guest(root, progress=progress, js_backend=js_backend, timeout=timeout)
    data = built.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if not (component.is_file() and component.read_bytes() == data):
        atomic_write(component, data)
    written = manifest is not None and manifest.sha256 != digest
    if written:
        set_manifest_digest(manifest_path, digest)
    return BuiltPlugin(
        name=name,
        component=component,
        sha256=digest,
        size=len(data),
        seconds=time.perf_counter() - started,
        manifest=manifest_path if manifest is not None else None,
        digest_written=written,
    )


def set_manifest_digest(path: Path, digest: str) -> None:
    """Set the top-level ``sha256`` of the manifest at ``path``, keeping everything else.

    Replaces an existing ``sha256 = ...`` line, or adds one after ``component = ...`` (or
    at the end of the top-level keys, before the first table).
    """
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    new_line = f'sha256 = "{digest}"\n'
    top_end = next((i for i, line in enumerate(lines) if _TABLE_RE.match(line)), len(lines))
    existing = [i for i in range(top_end) if _SHA_RE.match(lines[i])]
    if existing:
        lines[existing[0]] = new_line
    else:
        after = [i for i in range(top_end) if _COMPONENT_RE.match(lines[i])]
        if after:
            lines.insert(after[0] + 1, new_line)
        else:
            while top_end > 0 and not lines[top_end - 1].strip():
                top_end -= 1
            if top_end > 0 and not lines[top_end - 1].endswith("\n"):
                lines[top_end - 1] += "\n"
            lines.insert(top_end, new_line)
    text = "".join(lines)
    parsed = Manifest.from_toml(text, path=path)  # never write a manifest that breaks
    if parsed.sha256 != digest:
        raise BuildError(f"could not record the digest in {path}; add sha256 = {digest!r}")
    atomic_write(path, text)
