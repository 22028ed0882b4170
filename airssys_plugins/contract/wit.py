"""A small typed model of WIT: value types, function signatures, package ids.

Pure Python: both the hookspec side (annotations -> WIT) and the component side (a
compiled component's own types, read by the runtime layer) are expressed with these
classes, so checking one against the other is plain ``==``.

Equality is structural, as in the component model: the *names* of records, variants,
enums and flags are not part of a type, their field and case names are. The Python
class a named type maps to rides along (``py``) but never takes part in comparisons.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Final, TypeAlias

from .. import _attrs as attrs
from .semver import Version, caret_compatible

__all__ = [
    "PRIMITIVES",
    "async_parts",
    "EnumT",
    "FlagsT",
    "FuncSig",
    "HandleT",
    "Interface",
    "ListT",
    "OptionT",
    "PackageId",
    "Prim",
    "RecordT",
    "ResourceT",
    "ResultT",
    "TupleT",
    "Unsupported",
    "VariantT",
    "WitType",
    "WORLD_ROOT",
    "World",
    "import_key",
    "inner_types",
    "interface_types",
    "is_identifier",
    "kebab",
    "render_func",
    "render_ident",
    "render_interface",
    "render_package",
    "render_type",
    "render_type_expanded",
    "render_type_inline",
    "render_world",
    "resources_in",
]

PRIMITIVES = frozenset(
    ["bool", "u8", "u16", "u32", "u64", "s8", "s16", "s32", "s64", "f32", "f64", "char", "string"]
)

# Words that must be written as %word when used as a WIT identifier.
# fmt: off
_KEYWORDS = frozenset(
    [
        "as", "async", "bool", "borrow", "char", "constructor", "enum", "error-context",
        "export", "f32", "f64", "flags", "float32", "float64", "from", "func", "future",
        "import", "include", "interface", "list", "own", "option", "package", "record",
        "resource", "result", "s8", "s16", "s32", "s64", "static", "stream", "string", "tuple",
        "type", "u8", "u16", "u32", "u64", "use", "variant", "with", "world", "_",
    ]
)
# fmt: on


@attrs.frozen
class Prim:
    name: str = attrs.field(validator=attrs.validators.in_(PRIMITIVES))


@attrs.frozen
class ListT:
    element: WitType
    # ``bytes`` on the Python side instead of ``list[int]``; not part of the WIT type.
    py_bytes: bool = attrs.field(default=False, eq=False)


@attrs.frozen
class TupleT:
    elements: tuple[WitType, ...]


@attrs.frozen
class OptionT:
    inner: WitType
    # ``Some(x)`` / ``None`` on the Python side instead of ``x`` / ``None`` (an annotation
    # ``Some[T] | None``, needed for ``option<option<T>>``); not part of the WIT type.
    some: bool = attrs.field(default=False, eq=False, kw_only=True)


@attrs.frozen
class ResultT:
    ok: WitType | None
    err: WitType | None


@attrs.frozen
class RecordT:
    name: str = attrs.field(eq=False)
    fields: tuple[tuple[str, WitType], ...]
    py: Any = attrs.field(default=None, eq=False, repr=False)
    # Python attribute name of each field, parallel to ``fields``.
    py_fields: tuple[str, ...] = attrs.field(default=(), eq=False, repr=False)


@attrs.frozen
class VariantT:
    name: str = attrs.field(eq=False)
    cases: tuple[tuple[str, WitType | None], ...]
    py: Any = attrs.field(default=None, eq=False, repr=False)
    # Python class of each case, parallel to ``cases``.
    py_cases: tuple[Any, ...] = attrs.field(default=(), eq=False, repr=False)


@attrs.frozen
class EnumT:
    name: str = attrs.field(eq=False)
    names: tuple[str, ...]
    py: Any = attrs.field(default=None, eq=False, repr=False)


@attrs.frozen
class FlagsT:
    name: str = attrs.field(eq=False)
    names: tuple[str, ...]
    py: Any = attrs.field(default=None, eq=False, repr=False)


@attrs.frozen
class ResourceT:
    """A WIT ``resource``. Its identity is its name (resources are nominal in the component
    model); its members ride along for rendering WIT and calling methods, never compared.

    ``methods`` and ``statics`` are WIT name -> signature (a method's without its
    ``self``); ``py_members`` is the Python name of each constructor, method and static
    (WIT name -> Python name). A resource read from a compiled component has no members:
    its functions are exports of their own (``[method]counter.get``).
    """

    name: str
    constructor: FuncSig | None = attrs.field(default=None, eq=False, repr=False)
    methods: tuple[tuple[str, FuncSig], ...] = attrs.field(default=(), eq=False, repr=False)
    statics: tuple[tuple[str, FuncSig], ...] = attrs.field(default=(), eq=False, repr=False)
    py: Any = attrs.field(default=None, eq=False, repr=False)
    py_members: tuple[tuple[str, str], ...] = attrs.field(default=(), eq=False, repr=False)
    docs: tuple[str, ...] = attrs.field(default=(), eq=False, repr=False)

    def complete(
        self,
        constructor: FuncSig | None,
        methods: tuple[tuple[str, FuncSig], ...],
        statics: tuple[tuple[str, FuncSig], ...],
        py_members: tuple[tuple[str, str], ...] = (),
    ) -> None:
        """Fill in the members (once, while the resource is built: a static function may
        return the resource itself, so the object must exist before its members do)."""
        object.__setattr__(self, "constructor", constructor)
        object.__setattr__(self, "methods", methods)
        object.__setattr__(self, "statics", statics)
        object.__setattr__(self, "py_members", py_members)

    def functions(self) -> Iterator[tuple[str, FuncSig]]:
        """Each member as the component exports or imports it: ``[constructor]counter``,
        ``[method]counter.get`` (its first parameter ``self: borrow<counter>``),
        ``[static]counter.zero``."""
        me = HandleT(self, own=False)
        if self.constructor is not None:
            ctor = FuncSig(self.constructor.params, HandleT(self, own=True))
            yield f"[constructor]{self.name}", ctor
        for name, sig in self.methods:
            yield (
                f"[method]{self.name}.{name}",
                FuncSig((("self", me), *sig.params), sig.result, is_async=sig.is_async),
            )
        for name, sig in self.statics:
            yield f"[static]{self.name}.{name}", sig


@attrs.frozen
class Unsupported:
    """A WIT type airssys-plugins cannot pass to Python (future, stream, error-context),
    as WIT writes it; its subclass :class:`HandleT` is a resource handle, which it can."""

    description: str


@attrs.frozen(init=False)
class HandleT(Unsupported):
    """``own<R>`` (``own=True``) or ``borrow<R>`` of resource ``R``.

    A subclass of :class:`Unsupported` so that code which only describes types (inspect,
    scaffolds) keeps spelling it as WIT does (``description`` is ``own<counter>``);
    everything that converts values or renders WIT checks for it first.
    """

    resource: ResourceT
    own: bool

    def __init__(self, resource: ResourceT, own: bool = True):
        kind = "own" if own else "borrow"
        self.__attrs_init__(f"{kind}<{resource.name}>", resource, own)


WitType: TypeAlias = (
    Prim | ListT | TupleT | OptionT | ResultT | RecordT | VariantT | EnumT | FlagsT | Unsupported
)
NamedType: TypeAlias = RecordT | VariantT | EnumT | FlagsT | ResourceT


@attrs.frozen
class FuncSig:
    """A WIT function type. Parameter names are kept for messages, not compared."""

    params: tuple[tuple[str, WitType], ...] = attrs.field(eq=False)
    result: WitType | None
    #: A component-model ``async func`` (a WIT 0.3 / "p3" export or import).
    is_async: bool = attrs.field(default=False, kw_only=True)
    param_types: tuple[WitType, ...] = attrs.field(init=False)

    @param_types.default
    def _param_types(self) -> tuple[WitType, ...]:
        return tuple(t for _, t in self.params)

    def render(self, *, expanded: bool = False) -> str:
        return render_func(self, render_type_expanded if expanded else render_type)


_WORD = r"[a-z][a-z0-9]*"
_ID = rf"{_WORD}(?:-{_WORD})*"


@attrs.frozen
class PackageId:
    """``namespace:name@version`` of a WIT package, e.g. ``textpipe:hooks@1.0.0``."""

    namespace: str
    name: str
    version: str | None = None

    @classmethod
    def parse(cls, text: str) -> PackageId:
        """``namespace:name`` or ``namespace:name@version``, as
        ``rf"^({_ID}):({_ID})(?:@([^\\s/#]+))?$"`` reads the stripped text, read by hand:
        compiling that pattern cost every ``PluginHost(package=...)`` of a new process
        0.3-1 ms (tests/test_wit_render.py checks the two agree)."""
        package, at, version_text = text.strip().partition("@")
        namespace, colon, name = package.partition(":")
        if not (
            colon
            and _is_lower_id(namespace)
            and _is_lower_id(name)
            and (
                not at or (version_text and not any(c in "/#" or c.isspace() for c in version_text))
            )
        ):
            raise ValueError(
                f"{text!r} is not a WIT package id; write it as namespace:name@1.2.3 "
                "with lowercase kebab-case words"
            )
        version = version_text if at else None
        if version is not None:
            try:
                Version.parse(version)
            except ValueError as exc:
                raise ValueError(f"{text!r}: version {version!r} is not semver (X.Y.Z)") from exc
        return cls(namespace, name, version)

    def __str__(self) -> str:
        base = f"{self.namespace}:{self.name}"
        return base if self.version is None else f"{base}@{self.version}"

    def interface(self, name: str) -> str:
        """The full name of interface ``name`` of this package, as components export it."""
        base = f"{self.namespace}:{self.name}/{name}"
        return base if self.version is None else f"{base}@{self.version}"


@functools.lru_cache(maxsize=1024)  # pure; every hook of every load asks, with few versions
def version_compatible(expected: str | None, actual: str | None) -> bool:
    """Whether a component built for ``actual`` fits a host that publishes ``expected``.

    Semver caret rule, as the component model links imports: the same major version
    (for 0.x, the same minor). Unversioned matches only unversioned.
    """
    if expected is None or actual is None:
        return expected == actual
    try:
        return caret_compatible(Version.parse(expected), Version.parse(actual))
    except ValueError:
        return expected == actual


@functools.lru_cache(maxsize=4096)  # pure; ~40 calls a load, with few distinct names
def split_interface_name(full: str) -> tuple[str, str, str | None] | None:
    """``ns:pkg/iface@1.0.0`` -> (``ns:pkg``, ``iface``, ``1.0.0``); None if not of that form.

    What ``re.match(rf"^({_ID}:{_ID})/(%?{_ID})(?:@([^\\s#]+))?$", full)`` gives, read by
    hand: compiling that pattern cost a new process's first load 0.5 ms
    (tests/test_wit_render.py checks the two agree)."""
    text = full[:-1] if full.endswith("\n") else full  # ``$`` matches before a last \n
    package, slash, rest = text.partition("/")
    namespace, colon, name = package.partition(":")
    if not (slash and colon and _is_lower_id(namespace) and _is_lower_id(name)):
        return None
    interface, at, version = rest.partition("@")
    bare = interface[1:] if interface.startswith("%") else interface
    if not _is_lower_id(bare):
        return None
    if not at:
        return package, bare, None
    if not version or any(c == "#" or c.isspace() for c in version):
        return None
    return package, bare, version


#: The ``interface`` of a host function imported at a world's root (``import log:
#: func(msg: string);`` directly in a world): ``host.provide(log, interface=WORLD_ROOT)``.
WORLD_ROOT: Final = ""


def import_key(interface: str, name: str) -> str:
    """The world import that brings function ``name`` of ``interface`` into a component,
    as grants and import checks name it: the unversioned interface; at the world's root
    (``interface`` is :data:`WORLD_ROOT`) the function's own name, or for a resource's
    member (``[constructor]r``, ``[method]r.get``, ``[resource]r``) the resource's."""
    if interface != WORLD_ROOT:
        return unversioned(interface)
    if name.startswith("["):
        return name.partition("]")[2].partition(".")[0]
    return name


def unversioned(interface: str) -> str:
    """``ns:pkg/iface@1.0.0`` -> ``ns:pkg/iface`` (unchanged if not of that form)."""
    split = split_interface_name(interface)
    return interface if split is None else f"{split[0]}/{split[1]}"


@functools.lru_cache(maxsize=4096)
def kebab(name: str) -> str:
    """Python identifier -> WIT identifier: ``detect_language`` -> ``detect-language``,
    ``HTTPServer`` -> ``http-server``, ``level_2`` -> ``level2`` (WIT words cannot start
    with a digit, so a digit word joins the word before it). Remembered: a contract names
    the same parameters, fields and cases many times."""
    if name.isalpha() and name.islower():  # most names: one lower-case word
        return name
    words: list[str] = []
    for word in _split_camel(name).lower().split("_"):
        if not word:
            continue
        if word[0].isdigit() and words:
            words[-1] += word
        else:
            words.append(word)
    result = "-".join(words)
    if not _is_lower_id(result):
        raise ValueError(f"{name!r} cannot be written as a WIT identifier")
    return result


def _split_camel(name: str) -> str:
    """``name`` with ``_`` before each capital that starts a word: after a lower-case
    letter or digit (``levelUp``), or ending a run of capitals before a lower-case letter
    (``HTTPServer`` -> ``HTTP_Server``). What ``re.sub(r"([a-z0-9])([A-Z])", ...)`` then
    ``re.sub(r"([A-Z]+)([A-Z][a-z])", ...)`` make, without compiling either."""
    out = []
    last = len(name) - 1
    for i, c in enumerate(name):
        if i and "A" <= c <= "Z":
            before = name[i - 1]
            if (
                "a" <= before <= "z"
                or "0" <= before <= "9"
                or ("A" <= before <= "Z" and i < last and "a" <= name[i + 1] <= "z")
            ):
                out.append("_")
        out.append(c)
    return "".join(out)


def _is_lower_id(text: str) -> bool:
    """Whether ``text`` matches ``_ID``: words of ASCII lower-case letters and digits, each
    starting with a letter, joined by single hyphens."""
    return all(
        w.isascii() and w.isalnum() and "a" <= w[0] <= "z" and w.lower() == w
        for w in text.split("-")
    )


def is_identifier(name: str) -> bool:
    """Whether ``name`` is a WIT identifier (``detect-language``; ``%`` escape allowed)."""
    return re.fullmatch(rf"%?{_ID}", name) is not None


def render_ident(name: str) -> str:
    return f"%{name}" if name in _KEYWORDS else name


def render_type(t: WitType) -> str:
    """The type as written in a WIT use site: named types by name."""
    return _render(t, _NEVER)


def render_type_expanded(t: WitType) -> str:
    """The type written out in full, named types included: for mismatch messages."""
    return _render(t, _ALWAYS)


def render_type_inline(t: WitType) -> str:
    """Named types by name, anonymous ones (no name) written out: for describing any
    component, whose types need not be named."""
    return _render(t, _ANONYMOUS)


def render_func(sig: FuncSig, show: Callable[[WitType], str] = render_type) -> str:
    """``func(a: u32, b: string) -> bool``, each type written by ``show``."""
    params = ", ".join(f"{render_ident(n)}: {show(t)}" for n, t in sig.params)
    result = "" if sig.result is None else f" -> {show(sig.result)}"
    return f"{'async ' if sig.is_async else ''}func({params}){result}"


#: The heads of the component-model-async types (``stream<u8>``, ``future``...).
_ASYNC_TYPES = ("stream", "future", "error-context", "errorcontext")


def async_parts(sig: FuncSig) -> list[str]:
    """What makes ``sig`` component-model async: ``async func`` and each stream, future
    or error-context it uses (as WIT writes them); empty for a plain function."""
    found = ["async func"] if sig.is_async else []
    for t in (*sig.param_types, sig.result):
        for u in _unsupported(t):
            head = u.description.split("<", 1)[0]
            if head in _ASYNC_TYPES and u.description not in found:
                found.append("error-context" if head == "errorcontext" else u.description)
    return found


def inner_types(t: WitType | None) -> tuple[WitType | None, ...]:
    """The types ``t`` holds directly (a list's element, an option's payload, a result's
    ok and err, a tuple's elements, a record's fields, a variant's cases), in WIT order;
    none for any other type (a handle's resource members are not looked into)."""
    if isinstance(t, ListT):
        return (t.element,)
    if isinstance(t, OptionT):
        return (t.inner,)
    if isinstance(t, ResultT):
        return (t.ok, t.err)
    if isinstance(t, TupleT):
        return t.elements
    if isinstance(t, RecordT):
        return tuple(ft for _, ft in t.fields)
    if isinstance(t, VariantT):
        return tuple(ct for _, ct in t.cases)
    return ()


def _unsupported(t: WitType | None) -> Iterator[Unsupported]:
    if isinstance(t, Unsupported):
        yield t
        return
    for inner in inner_types(t):
        yield from _unsupported(inner)


# When a named type is written out rather than by name.
_NEVER, _ALWAYS, _ANONYMOUS = 0, 1, 2


def _render(t: WitType, expand: int) -> str:
    if isinstance(t, Prim):
        return t.name
    if isinstance(t, ListT):
        return f"list<{_render(t.element, expand)}>"
    if isinstance(t, TupleT):
        return f"tuple<{', '.join(_render(e, expand) for e in t.elements)}>"
    if isinstance(t, OptionT):
        return f"option<{_render(t.inner, expand)}>"
    if isinstance(t, ResultT):
        if t.ok is None and t.err is None:
            return "result"
        ok = "_" if t.ok is None else _render(t.ok, expand)
        return f"result<{ok}>" if t.err is None else f"result<{ok}, {_render(t.err, expand)}>"
    if isinstance(t, HandleT):
        name = render_ident(t.resource.name)
        if expand == _NEVER:
            return name if t.own else f"borrow<{name}>"
        return f"{'own' if t.own else 'borrow'}<{name}>"
    if isinstance(t, Unsupported):
        return t.description
    if expand == _NEVER or (expand == _ANONYMOUS and t.name):
        return render_ident(t.name)
    if isinstance(t, RecordT):
        return f"record {{ {', '.join(f'{n}: {_render(ft, expand)}' for n, ft in t.fields)} }}"
    if isinstance(t, VariantT):
        cases = ", ".join(n if ct is None else f"{n}({_render(ct, expand)})" for n, ct in t.cases)
        return f"variant {{ {cases} }}"
    kind = "enum" if isinstance(t, EnumT) else "flags"
    return f"{kind} {{ {', '.join(t.names)} }}"


def named_types(t: WitType | None, _seen: set[int] | None = None) -> Iterator[NamedType]:
    """Named types reachable from ``t``, each after the types it uses (WIT order); a
    resource after the types its members use (a member using the resource itself does
    not repeat it)."""
    if isinstance(t, HandleT):
        seen = set() if _seen is None else _seen
        res = t.resource
        if id(res) in seen:
            return
        seen.add(id(res))
        for _, sig in res.functions():
            for u in (*sig.param_types, sig.result):
                if not (isinstance(u, HandleT) and u.resource is res):
                    yield from named_types(u, seen)
        yield res
        return
    if t is None or isinstance(t, Prim | Unsupported):
        return
    for inner in inner_types(t):
        yield from named_types(inner, _seen)
    if not isinstance(t, ListT | TupleT | OptionT | ResultT):  # those have no name
        yield t


def render_typedef(t: NamedType, indent: str = "  ") -> str:
    """The WIT definition of a named type."""
    pad = indent * 2
    if isinstance(t, ResourceT):
        return _render_resource(t, indent)
    if isinstance(t, RecordT):
        body = "".join(f"{pad}{render_ident(n)}: {render_type(ft)},\n" for n, ft in t.fields)
        return f"{indent}record {render_ident(t.name)} {{\n{body}{indent}}}\n"
    if isinstance(t, VariantT):
        body = "".join(
            f"{pad}{render_ident(n)},\n"
            if ct is None
            else f"{pad}{render_ident(n)}({render_type(ct)}),\n"
            for n, ct in t.cases
        )
        return f"{indent}variant {render_ident(t.name)} {{\n{body}{indent}}}\n"
    kind = "enum" if isinstance(t, EnumT) else "flags"
    body = "".join(f"{pad}{render_ident(n)},\n" for n in t.names)
    return f"{indent}{kind} {render_ident(t.name)} {{\n{body}{indent}}}\n"


def _render_resource(t: ResourceT, indent: str) -> str:
    docs = "".join(f"{indent}/// {line}".rstrip() + "\n" for line in t.docs)
    members = []
    pad = indent * 2
    if t.constructor is not None:
        params = render_func(t.constructor).removeprefix("func")
        members.append(f"{pad}constructor{params};\n")
    members.extend(f"{pad}{render_ident(n)}: {sig.render()};\n" for n, sig in t.methods)
    members.extend(f"{pad}{render_ident(n)}: static {sig.render()};\n" for n, sig in t.statics)
    name = render_ident(t.name)
    if not members:
        return f"{docs}{indent}resource {name};\n"
    return f"{docs}{indent}resource {name} {{\n{''.join(members)}{indent}}}\n"


def resources_in(t: WitType | None) -> Iterator[HandleT]:
    """Every resource handle inside ``t`` (not looking into resources' members)."""
    if isinstance(t, HandleT):
        yield t
        return
    for inner in inner_types(t):
        yield from resources_in(inner)


def handles_in(sig: FuncSig) -> Iterator[HandleT]:
    """Every resource handle in a signature's parameters and result."""
    for t in (*sig.param_types, sig.result):
        yield from resources_in(t)


def interface_types(functions: Iterable[FuncSig]) -> Iterator[NamedType]:
    """Every named type the ``functions`` use, in WIT order (repeats included)."""
    for sig in functions:
        for t in (*sig.param_types, sig.result):
            yield from named_types(t)


@attrs.frozen
class Interface:
    """A WIT interface to render: its functions in order, and the ``///`` lines above it."""

    name: str
    functions: tuple[tuple[str, FuncSig], ...]
    docs: tuple[str, ...] = ()
    #: Resources defined here whether or not a function uses them (a host's own types).
    resources: tuple[ResourceT, ...] = ()


@attrs.frozen
class World:
    """A WIT world that exports interfaces of its package, with its ``///`` lines."""

    name: str
    exports: tuple[str, ...]
    docs: tuple[str, ...] = ()


def _doc_lines(docs: Iterable[str]) -> str:
    return "".join(f"/// {line}".rstrip() + "\n" for line in docs)


def render_interface(interface: Interface) -> str:
    """``interface name { ... }``: the named types its functions use (each name once, the
    first type of that name), then the functions."""
    out = [_doc_lines(interface.docs), f"interface {render_ident(interface.name)} {{\n"]
    seen: set[str] = set()
    used = [*interface.resources, *interface_types(sig for _, sig in interface.functions)]
    for res in interface.resources:  # what their members use first, then themselves
        used[:0] = [n for n in named_types(HandleT(res)) if n is not res]
    for named in used:
        if named.name not in seen:
            seen.add(named.name)
            out.append(render_typedef(named) + "\n")
    if not interface.functions and len(out) > 2:  # types only: no blank line before `}`
        out[-1] = out[-1].removesuffix("\n")
    out.extend(f"  {render_ident(n)}: {sig.render()};\n" for n, sig in interface.functions)
    out.append("}\n")
    return "".join(out)


def render_world(world: World) -> str:
    exports = "".join(f"  export {render_ident(e)};\n" for e in world.exports)
    return f"{_doc_lines(world.docs)}world {render_ident(world.name)} {{\n{exports}}}\n"


def render_package(
    package: PackageId | str,
    interfaces: Iterable[Interface],
    *,
    comments: Iterable[str] = (),
    world: World | None = None,
) -> str:
    """A WIT document: ``package``, each interface, ``//`` comment lines, then ``world``;
    a blank line before each."""
    out = [f"package {package};\n"]
    out.extend("\n" + render_interface(i) for i in interfaces)
    out.extend(f"\n// {c}\n" for c in comments)
    if world is not None:
        out.append("\n" + render_world(world))
    return "".join(out)
