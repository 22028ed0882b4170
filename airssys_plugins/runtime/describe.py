"""Describe any component's imports and exports (``airssys-plugins inspect``).

Walks the component's own type information, interfaces within interfaces, into the pure
:mod:`.._inspect` model. Unlike :mod:`._types` (which maps what hooks can carry), every
kind of type and item is described and none is refused: resources become ``own<name>`` /
``borrow<name>``, futures and streams ``future<T>`` / ``stream<T>``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from wasmtime import Engine
from wasmtime.component import (
    BorrowType,
    ComponentInstanceType,
    ComponentType,
    EnumType,
    FlagsType,
    FuncType,
    FutureType,
    ListType,
    ModuleType,
    OptionType,
    OwnType,
    RecordType,
    ResourceType,
    ResultType,
    StreamType,
    TupleType,
    VariantType,
)

from ..contract import wit
from ..contract.info import ComponentInfo, Item
from . import engine as _engine
from .instance import ComponentImage
from .wit_types import _PRIMS

__all__ = ["describe_component"]

_NAMED = (RecordType, VariantType, EnumType, FlagsType)


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


def _valtype(t: Any, scope: _Scope, *, name: str = "") -> wit.WitType:
    prim = _PRIMS.get(type(t))
    if prim is not None:
        return wit.Prim(prim)
    if isinstance(t, _NAMED) and not name:
        name = scope.type_name(t)
    if isinstance(t, ListType):
        return wit.ListT(_valtype(t.element, scope))
    if isinstance(t, RecordType):
        return wit.RecordT(name, tuple((n, _valtype(ft, scope)) for n, ft in t.fields))
    if isinstance(t, TupleType):
        return wit.TupleT(tuple(_valtype(e, scope) for e in t.elements))
    if isinstance(t, VariantType):
        cases = tuple((n, None if ct is None else _valtype(ct, scope)) for n, ct in t.cases)
        return wit.VariantT(name, cases)
    if isinstance(t, EnumType):
        return wit.EnumT(name, tuple(t.names))
    if isinstance(t, FlagsType):
        return wit.FlagsT(name, tuple(t.names))
    if isinstance(t, OptionType):
        return wit.OptionT(_valtype(t.payload, scope))
    if isinstance(t, ResultType):
        ok, err = t.ok, t.err
        return wit.ResultT(
            None if ok is None else _valtype(ok, scope),
            None if err is None else _valtype(err, scope),
        )
    if isinstance(t, OwnType | BorrowType):
        kind = "own" if isinstance(t, OwnType) else "borrow"
        return wit.Unsupported(f"{kind}<{scope.resource_name(t.ty)}>")
    if isinstance(t, FutureType | StreamType):
        kind = "future" if isinstance(t, FutureType) else "stream"
        try:
            payload = t.payload
        except Exception:  # a payload-less future/stream has no type to read
            return wit.Unsupported(kind)
        return wit.Unsupported(f"{kind}<{wit.render_type(_valtype(payload, scope))}>")
    spelled = {"ErrorContext": "error-context"}.get(type(t).__name__)
    return wit.Unsupported(spelled or type(t).__name__.removesuffix("Type").lower() or "unknown")


def _items(externs: dict[str, Any], engine: Engine, parent: _Scope) -> tuple[Item, ...]:
    scope = _Scope(parent)
    typed = [(name, ext.ty) for name, ext in externs.items()]
    # Declarations first, so functions can refer to the types and resources by name.
    for name, ty in typed:
        if isinstance(ty, ResourceType):
            scope.resources.append((name, ty))
            scope.everywhere.append((name, ty))
        elif isinstance(ty, _NAMED):
            scope.types.append((name, ty))
    items: list[Item] = []
    for name, ty in typed:
        if isinstance(ty, FuncType):
            result = ty.result
            sig = wit.FuncSig(
                tuple((n, _valtype(pt, scope)) for n, pt in ty.params),
                None if result is None else _valtype(result, scope),
            )
            items.append(Item(name, "func", func=sig))
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
            items.append(Item(name, "type", type=_valtype(ty, scope, name=name)))
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
    added = set(image.byte_exports.values())  # the runtime's, not the author's (_relift)
    exports = {k: v for k, v in ctype.exports(eng).items() if k not in added}
    return ComponentInfo(
        path=path,
        size=path.stat().st_size,
        sha256=image.sha256,
        imports=_items(ctype.imports(eng), eng, root),
        exports=_items(exports, eng, root),
    )
