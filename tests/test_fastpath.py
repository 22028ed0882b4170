"""The packed fast path for bytes and number lists agrees with wasmtime-py's own slow path."""

from __future__ import annotations

import ctypes
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pluggy
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from wasmtime import Engine, Store, WasiConfig
from wasmtime.component import Component, Linker

from airssys_plugins import PluginHost

from .kitchen_hooks import PACKAGE, KitchenHooks


class SlowPath:
    """The kitchen guest called through wasmtime-py's ``Func.__call__`` (per-element values)."""

    def __init__(self, wasm: Path):
        engine = Engine()
        component = Component.from_file(engine, str(wasm))
        linker = Linker(engine)
        linker.add_wasip2()
        self.store = Store(engine)
        self.store.set_wasi(WasiConfig())
        self.instance = linker.instantiate(self.store, component)
        self.component = component

    def call(self, name: str, *args: Any) -> Any:
        iface = self.component.get_export_index(f"test:kitchen/{name}@1.0.0")
        func = self.instance.get_func(self.store, self.component.get_export_index(name, iface))
        assert func is not None
        return func(self.store, *args)


@pytest.fixture(scope="module")
def both(kitchen_wasm: Path) -> Iterator[tuple[pluggy.PluginManager, SlowPath]]:
    pm = pluggy.PluginManager("kitchen")
    pm.add_hookspecs(KitchenHooks)
    slow = SlowPath(kitchen_wasm)
    with PluginHost(pm, package=PACKAGE) as host:
        host.load(kitchen_wasm, name="kitchen")
        yield pm, slow
    slow.store.close()


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(blob=st.binary(max_size=5000))
def test_bytes_match_slow_path(both: tuple[pluggy.PluginManager, SlowPath], blob: bytes) -> None:
    """Random bytes: the packed path and wasmtime-py's path give the same result."""
    pm, slow = both
    assert pm.hook.echo_bytes(x=blob) == [slow.call("echo-bytes", blob)]


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(values=st.lists(st.integers(-(2**63), 2**63 - 1), max_size=300))
def test_s64_lists_match_slow_path(
    both: tuple[pluggy.PluginManager, SlowPath], values: list[int]
) -> None:
    """Random s64 lists: the packed path and wasmtime-py's path give the same result."""
    pm, slow = both
    assert pm.hook.echo_list(x=values) == [slow.call("echo-list", values)]


PACKED = [
    ("u8", st.integers(0, 2**8 - 1)),
    ("s8", st.integers(-(2**7), 2**7 - 1)),
    ("u16", st.integers(0, 2**16 - 1)),
    ("s16", st.integers(-(2**15), 2**15 - 1)),
    ("u32", st.integers(0, 2**32 - 1)),
    ("s32", st.integers(-(2**31), 2**31 - 1)),
    ("u64", st.integers(0, 2**64 - 1)),
    ("s64", st.integers(-(2**63), 2**63 - 1)),
    ("f32", st.floats(width=32, allow_nan=False)),
    ("f64", st.floats(allow_nan=False)),
]


@pytest.mark.parametrize(("prim", "elements"), PACKED, ids=[p for p, _ in PACKED])
def test_packed_lists_match_per_element_values(prim: str, elements: st.SearchStrategy[Any]) -> None:
    """Every packed element type: each C value reads back, through wasmtime-py's own
    per-element converter, as the Python value that went in; and lifts back unchanged."""
    import wasmtime.component as wc
    from wasmtime import _ffi as ffi

    from airssys_plugins.contract import wit
    from airssys_plugins.runtime.convert import VAL, lifter, lowerer

    slow = getattr(wc, prim.upper())()
    lower = lowerer(wit.ListT(wit.Prim(prim)))
    lift = lifter(wit.ListT(wit.Prim(prim)))

    @settings(max_examples=30, deadline=None)
    @given(values=st.lists(elements, max_size=200))
    def check(values: list[Any]) -> None:
        dst = VAL()
        lower(values, dst)
        try:
            data = dst.of.list.data
            assert [slow.convert_from_c(data[i]) for i in range(len(values))] == values
            assert lift(dst) == values
        finally:
            ffi.wasmtime_component_val_delete(ctypes.byref(dst))

    check()
