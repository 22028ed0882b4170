"""Read a compiled component's own type information into the :mod:`.._wit` model."""

from __future__ import annotations

from typing import Any

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
    Char,
    Component,
    ComponentInstanceType,
    EnumType,
    FlagsType,
    FuncType,
    ListType,
    OptionType,
    RecordType,
    ResultType,
    String,
    TupleType,
    VariantType,
)

from ..contract import wit

__all__ = ["ExportedFunc", "component_exports", "component_imports", "func_sig"]

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

# (interface full name or None for the root, function name) -> signature
ExportedFunc = tuple[str | None, str]


def valtype(t: Any) -> wit.WitType:
    prim = _PRIMS.get(type(t))
    if prim is not None:
        return wit.Prim(prim)
    if isinstance(t, ListType):
        return wit.ListT(valtype(t.element))
    if isinstance(t, RecordType):
        return wit.RecordT("record", tuple((n, valtype(ft)) for n, ft in t.fields))
    if isinstance(t, TupleType):
        return wit.TupleT(tuple(valtype(e) for e in t.elements))
    if isinstance(t, VariantType):
        return wit.VariantT(
            "variant", tuple((n, None if ct is None else valtype(ct)) for n, ct in t.cases)
        )
    if isinstance(t, EnumType):
        return wit.EnumT("enum", tuple(t.names))
    if isinstance(t, FlagsType):
        return wit.FlagsT("flags", tuple(t.names))
    if isinstance(t, OptionType):
        return wit.OptionT(valtype(t.payload))
    if isinstance(t, ResultType):
        ok, err = t.ok, t.err
        return wit.ResultT(
            None if ok is None else valtype(ok), None if err is None else valtype(err)
        )
    return wit.Unsupported(type(t).__name__.removesuffix("Type").lower() or "unknown")


def func_sig(ft: FuncType) -> wit.FuncSig:
    result = ft.result
    return wit.FuncSig(
        tuple((n, valtype(t)) for n, t in ft.params), None if result is None else valtype(result)
    )


def component_exports(engine: Engine, component: Component) -> dict[ExportedFunc, wit.FuncSig]:
    """Every function the component exports, at its root or inside an exported interface."""
    found: dict[ExportedFunc, wit.FuncSig] = {}
    for name, ext in component.type.exports(engine).items():
        ty = ext.ty
        if isinstance(ty, FuncType):
            found[(None, name)] = func_sig(ty)
        elif isinstance(ty, ComponentInstanceType):
            for fname, fext in ty.exports(engine).items():
                fty = fext.ty
                if isinstance(fty, FuncType):
                    found[(name, fname)] = func_sig(fty)
    return found


def component_imports(engine: Engine, component: Component) -> list[str]:
    return list(component.type.imports(engine))
