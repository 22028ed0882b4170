"""Semantic versions (semver 2.0.0) and the version ranges manifests use.

The one place versions are parsed and compared: manifest ranges (``[contract] version``)
and WIT package compatibility both go through :class:`Version`.

Precedence follows https://semver.org/#spec-item-11: numeric pre-release identifiers
compare numerically, alphanumeric ones lexically, numeric below alphanumeric, fewer
identifiers below more when all before are equal, a pre-release below its release; build
metadata takes no part (``1.0.0+a == 1.0.0+b``).
"""

from __future__ import annotations

from typing import Final, final

from .. import _attrs as attrs
from .. import _re

__all__ = ["Version", "VersionRange", "caret_compatible"]

_NUM: Final = r"0|[1-9]\d*"
_PRE_ID: Final = r"(?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*)"
_SEMVER_RE: Final = _re.compile(
    rf"^({_NUM})\.({_NUM})\.({_NUM})"
    rf"(?:-({_PRE_ID}(?:\.{_PRE_ID})*))?"
    r"(?:\+([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?$"
)
_PARTIAL_RE: Final = _re.compile(rf"^({_NUM})(?:\.({_NUM}))?(?:\.({_NUM}))?$")
_CLAUSE_RE: Final = _re.compile(r"^(\^|~|>=|<=|>|<|=)?\s*(.+)$")


def _plain(text: str) -> tuple[int, int, int] | None:
    """``MAJOR.MINOR.PATCH`` of a version with neither pre-release nor build, read without
    the pattern (what it matches there: ASCII digits, no leading zero); None otherwise."""
    parts = text.split(".")
    if len(parts) != 3:
        return None
    for part in parts:
        if not (part.isascii() and part.isdigit()) or (part[0] == "0" and len(part) > 1):
            return None
    return int(parts[0]), int(parts[1]), int(parts[2])


def _pre_key(ids: tuple[str, ...]) -> tuple[tuple[int, int, str], ...]:
    return tuple((0, int(i), "") if i.isdigit() else (1, 0, i) for i in ids)


@final
@attrs.frozen(order=False)
class Version:
    """A semantic version. Ordered by semver precedence; ``build`` is kept for ``str()``
    but ignored by comparisons and equality."""

    major: int
    minor: int
    patch: int
    pre: tuple[str, ...] = ()
    build: tuple[str, ...] = attrs.field(default=(), eq=False)

    def __attrs_post_init__(self) -> None:
        parts = (self.major, self.minor, self.patch)
        if not all(isinstance(n, int) and n >= 0 for n in parts) or (
            (self.pre or self.build) and not _SEMVER_RE.match(str(self))
        ):
            raise ValueError(
                f"{str(self)!r} is not a semantic version; MAJOR.MINOR.PATCH are non-negative "
                "integers, pre-release and build identifiers are [0-9A-Za-z-] (no leading zeros)"
            )

    @classmethod
    def parse(cls, text: str) -> Version:
        """``1.2.3``, ``1.2.3-rc.1`` or ``1.2.3-rc.1+build.5``."""
        plain = _plain(text.strip())
        if plain is not None:  # most versions: no pattern to match
            return cls(*plain)
        m = _SEMVER_RE.match(text.strip())
        if m is None:
            raise ValueError(
                f"{text!r} is not a semantic version; write MAJOR.MINOR.PATCH such as 1.2.3, "
                "optionally with a pre-release (1.2.3-rc.1)"
            )
        pre = tuple(m.group(4).split(".")) if m.group(4) else ()
        build = tuple(m.group(5).split(".")) if m.group(5) else ()
        return cls(int(m.group(1)), int(m.group(2)), int(m.group(3)), pre, build)

    @classmethod
    def floor(cls, major: int, minor: int, patch: int) -> Version:
        """The lowest version of ``major.minor.patch``: below all its pre-releases
        (``0`` is the smallest pre-release identifier there is)."""
        return cls(major, minor, patch, ("0",))

    @property
    def is_prerelease(self) -> bool:
        return bool(self.pre)

    def _key(self) -> tuple[int, int, int, int, tuple[tuple[int, int, str], ...]]:
        return (self.major, self.minor, self.patch, 0 if self.pre else 1, _pre_key(self.pre))

    def __lt__(self, other: Version) -> bool:
        return self._key() < other._key()

    def __le__(self, other: Version) -> bool:
        return self._key() <= other._key()

    def __gt__(self, other: Version) -> bool:
        return self._key() > other._key()

    def __ge__(self, other: Version) -> bool:
        return self._key() >= other._key()

    def __str__(self) -> str:
        text = f"{self.major}.{self.minor}.{self.patch}"
        if self.pre:
            text += "-" + ".".join(self.pre)
        if self.build:
            text += "+" + ".".join(self.build)
        return text


def caret_compatible(expected: Version, actual: Version) -> bool:
    """The component model's linking rule: the same major version; for ``0.x`` the same
    minor, for ``0.0.x`` the same patch. Pre-release and build take no part."""
    if expected.major != actual.major:
        return False
    if expected.major == 0:
        if expected.minor != actual.minor:
            return False
        return expected.minor != 0 or expected.patch == actual.patch
    return True


_OPS: Final = {
    ">=": Version.__ge__,
    ">": Version.__gt__,
    "<=": Version.__le__,
    "<": Version.__lt__,
    "=": Version.__eq__,
}


@final
@attrs.frozen
class VersionRange:
    """A semver range: ``^1.2`` (caret, also a bare ``1.2``), ``~1.2`` (tilde), ``=1.2.3``,
    ``*``, or comparators joined by commas (``>=1.0, <2``, ``>=1.0.0-rc.2``). All clauses
    must hold. A partial version stands for its release (``>=1.0`` is ``>=1.0.0``), except
    as an upper bound, where ``<2`` excludes the pre-releases of 2.0.0 too."""

    text: str
    clauses: tuple[tuple[str, Version], ...] = attrs.field(repr=False)

    @classmethod
    def parse(cls, text: str) -> VersionRange:
        clauses: list[tuple[str, Version]] = []
        parts = [p.strip() for p in text.split(",")]
        if not text.strip() or any(not p for p in parts):
            raise ValueError(f"{text!r} is not a version range")
        for part in parts:
            if part == "*":
                continue
            m = _CLAUSE_RE.match(part)
            assert m is not None  # the pattern matches any non-empty text
            op, ver = m.group(1) or "^", m.group(2)
            p = _PARTIAL_RE.match(ver)
            if p is None:
                if op in ("^", "~") or _SEMVER_RE.match(ver) is None:
                    raise ValueError(f"{part!r} is not a version constraint")
                clauses.append((op, Version.parse(ver)))
                continue
            given = [int(x) for x in p.groups() if x is not None]
            major, minor, patch = [*given, 0, 0][:3]
            base = Version(major, minor, patch)  # 1.0.0-rc.1 is below ^1.0, as in semver
            if op == "^":
                if major > 0 or len(given) == 1:
                    upper = Version.floor(major + 1, 0, 0)
                elif minor > 0 or len(given) == 2:
                    upper = Version.floor(0, minor + 1, 0)
                else:
                    upper = Version.floor(0, 0, patch + 1)
                clauses += [(">=", base), ("<", upper)]
            elif op == "~":
                upper = (
                    Version.floor(major + 1, 0, 0)
                    if len(given) == 1
                    else Version.floor(major, minor + 1, 0)
                )
                clauses += [(">=", base), ("<", upper)]
            elif op == "=" and len(given) < 3:
                raise ValueError(f"{part!r}: an exact version needs all three parts (=1.2.3)")
            else:
                clauses.append((op, Version.floor(major, minor, patch) if op == "<" else base))
        return cls(text.strip(), tuple(clauses))

    def contains(self, version: str | Version) -> bool:
        """Whether ``version`` is inside the range."""
        v = version if isinstance(version, Version) else Version.parse(version)
        return all(_OPS[op](v, bound) for op, bound in self.clauses)

    def __str__(self) -> str:
        return self.text
