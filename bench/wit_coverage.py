"""How much real-world WIT the framework handles: for every component on this machine,
is it inspected, does `bindgen` make hooks of its WIT, does the generated module bind it?

    .venv/bin/python bench/wit_coverage.py [--markdown] [PATH...]

Without PATHs: the newest build of each guest in the build cache (our own components:
WAT, Python, JS, C, Rust) and the components jco ships in its npm package (other
toolchains'). Each row says what was done and, where a step did not succeed, why.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
import types
from pathlib import Path

import pluggy

from airssys_plugins import Capabilities, PluginError, PluginHost
from airssys_plugins.authoring.build import jco_dir
from airssys_plugins.cli.bindgen import read_wit_json
from airssys_plugins.contract.bindgen import BindgenError, hookspec_module
from airssys_plugins.contract.wit_json import Resolved
from airssys_plugins.runtime import aot_cache_dir
from airssys_plugins.runtime.describe import describe_component


def _components() -> list[tuple[str, Path]]:
    newest: dict[str, Path] = {}
    for path in (aot_cache_dir().parent / "builds").glob("*.wasm"):
        name = path.stem.rsplit("-", 1)[0]
        if name not in newest or path.stat().st_mtime > newest[name].stat().st_mtime:
            newest[name] = path
    found = [("own", p) for _, p in sorted(newest.items())]
    npm = jco_dir() / "node_modules"
    for path in sorted(npm.rglob("*.wasm")) if npm.is_dir() else ():
        if ".core" not in path.name:
            found.append(("jco npm", path))
    return found


def _first_line(exc: BaseException, path: Path) -> str:
    text = str(exc).replace(str(path), path.name).strip().splitlines()
    line = text[0] if text else ""
    return f"{type(exc).__name__}: {line}"[:220]


def _row(origin: str, path: Path) -> list[str]:
    try:
        describe_component(path)
        inspected = "yes"
    except PluginError as exc:
        inspected = f"no ({_first_line(exc, path)})"
    try:
        world = Resolved(read_wit_json(path)).world(None)
        generated = hookspec_module(world, project="coverage")
    except (BindgenError, PluginError, ValueError) as exc:
        return [origin, path.stem, inspected, f"no ({_first_line(exc, path)})", "-", "-"]
    skipped = "; ".join(sorted({why for _, why in generated.skipped})) or "-"
    hooks = f"{len(generated.hooks)} hook(s)"
    module = types.ModuleType("coverage_hooks")
    sys.modules[module.__name__] = module
    exec(compile(generated.text, f"<bindgen of {path.name}>", "exec"), module.__dict__)
    pm: pluggy.PluginManager = module.plugin_manager()
    try:
        with PluginHost(pm, grants={"p": Capabilities.everything()}) as host:
            plugin = host.load(path, name="p", requests=Capabilities())
            bound = f"{len(plugin.hooks)}/{len(generated.hooks)}"
    except PluginError as exc:
        bound = f"no ({_first_line(exc, path)})"
    return [origin, path.stem, inspected, hooks, bound, skipped]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="*", type=Path)
    parser.add_argument("--markdown", action="store_true", help="a Markdown table")
    args = parser.parse_args()
    todo = [("given", p) for p in args.paths] or _components()
    header = ["origin", "component", "inspected", "bindgen", "bound", "left out by bindgen"]
    rows = []
    start = time.perf_counter()
    for origin, path in todo:
        rows.append(_row(origin, path))
        print(" | ".join(rows[-1]), file=sys.stderr)
    if args.markdown:
        print("| " + " | ".join(header) + " |")
        print("|" + "---|" * len(header))
        for row in rows:
            print("| " + " | ".join(c.replace("|", "\\|") for c in row) + " |")
    inspected = sum(r[2] == "yes" for r in rows)
    generated = sum(r[3].endswith("hook(s)") for r in rows)
    bound = sum(re.fullmatch(r"[1-9]\d*/\d+", r[4]) is not None for r in rows)
    print(
        f"\n{len(rows)} components: {inspected} inspected, {generated} made into hooks by "
        f"bindgen, {bound} bound by the generated module ({time.perf_counter() - start:.0f} s)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
