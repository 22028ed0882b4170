"""A Python guest with a resource of its own and a host resource it borrows and keeps."""

import wit_world
from wit_world import exports
from wit_world.imports import docs

from counters import Counter

KEPT: list[docs.Document] = []


class Counters(exports.Counters):
    def make(self, start: int) -> Counter:
        return Counter(start)

    def peek(self, c: Counter) -> int:
        return c.get()

    def consume(self, c: Counter) -> int:
        return c.get()

    def boom(self) -> int:
        raise RuntimeError("boom")

    def make_many(self, n: int) -> list[Counter]:
        return [Counter(i) for i in range(n)]

    def total(self, cs: list[Counter]) -> int:
        return sum(c.get() for c in cs)


class WitWorld(wit_world.WitWorld):
    def doclen(self, d: docs.Document) -> int:
        return d.length()

    def open_and_measure(self, name: str) -> int:
        with docs.open(name) as d:
            return d.length()

    def forge(self) -> int:
        raise RuntimeError("a Python guest cannot forge a handle; it traps instead")

    def keep(self, d: docs.Document) -> int:
        KEPT.append(d)
        return d.length()
