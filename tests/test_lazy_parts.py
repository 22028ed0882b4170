"""A host's parts made on first use (awaited hooks, messaging, links, per-call isolation):
the same behaviour whether or not they were used before, and one object each."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pluggy
import pytest

from airssys_plugins import AsyncHookError, Capabilities, Messaging, PluginHost, u32

from .async_guest import PACKAGE, hookimpl

RIGHTS = Capabilities(interfaces=["fetch", "rendezvous"])


def _host(apm: pluggy.PluginManager) -> PluginHost:
    """A host providing what the demo component imports."""
    host = PluginHost(apm, package=PACKAGE)

    @host.provide
    def fetch(x: u32) -> u32:
        return x

    @host.provide
    def rendezvous() -> u32:
        return 0

    return host


def _load(host: PluginHost, wasm: Path, name: str, **kwargs: object) -> object:
    host.grants[name] = RIGHTS
    return host.load(wasm, name=name, requests=RIGHTS, **kwargs)  # type: ignore[arg-type]


class _AsyncPlugin:
    @hookimpl
    async def add_one(self, x: int) -> int:
        return x + 100


def test_async_impls_are_refused_before_ahook_is_first_asked_for(apm: pluggy.PluginManager) -> None:
    """An ``async def`` hookimpl registered on a host that never touched ``ahook`` still
    raises AsyncHookError under a synchronous call, and is awaited by ``ahook``."""
    with PluginHost(apm, package=PACKAGE) as host:
        apm.register(_AsyncPlugin(), name="py")
        with pytest.raises(AsyncHookError, match="async def"):
            apm.hook.add_one(x=1)
        assert host.ahook is host.ahook
        assert asyncio.run(host.ahook.add_one(x=1)) == [101]


def test_ahook_first_asked_for_after_close_refuses_calls(apm: pluggy.PluginManager) -> None:
    host = PluginHost(apm, package=PACKAGE)
    host.close()
    with pytest.raises(RuntimeError, match="the host is closed"):
        asyncio.run(host.ahook.add_one(x=1))


def test_messaging_is_one_object_made_when_first_used(
    apm: pluggy.PluginManager, ademo: Callable[[int], Path]
) -> None:
    """Loads and unloads before ``host.messaging`` is used leave nothing behind; then the
    host has one Messaging, and a Python subscriber gets what is published."""
    with _host(apm) as host:
        _load(host, ademo(1), "one")
        host.unload("one")
        _load(host, ademo(2), "two")
        assert isinstance(host.messaging, Messaging)
        assert host.messaging is host.messaging
        assert host.messaging.subscribers() == {}
        got: list[tuple[str, bytes]] = []
        host.subscribe("news.*", lambda topic, payload: got.append((topic, payload)))
        assert host.publish("news.today", b"hi") == 1
        assert host.messaging.drain(timeout=10)
        assert got == [("news.today", b"hi")]


def test_links_and_per_call_isolation_without_and_with_their_modules(
    apm: pluggy.PluginManager, ademo: Callable[[int], Path]
) -> None:
    """A host with no links lists none; a per-call plugin loads and answers each call on a
    fresh instance; a bad isolation mode is refused as before."""
    with _host(apm) as host:
        _load(host, ademo(3), "shared")
        assert host.links() == []
        _load(host, ademo(4), "fresh", isolation="per-call")
        assert host.plugins["fresh"].fresh is not None
        assert host.plugins["shared"].fresh is None
        assert sorted(apm.hook.add_one(x=1)) == [4, 5]
        with pytest.raises(ValueError, match="isolation must be 'shared'"):
            _load(host, ademo(5), "bad", isolation="sometimes")


def test_messaging_first_asked_for_after_the_host_closed_is_closed_too() -> None:
    """The messaging front closes a Messaging it makes after the host closed (as the
    host's close would have), and closes the one it made once."""
    from airssys_plugins.host.bus import MessagingFront

    closed: list[int] = []

    class Bus:
        def close(self) -> None:
            closed.append(1)

    front = MessagingFront(Bus)  # type: ignore[arg-type]
    front.close()
    assert closed == []  # nothing made, nothing to close
    bus = front()
    assert closed == [1]
    assert front() is bus
    assert closed == [1]
