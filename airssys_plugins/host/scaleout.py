"""Run one hook over a batch of items in worker processes: :meth:`PluginHost.map` and
:meth:`PluginHost.imap`.

Each item is one full hook call, ``pm.hook.<hook>(**item)`` with pluggy's semantics, on
a worker whose host was rebuilt from a :class:`~.shipment.HostSpec` (same contract,
plugins, grants and limits). Two engines run the workers: a local process pool (the
default; processes are started with ``forkserver`` or ``spawn``, never ``fork``: a
process that has started wasmtime has threads, the epoch ticker and the host-call pool,
and a forked child gets their locks but not the threads) or a Dask distributed cluster
(``client=``). Items travel in chunks; a chunk lost with its worker is run again, item by
item, up to ``max_retries`` times, and the run's :class:`BatchReport` says which items
were run again.
"""

from __future__ import annotations

import collections
import concurrent.futures
import math
import multiprocessing
import os
import queue
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any, ClassVar, Final, Protocol, final, overload

from .. import _attrs as attrs
from .. import _log as logging
from .._errors import PluginError
from .shipment import Shipment, capture
from .supervision import POLICIES, FailurePolicy
from .worker import Outcome, ignore_sigint, outcomes, run_chunk, run_chunk_from_file

__all__ = [
    "BatchError",
    "BatchReport",
    "BatchResult",
    "BatchRun",
    "LocalPool",
    "WorkerLost",
    "WorkerSetupError",
    "imap",
    "map_items",
]

log = logging.getLogger("airssys_plugins.scaleout")

#: Default bound of re-runs for the items of a chunk whose worker died.
MAX_RETRIES: Final = 2
#: Most items in one chunk (a chunk's items and results sit in memory at once).
MAX_CHUNK: Final = 4096
Item = Mapping[str, Any]
Done = Callable[[Any], None]


class WorkerLost(PluginError, RuntimeError):
    """Item ``index`` was running on a worker that died, on each of ``attempts`` tries."""

    def __init__(self, message: str, *, hook: str, index: int, attempts: int):
        super().__init__(message, hook=hook)
        self.index = index
        self.attempts = attempts


class WorkerSetupError(PluginError, RuntimeError):
    """A worker could not rebuild the host (a hookspec module or the package missing
    there, a different wasmtime...); the worker's exception is ``__cause__``."""


class BatchError(PluginError, ExceptionGroup):
    """Every failed item of a batch run with ``policy="collect"``, in input order;
    ``result`` is the :class:`BatchResult` of the items that succeeded."""

    result: BatchResult

    def __new__(
        cls, message: str, exceptions: Sequence[Exception], *, hook: str, result: BatchResult
    ) -> BatchError:
        self = super().__new__(cls, message, exceptions)
        self.hook = hook
        self.plugin = None
        self.result = result
        return self

    def __init__(
        self, message: str, exceptions: Sequence[Exception], *, hook: str, result: BatchResult
    ):
        pass

    def derive(self, excs: Sequence[Exception]) -> BatchError:  # type: ignore[override]
        return BatchError(self.message, excs, hook=self.hook or "", result=self.result)


@final
@attrs.define
class BatchReport:
    """What happened to a batch (filled in while it runs).

    ``retried`` maps an item's index to how many times it was run again because its
    worker died; ``failures`` maps an index to its error (under ``skip`` and ``collect``);
    ``first_result_after`` and ``elapsed`` are seconds since the batch started.
    """

    hook: str
    engine: str
    workers: int
    done: int = 0
    failures: dict[int, PluginError] = attrs.field(factory=dict)
    retried: dict[int, int] = attrs.field(factory=dict)
    first_result_after: float | None = None
    elapsed: float = 0.0
    #: The batch was stopped before its end: Ctrl-C, or its iterator closed.
    interrupted: bool = False
    #: How many chunks were sent to workers (re-runs included).
    chunks: int = 0
    #: CPU seconds the workers spent in the batch's hook calls (each chunk's calls, on
    #: the worker thread that ran them; chunks lost with a worker are not counted):
    #: against ``elapsed x workers``, how much of the workers' time the work itself took.
    worker_cpu: float = 0.0


@final
class BatchResult(Sequence[Any]):
    """The results of :meth:`PluginHost.map` in input order (a sequence); under
    ``policy="skip"`` failed items are left out and ``indices[i]`` is the input index of
    ``self[i]``. ``report`` is the :class:`BatchReport`."""

    def __init__(self, values: list[Any], indices: list[int], report: BatchReport):
        self.values = values
        self.indices = indices
        self.report = report

    @overload
    def __getitem__(self, i: int) -> Any: ...
    @overload
    def __getitem__(self, i: slice) -> list[Any]: ...
    def __getitem__(self, i: int | slice) -> Any:
        return self.values[i]

    def __len__(self) -> int:
        return len(self.values)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, BatchResult):
            return self.values == other.values and self.indices == other.indices
        return isinstance(other, list) and self.values == other

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"BatchResult({self.values!r})"


class _Lost(Exception):
    """The chunk's worker died before it answered."""


class _Engine(Protocol):
    name: str
    workers: int
    #: chunks in flight at most: enough to keep every worker busy; a pool that loses a
    #: worker fails all of them, so the local pool keeps it small
    window: int
    #: seconds of the workers' CPU time a chunk should hold, so that the engine's cost
    #: per chunk stays under 2 % of it (chunks are smaller at the start and at the end)
    chunk_seconds: float
    #: workers do not share this machine's compile cache: compiled code travels too
    remote: bool

    def start(self, shipment: Shipment) -> None: ...
    def submit(self, hook: str, chunk: list[tuple[int, Item]], done: Done) -> Any: ...
    def result(self, future: Any) -> tuple[float, float, bytes]: ...
    def retried(self, futures: Sequence[Any]) -> dict[Any, int]: ...
    def stop(self, *, cancel: bool) -> None: ...


@final
class LocalPool:
    """A pool of worker processes on this machine, reusable across batches (``pool=``).

    ``processes`` defaults to the number of CPUs; ``start_method`` to ``forkserver``
    where the platform has it, else ``spawn`` (``fork`` is refused: see the module
    docstring). Close it (or use ``with``) to stop the processes.
    """

    name = "local"
    #: A chunk costs the parent ~0.5 ms of CPU (four threads hand it on, each way):
    #: 0.1 s of work keeps that under 1 %.
    chunk_seconds = 0.1
    remote = False

    def __init__(self, processes: int | None = None, *, start_method: str | None = None):
        methods = multiprocessing.get_all_start_methods()
        method = start_method or ("forkserver" if "forkserver" in methods else "spawn")
        if method == "fork":
            raise ValueError(
                "start_method='fork' is unsafe once wasmtime runs in the parent (its threads' "
                "locks are copied into the child without the threads); use 'forkserver' or "
                "'spawn'"
            )
        if processes is not None and processes < 1:
            raise ValueError(f"processes must be at least 1, got {processes}")
        self.workers = processes or os.cpu_count() or 1
        self.window = self.workers + 1
        self.start_method = method
        self._context = multiprocessing.get_context(method)
        self._executor = self._new_executor()
        # The executor each chunk went to: a failure of an executor already replaced
        # must not replace its successor (which runs the chunks sent again).
        self._generation: dict[concurrent.futures.Future[tuple[float, float, bytes]], int] = {}
        self._current = 0
        self._files: dict[str, Path] = {}
        self._dir: tempfile.TemporaryDirectory[str] | None = None

    def _new_executor(self) -> concurrent.futures.ProcessPoolExecutor:
        return concurrent.futures.ProcessPoolExecutor(
            self.workers, mp_context=self._context, initializer=ignore_sigint
        )

    def __enter__(self) -> LocalPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self, shipment: Shipment) -> None:
        # The spec (components included) is written once; each process reads it the first
        # time it sees the key, instead of receiving it with every chunk.
        self._key = shipment.key
        if shipment.key in self._files:
            return
        if self._dir is None:
            self._dir = tempfile.TemporaryDirectory(prefix="airssys-batch-")
        path = Path(self._dir.name) / f"{shipment.key}.host"
        path.write_bytes(shipment.blob)
        self._files[shipment.key] = path

    def submit(self, hook: str, chunk: list[tuple[int, Item]], done: Done) -> Any:
        path = str(self._files[self._key])
        generation = self._current
        try:
            future = self._executor.submit(run_chunk_from_file, self._key, path, hook, chunk)
        except (BrokenProcessPool, RuntimeError):
            # A worker died and the pool broke before any of its chunks said so (or it
            # was shut down): a new pool takes this chunk and those sent again.
            self._replace(generation)
            generation = self._current
            future = self._executor.submit(run_chunk_from_file, self._key, path, hook, chunk)
        self._generation[future] = generation
        future.add_done_callback(done)
        return future

    def result(self, future: Any) -> tuple[float, float, bytes]:
        generation = self._generation.pop(future, self._current)
        try:
            answer: tuple[float, float, bytes] = future.result()
        except (BrokenProcessPool, concurrent.futures.CancelledError) as exc:
            # Every chunk in flight fails with the pool (cancelled: queued when it was
            # replaced); the first one seen replaces it.
            self._replace(generation)
            raise _Lost() from exc
        return answer

    def _replace(self, generation: int) -> None:
        if generation == self._current:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = self._new_executor()
            self._current += 1

    def retried(self, futures: Sequence[Any]) -> dict[Any, int]:
        return {}

    def stop(self, *, cancel: bool) -> None:
        self._generation.clear()
        if cancel:  # Ctrl-C or an error: drop queued chunks, let running ones finish
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = self._new_executor()
            self._current += 1

    def close(self) -> None:
        """Stop the worker processes and remove the shipped host files."""
        self._executor.shutdown(wait=True, cancel_futures=True)
        if self._dir is not None:
            self._dir.cleanup()
            self._dir = None
        self._files.clear()


# The host last shipped to a client's workers (by client id): a later batch of the same
# host (the same key) reuses it instead of sending it again. A few clients at most.
_shipped: collections.OrderedDict[str, tuple[str, Any]] = collections.OrderedDict()
_KEEP_SHIPPED: Final = 4


@final
class _Dask:
    """A Dask distributed ``Client``'s cluster as the batch's engine."""

    name = "dask"
    #: A task costs the client, the scheduler and the worker's event loop 5-10 ms of CPU
    #: (measured on a LocalCluster, where all of it is on the workers' cores): 0.4 s of
    #: work keeps it around 2 %; bigger chunks would make the end of a batch unbalanced.
    chunk_seconds = 0.4
    remote = True

    def __init__(self, client: Any):
        try:
            import distributed
        except ImportError as exc:  # pragma: no cover - the client came from it
            raise ImportError("client= needs Dask: pip install 'airssys-plugins[dask]'") from exc
        self._distributed = distributed
        self.client = client
        self.workers = max(1, sum(client.nthreads().values()))
        self.window = self.workers * 2 + 1
        self._inflight: set[Any] = set()
        self._sent_with: dict[Any, Any] = {}  # chunk -> the scattered host it names

    def start(self, shipment: Shipment) -> None:
        # Sent once to every worker (and kept there for later batches of the same host);
        # tasks refer to it by key, and each worker builds its host from it once.
        self._shipment = shipment
        known = _shipped.pop(self.client.id, None)
        if known is not None and known[0] == shipment.key and known[1].status == "finished":
            self._shipped = known[1]
        else:
            if known is not None:
                known[1].release()
            self._scatter()
        _shipped[self.client.id] = (shipment.key, self._shipped)
        while len(_shipped) > _KEEP_SHIPPED:
            _shipped.popitem(last=False)[1][1].release()

    def _scatter(self) -> None:
        self._shipped = self.client.scatter(self._shipment, broadcast=True, hash=False)
        _shipped[self.client.id] = (self._shipment.key, self._shipped)

    def submit(self, hook: str, chunk: list[tuple[int, Item]], done: Done) -> Any:
        future = self.client.submit(run_chunk, self._shipped, hook, chunk, pure=False)
        self._inflight.add(future)
        self._sent_with[future] = self._shipped
        future.add_done_callback(done)
        return future

    def result(self, future: Any) -> tuple[float, float, bytes]:
        self._inflight.discard(future)
        shipped = self._sent_with.pop(future, None)
        try:
            answer: tuple[float, float, bytes] = future.result()
        except self._distributed.scheduler.KilledWorker as exc:
            raise _Lost() from exc
        except concurrent.futures.CancelledError as exc:
            # Cancelled by the scheduler: the host it depends on was lost with a worker
            # (Dask's memory manager may drop the broadcast copies no task is waiting
            # for, leaving one). The first such chunk sends the host again; every
            # chunk cancelled with it runs again on the new copy.
            if shipped is self._shipped:
                self._scatter()
            raise _Lost() from exc
        return answer

    def retried(self, futures: Sequence[Any]) -> dict[Any, int]:
        # The scheduler re-runs a dead worker's tasks itself and counts them "suspicious".
        keys = [f.key for f in futures]
        try:
            counts = self.client.run_on_scheduler(_suspicious, keys=keys)
        except Exception as exc:  # an old or locked-down scheduler: report what we know
            log.warning("cannot ask the Dask scheduler which tasks it re-ran: %s", exc)
            return {}
        return {f: counts[f.key] for f in futures if counts.get(f.key)}

    def stop(self, *, cancel: bool) -> None:
        if cancel:
            self.client.cancel(list(self._inflight))
        self._inflight.clear()
        self._sent_with.clear()


def _suspicious(dask_scheduler: Any, keys: Sequence[Any]) -> dict[Any, int]:
    tasks = dask_scheduler.tasks
    return {k: tasks[k].suspicious for k in keys if k in tasks}


@attrs.define
class _Chunk:
    items: list[tuple[int, Item]]
    attempts: int = 0  # losses while running alone: its own
    losses: int = 0  # losses of any kind


@final
class BatchRun(Iterator[tuple[int, Any]]):
    """The iterator :meth:`PluginHost.imap` returns: ``(index, result)`` pairs as items
    finish; ``report`` fills in as it goes. ``close()`` (or leaving a ``for`` loop)
    stops the batch: queued chunks are dropped, chunks running finish."""

    def __init__(self, report: BatchReport, pairs: Iterator[tuple[int, Any]]):
        self.report = report
        self._pairs = pairs

    def __next__(self) -> tuple[int, Any]:
        return next(self._pairs)

    def close(self) -> None:
        close = getattr(self._pairs, "close", None)
        if close is not None:
            close()


def imap(
    host: Any,
    hook: str,
    items: Iterable[Item],
    *,
    client: Any = None,
    pool: LocalPool | None = None,
    processes: int | None = None,
    chunksize: int | None = None,
    policy: FailurePolicy = "raise",
    max_retries: int = MAX_RETRIES,
    progress: bool = False,
) -> BatchRun:
    """The body of :meth:`PluginHost.imap` (see there)."""
    if policy not in POLICIES:
        raise ValueError(f"policy must be one of {POLICIES}, got {policy!r}")
    if not hasattr(host.pm.hook, hook) or getattr(host.pm.hook, hook).spec is None:
        raise ValueError(f"{hook!r} is not a hook of this host's contract")
    if client is not None and pool is not None:
        raise TypeError("give client= (Dask) or pool= (local processes), not both")
    if chunksize is not None and chunksize < 1:
        raise ValueError(f"chunksize must be at least 1, got {chunksize}")
    own_pool = client is None and pool is None
    engine: _Engine = _Dask(client) if client is not None else (pool or LocalPool(processes))
    # Refuses what cannot travel, before any item runs. Compiled code travels where the
    # workers do not share this machine's compile cache.
    shipment = Shipment.of(capture(host, artefacts=engine.remote or not host.compile_cache))
    total = len(items) if isinstance(items, Sequence) else None
    sizer = _Sizer(engine.workers, engine.chunk_seconds, total, chunksize)
    report = BatchReport(hook, engine.name, engine.workers)
    pairs = _run(engine, shipment, hook, items, sizer, total, policy, max_retries, progress, report)
    if own_pool:
        pairs = _closing(pairs, engine)
    return BatchRun(report, pairs)


def map_items(host: Any, hook: str, items: Iterable[Item], **options: Any) -> BatchResult:
    """The body of :meth:`PluginHost.map` (see there)."""
    run = imap(host, hook, items, **options)
    found: dict[int, Any] = {}
    try:
        for index, value in run:
            found[index] = value
    except BatchError as exc:
        indices = sorted(found)
        exc.result = BatchResult([found[i] for i in indices], indices, run.report)
        raise
    indices = sorted(found)
    return BatchResult([found[i] for i in indices], indices, run.report)


@attrs.define
class _Sizer:
    """How many items the next chunk takes.

    The first chunks are small (1, 2, 4... items) so that results come early and the
    workers' cost per item is measured; then a chunk holds ``seconds`` of the workers'
    CPU time, so the engine's CPU cost per chunk stays small against the work it carries.
    CPU time, not wall-clock time: on a machine shared with other work a chunk's wall time
    overstates its work (it waited for a core), and chunks sized by it come out too small,
    so the engine's cost per item grows just when cores are scarce. A hook that mostly
    waits (a host function doing I/O) uses little CPU, so a chunk also lasts at most
    ``WALL_CAP x seconds`` of wall-clock time. Once the total is known and the end is
    near, a chunk takes at most 1/(2 x workers) of what is left ("factoring"), so the
    workers finish together instead of one waiting for another's last big chunk.
    ``fixed`` (``chunksize=``) overrides all of it.
    """

    #: A chunk's wall-clock time is held to this many times ``seconds``.
    WALL_CAP: ClassVar[float] = 4.0

    workers: int
    seconds: float
    total: int | None
    fixed: int | None = None
    per_item: float | None = None  # CPU seconds, a moving average of the workers' reports
    per_item_wall: float | None = None  # wall-clock seconds, the same way
    sent: int = 0
    ramp: int = 1

    def next(self) -> int:
        if self.fixed is not None:
            size = self.fixed
        elif self.per_item is None:
            size, self.ramp = self.ramp, self.ramp * 2
        else:
            size = max(1, int(self.seconds / max(self.per_item, 1e-7)))
            if self.per_item_wall is not None:
                longest = self.WALL_CAP * self.seconds / max(self.per_item_wall, 1e-7)
                size = max(1, min(size, int(longest)))
            if self.total is not None:
                left = max(1, self.total - self.sent)
                floor = max(1, size // 8)  # the tail's chunks: 1/8 of a full one at least
                size = min(size, max(floor, math.ceil(left / (2 * self.workers))))
        return max(1, min(size, MAX_CHUNK))

    def took(self, items: int, seconds: float, cpu: float | None = None) -> None:
        """A chunk of ``items`` took ``seconds`` of wall-clock time and ``cpu`` seconds
        of its worker's CPU (``None``: not measured, the wall time stands for it)."""
        if items <= 0 or seconds <= 0:
            return
        wall = seconds / items
        each = wall if cpu is None or cpu <= 0 else cpu / items
        self.per_item = each if self.per_item is None else 0.7 * self.per_item + 0.3 * each
        self.per_item_wall = (
            wall if self.per_item_wall is None else 0.7 * self.per_item_wall + 0.3 * wall
        )


def _closing(pairs: Iterator[tuple[int, Any]], pool: Any) -> Iterator[tuple[int, Any]]:
    try:
        yield from pairs
    finally:
        pool.close()


def _chunks(items: Iterable[Item], sizer: _Sizer, hook: str) -> Iterator[_Chunk]:
    """Chunks of ``items``, each sized by ``sizer`` when it is taken (so that a chunk
    made later knows more about the items' cost)."""
    source = iter(enumerate(items))
    while True:
        chunk: list[tuple[int, Item]] = []
        size = sizer.next()
        for index, item in source:
            if not isinstance(item, Mapping):
                raise TypeError(
                    f"item {index} of the batch for hook {hook!r} is a {type(item).__name__}; "
                    "each item must be a mapping of the hook's arguments, e.g. {'text': ...}"
                )
            chunk.append((index, item))
            if len(chunk) >= size:
                break
        if not chunk:
            return
        sizer.sent += len(chunk)
        yield _Chunk(chunk)


def _run(
    engine: _Engine,
    shipment: Shipment,
    hook: str,
    items: Iterable[Item],
    sizer: _Sizer,
    total: int | None,
    policy: FailurePolicy,
    max_retries: int,
    progress: bool,
    report: BatchReport,
) -> Iterator[tuple[int, Any]]:
    started = time.perf_counter()
    bar = _progress(total, hook) if progress else None
    failures: list[PluginError] = []
    finished = False
    try:
        engine.start(shipment)
        chunks = _chunks(items, sizer, hook)
        for outcome in _outcomes(engine, hook, chunks, sizer, max_retries, report):
            if report.first_result_after is None:
                report.first_result_after = time.perf_counter() - started
            report.done += 1
            if bar is not None:
                bar.advance()
            if outcome.error is None:
                yield outcome.index, outcome.value
                continue
            error = outcome.error
            if outcome.cause is not None:
                error.__cause__ = outcome.cause
            if policy == "raise":
                raise error
            report.failures[outcome.index] = error
            failures.append(error)
            if policy == "skip":
                log.warning(
                    "batch %r: item %d failed and is skipped: %s", hook, outcome.index, error
                )
        finished = True
    except (KeyboardInterrupt, GeneratorExit):  # Ctrl-C here, or the caller's close()
        report.interrupted = True
        raise
    finally:
        report.elapsed = time.perf_counter() - started
        if bar is not None:
            bar.close()
        engine.stop(cancel=not finished)
        if report.retried:
            log.warning(
                "batch %r: %d item(s) were run again after their worker died: %s",
                hook,
                len(report.retried),
                ", ".join(str(i) for i in sorted(report.retried)[:20]),
            )
    if policy == "collect" and failures:
        ordered = [report.failures[i] for i in sorted(report.failures)]
        raise BatchError(
            f"{len(ordered)} of {report.done} item(s) of the batch for hook {hook!r} failed",
            ordered,
            hook=hook,
            result=BatchResult([], [], report),
        )


def _outcomes(
    engine: _Engine,
    hook: str,
    chunks: Iterator[_Chunk],
    sizer: _Sizer,
    max_retries: int,
    report: BatchReport,
) -> Iterator[Outcome]:
    """Run the chunks, at most ``window`` at a time; outcomes as chunks finish.

    Finished chunks are handed over by the engine's done-callbacks through a queue, so
    this thread sleeps while the workers run. A pool that loses a worker fails every
    chunk in flight, so a loss does not say which item killed the worker. A chunk lost
    once runs again as it was; lost twice, its items are *suspects* and run one at a time
    with nothing else in flight: a loss then is that item's own, counted against
    ``max_retries``.
    """
    window = engine.window  # also bounds the memory a big (or endless) input takes
    finished: queue.SimpleQueue[Any] = queue.SimpleQueue()
    pending: dict[Any, _Chunk] = {}
    again: collections.deque[_Chunk] = collections.deque()
    suspects: collections.deque[_Chunk] = collections.deque()
    settled: list[tuple[Any, _Chunk]] = []  # finished futures whose retry counts are unread
    source: Iterator[_Chunk] | None = chunks

    def send(chunk: _Chunk) -> None:
        pending[engine.submit(hook, chunk.items, finished.put)] = chunk
        report.chunks += 1

    while True:
        if suspects and not pending:
            send(suspects.popleft())
        while not suspects and len(pending) < window and (again or source is not None):
            if again:
                send(again.popleft())
                continue
            assert source is not None
            fresh = next(source, None)
            if fresh is None:
                source = None
                continue
            send(fresh)
        if not pending:
            break
        alone = len(pending) == 1
        future = _next_finished(finished)
        chunk = pending.pop(future, None)
        if chunk is None:  # a chunk of a batch stopped before (an engine reused): not ours
            continue
        try:
            wall, cpu, blob = engine.result(future)
        except _Lost:
            yield from _lost(chunk, alone, hook, max_retries, report, again, suspects)
            continue
        except Exception as exc:
            first, last = chunk.items[0][0], chunk.items[-1][0]
            raise WorkerSetupError(
                f"the workers could not run hook {hook!r} for items {first}..{last}: "
                f"{type(exc).__name__}: {exc}. Workers need airssys-plugins, a "
                "wasmtime of the same major and the hookspec and plugin modules "
                "the host uses; the items must pickle.",
                hook=hook,
            ) from exc
        sizer.took(len(chunk.items), wall, cpu)
        report.worker_cpu += cpu
        settled.append((future, chunk))
        yield from outcomes(blob)
        if len(settled) >= 32:
            _note_retries(engine, settled, report)
    # Not in a finally: a stopped batch (an error under "raise", Ctrl-C, a closed
    # iterator) has nobody reading its re-runs, so the scheduler is not asked then.
    if settled:
        _note_retries(engine, settled, report)


def _next_finished(finished: queue.SimpleQueue[Any]) -> Any:
    # A bounded wait, again and again: Ctrl-C is seen within a second whatever the platform.
    while True:
        try:
            return finished.get(timeout=1.0)
        except queue.Empty:
            continue


def _note_retries(engine: _Engine, settled: list[tuple[Any, _Chunk]], report: BatchReport) -> None:
    counts = engine.retried([f for f, _ in settled])
    for future, chunk in settled:
        for index, _ in chunk.items:
            if counts.get(future):
                report.retried[index] = report.retried.get(index, 0) + counts[future]
    settled.clear()


def _lost(
    chunk: _Chunk,
    alone: bool,
    hook: str,
    max_retries: int,
    report: BatchReport,
    again: collections.deque[_Chunk],
    suspects: collections.deque[_Chunk],
) -> Iterator[Outcome]:
    """What to do with a chunk whose worker died (see :func:`_outcomes`)."""
    for index, _ in chunk.items:
        report.retried[index] = report.retried.get(index, 0) + 1
    if alone and len(chunk.items) == 1 and chunk.losses > 0:
        attempts = chunk.attempts + 1  # it ran alone: the loss is its own
        if attempts > max_retries:
            index = chunk.items[0][0]
            report.retried[index] -= 1  # not run again after all
            yield Outcome(
                index,
                error=WorkerLost(
                    f"item {index} of hook {hook!r} took its worker down {attempts} time(s) "
                    f"running alone (max_retries={max_retries}): it crashes the worker "
                    "process (a Python plugin exiting or crashing), or workers are being "
                    "killed; call it once with host.call to see",
                    hook=hook,
                    index=index,
                    attempts=attempts,
                ),
            )
            return
        suspects.append(_Chunk(chunk.items, attempts, chunk.losses + 1))
    elif chunk.losses == 0:
        again.append(_Chunk(chunk.items, 0, 1))
    else:
        suspects.extend(_Chunk([item], 0, chunk.losses + 1) for item in chunk.items)


@final
class _Bar:
    """A rich progress bar on stderr."""

    def __init__(self, total: int | None, hook: str):
        from rich.console import Console
        from rich.progress import Progress

        self._progress = Progress(console=Console(stderr=True), transient=False)
        self._progress.start()
        self._task = self._progress.add_task(f"hook {hook}", total=total)

    def advance(self) -> None:
        self._progress.advance(self._task)

    def close(self) -> None:
        self._progress.stop()


def _progress(total: int | None, hook: str) -> _Bar:
    return _Bar(total, hook)
