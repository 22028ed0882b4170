"""Start-up: import time, 50 plugins from a directory, cold vs warm load of a Python guest.

Run from the repository root::

    python bench/bench_startup.py             # about 1 min (three cold compiles of 18 MB)
    python bench/bench_startup.py --quick     # smoke run: one of each
    python bench/bench_startup.py --profile   # ... plus cProfile of a warm 18 MB load

Every measurement runs in a fresh Python process (this script started again with
``--child``), so nothing is already imported, compiled or mapped, and RSS is the child's own.
Each child points ``AIRSSYS_PLUGINS_CACHE_DIR`` at a temporary directory:

* import: ``python -c 'import airssys_plugins'`` minus ``python -c pass`` (interleaved runs,
  medians), and the heaviest modules from ``python -X importtime``.
* contract: ``PluginHost()`` over 300 generated hookspecs of one everyday signature, in
  fresh processes (what a contract costs a hook; typing's per-string compile was most of it).
* 50 plugins: the bench component copied 50 times into a directory, then
  ``for path in sorted(dir.glob('*.wasm')): host.load(path)`` in a child whose compile cache
  was filled by an earlier child (warm). Two variants: identical copies (one cache entry,
  deserialized 50 times) and distinct copies (a custom section with the copy's number is
  appended to each, so 50 different components and 50 cache entries). RSS is VmRSS from
  /proc/self/status.
* 18 MB: tests/guests/kitchen (componentize-py) built with ``build_guest``, then
  ``PluginHost.load`` timed in a child with an empty cache directory (cold: compile and
  write the cache entry) and in later children with the same directory (warm: read the
  entry back).
* new-process stages: the CPU time (``time.process_time``, from the interpreter's start)
  of each step of a new process that imports pluggy and airssys_plugins, declares the
  hookspecs, creates a ``PluginHost``, loads the warm 18 MB guest and calls one hook,
  against the same done with wasmtime-py alone (import, Engine + WASI linker,
  ``deserialize_file``, instantiate, call), against the "floor" (raw's code plus what the
  application pays in our side's process whatever host it uses: ``import pluggy``, the
  hookspecs module, ``add_hookspecs``) and ``python -c pass``; interleaved runs, bytecode
  cache on (as for an installed package), medians per stage; ours/raw, ours/floor and
  floor/raw.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import itertools
import json
import os
import pstats
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchlib import (
    HERE,
    KITCHEN_DIR,
    PACKAGE,
    Report,
    Target,
    bench_pm,
    bench_wasm,
    kitchen_hooks,
    machine_info,
    rss_kib,
)

FAN = 50

# ----------------------------------------------------------------------------- children


def child_load_dir(directory: Path) -> dict[str, Any]:
    """Load every .wasm of ``directory`` into one host; times and RSS after each load."""
    from airssys_plugins import PluginHost

    rss = [rss_kib()]
    pm = bench_pm()
    host = PluginHost(pm, package=PACKAGE)
    paths = sorted(directory.glob("*.wasm"))
    times: list[float] = []
    started = time.perf_counter()
    for path in paths:
        t0 = time.perf_counter()
        host.load(path)
        times.append(time.perf_counter() - t0)
        rss.append(rss_kib())
    total = time.perf_counter() - started
    answers = pm.hook.add_one(x=1)
    assert answers == [2] * len(paths), answers
    host.close()
    return {"total": total, "times": times, "rss": rss}


def child_load_one(wasm: Path, profile: bool) -> dict[str, Any]:
    """Load ``wasm`` (the kitchen guest) twice: as the process's first load, then again."""
    import pluggy

    from airssys_plugins import PluginHost

    hooks, package = kitchen_hooks()
    pm = pluggy.PluginManager("kitchen")
    pm.add_hookspecs(hooks)
    host = PluginHost(pm, package=package)
    rss0 = rss_kib()
    prof = cProfile.Profile() if profile else None
    t0 = time.perf_counter()
    if prof is not None:
        prof.enable()
    host.load(wasm, name="kitchen")
    if prof is not None:
        prof.disable()
    first = time.perf_counter() - t0
    rss1 = rss_kib()
    assert pm.hook.echo_string(x="hi") == ["hi"]
    host.unload("kitchen")
    t0 = time.perf_counter()
    host.load(wasm, name="kitchen")
    again = time.perf_counter() - t0
    host.close()
    out: dict[str, Any] = {"first": first, "again": again, "rss_growth_kib": rss1 - rss0}
    if prof is not None:
        text = io.StringIO()
        stats = pstats.Stats(prof, stream=text)
        stats.sort_stats("cumulative").print_stats(18)
        out["profile"] = text.getvalue()
    return out


#: The generated hookspecs of the contract row: N hooks of one everyday signature.
CONTRACT_HOOKS = 300
_CONTRACT_SOURCE = """from __future__ import annotations
import pluggy
from airssys_plugins import u32
spec = pluggy.HookspecMarker("many")
class Hooks:
"""
_CONTRACT_HOOK = """    @spec
    def hook_{i}(self, x: u32, name: str, items: list[str]) -> str | None: ...
"""


def child_contract(directory: Path, hooks: int) -> dict[str, Any]:
    """``PluginHost()`` over ``hooks`` generated hookspecs, in this fresh process."""
    import importlib.util

    import pluggy

    from airssys_plugins import PluginHost

    path = directory / f"many_hooks_{hooks}.py"
    path.write_text(_CONTRACT_SOURCE + "".join(_CONTRACT_HOOK.format(i=i) for i in range(hooks)))
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[path.stem] = module
    spec.loader.exec_module(module)
    pm = pluggy.PluginManager("many")
    pm.add_hookspecs(module.Hooks)
    started = time.perf_counter()
    PluginHost(pm, package="bench:many@1.0.0").close()
    return {"s": time.perf_counter() - started}


def contract_cost(tmp: Path, runs: int, report: Report) -> None:
    """The ``PluginHost()`` row: the contract of CONTRACT_HOOKS generated hookspecs."""
    times = [
        run_child(["contract", str(tmp), str(CONTRACT_HOOKS)], tmp / "cache")["s"]
        for _ in range(runs)
    ]
    per_hook_us = statistics.median(times) / CONTRACT_HOOKS * 1e6
    print(
        f"\nPluginHost() over {CONTRACT_HOOKS} generated hookspecs (x: u32, name: str, "
        f"items: list[str]) -> str | None; median of {runs} fresh processes)\n"
        f"  {statistics.median(times) * 1000:.1f} ms, {per_hook_us:.0f} µs a hook"
    )
    report.values["contract us per hook"] = per_hook_us


def run_child(args: list[str], cache: Path) -> dict[str, Any]:
    env = dict(os.environ, AIRSSYS_PLUGINS_CACHE_DIR=str(cache))
    proc = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--child", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=tempfile.gettempdir(),  # not the repo root: `import airssys_plugins` as installed
    )
    if proc.returncode != 0:
        raise RuntimeError(f"child {args} failed:\n{proc.stderr}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


# ----------------------------------------------------------------------------- import time


RSS_CODE = "print(next(l.split()[1] for l in open('/proc/self/status') if l.startswith('VmRSS:')))"


def python_run(code: str) -> tuple[float, int]:
    """Wall time of ``python -c code`` and the VmRSS (KiB) it prints at the end."""
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", code + "\n" + RSS_CODE],
        check=True,
        capture_output=True,
        text=True,
        cwd=tempfile.gettempdir(),  # not the repo root: `import airssys_plugins` as installed
    )
    return time.perf_counter() - started, int(proc.stdout.split()[-1])


@dataclass
class ImportCost:
    bare_s: float
    full_s: float
    rss_kib: int
    parts: list[tuple[float, str]]  # (ms, what) under `import airssys_plugins`


def import_cost(runs: int) -> ImportCost:
    """``python -c 'import airssys_plugins'`` against ``python -c pass``: wall time (medians
    of interleaved runs), RSS, and the packages its import pulls in (``-X importtime``)."""
    python_run("pass")  # warm the page cache
    python_run("import airssys_plugins")
    bare, full, rss = [], [], []
    for _ in range(runs):
        t0, r0 = python_run("pass")
        t1, r1 = python_run("import airssys_plugins")
        bare.append(t0)
        full.append(t1)
        rss.append(r1 - r0)
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import airssys_plugins"],
        capture_output=True,
        text=True,
        check=True,
        cwd=tempfile.gettempdir(),
    )
    # Lines come children first; a top-level import has one space before its name. The
    # subtree of `import airssys_plugins` is every line between the previous top-level
    # line and its own. A package's largest cumulative time there is its first import,
    # with everything that import pulled in; airssys_plugins' own modules count by self time.
    subtree: list[tuple[float, float, str]] = []
    for line in proc.stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        self_us, cum_us, field = line.split(":", 1)[1].split("|")
        name = field.strip()
        if len(field) - len(field.lstrip()) == 1 and name != "airssys_plugins":
            subtree = []
            continue
        subtree.append((int(self_us) / 1000, int(cum_us) / 1000, name))
    largest: dict[str, float] = {}
    own = 0.0
    for self_ms, cum_ms, name in subtree:
        root = name.split(".")[0]
        if root == "airssys_plugins":
            own += self_ms
        else:
            largest[root] = max(largest.get(root, 0.0), cum_ms)
    parts = sorted(((cum, root) for root, cum in largest.items()), reverse=True)
    parts.insert(0, (own, "airssys_plugins' own modules (self time only)"))
    return ImportCost(
        statistics.median(bare), statistics.median(full), int(statistics.median(rss)), parts
    )


# ----------------------------------------------------------------------------- 50 plugins


def custom_section(name: str, payload: bytes) -> bytes:
    """A WebAssembly custom section (id 0): legal at the top level of a component too."""

    def leb(n: int) -> bytes:
        out = bytearray()
        while True:
            byte, n = n & 0x7F, n >> 7
            out.append(byte | (0x80 if n else 0))
            if not n:
                return bytes(out)

    body = leb(len(name)) + name.encode() + payload
    return b"\x00" + leb(len(body)) + body


def fill_dir(directory: Path, wasm: Path, *, distinct: bool) -> None:
    directory.mkdir(parents=True)
    data = wasm.read_bytes()
    for i in range(FAN):
        extra = custom_section("bench-copy", str(i).encode()) if distinct else b""
        (directory / f"plugin_{i:02d}.wasm").write_bytes(data + extra)


def fifty(tmp: Path, wasm: Path, *, distinct: bool, runs: int) -> dict[str, float]:
    kind = "distinct" if distinct else "identical"
    plugins, cache = tmp / f"{kind}-plugins", tmp / f"{kind}-cache"
    fill_dir(plugins, wasm, distinct=distinct)
    run_child(["load-dir", str(plugins)], cache)  # fills the compile cache
    entries = len(list((cache / "aot").glob("*.cwasm")))
    results = [run_child(["load-dir", str(plugins)], cache) for _ in range(runs)]
    best = sorted(results, key=lambda r: r["total"])[len(results) // 2]  # the median run
    times, rss = best["times"], best["rss"]
    return {
        "entries": entries,
        "total_ms": best["total"] * 1000,
        "first_ms": times[0] * 1000,
        "rest_ms": statistics.median(times[1:]) * 1000,
        "rss_total_mib": (rss[-1] - rss[0]) / 1024,
        "rss_first_mib": (rss[1] - rss[0]) / 1024,
        "rss_per_plugin_kib": (rss[-1] - rss[1]) / (len(times) - 1),
    }


# ----------------------------------------------------------------------------- stages

#: The pieces of the stage children: each stage ends by appending its CPU time to ``t``.
_START = """
import time
t = [time.process_time()]
"""
_PLUGGY = """
import pluggy
t.append(time.process_time())
"""
_HOOKSPECS = """
import importlib.util, sys
spec = importlib.util.spec_from_file_location("kitchen_hooks", {hooks!r})
module = importlib.util.module_from_spec(spec)
sys.modules["kitchen_hooks"] = module
spec.loader.exec_module(module)
pm = pluggy.PluginManager("kitchen")
pm.add_hookspecs(module.KitchenHooks)
t.append(time.process_time())
"""
_END = """
print(" ".join(str(x) for x in t))
"""

_IMPORT_OURS = """
from airssys_plugins import PluginHost
t.append(time.process_time())
"""
_OURS = """
host = PluginHost(pm, package=module.PACKAGE)
t.append(time.process_time())
host.load({wasm!r}, name="kitchen")
t.append(time.process_time())
assert pm.hook.echo_string(x="hi") == ["hi"]
t.append(time.process_time())
host.close()
t.append(time.process_time())
"""
OURS_STAGES = _START + _PLUGGY + _IMPORT_OURS + _HOOKSPECS + _OURS + _END
OURS_STAGE_NAMES = ("start", "pluggy", "import ours", "hookspecs", "PluginHost()", "load",
                    "call", "close")  # fmt: skip

_RAW = """
from wasmtime import Config, Engine, Store, WasiConfig
from wasmtime.component import Component, Linker
t.append(time.process_time())
cfg = Config(); cfg.epoch_interruption = True
engine = Engine(cfg)
linker = Linker(engine)
linker.add_wasip2()
t.append(time.process_time())
component = Component.deserialize_file(engine, {cwasm!r})
t.append(time.process_time())
store = Store(engine)
store.set_wasi(WasiConfig())
store.set_epoch_deadline(2**62)
instance = linker.instantiate(store, component)
iface = component.get_export_index("test:kitchen/echo-string@1.0.0")
func = instance.get_func(store, component.get_export_index("echo-string", iface))
t.append(time.process_time())
assert func(store, "hi") == "hi"
t.append(time.process_time())
store.close()
t.append(time.process_time())
"""
RAW_STAGES = _START + _RAW + _END
RAW_STAGE_NAMES = ("start", "import wasmtime", "Engine + linker", "deserialize",
                   "instantiate", "call", "close")  # fmt: skip

#: The floor of our side: raw wasmtime-py's code, plus what the application pays in our
#: side's process whatever host it uses (pluggy, its hookspecs module, ``add_hookspecs``).
FLOOR_STAGES = _START + _PLUGGY + _HOOKSPECS + _RAW + _END
FLOOR_STAGE_NAMES = ("start", "pluggy", "hookspecs", *RAW_STAGE_NAMES[1:])


def stage_times(code: str, env: dict[str, str]) -> list[float]:
    """The CPU times (ms) the child prints, as steps: its start, then each stage."""
    proc = subprocess.run(
        [sys.executable, "-c", code],
        check=True,
        capture_output=True,
        text=True,
        env=env,
        cwd=tempfile.gettempdir(),
    )
    marks = [float(x) * 1000 for x in proc.stdout.split()]
    return [marks[0]] + [b - a for a, b in itertools.pairwise(marks)]


def new_process_stages(tmp: Path, kitchen: Path, runs: int, report: Report) -> None:
    """Where a new process's time goes, stage by stage, ours against raw wasmtime-py."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(tmp / "pycache")
    env["AIRSSYS_PLUGINS_CACHE_DIR"] = str(tmp / "stages-cache")
    cwasm = tmp / "kitchen-raw.cwasm"
    serialize = (
        "import sys, wasmtime\nfrom wasmtime.component import Component\n"
        "cfg = wasmtime.Config(); cfg.epoch_interruption = True\n"
        "open(sys.argv[2], 'wb').write(Component(wasmtime.Engine(cfg), "
        "open(sys.argv[1], 'rb').read()).serialize())\n"
    )
    subprocess.run([sys.executable, "-c", serialize, str(kitchen), str(cwasm)], check=True)
    hooks = str(HERE.parent / "tests" / "kitchen_hooks.py")
    ours_code = OURS_STAGES.format(hooks=hooks, wasm=str(kitchen))
    raw_code = RAW_STAGES.format(cwasm=str(cwasm))
    floor_code = FLOOR_STAGES.format(hooks=hooks, cwasm=str(cwasm))
    bare_code = "import time\nprint(time.process_time())"
    stage_times(ours_code, env)  # compiles the guest into the cache, writes bytecode
    stage_times(raw_code, env)
    stage_times(floor_code, env)
    sides: dict[str, tuple[tuple[str, ...], list[list[float]]]] = {
        "ours": (OURS_STAGE_NAMES, []),
        "raw": (RAW_STAGE_NAMES, []),
        "floor": (FLOOR_STAGE_NAMES, []),
    }
    codes = {"ours": ours_code, "raw": raw_code, "floor": floor_code}
    bare = []
    for _ in range(runs):
        bare.append(stage_times(bare_code, env))
        for side, (_, values) in sides.items():
            values.append(stage_times(codes[side], env))
    print(
        f"\na new process: host, warm 18 MB guest, one call (CPU ms from the interpreter's "
        f"start, median of {runs} interleaved runs, bytecode cached; floor = raw's code plus "
        "the application's pluggy, hookspecs module and add_hookspecs)"
    )
    medians = {}
    for side, (names, values) in sides.items():
        steps = [statistics.median(v[i] for v in values) for i in range(len(names))]
        total = statistics.median(sum(v) for v in values)
        medians[side] = total
        line = "  ".join(f"{n} {x:.1f}" for n, x in zip(names, steps, strict=True))
        print(f"  {side:<5} total {total:6.1f}:  {line}")
        for name, x in zip(names, steps, strict=True):
            report.values[f"stages {side} {name} ms"] = x
    medians["bare"] = statistics.median(v[0] for v in bare)
    print(f"  python -c pass: {medians['bare']:.1f}")
    ratios = {
        "ours/raw": medians["ours"] / medians["raw"],  # the measure (goal <= 1.5)
        "ours/floor": medians["ours"] / medians["floor"],
        "floor/raw": medians["floor"] / medians["raw"],
    }
    print("  " + "   ".join(f"{name}: {value:.2f}" for name, value in ratios.items()))
    for side in ("ours", "raw", "floor", "bare"):
        report.values[f"stages {side} ms"] = medians[side]
    for name, value in ratios.items():
        report.values[f"stages {name}"] = value


# ----------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--quick", action="store_true", help="one cold load, fewer repeats")
    ap.add_argument("--profile", action="store_true", help="cProfile one warm 18 MB load")
    ap.add_argument("--skip-kitchen", action="store_true", help="skip the 18 MB guest")
    ap.add_argument("--json", metavar="PATH", help="write the targets and key numbers here")
    ap.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        what, target = args.child[0], Path(args.child[1])
        if what == "load-dir":
            out = child_load_dir(target)
        elif what == "contract":
            out = child_contract(target, int(args.child[2]))
        else:
            out = child_load_one(target, profile=args.profile)
        print(json.dumps(out))
        return 0

    runs = 1 if args.quick else 3
    print("\nairssys-plugins start-up benchmark (bench/bench_startup.py)")
    for line in machine_info():
        print("  " + line)
    wasm = bench_wasm()
    report = Report("bench_startup")

    # -- import time ---------------------------------------------------------------------
    cost = import_cost(5 if args.quick else 15)
    print("\nimport time (fresh processes, medians)")
    print(f"  python -c pass                        {cost.bare_s * 1000:8.1f} ms")
    print(f"  python -c 'import airssys_plugins'    {cost.full_s * 1000:8.1f} ms")
    import_ms = (cost.full_s - cost.bare_s) * 1000
    print(
        f"  => import airssys_plugins costs       {import_ms:8.1f} ms and "
        f"{cost.rss_kib / 1024:.1f} MiB RSS"
    )
    report.values["import ms"] = import_ms
    report.values["import rss MiB"] = cost.rss_kib / 1024
    print("  what it imports (-X importtime; each package's first import, cumulative):")
    for cum, root in cost.parts[:11]:
        print(f"    {cum:7.1f} ms  {root}")

    # -- 50 plugins from a directory -------------------------------------------------------
    with tempfile.TemporaryDirectory(prefix="airssys-bench-") as tmp_name:
        tmp = Path(tmp_name)
        contract_cost(tmp, 3 if args.quick else 7, report)
        print(
            f"\n{FAN} plugins loaded from a directory, warm compile cache "
            f"({wasm.stat().st_size:,}-byte bench component; median of {runs} fresh processes)"
        )
        head = (
            f"  {'copies':<10} {'cache entries':>13} {'total ms':>9} {'1st ms':>7} "
            f"{'later ms':>9} {'RSS 1st MiB':>11} {'RSS/plugin KiB':>14} {'RSS total MiB':>13}"
        )
        print(head)
        print("  " + "-" * (len(head) - 2))
        for distinct in (False, True):
            r = fifty(tmp, wasm, distinct=distinct, runs=runs)
            kind = "distinct" if distinct else "identical"
            print(
                f"  {kind:<10} {r['entries']:>13,.0f} {r['total_ms']:>9.1f} {r['first_ms']:>7.1f} "
                f"{r['rest_ms']:>9.2f} {r['rss_first_mib']:>11.1f} "
                f"{r['rss_per_plugin_kib']:>14.0f} {r['rss_total_mib']:>13.1f}"
            )
            for key, value in r.items():
                report.values[f"50 plugins {kind} {key}"] = value
        print(
            "  1st = the first load (creates the Engine, the WASI linker and the epoch thread);\n"
            "  later = median of loads 2..50; RSS/plugin = (RSS after 50 - RSS after 1) / 49"
        )

        # -- 18 MB guest: cold vs warm -----------------------------------------------------
        if not args.skip_kitchen:
            kitchen_cold_warm(tmp, runs, args.profile, report)

    report.write(args.json)
    return 0


def kitchen_cold_warm(tmp: Path, runs: int, profile: bool, report: Report) -> None:
    from airssys_plugins.authoring.build import BuildError, build_guest

    try:
        kitchen = build_guest(KITCHEN_DIR)
    except BuildError as exc:
        print(f"\n18 MB guest: SKIPPED, cannot build {KITCHEN_DIR}: {exc}")
        return
    print(
        f"\ncold vs warm load of a componentize-py guest: {kitchen.name} "
        f"({kitchen.stat().st_size / 1e6:.1f} MB, built from "
        f"{KITCHEN_DIR.relative_to(HERE.parent)})"
    )
    colds, warms, inproc = [], [], []
    entry_mb = 0.0
    for i in range(runs):
        cache = tmp / f"kitchen-cache-{i}"  # empty: the child compiles
        cold = run_child(["load-one", str(kitchen)], cache)
        colds.append(cold["first"])
        entry_mb = sum(p.stat().st_size for p in (cache / "aot").glob("*.cwasm")) / 1e6
        for _ in range(2):
            warm = run_child(["load-one", str(kitchen)], cache)
            warms.append(warm["first"])
            inproc.append(warm["again"])
        shutil.rmtree(cache)
    new_process_stages(tmp, kitchen, 5 if runs == 1 else 11, report)
    cold_s, warm_s = statistics.median(colds), statistics.median(warms)
    print(f"  {'load':<58} {'median ms':>10} {'min ms':>9} {'runs':>5}")
    for label, values in (
        ("cold: empty cache dir (compile + write the entry)", colds),
        ("warm: new process, cache entry present", warms),
        ("warm: same process, loaded again after unload", inproc),
    ):
        print(
            f"  {label:<58} {statistics.median(values) * 1000:>10.1f} "
            f"{min(values) * 1000:>9.1f} {len(values):>5}"
        )
    print(f"  cache entry: {entry_mb:.1f} MB")
    target = Target(
        "startup/warm-cold",
        "warm load / cold load (18 MB guest)",
        warm_s / cold_s,
        "<=",
        0.01,
        detail=f"cold {cold_s * 1000:.0f} ms, warm {warm_s * 1000:.1f} ms, "
        f"i.e. 1/{cold_s / warm_s:.0f}",
    )
    print("  target (issue 7; medians):")
    print(f"    {target.what:<52} = {target.line()}  [{target.detail}]")
    report.targets.append(target)
    report.values["kitchen cold ms"] = cold_s * 1000
    report.values["kitchen warm ms"] = warm_s * 1000
    if profile:
        cache = tmp / "kitchen-cache-profile"
        run_child(["load-one", str(kitchen)], cache)
        prof = run_child(["load-one", str(kitchen), "--profile"], cache)
        print("\ncProfile of a warm load of the 18 MB guest (new process, cache present):")
        print(prof["profile"])


if __name__ == "__main__":
    sys.exit(main())
