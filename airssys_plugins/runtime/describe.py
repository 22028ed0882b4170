"""Describe any component's imports and exports (``airssys-plugins inspect``).

Walks the component's own type information, interfaces within interfaces, into the pure
:mod:`..contract.info` model, with the converter of :mod:`.wit_types` given the names in
scope: every kind of type and item is described and none is refused: resources become
``own<name>`` / ``borrow<name>``, futures and streams ``future<T>`` / ``stream<T>``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from wasmtime import Engine
from wasmtime.component import (
    ComponentInstanceType,
    ComponentType,
    FuncType,
    ModuleType,
    ResourceType,
)

from .. import _attrs as attrs
from ..contract import wit
from ..contract.info import ComponentInfo, Item
from . import engine as _engine
from .image import ComponentImage
from .measure import MEASURE_PREFIX
from .rawbytes import RAW_PREFIX
from .rawimports import original_sig
from .wit_types import NAMED_TYPES, func_sig, valtype

__all__ = ["describe_component", "root_imported_functions"]


class _Scope:
    """Names of the types and resources visible while converting, innermost first."""

    def __init__(self, parent: _Scope | None = None):
        self.parent = parent
        self.types: list[tuple[str, Any]] = []
        self.resources: list[tuple[str, Any]] = []
        # Every resource declared anywhere so far: a type may use one from a sibling.
        self.everywhere: list[tuple[str, Any]] = parent.everywhere if parent else []

    def type_name(self, t: Any) -> str:
        scope: _Scope | None = self
        while scope is not None:
            for name, other in scope.types:
                if type(other) is type(t) and other == t:
                    return name
            scope = scope.parent
        return ""

    def resource_name(self, r: Any) -> str:
        scope: _Scope | None = self
        while scope is not None:
            for name, other in scope.resources:
                if other == r:
                    return name
            scope = scope.parent
        return next((name for name, other in self.everywhere if other == r), "resource")


def _items(externs: dict[str, Any], engine: Engine, parent: _Scope) -> tuple[Item, ...]:
    scope = _Scope(parent)
    typed = [(name, ext.ty) for name, ext in externs.items()]
    # Declarations first, so functions can refer to the types and resources by name.
    for name, ty in typed:
        if isinstance(ty, ResourceType):
            scope.resources.append((name, ty))
            scope.everywhere.append((name, ty))
        elif isinstance(ty, NAMED_TYPES):
            scope.types.append((name, ty))
    items: list[Item] = []
    for name, ty in typed:
        if isinstance(ty, FuncType):
            items.append(Item(name, "func", func=func_sig(ty, scope)))
        elif isinstance(ty, ComponentInstanceType):
            items.append(Item(name, "interface", items=_items(ty.exports(engine), engine, scope)))
        elif isinstance(ty, ResourceType):
            items.append(Item(name, "resource"))
        elif isinstance(ty, ModuleType):
            items.append(Item(name, "module"))
        elif isinstance(ty, ComponentType):
            inner = _items(ty.imports(engine), engine, scope) + _items(
                ty.exports(engine), engine, scope
            )
            items.append(Item(name, "component", items=inner))
        else:
            items.append(Item(name, "type", type=valtype(ty, scope, name=name)))
    return tuple(items)


def describe_component(path: str | Path, *, cache: bool = True) -> ComponentInfo:
    """Compile (through the cache) and describe the component at ``path``.

    Raises :class:`PluginLoadError` for a file that is not a valid component.
    """
    path = Path(path)
    image = ComponentImage.load(path.stem, path, cache=cache)
    eng = _engine.engine()
    ctype = image.component.type
    root = _Scope()
    added = image.added_exports  # the runtime's, not the author's (relift, measure, rawbytes)
    exports = {
        k: v
        for k, v in ctype.exports(eng).items()
        if k not in added and not k.startswith((MEASURE_PREFIX, RAW_PREFIX))
    }
    return ComponentInfo(
        path=path,
        size=path.stat().st_size,
        sha256=image.sha256,
        imports=_as_declared(_items(ctype.imports(eng), eng, root), image),
        exports=_items(exports, eng, root),
    )


def root_imported_functions(image: ComponentImage) -> dict[str, wit.FuncSig]:
    """Function name -> signature of every function ``image`` imports at its world's root
    (``import log: func(msg: string);``), not from an interface."""
    eng = _engine.engine(image.fuel)
    imports = image.component.type.imports(eng)
    scope = _Scope()
    scope.resources.extend((n, e.ty) for n, e in imports.items() if isinstance(e.ty, ResourceType))
    scope.types.extend((n, e.ty) for n, e in imports.items() if isinstance(e.ty, NAMED_TYPES))
    return {n: func_sig(e.ty, scope) for n, e in imports.items() if isinstance(e.ty, FuncType)}


def _as_declared(imports: tuple[Item, ...], image: ComponentImage) -> tuple[Item, ...]:
    """``imports`` with the functions whose types the raw import route rewrote shown as
    the component declares them (see :mod:`.rawimports`)."""
    raw = image.raw_imports
    if not raw:
        return imports
    out = []
    for item in imports:
        if item.kind == "interface":
            funcs = []
            for f in item.items:
                entry = raw.get((item.name, f.name))
                declared = None
                if entry is not None and f.func is not None:
                    declared = original_sig(f.func, entry[0])
                funcs.append(f if declared is None else attrs.evolve(f, func=declared))
            item = attrs.evolve(item, items=tuple(funcs))
        out.append(item)
    return tuple(out)
