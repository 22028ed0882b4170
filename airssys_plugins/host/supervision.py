"""Supervision and failure policies: long-running hosts keep serving while plugins fail.

Restart strategy (per plugin, actor-style): a trapped instance is discarded and the next
call gets a fresh one at once. After ``k >= 2`` consecutive failures the plugin backs off for
``min(backoff_base * 2**(k-2), backoff_max)`` seconds, during which calls to it fail fast
with :class:`PluginUnavailable` (no guest code runs): a single trap costs nothing, a crash
loop is slowed down. ``max_failures`` failures within
``window`` seconds open the plugin's circuit: it is blocked in pluggy (``pm.set_blocked``)
until :meth:`PluginHost.unblock` or until ``cooldown`` seconds have passed. A successful call
resets the consecutive count.

Failure policy (per hook, or per call): ``raise`` is pluggy's behaviour (the first exception
stops the hook call); ``skip`` logs a failing implementation and goes on with the others,
returning the healthy results; ``collect`` runs every implementation and then raises one
``ExceptionGroup`` of all failures, each naming its plugin. Python and WASM implementations
are treated alike. The policies are applied in pluggy's hook execution by
:mod:`airssys_plugins.host.hookexec`; circuits are opened and closed by
:mod:`airssys_plugins.host.circuits`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Final, Literal

from .. import _attrs as attrs
from .. import _log as logging
from .._errors import HookCallError, PluginError
from .._files import atomic_write

__all__ = [
    "CircuitFile",
    "FailurePolicy",
    "HookFailures",
    "SupervisorStatus",
    "PluginUnavailable",
    "RestartPolicy",
    "Supervisor",
]

log = logging.getLogger("airssys_plugins.supervision")

FailurePolicy = Literal["raise", "skip", "collect"]
POLICIES: Final = ("raise", "skip", "collect")


class PluginUnavailable(HookCallError):
    """The plugin is backing off after failures, or its circuit is open."""


class HookFailures(PluginError, ExceptionGroup):
    """Every implementation that failed in a hook call under the ``collect`` policy."""

    def __new__(cls, message: str, exceptions: Sequence[Exception], *, hook: str) -> HookFailures:
        self = super().__new__(cls, message, exceptions)
        self.hook = hook
        self.plugin = None
        return self

    def __init__(self, message: str, exceptions: Sequence[Exception], *, hook: str):
        pass

    def derive(self, excs: Sequence[Exception]) -> HookFailures:  # type: ignore[override]
        return HookFailures(self.message, excs, hook=self.hook or "")


@attrs.frozen
class RestartPolicy:
    """How a plugin is restarted after failures and when its circuit opens."""

    max_failures: int = 5
    window: float = 60.0
    cooldown: float | None = 30.0
    backoff_base: float = 0.05
    backoff_max: float = 5.0


@attrs.frozen
class SupervisorStatus:
    """A plugin's supervision state: ``running``, ``backoff`` or ``open`` (blocked)."""

    name: str
    state: str
    recent_failures: int
    consecutive_failures: int
    restarts: int
    last_error: str | None
    retry_at: float | None


def _first_line(exc: BaseException) -> str:
    """The error's headline (guest output and backtrace lines follow it)."""
    return str(exc).partition("\n")[0]


def _with_next(message: str, what_next: str) -> str:
    """``message`` with ``what_next`` ending its first line (guest output follows it)."""
    first, newline, rest = message.partition("\n")
    return f"{first}; {what_next}{newline}{rest}"


#: Guards the counters of every supervisor: taken only when a call fails, or succeeds
#: after failures, so one lock for all plugins costs nothing and saves one per plugin.
_COUNTS_LOCK: Final = threading.Lock()


class Supervisor:
    """Failure bookkeeping for one plugin."""

    __slots__ = (
        "consecutive",
        "failures",
        "last_error",
        "name",
        "on_open",
        "open",
        "policy",
        "restarts",
        "retry_at",
    )

    def __init__(
        self,
        name: str,
        policy: RestartPolicy,
        on_open: Callable[[str, str], None],
    ):
        self.name = name
        self.policy = policy
        self.on_open = on_open
        # times of recent failures: a list made at the first failure (an idle plugin's
        # supervisor holds the shared empty tuple; a list costs 56 bytes, a deque 624)
        self.failures: list[float] | tuple[()] = ()
        self.consecutive = 0
        self.restarts = 0
        self.last_error: str | None = None
        self.retry_at: float | None = None
        self.open = False

    def before_call(self, hook: str) -> None:
        if self.open:  # pluggy no longer calls it; direct calls are refused too
            raise PluginUnavailable(
                f"plugin {self.name!r}: circuit open after repeated failures "
                f"(last error: {self.last_error}); unblock it or wait for the cool-down",
                plugin=self.name,
                hook=hook,
            )
        retry_at = self.retry_at
        if retry_at is not None and time.monotonic() < retry_at:
            raise PluginUnavailable(
                f"plugin {self.name!r} is restarting after {self.consecutive} failure(s); "
                f"retry in {retry_at - time.monotonic():.2f} s (last error: {self.last_error})",
                plugin=self.name,
                hook=hook,
            )

    def success(self) -> None:
        if self.consecutive:
            with _COUNTS_LOCK:
                self.consecutive = 0
                self.retry_at = None

    def failure(self, exc: BaseException) -> None:
        """Count a failed call; the error's message then says what happens next under
        the restart policy (a fresh instance, a backoff, or an open circuit)."""
        now = time.monotonic()
        delay = 0.0
        with _COUNTS_LOCK:
            failures = self.failures
            if not isinstance(failures, list):
                failures = self.failures = []
            failures.append(now)
            while failures and now - failures[0] > self.policy.window:
                del failures[0]
            self.consecutive += 1
            self.restarts += 1
            self.last_error = f"{type(exc).__name__}: {_first_line(exc)}"
            if self.consecutive >= 2:  # one trap restarts at once; a crash loop backs off
                delay = min(
                    self.policy.backoff_base * 2 ** (self.consecutive - 2), self.policy.backoff_max
                )
                self.retry_at = now + delay
            should_open = not self.open and len(self.failures) >= self.policy.max_failures
            if should_open:
                self.open = True
            opened = self.open
        if isinstance(exc, HookCallError) and exc.plugin == self.name and exc.args:
            exc.args = (_with_next(str(exc.args[0]), self._next(opened, delay)), *exc.args[1:])
        if should_open:
            reason = (
                f"{len(self.failures)} failures within {self.policy.window:g} s "
                f"(last: {self.last_error})"
            )
            self.on_open(self.name, reason)

    def _next(self, opened: bool, delay: float) -> str:
        """What the next call of this plugin meets, in words."""
        if opened:
            cooldown = self.policy.cooldown
            after = f" or for the {cooldown:g} s cool-down" if cooldown is not None else ""
            return (
                f"its circuit is now open ({len(self.failures)} failures within "
                f"{self.policy.window:g} s): pluggy skips it and direct calls are refused "
                f"until host.unblock({self.name!r}){after}"
            )
        if delay:
            return (
                f"after {self.consecutive} failures in a row its calls are refused for "
                f"{delay:.2f} s (restart backoff), then run on a fresh instance"
            )
        return "the next call runs on a fresh instance"

    def reset(self) -> None:
        with _COUNTS_LOCK:
            self.failures = ()
            self.consecutive = 0
            self.retry_at = None
            self.open = False

    def status(self) -> SupervisorStatus:
        now = time.monotonic()
        if self.open:
            state = "open"
        elif self.retry_at is not None and now < self.retry_at:
            state = "backoff"
        else:
            state = "running"
        recent = sum(1 for t in self.failures if now - t <= self.policy.window)
        return SupervisorStatus(
            self.name,
            state,
            recent,
            self.consecutive,
            self.restarts,
            self.last_error,
            self.retry_at if state == "backoff" else None,
        )


# --------------------------------------------------------------------------- shared state


class CircuitFile:
    """Open circuits of one app, in ``<user state dir>/<app>/circuits.json``, so that
    ``airssys-plugins list`` (another process) can show them."""

    def __init__(self, path: Path | Callable[[], Path]):
        self._path = path
        self._lock = threading.Lock()
        # plugins whose circuit this process recorded as open: only their entries are
        # cleared (an unload of a plugin whose circuit never opened touches no file)
        self._recorded: set[str] = set()

    @property
    def path(self) -> Path:
        """The file (an app's default is found when first needed: a circuit opens, or
        ``airssys-plugins list`` reads it)."""
        if not isinstance(self._path, Path):
            self._path = self._path()
        return self._path

    @classmethod
    def for_app(cls, app: str) -> CircuitFile:
        def default() -> Path:
            import platformdirs  # on first use: ~11 ms of every start otherwise

            return Path(platformdirs.user_state_dir(app)) / "circuits.json"

        return cls(default)

    def read(self) -> dict[str, dict[str, Any]]:
        import json

        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def set(self, plugin: str, reason: str | None) -> None:
        """Record ``plugin``'s circuit as open for ``reason``, or as closed (None: only
        when this process recorded it open)."""
        with self._lock:
            if reason is None:
                if plugin not in self._recorded:
                    return
                self._recorded.discard(plugin)
                data = self.read()
                if data.pop(plugin, None) is None:
                    return
            else:
                self._recorded.add(plugin)
                data = self.read()
                data[plugin] = {"state": "open", "reason": reason, "since": time.time()}
            import json  # imported here: most hosts never record a circuit

            try:
                atomic_write(self.path, json.dumps(data, indent=2, sort_keys=True))
            except OSError as exc:  # state display must never break the host
                log.warning("cannot record circuit state in %s: %s", self.path, exc)
