"""textpipe: run text through a pipeline of hooks served by Python and WebAssembly plugins.

    textpipe "Hello, this is the pipeline"
    textpipe --trace "Hallo, das ist der Test"

Bundled plugins: ``shout`` (hand-written WAT component), ``wordstats`` (Python compiled to a
component with componentize-py) and ``titlecase`` (a plain Python plugin). The components
are built from source on first run and cached (see ``airssys_plugins._build``).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from importlib.resources import as_file, files
from pathlib import Path
from typing import Any

import pluggy

from airssys_plugins import PluginHost
from airssys_plugins._build import build_guest
from hookspecs.textpipe import PACKAGE, Settings, Stat, TextHooks

from .plugins.titlecase import TitleCase

PLUGIN_SOURCES = Path(__file__).parent / "plugins"
BUNDLED = ("shout", "wordstats")
DEFAULT_TEXT = "Hello, this is the pipeline and the plugins of the sandbox"


def build_bundled() -> dict[str, Path]:
    """Build (or fetch from the cache) the bundled components; returns name -> .wasm."""
    with as_file(files("hookspecs") / "textpipe.wit") as contract_wit:
        return {
            name: build_guest(PLUGIN_SOURCES / name, wit_files=[contract_wit]) for name in BUNDLED
        }


def make_host(trace: bool = False) -> tuple[pluggy.PluginManager, PluginHost]:
    pm = pluggy.PluginManager("textpipe")
    pm.add_hookspecs(TextHooks)
    if trace:
        pm.add_hookcall_monitoring(
            lambda name, impls, kwargs: print(
                f"  -> {name}({', '.join(f'{k}={v!r}' for k, v in kwargs.items())}) "
                f"on {[pm.get_name(i.plugin) for i in impls]}",
                file=sys.stderr,
            ),
            lambda outcome, name, impls, kwargs: print(
                f"  <- {name}: {outcome.get_result()!r}", file=sys.stderr
            ),
        )
    pm.register(TitleCase(), name="titlecase")
    host = PluginHost(pm, package=PACKAGE)
    return pm, host


def run(text: str, *, trace: bool = False, max_length: int = 280) -> dict[str, Any]:
    """Run ``text`` through the pipeline and return what each stage produced."""
    pm, host = make_host(trace)
    with host:
        pm.hook.configure.call_historic(kwargs={"settings": Settings("en", max_length)})
        for name, wasm in build_bundled().items():
            host.load(wasm, name=name)
        stats: list[list[Stat]] = pm.hook.analyze(text=text)
        return {
            "plugins": [
                (pm.get_name(p), "wasm" if p in host.plugins.values() else "python")
                for p in pm.get_plugins()
            ],
            "language": pm.hook.detect_language(text=text),
            "transform": pm.hook.transform(text=text),
            "analyze": [s for group in stats for s in group],
        }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="textpipe", description=__doc__.splitlines()[0])
    parser.add_argument("text", nargs="?", default=DEFAULT_TEXT)
    parser.add_argument("--trace", action="store_true", help="print every hook call")
    parser.add_argument("--max-length", type=int, default=280)
    args = parser.parse_args(argv)
    # Show the slow first-run steps (building and compiling the components) as they happen.
    logging.basicConfig(level=logging.WARNING, format="textpipe: %(message)s")
    for logger in ("airssys_plugins.build", "airssys_plugins.runtime"):
        logging.getLogger(logger).setLevel(logging.INFO)
    result = run(args.text, trace=args.trace, max_length=args.max_length)
    plugins = ", ".join(f"{n} [{kind}]" for n, kind in sorted(result["plugins"]))
    print(f"plugins:    {plugins}")
    print(f"input:      {args.text}")
    print(f"language:   {result['language'] or 'unknown'}")
    for out in result["transform"]:
        print(f"transform:  {out}")
    for stat in result["analyze"]:
        print(f"analyze:    {stat.name} = {stat.value:g}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
