"""A part of a host made at its first use (its module imported then), closed with the
host: :class:`FirstUse`. The host's awaitable hooks and its messaging are such parts."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Generic, Protocol, TypeVar

__all__ = ["FirstUse"]


if TYPE_CHECKING:  # (a protocol only the type checker reads: not made at import)

    class _Closable(Protocol):
        def close(self) -> None: ...


_Part = TypeVar("_Part", bound="_Closable")


class FirstUse(Generic[_Part]):
    """The part ``make()`` makes at the first ``front()`` (once, under a lock); ``close()``
    closes it if it was made. A part first asked for after ``close()`` is closed at once,
    as the host's close would have closed it."""

    __slots__ = ("_closed", "_lock", "_made", "_make")

    def __init__(self, make: Callable[[], _Part]):
        self._make = make
        self._made: _Part | None = None
        self._closed = False
        self._lock = threading.Lock()

    @property
    def made(self) -> _Part | None:
        """The part, if it was made (nothing is made by asking)."""
        return self._made

    def __call__(self) -> _Part:
        made = self._made
        if made is None:
            with self._lock:
                if self._made is None:
                    self._made = self._make()
                    if self._closed:
                        self._made.close()
                made = self._made
        return made

    def close(self) -> None:
        with self._lock:
            self._closed = True
            made = self._made
        if made is not None:
            made.close()
