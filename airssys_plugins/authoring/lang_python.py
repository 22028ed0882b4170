"""Python skeletons for componentize-py, with its class layout kept out of the way.

The author edits ``plugin.py``: one plain, typed function per hook, as in a pluggy
plugin. ``app.py`` is generated and never edited: componentize-py wants, in its entry
module, one class per exported interface (named like the interface in PascalCase,
subclassing ``wit_world.exports.<Interface>``) with the function as a method; each such
method here just calls the function of ``plugin.py``.

Named WIT types are classes componentize-py generates in ``wit_world.exports.<interface>``
(records are dataclasses, enums ``Enum``, flags ``Flag``, variant cases ``Shape_Circle``);
``plugin.py`` imports the ones it uses by name, prefixed with the interface when two
interfaces define a class of the same name.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from ..contract import wit as _wit
from ..contract.mapping import Contract
from .common import hook_comment, pascal, snake, zero_description

__all__ = ["python_files"]

_PRIM_PY: Final = {"bool": "bool", "f32": "float", "f64": "float", "char": "str", "string": "str"}

# (module, class) -> the name plugin.py uses for it
Namer = Callable[[str, str], str]


def _annotation(t: _wit.WitType | None, scope: str, name: Namer, *, top: bool = False) -> str:
    """The Python type componentize-py uses for ``t`` (``top``: a function's result)."""
    if t is None:
        return "None"
    if isinstance(t, _wit.Prim):
        return _PRIM_PY.get(t.name, "int")
    if isinstance(t, _wit.ListT):
        if t.element == _wit.Prim("u8"):
            return "bytes"
        return f"list[{_annotation(t.element, scope, name)}]"
    if isinstance(t, _wit.OptionT):
        inner = _annotation(t.inner, scope, name)
        if isinstance(t.inner, _wit.OptionT):
            return f"{name('componentize_py_types', 'Some')}[{inner}] | None"
        return f"{inner} | None"
    if isinstance(t, _wit.TupleT):
        return f"tuple[{', '.join(_annotation(e, scope, name) for e in t.elements)}]"
    if isinstance(t, _wit.ResultT):
        ok = _annotation(t.ok, scope, name)
        if top:  # the ok value is returned, the error raised as Err(...)
            return ok
        err = _annotation(t.err, scope, name)
        return f"{name('componentize_py_types', 'Result')}[{ok}, {err}]"
    if isinstance(t, _wit.Unsupported):
        return "object"
    return name(snake(scope), pascal(t.name))


def _zero(t: _wit.WitType | None, scope: str, name: Namer, *, top: bool = False) -> str:
    if t is None:
        return "None"
    if isinstance(t, _wit.Prim):
        zeros = {"bool": "False", "f32": "0.0", "f64": "0.0", "char": '"\\0"', "string": '""'}
        return zeros.get(t.name, "0")
    if isinstance(t, _wit.ListT):
        return 'b""' if t.element == _wit.Prim("u8") else "[]"
    if isinstance(t, _wit.OptionT):
        return "None"
    if isinstance(t, _wit.TupleT):
        inner = ", ".join(_zero(e, scope, name) for e in t.elements)
        return f"({inner},)" if len(t.elements) == 1 else f"({inner})"
    if isinstance(t, _wit.ResultT):
        ok = _zero(t.ok, scope, name)
        return ok if top else f"{name('componentize_py_types', 'Ok')}({ok})"
    module = snake(scope)
    if isinstance(t, _wit.RecordT):
        fields = ", ".join(_zero(ft, scope, name) for _, ft in t.fields)
        return f"{name(module, pascal(t.name))}({fields})"
    if isinstance(t, _wit.EnumT):
        return f"{name(module, pascal(t.name))}.{snake(t.names[0]).upper()}"
    if isinstance(t, _wit.FlagsT):
        return f"{name(module, pascal(t.name))}(0)"
    if isinstance(t, _wit.VariantT):
        case, payload = t.cases[0]
        value = "" if payload is None else _zero(payload, scope, name)
        return f"{name(module, f'{pascal(t.name)}_{pascal(case)}')}({value})"
    return "None"


def _zero_note(t: _wit.WitType | None) -> str:
    """A comment for zero values that do not speak for themselves."""
    if t is None or isinstance(t, _wit.Prim | _wit.ListT | _wit.OptionT):
        return ""
    return zero_description(t)


def python_files(contract: Contract, hooks: list[str], *, plugin: str) -> dict[str, str]:
    """``plugin.py`` (the author's) and ``app.py`` (the generated shim)."""
    used: set[tuple[str, str]] = set()

    def record(module: str, cls: str) -> str:
        used.add((module, cls))
        return cls

    for hook_name in hooks:  # first pass: which classes does plugin.py need?
        _render_function(contract, hook_name, record)
    counts: dict[str, int] = {}
    for _, cls in used:
        counts[cls] = counts.get(cls, 0) + 1
    aliases = {
        (module, cls): cls
        if counts[cls] == 1 or module == "componentize_py_types"
        else pascal(module) + cls
        for module, cls in used
    }
    funcs = [_render_function(contract, h, lambda m, c: aliases[(m, c)]) for h in hooks]
    if any(isinstance(contract.hooks[h].signature.result, _wit.ResultT) for h in hooks):
        aliases[("componentize_py_types", "Err")] = "Err"
    imports = ["from __future__ import annotations\n\n"] if aliases else []
    by_module: dict[str, list[str]] = {}
    for (module, cls), alias in sorted(aliases.items()):
        by_module.setdefault(module, []).append(cls if alias == cls else f"{cls} as {alias}")
    for module, names in sorted(by_module.items(), key=lambda kv: kv[0] != "componentize_py_types"):
        where = module if module == "componentize_py_types" else f"wit_world.exports.{module}"
        imports.append(f"from {where} import {', '.join(names)}\n")
    classes = []
    for hook_name in hooks:
        hook = contract.hooks[hook_name]
        scope = _wit.kebab(hook.name)
        args = ", ".join(hook.argnames)
        classes.append(
            f"class {pascal(scope)}(exports.{pascal(scope)}):\n"
            f'    """{contract.package.interface(scope)}"""\n\n'
            f"    def {snake(hook.binding.function)}({', '.join(['self', *hook.argnames])}):\n"
            f"        return plugin.{hook.name}({args})\n"
        )
    plugin_py = (
        _PLUGIN_HEAD.format(plugin=plugin, package=contract.package)
        + "\n"
        + ("".join(imports) if imports else "from __future__ import annotations\n")
        + "\n\n"
        + "\n\n".join(funcs)
    )
    app_py = _APP_HEAD + "\n\n" + "\n\n".join(classes)
    return {"plugin.py": plugin_py, "app.py": app_py}


def _render_function(contract: Contract, hook_name: str, name: Namer) -> str:
    hook = contract.hooks[hook_name]
    scope = _wit.kebab(hook.name)
    sig = hook.signature
    params = ", ".join(
        f"{arg}: {_annotation(t, scope, name)}"
        for arg, t in zip(hook.argnames, sig.param_types, strict=True)
    )
    result = _annotation(sig.result, scope, name, top=True)
    extra = ""
    if isinstance(sig.result, _wit.ResultT):
        extra = "Return the ok value; `raise Err(value)` to answer with an error."
    doc = hook_comment(hook, "    ", extra=extra).rstrip("\n").lstrip()
    note = _zero_note(sig.result.ok if isinstance(sig.result, _wit.ResultT) else sig.result)
    zero = _zero(sig.result, scope, name, top=True)
    return (
        f"def {hook.name}({params}) -> {result}:\n"
        f'    """{doc}\n    """\n'
        "    # TODO: implement this hook.\n"
        f"    return {zero}{f'  # {note}' if note else ''}\n"
    )


_PLUGIN_HEAD: Final = '''\
"""Plugin {plugin}: hooks of {package}, in Python.

Each function below implements the hook of the same name, like a pluggy hookimpl: it is
called with the hook's arguments and returns its result. Fill in the bodies; build with
`airssys-plugins build`. componentize-py runs this code in CPython inside the component:
the standard library is there, packages with C extensions are not.
"""
'''

_APP_HEAD: Final = '''\
"""Generated by `airssys-plugins new`: componentize-py's entry point. Do not edit.

componentize-py looks here for one class per exported WIT interface, named like the
interface, with the WIT function as a method; each method calls your function in
plugin.py.
"""

import plugin
from wit_world import exports
'''
