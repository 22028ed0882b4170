"""Read a compiled component's own type information into the :mod:`..contract.wit` model:
the one converter from wasmtime component types, for hook signatures and for
``airssys-plugins inspect`` (:mod:`.describe`) alike."""

from __future__ import annotations

from typing import Any, Final, Protocol

from wasmtime import Engine
from wasmtime.component import (
    F32,
    F64,
    S8,
    S16,
    S32,
    S64,
    U8,
    U16,
    U32,
    U64,
    Bool,
    BorrowType,
    Char,
    Component,
    ComponentInstanceType,
    EnumType,
    FlagsType,
    FuncType,
    FutureType,
    ListType,
    OptionType,
    OwnType,
    RecordType,
    ResourceType,
    ResultType,
    StreamType,
    String,
    TupleType,
    VariantType,
)

from .._errors import PluginLoadError
from ..contract import wit
from . import capi

__all__ = [
    "NAMED_TYPES",
    "ExportedFunc",
    "TypeNames",
    "component_exports",
    "component_imports",
    "func_sig",
    "valtype",
]

_PRIMS: dict[type, str] = {
    Bool: "bool",
    U8: "u8",
    U16: "u16",
    U32: "u32",
    U64: "u64",
    S8: "s8",
    S16: "s16",
    S32: "s32",
    S64: "s64",
    F32: "f32",
    F64: "f64",
    Char: "char",
    String: "string",
}

#: The wasmtime types of WIT's named types (record, variant, enum, flags).
NAMED_TYPES = (RecordType, VariantType, EnumType, FlagsType)
_KIND: dict[type, str] = {
    RecordType: "record",
    VariantType: "variant",
    EnumType: "enum",
    FlagsType: "flags",
}

# (interface full name or None for the root, function name) -> signature
ExportedFunc = tuple[str | None, str]


class TypeNames(Protocol):
    """Where :func:`valtype` finds the names of named types and resources (describe's
    scopes); without one, named types are called by their kind."""

    def type_name(self, t: Any) -> str: ...
    def resource_name(self, r: Any) -> str: ...


#: The most type nodes :func:`component_exports` reads, each use of a named type counted
#: again (wasmtime accepts a type of up to 1,000,000: a few hundred bytes of types naming
#: the one before twice; reading that many took about 4 s and a Python object each). Our
#: built guests' exports hold at most 188 in all.
MOST_EXPORT_TYPE_NODES: Final = 100_000


class _Budget:
    __slots__ = ("left",)

    def __init__(self, most: int):
        self.left = most

    def spend(self) -> None:
        self.left -= 1
        if self.left < 0:
            raise PluginLoadError(
                f"exports types that expand to more than {MOST_EXPORT_TYPE_NODES:,} values "
                "(types naming other types many times over); such a component is refused"
            )


def valtype(
    t: Any, names: TypeNames | None = None, *, name: str = "", budget: _Budget | None = None
) -> wit.WitType:
    """The WIT model of wasmtime component type ``t``.

    With ``names``, named types carry their names (``name`` for ``t`` itself) and the types
    hooks cannot carry are spelled as WIT writes them (``own<pollable>``, ``stream<u8>``,
    ``error-context``); without, they are :class:`wit.Unsupported` of their kind only,
    which is all a signature check needs. ``budget``: every node read spends one.
    """
    if budget is not None:
        budget.spend()
    prim = _PRIMS.get(type(t))
    if prim is not None:
        return wit.Prim(prim)
    if isinstance(t, NAMED_TYPES) and not name:
        name = names.type_name(t) if names is not None else _KIND[type(t)]
    if isinstance(t, ListType):
        return wit.ListT(valtype(t.element, names, budget=budget))
    if isinstance(t, RecordType):
        return wit.RecordT(
            name, tuple((n, valtype(ft, names, budget=budget)) for n, ft in t.fields)
        )
    if isinstance(t, TupleType):
        return wit.TupleT(tuple(valtype(e, names, budget=budget) for e in t.elements))
    if isinstance(t, VariantType):
        cases = tuple(
            (n, None if ct is None else valtype(ct, names, budget=budget)) for n, ct in t.cases
        )
        return wit.VariantT(name, cases)
    if isinstance(t, EnumType):
        return wit.EnumT(name, tuple(t.names))
    if isinstance(t, FlagsType):
        return wit.FlagsT(name, tuple(t.names))
    if isinstance(t, OptionType):
        return wit.OptionT(valtype(t.payload, names, budget=budget))
    if isinstance(t, ResultType):
        ok, err = t.ok, t.err
        return wit.ResultT(
            None if ok is None else valtype(ok, names, budget=budget),
            None if err is None else valtype(err, names, budget=budget),
        )
    if isinstance(t, OwnType | BorrowType):
        name = "resource" if names is None else names.resource_name(t.ty)
        return wit.HandleT(wit.ResourceT(name), own=isinstance(t, OwnType))
    if names is not None:
        if isinstance(t, FutureType | StreamType):
            kind = "future" if isinstance(t, FutureType) else "stream"
            try:
                payload = t.payload
            except Exception:  # a payload-less future/stream has no type to read
                return wit.Unsupported(kind)
            return wit.Unsupported(
                f"{kind}<{wit.render_type(valtype(payload, names, budget=budget))}>"
            )
        if type(t).__name__ == "ErrorContext":
            return wit.Unsupported("error-context")
    return wit.Unsupported(type(t).__name__.removesuffix("Type").lower() or "unknown")


def func_sig(
    ft: FuncType, names: TypeNames | None = None, budget: _Budget | None = None
) -> wit.FuncSig:
    result = ft.result
    return wit.FuncSig(
        tuple((n, valtype(t, names, budget=budget)) for n, t in ft.params),
        None if result is None else valtype(result, names, budget=budget),
        is_async=capi.func_type_is_async(ft),
    )


class _KindNames:
    """For signature checks: named types by their kind (only their structure is compared),
    resources by the name they are exported under, so that a mismatch says
    ``borrow<thing>``, not just ``borrow``."""

    def __init__(self, resources: list[tuple[str, Any]]):
        self.resources = resources

    def type_name(self, t: Any) -> str:
        return _KIND[type(t)]

    def resource_name(self, r: Any) -> str:
        return next((name for name, other in self.resources if other == r), "resource")


def component_exports(engine: Engine, component: Component) -> dict[ExportedFunc, wit.FuncSig]:
    """Every function the component exports, at its root or inside an exported interface."""
    found: dict[ExportedFunc, wit.FuncSig] = {}
    exports = component.type.exports(engine)
    # Every resource a handle may name, in export order (a resource is defined before an
    # interface that `use`s it under another name: the first name is the defining one),
    # then the imported ones (an interface's, or a world's `use`).
    resources = [(n, e.ty) for n, e in exports.items() if isinstance(e.ty, ResourceType)]
    inner: dict[str, dict[str, Any]] = {}
    for name, ext in exports.items():
        if isinstance(ext.ty, ComponentInstanceType):
            inner[name] = ext.ty.exports(engine)
            resources.extend(
                (n, e.ty) for n, e in inner[name].items() if isinstance(e.ty, ResourceType)
            )
    for name, ext in component.type.imports(engine).items():
        ty = ext.ty
        if isinstance(ty, ResourceType):
            resources.append((name, ty))
        elif isinstance(ty, ComponentInstanceType):
            resources.extend(
                (n, e.ty) for n, e in ty.exports(engine).items() if isinstance(e.ty, ResourceType)
            )
    names = _KindNames(resources)
    budget = _Budget(MOST_EXPORT_TYPE_NODES)
    for name, ext in exports.items():
        if isinstance(ext.ty, FuncType):
            found[(None, name)] = func_sig(ext.ty, names, budget)
        for fname, fext in inner.get(name, {}).items():
            if isinstance(fext.ty, FuncType):
                found[(name, fname)] = func_sig(fext.ty, names, budget)
    return found


def component_imports(engine: Engine, component: Component) -> list[str]:
    """The interfaces (and world-level functions) the component imports; a resource type
    imported at the root (a world's ``use iface.{r}``) is part of its interface, not an
    import of its own."""
    return [
        name
        for name, ext in component.type.imports(engine).items()
        if not isinstance(ext.ty, ResourceType)
    ]
