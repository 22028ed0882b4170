"""How our command lines (``airssys-plugins`` and the sample apps) tell people about
problems: a project error is its message and exit code 1, never a traceback (unless
``--debug``); a warning is one ``PROG: warning: ...`` line, not Python's
``file:line: Category: message`` followed by the source line that raised it.
"""

from __future__ import annotations

import sys
import traceback
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TextIO

from .._errors import PluginError

__all__ = ["describe_error", "people_warnings", "run_reporting"]

#: What a command line reports as a message: the project's errors, all-problems groups of
#: them, the ValueErrors of bad input (a malformed grants file, a bad version) and the
#: OSErrors of files the user named (an output path in a missing directory).
REPORTED = (PluginError, ExceptionGroup, ValueError, OSError)


def describe_error(exc: BaseException) -> str:
    """The message of ``exc``; a group lists each of its problems on its own line."""
    if isinstance(exc, BaseExceptionGroup):
        lines = [exc.message]
        for sub in exc.exceptions:
            text = describe_error(sub).replace("\n", "\n    ")
            lines.append(f"  - {text}")
        return "\n".join(lines)
    return str(exc) or type(exc).__name__


@contextmanager
def people_warnings(prog: str, stream: TextIO | None = None) -> Iterator[None]:
    """While open, warnings print as ``PROG: warning: MESSAGE`` (each distinct one once)."""

    def show(
        message: Warning | str,
        category: type[Warning],
        filename: str,
        lineno: int,
        file: TextIO | None = None,
        line: str | None = None,
    ) -> None:
        print(f"{prog}: warning: {message}", file=file or stream or sys.stderr)

    saved = warnings.showwarning
    warnings.showwarning = show
    try:
        yield
    finally:
        warnings.showwarning = saved


def run_reporting(prog: str, body: Callable[[], int], *, debug: bool = False) -> int:
    """Run a command's ``body``: its exit code, or 1 with the message of a project error
    (and its traceback too under ``--debug``); 130 on Ctrl-C."""
    try:
        with people_warnings(prog):
            return body()
    except REPORTED as exc:
        if debug:
            traceback.print_exc()
        print(f"{prog}: error: {describe_error(exc)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
