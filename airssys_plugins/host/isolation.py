"""Per-call isolation: every hook call of a plugin runs on a fresh instance.

``host.load(path, isolation="per-call")`` gives the plugin ``pool_size + 1`` instance slots.
A call takes a slot whose instance is fresh (instantiated, ``init`` run, historic calls
replayed, never called by anyone), runs on it, and hands it back; a background thread then
discards the used instance and instantiates a new one in the slot. Both happen off the
call path, so a call costs about what a call on a warm instance costs, as long as calls
leave the refill thread the time to keep a spare ready; in a back-to-back stream calls
wait for the refill, and a call then costs what an instantiation costs.

:class:`FreshInstances` stands where a shared pool keeps its queue of idle instances
(``WasmPlugin._idle``): ``get()`` gives a fresh instance, ``put()`` takes a used one. So
every caller that borrows from the pool (hook calls, links between plugins, mailboxes,
health checks) gets per-call isolation without knowing of it.
"""

from __future__ import annotations

import atexit
import contextlib
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from typing import Any, final

from .. import _log as logging
from ..runtime import BoundFunc, PluginInstance
from .isolation_modes import ISOLATIONS, SPARES, Isolation, check_isolation
from .supervision import PluginUnavailable

__all__ = ["ISOLATIONS", "SPARES", "FreshInstances", "Isolation", "check_isolation"]

log = logging.getLogger("airssys_plugins")

History = Callable[[], Sequence[tuple[BoundFunc, tuple[Any, ...]]]]

_ALL: weakref.WeakSet[FreshInstances] = weakref.WeakSet()


@atexit.register
def _stop_all() -> None:
    # Registered after runtime/instance.py's own atexit hook, so it runs before it: no
    # refill may create a Store once the runtime closes the live ones at exit.
    for fresh in list(_ALL):
        fresh.stop()


@final
class FreshInstances:
    """The instance slots of a plugin loaded with ``isolation="per-call"``.

    ``get()`` returns a slot holding a fresh instance; ``put(slot)`` hands a used slot to
    the refill thread, which discards its instance and instantiates a new one (running
    ``init`` and replaying historic calls through the slot's ``on_new_instance``). A call
    that finds no fresh instance ready refreshes a used slot itself rather than wait for
    the refill thread (so a back-to-back stream has two threads instantiating). ``history``
    gives the plugin's historic calls: an instance prepared before a historic call gets
    the calls it missed when it is taken, before the call that takes it runs.
    """

    def __init__(self, name: str, slots: Sequence[PluginInstance], history: History):
        import queue

        self.name = name
        self.slots = tuple(slots)
        self._history = history
        self._ready: queue.SimpleQueue[PluginInstance] = queue.SimpleQueue()
        self._used: queue.SimpleQueue[PluginInstance | None] = queue.SimpleQueue()
        # id(slot) -> how many historic calls its current instance has seen
        self._seen: dict[int, int] = {}
        # The functions called so far (id -> BoundFunc): a refill looks them up in the new
        # instance, so that the call does not (about a third of a first call's cost).
        self._called: dict[int, BoundFunc] = {}
        # Refills running now, and whether the plugin is closing: once stop() returns, no
        # refill runs and none will start.
        self._state = threading.Condition()
        self._active = 0
        self._closing = False
        self._thread: threading.Thread | None = None
        self._refilling = 0  # slots handed back and not yet ready again
        #: Instances prepared off the call path (by the refill thread).
        self.refills = 0
        #: Instances a call prepared itself, finding none ready.
        self.inline_refills = 0
        #: Calls that found no fresh instance ready.
        self.waits = 0
        #: Calls whose instance had missed historic calls and got them first.
        self.top_ups = 0
        #: Refills that failed (the slot is left empty; the call taking it instantiates
        #: it and raises the error there).
        self.failed_refills = 0
        for slot in self.slots:
            self._ready.put(slot)
        _ALL.add(self)

    def call(self, bound: BoundFunc, args: tuple[Any, ...]) -> Any:
        """Call ``bound`` on a fresh instance (:meth:`WasmPlugin.call` of the plugin)."""
        if id(bound) not in self._called:
            self._called[id(bound)] = bound
        slot = self.get()
        try:
            return slot.call(bound, args)
        finally:
            self.put(slot)

    # -- the pool interface of WasmPlugin._idle -----------------------------------------

    def get(self) -> PluginInstance:
        """A slot whose instance is fresh; the caller must ``put`` it back."""
        import queue

        try:
            slot = self._ready.get_nowait()
        except queue.Empty:
            slot = self._wait()
        try:
            slot.instantiate()  # a no-op unless the refill failed or the slot was discarded
            seen = self._seen.get(id(slot), 0)
            if len(self._history()) > seen:
                self._top_up(slot, seen)
        except BaseException:
            self.put(slot)
            raise
        return slot

    def put(self, slot: PluginInstance) -> None:
        """Hand back a used slot: its instance is discarded and replaced off the call path."""
        if self._thread is None:
            self._start()
        with self._state:
            self._refilling += 1
        self._used.put(slot)

    def _wait(self) -> PluginInstance:
        """No fresh instance is ready: refresh a used slot here, or wait for one."""
        import queue

        with self._state:
            self.waits += 1
        while True:
            if self._closing:
                raise PluginUnavailable(
                    f"plugin {self.name!r} is being unloaded: no fresh instance is made for "
                    "new calls",
                    plugin=self.name,
                )
            try:
                slot = self._used.get_nowait()
            except queue.Empty:
                pass
            else:
                if slot is not None and self._refresh(slot, ready=False):
                    return slot
                self._used.put(slot)  # the stop sentinel, or closing: not ours to refresh
                continue
            with contextlib.suppress(queue.Empty):
                return self._ready.get(timeout=0.05)  # then look at closing again

    # -- bookkeeping ----------------------------------------------------------------------

    def seen(self, slot: PluginInstance, calls: int) -> None:
        """``slot``'s new instance has had the first ``calls`` historic calls replayed."""
        self._seen[id(slot)] = calls

    def _top_up(self, slot: PluginInstance, seen: int) -> None:
        missed = list(self._history())[seen:]
        for bound, args in missed:
            slot.call(bound, args)
        self._seen[id(slot)] = seen + len(missed)
        with self._state:
            self.top_ups += 1

    def ready(self) -> int:
        """How many fresh instances wait for a call now."""
        return self._ready.qsize()

    def wait_ready(self, timeout: float = 10.0) -> bool:
        """Wait until every handed-back slot is fresh again (False: not within
        ``timeout`` seconds). For tests and benchmarks; calls never need it."""
        deadline = time.monotonic() + timeout
        while self._refilling > 0:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.0002)
        return True

    # -- refills --------------------------------------------------------------------------

    def _start(self) -> None:
        with self._state:
            if self._thread is None and not self._closing:
                thread = threading.Thread(
                    target=self._refill_loop, name=f"airssys-fresh-{self.name}", daemon=True
                )
                thread.start()
                self._thread = thread

    def _refill_loop(self) -> None:
        while True:
            slot = self._used.get()
            if slot is None or not self._refresh(slot, ready=True):
                return

    def _refresh(self, slot: PluginInstance, *, ready: bool) -> bool:
        """Replace ``slot``'s instance (and put it in the ready queue if ``ready``);
        False, and nothing done, once the plugin is closing."""
        with self._state:
            if self._closing:
                return False
            self._active += 1
        failed = False
        try:
            self._seen[id(slot)] = 0  # an instance that failed to start saw nothing
            try:
                slot.discard()  # the used instance, and every trace of the call it served
                slot.instantiate()
                for bound in list(self._called.values()):
                    slot._func_ref(bound)  # the runtime has no public name for it yet
            except Exception as exc:  # left empty: the call that takes it raises the error
                slot.discard()  # a failed replay may have left a half-prepared instance
                failed = True
                log.debug("plugin %r: preparing a fresh instance failed: %s", self.name, exc)
            if ready:
                self._ready.put(slot)
        finally:
            with self._state:  # counters too: several calls may refresh slots at once
                self._active -= 1
                self._refilling -= 1
                if failed:
                    self.failed_refills += 1
                elif ready:
                    self.refills += 1
                else:
                    self.inline_refills += 1
                self._state.notify_all()
        return True

    def stop(self) -> None:
        """No more refills (the plugin is closing): waits for the refills under way."""
        with self._state:
            self._closing = True
            thread = self._thread
            self._used.put(None)
            self._state.wait_for(lambda: self._active == 0, timeout=30)
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=30)
