"""Contract subcommands: ``wit``, ``inspect``, ``validate``.

airssys-plugins wit MODULE:OBJECT [--package NS:NAME@X.Y.Z] [--world W] [--hooks a,b] [-o FILE]
airssys-plugins inspect PATH [--json]
airssys-plugins validate PATH --contract MODULE:OBJECT [--package ...] [--lockfile FILE]

PATH is a component (``.wasm``), a ``plugin.toml``, or a plugin directory holding one.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from .._errors import ContractMismatchError, PluginError, PluginLoadError
from .common import (
    SPEC_HELP,
    contract_of,
    existing_path,
    load_object,
    project_of,
    quiet_loader,
    versions_of,
)
from .progress import Activity

__all__ = ["register"]


if TYPE_CHECKING:
    from ..discovery.sources import PluginSource


def _cmd_wit(args: argparse.Namespace) -> int:
    contract = contract_of(args, load_object(args.spec))
    hooks = None if not args.hooks else [h.strip() for h in args.hooks.split(",") if h.strip()]
    if args.bound:  # the WIT that hooks bound with wit_binding expect
        text = contract.bound_wit(world=args.world if args.world != "plugin" else "bound")
    else:
        text = contract.wit(world=args.world, hooks=hooks)
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
        print(f"wrote {args.output} ({len(contract.hooks)} hooks, package {contract.package})")
    else:
        sys.stdout.write(text)
    return 0


def _component_of(path: Path) -> tuple[Path, str | None, PluginSource | None]:
    """The component a PATH means, a line about its manifest (if there is one), and the
    plugin source (None for a bare ``.wasm``)."""
    from ..discovery.sources import PluginSource

    if path.suffix == ".wasm" and path.is_file():
        return path, None, None
    source = PluginSource.from_path(path)
    if source.error is not None:
        if source.component is not None and source.component.is_file():
            raise PluginLoadError(
                f"{source.error}\n(to see the component alone: airssys-plugins inspect "
                f"{source.component})"
            ) from source.error
        raise source.error
    assert source.component is not None
    about = f"plugin {source.name} {source.version}"
    if source.manifest is not None and source.manifest.path is not None:
        about += f" (manifest {source.manifest.path})"
    return source.component, about, source


def _wit_by_wasm_tools(path: Path) -> str | None:
    """`wasm-tools component wit`: the WIT of components wasmtime cannot load (async)."""
    from ..authoring.build import ToolchainMissing, find_tool

    try:
        tool = find_tool("wasm-tools")
    except ToolchainMissing:
        return None
    proc = subprocess.run(
        [tool, "component", "wit", str(path)], capture_output=True, text=True, timeout=60
    )
    return proc.stdout if proc.returncode == 0 else None


def _cmd_inspect(args: argparse.Namespace) -> int:
    from ..contract.info import render_text, to_json
    from ..runtime.describe import describe_component

    path, about, source = _component_of(existing_path(args.component))
    try:
        with Activity(f"reading {path.name} ({_size(path)})", quiet=args.json):
            info = describe_component(path)
    except PluginLoadError as exc:
        # wasmtime-py compiles no component-model-async (future, stream, error-context):
        # show such a component's WIT through wasm-tools rather than failing.
        wit = _wit_by_wasm_tools(path) if path.is_file() else None
        if wit is None:
            raise
        cause = str(exc.__cause__ or exc).strip().splitlines()
        reason = cause[-1].strip() if cause else str(exc)  # wasmtime's innermost cause
        if args.json:
            print(json.dumps({"path": str(path), "loadable": False, "reason": reason, "wit": wit}))
        else:
            print(f"component {path} cannot be loaded by wasmtime ({reason});")
            print("its WIT, as wasm-tools reads it:")
            sys.stdout.write(wit)
        return 0
    links = _links_of(source, [i.name for i in info.imports], getattr(args, "app", None))
    if args.json:
        data = to_json(info)
        data["loadable"] = True
        if about is not None:
            data["plugin"] = about
        data["links"] = links
        print(json.dumps(data, indent=2))
        return 0
    if about is not None:
        print(about)
    sys.stdout.write(render_text(info))
    for line in links:
        print(line)
    return 0


def _links_of(source: PluginSource | None, imports: list[str], app: str | None) -> list[str]:
    """How each non-host import of the plugin would be served (see
    :func:`.plugins.import_links`): by a link its manifest asks for, or by nothing."""
    from .plugins import import_links

    if source is None:  # a bare component: no manifest, so no links asked for
        return []
    requested = source.manifest.capabilities.plugins if source.manifest is not None else ()
    return import_links(source.name, imports, requested, app=app)


def _size(path: Path) -> str:
    try:
        return f"{path.stat().st_size / 1e6:.1f} MB"
    except OSError:
        return "unreadable"


def _cmd_validate(args: argparse.Namespace) -> int:
    import pluggy

    from ..discovery.manifest import ManifestError
    from ..discovery.sources import PluginSource
    from ..host.plugin_host import PluginHost

    obj = load_object(args.spec)
    contract = contract_of(args, obj)
    project = args.project or project_of(obj)
    source = PluginSource.from_path(existing_path(args.component))
    pm = pluggy.PluginManager(project)
    pm.add_hookspecs(obj)  # type: ignore[arg-type]  # a class or module, checked above
    what = f"checking {source.name} against {contract.package}"
    versions = versions_of(obj)
    activity = Activity(what, logs=())  # the host tells it its slow steps
    with (
        PluginHost(
            pm,
            package=str(contract.package),
            grants=args.grants,
            versions=versions,
            on_progress=activity.on_load,
        ) as host,
        quiet_loader(),
    ):
        with activity:
            entry = host.load_plugins([source], lockfile=args.lockfile)[source.name]
        if entry.plugin is not None:
            for hook, where in sorted(entry.plugin.hooks.items()):
                print(f"ok  {hook:<24} {where}")
            used = entry.plugin.contract_version
            if versions and used != str(contract.package):
                print(f"contract {used} (an older version the host accepts)")
            from ..host.bridge import unbound_hooks

            implemented = set(entry.plugin.hooks)
            for note in unbound_hooks(host.contract, entry.plugin.image.exports, implemented):
                print(f"warning: {note}", file=sys.stderr)
            return 0
        print(entry.error, file=sys.stderr)
        if isinstance(entry.error, ManifestError) and source.component is not None:
            # Every problem at once: check the component against the contract as well.
            try:
                host.load(source.component, name=source.name)
            except ContractMismatchError as exc:
                print(exc, file=sys.stderr)
            except PluginError as exc:
                print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
    return 1


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("wit", help="print the WIT contract of a hookspec class or module")
    p.add_argument("spec", metavar="MODULE:OBJECT", help=f"the hookspecs: {SPEC_HELP}")
    p.add_argument("--package", help="WIT package id, e.g. textpipe:hooks@1.0.0")
    p.add_argument("--project", help="pluggy project name (detected from the markers)")
    p.add_argument("--world", default="plugin", help="name of the world (default: plugin)")
    p.add_argument("--hooks", help="comma-separated hooks the world exports (default: all)")
    p.add_argument(
        "--bound",
        action="store_true",
        help="print the WIT the hooks are bound to (wit_binding), e.g. of a bindgen module",
    )
    p.add_argument("-o", "--output", help="write to this file instead of stdout")
    p.set_defaults(func=_cmd_wit)

    p = sub.add_parser("inspect", help="show any component's imports and exports as WIT")
    p.add_argument("component", metavar="PATH", help="a .wasm, a plugin.toml or a plugin dir")
    p.add_argument("--json", action="store_true", help="print JSON instead of WIT-like text")
    p.add_argument(
        "--app",
        metavar="APP",
        help="also show the links the app's running host made (from its status file)",
    )
    p.set_defaults(func=_cmd_inspect)

    p = sub.add_parser(
        "validate", help="check a plugin (manifest and component) against a contract"
    )
    p.add_argument("component", metavar="PATH", help="a .wasm, a plugin.toml or a plugin dir")
    p.add_argument(
        "--contract",
        dest="spec",
        metavar="MODULE:OBJECT",
        required=True,
        help=f"the app's hookspecs the plugin must fit: {SPEC_HELP}",
    )
    p.add_argument("--package", help="WIT package id of the contract")
    p.add_argument("--project", help="pluggy project name (detected from the markers)")
    p.add_argument("--lockfile", metavar="FILE", help="also check the plugin against a lockfile")
    p.add_argument("--grants", metavar="FILE", help="the operator's grants file (TOML)")
    p.set_defaults(func=_cmd_validate)
