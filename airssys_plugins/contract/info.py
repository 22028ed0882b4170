"""What a component imports and exports, for ``airssys-plugins inspect``: a pure model.

The runtime layer (``_runtime/_describe.py``) fills it from any component's own type
information; this module renders it as WIT-like text or JSON. Types our hooks cannot carry
(resources, futures, streams, error-context) are kept as :class:`_wit.Unsupported` with
their WIT spelling (``own<pollable>``, ``stream<u8>``), so describing never fails on them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, final

from .. import _attrs as attrs
from . import wit

__all__ = ["ComponentInfo", "Item", "render_text", "to_json", "type_json"]

ItemKind = Literal["func", "interface", "resource", "type", "module", "component"]


@final
@attrs.frozen
class Item:
    """One import or export: a function, an interface (instance) with items of its own, a
    resource, a named type, a core module, or a nested component."""

    name: str
    kind: ItemKind
    func: wit.FuncSig | None = None
    type: wit.WitType | None = None
    items: tuple[Item, ...] = ()


@final
@attrs.frozen
class ComponentInfo:
    path: Path | None
    size: int
    sha256: str
    imports: tuple[Item, ...]
    exports: tuple[Item, ...]


# A type as used in a signature: named types by name, anonymous ones written out.
show = wit.render_type_inline


def show_func(sig: wit.FuncSig) -> str:
    return wit.render_func(sig, wit.render_type_inline)


def _typedef(name: str, t: wit.WitType) -> str:
    """``record datetime { seconds: u64, nanoseconds: u32 }`` or ``type duration = u64``."""
    ident = wit.render_ident(name)
    if isinstance(t, wit.RecordT | wit.VariantT | wit.EnumT | wit.FlagsT) and t.name == name:
        anonymous = attrs.evolve(t, name="")
        kind, _, body = show(anonymous).partition(" ")
        return f"{kind} {ident} {body}"
    return f"type {ident} = {show(t)}"


def _render_items(items: tuple[Item, ...], indent: str, out: list[str]) -> None:
    for item in items:
        name = item.name if ":" in item.name else wit.render_ident(item.name)
        if item.kind == "func" and item.func is not None:
            out.append(f"{indent}{name}: {show_func(item.func)};")
        elif item.kind == "type" and item.type is not None:
            typedef = _typedef(item.name, item.type)
            out.append(f"{indent}{typedef}{';' if typedef.startswith('type ') else ''}")
        elif item.kind == "resource":
            out.append(f"{indent}resource {name};")
        elif item.kind in ("interface", "component"):
            keyword = "interface" if item.kind == "interface" else "component"
            if not item.items:
                out.append(f"{indent}{keyword} {name} {{}}")
                continue
            out.append(f"{indent}{keyword} {name} {{")
            _render_items(item.items, indent + "  ", out)
            out.append(f"{indent}}}")
        else:
            out.append(f"{indent}{item.kind} {name};")


def render_text(info: ComponentInfo) -> str:
    """WIT-like text: one block per imported or exported interface, items inside."""
    where = info.path if info.path is not None else "component"
    out = [f"component {where} ({info.size:,} bytes, sha256 {info.sha256})"]
    for title, items in (("imports", info.imports), ("exports", info.exports)):
        out.append(f"{title} ({len(items)}):")
        if not items:
            out.append("  (none)")
        _render_items(items, "  ", out)
    return "\n".join(out) + "\n"


def type_json(t: wit.WitType) -> dict[str, Any]:
    """A type as JSON: ``{"kind": ..., ...}``; named types carry ``name``."""
    out: dict[str, Any]
    if isinstance(t, wit.Prim):
        return {"kind": t.name}
    if isinstance(t, wit.ListT):
        return {"kind": "list", "element": type_json(t.element)}
    if isinstance(t, wit.TupleT):
        return {"kind": "tuple", "elements": [type_json(e) for e in t.elements]}
    if isinstance(t, wit.OptionT):
        return {"kind": "option", "inner": type_json(t.inner)}
    if isinstance(t, wit.ResultT):
        return {
            "kind": "result",
            "ok": None if t.ok is None else type_json(t.ok),
            "err": None if t.err is None else type_json(t.err),
        }
    if isinstance(t, wit.RecordT):
        out = {
            "kind": "record",
            "fields": [{"name": n, "type": type_json(ft)} for n, ft in t.fields],
        }
    elif isinstance(t, wit.VariantT):
        out = {
            "kind": "variant",
            "cases": [
                {"name": n, "type": None if ct is None else type_json(ct)} for n, ct in t.cases
            ],
        }
    elif isinstance(t, wit.EnumT):
        out = {"kind": "enum", "names": list(t.names)}
    elif isinstance(t, wit.FlagsT):
        out = {"kind": "flags", "names": list(t.names)}
    else:  # resources handles, futures, streams, error-context: their WIT spelling
        kind, _, rest = t.description.partition("<")
        out = {"kind": kind, "wit": t.description}
        if kind in ("own", "borrow"):
            out["resource"] = rest.rstrip(">")
        return out
    if t.name:
        out["name"] = t.name
    return out


def _item_json(item: Item) -> dict[str, Any]:
    out: dict[str, Any] = {"name": item.name, "kind": item.kind}
    if item.func is not None:
        out["params"] = [{"name": n, "type": type_json(t)} for n, t in item.func.params]
        out["result"] = None if item.func.result is None else type_json(item.func.result)
        out["wit"] = show_func(item.func)
    if item.type is not None:
        out["type"] = type_json(item.type)
        out["wit"] = _typedef(item.name, item.type)
    if item.kind in ("interface", "component"):
        out["items"] = [_item_json(i) for i in item.items]
    return out


def to_json(info: ComponentInfo) -> dict[str, Any]:
    return {
        "path": None if info.path is None else str(info.path),
        "size": info.size,
        "sha256": info.sha256,
        "imports": [_item_json(i) for i in info.imports],
        "exports": [_item_json(i) for i in info.exports],
    }
