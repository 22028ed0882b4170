"""asyncrouter: an asyncio HTTP receiver routing events through Python and WebAssembly plugins.

    asyncrouter                     # start the receiver, post the demo events to it, print
    asyncrouter --json              # the same, one JSON object per event
    asyncrouter --serve --port 8080 # keep serving: POST /events with one JSON event each

Each request is handled by a coroutine that awaits two hooks through ``host.ahook``, so
the event loop keeps accepting requests while plugins run:

* ``score(work)``: every plugin scores the event. The hook is marked order-independent,
  so its WebAssembly implementations run at once: ``scorer`` (WAT) and ``slowpoke``
  (WAT, far too slow on big events), each a pool of 2 instances (two requests score at
  the same time); plus ``reputation``, an ``async def`` Python plugin awaited on the
  loop.
* ``route(priority)`` (firstresult): ``router`` (WAT) picks a destination.

Every request has a deadline (``--deadline``, 1 s): scoring a big event takes
``slowpoke`` seconds, so ``asyncio.timeout`` cancels the awaited call, which stops the
guest mid-loop (its instance is replaced) and the request answers ``504``; the next
request is served as usual.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

import pluggy

from airssys_plugins import PluginHost, u32
from airssys_plugins.authoring.build import build_guest

HERE: Final = Path(__file__).parent
PLUGIN_SOURCES: Final = HERE / "plugins"
BUNDLED: Final = ("scorer", "slowpoke", "router")
PACKAGE: Final = "asyncrouter:hooks@1.0.0"
DESTINATIONS: Final = {1: "queue", 2: "pager"}

hookspec = pluggy.HookspecMarker("asyncrouter")
hookimpl = pluggy.HookimplMarker("asyncrouter")

#: The demo events: small ones are scored in milliseconds; "e3" makes slowpoke loop for
#: seconds, past the deadline.
DEMO_EVENTS: Final = (
    {"id": "e1", "kind": "push", "work": 300},
    {"id": "e2", "kind": "alert", "work": 1_000},
    {"id": "e3", "kind": "bulk-import", "work": 4_000_000},
    {"id": "e4", "kind": "push", "work": 50},
    {"id": "e5", "kind": "alert", "work": 2_000},
)


class RouterHooks:
    @hookspec
    def score(self, work: u32) -> u32:  # type: ignore[empty-body]
        """Score an event needing ``work`` units of effort (every plugin adds its score)."""

    @hookspec(firstresult=True)
    def route(self, priority: u32) -> u32 | None:
        """The destination of an event of this priority (1 queue, 2 pager), or None."""


class Reputation:
    """A plain-Python plugin with an ``async def`` hook: awaited on the event loop (a
    stand-in for asking a reputation service)."""

    @hookimpl
    async def score(self, work: int) -> int:
        await asyncio.sleep(0.001)
        return 5


def build_bundled(names: Sequence[str] = BUNDLED) -> dict[str, Path]:
    """Build (or fetch from the build cache) the bundled WAT components; name -> .wasm."""
    return {name: build_guest(PLUGIN_SOURCES / name) for name in names}


def make_host() -> PluginHost:
    """The host with the three components and the async Python plugin."""
    pm = pluggy.PluginManager("asyncrouter")
    pm.add_hookspecs(RouterHooks)
    host = PluginHost(pm, package=PACKAGE, timeout=30)
    try:
        wasm = build_bundled()
        host.load(wasm["scorer"], name="scorer", pool_size=2)
        host.load(wasm["slowpoke"], name="slowpoke", pool_size=2)
        host.load(wasm["router"], name="router")
        pm.register(Reputation(), name="reputation")
        host.ahook.order_independent("score")
    except BaseException:
        host.close()
        raise
    return host


async def handle(host: PluginHost, event: dict[str, Any], deadline: float) -> dict[str, Any]:
    """Score and route one event under ``deadline`` seconds."""
    start = time.perf_counter()
    answer: dict[str, Any] = {"id": event.get("id"), "kind": event.get("kind")}
    try:
        async with asyncio.timeout(deadline):
            scores = await host.ahook.score(work=int(event.get("work", 1)))
    except TimeoutError:
        answer.update(status="timeout", ms=round((time.perf_counter() - start) * 1000))
        return answer
    priority = sum(scores)
    destination = await host.ahook.route(priority=priority)
    answer.update(
        status="routed",
        priority=priority,
        destination=DESTINATIONS.get(destination, "log") if destination else "log",
        ms=round((time.perf_counter() - start) * 1000),
    )
    return answer


# ----------------------------------------------------------------------------- HTTP


class Receiver:
    """A minimal HTTP/1.1 receiver on 127.0.0.1: ``POST /events`` with a JSON event."""

    def __init__(self, host: PluginHost, *, deadline: float):
        self.host = host
        self.deadline = deadline
        self.server: asyncio.Server | None = None

    @property
    def port(self) -> int:
        assert self.server is not None
        port: int = self.server.sockets[0].getsockname()[1]
        return port

    async def start(self, port: int = 0) -> None:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", port)

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await reader.readline()
            headers: dict[str, str] = {}
            while (line := await reader.readline()) not in (b"\r\n", b"\n", b""):
                key, _, value = line.decode("latin-1").partition(":")
                headers[key.strip().lower()] = value.strip()
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            method, path, _ = request.decode("latin-1").split(" ", 2)
            if (method, path) != ("POST", "/events"):
                status, answer = 404, {"error": "POST /events only"}
            else:
                try:
                    event = json.loads(body)
                except ValueError as exc:
                    status, answer = 400, {"error": f"not JSON: {exc}"}
                else:
                    answer = await handle(self.host, event, self.deadline)
                    status = 504 if answer["status"] == "timeout" else 200
            payload = json.dumps(answer).encode()
            writer.write(
                f"HTTP/1.1 {status} {'OK' if status == 200 else 'Error'}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n"
                "Connection: close\r\n\r\n".encode()
                + payload
            )
            await writer.drain()
        finally:
            writer.close()


async def post(port: int, event: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """POST ``event`` to the receiver; (status, answer)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    body = json.dumps(event).encode()
    writer.write(
        b"POST /events HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        + f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body
    )
    await writer.drain()
    response = await reader.read()
    writer.close()
    head, _, payload = response.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    answer: dict[str, Any] = json.loads(payload)
    return status, answer


async def demo(
    host: PluginHost, events: Sequence[dict[str, Any]], *, deadline: float
) -> list[tuple[int, dict[str, Any]]]:
    """Start the receiver, post every event at once, return (status, answer) in order."""
    receiver = Receiver(host, deadline=deadline)
    await receiver.start()
    try:
        return list(await asyncio.gather(*(post(receiver.port, e) for e in events)))
    finally:
        await receiver.close()


async def serve(host: PluginHost, port: int, deadline: float) -> None:
    receiver = Receiver(host, deadline=deadline)
    await receiver.start(port)
    print(f"asyncrouter: POST events to http://127.0.0.1:{receiver.port}/events", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await receiver.close()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="asyncrouter", description=(__doc__ or "").splitlines()[0]
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object per event")
    parser.add_argument("--serve", action="store_true", help="keep serving until Ctrl-C")
    parser.add_argument("--port", type=int, default=0, help="port for --serve (default: any)")
    parser.add_argument(
        "--deadline",
        type=float,
        default=1.0,
        help="seconds each request may take to score (default: 1)",
    )
    args = parser.parse_args(argv)
    with make_host() as host:
        if args.serve:
            with contextlib.suppress(KeyboardInterrupt):
                asyncio.run(serve(host, args.port, args.deadline))
            return 0
        results = asyncio.run(demo(host, DEMO_EVENTS, deadline=args.deadline))
    for status, answer in results:
        if args.json:
            print(json.dumps({"http": status, **answer}))
        elif answer["status"] == "timeout":
            print(f"{answer['id']}  {status}  timed out after {answer['ms']} ms (guest stopped)")
        else:
            print(
                f"{answer['id']}  {status}  priority {answer['priority']:>3} -> "
                f"{answer['destination']:<5}  {answer['ms']} ms"
            )
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
