"""Latency of the plugin author's loop: save a source file -> `airssys-plugins build --watch`
rebuilds -> a host that `watch()`es the plugin reloads it -> the next hook call runs the
new code.

For a WAT plugin (textpipe's shout) and a Python one (textpipe's wordstats), each round
edits the source so that a hook's result changes, then times two moments from the save:
the new component written beside plugin.toml (the build), and the first hook call that
returns the new result (build + the host's poll + reload, which compiles the new
component: for a Python plugin that is an 18 MB compile, every time, since each edit is a
new component).

    .venv/bin/python bench/bench_watch.py [--rounds 5] [--interval 0.1]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pluggy

from airssys_plugins import PluginHost
from airssys_plugins.authoring import build_plugin
from hookspecs.textpipe import PACKAGE, TextHooks

ROOT = Path(__file__).resolve().parent.parent
PLUGINS = ROOT / "sample_apps" / "textpipe" / "plugins"
BIN = Path(sys.executable).parent


def _project(tmp: Path, name: str) -> Path:
    """A copy of a bundled textpipe plugin as a standalone plugin project."""
    project = tmp / name
    shutil.copytree(PLUGINS / name, project)
    shutil.copy(ROOT / "hookspecs" / "textpipe.wit", project / "wit" / "textpipe.wit")
    return project


def _wat_edit(project: Path, n: int) -> Callable[[PluginHost, pluggy.PluginManager], bool]:
    """Make shout append chr(0x41 + n % 26) instead of '!'; the check sees it."""
    wat = project / "guest.wat"
    text = wat.read_text()
    start = text.index("(i32.const 0x", text.index("store8 (i32.add (local.get $out)"))
    end = text.index(")", start)
    mark = 0x41 + n % 26
    wat.write_text(text[:start] + f"(i32.const 0x{mark:x}" + text[end:])
    return lambda host, pm: any(
        r.endswith(chr(mark)) for r in pm.hook.transform(text="hi") if r.startswith("HI")
    )


def _python_edit(project: Path, n: int) -> Callable[[PluginHost, pluggy.PluginManager], bool]:
    """Rename wordstats' first statistic to words-N; the check sees it."""
    app = project / "app.py"
    text = app.read_text()
    start = text.index('Stat("words')
    end = text.index('"', start + len('Stat("'))
    name = f"words-{n}"
    app.write_text(text[:start] + f'Stat("{name}' + text[end:])
    return lambda host, pm: any(s.name == name for g in pm.hook.analyze(text="a b") for s in g)


def measure(name: str, rounds: int, interval: float) -> dict[str, list[float]]:
    edit = _wat_edit if name == "shout" else _python_edit
    with tempfile.TemporaryDirectory(prefix="bench-watch-") as tmp_name:
        project = _project(Path(tmp_name), name)
        build_plugin(project)  # the first build is not part of the loop
        pm = pluggy.PluginManager("textpipe")
        pm.add_hookspecs(TextHooks)
        built_at: list[float] = []
        proc = subprocess.Popen(
            [
                *(str(BIN / "airssys-plugins"), "build", "--watch", str(project)),
                *("--interval", str(interval), "--quiet"),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )

        def read() -> None:
            assert proc.stdout is not None
            for line in proc.stdout:
                if f"{name}.wasm" in line:
                    built_at.append(time.perf_counter())

        threading.Thread(target=read, daemon=True).start()
        results: dict[str, list[float]] = {"build": [], "seen": []}
        try:
            with PluginHost(pm, package=PACKAGE) as host:
                host.load_plugins([project])
                watcher = host.watch(interval=interval)
                deadline = time.perf_counter() + 60
                while len(built_at) < 1 and time.perf_counter() < deadline:
                    time.sleep(0.01)  # the watcher's own first (cached) build
                for n in range(rounds):
                    before = len(built_at)
                    time.sleep(0.05)  # a distinct mtime
                    saved = time.perf_counter()
                    check = edit(project, n)
                    deadline = saved + 300
                    while not check(host, pm):
                        if time.perf_counter() > deadline:
                            raise SystemExit(f"{name}: round {n}: no reload after 300 s")
                        time.sleep(0.005)
                    seen = time.perf_counter()
                    while len(built_at) <= before and time.perf_counter() < deadline:
                        time.sleep(0.005)
                    results["build"].append(built_at[before] - saved)
                    results["seen"].append(seen - saved)
                    print(
                        f"{name} round {n}: built {results['build'][-1]:.2f} s, "
                        f"host runs it {results['seen'][-1]:.2f} s after the save",
                        flush=True,
                    )
                watcher.stop()
        finally:
            proc.terminate()
            proc.wait(timeout=30)
        return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--interval", type=float, default=0.1, help="both pollers' interval")
    parser.add_argument("--only", choices=["shout", "wordstats"])
    args = parser.parse_args()
    names = [args.only] if args.only else ["shout", "wordstats"]
    for name in names:
        res = measure(name, args.rounds, args.interval)
        for what in ("build", "seen"):
            v = res[what]
            label = "component written" if what == "build" else "host runs it"
            print(
                f"{name:<10} save -> {label:<18}"
                f" median {statistics.median(v):6.2f} s  min {min(v):6.2f}  max {max(v):6.2f}"
                f"  ({len(v)} rounds, poll every {args.interval:g} s)"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
