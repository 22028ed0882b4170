"""The load path's bounded memos: what many loads would each make alike (a Path, a hook
table, an audit event's detail or fields, a set of granted names) is made once and shared.
Every value kept is read, never changed, by whoever gets it."""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import TypeVar

__all__ = ["kept"]

_K = TypeVar("_K", bound=Hashable)
_V = TypeVar("_V")


def kept(table: dict[_K, _V], key: _K, make: Callable[[], _V], most: int) -> _V:
    """``table[key]``, made by ``make`` the first time; past ``most`` entries the table
    starts again (a host loading ever new files keeps no more than that)."""
    value = table.get(key)
    if value is None:
        if len(table) >= most:
            table.clear()
        value = table[key] = make()
    return value
