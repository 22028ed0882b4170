"""The package's loggers: the standard library's ``logging``, imported only when a record
could be shown.

Modules import this as ``logging`` (``from .. import _log as logging``) and call
``logging.getLogger(name)`` as usual; type checkers see :mod:`logging` itself. What they get
at run time is a :class:`Logger` standing in for ``logging.getLogger(name)``:

* Once ``logging`` is imported (by the application, a library, pytest, or this module),
  every call goes to the real logger, with the caller's file and line in the record.
* Before that nobody can have configured a handler, a level or a filter, so what logging
  would do is known: records below ``WARNING`` are dropped (the root logger's default
  level), and ``WARNING`` and above reach the last-resort handler on stderr. The first
  such record imports ``logging`` and goes through it; the others cost a dictionary
  lookup.

``import logging`` costs a new process about 6 ms (``traceback``, ``string``, ``weakref``
come with it), and the package's modules on the way to a first hook call log only when
something goes wrong.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any, Final

__all__ = ["CRITICAL", "DEBUG", "ERROR", "INFO", "WARNING", "Logger", "getLogger"]

CRITICAL: Final = 50
ERROR: Final = 40
WARNING: Final = 30
INFO: Final = 20
DEBUG: Final = 10


class _Logger:
    """``logging.getLogger(name)``, got when a record could be shown."""

    __slots__ = ("_real", "name")

    def __init__(self, name: str) -> None:
        self.name = name
        self._real: Any = None

    def _logger(self) -> Any:
        real = self._real
        if real is None:
            import logging

            real = self._real = logging.getLogger(self.name)
        return real

    def isEnabledFor(self, level: int) -> bool:
        if self._real is None and "logging" not in sys.modules:
            return level >= WARNING  # unconfigured logging: the root's default level
        return bool(self._logger().isEnabledFor(level))

    def log(self, level: int, msg: object, *args: object, **kwargs: Any) -> None:
        if self.isEnabledFor(level):
            # stacklevel: the record names the caller's line, not this module's
            kwargs["stacklevel"] = kwargs.get("stacklevel", 1) + 1
            self._logger().log(level, msg, *args, **kwargs)

    def debug(self, msg: object, *args: object, **kwargs: Any) -> None:
        self._at(DEBUG, msg, args, kwargs)

    def info(self, msg: object, *args: object, **kwargs: Any) -> None:
        self._at(INFO, msg, args, kwargs)

    def warning(self, msg: object, *args: object, **kwargs: Any) -> None:
        self._at(WARNING, msg, args, kwargs)

    def error(self, msg: object, *args: object, **kwargs: Any) -> None:
        self._at(ERROR, msg, args, kwargs)

    def exception(self, msg: object, *args: object, **kwargs: Any) -> None:
        kwargs.setdefault("exc_info", True)
        self._at(ERROR, msg, args, kwargs)

    def critical(self, msg: object, *args: object, **kwargs: Any) -> None:
        self._at(CRITICAL, msg, args, kwargs)

    def _at(self, level: int, msg: object, args: tuple[object, ...], kwargs: Any) -> None:
        if self.isEnabledFor(level):
            kwargs["stacklevel"] = kwargs.get("stacklevel", 1) + 2  # the caller's line
            self._logger().log(level, msg, *args, **kwargs)

    def __repr__(self) -> str:
        return f"<Logger {self.name} (logging imported when a record could be shown)>"


_loggers: dict[str, _Logger] = {}


def _get_logger(name: str) -> _Logger:
    """The logger of ``name``, one per name, as ``logging.getLogger``."""
    found = _loggers.get(name)
    if found is None:
        found = _loggers.setdefault(name, _Logger(name))
    return found


if TYPE_CHECKING:
    from logging import Logger as Logger
    from logging import getLogger as getLogger
else:
    Logger = _Logger
    getLogger = _get_logger
