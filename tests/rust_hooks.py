"""The contract tests/guests/rust implements (``test:rust@1.0.0``): a string hook, a
bytes hook, a firstresult option hook, a record argument, a record result holding an
option, and a list of strings. The guest is built against the WIT this contract
generates (tests/test_rust_guest.py)."""

from __future__ import annotations

import attrs
import pluggy

from airssys_plugins import s32, u32

hookspec = pluggy.HookspecMarker("rustguest")
hookimpl = pluggy.HookimplMarker("rustguest")
PACKAGE = "test:rust@1.0.0"


@attrs.frozen
class Point:
    x: s32
    y: s32
    label: str


@attrs.frozen
class Summary:
    chars: u32
    words: u32
    longest: str | None


class RustHooks:
    @hookspec
    def transform(self, text: str) -> str:
        """Return a transformed version of ``text``."""

    @hookspec
    def invert(self, data: bytes) -> bytes:
        """Return ``data`` reversed, every byte complemented."""

    @hookspec(firstresult=True)
    def detect_language(self, text: str) -> str | None:
        """The language of ``text``, or None to let another plugin answer."""

    @hookspec
    def describe(self, point: Point) -> str:
        """Describe ``point`` in words."""

    @hookspec
    def summarize(self, text: str) -> Summary:
        """Count the characters and words of ``text`` and find its longest word."""

    @hookspec
    def split_words(self, text: str) -> list[str]:
        """The whitespace-separated words of ``text``."""
