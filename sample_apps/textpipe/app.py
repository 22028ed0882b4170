"""textpipe: run text through a pipeline of hooks served by Python and WebAssembly plugins.

    textpipe "Hello, this is the pipeline"
    textpipe --trace "Hallo, das ist der Test"
    textpipe --plugins-dir ./my-plugins --lockfile plugins.lock --strict "Hi"
    textpipe --plugins-dir ./my-plugins --grants grants.toml "Hi"

Bundled plugins: ``shout`` (hand-written WAT component), ``wordstats`` (Python compiled to a
component with componentize-py) and ``titlecase`` (a plain Python plugin). The components
are built from source on first run and cached (see ``airssys_plugins.authoring.build``).

More plugins are discovered (``airssys_plugins.discover_plugins``): ``--plugins-dir``
directories first, then the bundled ones, then the user and site plugin dirs
(``<data dir>/textpipe/plugins``), then pip-installed component packs (entry-point group
``textpipe.components``). Python plugins of installed packages (group ``textpipe``) are
loaded by pluggy as usual.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
from collections.abc import Callable, Sequence
from importlib.resources import as_file, files
from pathlib import Path
from typing import Any

import pluggy

from airssys_plugins import LoadProgress, LoadReport, PluginHost, discover_plugins
from airssys_plugins.authoring.build import build_guest
from airssys_plugins.cli.common import quiet_loader
from airssys_plugins.cli.progress import Activity
from airssys_plugins.cli.reporting import describe_error, run_reporting
from airssys_plugins.runtime import aot_cache_dir
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


def bundled_plugin_dir() -> Path:
    """A plugin directory holding the bundled components, each with its manifest.

    The components are built into the build cache; each plugin directory links (or
    copies) the built file beside the ``plugin.toml`` that ships with its source.
    """
    root = aot_cache_dir().parent / "textpipe-bundled"
    for name, wasm in build_bundled().items():
        plugin = root / name
        plugin.mkdir(parents=True, exist_ok=True)
        manifest = (PLUGIN_SOURCES / name / "plugin.toml").read_bytes()
        if (
            not (plugin / "plugin.toml").is_file()
            or (plugin / "plugin.toml").read_bytes() != manifest
        ):
            (plugin / "plugin.toml").write_bytes(manifest)
        target = plugin / f"{name}.wasm"
        if target.is_file() and os.path.samefile(target, wasm):
            continue
        staging = plugin / f".{name}.wasm.tmp"
        staging.unlink(missing_ok=True)
        try:
            os.link(wasm, staging)
        except OSError:  # another filesystem: copy instead
            shutil.copy(wasm, staging)
        os.replace(staging, target)
    return root


def make_host(
    trace: bool = False,
    grants: str | os.PathLike[str] | None = None,
    on_progress: Callable[[LoadProgress], object] | None = None,
) -> tuple[pluggy.PluginManager, PluginHost]:
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
    # Python plugins of installed packages (entry-point group "textpipe"), as pluggy does.
    pm.load_setuptools_entrypoints("textpipe")
    # on_progress hears each stage of each load: a first-time compile takes seconds.
    host = PluginHost(pm, package=PACKAGE, grants=grants, on_progress=on_progress)
    return pm, host


def load_plugins(
    host: PluginHost,
    plugin_dirs: Sequence[str | os.PathLike[str]] = (),
    *,
    lockfile: str | os.PathLike[str] | None = None,
    strict: bool = False,
) -> LoadReport:
    """Discover and load textpipe's components: ``plugin_dirs``, the bundled plugins, the
    user and site plugin dirs, then component packs."""
    found = discover_plugins("textpipe", [*plugin_dirs, bundled_plugin_dir()])
    return host.load_plugins(found, lockfile=lockfile, strict=strict)


def run(
    text: str,
    *,
    trace: bool = False,
    max_length: int = 280,
    plugin_dirs: Sequence[str | os.PathLike[str]] = (),
    lockfile: str | os.PathLike[str] | None = None,
    strict: bool = False,
    grants: str | os.PathLike[str] | None = None,
    on_progress: Callable[[LoadProgress], object] | None = None,
) -> dict[str, Any]:
    """Run ``text`` through the pipeline and return what each stage produced; ``grants``
    is the operator's grants file (TOML), which grants plugins what they request."""
    pm, host = make_host(trace, grants, on_progress)
    with host:
        pm.hook.configure.call_historic(kwargs={"settings": Settings("en", max_length)})
        report = load_plugins(host, plugin_dirs, lockfile=lockfile, strict=strict)
        stats: list[list[Stat]] = pm.hook.analyze(text=text)
        return {
            "plugins": [
                (pm.get_name(p), "wasm" if p in host.plugins.values() else "python")
                for p in pm.get_plugins()
            ],
            "not_loaded": [(e.name, e.status, e.reason) for e in report if e.status != "loaded"],
            # The whole message (every denied right, every manifest problem), for people.
            "problems": {
                e.name: f"{type(e.error).__name__}: {describe_error(e.error)}"
                if e.error is not None
                else e.note
                for e in report
                if e.status != "loaded"
            },
            "language": pm.hook.detect_language(text=text),
            "transform": pm.hook.transform(text=text),
            "analyze": [s for group in stats for s in group],
        }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="textpipe", description=__doc__.splitlines()[0])
    parser.add_argument(
        "text", nargs="?", default=DEFAULT_TEXT, help="the text to run through the pipeline"
    )
    parser.add_argument("--trace", action="store_true", help="print every hook call")
    parser.add_argument(
        "--max-length", type=int, default=280, help="longest text a plugin should accept"
    )
    parser.add_argument(
        "--plugins-dir",
        action="append",
        default=[],
        metavar="DIR",
        help="a directory of plugins to load first (repeatable)",
    )
    parser.add_argument("--lockfile", metavar="FILE", help="refuse plugins that differ from it")
    parser.add_argument("--strict", action="store_true", help="stop at a broken or unlocked plugin")
    parser.add_argument(
        "--grants",
        metavar="FILE",
        help="the operator's grants file (TOML): what plugins may use ([plugins.NAME] tables)",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks of errors")
    args = parser.parse_args(argv)
    return run_reporting("textpipe", lambda: _main(args), debug=args.debug)


def _main(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.WARNING, format="textpipe: %(message)s")
    # Show the slow first-run steps as they happen: building the components (logged by
    # the builder) and compiling them (told by the host's progress hook).
    activity = Activity("starting textpipe", logs=("airssys_plugins.build",), prefix="textpipe: ")
    # The loader and the audit log would each say why a plugin was refused; the report
    # below says it once.
    with quiet_loader(), activity:
        result = run(
            args.text,
            trace=args.trace,
            max_length=args.max_length,
            plugin_dirs=args.plugins_dir,
            lockfile=args.lockfile,
            strict=args.strict,
            grants=args.grants,
            on_progress=activity.on_load,
        )
    for name, status, reason in result["not_loaded"]:
        if status == "shadowed":  # discovery's warning said it already
            continue
        problem = result["problems"].get(name, reason)
        print(f"textpipe: plugin {name} {status}: {problem}", file=sys.stderr)
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
