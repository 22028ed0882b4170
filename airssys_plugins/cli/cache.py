"""Compile-cache subcommands: ``cache info`` and ``cache clear``."""

from __future__ import annotations

import argparse

__all__ = ["register"]


def _cmd_info(args: argparse.Namespace) -> int:
    from ..runtime import cache_info

    info = cache_info()
    print(f"directory: {info.directory}")
    print(f"entries:   {info.entries}")
    print(f"size:      {info.total_bytes / 2**20:.1f} MiB of {info.limit_bytes / 2**20:.0f} MiB")
    return 0


def _cmd_clear(args: argparse.Namespace) -> int:
    from ..runtime import cache_clear, cache_info

    directory = cache_info().directory
    removed = cache_clear()
    print(f"removed {removed} compiled component(s) from {directory}")
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    cache = sub.add_parser(
        "cache",
        help="inspect or clear the compile cache",
        description="Compiled components are cached by sha256, wasmtime version and engine "
        "configuration. Set AIRSSYS_PLUGINS_CACHE_DIR to move the cache and "
        "AIRSSYS_PLUGINS_CACHE_MAX_MB to bound its size (default 2048).",
    )
    actions = cache.add_subparsers(dest="action", required=True)
    actions.add_parser("info", help="where the cache is and how big").set_defaults(func=_cmd_info)
    actions.add_parser("clear", help="delete every cached artefact").set_defaults(func=_cmd_clear)
