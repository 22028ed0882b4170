"""Byte-buffer exports: ``list<u8>`` lifted a second time as a latin1 string.

The runtime appends, to a component's binary, a second lift of every function moving
``list<u8>`` (see airssys_plugins/_runtime/_relift.py) and calls that instead. These tests
check the rewritten binary (wasmtime validates and compiles it), that each byte-buffer
call gives exactly what the original export gives (on random bytes, ASCII or not, in
every position: argument, result, option, nested list, tuple), which plan each call
takes, and that a componentize-py guest, whose ``cabi_realloc`` cannot shrink a block,
is never handed a latin1 argument that wasmtime would shrink.
"""

from __future__ import annotations

import gc
import os
import random
import weakref
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import pluggy
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from airssys_plugins import PluginHost, PluginLimitExceeded
from airssys_plugins.authoring.build import build_guest
from airssys_plugins.contract import wit
from airssys_plugins.runtime import engine, plans
from airssys_plugins.runtime import image as _image
from airssys_plugins.runtime.image import ComponentImage
from airssys_plugins.runtime.instance import BoundFunc, PluginInstance
from airssys_plugins.runtime.plans import (
    EXPORT_PLAN_VERSION,
    decode_export_plan,
    encode_export_plan,
)
from airssys_plugins.runtime.rawbytes import export_tail
from airssys_plugins.runtime.relift import (
    FAST_EXPORT_PREFIX,
    PLAN_VERSION,
    _s33,
    add_byte_exports,
    decode_plan,
    encode_plan,
)
from airssys_plugins.runtime.sandbox import SandboxSpec

from .kitchen_hooks import PACKAGE, KitchenHooks

GUEST = Path(__file__).parent / "guests" / "bytes"
IFACE = "test:bytes/ops@1.0.0"
FAST_FUNCS = {"echo", "tail", "empty", "length", "make", "maybe", "nested", "pair"}


@pytest.fixture(scope="module")
def bytes_wasm() -> Path:
    return build_guest(GUEST)


class Both:
    """One instance of the bytes guest; each function bound both ways."""

    def __init__(self, image: ComponentImage, *, max_result_bytes: int | None = None):
        self.instance = PluginInstance(
            image, sandbox=SandboxSpec(max_result_bytes=max_result_bytes)
        )
        self.fast: dict[str, BoundFunc] = {}
        self.slow: dict[str, BoundFunc] = {}
        for (iface, func), found in image.exports.items():
            sig = wit.FuncSig(
                tuple((n, _py_bytes(t)) for n, t in found.params), _py_bytes(found.result)
            )
            self.fast[func] = self.instance.bind(func, iface, func, sig)
            self.slow[func] = self.instance.bind(func, iface, func, sig, byte_buffers=False)

    def call(self, func: str, *args: Any) -> tuple[Any, Any]:
        fast = self.instance.call(self.fast[func], args)
        slow = self.instance.call(self.slow[func], args)
        return fast, slow


def _py_bytes(t: Any) -> Any:
    """The wasmtime view of a type with ``list<u8>`` as Python bytes (as a hookspec has it)."""
    if isinstance(t, wit.ListT):
        if t.element == wit.Prim("u8"):
            return wit.ListT(t.element, py_bytes=True)
        return wit.ListT(_py_bytes(t.element))
    if isinstance(t, wit.TupleT):
        return wit.TupleT(tuple(_py_bytes(e) for e in t.elements))
    if isinstance(t, wit.OptionT):
        return wit.OptionT(_py_bytes(t.inner))
    if isinstance(t, wit.RecordT):
        return attrs.evolve(t, fields=tuple((n, _py_bytes(f)) for n, f in t.fields))
    return t


@pytest.fixture(scope="module")
def both(bytes_wasm: Path) -> Iterator[Both]:
    pair = Both(ComponentImage.load("bytes", bytes_wasm))
    yield pair
    pair.instance.close()


def test_s33_encodes_type_indices_that_look_like_opcodes() -> None:
    assert _s33(5) == b"\x05"
    assert _s33(63) == b"\x3f"
    assert _s33(64) == b"\xc0\x00"  # one byte would read as a negative opcode
    assert _s33(115) == b"\xf3\x00"  # 0x73 alone is `string`
    assert _s33(300) == b"\xac\x02"


def test_exports_are_added_for_byte_functions_only(bytes_wasm: Path) -> None:
    data = bytes_wasm.read_bytes()
    result = add_byte_exports(data)
    assert result is not None
    wider, added = result
    assert wider.startswith(data)  # appended: the original sections are untouched
    assert {a.function for a in added} == FAST_FUNCS  # not `mixed` (a string), not `boxed`
    assert all(a.interface == IFACE and a.name.startswith(FAST_EXPORT_PREFIX) for a in added)
    assert len(added) == len(FAST_FUNCS)


def test_image_hides_the_added_exports(both: Both) -> None:
    image = both.instance.image
    assert not any(func.startswith(FAST_EXPORT_PREFIX) for _, func in image.exports)
    assert set(image.byte_exports) == {(IFACE, f) for f in FAST_FUNCS}
    assert image.sha256 == _sha256(image.path)  # the digest is of the file as given


def _sha256(path: Path | None) -> str:
    import hashlib

    assert path is not None
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_components_without_byte_functions_are_left_alone(textpipe_wasm: dict[str, Path]) -> None:
    for wasm in textpipe_wasm.values():
        assert add_byte_exports(wasm.read_bytes()) is None


def test_unreadable_input_is_declined_not_guessed() -> None:
    assert add_byte_exports(b"\0asm\x01\0\0\0") is None  # a core module
    assert add_byte_exports(b"\0asm\x0d\0\x01\0\x07\x05\x01") is None  # truncated section


def test_plans(both: Both) -> None:
    """Which calls go through a byte-buffer export, and what travels as latin1."""
    for func in ("echo", "tail", "length"):
        assert both.fast[func].lowers[0].__name__ == "lower_latin1"
    assert both.fast["echo"].lowers[0].__name__ == "lower_latin1"
    assert both.slow["echo"].lowers[0].__name__ == "lower_packed"
    assert both.fast["mixed"].lowers[1].__name__ == "lower_packed"  # beside a string: as is
    # a list<u8> result is lifted as latin1; bytes deeper inside a result are not
    assert both.fast["echo"].exact_measure is not None
    assert both.fast["make"].exact_measure is not None
    assert both.fast["maybe"].exact_measure is None


PAYLOADS = [
    b"",
    b"\x00",
    b"hello",
    bytes(range(256)),
    bytes(range(128)) * 3,
    b"\xff" * 1000,
    "naïve café ✓".encode(),
]


@pytest.mark.parametrize("data", PAYLOADS, ids=range(len(PAYLOADS)))
def test_every_position_matches_the_original_export(both: Both, data: bytes) -> None:
    def same(func: str, *args: Any) -> Any:
        fast, slow = both.call(func, *args)
        assert fast == slow
        assert type(fast) is type(slow)
        return fast

    assert same("echo", data) == data
    assert same("tail", data) == data[1:]
    assert same("tail", b"x" + data) == data  # odd address: copied to an even one
    assert same("length", data) == len(data)
    assert same("maybe", data) == data
    assert same("maybe", None) is None
    assert same("nested", [data, b"", data[::-1]]) == [data, b"", data[::-1]]
    assert same("pair", (data, 7)) == (data, 7)
    assert same("mixed", "text", data) == data


def test_make_returns_every_byte_value(both: Both) -> None:
    for fill in (0, 0x41, 0x7F, 0x80, 0xE9, 0xFF):
        fast, slow = both.call("make", 70_000, fill)
        assert fast == slow == bytes([fill]) * 70_000


def test_empty_list_at_an_odd_address(both: Both) -> None:
    """Rust returns an empty Vec at address 1; a latin1 string must be 2-aligned."""
    for _ in range(3):
        assert both.call("empty") == (b"", b"")


def test_lists_of_ints_are_accepted_and_checked(both: Both) -> None:
    assert both.call("echo", [104, 105]) == (b"hi", b"hi")
    assert both.call("echo", [0xFF, 1]) == (b"\xff\x01", b"\xff\x01")
    with pytest.raises(Exception, match=r"argument 'data'\[1\]"):
        both.instance.call(both.fast["echo"], [[1, 256]])


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.binary(max_size=3000), ascii_only=st.booleans())
def test_random_bytes_match(both: Both, data: bytes, ascii_only: bool) -> None:
    if ascii_only:
        data = bytes(b & 0x7F for b in data)
    fast, slow = both.call("echo", data)
    assert fast == slow == data
    assert both.call("tail", data) == (data[1:], data[1:])
    assert both.call("nested", [data, data]) == ([data, data], [data, data])


def test_large_random_round_trip(both: Both) -> None:
    rng = random.Random(7)
    for data in (os.urandom(1 << 20), bytes(rng.randrange(128) for _ in range(1 << 18))):
        fast, slow = both.call("echo", data)
        assert fast == slow == data


def test_result_limit_counts_bytes_not_utf8(bytes_wasm: Path) -> None:
    """A non-ASCII result is twice as long in UTF-8: the limit applies to the bytes."""
    limited = Both(ComponentImage.load("bytes", bytes_wasm), max_result_bytes=1000)
    try:
        fast, slow = limited.call("make", 1000, 0xFF)
        assert fast == slow == b"\xff" * 1000
        for bound in (limited.fast["make"], limited.slow["make"]):
            with pytest.raises(PluginLimitExceeded, match="1,001 bytes"):
                limited.instance.call(bound, (1001, 0xFF))
    finally:
        limited.instance.close()


def test_switched_off(bytes_wasm: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_image, "BYTE_EXPORTS", False)
    image = ComponentImage.load("bytes", bytes_wasm)
    assert image.byte_exports == {}


@pytest.fixture(scope="module")
def kitchen(kitchen_wasm: Path) -> Iterator[pluggy.PluginManager]:
    pm = pluggy.PluginManager("kitchen")
    pm.add_hookspecs(KitchenHooks)
    with PluginHost(pm, package=PACKAGE) as host:
        plugin = host.load(kitchen_wasm, name="kitchen")
        assert plugin.instances[0].image.byte_exports  # componentize-py: wit-component layout
        yield pm


def test_componentize_py_guest_round_trips_any_bytes(kitchen: pluggy.PluginManager) -> None:
    """wasmtime shrinks the block it lowered a non-ASCII latin1 string into, and
    componentize-py's cabi_realloc traps on a shrink: the shim's realloc shrinks in place."""
    for data in (b"", b"ascii only", bytes(range(256)) * 40, os.urandom(100_000)):
        assert kitchen.hook.echo_bytes(x=data) == [data]


def test_inspect_shows_the_component_as_built(bytes_wasm: Path) -> None:
    """The added exports are the runtime's business: `inspect` does not list them."""
    from airssys_plugins.runtime.describe import describe_component

    info = describe_component(bytes_wasm)
    assert [item.name for item in info.exports] == [IFACE]


def test_plans_are_kept_beside_the_compile_cache(
    bytes_wasm: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A warm load reads what to append from a small file instead of parsing the
    component again; a damaged file is ignored, recomputed and rewritten."""
    monkeypatch.setenv("AIRSSYS_PLUGINS_CACHE_DIR", str(tmp_path))
    image = ComponentImage.load("bytes", bytes_wasm)
    suffix = "" if _image.RAW_BYTES else "n"
    plan_file = tmp_path / "aot" / f"{image.sha256}-r{EXPORT_PLAN_VERSION}{suffix}.plan"
    plan = export_tail(bytes_wasm.read_bytes(), raw=_image.RAW_BYTES)
    assert plan is not None
    # the note holds the plan and the digest of the wider binary it makes (not hashed again)
    assert _image._read_export_note(plan_file.read_bytes()) == (
        plan,
        _image._plan_digest(image.sha256, plan),
    )
    plan_file.write_bytes(b"not a plan")
    byte_exports, raw_exports = image.byte_exports, image.raw_exports
    # While a copy is loaded (or kept), what this process read of it holds: let none be.
    del image
    monkeypatch.setattr(engine, "_LIVE_COMPONENTS", weakref.WeakValueDictionary())
    monkeypatch.setattr(engine, "_kept", OrderedDict())
    gc.collect()
    again = ComponentImage.load("bytes", bytes_wasm)
    assert again.byte_exports == byte_exports
    assert again.raw_exports == raw_exports
    assert "unreadable byte-export plan" in caplog.text
    assert _image._read_export_note(plan_file.read_bytes()) is not None
    # a component with nothing to add gets a plan too (so it is not parsed again)
    nothing = tmp_path / "nothing.wasm"
    nothing.write_bytes(_no_functions_component(tmp_path))
    empty = ComponentImage.load("nothing", nothing)
    blob = (tmp_path / "aot" / f"{empty.sha256}-r{EXPORT_PLAN_VERSION}{suffix}.plan").read_bytes()
    assert _image._read_export_note(blob) is None
    older = encode_export_plan(None)
    monkeypatch.setattr(plans, "EXPORT_PLAN_VERSION", "0." + EXPORT_PLAN_VERSION)
    with pytest.raises(ValueError, match="version"):
        decode_export_plan(older)

    with pytest.raises(ValueError, match="version"):
        decode_plan(
            encode_plan(None).replace(
                f'"version": {PLAN_VERSION}'.encode(), f'"version": {PLAN_VERSION - 1}'.encode()
            )
        )


def _no_functions_component(tmp: Path) -> bytes:
    import subprocess

    from airssys_plugins.authoring.build import find_tool

    src, out = tmp / "nothing.wat", tmp / "nothing-built.wasm"
    src.write_text("(component (core module $m) (core instance (instantiate $m)))")
    subprocess.run([find_tool("wasm-tools"), "parse", str(src), "-o", str(out)], check=True)
    return out.read_bytes()
