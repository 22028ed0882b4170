"""The rewriters' reading of a component is capped (issue 18, eleventh round).

At a cache miss the byte-buffer, raw and measuring rewriters read a component's own
sections in Python, before the compile deadline applies. A component past
``relift.MOST_COMPONENT_BYTES`` of component-level sections (a hostile one of 200,000
aliases is 1.2 MB and took 1.5 s to read; real components hold under 90 KB) is loaded
as given: its hooks work, element by element, and nothing reads its sections.
"""

from __future__ import annotations

import logging

import pluggy
import pytest

from airssys_plugins import PluginHost
from airssys_plugins.authoring.build import build_guest
from airssys_plugins.runtime import rawbytes, relift
from airssys_plugins.runtime.plans import leb128
from airssys_plugins.runtime.rawbytes import export_tail

from .test_shim_fold import BENCH_GUEST, PACKAGE, Hooks, Point

PREFIX = b"\0asm\x0d\x00\x01\x00"


def section(sid: int, body: bytes) -> bytes:
    return bytes([sid]) + leb128(len(body)) + body


def list_u8_types(n: int) -> bytes:
    """A component-level type section of ``n`` definitions of ``list<u8>``."""
    return section(7, leb128(n) + b"\x70\x7d" * n)


@pytest.fixture(scope="module")
def bench_wasm() -> bytes:
    return build_guest(BENCH_GUEST).read_bytes()


def test_component_level_bytes_counts_the_components_own_sections() -> None:
    types = list_u8_types(3)  # 1 + 1 + 7 bytes: a section of 7 bytes' body
    core = section(1, PREFIX[:4] + b"\x01\x00\x00\x00" + b"\0" * 100)
    custom = section(0, b"\x04name" + b"\0" * 50)
    nested = section(4, PREFIX + types + core)
    data = PREFIX + types + core + custom + nested
    assert relift.component_level_bytes(data) == 7 + 7  # the core module and custom skipped
    assert relift.component_level_bytes(data, most=10) == 11  # stops past ``most``


@pytest.mark.parametrize(
    "data",
    [
        PREFIX + b"\x07\x80",  # a section size cut short
        PREFIX + b"\x07\x05\x01",  # a section past the end
        PREFIX + b"\x07" + b"\xff" * 6,  # a LEB128 too long
    ],
    ids=["truncated-size", "past-the-end", "bad-leb"],
)
def test_a_binary_it_cannot_walk_counts_as_past_the_cap(data: bytes) -> None:
    assert relift.component_level_bytes(data) == relift.MOST_COMPONENT_BYTES + 1


def test_components_nested_past_the_limit_count_as_past_the_cap() -> None:
    inner = PREFIX
    for _ in range(relift._MOST_NESTING + 2):
        inner = PREFIX + section(4, inner)
    assert relift.component_level_bytes(inner) == relift.MOST_COMPONENT_BYTES + 1
    shallow = PREFIX
    for _ in range(5):
        shallow = PREFIX + section(4, shallow)
    assert relift.component_level_bytes(shallow) == 0


def test_real_components_are_far_below_the_cap(bench_wasm: bytes) -> None:
    assert relift.component_level_bytes(bench_wasm) < relift.MOST_COMPONENT_BYTES // 50
    assert export_tail(bench_wasm) is not None


def test_a_component_past_the_cap_loads_as_given(
    bench_wasm: bytes, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """270,000 type definitions (540 KB, valid for wasmtime): no reader runs, the load
    says why at INFO, and every hook behaves, bytes and records element by element."""
    n = relift.MOST_COMPONENT_BYTES // 2 + 8_000
    data = bench_wasm + list_u8_types(n)
    assert relift.component_level_bytes(data) > relift.MOST_COMPONENT_BYTES

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a reader ran on a component past the cap")

    monkeypatch.setattr(rawbytes, "_top_plan", refuse)
    monkeypatch.setattr(rawbytes, "nested_exports", refuse)
    assert export_tail(data) is None
    pm = pluggy.PluginManager("bench")
    pm.add_hookspecs(Hooks)
    with (
        caplog.at_level(logging.INFO, logger="airssys_plugins"),
        PluginHost(pm, package=PACKAGE, compile_cache=False) as host,
    ):
        plugin = host.load(data, name="wide")
        assert pm.hook.add_one(x=41) == [42]
        assert pm.hook.echo(text="héllo") == ["héllo"]
        blob = bytes(range(256)) * 64
        assert pm.hook.echo_bytes(data=blob) == [blob]
        assert pm.hook.swap(p=Point(1, 2)) == [Point(2, 1)]
        assert plugin.name == "wide"
    said = [r.getMessage() for r in caplog.records if "component-level sections" in r.getMessage()]
    assert said, caplog.text
    assert "'wide'" in said[0]
    assert "loaded as given" in said[0]
