"""Failure policies in pluggy's hook execution, and the only code that touches pluggy's
private names (``PluginManager._inner_hookexec``, ``HookCaller._hookimpls``,
``HookCaller._call_history``): :func:`wrap_hookexec` / :func:`unwrap_hookexec`,
:func:`watch_hookimpls`, :func:`historic_calls`.

pluggy has no public way to run code around each hook implementation, so
:class:`FailurePolicies` wraps ``pm._inner_hookexec`` (as pluggy's own
``add_hookcall_monitoring`` does) while a policy is in use, and puts pluggy's function
back on :meth:`FailurePolicies.uninstall` (``PluginHost.close()``). A wrapper that cannot
be taken out because something wrapped it since (another host, hook-call monitoring)
passes every call straight through from then on, and is skipped when the wrapper above
it is taken out.
"""

from __future__ import annotations

import contextvars
import copy
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, final

import pluggy
from pluggy import HookImpl

from .. import _log as logging
from .._errors import PluginError
from .supervision import POLICIES, FailurePolicy, HookFailures

__all__ = [
    "FailurePolicies",
    "call_policy",
    "historic_calls",
    "unwrap_hookexec",
    "watch_hookimpls",
    "wrap_hookexec",
]

log = logging.getLogger("airssys_plugins.supervision")


if TYPE_CHECKING:  # (a protocol only the type checker reads: not made at import)

    class HookExec(Protocol):
        """pluggy's ``PluginManager._inner_hookexec``."""

        def __call__(
            self,
            hook_name: str,
            hook_impls: Sequence[HookImpl],
            caller_kwargs: Mapping[str, object],
            firstresult: bool,
        ) -> object: ...


_CALL_POLICY: contextvars.ContextVar[FailurePolicy | None] = contextvars.ContextVar(
    "airssys_plugins_call_policy", default=None
)


def _check(policy: str) -> None:
    if policy not in POLICIES:
        raise ValueError(f"failure policy must be one of {POLICIES}, got {policy!r}")


@contextmanager
def call_policy(policy: FailurePolicy) -> Iterator[None]:
    """Apply ``policy`` to the hook calls made inside the ``with`` block (this thread)."""
    _check(policy)
    token = _CALL_POLICY.set(policy)
    try:
        yield
    finally:
        _CALL_POLICY.reset(token)


@final
class FailurePolicies:
    """Per-hook failure policies of one ``PluginManager``, applied by wrapping pluggy's
    hook execution from :meth:`install` to :meth:`uninstall`.

    Hooks under the default ``raise`` policy run exactly as before (one dict lookup
    extra); hosts that never use a policy keep pluggy's own call path.
    """

    def __init__(self, pm: pluggy.PluginManager, policies: Mapping[str, FailurePolicy]):
        self._pm = pm
        self.policies: dict[str, FailurePolicy] = dict(policies)
        self._wrapper: _PolicyHookExec | None = None
        if self.policies:
            self.install()

    @property
    def installed(self) -> bool:
        return self._wrapper is not None

    def set(self, hook: str, policy: FailurePolicy) -> None:
        _check(policy)
        self.install()
        if not hasattr(self._pm.hook, hook):
            raise ValueError(f"no hook named {hook!r}")
        self.policies[hook] = policy

    def call(self, hook: str, policy: FailurePolicy, kwargs: Mapping[str, Any]) -> Any:
        """``pm.hook.<hook>(**kwargs)`` under ``policy`` for this call only."""
        self.install()
        with call_policy(policy):
            return getattr(self._pm.hook, hook)(**kwargs)

    def install(self) -> None:
        if self._wrapper is None:
            self._wrapper = wrap_hookexec(
                self._pm, lambda inner: _PolicyHookExec(self._pm, inner, self.policies)
            )

    def resume(self) -> None:
        """Install again after :meth:`uninstall` if per-hook policies are set."""
        if self.policies and self._wrapper is None:
            self.install()

    def uninstall(self) -> None:
        """Give ``pm`` its hook execution back (the policies stay, for :meth:`install`)."""
        wrapper, self._wrapper = self._wrapper, None
        if wrapper is not None:
            unwrap_hookexec(self._pm, wrapper)


if TYPE_CHECKING:  # (a protocol only the type checker reads: not made at import)

    class Wrapper(HookExec, Protocol):
        """A wrapper of pluggy's hook execution: ``inner`` is what it wraps, and it passes
        every call straight to ``inner`` once ``active`` is False."""

        inner: HookExec
        active: bool


W = TypeVar("W", bound="Wrapper")


def wrap_hookexec(pm: pluggy.PluginManager, make: Callable[[HookExec], W]) -> W:
    """Install ``make(current hook execution)`` as ``pm``'s hook execution."""
    wrapper = make(_pluggy_hookexec(pm))
    pm._inner_hookexec = wrapper
    return wrapper


def unwrap_hookexec(pm: pluggy.PluginManager, wrapper: Wrapper) -> None:
    """Take ``wrapper`` out: at once if it is outermost (with any inactive wrappers below
    it), otherwise it passes calls through from now on and is skipped later."""
    wrapper.active = False
    if pm._inner_hookexec is wrapper:
        inner = wrapper.inner
        while getattr(inner, "active", True) is False and hasattr(inner, "inner"):
            inner = inner.inner  # a wrapper of another host, taken out since
        pm._inner_hookexec = inner


def watch_hookimpls(caller: pluggy.HookCaller, make: Callable[[str, list[Any]], list[Any]]) -> None:
    """Replace ``caller``'s private list of implementations with ``make(name, impls)``, a
    list subclass that sees each implementation pluggy registers (pluggy only inserts
    into that list, copies and slices it)."""
    impls = getattr(caller, "_hookimpls", None)
    if type(impls) is list:
        caller._hookimpls = make(caller.name, impls)  # type: ignore[misc]


def historic_calls(caller: object) -> list[Mapping[str, Any]]:
    """The keyword arguments of a historic hook's past calls (pluggy keeps them on the
    caller privately, with no public reader; read only)."""
    return [kwargs for kwargs, _ in getattr(caller, "_call_history", None) or ()]


def _pluggy_hookexec(pm: pluggy.PluginManager) -> HookExec:
    inner = getattr(pm, "_inner_hookexec", None)
    if not callable(inner):
        raise RuntimeError(
            f"pluggy {pluggy.__version__} has no PluginManager._inner_hookexec, which "
            "failure policies wrap; install a pluggy release airssys-plugins supports "
            "(see its pluggy requirement) or use no failure policies"
        )
    hookexec: HookExec = inner
    return hookexec


@final
class _PolicyHookExec:
    """What ``pm._inner_hookexec`` is while policies are installed."""

    __slots__ = ("active", "inner", "pm", "policies")

    def __init__(
        self, pm: pluggy.PluginManager, inner: HookExec, policies: Mapping[str, FailurePolicy]
    ):
        self.pm = pm
        self.inner = inner
        self.policies = policies
        self.active = True

    def __call__(
        self,
        hook_name: str,
        hook_impls: Sequence[HookImpl],
        caller_kwargs: Mapping[str, object],
        firstresult: bool,
    ) -> object:
        policy = _CALL_POLICY.get() or self.policies.get(hook_name, "raise")
        if policy == "raise" or not self.active:
            return self.inner(hook_name, hook_impls, caller_kwargs, firstresult)
        failures: list[Exception] = []
        guarded = [_guard(self.pm, impl, hook_name, policy, failures) for impl in hook_impls]
        result = self.inner(hook_name, guarded, caller_kwargs, firstresult)
        if failures and policy == "collect":
            names = ", ".join(str(getattr(e, "plugin", None) or "?") for e in failures)
            raise HookFailures(
                f"{len(failures)} implementation(s) of hook {hook_name!r} failed: {names}",
                failures,
                hook=hook_name,
            )
        return result


def _guard(
    pm: pluggy.PluginManager, impl: Any, hook: str, policy: str, failures: list[Exception]
) -> Any:
    if impl.hookwrapper or impl.wrapper:
        return impl  # wrappers see the outcome themselves
    function = impl.function
    plugin_name = pm.get_name(impl.plugin) or repr(impl.plugin)

    def guarded(*args: Any) -> Any:
        try:
            return function(*args)
        except Exception as exc:
            if not isinstance(exc, PluginError):
                exc.add_note(f"in plugin {plugin_name!r}, hook {hook!r}")
                exc.plugin = plugin_name  # type: ignore[attr-defined]
            if policy == "skip":
                log.warning(
                    "hook %s: plugin %r failed and was skipped: %s",
                    hook,
                    plugin_name,
                    exc,
                    extra={"plugin": plugin_name, "hook": hook},
                )
            failures.append(exc)
            return None

    clone = copy.copy(impl)
    clone.function = guarded
    return clone
