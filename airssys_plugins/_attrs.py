"""attrs' API for the package's own records, at a fraction of attrs' cost at import.

Every module declares its records the attrs way, through this module imported as ``attrs``
(``from .. import _attrs as attrs``): ``@attrs.frozen``, ``@attrs.define``, ``attrs.field``,
``attrs.Factory``, ``@x.default``, ``attrs.validators.in_/gt/ge/deep_iterable``,
``attrs.evolve``, ``attrs.asdict``, ``attrs.astuple``, ``attrs.has`` and ``attrs.fields``.
Type checkers see attrs itself: under ``TYPE_CHECKING`` every name here is attrs' own, so
mypy's attrs plugin checks each constructor, converter and ``evolve``.

At run time the names are this module's. attrs generates each class's methods as source
and compiles it when the class is created, 0.3-0.7 ms a class, and importing attrs costs
about 17 ms; with some 130 records that was most of what importing the package cost a new
process (python-attrs/attrs#575 asks for a cache of that code; there is none). Here a class
is made slotted at once (tens of microseconds); ``__repr__``, ``__eq__`` and ``__hash__`` are
shared functions driven by the class's fields; ``__init__`` is generated and compiled the
first time the class is instantiated, so a process pays only for the records it makes.

The semantics are attrs' for what the package uses, and tests/test_attrs_facade.py checks
them against attrs class by class: field order across base classes, init names without
leading underscores, ``kw_only``, ``init=False`` fields with defaults, converters run before
and validators after every field is set, ``__attrs_post_init__``, frozen instances (raising
attrs' ``FrozenInstanceError``), mutable ones converting and validating on assignment,
``eq`` (same class only) and ``hash`` over the ``eq`` fields, ``repr`` (per field too),
pickling and copying, ``__match_args__`` and a ``__weakref__`` slot. Each class has an
``__attrs_attrs__`` of attrs' own ``Attribute`` objects, made (importing attrs) the first
time attrs or a library built on it asks, so ``attrs.fields``, ``has``, ``asdict``,
``evolve`` and cattrs' structuring work on the package's records as on attrs classes.
"""

from __future__ import annotations

import functools
import inspect
from operator import attrgetter, itemgetter
from typing import TYPE_CHECKING, Any, Final

__all__ = [
    "Factory",
    "asdict",
    "astuple",
    "define",
    "evolve",
    "field",
    "fields",
    "frozen",
    "has",
    "validators",
]


class _Nothing:
    __slots__ = ()

    def __repr__(self) -> str:
        return "NOTHING"

    def __bool__(self) -> bool:
        return False


#: No value given (a field without a default, an argument left out).
NOTHING: Final[Any] = _Nothing()

_setattr = object.__setattr__
_new = object.__new__


class _Field:
    """One field of a record: what attrs calls an ``Attribute`` (the names attrs' helpers read)."""

    __slots__ = (
        "alias",
        "converter",
        "default",
        "eq",
        "inherited",
        "init",
        "kw_only",
        "metadata",
        "name",
        "repr",
        "type",
        "validator",
    )

    def __init__(
        self,
        *,
        default: Any = NOTHING,
        validator: Any = None,
        repr: Any = True,
        eq: bool = True,
        init: bool = True,
        converter: Any = None,
        kw_only: bool = False,
        factory: Any = None,
        alias: str | None = None,
    ) -> None:
        if factory is not None:
            if default is not NOTHING:
                raise ValueError("The `default` and `factory` arguments are mutually exclusive.")
            default = _Factory(factory)
        if isinstance(validator, (list, tuple)):
            validator = _and(tuple(validator))
        self.default = default
        self.validator = validator
        self.repr = repr
        self.eq = eq
        self.init = init
        self.converter = converter
        self.kw_only = kw_only
        self.alias = alias or ""
        self.name = ""
        self.type = None
        self.inherited = False
        self.metadata: dict[str, Any] = {}

    @staticmethod
    def plain(default: Any) -> _Field:
        """``_Field(default=default)`` without the keyword call (most fields of a record,
        made at every new process's import): the same values as ``__init__`` gives."""
        f = _new(_Field)
        f.default, f.validator, f.converter = default, None, None
        f.repr = f.eq = f.init = True
        f.kw_only = f.inherited = False
        f.alias, f.name, f.type = "", "", None
        f.metadata = {}
        return f

    # ``@x.default`` and ``@x.validator`` in a class body, as in attrs.
    def default_(self, method: Any) -> Any:
        self.default = _Factory(method, takes_self=True)
        return method

    def validator_(self, method: Any) -> Any:
        before = object.__getattribute__(self, "validator")
        self.validator = method if before is None else _and((before, method))
        return method

    def _named(self, name: str, inherited: bool) -> _Field:
        f = _Field.__new__(_Field)
        for slot in _Field.__slots__:
            _setattr(f, slot, object.__getattribute__(self, slot))
        f.name = name
        f.alias = self.alias or name.lstrip("_")
        f.inherited = inherited
        return f

    def __repr__(self) -> str:
        return f"Field(name={self.name!r}, default={self.default!r})"


class _FieldInBody(_Field):
    """A field as written in a class body, where ``@x.default`` and ``@x.validator`` are
    decorators (in attrs ``default`` and ``validator`` are both data and decorators)."""

    __slots__ = ()

    def __getattribute__(self, name: str) -> Any:
        if name == "default":
            return object.__getattribute__(self, "default_")
        if name == "validator":
            return object.__getattribute__(self, "validator_")
        return object.__getattribute__(self, name)


class _Factory:
    """A default made for each instance (``takes_self``: from the instance so far)."""

    __slots__ = ("factory", "takes_self")

    def __init__(self, factory: Any, takes_self: bool = False) -> None:
        self.factory = factory
        self.takes_self = takes_self

    def __repr__(self) -> str:
        return f"Factory({self.factory!r}, takes_self={self.takes_self})"


def _field(**options: Any) -> Any:
    """``attrs.field``: what a class body assigns (the options are :class:`_Field`'s)."""
    f = _FieldInBody.__new__(_FieldInBody)
    _Field.__init__(f, **options)
    return f


# ----------------------------------------------------------------------------- validators


class _Validator:
    __slots__ = ("args", "check", "text")

    def __init__(self, check: Any, text: str, *args: Any) -> None:
        self.check = check
        self.text = text
        self.args = args

    def __call__(self, inst: object, attr: _Field, value: Any) -> None:
        self.check(attr, value)

    def __repr__(self) -> str:
        return f"<{self.text} validator>"


def _in(options: Any) -> Any:
    """attrs.validators.in_: the value is one of ``options`` (same message)."""
    original = options
    if isinstance(options, (list, tuple)):
        options = frozenset(options)

    def check(attr: _Field, value: Any) -> None:
        try:
            ok = value in options
        except TypeError:
            ok = False
        if not ok:
            msg = f"'{attr.name}' must be in {original!r} (got {value!r})"
            raise ValueError(msg, attr, original, value)

    return _Validator(check, f"in_ {original!r}")


def _compare(op: str, bound: Any) -> Any:
    def check(attr: _Field, value: Any) -> None:
        if not (value > bound if op == ">" else value >= bound):
            raise ValueError(f"'{attr.name}' must be {op} {bound}: {value}")

    return _Validator(check, f"x {op} {bound}")


def _gt(bound: Any) -> Any:
    """attrs.validators.gt (same message)."""
    return _compare(">", bound)


def _ge(bound: Any) -> Any:
    """attrs.validators.ge (same message)."""
    return _compare(">=", bound)


def _deep_iterable(member_validator: Any, iterable_validator: Any = None) -> Any:
    """attrs.validators.deep_iterable: every member passes ``member_validator``."""

    def check(inst: object, attr: _Field, value: Any) -> None:
        if iterable_validator is not None:
            iterable_validator(inst, attr, value)
        for member in value:
            member_validator(inst, attr, member)

    return check


def _and(validators: tuple[Any, ...]) -> Any:
    def check(inst: object, attr: _Field, value: Any) -> None:
        for v in validators:
            v(inst, attr, value)

    return check


# ----------------------------------------------------------------------------- classes

_CLASSVAR = ("ClassVar", "typing.ClassVar", "t.ClassVar", "typing_extensions.ClassVar")


def _is_classvar(annotation: Any) -> bool:
    if type(annotation) is str:
        return annotation.startswith(_CLASSVAR)
    return str(annotation).startswith("typing.ClassVar")


def _own_fields(cls: type) -> list[_Field]:
    namespace = cls.__dict__
    annotations = namespace.get("__annotations__")
    if type(annotations) is not dict:  # what inspect reads where annotations are not a dict
        annotations = inspect.get_annotations(cls)
    own: list[_Field] = []
    for name, annotation in annotations.items():
        if _is_classvar(annotation):
            continue
        value = namespace.get(name, NOTHING)
        if isinstance(value, _Field):
            value.__class__ = _Field  # the body's @x.default / @x.validator forms are done
            f = value
            f.alias = f.alias or name.lstrip("_")
        else:  # a plain default or none
            f = _Field.plain(value)
            f.alias = name.lstrip("_")
        f.name = name
        f.type = annotation
        own.append(f)
    # What is still a body field had no annotation (the annotated ones became _Field).
    stray = [k for k, v in namespace.items() if type(v) is _FieldInBody]
    if stray:
        raise TypeError(f"{cls.__qualname__}: fields without a type annotation: {stray}")
    return own


def _all_fields(cls: type, own: list[_Field]) -> tuple[_Field, ...]:
    inherited: list[_Field] = []
    seen = {f.name for f in own}
    for base in reversed(cls.__mro__[1:-1]):
        for f in base.__dict__.get("__record_fields__", ()):
            if f.name in seen or any(f.name == g.name for g in inherited):
                continue
            inherited.append(f._named(f.name, True))
    return tuple(inherited + own)


def _make_class(
    cls: type,
    all_fields: tuple[_Field, ...],
    own: list[_Field],
    weakref: bool,
    methods: dict[str, Any],
) -> type:
    """The slotted class, made once with ``methods`` in its namespace: a special method set
    on a class after it is made costs a walk of the type's slots, each time."""
    bases = cls.__mro__[1:-1]  # (object, last, has neither slots nor __weakref__)
    base_slots = {s for base in bases for s in getattr(base, "__slots__", ()) if isinstance(s, str)}
    names = {f.name for f in own}
    namespace = {
        k: v
        for k, v in cls.__dict__.items()
        if k not in names and k not in ("__dict__", "__weakref__")
    }
    slots = [f.name for f in all_fields if f.name not in base_slots]
    has_weakref = any("__weakref__" in getattr(b, "__dict__", {}) for b in bases)
    if weakref and not has_weakref and "__weakref__" not in base_slots:
        slots.append("__weakref__")
    # Methods using zero-argument super() or __class__ close over the old class.
    with_class = [
        function
        for value in namespace.values()
        if type(value) is not str  # (the module name, the docstring: most of the values)
        for function in ((value,) if type(value) is _PLAIN_FUNCTION else _functions_of(value))
        if "__class__" in function.__code__.co_freevars
    ]
    namespace.update(methods)
    namespace["__slots__"] = tuple(slots)
    namespace["__qualname__"] = cls.__qualname__
    new = type(cls)(cls.__name__, cls.__bases__, namespace)
    for function in with_class:
        code = function.__code__
        function.__closure__[code.co_freevars.index("__class__")].cell_contents = new
    return new


def _functions_of(value: Any) -> tuple[Any, ...]:
    if type(value) is _PLAIN_FUNCTION:
        return (value,)
    if isinstance(value, (classmethod, staticmethod)):
        value = value.__func__
    elif isinstance(value, property):
        return tuple(f for f in (value.fget, value.fset, value.fdel) if f is not None)
    return (value,) if hasattr(value, "__code__") and hasattr(value, "__closure__") else ()


_PLAIN_FUNCTION: Final = type(_functions_of)


def _build(cls: type, *, frozen: bool, eq: bool | None, init: bool, weakref_slot: bool) -> type:
    body = cls.__dict__
    for name, value in body.items():
        # what attrs supports and the facade does not: refused, not silently different
        if name == "__attrs_pre_init__" or isinstance(value, functools.cached_property):
            raise TypeError(
                f"{cls.__qualname__}.{name}: not supported by airssys_plugins._attrs (records "
                "are slotted; use a field with a takes_self default, or a property)"
            )
    own = _own_fields(cls)
    fields_ = _all_fields(cls, own)
    made: list[type] = []  # the new class, for the lazy __init__ made before it
    methods: dict[str, Any] = {
        "__record_fields__": fields_,
        "__attrs_attrs__": _ATTRS_ATTRIBUTES,
        "__match_args__": tuple(f.name for f in fields_ if f.init and not f.kw_only),
    }
    if init and "__init__" not in body:
        methods["__init__"] = _lazy_init(made, cls.__qualname__, "__init__")
        methods["__signature__"] = _SIGNATURE
    else:  # attrs' own __init__ under another name, for the class's __init__ to call
        methods["__attrs_init__"] = _lazy_init(made, cls.__qualname__, "__attrs_init__")
    if "__repr__" not in body:
        methods["__repr__"] = _repr
    if eq is None or eq:
        compared = [f.name for f in fields_ if f.eq]
        methods["__attrs_eq_key__"] = attrgetter(*compared) if compared else None
        if "__eq__" not in body:
            methods["__eq__"] = _eq
        if "__hash__" not in body:
            methods["__hash__"] = _hash if frozen else None
    if frozen:
        methods["__setattr__"] = _frozen_setattr
        methods["__delattr__"] = _frozen_delattr
    elif any(f.converter is not None or f.validator is not None for f in fields_):
        methods["__setattr__"] = _checked_setattr
    if init:  # copy.replace(record, **changes) (Python 3.13), as attrs classes have it
        methods["__replace__"] = _evolve
    methods["__getstate__"] = _getstate
    methods["__setstate__"] = _setstate
    new = _make_class(cls, fields_, own, weakref_slot, methods)
    made.append(new)
    return new


def _decorator(frozen: bool) -> Any:
    def decorate(
        maybe_cls: type | None = None,
        *,
        eq: bool | None = None,
        order: bool = False,
        init: bool = True,
        weakref_slot: bool = True,
    ) -> Any:
        if order:
            raise TypeError("records are not ordered; compare a key instead")

        def wrap(cls: type) -> type:
            return _build(cls, frozen=frozen, eq=eq, init=init, weakref_slot=weakref_slot)

        return wrap if maybe_cls is None else wrap(maybe_cls)

    return decorate


# ----------------------------------------------------------------------------- methods


#: Instances a class makes through the generic ``__init__`` before its own is compiled.
#: The generic one follows a plan made once per class and costs about what the compiled
#: one does with keywords (2.6 against 2.5 us for 11 fields), more with positional
#: arguments; compiling costs 80-270 us. A new process's way to its first hook call makes
#: most classes 1-3 times (with 8 here it compiled 20 of them, 4.9 ms; with 50, 0.5 ms:
#: the WIT model's ``Prim`` and the contract's mapper, made 55 times each by the kitchen
#: hookspecs' ``PluginHost()``; with 100, none: 0.9 M instructions less, bench_instructions).
TIER_UP: Final = 100


def _lazy_init(owner: list[type], qualname: str, name: str) -> Any:
    """The ``__init__`` a record starts with; ``owner`` holds the class once it is made."""
    made = 0

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        nonlocal made
        made += 1
        cls = owner[0]
        if made <= TIER_UP:
            _generic_init(cls, self, args, kwargs)
            return
        real = _compile_init(cls, name)
        setattr(cls, name, real)
        real(self, *args, **kwargs)

    __init__.__qualname__ = f"{qualname}.{name}"
    __init__._lazy = True  # type: ignore[attr-defined]
    return __init__


def _generic_init(cls: type, self: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    """What the compiled ``__init__`` does, following the class's plan (made once)."""
    plan: _InitPlan | None = cls.__dict__.get("__record_init_plan__")
    if plan is None:
        plan = _InitPlan(cls)
        cls.__record_init_plan__ = plan  # type: ignore[attr-defined]
    count = len(args)
    given: dict[str, Any] | None = None
    if kwargs or not plan.fewest <= count <= len(plan.positional):
        given = _given(plan, args, kwargs)
    # else positional arguments only, every required one given (the WIT model's records
    # are made so): each field's value is its argument or its default, no dict made
    for name, alias, position, kind, default, converter in plan.steps:
        if position < count if given is None else alias is not None and alias in given:
            value = args[position] if given is None else given[alias]  # type: ignore[index]
        elif kind == _PLAIN:
            value = default
        elif kind == _MADE:
            value = default()
        elif kind == _FROM_SELF:
            value = default(self)
        else:  # init=False without a default: left unset
            continue
        _setattr(self, name, value if converter is None else converter(value))
    for f in plan.validated:
        f.validator(self, f, getattr(self, f.name))
    if plan.post_init:
        self.__attrs_post_init__()


def _given(plan: _InitPlan, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
    """The arguments by name, refused as Python refuses a call of the compiled __init__."""
    if args:
        if len(args) > len(plan.positional):
            raise TypeError(
                f"{plan.where} takes {len(plan.positional) + 1} positional arguments "
                f"but {len(args) + 1} were given"
            )
        given = dict(zip(plan.positional, args, strict=False))
        for key in kwargs:
            if key in given:
                raise TypeError(f"{plan.where} got multiple values for argument {key!r}")
        given.update(kwargs)
    else:
        given = kwargs
    if not plan.names.issuperset(given):
        unexpected = next(key for key in given if key not in plan.names)
        raise TypeError(f"{plan.where} got an unexpected keyword argument {unexpected!r}")
    if not plan.required.issubset(given):
        missing = [a for a in plan.positional_required if a not in given]
        listed = " and ".join(", ".join(repr(m) for m in missing).rsplit(", ", 1))
        raise TypeError(f"{plan.where} missing {len(missing)} required argument(s): {listed}")
    return given


_PLAIN, _MADE, _FROM_SELF, _UNSET = range(4)


class _InitPlan:
    """A record class's fields as the generic ``__init__`` reads them, worked out once."""

    __slots__ = ("fewest", "names", "positional", "positional_required", "post_init",
                 "required", "steps", "validated", "where")  # fmt: skip

    def __init__(self, cls: type) -> None:
        fields_: tuple[_Field, ...] = cls.__record_fields__  # type: ignore[attr-defined]
        self.where = f"{cls.__qualname__}.__init__()"
        self.positional = tuple(f.alias for f in fields_ if f.init and not f.kw_only)
        self.names = frozenset(f.alias for f in fields_ if f.init)
        required = [f.alias for f in fields_ if f.init and f.default is NOTHING]
        self.required = frozenset(required)
        self.positional_required = tuple(required)
        steps = []
        for f in fields_:
            default = f.default
            if isinstance(default, _Factory):
                kind = _FROM_SELF if default.takes_self else _MADE
                default = default.factory
            else:
                kind = _UNSET if default is NOTHING else _PLAIN
            steps.append((f.name, f.alias if f.init else None, kind, default, f.converter))
        # Each step with its argument's position, for a call with positional arguments
        # only (past any call's arguments when it has none); and the fewest arguments that
        # give every required field (more than any call's when a required field is
        # keyword-only, so such a call takes the general way, and its error).
        place = {alias: i for i, alias in enumerate(self.positional)}
        beyond = len(self.positional) + 1
        self.steps = tuple(
            (name, alias, place.get(alias, beyond) if alias is not None else beyond, kind, d, c)
            for name, alias, kind, d, c in steps
        )
        needed = [place.get(alias, beyond) for alias in required]
        self.fewest = max(needed) + 1 if needed else 0
        self.validated = tuple(f for f in fields_ if f.validator is not None)
        self.post_init = hasattr(cls, "__attrs_post_init__")


class _AttrsAttributes:
    """``cls.__attrs_attrs__``, what attrs and the libraries built on it (cattrs) read: attrs'
    own ``Attribute`` objects in attrs' tuple (``attrs.fields(cls).name`` works), made the
    first time one of them asks, importing attrs then (whoever asks has it imported)."""

    def __get__(self, instance: object, owner: type) -> Any:
        made = owner.__dict__.get("__attrs_attrs_made__")
        if made is None:
            made = _attrs_attributes(owner)
            owner.__attrs_attrs_made__ = made  # type: ignore[attr-defined]
        return made


def _attrs_attributes(cls: type) -> tuple[Any, ...]:
    import attrs as real

    attrs: Any = real

    fields_: tuple[_Field, ...] = cls.__record_fields__  # type: ignore[attr-defined]
    made = []
    for f in fields_:
        default: Any = f.default
        if default is NOTHING:
            default = attrs.NOTHING
        elif isinstance(default, _Factory):
            default = attrs.Factory(default.factory, takes_self=default.takes_self)
        made.append(
            attrs.Attribute(
                name=f.name,
                default=default,
                validator=f.validator,
                repr=f.repr,
                cmp=None,
                hash=None,
                init=f.init,
                inherited=f.inherited,
                type=f.type,
                converter=f.converter,
                kw_only=f.kw_only,
                eq=f.eq,
                order=False,
                alias=f.alias,
            )
        )
    names = [f.name for f in fields_]
    namespace: dict[str, Any] = {"__slots__": ()}
    for i, name in enumerate(names):
        namespace[name] = property(itemgetter(i))
    made_tuple: tuple[Any, ...] = type(f"{cls.__name__}Attributes", (tuple,), namespace)(made)
    return made_tuple


_ATTRS_ATTRIBUTES: Final = _AttrsAttributes()


class _Signature:
    """``cls.__signature__``, what ``inspect.signature(cls)`` reads first: the parameters of
    the generated ``__init__`` (compiled then, if the class was not instantiated yet)."""

    def __get__(self, instance: object, owner: type) -> Any:
        if instance is not None:
            raise AttributeError("__signature__")
        init = owner.__init__  # type: ignore[misc]
        if getattr(init, "_lazy", False):
            init = _compile_init(owner, "__init__")
            owner.__init__ = init  # type: ignore[misc]
        elif not getattr(init, "_generated", False):  # a subclass's own __init__
            raise AttributeError("__signature__")
        signature = inspect.signature(init)
        return signature.replace(parameters=list(signature.parameters.values())[1:])


_SIGNATURE: Final = _Signature()


def _compile_init(cls: type, name: str) -> Any:
    """``cls.__init__``, generated for its fields as attrs generates it."""
    fields_: tuple[_Field, ...] = cls.__record_fields__  # type: ignore[attr-defined]
    env: dict[str, Any] = {"NOTHING": NOTHING, "_setattr": _setattr}
    positional: list[str] = []
    keyword: list[str] = []
    body: list[str] = []
    checks: list[str] = []
    for i, f in enumerate(fields_):
        arg = f.alias
        value = arg
        if f.init:
            if f.default is NOTHING:
                param = arg
            elif isinstance(f.default, _Factory):
                param = f"{arg}=NOTHING"
            else:
                env[f"_d{i}"] = f.default
                param = f"{arg}=_d{i}"
            (keyword if f.kw_only else positional).append(param)
        if isinstance(f.default, _Factory):
            env[f"_f{i}"] = f.default.factory
            made = f"_f{i}(self)" if f.default.takes_self else f"_f{i}()"
            if f.init:
                body.append(f"if {arg} is NOTHING: {arg} = {made}")
            else:
                value = made
        elif not f.init:
            if f.default is NOTHING:
                continue
            env[f"_d{i}"] = f.default
            value = f"_d{i}"
        if f.converter is not None:
            env[f"_c{i}"] = f.converter
            value = f"_c{i}({value})"
        body.append(f"_setattr(self, {f.name!r}, {value})")
        if f.validator is not None:
            env[f"_v{i}"] = f.validator
            env[f"_a{i}"] = f
            checks.append(f"_v{i}(self, _a{i}, self.{f.name})")
    if hasattr(cls, "__attrs_post_init__"):
        checks.append("self.__attrs_post_init__()")
    params = ", ".join(["self", *positional, *(["*", *keyword] if keyword else [])])
    lines = [f"def __init__({params}):", *(f"    {x}" for x in body + checks or ["pass"])]
    filename = f"<record generated __init__ {cls.__module__}.{cls.__qualname__}>"
    exec(compile("\n".join(lines), filename, "exec"), env)
    function = env["__init__"]
    annotations = {f.alias: f.type for f in fields_ if f.init and f.converter is None and f.type}
    function.__annotations__ = {**annotations, "return": None}
    function.__name__ = name
    function._generated = True
    function.__qualname__ = f"{cls.__qualname__}.{name}"
    function.__module__ = cls.__module__
    return function


def _repr(self: Any) -> str:
    parts = []
    for f in type(self).__record_fields__:
        if not f.repr:
            continue
        value = getattr(self, f.name, NOTHING)
        parts.append(f"{f.name}={f.repr(value) if callable(f.repr) else repr(value)}")
    return f"{type(self).__qualname__.rsplit('>.', 1)[-1]}({', '.join(parts)})"


def _eq(self: Any, other: Any) -> Any:
    if other.__class__ is not self.__class__:
        return NotImplemented
    key = self.__attrs_eq_key__
    return key is None or key(self) == key(other)


def _hash(self: Any) -> int:
    key = self.__attrs_eq_key__
    return hash((type(self).__qualname__, None if key is None else key(self)))


def _frozen_setattr(self: Any, name: str, value: Any) -> None:
    raise _frozen_error()


def _frozen_delattr(self: Any, name: str) -> None:
    raise _frozen_error()


def _frozen_error() -> Exception:
    # attrs' own class, so ``except attrs.exceptions.FrozenInstanceError`` keeps working; it
    # is imported only here, when code tries to change a frozen record.
    from attrs.exceptions import FrozenInstanceError

    return FrozenInstanceError()


def _checked_setattr(self: Any, name: str, value: Any) -> None:
    for f in type(self).__record_fields__:
        if f.name == name:
            if f.converter is not None:
                value = f.converter(value)
            if f.validator is not None:
                f.validator(self, f, value)
            break
    _setattr(self, name, value)


def _getstate(self: Any) -> dict[str, Any]:
    return {
        f.name: getattr(self, f.name) for f in type(self).__record_fields__ if hasattr(self, f.name)
    }


def _setstate(self: Any, state: Any) -> None:
    if isinstance(state, tuple):  # attrs' older pickles: values in field order
        state = dict(zip((f.name for f in type(self).__record_fields__), state, strict=False))
    for name, value in state.items():
        _setattr(self, name, value)


# ----------------------------------------------------------------------------- helpers


def _has(cls: type) -> bool:
    """Is ``cls`` a record or an attrs class? (attrs.has, without importing attrs)."""
    return (
        getattr(cls, "__record_fields__", None) is not None
        or getattr(cls, "__attrs_attrs__", None) is not None
    )


def _fields(cls: type) -> tuple[_Field, ...]:
    """The fields of a record or an attrs class (attrs.fields)."""
    found = getattr(cls, "__record_fields__", None)
    if found is None:
        found = getattr(cls, "__attrs_attrs__", None)
    if found is None:
        raise TypeError(f"{cls!r} is not a record or an attrs class")
    return found  # type: ignore[no-any-return]


def _evolve(inst: Any, **changes: Any) -> Any:
    """A copy of ``inst`` with ``changes`` (attrs.evolve)."""
    cls = type(inst)
    for f in _fields(cls):
        if f.init and f.alias not in changes:
            changes[f.alias] = getattr(inst, f.name)
    return cls(**changes)


def _asdict(inst: Any, *, recurse: bool = True, filter: Any = None) -> dict[str, Any]:
    """``inst``'s fields as a dict, records within made dicts too (attrs.asdict)."""
    out: dict[str, Any] = {}
    for f in _fields(type(inst)):
        value = getattr(inst, f.name)
        if filter is not None and not filter(f, value):
            continue
        out[f.name] = _plain(value) if recurse else value
    return out


def _plain(value: Any) -> Any:
    # As ``attrs.asdict`` (retain_collection_types=True): collections keep their type.
    kind = type(value)
    if _has(kind):
        return _asdict(value)
    if issubclass(kind, (tuple, list, set, frozenset)):
        items = [_plain(v) for v in value]
        try:
            return kind(items)
        except TypeError:  # a namedtuple
            return kind(*items)
    if issubclass(kind, dict):
        return {_plain(k): _plain(v) for k, v in value.items()}
    return value


def _astuple(inst: Any) -> tuple[Any, ...]:
    """``inst``'s field values in order (attrs.astuple, not recursing)."""
    return tuple(getattr(inst, f.name) for f in _fields(type(inst)))


class _Validators:
    """``attrs.validators``: the ones the package uses."""

    in_ = staticmethod(_in)
    gt = staticmethod(_gt)
    ge = staticmethod(_ge)
    deep_iterable = staticmethod(_deep_iterable)


if TYPE_CHECKING:
    from attrs import Attribute as Attribute
    from attrs import Factory as Factory
    from attrs import asdict as asdict
    from attrs import astuple as astuple
    from attrs import define as define
    from attrs import evolve as evolve
    from attrs import exceptions as exceptions
    from attrs import field as field
    from attrs import fields as fields
    from attrs import frozen as frozen
    from attrs import has as has
    from attrs import validators as validators
else:
    Factory = _Factory
    frozen = _decorator(frozen=True)
    define = _decorator(frozen=False)
    field = _field
    evolve = _evolve
    asdict = _asdict
    astuple = _astuple
    fields = _fields
    has = _has
    validators = _Validators()

    def __getattr__(name: str) -> Any:
        # attrs' exceptions module, for code catching FrozenInstanceError: attrs is imported
        # then, not before.
        if name == "exceptions":
            from attrs import exceptions

            return exceptions
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
