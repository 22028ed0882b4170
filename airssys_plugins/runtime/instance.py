"""A loaded component, its sandboxed instance, and the call path into it."""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import functools
import math
import re
import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable, Sequence, Set
from typing import Any, Final, TypeVar, cast, final

from wasmtime import Store, WasmtimeError
from wasmtime.component import Instance

from .. import _attrs as attrs
from .. import _log as logging
from .. import _re
from .._errors import (
    ArgumentError,
    CapabilityDenied,
    HookCallError,
    HostFunctionError,
    PluginABIError,
    PluginExit,
    PluginLimitExceeded,
    PluginLoadError,
    PluginTimeout,
    PluginTrap,
)
from ..contract import wit
from . import cancel as _cancel
from . import capi
from . import engine as _engine
from . import rawabi as _rawabi
from .callbacks import RawImports, callers, register_context, unregister_context

# The C functions themselves, not wasmtime-py's Python wrappers around them.
from .capi import call as _call
from .capi import error_from_ptr as _error_from_ptr
from .capi import set_epoch_deadline as _set_deadline
from .capi import set_fuel as _set_fuel
from .capi import val_delete as _delete
from .convert import (
    U64,
    VAL,
    ConvertError,
    Lift,
    Lower,
    Measure,
    is_byte_list,
    latin1_lifter,
    lifter,
    lowerer,
    measure_latin1,
    measure_latin1_exact,
    measurer,
)
from .guestmem import GuestMemoryError
from .image import ComponentImage
from .measured import INVALID
from .rawabi import (
    RAW_MIN_BYTES,
    GuestCallError,
    RawBinding,
    RawSignature,
    RawState,
    ResultTooLarge,
)
from .sandbox import HostLinker, SandboxSpec, StdioLogger, configure_store, default_linker

__all__ = ["BoundFunc", "ComponentImage", "PluginInstance", "classify_error"]

log = logging.getLogger("airssys_plugins.runtime")

_byref = ctypes.byref
_current_scope = _cancel.current_scope

# wasmtime reports every component-call failure as WasmtimeError; the cause is only in the
# message. (substring, reason, exception class) in match order. tests/test_runtime.py pins
# each against a real trap so a wasmtime upgrade that rewords one fails a test.
TRAP_TABLE: Final[tuple[tuple[str, str, type[HookCallError]], ...]] = (
    # wasmtime's own internal errors ("BUG: deferred host scope has no call context" when a
    # host function takes two borrows inside records): first, since the explanation that
    # follows them in the message ("...not thought to be reachable...") says nothing.
    ("BUG: ", "runtime bug", PluginTrap),
    ("wasm trap: interrupt", "timeout", PluginTimeout),
    ("all fuel consumed", "fuel exhausted", PluginLimitExceeded),
    ("instance count too high", "too many instances", PluginLimitExceeded),
    ("memory count too high", "too many memories", PluginLimitExceeded),
    ("table count too high", "too many tables", PluginLimitExceeded),
    # a memory (or table) whose declared minimum is over its share of the plugin's limit
    ("exceeds memory limits", "memory limit", PluginLimitExceeded),
    ("exceeds table limits", "memory limit", PluginLimitExceeded),
    ("resource limit exceeded", "resource limit exceeded", PluginLimitExceeded),
    # wasmtime's own cap on the data one call copies between host and guest (128 MiB of
    # host values, not configurable through the C API): a result whose entries alias one
    # region of guest memory hits it before max_result_bytes can be checked.
    ("hostcalls has been exhausted", "too much data copied", PluginLimitExceeded),
    ("exit status", "exit", PluginExit),
    ("call stack exhausted", "stack overflow", PluginTrap),
    ("unreachable", "unreachable executed", PluginTrap),
    ("out of bounds memory access", "out-of-bounds memory access", PluginTrap),
    # Canonical ABI violations, in wasmtime 50's words (tests/test_hostile_calls.py has one
    # hostile component per row): the guest lifted or lowered a value wrongly.
    ("realloc return: beyond end of memory", "realloc out of bounds", PluginABIError),
    ("realloc return: result not aligned", "realloc misaligned", PluginABIError),
    ("pointer is not aligned", "misaligned pointer", PluginABIError),
    ("return pointer not aligned", "misaligned pointer", PluginABIError),
    ("out of bounds of memory", "out-of-bounds pointer", PluginABIError),
    ("invalid utf-8", "invalid UTF-8", PluginABIError),
    ("discriminant", "invalid discriminant", PluginABIError),
    ("out of range for `char`", "invalid char", PluginABIError),
    ("integer divide by zero", "division by zero", PluginTrap),
    ("cannot enter component instance", "instance already poisoned", PluginTrap),
)

# How to fix a limit a plugin hit while starting (see runtime/sandbox.py for the counts).
_LIMIT_FIXES: Final = {
    "too many instances": "Raise Limits(instances=...) if the plugin is trusted.",
    "too many memories": (
        "The plugin's memory limit is shared by the linear memories its component creates "
        "(each module and component once per instantiation)."
    ),
    "memory limit": (
        "The plugin's memory limit is shared by the linear memories and tables its component "
        "creates, and one of them starts larger than its share: raise Limits(memory=...) if "
        "the plugin is trusted."
    ),
    "too many tables": "Raise Limits(tables=...) if the plugin is trusted.",
    "fuel exhausted": "Raise Limits(fuel=...) if the plugin is trusted.",
}

#: Seconds the interpreter's exit waits for each call still in flight.
_EXIT_WAIT: Final = 1.0


@atexit.register
def _close_all() -> None:
    """Close every live Store before the interpreter exits (a Store whose WASI stdio goes
    to Python callbacks can panic in Rust at exit otherwise). The live ones are those
    the callbacks' context table holds: an instance is in it from its instantiation
    until its store is closed (a weak set of its own cost ~120 bytes an instance)."""
    for instance in callers():
        if isinstance(instance, PluginInstance):
            with contextlib.suppress(Exception):
                instance.close(wait=_EXIT_WAIT)  # a call that never returns cannot hang exit


def _exit_code(message: str) -> int | None:
    match = re.search(r"exit status (-?\d+)", message)
    return int(match.group(1)) if match else None


#: Reasons of the trap table that are canonical ABI violations (the raw route's checks
#: use the same words, see rawabi).
_ABI_REASONS: Final = frozenset(r for _, r, cls in TRAP_TABLE if cls is PluginABIError)
#: What call_raw returns when the call must take another route.
_NOT_RAW: Final[Any] = object()


def classify_error(message: str) -> tuple[str, type[HookCallError]]:
    """The reason and exception class for a wasmtime error message."""
    for needle, reason, cls in TRAP_TABLE:
        if needle in message:
            return reason, cls
    return "trap", PluginTrap


def _headline(message: str) -> str:
    """The informative line of a wasmtime error (the trap, not the backtrace header)."""
    lines = [line.strip() for line in message.strip().splitlines() if line.strip()]
    bug = next((line for line in lines if line.startswith("BUG: ")), None)
    if bug is not None:  # wasmtime's own error, then a paragraph asking for a bug report
        return bug
    for line in lines:
        if "wasm trap:" in line or any(needle in line for needle, _, _ in TRAP_TABLE):
            return line
    return lines[-1] if lines else ""


def _wasmtime_version(message: str) -> str:
    """The ``version: 50.0.0`` line wasmtime writes after a ``BUG:`` line."""
    found = re.search(r"^\s*version: (\S+)", message, re.MULTILINE)
    return found.group(1) if found else "unknown"


#: Frames of a wasm backtrace shown in a trap's message, and guest stderr lines.
_FRAMES: Final = 4
_OUTPUT_LINES: Final = 3
# Lines of guest runtimes that say nothing about the failure.
_NOISE: Final = _re.compile(r"^note: run with `RUST_BACKTRACE=1`")
# Frames of the guest's abort and panic machinery: where it died, not what failed.
_MACHINERY: Final = _re.compile(
    r"abort|panic|__rust|rust_begin_unwind|std::sys::|std::process::|core::panicking|"
    r"__wasi_proc_exit|_Exit|wit_dylib_export_call"
)


def _guest_detail(output: Sequence[str], message: str) -> str:
    """The end of the guest's stderr (a traceback's exception line) and the named frames
    of the wasm backtrace in ``message``, as lines for an error message."""
    parts = []
    printed = [line for line in output if line.strip() and not _NOISE.search(line)]
    if "Traceback (most recent call last):" in output:  # Python: where, and the exception
        start = len(output) - 1 - output[::-1].index("Traceback (most recent call last):")
        where = [i for i in range(start, len(output)) if output[i].startswith("  File ")]
        end = next((i for i in range(start, len(output)) if not output[i].strip()), len(output))
        first = where[-1] if where else start
        printed = [line for line in output[first:end] if line.strip()]
    if printed:
        shown = "\n".join(f"  {line}" for line in printed[-_OUTPUT_LINES:])
        parts.append(f"\nthe guest wrote to stderr (all of it is in guest_output):\n{shown}")
    frames = re.findall(r"^\s*\d+:\s+(?:0x[0-9a-f]+ - )?(\S.*)$", message, flags=re.M)
    named = [f for f in frames if "!" in f and not re.search(r"!<wasm function \d+>$", f)]
    useful = [f for f in named if not _MACHINERY.search(f.split("!", 1)[1])] or named
    runs: list[list[Any]] = []  # [frame, count]: a recursion is one line
    for frame in useful:
        if runs and runs[-1][0] == frame:
            runs[-1][1] += 1
        else:
            runs.append([frame, 1])
    if runs:
        shown = "\n".join(
            f"  {frame}" + (f" (x{count})" if count > 1 else "") for frame, count in runs[:_FRAMES]
        )
        rest = sum(count for _, count in runs[_FRAMES:])
        more = f"\n  ... {rest} more frame(s)" if rest else ""
        parts.append(f"\nwasm backtrace, innermost first:\n{shown}{more}")
    return "".join(parts)


def _startup_timeout(plugin: str, seconds: float) -> PluginTimeout:
    # made here, not bound to a local of the raising frame: the traceback would hold the
    # error itself (a cycle), keeping the failed instance and its mapped code alive
    late = PluginTimeout(
        f"plugin {plugin!r} did not finish starting within {seconds:g} s: its start-up code "
        "was interrupted. Raise Limits(startup_timeout=...) if it really needs longer",
        plugin=plugin,
    )
    late.reason = "start-up timeout"
    return late


def _ticks(seconds: float | None) -> int:
    """Epoch ticks for a deadline of ``seconds``, so that it never ends early.

    In any ``seconds`` of wall time the ticker makes at most ``ceil(seconds / tick)``
    ticks of its own schedule plus the ``CATCH_UP`` it makes up at once after being held
    up (see engine.tick), and a deadline set between its two counters' increments starts
    one tick late. A deadline of one more tick than all of those cannot be reached before
    ``seconds`` have passed; it ends at most about (``CATCH_UP`` + 2) ticks after them.
    """
    if seconds is None or not seconds < _NO_DEADLINE_SECONDS:  # also inf and NaN
        return _NO_DEADLINE
    return max(1, math.ceil(seconds / _engine.EPOCH_TICK)) + _engine.CATCH_UP + 2


#: The deadline of "no timeout", in ticks: ~146 years of ticks, well inside the u64 the
#: C API takes; a timeout of that many seconds or more (1e308, inf) means the same.
_NO_DEADLINE: Final = 2**62
_NO_DEADLINE_SECONDS: Final = 2**32


_NO_ARGS: Final = (VAL * 0)()

#: A result of one string (or one latin1 byte buffer) cannot alias: wasmtime's copy of it
#: is at most the guest's memory. When the plugin's memory limit is at most this many
#: times its max_result_bytes (256 MiB and 64 MiB by default), such a result keeps the
#: single call and is measured after the copy; any other result with a string or a list
#: is measured in guest memory first.
_SINGLE_BUFFER_SHARE: Final = 4


def _buffers(t: wit.WitType | None, latin1: bool) -> float:
    """How many strings (or lists: infinitely many) one value of ``t`` can hold at once."""
    if t is None:
        return 0
    if isinstance(t, wit.Prim):
        return 1 if t.name == "string" else 0
    if isinstance(t, wit.ListT):
        return 1 if latin1 and is_byte_list(t) else math.inf
    if isinstance(t, wit.TupleT):
        return sum(_buffers(e, False) for e in t.elements)
    if isinstance(t, wit.RecordT):
        return sum(_buffers(f, False) for _, f in t.fields)
    if isinstance(t, wit.OptionT):
        return _buffers(t.inner, False)
    if isinstance(t, wit.ResultT):
        return max(_buffers(t.ok, False), _buffers(t.err, False))
    if isinstance(t, wit.VariantT):
        return max((_buffers(c, False) for _, c in t.cases), default=0)
    return 0


def _too_large(
    plugin: str, hook: str, size: int, limit: int, *, before_copy: bool = False
) -> PluginLimitExceeded:
    where = " (measured in its memory, before copying)" if before_copy else ""
    amount = f"{size:,} bytes or more" if before_copy else f"{size:,} bytes"
    too_large = PluginLimitExceeded(
        f"plugin {plugin!r} returned {amount} from hook {hook!r}{where}, above its "
        f"limit of {limit:,} bytes; raise Limits(max_result_bytes=...) if it is trusted",
        plugin=plugin,
        hook=hook,
    )
    too_large.reason = "result too large"
    return too_large


def _is_scalar(t: wit.WitType | None) -> bool:
    """Whether a value of this type owns no C-side memory (so needs no delete)."""
    return isinstance(t, wit.Prim) and t.name != "string"


@attrs.frozen(eq=False)
class BoundFunc:
    """A hook's call plan: where the function is and its converters, built once."""

    hook: str
    interface: str | None
    function: str
    param_names: tuple[str, ...]
    lowers: tuple[Lower, ...]
    lift: Lift | None
    index: Any  # wasmtime ExportIndex
    scalar_params: bool = False
    scalar_result: bool = False
    measure: Measure | None = None
    #: For byte-buffer calls: the exact result size when ``measure``'s bound is over.
    exact_measure: Measure | None = None
    #: Per-hook deadline in seconds overriding the plugin's (None: the plugin's).
    timeout: float | None = None
    #: The raw byte route of this function (see rawabi), taken for large payloads.
    raw: RawBinding | None = None
    #: Export names of the lift measuring the result in guest memory and of the real
    #: lift of the measured result (see :mod:`.measure`); None: measured after copying.
    measured: tuple[str, str] | None = None
    #: The result holds one string (or one latin1 byte buffer) and no other list: its
    #: copy is bounded by the guest's memory (see _SINGLE_BUFFER_SHARE).
    single_buffer: bool = False
    arity: int = attrs.field(init=False)
    ticks: int | None = attrs.field(init=False)
    params_type: Any = attrs.field(init=False)

    @arity.default
    def _arity(self) -> int:
        return len(self.lowers)

    @params_type.default
    def _params_type(self) -> Any:
        return _val_array(len(self.lowers))

    @ticks.default
    def _ticks_default(self) -> int | None:
        return None if self.timeout is None else _ticks(self.timeout)


class PluginInstance:
    """One plugin's Store and component instance, guarded by a lock.

    A trap kills a component instance for good; the next call gets a fresh one, and
    ``on_new_instance`` (e.g. historic-hook replay) runs after each re-instantiation.
    ``context`` is the host layer's per-plugin state, handed to host functions.
    """

    # One per loaded plugin (and per pool slot): slots instead of a dict of its ~30
    # members; past 30 attributes CPython stops sharing instance dict keys, and each
    # instance then carried a full dict of 1.5 KiB.
    __slots__ = (
        "__weakref__",  # runtime/resources.py keeps guards per instance, weakly
        "_active",
        "_bound",
        "_callback_context",
        "_context",
        "_deadline_epoch",
        "_deadline_ticks",
        "_fuel",
        "_funcs",
        "_hard_deadline",
        "_instance",
        "_lock",
        "_measure_limit",
        "_memory_bounds_results",
        "_needs_wasi",
        "_raw",
        "_raw_large",
        "_ref",
        "_scope",
        "_stderr",
        "_stopped",
        "_store",
        "_ticks",
        "_timeout",
        "context",
        "generation",
        "host_error",
        "image",
        "linker",
        "on_new_instance",
        "raw_imports",
        "sandbox",
    )

    def __init__(
        self,
        image: ComponentImage,
        *,
        sandbox: SandboxSpec | None = None,
        linker: HostLinker | None = None,
        context: object = None,
        on_new_instance: Callable[[], None] | None = None,
    ):
        self.image = image
        self.sandbox = sandbox or SandboxSpec()
        if self.sandbox.fuel is not None and not image.fuel:
            raise ValueError(
                f"plugin {image.name!r} has a fuel limit: load its image with fuel=True"
            )
        self.linker = linker or default_linker()
        self.context = context
        self.timeout = self.sandbox.timeout
        self.on_new_instance = on_new_instance
        self.generation = 0
        #: Set by a failing host function; read (and cleared) by the call that trapped.
        self.host_error: BaseException | None = None
        self._lock = threading.RLock()
        self._active = False
        self._store: Store | None = None
        self._instance: Instance | None = None
        # The current instance's functions, as pointers to their wasmtime structs (the byref
        # keeps the struct alive; the Func wrapper is not needed): the first one prepared in
        # two members (most plugins call one hook), any other in a dict made for the second,
        # id(BoundFunc) -> its pointer (a tuple of two for a result measured in guest memory)
        self._bound: BoundFunc | None = None
        self._ref: Any = None
        self._funcs: dict[int, Any] = _NO_FUNCS
        self._context: Any = None  # the current Store's context pointer
        self._fuel = self.sandbox.fuel
        # The epoch count and ticks of the store's last deadline: while neither changed,
        # the deadline still stands and need not be set again (~0.6 us a call).
        self._deadline_epoch = -1
        self._deadline_ticks = 0
        # Cancellable calls (see runtime/cancel.py): the running call's scope, the epoch
        # its own timeout ends at, why the deadline callback stopped it, and the context of
        # the store the callback is installed on.
        self._scope: _cancel.CancelScope | None = None
        self._hard_deadline = 0
        self._stopped: str | None = None
        self._stderr: StdioLogger | None = None  # the current Store's, for failed calls
        self._callback_context: Any = None
        # The raw route's state for the current instance (memory found on first use), and
        # the raw bindings whose last result was large (kept across instances).
        self._raw: RawState | None = None
        self._raw_large: Set[int] = _NO_IDS  # (a set once one is large) and raw imports:
        self.raw_imports = RawImports(image.raw_imports) if image.raw_imports else None
        self._needs_wasi = any(i.startswith("wasi:") for i in image.imports)
        # Results are measured in guest memory before they are copied (see .measure).
        limit = self.sandbox.max_result_bytes
        self._measure_limit = None if image.measure_limit is None or limit is None else limit
        memory = self.sandbox.memory
        self._memory_bounds_results = (
            limit is not None and memory is not None and memory <= _SINGLE_BUFFER_SHARE * limit
        )
        _check_imports(self.image, self.linker.interfaces, self.sandbox.interfaces)
        _engine.start_ticker()

    @property
    def name(self) -> str:
        return self.image.name

    @property
    def timeout(self) -> float | None:
        """Per-call deadline in seconds (``None``: none)."""
        return self._timeout

    @timeout.setter
    def timeout(self, seconds: float | None) -> None:
        self._timeout = seconds
        self._ticks = _ticks(seconds)

    def time_left(self) -> float | None:
        """Seconds left before the deadline of the call running now (None: no deadline);
        a host function serving this call may not take longer than this."""
        if self._deadline_ticks >= 2**62:
            return None
        ticks = self._deadline_epoch + self._deadline_ticks - _engine.epochs
        return ticks * _engine.EPOCH_TICK

    def may_call(self, interface: str) -> bool:
        """Whether this plugin is granted host interface ``interface``."""
        return wit.unversioned(interface) in self.sandbox.interfaces

    def instantiate(self) -> None:
        """Create the instance now (loading does this, so start-up failures show at once)."""
        with self._lock:
            if self._instance is None:
                self._instantiate()

    def _instantiate(self) -> Instance:
        fuel = self.image.fuel
        store = Store(_engine.engine(fuel))
        self._stderr = configure_store(
            store, self.sandbox, self._needs_wasi, self.name, fuel=fuel, layout=self.image.layout
        )
        # Start-up code (start functions) is always bounded; each call then sets its own.
        startup = self.sandbox.startup_timeout
        store.set_epoch_deadline(_ticks(startup))
        register_context(context := capi.store_context(store), self)
        try:
            instance = self.linker.for_engine(fuel).instantiate(store, self.image.component)
        except WasmtimeError as exc:
            unregister_context(context)
            store.close()
            message = _headline(str(exc))
            if classify_error(str(exc))[1] is PluginTimeout:
                raise _startup_timeout(self.name, startup) from exc
            reason, kind = classify_error(str(exc))
            if kind is PluginLimitExceeded:  # fuel or resource limits hit while starting
                over = PluginLimitExceeded(
                    f"plugin {self.name!r} failed to start ({reason}): {message}. "
                    f"{_LIMIT_FIXES.get(reason, 'Raise the limit if the plugin is trusted.')}",
                    plugin=self.name,
                )
                over.reason = reason
                raise over from exc
            raise PluginLoadError(
                f"plugin {self.name!r} failed to start: {message}",
                plugin=self.name,
            ) from exc
        self._store, self._instance = store, instance  # (its result limit: _prepare_func)
        self._context = context
        self._bound = self._ref = None
        self._funcs = _NO_FUNCS
        self._raw = None
        _find_import_memory(self)
        self._deadline_epoch = -1
        self.generation += 1
        if self.generation > 1 and self.on_new_instance is not None:
            self.on_new_instance()
        return instance

    def discard(self) -> None:
        """Drop the current instance (after a trap); the next call makes a fresh one."""
        with self._lock:
            self._instance = None
            self._bound = self._ref = None
            self._funcs = _NO_FUNCS
            self._raw = None  # its memory goes with the store
            self._context = None
            store, self._store = self._store, None
            if store is not None:
                unregister_context(capi.store_context(store))
                store.close()

    def close(self, *, wait: float | None = None) -> None:
        """Free the instance for good (the plugin is unloaded). ``wait``: the seconds to
        wait for a call in flight (None: until it returns); past them the store is closed
        by a helper thread as soon as that call returns, and close() returns at once."""
        if wait is None or self._lock.acquire(timeout=wait):
            try:
                self.discard()
            finally:
                if wait is not None:
                    self._lock.release()
        else:
            _close_later(self, wait)
        # Break reference cycles (plugin <-> callback) so memory and the mapped artefact
        # are released now, not at the next garbage collection.
        self.on_new_instance = None
        self.context = None

    def bind(
        self,
        hook: str,
        interface: str | None,
        function: str,
        signature: wit.FuncSig,
        *,
        timeout: float | None = None,
        byte_buffers: bool = True,
    ) -> BoundFunc:
        """Prepare calls of ``interface#function`` (see :func:`bind_export`)."""
        return bind_export(
            self.image, hook, interface, function, signature,
            timeout=timeout, byte_buffers=byte_buffers,
        )  # fmt: skip

    def call_within(self, bound: BoundFunc, args: Sequence[Any], seconds: float) -> Any:
        """:meth:`call` bounded by ``seconds`` overall: waiting for a call in flight on this
        instance counts too (PluginTimeout, reason ``"busy"``, when it does not end)."""
        if not self._lock.acquire(timeout=seconds):
            raise _busy(self.name, bound.hook, seconds)
        try:
            return self.call(bound, args, timeout=seconds)
        finally:
            self._lock.release()

    def call(self, bound: BoundFunc, args: Sequence[Any], *, timeout: float | None = None) -> Any:
        """Call ``bound`` with ``args`` (already in WIT parameter order)."""
        # One frame for the whole call: this is the hot path of every hook call.
        raw = bound.raw
        if raw is not None and raw.sig.is_large(args, id(raw) in self._raw_large):
            value = _call_raw(self, bound, raw, args, timeout)
            if value is not _NOT_RAW:
                return value
        n = bound.arity
        params = bound.params_type()
        try:
            for i in range(n):
                try:
                    bound.lowers[i](args[i], params[i])
                except Exception as exc:
                    raise _argument_error(self.name, bound, i, exc) from (
                        None if isinstance(exc, ConvertError) else exc
                    )
            if timeout is not None:
                ticks = _ticks(timeout)
            else:
                ticks = self._ticks if bound.ticks is None else bound.ticks
            with self._lock:
                if self._active:
                    # A host function called back into this plugin: the component model
                    # forbids re-entering an instance, and wasmtime would poison the outer
                    # call's store.
                    raise reentrant_call(self.name, bound.hook)
                if self._instance is None:
                    self._instantiate()
                if bound is self._bound:
                    func_ref = self._ref
                else:
                    func_ref = self._funcs.get(id(bound))
                    if func_ref is None:
                        func_ref = _prepare_func(self, bound)
                context = self._context
                scope = _current_scope()
                if scope is not None:
                    self._enter_scope(scope, bound, ticks)
                else:
                    epoch = _engine.epochs
                    if epoch != self._deadline_epoch or ticks != self._deadline_ticks:
                        _set_deadline(context, ticks)
                        self._deadline_epoch, self._deadline_ticks = epoch, ticks
                if self._fuel is not None:
                    _set_fuel(context, self._fuel)
                lift = bound.lift
                stderr = self._stderr
                if stderr is not None and stderr.recent:
                    stderr.recent.clear()  # a failure shows what this call printed
                self._active = True
                try:
                    if lift is None:
                        err = _call(func_ref, context, params, n, None, 0)
                    else:
                        result = VAL()
                        if type(func_ref) is tuple:  # measured in guest memory first
                            err = _call_measured(self, bound, func_ref, context, params, result)
                        else:
                            err = _call(func_ref, context, params, n, _byref(result), 1)
                finally:
                    self._active = False
                    self._scope = None
                if err:
                    error = _error_from_ptr(err)
                    host_error, self.host_error = self.host_error, None
                    self.discard()
                    raise _failure(self, bound, error, host_error) from (host_error or error)
                if lift is None:
                    return None
                if bound.scalar_result:
                    return lift(result)
                try:
                    limit = self.sandbox.max_result_bytes
                    if (
                        limit is not None
                        and bound.measure is not None
                        and type(func_ref) is not tuple
                    ):
                        size = bound.measure(result)
                        if size > limit and bound.exact_measure is not None:
                            size = bound.exact_measure(result)
                        if size > limit:
                            self.discard()  # the guest may keep state that produced it
                            raise _too_large(self.name, bound.hook, size, limit)
                    if bound.raw is not None and bound.measure is not None:
                        _note_size(self, bound.raw, bound.measure(result))
                    return lift(result)
                finally:
                    _delete(_byref(result))

        finally:
            if not bound.scalar_params:  # scalars own no memory: nothing to free
                for i in range(n):
                    _delete(_byref(params[i]))

    def _func_ref(self, bound: BoundFunc) -> Any:
        """:func:`_prepare_func` (host/isolation.py prepares fresh instances with it)."""
        return _prepare_func(self, bound)

    def interrupt(self) -> None:
        """Stop the call running on this instance now, if it runs in a cancel scope
        (:func:`cancel_scope`): the guest traps at its next epoch check and raises
        :class:`PluginCancelled`. Callable from any thread; a no-op otherwise."""
        scope = self._scope
        if scope is not None:
            scope.cancel()

    def _enter_scope(self, scope: _cancel.CancelScope, bound: BoundFunc, ticks: int) -> None:
        """Run the coming call in slices of epochs (the lock is held: this thread owns
        the store, so it may install the callback and set the deadline)."""
        if scope.cancelled:  # cancelled while waiting for the instance: run nothing
            raise _cancel.PluginCancelled(
                f"plugin {self.name!r}: call of hook {bound.hook!r} cancelled before it ran",
                plugin=self.name,
                hook=bound.hook,
            )
        if self._callback_context is not self._context:
            _cancel.install(self._store, self)
            self._callback_context = self._context
        self._scope = scope
        self._stopped = None
        self._hard_deadline = _engine.epochs + ticks
        _set_deadline(self._context, _cancel.SLICE_TICKS)
        self._deadline_epoch = -1  # the next call outside a scope sets its own deadline

    def on_deadline(self) -> int | None:
        """At an epoch deadline, on the guest's thread: ticks to go on for, or None."""
        scope = self._scope
        if scope is not None and scope.cancelled:
            self._stopped = "cancelled"
            return None
        remaining = self._hard_deadline - _engine.epochs
        if scope is not None and remaining > 0:
            return min(remaining, _cancel.SLICE_TICKS)
        self._stopped = "timeout"
        return None


def _failure(
    self: PluginInstance, bound: BoundFunc, error: WasmtimeError, host_error: BaseException | None
) -> HookCallError:
    """The error a failed call raises: a cancellation, a host function's failure, or
    the trap classified (a module function of the instance, as the raw route's are)."""
    message = str(error)
    stopped, self._stopped = self._stopped, None
    # (PluginCancelled is made, importing asyncio, only where a call could be cancelled)
    if stopped == "cancelled" or (
        host_error is not None and isinstance(host_error, _cancel.PluginCancelled)
    ):
        raise _cancel.PluginCancelled(
            f"plugin {self.name!r}: call of hook {bound.hook!r} cancelled; the guest was "
            "stopped and its instance replaced",
            plugin=self.name,
            hook=bound.hook,
        ) from error
    if stopped == "timeout":
        message = "wasm trap: interrupt"  # as wasmtime says when no callback is set
    if host_error is not None:
        if isinstance(host_error, HookCallError):
            if host_error.hook is None:
                host_error.hook = bound.hook
            return host_error  # e.g. a host-call timeout, already named
        exc: HookCallError = HostFunctionError(
            f"plugin {self.name!r}, hook {bound.hook!r}: a host function it called failed: "
            f"{type(host_error).__name__}: {host_error}",
            plugin=self.name,
            hook=bound.hook,
        )
        exc.reason = "host function failed"
        return exc
    reason, cls = classify_error(message)
    first = _headline(message) or reason
    if cls is PluginExit:
        code = _exit_code(message)
        exit_exc = PluginExit(
            f"plugin {self.name!r} exited (status {code}) in hook {bound.hook!r}; its "
            "instance was replaced",
            plugin=self.name,
            hook=bound.hook,
        )
        exit_exc.code = code
        exit_exc.reason = reason
        return exit_exc
    if cls is PluginTimeout:
        seconds = self.timeout if bound.timeout is None else bound.timeout
        text = (
            f"plugin {self.name!r} timed out in hook {bound.hook!r} after "
            f"{seconds} s; its instance was replaced"
        )
    elif reason == "runtime bug":
        text = (
            f"plugin {self.name!r}, hook {bound.hook!r}: wasmtime "
            f"{_wasmtime_version(message)} hit an internal bug ({first}), not a fault of "
            "the plugin; its instance was replaced. Report it to wasmtime "
            "(github.com/bytecodealliance/wasmtime/issues) with the component, or avoid "
            "the call shape that triggers it"
        )
    else:
        text = (
            f"plugin {self.name!r} trapped in hook {bound.hook!r} ({reason}: {first}); "
            "its instance was replaced"
        )
    output = () if self._stderr is None else self._stderr.tail()
    text += _guest_detail(output, message if cls is not PluginTimeout else "")
    failure = cls(text, plugin=self.name, hook=bound.hook)
    failure.reason = reason
    failure.guest_output = output
    return failure


# ------------------------------------------------------------------ the raw route
# (module functions of the instance, so PluginInstance stays one screenful of call path)


def _call_raw(
    self: PluginInstance,
    bound: BoundFunc,
    raw: RawBinding,
    args: Sequence[Any],
    timeout: float | None,
) -> Any:
    """The call through the raw route (rawabi: copies into and out of the guest's
    memory), or _NOT_RAW when this call takes the other routes: a small payload, or
    an instance whose memory was not found."""
    state = self._raw
    if state is not None and state.off:
        return _NOT_RAW
    prepared = []
    for i in range(bound.arity):  # every argument checked before the guest is touched
        try:
            prepared.append(raw.sig.prepare(i, args[i]))
        except Exception as exc:
            raise _argument_error(self.name, bound, i, exc) from (
                None if isinstance(exc, ConvertError) else exc
            )
    if timeout is not None:
        ticks = _ticks(timeout)
    else:
        ticks = self._ticks if bound.ticks is None else bound.ticks
    with self._lock:
        if self._active:
            raise reentrant_call(self.name, bound.hook)
        if self._instance is None:
            self._instantiate()
        state = self._raw
        if state is None:
            state = self._raw = RawState(functools.partial(_root_func, self), self._context)
        elif state.off:
            return _NOT_RAW
        # One deadline, one fuel budget and one cancel scope for the whole sequence
        # (allocations, the call, the post-return), as for one call.
        scope = _current_scope()
        if scope is not None:
            self._enter_scope(scope, bound, ticks)
        else:
            epoch = _engine.epochs
            if epoch != self._deadline_epoch or ticks != self._deadline_ticks:
                _set_deadline(self._context, ticks)
                self._deadline_epoch, self._deadline_ticks = epoch, ticks
        if self._fuel is not None:
            _set_fuel(self._context, self._fuel)
        stderr = self._stderr
        if stderr is not None and stderr.recent:
            stderr.recent.clear()
        self._active = True
        try:
            plan = state.plan(raw)  # the first raw call finds the memory
            if plan is None:
                return _NOT_RAW
            value = plan.run(prepared, self.sandbox.max_result_bytes)
        except (GuestCallError, GuestMemoryError) as exc:
            self._active = False
            self._scope = None
            failure, cause = _raw_failure(self, bound, exc)
            raise failure from cause
        finally:
            self._active = False
            self._scope = None
        _note_size(self, raw, plan.last_size)
        return value


def _find_import_memory(self: PluginInstance) -> None:
    """Find a new instance's memory before the guest runs (its raw imports read it during
    host calls, when the host cannot call the guest's probe)."""
    imports = self.raw_imports
    if imports is None or not imports.needs_memory:  # latin1 results only: no memory read
        return
    imports.mem = None
    assert self.image.raw_probe is not None
    state = self._raw = RawState(functools.partial(_root_func, self), self._context)
    try:
        state.find_memory(self.image.raw_probe)
    except GuestCallError as exc:
        self.discard()
        raise PluginLoadError(
            f"plugin {self.name!r} failed to start: its allocator failed while the host "
            f"looked for its memory: {_headline(str(exc.error))}",
            plugin=self.name,
        ) from exc.error
    imports.mem = state.mem
    if state.mem is None:
        log.info("plugin %r: memory not found; host calls with bytes will trap", self.name)


def _prepare_func(self: PluginInstance, bound: BoundFunc) -> Any:
    """A pointer to the wasmtime function ``bound`` calls in the current instance."""
    instance, store = self._instance, self._store
    assert instance is not None
    assert store is not None
    func = instance.get_func(store, bound.index)
    if func is None:
        raise PluginTrap(
            f"plugin {self.name!r} has no function {bound.function!r}",
            plugin=self.name,
            hook=bound.hook,
        )
    # byref keeps the Func's C struct alive (a plain value: a store id and an index), so
    # the Func wrapper itself need not be kept
    ref: Any = _byref(capi.func_handle(func))
    single = bound.single_buffer and self._memory_bounds_results
    if bound.measured is not None and self._measure_limit is not None and not single:
        if _LIMIT_SET not in self._funcs:  # the first measured function of this instance
            _set_measure_limit(self, store, self._context, instance)
            _own_funcs(self)[_LIMIT_SET] = None
        indices = [self.image.export_index(n) for n in bound.measured]
        shape = real = None
        if None not in indices:  # pragma: no branch - checked when the image was loaded
            shape = instance.get_func(store, indices[0])
            real = instance.get_func(store, indices[1])
        if shape is not None and real is not None:  # else: measured after copying
            ref = (_byref(capi.func_handle(shape)), _byref(capi.func_handle(real)))
    if self._bound is None:
        self._bound, self._ref = bound, ref
    else:
        _own_funcs(self)[id(bound)] = ref
    return ref


def _own_funcs(self: PluginInstance) -> dict[int, Any]:
    """The instance's own dict of prepared functions, made at its second one."""
    if self._funcs is _NO_FUNCS:
        self._funcs = {}
    return self._funcs


#: The prepared functions beyond the first of every instance that has none: one empty
#: dict, never written to (:func:`_own_funcs` gives an instance its own first).
_NO_FUNCS: Final[dict[int, Any]] = {}


#: No raw binding of an instance has had a large result yet: one empty set for all.
_NO_IDS: frozenset[int] = frozenset()


def _note_size(self: PluginInstance, raw: RawBinding, size: int) -> None:
    large = self._raw_large
    if size >= RAW_MIN_BYTES and raw.sig.bulky_result:  # (lists of bytes or numbers)
        if not isinstance(large, set):
            large = self._raw_large = set()
        large.add(id(raw))
    elif isinstance(large, set):
        large.discard(id(raw))


def _root_func(self: PluginInstance, name: str) -> Any:
    """The current instance's function exported at the root as ``name``."""
    instance, store = self._instance, self._store
    assert instance is not None
    assert store is not None
    index = self.image.export_index(name)  # looked up once per compiled component
    func = None if index is None else instance.get_func(store, index)
    if func is None:  # pragma: no cover - image.py checked the raw exports
        raise PluginTrap(f"plugin {self.name!r} has no export {name!r}", plugin=self.name)
    return func


def _raw_failure(
    self: PluginInstance, bound: BoundFunc, exc: GuestCallError | GuestMemoryError
) -> tuple[HookCallError, BaseException]:
    """The error for a raw call that failed, and its cause; the instance is discarded
    (the guest's post-return is not run on a result that failed a check)."""
    if isinstance(exc, GuestCallError):
        host_error, self.host_error = self.host_error, None
        self.discard()
        return _failure(self, bound, exc.error, host_error), host_error or exc.error
    self.discard()
    hook = bound.hook
    if isinstance(exc, ResultTooLarge):
        limit = self.sandbox.max_result_bytes
        if limit is not None:  # the same error as the measured route gives
            return _too_large(self.name, hook, exc.size, limit, before_copy=True), exc
        too_large = PluginLimitExceeded(
            f"plugin {self.name!r} returned a result of more than {exc.size:,} bytes "
            f"from hook {hook!r}, more than its memory can hold unless its entries "
            "alias each other; its instance was replaced. Set max_result_bytes to "
            "bound results explicitly",
            plugin=self.name,
            hook=hook,
        )
        too_large.reason = "too much data copied"
        return too_large, exc
    cls = PluginABIError if exc.reason in _ABI_REASONS else PluginTrap
    failure = cls(
        f"plugin {self.name!r} trapped in hook {hook!r} ({exc.reason}: {exc}); its "
        "instance was replaced",
        plugin=self.name,
        hook=hook,
    )
    failure.reason = exc.reason
    return failure, exc


#: The key in an instance's ``_funcs`` (ids of call plans are never negative) saying that
#: its measuring walks were told their limit.
_LIMIT_SET: Final = -1


def _set_measure_limit(
    plugin: PluginInstance, store: Store, context: Any, instance: Instance
) -> None:
    """Tell an instance's measuring walks where to stop, before its first call through
    them (once per instance: a plugin whose measured functions are never called, or whose
    results are all bounded by its memory, never pays for it), through the C call path:
    the setter takes one u64 and returns nothing. A failure discards the instance (the
    next call makes a fresh one) and fails this call."""
    assert plugin._measure_limit is not None
    assert plugin.image.measure_limit is not None
    index = plugin.image.export_index(plugin.image.measure_limit)
    setter = None if index is None else instance.get_func(store, index)
    if setter is None:
        problem = "the runtime's limit setter is missing"
    else:
        # It runs before the call sets its own deadline and fuel: bounded like start-up
        # (an instance first called long after it started would meet a deadline passed
        # long ago), with a full fuel budget (not what the last call left); the call then
        # sets both again, as after every instantiation.
        _set_deadline(context, _ticks(plugin.sandbox.startup_timeout))
        plugin._deadline_epoch = -1
        if plugin._fuel is not None:
            _set_fuel(context, plugin._fuel)
        param = _limit_param(min(plugin._measure_limit, 2**62))
        err = _call(_byref(capi.func_handle(setter)), context, param, 1, None, 0)
        if not err:
            return
        problem = _headline(str(_error_from_ptr(err)))
    plugin.discard()
    raise PluginTrap(
        f"plugin {plugin.name!r}: the result limit of its instance could not be set: {problem}",
        plugin=plugin.name,
    )


@functools.lru_cache(maxsize=64)
def _limit_param(limit: int) -> Any:
    """The limit setter's argument (one u64), made once per limit: the call only reads it
    (a scalar owns no memory), so every instantiation with that limit can pass it."""
    param = _val_array(1)()
    param[0].kind = U64
    param[0].of.u64 = limit
    return param


def _call_measured(
    plugin: PluginInstance, bound: BoundFunc, func_ref: Any, context: Any, params: Any, result: Any
) -> Any:
    """Call the guest through the export measuring its result in its memory; lift the
    result (the real lift of the stashed return area) only if it is within the limit.
    The guest function runs once. Returns the C error pointer, as ``_call`` does."""
    size = VAL()
    err = _call(func_ref[0], context, params, bound.arity, _byref(size), 1)
    if err:
        return err
    measured = int(size.of.u64)
    limit = plugin._measure_limit
    assert limit is not None
    if measured != INVALID and measured > limit:
        plugin.discard()  # the guest may keep state that produced it
        raise _too_large(plugin.name, bound.hook, measured, limit, before_copy=True)
    # INVALID: data the lift refuses; it then fails with wasmtime's own ABI error
    return _call(func_ref[1], context, _NO_ARGS, 0, _byref(result), 1)


def reentrant_call(plugin: str, hook: str) -> PluginTrap:
    """The error of a call into a plugin from inside one of its own host calls: the
    component model forbids re-entering an instance (wasmtime would poison the outer
    call's store), and a host waiting for it would deadlock."""
    return PluginTrap(
        f"plugin {plugin!r}: re-entrant call of hook {hook!r} from inside one of its own "
        "host calls",
        plugin=plugin,
        hook=hook,
    )


def _busy(plugin: str, hook: str, seconds: float) -> PluginTimeout:
    busy = PluginTimeout(
        f"plugin {plugin!r}: hook {hook!r} not called: another call was still running "
        f"after {seconds:g} s",
        plugin=plugin,
        hook=hook,
    )
    busy.reason = "busy"
    return busy


def _close_later(instance: PluginInstance, waited: float) -> None:
    """Close ``instance``'s store from a helper thread once the call in flight returns."""
    log.warning(
        "plugin %r: a call still running after %g s; its instance is closed when it returns",
        instance.name,
        waited,
    )
    name = f"airssys-close-{instance.name}"
    threading.Thread(target=instance.discard, name=name, daemon=True).start()


def bind_export(
    image: ComponentImage,
    hook: str,
    interface: str | None,
    function: str,
    signature: wit.FuncSig,
    *,
    timeout: float | None = None,
    byte_buffers: bool = True,
) -> BoundFunc:
    """Prepare calls of ``interface#function`` of ``image`` with the host's view of its types.

    ``byte_buffers``: call the byte-buffer export of the function when the component
    has one (see :mod:`.relift`); False calls the original export.
    """
    # A call plan holds nothing of a plugin: the plugins of one compiled component share
    # theirs (kept while the component lives; the signature object is part of the key).
    plans = _PLANS.get(image.component)
    if plans is None:
        plans = _PLANS.setdefault(image.component, {})
    key = (hook, interface, function, id(signature), timeout, byte_buffers)
    known = plans.get(key)
    if known is not None and known[0] is signature:
        return known[1]
    bound = _bind_export(image, hook, interface, function, signature, timeout, byte_buffers)
    plans[key] = (signature, bound)
    return bound


def _bind_export(
    image: ComponentImage,
    hook: str,
    interface: str | None,
    function: str,
    signature: wit.FuncSig,
    timeout: float | None,
    byte_buffers: bool,
) -> BoundFunc:
    byte_export = image.byte_exports.get((interface, function)) if byte_buffers else None
    if byte_export is not None:
        index = image.export_index(byte_export)
    else:
        index = image.export_index(function, interface)
    if index is None:
        raise PluginLoadError(
            f"plugin {image.name!r} does not export {interface}#{function}", plugin=image.name
        )
    latin1 = byte_export is not None
    raw = _raw_binding(image, interface, function, signature) if byte_buffers else None
    conv = _converters(signature, latin1)
    measured = image.measured.get((interface, function))
    if measured is not None and latin1 != ((interface, function) in image.byte_exports):
        measured = None  # it measures the byte-buffer export's lift, not called here
    # looked up at the first call (most hooks of a big contract are never called)
    names = None if measured is None else (measured.shape, measured.real)
    return BoundFunc(
        hook=hook,
        interface=interface,
        function=function,
        param_names=conv.param_names,
        lowers=conv.lowers,
        lift=conv.lift,
        index=index,
        scalar_params=conv.scalar_params,
        scalar_result=conv.scalar_result,
        measure=conv.measure,
        exact_measure=conv.exact_measure,
        timeout=timeout,
        raw=raw,
        measured=names,
        single_buffer=conv.single_buffer,
    )


_PLANS: weakref.WeakKeyDictionary[Any, dict[tuple[Any, ...], tuple[wit.FuncSig, BoundFunc]]] = (
    weakref.WeakKeyDictionary()
)


@functools.lru_cache(maxsize=64)
def _val_array(n: int) -> Any:
    """The ctypes array type of ``n`` component values (one per arity: a ctypes type costs
    microseconds and a kilobyte to make)."""
    return VAL * n


@final
class _Converters:
    """What calling a function of one signature needs from the host, whichever component
    exports it: built once per signature (and latin1) and shared (converters hold no state
    of a plugin; resource handles find their store and plugin at each call). A plain
    class: attrs would compile its methods at every start of a process."""

    __slots__ = (
        "exact_measure",
        "lift",
        "lowers",
        "measure",
        "param_names",
        "scalar_params",
        "scalar_result",
        "single_buffer",
    )

    def __init__(
        self,
        param_names: tuple[str, ...],
        lowers: tuple[Lower, ...],
        lift: Lift | None,
        measure: Measure | None,
        exact_measure: Measure | None,
        scalar_params: bool,
        scalar_result: bool,
        single_buffer: bool,
    ):
        self.param_names = param_names
        self.lowers = lowers
        self.lift = lift
        self.measure = measure
        self.exact_measure = exact_measure
        self.scalar_params = scalar_params
        self.scalar_result = scalar_result
        self.single_buffer = single_buffer


def _converters(signature: wit.FuncSig, latin1: bool) -> _Converters:
    return _by_identity(_CONVERTERS, signature, latin1, _make_converters)


def _make_converters(signature: wit.FuncSig, latin1: bool) -> _Converters:
    result = signature.result
    lift: Lift | None = None
    measure: Measure | None = None
    exact_measure: Measure | None = None
    if latin1 and is_byte_list(result):
        # Only a list<u8> result itself travels as latin1 (see _relift: it must be
        # copied to an even address when it is not on one); bytes deeper do not.
        assert result is not None
        lift, measure, exact_measure = (
            latin1_lifter(result),
            measure_latin1,
            measure_latin1_exact,
        )
    elif result is not None:
        lift, measure = lifter(result), measurer(result)
    return _Converters(
        param_names=tuple(n for n, _ in signature.params),
        lowers=tuple(lowerer(t, latin1=latin1) for t in signature.param_types),
        lift=lift,
        measure=measure,
        exact_measure=exact_measure,
        scalar_params=all(_is_scalar(t) for t in signature.param_types),
        scalar_result=_is_scalar(result),
        single_buffer=_buffers(result, latin1) == 1,
    )


_T = TypeVar("_T")
#: Shared converters by (id(signature), latin1), holding the signature (so its id stays
#: its own): a load binds each hook, and a contract hands the same signature objects to
#: every plugin it loads. Keyed by identity, not equality: equal signatures may still
#: differ in what is not compared (parameter names, the Python classes of records).
_Shared = OrderedDict[tuple[int, bool], tuple[wit.FuncSig, Any]]
_CONVERTERS: _Shared = OrderedDict()
_RAW_SIGNATURES: _Shared = OrderedDict()
_SHARED_KEPT: Final = 2048
_shared_lock = threading.Lock()


def _by_identity(
    table: _Shared, signature: wit.FuncSig, flag: bool, make: Callable[[wit.FuncSig, bool], _T]
) -> _T:
    key = (id(signature), flag)
    with _shared_lock:
        entry = table.get(key)
        if entry is not None and entry[0] is signature:
            table.move_to_end(key)
            return cast(_T, entry[1])
    made = make(signature, flag)
    with _shared_lock:
        table[key] = (signature, made)
        while len(table) > _SHARED_KEPT:
            table.popitem(last=False)
    return made


def _raw_binding(
    image: ComponentImage, interface: str | None, function: str, signature: wit.FuncSig
) -> RawBinding | None:
    """The raw route of ``interface#function`` with the host's view of its types, if the
    image has one and the host's flattening of the types is the one the binary has."""
    export = image.raw_exports.get((interface, function))
    if export is None or image.raw_probe is None:
        return None
    sig = _raw_signature(signature)
    if sig is None:
        return None
    if not sig.can_be_large and _rawabi.RAW_MIN_BYTES > 0:
        # never large under the rule: no binding, so its calls do not check (0.3-0.4 µs
        # a call); with RAW_MIN_BYTES 0 every call is raw (the tests' way to force it)
        return None
    binding = RawBinding(sig, export.call, export.post, export.alloc, image.raw_probe)
    expected = 0x7E if export.retptr else export.result
    if binding.params != export.params or binding.result != expected:
        return None
    return binding


def _raw_signature(signature: wit.FuncSig) -> RawSignature | None:
    """The raw route's converters of ``signature`` (None: not covered); shared like
    :func:`_converters`."""
    return _by_identity(_RAW_SIGNATURES, signature, False, _make_raw_signature)


def _make_raw_signature(signature: wit.FuncSig, _: bool) -> RawSignature | None:
    try:
        return RawSignature(signature)
    except TypeError:
        return None


def _check_imports(
    image: ComponentImage, provided: frozenset[str] | set[str], granted: frozenset[str]
) -> None:
    """Refuse a component importing host interfaces (or functions and resources at its
    world's root) that do not exist or are not granted."""
    path = None if image.path is None else str(image.path)
    denied: list[str] = []
    unknown: list[str] = []
    root: list[str] = []
    for name in image.imports:
        if name.startswith("wasi:"):
            continue
        at_root = wit.split_interface_name(name) is None
        bare = wit.import_key(wit.WORLD_ROOT, name) if at_root else wit.unversioned(name)
        if bare in provided and bare not in granted:
            denied.append(f"interface {name} (imported, not granted)")
        elif bare not in provided:
            (root if at_root else unknown).append(name)
    if unknown or root:
        parts = []
        if unknown:
            parts.append(
                f"imports interface(s) the host does not provide: {', '.join(unknown)}. "
                "Build it against the host's WIT only."
            )
        if root:
            parts.append(
                f"imports at its world's root what the host does not provide: "
                f"{', '.join(root)}. Provide a function with host.provide(func, "
                "interface=WORLD_ROOT, name=...) (a resource with its @resource class; a "
                "function of an inline interface with interface='<its name>'), or build it "
                "against the host's WIT only."
            )
        raise PluginLoadError(
            f"plugin {image.name!r} {' It also '.join(parts)}",
            plugin=image.name,
            path=path,
        )
    if denied:
        raise CapabilityDenied(image.name, denied)


def _argument_error(plugin: str, bound: BoundFunc, index: int, exc: Exception) -> ArgumentError:
    """The error for argument ``index`` of a call that could not be lowered: a value of the
    wrong type or range (``ConvertError``), or the value's own code failing while it was
    read (a property, ``__len__``, ``__iter__`` or ``__eq__`` that raises)."""
    name = bound.param_names[index]
    if isinstance(exc, ConvertError):
        detail = exc.located() if exc.path else ": " + exc.message
    else:
        detail = f": reading the value raised {type(exc).__name__}: {exc}"
    return ArgumentError(
        f"plugin {plugin!r}, hook {bound.hook!r}, argument {name!r}{detail}",
        plugin=plugin,
        hook=bound.hook,
        parameter=name,
    )
