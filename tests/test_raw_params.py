"""Raw record parameters: every parameter of a host function whose parameters hold a
string or a list inside them (a record, a list of strings, a variant...) passes as its
flat core values, and the host lifts the values from those and the guest's memory
(runtime/rawimports.py rewrites the import type, runtime/rawabi.ParamLift lifts).

A WAT guest, written here, exports ``relay-*`` functions of exactly the types of the
host's ``take-*`` functions, and each one hands its core values straight to the import:
so whatever a hook passes reaches the host function through the guest's memory, laid out
by wasmtime. The same values are passed to a host whose imports are rewritten and to one
left as given (wasmtime lifts them), and must arrive equal, over many values; hostile
``poke-*`` exports pass pointers, lengths and discriminants the test chooses.
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import math
import os
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import pluggy
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from airssys_plugins import (
    Capabilities,
    PluginABIError,
    PluginHost,
    PluginTrap,
    Result,
    char,
    f32,
    s64,
    u8,
    u16,
    u32,
    u64,
    variant,
    wit_binding,
)
from airssys_plugins.authoring.build import build_guest
from airssys_plugins.contract.annotations import Err, Ok
from airssys_plugins.runtime import callbacks, rawabi, rawbytes
from airssys_plugins.runtime import image as _image
from airssys_plugins.runtime import instance as _instance
from airssys_plugins.runtime.rawimports import import_patch

from .raw_imports_records import Header, Request, Response

HOST = "test:rawparams/host@1.0.0"
OPS = "test:rawparams/ops@1.0.0"
RIGHTS = Capabilities(interfaces={"host"})

spec = pluggy.HookspecMarker("rawparams")


@attrs.frozen
class Point:
    x: s64
    y: s64
    label: str


@variant
class Shape:
    """circle(f64) | rect(point) | empty"""


@attrs.frozen
class Circle(Shape):
    radius: float


@attrs.frozen
class Rect(Shape):
    corner: Point


@attrs.frozen
class Empty(Shape):
    pass


class Color(enum.Enum):
    RED = 1
    GREEN = 2
    BLUE = 3


class Perms(enum.Flag):
    READ = enum.auto()
    WRITE = enum.auto()
    EXEC = enum.auto()


@attrs.frozen
class Line:
    start: Point
    end: Point
    tags: list[str]


@dataclasses.dataclass
class Bit:
    """One byte of guest memory, a Python object with its dict on the host."""

    on: bool


_WIT = """package test:rawparams@1.0.0;

interface host {
  record point { x: s64, y: s64, label: string }
  variant shape { circle(f64), rect(point), empty }
  enum color { red, green, blue }
  flags perms { read, write, exec }
  record line { start: point, end: point, tags: list<string> }
  record header { name: string, value: string }
  record request { method: string, url: string, headers: list<header>, body: list<u8> }
  record bit { on: bool }
__FUNCS__
}

interface ops {
  use host.{point, shape, color, perms, line, request, bit};
__RELAYS__
  poke: func(addr: u32, data: list<u8>);
__POKES__
}

world guest {
  import host;
  export ops;
}
"""

#: name -> (WIT parameters, core parameter types of the lowered import)
FUNCS: dict[str, tuple[str, str]] = {
    "point": ("p: point", "i64 i64 i32 i32"),
    "shapes": ("s: list<shape>, one: shape", "i32 i32 i32 i64 i64 i32 i32"),
    "mixed": (
        "c: color, p: perms, o: option<string>, r: result<string, list<u8>>, "
        "t: tuple<u8, string, f64>, ch: char, b: bool, f: f32",
        "i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 f64 i32 i32 f32",
    ),
    "lists": (
        "a: list<list<u8>>, b: list<bool>, c: list<char>, d: list<string>, e: list<option<u16>>",
        "i32 " * 9 + "i32",
    ),
    "lines": ("x: list<line>", "i32 i32"),
    # 21 flat values: past 16, the core function takes a pointer to them
    "many": ("a: point, b: point, c: point, d: string, e: u64, f: f32, g: shape", "i32"),
    "request": ("req: request", "i32 " * 7 + "i32"),
    "bits": ("x: list<bit>", "i32 i32"),
}

_WASM_TYPES = {"i32": "u32", "i64": "u64", "f32": "f32", "f64": "f64"}


#: The guests' allocator: a bump pointer, growing the memory as needed, copying what it
#: moves (so shrinking in place works too).
_REALLOC = r"""  (func $realloc (export "cabi_realloc")
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
"""


def _guest_wat() -> str:
    imports, relays = [], []
    for name, (_, core) in FUNCS.items():
        params = core.split()
        sig = f"(param {' '.join(params)}) (result i32)"
        imports.append(f'  (import "{HOST}" "take-{name}" (func $take_{name} {sig}))')
        args = " ".join(f"(local.get {i})" for i in range(len(params)))
        relays.append(
            f'  (func (export "{OPS}#relay-{name}") {sig} (call $take_{name} {args}))\n'
            f'  (func (export "cabi_post_{OPS}#relay-{name}") (param i32) (call $reset (local.get 0)))\n'
            f'  (func (export "{OPS}#poke-{name}") {sig} (call $take_{name} {args}))'
        )
    return f""";; Relays each hook's core values to the host function of the same type.
(module
{chr(10).join(imports)}
  (memory (export "memory") 1)
  (global $heap (mut i32) (i32.const 1024))
{_REALLOC}  (func $reset (param i32) (global.set $heap (i32.const 1024)))
  ;; poke(addr, data): copy data to addr (growing the memory to reach it); the heap is
  ;; not reset, so a hostile call's structures stay where they were put
  (func (export "{OPS}#poke") (param $addr i32) (param $p i32) (param $n i32)
    (local $end i32)
    (local.set $end (i32.add (local.get $addr) (local.get $n)))
    (if (i32.gt_u (local.get $end) (i32.mul (memory.size) (i32.const 65536)))
      (then (drop (memory.grow (i32.add (i32.const 1) (i32.shr_u (i32.sub (local.get $end)
                 (i32.mul (memory.size) (i32.const 65536))) (i32.const 16)))))))
    (memory.copy (local.get $addr) (local.get $p) (local.get $n)))
{chr(10).join(relays)}
)
"""


def _guest_wit() -> str:
    funcs = "\n".join(f"  take-{n}: func({p}) -> u32;" for n, (p, _) in FUNCS.items())
    relays = "\n".join(f"  relay-{n}: func({p}) -> u32;" for n, (p, _) in FUNCS.items())
    pokes = []
    for name, (_, core) in FUNCS.items():
        params = ", ".join(f"v{i}: {_WASM_TYPES[c]}" for i, c in enumerate(core.split()))
        pokes.append(f"  poke-{name}: func({params}) -> u32;")
    return (
        _WIT.replace("__FUNCS__", funcs)
        .replace("__RELAYS__", relays)
        .replace("__POKES__", "\n".join(pokes))
    )


@pytest.fixture(scope="module")
def guest(tmp_path_factory: pytest.TempPathFactory) -> Path:
    src = tmp_path_factory.mktemp("raw-params")
    (src / "guest.wat").write_text(_guest_wat())
    (src / "wit").mkdir()
    (src / "wit" / "guest.wit").write_text(_guest_wit())
    return build_guest(src)


def _hooks() -> type:
    """Hookspecs of the guest's exports: relay-* as the host's take-*, poke-* with core
    values."""
    ns: dict[str, Any] = {}
    hints = {
        "point": {"p": Point},
        "shapes": {"s": list[Shape], "one": Shape},
        "mixed": {
            "c": Color, "p": Perms, "o": str | None, "r": Result[str, bytes],
            "t": tuple[u8, str, float], "ch": char, "b": bool, "f": f32,
        },
        "lists": {
            "a": list[bytes], "b": list[bool], "c": list[char], "d": list[str],
            "e": list[u16 | None],
        },
        "lines": {"x": list[Line]},
        "many": {"a": Point, "b": Point, "c": Point, "d": str, "e": u64, "f": f32, "g": Shape},
        "request": {"req": Request},
        "bits": {"x": list[Bit]},
    }  # fmt: skip
    py = {"i32": u32, "i64": u64, "f32": f32, "f64": float}
    for name, (_, core) in FUNCS.items():
        for kind, params in (
            ("relay", hints[name]),
            ("poke", {f"v{i}": py[c] for i, c in enumerate(core.split())}),
        ):
            hook = _function(f"{kind}_{name}", ["self", *params], {**params, "return": u32})
            ns[hook.__name__] = spec(wit_binding(f"{OPS}#{kind}-{name}")(hook))

    poke = _function("poke", ["self", "addr", "data"], {"addr": u32, "data": bytes, "return": None})
    ns["poke"] = spec(wit_binding(f"{OPS}#poke")(poke))
    return type("RawParamsHooks", (), ns)


def _function(name: str, params: list[str], annotations: dict[str, Any], body: str = "...") -> Any:
    """A function of these parameter names (pluggy reads them from its code)."""
    scope: dict[str, Any] = {}
    exec(f"def {name}({', '.join(params)}): {body}", scope)
    func = scope[name]
    func.__annotations__ = annotations
    if params[:1] == ["self"]:
        func.__qualname__ = f"RawParamsHooks.{name}"
    return func


HOOKS = _hooks()


class Served:
    def __init__(self) -> None:
        self.got: list[tuple[str, tuple[Any, ...]]] = []

    def provide(self, host: PluginHost) -> None:
        for name in FUNCS:
            hints = dict(getattr(HOOKS, f"relay_{name}").__annotations__)
            params = [p for p in hints if p != "return"]
            take = _function(
                f"take_{name.replace('-', '_')}",
                params,
                hints,
                f"return _got({name!r}, ({''.join(p + ', ' for p in params)}))",
            )
            take.__globals__["_got"] = self.got_one
            host.provide(interface=HOST, name=f"take-{name}")(take)

    def got_one(self, name: str, args: tuple[Any, ...]) -> int:
        self.got.append((name, args))
        return len(self.got)


Pair = tuple[pluggy.PluginManager, Served]


def _host(wasm: Path, raw: bool, hosts: list[PluginHost], **load: Any) -> Pair:
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(rawbytes, "RAW_IMPORTS", raw)
        mp.setattr(_image, "RAW_IMPORTS", raw)
        pm = pluggy.PluginManager("rawparams")
        pm.add_hookspecs(HOOKS)
        host = PluginHost(pm, grants={"g": RIGHTS}, compile_cache=False)
        hosts.append(host)
        served = Served()
        served.provide(host)
        host.load(wasm, name="g", requests=RIGHTS, **load)
    return pm, served


@pytest.fixture(scope="module")
def both(guest: Path) -> Iterator[tuple[Pair, Pair]]:
    """A host whose imports are rewritten, and one whose imports are left as given. Their
    deadline is far above the calls': the tests compare values, and wasmtime lifts a 1 MiB
    body for the second host a value per byte (0.1-0.8 s on CI's shared cores)."""
    hosts: list[PluginHost] = []
    yield _host(guest, True, hosts, timeout=60.0), _host(guest, False, hosts, timeout=60.0)
    for host in hosts:
        host.close()


@pytest.fixture
def flat_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Names of the host functions whose parameters the host lifted from flat values."""
    calls: list[str] = []
    original = callbacks._flat_args

    def counting(instance: Any, func: Any, raw: Any, args: Any) -> list[Any]:
        calls.append(func.name)
        return original(instance, func, raw, args)

    monkeypatch.setattr(callbacks, "_flat_args", counting)
    return calls


def test_the_plan_passes_every_parameter_flat(guest: Path) -> None:
    """Each take-* function holds a string or a list below its top level (or a list of
    bool, char or lists): its import type becomes its flat core values, u32/u64/f32/f64
    as the core signature has them; take-many's 21 values become one pointer."""
    patch = import_patch(guest.read_bytes())
    assert patch is not None
    by_name = {f.function: f for f in patch.functions}
    assert set(by_name) == {f"take-{n}" for n in FUNCS}
    codes = {"i32": 0x7F, "i64": 0x7E, "f32": 0x7D, "f64": 0x7C}
    for name, (_, core) in FUNCS.items():
        f = by_name[f"take-{name}"]
        assert f.types is not None
        assert f.core == tuple(codes[c] for c in core.split()), name
        assert f.arity == len(core.split())


def _call(pair: Pair, name: str, args: dict[str, Any]) -> Any:
    pm, served = pair
    before = len(served.got)
    assert getattr(pm.hook, f"relay_{name}")(**args) == [before + 1]
    got = served.got[-1]
    assert got[0] == name
    return got[1]


def _same(a: Any, b: Any) -> bool:
    """Equal, with floats compared by their bits (NaN payloads too)."""
    if isinstance(a, float) and isinstance(b, float):
        return struct.pack("<d", a) == struct.pack("<d", b)
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return type(a) is type(b) and len(a) == len(b) and all(map(_same, a, b))
    if attrs.has(type(a)) and type(a) is type(b):
        return all(_same(getattr(a, f.name), getattr(b, f.name)) for f in attrs.fields(type(a)))
    if isinstance(a, Ok | Err) and type(a) is type(b):
        return _same(a.value, b.value)
    return type(a) is type(b) and a == b


@contextlib.contextmanager
def _export_route(threshold: int) -> Iterator[list[int]]:
    """Hook calls take the export's raw route (the host lowers the arguments into the
    guest's memory, rawabi) for arguments of ``threshold`` bytes or more; yields the raw
    calls made (their argument counts)."""
    runs: list[int] = []
    original = rawabi.RawCallPlan.run

    def counting(plan: rawabi.RawCallPlan, prepared: Any, limit: int | None) -> Any:
        runs.append(len(prepared))
        return original(plan, prepared, limit)

    with pytest.MonkeyPatch.context() as mp:
        # (a large result sends the next call raw whatever its arguments, unless raised)
        mp.setattr(_instance, "RAW_MIN_BYTES", max(threshold, rawabi.RAW_MIN_BYTES))
        mp.setattr(rawabi, "RAW_MIN_BYTES", threshold)
        if threshold == 0:  # every call, however few bytes per block it allocates
            mp.setattr(rawabi, "RAW_BYTES_PER_BLOCK", 0)
        mp.setattr(rawabi.RawCallPlan, "run", counting)
        yield runs


def _check(both: tuple[Pair, Pair], name: str, args: dict[str, Any]) -> tuple[Any, ...]:
    """What take-<name> got from relay-<name>(args), on both hosts (imports rewritten and
    as given), each with the hook's arguments lowered by the host (the export's raw
    route) and by wasmtime: all four equal."""
    got = []
    for pair in both:
        for threshold in (0, 1 << 62):
            with _export_route(threshold) as runs:
                got.append(_call(pair, name, args))
            assert runs == ([len(args)] if threshold == 0 else []), (name, threshold, runs)
    for other in got[1:]:
        assert _same(got[0], other), (name, got[0], other)
    return got[0]  # type: ignore[no-any-return]


# ------------------------------------------------------------------ values, both ways

_text = st.text(max_size=40)  # any code point but surrogates: non-ASCII, empty
_s64 = st.integers(-(2**63), 2**63 - 1)
_f64 = st.floats(allow_nan=False)
_f32 = st.floats(width=32, allow_nan=False)
_points = st.builds(Point, _s64, _s64, _text)
_shapes = st.one_of(st.builds(Circle, _f64), st.builds(Rect, _points), st.just(Empty()))
_headers = st.lists(st.builds(Header, _text, _text), max_size=4)
_SETTINGS = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@_SETTINGS
@given(p=_points)
def test_a_record_arrives_alike_both_ways(both: tuple[Pair, Pair], p: Point) -> None:
    """take-point(point): s64 fields at both ends of their range, any string."""
    assert _check(both, "point", {"p": p}) == (p,)


@_SETTINGS
@given(s=st.lists(_shapes, max_size=5), one=_shapes)
def test_variants_arrive_alike_both_ways(
    both: tuple[Pair, Pair], s: list[Shape], one: Shape
) -> None:
    """take-shapes(list<shape>, shape): cases of f64 and record payloads joined in one
    flat slot (f64 in an i64), from memory and from flat values."""
    _check(both, "shapes", {"s": s, "one": one})


@_SETTINGS
@given(
    c=st.sampled_from(Color),
    p=st.sets(st.sampled_from(Perms)),
    o=st.none() | _text,
    r=st.builds(Ok, _text) | st.builds(Err, st.binary(max_size=64)),
    t=st.tuples(st.integers(0, 255), _text, _f64),
    ch=st.characters(exclude_categories=["Cs"]),
    b=st.booleans(),
    f=_f32,
)
def test_every_kind_of_flat_value_arrives_alike_both_ways(
    both: tuple[Pair, Pair], c: Color, p: set[Perms], o: Any, r: Any, t: Any, ch: str,
    b: bool, f: float,
) -> None:  # fmt: skip
    """take-mixed: enum, flags, option, result, tuple, char, bool and f32, 15 flat values."""
    flags = Perms(0)
    for member in p:
        flags |= member
    _check(both, "mixed", {"c": c, "p": flags, "o": o, "r": r, "t": t, "ch": ch, "b": b, "f": f})


@_SETTINGS
@given(
    a=st.lists(st.binary(max_size=300), max_size=5),
    b=st.lists(st.booleans(), max_size=20),
    c=st.lists(st.characters(exclude_categories=["Cs"]), max_size=20),
    d=st.lists(_text, max_size=6),
    e=st.lists(st.none() | st.integers(0, 2**16 - 1), max_size=10),
)
def test_lists_inside_lists_arrive_alike_both_ways(
    both: tuple[Pair, Pair], a: list[bytes], b: list[bool], c: list[str], d: list[str],
    e: list[int | None],
) -> None:  # fmt: skip
    """take-lists: list<list<u8>> (each bytes), list<bool>, list<char>, list<string>
    and list<option<u16>>, empty ones included."""
    got = _check(both, "lists", {"a": a, "b": b, "c": c, "d": d, "e": e})
    assert got == (a, b, c, d, e)
    assert all(type(x) is bytes for x in got[0])


@_SETTINGS
@given(x=st.lists(st.builds(Line, _points, _points, st.lists(_text, max_size=3)), max_size=4))
def test_records_in_a_list_arrive_alike_both_ways(both: tuple[Pair, Pair], x: list[Line]) -> None:
    """take-lines(list<line>): records of records and of a list of strings."""
    assert _check(both, "lines", {"x": x}) == (x,)


@_SETTINGS
@given(a=_points, b=_points, c=_points, d=_text, e=st.integers(0, 2**64 - 1), f=_f32, g=_shapes)
def test_more_than_16_flat_values_arrive_alike_both_ways(
    both: tuple[Pair, Pair], a: Point, b: Point, c: Point, d: str, e: int, f: float, g: Shape
) -> None:
    """take-many: 21 flat values, so the core function takes a pointer to them stored
    in memory, as a tuple; the host reads them from there. relay-many likewise: on the
    export's raw route the host stores them in a block of the guest's memory."""
    _check(both, "many", {"a": a, "b": b, "c": c, "d": d, "e": e, "f": f, "g": g})


def test_exports_past_16_flat_values_take_a_pointer(guest: Path) -> None:
    """The raw export of relay-many takes one i32, the block's pointer (the canonical
    ABI's MAX_FLAT_PARAMS); the others their flat values."""
    tail = rawbytes.raw_export_tail(guest.read_bytes())
    assert tail is not None
    by_name = {f.function: f for f in tail[1].functions}
    assert by_name["relay-many"].params == (0x7F,)
    assert len(by_name["relay-request"].params) == 8


@_SETTINGS
@given(method=_text, url=_text, headers=_headers, body=st.binary(max_size=2048))
def test_an_http_request_arrives_alike_both_ways(
    both: tuple[Pair, Pair], method: str, url: str, headers: list[Header], body: bytes
) -> None:
    """take-request(request): the shape of http.fetch's request."""
    req = Request(method, url, headers, body)
    assert _check(both, "request", {"req": req}) == (req,)


@pytest.mark.parametrize("size", [0, 1, 1 << 20], ids=["0B", "1B", "1MiB"])
def test_a_large_body_and_non_ascii_strings_arrive_raw(
    both: tuple[Pair, Pair], flat_calls: list[str], size: int
) -> None:
    """A 1 MiB body with non-ASCII method, url and headers: bytes, read with one copy
    (the export's raw route lowers it, the import's lifts it), on either route."""
    req = Request("PÖST", "https://ex.ample/naïve/✓", [Header("x-𝄞", "ÿ" * 9)], os.urandom(size))
    got = _check(both, "request", {"req": req})
    assert got == (req,)
    assert type(got[0].body) is bytes
    assert flat_calls == ["take-request"] * 2  # the rewritten host's, both export routes
    # by default, the route is chosen by the arguments' size: the raw one from 2 KiB
    with _export_route(rawabi.RAW_MIN_BYTES) as runs:
        assert _call(both[0], "request", {"req": req}) == (req,)
    assert runs == ([1] if size >= rawabi.RAW_MIN_BYTES else [])


def test_nan_payloads_and_signed_zeros_arrive_alike(both: tuple[Pair, Pair]) -> None:
    """Floats keep their bits both ways (wasmtime does not canonicalize NaNs)."""
    nan = struct.unpack("<d", struct.pack("<Q", 0x7FF0_0000_0000_0123))[0]
    for value in (nan, -0.0, math.inf, -math.inf, 5e-324):
        _check(both, "shapes", {"s": [Circle(value)], "one": Circle(value)})
        _check(both, "point", {"p": Point(0, 0, "")})


def test_strings_at_odd_addresses_arrive(both: tuple[Pair, Pair], flat_calls: list[str]) -> None:
    """jco's flavorful case: a list<string> whose strings start at odd addresses (poked
    there), lifted raw (a latin1+utf16 lift by wasmtime would refuse them)."""
    text = "naïve ✓".encode()
    for pm, _ in both:
        pm.hook.poke(addr=40001, data=text)
        pm.hook.poke(addr=40101, data=text[1:])
        # a list of two strings at 40200: (40001, len), (40101, len - 1)
        pm.hook.poke(addr=40200, data=struct.pack("<4I", 40001, len(text), 40101, len(text) - 1))
    got = [_poke(pair, "lists", 0, 0, 0, 0, 0, 0, 40200, 2, 0, 0) for pair in both]
    assert got[0] == got[1] == ([], [], [], ["naïve ✓", "aïve ✓"], [])
    assert flat_calls == ["take-lists"]


# ------------------------------------------------------------------ hostile guests


def _poke(pair: Pair, name: str, *values: Any) -> Any:
    pm, served = pair
    before = len(served.got)
    getattr(pm.hook, f"poke_{name}")(**{f"v{i}": v for i, v in enumerate(values)})
    assert len(served.got) == before + 1
    return served.got[-1][1]


_HEADER_AT = 50000  # a header record (name, value) poked here
_BAD: list[Any] = [
    # (id, what to poke first: [(addr, bytes)], function, core values, reason, argument)
    ("url out of bounds", [], "request", (0, 0, 0xFFFF_FFF0, 100, 0, 0, 0, 0),
     "out-of-bounds pointer", "req"),
    ("body past 4 GiB", [], "request", (0, 0, 0, 0, 0, 0, 0xFFFF_0000, 0xFFFF_FFFF),
     "out-of-bounds pointer", "req"),
    ("headers misaligned", [], "request", (0, 0, 0, 0, 1025, 1, 0, 0),
     "misaligned pointer", "req"),
    ("a header's name out of bounds",
     [(_HEADER_AT, struct.pack("<4I", 0x7FFF_FFFF, 5, 0, 0))],
     "request", (0, 0, 0, 0, _HEADER_AT, 1, 0, 0), "out-of-bounds pointer", "req"),
    ("a header's value not UTF-8",
     [(_HEADER_AT + 64, b"\xc3\x28"), (_HEADER_AT, struct.pack("<4I", 0, 0, _HEADER_AT + 64, 2))],
     "request", (0, 0, 0, 0, _HEADER_AT, 1, 0, 0), "invalid UTF-8", "req"),
    ("enum out of range", [], "mixed", (3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0.0, 65, 0, 0.0),
     "invalid discriminant", "c"),
    ("option discriminant 2", [], "mixed", (0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0.0, 65, 0, 0.0),
     "invalid discriminant", "o"),
    ("result discriminant 7", [], "mixed", (0, 0, 0, 0, 0, 7, 0, 0, 0, 0, 0, 0.0, 65, 0, 0.0),
     "invalid discriminant", "r"),
    ("a surrogate char", [], "mixed", (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0.0, 0xD800, 0, 0.0),
     "invalid char", "ch"),
    ("a char past U+10FFFF", [], "mixed",
     (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0.0, 0x110000, 0, 0.0), "invalid char", "ch"),
    ("a variant in memory with discriminant 9", [(_HEADER_AT, bytes([9]) + bytes(31))],
     "shapes", (_HEADER_AT, 1, 0, 0, 0, 0, 0), "invalid discriminant", "s"),
    ("a flat variant with discriminant 3", [], "shapes", (0, 0, 3, 0, 0, 0, 0),
     "invalid discriminant", "one"),
    ("a list<char> with a surrogate", [(_HEADER_AT, struct.pack("<I", 0xDFFF))],
     "lists", (0, 0, 0, 0, _HEADER_AT, 1, 0, 0, 0, 0), "invalid char", "c"),
    ("a list<list<u8>> entry out of bounds", [(_HEADER_AT, struct.pack("<2I", 0xFFFF_FFFF, 2))],
     "lists", (_HEADER_AT, 1, 0, 0, 0, 0, 0, 0, 0, 0), "out-of-bounds pointer", "a"),
    ("a list<u16> option misaligned", [], "lists", (0, 0, 0, 0, 0, 0, 0, 0, 1027, 1),
     "misaligned pointer", "e"),
    ("the parameters' block misaligned", [], "many", (1025,), "misaligned pointer", None),
    ("the parameters' block out of bounds", [], "many", (0xFFFF_FFF8,),
     "out-of-bounds pointer", None),
]  # fmt: skip


@pytest.mark.parametrize(("pokes", "name", "values", "reason", "arg"),
                         [pytest.param(*b[1:], id=b[0]) for b in _BAD])  # fmt: skip
def test_hostile_values_are_refused_by_name(
    guest: Path,
    pokes: list[tuple[int, bytes]],
    name: str,
    values: tuple[Any, ...],
    reason: str,
    arg: str | None,
) -> None:
    """A bad pointer, length, discriminant or char inside the parameters traps the call
    with a PluginABIError naming the plugin, the host function and the argument, with
    the reason wasmtime's own lifting gives (the element-by-element host: a PluginABIError
    too); the host function never runs and the next call, on a fresh instance, works."""
    hosts: list[PluginHost] = []
    try:
        for raw in (True, False):
            pm, served = _host(guest, raw, hosts)
            for addr, data in pokes:
                pm.hook.poke(addr=addr, data=data)
            # (element by element, a bad block of parameters traps in wit-component's shim,
            # which the message table does not classify: a PluginTrap)
            with pytest.raises(PluginABIError if raw or arg else PluginTrap) as exc:
                getattr(pm.hook, f"poke_{name}")(**{f"v{i}": v for i, v in enumerate(values)})
            assert served.got == []
            if raw:
                message = str(exc.value)
                assert exc.value.reason == reason, message
                assert f"plugin 'g' called host function {HOST}#take-{name}" in message
                where = "the arguments' block" if arg is None else f"argument {arg!r}"
                assert f"({reason}: {where}: " in message, message
            elif arg is not None:
                assert exc.value.reason == reason, str(exc.value)
            assert _call((pm, served), "point", {"p": Point(1, 2, "ok")}) == (Point(1, 2, "ok"),)
    finally:
        for host in hosts:
            host.close()


def test_bool_and_flags_are_read_as_wasmtime_reads_them(both: tuple[Pair, Pair]) -> None:
    """A bool of 7 is true, flags' unknown bits are ignored (wasmtime does not trap on
    either), in flat values and in memory."""
    for pair in both:
        pair[0].hook.poke(addr=_HEADER_AT, data=bytes([0, 7, 1, 255]))
    got = [
        _poke(pair, "mixed", 0, 0xFFFF_FFFF, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0.0, 65, 7, 0.0)
        for pair in both
    ]
    assert got[0] == got[1]
    assert got[0][1] == Perms.READ | Perms.WRITE | Perms.EXEC
    assert got[0][6] is True
    got = [_poke(pair, "lists", 0, 0, _HEADER_AT, 4, 0, 0, 0, 0, 0, 0) for pair in both]
    assert got[0] == got[1] == ([], [False, True, True, True], [], [], [])


def test_aliasing_entries_are_bounded_by_memory(guest: Path) -> None:
    """A list<string> of 100,000 entries all naming one 1 MiB region would build 100 GB of
    strings: the host refuses it (reason "arguments too large") before it runs out of
    memory, and the next call works (not run element by element: wasmtime would try)."""
    hosts: list[PluginHost] = []
    try:
        pm, served = _host(guest, True, hosts)
        pm.hook.poke(addr=1 << 20, data=b"x" * (1 << 20))
        n = 100_000
        pm.hook.poke(addr=3 << 20, data=struct.pack("<2I", 1 << 20, 1 << 20) * n)
        with pytest.raises(PluginABIError) as exc:
            _poke((pm, served), "lists", 0, 0, 0, 0, 0, 0, 3 << 20, n, 0, 0)
        assert exc.value.reason == "arguments too large"
        assert "argument 'd'" in str(exc.value)
        assert served.got == []
        assert _call((pm, served), "point", {"p": Point(1, 2, "ok")}) == (Point(1, 2, "ok"),)
    finally:
        for host in hosts:
            host.close()


def test_records_count_as_the_objects_they_make(guest: Path) -> None:
    """take-bits(list<bit>): a record of one bool is one byte of guest memory and a Python
    object of about 200 bytes on the host (a dataclass, with its dict). 2 Mi of them
    would build some 400 MB: counted as the objects they make, they pass the bound of what
    lifting may build (8x the memory + 64 MiB) and are refused (before, counted 33 bytes
    each, they were made); a list within the bound arrives."""
    hosts: list[PluginHost] = []
    try:
        pm, served = _host(guest, True, hosts)
        n = 2 << 20
        pm.hook.poke(addr=1 << 20, data=bytes([1]) * n)
        with pytest.raises(PluginABIError) as exc:
            _poke((pm, served), "bits", 1 << 20, n)
        assert exc.value.reason == "arguments too large"
        assert "argument 'x'" in str(exc.value)
        assert served.got == []
        pm.hook.poke(addr=1 << 20, data=bytes([1]) * n)  # (on the fresh instance)
        assert _poke((pm, served), "bits", 1 << 20, 100_000) == ([Bit(True)] * 100_000,)
    finally:
        for host in hosts:
            host.close()


def test_per_call_instances_read_their_own_memory(guest: Path, flat_calls: list[str]) -> None:
    """isolation="per-call": every fresh instance has its memory found before it runs."""
    hosts: list[PluginHost] = []
    try:
        pair = _host(guest, True, hosts, isolation="per-call")
        for k in range(3):
            req = Request("GET", f"/{k}", [Header("k", str(k))], os.urandom(1000 + k))
            assert _call(pair, "request", {"req": req}) == (req,)
        assert flat_calls == ["take-request"] * 3
    finally:
        for host in hosts:
            host.close()


# ------------------------------------------------------------------ every toolchain

RECORDS_HOST = "test:rawrecords/host@1.0.0"
RECORDS_RELAY = "test:rawrecords/relay@1.0.0"


class RecordsHooks:
    @spec
    @wit_binding(f"{RECORDS_RELAY}#relay")
    def relay(self, req: Request) -> Result[Response, str]: ...

    @spec
    @wit_binding(f"{RECORDS_RELAY}#tags-back")
    def tags_back(self) -> u32: ...


def _records_host(wasm: Path, raw: bool, hosts: list[PluginHost]) -> tuple[Any, list[Any]]:
    got: list[Any] = []
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(rawbytes, "RAW_IMPORTS", raw)
        mp.setattr(_image, "RAW_IMPORTS", raw)
        pm = pluggy.PluginManager("rawparams")
        pm.add_hookspecs(RecordsHooks)
        host = PluginHost(pm, grants={"g": RIGHTS}, compile_cache=False)
        hosts.append(host)

        @host.provide(interface=RECORDS_HOST, name="fetch")
        def fetch(req: Request) -> Result[Response, str]:
            got.append(req)
            if req.method == "FAIL":
                return Err("refused: naïve ✓")
            return Ok(Response(201, [Header("x-naïve", "✓"), *req.headers], req.body[::-1]))

        @host.provide(interface=RECORDS_HOST, name="tags")
        def tags(tags: list[str]) -> u32:
            got.append(tags)
            return len(tags)

        host.load(wasm, name="g", requests=RIGHTS)
    return pm, got


RECORD_TOOLCHAINS = [
    pytest.param("raw-records-py", id="componentize-py"),
    pytest.param("raw-records-c", id="c"),
    pytest.param("raw-records-rust", id="rust"),
    pytest.param("raw-records-js", id="jco"),
]


def _counting(batches: list[int]) -> Any:
    """RawCallPlan.allocate, adding to ``batches`` how many blocks each call allocates."""
    allocate = rawabi.RawCallPlan.allocate

    def counting(plan: rawabi.RawCallPlan, cx: Any, wanted: list[int]) -> list[int]:
        batches.append(len(wanted) // 2)
        return allocate(plan, cx, wanted)

    return counting


@pytest.mark.parametrize("guest_dir", RECORD_TOOLCHAINS)
def test_guests_of_every_toolchain_pass_records_to_the_host(
    flat_calls: list[str], guest_dir: str
) -> None:
    """A guest built by each toolchain hands a request (http.fetch's shape: strings, a
    list of header records, a 200 KB body) to the host, and a list of its own strings
    (at odd addresses in C and Rust): the host reads them raw, equal to what wasmtime
    lifts; the response's body comes back as latin1 (componentize-py: element by
    element, its allocator cannot shrink), equal both ways, as does an error. The hook's
    own export moves the request and the response raw too, its six blocks allocated by
    the batch allocator."""
    wasm = build_guest(Path(__file__).parent / "guests" / guest_dir)
    patch = import_patch(wasm.read_bytes())
    if guest_dir == "raw-records-js":  # nested: the inner component's imports
        patch = rawbytes.export_tail(wasm.read_bytes()).imports  # type: ignore[union-attr]
    assert patch is not None
    by_name = {f.function: f for f in patch.functions}
    assert set(by_name) == {"fetch", "tags"}
    assert all(f.types is not None for f in by_name.values())
    latin1 = guest_dir != "raw-records-py"
    assert (by_name["fetch"].result is not None) is latin1
    # (not 1 MiB: element by element, jco's guest then nears the default 1 s timeout on a
    # busy machine; the WAT tests above pass 1 MiB bodies)
    body = os.urandom(200_000)
    req = Request("PÖST", "https://ex.ample/naïve/✓", [Header("accept-ünï", "✓")], body)
    answers = []
    hosts: list[PluginHost] = []
    try:
        for raw in (True, False):
            pm, got = _records_host(wasm, raw, hosts)
            # the hook's own export: the host lowers the request into the guest's memory
            # and lifts the result<response, string> from it (the raw route, at 200 KB),
            # equal to wasmtime's lowering and lifting
            # (wasmtime's first: after a large result, the next call takes the raw route)
            with _export_route(1 << 62) as runs:
                answers.append(pm.hook.relay(req=req))
            assert runs == []
            batches: list[int] = []
            with (
                _export_route(rawabi.RAW_MIN_BYTES) as runs,
                pytest.MonkeyPatch.context() as mp,
            ):
                mp.setattr(rawabi.RawCallPlan, "allocate", _counting(batches))
                answers.append(pm.hook.relay(req=req))
            assert runs == [1]
            # method, url, the headers' array, a header's name and value, the body: the
            # guest's allocator is called through the batch export
            assert batches == [6]
            assert got == [req, req]
            assert pm.hook.tags_back() == [3]
            assert got[-1] == ["naïve", "ïve", "✓"]
            with pytest.raises(Exception, match="refused: naïve ✓"):
                pm.hook.relay(req=Request("FAIL", "", [], b""))
    finally:
        for host in hosts:
            host.close()
    assert all(a == answers[0] for a in answers)
    (answer,) = answers[0]
    # (a hook's ok value comes back bare, an err raises)
    assert answer == Response(201, [Header("x-naïve", "✓"), *req.headers], body[::-1])
    assert type(answer.body) is bytes
    assert flat_calls == ["fetch", "fetch", "tags", "fetch"]


# ------------------------------------------------------------------ the built-in http.fetch

_HTTP_WIT = """package test:rawhttp@1.0.0;

interface relay {
  /// fetch(GET url), then fetch(POST url, the body it got): the POST's status
  relay: func(url: string) -> u32;
}

world guest {
  import airssys:host/http@0.1.0;
  export relay;
}
"""

_HTTP_WAT = (
    r""";; Gets a body with http.fetch and posts it back (tests/test_raw_params.py).
(module
  (import "airssys:host/http@0.1.0" "fetch"
    (func $fetch (param i32 i32 i32 i32 i32 i32 i32 i32 i32)))
  (memory (export "memory") 1)
  (global $heap (mut i32) (i32.const 1024))
  (data (i32.const 512) "GETPOST")
"""
    + _REALLOC
    + r"""  ;; result<response, string>: the discriminant at 0; ok: status at 4, body at 16
  (func (export "test:rawhttp/relay@1.0.0#relay") (param $url i32) (param $n i32) (result i32)
    (local $r i32) (local $s i32)
    (local.set $r (call $realloc (i32.const 0) (i32.const 0) (i32.const 4) (i32.const 24)))
    (local.set $s (call $realloc (i32.const 0) (i32.const 0) (i32.const 4) (i32.const 24)))
    (call $fetch (i32.const 512) (i32.const 3) (local.get $url) (local.get $n)
      (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (local.get $r))
    (if (i32.load8_u (local.get $r)) (then unreachable))
    (call $fetch (i32.const 515) (i32.const 4) (local.get $url) (local.get $n) (i32.const 0)
      (i32.const 0) (i32.load offset=16 (local.get $r)) (i32.load offset=20 (local.get $r))
      (local.get $s))
    (if (i32.load8_u (local.get $s)) (then unreachable))
    (i32.load16_u offset=4 (local.get $s)))
  (func (export "cabi_post_test:rawhttp/relay@1.0.0#relay") (param i32)
    (global.set $heap (i32.const 1024)))
)
"""
)


class HttpHooks:
    @spec
    @wit_binding("test:rawhttp/relay@1.0.0#relay")
    def relay(self, url: str) -> u32: ...


def test_the_built_in_http_fetch_takes_its_request_raw_and_answers_as_latin1(
    tmp_path: Path, flat_calls: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A guest fetches 1 MiB of random bytes from a local server with the built-in
    http.fetch and posts them back: the server receives exactly what it sent, both ways;
    on the fast route the request is read raw and the response written as latin1."""
    import http.server
    import shutil
    import threading

    served = os.urandom(1 << 20)
    posted: list[bytes] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", str(len(served)))
            self.end_headers()
            self.wfile.write(served)

        def do_POST(self) -> None:
            posted.append(self.rfile.read(int(self.headers["Content-Length"])))
            self.send_response(201)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    latin1: list[str] = []
    original = callbacks._raw_import

    def counting(instance: Any, func: Any, nargs: int) -> Any:
        raw = original(instance, func, nargs)
        if raw is not None and raw.result is not None:
            latin1.append(func.name)
        return raw

    monkeypatch.setattr(callbacks, "_raw_import", counting)
    src = tmp_path / "raw-http"
    (src / "wit" / "deps").mkdir(parents=True)
    (src / "guest.wat").write_text(_HTTP_WAT)
    (src / "wit" / "guest.wit").write_text(_HTTP_WIT)
    deps = Path(__file__).parent / "guests" / "probe" / "wit" / "deps" / "airssys-host"
    shutil.copytree(deps, src / "wit" / "deps" / "airssys-host")
    wasm = build_guest(src)
    patch = import_patch(wasm.read_bytes())
    assert patch is not None
    (fetch,) = patch.functions
    assert fetch.function == "fetch"
    assert fetch.types is not None
    assert fetch.result == ("result", ("record", None, None, True), None)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    origin = f"http://127.0.0.1:{server.server_address[1]}"
    rights = Capabilities(interfaces=["http"], network=[origin])
    hosts: list[PluginHost] = []
    try:
        for raw in (True, False):
            with pytest.MonkeyPatch.context() as mp:
                mp.setattr(rawbytes, "RAW_IMPORTS", raw)
                mp.setattr(_image, "RAW_IMPORTS", raw)
                pm = pluggy.PluginManager("rawparams")
                pm.add_hookspecs(HttpHooks)
                host = PluginHost(pm, grants={"g": rights}, compile_cache=False)
                hosts.append(host)
                host.load(wasm, name="g", requests=rights)
            assert pm.hook.relay(url=f"{origin}/body") == [201]
            assert posted[-1] == served
    finally:
        for host in hosts:
            host.close()
        server.shutdown()
        server.server_close()
    assert flat_calls == ["fetch", "fetch"]
    assert latin1 == ["fetch", "fetch"]
    assert len(posted) == 2
