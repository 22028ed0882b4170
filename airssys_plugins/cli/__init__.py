"""The ``airssys-plugins`` command line.

Each group of subcommands lives in its own module with a ``register(subparsers)`` function;
add a module to ``_COMMAND_MODULES`` to add commands. Exit codes: 0 success, 1 a problem
was found (mismatch, invalid input, a broken or refused plugin), 2 usage error (argparse).
A project error is reported as its message; ``--debug`` adds the traceback. Progress goes
to stderr (see :mod:`.progress`).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from . import author as _author_cmds
from . import batch as _batch_cmds
from . import bindgen as _bindgen_cmds
from . import cache as _cache_cmds
from . import compose as _compose_cmds
from . import contract as _contract_cmds
from . import plugins as _plugin_cmds
from . import signing as _signing_cmds
from . import status as _status_cmds
from .reporting import run_reporting

__all__ = ["main"]

_COMMAND_MODULES = (
    _contract_cmds,
    _bindgen_cmds,
    _plugin_cmds,
    _author_cmds,
    _cache_cmds,
    _batch_cmds,
    _signing_cmds,
    _compose_cmds,
    _status_cmds,
)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="airssys-plugins", description="Sandboxed WebAssembly components as pluggy plugins."
    )
    parser.add_argument("--debug", action="store_true", help=_DEBUG_HELP)
    sub = parser.add_subparsers(dest="command", required=True)
    for module in _COMMAND_MODULES:
        module.register(sub)
    for command in sub.choices.values():
        # Also after the subcommand; SUPPRESS keeps the top-level value when not given here.
        command.add_argument(
            "--debug", action="store_true", default=argparse.SUPPRESS, help=_DEBUG_HELP
        )
    args = parser.parse_args(argv)
    return run_reporting(parser.prog, lambda: int(args.func(args)), debug=args.debug)


_DEBUG_HELP = "show the Python traceback of an error, not only its message"


if __name__ == "__main__":
    raise SystemExit(main())
