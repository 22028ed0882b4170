"""Cache subcommands: ``cache info`` and ``cache clear``.

The cache directory (``$AIRSSYS_PLUGINS_CACHE_DIR`` or the user cache dir) holds three
kinds of artefact, each in its own folder: ``aot/`` compiled components (the runtime's
compile cache), ``builds/`` components built from guest sources, and ``npm/`` the jco
toolchain installed with npm for JavaScript guests. Anything else there (an app's own
folder, such as textpipe's ``textpipe-bundled/``) is reported but never deleted.
"""

from __future__ import annotations

import argparse
import os
import shutil
from pathlib import Path
from typing import Final

__all__ = ["KINDS", "register"]

#: kind -> (folder, what it holds)
KINDS: Final = {
    "compiled": ("aot", "compiled components (wasmtime's machine code)"),
    "builds": ("builds", "components built from guest sources"),
    "npm": ("npm", "jco and componentize-js, installed with npm for JavaScript guests"),
}


_NOUNS: Final = {
    "compiled": "compiled component(s)",
    "builds": "built file(s)",
    "npm": "file(s) of the npm tools",
}


def _base() -> Path:
    from ..runtime import aot_cache_dir  # the runtime owns the location

    return aot_cache_dir().parent


def _usage(path: Path) -> tuple[int, int]:
    """Files and bytes under ``path`` (0, 0 if it does not exist); symlinks not followed."""
    if path.is_file() or path.is_symlink():
        return 1, path.lstat().st_size
    files = size = 0
    for root, _, names in os.walk(path):
        for name in names:
            try:
                size += (Path(root) / name).lstat().st_size
            except OSError:
                continue
            files += 1
    return files, size


def _mib(size: int) -> str:
    return f"{size / 2**20:.1f} MiB"


def _cmd_info(args: argparse.Namespace) -> int:
    from ..runtime import cache_info

    base = _base()
    print(f"directory: {base}")
    total = 0
    rows: list[tuple[str, str, int, int, str]] = []
    for kind, (folder, what) in KINDS.items():
        files, size = _usage(base / folder)
        total += size
        rows.append((kind, f"{folder}/", files, size, what))
    managed = {folder for folder, _ in KINDS.values()}
    others = sorted(p for p in base.iterdir() if p.name not in managed) if base.is_dir() else []
    for path in others:
        files, size = _usage(path)
        total += size
        rows.append(("other", path.name + ("/" if path.is_dir() else ""), files, size, "kept"))
    width = max(len(r[1]) for r in rows)
    for kind, folder, files, size, what in rows:
        print(f"  {kind:<9} {folder:<{width}}  {_mib(size):>10}  {files:>6} file(s)  {what}")
    print(f"total:     {_mib(total)}")
    info = cache_info()
    print(
        f"entries:   {info.entries} compiled component(s), {_mib(info.total_bytes)} of the "
        f"{info.limit_bytes / 2**20:.0f} MiB limit (AIRSSYS_PLUGINS_CACHE_MAX_MB; the oldest "
        "are evicted beyond it)"
    )
    return 0


def _cmd_clear(args: argparse.Namespace) -> int:
    from ..runtime import cache_clear

    base = _base()
    kinds = args.only or list(KINDS)
    for kind in kinds:
        folder, _ = KINDS[kind]
        path = base / folder
        files, size = _usage(path)
        if kind == "compiled":
            files = cache_clear()  # the runtime's own way (its entries may be mapped now)
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        left, _ = _usage(path)
        note = f"; {left} file(s) could not be removed" if left else ""
        print(f"removed {files} {_NOUNS[kind]} ({_mib(size)}) from {path}{note}")
    kept = [k for k in KINDS if k not in kinds]
    if kept:
        print(f"kept: {', '.join(kept)} (clear them with: cache clear without --only)")
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    kinds = "; ".join(f"{k}: {folder}/, {what}" for k, (folder, what) in KINDS.items())
    cache = sub.add_parser(
        "cache",
        help="inspect or clear the cache (compiled components, builds, npm tools)",
        description=f"The cache holds {kinds}. Set AIRSSYS_PLUGINS_CACHE_DIR to move it and "
        "AIRSSYS_PLUGINS_CACHE_MAX_MB to bound the compiled components (default 2048).",
    )
    actions = cache.add_subparsers(dest="action", required=True)
    actions.add_parser(
        "info", help="where the cache is and how big, per kind of artefact"
    ).set_defaults(func=_cmd_info)
    clear = actions.add_parser(
        "clear", help="delete the cached artefacts (all kinds unless --only)"
    )
    clear.add_argument(
        "--only",
        action="append",
        choices=list(KINDS),
        help="clear only this kind (repeatable): " + ", ".join(KINDS),
    )
    clear.set_defaults(func=_cmd_clear)
