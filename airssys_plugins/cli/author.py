"""Plugin authoring subcommands: ``new``, ``build``.

airssys-plugins new NAME --contract MODULE:OBJECT [--lang python|js|c|wat] [--package ...]
                    [--project P] [--hooks a,b] [--dir PATH]
airssys-plugins build [DIR] [--js-backend quickjs|starlingmonkey] [--quiet]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pluggy

from ..authoring import LANGUAGES, build_plugin, new_plugin
from ..authoring.build import JS_BACKENDS
from .common import contract_of, load_object, project_of

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


def _cmd_build(args: argparse.Namespace) -> int:
    def progress(message: str) -> None:
        if not args.quiet:
            print(message, file=sys.stderr, flush=True)

    built = build_plugin(args.dir, progress=progress, js_backend=args.js_backend)
    where = built.component
    print(
        f"{built.name}: {where} ({built.size / 1024:.1f} KiB) sha256 {built.sha256} "
        f"in {built.seconds:.1f} s"
    )
    if built.digest_written:
        print(f"  sha256 written to {built.manifest}")
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("new", help="create a plugin project (WIT, stubs, manifest, README)")
    p.add_argument("name", metavar="NAME", help="the plugin's name (also its directory)")
    p.add_argument("--contract", dest="spec", metavar="MODULE:OBJECT", required=True)
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
    p.add_argument("dir", metavar="DIR", nargs="?", default=".", help="default: .")
    p.add_argument(
        "--js-backend",
        choices=JS_BACKENDS,
        default="quickjs",
        help="jco backend for JavaScript (default: quickjs)",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no progress lines")
    p.set_defaults(func=_cmd_build)
