"""Host functions: Python callables that components import, called with our converters.

wasmtime-py's own ``LinkerInstance.add_func`` converts values with its ambiguous slow path
and carries exceptions back through a module-global slot that other threads can overwrite
(see the notes, pitfall 3). Here each host function is registered through the C API with a
callback that

* finds the calling plugin from the store context (a table filled at instantiation);
* lifts arguments and lowers the result with the converters built from the function's WIT
  signature;
* never lets a Python exception reach wasmtime-py: it stores the exception on the calling
  plugin instance (the caller holds that instance's lock, so no other thread can see it)
  and returns a plain wasmtime error, which makes the guest trap; the instance then
  raises the stored exception, correctly attributed.
"""

from __future__ import annotations

import ctypes
import enum
import functools
import threading
from array import array
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Final, Protocol, final

from wasmtime.component import LinkerInstance

from .. import _attrs as attrs
from .._errors import HookCallError, PluginABIError, PluginTrap
from ..contract import wit
from ..contract.annotations import Err
from . import capi
from .convert import ConvertError, Lift, Lower, lifter_keeping, lowerer
from .guestmem import GuestMemory, GuestMemoryError
from .plans import ELEMENTS, RawImport

__all__ = [
    "DeferredHostFunc",
    "HostFunc",
    "RawImports",
    "callers",
    "install_resource_links",
    "link_refusal",
    "raw_import_table",
    "register_context",
    "unregister_context",
]


if TYPE_CHECKING:  # (a protocol only the type checker reads: not made at import)

    class Caller(Protocol):
        """The plugin instance a host function is called from (``PluginInstance`` is one)."""

        host_error: BaseException | None

        @property
        def name(self) -> str: ...
        def may_call(self, interface: str) -> bool: ...


# store context address -> the plugin instance that owns the store
_CONTEXTS: dict[int, Caller] = {}
_CONTEXTS_LOCK: Final = threading.Lock()
# ctypes callbacks must stay alive as long as the linker that holds them
_KEEP_ALIVE: list[Any] = []


def register_context(context: Any, instance: Caller) -> None:
    with _CONTEXTS_LOCK:
        _CONTEXTS[capi.address(context)] = instance


def callers() -> list[Caller]:
    """The instances whose stores are registered now (every live store's)."""
    with _CONTEXTS_LOCK:
        return list(_CONTEXTS.values())


def unregister_context(context: Any) -> None:
    with _CONTEXTS_LOCK:
        _CONTEXTS.pop(capi.address(context), None)
    if _links is not None:
        _links.released(context)


if TYPE_CHECKING:  # (a protocol only the type checker reads: not made at import)

    class ResourceLinks(Protocol):
        """Resource handles in host functions (:mod:`.resources`, which imports this module,
        installs itself): the calling store made known to the converters, host resource types
        defined in the linker, a store's handle table released when the store is."""

        def enter(self, instance: Caller, context: Any) -> Any: ...
        def leave(self, previous: Any) -> None: ...
        def link(self, target: LinkerInstance, func: HostFunc) -> None: ...
        def released(self, context: Any) -> None: ...


_links: ResourceLinks | None = None


def install_resource_links(links: ResourceLinks) -> None:
    global _links
    _links = links


#: The name prefix of a :class:`HostFunc` that stands for a host-defined resource type
#: (its constructor, methods and static functions): ``[resource]document``.
RESOURCE_PREFIX: Final = "[resource]"


@capi.CALLBACK  # type: ignore[untyped-decorator]
def _trampoline(
    data: Any, context: Any, ty: Any, args: Any, nargs: int, results: Any, nresults: int
) -> int:
    # Everything here must be caught: an exception escaping a ctypes callback is printed
    # and turned into a zero return, which wasmtime would read as success.
    try:
        entry = _FUNCS[data or 0]
        func = entry if type(entry) is HostFunc else entry.made()  # type: ignore[union-attr]
        instance = _CONTEXTS.get(capi.address(context))
        if instance is None:
            return _error(f"host function {func.name} called from an unknown store")
        previous = None
        try:
            if not instance.may_call(wit.import_key(func.interface, func.name)):
                where = func.interface or f"{func.name} (imported at its world's root)"
                raise PermissionError(f"plugin {instance.name!r} is not granted interface {where}")
            if func.uses_resources:
                assert _links is not None
                previous = _links.enter(instance, context)
            try:
                raw = None
                lower = func.lower
                # parameters or result rewritten (see .rawimports); a function taking its
                # parameters in memory past 16 flat values may get as many as it has
                if getattr(instance, "raw_imports", None) is not None:
                    raw = _raw_import(instance, func, nargs)
                if raw is None and nargs != len(func.lifts):
                    # e.g. two versions imported, rewritten unlike
                    raise _guest_fault(
                        instance, f"host function {func.interface}#{func.name}",
                        "type mismatch",
                        f"{nargs} values, not the {len(func.lifts)} its type has",
                    )  # fmt: skip
                if raw is not None and raw.result is not None:
                    # its result's bytes and strings, and its parameters' strings, cross
                    # as latin1
                    lower = func.lower_latin1
                    pyargs = _latin1_args(instance, func, raw, args, nargs)
                elif raw is None or not raw.raw_params:
                    pyargs = [func.lifts[i](args[i]) for i in range(nargs)]
                else:
                    pyargs = _raw_args(instance, func, raw, args)
                value = func.impl(instance, *pyargs)
                if lower is not None:
                    try:
                        lower(value, results[0])
                    except ConvertError as exc:
                        raise TypeError(
                            f"host function {func.name} returned {value!r:.80}: {exc.located()}"
                        ) from None
            finally:
                if func.uses_resources:
                    assert _links is not None
                    _links.leave(previous)
        except BaseException as exc:
            instance.host_error = exc
            return _error(f"host function {func.name} failed: {type(exc).__name__}")
        return 0
    except BaseException:  # pragma: no cover - last line of defence
        return _error("host function failed")


# ------------------------------------------------------------------ raw imports


class RawImports:
    """A caller's imports whose lists and strings arrive as a pointer and a length
    (:mod:`.rawimports`): ``table`` maps (interface, function), and (unversioned
    interface, function) when unambiguous, to the rewrite; ``mem`` is the current
    instance's memory, found right after instantiation (None: not found). A caller
    (``PluginInstance``) has one as ``raw_imports``, or None."""

    __slots__ = ("mem", "table")

    def __init__(self, found: Mapping[tuple[str, str], tuple[RawImport, wit.FuncSig]]):
        self.table = raw_import_table(found)
        self.mem: GuestMemory | None = None

    @property
    def needs_memory(self) -> bool:
        """Whether any import reads its parameters from guest memory (imports whose only
        change is a latin1 result need no memory found)."""
        return any(raw.raw_params for raw in self.table.values())


def raw_import_table(
    found: Mapping[tuple[str, str], tuple[RawImport, wit.FuncSig]],
) -> dict[tuple[str, str], RawImport]:
    """:attr:`RawImports.table` for an image's raw imports: by the imported name, and by
    the unversioned one when one version is imported (the host may serve another minor
    version of the interface)."""
    table: dict[tuple[str, str], RawImport] = {}
    loose: dict[tuple[str, str], RawImport | None] = {}
    for (iface, fname), (raw, _) in found.items():
        table[(iface, fname)] = raw
        key = (wit.unversioned(iface), fname)
        loose[key] = raw if key not in loose or loose[key] == raw else None
    for key, raw_or_none in loose.items():
        if raw_or_none is not None:
            table.setdefault(key, raw_or_none)
    return table


def _raw_import(instance: Caller, func: HostFunc, nargs: int) -> RawImport | None:
    imports: RawImports | None = getattr(instance, "raw_imports", None)
    if imports is None:
        return None
    table = imports.table
    raw = table.get((func.interface, func.name))
    if raw is None:
        raw = table.get((wit.unversioned(func.interface), func.name))
    if raw is None or raw.arity != nargs:
        return None
    return raw


def _latin1_args(
    instance: Caller, func: HostFunc, raw: RawImport, args: Any, nargs: int
) -> list[Any]:
    """The Python arguments of a call lowered with ``string-encoding=latin1+utf16``: its
    strings lifted back to the guest's UTF-8 (not UTF-8: PluginABIError)."""
    where = f"host function {func.interface}#{func.name}"
    if func.lifts_latin1 is None:  # the guest's result holds bytes, the host's does not
        raise _guest_fault(instance, where, "type mismatch", "its result was rewritten unlike")
    try:
        if raw.raw_params:
            return _raw_args(instance, func, raw, args, func.lifts_latin1)
        return [func.lifts_latin1[i](args[i]) for i in range(nargs)]
    except UnicodeError:
        raise _guest_fault(
            instance, where, "invalid UTF-8", "a string argument is not valid UTF-8"
        ) from None


def _raw_args(
    instance: Caller, func: HostFunc, raw: RawImport, args: Any, lifts: tuple[Lift, ...] = ()
) -> list[Any]:
    """The Python arguments of a call whose lists and strings arrive as a pointer and a
    length: each read from the caller's memory with one copy, bounds-checked (other
    parameters lifted with ``lifts``, by default the function's own)."""
    if raw.types is not None:
        return _flat_args(instance, func, raw, args)
    lifts = lifts or func.lifts
    imports: RawImports = instance.raw_imports  # type: ignore[attr-defined]
    mem = imports.mem
    pyargs: list[Any] = []
    j = 0
    where = f"host function {func.interface}#{func.name}"
    for i, code in enumerate(raw.params):
        if code is None:
            pyargs.append(lifts[i](args[j]))
            j += 1
            continue
        ptr, length = args[j].of.u32, args[j + 1].of.u32
        j += 2
        name = raw.names[i]
        if mem is None:
            raise _guest_fault(
                instance, where, "memory not found",
                f"its memory was not found in this process, so {name!r} cannot be read",
            )  # fmt: skip
        size = ELEMENTS.get(code, ("B", 1))[1]
        if size > 1 and ptr % size:
            raise _guest_fault(
                instance, where, "misaligned pointer",
                f"argument {name!r} (pointer {ptr:#x}) is not aligned to {size} bytes",
            )  # fmt: skip
        try:
            data = mem.read_grown(ptr, length * size, f"argument {name!r}")
        except GuestMemoryError as exc:
            raise _guest_fault(instance, where, exc.reason, str(exc)) from None
        pyargs.append(_convert(instance, where, func.signature.param_types[i], code, data, name))
    return pyargs


#: The union field of a flat core value wasmtime hands over, by its core type (a
#: rewritten parameter is a u32, u64, f32 or f64: .rawimports).
_FLAT_FIELDS: Final = {0x7F: "u32", 0x7E: "u64", 0x7D: "f32", 0x7C: "f64"}

#: (host function, raw import) -> its parameters' lifting (rawabi.ParamLift), or None
#: when the guest's parameter types are not the host function's.
_PARAM_LIFTS: dict[tuple[HostFunc, RawImport], Any] = {}


def _param_lift(func: HostFunc, raw: RawImport) -> Any:
    key = (func, raw)
    if key in _PARAM_LIFTS:
        return _PARAM_LIFTS[key]
    from . import rawabi  # (a caller of a function rewritten so: made once per pair)

    lift = None
    try:
        assert raw.types is not None
        guest = tuple(rawabi.wit_type(d) for d in raw.types)
        if guest == func.signature.param_types:
            lift = rawabi.ParamLift(func.signature.param_types, raw.names, func.kept())
            if lift.core != raw.core:
                lift = None
    except (TypeError, ValueError):
        lift = None
    if len(_PARAM_LIFTS) >= 1024:  # host functions of closed hosts: not kept for good
        _PARAM_LIFTS.clear()
    _PARAM_LIFTS[key] = lift
    return lift


def _flat_args(instance: Caller, func: HostFunc, raw: RawImport, args: Any) -> list[Any]:
    """The Python arguments of a call whose every parameter arrives as its flat core
    values (or a pointer to them): lifted from those and the caller's memory by the
    canonical ABI's rules, with wasmtime's checks (:class:`.rawabi.ParamLift`)."""
    where = f"host function {func.interface}#{func.name}"
    mem = instance.raw_imports.mem  # type: ignore[attr-defined]
    if mem is None:
        raise _guest_fault(
            instance, where, "memory not found",
            "its memory was not found in this process, so its arguments cannot be read",
        )  # fmt: skip
    lift = _param_lift(func, raw)
    if lift is None:
        raise _guest_fault(
            instance, where, "type mismatch",
            "the guest's parameter types are not the host function's",
        )  # fmt: skip
    values = [getattr(args[j].of, _FLAT_FIELDS[c]) for j, c in enumerate(raw.core)]
    try:
        return lift.lift(mem, values)  # type: ignore[no-any-return]
    except GuestMemoryError as exc:
        raise _guest_fault(instance, where, exc.reason, str(exc)) from None


def _convert(
    instance: Caller, where: str, t: wit.WitType, code: int, data: bytes, name: str
) -> Any:
    if code == 0x73:
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            raise _guest_fault(
                instance, where, "invalid UTF-8", f"argument {name!r} is not valid UTF-8"
            ) from None
    if isinstance(t, wit.ListT) and t.py_bytes and code == 0x7D:
        return data
    return array(ELEMENTS[code][0], data).tolist()


def _holds_bytes(t: wit.WitType | None, depth: int = 0) -> bool:
    """Whether ``t`` holds a ``list<u8>`` (where :mod:`.rawimports` may rewrite it)."""
    if t is None or depth > 64:
        return False
    if isinstance(t, wit.ListT):
        return t.element == wit.Prim("u8") or _holds_bytes(t.element, depth + 1)
    if isinstance(t, wit.OptionT):
        return _holds_bytes(t.inner, depth + 1)
    if isinstance(t, wit.ResultT):
        return _holds_bytes(t.ok, depth + 1) or _holds_bytes(t.err, depth + 1)
    if isinstance(t, wit.TupleT):
        return any(_holds_bytes(e, depth + 1) for e in t.elements)
    if isinstance(t, wit.RecordT):
        return any(_holds_bytes(ft, depth + 1) for _, ft in t.fields)
    if isinstance(t, wit.VariantT):
        return any(_holds_bytes(ct, depth + 1) for _, ct in t.cases)
    return False


def _guest_fault(instance: Caller, where: str, reason: str, detail: str) -> HookCallError:
    """The guest broke the ABI calling a host function: the call traps with this error."""
    cls = PluginTrap if reason == "memory not found" else PluginABIError
    exc = cls(
        f"plugin {instance.name!r} called {where} with bad arguments ({reason}: {detail}); "
        "its instance was replaced",
        plugin=instance.name,
    )
    exc.reason = reason
    return exc


def _error(message: str) -> int:
    """A new wasmtime error (owned by wasmtime once returned), as the callback's result."""
    return capi.error_new(message)


def _no_finalize(data: int) -> None:  # functions stay in _FUNCS: nothing to free
    return None


_finalize = ctypes.CFUNCTYPE(None, ctypes.c_void_p)(_no_finalize)


_FUNCS: dict[int, HostFunc | DeferredHostFunc] = {}


@attrs.define(eq=False)
class HostFunc:
    """A Python implementation of WIT function ``name`` of ``interface``.

    ``impl(instance, *args)`` receives the calling instance (a :class:`Caller`) first.
    """

    interface: str
    name: str
    signature: wit.FuncSig
    impl: Callable[..., Any]
    #: (parameter name, n): of that list parameter, only the first ``n`` elements are
    #: lifted into Python, as a :class:`.convert.Kept` list that knows the length the
    #: guest passed (the built-in ``log`` keeps 32 fields of however many it is given).
    keep: tuple[tuple[str, int], ...] = ()
    lifts: tuple[Lift, ...] = attrs.field(init=False)
    lower: Lower | None = attrs.field(init=False)
    #: The result written for a caller whose import's ``list<u8>`` became ``string``
    #: (:mod:`.rawimports`); None when the result holds no ``list<u8>``.
    lower_latin1: Lower | None = attrs.field(init=False)
    #: The parameters' lifters for such a caller (its strings arrive as latin1).
    lifts_latin1: tuple[Lift, ...] | None = attrs.field(init=False)
    #: Whether its parameters or result hold resource handles (they need the store).
    uses_resources: bool = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        sig = self.signature
        self.uses_resources = any(
            next(wit.resources_in(t), None) is not None for t in (*sig.param_types, sig.result)
        )
        self.lower_latin1 = self.lifts_latin1 = None
        if self.name.startswith(RESOURCE_PREFIX):  # a resource type: see link()
            self.lifts, self.lower = (), None
            return
        types, keep = sig.param_types, self.kept()
        self.lifts = tuple(lifter_keeping(t, k) for t, k in zip(types, keep, strict=True))
        self.lower = None if sig.result is None else lowerer(sig.result)
        if sig.result is not None and _holds_bytes(sig.result):
            self.lower_latin1 = lowerer(sig.result, latin1=True)
            self.lifts_latin1 = tuple(
                lifter_keeping(t, k, latin1=True) for t, k in zip(types, keep, strict=True)
            )

    def kept(self) -> tuple[int | None, ...]:
        """Per parameter, how many elements are lifted (:attr:`keep`), None for all."""
        keep = dict(self.keep)
        return tuple(keep.get(name) for name, _ in self.signature.params)

    def link(self, target: LinkerInstance) -> None:
        """Add this function to a linker instance (an interface being defined); for a
        resource type, the type and each of its members."""
        if self.name.startswith(RESOURCE_PREFIX):
            assert _links is not None
            _links.link(target, self)
            return
        _link_entry(target, self.name, self)


def _link_entry(target: LinkerInstance, name: str, entry: HostFunc | DeferredHostFunc) -> None:
    """Add function ``name`` to ``target``, calling ``entry`` through the trampoline."""
    key = len(_FUNCS) + 1
    _FUNCS[key] = entry
    _add_func(target, name, _trampoline, key)


def _add_func(target: LinkerInstance, name: str, callback: Any, key: int) -> None:
    encoded = name.encode()
    err = capi.linker_instance_add_func(
        capi.linker_instance_handle(target),
        ctypes.create_string_buffer(encoded),
        len(encoded),
        callback,
        key,
        _finalize,
    )
    if err:
        raise capi.error_from_ptr(err)


@final
class DeferredHostFunc:
    """A :class:`HostFunc` made at its first call: what a linker needs of it is its
    interface and name, and its signature and converters cost what most plugins never
    use (the host's built-in interfaces: about 1.5 ms of a new process's first load).
    ``make()`` makes it, once, under a lock; a failure there fails that call, as a
    failure of the function itself would, and the next call tries again."""

    __slots__ = ("_lock", "_made", "_make", "interface", "name")

    def __init__(self, interface: str, name: str, make: Callable[[], HostFunc]):
        self.interface = interface
        self.name = name
        self._make = make
        self._made: HostFunc | None = None
        self._lock = threading.Lock()

    def made(self) -> HostFunc:
        made = self._made
        if made is None:
            with self._lock:
                made = self._made
                if made is None:
                    made = self._made = self._make()
        return made

    def link(self, target: LinkerInstance) -> None:
        """Add this function to a linker instance, as :meth:`HostFunc.link` does."""
        _link_entry(target, self.name, self)


@functools.cache
def _refusal() -> tuple[Lower, object]:
    """The lowering of a refusal and its value, made at the first refusal (a process
    whose guests touch no refused WASI function never makes the enum nor the lowerer)."""

    class _ErrorCode(enum.Enum):
        """The one case of ``wasi:filesystem/types.error-code`` a refusal returns."""

        NOT_PERMITTED = "not-permitted"

    lower = lowerer(wit.ResultT(None, wit.EnumT("error-code", ("not-permitted",), py=_ErrorCode)))
    return lower, Err(_ErrorCode.NOT_PERMITTED)


@capi.CALLBACK  # type: ignore[untyped-decorator]
def _refuse(
    data: Any, context: Any, ty: Any, args: Any, nargs: int, results: Any, nresults: int
) -> int:
    # A WASI function returning result<_, error-code> that always answers not-permitted
    # (errno EPERM in the guest), whatever its arguments: the guest gets an ordinary
    # error, no trap.
    try:
        for i in range(nargs):  # the descriptor is borrowed: give it back
            if args[i].kind == capi.RESOURCE_KIND:
                err = capi.resource_any_drop(context, args[i].of.resource)
                if err:
                    return err  # type: ignore[no-any-return]
        lower, refused = _refusal()
        lower(refused, results[0])
        return 0
    except BaseException:  # pragma: no cover - last line of defence
        return _error("refused")


def link_refusal(target: LinkerInstance, name: str) -> None:
    """Define ``name`` in ``target`` (a WASI interface whose functions return
    ``result<_, error-code>``) as always failing with ``not-permitted``."""
    _add_func(target, name, _refuse, 0)
