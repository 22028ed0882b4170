"""The resource of interface counters (componentize-py looks for it here)."""

from typing import Self

from wit_world.exports import counters


class Counter(counters.Counter):
    def __init__(self, start: int) -> None:
        self.value = start

    def get(self) -> int:
        return self.value

    def inc(self, by: int) -> None:
        self.value += by

    def explode(self) -> None:
        raise RuntimeError("explode")

    @classmethod
    def zero(cls) -> Self:
        return cls(0)
