"""Web origins: one parser for manifests, grants files, the API and the http interface."""

from __future__ import annotations

import functools
import http.server
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from airssys_plugins.contract.annotations import Err, Ok
from airssys_plugins.discovery.manifest import Manifest, ManifestError
from airssys_plugins.host import builtins, interfaces
from airssys_plugins.policy.capabilities import Capabilities, Origin
from airssys_plugins.policy.decisions import load_grants


@pytest.mark.parametrize(
    ("text", "normal"),
    [
        ("http://[::1]:8080", "http://[::1]:8080"),
        ("http://[0:0:0:0:0:0:0:1]:8080/", "http://[::1]:8080"),
        ("https://[2001:DB8::1]", "https://[2001:db8::1]:443"),
        ("https://bücher.example", "https://xn--bcher-kva.example:443"),
        ("HTTPS://API.Example.COM", "https://api.example.com:443"),
        ("http://api.example.com", "http://api.example.com:80"),
        ("https://api.example.com:443", "https://api.example.com:443"),
        ("https://api.example.com:8443/", "https://api.example.com:8443"),
        ("http://127.0.0.1:9000", "http://127.0.0.1:9000"),
    ],
    ids=[
        "ipv6",
        "ipv6-long",
        "ipv6-case",
        "idna",
        "case",
        "http-default",
        "explicit-default",
        "port",
        "ipv4",
    ],
)
def test_origins_are_normalised(text: str, normal: str) -> None:
    """Case, IDNA, IPv6 brackets and default ports come out in one normal form."""
    assert str(Origin.parse(text)) == normal
    assert Origin.parse(normal) == Origin.parse(text)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("ftp://a.example", "scheme must be http or https"),
        ("api.example.com", "scheme must be http or https"),
        ("https://a.example/v1", "has a path, query or fragment"),
        ("https://a.example?x=1", "has a path, query or fragment"),
        ("https://a.example#top", "has a path, query or fragment"),
        ("https://user:pw@a.example", "user info"),
        ("https://a.example:0", "out of range"),
        ("https://a.example:70000", "out of range"),
        ("https://a.example:http", "is not ':PORT'"),
        ("http://[::zz]:80", "not an IPv6 address"),
        ("http://::1:80", "goes in brackets"),
        ("https://", "has no host"),
        ("https://*.example.com", "wildcards"),
        ("https://a_b.example", "is not a host name"),
    ],
    ids=[
        "ftp",
        "no-scheme",
        "path",
        "query",
        "fragment",
        "userinfo",
        "port0",
        "port-big",
        "port-text",
        "bad-ipv6",
        "unbracketed-ipv6",
        "no-host",
        "wildcard",
        "underscore",
    ],
)
def test_bad_origins_say_how_to_fix(text: str, message: str) -> None:
    """Anything but scheme://host[:port] is refused with the reason and a fix."""
    with pytest.raises(ValueError, match=r"e\.g\.|use|list each host") as info:
        Origin.parse(text)
    assert message in str(info.value)


def test_manifest_grants_file_and_api_agree(tmp_path: Path) -> None:
    """plugin.toml, the grants file and Capabilities(...) give the same Origin."""
    written = ["http://[::1]:8080", "https://Bücher.example"]
    manifest = Manifest.from_toml(
        f'name = "p"\n[capabilities]\ninterfaces = ["http"]\nnetwork = {written!r}\n'.replace(
            "'", '"'
        )
    )
    grants_file = tmp_path / "grants.toml"
    grants_file.write_text(
        f"[plugins.p]\nnetwork = {written!r}\n".replace("'", '"'), encoding="utf-8"
    )
    expected = {Origin("http", "[::1]", 8080), Origin("https", "xn--bcher-kva.example", 443)}
    assert {Origin.parse(o) for o in manifest.capabilities.network} == expected
    assert set(load_grants(grants_file)["p"].network) == expected
    assert set(Capabilities(network=written).network) == expected


def test_manifest_reports_bad_origin_with_fix() -> None:
    """A bad origin in plugin.toml is a ManifestProblem naming the field and a fix."""
    with pytest.raises(ManifestError) as info:
        Manifest.from_toml(
            'name = "p"\n[capabilities]\ninterfaces = ["http"]\n'
            'network = ["https://a.example/v1", "https://u@b.example"]\n'
        )
    problems = info.value.problems
    assert [p.field for p in problems] == ["capabilities.network[0]", "capabilities.network[1]"]
    assert "path" in problems[0].message
    assert "scheme://host[:port]" in problems[0].fix
    assert "user info" in problems[1].message


@pytest.mark.parametrize(
    ("url", "origin"),
    [
        ("http://[::1]:8080/v1/items?q=1", "http://[::1]:8080"),
        ("https://BÜCHER.example/a", "https://xn--bcher-kva.example:443"),
        ("https://api.example.com:443/x", "https://api.example.com:443"),
        ("http://api.example.com#frag", "http://api.example.com:80"),
    ],
    ids=["ipv6", "idna", "explicit-port", "fragment"],
)
def test_request_urls_map_to_granted_origins(url: str, origin: str) -> None:
    """The http interface's check finds a request URL's origin in the grants' normal form."""
    network = Capabilities(network=[origin]).network
    assert builtins._origin_of(url) in network


@pytest.mark.parametrize(
    "url", ["ftp://a.example/x", "https://u:p@a.example/", "https://a.example:99999/", "nonsense"]
)
def test_request_urls_without_an_allowable_origin(url: str) -> None:
    """A URL with no origin an allowlist could hold gives None (refused), never a crash."""
    assert builtins._origin_of(url) is None


@pytest.fixture
def ipv6_server(tmp_path: Path) -> Iterator[int]:
    """A local HTTP server on [::1] serving ``x`` from tmp_path; yields its port."""
    (tmp_path / "x").write_bytes(b"hello over ipv6")

    class Server(http.server.ThreadingHTTPServer):
        address_family = socket.AF_INET6

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    server = Server(("::1", 0), functools.partial(Quiet, directory=str(tmp_path)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def test_fetch_reaches_a_granted_ipv6_origin(ipv6_server: int) -> None:
    """End to end: a plugin granted http://[::1]:PORT may fetch from it, others may not."""
    granted = Capabilities(network=[f"http://[::1]:{ipv6_server}"]).network
    context = interfaces.PluginContext("p", network=granted)
    ok = interfaces._run_as(
        context,
        builtins.fetch,
        [builtins.Request("GET", f"http://[::1]:{ipv6_server}/x", [], b"")],
    )
    assert isinstance(ok, Ok)
    assert (ok.value.status, ok.value.body) == (200, b"hello over ipv6")
    refused = interfaces._run_as(
        context,
        builtins.fetch,
        [builtins.Request("GET", f"http://[::1]:{ipv6_server + 1}/x", [], b"")],
    )
    assert isinstance(refused, Err)
    assert "not allowed for this plugin" in refused.value
