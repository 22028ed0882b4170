"""airssys_plugins/_attrs behaves as attrs for everything the package declares with it.

Each test declares the same class twice, once with attrs and once with the facade, and
checks that both do the same thing, so a difference from attrs fails here rather than in
whatever record happens to rely on it.
"""

from __future__ import annotations

import copy
import inspect
import pickle
import re
import weakref
from typing import Any, ClassVar

import attrs as real
import pytest

from airssys_plugins import _attrs as facade


@pytest.fixture(params=["attrs", "facade", "facade-compiled"])
def lib(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Any:
    """attrs, and the facade with records made by its generic __init__ (the first TIER_UP
    of each class) and by the compiled one (what a class gets after that)."""
    if request.param == "facade-compiled":
        monkeypatch.setattr(facade, "TIER_UP", 0)
    return real if request.param == "attrs" else facade


BOTH = pytest.mark.usefixtures("lib")


def _point(lib: Any) -> type:
    @lib.frozen
    class Point:
        x: int
        y: int = 0
        tags: tuple[str, ...] = lib.field(factory=tuple, converter=tuple)
        _secret: str = lib.field(default="s", repr=False)
        label: str = lib.field(default="", eq=False, kw_only=True)
        total: int = lib.field(init=False)
        limit: ClassVar[int] = 3

        @total.default
        def _total(self) -> int:
            return self.x + self.y

    return Point


def _pair(lib: Any) -> tuple[Any, Any]:
    return _point(real)(1, 2, ["a"], "t", label="l"), _point(lib)(1, 2, ["a"], "t", label="l")


@BOTH
def test_init_defaults_factories_converters_and_takes_self_defaults(lib: Any) -> None:
    Point = _point(lib)
    p = Point(1, 2, ["a", "b"], "hidden", label="here")
    assert (p.x, p.y, p.tags, p._secret, p.label, p.total) == (
        1,
        2,
        ("a", "b"),
        "hidden",
        "here",
        3,
    )
    q = Point(5)
    assert (q.y, q.tags, q._secret, q.label, q.total) == (0, (), "s", "", 5)
    assert Point.limit == 3
    assert "limit" not in [f.name for f in lib.fields(Point)]
    with pytest.raises(TypeError):
        Point()  # x is required
    with pytest.raises(TypeError):
        Point(1, 2, (), "s", "positional label")  # label is keyword-only
    with pytest.raises(TypeError):
        Point(1, total=4)  # not an init argument


def test_the_same_repr_eq_hash_and_signature_as_attrs() -> None:
    a, b = _pair(facade)
    assert repr(a) == repr(b)
    assert repr(b) == "Point(x=1, y=2, tags=('a',), label='l', total=3)"
    Point = type(b)
    assert b == Point(1, 2, ("a",), "t", label="other label")  # label has eq=False
    assert b != Point(1, 3, ("a",), "t")
    assert hash(b) == hash(Point(1, 2, ("a",), "t", label="x"))
    assert b != a
    assert a != b
    assert (b == 1) is False
    assert str(inspect.signature(type(a))) == str(inspect.signature(Point))
    assert Point.__match_args__ == type(a).__match_args__


@BOTH
def test_frozen_records_refuse_changes_with_attrs_exception(lib: Any) -> None:
    p = _point(lib)(1)
    with pytest.raises(real.exceptions.FrozenInstanceError):
        p.x = 2
    with pytest.raises(real.exceptions.FrozenInstanceError):
        del p.x
    with pytest.raises(AttributeError):
        p.not_a_field = 1  # slotted: no __dict__
    assert not hasattr(p, "__dict__")
    assert weakref.ref(p)() is p


@BOTH
def test_validators_run_after_every_field_is_set_with_attrs_messages(lib: Any) -> None:
    seen: list[tuple[str, Any]] = []

    def log(inst: Any, attribute: Any, value: Any) -> None:
        seen.append((attribute.name, inst.b))  # b is set already when a is validated

    @lib.frozen
    class Checked:
        a: int = lib.field(validator=[log, lib.validators.gt(0)])
        b: str = lib.field(default="x", validator=lib.validators.in_(("x", "y")))
        c: float = lib.field(default=0.0, validator=lib.validators.ge(0))
        d: tuple[str, ...] = lib.field(
            default=(), validator=lib.validators.deep_iterable(lib.validators.in_({"p", "q"}))
        )

    Checked(1, "y", 0.0, ("p", "q"))
    assert seen == [("a", "y")]

    def message(**kwargs: Any) -> str:
        with pytest.raises(ValueError, match="must be") as raised:
            Checked(**kwargs)
        return str(raised.value.args[0])

    assert message(a=0) == "'a' must be > 0: 0"
    assert message(a=1, b="z") == "'b' must be in ('x', 'y') (got 'z')"
    assert message(a=1, c=-1) == "'c' must be >= 0: -1"
    assert message(a=1, d=("p", "r")).startswith("'d' must be in ")
    assert message(a=1, b=["x"]).startswith("'b' must be in")  # unhashable: not TypeError


@BOTH
def test_post_init_runs_last_and_own_init_gets_attrs_init(lib: Any) -> None:
    @lib.frozen
    class Post:
        a: int

        def __attrs_post_init__(self) -> None:
            object.__setattr__(self, "a", self.a * 10)

    assert Post(2).a == 20

    @lib.frozen(init=False)
    class Own:
        a: int
        b: str

        def __init__(self, text: str) -> None:
            self.__attrs_init__(len(text), text)

    assert (Own("abc").a, Own("abc").b) == (3, "abc")
    assert repr(Own("ab")) == "Own(a=2, b='ab')"


@BOTH
def test_inherited_fields_come_first_and_super_still_works(lib: Any) -> None:
    @lib.frozen
    class Base:
        a: int
        b: str = "b"

        def describe(self) -> str:
            return f"base {self.a}"

    @lib.frozen
    class Child(Base):
        c: int = 0

        def describe(self) -> str:
            return "child, " + super().describe()

    child = Child(1, "x", 2)
    assert [f.name for f in lib.fields(Child)] == ["a", "b", "c"]
    assert (child.a, child.b, child.c) == (1, "x", 2)
    assert child.describe() == "child, base 1"
    assert isinstance(child, Base)
    assert child != Base(1, "x")


@BOTH
def test_mutable_records_convert_and_validate_on_assignment(lib: Any) -> None:
    @lib.define
    class Counter:
        n: int = lib.field(default=0, converter=int, validator=lib.validators.ge(0))
        seen: list[int] = lib.field(factory=list)

    c = Counter("3")  # type: ignore[arg-type]
    assert c.n == 3
    c.n = "4"  # type: ignore[assignment]
    assert c.n == 4
    with pytest.raises(ValueError, match="must be >= 0"):
        c.n = -1
    assert Counter().seen is not Counter().seen
    with pytest.raises(TypeError):
        hash(c)  # mutable and compared by value: unhashable, as in attrs
    assert Counter(1) == Counter(1)

    @lib.define(eq=False)
    class Identity:
        n: int = 0

    i = Identity()
    assert i != Identity()
    assert hash(i) == object.__hash__(i)


@BOTH
def test_pickle_and_copy_round_trip(lib: Any) -> None:
    p = _point(lib)(1, 2, ("a",), "t", label="l")
    globals()["Point"] = type(p)  # pickle finds the class by name
    type(p).__qualname__ = "Point"
    try:
        for q in (pickle.loads(pickle.dumps(p)), copy.copy(p), copy.deepcopy(p)):
            assert q == p
            assert q.label == "l"
            assert q._secret == "t"
            assert q.total == 3
    finally:
        del globals()["Point"]


def test_attrs_own_helpers_work_on_facade_records_and_back() -> None:
    a, b = _pair(facade)
    assert real.has(type(b))
    assert facade.has(type(a))
    assert [f.name for f in real.fields(type(b))] == [f.name for f in real.fields(type(a))]
    assert real.asdict(b) == real.asdict(a) == facade.asdict(a) == facade.asdict(b)
    assert real.astuple(b, recurse=False) == facade.astuple(a) == facade.astuple(b)
    for evolve in (real.evolve, facade.evolve, type(b).__replace__):
        changed = evolve(b, y=9, secret="new")
        assert (changed.y, changed._secret, changed.total) == (9, "new", 10)
    assert not facade.has(int)
    with pytest.raises(TypeError):
        facade.fields(int)


def test_asdict_recurses_like_attrs() -> None:
    for lib in (real, facade):

        @lib.frozen
        class Inner:
            v: int

        @lib.frozen
        class Outer:
            one: Inner
            many: tuple[Inner, ...]
            by_name: dict[str, Inner]

        o = Outer(Inner(1), (Inner(2),), {"k": Inner(3)})
        assert lib.asdict(o) == {"one": {"v": 1}, "many": ({"v": 2},), "by_name": {"k": {"v": 3}}}


def test_a_record_pays_for_its_init_only_when_made() -> None:
    @facade.frozen
    class Lazy:
        a: int

    assert getattr(Lazy.__init__, "_lazy", False)
    for i in range(facade.TIER_UP):
        assert Lazy(i).a == i
    assert getattr(Lazy.__init__, "_lazy", False)  # made by the generic __init__ so far
    assert Lazy(-1).a == -1
    assert getattr(Lazy.__init__, "_generated", False)  # compiled now
    assert Lazy(2).a == 2
    assert str(inspect.signature(Lazy)) == "(a: 'int') -> None"


def test_the_generic_init_refuses_bad_arguments_as_python_does() -> None:
    @facade.frozen
    class Two:
        a: int
        b: str = "b"
        c: int = facade.field(default=0, kw_only=True)

    @facade.frozen
    class KeywordNeeded:
        a: int
        k: int = facade.field(kw_only=True)

    for bad, message in (
        (lambda: Two(), "missing 1 required argument(s): 'a'"),
        (lambda: KeywordNeeded(1), "missing 1 required argument(s): 'k'"),
        (lambda: Two(1, "x", 3), "takes 3 positional arguments but 4 were given"),
        (lambda: Two(1, a=2), "got multiple values for argument 'a'"),
        (lambda: Two(1, d=2), "got an unexpected keyword argument 'd'"),
    ):
        with pytest.raises(TypeError, match=re.escape(message)):
            bad()


def test_a_field_without_an_annotation_is_refused() -> None:
    with pytest.raises(TypeError, match=r"fields without a type annotation: \['b'\]"):

        @facade.frozen
        class Bad:
            a: int
            b = facade.field(default=1)


def test_attrs_and_cattrs_see_attrs_attributes_on_facade_records() -> None:
    """``__attrs_attrs__`` of a facade record is attrs' own: ``attrs.fields(cls).name``,
    ``NOTHING`` for a required field, ``Factory`` defaults, and cattrs structures and
    unstructures it as it does the same attrs class."""
    import cattrs

    made = {}
    for lib in (real, facade):

        @lib.frozen
        class Config:
            name: str
            retries: int = 3
            tags: tuple[str, ...] = lib.field(factory=tuple, converter=tuple)

        made[lib] = Config
    for Config in made.values():
        fields = real.fields(Config)
        assert isinstance(fields[0], real.Attribute)
        assert fields.name.default is real.NOTHING
        assert fields.retries.default == 3
        assert isinstance(fields.tags.default, real.Factory)
        real.resolve_types(Config)
        value = cattrs.structure({"name": "n", "tags": ["a"]}, Config)
        assert (value.name, value.retries, value.tags) == ("n", 3, ("a",))
        assert cattrs.unstructure(value) == {"name": "n", "retries": 3, "tags": ["a"]}
        with pytest.raises(cattrs.ClassValidationError) as failed:
            cattrs.structure({"retries": 1}, Config)
        assert [type(e) for e in failed.value.exceptions] == [KeyError]  # "name" is missing


def test_what_the_facade_does_not_support_is_refused_when_the_class_is_made() -> None:
    import functools

    with pytest.raises(TypeError, match="not supported"):

        @facade.frozen
        class Cached:
            a: int

            @functools.cached_property
            def double(self) -> int:
                return self.a * 2

    with pytest.raises(TypeError, match="hash"):

        @facade.frozen
        class Hashed:
            a: int = facade.field(default=0, hash=False)


def test_a_plain_field_is_the_field_its_keywords_make() -> None:
    """``_Field.plain`` (the import's quick path for a field with a plain default) gives
    every slot the value ``_Field(default=...)`` gives."""
    for default in (facade.NOTHING, 0, "x", None):
        quick, made = facade._Field.plain(default), facade._Field(default=default)
        for slot in facade._Field.__slots__:
            assert getattr(quick, slot) == getattr(made, slot), slot
