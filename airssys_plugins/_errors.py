"""The exceptions airssys-plugins raises.

Every error derives from :class:`PluginError` and from the builtin it resembles, so
callers can catch either::

    PluginError(Exception)
    +-- HookspecError(PluginError, TypeError)        a hookspec cannot be mapped to WIT
    +-- PluginLoadError(PluginError, OSError)         file unreadable, not a component
    +-- ContractMismatchError(PluginError, TypeError) exports do not fit the contract
    +-- PluginConflictError(PluginError, ValueError)  a plugin of that name is loaded
    +-- ArgumentError(PluginError, ValueError)        a hook argument cannot be lowered
    +-- CapabilityDenied(PluginError, PermissionError) asked for rights not granted
    +-- EngineConfigError(PluginError, ValueError)    engine settings that would crash
    +-- HookCallError(PluginError, RuntimeError)      the guest failed during a call
    |   +-- PluginTrap                                wasm trap: instance replaced
    |   +-- PluginTimeout(HookCallError, TimeoutError) the call ran past its deadline
    |   +-- PluginLimitExceeded                       fuel, memory, result size...
    |   +-- PluginABIError                            invalid UTF-8, wild pointer...
    |   +-- PluginExit                                the guest called wasi:cli/exit
    |   +-- HostFunctionError                         a host function the guest called failed
    +-- PluginResultError(PluginError)                a hook returned result::err
    +-- StaleResourceError(PluginError, ReferenceError) a resource handle no longer usable
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from . import _attrs as attrs

__all__ = [
    "ArgumentError",
    "CapabilityDenied",
    "ContractMismatchError",
    "EngineConfigError",
    "HostFunctionError",
    "HookCallError",
    "HookspecError",
    "Mismatch",
    "PluginABIError",
    "PluginConflictError",
    "PluginError",
    "PluginExit",
    "PluginLimitExceeded",
    "PluginLoadError",
    "PluginResultError",
    "PluginTimeout",
    "PluginTrap",
    "StaleResourceError",
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

    def __reduce__(self) -> tuple[Any, ...]:
        # The default rebuilds by calling cls(*self.args), which fails for every subclass
        # whose __init__ takes other arguments than its message (CapabilityDenied(plugin,
        # denied), ArgumentError's keyword-only fields...): rebuild from args and fields
        # instead, so errors cross process boundaries (batches run in worker processes).
        return (_rebuild, (type(self), self.args, dict(self.__dict__)))


def _rebuild(cls: type[PluginError], args: tuple[Any, ...], state: dict[str, Any]) -> PluginError:
    """Unpickle a :class:`PluginError` without calling its ``__init__``."""
    # The builtin that lays the object out (OSError for PluginTimeout): its __new__, not
    # ours (HookFailures.__new__ wants keywords) nor a smaller builtin's (not "safe").
    builtins = [c for c in cls.__mro__ if c.__module__ == "builtins"]
    builtin = max(builtins, key=lambda c: c.__basicsize__)
    error: PluginError = builtin.__new__(cls, *args)
    BaseException.__init__(error, *args)
    error.__dict__.update(state)
    return error


class HookspecError(PluginError, TypeError):
    """A hookspec cannot be expressed in WIT (unsupported or missing annotation).

    When several problems are found (in one hookspec, or in several of a class), one
    error lists them all: ``problems`` holds one ``HookspecError`` per problem (empty for
    a single problem, which is the error itself).
    """

    problems: tuple[HookspecError, ...] = ()

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
    ``guest_output`` is what the guest wrote to stderr during the failing call (its last
    lines, such as a Python traceback or a Rust panic message); its end is in the message.
    """

    reason: str = "trap"
    guest_output: tuple[str, ...] = ()


class PluginTrap(HookCallError):
    """The component trapped. Its instance is dead and was replaced by a fresh one."""


class PluginTimeout(HookCallError, TimeoutError):
    """The call ran past its deadline and was interrupted; the instance was replaced."""


class PluginLimitExceeded(HookCallError):
    """The guest hit a resource limit (fuel, memory, result size, instances)."""


class PluginABIError(HookCallError):
    """The guest broke the canonical ABI (invalid UTF-8, out-of-bounds pointer, bad tag)."""


class PluginExit(HookCallError):
    """The guest called ``wasi:cli/exit``; ``code`` is its exit status (None if unknown)."""

    code: int | None = None


class HostFunctionError(HookCallError):
    """A host function called by the guest raised; the original exception is ``__cause__``."""


class CapabilityDenied(PluginError, PermissionError):
    """A plugin asks for rights the host or the operator does not grant.

    ``denied`` lists every right refused, one line each.
    """

    def __init__(self, plugin: str, denied: Sequence[str]):
        self.denied = tuple(denied)
        lines = "\n".join(f"  - {d}" for d in self.denied)
        super().__init__(
            f"plugin {plugin!r} asks for {len(self.denied)} right(s) it is not granted:\n"
            f"{lines}\n"
            f"Grant them under [plugins.{plugin}] in the grants file (or the grants= argument), "
            "or remove them from the plugin's manifest.",
            plugin=plugin,
        )


class EngineConfigError(PluginError, ValueError):
    """Engine settings that would crash or misbehave, refused before the Engine exists."""


class PluginResultError(PluginError):
    """A hook returning ``result<T, E>`` returned ``err``; ``error`` is the converted payload."""

    def __init__(self, message: str, *, plugin: str | None, hook: str | None, error: Any):
        super().__init__(message, plugin=plugin, hook=hook)
        self.error = error


class StaleResourceError(PluginError, ReferenceError):
    """A resource handle of a plugin used after it stopped being valid: it was closed, it
    was given away (passed as ``own<...>``), or the plugin instance that made it was
    replaced (a trap, a restart, a reload). ``resource`` names its WIT resource,
    ``reason`` says which of these happened."""

    def __init__(
        self,
        message: str,
        *,
        plugin: str | None = None,
        hook: str | None = None,
        resource: str | None = None,
        reason: str | None = None,
    ):
        super().__init__(message, plugin=plugin, hook=hook)
        self.resource = resource
        self.reason = reason
