"""Bytes between a guest and a host function: the raw import routes against element by element.

Run from the repository root::

    python bench/bench_host_bytes.py            # about 25 s
    python bench/bench_host_bytes.py --quick    # smoke run

The guest (tests/guests/raw-imports) has a hook ``send(data: list<u8>) -> u32`` that
calls the host function ``take(data: list<u8>) -> u32`` with its argument, and a hook
``nothing`` with the same argument that calls nothing. Rows, in one process, medians,
1 MiB of ``os.urandom`` bytes:

* ``nothing``: the hook alone (the argument goes in by the raw export route): the base;
* ``send``, raw import route: the host function reads the bytes from guest memory;
* ``send``, element by element (``AIRSSYS_PLUGINS_NO_RAW_IMPORTS``' path, here switched
  off in-process for a second host without the compile cache);
* ``bytes(bytearray(x))``: a bare copy of 1 MiB (the floor of one copy).

The other direction, a host function returning bytes: the hook ``fetch(n: u32) -> u32``
calls ``give(n) -> list<u8>``, which returns 1 MiB of ``os.urandom`` bytes (the hook
``grow(0)``, calling nothing, is its base):

* ``fetch``, latin1 route: the result crosses as a latin1 string (:mod:`rawimports`);
* ``fetch``, element by element: one value per byte, as before;
* ``latin1 -> UTF-8``: ``data.decode("latin-1").encode("utf-8")``, the part of the
  route's cost on our side (the C API takes strings as UTF-8).

An ``http.fetch``-shaped host function, ``fetch(req: request) -> result<response,
string>`` (the request a record of method, url, a list of header records and a
``list<u8>`` body; the response a record of status, headers and a body): a second guest,
written below as WAT, has a hook ``fetch-back(n: u32) -> u32`` that builds a request
with a non-ASCII url and header and an ``n``-byte body in its memory, calls ``fetch``
and returns the response body's length. Rows, the fast route (the request's parameters
read raw by the host, the response's body written as latin1) against element by element,
in the same run: a request body of 1 MiB and an empty response, an empty request and a
1 MiB random response, both, and both empty (the base).

``send - nothing`` is what passing the bytes to the host costs. Two more rows time what
the route costs each new instance (its memory is found right after instantiation): a
discard + instantiate of the same guest with its imports rewritten, and as given (with
the raw exports either way). Timings are reported, never asserted; ``--json PATH``
writes the numbers.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
from pathlib import Path
from typing import Any

import pluggy

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchlib import median_ms  # noqa: E402

from airssys_plugins import Capabilities, PluginHost, wit_binding  # noqa: E402
from airssys_plugins.authoring.build import build_guest  # noqa: E402
from airssys_plugins.contract.annotations import Ok, Result, u32, u64  # noqa: E402
from airssys_plugins.runtime import image as _image  # noqa: E402
from airssys_plugins.runtime import rawbytes  # noqa: E402
from tests.raw_imports_records import Blob, Header, Request, Response  # noqa: E402

GUEST = REPO / "tests" / "guests" / "raw-imports"
HOST = "test:rawimports/host@1.0.0"
OPS = "test:rawimports/ops@1.0.0"
RIGHTS = Capabilities(interfaces={"host"})
MB = 1 << 20

spec = pluggy.HookspecMarker("hostbytes")


class Hooks:
    @spec
    @wit_binding(f"{OPS}#send")
    def send(self, data: bytes) -> u32: ...

    @spec
    @wit_binding(f"{OPS}#nothing")
    def nothing(self, data: bytes) -> u32: ...

    @spec
    @wit_binding(f"{OPS}#fetch")
    def fetch(self, n: u32) -> u32: ...

    @spec
    @wit_binding(f"{OPS}#grow")
    def grow(self, pages: u32) -> u32: ...


#: What give(n) returns a prefix of (set by main()).
GIVEN = b""


def make_host(raw: bool) -> tuple[pluggy.PluginManager, PluginHost]:
    """A host serving ``take`` with the guest loaded; ``raw=False``: its imports left as
    given (the element-by-element path)."""
    rawbytes.RAW_IMPORTS = raw  # type: ignore[misc]
    _image.RAW_IMPORTS = raw  # type: ignore[misc]
    pm = pluggy.PluginManager("hostbytes")
    pm.add_hookspecs(Hooks)
    host = PluginHost(pm, grants={"g": RIGHTS}, compile_cache=raw)

    @host.provide(interface=HOST, name="take")
    def take(data: bytes) -> u32:
        return len(data)

    # the guest's other imports, never called here
    @host.provide(interface=HOST, name="take-two")
    def take_two(tag: u32, data: bytes, more: bytes) -> u64:
        return 0

    @host.provide(interface=HOST, name="take-text")
    def take_text(text: str) -> u32:
        return 0

    @host.provide(interface=HOST, name="take-words")
    def take_words(words: list[u32]) -> u32:
        return 0

    @host.provide(interface=HOST, name="give")
    def give(n: u32) -> bytes:
        return GIVEN[:n]

    @host.provide(interface=HOST, name="give-blob")
    def give_blob(n: u32) -> Blob:
        return Blob("", b"")

    @host.provide(interface=HOST, name="give-maybe")
    def give_maybe(n: u32) -> Result[bytes | None, str]:
        return Ok(None)

    @host.provide(interface=HOST, name="exchange")
    def exchange(req: Request) -> Result[Response, str]:
        return Ok(Response(200, [], b""))

    host.load(build_guest(GUEST), name="g", requests=RIGHTS)
    rawbytes.RAW_IMPORTS = True  # type: ignore[misc]
    _image.RAW_IMPORTS = True  # type: ignore[misc]
    return pm, host


FETCH_HOST = "bench:hostfetch/host@1.0.0"
FETCH_OPS = "bench:hostfetch/ops@1.0.0"

_FETCH_WIT = """package bench:hostfetch@1.0.0;

interface host {
  record header { name: string, value: string }
  record request { method: string, url: string, headers: list<header>, body: list<u8> }
  record response { status: u16, headers: list<header>, body: list<u8> }
  fetch: func(req: request) -> result<response, string>;
}

interface ops {
  /// fetch(GET https://ex.ample/naïve/✓, one header, n body bytes): the response body's
  /// length (or 0xffffffff for an error)
  fetch-back: func(n: u32) -> u32;
}

world guest {
  import host;
  export ops;
}
"""

_FETCH_WAT = r""";; fetch-back(n): an http.fetch-shaped call with an n-byte body.
(module
  (import "bench:hostfetch/host@1.0.0" "fetch"
    (func $fetch (param i32 i32 i32 i32 i32 i32 i32 i32 i32)))
  (memory (export "memory") 1)
  (global $heap (mut i32) (i32.const 1024))
  (data (i32.const 512) "GET")
  (data (i32.const 520) "https://ex.ample/na\c3\afve/\e2\9c\93")
  (data (i32.const 600) "accept-\c3\bcn\c3\af")
  (data (i32.const 640) "\e2\9c\93")
  ;; the header record (name, value)
  (data (i32.const 700) "\58\02\00\00\0c\00\00\00\80\02\00\00\03\00\00\00")
  (func $realloc (export "cabi_realloc")
        (param $old i32) (param $old_size i32) (param $align i32) (param $new_size i32) (result i32)
    (local $ptr i32)
    (local.set $ptr
      (i32.and (i32.add (global.get $heap) (i32.sub (local.get $align) (i32.const 1)))
               (i32.xor (i32.sub (local.get $align) (i32.const 1)) (i32.const -1))))
    (global.set $heap (i32.add (local.get $ptr) (local.get $new_size)))
    (block $ok
      (br_if $ok (i32.le_u (global.get $heap) (i32.mul (memory.size) (i32.const 65536))))
      (if (i32.eq (i32.const -1)
            (memory.grow (i32.add (i32.shr_u (i32.sub (global.get $heap)
                                                       (i32.mul (memory.size) (i32.const 65536)))
                                             (i32.const 16))
                                  (i32.const 1))))
        (then unreachable)))
    (if (local.get $old)
      (then (memory.copy (local.get $ptr) (local.get $old)
                         (select (local.get $new_size) (local.get $old_size)
                                 (i32.lt_u (local.get $new_size) (local.get $old_size))))))
    (local.get $ptr))
  (func (export "bench:hostfetch/ops@1.0.0#fetch-back") (param $n i32) (result i32)
    (local $r i32) (local $body i32)
    (local.set $body (call $realloc (i32.const 0) (i32.const 0) (i32.const 1) (local.get $n)))
    (local.set $r (call $realloc (i32.const 0) (i32.const 0) (i32.const 4) (i32.const 24)))
    (call $fetch (i32.const 512) (i32.const 3) (i32.const 520) (i32.const 27)
      (i32.const 700) (i32.const 1) (local.get $body) (local.get $n) (local.get $r))
    ;; result<response, string>: ok: the body's length at 20
    (select (i32.const -1) (i32.load offset=20 (local.get $r)) (i32.load8_u (local.get $r))))
  (func (export "cabi_post_bench:hostfetch/ops@1.0.0#fetch-back") (param i32)
    (global.set $heap (i32.const 1024)))
)
"""


class FetchHooks:
    @spec
    @wit_binding(f"{FETCH_OPS}#fetch-back")
    def fetch_back(self, n: u32) -> u32: ...


#: The response body's length fetch() answers with (set by main()).
RESPONSE = [0]


def fetch_guest() -> Path:
    import tempfile

    src = Path(tempfile.mkdtemp(prefix="hostfetch-")) / "hostfetch"
    (src / "wit").mkdir(parents=True)
    (src / "guest.wat").write_text(_FETCH_WAT)
    (src / "wit" / "guest.wit").write_text(_FETCH_WIT)
    return build_guest(src)


def make_fetch_host(raw: bool, wasm: Path) -> tuple[pluggy.PluginManager, PluginHost, list[int]]:
    """A host serving the http.fetch-shaped ``fetch``, the second guest loaded; ``raw``
    as for :func:`make_host`. The list it returns gets each request body's length."""
    rawbytes.RAW_IMPORTS = raw  # type: ignore[misc]
    _image.RAW_IMPORTS = raw  # type: ignore[misc]
    pm = pluggy.PluginManager("hostbytes")
    pm.add_hookspecs(FetchHooks)
    host = PluginHost(pm, grants={"g": RIGHTS}, compile_cache=raw)
    seen: list[int] = []

    @host.provide(interface=FETCH_HOST, name="fetch")
    def fetch(req: Request) -> Result[Response, str]:
        seen.append(len(req.body))
        return Ok(Response(200, [Header("content-type", "application/octet-stream")],
                           GIVEN[: RESPONSE[0]]))  # fmt: skip

    host.load(wasm, name="g", requests=RIGHTS)
    rawbytes.RAW_IMPORTS = True  # type: ignore[misc]
    _image.RAW_IMPORTS = True  # type: ignore[misc]
    return pm, host, seen


def fetch_rows(rounds: int) -> dict[str, float]:
    """The http.fetch-shaped rows: (request body, response body) of 0 or 1 MiB, each by
    the fast route and element by element, in ms."""
    wasm = fetch_guest()
    fast_pm, fast_host, fast_seen = make_fetch_host(True, wasm)
    slow_pm, slow_host, slow_seen = make_fetch_host(False, wasm)
    out: dict[str, float] = {}
    try:
        for req, resp in ((0, 0), (MB, 0), (0, MB), (MB, MB)):
            RESPONSE[0] = resp
            assert fast_pm.hook.fetch_back(n=req) == [resp] == slow_pm.hook.fetch_back(n=req)
            assert fast_seen[-1] == slow_seen[-1] == req
            label = f"fetch, request {req >> 20} MiB, response {resp >> 20} MiB"
            slow_rounds = rounds if req == resp == 0 else max(3, rounds // 4)
            fast = functools.partial(fast_pm.hook.fetch_back, n=req)
            slow = functools.partial(slow_pm.hook.fetch_back, n=req)
            out[f"{label}, fast"] = median_ms(fast, rounds)
            out[f"{label}, element by element"] = median_ms(slow, slow_rounds)
    finally:
        fast_host.close()
        slow_host.close()
    return out


def instantiate_us(raw: bool, rounds: int) -> float:
    """Median discard + instantiate of the guest, in us, through the runtime layer."""
    from airssys_plugins.contract import wit
    from airssys_plugins.runtime.callbacks import HostFunc
    from airssys_plugins.runtime.sandbox import HostLinker

    u8s, u32_, text = wit.ListT(wit.Prim("u8"), py_bytes=True), wit.Prim("u32"), wit.Prim("string")
    sigs = {
        "take": wit.FuncSig((("data", u8s),), u32_),
        "take-two": wit.FuncSig((("tag", u32_), ("data", u8s), ("more", u8s)), wit.Prim("u64")),
        "take-text": wit.FuncSig((("text", text),), u32_),
        "take-words": wit.FuncSig((("words", wit.ListT(u32_)),), u32_),
        "give": wit.FuncSig((("n", u32_),), u8s),
        "give-blob": wit.FuncSig(
            (("n", u32_),), wit.RecordT("blob", (("name", text), ("data", u8s)), py=Blob)
        ),
        "give-maybe": wit.FuncSig((("n", u32_),), wit.ResultT(wit.OptionT(u8s), text)),
    }
    header = wit.RecordT("header", (("name", text), ("value", text)), py=Header)
    fields = (("method", text), ("url", text), ("headers", wit.ListT(header)), ("body", u8s))
    answer = (("status", wit.Prim("u16")), ("headers", wit.ListT(header)), ("body", u8s))
    sigs["exchange"] = wit.FuncSig(
        (("req", wit.RecordT("request", fields, py=Request)),),
        wit.ResultT(wit.RecordT("response", answer, py=Response), text),
    )
    linker = HostLinker([HostFunc(HOST, n, sig, lambda *a: 0) for n, sig in sigs.items()])
    return _instantiate_us(build_guest(GUEST).read_bytes(), raw, linker, "host", rounds)


def instantiate_log_us(raw: bool, rounds: int) -> float:
    """The same for tests/test_log_fields.py's WAT guest: no allocator, only ``log``
    imported (its memory found by the probe at address 0 when rewritten)."""
    import tempfile

    from airssys_plugins.host.builtins import builtin_function
    from airssys_plugins.runtime.callbacks import HostFunc
    from airssys_plugins.runtime.sandbox import HostLinker
    from tests.test_log_fields import build, no_allocator_wat

    log = builtin_function("airssys:host/log@0.1.0", "log")
    linker = HostLinker([HostFunc(log.interface, log.name, log.signature, lambda *a: None)])
    with tempfile.TemporaryDirectory() as tmp:
        data = build(Path(tmp), "log", no_allocator_wat(1)).read_bytes()
    return _instantiate_us(data, raw, linker, "log", rounds)


def _instantiate_us(data: bytes, raw: bool, linker: Any, short: str, rounds: int) -> float:
    from airssys_plugins.runtime.image import ComponentImage
    from airssys_plugins.runtime.instance import PluginInstance
    from airssys_plugins.runtime.sandbox import SandboxSpec

    rawbytes.RAW_IMPORTS = raw  # type: ignore[misc]
    try:
        image = ComponentImage.load(f"g{raw}{short}", data, cache=False)
    finally:
        rawbytes.RAW_IMPORTS = True  # type: ignore[misc]
    assert bool(image.raw_imports) == raw
    interface = next(iter(linker.interfaces)).split("@")[0]
    spec = SandboxSpec(interfaces=frozenset({interface}))
    instance = PluginInstance(image, sandbox=spec, linker=linker)

    def again() -> None:
        instance.discard()
        instance.instantiate()

    try:
        return median_ms(again, rounds) * 1e3
    finally:
        instance.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few rounds (a smoke run)")
    parser.add_argument("--json", type=Path, help="write the numbers here")
    args = parser.parse_args()
    rounds = 5 if args.quick else 31
    data = os.urandom(MB)
    global GIVEN
    GIVEN = os.urandom(MB)
    raw_pm, raw_host = make_host(True)
    slow_pm, slow_host = make_host(False)
    try:
        assert raw_pm.hook.send(data=data) == [MB] == slow_pm.hook.send(data=data)
        rows = {
            "nothing": median_ms(lambda: raw_pm.hook.nothing(data=data), rounds),
            "send, raw import route": median_ms(lambda: raw_pm.hook.send(data=data), rounds),
            "send, element by element": median_ms(
                lambda: slow_pm.hook.send(data=data), max(3, rounds // 4)
            ),
            "bytes(bytearray(x))": median_ms(lambda: bytes(bytearray(data)), rounds),
        }
        assert raw_pm.hook.fetch(n=MB) == [MB] == slow_pm.hook.fetch(n=MB)
        back = {
            "grow(0)": median_ms(lambda: raw_pm.hook.grow(pages=0), rounds),
            "fetch, latin1 route": median_ms(lambda: raw_pm.hook.fetch(n=MB), rounds),
            "fetch, element by element": median_ms(
                lambda: slow_pm.hook.fetch(n=MB), max(3, rounds // 4)
            ),
            "latin1 -> UTF-8": median_ms(lambda: GIVEN.decode("latin-1").encode("utf-8"), rounds),
        }
        fetched = fetch_rows(rounds)
        fresh = {
            "instantiate, imports rewritten (memory found)": instantiate_us(True, rounds * 10),
            "instantiate, imports as given": instantiate_us(False, rounds * 10),
            "instantiate, log only, rewritten (probe at 0)": instantiate_log_us(True, rounds * 10),
            "instantiate, log only, as given": instantiate_log_us(False, rounds * 10),
        }
    finally:
        raw_host.close()
        slow_host.close()
    load = os.getloadavg()
    base = rows["nothing"]
    copy = rows["bytes(bytearray(x))"]
    print(f"guest -> host function, 1 MiB random bytes; load average {load[0]:.2f}")
    print(f"{'row':<28}{'ms':>10}{'- nothing':>12}{'vs copy':>10}")
    for name, ms in rows.items():
        extra = ms - base if name.startswith("send") else float("nan")
        ratio = extra / copy if name.startswith("send") else float("nan")
        print(f"{name:<28}{ms:>10.3f}{extra:>12.3f}{ratio:>9.1f}x")
    print(f"host function -> guest, 1 MiB random bytes; load average {load[0]:.2f}")
    print(f"{'row':<28}{'ms':>10}{'- grow(0)':>12}{'vs copy':>10}")
    for name, ms in back.items():
        extra = ms - back["grow(0)"] if name.startswith("fetch") else float("nan")
        ratio = extra / copy if name.startswith("fetch") else float("nan")
        print(f"{name:<28}{ms:>10.3f}{extra:>12.3f}{ratio:>9.1f}x")
    slow_ratio = (back["fetch, element by element"] - back["grow(0)"]) / max(
        back["fetch, latin1 route"] - back["grow(0)"], 1e-9
    )
    print(f"latin1 route vs element by element: {slow_ratio:.1f}x faster")
    print(f"http.fetch-shaped host function, 1 MiB random bytes; load average {load[0]:.2f}")
    print(f"{'row':<58}{'ms':>10}{'- base':>10}")
    fetch_base = fetched["fetch, request 0 MiB, response 0 MiB, fast"]
    for name, ms in fetched.items():
        print(f"{name:<58}{ms:>10.3f}{ms - fetch_base:>10.3f}")
    for what in ("request 1 MiB, response 0 MiB", "request 0 MiB, response 1 MiB",
                 "request 1 MiB, response 1 MiB"):  # fmt: skip
        fast, slow = fetched[f"fetch, {what}, fast"], fetched[f"fetch, {what}, element by element"]
        print(f"fetch, {what}: fast route {slow / max(fast, 1e-9):.1f}x faster")
    for name, us in fresh.items():
        print(f"{name:<48}{us:>10.1f} us")
    if args.json is not None:
        out = {"load": load[0], "rounds": rounds, "ms": rows, "result_ms": back,
               "fetch_ms": fetched, "instantiate_us": fresh}  # fmt: skip
        args.json.write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
