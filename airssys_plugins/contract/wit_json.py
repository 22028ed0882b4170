"""Read ``wasm-tools component wit --json`` output into the :mod:`.wit` model.

wasm-tools resolves a WIT directory (with its ``deps/``) or a component's embedded WIT
into one JSON document: packages, worlds, interfaces and a flat table of types that
refer to each other by index. This module turns the part of it hooks can use (the
functions a world exports, with their types and doc comments) into the model, and says
what it cannot use (resources, async, streams...) and why.

Pure Python: running wasm-tools is the caller's job (``airssys-plugins bindgen`` does).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, final

from .. import _attrs as attrs
from .._errors import PluginError
from . import wit

__all__ = [
    "NamedTypeInfo",
    "Resolved",
    "WitFunction",
    "WitJsonError",
    "WorldExports",
]


class WitJsonError(PluginError, ValueError):
    """The JSON is not what ``wasm-tools component wit --json`` writes, or names no such
    world."""


@final
@attrs.frozen
class WitFunction:
    """A function a world exports: ``interface`` is the full interface name
    (``docs:adder/add@0.1.0``), or ``None`` for a function exported at the world's root."""

    interface: str | None
    name: str
    signature: wit.FuncSig
    docs: str | None = None
    interface_docs: str | None = None

    @property
    def binding(self) -> str:
        """The ``wit_binding`` target of this function."""
        return self.name if self.interface is None else f"{self.interface}#{self.name}"


@final
@attrs.frozen
class NamedTypeInfo:
    """Where a named type was defined (interface or world name) and its doc comment."""

    owner: str | None
    docs: str | None = None
    #: Doc comments of the fields or cases, by WIT name.
    member_docs: Mapping[str, str] = attrs.field(factory=dict)


@final
@attrs.frozen
class WorldExports:
    """What hooks can be made of one world: its functions, the functions it exports that
    hooks cannot carry (with the reason), and facts about its named types."""

    package: str
    world: str
    docs: str | None
    functions: tuple[WitFunction, ...]
    skipped: tuple[tuple[str, str], ...]
    #: Keyed by ``id()`` of the model object (each JSON type is read into one object).
    types: Mapping[int, NamedTypeInfo]

    def type_info(self, t: object) -> NamedTypeInfo:
        return self.types.get(id(t), NamedTypeInfo(None))


def _docs(item: Mapping[str, Any]) -> str | None:
    docs = item.get("docs")
    contents = docs.get("contents") if isinstance(docs, Mapping) else None
    return contents if isinstance(contents, str) and contents else None


#: The members of an exported resource that become hooks: a constructor and a static
#: function need no handle to be called (a method is called through a proxy).
_HOOK_MEMBERS = ("constructor", "static", "async-static")
_ASYNC_KINDS = ("async-freestanding", "async-static")


class _Unusable(Exception):
    """A type hooks cannot carry; the message says which, as WIT writes it."""


@final
class Resolved:
    """One ``wasm-tools component wit --json`` document."""

    def __init__(self, data: Mapping[str, Any]):
        try:
            self._types: list[Mapping[str, Any]] = list(data["types"])
            self._interfaces: list[Mapping[str, Any]] = list(data["interfaces"])
            self._worlds: list[Mapping[str, Any]] = list(data["worlds"])
            self._packages: list[Mapping[str, Any]] = list(data["packages"])
        except (KeyError, TypeError) as exc:
            raise WitJsonError(
                f"not the JSON of `wasm-tools component wit --json` (no {exc})"
            ) from exc
        self._cache: dict[int, wit.WitType] = {}
        self._resources: dict[int, wit.ResourceT] = {}
        self._info: dict[int, NamedTypeInfo] = {}

    # -- names -----------------------------------------------------------------------------

    @property
    def main_package(self) -> str:
        """The package the document is about (wasm-tools lists dependencies first)."""
        if not self._packages:
            raise WitJsonError("the WIT holds no package")
        return str(self._packages[-1]["name"])

    def world_names(self, package: str | None = None) -> list[str]:
        pkg = self._package_index(package or self.main_package)
        return [str(w["name"]) for w in self._worlds if w.get("package") == pkg]

    def _package_index(self, name: str) -> int:
        for i, p in enumerate(self._packages):
            if p["name"] == name:
                return i
        raise WitJsonError(f"no package {name!r} in the WIT")

    def interface_name(self, index: int) -> str | None:
        """The full name of interface ``index`` (``ns:pkg/name@1.0.0``); ``None`` for an
        inline (anonymous) interface."""
        iface = self._interfaces[index]
        name = iface.get("name")
        if name is None:
            return None
        package = str(self._packages[iface["package"]]["name"])
        base, _, version = package.partition("@")
        return f"{base}/{name}@{version}" if version else f"{base}/{name}"

    # -- worlds ----------------------------------------------------------------------------

    def world(self, name: str | None = None) -> WorldExports:
        """The exports of world ``name`` of the main package (the only world if ``None``)."""
        names = self.world_names()
        if name is None:
            if len(names) != 1:
                raise WitJsonError(
                    f"package {self.main_package} has {len(names)} worlds "
                    f"({', '.join(names) or 'none'}); choose one with --world"
                )
            name = names[0]
        pkg = self._package_index(self.main_package)
        found = [w for w in self._worlds if w["name"] == name and w.get("package") == pkg]
        if not found:
            raise WitJsonError(
                f"package {self.main_package} has no world {name!r}; its worlds are "
                f"{', '.join(names) or 'none'}"
            )
        world = found[0]
        functions: list[WitFunction] = []
        skipped: list[tuple[str, str]] = []
        for key, item in world.get("exports", {}).items():
            if "function" in item:
                self._add(functions, skipped, None, item["function"], None)
            elif "interface" in item:
                index = item["interface"]["id"]
                iface = self._interfaces[index]
                # `export name: interface { ... }` is bound as `name#function`
                full = self.interface_name(index) or key
                for func in iface.get("functions", {}).values():
                    self._add(functions, skipped, full, func, _docs(iface))
        return WorldExports(
            self.main_package,
            name,
            _docs(world),
            tuple(functions),
            tuple(skipped),
            dict(self._info),
        )

    def _add(
        self,
        functions: list[WitFunction],
        skipped: list[tuple[str, str]],
        interface: str | None,
        func: Mapping[str, Any],
        interface_docs: str | None,
    ) -> None:
        name = str(func["name"])
        where = name if interface is None else f"{interface}#{name}"
        kind = func.get("kind")
        member = next(iter(kind), None) if isinstance(kind, Mapping) else None
        if kind not in ("freestanding", "async-freestanding") and member not in _HOOK_MEMBERS:
            owner = name.split("]", 1)[-1].split(".", 1)[0]
            what = "a method" if member == "method" else "a member"
            skipped.append(
                (where, f"{what} of resource `{owner}` (called through its proxies, not a hook)")
            )
            return
        try:
            params = tuple((str(p["name"]), self._must(p["type"])) for p in func["params"])
            result = None if func.get("result") is None else self._must(func["result"])
        except _Unusable as exc:
            skipped.append((where, f"uses {exc}"))
            return
        sig = wit.FuncSig(params, result, is_async=kind in _ASYNC_KINDS)
        if sig.is_async:
            skipped.append((where, "an `async func` (component-model async)"))
            return
        functions.append(WitFunction(interface, name, sig, _docs(func), interface_docs))

    # -- types -----------------------------------------------------------------------------

    def _must(self, ref: str | int) -> wit.WitType:
        if isinstance(ref, str):
            if ref not in wit.PRIMITIVES:
                raise _Unusable(ref)
            return wit.Prim(ref)
        cached = self._cache.get(ref)
        if cached is None:
            cached = self._cache[ref] = self._define(ref)
        return cached

    def _ref(self, ref: str | int | None) -> wit.WitType | None:
        return None if ref is None else self._must(ref)

    def _define(self, index: int) -> wit.WitType:
        d = self._types[index]
        kind = d["kind"]
        name = str(d.get("name") or "")
        if isinstance(kind, str):  # error-context; a resource is reached through a handle
            raise _Unusable(f"{kind} {name}".strip())
        ((what, body),) = kind.items()
        if what == "type":  # an alias, e.g. a `use` of another interface's type
            return self._must(body)
        if what == "list":
            return wit.ListT(self._must(body))
        if what == "option":
            return wit.OptionT(self._must(body))
        if what == "tuple":
            return wit.TupleT(tuple(self._must(e) for e in body["types"]))
        if what == "result":
            return wit.ResultT(self._ref(body["ok"]), self._ref(body["err"]))
        if what == "handle":
            ((mode, target),) = body.items()
            return wit.HandleT(self._resource_at(target), own=mode == "own")
        if what in ("future", "stream"):
            raise _Unusable(what)
        member_docs: dict[str, str] = {}
        made: wit.WitType
        if what == "record":
            made = wit.RecordT(
                name, tuple((f["name"], self._must(f["type"])) for f in body["fields"])
            )
            member_docs = {f["name"]: doc for f in body["fields"] if (doc := _docs(f))}
        elif what == "variant":
            made = wit.VariantT(
                name, tuple((c["name"], self._ref(c.get("type"))) for c in body["cases"])
            )
            member_docs = {c["name"]: doc for c in body["cases"] if (doc := _docs(c))}
        elif what == "enum":
            made = wit.EnumT(name, tuple(c["name"] for c in body["cases"]))
            member_docs = {c["name"]: doc for c in body["cases"] if (doc := _docs(c))}
        elif what == "flags":
            made = wit.FlagsT(name, tuple(f["name"] for f in body["flags"]))
            member_docs = {f["name"]: doc for f in body["flags"] if (doc := _docs(f))}
        else:
            raise _Unusable(what)
        self._info[id(made)] = NamedTypeInfo(self._owner(d), _docs(d), member_docs)
        return made

    def _resource_at(self, index: int) -> wit.ResourceT:
        """The resource type ``index`` names (through ``use`` aliases)."""
        d = self._types[index]
        kind = d["kind"]
        if isinstance(kind, Mapping) and "type" in kind and isinstance(kind["type"], int):
            return self._resource_at(kind["type"])
        if kind != "resource":
            raise _Unusable(f"a handle of {d.get('name') or 'a non-resource type'}")
        found = self._resources.get(index)
        if found is None:
            found = self._resource(index, d, str(d.get("name") or "resource"))
        return found

    def _resource(self, index: int, d: Mapping[str, Any], name: str) -> wit.ResourceT:
        """A resource with its members, read from the functions of the interface that
        defines it (``"kind": {"method": <its index>}``)."""
        docs = _docs(d)
        res = wit.ResourceT(name, docs=tuple(docs.splitlines()) if docs else ())
        self._resources[index] = res  # its members may return it
        owner = d.get("owner")
        functions: Mapping[str, Any] = {}
        if isinstance(owner, Mapping) and "interface" in owner:
            functions = self._interfaces[owner["interface"]].get("functions", {})
        elif isinstance(owner, Mapping) and "world" in owner:  # `resource r` in a world
            world = self._worlds[owner["world"]]
            functions = {
                str(item["function"]["name"]): item["function"]
                for side in ("imports", "exports")
                for item in world.get(side, {}).values()
                if "function" in item
            }
        constructor: wit.FuncSig | None = None
        methods: list[tuple[str, wit.FuncSig]] = []
        statics: list[tuple[str, wit.FuncSig]] = []
        try:
            for fname, func in functions.items():
                kind = func.get("kind")
                if not isinstance(kind, Mapping) or index not in kind.values():
                    continue
                ((what, _),) = kind.items()
                params = tuple((str(p["name"]), self._must(p["type"])) for p in func["params"])
                result = None if func.get("result") is None else self._must(func["result"])
                short = str(fname).split(".", 1)[-1]
                if what == "constructor":
                    constructor = wit.FuncSig(params, None)
                elif what == "method":
                    methods.append((short, wit.FuncSig(params[1:], result)))
                elif what == "static":
                    statics.append((short, wit.FuncSig(params, result)))
                else:  # async members (p3)
                    raise _Unusable(f"resource {name} (its {what} {fname})")
        except _Unusable:
            del self._resources[index]
            raise
        res.complete(constructor, tuple(methods), tuple(statics))
        self._info[id(res)] = NamedTypeInfo(self._owner(d), docs)
        return res

    def _owner(self, d: Mapping[str, Any]) -> str | None:
        owner = d.get("owner")
        if not isinstance(owner, Mapping):
            return None
        if "interface" in owner:
            return self.interface_name(owner["interface"])
        if "world" in owner:
            return str(self._worlds[owner["world"]]["name"])
        return None

    def functions(self, interface: Mapping[str, Any]) -> tuple[tuple[str, wit.FuncSig], ...]:
        """The functions of one interface of the JSON, in order, as the model; raises
        :class:`WitJsonError` for one that uses a type hooks cannot carry."""
        found = []
        for name, func in interface.get("functions", {}).items():
            try:
                params = tuple((str(p["name"]), self._must(p["type"])) for p in func["params"])
                result = None if func.get("result") is None else self._must(func["result"])
            except _Unusable as exc:
                raise WitJsonError(f"function {name!r} uses {exc}") from None
            sig = wit.FuncSig(params, result, is_async=func.get("kind") == "async-freestanding")
            found.append((str(name), sig))
        return tuple(found)

    def interfaces(self) -> Iterator[tuple[str | None, Mapping[str, Any]]]:
        """Every interface with its full name (``None`` for inline ones)."""
        for i, iface in enumerate(self._interfaces):
            yield self.interface_name(i), iface
