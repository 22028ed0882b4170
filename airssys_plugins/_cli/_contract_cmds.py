"""Contract subcommands: ``wit``, ``inspect``, ``validate``.

airssys-plugins wit MODULE:OBJECT [--package NS:NAME@X.Y.Z] [--world W] [--hooks a,b] [-o FILE]
airssys-plugins inspect COMPONENT.wasm
airssys-plugins validate COMPONENT.wasm --contract MODULE:OBJECT [--package ...]
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

from .._contract import Contract
from .._errors import ContractMismatchError

__all__ = ["register"]


def _load_object(spec: str) -> object:
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise SystemExit(
            f"error: {spec!r} is not MODULE:OBJECT (e.g. hookspecs.textpipe:TextHooks)"
        )
    sys.path.insert(0, str(Path.cwd()))
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise SystemExit(f"error: cannot import {module_name!r}: {exc}") from exc
    obj: object = module
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise SystemExit(f"error: module {module_name!r} has no attribute {attr!r}") from None
    return obj


def _contract(args: argparse.Namespace, obj: object) -> Contract:
    """The contract of ``obj``; the package id comes from --package or a module-level
    ``PACKAGE`` constant beside the hookspecs."""
    module = sys.modules.get(getattr(obj, "__module__", ""), obj)
    package = args.package or getattr(module, "PACKAGE", None)
    return Contract.from_hookspecs(obj, package=package, project_name=args.project)


def _cmd_wit(args: argparse.Namespace) -> int:
    contract = _contract(args, _load_object(args.spec))
    hooks = None if not args.hooks else [h.strip() for h in args.hooks.split(",") if h.strip()]
    text = contract.wit(world=args.world, hooks=hooks)
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
        print(f"wrote {args.output} ({len(contract.hooks)} hooks, package {contract.package})")
    else:
        sys.stdout.write(text)
    return 0


def _cmd_inspect(args: argparse.Namespace) -> int:
    from .._runtime import ComponentImage

    path = Path(args.component)
    image = ComponentImage.load(path.stem, path)
    print(f"component {path} ({path.stat().st_size:,} bytes, sha256 {image.sha256})")
    print("exports:")
    for (iface, func), sig in sorted(
        image.exports.items(), key=lambda kv: (kv[0][0] or "", kv[0][1])
    ):
        where = f"{iface}#{func}" if iface else func
        print(f"  {where}: {sig.render(expanded=True)}")
    print("imports:")
    for name in image.imports:
        print(f"  {name}")
    return 0


def _cmd_validate(args: argparse.Namespace) -> int:
    import pluggy

    from .._host import PluginHost

    obj = _load_object(args.spec)
    contract = _contract(args, obj)
    project = args.project or _project_of(obj)
    pm = pluggy.PluginManager(project)
    pm.add_hookspecs(obj)  # type: ignore[arg-type]  # a class or module, checked above
    with PluginHost(pm, package=str(contract.package)) as host:
        try:
            plugin = host.load(args.component)
        except ContractMismatchError as exc:
            print(exc, file=sys.stderr)
            return 1
        for hook, where in sorted(plugin.hooks.items()):
            print(f"ok  {hook:<24} {where}")
    return 0


def _project_of(obj: object) -> str:
    for name in dir(obj):
        func = getattr(obj, name, None)
        for attr in getattr(func, "__dict__", {}):
            if attr.endswith("_spec"):
                return str(attr[: -len("_spec")])
    raise SystemExit(f"error: {obj!r} holds no hookspecs")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("wit", help="print the WIT contract of a hookspec class or module")
    p.add_argument("spec", metavar="MODULE:OBJECT")
    p.add_argument("--package", help="WIT package id, e.g. textpipe:hooks@1.0.0")
    p.add_argument("--project", help="pluggy project name (detected from the markers)")
    p.add_argument("--world", default="plugin", help="name of the world (default: plugin)")
    p.add_argument("--hooks", help="comma-separated hooks the world exports (default: all)")
    p.add_argument("-o", "--output", help="write to this file instead of stdout")
    p.set_defaults(func=_cmd_wit)

    p = sub.add_parser("inspect", help="show a component's exports and imports as WIT types")
    p.add_argument("component", metavar="COMPONENT.wasm")
    p.set_defaults(func=_cmd_inspect)

    p = sub.add_parser("validate", help="load a component against a contract and report")
    p.add_argument("component", metavar="COMPONENT.wasm")
    p.add_argument("--contract", dest="spec", metavar="MODULE:OBJECT", required=True)
    p.add_argument("--package", help="WIT package id of the contract")
    p.add_argument("--project", help="pluggy project name (detected from the markers)")
    p.set_defaults(func=_cmd_validate)
