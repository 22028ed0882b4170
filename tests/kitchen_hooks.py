"""Hookspecs matching tests/guests/kitchen (``test:kitchen@1.0.0``): one echo per WIT type."""

from __future__ import annotations

import dataclasses
import enum

import attrs
import pluggy

from airssys_plugins import (
    Result,
    char,
    f32,
    s8,
    s16,
    s32,
    s64,
    u8,
    u16,
    u32,
    u64,
    variant,
)

hookspec = pluggy.HookspecMarker("kitchen")
PACKAGE = "test:kitchen@1.0.0"


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


@dataclasses.dataclass(frozen=True)
class Line:
    start: Point
    end: Point
    tags: list[str]


@attrs.frozen
class Problem:
    code: u32
    message: str


class KitchenHooks:
    @hookspec
    def echo_bool(self, x: bool) -> bool: ...
    @hookspec
    def echo_u8(self, x: u8) -> u8: ...
    @hookspec
    def echo_s8(self, x: s8) -> s8: ...
    @hookspec
    def echo_u16(self, x: u16) -> u16: ...
    @hookspec
    def echo_s16(self, x: s16) -> s16: ...
    @hookspec
    def echo_u32(self, x: u32) -> u32: ...
    @hookspec
    def echo_s32(self, x: s32) -> s32: ...
    @hookspec
    def echo_u64(self, x: u64) -> u64: ...
    @hookspec
    def echo_s64(self, x: int) -> int: ...
    @hookspec
    def echo_f32(self, x: f32) -> f32: ...
    @hookspec
    def echo_f64(self, x: float) -> float: ...
    @hookspec
    def echo_char(self, x: char) -> char: ...
    @hookspec
    def echo_string(self, x: str) -> str: ...
    @hookspec
    def echo_bytes(self, x: bytes) -> bytes: ...
    @hookspec
    def echo_list(self, x: list[s64]) -> list[s64]: ...
    @hookspec
    def echo_strings(self, x: list[str]) -> list[str]: ...
    @hookspec
    def echo_tuple(self, x: tuple[u32, str, bool]) -> tuple[u32, str, bool]: ...
    @hookspec
    def echo_option(self, x: str | None) -> str | None: ...
    @hookspec
    def echo_point(self, p: Point) -> Point: ...
    @hookspec
    def echo_shape(self, s: Shape) -> Shape: ...
    @hookspec
    def echo_color(self, c: Color) -> Color: ...
    @hookspec
    def echo_perms(self, p: Perms) -> Perms: ...
    @hookspec
    def echo_lines(self, x: list[Line]) -> list[Line]: ...
    @hookspec
    def maybe_shape(self, x: Shape | None) -> Shape | None: ...
    @hookspec
    def divide(self, a: s32, b: s32) -> Result[s32, str]: ...
    @hookspec
    def validate(self, name: str) -> Result[str, Problem]: ...
    @hookspec
    def crash(self, x: u32) -> u32: ...
    @hookspec
    def nothing(self) -> None: ...
