"""Value conversion through a real componentize-py guest: every WIT type, both directions."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pluggy
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from airssys_plugins import ArgumentError, PluginHost, PluginResultError, PluginTrap, WasmPlugin

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


@pytest.fixture(scope="module")
def kitchen(kitchen_wasm: Path) -> Iterator[tuple[pluggy.PluginManager, WasmPlugin]]:
    pm = pluggy.PluginManager("kitchen")
    pm.add_hookspecs(KitchenHooks)
    with PluginHost(pm, package=PACKAGE) as host:
        yield pm, host.load(kitchen_wasm, name="kitchen")


def call(kitchen: tuple[pluggy.PluginManager, WasmPlugin], hook: str, **kwargs: Any) -> Any:
    pm, _ = kitchen
    results = getattr(pm.hook, hook)(**kwargs)
    assert len(results) <= 1  # pluggy drops None results (option::none)
    return results[0] if results else None


def test_all_hooks_bound_and_extra_export_ignored(
    kitchen: tuple[pluggy.PluginManager, WasmPlugin],
) -> None:
    """Every hookspec maps to the guest's export; echo-nested-option (no hook) is ignored."""
    _, plugin = kitchen
    assert len(plugin.hooks) == 28
    assert "echo_string" in plugin.hooks


ROUND_TRIPS = [
    ("echo_bool", True),
    ("echo_bool", False),
    ("echo_u8", 255),
    ("echo_s8", -128),
    ("echo_u16", 65535),
    ("echo_s16", -32768),
    ("echo_u32", 2**32 - 1),
    ("echo_s32", -(2**31)),
    ("echo_u64", 2**64 - 1),
    ("echo_s64", -(2**63)),
    ("echo_f32", 1.5),
    ("echo_f64", math.pi),
    ("echo_f64", math.inf),
    ("echo_char", "🦀"),
    ("echo_string", "héllo wörld ✓"),
    ("echo_string", ""),
    ("echo_bytes", b"\x00\x01\xfe\xff" * 3),
    ("echo_bytes", b""),
    ("echo_list", [0, -1, 2**63 - 1, -(2**63)]),
    ("echo_list", []),
    ("echo_strings", ["a", "", "ü"]),
    ("echo_tuple", (7, "x", True)),
    ("echo_option", "some"),
    ("echo_option", None),
    ("echo_point", Point(-1, 2**40, "origin")),
    ("echo_shape", Circle(2.5)),
    ("echo_shape", Rect(Point(1, 2, "c"))),
    ("echo_shape", Empty()),
    ("echo_color", Color.GREEN),
    ("echo_perms", Perms.READ | Perms.EXEC),
    ("echo_perms", Perms(0)),
    (
        "echo_lines",
        [
            Line(Point(0, 0, "a"), Point(1, 1, "b"), ["x", "y"]),
            Line(Point(2, 2, ""), Point(3, 3, ""), []),
        ],
    ),
    ("maybe_shape", Rect(Point(5, 6, "nested"))),
    ("maybe_shape", None),
]


@pytest.mark.parametrize(
    ("hook", "value"), ROUND_TRIPS, ids=[f"{h}-{i}" for i, (h, _) in enumerate(ROUND_TRIPS)]
)
def test_round_trip(
    kitchen: tuple[pluggy.PluginManager, WasmPlugin], hook: str, value: Any
) -> None:
    """A value goes into the guest and comes back equal, with its Python type."""
    param = (
        "p"
        if hook in ("echo_point", "echo_perms")
        else "s"
        if hook == "echo_shape"
        else "c"
        if hook == "echo_color"
        else "x"
    )
    result = call(kitchen, hook, **{param: value})
    assert result == value
    assert type(result) is type(value)


def test_nan_round_trip(kitchen: tuple[pluggy.PluginManager, WasmPlugin]) -> None:
    """NaN survives an f64 round trip."""
    assert math.isnan(call(kitchen, "echo_f64", x=math.nan))


def test_result_ok_and_err(kitchen: tuple[pluggy.PluginManager, WasmPlugin]) -> None:
    """result ok is the return value; err raises PluginResultError carrying the payload."""
    assert call(kitchen, "divide", a=-7, b=2) == -3
    with pytest.raises(PluginResultError, match="division by zero") as info:
        call(kitchen, "divide", a=1, b=0)
    assert info.value.error == "division by zero"
    assert (info.value.plugin, info.value.hook) == ("kitchen", "divide")
    assert call(kitchen, "validate", name="bob") == "bob"
    with pytest.raises(PluginResultError) as info2:
        call(kitchen, "validate", name="")
    assert info2.value.error == Problem(22, "empty name")


def test_no_result_hook(kitchen: tuple[pluggy.PluginManager, WasmPlugin]) -> None:
    """A hook with no WIT result contributes nothing to the results list."""
    pm, _ = kitchen
    assert pm.hook.nothing() == []


@pytest.mark.parametrize(
    ("hook", "kwargs", "message"),
    [
        ("echo_u8", {"x": 256}, r"argument 'x': 256 is out of range for u8 \(0\.\.255\)"),
        ("echo_u32", {"x": -1}, "-1 is out of range for u32"),
        ("echo_s64", {"x": 2**63}, "out of range for s64"),
        ("echo_u32", {"x": True}, "expected int"),
        ("echo_u32", {"x": "1"}, "expected int"),
        ("echo_string", {"x": b"bytes"}, "expected str, got bytes"),
        ("echo_string", {"x": "bad \ud800 surrogate"}, "not valid Unicode"),
        ("echo_char", {"x": "ab"}, "one-character"),
        ("echo_list", {"x": [1, 2, 2**64]}, r"argument 'x'\[2\]: .* out of range for s64"),
        ("echo_list", {"x": [1, "2"]}, r"argument 'x'\[1\]: expected int"),
        (
            "echo_lines",
            {"x": [Line(Point(0, 0, "a"), Point(1, 2**70, "b"), [])]},
            r"argument 'x'\[0\]\.end\.y: .*out of range for s64",
        ),
        ("echo_tuple", {"x": (1, "x")}, "expected a tuple of 3 items"),
        ("echo_color", {"x": "green"}, None),
        ("echo_point", {"p": "nope"}, "expected Point"),
        (
            "echo_shape",
            {"s": Point(1, 2, "x")},
            r"expected a case of Shape \(Circle, Rect, Empty\)",
        ),
        ("echo_perms", {"p": {"read"}}, "expected Perms flags"),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_bad_arguments_rejected_before_wasmtime(
    kitchen: tuple[pluggy.PluginManager, WasmPlugin],
    hook: str,
    kwargs: dict[str, Any],
    message: str | None,
) -> None:
    """Wrong types and out-of-range values raise ArgumentError naming plugin, hook, argument."""
    pm, plugin = kitchen
    generation = plugin.instance.generation
    if hook == "echo_color":
        kwargs = {"c": "green"}
        message = r"expected a member of Color \(red, green, blue\)"
    with pytest.raises(ArgumentError, match=message) as info:
        getattr(pm.hook, hook)(**kwargs)
    assert info.value.plugin == "kitchen"
    assert info.value.hook == hook
    assert f"plugin 'kitchen', hook '{hook}'" in str(info.value)
    assert plugin.instance.generation == generation  # nothing reached the guest


def test_trap_in_python_guest(kitchen: tuple[pluggy.PluginManager, WasmPlugin]) -> None:
    """An exception inside the componentize-py guest is a PluginTrap; the next call works."""
    with pytest.raises(PluginTrap, match="plugin 'kitchen' trapped in hook 'crash'"):
        call(kitchen, "crash", x=3)
    assert call(kitchen, "echo_u32", x=5) == 5


def test_large_bytes_and_strings(kitchen: tuple[pluggy.PluginManager, WasmPlugin]) -> None:
    """1 MB of bytes and of text round-trip intact (packed list path)."""
    blob = bytes(range(256)) * 4096
    assert call(kitchen, "echo_bytes", x=blob) == blob
    text = "ü" * 500_000
    assert call(kitchen, "echo_string", x=text) == text


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    ints=st.lists(st.integers(-(2**63), 2**63 - 1), max_size=50),
    text=st.text(max_size=40),
    blob=st.binary(max_size=300),
    label=st.text(max_size=10),
    x=st.integers(-(2**63), 2**63 - 1),
)
def test_round_trips_are_identities(
    kitchen: tuple[pluggy.PluginManager, WasmPlugin],
    ints: list[int],
    text: str,
    blob: bytes,
    label: str,
    x: int,
) -> None:
    """Random lists, strings, bytes and records come back unchanged."""
    assert call(kitchen, "echo_list", x=ints) == ints
    assert call(kitchen, "echo_string", x=text) == text
    assert call(kitchen, "echo_bytes", x=blob) == blob
    assert call(kitchen, "echo_point", p=Point(x, -x if x > -(2**63) else 0, label)) == Point(
        x, -x if x > -(2**63) else 0, label
    )
