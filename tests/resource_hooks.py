"""The resources tests' hookspecs and resource classes (tests/test_resources.py), in a
module of their own: a test's new process imports them without importing the runtime's
resources module, which test_resources.py itself imports."""

from __future__ import annotations

import pluggy

from airssys_plugins import u32, wit_binding
from airssys_plugins.contract.annotations import Borrow, Own, resource

spec = pluggy.HookspecMarker("res")

COUNTERS = "test:res/counters@1.0.0"
DOCS = "test:res/docs@1.0.0"


@resource
class Counter:
    """A counter that lives in the plugin."""

    def __init__(self, start: u32) -> None: ...
    def get(self) -> u32: ...
    def inc(self, by: u32) -> None: ...
    def explode(self) -> None: ...
    @staticmethod
    def zero() -> Counter: ...


@resource
class Document:
    """A document the host owns; plugins read it through its methods."""

    def __init__(self, text: str) -> None:
        self.text = text

    def length(self) -> u32:
        return len(self.text)


class Hooks:
    @spec
    @wit_binding(f"{COUNTERS}#make")
    def make(self, start: u32) -> Counter: ...

    @spec
    @wit_binding(f"{COUNTERS}#peek")
    def peek(self, c: Borrow[Counter]) -> u32: ...

    @spec
    @wit_binding(f"{COUNTERS}#consume")
    def consume(self, c: Own[Counter]) -> u32: ...

    @spec
    @wit_binding(f"{COUNTERS}#boom")
    def boom(self) -> u32: ...

    @spec
    @wit_binding(f"{COUNTERS}#make-many")
    def make_many(self, n: u32) -> list[Counter]: ...

    @spec
    @wit_binding(f"{COUNTERS}#total")
    def total(self, cs: list[Borrow[Counter]]) -> u32: ...

    @spec
    @wit_binding("doclen")
    def doclen(self, d: Borrow[Document]) -> u32: ...

    @spec
    @wit_binding("open-and-measure")
    def open_and_measure(self, name: str) -> u32: ...

    @spec
    @wit_binding("keep")
    def keep(self, d: Own[Document]) -> u32: ...

    @spec
    @wit_binding("forge")
    def forge(self) -> u32: ...


def open_document(name: str) -> Document:
    return Document(name * 2)
