"""The worker side of a batch: rebuild a host from its :class:`Shipment`, run items.

A worker process builds one ``PluginHost`` per shipment key and keeps it for every later
chunk of the batch (and of later batches of the same host); it is of the host's own
class, named in the spec (this module may not import the facade, which imports it
through ``map``). Its components are compiled or deserialised once, through the
runtime's compile cache (keyed by the component's digest, the wasmtime version and the
engine configuration), or deserialised from the artefact the host shipped with it where
this process's wasmtime, engine configuration and target match the host's. The host is
built from the spec only, with the host's own policy: the rights each component was
granted are asked for again and decided again, so a worker can narrow them, never widen
them.
"""

from __future__ import annotations

import copy
import os
import pickle
import signal
import socket
import sys
import threading
import time
import traceback
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final, final

import pluggy

from .. import _attrs as attrs
from .._errors import HookCallError, PluginError
from ..runtime.engine import import_artefact
from .settings import Reliability, SandboxPolicy
from .shipment import ComponentSpec, NotShippable, RemoteError, Shipment

__all__ = [
    "Outcome",
    "facts",
    "host_for",
    "ignore_sigint",
    "outcomes",
    "run_chunk",
    "run_chunk_from_file",
]

#: Hosts a worker keeps (least recently used ones are closed beyond this).
KEEP_HOSTS: Final = 4

_hosts: OrderedDict[str, Any] = OrderedDict()
_lock = threading.Lock()
#: Shipment key -> the components its host deserialised from shipped artefacts.
_deserialised: dict[str, list[str]] = {}


@final
@attrs.frozen
class Outcome:
    """One item's result, or its error (with its cause re-attached by the caller)."""

    index: int
    value: Any = None
    error: PluginError | None = None
    cause: BaseException | None = None


def ignore_sigint() -> None:
    """Pool initializer: Ctrl-C reaches the whole process group; the parent alone decides
    how the batch stops, so a worker finishes its chunk instead of dying mid-item."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def host_for(shipment: Shipment) -> Any:
    """This process's host for ``shipment``, built on first use."""
    with _lock:
        host = _hosts.get(shipment.key)
        if host is not None:
            _hosts.move_to_end(shipment.key)
            return host
        used: list[str] = []
        host = build(shipment, deserialised=used)
        _hosts[shipment.key] = host
        _deserialised[shipment.key] = used
        while len(_hosts) > KEEP_HOSTS:
            key, old = _hosts.popitem(last=False)
            _deserialised.pop(key, None)
            old.close()
        return host


def build(shipment: Shipment, *, deserialised: list[str] | None = None) -> Any:
    """A fresh host made from ``shipment`` alone; the names of the components taken from
    their shipped artefacts (not compiled here) are appended to ``deserialised``."""
    spec = shipment.spec()
    pm = pluggy.PluginManager(spec.project)
    for ref in spec.hookspecs:
        pm.add_hookspecs(ref.resolve())
    host = spec.host_class.resolve()(
        pm,
        package=spec.package,
        bindings=spec.bindings,
        limits=spec.limits,
        policy=SandboxPolicy(
            ceiling=spec.ceiling,
            hook_ceilings=spec.hook_ceilings,
            grants=spec.grants,
            on_denied=spec.on_denied,  # type: ignore[arg-type]
        ),
        reliability=Reliability(spec.restart, spec.failure_policies),
        data_dir=spec.data_dir,
        compile_cache=spec.compile_cache,
        versions=spec.versions,
        missing_provider=spec.missing_provider,
    )
    try:
        for function in spec.functions:
            host.provide(
                pickle.loads(function.pickled), interface=function.interface, name=function.name
            )
        for plugin in spec.plugins:
            if isinstance(plugin, ComponentSpec):
                # Held until the load below has taken it: the runtime keeps live compiled
                # components weakly, by digest and engine configuration.
                compiled = None if plugin.artefact is None else import_artefact(plugin.artefact)
                loaded = host.load(
                    plugin.data,
                    name=plugin.name,
                    path=plugin.path,
                    hooks=plugin.hooks,
                    requests=plugin.requests,
                    limits=plugin.limits,
                    config=plugin.config,
                    pool_size=plugin.pool_size,
                    isolation=plugin.isolation,
                )
                if compiled is not None and deserialised is not None:
                    deserialised.append(plugin.name)
                del compiled
                if loaded.sha256 != plugin.sha256:  # the bytes the host checked, or none
                    raise NotShippable(
                        f"plugin {plugin.name!r} reached the worker with a digest "
                        f"{loaded.sha256} instead of {plugin.sha256}",
                        plugin=plugin.name,
                    )
            else:
                pm.register(plugin.resolve(), name=plugin.name)
        for hook, kwargs in spec.historic:
            getattr(pm.hook, hook).call_historic(kwargs=dict(kwargs))
    except BaseException:
        host.close()
        raise
    return host


def run_chunk(
    shipment: Shipment, hook: str, chunk: Sequence[tuple[int, Mapping[str, Any]]]
) -> tuple[float, float, bytes]:
    """Call ``pm.hook.<hook>(**item)`` for each ``(index, item)``: the wall-clock seconds
    and the CPU seconds (of this thread, where the calls and their guests run) the calls
    took, by which the parent sizes later chunks, and the chunk's outcomes, pickled
    together as ``(index, value, error, cause)`` tuples; an outcome that cannot be pickled
    fails its item only."""
    host = host_for(shipment)
    caller = getattr(host.pm.hook, hook)
    cpu = time.thread_time()
    started = time.perf_counter()
    out: list[tuple[int, Any, PluginError | None, BaseException | None]] = []
    for index, item in chunk:
        try:
            out.append((index, caller(**item), None, None))
        except Exception as exc:
            failed = _failed(index, hook, exc)
            out.append((index, None, failed.error, failed.cause))
    elapsed = time.perf_counter() - started
    cpu = time.thread_time() - cpu
    try:
        return elapsed, cpu, pickle.dumps(out, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception:  # some result (or an error's field) does not pickle: find which
        return (
            elapsed,
            cpu,
            pickle.dumps(
                [_picklable_outcome(hook, o) for o in out], protocol=pickle.HIGHEST_PROTOCOL
            ),
        )


def outcomes(blob: bytes) -> list[Outcome]:
    """The outcomes of a chunk, from what :func:`run_chunk` returned."""
    return [Outcome(i, value, error, cause) for i, value, error, cause in pickle.loads(blob)]


def _picklable_outcome(
    hook: str, outcome: tuple[int, Any, PluginError | None, BaseException | None]
) -> tuple[int, Any, PluginError | None, BaseException | None]:
    try:
        pickle.dumps(outcome, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as exc:
        index, value, error, cause = outcome
        if error is not None:  # the item failed, and its error does not travel as it is
            return index, None, _picklable_error(error, exc), _picklable(cause)
        error = NotShippable(
            f"hook {hook!r} returned a {type(value).__name__} for item {index} that cannot "
            f"be pickled back to the caller ({exc}); return values that pickle (what "
            "components return always does)",
        )
        error.hook = hook
        return index, None, error, None
    return outcome


def _picklable_error(error: PluginError, problem: Exception) -> PluginError:
    """``error`` made to pickle: a copy of it whose fields that do not pickle are replaced
    by their ``repr``; failing that, a :class:`RemoteError` with its type, message,
    plugin, hook and notes."""
    try:
        twin = copy.copy(error)  # PluginError.__reduce__: its class, args and fields
        for name, field in vars(error).items():
            try:
                pickle.dumps(field, protocol=pickle.HIGHEST_PROTOCOL)
            except Exception:
                setattr(twin, name, repr(field))
        twin.__notes__ = list(getattr(error, "__notes__", ()))
        pickle.loads(pickle.dumps(twin, protocol=pickle.HIGHEST_PROTOCOL))
    except Exception:
        stand_in = RemoteError(f"{type(error).__name__}: {error}", type_name=type(error).__name__)
        stand_in.plugin, stand_in.hook = error.plugin, error.hook
        for note in getattr(error, "__notes__", ()):
            stand_in.add_note(note)
        twin = stand_in
    twin.add_note(f"(part of this error could not be pickled back from the worker: {problem})")
    return twin


def run_chunk_from_file(
    key: str, path: str, hook: str, chunk: Sequence[tuple[int, Mapping[str, Any]]]
) -> tuple[float, float, bytes]:
    """:func:`run_chunk` for the local pool: the shipment is read from ``path`` (written
    once by the parent) the first time this process sees ``key``."""
    with _lock:
        known = key in _hosts
    shipment = Shipment(key, b"") if known else Shipment(key, Path(path).read_bytes())
    return run_chunk(shipment, hook, chunk)


def _failed(index: int, hook: str, exc: Exception) -> Outcome:
    where = f"item {index} of hook {hook!r}, on worker {socket.gethostname()} pid {os.getpid()}"
    if isinstance(exc, PluginError):
        error = exc
    else:  # a Python plugin (or pluggy) raised: named, and the original kept as the cause
        error = HookCallError(
            f"hook {hook!r} raised {type(exc).__name__}: {exc} (for {where})", hook=hook
        )
        error.__cause__ = exc
    if error.hook is None:
        error.hook = hook
    trace = "".join(traceback.format_exception(exc)).rstrip()
    error.add_note(f"{where}; traceback on the worker:\n{trace}")
    cause = _picklable(error.__cause__)
    # The cause travels beside the error (the caller re-attaches it), the traceback as
    # the note above. They are detached here because a worker that has imported
    # distributed pickles exceptions with tblib, which takes their cause, context and
    # traceback along: a wasmtime error (a ctypes pointer) as the cause of a
    # PluginTimeout would fail the whole chunk's pickle.
    error.__cause__ = error.__context__ = None
    error.__traceback__ = None
    return Outcome(index, error=error, cause=cause)


def _picklable(cause: BaseException | None) -> BaseException | None:
    if cause is None:
        return None
    try:
        pickle.loads(pickle.dumps(cause))
    except Exception:
        return RemoteError(f"{type(cause).__name__}: {cause}", type_name=type(cause).__name__)
    return cause


def facts(shipment: Shipment) -> dict[str, Any]:
    """What this worker's host is (for tests and ``--explain`` style checks): each
    component's granted rights, limits and digest, whether discovery was imported, and
    which components came from shipped artefacts."""
    host = host_for(shipment)
    return {
        "pid": os.getpid(),
        "plugins": {
            p.name: {
                "capabilities": p.capabilities,
                "limits": p.limits,
                "sha256": p.sha256,
                "isolation": p.isolation,
                "pool_size": p.pool_size,
            }
            for p in host.plugins.values()
        },
        "python_plugins": sorted(
            n for n, p in host.pm.list_name_plugin() if n not in host.plugins and p is not None
        ),
        "modules": sorted(m for m in sys.modules if m.startswith("airssys_plugins.discovery")),
        "deserialised": list(_deserialised.get(shipment.key, ())),
    }
