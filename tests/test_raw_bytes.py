"""The raw byte route: the host moves lists and strings through the guest's memory itself.

runtime/rawbytes.py appends raw exports (the core signature of each function, the guest's
allocator, its post-returns, a probe) to a component; runtime/guestmem.py finds the
guest's memory in this process; runtime/rawabi.py lowers and lifts values there with the
canonical ABI's layout and every check wasmtime's own lifting makes. These tests drive
that route on WAT guests and compare it with the element-by-element path of the same
instance: equal results on random inputs, the same refusal (and reason) for every hostile
guest, no memory growth, the memory found again after a discard and after growing.
"""

from __future__ import annotations

import enum
import os
import subprocess
import threading
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from airssys_plugins import (
    ArgumentError,
    Contract,
    PluginABIError,
    PluginLimitExceeded,
)
from airssys_plugins.authoring.build import build_guest, find_tool
from airssys_plugins.contract import wit
from airssys_plugins.runtime import capi, convert, guestmem, rawabi
from airssys_plugins.runtime import image as _image
from airssys_plugins.runtime.convert import ConvertError
from airssys_plugins.runtime.image import ComponentImage
from airssys_plugins.runtime.instance import PluginInstance
from airssys_plugins.runtime.plans import PROBE, RAW_PLAN_VERSION
from airssys_plugins.runtime.rawabi import (
    RAW_MIN_BYTES,
    CoreCall,
    GuestCallError,
    RawBinding,
    RawSignature,
    RawState,
    ResultTooLarge,
    result_budget,
)
from airssys_plugins.runtime.rawbytes import (
    RAW_PREFIX,
    RawPlan,
    add_raw_exports,
    checked_raw,
    decode_raw_plan,
    encode_raw_plan,
    raw_export_tail,
)
from airssys_plugins.runtime.sandbox import SandboxSpec

from .kitchen_hooks import Line, Point
from .rust_hooks import PACKAGE as RUST_PACKAGE
from .rust_hooks import RustHooks
from .test_byte_buffers import _py_bytes

GUESTS = Path(__file__).parent / "guests"
IFACE = "test:bytes/ops@1.0.0"
I32, I64 = 0x7F, 0x7E


@pytest.fixture(scope="module")
def bytes_wasm() -> bytes:
    return build_guest(GUESTS / "bytes").read_bytes()


@pytest.fixture(scope="module")
def hostile_wasm(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    out = tmp_path_factory.mktemp("raw") / "hostile.wasm"
    subprocess.run(
        [find_tool("wasm-tools"), "parse", str(GUESTS / "raw-hostile" / "hostile.wat"), "-o",
         str(out)],
        check=True,
    )  # fmt: skip
    return out.read_bytes()


class Harness:
    """One instance of a component with raw exports; each function callable both ways:
    ``raw`` (the raw route) and ``slow`` (the element-by-element path, same instance)."""

    def __init__(self, name: str, data: bytes, *, max_result_bytes: int | None = None):
        added = add_raw_exports(data)
        assert added is not None
        wider, self.plan = added
        self.image = ComponentImage.load(name, wider)
        self.instance = PluginInstance(
            self.image, sandbox=SandboxSpec(max_result_bytes=max_result_bytes)
        )
        self.limit = max_result_bytes
        self.sigs = {
            f: wit.FuncSig(tuple((n, _py_bytes(t)) for n, t in s.params), _py_bytes(s.result))
            for (_, f), s in self.image.exports.items()
            if not f.startswith(RAW_PREFIX)
        }
        self.slow = {
            f: self.instance.bind(f, i, f, self.sigs[f], byte_buffers=False)
            for (i, f) in self.image.exports
            if not f.startswith(RAW_PREFIX)
        }
        self.fresh()

    def fresh(self) -> None:
        """A new instance (after a refused call), its memory found again."""
        self.instance.discard()
        self.instance.instantiate()
        store, inst = self.instance._store, self.instance._instance
        assert store is not None
        assert inst is not None

        def get_func(name: str) -> Any:
            index = inst.get_export_index(store, name)
            assert index is not None, name
            return inst.get_func(store, index)

        self.state = RawState(get_func, capi.store_context(store))
        self.bindings: dict[str, RawBinding] = {}

    @property
    def mem(self) -> guestmem.GuestMemory:
        if self.state.mem is None:
            self.state.plan(self.binding("echo"))
        assert self.state.mem is not None
        return self.state.mem

    def core(self, name: str, params: list[int], result: int | None) -> CoreCall:
        return self.state.core(name, params, result)

    def binding(self, func: str) -> RawBinding:
        if func not in self.bindings:
            export = next(f for f in self.plan.functions if f.function == func)
            sig = RawSignature(self.sigs[func])
            binding = RawBinding(sig, export.call, export.post, export.alloc, self.plan.probe)
            assert binding.params == export.params  # the host's flattening is the binary's
            assert binding.result == (I64 if export.retptr else export.result)
            self.bindings[func] = binding
        return self.bindings[func]

    def raw(self, func: str, *args: Any) -> Any:
        binding = self.binding(func)
        prepared = [binding.sig.prepare(i, a) for i, a in enumerate(args)]
        plan = self.state.plan(binding)
        assert plan is not None
        return plan.run(prepared, self.limit)

    def both(self, func: str, *args: Any) -> Any:
        raw = self.raw(func, *args)
        slow = self.instance.call(self.slow[func], args)
        assert raw == slow
        assert type(raw) is type(slow)
        return raw

    def close(self) -> None:
        self.instance.close()


@pytest.fixture(scope="module")
def ops(bytes_wasm: bytes) -> Iterator[Harness]:
    h = Harness("bytes", bytes_wasm)
    yield h
    h.close()


@attrs.frozen
class _VarA:
    value: bytes


@attrs.frozen
class _VarB:
    pass


@pytest.fixture(scope="module")
def hostile(hostile_wasm: bytes) -> Iterator[Harness]:
    h = Harness("hostile", hostile_wasm)
    # bad-variant's result with its cases' classes, as a hookspec gives them (the raw
    # route lowers and lifts variants through them)
    sig = h.sigs["bad-variant"]
    assert isinstance(sig.result, wit.VariantT)
    h.sigs["bad-variant"] = attrs.evolve(
        sig, result=attrs.evolve(sig.result, py=_VarA, py_cases=(_VarA, _VarB))
    )
    yield h
    h.close()


# ------------------------------------------------------------------ the rewritten binary


def test_raw_exports_cover_lists_and_strings(bytes_wasm: bytes) -> None:
    """Every function moving a list or a string gets raw exports, `mixed` (a string
    beside the bytes) and `boxed` (a record) included; nothing is rewritten."""
    added = add_raw_exports(bytes_wasm)
    assert added is not None
    wider, plan = added
    assert wider.startswith(bytes_wasm)
    assert {f.function for f in plan.functions} == {
        "echo", "tail", "empty", "length", "make", "maybe", "nested", "pair", "mixed", "boxed"
    }  # fmt: skip
    assert all(f.interface == IFACE for f in plan.functions)
    by_name = {f.function: f for f in plan.functions}
    assert by_name["length"].retptr is False
    assert by_name["length"].result == I32
    assert by_name["length"].post is None  # no post-return for a scalar result
    assert by_name["echo"].retptr
    assert by_name["echo"].post is not None
    assert by_name["mixed"].params == (I32,) * 4


def test_plans_round_trip(bytes_wasm: bytes) -> None:
    plan = raw_export_tail(bytes_wasm)
    assert plan is not None
    assert decode_raw_plan(encode_raw_plan(plan[1])) == plan[1]
    assert decode_raw_plan(None) is None
    with pytest.raises(ValueError, match="version"):
        decode_raw_plan({"version": 0, "functions": []})
    with pytest.raises(ValueError, match="unreadable"):
        decode_raw_plan({"version": RAW_PLAN_VERSION, "functions": [[1, 2]]})
    with pytest.raises(ValueError, match="unreadable raw-export plan: probe 'x'"):
        decode_raw_plan({"version": RAW_PLAN_VERSION, "functions": [], "probe": "x"})
    assert plan[1].probe == PROBE  # the guest's allocator: the probe allocates
    # a plan written by version 1 (no probe kept) is read as none: planned again
    with pytest.raises(ValueError, match="version"):
        decode_raw_plan({"version": 1, "functions": []})


def test_unreadable_or_irrelevant_input_is_declined(textpipe_wasm: dict[str, Path]) -> None:
    assert raw_export_tail(b"\0asm\x01\0\0\0") is None
    assert raw_export_tail(b"\0asm\x0d\0\x01\0\x07\x05\x01") is None
    # string-only components are covered too (strings cross without transcoding)
    for wasm in textpipe_wasm.values():
        plan = raw_export_tail(wasm.read_bytes())
        assert plan is None or all(isinstance(f.function, str) for f in plan[1].functions)


def test_raw_exports_have_the_core_signatures(ops: Harness) -> None:
    """wasmtime reports the types the plan expects; checked_raw hides the raw exports."""
    sigs = {f: s for (_, f), s in ops.image.exports.items() if f.startswith(RAW_PREFIX)}
    assert sigs[RAW_PREFIX + "alloc"].render() == "func(p0: u32, p1: u32) -> u64"
    assert sigs[RAW_PREFIX + "probe"].render() == "func(p0: u64, p1: u64) -> u64"
    exports = dict(ops.image.exports)
    raw = checked_raw(exports, ops.plan)
    assert set(raw) == {(f.interface, f.function) for f in ops.plan.functions}
    assert not any(f.startswith(RAW_PREFIX) for _, f in exports)
    # a plan that does not match what wasmtime says is not trusted
    echo = ops.plan.find(IFACE, "echo")
    assert echo is not None
    wrong = attrs.evolve(echo, params=(I64, I32))
    exports = dict(ops.image.exports)
    assert checked_raw(exports, RawPlan((wrong,))) == {}


# ------------------------------------------------------------------ equality


PAYLOADS = [b"", b"\x00", b"hello", bytes(range(256)), os.urandom(4097), "naïve ✓".encode()]


@pytest.mark.parametrize("data", PAYLOADS, ids=range(len(PAYLOADS)))
def test_every_shape_matches_the_element_by_element_path(ops: Harness, data: bytes) -> None:
    assert ops.both("echo", data) == data
    assert ops.both("tail", data) == data[1:]
    assert ops.both("tail", b"x" + data) == data  # a result at an odd address
    assert ops.both("length", data) == len(data)
    assert ops.both("maybe", data) == data
    assert ops.both("maybe", None) is None
    assert ops.both("nested", [data, b"", data[::-1]]) == [data, b"", data[::-1]]
    assert ops.both("nested", []) == []
    assert ops.both("pair", (data, 2**32 - 1)) == (data, 2**32 - 1)
    assert ops.both("mixed", "héllo ✓", data) == data
    assert ops.both("empty") == b""
    # a record, lowered from any object with its fields (a dict back: no class given)
    blob = types.SimpleNamespace(data=data, tag=2**32 - 1)
    assert ops.both("boxed", blob) == {"data": data, "tag": 2**32 - 1}


def test_bytes_like_arguments(ops: Harness) -> None:
    data = os.urandom(3000)
    assert ops.raw("echo", bytearray(data)) == data
    assert ops.raw("echo", memoryview(data)) == data
    assert ops.raw("echo", list(data[:50])) == data[:50]


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.binary(max_size=70_000), fill=st.integers(0, 255), n=st.integers(0, 100_000))
def test_random_sizes_match(ops: Harness, data: bytes, fill: int, n: int) -> None:
    assert ops.both("echo", data) == data
    assert ops.both("nested", [data, data[:7]]) == [data, data[:7]]
    assert ops.both("make", n, fill) == bytes([fill]) * n


def test_large_random_round_trip(ops: Harness) -> None:
    data = os.urandom(1 << 20)
    assert ops.raw("echo", data) == data
    assert ops.raw("make", 3 << 20, 0xE9) == b"\xe9" * (3 << 20)  # memory grows: base holds


def test_arguments_are_checked_before_the_guest_is_touched(ops: Harness) -> None:
    sig = RawSignature(ops.sigs["pair"])
    with pytest.raises(ConvertError) as info:
        sig.prepare(0, (b"ok", 2**32))
    assert info.value.located() == "[1]: 4294967296 is out of range for u32 (0..4294967295)"
    with pytest.raises(ConvertError, match=r"expected a tuple of 2 items"):
        sig.prepare(0, b"x")
    nested = RawSignature(ops.sigs["nested"])
    with pytest.raises(ConvertError) as info:
        nested.prepare(0, [b"", [1, 256]])
    assert info.value.located().startswith("[1][1]: 256 is out of range for u8")
    with pytest.raises(ConvertError, match="not valid Unicode"):
        RawSignature(ops.sigs["mixed"]).prepare(0, "\ud800")


def _by_convert(name: str, value: Any) -> Any:
    """A primitive argument as convert's check leaves it in a C value (what the raw
    route's prepare gave for every value before it took plain ones as they are)."""
    scratch = convert.VAL()
    convert._lower_prim(name)(value, scratch)
    of = scratch.of
    if name == "bool":
        return 1 if of.boolean else 0
    if name == "char":
        return of.character
    return getattr(of, name) if name in ("f32", "f64") else value


@pytest.mark.parametrize(
    "name", ["u8", "s8", "u16", "s16", "u32", "s32", "u64", "s64", "f32", "f64", "bool", "char"]
)
def test_primitives_are_checked_as_convert_checks_them(name: str) -> None:
    """The raw route's primitives take what the element-by-element path takes and give
    the same value (a plain int in range, a float, a bool: as they are), and refuse the
    rest with its message."""

    class Small(enum.IntEnum):
        ONE = 1

    node = rawabi.node(wit.Prim(name))
    values = [0, 1, -1, 255, 256, -129, 2**31, 2**63 - 1, 2**64, -(2**63) - 1, True, False,
              Small.ONE, 1.5, -0.0, float("inf"), 3.4e38, 1e300, "x", "é", "", None]  # fmt: skip
    for value in values:
        try:
            expected = _by_convert(name, value)
        except ConvertError as exc:
            refused = str(exc)
        else:
            refused = None
        if refused is not None:
            with pytest.raises(ConvertError) as info:
                node.prepare(value)
            assert str(info.value) == refused, (name, value)
            continue
        got = node.prepare(value)
        assert got == expected or (got != got and expected != expected), (name, value)
        assert type(got) is type(expected), (name, value)


def test_memory_does_not_grow_over_100_calls(ops: Harness) -> None:
    data = os.urandom(64 << 10)
    ops.raw("echo", data)
    size = ops.mem.size
    for _ in range(100):
        assert ops.raw("echo", data) == data
        assert ops.raw("nested", [data]) == [data]
    assert ops.mem.size == size


class _Counted:
    """A CoreCall that counts its calls."""

    def __init__(self, call: CoreCall):
        self.call = call
        self.calls = 0

    def __call__(self, *values: Any) -> Any:
        self.calls += 1
        return self.call(*values)


def _counted(plan: rawabi.RawCallPlan) -> tuple[_Counted, _Counted]:
    assert plan.allocs is not None
    alloc, allocs = _Counted(plan.alloc), _Counted(plan.allocs)
    plan.alloc, plan.allocs = alloc, allocs  # type: ignore[assignment]
    return alloc, allocs


def test_many_blocks_take_one_call_of_the_batch_allocator(ops: Harness) -> None:
    """A list of 1,000 byte lists is 1,001 blocks: the list's array is asked of the
    guest's allocator alone, and the 1,000 lists in one call of ``airssys-raw-allocs``
    (its table written in the array's block, which lowering fills only afterwards); the
    guest gets what wasmtime's lowering gives it. Empty lists are blocks too."""
    ops.fresh()
    plan = ops.state.plan(ops.binding("nested"))
    assert plan is not None
    alloc, allocs = _counted(plan)
    data = [os.urandom(i % 50) for i in range(1000)]
    assert ops.both("nested", data) == data
    assert (alloc.calls, allocs.calls) == (1, 1)
    two = [b"ab", b"cd"]  # 3 blocks: the array holds 2 entries
    assert ops.both("nested", two) == two
    assert (alloc.calls, allocs.calls) == (2, 2)
    one = [b"ab"]  # 2 blocks: below BATCH_FROM, one call each
    assert ops.both("nested", one) == one
    assert (alloc.calls, allocs.calls) == (4, 2)


def test_the_batch_asks_what_one_by_one_asks(ops: Harness) -> None:
    """The batch allocator makes the calls of the guest's allocator lowering would make
    one by one, in order, with the same sizes and alignments: on a fresh instance of the
    bytes guest (a bump allocator) both give the same pointers. Blocks too small to hold
    the table are asked alone until one holds two entries (8 bytes each)."""
    wanted = [1, 1, 1, 3, 4, 20, 1, 5, 4, 0, 8, 24, 1, 7]
    got = []
    for batch in (True, False):
        ops.fresh()
        plan = ops.state.plan(ops.binding("nested"))
        assert plan is not None
        alloc, allocs = _counted(plan)
        cx = rawabi._Cx(plan.mem, plan.alloc, 0)
        if batch:
            triples = plan.allocate(cx, wanted)
        else:
            triples = []
            for i in range(0, len(wanted), 2):
                align, size = wanted[i : i + 2]
                triples += (align, size, cx.alloc(align, size))
        got.append(triples)
        # the first three alone (1 and 3 bytes hold no table; 20 bytes hold two entries),
        # then the other four in two calls of two (the 24-byte block holds three)
        assert (alloc.calls, allocs.calls) == ((3, 2) if batch else (7, 0))
    assert got[0] == got[1]
    pointers = got[0][2::3]
    for align, size, ptr in zip(wanted[::2], wanted[1::2], pointers, strict=True):
        assert ptr % align == 0
        assert ptr + size <= ops.mem.size


def test_limit_is_checked_on_the_length_before_copying(bytes_wasm: bytes) -> None:
    h = Harness("limited", bytes_wasm, max_result_bytes=1000)
    try:
        assert h.raw("make", 1000, 0xFF) == b"\xff" * 1000
        with pytest.raises(ResultTooLarge) as info:
            h.raw("make", 1001, 0xFF)
        assert info.value.size == 1001
        with pytest.raises(PluginLimitExceeded, match="1,001 bytes"):  # the same count
            h.instance.call(h.slow["make"], (1001, 0xFF))
    finally:
        h.close()


# ------------------------------------------------------------------ hostile guests

# (function, argument, the reason): the canonical ABI violation each makes
HOSTILE = [
    ("bad-result", b"x" * 16, "out-of-bounds pointer"),  # result pointer outside memory
    ("bad-length", b"x" * 16, "out-of-bounds pointer"),  # result running past the end
    ("bad-retptr", b"x" * 16, "out-of-bounds pointer"),  # return area outside memory
    ("odd-retptr", b"x" * 16, "misaligned pointer"),  # return area misaligned
    ("echo", os.urandom(12345), "realloc out of bounds"),  # the allocator answers past the end
    ("sum32", list(range(1111)), "realloc misaligned"),  # the allocator misaligns a list<u32>
    # the same answers inside a batch of allocations (many blocks: one call for the rest)
    ("strings", ["ok", "x" * 12345, "ok"], "realloc out of bounds"),
    ("lists32", [[1], list(range(1111)), [2]], "realloc misaligned"),
    ("as-text", b"\xff\xfe", "invalid UTF-8"),  # invalid UTF-8 in a string result
    # a list of strings is read and checked string by string, in order: the first bad one
    ("bad-texts", b"x", "invalid UTF-8"),  # then one outside memory
    ("far-texts", b"x", "out-of-bounds pointer"),  # then one of invalid UTF-8
    ("bad-option", b"x", "invalid discriminant"),  # option discriminant 2
    ("bad-char", b"x", "invalid char"),  # char beyond U+10FFFF
    ("odd-list", b"x", "misaligned pointer"),  # a list<u32> at an odd address
    ("odd-lists", b"x", "misaligned pointer"),  # ... inside a list<list<u32>>
    ("far-lists", b"x", "out-of-bounds pointer"),  # ... and one outside memory
    ("bad-record", b"x", "out-of-bounds pointer"),  # a record's list outside memory
    ("bad-variant", b"x", "invalid discriminant"),  # variant discriminant 5 of 2 cases
    ("bad-enum", b"x", "invalid discriminant"),  # enum value 3 of 3 names, in a record
]


@pytest.mark.parametrize(("func", "arg", "reason"), HOSTILE, ids=[h[0] for h in HOSTILE])
def test_hostile_results_are_refused_for_wasmtimes_reason(
    hostile: Harness, func: str, arg: Any, reason: str
) -> None:
    """The raw route's checks refuse what wasmtime's lifting refuses, for the reason of
    the trap table; the post-return is not run with the bad pointer; a fresh instance
    then works."""
    hostile.fresh()
    with pytest.raises(guestmem.GuestMemoryError) as raw:
        hostile.raw(func, arg)
    assert raw.value.reason == reason
    hostile.fresh()
    with pytest.raises(PluginABIError) as slow:
        hostile.instance.call(hostile.slow[func], (arg,))
    assert isinstance(slow.value, PluginABIError)
    assert slow.value.reason == reason
    hostile.fresh()
    assert hostile.raw("echo", b"still alive") == b"still alive"


def test_entries_aliasing_one_region_hit_the_budget_before_copying(hostile: Harness) -> None:
    """100,000 entries of the same 960 bytes would be 96 MB on the host (with no limit set:
    the budget is a multiple of the guest's memory)."""
    hostile.fresh()
    with pytest.raises(ResultTooLarge) as info:
        hostile.raw("alias", 100_000)
    assert info.value.size > result_budget(None, hostile.mem.size)
    hostile.fresh()
    three = hostile.both("alias", 3)
    assert len(three) == 3
    assert three[0] == three[2]
    assert len(three[0]) == 960


def test_a_trap_inside_the_guest_is_wasmtimes_error(hostile: Harness) -> None:
    hostile.fresh()
    with pytest.raises(GuestCallError, match="unreachable"):
        hostile.raw("trap", b"x")
    hostile.fresh()
    assert hostile.raw("echo", b"x") == b"x"


# ------------------------------------------------------------------ finding the memory


def test_two_instances_have_their_own_memory(bytes_wasm: bytes) -> None:
    a, b = Harness("a", bytes_wasm), Harness("b", bytes_wasm)
    try:
        assert a.mem.base != b.mem.base
        x, y = os.urandom(5000), os.urandom(5000)
        assert (a.raw("echo", x), b.raw("echo", y)) == (x, y)
        old = a.mem.base
        a.fresh()  # a discarded instance's memory is found again, wherever it now is
        assert a.raw("echo", y) == y
        assert isinstance(old, int)
    finally:
        a.close()
        b.close()


def test_instances_in_threads(bytes_wasm: bytes) -> None:
    harnesses = [Harness(f"t{i}", bytes_wasm) for i in range(4)]
    errors: list[BaseException] = []

    def work(h: Harness) -> None:
        try:
            for _ in range(30):
                data = os.urandom(20_000)
                assert h.raw("echo", data) == data
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(h,)) for h in harnesses]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for h in harnesses:
        h.close()
    assert errors == []


def test_unavailable_platforms_say_so(ops: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(guestmem, "AVAILABLE", False)
    with pytest.raises(guestmem.GuestMemoryError) as info:
        guestmem.find_base(ops.core(ops.plan.probe, [I64, I64], I64))
    assert info.value.reason == "unavailable"
    # an instance whose memory cannot be found turns the route off (callers fall back)
    ops.fresh()
    assert ops.state.plan(ops.binding("echo")) is None
    assert ops.state.off
    monkeypatch.setattr(guestmem, "AVAILABLE", True)
    ops.fresh()
    assert ops.state.plan(ops.binding("echo")) is not None


def test_a_probe_that_lies_is_not_believed(ops: Harness) -> None:
    """A probe whose block is not where it says, or outside the memory: no base."""
    real = ops.core(ops.plan.probe, [I64, I64], I64)
    with pytest.raises(guestmem.GuestMemoryError) as info:
        guestmem.find_base(lambda a, b: real(a, b) + 16)  # 16 bytes off
    assert info.value.reason == "memory not found"
    with pytest.raises(guestmem.GuestMemoryError) as info:
        guestmem.find_base(lambda a, b: (1 << 32) | 0xFFF8)  # 1 page, block past its end
    assert info.value.reason == "realloc out of bounds"


def test_safe_read_never_faults() -> None:
    data = b"0123456789abcdef"
    import ctypes

    address = ctypes.cast(ctypes.c_char_p(data), ctypes.c_void_p).value
    assert address is not None
    assert guestmem.safe_read(address, 16) == data
    assert guestmem.safe_read(8, 16) is None  # the zero page
    assert guestmem.safe_read(2**47 - 4096, 16) is None  # top of user space, unmapped


def test_safe_read_after_fork() -> None:
    """A forked child gets its own pipe (the parent's reads are not interleaved)."""
    data = b"fork-safe bytes!"
    import ctypes

    address = ctypes.cast(ctypes.c_char_p(data), ctypes.c_void_p).value
    assert address is not None
    assert guestmem.safe_read(address, 16) == data  # the parent's pipe exists
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        ok = guestmem.safe_read(address, 16) == data and guestmem.safe_read(8, 4) is None
        os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert guestmem.safe_read(address, 16) == data


def test_strings_and_word_lists(hostile: Harness) -> None:
    hostile.fresh()
    assert hostile.both("as-text", "héllo ✓".encode()) == "héllo ✓"
    assert hostile.both("sum32", [1, 2, 3, 2**32 - 6]) == 0


# ------------------------------------------------------------------ through the call path


def _sig(image: ComponentImage, func: str) -> tuple[str | None, wit.FuncSig]:
    iface, found = next((i, s) for (i, f), s in image.exports.items() if f == func)
    return iface, wit.FuncSig(
        tuple((n, _py_bytes(t)) for n, t in found.params), _py_bytes(found.result)
    )


class Routes:
    """A plugin instance with one function bound twice: ``fast`` (the raw route for large
    payloads, the latin1 one for small ones) and ``slow`` (element by element)."""

    def __init__(self, image: ComponentImage, func: str, **sandbox: Any):
        # The element-by-element path moves 1 MiB in ~0.5 s alone: a deadline far above
        # it, as the test compares results and routes, not time (CI's cores are shared).
        sandbox.setdefault("timeout", 60.0)
        self.instance = PluginInstance(image, sandbox=SandboxSpec(**sandbox))
        iface, sig = _sig(image, func)
        self.fast = self.instance.bind(func, iface, func, sig)
        self.slow = self.instance.bind(func, iface, func, sig, byte_buffers=False)

    def raw_taken(self) -> bool:
        """Whether the raw route ran on the current instance (its plan exists)."""
        state = self.instance._raw
        return state is not None and self.fast.raw is not None and id(self.fast.raw) in state.plans

    def both(self, *args: Any) -> Any:
        fast = self.instance.call(self.fast, args)
        slow = self.instance.call(self.slow, args)
        assert fast == slow
        assert type(fast) is type(slow)
        return fast


TOOLCHAINS = {
    # name: (how to build, function, make an argument of n bytes, expected result)
    "wat": (lambda: build_guest(GUESTS / "bytes"), "echo", os.urandom, lambda x: x),
    "c": (lambda: build_guest(GUESTS / "raw-c"), "invert", os.urandom, lambda x: bytes(~b & 0xFF for b in x)),
    "jco": (lambda: build_guest(GUESTS / "raw-js"), "invert", os.urandom, lambda x: bytes(~b & 0xFF for b in x)),
}  # fmt: skip
SIZES = [0, 1, 2047, 2048, 4097, 65_537, 1 << 20]


@pytest.mark.parametrize("toolchain", sorted(TOOLCHAINS))
def test_each_toolchain_takes_the_raw_route_for_large_payloads(toolchain: str) -> None:
    """Hand-written WAT, C (clang) and JS (jco: a nested component, another realloc):
    results equal the element-by-element path's at every size, and the route taken is
    the raw one from 2 KiB up."""
    build, func, make, expected = TOOLCHAINS[toolchain]
    image = ComponentImage.load(toolchain, build())
    assert any(f == func for _, f in image.raw_exports), image.raw_exports
    r = Routes(image, func)
    try:
        for n in SIZES:
            r.instance.discard()  # each size on a fresh instance: which route ran is visible
            data = make(n)
            assert r.both(data) == expected(data)
            assert r.raw_taken() == (n >= RAW_MIN_BYTES), n
    finally:
        r.instance.close()


@pytest.fixture
def every_call_raw(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every call takes the raw route where the function has one, whatever it moves (the
    default leaves strings, and lists of small blocks, to wasmtime's route)."""
    monkeypatch.setattr(rawabi, "RAW_MIN_BYTES", 0)
    monkeypatch.setattr(rawabi, "RAW_BYTES_PER_BLOCK", 0)


def test_the_route_is_chosen_by_what_it_saves(bytes_wasm: bytes, kitchen_wasm: Path) -> None:
    """By default a call takes the raw route when its lists of bytes or numbers hold 2 KiB
    or more, at 8 bytes or more per unit of the raw route's own cost: a list block (the
    blocks allocated by batch), and 2 for each record or variant object it lowers and
    lifts. Strings cost nothing more raw (one buffer on wasmtime's route too), so a call
    of strings alone is left to wasmtime's route."""
    kitchen = ComponentImage.load("kitchen", kitchen_wasm)
    ops = ComponentImage.load("bytes", bytes_wasm)
    line = Line(Point(1, 2, "a"), Point(3, 4, "bb"), ["t1", "t2"])
    cases = [
        (ops, "echo", (os.urandom(3000),), True),
        (ops, "echo", (os.urandom(2000),), False),
        (ops, "nested", ([os.urandom(64) for _ in range(1000)],), True),
        (ops, "nested", ([os.urandom(1) for _ in range(1000)],), True),  # 9,000 bytes moved
        (ops, "nested", ([os.urandom(1) for _ in range(100)],), False),  # 900
        (ops, "mixed", ("naïve ✓" * 1000, os.urandom(3000)), True),
        (kitchen, "echo-string", ("naïve ✓ " * 10_000,), False),
        (kitchen, "echo-strings", (["word"] * 2000,), True),  # their array: 16,000 bytes
        (kitchen, "echo-list", (list(range(1000)),), True),  # list<s64>: 8,000 bytes
        # 72 bytes a line in lists, 7 units: a tags list and three records
        (kitchen, "echo-lines", ([line] * 1000,), True),
        (kitchen, "echo-lines", ([line] * 20,), False),  # 1,440 bytes
        (kitchen, "echo-point", (Point(1, 2, "naïve ✓ " * 1000),), False),  # a string
    ]
    for image, func, args, raw in cases:
        r = Routes(image, func)
        try:
            r.both(*args)
            assert r.raw_taken() is raw, (func, raw)
        finally:
            r.instance.close()


def test_functions_never_large_have_no_raw_binding(
    kitchen_wasm: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Strings, numbers and records of them count nothing under the route's rule, so a
    function whose arguments can hold no list (and whose result no list of bytes or
    numbers) gets no raw binding, and its calls do not check their size; with
    RAW_MIN_BYTES 0 (every call raw) it gets one."""
    kitchen = ComponentImage.load("kitchen", kitchen_wasm)
    cases = [("echo-string", False), ("echo-point", False), ("echo-option", False),
             ("echo-strings", True), ("echo-bytes", True), ("echo-lines", True)]  # fmt: skip
    for func, bound in cases:
        r = Routes(kitchen, func)
        try:
            assert (r.fast.raw is not None) is bound, func
        finally:
            r.instance.close()
    monkeypatch.setattr(rawabi, "RAW_MIN_BYTES", 0)
    r = Routes(kitchen, "echo-string")
    try:
        assert r.fast.raw is not None
    finally:
        r.instance.close()


@pytest.mark.usefixtures("every_call_raw")
def test_rust_guest(tmp_path: Path) -> None:
    """Rust (wit-bindgen): bytes (invert) and strings (transform) on the raw route."""
    contract = tmp_path / "contract.wit"  # built as tests/test_rust_guest.py builds it
    contract.write_text(Contract.from_hookspecs(RustHooks, package=RUST_PACKAGE).wit(world="guest"))
    image = ComponentImage.load("rust", build_guest(GUESTS / "rust", wit_files=[contract]))
    for func, arg in (("invert", os.urandom(70_000)), ("transform", "grüße, welt " * 500)):
        r = Routes(image, func)
        try:
            r.both(arg)
            assert r.raw_taken(), func
        finally:
            r.instance.close()


@pytest.mark.usefixtures("every_call_raw")
def test_componentize_py_guest(kitchen_wasm: Path) -> None:
    """componentize-py: its allocator cannot shrink a block; the raw route never asks."""
    image = ComponentImage.load("kitchen", kitchen_wasm)
    cases = [
        ("echo-bytes", os.urandom(100_000)),
        ("echo-string", "naïve ✓ " * 1000),
        ("echo-list", list(range(-1000, 3000))),
    ]
    for func, arg in cases:
        r = Routes(image, func)
        try:
            for _ in range(3):
                assert r.both(arg) == arg
            assert r.raw_taken(), func
        finally:
            r.instance.close()


@pytest.mark.usefixtures("every_call_raw")
def test_componentize_py_records(kitchen_wasm: Path) -> None:
    """componentize-py's records take the raw route too (echo-point: a record with a
    string), equal to the element-by-element path; its runtime's ``init``, of another
    core module, is left out so the shims still fold into the guest's module."""
    image = ComponentImage.load("kitchen", kitchen_wasm)
    functions = {f for _, f in image.raw_exports}
    assert {"echo-point", "echo-shape", "echo-lines", "validate"} <= functions
    assert "init" not in functions
    r = Routes(image, "echo-point")
    try:
        point = types.SimpleNamespace(x=-(2**63), y=2**63 - 1, label="naïve ✓ " * 400)
        for _ in range(3):
            assert r.both(point) == {"x": point.x, "y": point.y, "label": point.label}
        assert r.raw_taken()
    finally:
        r.instance.close()


def test_a_large_result_moves_the_next_call_to_the_raw_route(bytes_wasm: bytes) -> None:
    """make(n, fill): small arguments, a large result; the second call takes the raw route."""
    r = Routes(ComponentImage.load("bytes", bytes_wasm), "make")
    try:
        assert r.both(100_000, 7) == b"\x07" * 100_000  # the fast call ran first: latin1
        assert not r.raw_taken()
        assert r.both(100_000, 8) == b"\x08" * 100_000
        assert r.raw_taken()
        r.instance.discard()  # remembered across instances
        assert r.instance.call(r.fast, (100_000, 9)) == b"\x09" * 100_000
        assert r.raw_taken()
        assert r.instance.call(r.fast, (10, 9)) == b"\x09" * 10  # small again: forgotten
        r.instance.discard()
        assert r.instance.call(r.fast, (10, 9)) == b"\x09" * 10
        assert not r.raw_taken()
    finally:
        r.instance.close()


def test_switched_off(bytes_wasm: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    """AIRSSYS_PLUGINS_NO_RAW_BYTES=1 (image.RAW_BYTES): no raw exports, the latin1 route."""
    monkeypatch.setattr(_image, "RAW_BYTES", False)
    image = ComponentImage.load("bytes", bytes_wasm)
    assert image.raw_exports == {}
    assert image.byte_exports  # the latin1 route stays
    r = Routes(image, "echo")
    try:
        data = os.urandom(10_000)
        assert r.both(data) == data
        assert r.fast.raw is None
    finally:
        r.instance.close()


def test_memory_not_found_falls_back(bytes_wasm: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    """Where the memory cannot be found (not Linux), calls take the latin1 route."""
    r = Routes(ComponentImage.load("bytes", bytes_wasm), "echo")
    try:
        monkeypatch.setattr(guestmem, "AVAILABLE", False)
        data = os.urandom(10_000)
        assert r.both(data) == data
        assert not r.raw_taken()
        assert r.instance._raw is not None
        assert r.instance._raw.off
    finally:
        r.instance.close()


def test_hostile_guest_through_the_call_path(hostile_wasm: bytes) -> None:
    """A named error naming the plugin and the hook; the instance is replaced."""
    image = ComponentImage.load("hostile", hostile_wasm)
    r = Routes(image, "bad-length")
    try:
        with pytest.raises(PluginABIError) as info:
            r.instance.call(r.fast, (os.urandom(5000),))
        assert info.value.plugin == "hostile"
        assert info.value.hook == "bad-length"
        assert info.value.reason == "out-of-bounds pointer"
        assert "its instance was replaced" in str(info.value)
        assert r.instance._instance is None
    finally:
        r.instance.close()
    r = Routes(image, "alias")
    try:  # no limit set: entries aliasing one region are still bounded
        r.instance.call(r.fast, (3,))  # 2,976 bytes counted: the next call takes the raw route
        with pytest.raises(PluginLimitExceeded) as limit:
            r.instance.call(r.fast, (100_000,))
        assert limit.value.reason == "too much data copied"
    finally:
        r.instance.close()


def test_result_limit_on_the_raw_route(bytes_wasm: bytes) -> None:
    r = Routes(ComponentImage.load("bytes", bytes_wasm), "echo", max_result_bytes=4000)
    try:
        assert r.both(b"\xff" * 4000) == b"\xff" * 4000
        with pytest.raises(PluginLimitExceeded, match="4,001 bytes") as info:
            r.instance.call(r.fast, (b"\xff" * 4001,))
        assert info.value.reason == "result too large"
        assert r.raw_taken() is False  # discarded
    finally:
        r.instance.close()


def test_bad_arguments_name_the_argument(bytes_wasm: bytes) -> None:
    r = Routes(ComponentImage.load("bytes", bytes_wasm), "nested")
    try:
        with pytest.raises(ArgumentError, match=r"argument 'data'\[1\]\[2\]: 256 is out of range"):
            r.instance.call(r.fast, ([b"x" * 5000, [1, 2, 256]],))
        assert r.instance._instance is None  # the guest was not touched
    finally:
        r.instance.close()


def test_exports_of_one_core_module_are_kept() -> None:
    """The raw exports are those of the core instance most lifted functions come from; a
    tie (componentize-py's runtime ``init`` beside a one-hook guest's module) goes to the
    later instance, whatever the picks' order."""
    from airssys_plugins.runtime import relift
    from airssys_plugins.runtime.rawbytes import RawPick, _one_module

    c = relift._Component()
    c.core_func_instances = {1: 58, 2: 64, 3: 64}
    lifts = {k: relift._Lift(k, [], 0, k) for k in (1, 2, 3)}

    def pick(k: int) -> RawPick:
        return RawPick(lifts[k], "i", f"f{k}", (I32,), (), None)

    for order in ((1, 2), (2, 1)):
        c.lifts = [lifts[1], lifts[2]]
        assert [p.function for p in _one_module(c, [pick(k) for k in order])] == ["f2"]
    c.lifts = [lifts[1], lifts[2], lifts[3]]  # more of 64's functions lifted
    assert [p.function for p in _one_module(c, [pick(1), pick(2)])] == ["f2"]
    c.core_func_instances = {1: 64, 2: 58, 3: 58}
    assert [p.function for p in _one_module(c, [pick(1), pick(2)])] == ["f2"]
