"""Plugin authoring subcommands: ``new``, ``build``.

airssys-plugins new NAME --contract MODULE:OBJECT [--lang python|js|c|wat] [--package ...]
                    [--project P] [--hooks a,b] [--dir PATH]
airssys-plugins build [DIR] [--js-backend quickjs|starlingmonkey] [--timeout S] [--watch]
                      [--quiet]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import pluggy

from .._errors import PluginError
from ..authoring import LANGUAGES, BuiltPlugin, build_plugin, new_plugin
from ..authoring.build import DEFAULT_BUILD_TIMEOUT, JS_BACKENDS
from .common import SPEC_HELP, contract_of, load_object, project_of
from .progress import Activity
from .reporting import describe_error

__all__ = ["register"]


def _cmd_new(args: argparse.Namespace) -> int:
    from ..host.plugin_host import PluginHost

    obj = load_object(args.spec)
    contract = contract_of(args, obj)
    pm = pluggy.PluginManager(args.project or project_of(obj))
    pm.add_hookspecs(obj)  # type: ignore[arg-type]  # a class or module, checked above
    with PluginHost(pm, package=str(contract.package)) as host:
        host_wit = host.host_wit()
    hooks = None if not args.hooks else [h.strip() for h in args.hooks.split(",") if h.strip()]
    directory = Path(args.dir) if args.dir else Path(args.name)
    made = new_plugin(
        args.name,
        lang=args.lang,
        contract=contract,
        host_wit=host_wit,
        directory=directory,
        hooks=hooks,
        contract_spec=args.spec,
        uses=[u.strip() for u in (args.uses or "").split(",") if u.strip()],
    )
    print(f"created {args.lang} plugin {args.name!r} in {made.directory}/ for {contract.package}")
    print(f"  hooks: {', '.join(made.hooks)}")
    if made.skipped:
        print(f"  left out (bound to other WIT packages): {', '.join(made.skipped)}")
    for path in made.files:
        print(f"  {path.relative_to(made.directory)}")
    print(f"next: edit the stubs, then run: airssys-plugins build {made.directory}")
    return 0


def _report(built: BuiltPlugin) -> None:
    print(
        f"{built.name}: {built.component} ({built.size / 1024:.1f} KiB) sha256 {built.sha256} "
        f"in {built.seconds:.1f} s",
        flush=True,
    )
    if built.digest_written:
        print(f"  sha256 written to {built.manifest}", flush=True)


def _cmd_build(args: argparse.Namespace) -> int:
    if args.watch:
        return _watch(args)
    with Activity(f"building {Path(args.dir).resolve().name}", quiet=args.quiet) as activity:
        built = build_plugin(
            args.dir, progress=activity.step, js_backend=args.js_backend, timeout=args.timeout
        )
    _report(built)
    return 0


def _watch(args: argparse.Namespace) -> int:
    """Rebuild on every change until Ctrl-C; a failed build is reported, not fatal."""
    from ..authoring.rebuild import watch_builds

    root = Path(args.dir).resolve()
    if not root.is_dir():
        raise SystemExit(f"error: {root} is not a directory")
    name = root.name
    activity: Activity | None = None

    def step(message: str) -> None:
        if activity is not None:
            activity.step(message)

    def built(result: BuiltPlugin) -> None:
        _report(result)
        print(f"watching {root} for changes (Ctrl-C to stop)", file=sys.stderr, flush=True)

    def failed(exc: PluginError) -> None:
        print(f"error: {describe_error(exc)}", file=sys.stderr, flush=True)
        print(f"watching {root}: fix it and save to rebuild", file=sys.stderr, flush=True)

    def changed(paths: list[Path]) -> None:
        shown = ", ".join(str(p.relative_to(root)) for p in paths[:3])
        more = f" and {len(paths) - 3} more" if len(paths) > 3 else ""
        stamp = time.strftime("%H:%M:%S")
        print(f"[{stamp}] changed: {shown}{more}; rebuilding {name}", file=sys.stderr, flush=True)

    # Progress lines, never the spinner: watch output is a log that scrolls.
    activity = Activity(f"building {name}", quiet=args.quiet)
    if activity.mode == "live":
        activity.mode = "plain"
    try:
        with activity:
            watch_builds(
                root,
                on_built=built,
                on_error=failed,
                on_change=changed,
                progress=step,
                interval=args.interval,
                js_backend=args.js_backend,
                timeout=args.timeout,
            )
    except KeyboardInterrupt:
        print("stopped watching", file=sys.stderr)
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("new", help="create a plugin project (WIT, stubs, manifest, README)")
    p.add_argument("name", metavar="NAME", help="the plugin's name (also its directory)")
    p.add_argument(
        "--contract",
        dest="spec",
        metavar="MODULE:OBJECT",
        required=True,
        help=f"the app's hookspecs the plugin implements: {SPEC_HELP}",
    )
    p.add_argument("--lang", choices=LANGUAGES, default="python", help="default: python")
    p.add_argument("--package", help="WIT package id of the contract")
    p.add_argument("--project", help="pluggy project name (detected from the markers)")
    p.add_argument("--hooks", help="comma-separated hooks to implement (default: all)")
    p.add_argument("--dir", help="where to create the project (default: ./NAME)")
    p.add_argument(
        "--uses",
        help="host interfaces the plugin calls (comma-separated: log,config,kv,http): "
        "imported in its world and requested in plugin.toml",
    )
    p.set_defaults(func=_cmd_new)

    p = sub.add_parser("build", help="build a plugin project into a component")
    p.add_argument(
        "dir", metavar="DIR", nargs="?", default=".", help="the plugin project (default: .)"
    )
    p.add_argument(
        "--js-backend",
        choices=JS_BACKENDS,
        default="quickjs",
        help="jco backend for JavaScript (default: quickjs)",
    )
    p.add_argument(
        "--timeout",
        type=float,
        metavar="SECONDS",
        help="limit of each build tool's run (default: $AIRSSYS_PLUGINS_BUILD_TIMEOUT or "
        f"{DEFAULT_BUILD_TIMEOUT:g})",
    )
    p.add_argument(
        "--watch",
        action="store_true",
        help="rebuild whenever a source file changes, until Ctrl-C (a host that calls "
        "host.watch() picks up each build)",
    )
    p.add_argument(
        "--interval",
        type=float,
        default=0.2,
        metavar="SECONDS",
        help="with --watch: how often to look for changes (default: 0.2)",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no progress lines")
    p.set_defaults(func=_cmd_build)
