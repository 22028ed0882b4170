"""Built-in host functions are linked by name and made at their first call
(runtime.callbacks.DeferredHostFunc): their signatures are mapped only when called."""

from __future__ import annotations

import threading
import time

import pytest

from airssys_plugins.contract import wit
from airssys_plugins.runtime.callbacks import DeferredHostFunc, HostFunc


def _func() -> HostFunc:
    return HostFunc("test:x/y@1.0.0", "f", wit.FuncSig((), None), lambda instance: None)


def test_a_deferred_function_is_made_once_and_then_kept() -> None:
    made: list[HostFunc] = []

    def make() -> HostFunc:
        made.append(_func())
        return made[-1]

    deferred = DeferredHostFunc("test:x/y@1.0.0", "f", make)
    assert made == []  # nothing made by creating (or linking) it
    first = deferred.made()
    assert deferred.made() is first
    assert made == [first]


def test_a_failed_make_fails_that_call_and_the_next_call_tries_again() -> None:
    attempts: list[int] = []

    def make() -> HostFunc:
        attempts.append(1)
        if len(attempts) == 1:
            raise ValueError("mapping failed")
        return _func()

    deferred = DeferredHostFunc("test:x/y@1.0.0", "f", make)
    with pytest.raises(ValueError, match="mapping failed"):
        deferred.made()
    assert isinstance(deferred.made(), HostFunc)
    assert len(attempts) == 2


def test_threads_calling_first_at_once_make_it_once() -> None:
    calls: list[int] = []

    def make() -> HostFunc:
        calls.append(1)
        time.sleep(0.01)  # long enough for every thread to be waiting on the lock
        return _func()

    deferred = DeferredHostFunc("test:x/y@1.0.0", "f", make)
    got: list[HostFunc] = []
    threads = [threading.Thread(target=lambda: got.append(deferred.made())) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1
    assert len(got) == 8
    assert all(g is got[0] for g in got)
