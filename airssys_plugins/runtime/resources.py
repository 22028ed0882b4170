"""WIT resources across the sandbox: guest objects as host proxies, host objects as guest
handles.

* A resource a component **exports** (``resource counter`` in its interface) reaches the
  host as a :class:`ResourceProxy`: its methods call the component's
  ``[method]counter.get`` exports on the plugin instance that made it, with that
  instance's sandbox, deadline and fuel. ``close()`` (or leaving a ``with`` block) drops
  the handle, which runs the guest's destructor. The proxy remembers the instance
  *generation* it came from: after a trap or a reload replaced the instance, or after the
  proxy was closed or given away (an ``own`` argument), using it raises
  :class:`StaleResourceError`.
* A resource the **host** provides (a ``@resource`` class given to ``PluginHost.provide``)
  is defined in the linker with a destructor of ours; each object handed to a guest gets
  a number (``rep``) in the handle table of that plugin's store. ``own`` gives the object
  to the guest until it drops it; ``borrow`` lends it for one call. When an instance is
  discarded with objects still in its table, the leak is reported
  (:func:`leaked_handles`, a log warning, and the host's audit log).

Converting handles needs the calling store, so a :class:`Scope` is set on the thread for
the call: :func:`call` does it for hook and method calls, :mod:`.callbacks` for host
functions. wasmtime-py's private C functions used here are taken through ``capi.ffi``.
"""

from __future__ import annotations

import collections
import contextlib
import ctypes
import enum
import threading
import weakref
from collections.abc import Callable, Sequence
from typing import Any, Final, Protocol

from .. import _attrs as attrs
from .. import _log as logging
from .._errors import ArgumentError, PluginResultError, PluginTrap, StaleResourceError
from ..contract import wit
from ..contract.annotations import Err
from ..contract.mapping import resource_type
from . import callbacks as _callbacks
from . import capi
from . import convert as _convert
from .convert import ConvertError, Lift, Lower
from .instance import bind_export

__all__ = [
    "GuestResource",
    "HostResource",
    "ResourceProxy",
    "Scope",
    "call",
    "construct",
    "guest_resource",
    "home_interface",
    "host_resource",
    "is_host_resource",
    "leaked_handles",
    "on_leak",
    "owning_instance",
    "static",
    "supervise",
]

log = logging.getLogger("airssys_plugins.runtime")

_ffi = capi.ffi  # see the module docstring: these C functions belong in capi.py
_RESOURCE: Final = capi.RESOURCE_KIND
_byref = ctypes.byref
_any_clone: Final = _ffi.wasmtime_component_resource_any_clone
_any_delete: Final = _ffi.wasmtime_component_resource_any_delete
_any_to_host: Final = _ffi.wasmtime_component_resource_any_to_host
_host_new: Final = _ffi.wasmtime_component_resource_host_new
_host_to_any: Final = _ffi.wasmtime_component_resource_host_to_any
_host_rep: Final = _ffi.wasmtime_component_resource_host_rep
_host_type: Final = _ffi.wasmtime_component_resource_host_type
_host_delete: Final = _ffi.wasmtime_component_resource_host_delete
_type_new_host: Final = _ffi.wasmtime_component_resource_type_new_host
_type_delete: Final = _ffi.wasmtime_component_resource_type_delete
_add_resource: Final = _ffi.wasmtime_component_linker_instance_add_resource
_DTOR: Final = _ffi.wasmtime_component_resource_destructor_t
_HOST_PTR: Final = ctypes.POINTER(_ffi.wasmtime_component_resource_host_t)
_ANY_PTR: Final = ctypes.POINTER(_ffi.wasmtime_component_resource_any_t)


class Instance(Protocol):
    """What a proxy needs of the plugin instance that made it (``PluginInstance``)."""

    name: str
    generation: int


#: A store context pointer's address (``capi.address``: not ``ctypes.cast``, which would
#: give the store's long-lived context pointer a keep-alive dict holding itself).
_address: Final = capi.address


# ----------------------------------------------------------------------------- scopes


@attrs.define(eq=False)
class Scope:
    """The call converting handles on this thread: its plugin instance and store."""

    instance: Any
    context: Any
    generation: int
    #: The interface the call's guest resources live in (their methods are exported there).
    interface: str | None
    #: (table, rep) of host objects lent (``borrow``) for this call: released after it.
    lent: list[tuple[HandleTable, int]] = attrs.field(factory=list)

    def release(self) -> None:
        for table, rep in self.lent:
            table.objects.pop(rep, None)
        self.lent.clear()


class _Local(threading.local):
    scope: Scope | None = None


_local = _Local()


def _scope(what: str) -> Scope:
    scope = _local.scope
    if scope is None:
        raise ConvertError(
            f"{what} can only be passed in a call of a plugin (a hook, a resource method, "
            "or a host function)"
        )
    return scope


# ----------------------------------------------------------------------- host resources


@attrs.frozen(eq=False)
class HostResource:
    """A resource type the host defines for guests: a ``@resource`` class, its WIT model,
    and the number wasmtime knows its type by."""

    resource: wit.ResourceT
    type_id: int
    interface: str


_HOST_TYPES: dict[type, HostResource] = {}
_HOST_LOCK: Final = threading.Lock()


def host_resource(resource: wit.ResourceT, interface: str) -> HostResource:
    """The host resource type of ``resource`` (one per class), provided in ``interface``."""
    cls = resource.py
    with _HOST_LOCK:
        found = _HOST_TYPES.get(cls)
        if found is None:
            found = HostResource(resource, len(_HOST_TYPES) + 1, interface)
            _HOST_TYPES[cls] = found
        elif found.interface != interface:
            raise ValueError(
                f"resource {cls.__name__} is already provided in interface {found.interface}; "
                "a host resource type lives in one interface"
            )
    return found


@attrs.define(eq=False)
class HandleTable:
    """The host objects one store's guest holds, by ``rep``."""

    plugin: str
    owner: Any  # the plugin instance (for the leak report)
    objects: dict[int, tuple[Any, HostResource]] = attrs.field(factory=dict)
    next_rep: int = 1

    def add(self, obj: Any, kind: HostResource) -> int:
        rep = self.next_rep
        self.next_rep = rep + 1 if rep < 2**32 - 1 else 1
        self.objects[rep] = (obj, kind)
        return rep


# store context address -> its table
_TABLES: dict[int, HandleTable] = {}
_TABLES_LOCK: Final = threading.Lock()
#: (plugin, resource) -> handles leaked by discarded instances, since the process started.
_LEAKS: collections.Counter[tuple[str, str]] = collections.Counter()
_LEAK_LISTENERS: list[Callable[[Any, str, dict[str, int]], None]] = []


def _table(scope: Scope) -> HandleTable:
    key = _address(scope.context)
    table = _TABLES.get(key)
    if table is None:
        with _TABLES_LOCK:
            table = _TABLES.setdefault(key, HandleTable(scope.instance.name, scope.instance))
    return table


def leaked_handles(plugin: str | None = None) -> dict[tuple[str, str], int]:
    """Host resource handles that discarded instances still held, by (plugin, resource)."""
    return {k: v for k, v in _LEAKS.items() if plugin is None or k[0] == plugin}


def on_leak(listener: Callable[[Any, str, dict[str, int]], None]) -> None:
    """Call ``listener(instance, plugin, {resource: count})`` for each leak report (the host
    layer records them in its audit log); a listener given again is kept once."""
    with _TABLES_LOCK:
        if listener not in _LEAK_LISTENERS:
            _LEAK_LISTENERS.append(listener)


def _store_released(context: Any) -> None:
    """A store is closed: report the host objects its guest never gave back."""
    with _TABLES_LOCK:
        table = _TABLES.pop(_address(context), None)
    if table is None or not table.objects:
        return
    counts = collections.Counter(kind.resource.name for _, kind in table.objects.values())
    table.objects.clear()
    for name, count in counts.items():
        _LEAKS[(table.plugin, name)] += count
    shown = ", ".join(f"{n} `{r}`" for r, n in sorted(counts.items()))
    log.warning(
        "plugin %r leaked %s handle(s) when its instance was discarded", table.plugin, shown
    )
    for listener in list(_LEAK_LISTENERS):
        try:
            listener(table.owner, table.plugin, dict(counts))
        except Exception:  # a listener's failure must not hide the leak or the discard
            log.exception("leak listener failed")


@_DTOR  # type: ignore[untyped-decorator]
def _host_dtor(data: Any, context: Any, rep: int) -> int:
    # The guest dropped its own handle to a host object: the object leaves its table.
    try:
        table = _TABLES.get(_address(context))
        if table is not None:
            table.objects.pop(rep, None)
        return 0
    except BaseException:  # pragma: no cover - last line of defence
        return capi.error_new("host resource destructor failed")


def _no_finalize(data: int) -> None:
    return None


_finalize: Final = ctypes.CFUNCTYPE(None, ctypes.c_void_p)(_no_finalize)


def link_host_resource(target: Any, kind: HostResource) -> None:
    """Define host resource ``kind`` in linker instance ``target``."""
    name = kind.resource.name.encode()
    ty = _type_new_host(kind.type_id)
    try:
        err = _add_resource(
            capi.linker_instance_handle(target),
            ctypes.create_string_buffer(name),
            len(name),
            ty,
            _host_dtor,
            None,
            _finalize,
        )
    finally:
        _type_delete(ty)
    if err:
        raise capi.error_from_ptr(err)


def _host_any(scope: Scope, rep: int, type_id: int, own: bool) -> Any:
    host = _host_new(own, rep, type_id)
    out = _ANY_PTR()
    try:
        err = _host_to_any(scope.context, host, _byref(out))
    finally:
        _host_delete(host)
    if err:
        raise ConvertError(str(capi.error_from_ptr(err)))
    return out


def _to_host(scope: Scope, pointer: Any) -> tuple[int, int] | None:
    """(rep, type id) of a handle to a host object; None for a guest's resource."""
    out = _HOST_PTR()
    err = _any_to_host(scope.context, pointer, _byref(out))
    if err:
        _ffi.wasmtime_error_delete(err)
        return None
    try:
        return _host_rep(out), _host_type(out)
    finally:
        _host_delete(out)


# ----------------------------------------------------------------------- guest proxies


class _Why(enum.Enum):
    CLOSED = "it was closed"
    MOVED = "it was given away (passed as an own<...> argument)"


class ResourceProxy:
    """A resource a plugin exports, as the host holds it: each method calls into the plugin.

    Close it (``close()`` or ``with``) to drop the handle, which runs the plugin's
    destructor; a proxy garbage-collected unclosed frees only the host's side. Proxies of
    a ``@resource`` class are instances of a subclass of it.
    """

    __slots__ = ("__weakref__", "_generation", "_instance", "_interface", "_own", "_ptr", "_why")
    _resource: wit.ResourceT
    _instance: Any
    _generation: int
    _interface: str | None
    _own: bool
    _ptr: Any
    _why: _Why | None

    def __init__(self) -> None:
        raise TypeError("resource proxies are made by the plugin that exports the resource")

    @classmethod
    def _make(cls, instance: Any, generation: int, interface: str | None, ptr: Any) -> Any:
        self = object.__new__(cls)
        self._instance = instance
        self._generation = generation
        self._interface = interface
        self._ptr = ptr
        self._own = True
        self._why = None
        return self

    @property
    def plugin(self) -> str:
        """The plugin whose resource this is."""
        return str(self._instance.name)

    @property
    def closed(self) -> bool:
        return self._why is not None

    def __repr__(self) -> str:
        state = "" if self._why is None else f" ({self._why.name.lower()})"
        return f"<{self._resource.name} of plugin {self.plugin!r}{state}>"

    def _stale(self, action: str) -> StaleResourceError | None:
        """Why the handle cannot be used now (the instance's lock is held), or None."""
        if self._why is not None:
            why = self._why.value
        elif self._instance._instance is None or self._instance.generation != self._generation:
            why = (
                "the plugin instance that made it was replaced (after a trap, a restart or "
                "a reload); get a new one from the plugin"
            )
        else:
            return None
        return StaleResourceError(
            f"plugin {self.plugin!r}: cannot {action} `{self._resource.name}` handle: {why}",
            plugin=self.plugin,
            resource=self._resource.name,
            reason=why,
        )

    def close(self) -> None:
        """Drop the handle: the plugin's destructor runs now. Closing twice is a no-op;
        closing a handle of a replaced instance just forgets it."""
        instance = self._instance
        with instance._lock:
            if self._why is not None:
                return
            stale = self._stale("close")
            ptr, self._ptr = self._ptr, None
            self._why = _Why.CLOSED
            if ptr is None:
                return
            try:
                if stale is None:
                    _drop_guest(instance, ptr, self._resource.name)
            finally:
                _any_delete(ptr)

    def __enter__(self) -> Any:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        ptr = getattr(self, "_ptr", None)
        if ptr is not None:  # not closed: free our side only (no wasm from a finalizer)
            self._ptr = None
            # at interpreter exit the C API may be gone already
            with contextlib.suppress(Exception):
                _any_delete(ptr)


def _drop_guest(instance: Any, ptr: Any, resource: str) -> None:
    """Run the guest's destructor of a handle (the lock is held), bounded like a call."""
    if instance._active:
        raise PluginTrap(
            f"plugin {instance.name!r}: cannot drop a `{resource}` handle from inside one "
            "of its own host calls",
            plugin=instance.name,
        )
    context = capi.store_context(instance._store)
    capi.set_epoch_deadline(context, instance._ticks)
    instance._deadline_epoch = -1  # the next call sets its own deadline again
    if instance.sandbox.fuel is not None:
        capi.set_fuel(context, instance.sandbox.fuel)
    err = capi.resource_any_drop(context, ptr)
    if err:
        message = str(capi.error_from_ptr(err))
        instance.discard()
        trap = PluginTrap(
            f"plugin {instance.name!r} trapped in the destructor of `{resource}` "
            f"({message.strip().splitlines()[-1] if message.strip() else 'trap'}); its "
            "instance was replaced",
            plugin=instance.name,
        )
        trap.reason = "trap in destructor"
        raise trap


# resource class (or name) -> proxy class
_PROXY_CLASSES: dict[Any, type[ResourceProxy]] = {}


def _proxy_class(res: wit.ResourceT) -> type[ResourceProxy]:
    key = res.py if res.py is not None else res.name
    found = _PROXY_CLASSES.get(key)
    if found is not None:
        return found
    members = dict(res.py_members)
    namespace: dict[str, Any] = {
        "__slots__": (),
        "_resource": res,
        "__doc__": f"A `{res.name}` of a plugin: each method calls into it.",
    }
    for wit_name, sig in res.functions():
        if not wit_name.startswith("[method]"):
            continue
        short = wit_name.split(".", 1)[1]
        py = members.get(wit_name, short.replace("-", "_"))
        namespace[py] = _method(wit_name, py, sig)
    bases: tuple[type, ...] = (ResourceProxy,)
    if isinstance(res.py, type):
        bases = (ResourceProxy, res.py)
    name = f"{res.py.__name__ if isinstance(res.py, type) else res.name}Proxy"
    try:
        cls = type(name, bases, namespace)
    except TypeError:  # a class that cannot be mixed in (slots, metaclass): proxy only
        cls = type(name, (ResourceProxy,), namespace)
    _PROXY_CLASSES[key] = cls
    return cls


def _method(wit_name: str, py: str, sig: wit.FuncSig) -> Callable[..., Any]:
    argnames = [n.replace("-", "_") for n, _ in sig.params[1:]]

    def method(self: ResourceProxy, *args: Any, **kwargs: Any) -> Any:
        values = _arguments(f"{self._resource.name}.{py}", argnames, args, kwargs)
        return _call_member(self._instance, self._interface, wit_name, sig, (self, *values), self)

    method.__name__ = method.__qualname__ = py
    method.__doc__ = f"``{wit_name}: {sig.render()}`` of the plugin's resource."
    return method


def _arguments(what: str, names: Sequence[str], args: tuple[Any, ...], kwargs: Any) -> list[Any]:
    if len(args) > len(names):
        raise TypeError(f"{what}() takes {len(names)} argument(s), {len(args)} given")
    values = list(args)
    for name in names[len(args) :]:
        if name not in kwargs:
            raise TypeError(f"{what}() missing argument {name!r}")
        values.append(kwargs.pop(name))
    if kwargs:
        raise TypeError(f"{what}() got unexpected argument(s) {sorted(kwargs)}")
    return values


# (image, interface, function) -> its BoundFunc
_BOUND: weakref.WeakKeyDictionary[Any, dict[tuple[str | None, str], Any]] = (
    weakref.WeakKeyDictionary()
)


def _bound(instance: Any, interface: str | None, function: str, sig: wit.FuncSig) -> Any:
    image = instance.image
    per_image = _BOUND.setdefault(image, {})
    found = per_image.get((interface, function))
    if found is None:
        found = per_image[(interface, function)] = bind_export(
            image, function, interface, function, sig, byte_buffers=False
        )
    return found


#: plugin instance -> the host's supervision of calls that are not hooks (resource
#: members): ``guard(what, run)`` runs ``run()`` as the plugin's hooks are run.
Guard = Callable[[str, Callable[[], Any]], Any]
_GUARDS: weakref.WeakKeyDictionary[Any, Guard] = weakref.WeakKeyDictionary()


def supervise(instance: Any, guard: Guard) -> None:
    """Run the resource member calls of ``instance`` under ``guard`` (its plugin's
    supervisor: circuit breaker, failure counts, restarts)."""
    _GUARDS[instance] = guard


def _call_member(
    instance: Any,
    interface: str | None,
    function: str,
    sig: wit.FuncSig,
    args: Sequence[Any],
    owner: ResourceProxy | None = None,
) -> Any:
    bound = _bound(instance, interface, function, sig)
    guard = _GUARDS.get(instance)

    def run() -> Any:
        return call(instance, bound, args, interface=interface, owner=owner)

    value = run() if guard is None else guard(function, run)
    if isinstance(sig.result, wit.ResultT) and isinstance(value, Err):
        raise PluginResultError(
            f"plugin {instance.name!r} returned an error from {function}: {value.value!r}",
            plugin=instance.name,
            hook=function,
            error=value.value,
        )
    return getattr(value, "value", value) if isinstance(sig.result, wit.ResultT) else value


def call(
    instance: Any,
    bound: Any,
    args: Sequence[Any],
    *,
    interface: str | None,
    owner: ResourceProxy | None = None,
) -> Any:
    """``instance.call(bound, args)`` for a function whose types hold resource handles:
    with the store known to the converters, and, for a method, its proxy checked live."""
    with instance._lock:
        if owner is not None:
            stale = owner._stale(f"call {bound.function.rsplit('.', 1)[-1]}() on")
            if stale is not None:
                raise stale
        instance.instantiate()
        scope = Scope(instance, capi.store_context(instance._store), instance.generation, interface)
        previous, _local.scope = _local.scope, scope
        try:
            return instance.call(bound, args)
        except ArgumentError as exc:
            if isinstance(exc.__cause__, StaleResourceError):
                raise exc.__cause__ from None
            raise
        finally:
            _local.scope = previous
            scope.release()


def construct(instance: Any, interface: str | None, resource: wit.ResourceT, *args: Any) -> Any:
    """Call the constructor of a plugin's resource: a new proxy."""
    sig = next((s for n, s in resource.functions() if n.startswith("[constructor]")), None)
    if sig is None:
        raise TypeError(f"resource `{resource.name}` has no constructor")
    return _call_member(instance, interface, f"[constructor]{resource.name}", sig, args)


def static(
    instance: Any, interface: str | None, resource: wit.ResourceT, name: str, *args: Any
) -> Any:
    """Call static function ``name`` (its WIT name) of a plugin's resource."""
    wit_name = f"[static]{resource.name}.{name}"
    sig = next((s for n, s in resource.functions() if n == wit_name), None)
    if sig is None:
        raise TypeError(f"resource `{resource.name}` has no static function {name!r}")
    return _call_member(instance, interface, wit_name, sig, args)


class GuestResource:
    """The constructor and static functions of a resource a plugin exports::

        counters = guest_resource(plugin, Counter)
        with counters(5) as c:        # [constructor]counter
            c.inc(2)
        zero = counters.zero()        # [static]counter.zero

    ``plugin`` is a loaded plugin (its first instance serves these calls) or a plugin
    instance; ``cls`` the hookspec's ``@resource`` class.
    """

    def __init__(self, plugin: Any, cls: Any):
        instance = plugin.instances[0] if hasattr(plugin, "instances") else plugin
        self._instance = instance
        self._resource = res = resource_type(cls)
        prefixes = (f"[constructor]{res.name}", f"[method]{res.name}.", f"[static]{res.name}.")
        interfaces = {i for (i, f) in instance.image.exports if f.startswith(prefixes)}
        if len(interfaces) != 1:
            where = "no interface" if not interfaces else f"{len(interfaces)} interfaces"
            raise TypeError(
                f"plugin {instance.name!r} exports resource `{res.name}` in {where}; "
                "guest_resource needs exactly one"
            )
        self._interface = interfaces.pop()

    def __call__(self, *args: Any) -> Any:
        return construct(self._instance, self._interface, self._resource, *args)

    def __getattr__(self, name: str) -> Callable[..., Any]:
        members = {py: w for w, py in self._resource.py_members if w.startswith("[static]")}
        wit_name = members.get(name)
        if wit_name is None:
            raise AttributeError(
                f"resource `{self._resource.name}` has no static function {name!r}"
            )
        short = wit_name.split(".", 1)[1]
        return lambda *args: static(self._instance, self._interface, self._resource, short, *args)


def guest_resource(plugin: Any, cls: Any) -> GuestResource:
    """The constructor and static functions of ``cls``, a resource ``plugin`` exports."""
    return GuestResource(plugin, cls)


# --------------------------------------------------------------------------- converters


def home_interface(image: Any, name: str, preferred: str | None) -> str | bool | None:
    """Where a component exports the members of its resource ``name``: ``preferred`` (the
    calling hook's interface) when it exports any there, else the one interface that does
    (a resource `use`d from another interface); False when none does (the component
    imports the resource, or it has no members)."""
    prefixes = (f"[constructor]{name}", f"[method]{name}.", f"[static]{name}.")
    where: set[str | None] = {i for (i, f) in image.exports if f.startswith(prefixes)}
    if preferred in where:
        return preferred
    if len(where) == 1:
        return where.pop()
    return False


def is_host_resource(res: wit.ResourceT) -> bool:
    """Whether ``res`` is a resource the host provides (not one a plugin exports)."""
    return _host_kind(res) is not None


def _host_kind(res: wit.ResourceT) -> HostResource | None:
    """The host resource type of ``res``: its class's, or that of the one provided
    subclass of it with its WIT name (a class from ``bindgen`` declares the resource, a
    subclass of it implements it)."""
    cls = res.py
    if not isinstance(cls, type):
        return None
    found = _HOST_TYPES.get(cls)
    if found is None:
        subs = [
            k for c, k in _HOST_TYPES.items() if issubclass(c, cls) and k.resource.name == res.name
        ]
        found = subs[0] if len(subs) == 1 else None
    return found


# (image, resource name, calling interface) -> the interface its members are exported in
_HOMES: weakref.WeakKeyDictionary[Any, dict[tuple[str, str | None], str | None]] = (
    weakref.WeakKeyDictionary()
)


def _home(image: Any, name: str, interface: str | None) -> str | None:
    per_image = _HOMES.setdefault(image, {})
    key = (name, interface)
    if key not in per_image:
        found = home_interface(image, name, interface)
        per_image[key] = interface if found is False else found  # type: ignore[assignment]
    return per_image[key]


class _Handles:
    """The handle converters :mod:`.convert` uses."""

    def lowerer(self, t: wit.HandleT) -> Lower:
        res, own = t.resource, t.own
        shown = wit.render_type_expanded(t)

        def lower_handle(value: Any, dst: Any) -> None:
            scope = _scope(shown)
            kind = _host_kind(res)
            if isinstance(value, ResourceProxy):
                ptr = _lower_proxy(value, res, own, scope, shown)
            elif kind is not None and isinstance(value, res.py):
                rep = _table(scope).add(value, kind)
                if not own:
                    scope.lent.append((_table(scope), rep))
                ptr = _host_any(scope, rep, kind.type_id, own)
            else:
                expected = res.py.__name__ if isinstance(res.py, type) else res.name
                raise ConvertError(f"expected a {expected} ({shown}), got {type(value).__name__}")
            dst.kind = _RESOURCE
            dst.of.resource = ptr

        return lower_handle

    def lifter(self, t: wit.HandleT) -> Lift:
        res, own = t.resource, t.own

        def lift_handle(src: Any) -> Any:
            scope = _local.scope
            if scope is None:
                raise TypeError(f"{wit.render_type_expanded(t)} read outside a plugin call")
            pointer = src.of.resource
            host = _to_host(scope, pointer)
            if host is not None:
                table = _table(scope)
                rep = host[0]
                entry = table.objects.pop(rep, None) if own else table.objects.get(rep)
                if entry is None:  # a forged handle: the guest cannot make one, but
                    raise TypeError(f"plugin {scope.instance.name!r} passed an unknown handle")
                return entry[0]
            cls = _proxy_class(res)
            home = _home(scope.instance.image, res.name, scope.interface)
            return cls._make(scope.instance, scope.generation, home, _any_clone(pointer))

        return lift_handle


def _lower_proxy(
    value: ResourceProxy, res: wit.ResourceT, own: bool, scope: Scope, shown: str
) -> Any:
    if value._resource.name != res.name:
        raise ConvertError(f"expected {shown}, got a `{value._resource.name}` handle")
    stale = value._stale("pass")
    if stale is not None:
        raise stale
    home = _home(scope.instance.image, res.name, scope.interface)
    if value._instance is not scope.instance or value._interface != home:
        raise ConvertError(
            f"this `{res.name}` handle belongs to plugin {value.plugin!r}"
            + (f" ({value._interface})" if value._interface else "")
            + "; a handle can only go back to the instance and interface that made it"
        )
    if not own:
        return _any_clone(value._ptr)
    ptr, value._ptr = value._ptr, None
    value._why = _Why.MOVED
    return ptr


_convert.install_handle_converters(_Handles())


# ------------------------------------------------------------------------ host linking


class _ResourceLinks:
    """What :mod:`.callbacks` asks of resources (it cannot import this module)."""

    def enter(self, instance: Any, context: Any) -> Scope | None:
        previous = _local.scope
        _local.scope = Scope(instance, context, instance.generation, None)
        return previous

    def leave(self, previous: Scope | None) -> None:
        scope = _local.scope
        _local.scope = previous
        if scope is not None:
            scope.release()

    def link(self, target: Any, func: Any) -> None:
        res = func.signature.result.resource
        link_host_resource(target, host_resource(res, func.interface))
        members = dict(res.py_members)
        for wit_name, sig in res.functions():
            member = members[wit_name]
            sub = _callbacks.HostFunc(
                func.interface, wit_name, sig, _member_impl(func.impl, member)
            )
            sub.link(target)

    def released(self, context: Any) -> None:
        _store_released(context)


def _member_impl(impl: Callable[..., Any], member: str) -> Callable[..., Any]:
    def run(instance: Any, *args: Any) -> Any:
        return impl(instance, member, *args)

    return run


_callbacks.install_resource_links(_ResourceLinks())


def owning_instance(value: Any, _depth: int = 0) -> Any:
    """The plugin instance of the first live proxy inside ``value`` (arguments, lists,
    tuples, records), or None."""
    if isinstance(value, ResourceProxy):
        return value._instance if value._why is None else None
    if _depth > 8 or isinstance(value, str | bytes | int | float | bool) or value is None:
        return None
    if isinstance(value, list | tuple):
        items: Any = value
    elif attrs.has(type(value)):
        items = [getattr(value, f.name) for f in attrs.fields(type(value))]
    elif hasattr(value, "__dict__"):
        items = list(vars(value).values())
    else:
        return None
    for item in items:
        found = owning_instance(item, _depth + 1)
        if found is not None:
            return found
    return None
