"""plugin.toml manifests: every key, every problem at once, did-you-mean, defaults."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from airssys_plugins import HookOptions, Manifest, ManifestError, PluginError
from airssys_plugins.discovery.manifest import VersionRange

FULL = """
name = "reverse"
version = "1.2.3"
description = "Reverses text"
component = "bin/reverse.wasm"
sha256 = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"

[contract]
package = "textpipe:hooks"
version = "^1.0"

[hooks.transform]
tryfirst = true
timeout = 0.25

[hooks.transform_text]
specname = "transform"
trylast = true

[capabilities]
interfaces = ["log", "http", "log"]
env = ["LANG", "TZ"]
network = ["https://API.example.com", "http://localhost:8080/"]
filesystem = [
  { guest = "/data", host = "data", mode = "rw" },
  { guest = "/etc/app", host = "/srv/app" },
]

[limits]
memory = "64 MiB"
timeout = 0.5
fuel = 1_000_000

[config]
greeting = "hello"
loud = true
level = 3
"""


def test_full_manifest_parses_into_frozen_values(tmp_path: Path) -> None:
    """Every key of the reference page lands in a typed, frozen field."""
    path = tmp_path / "plugin.toml"
    path.write_text(FULL)
    m = Manifest.from_file(path)
    assert (m.name, m.version, m.description) == ("reverse", "1.2.3", "Reverses text")
    assert m.component_path == tmp_path / "bin" / "reverse.wasm"
    assert m.sha256 is not None
    assert m.sha256.startswith("9f86d0")
    assert m.contract is not None
    assert str(m.contract) == "textpipe:hooks ^1.0"
    assert m.hooks == {
        "transform": HookOptions(tryfirst=True, timeout=0.25),
        "transform_text": HookOptions(trylast=True, specname="transform"),
    }
    caps = m.capabilities
    assert caps.interfaces == ("log", "http")  # duplicates dropped, order kept
    assert caps.env == ("LANG", "TZ")
    assert caps.network == ("https://api.example.com:443", "http://localhost:8080")
    assert [str(p) for p in caps.filesystem] == ["/data=data:rw", "/etc/app=/srv/app:ro"]
    assert (m.limits.memory, m.limits.timeout, m.limits.fuel) == (64 * 2**20, 0.5, 1_000_000)
    assert dict(m.config) == {"greeting": "hello", "loud": "true", "level": "3"}
    with pytest.raises(AttributeError):
        m.name = "other"  # type: ignore[misc]
    with pytest.raises(TypeError):
        m.config["greeting"] = "bye"  # type: ignore[index]


def test_minimal_manifest_gets_defaults() -> None:
    """Only name is required; the component defaults to <name>.wasm beside the manifest."""
    m = Manifest.from_toml('name = "shout"', path="/plugins/shout/plugin.toml")
    assert m.version == "0.0.0"
    assert m.component_path == Path("/plugins/shout/shout.wasm")
    assert m.contract is None
    assert not m.capabilities
    assert m.hooks == {}


def test_bare_component_defaults() -> None:
    """A .wasm without manifest: name from the file name, no capabilities."""
    m = Manifest.for_component("/drop/in/shout.wasm")
    assert m.name == "shout"
    assert m.component_path == Path("/drop/in/shout.wasm")
    assert not m.capabilities
    assert m.limits.memory is None


BAD = """
nme = "x"
version = "1.0"
componet = "a.wasm"
sha256 = "abc"

[contract]
package = "textpipe:hooks@1.0.0"
version = "^x"

[hooks.transform]
tryfirst = true
trylast = true
tryfrist = true

[hooks.detect-language]

[capabilities]
interfaces = ["lgo", "socket"]
enviroment = ["A"]
env = ["$HOME", 3]
network = ["ftp://x", "https://h/path", "https://example.com"]
filesystem = [{ guest = "data", host = "rel", mode = "rwx" }, "x"]

[limits]
memory = "lots"
timeout = -1
fuel = true
cpu = 1

[config]
nested = { a = 1 }
"""


def test_every_problem_is_reported_at_once() -> None:
    """One ManifestError lists each problem with file, field and fix."""
    with pytest.raises(ManifestError) as info:
        Manifest.from_toml(BAD, path="/p/x/plugin.toml")
    err = info.value
    assert isinstance(err, PluginError)
    assert isinstance(err, ValueError)
    assert err.plugin == "x"  # no name: the directory's
    fields = [p.field for p in err.problems]
    assert fields == [
        "nme",
        "componet",
        "name",
        "version",
        "sha256",
        "contract.package",
        "contract.version",
        "hooks.transform.tryfrist",
        "hooks.transform",
        "hooks.detect-language",
        "capabilities.enviroment",
        "capabilities.interfaces[0]",
        "capabilities.interfaces[1]",
        "capabilities.env[1]",
        "capabilities.env[0]",
        "capabilities.network[0]",
        "capabilities.network[1]",
        "capabilities.network",
        "capabilities.filesystem[0].guest",
        "capabilities.filesystem[0].host",
        "capabilities.filesystem[0].mode",
        "capabilities.filesystem[1]",
        "limits.cpu",
        "limits.memory",
        "limits.timeout",
        "limits.fuel",
        "config.nested",
    ]
    assert all(p.file == "/p/x/plugin.toml" and p.fix for p in err.problems)
    text = str(err)
    assert f"has {len(fields)} problem(s)" in text
    assert "/p/x/plugin.toml: limits.memory: 'lots' is not a size. Fix:" in text


@pytest.mark.parametrize(
    ("toml", "field", "fix"),
    [
        ('nme = "x"', "nme", "did you mean 'name'?"),
        ('name = "x"\ndescripton = "d"', "descripton", "did you mean 'description'?"),
        ('name = "x"\n[capabilities]\nenvs = []', "capabilities.envs", "did you mean 'env'?"),
        ('name = "x"\n[limits]\nmemroy = 1', "limits.memroy", "did you mean 'memory'?"),
        ('name = "x"\n[hooks.t]\nspecnam = "a"', "hooks.t.specnam", "did you mean 'specname'?"),
        (
            'name = "x"\n[capabilities]\ninterfaces = ["htp"]',
            "capabilities.interfaces[0]",
            "did you mean 'http'?",
        ),
        ('name = "x"\nfoo = 1', "foo", "remove it; the keys here are: name, version"),
    ],
    ids=["top", "description", "capabilities", "limits", "hooks", "interface", "no-match"],
)
def test_unknown_keys_suggest_the_closest(toml: str, field: str, fix: str) -> None:
    """An unknown key is an error, with a did-you-mean when a known key is close."""
    with pytest.raises(ManifestError) as info:
        Manifest.from_toml(toml)
    [problem] = [p for p in info.value.problems if p.field == field]
    assert problem.fix.startswith(fix)


def test_network_needs_the_http_interface() -> None:
    """Origins are reached through the http host interface, so asking for one needs it."""
    with pytest.raises(ManifestError, match=r'add "http" to capabilities.interfaces'):
        Manifest.from_toml('name = "x"\n[capabilities]\nnetwork = ["https://a.example"]')


def test_syntax_error_names_file_and_position(tmp_path: Path) -> None:
    """Broken TOML is one problem whose message carries the line and column."""
    path = tmp_path / "plugin.toml"
    path.write_text('name = "x"\nversion = \n')
    with pytest.raises(ManifestError) as info:
        Manifest.from_file(path)
    [problem] = info.value.problems
    assert problem.field == "(syntax)"
    assert "line 2" in problem.message
    assert str(path) in str(info.value)


def test_unreadable_manifest_is_a_manifest_error(tmp_path: Path) -> None:
    """A missing or non-UTF-8 file is reported like any other manifest problem."""
    with pytest.raises(ManifestError, match="cannot read the manifest"):
        Manifest.from_file(tmp_path / "missing.toml")
    (tmp_path / "latin1.toml").write_bytes(b'name = "caf\xe9"')
    with pytest.raises(ManifestError, match="not UTF-8"):
        Manifest.from_file(tmp_path / "latin1.toml")


@pytest.mark.parametrize(
    ("memory", "expected"),
    [(65536, 65536), ('"64 KiB"', 65536), ('"1.5MiB"', 1572864), ('"2 GB"', 2 * 10**9)],
    ids=["int", "kib", "fraction", "decimal-unit"],
)
def test_memory_sizes(memory: object, expected: int) -> None:
    """limits.memory takes bytes or a size with a unit, at least one wasm page."""
    m = Manifest.from_toml(f'name = "x"\n[limits]\nmemory = {memory}')
    assert m.limits.memory == expected


def test_memory_below_a_page_is_refused() -> None:
    """Less than 64 KiB cannot hold one WebAssembly page."""
    with pytest.raises(ManifestError, match="less than one WebAssembly page"):
        Manifest.from_toml('name = "x"\n[limits]\nmemory = "1 KiB"')


@pytest.mark.parametrize(
    ("spec", "inside", "outside"),
    [
        ("^1.2", ["1.2.0", "1.9.9"], ["1.1.9", "2.0.0", "1.2.0-rc.1"]),
        ("1.2", ["1.2.0", "1.9.9"], ["2.0.0"]),
        ("^0.2", ["0.2.0", "0.2.9"], ["0.3.0", "0.1.9"]),
        ("^0.0.3", ["0.0.3"], ["0.0.4"]),
        ("~1.2", ["1.2.0", "1.2.9"], ["1.3.0"]),
        ("~1", ["1.0.0", "1.9.0"], ["2.0.0"]),
        (">=1.0, <2", ["1.0.0", "1.5.0"], ["0.9.9", "2.0.0", "2.0.0-rc.1"]),
        ("=1.2.3", ["1.2.3"], ["1.2.4"]),
        ("*", ["0.0.1", "9.9.9"], []),
    ],
    ids=[
        "caret",
        "bare-is-caret",
        "caret-zero",
        "caret-zero-zero",
        "tilde",
        "tilde-major",
        "comparators",
        "exact",
        "any",
    ],
)
def test_version_ranges(spec: str, inside: list[str], outside: list[str]) -> None:
    """contract.version is a semver range with caret, tilde and comparators."""
    r = VersionRange.parse(spec)
    assert all(r.contains(v) for v in inside)
    assert not any(r.contains(v) for v in outside)


@given(st.text(max_size=40))
def test_parser_raises_only_manifest_errors(text: str) -> None:
    """Whatever the input, only the documented error escapes the parser."""
    with contextlib.suppress(ManifestError):
        Manifest.from_toml(text)


@given(
    st.dictionaries(
        st.sampled_from(["name", "version", "component", "sha256", "hooks", "limits", "config"]),
        st.one_of(st.text(max_size=8), st.integers(), st.booleans(), st.lists(st.integers())),
    )
)
def test_parser_raises_only_manifest_errors_on_wrong_types(data: dict[str, object]) -> None:
    """Values of the wrong type are problems, never crashes."""
    import tomli_w

    with contextlib.suppress(ManifestError):
        Manifest.from_toml(tomli_w.dumps(data))
