"""Contracts for tests/test_authoring.py: a small one (``test:authoring@1.0.0``: a string
hook, an integer hook, a firstresult option hook) that plugins in every language implement,
and one with every WIT type for the skeleton generators."""

from __future__ import annotations

import attrs
import pluggy

from airssys_plugins import u32

from .kitchen_hooks import KitchenHooks
from .kitchen_hooks import hookspec as kitchen_spec

hookspec = pluggy.HookspecMarker("authoring")
PACKAGE = "test:authoring@1.0.0"


class AuthoringHooks:
    @hookspec
    def greet(self, name: str) -> str:
        """Return a greeting for ``name``."""

    @hookspec
    def add(self, x: u32, y: u32) -> u32:
        """Return ``x + y``."""

    @hookspec(firstresult=True)
    def detect_language(self, text: str) -> str | None:
        """The language of ``text``, or None to let another plugin answer."""


@attrs.frozen
class Wrapper:
    value: u32


class TypeHooks(KitchenHooks):
    """Every WIT type a hookspec can declare (the kitchen contract), plus a hook with more
    than 16 flat parameters, a record result that flattens to one value, and parameter
    names that are keywords in C and JavaScript."""

    @kitchen_spec
    def wide(self, a: str, b: str, c: str, d: str, e: str, f: str, g: str, h: str, i: str) -> str:
        """Nine strings: 18 flat parameters, so they travel through memory."""

    @kitchen_spec
    def single(self, x: Wrapper) -> Wrapper:
        """A one-field record: its result is one flat value."""

    @kitchen_spec
    def keywords(self, default: str, new: u32) -> str:
        """Parameters named like C and JavaScript keywords."""
