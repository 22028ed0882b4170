"""Helpers the subcommand modules share: loading MODULE:OBJECT specs and their contracts."""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

from ..contract.mapping import Contract

__all__ = ["contract_of", "load_object", "project_of"]


def load_object(spec: str) -> object:
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


def contract_of(args: argparse.Namespace, obj: object) -> Contract:
    """The contract of ``obj``; the package id comes from --package or a module-level
    ``PACKAGE`` constant beside the hookspecs."""
    module = sys.modules.get(getattr(obj, "__module__", ""), obj)
    package = args.package or getattr(module, "PACKAGE", None)
    return Contract.from_hookspecs(obj, package=package, project_name=args.project)


def project_of(obj: object) -> str:
    for name in dir(obj):
        func = getattr(obj, name, None)
        for attr in getattr(func, "__dict__", {}):
            if attr.endswith("_spec"):
                return str(attr[: -len("_spec")])
    raise SystemExit(f"error: {obj!r} holds no hookspecs")
