"""Host interfaces components can import: built-in ``airssys:host`` ones and the app's own.

Built-in interfaces (package ``airssys:host@0.1.0``), each linked only when granted:

* ``log``: ``log: func(level: level, message: string, fields: list<field>)`` -> Python
  logging under ``airssys_plugins.plugin.<name>`` with the fields as structured extras;
* ``config``: ``get: func(key: string) -> option<string>``, ``keys: func() -> list<string>``
  -> values the host/operator set for the plugin;
* ``kv``: ``get``/``set``/``delete``/``keys`` -> a persistent per-plugin namespace in SQLite,
  with a quota;
* ``http``: ``fetch: func(request: request) -> result<response, string>`` -> outbound HTTP
  to allowlisted origins only, with size and time limits;
* ``messaging``: ``publish: func(topic: string, payload: list<u8>)`` and
  ``request: func(topic: string, payload: list<u8>, timeout-ms: u32) -> result<list<u8>,
  string>`` -> the host's topics (:mod:`.messaging`), to topics the plugin is granted to
  publish to. A plugin receives messages by exporting ``on-message`` of interface
  ``airssys:host/subscriber``.

An application exposes its own functions with :meth:`PluginHost.provide`; their WIT comes
from the annotations, like hookspecs. Inside any host function, :func:`current_plugin`
tells which plugin is calling.
"""

from __future__ import annotations

import contextvars
import functools
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Protocol

from .. import _attrs as attrs
from .._errors import PluginTimeout
from ..contract import wit as _wit
from ..contract.annotations import Result, is_resource
from ..contract.mapping import function_signature, resource_type
from ..policy.audit import AuditLog
from ..policy.capabilities import HOST_PACKAGE, HOST_VERSION, Limits, Origin

if TYPE_CHECKING:
    from concurrent.futures import ThreadPoolExecutor

    from .._ratelimit import RateLimit

__all__ = [
    "LIFECYCLE",
    "LIFECYCLE_INTERFACE",
    "SUBSCRIBER",
    "SUBSCRIBER_INTERFACE",
    "HostFunction",
    "KVStore",
    "PluginContext",
    "BUILTIN_NAMES",
    "current_plugin",
    "lifecycle_signatures",
    "load_resources",
    "host_wit",
    "set_async_plugin",
    "subscriber_signature",
]


class _Current(threading.local):
    # A class-level default: reading a missing attribute of a threading.local raises and
    # catches AttributeError inside getattr(), which costs ~0.6 us on every hook call.
    context: PluginContext | None = None


_current = _Current()
# The plugin an ``async def`` host function runs for: its own asyncio task's context (the
# thread-local above belongs to the guest's thread, not the event loop's).
_async_current: contextvars.ContextVar[PluginContext | None] = contextvars.ContextVar(
    "airssys_plugins_async_plugin", default=None
)
# Functions that may block (network, the app's own code) run here, so that the calling
# plugin gets a timeout instead of hanging: epochs cannot interrupt a guest blocked in a
# host call. Made by the first blocking host call (concurrent.futures costs ~5 ms of
# import, which a process whose plugins call no blocking host function does not pay).
_POOL: ThreadPoolExecutor | None = None
_POOL_LOCK: Final = threading.Lock()


def _pool() -> ThreadPoolExecutor:
    global _POOL
    with _POOL_LOCK:
        if _POOL is None:
            from concurrent.futures import ThreadPoolExecutor

            _POOL = ThreadPoolExecutor(max_workers=8, thread_name_prefix="airssys-host-call")
        return _POOL


if TYPE_CHECKING:  # (a protocol only the type checker reads: not made at import)

    class Messenger(Protocol):
        """What the ``messaging`` host interface calls (the host's :class:`Messaging`)."""

        def publish_from(self, context: PluginContext, topic: str, payload: bytes) -> None: ...
        def request_from(
            self, context: PluginContext, topic: str, payload: bytes, timeout: float
        ) -> Result[bytes, str]: ...


@attrs.define(eq=False)
class PluginContext:
    """Per-plugin state host functions see (``current_plugin()`` inside a host function)."""

    name: str
    config: Mapping[str, str] = attrs.field(factory=dict)
    network: frozenset[Origin] = frozenset()
    limits: Limits = attrs.field(factory=Limits)
    kv: KVStore | None = None
    audit: AuditLog | None = None
    #: The host's messaging (when the plugin is granted ``messaging``).
    messaging: Messenger | None = None
    #: Topic patterns it may publish to.
    publish: frozenset[str] = frozenset()
    #: The rate limit of its ``log`` calls, made by the first (:func:`.builtins.log`).
    log_limit: RateLimit | None = attrs.field(default=None, init=False, repr=False)


def calling_plugin() -> PluginContext | None:
    """The plugin whose host call the current thread is running, if any."""
    return _current.context


def set_async_plugin(context: PluginContext) -> None:
    """Make ``context`` the current plugin of the running asyncio task (async host
    functions)."""
    _async_current.set(context)


def current_plugin() -> PluginContext:
    """The plugin whose call is running the current host function."""
    context = _current.context or _async_current.get()
    if context is None:
        raise RuntimeError("current_plugin() is only available inside a host function")
    return context


@attrs.frozen
class HostFunction:
    """A Python function components import as ``interface#name``."""

    interface: str  # full name with version, e.g. airssys:host/log@0.1.0
    name: str  # WIT function name
    func: Callable[..., Any]
    signature: _wit.FuncSig
    blocking: bool = True  # run under the host-call timeout in a worker thread
    #: (list parameter, n): only its first ``n`` elements are lifted (the runtime's
    #: ``HostFunc.keep``; the built-in ``log`` keeps 32 fields).
    keep: tuple[tuple[str, int], ...] = ()

    @classmethod
    def from_function(
        cls,
        interface: str,
        func: Callable[..., Any],
        *,
        name: str | None = None,
        blocking: bool = True,
    ) -> HostFunction:
        if is_resource(func):
            return cls._resource(interface, func, blocking)
        wit_name = name or _wit.kebab(func.__name__)
        _, signature, _ = function_signature(wit_name, func, kind="host function")
        load_resources(signature)  # a guest's handles passed to or from the host
        return cls(interface, wit_name, func, signature, blocking)

    @classmethod
    def _resource(cls, interface: str, res_cls: Any, blocking: bool) -> HostFunction:
        """A ``@resource`` class provided to guests: one entry that stands for the type and
        its members (the runtime links each), called as ``func(member, *args)``."""
        from ..runtime import resources as _resources

        load_resources()
        res = resource_type(res_cls)
        _resources.host_resource(res, interface)  # one interface per class, checked now
        signature = _wit.FuncSig((), _wit.HandleT(res, own=True))
        dispatch = functools.partial(_resource_member, res_cls)
        functools.update_wrapper(dispatch, res_cls, updated=())
        return cls(interface, f"[resource]{res.name}", dispatch, signature, blocking)

    @property
    def resource(self) -> _wit.ResourceT | None:
        """The resource type this entry provides (``provide`` of a ``@resource`` class)."""
        result = self.signature.result
        if self.name.startswith("[resource]") and isinstance(result, _wit.HandleT):
            return result.resource
        return None

    def invoke(self, context: PluginContext, args: list[Any]) -> Any:
        """Run the function for ``context``'s plugin (with a timeout when blocking)."""
        if not self.blocking:
            return _run_as(context, self.func, args)
        import concurrent.futures

        timeout = context.limits.host_call_timeout
        future = _pool().submit(_run_as, context, self.func, args)
        try:
            return future.result(timeout=timeout)
        except concurrent.futures.TimeoutError:
            if context.audit is not None:
                context.audit.record(
                    "limit",
                    context.name,
                    f"host call {self.interface}#{self.name} timed out",
                    limit="host_call_timeout",
                    seconds=timeout,
                )
            exc = PluginTimeout(
                f"plugin {context.name!r}: host call {self.interface}#{self.name} did not "
                f"finish within {timeout} s",
                plugin=context.name,
            )
            exc.reason = "host call timeout"
            raise exc from None


def _audit_leak(instance: Any, plugin: str, counts: dict[str, int]) -> None:
    """A discarded instance of ``plugin`` still held host objects: into the audit log."""
    context = getattr(instance, "context", None)
    if isinstance(context, PluginContext) and context.audit is not None:
        shown = ", ".join(f"{n} `{r}`" for r, n in sorted(counts.items()))
        context.audit.record(
            "limit",
            plugin,
            f"plugin {plugin!r} leaked {shown} handle(s): its instance was discarded while "
            "holding them",
            limit="resource handles",
            leaked=dict(counts),
        )


def load_resources(signature: _wit.FuncSig | None = None) -> None:
    """Import :mod:`..runtime.resources` (given ``signature``: only if it passes resource
    handles). Importing it installs the handle converters and the calling store's links
    into the runtime, so it must come before anything converts a handle: the host layer
    calls this where a hook's or host function's signature with handles, or a host
    resource class, is first met. Most hosts meet none and never import its 50 KiB of
    code. From then on a plugin leaking host objects is told of in its audit log (host
    objects are in handle tables only once a host resource class is provided)."""
    if signature is not None and next(_wit.handles_in(signature), None) is None:
        return
    from ..runtime import resources as _resources

    _resources.on_leak(_audit_leak)


def _resource_member(cls: type, member: str, *args: Any) -> Any:
    """Run member ``member`` (its Python name) of host resource class ``cls``: the
    constructor makes an object, a method runs on its first argument (the handle)."""
    if member == "__init__":
        return cls(*args)
    if isinstance(cls.__dict__.get(member), staticmethod):
        return getattr(cls, member)(*args)
    return getattr(args[0], member)(*args[1:])


def _run_as(context: PluginContext, func: Callable[..., Any], args: list[Any]) -> Any:
    previous = _current.context
    _current.context = context
    try:
        return func(*args)
    finally:
        _current.context = previous


# ----------------------------------------------------------------------------- kv


class KVStore:
    """Per-plugin key-value namespaces in one SQLite file, with a byte quota per plugin."""

    def __init__(self, path: Path, *, quota: int = 10 * 2**20, timeout: float = 5.0):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.quota = quota
        self._lock = threading.Lock()
        import sqlite3  # only hosts that grant kv pay for the import

        self._db = sqlite3.connect(path, timeout=timeout, check_same_thread=False)
        with self._lock, self._db:
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS kv (plugin TEXT, key TEXT, value BLOB,"
                " PRIMARY KEY (plugin, key))"
            )

    def get(self, plugin: str, key: str) -> bytes | None:
        with self._lock:
            row = self._db.execute(
                "SELECT value FROM kv WHERE plugin = ? AND key = ?", (plugin, key)
            ).fetchone()
        return None if row is None else bytes(row[0])

    def set(self, plugin: str, key: str, value: bytes) -> str | None:
        """Store ``value``; returns an error message instead when the quota would overflow."""
        with self._lock, self._db:
            used = self._db.execute(
                "SELECT COALESCE(SUM(LENGTH(key) + LENGTH(value)), 0) FROM kv"
                " WHERE plugin = ? AND key != ?",
                (plugin, key),
            ).fetchone()[0]
            if used + len(key) + len(value) > self.quota:
                return f"quota of {self.quota} bytes exceeded"
            self._db.execute("INSERT OR REPLACE INTO kv VALUES (?, ?, ?)", (plugin, key, value))
        return None

    def delete(self, plugin: str, key: str) -> bool:
        with self._lock, self._db:
            return (
                self._db.execute(
                    "DELETE FROM kv WHERE plugin = ? AND key = ?", (plugin, key)
                ).rowcount
                > 0
            )

    def keys(self, plugin: str, prefix: str) -> list[str]:
        with self._lock:
            rows = self._db.execute(
                "SELECT key FROM kv WHERE plugin = ? AND substr(key, 1, ?) = ? ORDER BY key",
                (plugin, len(prefix), prefix),
            ).fetchall()
        return [r[0] for r in rows]

    def close(self) -> None:
        with self._lock:
            self._db.close()


# ----------------------------------------------------------------------------- lifecycle
# Optional exports of a component, in interface airssys:host/lifecycle: called when present.


def _init(config: list[tuple[str, str]]) -> Result[None, str]: ...  # type: ignore[empty-body]
def _health() -> Result[None, str]: ...  # type: ignore[empty-body]
def _shutdown() -> None: ...


LIFECYCLE_INTERFACE: Final = f"{HOST_PACKAGE}/lifecycle@{HOST_VERSION}"


@functools.cache
def lifecycle_signatures() -> dict[str, _wit.FuncSig]:
    """``LIFECYCLE``: the lifecycle exports' names and signatures (mapped at first use: a
    new process whose components export none never maps them)."""
    return {
        name: function_signature(name, stub, kind="lifecycle export")[1]
        for name, stub in (("init", _init), ("health", _health), ("shutdown", _shutdown))
    }


@functools.cache
def _lifecycle_wit_interface() -> _wit.Interface:
    return _wit.Interface(
        "lifecycle",
        tuple(lifecycle_signatures().items()),
        (
            "Optional exports: init(config) after each start (an err refuses the plugin),",
            "health() on demand, shutdown() before unloading.",
        ),
    )


def _on_message(topic: str, payload: bytes) -> bytes | None: ...


# The export a subscribing component implements, in interface airssys:host/subscriber.
SUBSCRIBER_INTERFACE: Final = f"{HOST_PACKAGE}/subscriber@{HOST_VERSION}"


@functools.cache
def subscriber_signature() -> _wit.FuncSig:
    """``SUBSCRIBER``: the signature of ``on-message`` (mapped at first use)."""
    return function_signature("on-message", _on_message, kind="subscriber export")[1]


@functools.cache
def _subscriber_wit_interface() -> _wit.Interface:
    return _wit.Interface(
        "subscriber",
        (("on-message", subscriber_signature()),),
        (
            "Export to receive messages of the topics the plugin subscribes to, one at a",
            "time; a some(reply) answers a request.",
        ),
    )


if TYPE_CHECKING:  # made on first use, by __getattr__ below
    LIFECYCLE: dict[str, _wit.FuncSig]
    LIFECYCLE_WIT: str
    SUBSCRIBER: _wit.FuncSig


def __getattr__(name: str) -> Any:
    if name == "LIFECYCLE":
        return lifecycle_signatures()
    if name == "LIFECYCLE_WIT":
        return "\n" + _wit.render_interface(_lifecycle_wit_interface())
    if name == "SUBSCRIBER":
        return subscriber_signature()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# ----------------------------------------------------------------------------- registry


def _iface(name: str) -> str:
    return f"{HOST_PACKAGE}/{name}@{HOST_VERSION}"


#: The ``airssys:host`` functions: (interface, WIT name, the implementing function's name
#: in :mod:`.builtins`, blocking). The registry answers their names from this table; their
#: code, and their signatures, are made by a plugin's first call of one (most call none).
BUILTIN_NAMES: Final[tuple[tuple[str, str, str, bool], ...]] = (
    (_iface("log"), "log", "log", False),
    (_iface("config"), "get", "config_get", False),
    (_iface("config"), "keys", "config_keys", False),
    (_iface("kv"), "get", "kv_get", True),
    (_iface("kv"), "set", "kv_set", True),
    (_iface("kv"), "delete", "kv_delete", True),
    (_iface("kv"), "keys", "kv_keys", True),
    (_iface("http"), "fetch", "fetch", True),
    # not blocking: publish and request bound their own waits (mailbox, reply)
    (_iface("messaging"), "publish", "messaging_publish", False),
    (_iface("messaging"), "request", "messaging_request", False),
)


def host_wit(functions: list[HostFunction]) -> dict[str, str]:
    """WIT text of the interfaces in ``functions``, one document per package
    (``{"airssys:host@0.1.0": "package airssys:host@0.1.0; ..."}``)."""
    by_package: dict[str, dict[str, list[HostFunction]]] = {}
    for f in functions:
        split = _wit.split_interface_name(f.interface)
        if split is None:  # a world-level import: the guest's own world declares it
            continue
        package = f"{split[0]}@{split[2]}" if split[2] else split[0]
        by_package.setdefault(package, {}).setdefault(split[1], []).append(f)
    documents = {}
    for package, interfaces in by_package.items():
        rendered = [
            _wit.Interface(
                iface,
                tuple((f.name, f.signature) for f in funcs if f.resource is None),
                resources=tuple(r for f in funcs if (r := f.resource) is not None),
            )
            for iface, funcs in interfaces.items()
        ]
        if package == f"{HOST_PACKAGE}@{HOST_VERSION}":
            rendered.append(_lifecycle_wit_interface())
            rendered.append(_subscriber_wit_interface())
        documents[package] = _wit.render_package(package, rendered)
    return documents
