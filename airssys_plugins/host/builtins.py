"""The built-in ``airssys:host`` interfaces' code: ``log``, ``config``, ``kv``, ``http`` and
``messaging`` (their WIT and behaviour: :mod:`.interfaces`).

Imported by a plugin's first call of one of them, or by the first read of the host's
host functions (``host.wit()``, the ``functions`` of the registry): the registry links
them by name (:data:`.interfaces.BUILTIN_NAMES`), and most plugins call none.
"""

from __future__ import annotations

import enum
import functools
import threading
from typing import TYPE_CHECKING, Any, Final

from .. import _attrs as attrs
from .. import _log as logging
from .._ratelimit import RateLimit
from ..contract.annotations import Err, Ok, Result, u16, u32
from ..policy.capabilities import Origin
from .interfaces import (
    BUILTIN_NAMES,
    HostFunction,
    KVStore,
    PluginContext,
    current_plugin,
)

if TYPE_CHECKING:
    from .interfaces import Messenger

__all__ = [
    "BUILTINS",
    "MAX_FIELD_KEY",
    "MAX_FIELD_VALUE",
    "MAX_HTTP_BODY",
    "MAX_LOG_FIELDS",
    "MAX_LOG_TEXT",
    "Field",
    "Header",
    "Level",
    "Request",
    "Response",
    "builtin_function",
    "builtin_functions",
    "config_get",
    "config_keys",
    "fetch",
    "kv_delete",
    "kv_get",
    "kv_keys",
    "kv_set",
    "log",
    "messaging_publish",
    "messaging_request",
]


# ----------------------------------------------------------------------------- log


class Level(enum.Enum):
    TRACE = 5
    DEBUG = logging.DEBUG
    INFO = logging.INFO
    WARNING = logging.WARNING
    ERROR = logging.ERROR


@attrs.frozen
class Field:
    key: str
    value: str


#: What one ``log`` record keeps of a plugin's call: the message's first
#: :data:`MAX_LOG_TEXT` characters, its first :data:`MAX_LOG_FIELDS` fields, each key's
#: first :data:`MAX_FIELD_KEY` and each value's first :data:`MAX_FIELD_VALUE` characters.
MAX_LOG_TEXT: Final = 4000
MAX_LOG_FIELDS: Final = 32
MAX_FIELD_KEY: Final = 100
MAX_FIELD_VALUE: Final = 1000
_LIMIT_LOCK: Final = threading.Lock()


def log(level: Level, message: str, fields: list[Field]) -> None:
    """Write a log record under ``airssys_plugins.plugin.<plugin>``: escaped, cut to
    :data:`MAX_LOG_TEXT` characters and :data:`MAX_LOG_FIELDS` fields, and rate-limited
    as the plugin's stdout is (a burst of 200 records, then 50 a second; see
    :mod:`.._ratelimit`)."""
    context = current_plugin()
    logger = logging.getLogger(f"airssys_plugins.plugin.{context.name}")
    if not logger.isEnabledFor(level.value):
        return
    limit = context.log_limit
    if limit is None:
        with _LIMIT_LOCK:
            limit = context.log_limit
            if limit is None:
                limit = context.log_limit = RateLimit(logger, context.name, "log")
    if not limit.allow():
        return
    kept = {f.key[:MAX_FIELD_KEY]: f.value[:MAX_FIELD_VALUE] for f in fields[:MAX_LOG_FIELDS]}
    shown = _escape(" ".join(f"{key}={value!r}" for key, value in kept.items())[:MAX_LOG_TEXT])
    given = getattr(fields, "total", len(fields))  # (only the first ones were lifted)
    if given > MAX_LOG_FIELDS:
        shown += f" ({given - MAX_LOG_FIELDS} more fields not shown)"
    logger.log(
        level.value,
        "%s%s",
        _escape(message[:MAX_LOG_TEXT]),
        f" {shown}" if shown else "",
        extra={"plugin": context.name, "plugin_fields": kept},
    )


def _escape(text: str) -> str:
    return "".join(ch if ch.isprintable() or ch == "\t" else f"\\x{ord(ch):02x}" for ch in text)


# ----------------------------------------------------------------------------- config


def config_get(key: str) -> str | None:
    """A config value the host or operator set for this plugin."""
    return current_plugin().config.get(key)


def config_keys() -> list[str]:
    """The config keys set for this plugin."""
    return sorted(current_plugin().config)


def _kv() -> tuple[KVStore, str]:
    context = current_plugin()
    if context.kv is None:
        raise RuntimeError(f"plugin {context.name!r} has no kv store")
    return context.kv, context.name


def kv_get(key: str) -> bytes | None:
    store, plugin = _kv()
    return store.get(plugin, key)


def kv_set(key: str, value: bytes) -> Result[None, str]:
    store, plugin = _kv()
    problem = store.set(plugin, key, value)
    return Ok(None) if problem is None else Err(problem)  # type: ignore[return-value]


def kv_delete(key: str) -> bool:
    store, plugin = _kv()
    return store.delete(plugin, key)


def kv_keys(prefix: str) -> list[str]:
    store, plugin = _kv()
    return store.keys(plugin, prefix)


# ----------------------------------------------------------------------------- http

MAX_HTTP_BODY: Final = 10 * 2**20


@attrs.frozen
class Header:
    name: str
    value: str


@attrs.frozen
class Request:
    method: str
    url: str
    headers: list[Header]
    body: bytes


@attrs.frozen
class Response:
    status: u16
    headers: list[Header]
    body: bytes


def _origin_of(url: str) -> Origin | None:
    # the grants' own parser, so a request compares in the grants' normal form
    return Origin.of_url(url)


def fetch(request: Request) -> Result[Response, str]:
    """HTTP to an allowlisted origin; errors come back as ``err`` strings."""
    context = current_plugin()
    origin = _origin_of(request.url)
    if origin is None or origin not in context.network:
        if context.audit is not None:
            context.audit.record(
                "deny", context.name, f"http to {request.url!r} refused", url=request.url
            )
        return Err(f"origin of {request.url!r} is not allowed for this plugin")  # type: ignore[return-value]
    if len(request.body) > MAX_HTTP_BODY:
        return Err("request body too large")  # type: ignore[return-value]
    import urllib.error  # the HTTP stack (and ssl) loads only when a plugin fetches
    import urllib.request

    class _AllowlistRedirects(urllib.request.HTTPRedirectHandler):
        def redirect_request(
            self, req: Any, fp: Any, code: int, msg: str, headers: Any, newurl: str
        ) -> Any:
            if _origin_of(newurl) not in context.network:
                raise urllib.error.HTTPError(
                    newurl, code, "redirect to an origin not allowed", headers, fp
                )
            return super().redirect_request(req, fp, code, msg, headers, newurl)

    opener = urllib.request.build_opener(_AllowlistRedirects())
    req = urllib.request.Request(
        request.url,
        data=request.body or None,
        method=request.method.upper(),
        headers={h.name: h.value for h in request.headers},
    )
    try:
        with opener.open(req, timeout=context.limits.host_call_timeout) as resp:
            body = resp.read(MAX_HTTP_BODY + 1)
            status = resp.status
            headers = [Header(k, v) for k, v in resp.getheaders()]
    except urllib.error.HTTPError as exc:
        if exc.code in range(300, 400) or exc.fp is None:
            return Err(f"HTTP {exc.code}: {exc.reason}")  # type: ignore[return-value]
        body, status = exc.read(MAX_HTTP_BODY + 1), exc.code
        headers = [Header(k, v) for k, v in exc.headers.items()]
    except (urllib.error.URLError, OSError, ValueError) as exc:
        return Err(f"request failed: {exc}")  # type: ignore[return-value]
    if len(body) > MAX_HTTP_BODY:
        return Err(f"response body larger than {MAX_HTTP_BODY} bytes")  # type: ignore[return-value]
    return Ok(Response(status, headers, body))  # type: ignore[return-value]


# ----------------------------------------------------------------------------- messaging


def _messenger() -> tuple[Messenger, PluginContext]:
    context = current_plugin()
    if context.messaging is None:
        raise RuntimeError(f"plugin {context.name!r} has no messaging")
    return context.messaging, context


def messaging_publish(topic: str, payload: bytes) -> None:
    """Publish ``payload`` to ``topic`` (every subscriber's mailbox gets it)."""
    bus, context = _messenger()
    bus.publish_from(context, topic, payload)


def messaging_request(topic: str, payload: bytes, timeout_ms: u32) -> Result[bytes, str]:
    """Send ``payload`` to ``topic``'s subscribers; the first reply, or why there is none."""
    bus, context = _messenger()
    # the guest waits in a host call, where epochs cannot interrupt it: the host-call
    # timeout bounds the wait too
    seconds = min(timeout_ms / 1000, context.limits.host_call_timeout)
    return bus.request_from(context, topic, payload, seconds)


# ----------------------------------------------------------------------------- the table


#: The ``airssys:host`` functions: (interface, WIT name, implementation, blocking), in
#: :data:`.interfaces.BUILTIN_NAMES`' order.
BUILTINS: Final[tuple[tuple[str, str, Any, bool], ...]] = tuple(
    (interface, name, globals()[function], blocking)
    for interface, name, function, blocking in BUILTIN_NAMES
)


@functools.cache
def builtin_functions() -> tuple[HostFunction, ...]:
    """The ``airssys:host`` interfaces (their signatures are built once per process)."""
    return tuple(
        attrs.evolve(f, keep=_KEEP[f.name]) if f.name in _KEEP else f
        for f in (
            HostFunction.from_function(interface, func, name=name, blocking=blocking)
            for interface, name, func, blocking in BUILTINS
        )
    )


#: Of a list argument, the elements a built-in function keeps: only these are lifted into
#: Python (a plugin may pass a million fields: security.md, "Host functions' arguments").
_KEEP: Final = {"log": (("fields", MAX_LOG_FIELDS),)}


def builtin_function(interface: str, name: str) -> HostFunction:
    """The built-in host function ``name`` of ``interface``, its signature mapped."""
    return next(f for f in builtin_functions() if (f.interface, f.name) == (interface, name))
