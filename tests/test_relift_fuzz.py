"""Malformed components never crash loading: the byte-buffer reader declines, wasmtime judges.

``runtime/relift.py`` reads a component's binary before wasmtime has validated it (to add
byte-buffer exports). These tests mutate real components the suite builds (flipped
bytes, truncation, inserted bytes, duplicated sections) and check that loading either
succeeds or raises a named :class:`PluginError`, never a bare RecursionError, IndexError
or UnicodeDecodeError from the reader.
"""

from __future__ import annotations

import contextlib
import marshal
from collections.abc import Callable
from pathlib import Path

import pytest
import wasmtime
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from wasmtime.component import Component

from airssys_plugins import PluginError, PluginLoadError
from airssys_plugins.authoring.build import build_guest
from airssys_plugins.runtime import engine as _engine
from airssys_plugins.runtime import image as _image
from airssys_plugins.runtime.image import ComponentImage
from airssys_plugins.runtime.plans import ShimFold, decode_export_plan, encode_export_plan
from airssys_plugins.runtime.rawbytes import export_tail
from airssys_plugins.runtime.relift import _leb, _s33, _section, _Unsupported, byte_export_tail
from airssys_plugins.runtime.shimfold import _moved_body, fold_shims

GUESTS = Path(__file__).parent / "guests"
PREFIX = b"\0asm\x0d\x00\x01\x00"


@pytest.fixture(scope="module")
def components(demo: Callable[..., Path]) -> list[bytes]:
    """Real components: the WAT bytes guest (byte-buffer exports) and a demo guest."""
    found = [build_guest(GUESTS / "bytes").read_bytes(), demo().read_bytes()]
    assert byte_export_tail(found[0]) is not None  # relift really reads the first one
    return found


def _sections(data: bytes) -> list[tuple[int, int]]:
    """(start, end) of each top-level section, as far as ``data`` (maybe already mutated)
    can be split into sections."""
    spans, pos = [], len(PREFIX)
    while pos < len(data):
        start = pos
        pos += 1
        size = shift = 0
        while pos < len(data) and shift < 35:
            b = data[pos]
            pos += 1
            size |= (b & 0x7F) << shift
            shift += 7
            if b < 0x80:
                break
        else:
            return spans
        pos += size
        if pos > len(data):
            return spans
        spans.append((start, pos))
    return spans


Mutation = tuple[str, int, int]

MUTATIONS = st.lists(
    st.tuples(
        st.sampled_from(["flip", "truncate", "insert", "duplicate"]),
        st.integers(0, 2**32),
        st.integers(0, 255),
    ),
    min_size=1,
    max_size=4,
)


def _mutate(data: bytes, mutations: list[Mutation]) -> bytes:
    out = bytearray(data)
    for kind, where, value in mutations:
        if kind == "duplicate":
            spans = _sections(data)
            if not spans:
                continue
            start, end = spans[where % len(spans)]
            at = spans[(where // len(spans)) % len(spans)][1]
            out = bytearray(data[:at] + data[start:end] + data[at:])
            data = bytes(out)
            continue
        # Keep the preamble mostly intact, or nearly every case stops at the magic check.
        pos = len(PREFIX) + where % max(1, len(out) - len(PREFIX))
        if kind == "flip" and pos >= len(out):  # nothing left past the preamble
            pos = where % len(out)
        if kind == "flip":
            out[pos] ^= value or 1
        elif kind == "truncate":
            del out[pos:]
        else:
            out[pos:pos] = bytes([value])
        data = bytes(out)
    return bytes(out)


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(which=st.integers(0, 1), mutations=MUTATIONS)
def test_mutated_components_load_or_raise_plugin_error(
    components: list[bytes], which: int, mutations: list[Mutation]
) -> None:
    """A mutated real component loads, or fails with a PluginError; nothing else escapes."""
    data = _mutate(components[which], mutations)
    byte_export_tail(data)  # never raises, whatever the bytes
    with contextlib.suppress(PluginError):
        ComponentImage.load("fuzzed", data, cache=False)


def _self_nested_component(depth: int) -> bytes:
    """A component whose exported function's parameter is option<option<...<u8>...>>
    ``depth`` types deep (``depth == 0``: a type that contains itself), lifting core
    function ``f``: the shape the reader walks recursively."""
    types = [b"\x6b\x7d"] + [b"\x6b" + _s33(k) for k in range(depth)]
    if depth == 0:
        types = [b"\x6b" + _s33(0)]  # type 0 = option<type 0>
    top = len(types) - 1
    func_type = b"\x40" + _leb(1) + _leb(1) + b"x" + _s33(top) + b"\x01\x00"
    types.append(func_type)
    alias = b"\x00\x00\x01" + _leb(0) + _leb(1) + b"f"  # core func: export "f" of instance 0
    lift = b"\x00\x00" + _leb(0) + _leb(1) + b"\x03" + _leb(0) + _leb(len(types) - 1)
    return PREFIX + _section(6, [alias]) + _section(7, types) + _section(8, [lift])


@pytest.mark.parametrize("depth", [0, 20_000], ids=["self-referential", "deeply-nested"])
def test_recursive_type_declines_fast_path(depth: int) -> None:
    """A type nested past Python's recursion limit: no byte-buffer exports, and the
    invalid component fails with PluginLoadError, not RecursionError."""
    data = _self_nested_component(depth)
    assert byte_export_tail(data) is None
    with pytest.raises(PluginLoadError, match="is not a valid component"):
        ComponentImage.load("nested", data, cache=False)


def test_reader_failure_logs_and_declines(
    components: list[bytes], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Any exception inside the reader declines the fast path (logged at debug); the
    component still loads on the normal path."""

    def broken(data: bytes) -> None:
        raise IndexError("reader bug")

    assert _image.BYTE_EXPORTS, "this test needs byte-buffer exports switched on"
    assert ComponentImage.load("bytes", components[0], cache=False).byte_exports
    monkeypatch.setattr("airssys_plugins.runtime.relift._byte_export_tail", broken)
    caplog.set_level("DEBUG", logger="airssys_plugins.runtime")
    image = ComponentImage.load("bytes", components[0], cache=False)
    assert image.byte_exports == {}
    assert image.exports
    assert "reader bug" in caplog.text


# ------------------------------------------------------------------ the shims folded


@pytest.fixture(scope="module")
def unfolded() -> tuple[bytes, int]:
    """The bytes guest with its tails appended, shims apart, and where the tails start."""
    data = build_guest(GUESTS / "bytes").read_bytes()
    plan = export_tail(data)
    assert plan is not None
    assert plan.fold is not None  # the fold really reads this one
    return plan.without_fold().wider(data), len(data)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(mutations=MUTATIONS, in_tail=st.booleans())
def test_mutated_binaries_fold_or_decline(
    unfolded: tuple[bytes, int], mutations: list[Mutation], in_tail: bool
) -> None:
    """A mutated wider binary (mutated anywhere, or in the tails only, where the shims
    are): the fold never raises, and what it makes wasmtime takes or refuses with its
    own error (the load then compiles the shims apart)."""
    wide, start = unfolded
    if in_tail:
        wide = wide[:start] + _mutate(PREFIX + wide[start:], mutations)[len(PREFIX) :]
    else:
        wide = _mutate(wide, mutations)
    splices = fold_shims(wide, start)
    if splices is None:
        return
    folded = ShimFold(splices).apply(wide)
    with contextlib.suppress(wasmtime.WasmtimeError):
        Component(_engine.engine(False), folded)


@settings(max_examples=300, deadline=None)
@given(body=st.binary(max_size=64))
def test_shim_code_decoder_declines_what_it_does_not_know(body: bytes) -> None:
    """Random function bodies: moved, or declined with the reader's own exception."""
    with contextlib.suppress(_Unsupported):
        _moved_body(body, list(range(8)), list(range(4)), list(range(4)))


@pytest.mark.parametrize(
    "meta",
    [[[5, 3, 0]], [[0, 1, 99]], "splices", [[0, 1]], [[4, 4, 1], [2, 2, 0]]],
    ids=["backwards", "short", "not-a-list", "two-fields", "out-of-order"],
)
def test_a_damaged_fold_in_a_plan_is_refused(meta: object) -> None:
    """A plan whose fold splices do not add up is unreadable (ValueError): the plan is
    made again."""
    data = build_guest(GUESTS / "bytes").read_bytes()
    plan = export_tail(data)
    assert plan is not None
    encoded = marshal.loads(encode_export_plan(plan))
    encoded[0]["fold"] = meta
    with pytest.raises(ValueError, match="unreadable export plan"):
        decode_export_plan(marshal.dumps(encoded, 4))
