"""Bytes between a guest and a host function: the raw import routes against element by element.

Run from the repository root::

    python bench/bench_host_bytes.py            # about 20 s
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

``send - nothing`` is what passing the bytes to the host costs. Two more rows time what
the route costs each new instance (its memory is found right after instantiation): a
discard + instantiate of the same guest with its imports rewritten, and as given (with
the raw exports either way). Timings are reported, never asserted; ``--json PATH``
writes the numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pluggy

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

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


def instantiate_us(raw: bool, rounds: int) -> float:
    """Median discard + instantiate of the guest, in us, through the runtime layer."""
    from airssys_plugins.contract import wit
    from airssys_plugins.runtime.callbacks import HostFunc
    from airssys_plugins.runtime.image import ComponentImage
    from airssys_plugins.runtime.instance import PluginInstance
    from airssys_plugins.runtime.sandbox import HostLinker, SandboxSpec

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
    rawbytes.RAW_IMPORTS = raw  # type: ignore[misc]
    try:
        image = ComponentImage.load(f"g{raw}", build_guest(GUEST).read_bytes(), cache=False)
    finally:
        rawbytes.RAW_IMPORTS = True  # type: ignore[misc]
    assert bool(image.raw_imports) == raw
    spec = SandboxSpec(interfaces=frozenset({"test:rawimports/host"}))
    instance = PluginInstance(image, sandbox=spec, linker=linker)

    def again() -> None:
        instance.discard()
        instance.instantiate()

    try:
        return median_ms(again, rounds) * 1e3
    finally:
        instance.close()


def median_ms(f: Callable[[], object], rounds: int) -> float:
    f()
    times = []
    for _ in range(rounds):
        t = time.perf_counter()
        f()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1e3


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
        fresh = {
            "instantiate, imports rewritten (memory found)": instantiate_us(True, rounds * 10),
            "instantiate, imports as given": instantiate_us(False, rounds * 10),
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
    for name, us in fresh.items():
        print(f"{name:<48}{us:>10.1f} us")
    if args.json is not None:
        out = {"load": load[0], "rounds": rounds, "ms": rows, "result_ms": back,
               "instantiate_us": fresh}  # fmt: skip
        args.json.write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
