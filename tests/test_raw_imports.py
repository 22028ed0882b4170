"""The raw import route: bytes a guest passes to a host function, read from its memory.

runtime/rawimports.py rewrites the component-level type of imported functions whose
parameters hold ``list<u8>``, strings or lists of numbers (each becomes a pointer and a
length, the same core signature); runtime/callbacks.py reads them from the calling
instance's memory, found right after instantiation (runtime/guestmem.py). These tests
call the same host functions through that route and through the element-by-element path
(``rawbytes.RAW_IMPORTS`` off, the compile cache off so nothing is shared), with equal
results; hostile pointers and lengths are refused with a named error and the host lives
on; guests from every toolchain here call a host function with bytes.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pluggy
import pytest

from airssys_plugins import (
    Capabilities,
    HookCallError,
    PluginABIError,
    PluginHost,
    WasmPlugin,
    wit_binding,
)
from airssys_plugins.authoring.build import build_guest, find_tool
from airssys_plugins.contract import wit
from airssys_plugins.contract.annotations import Err, Ok, Result, u32, u64
from airssys_plugins.runtime import callbacks, plans, rawbytes
from airssys_plugins.runtime import image as _image
from airssys_plugins.runtime.image import ComponentImage
from airssys_plugins.runtime.rawimports import (
    decode_import_patch,
    encode_import_patch,
    import_patch,
)

from .raw_imports_records import Blob, Header, Request, Response

GUESTS = Path(__file__).parent / "guests"
HOST = "test:rawimports/host@1.0.0"
OPS = "test:rawimports/ops@1.0.0"
RELAY = "test:rawimports/relay@1.0.0"
RIGHTS = Capabilities(interfaces={"host"})

spec = pluggy.HookspecMarker("rawimp")


class OpsHooks:
    @spec
    @wit_binding(f"{OPS}#send")
    def send(self, data: bytes) -> u32: ...

    @spec
    @wit_binding(f"{OPS}#send-raw")
    def send_raw(self, ptr: u32, len: u32) -> u32: ...

    @spec
    @wit_binding(f"{OPS}#send-two")
    def send_two(self, tag: u32, data: bytes, more: bytes) -> u64: ...

    @spec
    @wit_binding(f"{OPS}#send-text")
    def send_text(self, text: str) -> u32: ...

    @spec
    @wit_binding(f"{OPS}#send-text-raw")
    def send_text_raw(self, ptr: u32, len: u32) -> u32: ...

    @spec
    @wit_binding(f"{OPS}#send-words")
    def send_words(self, words: list[u32]) -> u32: ...

    @spec
    @wit_binding(f"{OPS}#send-words-raw")
    def send_words_raw(self, ptr: u32, len: u32) -> u32: ...

    @spec
    @wit_binding(f"{OPS}#fetch")
    def fetch(self, n: u32) -> u32: ...

    @spec
    @wit_binding(f"{OPS}#give-back")
    def give_back(self, n: u32) -> u32: ...

    @spec
    @wit_binding(f"{OPS}#give-blob-back")
    def give_blob_back(self, n: u32) -> u32: ...

    @spec
    @wit_binding(f"{OPS}#give-maybe-back")
    def give_maybe_back(self, n: u32) -> u32: ...

    @spec
    @wit_binding(f"{OPS}#exchange-back")
    def exchange_back(self, n: u32) -> u32: ...

    @spec
    @wit_binding(f"{OPS}#exchange-raw")
    def exchange_raw(self, ptr: u32, len: u32) -> u32: ...

    @spec
    @wit_binding(f"{OPS}#nothing")
    def nothing(self, data: bytes) -> u32: ...

    @spec
    @wit_binding(f"{OPS}#grow")
    def grow(self, pages: u32) -> u32: ...


class RelayHooks:
    @spec
    @wit_binding(f"{RELAY}#send")
    def send(self, data: bytes) -> u32: ...

    @spec
    @wit_binding(f"{RELAY}#send-text")
    def send_text(self, text: str) -> u32: ...

    @spec
    @wit_binding(f"{RELAY}#give-back")
    def give_back(self, n: u32) -> u32: ...

    @spec
    @wit_binding(f"{RELAY}#give-blob-back")
    def give_blob_back(self, n: u32) -> u32: ...


#: The name give-blob returns next to its bytes: a real string, not only latin1.
BLOB_NAME = "blob ✓ naïve 𝄞 ÿ"
#: The error give-maybe(0) returns.
NOTHING = "nothing here: naïve ✓"


class Served:
    """What the host functions received, newest last; ``payload`` is what give(n) and
    the others return (``payload[:n]``, or the pattern below when None)."""

    def __init__(self) -> None:
        self.got: list[Any] = []
        self.payload: Any = None

    def give(self, n: int) -> Any:
        if self.payload is not None:
            return self.payload[:n]
        return bytes(range(256)) * (n // 256) + bytes(n % 256)

    def provide(self, host: PluginHost) -> None:
        got = self.got

        @host.provide(interface=HOST, name="take")
        def take(data: bytes) -> u32:
            got.append(data)
            return len(data)

        @host.provide(interface=HOST, name="take-two")
        def take_two(tag: u32, data: bytes, more: bytes) -> u64:
            got.append((tag, data, more))
            return (tag << 40) | (len(data) << 20) | len(more)

        @host.provide(interface=HOST, name="take-text")
        def take_text(text: str) -> u32:
            got.append(text)
            return len(text)

        @host.provide(interface=HOST, name="take-words")
        def take_words(words: list[u32]) -> u32:
            got.append(words)
            return sum(words) & 0xFFFFFFFF

        @host.provide(interface=HOST, name="give")
        def give(n: u32) -> bytes:
            got.append(n)
            return self.give(n)  # type: ignore[no-any-return]

        @host.provide(interface=HOST, name="give-blob")
        def give_blob(n: u32) -> Blob:
            return Blob(BLOB_NAME, self.give(n))

        @host.provide(interface=HOST, name="exchange")
        def exchange(req: Request) -> Result[Response, str]:
            got.append(req)
            if not req.body:
                return Err(NOTHING)
            return Ok(Response(200, [Header("x-naïve", BLOB_NAME)], self.give(len(req.body))))

        @host.provide(interface=HOST, name="give-maybe")
        def give_maybe(n: u32) -> Result[bytes | None, str]:
            return Err(NOTHING) if n == 0 else Ok(None if n == 1 else self.give(n))


Make = Callable[..., tuple[pluggy.PluginManager, WasmPlugin, Served]]


@pytest.fixture
def raw_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Names of the host functions served by the raw route, in call order."""
    calls: list[str] = []
    original = callbacks._raw_args

    def counting(instance: Any, func: Any, raw: Any, args: Any, *rest: Any) -> list[Any]:
        calls.append(func.name)
        return original(instance, func, raw, args, *rest)

    monkeypatch.setattr(callbacks, "_raw_args", counting)
    return calls


@pytest.fixture
def make(monkeypatch: pytest.MonkeyPatch) -> Iterator[Make]:
    """``make(raw, guest=..., hooks=...)``: a host with the host functions, the guest
    loaded; ``raw=False`` for the element-by-element path."""
    hosts: list[PluginHost] = []

    def make(
        raw: bool, guest: str | Path = "raw-imports", hooks: type = OpsHooks, **load: Any
    ) -> tuple[pluggy.PluginManager, WasmPlugin, Served]:
        monkeypatch.setattr(rawbytes, "RAW_IMPORTS", raw)
        monkeypatch.setattr(_image, "RAW_IMPORTS", raw)
        wasm = build_guest(GUESTS / guest) if isinstance(guest, str) else guest
        pm = pluggy.PluginManager("rawimp")
        pm.add_hookspecs(hooks)
        # without the compile cache, neither plan nor facts are shared between the routes
        host = PluginHost(pm, grants={"g": RIGHTS}, compile_cache=False)
        hosts.append(host)
        served = Served()
        served.provide(host)
        plugin = host.load(wasm, name="g", requests=RIGHTS, **load)
        return pm, plugin, served

    yield make
    for host in hosts:
        host.close()


SIZES = [0, 1, 2048, 1 << 20]


@pytest.mark.parametrize("size", SIZES, ids=["0B", "1B", "2KiB", "1MiB"])
def test_bytes_reach_the_host_function_alike_both_ways(
    make: Make, raw_calls: list[str], size: int
) -> None:
    """take(data) and take-two(tag, data, more) receive the same random bytes through the
    raw route as element by element, and answer the same."""
    data, more = os.urandom(size), os.urandom(size // 3 + 1)
    answers = []
    for raw in (True, False):
        pm, _, served = make(raw)
        calls_before = len(raw_calls)
        assert pm.hook.send(data=data) == [size]
        assert served.got[-1] == data
        answers.append(pm.hook.send_two(tag=7, data=data, more=more))
        assert served.got[-1] == (7, data, more)
        assert type(served.got[-1][1]) is bytes
        assert len(raw_calls) - calls_before == (2 if raw else 0)
    assert answers[0] == answers[1]


@pytest.mark.parametrize(
    "text", ["", "a", "naïve ✓ 𝄞 " * 300, "x" * (1 << 20)], ids=["empty", "one", "mixed", "1MiB"]
)
def test_strings_reach_the_host_function_alike_both_ways(
    make: Make, raw_calls: list[str], text: str
) -> None:
    """take-text(text): UTF-8 read from guest memory, the same str as wasmtime lifts."""
    for raw in (True, False):
        pm, _, served = make(raw)
        assert pm.hook.send_text(text=text) == [len(text)]
        assert served.got[-1] == text
    assert raw_calls == ["take-text"]


def test_lists_of_numbers_reach_the_host_function_alike_both_ways(
    make: Make, raw_calls: list[str]
) -> None:
    """take-words(list<u32>): the same ints as element by element, at every length."""
    for words in ([], [0], [1, 2**32 - 1, 12345] * 1000, list(range(70_000))):
        results = []
        for raw in (True, False):
            pm, _, served = make(raw)
            results.append(pm.hook.send_words(words=words))
            assert served.got[-1] == words
        assert results[0] == results[1]
    assert raw_calls.count("take-words") == 4


def test_the_plan_rewrites_parameters_and_byte_results() -> None:
    """Lists and strings among parameters become a pointer and a length; a parameter
    holding a string inside (exchange's request) makes every parameter pass as its flat
    core values; every list<u8> of a result (top level, in a record, in a result's
    option) becomes a string; the host still sees every import as the guest's WIT
    declares it."""
    wasm = build_guest(GUESTS / "raw-imports").read_bytes()
    patch = import_patch(wasm)
    assert patch is not None
    by_name = {f.function: f for f in patch.functions}
    assert set(by_name) == {
        "take", "take-two", "take-text", "take-words", "give", "give-blob", "give-maybe",
        "exchange",
    }  # fmt: skip
    assert {n: f.result for n, f in by_name.items() if f.result is not None} == {
        "give": True,
        "give-blob": ("record", None, True),
        "give-maybe": ("result", ("option", True), None),
        "exchange": ("result", ("record", None, None, True), None),
    }
    exchange = by_name["exchange"]
    assert exchange.core == (0x7F,) * 8  # method, url, headers, body: a pointer, a length
    assert exchange.arity == 8
    assert [f.function for f in patch.functions if f.types is not None] == ["exchange"]
    assert not by_name["give"].raw_params
    assert decode_import_patch(*encode_import_patch(patch)) == patch
    image = ComponentImage.load("g", wasm, cache=False)
    assert set(image.raw_imports) == {(HOST, f.function) for f in patch.functions}
    assert callbacks.RawImports(image.raw_imports).needs_memory
    only_results = {k: v for k, v in image.raw_imports.items() if k[1].startswith("give")}
    assert not callbacks.RawImports(only_results).needs_memory
    sigs = image.imported_functions()
    two = sigs[(HOST, "take-two")]
    assert [n for n, _ in two.params] == ["tag", "data", "more"]
    assert two.param_types == (
        wit.Prim("u32"),
        wit.ListT(wit.Prim("u8")),
        wit.ListT(wit.Prim("u8")),
    )
    assert sigs[(HOST, "take-text")].param_types == (wit.Prim("string"),)
    assert sigs[(HOST, "give")].result == wit.ListT(wit.Prim("u8"))
    blob = sigs[(HOST, "give-blob")].result
    assert isinstance(blob, wit.RecordT)
    assert blob.fields == (("name", wit.Prim("string")), ("data", wit.ListT(wit.Prim("u8"))))
    assert sigs[(HOST, "give-maybe")].result == wit.ResultT(
        wit.OptionT(wit.ListT(wit.Prim("u8"))), wit.Prim("string")
    )
    header = wit.RecordT("header", (("name", wit.Prim("string")), ("value", wit.Prim("string"))))
    request = sigs[(HOST, "exchange")].param_types
    assert request == (
        wit.RecordT("request", (
            ("method", wit.Prim("string")), ("url", wit.Prim("string")),
            ("headers", wit.ListT(header)), ("body", wit.ListT(wit.Prim("u8"))),
        )),
    )  # fmt: skip
    assert isinstance(request[0], wit.RecordT) and request[0].name == "request"  # noqa: PT018


def test_the_rewrite_is_kept_beside_the_compile_cache(private_cache: Path) -> None:
    """The first load stores the plan with its import patch; it decodes to what the
    reader decides, so a warm load rewrites the same imports without parsing."""
    data = build_guest(GUESTS / "raw-imports").read_bytes()
    image = ComponentImage.load("g", data)
    assert image.raw_imports
    plan_file = private_cache / f"{image.sha256}-r{plans.EXPORT_PLAN_VERSION}.plan"
    noted = _image._read_export_note(plan_file.read_bytes())
    assert noted is not None
    kept = noted[0]
    assert kept == rawbytes.export_tail(data)
    assert kept.imports is not None
    assert {(f.interface, f.function) for f in kept.imports.functions} == set(image.raw_imports)


@pytest.fixture
def latin1_results(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Names of the host functions whose result was written as latin1, in call order."""
    calls: list[str] = []
    original = callbacks._raw_import

    def counting(instance: Any, func: Any, nargs: int) -> Any:
        raw = original(instance, func, nargs)
        if raw is not None and raw.result is not None:
            calls.append(func.name)
        return raw

    monkeypatch.setattr(callbacks, "_raw_import", counting)
    return calls


PAYLOADS = [
    pytest.param(b"", id="empty"),
    pytest.param(b"\xff", id="one-high-byte"),
    pytest.param(bytes(range(256)), id="all-256"),
    pytest.param(b"plain ascii " * 100, id="ascii"),
    pytest.param(os.urandom(1 << 20), id="random-1MiB"),
]


@pytest.mark.parametrize("payload", PAYLOADS)
def test_bytes_a_host_function_returns_reach_the_guest_alike_both_ways(
    make: Make, latin1_results: list[str], payload: bytes
) -> None:
    """give(n) -> list<u8>: the guest hands what it got to take(), which receives exactly
    the host's bytes, through the latin1 route as element by element."""
    for raw in (True, False):
        pm, _, served = make(raw)
        served.payload = payload
        assert pm.hook.give_back(n=len(payload)) == [len(payload)]
        assert served.got[-1] == payload
    assert latin1_results == ["give"]


@pytest.mark.parametrize("size", [0, 3, 1 << 20], ids=["0B", "3B", "1MiB"])
def test_a_real_string_next_to_bytes_arrives_as_utf8(
    make: Make, latin1_results: list[str], size: int
) -> None:
    """give-blob(n) -> record { name: string, data: list<u8> }: the non-ASCII name arrives
    as the UTF-8 the guest expects (take-text reads it as UTF-8), the data byte for byte."""
    data = os.urandom(size)
    for raw in (True, False):
        pm, _, served = make(raw)
        served.payload = data
        assert pm.hook.give_blob_back(n=size) == [len(BLOB_NAME) + size]
        assert served.got[-2:] == [BLOB_NAME, data]
    assert latin1_results == ["give-blob"]


def test_bytes_none_or_an_error_come_back_as_declared(
    make: Make, latin1_results: list[str]
) -> None:
    """give-maybe(n) -> result<option<list<u8>>, string> (the shape of kv.get's and
    messaging.request's replies): ok(some(bytes)), ok(none) and err(non-ASCII text)."""
    data = os.urandom(70_000)
    for raw in (True, False):
        pm, _, served = make(raw)
        served.payload = data
        assert pm.hook.give_maybe_back(n=len(data)) == [len(data)]
        assert served.got[-1] == data
        assert pm.hook.give_maybe_back(n=1) == [0xFFFF_FFFF]
        assert pm.hook.give_maybe_back(n=0) == [len(NOTHING)]
        assert served.got[-1] == NOTHING
    assert latin1_results == ["give-maybe"] * 3


@pytest.mark.parametrize("size", [0, 5, 1 << 20], ids=["error", "5B", "1MiB"])
def test_strings_inside_the_parameters_are_read_back_as_utf8(
    make: Make, latin1_results: list[str], size: int
) -> None:
    """exchange(req: request) -> result<response, string>, the shape of http.fetch: the
    request's non-ASCII url and header reach the host as the guest's strings; the
    response's body and header value reach the guest exactly (an error string when the
    body is empty). The request passes as its flat core values, read by the host, so no
    string is left for wasmtime to lift as latin1 and the result is written as latin1."""
    data = os.urandom(size)
    for raw in (True, False):
        pm, _, served = make(raw)
        served.payload = data
        want = len(NOTHING) if size == 0 else size + len(BLOB_NAME)
        assert pm.hook.exchange_back(n=size) == [want]
        req = served.got[-2 if size == 0 else -3]
        assert req == Request("GET", "https://ex.ample/naïve/✓", [Header("accept-ünï", "✓")],
                              bytes(size))  # fmt: skip
        assert served.got[-1:] == [NOTHING] if size == 0 else served.got[-2:] == [data, BLOB_NAME]
    assert latin1_results == ["exchange"]


def test_a_string_inside_the_parameters_that_is_not_utf8_is_refused(make: Make) -> None:
    """A parameter's string that is not UTF-8 traps the call with a PluginABIError
    naming the plugin (raw: the host function and the argument, as the host reads it;
    else the hook, as wasmtime refuses it); the host function never runs, and the next
    call, on a fresh instance, gets the guest's strings."""
    for raw in (True, False):
        pm, _, served = make(raw)
        # (the second call's argument is left at the guest heap's start, 1024)
        pm.hook.send(data=b"\xff\xfe\xfd")
        pm.hook.send(data=b"\xff\xfe\xfd")
        # (raw: read by the host; element by element: lifted by wasmtime, which refuses it)
        message = (
            r"plugin 'g' called host function .*#exchange with bad arguments \(invalid UTF-8: "
            r"argument 'req'"
            if raw
            else r"plugin 'g' trapped in hook 'exchange_raw' .*UTF-8"
        )
        with pytest.raises(PluginABIError, match=message):
            pm.hook.exchange_raw(ptr=1024, len=3)
        assert served.got == [b"\xff\xfe\xfd"] * 2  # exchange never ran
        pm.hook.send(data="naïve".encode())
        pm.hook.send(data="naïve".encode())
        assert pm.hook.exchange_raw(ptr=1024, len=6) == [1]  # err: the request had no body
        assert served.got[-1].url == "naïve"


@pytest.mark.parametrize("offset", [1, 3], ids=["odd", "three"])
def test_a_string_inside_the_parameters_may_sit_at_any_address(
    make: Make, latin1_results: list[str], offset: int
) -> None:
    """A guest's UTF-8 strings need not be aligned (jco's flavorful fixture passes a list
    of strings from odd addresses). wasmtime lifts a latin1+utf16 string only from an
    address aligned to 2; the host reads the request's strings itself, so a url at an odd
    address reaches the host, and the result is written as latin1."""
    for raw in (True, False):
        pm, _, served = make(raw)
        # (the second call's argument is left at the guest heap's start, 1024)
        pm.hook.send(data=b"xyzna\xc3\xafve")
        pm.hook.send(data=b"xyzna\xc3\xafve")
        assert pm.hook.exchange_raw(ptr=1024 + offset, len=9 - offset) == [1]
        assert served.got[-1].url == "xyznaïve"[offset:]
    assert latin1_results == ["exchange"]


def test_byte_like_results_and_bad_results_fail_alike_both_ways(make: Make) -> None:
    """A bytearray or memoryview result is written as its bytes; a str where bytes are
    declared, or a name that is not valid Unicode, fails the call with the same named
    error both ways, and the plugin answers the next call."""
    for raw in (True, False):
        pm, _, served = make(raw)
        for value in (bytearray(b"\x00\x80\xff"), memoryview(b"\x01\xfe")):
            served.payload = value
            assert pm.hook.give_back(n=3) == [len(bytes(value))]
            assert served.got[-1] == bytes(value)
        errors = []
        served.payload = "not bytes"
        with pytest.raises(HookCallError, match="host function give returned 'not bytes'") as exc:
            pm.hook.give_back(n=9)
        errors.append(type(exc.value))
        served.payload = b"ok"
        assert pm.hook.give_back(n=2) == [2]
    assert errors[0] is errors[-1]


def test_a_bad_string_next_to_bytes_fails_alike_both_ways(
    make: Make, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A lone surrogate in a string of a latin1 result is refused, named, both ways."""
    monkeypatch.setattr(__name__ + ".BLOB_NAME", "bad \udc80")
    for raw in (True, False):
        pm, _, _ = make(raw)
        with pytest.raises(HookCallError, match=r"host function give-blob returned .*Unicode"):
            pm.hook.give_blob_back(n=4)


def test_a_per_call_instance_gets_its_bytes_as_latin1(
    make: Make, latin1_results: list[str]
) -> None:
    """isolation="per-call": every call's fresh instance gets give's bytes exactly."""
    pm, _, served = make(True, isolation="per-call")
    for k in range(4):
        served.payload = os.urandom(65536 + k)
        assert pm.hook.give_back(n=65536 + k) == [65536 + k]
        assert served.got[-1] == served.payload
    assert latin1_results == ["give"] * 4


def test_a_component_not_rewritten_keeps_the_element_path_beside_one_rewritten(
    latin1_results: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """One host, one host function, two plugins importing it: the one loaded without raw
    imports is answered element by element, the other as latin1 (chosen per caller)."""
    pm = pluggy.PluginManager("rawimp")
    pm.add_hookspecs(OpsHooks)
    with PluginHost(pm, grants={"slow": RIGHTS, "fast": RIGHTS}, compile_cache=False) as host:
        served = Served()
        served.provide(host)
        wasm = build_guest(GUESTS / "raw-imports")
        for name, raw in (("slow", False), ("fast", True)):
            monkeypatch.setattr(rawbytes, "RAW_IMPORTS", raw)
            monkeypatch.setattr(_image, "RAW_IMPORTS", raw)
            host.load(wasm, name=name, requests=RIGHTS)
        served.payload = os.urandom(1 << 16)
        assert pm.hook.give_back(n=1 << 16) == [1 << 16] * 2
        assert served.got == [1 << 16, served.payload] * 2
    assert latin1_results == ["give"]


def test_the_switch_off_in_a_new_process_keeps_results_element_by_element(
    tmp_path: Path,
) -> None:
    """AIRSSYS_PLUGINS_NO_RAW_IMPORTS=1 in the environment: nothing is rewritten, and
    give's 1 MiB of random bytes and give-blob's string still arrive exactly."""
    script = tmp_path / "off.py"
    script.write_text(
        "import os, pluggy\n"
        "from airssys_plugins import PluginHost\n"
        "from airssys_plugins.authoring.build import build_guest\n"
        "from tests.test_raw_imports import BLOB_NAME, GUESTS, RIGHTS, OpsHooks, Served\n"
        "pm = pluggy.PluginManager('rawimp'); pm.add_hookspecs(OpsHooks)\n"
        "host = PluginHost(pm, grants={'g': RIGHTS}, compile_cache=False)\n"
        "served = Served(); served.provide(host)\n"
        "plugin = host.load(build_guest(GUESTS / 'raw-imports'), name='g', requests=RIGHTS)\n"
        "assert not plugin.image.raw_imports\n"
        "served.payload = os.urandom(1 << 20)\n"
        "assert pm.hook.give_back(n=1 << 20) == [1 << 20]\n"
        "assert served.got[-1] == served.payload\n"
        "assert pm.hook.give_blob_back(n=9) == [len(BLOB_NAME) + 9]\n"
        "assert served.got[-2:] == [BLOB_NAME, served.payload[:9]]\n"
        "print('ok')\n"
    )
    root = Path(__file__).parent.parent
    env = {**os.environ, "AIRSSYS_PLUGINS_NO_RAW_IMPORTS": "1", "PYTHONPATH": str(root)}
    out = subprocess.run(
        [sys.executable, str(script)],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip() == "ok"


def test_componentize_py_would_trap_on_the_shrink(
    make: Make, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Why componentize-py components keep per-byte results: with the rewrite forced,
    wasmtime's shrink of the block a non-ASCII latin1 string was written into calls its
    cabi_realloc with an old pointer, which it refuses, and the call traps (ASCII bytes,
    not shrunk, pass). If this starts passing, NO_SHRINK may be revisited."""
    from airssys_plugins import PluginTrap
    from airssys_plugins.runtime import rawimports

    monkeypatch.setattr(rawimports, "NO_SHRINK", ())
    wasm = build_guest(GUESTS / "raw-imports-py")
    plan = rawimports.import_patch(wasm.read_bytes())
    assert plan is not None
    assert {f.function for f in plan.functions if f.result is not None} == {"give", "give-blob"}
    pm, _, served = make(True, wasm, RelayHooks)
    served.payload = b"ascii only"
    assert pm.hook.give_back(n=10) == [10]
    assert served.got[-1] == b"ascii only"
    served.payload = b"\xff\x00\x80"
    with pytest.raises(PluginTrap, match="cabi_realloc"):
        pm.hook.give_back(n=3)


HOSTILE = [
    pytest.param(1 << 20, 16, id="past-the-memory"),
    pytest.param(0, 0xFFFF_FFF0, id="length-near-4GiB"),
    pytest.param(0xFFFF_FF00, 0x200, id="ptr-plus-len-overflows"),
    pytest.param(0xFFFF_FFFF, 1, id="last-byte-of-4GiB"),
]


@pytest.mark.parametrize(("ptr", "length"), HOSTILE)
def test_an_out_of_bounds_argument_is_refused(
    make: Make, raw_calls: list[str], ptr: int, length: int
) -> None:
    """A guest passing a pointer and length outside its memory traps with PluginABIError
    naming the plugin and the host function; the host function never runs; the next
    call gets a fresh instance."""
    pm, _, served = make(True)
    with pytest.raises(PluginABIError, match=r"plugin 'g' called host function .*#take ") as exc:
        pm.hook.send_raw(ptr=ptr, len=length)
    assert exc.value.reason == "out-of-bounds pointer"
    assert exc.value.hook == "send_raw"
    assert served.got == []
    assert pm.hook.send(data=b"still alive") == [11]


def test_memory_grown_before_the_call_is_read(make: Make) -> None:
    """The known memory size is a lower bound: bytes in pages the guest grew since are
    read; one byte past the grown memory is refused."""
    pm, _, served = make(True)
    before = pm.hook.grow(pages=4)[0]
    assert before > 0
    top = (before + 4) << 16
    assert pm.hook.send_raw(ptr=top - 65536, len=65536) == [65536]
    assert served.got[-1] == bytes(65536)
    with pytest.raises(PluginABIError, match="outside the guest's memory"):
        pm.hook.send_raw(ptr=top - 10, len=11)


def test_invalid_utf8_and_misaligned_lists_are_refused(make: Make) -> None:
    """A string that is not UTF-8, a list<u32> at an odd address: PluginABIError with
    wasmtime's reasons."""
    pm, _, served = make(True)
    # The first call's argument lands after the blocks the memory probe took at
    # instantiation (the guest's heap is reset by a post-return); the second call's is
    # left at the heap's start (1024) after the call.
    pm.hook.send(data=b"\xff\xfe\xfd")
    pm.hook.send(data=b"\xff\xfe\xfd")
    with pytest.raises(PluginABIError, match="not valid UTF-8") as exc:
        pm.hook.send_text_raw(ptr=1024, len=3)
    assert exc.value.reason == "invalid UTF-8"
    assert served.got == [b"\xff\xfe\xfd"] * 2  # take-text never ran
    pm, _, _ = make(True)  # a new plugin: the first is held back after its failure
    with pytest.raises(PluginABIError, match="not aligned") as exc:
        pm.hook.send_words_raw(ptr=1025, len=2)
    assert exc.value.reason == "misaligned pointer"
    assert pm.hook.send_words(words=[1, 2]) == [3]


def test_fresh_instances_per_call_find_their_memory(make: Make, raw_calls: list[str]) -> None:
    """isolation="per-call": every call runs on a fresh instance, prepared ahead; each
    one's memory is found before the guest runs, so each call's bytes arrive raw."""
    pm, _, served = make(True, isolation="per-call")
    for k in range(4):
        data = os.urandom(65536 + k)
        assert pm.hook.send(data=data) == [len(data)]
        assert served.got[-1] == data
    assert raw_calls == ["take"] * 4


def test_without_raw_imports_the_same_guest_passes_element_by_element(
    make: Make, raw_calls: list[str]
) -> None:
    """The switch leaves every import as given (the fallback)."""
    pm, _, served = make(False)
    assert pm.hook.send(data=b"abc") == [3]
    assert served.got == [b"abc"]
    assert raw_calls == []


# ------------------------------------------------------------------ every toolchain


TOOLCHAINS = [
    pytest.param("raw-imports-py", id="componentize-py"),
    pytest.param("raw-imports-c", id="c"),
    pytest.param("raw-imports-rust", id="rust"),
    # jco lowers the imports inside an inner component: rewritten there and outside alike
    pytest.param("raw-imports-js", id="jco"),
]


@pytest.mark.parametrize("guest", TOOLCHAINS)
def test_guests_of_every_toolchain_pass_bytes_to_the_host(
    make: Make, raw_calls: list[str], latin1_results: list[str], guest: str
) -> None:
    """A guest built by each toolchain calls take(list<u8>) and take-text(string): the
    same values reach the host through the raw route as element by element (jco's
    nested layout: the inner component's imports and the outer one's are rewritten).
    It gets give(n)'s bytes (1 MiB random, all 256 values, none) and give-blob's real
    string next to bytes exactly, as latin1, and hands them back to take."""
    wasm = build_guest(GUESTS / guest)
    plan = rawbytes.export_tail(wasm.read_bytes())
    assert plan is not None
    assert plan.imports is not None
    functions = {f.function: f for f in plan.imports.functions}
    # componentize-py's cabi_realloc cannot shrink the block wasmtime writes a latin1
    # string into: its results stay element by element
    latin1 = guest != "raw-imports-py"
    assert (
        set(functions) == {"take", "take-text", "give", "give-blob"}
        if latin1
        else {"take", "take-text"}
    )
    if latin1:
        assert functions["give"].result is True
        assert functions["give-blob"].result == ("record", None, True)
    assert plans.decode_export_plan(plans.encode_export_plan(plan)) == plan
    data = os.urandom(1 << 20)
    text = "naïve ✓ " * 5000
    for raw in (True, False):
        pm, _, served = make(raw, wasm, RelayHooks)
        assert pm.hook.send(data=data) == [len(data)]
        assert served.got[-1] == data
        assert pm.hook.send_text(text=text) == [len(text)]
        assert served.got[-1] == text
        for payload in (data, bytes(range(256)), b""):
            served.payload = payload
            assert pm.hook.give_back(n=len(payload)) == [len(payload)]
            assert served.got[-1] == payload
        served.payload = data
        assert pm.hook.give_blob_back(n=1000) == [len(BLOB_NAME) + 1000]
        assert served.got[-2:] == [BLOB_NAME, data[:1000]]
    assert raw_calls == ["take", "take-text"] + ["take"] * 3 + ["take-text", "take"]
    assert latin1_results == (["give"] * 3 + ["give-blob"] if latin1 else [])


# ------------------------------------------------------------------ built-in host functions


def test_messaging_publish_takes_a_large_payload_raw(
    raw_calls: list[str], tmp_path_factory: pytest.TempPathFactory
) -> None:
    """The built-in messaging.publish(topic, payload) with 1 MiB of random bytes: the
    echoing subscriber (tests/test_messaging.py, its allocator made to grow the memory)
    publishes what it got, through the raw route; the Python subscriber receives exactly
    those bytes."""
    from .demo import DemoHooks
    from .test_messaging import RIGHTS as MESSAGING
    from .test_messaging import _collect, _drain, subscriber_source

    pm = pluggy.PluginManager("demo")
    pm.add_hookspecs(DemoHooks)
    with PluginHost(pm, package="demo:hooks@1.0.0", grants={"echo": MESSAGING}) as host:
        src = subscriber_source(
            tmp_path_factory.mktemp("pub"), host.host_wit()["airssys:host@0.1.0"]
        )
        wat = (src / "guest.wat").read_text()
        bump = "(local.set $p (global.get $bump))"
        assert bump in wat
        grow = (
            "(drop (memory.grow (i32.add (i32.shr_u (local.get 3) (i32.const 16)) (i32.const 1))))"
        )
        (src / "guest.wat").write_text(wat.replace(bump, bump + grow))
        wasm = build_guest(src)
        host.load(wasm, name="echo", requests=MESSAGING)
        seen = _collect(host, "seen")
        payload = os.urandom(1 << 20)
        host.publish("work", payload)
        assert _drain(seen, 1) == [("seen", payload)]
        assert raw_calls == ["publish"]


def test_a_messaging_request_reply_reaches_the_guest_as_latin1(
    latin1_results: list[str], tmp_path_factory: pytest.TempPathFactory
) -> None:
    """The built-in messaging.request(topic, payload, timeout) -> result<list<u8>,
    string>: a Python subscriber's 1 MiB random reply reaches the requesting guest (the
    echoing subscriber of tests/test_messaging.py, its allocator made to align, grow the
    memory and move blocks as cabi_realloc must) as latin1, byte for byte; the guest
    answers with it."""
    from .demo import DemoHooks
    from .test_messaging import RIGHTS as MESSAGING
    from .test_messaging import subscriber_source

    pm = pluggy.PluginManager("demo")
    pm.add_hookspecs(DemoHooks)
    with PluginHost(pm, package="demo:hooks@1.0.0", grants={"echo": MESSAGING}) as host:
        src = subscriber_source(
            tmp_path_factory.mktemp("req"), host.host_wit()["airssys:host@0.1.0"]
        )
        wat = (src / "guest.wat").read_text()
        bump = "(local.set $p (global.get $bump))"
        end = "(global.set $bump (i32.add (local.get $p) (local.get 3)))"
        assert bump in wat
        assert end in wat
        aligned = (
            "(local.set $p (i32.and (i32.add (global.get $bump) (i32.const 7)) (i32.const -8)))"
        )
        grow = (
            "(drop (memory.grow (i32.add (i32.shr_u (local.get 3) (i32.const 16)) (i32.const 1))))"
        )
        copy = "(if (local.get 0) (then (memory.copy (local.get $p) (local.get 0) (local.get 3))))"
        wat = wat.replace(bump, aligned + grow).replace(end, end + copy)
        (src / "guest.wat").write_text(wat)
        host.load(build_guest(src), name="echo", requests=MESSAGING)
        reply = os.urandom(1 << 20)
        host.subscribe("svc", lambda topic, payload: reply)
        assert host.request("work", b"R" + b"x" * 10) == reply
        assert latin1_results == ["request"]


# ------------------------------------------------------------------ what the rewrite declines

_DECLINED = """(component
  (type $host (instance
    (type $l (list u8))
    (export "take" (func (param "data" $l) (result u32)))
    (export "take-text" (func (param "text" string) (result u32)))))
  (import "test:rawimports/host@1.0.0" (instance $h (type $host)))
  (import "root-take" (func $root (param "data" (list u8)) (result u32)))
  (core module $m
    (import "h" "take" (func (param i32 i32) (result i32)))
    (import "h" "take-text" (func (param i32 i32) (result i32)))
    (import "h" "root" (func (param i32 i32) (result i32)))
    (memory (export "memory") 1)
    (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32) i32.const 1024))
  (core module $mem (memory (export "memory") 1))
  (core instance $mi (instantiate $mem))
  (alias core export $mi "memory" (core memory $memory))
  (alias export $h "take" (func $take))
  (alias export $h "take-text" (func $take-text))
  (core func $take-lowered (canon lower (func $take) (memory $memory)))
  (core func $text-lowered (canon lower (func $take-text) (memory $memory) string-encoding=__ENC__))
  (core func $root-lowered (canon lower (func $root) (memory $memory)))
  (core instance $args (export "take" (func $take-lowered)) (export "take-text" (func $text-lowered))
    (export "root" (func $root-lowered)))
  (core instance $i (instantiate $m (with "h" (instance $args)))))
"""


@pytest.mark.parametrize(
    ("encoding", "rewritten"),
    [("utf8", {"take", "take-text"}), ("utf16", set()), ("latin1+utf16", set())],
)
def test_strings_lowered_otherwise_than_utf8_and_root_imports_are_left_alone(
    encoding: str, rewritten: set[str]
) -> None:
    """A string lowered as UTF-16 or latin1 is not read as UTF-8: its interface keeps
    its types (all of them, one instance type); a function imported at the root is never
    rewritten; what is rewritten still validates."""
    import wasmtime
    from wasmtime.component import Component

    data = wasmtime.wat2wasm(_DECLINED.replace("__ENC__", encoding))
    patch = import_patch(data)
    assert ({f.function for f in patch.functions} if patch else set()) == rewritten
    if patch is not None:
        Component(wasmtime.Engine(), patch.apply(data))


def test_the_reader_declines_any_damaged_binary() -> None:
    """Every truncation and many byte flips of a real component: import_patch returns a
    patch or None, never raises."""
    data = build_guest(GUESTS / "raw-imports").read_bytes()
    for cut in range(0, len(data), max(1, len(data) // 400)):
        import_patch(data[:cut])
    for k in range(8, len(data), max(1, len(data) // 400)):
        import_patch(data[:k] + bytes([data[k] ^ 0x5A]) + data[k + 1 :])


def test_inspect_shows_rewritten_imports_as_declared(tmp_path: Path) -> None:
    """``airssys-plugins inspect`` (describe_component) shows the component's imports as
    its WIT declares them, not as the raw import route rewrote them."""
    from airssys_plugins.runtime.describe import describe_component

    wasm = tmp_path / "g.wasm"
    wasm.write_bytes(build_guest(GUESTS / "raw-imports").read_bytes())
    info = describe_component(wasm, cache=False)
    [host] = [i for i in info.imports if i.name == HOST]
    funcs = {f.name: f.func for f in host.items}
    two = funcs["take-two"]
    assert two is not None
    assert [n for n, _ in two.params] == ["tag", "data", "more"]
    assert two.param_types[1] == wit.ListT(wit.Prim("u8"))
    assert funcs["take-text"] is not None
    assert funcs["take-text"].param_types == (wit.Prim("string"),)
    blob = funcs["give-blob"]  # its list<u8> result field crosses as a latin1 string
    assert blob is not None
    assert isinstance(blob.result, wit.RecordT)
    assert blob.result.fields[1] == ("data", wit.ListT(wit.Prim("u8")))


def test_config_is_left_as_given_and_log_is_rewritten() -> None:
    """The built-in ``config`` takes one short string: a component importing it keeps its
    types (no memory to find at every instantiation for it). ``log`` is rewritten to its
    flat values, since its ``list<field>`` is the guest's to size (a componentize-py guest
    importing log, config, kv and http)."""
    from airssys_plugins.runtime.rawimports import LEFT_AS_GIVEN, import_patch

    assert LEFT_AS_GIVEN == ("airssys:host/config@",)
    patch = import_patch(build_guest(GUESTS / "probe").read_bytes())
    assert patch is not None
    rewritten = {(f.interface, f.function) for f in patch.functions}
    assert not {i for i, _ in rewritten if i.startswith(LEFT_AS_GIVEN)}
    # (http's fetch takes a record, log a list of records: every parameter as its flat
    # values; componentize-py's results stay as given, see NO_SHRINK)
    assert rewritten == {("airssys:host/kv@0.1.0", f) for f in ("delete", "get", "keys", "set")} | {
        ("airssys:host/http@0.1.0", "fetch"),
        ("airssys:host/log@0.1.0", "log"),
    }
    assert all(f.result is None for f in patch.functions)
    flat = {f.function for f in patch.functions if f.types is not None}
    assert flat == {"fetch", "log"}


# ------------------------------------------------------------------ results the rewrite declines

_RESULTS = """(component
  (type $host (instance
    (type $l (list u8))
    (type $rec (record (field "name" string) (field "data" $l)))
    (export "blob" (type $blob (eq $rec)))
    (type $tags (list string))
    (export "give" (func (param "n" u32) (result $l)))
    (export "give-blob" (func (param "n" u32) (result $blob)))
    (export "give-tagged" (func (param "tags" $tags) (result $l)))
    (export "give-utf16" (func (param "n" u32) (result $l)))
    __PUT_TYPE__))
  (import "test:rawimports/host@1.0.0" (instance $h (type $host)))
  __ALIAS__
  (core module $libc
    (memory (export "memory") 1)
    (func (export "realloc") (param i32 i32 i32 i32) (result i32) i32.const 1024))
  (core instance $li (instantiate $libc))
  (alias core export $li "memory" (core memory $memory))
  (alias core export $li "realloc" (core func $realloc))
  (alias export $h "give" (func $give))
  (alias export $h "give-blob" (func $give-blob))
  (alias export $h "give-tagged" (func $give-tagged))
  (alias export $h "give-utf16" (func $give-utf16))
  (core func $give-l (canon lower (func $give) (memory $memory) (realloc $realloc)))
  (core func $blob-l (canon lower (func $give-blob) (memory $memory) (realloc $realloc)))
  (core func $tagged-l (canon lower (func $give-tagged) (memory $memory) (realloc $realloc)))
  (core func $utf16-l
    (canon lower (func $give-utf16) (memory $memory) (realloc $realloc) string-encoding=utf16))
  __PUT_LOWER__
  (core module $m
    (import "h" "give" (func (param i32 i32)))
    (import "h" "give-blob" (func (param i32 i32)))
    (import "h" "give-tagged" (func (param i32 i32 i32)))
    (import "h" "give-utf16" (func (param i32 i32)))
    __PUT_IMPORT__)
  (core instance $args (export "give" (func $give-l)) (export "give-blob" (func $blob-l))
    (export "give-tagged" (func $tagged-l)) (export "give-utf16" (func $utf16-l)) __PUT_ARG__)
  (core instance $i (instantiate $m (with "h" (instance $args)))))
"""

_PUT = {
    "__PUT_TYPE__": '(export "put-blob" (func (param "b" $blob) (result u32)))',
    "__PUT_LOWER__": '(alias export $h "put-blob" (func $put-blob))'
    " (core func $put-l (canon lower (func $put-blob) (memory $memory)))",
    "__PUT_IMPORT__": '(import "h" "put-blob" (func (param i32 i32 i32 i32) (result i32)))',
    "__PUT_ARG__": '(export "put-blob" (func $put-l))',
}
_ALIAS = '(alias export $h "blob" (type $outer-blob))'


@pytest.mark.parametrize(
    ("variant", "rewritten", "raw"),
    [
        pytest.param("plain", {"give", "give-blob", "give-tagged"}, set(), id="plain"),
        pytest.param("put", {"give", "give-tagged"}, {"put-blob"}, id="record-also-a-parameter"),
        pytest.param("alias", {"give", "give-tagged"}, set(), id="record-named-outside"),
    ],
)
def test_results_are_rewritten_only_where_nothing_else_sees_the_change(
    variant: str, rewritten: set[str], raw: set[str]
) -> None:
    """A list<u8> result becomes a string only when its lower allows latin1 (not with
    string-encoding=utf16) and the types on its path are named by rewritten results
    alone (not by a parameter, not outside the instance type: put-blob's record is not
    rewritten in place, its parameters pass as their flat values), and no string
    inside a parameter is lifted by wasmtime (give-tagged's list<string> passes as its
    flat values, read by the host); what is rewritten validates and its lowers say
    latin1+utf16."""
    import wasmtime
    from wasmtime.component import Component

    text = _RESULTS
    for key, value in _PUT.items():
        text = text.replace(key, value if variant == "put" else "")
    text = text.replace("__ALIAS__", _ALIAS if variant == "alias" else "")
    data = wasmtime.wat2wasm(text)
    patch = import_patch(data)
    assert patch is not None
    assert {f.function for f in patch.functions if f.result is not None} == rewritten
    assert {f.function for f in patch.functions} == rewritten | raw
    assert {f.function for f in patch.functions if f.types is not None} == {"give-tagged"} | raw
    new = patch.apply(data)
    Component(wasmtime.Engine(), new)
    printed = subprocess.run(
        [find_tool("wasm-tools"), "print", "-"], input=new, capture_output=True, check=True
    ).stdout.decode()
    latin1 = [line for line in printed.splitlines() if "string-encoding=latin1+utf16" in line]
    assert len(latin1) == len(rewritten)
    assert all(any(f"${name})" in line for name in rewritten) for line in latin1)
