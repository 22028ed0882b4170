"""The ``airssys-plugins`` command line.

Each group of subcommands lives in its own module with a ``register(subparsers)`` function;
add a module to ``_COMMAND_MODULES`` to add commands. Exit codes: 0 success, 1 a problem
was found (mismatch, invalid input, a broken or refused plugin), 2 usage error (argparse).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from .._errors import PluginError
from . import author as _author_cmds
from . import cache as _cache_cmds
from . import contract as _contract_cmds
from . import plugins as _plugin_cmds

__all__ = ["main"]

_COMMAND_MODULES = (_contract_cmds, _plugin_cmds, _author_cmds, _cache_cmds)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="airssys-plugins", description="Sandboxed WebAssembly components as pluggy plugins."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for module in _COMMAND_MODULES:
        module.register(sub)
    args = parser.parse_args(argv)
    try:
        code: int = args.func(args)
    except (PluginError, ExceptionGroup, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return code


if __name__ == "__main__":
    raise SystemExit(main())
