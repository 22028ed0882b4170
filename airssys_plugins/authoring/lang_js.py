"""JavaScript skeletons for ``jco componentize`` with the QuickJS backend.

jco wants one exported object per exported WIT interface, named like the interface in
camelCase, with the WIT function as a method (camelCase too). Values follow QuickJS's
mapping (componentize-qjs): numbers for every integer (64-bit ones too, exact up to
2^53), ``null`` for ``none``, ``Uint8Array`` for ``list<u8>``, objects with camelCase
keys for records, case-name strings for enums, ``{tag, val}`` for variants; a
``result`` is returned as its ok value or thrown as its error.
"""

from __future__ import annotations

import json
from typing import Final

from ..contract import wit as _wit
from ..contract.mapping import Contract
from .common import camel, hook_comment, zero_description

__all__ = ["js_files"]

_PRIM_JS: Final = {"bool": "boolean", "char": "string", "string": "string"}
# Words a JavaScript parameter cannot be named (strict mode, ES modules).
_RESERVED: Final = frozenset(
    {
        *("await", "break", "case", "catch", "class", "const", "continue", "debugger"),
        *("default", "delete", "do", "else", "enum", "export", "extends", "false"),
        *("finally", "for", "function", "if", "implements", "import", "in", "instanceof"),
        *("interface", "let", "new", "null", "package", "private", "protected", "public"),
        *("return", "static", "super", "switch", "this", "throw", "true", "try", "typeof"),
        *("var", "void", "while", "with", "yield", "arguments", "eval"),
    }
)


def _param(name: str) -> str:
    ident = camel(name)
    return f"{ident}_" if ident in _RESERVED else ident


def _jsdoc(t: _wit.WitType | None, *, top: bool = False) -> str:
    if t is None:
        return "void"
    if isinstance(t, _wit.Prim):
        return _PRIM_JS.get(t.name, "number")
    if isinstance(t, _wit.ListT):
        return "Uint8Array" if t.element == _wit.Prim("u8") else f"Array<{_jsdoc(t.element)}>"
    if isinstance(t, _wit.OptionT):
        if isinstance(t.inner, _wit.OptionT):
            return "{tag: 'some' | 'none', val?: " + _jsdoc(t.inner) + "}"
        return f"{_jsdoc(t.inner)} | null"
    if isinstance(t, _wit.TupleT):
        return "[" + ", ".join(_jsdoc(e) for e in t.elements) + "]"
    if isinstance(t, _wit.ResultT):
        if top:
            return _jsdoc(t.ok)
        return f"{{tag: 'ok' | 'err', val?: {_jsdoc(t.ok)} | {_jsdoc(t.err)}}}"
    if isinstance(t, _wit.RecordT):
        return "{" + ", ".join(f"{camel(n)}: {_jsdoc(ft)}" for n, ft in t.fields) + "}"
    if isinstance(t, _wit.EnumT):
        return " | ".join(json.dumps(n) for n in t.names)
    if isinstance(t, _wit.FlagsT):
        return "{" + ", ".join(f"{camel(n)}?: boolean" for n in t.names) + "}"
    if isinstance(t, _wit.VariantT):
        return "{tag: " + " | ".join(json.dumps(n) for n, _ in t.cases) + ", val?: any}"
    return "any"


def _zero(t: _wit.WitType | None, *, top: bool = False) -> str:
    if t is None:
        return "undefined"
    if isinstance(t, _wit.Prim):
        return {"bool": "false", "char": '"\\0"', "string": '""'}.get(t.name, "0")
    if isinstance(t, _wit.ListT):
        return "new Uint8Array(0)" if t.element == _wit.Prim("u8") else "[]"
    if isinstance(t, _wit.OptionT):
        return '{ tag: "none" }' if isinstance(t.inner, _wit.OptionT) else "null"
    if isinstance(t, _wit.TupleT):
        return "[" + ", ".join(_zero(e) for e in t.elements) + "]"
    if isinstance(t, _wit.ResultT):
        if top:
            return _zero(t.ok)
        return '{ tag: "ok" }' if t.ok is None else f'{{ tag: "ok", val: {_zero(t.ok)} }}'
    if isinstance(t, _wit.RecordT):
        return "{ " + ", ".join(f"{camel(n)}: {_zero(ft)}" for n, ft in t.fields) + " }"
    if isinstance(t, _wit.EnumT):
        return json.dumps(t.names[0])
    if isinstance(t, _wit.FlagsT):
        return "{}"
    if isinstance(t, _wit.VariantT):
        case, payload = t.cases[0]
        if payload is None:
            return f"{{ tag: {json.dumps(case)} }}"
        return f"{{ tag: {json.dumps(case)}, val: {_zero(payload)} }}"
    return "undefined"


def js_files(contract: Contract, hooks: list[str], *, plugin: str) -> dict[str, str]:
    """``app.js``: one exported object per hook interface."""
    parts = [_HEAD.format(plugin=plugin, package=contract.package)]
    for hook_name in hooks:
        hook = contract.hooks[hook_name]
        sig = hook.signature
        iface = _wit.kebab(hook.name)
        extra = ""
        if isinstance(sig.result, _wit.ResultT):
            extra = "Return the ok value; `throw value` to answer with an error."
        doc = hook_comment(hook, "   * ", extra=extra)
        params = "".join(
            f"   * @param {{{_jsdoc(t)}}} {_param(arg)}\n"
            for arg, t in zip(hook.argnames, sig.param_types, strict=True)
        )
        returns = f"   * @returns {{{_jsdoc(sig.result, top=True)}}}\n"
        body = "    // TODO: implement this hook.\n"
        if sig.result is not None:
            plain = isinstance(sig.result, _wit.Prim | _wit.ListT | _wit.OptionT)
            note = "" if plain else f" // {zero_description(sig.result)}"
            body += f"    return {_zero(sig.result, top=True)};{note}\n"
        args = ", ".join(_param(a) for a in hook.argnames)
        parts.append(
            f"\n/** {contract.package.interface(iface)} */\n"
            f"export const {camel(iface)} = {{\n"
            f"  /**\n{doc}{params}{returns}   */\n"
            f"  {camel(hook.binding.function)}({args}) {{\n{body}  }},\n"
            "};\n"
        )
    return {"app.js": "".join(parts)}


_HEAD: Final = """\
// Plugin {plugin}: hooks of {package}, in JavaScript.
//
// Each exported object is one WIT interface (camelCase, as jco expects); its method is
// the hook. Fill in the bodies; build with `airssys-plugins build` (jco componentize,
// QuickJS backend). Types follow QuickJS's mapping: numbers for every integer (64-bit
// ones are exact up to 2^53), null for none, Uint8Array for list<u8>, camelCase keys for
// records, case names for enums, {{tag, val}} for variants; throw to return a result's err.
"""
