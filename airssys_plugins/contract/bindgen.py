"""WIT -> hookspecs: the Python module ``airssys-plugins bindgen`` writes for a host.

From the functions a world exports (read by :mod:`.wit_json`) it writes pluggy hookspecs
already bound to those functions with :func:`~.mapping.wit_binding`, the attrs records,
``enum.Enum``/``enum.Flag`` classes and ``@variant`` classes their types need, docstrings
from the WIT doc comments, and a ``HookRelay`` Protocol that types ``pm.hook.<name>(...)``
for mypy and IDEs. :func:`relay_module` writes that Protocol for hand-written hookspecs.

The text is generated so that :meth:`.mapping.Contract.from_hookspecs` of the module
gives back the very WIT functions it came from (``tests/test_bindgen.py`` checks it).
"""

from __future__ import annotations

import keyword
import re
import types
import typing
from collections.abc import Callable, Iterable
from typing import Annotated, Any, final

from .. import _attrs as attrs
from .._errors import PluginError
from .annotations import Result, Some, WitPrimitive
from .mapping import Contract, HookContract
from .wit import (
    EnumT,
    FlagsT,
    FuncSig,
    HandleT,
    ListT,
    OptionT,
    Prim,
    RecordT,
    ResourceT,
    ResultT,
    TupleT,
    Unsupported,
    VariantT,
    WitType,
    kebab,
    render_func,
)
from .wit_json import WitFunction, WorldExports

__all__ = ["BindgenError", "Generated", "hookspec_module", "member_hook_name", "relay_module"]


class BindgenError(PluginError, ValueError):
    """The WIT cannot be written as hookspecs (no function hooks can carry, say)."""


@final
@attrs.frozen
class Generated:
    """A generated module: its text, the hooks in it, and the functions left out (with
    the reason for each)."""

    text: str
    hooks: tuple[str, ...]
    skipped: tuple[tuple[str, str], ...]


_PRIM_ANNOTATIONS = {"bool": "bool", "string": "str"}


def _words(name: str) -> list[str]:
    return [w for w in name.lstrip("%").split("-") if w]


def _snake(name: str) -> str:
    ident = "_".join(w.lower() for w in _words(name))
    return f"{ident}_" if keyword.iskeyword(ident) or ident in ("self", "cls") else ident


def _pascal(name: str) -> str:
    return "".join(w[:1].upper() + w[1:].lower() for w in _words(name))


def _upper(name: str) -> str:
    ident = "_".join(w.upper() for w in _words(name))
    return ident if ident.isidentifier() else f"_{ident}"


def _docstring(lines: Iterable[str], indent: str) -> str:
    body = [line.rstrip().replace("\\", "\\\\").replace('"""', '\\"\\"\\"') for line in lines]
    while body and not body[-1]:
        body.pop()
    if not body:
        return ""
    if len(body) == 1:
        return f'{indent}"""{body[0]}"""\n'
    inner = "".join(f"{indent}{line}".rstrip() + "\n" for line in body[1:])
    return f'{indent}"""{body[0]}\n{inner}{indent}"""\n'


class _Names:
    """Module-level Python names, each used once."""

    def __init__(self, reserved: Iterable[str]):
        self.used = set(reserved)

    def take(self, wanted: str, *fallbacks: str) -> str:
        for name in (wanted, *fallbacks):
            if name.isidentifier() and not keyword.iskeyword(name) and name not in self.used:
                self.used.add(name)
                return name
        n = 2
        while f"{wanted}{n}" in self.used:
            n += 1
        self.used.add(f"{wanted}{n}")
        return f"{wanted}{n}"


_RESERVED = {
    "annotations", "attrs", "enum", "pluggy", "typing", "Protocol", "PROJECT", "hookspec",
    "hookimpl", "relay", "plugin_manager", "HookRelay", "Result", "variant", "wit_binding",
    "resource", "Borrow", "Own", "Some", "char", "u8", "u16", "u32", "u64", "s8", "s16", "s32",
    "s64",
    "f32", "f64",
    "bool", "str", "bytes", "list", "tuple", "int", "float", "None",
}  # fmt: skip


_Named = RecordT | VariantT | EnumT | FlagsT | ResourceT


@final
class _Writer:
    def __init__(self, world: WorldExports):
        self.world = world
        self.names = _Names(_RESERVED)
        self.classes: dict[int, str] = {}  # id(named type) -> Python class name
        self.blocks: list[str] = []
        self.aliases: set[str] = set()
        self.by_shape: list[tuple[_Named, str]] = []

    # -- types -------------------------------------------------------------------------------

    def annotation(self, t: WitType | None, *, where: str) -> str:
        if t is None:
            return "None"
        if isinstance(t, Prim):
            ann = _PRIM_ANNOTATIONS.get(t.name)
            if ann is None:
                self.aliases.add(t.name)
                ann = t.name
            return ann
        if isinstance(t, ListT):
            if t.element == Prim("u8"):
                return "bytes"
            return f"list[{self.annotation(t.element, where=where)}]"
        if isinstance(t, TupleT):
            return f"tuple[{', '.join(self.annotation(e, where=where) for e in t.elements)}]"
        if isinstance(t, OptionT):
            if isinstance(t.inner, OptionT) or t.some:  # T | None | None is T | None
                self.aliases.add("Some")
                return f"Some[{self.annotation(t.inner, where=where)}] | None"
            return f"{self.annotation(t.inner, where=where)} | None"
        if isinstance(t, ResultT):
            ok = self.annotation(t.ok, where=where)
            return f"Result[{ok}, {self.annotation(t.err, where=where)}]"
        if isinstance(t, HandleT):
            cls = self.define(t.resource)
            return cls if t.own else f"Borrow[{cls}]"
        if isinstance(t, Unsupported):
            raise BindgenError(f"{where}: uses {t.description}")
        return self.define(t)

    def define(self, t: _Named) -> str:
        """The class of named type ``t`` (defined on first use, after the types it uses)."""
        known = self.classes.get(id(t))
        if known is not None:
            return known
        for other, cls in self.by_shape:  # the same type, defined again in another interface
            # (not a resource: two resources of one name are two types, each its own class)
            if other.name == t.name and other == t and not isinstance(t, ResourceT):
                self.classes[id(t)] = cls
                return cls
        info = self.world.type_info(t)
        owner = info.owner.rsplit("/", 1)[-1].split("@", 1)[0] if info.owner else ""
        cls = self.names.take(_pascal(t.name), _pascal(f"{owner}-{t.name}"))
        self.classes[id(t)] = cls
        self.by_shape.append((t, cls))
        where = f"type {t.name}"
        head = _docstring((info.docs or f"WIT {_kind(t)} `{t.name}`.").splitlines(), "    ")
        wit_name = "" if kebab_ok(cls, t.name) else f'    __wit_name__ = "{t.name}"\n'
        if isinstance(t, ResourceT):
            self.blocks.append(f"@resource\nclass {cls}:\n{head}\n{wit_name}" + self._members(t))
        elif isinstance(t, RecordT):
            rows = []
            for fname, ft in t.fields:
                ann = self.annotation(ft, where=f"{where}, field {fname}")
                doc = info.member_docs.get(fname)
                rows.append(
                    (f"    #: {doc.splitlines()[0]}\n" if doc else "")
                    + f"    {_snake(fname)}: {ann}\n"
                )
            self.blocks.append(f"@attrs.frozen\nclass {cls}:\n{head}\n{wit_name}{''.join(rows)}")
        elif isinstance(t, EnumT | FlagsT):
            base = "enum.Enum" if isinstance(t, EnumT) else "enum.Flag"
            rows = []
            for i, member in enumerate(t.names):
                py = _upper(member)
                if kebab(py) != member.lstrip("%"):
                    raise BindgenError(f"{where}: member {member!r} has no Python name")
                doc = info.member_docs.get(member)
                value = f'"{member}"' if isinstance(t, EnumT) else str(1 << i)
                rows.append(
                    (f"    #: {doc.splitlines()[0]}\n" if doc else "") + f"    {py} = {value}\n"
                )
            self.blocks.append(f"class {cls}({base}):\n{head}\n{wit_name}{''.join(rows)}")
        else:
            self.blocks.append(f"@variant\nclass {cls}:\n{head}{wit_name and chr(10) + wit_name}")
            for case, ct in t.cases:
                case_cls = self.names.take(_pascal(case), f"{cls}{_pascal(case)}")
                payload = (
                    "    pass\n"
                    if ct is None
                    else f"    value: {self.annotation(ct, where=f'{where}, case {case}')}\n"
                )
                doc = info.member_docs.get(case) or f"Case `{case}` of `{t.name}`."
                case_name = "" if kebab_ok(case_cls, case) else f'    __wit_name__ = "{case}"\n'
                if ct is None and not case_name:
                    body = _docstring(doc.splitlines(), "    ")
                else:
                    body = f"{_docstring(doc.splitlines(), '    ')}\n{case_name}"
                    body += "" if ct is None else payload
                self.blocks.append(f"@attrs.frozen\nclass {case_cls}({cls}):\n{body}")
        return cls

    def _members(self, t: ResourceT) -> str:
        """The constructor, methods and static functions of a resource class."""
        where = f"resource {t.name}"
        rows: list[str] = []

        def params(sig: FuncSig, member: str) -> list[str]:
            return [
                f"{_snake(n)}: {self.annotation(pt, where=f'{where}, {member}, parameter {n}')}"
                for n, pt in sig.params
            ]

        if t.constructor is not None:
            rows.append(
                _def("__init__", ["self", *params(t.constructor, "constructor")], "None", ": ...")
            )
        for name, sig in t.methods:
            py = _snake(name)
            if not kebab_ok(py, name):
                raise BindgenError(f"{where}: method {name!r} has no Python name")
            result = self.annotation(sig.result, where=f"{where}, {name}, result")
            rows.append(_def(py, ["self", *params(sig, name)], result, ": ..."))
        for name, sig in t.statics:
            py = _snake(name)
            if not kebab_ok(py, name):
                raise BindgenError(f"{where}: static function {name!r} has no Python name")
            result = self.annotation(sig.result, where=f"{where}, {name}, result")
            rows.append("    @staticmethod\n" + _def(py, params(sig, name), result, ": ..."))
        return "".join(rows) if rows else "    pass\n"

    # -- hooks -------------------------------------------------------------------------------

    def hook(self, name: str, func: WitFunction) -> tuple[str, str]:
        """(hookspec method text, HookRelay method text) for ``func``."""
        where = f"{func.binding}"
        params = [
            (_snake(pname), self.annotation(pt, where=f"{where}, parameter {pname}"))
            for pname, pt in func.signature.params
        ]
        if len({p for p, _ in params}) != len(params):
            raise BindgenError(f"{where}: two parameters have the same Python name")
        result = self.annotation(func.signature.result, where=f"{where}, result")
        shape = f"WIT: `{func.name}: {render_func(func.signature)}`"
        kind, _, rest = func.name.lstrip("[").partition("]")
        if rest:  # a resource's constructor or static function, called without a handle
            member = rest.partition(".")[2]
            what = "the constructor" if kind == "constructor" else f"static function `{member}`"
            shape = (
                f"WIT: {what} of resource `{rest.split('.', 1)[0]}`: "
                f"`{render_func(func.signature)}`"
            )
        located = (
            "at the world's root" if func.interface is None else f"in {_where(func.interface)}"
        )
        doc = [*(func.docs or "").splitlines()]
        doc = [*doc, "", shape, f"{located}."] if doc else [shape, f"{located}."]
        pieces = ["self", *(f"{p}: {a}" for p, a in params)]
        spec = (
            f'    @hookspec\n    @wit_binding("{func.binding}")\n'
            f"{_def(name, pieces, result, ':')}{_docstring(doc, '        ')}"
        )
        ret = func.signature.result
        one = result
        if isinstance(ret, ResultT):  # the hook returns the ok payload, err raises
            one = self.annotation(ret.ok, where=where)
        keyword_only = ["self", "*", *pieces[1:]] if params else ["self"]
        return spec, _def(name, keyword_only, f"list[{one}]", ": ...")


def _where(interface: str) -> str:
    """An interface as a docstring names it: its full name, or an inline one's export."""
    return interface if "/" in interface else f"the inline interface `{interface}`"


def _def(name: str, params: list[str], result: str, end: str) -> str:
    """A method's ``def`` line(s), one parameter a line where one line would be too long."""
    line = f"    def {name}({', '.join(params)}) -> {result}{end}\n"
    if len(line) <= 100:
        return line
    rows = "".join(f"        {p},\n" for p in params)
    return f"    def {name}(\n{rows}    ) -> {result}{end}\n"


def kebab_ok(py_name: str, wit_name: str) -> bool:
    """Whether the mapping's ``kebab(py_name)`` gives back ``wit_name``."""
    try:
        return kebab(py_name) == wit_name.lstrip("%")
    except ValueError:
        return False


def _kind(t: _Named) -> str:
    kinds = {
        RecordT: "record",
        VariantT: "variant",
        EnumT: "enum",
        FlagsT: "flags",
        ResourceT: "resource",
    }
    return kinds[type(t)]


def member_hook_name(wit_name: str) -> str:
    """The hook name of a WIT function: ``add-one`` -> ``add_one``; a resource's
    constructor ``[constructor]blob`` -> ``new_blob``, its static function
    ``[static]blob.merge`` -> ``blob_merge``."""
    kind, _, rest = wit_name.lstrip("[").partition("]")
    if not rest:
        return _snake(wit_name)
    resource, _, member = rest.partition(".")
    if kind == "constructor":
        return _snake(f"new-{resource}")
    return _snake(f"{resource}-{member}")


def _hook_names(functions: Iterable[WitFunction]) -> list[str]:
    funcs = list(functions)
    plain = [member_hook_name(f.name) for f in funcs]
    names = []
    for f, name in zip(funcs, plain, strict=True):
        if plain.count(name) > 1 and f.interface is not None:
            iface = f.interface.rsplit("/", 1)[-1].split("@", 1)[0]
            name = f"{_snake(iface)}_{name}"
        names.append(name)
    # the same interface in two versions (`test:dep/test@0.1.0` and `@0.2.0`): the version
    # tells their functions apart
    before = list(names)
    for i, (f, name) in enumerate(zip(funcs, before, strict=True)):
        if before.count(name) > 1 and f.interface is not None and "@" in f.interface:
            version = re.sub(r"\W", "_", f.interface.rsplit("@", 1)[1])
            names[i] = f"{name}_v{version}"
    return names


def hookspec_module(
    world: WorldExports, *, project: str | None = None, source: str = "the WIT"
) -> Generated:
    """The Python module of hookspecs for the functions ``world`` exports."""
    if project is None:  # `<project>:hooks` is what Contract.from_hookspecs publishes
        namespace, _, name = world.package.split("@", 1)[0].partition(":")
        project = _snake(namespace if name == "hooks" else name)
    if not project.isidentifier():
        raise BindgenError(f"project name {project!r} is not a Python identifier; give --project")
    writer = _Writer(world)
    skipped = list(world.skipped)
    by_class: dict[str | None, list[str]] = {}
    relay: list[str] = []
    hooks: list[str] = []
    class_docs: dict[str | None, str | None] = {}
    for name, func in zip(_hook_names(world.functions), world.functions, strict=True):
        saved = (len(writer.blocks), dict(writer.classes), set(writer.names.used))
        shapes = list(writer.by_shape)
        try:
            spec, call = writer.hook(name, func)
        except BindgenError as exc:
            writer.blocks = writer.blocks[: saved[0]]
            writer.classes, writer.names.used = saved[1], saved[2]
            writer.by_shape = shapes
            skipped.append((func.binding, str(exc).split(": ", 1)[-1]))
            continue
        if name in hooks:
            skipped.append((func.binding, f"hook name {name!r} is taken"))
            continue
        hooks.append(name)
        by_class.setdefault(func.interface, []).append(spec)
        class_docs.setdefault(func.interface, func.interface_docs)
        relay.append(call)
    if not hooks:
        reasons = "".join(f"\n  - {w}: {r}" for w, r in skipped) or " (it exports nothing)"
        raise BindgenError(
            f"world {world.world} of {world.package} exports no function hooks can carry{reasons}"
        )
    out = [
        f'"""Hookspecs for world `{world.world}` of `{world.package}`, generated by\n'
        f"`airssys-plugins bindgen` from {source}.\n\n"
        "Do not edit: regenerate instead. Load a component built for this world with\n"
        "``PluginHost(plugin_manager()).load(...)``; ``relay(pm)`` is ``pm.hook``, typed.\n"
    ]
    if world.docs:
        out.append("\n" + "\n".join(world.docs.splitlines()) + "\n")
    out.append('"""\n\nfrom __future__ import annotations\n\n')
    uses_enum = any(b.startswith("class ") for b in writer.blocks)
    uses_attrs = any(b.startswith("@attrs") for b in writer.blocks)
    uses_variant = any(b.startswith("@variant") for b in writer.blocks)
    uses_resource = any(b.startswith("@resource") for b in writer.blocks)
    if uses_enum:
        out.append("import enum\n")
    out.append("from typing import Protocol, cast\n\n")
    if uses_attrs:
        out.append("import attrs\n")
    out.append("import pluggy\n\n")
    body = "\n\n".join(writer.blocks) + "\n\n" if writer.blocks else ""
    imported = sorted(
        {
            *writer.aliases,
            "wit_binding",
            *(["variant"] if uses_variant else []),
            *(["resource"] if uses_resource else []),
            *(["Borrow"] if "Borrow[" in "".join(relay) + body + _all_specs(by_class) else []),
            *(["Result"] if "Result[" in "".join(relay) + body or _uses_result(by_class) else []),
        },
        key=lambda n: (n != "Result", re.sub(r"\d+", lambda m: m.group().zfill(4), n.lower())),
    )
    line = f"from airssys_plugins import {', '.join(imported)}\n\n"
    if len(line) > 101:
        line = (
            "from airssys_plugins import (\n" + "".join(f"    {n},\n" for n in imported) + ")\n\n"
        )
    out.append(line)
    out.append(
        f'PROJECT = "{project}"\n'
        "hookspec = pluggy.HookspecMarker(PROJECT)\n"
        "hookimpl = pluggy.HookimplMarker(PROJECT)\n\n\n"
    )
    out.append(body)
    class_names: list[str] = []
    for iface, specs in by_class.items():
        short = "root" if iface is None else iface.rsplit("/", 1)[-1].split("@", 1)[0]
        cls = writer.names.take(f"{_pascal(short)}Hooks", f"{_pascal(short)}InterfaceHooks")
        class_names.append(cls)
        what = "exported at the world's root" if iface is None else f"of {_where(iface)}"
        doc = [*(class_docs.get(iface) or "").splitlines()]
        doc = [*doc, "", f"The functions {what}."] if doc else [f"The functions {what}."]
        out.append(f"class {cls}:\n{_docstring(doc, '    ')}\n" + "\n".join(specs) + "\n\n")
    everything = writer.names.take(f"{_pascal(world.world)}Hooks", "WorldHooks")
    out.append(
        f"class {everything}({', '.join(class_names)}):\n"
        f'    """Every hook of world `{world.world}`."""\n\n\n'
        "class HookRelay(Protocol):\n"
        '    """``pm.hook`` with the hooks of this module typed (see :func:`relay`)."""\n\n'
        + "".join(relay)
        + "\n\n"
        "def relay(pm: pluggy.PluginManager) -> HookRelay:\n"
        '    """``pm.hook``, typed: ``relay(pm).add(x=1, y=2)`` is checked by mypy."""\n'
        "    return cast(HookRelay, pm.hook)\n\n\n"
        "def plugin_manager() -> pluggy.PluginManager:\n"
        f'    """A PluginManager for project {project!r} with these hookspecs added."""\n'
        "    pm = pluggy.PluginManager(PROJECT)\n"
        f"    pm.add_hookspecs({everything})\n"
        "    return pm\n"
    )
    return Generated("".join(out), tuple(hooks), tuple(skipped))


def _all_specs(by_class: dict[str | None, list[str]]) -> str:
    return "".join(spec for specs in by_class.values() for spec in specs)


def _uses_result(by_class: dict[str | None, list[str]]) -> bool:
    return any("Result[" in spec for specs in by_class.values() for spec in specs)


# --------------------------------------------------------------------------- hand-written


def relay_module(contract: Contract, specs: object, *, spec_ref: str) -> str:
    """A module with a ``HookRelay`` Protocol typing ``pm.hook`` for hand-written hookspecs
    ``specs`` (``spec_ref`` is how the module imports them, ``package.module``)."""
    module_name = spec_ref.partition(":")[0]
    imports: set[str] = set()
    rows = []
    functions = _functions(specs)
    for name, hook in sorted(contract.hooks.items()):
        func = functions.get(name)
        if func is None:
            continue
        rows.append(_relay_method(name, hook, func, imports, module_name))
    imported = "".join(f"import {m}\n" for m in sorted(imports))
    return (
        f'"""``pm.hook`` typed for the hookspecs in `{spec_ref}`, generated by\n'
        "`airssys-plugins bindgen --stub-for`. Do not edit: regenerate instead.\n\n"
        f"    from {{this module}} import relay\n"
        "    relay(pm).some_hook(arg=...)  # checked by mypy\n"
        '"""\n\nfrom __future__ import annotations\n\n'
        "from typing import Protocol, cast\n\n"
        "import pluggy\n"
        f"{imported}\n\n"
        "class HookRelay(Protocol):\n"
        f'    """``pm.hook`` with the hooks of `{spec_ref}` typed."""\n\n' + "".join(rows) + "\n\n"
        "def relay(pm: pluggy.PluginManager) -> HookRelay:\n"
        '    """``pm.hook``, typed."""\n'
        "    return cast(HookRelay, pm.hook)\n"
    )


def _functions(specs: object) -> dict[str, Callable[..., Any]]:
    hook_relay = getattr(specs, "hook", None)
    if hook_relay is not None and isinstance(getattr(specs, "project_name", None), str):
        return {
            n: c.spec.function
            for n, c in vars(hook_relay).items()
            if getattr(c, "spec", None) is not None
        }
    return {n: f for n in dir(specs) if callable(f := getattr(specs, n, None))}


def _relay_method(
    name: str,
    hook: HookContract,
    func: Callable[..., Any],
    imports: set[str],
    module_name: str,
) -> str:
    hints = typing.get_type_hints(func, include_extras=True)
    params = [f"{p}: {_py(hints[p], imports, module_name)}" for p in hook.argnames if p in hints]
    ret = hints.get("return")
    if hook.unwrap_result:
        ret = typing.get_args(ret)[0]
    one = _py(ret, imports, module_name)
    if hook.firstresult:  # the first non-None answer, or None
        returns = one if one == "None" or one.endswith(" | None") else f"{one} | None"
    else:
        returns = f"list[{one}]"
    if hook.historic:
        return f"    {name}: pluggy.HookCaller\n"
    star = f"*, {', '.join(params)}" if params else ""
    sep = ", " if star else ""
    return f"    def {name}(self{sep}{star}) -> {returns}: ...\n"


def _py(ann: Any, imports: set[str], module_name: str) -> str:
    """A Python annotation as source text, importing the modules it names."""
    if ann is None or ann is type(None):
        return "None"
    origin = typing.get_origin(ann)
    args = typing.get_args(ann)
    if origin is Annotated:
        if any(isinstance(m, WitPrimitive) for m in ann.__metadata__):
            return _py(args[0], imports, module_name)
        return _py(args[0], imports, module_name)
    if origin in (typing.Union, types.UnionType):
        return " | ".join(_py(a, imports, module_name) for a in args)
    if origin is Result or origin is Some:
        imports.add("airssys_plugins")
        inner = ", ".join(_py(a, imports, module_name) for a in args)
        return f"airssys_plugins.{origin.__name__}[{inner}]"
    if origin in (list, tuple, dict):
        return f"{origin.__name__}[{', '.join(_py(a, imports, module_name) for a in args)}]"
    if isinstance(ann, type):
        if ann.__module__ == "builtins":
            return ann.__qualname__
        imports.add(ann.__module__)
        return f"{ann.__module__}.{ann.__qualname__}"
    return re.sub(r"\btyping\.", "", repr(ann))
