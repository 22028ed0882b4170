"""Loads (issue 18 §3, §5): warm load, a new process, and plugins per MiB, against raw
wasmtime-py measured in the same run.

Run from the repository root::

    python bench/bench_loads.py            # about 1-2 min once the guests and caches exist
    python bench/bench_loads.py --quick    # smoke run: fewer repeats, smaller counts

Two guests: the 18 MB componentize-py guest (tests/guests/kitchen) and the small WAT bench
guest (bench/guests/bench). Raw wasmtime-py uses an artefact compiled once by this script
with the framework's Engine configuration (epoch interruption on, fuel off), so both sides
map the same kind of machine code.

* warm load: in one process whose compile cache is warm, ``host.load(path)`` of a plugin
  this process loaded (and unloaded) before, its compiled component kept in memory (the
  default, see ``keep_compiled``), against raw ``Store`` (+ WASI for the Python guest) +
  ``instantiate`` of a ``Component`` held in a variable; and both re-mapping the artefact
  (ours under ``keep_compiled(0)``, raw ``Component.deserialize_file`` first); interleaved
  rounds, medians. For the WAT guest also 400 (quick: 200) such rounds in one more
  process: the median of the first 21 (what the warm row times) and of the rounds after
  50 (the steady state), each against the raw load interleaved with them; and the Python
  objects (tracemalloc) each of 200 more loaded plugins holds, one hook called.
* new process: CPU time (and wall time) of ``python -c`` that creates a host, loads the
  warm Python guest and calls one hook, against one that does the same with wasmtime-py
  alone (deserialize, WASI, instantiate, call); interleaved, medians. Both with Python's
  bytecode cache on (as for an installed package); under PYTHONDONTWRITEBYTECODE=1 also
  as the environment runs it (every module of ours compiled at every start).
* density: RSS per additional loaded-and-called idle plugin ((RSS after N - RSS after 1) /
  (N - 1)), the framework against raw wasmtime-py doing the same N times (one
  ``deserialize_file``, then a Store, instance and call per plugin), each in a fresh
  process: the Python guest for N = 3, 10, 20 and the WAT guest for N = 500; the
  first plugin's RSS (which includes the Engine, the linker and the epoch thread) apart.
  Before each sample the heap is trimmed (``malloc_trim(0)``): otherwise a process's
  growth depends on how much freed memory its earlier work left resident for the
  plugins to reuse, and raw's own figure moved 6.3-9.2 KiB a plugin between runs of
  the same code. Beside them, the **pluggy floor**: raw's plugins each also registered
  with pluggy as the least a pluggy host can do (a plugin object with one bound method
  per hookspec, the called one calling the raw function), so a reader sees what of the
  gap is pluggy's own.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchlib import (
    KITCHEN_DIR,
    PACKAGE,
    REPO,
    Report,
    Target,
    bench_wasm,
    kitchen_hooks,
    machine_info,
    rss_kib,
)

#: The clock of the in-process rounds: the calling thread's CPU time (page faults of a
#: mapped artefact included), which other tenants of a busy machine disturb far less than
#: wall time; ``--wall`` switches to wall time.
CLOCK = time.thread_time

# ----------------------------------------------------------------------------- raw side

RAW_SETUP = """
import wasmtime
from wasmtime import Config, Engine, Store, WasiConfig
from wasmtime.component import Component, Linker
cfg = Config(); cfg.epoch_interruption = True
engine = Engine(cfg)
linker = Linker(engine)
if WASI:
    linker.add_wasip2()

def raw_load(cwasm, interface, function, component=None):
    if component is None:
        component = Component.deserialize_file(engine, cwasm)
    store = Store(engine)
    if WASI:
        store.set_wasi(WasiConfig())
    store.set_epoch_deadline(2**62)
    instance = linker.instantiate(store, component)
    iface = component.get_export_index(interface)
    func = instance.get_func(store, component.get_export_index(function, iface))
    return store, instance, func
"""

KINDS: dict[str, dict[str, Any]] = {
    "python": {
        "wasi": True,
        "interface": "test:kitchen/echo-string@1.0.0",
        "function": "echo-string",
        "arg": "hi",
    },
    "wat": {
        "wasi": False,
        "interface": f"{PACKAGE.split('@')[0]}/add-one@1.0.0",
        "function": "add-one",
        "arg": 1,
    },
}


def _raw_namespace(kind: str) -> dict[str, Any]:
    ns: dict[str, Any] = {"WASI": KINDS[kind]["wasi"]}
    exec(RAW_SETUP, ns)
    return ns


# ----------------------------------------------------------------------------- our side


def _host_pm(kind: str) -> tuple[Any, str]:
    """The plugin manager with the guest's hookspecs, and their package."""
    import pluggy

    if kind == "python":
        hooks, package = kitchen_hooks()
        pm = pluggy.PluginManager("kitchen")
        pm.add_hookspecs(hooks)
        return pm, package
    from benchlib import bench_pm

    return bench_pm(), PACKAGE


def _host(kind: str) -> tuple[Any, Any]:
    from airssys_plugins import PluginHost

    pm, package = _host_pm(kind)
    return pm, PluginHost(pm, package=package)


def _call(pm: Any, kind: str) -> None:
    if kind == "python":
        assert pm.hook.echo_string(x="hi")[-1] == "hi"
    else:
        assert pm.hook.add_one(x=1)[-1] == 2


# ----------------------------------------------------------------------------- children


def child_instantiate(artefacts: list[str], batches: int = 21, per: int = 200) -> dict[str, Any]:
    """Raw wasmtime-py's ``Store`` + instantiate of each artefact (a serialized component
    needing no imports), in batches of ``per``, the artefacts interleaved by batch: the
    median microseconds per instance of each (issue 18, tenth round: what the binary's
    core instances cost to make)."""
    import wasmtime
    from wasmtime.component import Component, Linker

    cfg = wasmtime.Config()
    cfg.epoch_interruption = True
    engine = wasmtime.Engine(cfg)
    linker = Linker(engine)
    components = {a: Component.deserialize_file(engine, a) for a in artefacts}
    times: dict[str, list[float]] = {a: [] for a in artefacts}
    for _ in range(batches):
        for a, component in components.items():
            start = time.perf_counter()
            for _ in range(per):
                store = wasmtime.Store(engine)
                store.set_epoch_deadline(1 << 30)
                linker.instantiate(store, component)
            times[a].append((time.perf_counter() - start) / per * 1e6)
    return {a: statistics.median(t) for a, t in times.items()}


def child_warm(kind: str, wasm: str, cwasm: str, rounds: int) -> dict[str, Any]:
    """Interleaved rounds in this process: a warm framework load of a plugin unloaded
    before (its compiled component kept, the default), the same with nothing kept (the
    artefact mapped again), a load while a copy is loaded, and raw loads mapping the
    artefact or instantiating a Component held in a variable."""
    try:
        from airssys_plugins import keep_compiled
    except ImportError:  # a revision from before kept components (run_all.py --rev)

        def keep_compiled(count: int | None = None) -> int:
            return 0

    spec = KINDS[kind]
    pm, host = _host(kind)
    raw = _raw_namespace(kind)
    host.load(wasm, name="warmup")  # this process has loaded it once
    _call(pm, kind)
    host.unload("warmup")
    raw["raw_load"](cwasm, spec["interface"], spec["function"])
    held = raw["Component"].deserialize_file(raw["engine"], cwasm)
    out: dict[str, list[float]] = {"ours": [], "remap": [], "raw": [], "raw_kept": []}

    def ours(key: str, name: str) -> None:
        t0 = CLOCK()
        host.load(wasm, name=name)
        out[key].append(CLOCK() - t0)
        _call(pm, kind)
        host.unload(name)

    def floor(key: str, component: Any) -> None:
        t0 = CLOCK()
        store, _, func = raw["raw_load"](cwasm, spec["interface"], spec["function"], component)
        out[key].append(CLOCK() - t0)
        assert func(store, spec["arg"]) is not None

    # As timeit does: the cyclic GC off while timing (a collection just before a load
    # evicts the CPU caches, which costs a load of Python code 0.3 ms and raw wasmtime-py
    # little), garbage collected between the phases.
    gc.collect()
    gc.disable()
    for i in range(rounds):  # the plugin's compiled component kept between rounds
        ours("ours", f"p{i}")
        floor("raw_kept", held)
    keep_compiled(0)
    gc.collect()
    for i in range(rounds):  # nothing kept: each load maps the artefact again
        ours("remap", f"r{i}")
        floor("raw", None)
        gc.collect()  # nothing of the unloaded plugin may hold its component (cold for us)
    keep_compiled(8)
    gc.collect()
    host.load(wasm, name="live")  # while one is loaded, a second load shares its code
    out["kept"] = []
    for i in range(rounds):
        t0 = CLOCK()
        host.load(wasm, name=f"k{i}")
        out["kept"].append(CLOCK() - t0)
        host.unload(f"k{i}")
    gc.enable()
    host.close()
    return out


def child_steady(kind: str, wasm: str, cwasm: str, rounds: int) -> dict[str, Any]:
    """The warm rounds of :func:`child_warm` (a new name each, a call, an unload, then a
    raw load from a held Component), ``rounds`` of them: the first 21 (what the warm row
    times: a process's first loads, while the records' ``__init__`` is still the generic
    one) and the steady state after 50."""
    spec = KINDS[kind]
    pm, host = _host(kind)
    raw = _raw_namespace(kind)
    host.load(wasm, name="warmup")
    _call(pm, kind)
    host.unload("warmup")
    held = raw["Component"].deserialize_file(raw["engine"], cwasm)
    ours: list[float] = []
    floor: list[float] = []
    gc.collect()
    gc.disable()
    for i in range(rounds):
        t0 = CLOCK()
        host.load(wasm, name=f"s{i}")
        ours.append(CLOCK() - t0)
        _call(pm, kind)
        host.unload(f"s{i}")
        t0 = CLOCK()
        store, _, func = raw["raw_load"](cwasm, spec["interface"], spec["function"], held)
        floor.append(CLOCK() - t0)
        assert func(store, spec["arg"]) is not None
    gc.enable()
    host.close()
    return {"first": ours[:21], "steady": ours[50:], "raw": floor}


def child_objects(kind: str, wasm: str, count: int) -> dict[str, Any]:
    """Python objects (tracemalloc) per loaded plugin beyond the first, one hook called."""
    import tracemalloc

    pm, host = _host(kind)
    host.load(wasm, name="first")
    _call(pm, kind)
    gc.collect()
    tracemalloc.start(1)
    before = tracemalloc.take_snapshot()
    for i in range(count):
        host.load(wasm, name=f"o{i}")
    _call(pm, kind)
    gc.collect()
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    grown = sum(d.size_diff for d in after.compare_to(before, "filename"))
    host.close()
    return {"bytes_per_plugin": grown / count}


def child_density(side: str, kind: str, target: str, count: int) -> dict[str, Any]:
    """RSS after the first and after ``count`` loaded-and-called plugins."""
    spec = KINDS[kind]
    keep: list[Any] = []
    if side == "ours":
        pm, host = _host(kind)
        load = lambda i: host.load(target, name=f"p{i}")  # noqa: E731
    elif side == "floor":
        load = _floor_loader(kind, target)
    else:
        raw = _raw_namespace(kind)
        component = None

        def load(i: int) -> Any:
            nonlocal component  # deserialized once, instantiated per plugin, as we do
            if component is None:
                component = raw["Component"].deserialize_file(raw["engine"], target)
            store, instance, func = raw["raw_load"](
                target, spec["interface"], spec["function"], component
            )
            assert func(store, spec["arg"]) is not None
            return store, instance, func

    rss = [_trimmed_rss()]  # before the first: its cost is the Engine, linker and threads too
    for i in range(count):
        keep.append(load(i))
        if side == "ours":
            _call(pm, kind)
        rss.append(_trimmed_rss())
    return {"rss": rss}


def _trimmed_rss() -> int:
    """RSS (KiB) with garbage collected and the freed heap handed back to the kernel (see
    the module's docstring: what is left resident would be reused by the next plugins)."""
    gc.collect()
    _libc().malloc_trim(0)
    return rss_kib()


def _libc() -> Any:
    import ctypes

    return ctypes.CDLL(None)


def _floor_loader(kind: str, target: str) -> Any:
    """Raw's load (one Store, instance and call per plugin) with each plugin registered
    with pluggy too, as the least a pluggy host adds: a plugin object holding one bound
    method per hookspec (one function per hookspec, shared), the called hook calling the
    raw function, and the hook called through pluggy as ours is."""
    import types

    import pluggy

    spec = KINDS[kind]
    pm, _ = _host_pm(kind)
    raw = _raw_namespace(kind)
    component = raw["Component"].deserialize_file(raw["engine"], target)
    mark = pluggy.HookimplMarker(pm.project_name)
    called = "echo_string" if kind == "python" else "add_one"
    shared = {}
    for name in pm.hook.__dict__:
        caller = getattr(pm.hook, name)
        if not hasattr(caller, "spec") or caller.spec is None:
            continue
        params = ", ".join(caller.spec.argnames)
        body = f"self.func(self.store, {caller.spec.argnames[0]})" if name == called else "None"
        namespace: dict[str, Any] = {}
        exec(f"def {name}(self, {params}):\n    return {body}", namespace)
        shared[name] = mark(namespace[name])

    class Plugin:
        def __dir__(self) -> list[str]:
            return list(shared)

    def load(i: int) -> Any:
        store, instance, func = raw["raw_load"](
            target, spec["interface"], spec["function"], component
        )
        plugin = Plugin()
        plugin.store, plugin.func = store, func  # type: ignore[attr-defined]
        for name, function in shared.items():
            setattr(plugin, name, types.MethodType(function, plugin))
        pm.register(plugin, name=f"p{i}")
        _call(pm, kind)
        return plugin, instance

    return load


# ----------------------------------------------------------------------------- new process

OURS_PROCESS = """
import sys
sys.path.insert(0, {tests!r})
import pluggy
from airssys_plugins import PluginHost
from kitchen_hooks import KitchenHooks, PACKAGE
pm = pluggy.PluginManager("kitchen")
pm.add_hookspecs(KitchenHooks)
host = PluginHost(pm, package=PACKAGE)
host.load({wasm!r}, name="kitchen")
assert pm.hook.echo_string(x="hi") == ["hi"]
host.close()
"""

RAW_PROCESS = (
    "WASI = True\n"
    + RAW_SETUP
    + """
store, instance, func = raw_load({cwasm!r}, "test:kitchen/echo-string@1.0.0", "echo-string")
assert func(store, "hi") == "hi"
store.close()
"""
)


def _cpu(code: str, env: dict[str, str]) -> tuple[float, float]:
    """CPU time (user + system) and wall time of ``python -c code``. CPU time is far
    steadier on a shared, busy machine, and is what start-up costs where cores are free."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True, env=env, cwd=tempfile.gettempdir())
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), wall


def bytecode_env(env: dict[str, str], into: Path) -> dict[str, str]:
    """``env`` with Python's bytecode cache on, kept in ``into``: an installed package has
    its ``.pyc`` files (pip compiles them), a source tree under PYTHONDONTWRITEBYTECODE=1
    (as on the project's machines) compiles every module of ours at every start, while
    wasmtime-py's, installed, are compiled already. Both sides get the same cache."""
    out = {k: v for k, v in env.items() if k != "PYTHONDONTWRITEBYTECODE"}
    out["PYTHONPYCACHEPREFIX"] = str(into)
    return out


def new_process(wasm: Path, cwasm: Path, env: dict[str, str], runs: int) -> dict[str, float]:
    ours_code = OURS_PROCESS.format(tests=str(REPO / "tests"), wasm=str(wasm))
    raw_code = RAW_PROCESS.format(cwasm=str(cwasm))
    _cpu(ours_code, env)  # warm caches (page cache, digest index, bytecode)
    _cpu(raw_code, env)
    runs_of: dict[str, list[tuple[float, float]]] = {"bare": [], "ours": [], "raw": []}
    for _ in range(runs):
        runs_of["bare"].append(_cpu("pass", env))
        runs_of["ours"].append(_cpu(ours_code, env))
        runs_of["raw"].append(_cpu(raw_code, env))
    out = {}
    for side, values in runs_of.items():
        out[f"{side}_ms"] = statistics.median(v[0] for v in values) * 1000
        out[f"{side}_wall_ms"] = statistics.median(v[1] for v in values) * 1000
    return out


# ----------------------------------------------------------------------------- parent


def run_child(args: list[str], env: dict[str, str]) -> dict[str, Any]:
    flags = [a for a in args if a == "--wall"]
    rest = [a for a in args if a != "--wall"]
    proc = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), *flags, "--child", *rest],
        capture_output=True,
        text=True,
        env=env,
        cwd=str(Path(__file__).resolve().parent),
    )
    if proc.returncode != 0:
        raise RuntimeError(f"child {args} failed:\n{proc.stderr}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def raw_artefact(wasm: Path, into: Path) -> Path:
    """``wasm`` compiled by wasmtime-py alone with the framework's Engine configuration;
    kept in ``into`` by content and wasmtime version (compiled once)."""
    import hashlib
    from importlib.metadata import version

    key = hashlib.sha256(wasm.read_bytes() + version("wasmtime").encode()).hexdigest()[:16]
    out = into / f"{wasm.stem}-{key}.cwasm"
    if out.is_file():
        return out
    into.mkdir(parents=True, exist_ok=True)
    code = (
        "import sys, wasmtime\nfrom wasmtime.component import Component\n"
        "cfg = wasmtime.Config(); cfg.epoch_interruption = True\n"
        "open(sys.argv[2], 'wb').write(Component(wasmtime.Engine(cfg), "
        "open(sys.argv[1], 'rb').read()).serialize())\n"
    )
    subprocess.run([sys.executable, "-c", code, str(wasm), str(out) + ".tmp"], check=True)
    os.replace(str(out) + ".tmp", out)
    return out


def wider_artefact(wasm: Path, into: Path, *, folded: bool = True) -> Path | None:
    """``wasm`` with the tails a load appends (:func:`.rawbytes.export_tail`: the latin1,
    measuring and raw exports' shim core modules, folded into the guest's own core
    module as a load folds them, or with ``folded=False`` each a module of its own, as
    before the tenth round), compiled by wasmtime-py alone as :func:`raw_artefact`
    compiles the original: raw's cost of the binary our loads run (issue 18, ninth and
    tenth rounds). None when nothing is appended."""
    from airssys_plugins.runtime.rawbytes import export_tail

    data = wasm.read_bytes()
    plan = export_tail(data, raw=True)
    if plan is None:
        return None
    if not folded:
        plan = plan.without_fold()
    wide = into / f"{wasm.stem}-wider{'' if folded else '-apart'}.wasm"
    into.mkdir(parents=True, exist_ok=True)
    wide.write_bytes(plan.wider(data))
    return raw_artefact(wide, into)


def per_extra(rss: list[int]) -> float:
    """KiB per plugin after the first (``rss[0]`` is before any, ``rss[1]`` after one)."""
    return (rss[-1] - rss[1]) / (len(rss) - 2)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--quick", action="store_true", help="fewer rounds, smaller counts")
    ap.add_argument("--json", metavar="PATH", help="write the targets and key numbers here")
    ap.add_argument("--wall", action="store_true", help="time with wall clocks, not CPU time")
    ap.add_argument(
        "--fresh-cache", action="store_true", help="an empty compile cache (one cold compile)"
    )
    ap.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    global CLOCK
    if args.wall:
        CLOCK = time.perf_counter
    if args.child:
        what, *rest = args.child
        if what == "warm":
            out = child_warm(rest[0], rest[1], rest[2], int(rest[3]))
        elif what == "steady":
            out = child_steady(rest[0], rest[1], rest[2], int(rest[3]))
        elif what == "objects":
            out = child_objects(rest[0], rest[1], int(rest[2]))
        elif what == "instantiate":
            out = child_instantiate(rest)
        else:
            out = child_density(rest[0], rest[1], rest[2], int(rest[3]))
        print(json.dumps(out))
        return 0

    from airssys_plugins.authoring.build import build_guest

    rounds = 5 if args.quick else 21
    runs = 3 if args.quick else 11
    counts = (3, 10) if args.quick else (3, 10, 20)
    wat_count = 100 if args.quick else 500
    print("\nairssys-plugins loads benchmark (bench/bench_loads.py)")
    for line in machine_info():
        print("  " + line)
    print(f"  load average: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f}")
    report = Report("bench_loads")
    kitchen, wat = build_guest(KITCHEN_DIR), bench_wasm()
    with tempfile.TemporaryDirectory(prefix="airssys-bench-loads-") as tmp_name:
        tmp = Path(tmp_name)
        env = dict(os.environ)
        if args.fresh_cache:  # else the user's compile cache, content-addressed and shared
            env["AIRSSYS_PLUGINS_CACHE_DIR"] = str(tmp / "cache")
        print("  compiling the raw artefacts and filling the compile cache (once)...")
        from airssys_plugins.runtime import aot_cache_dir

        keep = aot_cache_dir().parent / "bench-raw"
        raws = {"python": raw_artefact(kitchen, keep), "wat": raw_artefact(wat, keep)}
        wasms = {"python": kitchen, "wat": wat}
        for kind in ("python", "wat"):
            run_child(["density", "ours", kind, str(wasms[kind]), "1"], env)  # cold compile
        wider_wat = wider_artefact(wat, keep)  # raw running the binary our loads run
        apart_wat = wider_artefact(wat, keep, folded=False)  # the same, shims apart

        wall = ["--wall"] if args.wall else []
        clock = "wall time" if args.wall else "CPU time of the loading thread"
        print(f"\nwarm load (one process, warm compile cache; {clock}; median of {rounds} rounds)")
        print(
            f"  {'guest':<28} {'ours ms':>9} {'raw kept':>9} {'ours re-map':>12}"
            f" {'raw re-map':>11} {'live ms':>9}"
        )
        for kind, label, goal in (
            ("python", f"componentize-py {kitchen.stat().st_size / 1e6:.1f} MB", 5.0),
            ("wat", f"WAT {wat.stat().st_size:,} bytes", 0.3),
        ):
            r = run_child(
                [*wall, "warm", kind, str(wasms[kind]), str(raws[kind]), str(rounds)], env
            )
            ms = {k: statistics.median(v) * 1000 for k, v in r.items()}
            print(
                f"  {label:<28} {ms['ours']:>9.2f} {ms['raw_kept']:>9.2f} {ms['remap']:>12.2f}"
                f" {ms['raw']:>11.2f} {ms['kept']:>9.2f}"
            )
            report.values[f"warm {kind} ms"] = ms["ours"]
            report.values[f"warm {kind} raw kept ms"] = ms["raw_kept"]
            report.values[f"warm {kind} re-map ms"] = ms["remap"]
            report.values[f"warm {kind} raw ms"] = ms["raw"]
            report.values[f"warm {kind} live ms"] = ms["kept"]
            report.targets.append(
                Target(
                    f"loads/warm-{kind}",
                    f"warm load, {kind} guest / {goal:g} ms goal",
                    ms["ours"] / goal,
                    "<=",
                    1.0,
                    detail=f"{ms['ours']:.2f} ms (raw: {ms['raw_kept']:.2f} ms from a held "
                    f"Component, {ms['raw']:.2f} ms mapping the artefact)",
                )
            )
        print(
            "  ours = a plugin unloaded before, its compiled component kept (the default);"
            " raw kept = instantiate a Component\n  held in a variable; re-map = with"
            " keep_compiled(0), the artefact mapped again (raw: deserialize_file + instantiate)"
        )
        print("  live = loaded again while a copy is loaded (the compiled code is shared)")
        steady_rounds = 200 if args.quick else 400
        st = run_child(
            [*wall, "steady", "wat", str(wasms["wat"]), str(raws["wat"]), str(steady_rounds)], env
        )
        med = {k: statistics.median(v) * 1000 for k, v in st.items()}
        objects = run_child(["objects", "wat", str(wasms["wat"]), "200"], env)
        per = objects["bytes_per_plugin"] / 1024
        print(
            f"  WAT, {steady_rounds} rounds as above: first 21 {med['first']:.3f} ms, after 50"
            f" {med['steady']:.3f} ms; raw kept {med['raw']:.3f} ms ="
            f" {med['first'] / med['raw']:.2f}x / {med['steady'] / med['raw']:.2f}x;"
            f" Python objects per idle WAT plugin (tracemalloc, 200) {per:.2f} KiB"
        )
        report.values["warm wat first21 ms"] = med["first"]
        report.values["warm wat steady ms"] = med["steady"]
        report.values["warm wat steady raw ms"] = med["raw"]
        report.values["wat objects KiB"] = per

        np = new_process(kitchen, raws["python"], bytecode_env(env, tmp / "pycache"), runs)
        ratio = (np["ours_ms"] - np["bare_ms"]) / (np["raw_ms"] - np["bare_ms"])
        print(
            f"\nnew process: create a host, load the warm Python guest, call it "
            f"(median of {runs}; CPU time, user + system; bytecode cached)\n"
            f"  python -c pass {np['bare_ms']:.0f} ms; raw wasmtime-py {np['raw_ms']:.0f} ms; "
            f"ours {np['ours_ms']:.0f} ms; ours/raw {np['ours_ms'] / np['raw_ms']:.2f} "
            f"(beyond `python -c pass`: {ratio:.2f})\n"
            f"  wall time: pass {np['bare_wall_ms']:.0f} ms, raw {np['raw_wall_ms']:.0f} ms, "
            f"ours {np['ours_wall_ms']:.0f} ms"
        )
        report.values.update({f"new process {k}": v for k, v in np.items()})
        if env.get("PYTHONDONTWRITEBYTECODE"):  # and as this environment runs it
            nb = new_process(kitchen, raws["python"], env, runs)
            print(
                f"  without .pyc files (PYTHONDONTWRITEBYTECODE=1, a source tree): raw "
                f"{nb['raw_ms']:.0f} ms, ours {nb['ours_ms']:.0f} ms, ours/raw "
                f"{nb['ours_ms'] / nb['raw_ms']:.2f}"
            )
            report.values.update({f"new process no-pyc {k}": v for k, v in nb.items()})
        report.targets.append(
            Target(
                "loads/new-process",
                "new process with one warm Python plugin / raw",
                np["ours_ms"] / np["raw_ms"],
                "<=",
                1.5,
                detail=f"{np['ours_ms']:.0f} ms vs {np['raw_ms']:.0f} ms",
            )
        )

        print(
            "\ndensity: RSS per additional loaded-and-called idle plugin (fresh processes,"
            " the heap trimmed before each sample)"
        )
        print(
            f"  {'guest':<10} {'N':>5} {'ours KiB':>10} {'raw KiB':>10} {'floor KiB':>10}"
            f" {'ours/raw':>9} {'floor/raw':>10} {'ours/floor':>11} {'1st ours':>10}"
            f" {'1st raw':>10}"
        )
        for kind, ns in (("python", counts), ("wat", (wat_count,))):
            for n in ns:
                ours_rss = run_child(["density", "ours", kind, str(wasms[kind]), str(n)], env)
                raw_rss = run_child(["density", "raw", kind, str(raws[kind]), str(n)], env)
                floor_rss = run_child(["density", "floor", kind, str(raws[kind]), str(n)], env)
                o, r = per_extra(ours_rss["rss"]), per_extra(raw_rss["rss"])
                f = per_extra(floor_rss["rss"])
                wider = apart = None
                if kind == "wat" and wider_wat is not None and apart_wat is not None:
                    wide_rss = run_child(["density", "raw", kind, str(wider_wat), str(n)], env)
                    wider = per_extra(wide_rss["rss"])
                    report.values[f"density {kind} {n} raw wider KiB"] = wider
                    apart_rss = run_child(["density", "raw", kind, str(apart_wat), str(n)], env)
                    apart = per_extra(apart_rss["rss"])
                    report.values[f"density {kind} {n} raw wider apart KiB"] = apart
                first_o = ours_rss["rss"][1] - ours_rss["rss"][0]
                first_r = raw_rss["rss"][1] - raw_rss["rss"][0]
                r_ = max(r, 1)
                print(
                    f"  {kind:<10} {n:>5} {o:>10.1f} {r:>10.1f} {f:>10.1f} {o / r_:>9.2f}"
                    f" {f / r_:>10.2f} {o / max(f, 1):>11.2f} {first_o:>10.0f} {first_r:>10.0f}"
                )
                if wider is not None and apart is not None:
                    print(
                        f"  {'':<10} {'':>5} raw on the wider binary (the shims folded)"
                        f" {wider:.1f} KiB = {wider / r_:.2f}x raw; the shims apart"
                        f" {apart:.1f} KiB = {apart / r_:.2f}x"
                    )
                report.values[f"density {kind} {n} ours KiB"] = o
                report.values[f"density {kind} {n} raw KiB"] = r
                report.values[f"density {kind} {n} floor KiB"] = f
                if n == ns[-1]:
                    report.targets.append(
                        Target(
                            f"loads/density-{kind}",
                            f"RSS per extra {kind} plugin (N={n}) / raw",
                            o / r_,
                            "<=",
                            1.2,
                            detail=f"{o:.1f} KiB vs {r:.1f} KiB; pluggy floor {f:.1f} KiB"
                            + (
                                ""
                                if wider is None
                                else f"; raw on the wider binary {wider:.1f} KiB"
                            ),
                        )
                    )
        print(
            "  floor = raw's plugins each registered with pluggy too (one bound method per"
            " hookspec),\n  the least a pluggy host adds; the wider binary = the original with"
            " the shims a load appends,\n  folded into the guest's core module as a load folds"
            " them (apart: each a core module of its own)"
        )
    print("\ntargets (issue 18):")
    for t in report.targets:
        print(f"  {t.what:<52} = {t.line()}  [{t.detail}]")
    report.write(args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
