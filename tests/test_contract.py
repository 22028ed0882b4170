"""Hookspecs -> WIT: the type mapping, naming, rejections and generated WIT text."""

from __future__ import annotations

import dataclasses
import enum
import functools
import subprocess
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, Optional

import attrs
import pluggy
import pytest

from airssys_plugins import (
    Contract,
    HookspecError,
    Result,
    char,
    f32,
    s8,
    s16,
    s32,
    s64,
    u8,
    u16,
    u32,
    u64,
    variant,
    wit_binding,
)
from airssys_plugins.authoring.build import find_tool
from airssys_plugins.contract.wit import PackageId, kebab, version_compatible

from .kitchen_hooks import KitchenHooks

spec = pluggy.HookspecMarker("maptest")


@attrs.frozen
class Inner:
    value: u8


@dataclasses.dataclass
class Outer:
    inner_list: list[Inner]
    maybe: Optional[str]  # noqa: UP045 - Optional must map like `| None`


class Mode(enum.Enum):
    FAST_LANE = "f"
    SLOW = "s"


class Access(enum.Flag):
    READ = 1
    WRITE = 2


@variant
class Event:
    pass


@attrs.frozen
class Started(Event):
    at: u64


@attrs.frozen
class Stopped(Event):
    pass


def _sig(ann: Any) -> str:
    """The WIT written for a one-parameter hook annotated with ``ann``."""

    def probe(self: object, value: object) -> None: ...

    probe.__annotations__ = {"value": ann, "return": None}

    class Specs:
        pass

    Specs.probe = spec(probe)  # type: ignore[attr-defined]
    contract = Contract.from_hookspecs(Specs, package="map:test@1.0.0")
    return contract.hooks["probe"].signature.render()


@pytest.mark.parametrize(
    ("annotation", "wit"),
    [
        (str, "string"),
        (bytes, "list<u8>"),
        (bool, "bool"),
        (int, "s64"),
        (float, "f64"),
        (u8, "u8"),
        (u16, "u16"),
        (u32, "u32"),
        (u64, "u64"),
        (s8, "s8"),
        (s16, "s16"),
        (s32, "s32"),
        (s64, "s64"),
        (f32, "f32"),
        (char, "char"),
        (list[str], "list<string>"),
        (list[list[u8]], "list<list<u8>>"),
        (tuple[u32, str], "tuple<u32, string>"),
        (str | None, "option<string>"),
        (Optional[u32], "option<u32>"),  # noqa: UP045
        (Result[u32, str], "result<u32, string>"),
        (Result[None, str], "result<_, string>"),
        (Result[u32, None], "result<u32>"),
        (Result[None, None], "result"),
        (Inner, "inner"),
        (Outer, "outer"),
        (Mode, "mode"),
        (Access, "access"),
        (Event, "event"),
        (list[Event | None], "list<option<event>>"),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_annotation_maps_to_wit(annotation: Any, wit: str) -> None:
    """Each supported annotation maps to the documented WIT type."""
    assert _sig(annotation) == f"func(value: {wit})"


def test_named_types_are_defined_in_the_hook_interface() -> None:
    """Records, enums, flags and variants get WIT definitions with kebab-case names."""

    class Specs:
        @spec
        def handle(self, outer: Outer, mode: Mode, access: Access, event: Event) -> Inner: ...

    text = Contract.from_hookspecs(Specs, package="map:test@1.0.0").wit()
    assert "record inner {\n    value: u8,\n  }" in text
    assert "record outer {\n    inner-list: list<inner>,\n    maybe: option<string>,\n  }" in text
    assert "enum mode {\n    fast-lane,\n    slow,\n  }" in text
    assert "flags access {\n    read,\n    write,\n  }" in text
    assert "variant event {\n    started(u64),\n    stopped,\n  }" in text
    assert "handle: func(outer: outer, mode: mode, access: access, event: event) -> inner;" in text
    assert text.index("record inner") < text.index("record outer")  # definitions before use


@pytest.mark.parametrize(
    ("annotation", "message"),
    [
        (Any, "unsupported annotation Any; every parameter needs a concrete type"),
        (dict[str, int], "WIT has no map type"),
        (list, "give the element type"),
        (tuple[int, ...], "a WIT tuple has a fixed size"),
        (int | str, "WIT has no untagged unions"),
        (object, "unsupported annotation object"),
    ],
    ids=["Any", "dict", "bare-list", "var-tuple", "union", "object"],
)
def test_unsupported_annotations_name_hook_and_parameter(annotation: Any, message: str) -> None:
    """Unsupported annotations raise HookspecError naming the hook and the parameter."""
    with pytest.raises(HookspecError, match=message) as info:
        _sig(annotation)
    assert info.value.hook == "probe"
    assert info.value.parameter == "value"
    assert "hook 'probe', parameter 'value'" in str(info.value)


def test_missing_annotations_are_rejected() -> None:
    """A parameter or return without annotation is an error that says how to fix it."""

    class NoParam:
        @spec
        def hook(self, text) -> None: ...  # type: ignore[no-untyped-def]

    class NoReturn:
        @spec
        def hook(self, text: str): ...  # type: ignore[no-untyped-def]

    with pytest.raises(HookspecError, match="parameter 'text' has no annotation"):
        Contract.from_hookspecs(NoParam)
    with pytest.raises(HookspecError, match=r"has no return annotation; annotate it \(`-> None`"):
        Contract.from_hookspecs(NoReturn)


@attrs.define
class Node:
    children: list[Node]


def test_recursive_types_are_rejected() -> None:
    """WIT types cannot refer to themselves."""
    with pytest.raises(HookspecError, match="Node refers to itself"):
        _sig(Node)


def test_every_bad_hookspec_reported_at_once() -> None:
    """Every problem of a hookspec class, several in one hook too, in one HookspecError."""

    class Broken:
        @spec
        def one(self, x: Any, y, *rest) -> None: ...  # type: ignore[no-untyped-def]

        @spec
        def two(self, y: dict[str, str]): ...  # type: ignore[no-untyped-def]

        @spec
        def fine(self, x: int) -> int: ...

    with pytest.raises(HookspecError) as info:
        Contract.from_hookspecs(Broken)
    error = info.value
    assert [(p.hook, p.parameter) for p in error.problems] == [
        ("one", "x"),
        ("one", "y"),
        ("one", "rest"),
        ("two", "y"),
        ("two", "return"),
    ]
    message = str(error)
    assert message.startswith("the hookspecs of 'test_every_bad_hookspec_reported_at_once.")
    assert "5 problems, every one listed:\n  - hook 'one', parameter 'x'" in message
    assert all(str(p) in message for p in error.problems)
    assert error.hook is None  # of several hooks
    with pytest.raises(HookspecError) as one_hook:  # problems of one hook: its name is set
        Contract.from_hookspecs(type("Two", (), {"two": Broken.__dict__["two"]}))
    assert (one_hook.value.hook, len(one_hook.value.problems)) == ("two", 2)

    class One:
        @spec
        def one(self, x: Any) -> None: ...

    with pytest.raises(HookspecError) as single:  # one problem: the error itself
        Contract.from_hookspecs(One)
    assert (single.value.parameter, single.value.problems) == ("x", ())


@pytest.mark.parametrize(
    ("python", "wit"),
    [
        ("detect_language", "detect-language"),
        ("HTTPServer", "http-server"),
        ("level_2", "level2"),
        ("MaxLength", "max-length"),
        ("x", "x"),
        ("_private_", "private"),
    ],
)
def test_kebab_case(python: str, wit: str) -> None:
    """Python names become WIT kebab-case identifiers."""
    assert kebab(python) == wit


def test_keywords_are_escaped() -> None:
    """A parameter named like a WIT keyword is written %escaped."""

    class Specs:
        @spec
        def convert(self, type: str, list: u32) -> None: ...

    text = Contract.from_hookspecs(Specs, package="map:test@1.0.0").wit()
    assert "convert: func(%type: string, %list: u32);" in text


def test_default_package_and_explicit_package() -> None:
    """The package defaults to <project>:hooks@1.0.0; a bad id is a clear error."""

    class Specs:
        @spec
        def ping(self) -> None: ...

    assert str(Contract.from_hookspecs(Specs).package) == "maptest:hooks@1.0.0"
    with pytest.raises(ValueError, match="not semver"):
        Contract.from_hookspecs(Specs, package="a:b@1.0")
    with pytest.raises(ValueError, match="is not a WIT package id"):
        Contract.from_hookspecs(Specs, package="Not Valid")


@pytest.mark.parametrize(
    ("expected", "actual", "ok"),
    [
        ("1.0.0", "1.4.2", True),
        ("1.2.0", "1.0.0", True),
        ("1.0.0", "2.0.0", False),
        ("0.2.0", "0.2.5", True),
        ("0.2.0", "0.3.0", False),
        ("0.0.1", "0.0.2", False),
        (None, None, True),
        ("1.0.0", None, False),
    ],
)
def test_version_compatibility(expected: str | None, actual: str | None, ok: bool) -> None:
    """Semver caret rule: same major; for 0.x the same minor; 0.0.x exact."""
    assert version_compatible(expected, actual) is ok


def test_package_id_parse() -> None:
    pkg = PackageId.parse("textpipe:hooks@1.2.3")
    assert (pkg.namespace, pkg.name, pkg.version) == ("textpipe", "hooks", "1.2.3")
    assert pkg.interface("detect-language") == "textpipe:hooks/detect-language@1.2.3"


def test_generated_wit_is_accepted_by_wasm_tools(tmp_path: Path) -> None:
    """The WIT for a contract using every kind of type parses with wasm-tools."""
    contract = Contract.from_hookspecs(KitchenHooks, package="test:kitchen@1.0.0")
    wit_file = tmp_path / "kitchen.wit"
    wit_file.write_text(contract.wit())
    proc = subprocess.run(
        [find_tool("wasm-tools"), "component", "wit", str(wit_file)], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    assert "interface echo-lines" in proc.stdout


def test_world_with_a_subset_of_hooks(tmp_path: Path) -> None:
    """wit(hooks=...) writes a world exporting only those hooks (all interfaces stay)."""
    contract = Contract.from_hookspecs(KitchenHooks, package="test:kitchen@1.0.0")
    text = contract.wit(world="small", hooks=["echo_u8", "divide"])
    world = text[text.index("world small") :]
    assert world == "world small {\n  export divide;\n  export echo-u8;\n}\n"
    with pytest.raises(ValueError, match="unknown hook"):
        contract.wit(hooks=["nope"])


def test_wit_binding_and_bindings_argument() -> None:
    """Hooks bound to existing WIT keep their binding and are not generated."""

    class Specs:
        @spec
        @wit_binding("docs:adder/add@0.1.0#add")
        def add(self, x: u32, y: u32) -> u32: ...

        @spec
        def root(self, x: u32) -> u32: ...

        @spec
        def mine(self) -> None: ...

    contract = Contract.from_hookspecs(
        Specs, package="map:test@1.0.0", bindings={"root": "roundtrip"}
    )
    assert str(contract.hooks["add"].binding) == "docs:adder/add@0.1.0#add"
    assert contract.hooks["root"].binding.interface is None
    text = contract.wit()
    assert "interface mine" in text
    assert "interface add" not in text
    assert "// Hook `add` is bound to docs:adder/add@0.1.0#add: func(x: u32, y: u32) -> u32" in text
    with pytest.raises(HookspecError, match=r"bindings name unknown hook\(s\) \['nope'\]"):
        Contract.from_hookspecs(Specs, bindings={"nope": "x"})
    wit_binding("adder#add")  # an inline exported interface named adder: valid
    with pytest.raises(
        ValueError, match="neither a full interface name nor the name of an inline interface"
    ):
        wit_binding("Adder Pkg#add")


@attrs.frozen
class Single:
    value: u32


def test_type_named_like_its_hook_is_rejected() -> None:
    """WIT forbids a type and a function of the same name in one interface."""

    class Specs:
        @spec
        def single(self, item: Single) -> None: ...

    with pytest.raises(
        HookspecError, match="type 'single' has the same WIT name as the hook's function"
    ):
        Contract.from_hookspecs(Specs, package="map:test@1.0.0").wit()


Alias = "u32"  # a name bound to a string: typing evaluates it again


@attrs.frozen
class Forward:
    """A record named by hookspecs before and after it is defined."""

    x: int


def _asked_typing(resolve: Callable[[Any], object], objects: Iterable[Any]) -> list[object]:
    """The objects whose hints ``resolve`` left to typing.get_type_hints."""
    import typing

    asked: list[object] = []
    real = typing.get_type_hints

    def counting(obj: object, **kwargs: object) -> object:
        asked.append(obj)
        return real(obj, **kwargs)  # type: ignore[arg-type]

    with pytest.MonkeyPatch.context() as m:
        m.setattr(typing, "get_type_hints", counting)
        for obj in objects:
            resolve(obj)
    return asked


def test_type_hints_shortcut_agrees_with_typing() -> None:
    """function_signature reads plain-name annotations without typing's compile; every
    kind of annotation resolves exactly as typing.get_type_hints(include_extras=True)."""
    import typing

    from airssys_plugins.contract import mapping
    from airssys_plugins.contract.annotations import Result, u32

    def plain(a: u32, b: int, c: str, d: bytes) -> None: ...
    def nested(a: list[u32], b: str | None) -> Result[u32, str]: ...
    def aliased(a: Alias) -> bool: ...  # type: ignore[valid-type]
    def unannotated(a, b: int):  # type: ignore[no-untyped-def]
        ...

    def forward(a: list[Forward], b: dict[str, tuple[u32, ...]]) -> Optional[Forward]: ...  # noqa: UP045
    def literal(a: Literal["x", "y"], b: Annotated[int, "doc"]) -> tuple[()]: ...
    def quoted(a: list["Forward"]) -> "Forward": ...  # noqa: UP037
    def broken(a: NoSuchName) -> None: ...  # type: ignore[name-defined]  # noqa: F821

    namespace = {"u32": u32, "Result": Result, "Alias": Alias, "Forward": Forward,
                 "Optional": typing.Optional, "Literal": typing.Literal,
                 "Annotated": typing.Annotated}  # fmt: skip
    functions = (plain, nested, aliased, unannotated, forward, literal, quoted)
    for func in functions:
        func.__globals__.update(namespace)

    # wrapped by a decorator of another module: the names are the wrapped function's
    def decorated(func: Callable[..., object]) -> Callable[..., object]:
        other: dict[str, Any] = {"Forward": int, "u32": str}
        exec("def wrapper(*args, **kwargs): pass", other)
        return functools.update_wrapper(other["wrapper"], func)

    wrapped, wrapped_forward = decorated(nested), decorated(forward)
    functions = (*functions, wrapped, wrapped_forward)
    for func in functions:
        assert mapping._type_hints(func) == typing.get_type_hints(func, include_extras=True)
    assert mapping._type_hints(plain)["return"] is type(None)
    with pytest.raises(NameError, match="NoSuchName"):  # typing's own error
        mapping._type_hints(broken)
    # the shortcut is taken where typing would hand the values back as they are
    assert _asked_typing(mapping._type_hints, functions) == [aliased, literal, quoted]
    assert mapping._type_hints(wrapped_forward)["a"] == list[Forward]


class _Base:
    inherited: u32


def test_class_type_hints_shortcut_agrees_with_typing() -> None:
    """A record's field types (read for every record and variant case of a contract) resolve
    exactly as typing.get_type_hints(cls, include_extras=True), inherited fields included,
    with typing itself taking what is not settled, and its errors."""
    import typing

    from airssys_plugins.contract import mapping

    @dataclasses.dataclass
    class Plain(_Base):
        a: u32
        b: list[Forward]
        c: str | None
        d: None
        e: Annotated[int, "doc"]
        f: ClassVar[int] = 1

    class Local:
        pass

    class OwnName:  # a name found among the class's own attributes (typing looks there too)
        Inner = Local
        x: Inner  # type: ignore[valid-type]

    @attrs.frozen
    class Odd:
        a: Literal["x", "y"]
        b: list["Forward"]  # noqa: UP037
        c: Alias  # type: ignore[valid-type]

    class Broken:
        a: NoSuchName  # type: ignore[name-defined]  # noqa: F821

    for cls in (Plain, OwnName, Odd, Forward, _Base):
        assert mapping._class_type_hints(cls) == typing.get_type_hints(cls, include_extras=True)
    assert mapping._class_type_hints(Plain)["inherited"] is u32
    assert mapping._class_type_hints(Plain)["d"] is type(None)
    with pytest.raises(NameError, match="NoSuchName"):
        mapping._class_type_hints(Broken)
    assert _asked_typing(mapping._class_type_hints, (Plain, OwnName, Odd, Forward)) == [Odd]
