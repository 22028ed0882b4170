"""Semantic versions: semver 2.0.0 precedence and the manifest's range syntax."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from airssys_plugins.contract.semver import Version, VersionRange, caret_compatible
from airssys_plugins.contract.wit import PackageId, version_compatible
from airssys_plugins.discovery.manifest import Manifest

SPEC_ORDER = [
    "1.0.0-alpha",
    "1.0.0-alpha.1",
    "1.0.0-alpha.beta",
    "1.0.0-beta",
    "1.0.0-beta.2",
    "1.0.0-beta.11",
    "1.0.0-rc.1",
    "1.0.0",
    "1.0.1",
    "1.1.0",
    "2.0.0",
]


def test_spec_examples_sort_in_spec_order() -> None:
    """The precedence examples of semver.org item 11 sort as the spec lists them."""
    versions = [Version.parse(v) for v in SPEC_ORDER]
    assert sorted(reversed(versions)) == versions
    for low, high in itertools.pairwise(versions):
        assert low < high
        assert high > low
        assert low <= high
        assert not high <= low


def test_build_metadata_is_ignored_for_precedence() -> None:
    """1.0.0+a and 1.0.0+b are equal in precedence but keep their text."""
    a, b = Version.parse("1.0.0+a.1"), Version.parse("1.0.0+b")
    assert a == b
    assert not a < b
    assert not b < a
    assert str(a) == "1.0.0+a.1"
    assert Version.parse("1.0.0-rc.1+x") < Version.parse("1.0.0")


@pytest.mark.parametrize(
    "text",
    ["1.0", "01.0.0", "1.0.0-01", "1.0.0-", "1.0.0+", "1.0.0-a..b", "v1.0.0", "1.0.0-rc_1", ""],
    ids=[
        "partial",
        "leading-zero",
        "pre-leading-zero",
        "empty-pre",
        "empty-build",
        "empty-id",
        "v",
        "underscore",
        "empty",
    ],
)
def test_invalid_versions_are_refused(text: str) -> None:
    """Text that is not semver 2.0.0 raises ValueError saying what to write."""
    with pytest.raises(ValueError, match=r"MAJOR\.MINOR\.PATCH"):
        Version.parse(text)


def test_round_trip() -> None:
    """str() gives back the parsed text."""
    for text in [*SPEC_ORDER, "0.0.0-0.3.7", "1.0.0-x.7.z.92+exp.sha.5114f85", "1.0.0-0a"]:
        assert str(Version.parse(text)) == text


_ident = st.one_of(
    st.integers(0, 30).map(str),
    st.text("abcxyz-", min_size=1, max_size=4).filter(lambda s: not s.isdigit()),
)
_versions = st.builds(
    Version,
    st.integers(0, 3),
    st.integers(0, 3),
    st.integers(0, 3),
    st.lists(_ident, max_size=3).map(tuple),
    st.lists(st.sampled_from(["b1", "x"]), max_size=2).map(tuple),
)


@given(_versions, _versions, _versions)
def test_order_is_total_and_transitive(a: Version, b: Version, c: Version) -> None:
    """Exactly one of <, ==, > holds, and < is transitive."""
    assert [a < b, a == b, a > b].count(True) == 1
    assert (a <= b) == (a < b or a == b)
    if a < b and b < c:
        assert a < c


@given(_versions)
def test_pre_release_is_below_its_release(v: Version) -> None:
    """Any pre-release sorts below its release, and the floor is below everything of it."""
    release = Version(v.major, v.minor, v.patch)
    if v.pre:
        assert v < release
    assert Version.floor(v.major, v.minor, v.patch) <= v
    assert Version.parse(str(v)) == v


@pytest.mark.parametrize(
    ("spec", "inside", "outside"),
    [
        (">=1.0.0-rc.2", ["1.0.0-rc.2", "1.0.0-rc.10", "1.0.0"], ["1.0.0-rc.1", "1.0.0-beta"]),
        ("<1.0.0-rc.2", ["1.0.0-rc.1", "0.9.0"], ["1.0.0-rc.2", "1.0.0"]),
        ("=1.2.3", ["1.2.3", "1.2.3+build"], ["1.2.3-rc.1", "1.2.4"]),
        ("^1.0", ["1.0.0", "1.9.9"], ["1.0.0-rc.1", "2.0.0-alpha", "2.0.0"]),
        ("~1.2", ["1.2.0", "1.2.9"], ["1.3.0-alpha", "1.2.0-rc.1"]),
        (">=1.0, <2", ["1.9.9-rc.1"], ["2.0.0-0"]),
    ],
    ids=["pre-lower", "pre-upper", "exact-pre", "caret-pre", "tilde-pre", "upper-excludes-pre"],
)
def test_ranges_order_pre_releases(spec: str, inside: list[str], outside: list[str]) -> None:
    """Range bounds compare pre-releases by full precedence, not as equal."""
    r = VersionRange.parse(spec)
    assert [v for v in inside if not r.contains(v)] == []
    assert [v for v in outside if r.contains(v)] == []


@pytest.mark.parametrize("spec", ["", "^1.0.0-rc.1", "1.x", ">=", "=1.2", "1.0,"])
def test_bad_ranges_are_refused(spec: str) -> None:
    """Malformed ranges raise ValueError."""
    with pytest.raises(ValueError, match="version"):
        VersionRange.parse(spec)


def test_manifest_contract_uses_pre_release_precedence() -> None:
    """A manifest's contract range and the WIT package id share one semver."""
    m = Manifest.from_toml('name = "p"\n[contract]\npackage = "a:b"\nversion = ">=1.0.0-rc.2"\n')
    assert m.contract is not None
    assert not m.contract.accepts("a:b", "1.0.0-rc.1")
    assert m.contract.accepts("a:b", "1.0.0-rc.3")


def test_wit_package_versions_use_the_same_parser() -> None:
    """PackageId accepts what Version accepts (build metadata too) and refuses the rest."""
    assert PackageId.parse("a:b@1.0.0-rc.1+b5").version == "1.0.0-rc.1+b5"
    with pytest.raises(ValueError, match="not semver"):
        PackageId.parse("a:b@1.0")
    assert version_compatible("1.0.0", "1.3.0-rc.1")
    assert caret_compatible(Version.parse("0.2.0"), Version.parse("0.2.7"))
    assert not caret_compatible(Version.parse("0.0.1"), Version.parse("0.0.2"))


@pytest.mark.parametrize(
    "args",
    [(-1, 0, 0), (1, 0, 0, ("01",)), (1, 0, 0, ("",)), (1, 0, 0, (), ("a_b",))],
    ids=["negative", "leading-zero", "empty-id", "bad-build"],
)
def test_constructor_validates(args: tuple[object, ...]) -> None:
    """Version(...) refuses what Version.parse refuses."""
    with pytest.raises(ValueError, match="is not a semantic version"):
        Version(*args)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "text",
    ["1.2.3", "0.0.0", "10.20.30", "01.2.3", "1.02.3", "1.2.03", "1.2", "1.2.3.4", "1..3",
     "a.b.c", "1.2.3-rc.1", "1.2.3+b", " 1.2.3", "\u0661.2.3", "1.2.\u00b2", "+1.2.3",
     "1.-2.3", "1_0.2.3", "99999999999999999999.0.0"],
)  # fmt: skip
def test_plain_versions_read_without_the_pattern_as_the_pattern_reads_them(text: str) -> None:
    """The shortcut for MAJOR.MINOR.PATCH accepts exactly what the semver pattern accepts
    without pre-release and build, with the same numbers; the rest goes to the pattern."""
    from airssys_plugins.contract import semver

    m = semver._SEMVER_RE.match(text)
    expected = None if m is None or m.group(4) or m.group(5) else tuple(map(int, m.groups()[:3]))
    assert semver._plain(text) == expected
