"""Fuzzing the whole conversion surface through real calls: any Python value, for any
parameter of every kitchen-sink hook, either crosses or is an ArgumentError naming hook and
parameter. No OverflowError, TypeError, ValueError or wasmtime error escapes."""

from __future__ import annotations

import inspect
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pluggy
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from airssys_plugins import ArgumentError, Err, Ok, PluginHost, PluginResultError, WasmPlugin

from .kitchen_hooks import (
    PACKAGE,
    Circle,
    Color,
    Empty,
    KitchenHooks,
    Line,
    Perms,
    Point,
    Problem,
    Rect,
)

# Hooks whose guest code fails on purpose (crash traps): not about conversion.
SKIP = {"crash"}
HOOKS = sorted(
    name
    for name, _ in inspect.getmembers(KitchenHooks, inspect.isfunction)
    if not name.startswith("_") and name not in SKIP
)


@pytest.fixture(scope="module")
def kitchen(kitchen_wasm: Path) -> Iterator[tuple[pluggy.PluginManager, WasmPlugin]]:
    pm = pluggy.PluginManager("kitchen")
    pm.add_hookspecs(KitchenHooks)
    with PluginHost(pm, package=PACKAGE) as host:
        yield pm, host.load(kitchen_wasm, name="kitchen")


HUGE_INTS = st.one_of(
    st.sampled_from([2**64, -(2**63) - 1, 10**400, -(10**400), 2**128 + 1]),
    # above 4300 digits an int has no str() (built here: hypothesis repr()s its constants)
    st.integers(min_value=4301, max_value=6000).map(lambda n: -(10**n)),
)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    HUGE_INTS,
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([1e300, -1e300, 3.5e38, 1e39, 5e-324]),
    st.text(max_size=8),
    st.sampled_from(["\ud800", "a\udfff", "", "x"]),
    st.binary(max_size=8),
    st.binary(min_size=8, max_size=16).map(lambda b: memoryview(b[: len(b) // 4 * 4]).cast("I")),
    st.builds(bytearray, st.binary(max_size=4)),
    st.complex_numbers(allow_nan=False, max_magnitude=10),
    st.sampled_from(list(Color)),
    st.sampled_from([Perms.READ, Perms.READ | Perms.EXEC, Perms(0)]),
    st.sampled_from([object(), {"x": 1}, {1, 2}, Ok(1), Err("e"), Ok(None), Err(None)]),
)


def _compound(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(
        st.lists(children, max_size=4),
        st.lists(children, max_size=4).map(tuple),
        st.builds(Ok, children),
        st.builds(Err, children),
        st.builds(Point, children, children, children),
        st.builds(Circle, children),
        st.builds(Rect, children),
        st.builds(Empty),
        st.builds(Line, children, children, children),
        st.builds(Problem, children, children),
    )


F32_OVERFLOW = 2.0**128 - 2.0**103  # from here on a double rounds to an f32 infinity
ANY_VALUE = st.recursive(SCALARS, _compound, max_leaves=12)


@pytest.mark.parametrize("hook", HOOKS)
@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_any_value_crosses_or_is_an_argument_error(
    kitchen: tuple[pluggy.PluginManager, WasmPlugin], hook: str, data: st.DataObject
) -> None:
    """Whatever is passed, for whichever parameter: a result, the hook's own result::err,
    or an ArgumentError naming the plugin, hook and parameter."""
    pm, _ = kitchen
    params = [p for p in inspect.signature(getattr(KitchenHooks, hook)).parameters if p != "self"]
    kwargs = {p: data.draw(ANY_VALUE, label=p) for p in params}
    refused: ArgumentError | None = None
    try:
        getattr(pm.hook, hook)(**kwargs)
    except ArgumentError as exc:
        refused = exc
    except PluginResultError as exc:  # divide / validate returning err: not conversion
        assert exc.plugin == "kitchen"  # noqa: PT017
    if refused is not None:
        assert (refused.plugin, refused.hook) == ("kitchen", hook)
        assert refused.parameter in params
        assert f"argument {refused.parameter!r}" in str(refused)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    value=st.one_of(
        st.floats(),
        st.integers(min_value=-(2**200), max_value=2**200),
        st.floats(min_value=3.4e38, max_value=3.41e38),
        st.sampled_from([2.0**128 - 2.0**103, math.nextafter(2.0**128 - 2.0**103, 0.0)]),
    )
)
def test_f32_either_round_trips_or_is_refused(
    kitchen: tuple[pluggy.PluginManager, WasmPlugin], value: float
) -> None:
    """An f32 argument comes back as its nearest f32, or is refused when that would be an
    infinity it was not; never a silent inf."""
    pm, _ = kitchen
    if math.isfinite(value) and abs(value) >= F32_OVERFLOW:
        with pytest.raises(ArgumentError, match="out of range for f32"):
            pm.hook.echo_f32(x=value)
        return
    (echoed,) = pm.hook.echo_f32(x=value)
    if math.isnan(value):
        assert math.isnan(echoed)
    else:
        assert math.isinf(echoed) == math.isinf(value)
