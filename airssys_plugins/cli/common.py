"""Helpers the subcommand modules share: loading MODULE:OBJECT specs and their contracts."""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Final

from ..contract.mapping import Contract
from ..contract.versions import ContractVersion

__all__ = ["SPEC_HELP", "contract_of", "existing_path", "load_object", "project_of", "quiet_loader"]


SPEC_HELP: Final = (
    "give MODULE:OBJECT (hookspecs.textpipe:TextHooks), a MODULE (its hookspec classes), "
    "or a FILE.py (optionally FILE.py:OBJECT)"
)


def _has_specs(obj: object) -> bool:
    """Whether ``obj`` (a class or module) holds pluggy hookspec functions."""
    for name in dir(obj):
        func = getattr(obj, name, None)
        if callable(func) and any(a.endswith("_spec") for a in getattr(func, "__dict__", {})):
            return True
    return False


def _import(module_name: str, spec: str) -> ModuleType:
    """The module ``module_name``, or the one in the file ``module_name`` names."""
    sys.path.insert(0, str(Path.cwd()))
    path = Path(module_name)
    if module_name.endswith(".py") or "/" in module_name or os.sep in module_name:
        if not path.is_file():
            raise SystemExit(f"error: {spec!r}: there is no file {path}; {SPEC_HELP}")
        # The file's directory goes first on the path so that its own imports resolve.
        sys.path.insert(0, str(path.resolve().parent))
        loaded = importlib.util.spec_from_file_location(path.stem, path)
        if loaded is None or loaded.loader is None:
            raise SystemExit(f"error: cannot import {path}: not a Python file")
        module = importlib.util.module_from_spec(loaded)
        sys.modules[path.stem] = module
        try:
            loaded.loader.exec_module(module)
        except Exception as exc:
            raise SystemExit(
                f"error: importing {path} failed: {type(exc).__name__}: {exc}"
            ) from exc
        return module
    try:
        return importlib.import_module(module_name)
    except ImportError as exc:
        raise SystemExit(f"error: cannot import {module_name!r}: {exc}; {SPEC_HELP}") from exc


def load_object(spec: str) -> object:
    """The hookspecs ``spec`` names: ``MODULE:OBJECT``, a ``MODULE`` or a ``FILE.py`` (the
    module itself if it holds hookspec functions, else its hookspec classes), or
    ``FILE.py:OBJECT``."""
    module_name, sep, attr = spec.partition(":")
    if not module_name or (sep and not attr):
        raise SystemExit(f"error: {spec!r} names no hookspecs; {SPEC_HELP}")
    module = _import(module_name, spec)
    if not sep:
        return _specs_of_module(module, spec)
    obj: object = module
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise SystemExit(f"error: module {module_name!r} has no attribute {attr!r}") from None
    return obj


def _specs_of_module(module: ModuleType, spec: str) -> object:
    if _has_specs(module):
        return module
    classes = [
        obj
        for _, obj in sorted(vars(module).items())
        if isinstance(obj, type) and obj.__module__ == module.__name__ and _has_specs(obj)
    ]
    if not classes:
        raise SystemExit(f"error: {spec!r} holds no hookspec functions or classes")
    if len(classes) == 1:
        return classes[0]
    # Several hookspec classes: one namespace holding all their hooks, as pluggy would see
    # them after add_hookspecs() of each (its module stays, for a PACKAGE beside them).
    merged: dict[str, object] = {"__module__": module.__name__}
    for cls in classes:
        merged.update({k: v for k, v in vars(cls).items() if callable(v)})
    return type("+".join(c.__name__ for c in classes), (), merged)


def contract_of(args: argparse.Namespace, obj: object) -> Contract:
    """The contract of ``obj``; the package id comes from --package or a module-level
    ``PACKAGE`` constant beside the hookspecs."""
    module = sys.modules.get(getattr(obj, "__module__", ""), obj)
    package = args.package or getattr(module, "PACKAGE", None)
    return Contract.from_hookspecs(obj, package=package, project_name=args.project)


def versions_of(obj: object) -> tuple[ContractVersion, ...]:
    """The older contract versions the app accepts: a module-level ``CONTRACT_VERSIONS``
    (a sequence of :class:`ContractVersion`) beside the hookspecs, as ``PACKAGE`` is."""
    module = sys.modules.get(getattr(obj, "__module__", ""), obj)
    versions = tuple(getattr(module, "CONTRACT_VERSIONS", ()))
    bad = [v for v in versions if not isinstance(v, ContractVersion)]
    if bad:
        raise SystemExit(f"error: CONTRACT_VERSIONS holds {bad[0]!r}, not a ContractVersion")
    return versions


def project_of(obj: object) -> str:
    for name in dir(obj):
        func = getattr(obj, name, None)
        for attr in getattr(func, "__dict__", {}):
            if attr.endswith("_spec"):
                return str(attr[: -len("_spec")])
    raise SystemExit(f"error: {obj!r} holds no hookspecs")


@contextmanager
def quiet_loader() -> Iterator[None]:
    """The loader logs each plugin it refuses; a command that prints the error itself
    would say it twice. (Progress records of the runtime are not affected: an
    :class:`~.progress.Activity` sets that logger's level itself.)"""
    logger = logging.getLogger("airssys_plugins")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def existing_path(text: str) -> Path:
    """``text`` as a path, or exit saying it does not exist."""
    path = Path(text)
    if not path.exists():
        raise SystemExit(
            f"error: {path} does not exist (give a .wasm component, a plugin.toml, or a "
            "plugin directory)"
        )
    return path
