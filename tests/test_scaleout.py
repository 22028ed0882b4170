"""Batches in worker processes: host.map / host.imap on a local pool and on Dask."""

from __future__ import annotations

import ctypes
import json
import os
import pickle
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import attrs
import pluggy
import pytest

from airssys_plugins import (
    ArgumentError,
    BatchError,
    Capabilities,
    CapabilityDenied,
    ContractMismatchError,
    HookCallError,
    Limits,
    LocalPool,
    Mismatch,
    NotShippable,
    PluginError,
    PluginHost,
    PluginLoadError,
    PluginResultError,
    PluginTimeout,
    PluginTrap,
    RestartPolicy,
    WorkerLost,
    u32,
)
from airssys_plugins.authoring.build import build_guest
from airssys_plugins.cli import main
from airssys_plugins.host.scaleout import _Sizer
from airssys_plugins.host.shipment import RemoteError, Shipment, capture
from airssys_plugins.host.supervision import HookFailures
from airssys_plugins.host.worker import _picklable_outcome, facts
from airssys_plugins.runtime.engine import Artefact, export_artefact, import_artefact

from .conftest import ROOT
from .demo import PACKAGE, DemoHooks
from .scaleout_hooks import (
    Doubler,
    Killer,
    TimesOutNatively,
    Unpicklable,
    WorkerPid,
    pid_of_worker,
)

FUNCS = ["add-one", "pick", "fail", "setup", "get-setup"]


@pytest.fixture(scope="module")
def pool() -> Iterator[LocalPool]:
    """Two worker processes shared by the module's tests (starting them is the slow part)."""
    with LocalPool(2) as p:
        yield p


@pytest.fixture
def batch_host(demo: Callable[..., Path]) -> Iterator[PluginHost]:
    """A host with a demo component (k=1) from a file and a Python plugin."""
    pm = pluggy.PluginManager("demo")
    pm.add_hookspecs(DemoHooks)
    # Traps must not put the plugin into backoff on the workers (which keep their hosts).
    restart = RestartPolicy(max_failures=10_000, backoff_base=0.0, backoff_max=0.0)
    with PluginHost(pm, package=PACKAGE, limits=Limits(fuel=10_000_000), restart=restart) as host:
        host.load(demo(k=1, funcs=FUNCS), name="wasm")
        pm.register(Doubler(), name="doubler")
        yield host


def test_map_gives_the_local_calls_results_in_input_order(
    batch_host: PluginHost, pool: LocalPool
) -> None:
    """Each item is one full pluggy call on a worker: the same result lists as locally."""
    items = [{"x": i} for i in range(40) if i != 13]
    expected = [batch_host.pm.hook.add_one(**item) for item in items]
    result = batch_host.map("add_one", items, pool=pool, chunksize=3)
    assert result == expected
    assert list(result.indices) == list(range(len(items)))
    assert result.report.done == len(items)
    assert result.report.retried == {}


def test_firstresult_and_historic_hooks_behave_as_on_the_host(
    batch_host: PluginHost, pool: LocalPool
) -> None:
    """A firstresult hook gives one value; historic calls made on the host reach workers."""
    batch_host.pm.hook.setup.call_historic(kwargs={"x": 41})
    assert batch_host.pm.hook.get_setup() == [41]
    picks = batch_host.map("pick", [{"x": 1}, {"x": 2}], pool=pool)
    assert list(picks) == [batch_host.pm.hook.pick(x=1), batch_host.pm.hook.pick(x=2)]
    assert list(batch_host.map("get_setup", [{}, {}], pool=pool)) == [[41], [41]]


def test_imap_yields_every_index_once_as_items_finish(
    batch_host: PluginHost, pool: LocalPool, capsys: pytest.CaptureFixture[str]
) -> None:
    """imap streams (index, result) pairs; the report fills in; progress goes to stderr."""
    items = [{"x": i} for i in range(20, 30)]
    run = batch_host.imap("add_one", items, pool=pool, chunksize=2, progress=True)
    pairs = dict(run)
    assert pairs == {i: batch_host.pm.hook.add_one(x=20 + i) for i in range(10)}
    assert run.report.done == 10
    assert run.report.first_result_after is not None
    assert "hook add_one" in capsys.readouterr().err


def test_failed_items_carry_plugin_hook_and_cause_under_each_policy(
    batch_host: PluginHost, pool: LocalPool
) -> None:
    """raise: the error itself; collect: a BatchError of all; skip: the others go on."""
    with pytest.raises(PluginTrap) as trap:
        batch_host.map("fail", [{"x": 1}], pool=pool)
    assert (trap.value.plugin, trap.value.hook) == ("wasm", "fail")
    assert trap.value.__cause__ is not None
    assert any("item 0 of hook 'fail'" in note for note in trap.value.__notes__)

    with pytest.raises(BatchError) as group:
        batch_host.map("fail", [{"x": i} for i in range(3)], pool=pool, policy="collect")
    assert [type(e) for e in group.value.exceptions] == [PluginTrap] * 3
    assert sorted(group.value.result.report.failures) == [0, 1, 2]

    skipped = batch_host.map("add_one", [{"x": i} for i in (12, 13, 14)], pool=pool, policy="skip")
    assert list(skipped.indices) == [0, 2]
    error = skipped.report.failures[1]
    assert isinstance(error, HookCallError)
    assert error.hook == "add_one"
    assert isinstance(error.__cause__, ValueError)


def test_a_worker_that_dies_loses_no_item(
    batch_host: PluginHost, pool: LocalPool, tmp_path: Path
) -> None:
    """The chunk of a killed worker runs again elsewhere; the report names its items."""
    batch_host.pm.register(Killer(7, tmp_path / "killed"), name="killer")
    items = [{"x": i} for i in range(30) if i != 13]
    result = batch_host.map("add_one", items, pool=pool, chunksize=4)
    assert (tmp_path / "killed").exists()
    assert list(result.indices) == list(range(len(items)))
    assert result == [batch_host.pm.hook.add_one(**item) for item in items]
    assert 7 in result.report.retried


def test_an_item_that_always_kills_its_worker_fails_alone_after_the_bound(
    batch_host: PluginHost, pool: LocalPool, tmp_path: Path
) -> None:
    """Re-runs are bounded; then that item (only) fails with WorkerLost."""
    batch_host.pm.register(Killer(3, tmp_path / "killed", always=True), name="killer")
    result = batch_host.map(
        "add_one", [{"x": i} for i in range(6)], pool=pool, policy="skip", max_retries=1
    )
    assert list(result.indices) == [0, 1, 2, 4, 5]
    lost = result.report.failures[3]
    assert isinstance(lost, WorkerLost)
    assert (lost.index, lost.attempts) == (3, 2)


def test_what_cannot_travel_is_refused_up_front_by_name(
    batch_host: PluginHost, demo: Callable[..., Path], tmp_path: Path
) -> None:
    """Unpicklable Python plugins, lambdas as host functions, components whose file changed."""
    batch_host.pm.register(Unpicklable(), name="locked")
    with pytest.raises(NotShippable, match="'locked'") as refused:
        batch_host.map("add_one", [{"x": 1}])
    assert refused.value.plugin == "locked"

    pm = pluggy.PluginManager("demo")
    pm.add_hookspecs(DemoHooks)
    with PluginHost(pm, package=PACKAGE) as host:

        @host.provide
        def ident(x: u32) -> u32:  # a local function: pickle cannot name it
            return x

        wasm = tmp_path / "changed.wasm"
        wasm.write_bytes(demo(k=2, funcs=["add-one"]).read_bytes())
        host.load(wasm, name="changed")
        wasm.write_bytes(demo(k=5, funcs=["add-one"]).read_bytes())  # not what was loaded
        with pytest.raises(ExceptionGroup) as both:
            host.map("add_one", [{"x": 1}])
    assert {(e.plugin, e.function) for e in both.value.exceptions} == {  # type: ignore[attr-defined]
        ("changed", None),
        (None, "demo:hooks/ident@1.0.0#ident"),
    }
    changed = next(e for e in both.value.exceptions if e.plugin == "changed")  # type: ignore[attr-defined]
    assert f"no longer matches {wasm}" in str(changed)


def test_a_component_loaded_from_bytes_without_a_path_travels(
    demo: Callable[..., Path], pool: LocalPool
) -> None:
    """host.load(data) keeps the bytes, so a batch ships them like a file's."""
    pm = pluggy.PluginManager("demo")
    pm.add_hookspecs(DemoHooks)
    with PluginHost(pm, package=PACKAGE) as host:
        host.load(demo(k=4, funcs=["add-one"]).read_bytes(), name="inline")
        result = host.map("add_one", [{"x": i} for i in range(10)], pool=pool)
        assert result == [host.pm.hook.add_one(x=i) for i in range(10)]


def test_workers_get_the_same_grants_limits_and_functions(demo: Callable[..., Path]) -> None:
    """A rebuilt host has exactly what the host granted its components, and their limits."""
    pm = pluggy.PluginManager("demo")
    pm.add_hookspecs(DemoHooks)
    log_only = Capabilities(interfaces=frozenset({"log"}))
    grants = {"granted": log_only}
    with PluginHost(
        pm, package=PACKAGE, grants=grants, on_denied="drop", limits=Limits(memory=2**22)
    ) as host:
        host.provide(pid_of_worker)
        plugin = host.load(
            demo(k=3, funcs=["add-one"]),
            name="granted",
            requests=Capabilities(interfaces=frozenset({"log", "kv"})),  # kv is dropped
        )
        assert plugin.capabilities.interfaces == {"log"}
        # Granting more after the load does not reach the running plugin, nor its workers.
        host.grants["granted"] = Capabilities(interfaces=frozenset({"log", "kv"}))
        shipment = Shipment.of(capture(host))
    seen = facts(shipment)["plugins"][plugin.name]
    assert seen == {
        "capabilities": plugin.capabilities,
        "limits": plugin.limits,
        "sha256": plugin.sha256,
        "isolation": "shared",
        "pool_size": 1,
    }


def test_workers_isolate_calls_as_the_host_does(demo: Callable[..., Path]) -> None:
    """A plugin loaded with isolation="per-call" (and its pool size) is rebuilt so on the
    workers: a worker never carries state between calls that the host would not."""
    pm = pluggy.PluginManager("demo")
    pm.add_hookspecs(DemoHooks)
    with PluginHost(pm, package=PACKAGE) as host:
        host.load(demo(k=1, funcs=FUNCS), name="fresh", isolation="per-call", pool_size=2)
        shipment = Shipment.of(capture(host))
    seen = facts(shipment)["plugins"]["fresh"]
    assert (seen["isolation"], seen["pool_size"]) == ("per-call", 2)


def test_local_pools_refuse_fork_and_batches_check_their_arguments(
    batch_host: PluginHost,
) -> None:
    """fork is unsafe with wasmtime; a bad policy, hook or item is named before running."""
    with pytest.raises(ValueError, match="fork"):
        LocalPool(1, start_method="fork")
    with pytest.raises(ValueError, match="policy"):
        batch_host.map("add_one", [], policy="ignore")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="'nope'"):
        batch_host.map("nope", [])
    with pytest.raises(TypeError, match=r"item 1 .* is a int"):
        batch_host.map("add_one", [{"x": 1}, 2], processes=1)  # type: ignore[list-item]


@pytest.mark.parametrize(
    "error",
    [
        CapabilityDenied("p", ["network:a.example"]),
        ArgumentError("m", plugin="p", hook="h", parameter="x"),
        ContractMismatchError("p", [Mismatch("h", "u32", "s32", "wrong type")]),
        PluginLoadError("m", plugin="p", path="/p.wasm"),
        PluginResultError("m", plugin="p", hook="h", error={"code": 1}),
        PluginTimeout("m", plugin="p", hook="h"),
        HookFailures("m", [PluginTrap("t", plugin="p", hook="h")], hook="h"),
        WorkerLost("m", hook="h", index=3, attempts=2),
        NotShippable("m", plugin="p", function="f"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_project_errors_pickle_with_their_fields(error: PluginError) -> None:
    """Errors cross process boundaries with their type, message, fields and notes."""
    error.add_note("from a worker")
    back = pickle.loads(pickle.dumps(error))
    assert type(back) is type(error)
    assert str(back) == str(error)
    assert vars(back) == vars(error)
    if isinstance(error, ExceptionGroup):
        assert [str(e) for e in back.exceptions] == [str(e) for e in error.exceptions]


def test_a_pool_whose_worker_died_between_batches_runs_the_next_batch(
    batch_host: PluginHost,
) -> None:
    """A worker killed while the pool is idle (the OOM killer, say) breaks the pool before
    any chunk is sent to it; the next batch sends its chunks to a new pool and loses none."""
    batch_host.pm.register(WorkerPid(), name="pid")
    items = [{"x": i} for i in range(40) if i != 13]
    with LocalPool(2) as pool:
        for _ in range(3):
            pids = {r[0] for r in batch_host.map("add_one", items, pool=pool, chunksize=2)}
            os.kill(pids.pop(), signal.SIGKILL)
            time.sleep(0.2)  # the pool's manager may notice first, or the next submit
        result = batch_host.map("add_one", items, pool=pool, chunksize=2)
    assert list(result.indices) == list(range(len(items)))
    assert [r[1:] for r in result] == [[2 * i["x"], i["x"] + 1] for i in items]


def test_chunks_start_small_grow_to_the_work_and_shrink_at_the_end() -> None:
    """Sizes ramp 1, 2, 4 until the workers report a time; then a chunk holds `seconds`
    of work, and near the end 1/(2 x workers) of what is left, every item sent once."""
    sizer = _Sizer(workers=2, seconds=0.1, total=10_000)
    sizes = [sizer.next() for _ in range(3)]
    assert sizes == [1, 2, 4]
    sizer.sent = 7
    sizer.took(1, 0.001)  # 1 ms per item: 100 items make 0.1 s
    while sizer.sent < sizer.total:  # type: ignore[operator]
        size = min(sizer.next(), 10_000 - sizer.sent)
        sizes.append(size)
        sizer.sent += size
    assert sum(sizes) == 10_000
    assert max(sizes) == 100
    assert sizes[-1] <= 100 // 8 + 1
    assert sizes[3:] == sorted(sizes[3:], reverse=True)  # never larger again
    assert len(sizes) < 10_000 // 100 + 40
    fixed = _Sizer(workers=2, seconds=0.1, total=None, fixed=7)
    assert {fixed.next() for _ in range(5)} == {7}
    endless = _Sizer(workers=2, seconds=0.1, total=None)
    endless.took(10, 0.0001)
    assert endless.next() == 4096  # capped: a chunk's items sit in memory at once


def test_chunks_are_sized_by_the_workers_cpu_time_and_capped_by_the_wall_clock() -> None:
    """A chunk holds `seconds` of the workers' CPU time: waiting for a core on a busy
    machine (wall 2x CPU) does not shrink it; a hook that mostly waits (little CPU) gets
    chunks of at most WALL_CAP x `seconds` of wall-clock time, not thousands of items."""
    contended = _Sizer(workers=2, seconds=0.1, total=None)
    contended.took(10, 0.02, 0.01)  # 1 ms of CPU per item, 2 ms of wall-clock time
    assert contended.next() == 100
    waiting = _Sizer(workers=2, seconds=0.1, total=None)
    waiting.took(10, 0.1, 0.0001)  # 10 ms per item, nearly all of it waiting
    assert waiting.next() == int(_Sizer.WALL_CAP * 0.1 / 0.01)
    unmeasured = _Sizer(workers=2, seconds=0.1, total=None)
    unmeasured.took(10, 0.01, 0.0)  # no CPU time reported: the wall time stands for it
    assert unmeasured.next() == 100


def test_the_report_counts_the_workers_cpu_time(batch_host: PluginHost, pool: LocalPool) -> None:
    """`report.worker_cpu` is the CPU time the hook calls took on the workers: more than
    nothing, and no more than the workers could have spent while the batch ran."""
    items = [{"x": i} for i in range(200) if i != 13]
    result = batch_host.map("add_one", items, pool=pool)
    report = result.report
    assert 0 < report.worker_cpu <= report.elapsed * report.workers


def test_cheap_items_travel_in_few_chunks(batch_host: PluginHost, pool: LocalPool) -> None:
    """Without chunksize, a batch of cheap items is sent in a few big chunks."""
    items = [{"x": i} for i in range(3000) if i != 13]
    result = batch_host.map("add_one", items, pool=pool)
    assert result[:3] == [[0, 1], [2, 2], [4, 3]]
    assert len(result) == len(items)
    assert result.report.chunks < len(items) // 10


SHIPPED = """
import json, logging, sys
from pathlib import Path
from airssys_plugins.host.shipment import Shipment
from airssys_plugins.host.worker import facts, host_for

logging.basicConfig(level=logging.INFO, stream=sys.stderr)
shipment = Shipment(sys.argv[1], Path(sys.argv[2]).read_bytes())
seen = facts(shipment)
print(json.dumps({"deserialised": seen["deserialised"],
                  "answer": host_for(shipment).pm.hook.add_one(x=1)}))
"""


def _build_elsewhere(shipment: Shipment, tmp_path: Path) -> tuple[dict[str, object], str]:
    """Build the shipment's host in a new process with an empty compile cache."""
    blob = tmp_path / f"{shipment.key}.host"
    blob.write_bytes(shipment.blob)
    cache = tmp_path / f"cache-{shipment.key[:8]}"
    done = subprocess.run(
        [sys.executable, "-c", SHIPPED, shipment.key, str(blob)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), "AIRSSYS_PLUGINS_CACHE_DIR": str(cache)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout), done.stderr


def test_a_worker_elsewhere_takes_the_hosts_compiled_code(
    batch_host: PluginHost, tmp_path: Path
) -> None:
    """With artefacts, a worker whose engine matches deserialises instead of compiling
    (its compile cache is empty); without them it compiles; both answer alike."""
    shipped, log = _build_elsewhere(Shipment.of(capture(batch_host, artefacts=True)), tmp_path)
    assert shipped == {"deserialised": ["wasm"], "answer": batch_host.pm.hook.add_one(x=1)}
    assert "compiling plugin 'wasm'" not in log
    compiled, log = _build_elsewhere(Shipment.of(capture(batch_host)), tmp_path)
    assert compiled == {"deserialised": [], "answer": shipped["answer"]}
    assert "compiling plugin 'wasm'" in log


def test_an_artefact_for_another_engine_or_a_damaged_one_is_not_used(
    batch_host: PluginHost,
) -> None:
    """Another wasmtime, engine configuration or target: compile instead; bytes wasmtime
    refuses: compile instead (logged), never a crash."""
    artefact = export_artefact(batch_host.plugins["wasm"].image.component)
    assert isinstance(artefact, Artefact)
    assert import_artefact(artefact) is batch_host.plugins["wasm"].image.component
    other = artefact.fingerprint.replace("wasmtime=", "wasmtime=0.")
    assert import_artefact(attrs.evolve(artefact, fingerprint=other, key="other")) is None
    damaged = attrs.evolve(artefact, key="damaged", data=artefact.data[:100] + b"x" * 64)
    assert import_artefact(damaged) is None


@pytest.fixture(scope="module")
def dask_client() -> Iterator[object]:
    """A Dask LocalCluster of 2 worker processes, one thread each. Its HTTP server takes
    a free port (":0"): with None it still binds 8787, and when another cluster on the
    machine holds that port Dask warns, which this suite turns into an error."""
    distributed = pytest.importorskip("distributed", reason="needs the [dask] extra")
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        yield client


def test_dask_map_and_imap_match_the_local_calls(
    batch_host: PluginHost, dask_client: object
) -> None:
    """On a Dask cluster: results in input order (map), every index once (imap)."""
    items = [{"x": i} for i in range(30) if i != 13]
    expected = [batch_host.pm.hook.add_one(**item) for item in items]
    result = batch_host.map("add_one", items, client=dask_client, chunksize=4)
    assert result == expected
    assert result.report.engine == "dask"
    pairs = dict(batch_host.imap("add_one", items, client=dask_client, chunksize=4))
    assert pairs == dict(enumerate(expected))
    with pytest.raises(PluginTrap) as trap:
        batch_host.map("fail", [{"x": 1}], client=dask_client)
    assert (trap.value.plugin, trap.value.hook) == ("wasm", "fail")


def _native_timeout_comes_back(host: PluginHost, **where: object) -> None:
    host.pm.register(TimesOutNatively(), name="native")
    result = host.map("add_one", [{"x": i} for i in range(8)], policy="skip", **where)
    assert list(result.indices) == [0, 1, 2, 3, 4, 6, 7]
    error = result.report.failures[5]
    assert type(error) is PluginTimeout
    assert (error.plugin, error.hook) == ("native", "add_one")
    assert isinstance(error.__cause__, RemoteError)
    assert error.__cause__.type_name == "_HoldsPointer"
    assert any("item 5 of hook 'add_one'" in note for note in error.__notes__)


def test_an_error_whose_cause_does_not_pickle_comes_back_as_itself_on_dask(
    batch_host: PluginHost, dask_client: object
) -> None:
    """A Dask worker pickles exceptions with their cause (distributed installs tblib's
    pickling): a PluginTimeout caused by a wasmtime error (a ctypes pointer) still comes
    back as itself, its cause as a RemoteError, and the batch goes on."""
    _native_timeout_comes_back(batch_host, client=dask_client)


def test_an_error_whose_cause_does_not_pickle_comes_back_as_itself_locally(
    batch_host: PluginHost, pool: LocalPool
) -> None:
    """The same on the local pool."""
    _native_timeout_comes_back(batch_host, pool=pool)


def test_dask_workers_deserialise_the_hosts_compiled_code(
    batch_host: PluginHost, dask_client: object
) -> None:
    """A batch on Dask ships compiled code: each worker's host took it, not a compile."""
    assert batch_host.map("add_one", [{"x": 1}] * 4, client=dask_client)[0] == [2, 2]
    shipment = Shipment.of(capture(batch_host, artefacts=True))
    seen = dask_client.run(facts, shipment)  # type: ignore[attr-defined]
    assert len(seen) == 2
    assert all(f["deserialised"] == ["wasm"] for f in seen.values())


def test_dask_worker_killed_mid_batch_loses_no_item(
    batch_host: PluginHost, dask_client: object, tmp_path: Path
) -> None:
    """The scheduler re-runs the dead worker's chunk; the report names its items."""
    batch_host.pm.register(Killer(20, tmp_path / "killed"), name="killer")
    items = [{"x": i} for i in range(40) if i != 13]
    result = batch_host.map("add_one", items, client=dask_client, chunksize=2)
    assert (tmp_path / "killed").exists()
    assert result == [batch_host.pm.hook.add_one(**item) for item in items]
    assert 19 in result.report.retried  # x=20 is index 19 (13 is left out)


@pytest.fixture(scope="module")
def shout_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A plugin directory holding textpipe's WAT `shout` component and its manifest."""
    from sample_apps.textpipe.app import PLUGIN_SOURCES

    wasm = build_guest(PLUGIN_SOURCES / "shout", wit_files=[ROOT / "hookspecs" / "textpipe.wit"])
    plugin = tmp_path_factory.mktemp("plugins") / "shout"
    plugin.mkdir()
    (plugin / "plugin.toml").write_bytes((PLUGIN_SOURCES / "shout" / "plugin.toml").read_bytes())
    (plugin / "shout.wasm").write_bytes(wasm.read_bytes())
    return plugin.parent


def test_cli_map_writes_one_line_per_item_in_input_order(shout_dir: Path, tmp_path: Path) -> None:
    """`airssys-plugins map` runs the hook per JSON line on 2 processes, results in order."""
    texts = [f"item {i}" for i in range(25)]
    items = tmp_path / "items.jsonl"
    items.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts))
    out = tmp_path / "out.jsonl"
    argv = ["map", "transform", "--contract", "hookspecs.textpipe:TextHooks"]
    argv += ["--plugins", str(shout_dir), "--input", str(items), "-o", str(out)]
    assert main([*argv, "--processes", "2", "--chunksize", "3"]) == 0
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert lines == [{"index": i, "result": [t.upper() + "!"]} for i, t in enumerate(texts)]

    items.write_text('{"text": "ok"}\n[1, 2]\n')
    with pytest.raises(SystemExit, match="line 2: a list, not an object"):
        main(argv)


INTERRUPTED = """
import os, sys
import pluggy
from airssys_plugins import PluginHost
from tests.demo import PACKAGE, DemoHooks
from tests.scaleout_hooks import Sleeper

if __name__ == "__main__":
    pm = pluggy.PluginManager("demo")
    pm.add_hookspecs(DemoHooks)
    pm.register(Sleeper(0.05), name="sleeper")
    host = PluginHost(pm, package=PACKAGE)
    run = host.imap("add_one", [{"x": i} for i in range(2000)], processes=2, chunksize=2)
    try:
        for index, _ in run:
            print("result", index, flush=True)
    except KeyboardInterrupt:  # raised in the batch, or in this loop's body
        run.close()
        print("stopped", run.report.interrupted, run.report.done, flush=True)
        sys.exit(3)
"""


def test_ctrl_c_stops_a_batch_and_its_workers(tmp_path: Path) -> None:
    """SIGINT to the process group: KeyboardInterrupt in the caller, workers exit, no traceback."""
    script = tmp_path / "interrupted.py"
    script.write_text(INTERRUPTED)
    child = subprocess.Popen(
        [sys.executable, str(script)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, as a terminal's Ctrl-C reaches
    )
    assert child.stdout is not None
    first = child.stdout.readline()
    assert first.startswith("result"), first + (child.stderr.read() if child.stderr else "")
    os.killpg(child.pid, signal.SIGINT)
    out, err = child.communicate(timeout=60)
    assert child.returncode == 3, err
    assert "stopped True" in out
    assert "Traceback" not in err
    # No worker process is left in its group (the fork server leaves on its own, soon).
    for _ in range(100):
        try:
            os.killpg(child.pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        raise AssertionError(f"processes of the batch still run in group {child.pid}")


def test_an_error_with_a_field_that_does_not_pickle_keeps_its_type_and_fields() -> None:
    """An item's error with a field that does not pickle travels as its own type, that
    field as its repr, with a note saying so, not as a failure of the whole chunk."""
    error = PluginTimeout("plugin 'p' timed out", plugin="p", hook="h")
    error.native = ctypes.pointer(ctypes.c_int(1))  # type: ignore[attr-defined]
    (index, value, back, cause) = _picklable_outcome("h", (3, None, error, None))
    copy = pickle.loads(pickle.dumps(back))
    assert (index, value, cause) == (3, None, None)
    assert type(copy) is PluginTimeout
    assert (copy.plugin, copy.hook, str(copy)) == ("p", "h", "plugin 'p' timed out")
    assert copy.native.startswith("<")
    assert "could not be pickled back" in copy.__notes__[-1]
