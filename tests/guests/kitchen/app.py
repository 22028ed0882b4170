"""Kitchen-sink componentize-py test guest.

Every ``echo-*`` export returns its argument unchanged so the host side can check
value conversion round trips for every WIT type. Build with::

    componentize-py -d wit -w guest componentize app -o kitchen.wasm
"""

from componentize_py_types import Err
from wit_world import exports
from wit_world.exports import echo_color, echo_lines, echo_perms, echo_point, echo_shape
from wit_world.exports import maybe_shape, validate
from typing import List, Optional, Tuple


class EchoBool(exports.EchoBool):
    def echo_bool(self, x: bool) -> bool:
        return x


class EchoU8(exports.EchoU8):
    def echo_u8(self, x: int) -> int:
        return x


class EchoS8(exports.EchoS8):
    def echo_s8(self, x: int) -> int:
        return x


class EchoU16(exports.EchoU16):
    def echo_u16(self, x: int) -> int:
        return x


class EchoS16(exports.EchoS16):
    def echo_s16(self, x: int) -> int:
        return x


class EchoU32(exports.EchoU32):
    def echo_u32(self, x: int) -> int:
        return x


class EchoS32(exports.EchoS32):
    def echo_s32(self, x: int) -> int:
        return x


class EchoU64(exports.EchoU64):
    def echo_u64(self, x: int) -> int:
        return x


class EchoS64(exports.EchoS64):
    def echo_s64(self, x: int) -> int:
        return x


class EchoF32(exports.EchoF32):
    def echo_f32(self, x: float) -> float:
        return x


class EchoF64(exports.EchoF64):
    def echo_f64(self, x: float) -> float:
        return x


class EchoChar(exports.EchoChar):
    def echo_char(self, x: str) -> str:
        return x


class EchoString(exports.EchoString):
    def echo_string(self, x: str) -> str:
        return x


class EchoBytes(exports.EchoBytes):
    def echo_bytes(self, x: bytes) -> bytes:
        return x


class EchoList(exports.EchoList):
    def echo_list(self, x: List[int]) -> List[int]:
        return x


class EchoStrings(exports.EchoStrings):
    def echo_strings(self, x: List[str]) -> List[str]:
        return x


class EchoTuple(exports.EchoTuple):
    def echo_tuple(self, x: Tuple[int, str, bool]) -> Tuple[int, str, bool]:
        return x


class EchoOption(exports.EchoOption):
    def echo_option(self, x: Optional[str]) -> Optional[str]:
        return x


class EchoNestedOption(exports.EchoNestedOption):
    def echo_nested_option(self, x):  # Optional[Some[Optional[int]]]
        return x


class EchoPoint(exports.EchoPoint):
    def echo_point(self, p: echo_point.Point) -> echo_point.Point:
        return p


class EchoShape(exports.EchoShape):
    def echo_shape(self, s: echo_shape.Shape) -> echo_shape.Shape:
        return s


class EchoColor(exports.EchoColor):
    def echo_color(self, c: echo_color.Color) -> echo_color.Color:
        return c


class EchoPerms(exports.EchoPerms):
    def echo_perms(self, p: echo_perms.Perms) -> echo_perms.Perms:
        return p


class EchoLines(exports.EchoLines):
    def echo_lines(self, x: List[echo_lines.Line]) -> List[echo_lines.Line]:
        return x


class MaybeShape(exports.MaybeShape):
    def maybe_shape(self, x: Optional[maybe_shape.Shape]) -> Optional[maybe_shape.Shape]:
        return x


class Divide(exports.Divide):
    def divide(self, a: int, b: int) -> int:
        if b == 0:
            raise Err("division by zero")
        # Truncate toward zero (like C / Rust), not Python's floor division.
        # divide(-2**31, -1) = 2**31 does not fit in s32: lowering the result
        # traps the component (componentize-py OverflowError -> unreachable).
        q = abs(a) // abs(b)
        return -q if (a < 0) != (b < 0) else q


class Validate(exports.Validate):
    def validate(self, name: str) -> str:
        if not name:
            raise Err(validate.Problem(code=22, message="empty name"))
        return name


class Crash(exports.Crash):
    def crash(self, x: int) -> int:
        raise RuntimeError(f"kitchen guest crash({x}) on purpose")


class Nothing(exports.Nothing):
    def nothing(self) -> None:
        return None
