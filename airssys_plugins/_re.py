"""Regular expressions compiled on first use.

``re.compile`` at import costs 0.1-0.6 ms a pattern (semver's is the dearest), about 2.5 ms
for the patterns of the modules a new process imports, most of which it never matches
(a manifest's version range, an environment variable's name, a link). ``_re.compile``
returns a stand-in with the compiled pattern's methods, which compiles it at its first use;
type checkers see :func:`re.compile` itself.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

__all__ = ["compile"]


class LazyPattern:
    """A pattern compiled the first time one of its attributes is read."""

    __slots__ = ("_compiled", "_flags", "_pattern")

    def __init__(self, pattern: str | bytes, flags: int) -> None:
        self._pattern = pattern
        self._flags = flags
        self._compiled: re.Pattern[Any] | None = None

    def __getattr__(self, name: str) -> Any:
        compiled = self._compiled
        if compiled is None:
            compiled = self._compiled = re.compile(self._pattern, self._flags)
        return getattr(compiled, name)

    def __repr__(self) -> str:
        return f"LazyPattern({self._pattern!r})"


if TYPE_CHECKING:
    compile = re.compile
else:

    def compile(pattern: str | bytes, flags: int = 0) -> LazyPattern:
        return LazyPattern(pattern, flags)
