"""Hookspecs <-> WIT: the contract between a host application and its components.

A :class:`Contract` is built from pluggy hookspecs (their annotations give the WIT types)
and says, for every hook, which WIT function a component exports to implement it:

* by default, hook ``detect_language`` of package ``textpipe:hooks@1.0.0`` is function
  ``detect-language`` in interface ``textpipe:hooks/detect-language@1.0.0``: one interface
  per hook, so a component implements any subset of the hooks by exporting only those
  interfaces;
* a hookspec can instead be *bound* to a function of an existing WIT interface
  (``docs:adder/add@0.1.0#add``) or to a function exported at a component's root (``add``),
  so that components built by others for a published WIT package plug in unchanged.

No wasmtime here: a component's exports arrive as :mod:`airssys_plugins.contract.wit` types.
"""

from __future__ import annotations

import builtins
import dataclasses
import enum
import functools
import inspect
import sys
import types
import typing
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Annotated, Any, Final, final

from .. import _attrs as attrs
from .._errors import HookspecError, Mismatch, PluginError
from . import wit as _wit
from .annotations import HandleKind, Result, Some, WitPrimitive, is_resource, is_variant

__all__ = [
    "Contract",
    "HookContract",
    "HookOptions",
    "WitBinding",
    "WitBindingError",
    "resource_type",
    "wit_binding",
]

_BINDING_ATTR = "__airssys_wit_binding__"


_BINDING_FORMS = (
    "write `namespace:package/interface@1.2.3#function` (a function of an exported "
    "interface), `name#function` (a function of an inline interface, `export name: "
    "interface { ... }`) or `function` (a function exported at the component's root); a "
    "resource's constructor or static function is `...#[constructor]res` or "
    "`...#[static]res.function`"
)


class WitBindingError(PluginError, ValueError):
    """A :func:`wit_binding` target (or a ``bindings=`` value) that names no WIT function;
    the message lists the accepted forms."""


def _member_ok(func: str) -> bool:
    """Whether ``func`` is a WIT function name: ``add-one``, or a resource member
    ``[constructor]res``, ``[method]res.name``, ``[static]res.name``."""
    if not func.startswith("["):
        return _wit.is_identifier(func)
    kind, sep, rest = func[1:].partition("]")
    if not sep:
        return False
    if kind == "constructor":
        return _wit.is_identifier(rest)
    resource, dot, member = rest.partition(".")
    return (
        kind in ("method", "static")
        and bool(dot)
        and _wit.is_identifier(resource)
        and _wit.is_identifier(member)
    )


@attrs.frozen
class WitBinding:
    """Where a hook lives in WIT: ``interface`` (full name; the export name of an inline
    interface; ``None`` for the component root) and ``function``."""

    interface: str | None
    function: str

    @classmethod
    def parse(cls, text: str) -> WitBinding:
        """``docs:adder/add@0.1.0#add`` (function of an interface), ``result#list-u8`` (of
        an inline interface) or ``add`` (root export); :class:`WitBindingError` else."""
        if not isinstance(text, str):
            raise WitBindingError(f"WIT binding {text!r} is not a string; {_BINDING_FORMS}")
        iface, sep, func = text.rpartition("#")
        if not sep:
            iface, func = "", text
        if not func or func != func.strip():
            raise WitBindingError(f"WIT binding {text!r} names no function; {_BINDING_FORMS}")
        if not _member_ok(func):
            raise WitBindingError(
                f"WIT binding {text!r}: {func!r} is not a WIT function name; {_BINDING_FORMS}"
            )
        if sep and (
            not iface
            or (_wit.split_interface_name(iface) is None and not _wit.is_identifier(iface))
        ):
            raise WitBindingError(
                f"WIT binding {text!r}: {iface!r} is neither a full interface name nor the "
                f"name of an inline interface; {_BINDING_FORMS}"
            )
        return cls(iface.lstrip("%") or None, func.lstrip("%"))

    @property
    def inline(self) -> bool:
        """Whether the interface is an inline one (``export name: interface { ... }``)."""
        return self.interface is not None and _wit.split_interface_name(self.interface) is None

    @property
    def member(self) -> tuple[str, str, str | None] | None:
        """``(kind, resource, member)`` for a resource's function (``("constructor",
        "blob", None)``, ``("static", "blob", "merge")``), else None."""
        if not self.function.startswith("["):
            return None
        kind, _, rest = self.function[1:].partition("]")
        resource, _, member = rest.partition(".")
        return kind, resource, member or None

    def __str__(self) -> str:
        return self.function if self.interface is None else f"{self.interface}#{self.function}"


def wit_binding(target: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Bind a hookspec to an existing WIT function instead of the generated interface.

    ``target`` is ``namespace:package/interface@version#function``, or just ``function``
    for a function a component exports at its root::

        @hookspec
        @wit_binding("docs:adder/add@0.1.0#add")
        def add(self, x: u32, y: u32) -> u32: ...

    Parameters bind by position; the annotations must map to the WIT function's types.
    """
    binding = WitBinding.parse(target)

    def mark(func: Callable[..., Any]) -> Callable[..., Any]:
        setattr(func, _BINDING_ATTR, binding)
        return func

    return mark


@attrs.frozen
class HookContract:
    """One hook: its pluggy argument names, WIT signature and where components export it."""

    name: str
    argnames: tuple[str, ...]
    signature: _wit.FuncSig
    binding: WitBinding
    firstresult: bool = False
    historic: bool = False
    # ``-> Result[T, E]``: ok is the return value, err raises PluginResultError.
    unwrap_result: bool = False
    doc: str | None = None


@attrs.frozen
class Contract:
    """The WIT side of a set of hookspecs. Build with :meth:`from_hookspecs`."""

    package: _wit.PackageId
    hooks: Mapping[str, HookContract]

    @classmethod
    def from_hookspecs(
        cls,
        specs: object,
        *,
        package: str | _wit.PackageId | None = None,
        project_name: str | None = None,
        bindings: Mapping[str, str] | None = None,
    ) -> Contract:
        """Build the contract of ``specs``: a pluggy ``PluginManager`` (its added hookspecs),
        or a class or module holding ``@hookspec`` functions.

        ``package`` defaults to ``<project>:hooks@1.0.0``. ``bindings`` maps hook names to
        WIT functions (same syntax as :func:`wit_binding`) for hookspecs you cannot edit.
        """
        found = _find_hookspecs(specs, project_name)
        if not found.functions:
            raise HookspecError(
                f"{specs!r} holds no hookspecs marked for project {found.project!r}"
            )
        if package is None:
            pkg = _wit.PackageId(_wit.kebab(found.project), "hooks", "1.0.0")
        elif isinstance(package, str):
            pkg = _wit.PackageId.parse(package)
        else:
            pkg = package
        extra = {k: WitBinding.parse(v) for k, v in (bindings or {}).items()}
        unknown = set(extra) - set(found.functions)
        if unknown:
            raise HookspecError(
                f"bindings name unknown hook(s) {sorted(unknown)}; "
                f"hooks are {sorted(found.functions)}"
            )
        problems: list[HookspecError] = []
        hooks: dict[str, HookContract] = {}
        for name, (func, opts) in sorted(found.functions.items()):
            try:
                hooks[name] = _hook_contract(name, func, opts, pkg, extra.get(name))
            except HookspecError as exc:
                problems.append(exc)
        if problems:
            raise _all_problems(problems, f"the hookspecs of {_what(specs, found.project)}")
        return cls(pkg, hooks)

    def wit(self, *, world: str = "plugin", hooks: Iterable[str] | None = None) -> str:
        """WIT text for this contract: one interface per generated hook, and a world that
        exports the chosen ``hooks`` (all by default)."""
        chosen = sorted(self.hooks) if hooks is None else list(hooks)
        unknown = [h for h in chosen if h not in self.hooks]
        if unknown:
            raise ValueError(f"unknown hook(s) {unknown}; hooks are {sorted(self.hooks)}")
        interfaces: list[_wit.Interface] = []
        exports: list[str] = []
        for name, hook in sorted(self.hooks.items()):
            if not self.is_generated(hook):
                continue
            iface = _wit.kebab(name)
            interfaces.append(_interface(iface, hook))
            if name in chosen:
                exports.append(iface)
        bound = [
            f"Hook `{h.name}` is bound to {h.binding}: {h.signature.render()}"
            for h in self.hooks.values()
            if not self.is_generated(h)
        ]
        if hooks is None:
            doc = (
                "A component that implements every hook. "
                "Implement a subset with a world of your own."
            )
        else:
            doc = f"A component that implements {', '.join(chosen)}."
        world_ = _wit.World(world, tuple(exports), (doc,))
        return _wit.render_package(self.package, interfaces, comments=bound, world=world_)

    def bound_wit(self, *, world: str = "bound") -> str:
        """WIT of every function the hooks are bound to, as components must export them:
        the interfaces grouped by package (the first package at the top, any other in a
        nested ``package ... { }`` block) and a ``world`` that exports them, root-bound
        hooks as functions of the world. For a WIT-first contract (``wit_binding``, or a
        module from ``airssys-plugins bindgen``) this is the WIT it was written for;
        ``airssys-plugins wit --bound`` prints it."""
        by_interface: dict[str, list[HookContract]] = {}
        root: list[HookContract] = []
        for hook in sorted(self.hooks.values(), key=lambda h: h.name):
            if hook.binding.interface is None:
                root.append(hook)
            else:
                by_interface.setdefault(hook.binding.interface, []).append(hook)
        packages: dict[str, list[_wit.Interface]] = {}
        inline: dict[str, _wit.Interface] = {}
        for full, hooks in by_interface.items():
            split = _wit.split_interface_name(full)
            if split is None:  # an inline interface: written inside the world
                inline[full] = _bound_interface(full, hooks)
                continue
            package = split[0] if split[2] is None else f"{split[0]}@{split[2]}"
            packages.setdefault(package, []).append(_bound_interface(split[1], hooks))
        top = next(iter(packages), str(self.package))
        own = packages.pop(top, [])
        out = [f"package {top};\n"]
        out.extend("\n" + _wit.render_interface(i) for i in own)
        out.append(f"\nworld {_wit.render_ident(world)} {{\n")
        seen: set[str] = set()
        for named in _wit.interface_types(h.signature for h in root):
            if named.name not in seen:
                seen.add(named.name)
                out.append(_wit.render_typedef(named) + "\n")
        own_names = {i.name for i in own}
        for full in by_interface:  # the top package's own interfaces by their short name
            split = _wit.split_interface_name(full)
            if split is None:
                body = _wit.render_interface(inline[full]).split("{\n", 1)[1]
                lines = body.removesuffix("}\n").splitlines()
                indented = "".join(f"  {line}".rstrip() + "\n" for line in lines)
                out.append(f"  export {_wit.render_ident(full)}: interface {{\n{indented}  }}\n")
                continue
            mine = split[1] in own_names and full == _package_interface(top, split[1])
            out.append(f"  export {_wit.render_ident(split[1]) if mine else full};\n")
        out.extend(
            f"  export {_wit.render_ident(h.binding.function)}: {h.signature.render()};\n"
            for h in root
        )
        out.append("}\n")
        for package, interfaces in packages.items():
            body = "\n".join(_wit.render_interface(i) for i in interfaces)
            indented = "".join(f"  {line}".rstrip() + "\n" for line in body.splitlines())
            out.append(f"\npackage {package} {{\n{indented}}}\n")
        return "".join(out)

    def is_generated(self, hook: HookContract) -> bool:
        """Whether ``hook`` lives in this contract's own package (not a WIT-first binding)."""
        if hook.binding.interface is None:
            return False
        split = _wit.split_interface_name(hook.binding.interface)
        return split is not None and split[0] == f"{self.package.namespace}:{self.package.name}"

    def check(
        self, hook: HookContract, actual: _wit.FuncSig | None, actual_interface: str | None
    ) -> list[Mismatch]:
        """Compare one hook with the function a component exports for it
        (``actual_interface`` is the interface it was found in, any version)."""
        # the expected signature is rendered only for a mismatch: most checks pass
        if actual is None:
            return [
                Mismatch(
                    hook.name,
                    hook.signature.render(expanded=True),
                    "(not exported)",
                    f"{hook.binding} is missing",
                )
            ]
        where = (
            hook.binding.function
            if actual_interface is None
            else f"{actual_interface}#{hook.binding.function}"
        )
        problems: list[Mismatch] = []
        asynchronous = _wit.async_parts(actual)
        if asynchronous:
            # wasmtime-py can neither call an async-lifted export nor pass streams, futures
            # or error-contexts: say so here, not as a trap on the first call.
            return [
                Mismatch(
                    hook.name,
                    hook.signature.render(expanded=True),
                    actual.render(expanded=True),
                    f"{where} uses component-model async ({', '.join(asynchronous)}), which "
                    "the wasmtime-py runtime cannot call; export a plain (sync) `func` "
                    "without streams, futures or error-context for this hook",
                )
            ]
        expected_version = _interface_version(hook.binding.interface)
        actual_version = _interface_version(actual_interface)
        if not _wit.version_compatible(expected_version, actual_version):
            problems.append(
                Mismatch(
                    hook.name,
                    _version_text(expected_version),
                    _version_text(actual_version),
                    f"{where}: incompatible package version",
                )
            )
        if actual != hook.signature:
            problems.append(
                Mismatch(
                    hook.name,
                    hook.signature.render(expanded=True),
                    actual.render(expanded=True),
                    f"{where}: {_describe_difference(hook.signature, actual)}",
                )
            )
        return problems


def _bound_interface(name: str, hooks: Sequence[HookContract]) -> _wit.Interface:
    """The interface ``name`` the ``hooks`` are bound to: their functions, and the
    resources whose constructors or static functions some of them are bound to."""
    functions = tuple((h.binding.function, h.signature) for h in hooks if not h.binding.member)
    known: dict[str, _wit.ResourceT] = {
        t.name: t
        for t in _wit.interface_types(h.signature for h in hooks)
        if isinstance(t, _wit.ResourceT)
    }
    members: dict[str, list[HookContract]] = {}
    for hook in hooks:
        member = hook.binding.member
        if member is not None:
            members.setdefault(member[1], []).append(hook)
    resources = []
    for res_name, bound in members.items():
        found = known.get(res_name)
        ctor = found.constructor if found is not None else None
        methods = list(found.methods) if found is not None else []
        statics = dict(found.statics) if found is not None else {}
        for hook in bound:
            kind, _, member_name = hook.binding.member or ("", "", None)
            if kind == "constructor" and ctor is None:
                ctor = _wit.FuncSig(hook.signature.params, None)
            elif kind == "static" and member_name is not None:
                statics.setdefault(member_name, hook.signature)
            elif (
                kind == "method"
                and member_name is not None
                and all(n != member_name for n, _ in methods)
            ):
                sig = _wit.FuncSig(hook.signature.params[1:], hook.signature.result)
                methods.append((member_name, sig))
        res = _wit.ResourceT(res_name, docs=found.docs if found is not None else ())
        res.complete(ctor, tuple(methods), tuple(statics.items()))
        resources.append(res)
    return _wit.Interface(name, functions, resources=tuple(resources))


def _package_interface(package: str, name: str) -> str:
    base, _, version = package.partition("@")
    return f"{base}/{name}@{version}" if version else f"{base}/{name}"


def _version_text(version: str | None) -> str:
    return "unversioned" if version is None else f"version {version}"


def _interface_version(interface: str | None) -> str | None:
    if interface is None:
        return None
    split = _wit.split_interface_name(interface)
    return None if split is None else split[2]


def _describe_difference(expected: _wit.FuncSig, actual: _wit.FuncSig) -> str:
    if len(expected.params) != len(actual.params):
        return f"takes {len(actual.params)} parameter(s), the hook passes {len(expected.params)}"
    for (name, et), (aname, at) in zip(expected.params, actual.params, strict=True):
        if et != at:
            return (
                f"parameter {name!r} (component calls it {aname!r}) has type "
                f"{_wit.render_type_expanded(at)}, expected "
                f"{_wit.render_type_expanded(et)}{_resource_note(at)}"
            )
    if expected.result != actual.result:
        return (
            f"the result has type {_show_result(actual.result)}, expected "
            f"{_show_result(expected.result)}{_resource_note(actual.result)}"
        )
    return "result type differs"


def _show_result(t: _wit.WitType | None) -> str:
    return "(none)" if t is None else _wit.render_type_expanded(t)


def _resource_note(t: _wit.WitType | None) -> str:
    handle = next(_wit.resources_in(t), None)
    if handle is None:
        return ""
    kind = "Own" if handle.own else "Borrow"
    return (
        f" ({_wit.render_type_expanded(handle)} is a resource handle: annotate it {kind}[T] "
        f"with T a @resource class named {handle.resource.name!r})"
    )


def _interface(iface: str, hook: HookContract) -> _wit.Interface:
    """The WIT interface of a generated hook; HookspecError where WIT cannot name its types."""
    notes = []
    if hook.firstresult:
        notes.append("firstresult: the first non-none answer wins")
    if hook.historic:
        notes.append("historic: replayed to plugins registered later")
    suffix = f" ({'; '.join(notes)})" if notes else ""
    docs = [f"Hook `{hook.name}`{suffix}.", *(hook.doc.splitlines() if hook.doc else ())]
    seen: dict[str, _wit.NamedType] = {}
    for named in _wit.interface_types([hook.signature]):
        if named.name == hook.binding.function:
            raise HookspecError(
                f"hook {hook.name!r}: type {named.name!r} has the same WIT name as the "
                "hook's function, which WIT forbids in one interface; rename the Python "
                "class",
                hook=hook.name,
            )
        prev = seen.setdefault(named.name, named)
        if prev is not named and (
            prev != named or getattr(prev, "py", None) is not getattr(named, "py", None)
        ):
            raise HookspecError(
                f"hook {hook.name!r}: two different types are both named {named.name!r} "
                "in WIT; rename one of the Python classes",
                hook=hook.name,
            )
    return _wit.Interface(iface, ((hook.binding.function, hook.signature),), tuple(docs))


# --------------------------------------------------------------------------- hookspecs


@attrs.frozen
class _Found:
    project: str
    functions: dict[str, tuple[Callable[..., Any], Mapping[str, Any]]]


def _find_hookspecs(specs: object, project_name: str | None) -> _Found:
    hook_relay = getattr(specs, "hook", None)
    project = getattr(specs, "project_name", None)
    if hook_relay is not None and isinstance(project, str):  # a PluginManager
        functions: dict[str, tuple[Callable[..., Any], Mapping[str, Any]]] = {}
        for name, caller in vars(hook_relay).items():
            spec = getattr(caller, "spec", None)
            if spec is not None:
                functions[name] = (spec.function, spec.opts)
        return _Found(project, functions)
    functions = {}
    detected = project_name
    for name in dir(specs):
        func = getattr(specs, name, None)
        if not callable(func):
            continue
        for attr, opts in vars(func).items() if hasattr(func, "__dict__") else ():
            if not attr.endswith("_spec") or not isinstance(opts, dict):
                continue
            proj = attr[: -len("_spec")]
            if detected is None:
                detected = proj
            if proj == detected:
                functions[name] = (func, opts)
    return _Found(detected or "unknown", functions)


def function_signature(
    name: str, func: Callable[..., Any], *, kind: str = "hook"
) -> tuple[tuple[str, ...], _wit.FuncSig, bool]:
    """Map a Python function's annotations to a WIT signature.

    Returns (Python argument names, WIT signature, whether the return is a top-level
    ``Result`` to unwrap). ``kind`` names the thing in error messages (hook, host function).
    """
    try:
        hints = _type_hints(func)
    except Exception as exc:
        raise HookspecError(
            f"{kind} {name!r}: cannot resolve its annotations ({exc}); define the types it "
            "uses at module level",
            hook=name,
        ) from exc
    sig = inspect.signature(func)
    params = list(sig.parameters.values())
    if params and params[0].name in ("self", "cls") and "." in func.__qualname__:
        params = params[1:]
    wit_params: list[tuple[str, _wit.WitType]] = []
    problems: list[HookspecError] = []  # every parameter's and the return's, at once
    for p in params:
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            problems.append(
                HookspecError(
                    f"{kind} {name!r}, parameter {p.name!r}: *args/**kwargs cannot be mapped "
                    "to WIT; declare each argument",
                    hook=name,
                    parameter=p.name,
                )
            )
            continue
        if p.name not in hints:
            problems.append(
                HookspecError(
                    f"{kind} {name!r}, parameter {p.name!r} has no annotation; annotate it "
                    "(e.g. `text: str`) so it can be mapped to WIT",
                    hook=name,
                    parameter=p.name,
                )
            )
            continue
        where = f"{kind} {name!r}, parameter {p.name!r}"
        try:
            wit_params.append((_param_name(name, p.name), _map(hints[p.name], where, name, p.name)))
        except HookspecError as exc:
            problems.append(exc)
    result = None
    if "return" not in hints:
        problems.append(
            HookspecError(
                f"{kind} {name!r} has no return annotation; annotate it (`-> None` if it "
                "returns nothing)",
                hook=name,
                parameter="return",
            )
        )
        ret_ann = None
    else:
        ret_ann = hints["return"]
        try:
            if ret_ann is not None and ret_ann is not type(None):
                result = _map(ret_ann, f"{kind} {name!r}, return value", name, "return")
        except HookspecError as exc:
            problems.append(exc)
    if problems:
        raise _all_problems(problems, f"{kind} {name!r}")
    unwrap = isinstance(result, _wit.ResultT) and typing.get_origin(ret_ann) is Result
    return tuple(p.name for p in params), _wit.FuncSig(tuple(wit_params), result), unwrap


def _type_hints(func: Callable[..., Any]) -> dict[str, Any]:
    """``typing.get_type_hints(func, include_extras=True)``, for the annotations hookspecs
    have, without typing's cost. Under ``from __future__ import annotations`` each
    annotation is a string, and typing compiles every string it evaluates, again for
    every function (about 8 µs each, most of a contract's making):

    - a plain name (``x: u32``, ``-> Point``) is looked up in the function's globals and
      the builtins;
    - any other string (``list[str]``, ``str | None``, ``Result[u32, str]``) is evaluated
      in the function's globals from code compiled once per process for that text;
    - a value that is not an annotation object, or that still holds a string inside
      (``list["Point"]``), and anything that fails to evaluate, goes through typing
      itself: its result, and its errors, are what this returns then."""
    annotations = getattr(func, "__annotations__", None) or {}
    inner = func  # a decorated function's names are those of the function it wraps
    while hasattr(inner, "__wrapped__"):
        inner = inner.__wrapped__
    namespace = getattr(inner, "__globals__", {})
    hints: dict[str, Any] = {}
    for name, annotation in annotations.items():
        if not isinstance(annotation, str):
            return typing.get_type_hints(func, include_extras=True)
        if annotation == "None":
            hints[name] = type(None)
            continue
        value = _evaluated(annotation, namespace)
        if value is _MISSING or not _settled(value):
            return typing.get_type_hints(func, include_extras=True)
        hints[name] = value
    return hints


def _evaluated(annotation: str, first: Mapping[str, Any], second: Any = None) -> Any:
    """What typing evaluates ``annotation`` to, names looked up in ``first``, then in
    ``second`` (a class, for its own names), then the builtins; ``_MISSING`` if it fails.
    A plain name is looked up; any other text is evaluated from code compiled once."""
    if annotation.isidentifier():
        value = first.get(annotation, _MISSING)
        if value is _MISSING and second is not None:
            value = second.__dict__.get(annotation, _MISSING)
        if value is _MISSING:
            value = getattr(builtins, annotation, _MISSING)
        return value
    try:
        if second is None:
            return eval(_annotation_code(annotation), first)  # type: ignore[arg-type]
        # typing's order for a class: its own names as globals, its module's as locals
        return eval(_annotation_code(annotation), dict(vars(second)), first)
    except Exception:
        return _MISSING


_MISSING: Final = object()


def _class_type_hints(cls: type) -> dict[str, Any]:
    """``typing.get_type_hints(cls, include_extras=True)`` for a record class, as
    :func:`_type_hints` is for a function: each class of the MRO's annotations, evaluated
    in the namespaces typing uses (the class's module first, then the class's own names,
    then the builtins), from code compiled once per annotation text; anything unsettled
    goes through typing, with typing's result and errors."""
    hints: dict[str, Any] = {}
    for base in reversed(cls.__mro__):
        annotations = inspect.get_annotations(base)
        if not annotations:
            continue
        module = getattr(sys.modules.get(base.__module__), "__dict__", {})
        for name, annotation in annotations.items():
            if annotation is None or annotation == "None":
                hints[name] = type(None)
                continue
            if isinstance(annotation, str):
                value = _evaluated(annotation, module, base)
            else:
                value = annotation
            if value is _MISSING or not _settled(value):
                return typing.get_type_hints(cls, include_extras=True)
            hints[name] = value
    return hints


@functools.lru_cache(maxsize=1024)
def _annotation_code(annotation: str) -> types.CodeType:
    """The code of an annotation's text (the same text in any module compiles alike)."""
    return compile(annotation, "<annotation>", "eval")


def _settled(value: object) -> bool:
    """Whether ``value`` is an annotation typing would hand back as it is: a class, or a
    generic alias, union or ``Annotated`` whose arguments are all settled (no string, no
    ``ForwardRef`` left to evaluate, no ``None`` for typing to turn into ``NoneType``)."""
    if isinstance(value, type):
        return True
    if isinstance(value, str | typing.ForwardRef) or value is None:
        return False
    origin = typing.get_origin(value)
    if origin is None:
        return False
    if origin is typing.Annotated:
        return _settled(typing.get_args(value)[0])
    return all(arg is ... or _settled(arg) for arg in typing.get_args(value))


def _what(specs: object, project: str) -> str:
    """A hookspec holder (class, module or PluginManager) as a message names it."""
    if isinstance(specs, type | types.ModuleType):
        return repr(getattr(specs, "__qualname__", specs.__name__))
    return f"project {project!r}"


def _all_problems(problems: Sequence[HookspecError], what: str) -> HookspecError:
    """One :class:`HookspecError` for every problem found (itself, if only one), its
    ``problems`` listing each (hook and parameter set when they are all of one)."""
    flat = [leaf for p in problems for leaf in (p.problems or (p,))]
    if len(flat) == 1:
        return flat[0]
    hooks = {p.hook for p in flat}
    lines = "\n".join(f"  - {p}" for p in flat)
    error = HookspecError(
        f"{what}: {len(flat)} problems, every one listed:\n{lines}",
        hook=next(iter(hooks)) if len(hooks) == 1 else None,
    )
    error.problems = tuple(flat)
    return error


def _hook_contract(
    name: str,
    func: Callable[..., Any],
    opts: Mapping[str, Any],
    pkg: _wit.PackageId,
    binding: WitBinding | None,
) -> HookContract:
    argnames, signature, unwrap = function_signature(name, func)
    if binding is None:
        binding = getattr(func, _BINDING_ATTR, None)
    if binding is None:
        binding = WitBinding(pkg.interface(_wit.kebab(name)), _wit.kebab(name))
    if opts.get("historic", False):
        handles = [
            _wit.render_type_expanded(h)
            for t in (*signature.param_types, signature.result)
            for h in _wit.resources_in(t)
        ]
        if handles:
            # pluggy keeps a historic call's arguments and replays them to every plugin
            # registered later (and to each new instance): a handle cannot be replayed.
            raise HookspecError(
                f"hook {name!r} is historic and passes resource handles "
                f"({', '.join(dict.fromkeys(handles))}); a historic call's arguments are kept "
                "and replayed to plugins registered later and to every new instance, and a "
                "handle lives in one instance (or is given away once). Pass plain values "
                "(an id the plugin looks up), or make the hook not historic",
                hook=name,
            )
    return HookContract(
        name=name,
        argnames=argnames,
        signature=signature,
        binding=binding,
        firstresult=bool(opts.get("firstresult", False)),
        historic=bool(opts.get("historic", False)),
        unwrap_result=unwrap,
        doc=inspect.cleandoc(func.__doc__) if func.__doc__ else None,
    )


def _param_name(hook: str, name: str) -> str:
    try:
        return _wit.kebab(name)
    except ValueError as exc:
        raise HookspecError(f"hook {hook!r}: {exc}", hook=hook, parameter=name) from exc


def _map(ann: Any, where: str, hook: str, param: str) -> _wit.WitType:
    return _Mapper(where, hook, param).map(ann)


_SIMPLE: dict[Any, _wit.WitType] = {
    bool: _wit.Prim("bool"),
    int: _wit.Prim("s64"),
    float: _wit.Prim("f64"),
    str: _wit.Prim("string"),
}


@attrs.define
class _Mapper:
    where: str
    hook: str
    param: str
    _active: set[int] = attrs.field(factory=set)

    def fail(self, message: str) -> HookspecError:
        return HookspecError(f"{self.where}: {message}", hook=self.hook, parameter=self.param)

    def map(self, ann: Any) -> _wit.WitType:
        origin = typing.get_origin(ann)
        args = typing.get_args(ann)
        if origin is Annotated:
            marks = [m for m in ann.__metadata__ if isinstance(m, WitPrimitive)]
            if marks:
                return self._primitive(args[0], marks[0].name)
            handles = [m for m in ann.__metadata__ if isinstance(m, HandleKind)]
            if handles:
                return self._handle(args[0], handles[0].own)
            return self.map(args[0])
        if ann is None or ann is type(None):
            raise self.fail("None is only allowed as `T | None` (WIT option) or `-> None`")
        if ann in _SIMPLE:
            return _SIMPLE[ann]
        if ann is bytes:
            return _wit.ListT(_wit.Prim("u8"), py_bytes=True)
        if origin is list:
            if len(args) != 1:
                raise self.fail("write list[T] with one element type")
            return _wit.ListT(self.map(args[0]))
        if origin is tuple:
            if not args or (len(args) == 2 and args[1] is Ellipsis):
                raise self.fail(
                    f"{_show(ann)}: a WIT tuple has a fixed size; use list[T] for variable "
                    "length or tuple[A, B] for fixed"
                )
            return _wit.TupleT(tuple(self.map(a) for a in args))
        if origin is Some:
            raise self.fail(
                f"{_show(ann)}: Some[T] is only allowed as `Some[T] | None` (WIT option<T>, "
                "values Some(x) or None)"
            )
        if origin in (typing.Union, types.UnionType):
            rest = [a for a in args if a is not type(None)]
            if len(rest) == 1 and len(args) == 2:
                if typing.get_origin(rest[0]) is Some:
                    (payload,) = typing.get_args(rest[0])
                    return _wit.OptionT(self.map(payload), some=True)
                return _wit.OptionT(self.map(rest[0]))
            raise self.fail(
                f"{_show(ann)}: WIT has no untagged unions; declare a @variant base class "
                "with one subclass per case"
            )
        if origin is Result:
            if len(args) != 2:
                raise self.fail("write Result[T, E] (use None for a missing payload)")
            ok = None if args[0] is type(None) or args[0] is None else self.map(args[0])
            err = None if args[1] is type(None) or args[1] is None else self.map(args[1])
            return _wit.ResultT(ok, err)
        if isinstance(ann, type):
            if is_resource(ann):
                return self._handle(ann, True)
            if issubclass(ann, enum.Flag):
                return _wit.FlagsT(self._name(ann), self._members(ann), ann)
            if issubclass(ann, enum.Enum):
                return _wit.EnumT(self._name(ann), self._members(ann), ann)
            if is_variant(ann):
                return self._variant(ann)
            if attrs.has(ann) or dataclasses.is_dataclass(ann):
                return self._record(ann)
        hint = ""
        if origin is dict or ann is dict:
            hint = "; WIT has no map type: use list[tuple[K, V]] or a record"
        elif ann is Any:
            hint = "; every parameter needs a concrete type"
        elif ann is list or ann is tuple:
            hint = "; give the element type, e.g. list[str]"
        raise self.fail(f"unsupported annotation {_show(ann)}{hint}")

    def _handle(self, cls: Any, own: bool) -> _wit.HandleT:
        kind = "Own" if own else "Borrow"
        if not is_resource(cls):
            raise self.fail(
                f"{kind}[{_show(cls)}]: {_show(cls)} is not a resource; mark the class with "
                "@resource (its methods become the resource's methods)"
            )
        try:
            return _wit.HandleT(resource_type(cls), own=own)
        except HookspecError as exc:
            raise self.fail(str(exc)) from exc

    def _primitive(self, base: Any, name: str) -> _wit.WitType:
        if name not in _wit.PRIMITIVES:
            raise self.fail(f"unknown WIT primitive {name!r}")
        return _wit.Prim(name)

    def _name(self, cls: type) -> str:
        # ``__wit_name__`` (on the class itself, not inherited) names a type whose WIT name
        # is no Python class name: a case ``none``, two types ``error`` (bindgen writes it).
        given = cls.__dict__.get("__wit_name__")
        if isinstance(given, str):
            if not _wit.is_identifier(given):
                raise self.fail(f"{cls.__name__}.__wit_name__ {given!r} is no WIT identifier")
            return given.lstrip("%")
        try:
            return _wit.kebab(cls.__name__)
        except ValueError as exc:
            raise self.fail(str(exc)) from exc

    def _members(self, cls: type[enum.Enum]) -> tuple[str, ...]:
        names = tuple(_wit.kebab(m.name or "") for m in cls)
        if not names:
            raise self.fail(f"{cls.__name__} has no members")
        return names

    def _enter(self, cls: type) -> None:
        if id(cls) in self._active:
            raise self.fail(f"{cls.__name__} refers to itself; WIT types cannot be recursive")
        self._active.add(id(cls))

    def _record(self, cls: type) -> _wit.RecordT:
        self._enter(cls)
        try:
            hints = _class_type_hints(cls)
            names = _field_names(cls)
            if not names:
                raise self.fail(f"record {cls.__name__} has no fields; WIT records need one")
            fields = []
            for n in names:
                if n not in hints:
                    raise self.fail(f"field {cls.__name__}.{n} has no annotation")
                fields.append((_wit.kebab(n), self.map(hints[n])))
            return _wit.RecordT(self._name(cls), tuple(fields), cls, tuple(names))
        finally:
            self._active.discard(id(cls))

    def _variant(self, cls: type) -> _wit.VariantT:
        self._enter(cls)
        try:
            subclasses = _variant_cases(cls)
            if not subclasses:
                raise self.fail(f"variant {cls.__name__} has no cases (subclasses)")
            cases: list[tuple[str, _wit.WitType | None]] = []
            for case in subclasses:
                if not (attrs.has(case) or dataclasses.is_dataclass(case)):
                    raise self.fail(
                        f"variant case {case.__name__} must be an attrs class or dataclass"
                    )
                hints = _class_type_hints(case)
                names = _field_names(case)
                if len(names) > 1:
                    raise self.fail(
                        f"variant case {case.__name__} has {len(names)} fields; a WIT case "
                        "carries at most one payload: wrap them in a record"
                    )
                payload = self.map(hints[names[0]]) if names else None
                cases.append((self._name(case), payload))
            return _wit.VariantT(self._name(cls), tuple(cases), cls, tuple(subclasses))
        finally:
            self._active.discard(id(cls))


# resource class -> its WIT model (being built, or built): a member may use the resource
# itself, and every use of one class is the same ResourceT.
_RESOURCES: dict[type, _wit.ResourceT] = {}


def resource_type(cls: type) -> _wit.ResourceT:
    """The WIT model of a :func:`~airssys_plugins.resource` class: its constructor
    (``__init__``), methods and static functions, each mapped like a hookspec.
    HookspecError lists every member that cannot be mapped."""
    found = _RESOURCES.get(cls)
    if found is not None:
        return found
    given = cls.__dict__.get("__wit_name__")
    try:
        name = given.lstrip("%") if isinstance(given, str) else _wit.kebab(cls.__name__)
    except ValueError as exc:
        raise HookspecError(f"resource {cls.__name__}: {exc}") from exc
    docs = tuple(inspect.cleandoc(cls.__doc__).splitlines()) if cls.__doc__ else ()
    res = _wit.ResourceT(name, py=cls, docs=docs)
    _RESOURCES[cls] = res
    try:
        _complete_resource(cls, res)
    except BaseException:
        del _RESOURCES[cls]
        raise
    return res


def _complete_resource(cls: type, res: _wit.ResourceT) -> None:
    problems: list[HookspecError] = []
    constructor: _wit.FuncSig | None = None
    methods: list[tuple[str, _wit.FuncSig]] = []
    statics: list[tuple[str, _wit.FuncSig]] = []
    py_members: list[tuple[str, str]] = []
    for attr, value in vars(cls).items():
        if attr.startswith("_") and attr != "__init__":
            continue
        static = isinstance(value, staticmethod)
        func = value.__func__ if static else value
        if isinstance(value, classmethod | property) or not inspect.isfunction(func):
            if isinstance(value, classmethod | property):
                problems.append(
                    HookspecError(
                        f"resource {cls.__name__}: {attr} is a {type(value).__name__}; a "
                        "resource has methods, @staticmethod functions and __init__ only"
                    )
                )
            continue
        what = f"{cls.__name__}.{attr}"
        try:
            wit_name = res.name if attr == "__init__" else _wit.kebab(attr)
            _, sig, _ = function_signature(what, func, kind="resource member")
        except (HookspecError, ValueError) as exc:
            problems.append(
                exc if isinstance(exc, HookspecError) else HookspecError(f"{what}: {exc}")
            )
            continue
        if attr == "__init__":
            if sig.result is not None:
                problems.append(HookspecError(f"{what} must return None (-> None)"))
                continue
            constructor = sig
            py_members.append((f"[constructor]{res.name}", attr))
        elif static:
            statics.append((wit_name, sig))
            py_members.append((f"[static]{res.name}.{wit_name}", attr))
        else:
            methods.append((wit_name, sig))
            py_members.append((f"[method]{res.name}.{wit_name}", attr))
    if problems:
        raise _all_problems(problems, f"resource {cls.__name__}")
    res.complete(constructor, tuple(methods), tuple(statics), tuple(py_members))


def _field_names(cls: Any) -> list[str]:
    """Field names of an attrs class or dataclass, in declaration order."""
    if attrs.has(cls):
        return [f.name for f in attrs.fields(cls)]
    return [f.name for f in dataclasses.fields(cls)]


def _variant_cases(cls: type) -> list[type]:
    """Direct subclasses of a variant base, in definition order.

    attrs' slotted classes replace the class object they decorate; until the garbage
    collector runs, the discarded original still shows in ``__subclasses__()``. Skip those.
    """
    subclasses: list[type] = cls.__subclasses__()
    real = {
        (c.__module__, c.__qualname__)
        for c in subclasses
        if attrs.has(c) or dataclasses.is_dataclass(c)
    }
    return [
        c
        for c in subclasses
        if attrs.has(c) or dataclasses.is_dataclass(c) or (c.__module__, c.__qualname__) not in real
    ]


def _show(ann: Any) -> str:
    if isinstance(ann, type):
        return ann.__name__
    return repr(ann).replace("typing.", "")


@final
@attrs.frozen
class HookOptions:
    """pluggy hookimpl options for one hook of a component.

    ``specname`` registers the component's implementation of this hook for another
    hookspec (pluggy's ``specname``), e.g. after a hook was renamed. ``timeout`` gives
    this hook its own per-call deadline.
    """

    tryfirst: bool = False
    trylast: bool = False
    specname: str | None = None
    #: Per-call deadline for this hook, overriding the plugin's ``limits.timeout``.
    timeout: float | None = None
