"""The exceptions airssys-plugins raises.

Every error derives from :class:`PluginError` and from the builtin it resembles, so
callers can catch either::

    PluginError(Exception)
    +-- HookspecError(PluginError, TypeError)        a hookspec cannot be mapped to WIT
    +-- PluginLoadError(PluginError, OSError)         file unreadable, not a component
    +-- ContractMismatchError(PluginError, TypeError) exports do not fit the contract
    +-- PluginConflictError(PluginError, ValueError)  a plugin of that name is loaded
    +-- ArgumentError(PluginError, ValueError)        a hook argument cannot be lowered
    +-- HookCallError(PluginError, RuntimeError)      the guest failed during a call
    |   +-- PluginTrap                                wasm trap: instance replaced
    |   +-- PluginTimeout(HookCallError, TimeoutError) the call ran past its deadline
    +-- PluginResultError(PluginError)                a hook returned result::err
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import attrs

__all__ = [
    "ArgumentError",
    "ContractMismatchError",
    "HookCallError",
    "HookspecError",
    "Mismatch",
    "PluginConflictError",
    "PluginError",
    "PluginLoadError",
    "PluginResultError",
    "PluginTimeout",
    "PluginTrap",
]


class PluginError(Exception):
    """Root of every error raised by airssys-plugins.

    ``plugin`` names the plugin involved (``None`` when no plugin is, e.g. a bad hookspec),
    ``hook`` the hook being checked or called.
    """

    def __init__(self, message: str, *, plugin: str | None = None, hook: str | None = None):
        super().__init__(message)
        self.plugin = plugin
        self.hook = hook


class HookspecError(PluginError, TypeError):
    """A hookspec cannot be expressed in WIT (unsupported or missing annotation)."""

    def __init__(self, message: str, *, hook: str | None = None, parameter: str | None = None):
        super().__init__(message, hook=hook)
        self.parameter = parameter


class PluginLoadError(PluginError, OSError):
    """The plugin file cannot be read or is not a valid WebAssembly component."""

    def __init__(self, message: str, *, plugin: str | None = None, path: str | None = None):
        super().__init__(message, plugin=plugin)
        self.path = path


@attrs.frozen
class Mismatch:
    """One difference between what the host's contract expects and what a component exports."""

    hook: str
    expected: str
    actual: str
    detail: str

    def __str__(self) -> str:
        return (
            f"hook {self.hook!r}: {self.detail}\n"
            f"    expected: {self.expected}\n"
            f"    actual:   {self.actual}"
        )


class ContractMismatchError(PluginError, TypeError):
    """A component's exports do not fit the host contract; ``mismatches`` lists every one."""

    def __init__(self, plugin: str, mismatches: Sequence[Mismatch]):
        self.mismatches = tuple(mismatches)
        lines = "\n".join(f"  - {m}" for m in self.mismatches)
        hooks = ", ".join(sorted({m.hook for m in self.mismatches}))
        super().__init__(
            f"plugin {plugin!r} does not fit the host contract "
            f"({len(self.mismatches)} problem(s) in hook(s) {hooks}):\n{lines}\n"
            "Rebuild the component against the WIT the host publishes "
            "(`airssys-plugins wit MODULE:OBJECT`), or fix the hookspec binding.",
            plugin=plugin,
            hook=self.mismatches[0].hook if self.mismatches else None,
        )


class PluginConflictError(PluginError, ValueError):
    """A plugin with this name is already loaded."""


class ArgumentError(PluginError, ValueError):
    """A hook argument cannot be passed to a component (wrong type, out of range)."""

    def __init__(
        self, message: str, *, plugin: str | None, hook: str | None, parameter: str | None
    ):
        super().__init__(message, plugin=plugin, hook=hook)
        self.parameter = parameter


class HookCallError(PluginError, RuntimeError):
    """A component failed while running a hook; the wasmtime error is ``__cause__``.

    ``reason`` is a short classification (``"unreachable executed"``, ``"timeout"``...).
    """

    reason: str = "trap"


class PluginTrap(HookCallError):
    """The component trapped. Its instance is dead and was replaced by a fresh one."""


class PluginTimeout(HookCallError, TimeoutError):
    """The call ran past its deadline and was interrupted; the instance was replaced."""


class PluginResultError(PluginError):
    """A hook returning ``result<T, E>`` returned ``err``; ``error`` is the converted payload."""

    def __init__(self, message: str, *, plugin: str | None, hook: str | None, error: Any):
        super().__init__(message, plugin=plugin, hook=hook)
        self.error = error
