"""Capabilities and limits: what a plugin asks for, what the host allows, what it gets.

Three parties decide what a component may do, and it gets only what all three allow
(deny by default)::

    effective = request (the plugin's manifest)
              ∩ ceiling (the host application, optionally per hook)
              ∩ grants  (the operator: a grants file or the API)

Pure data and set logic: no wasmtime here. The runtime turns an :class:`Effective` into
WASI configuration, linked host interfaces and store limits.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Final, Literal, final

from .. import _attrs as attrs
from .. import _re
from .._errors import CapabilityDenied
from ..contract.semver import VersionRange

__all__ = [
    "COMPILE_TIMEOUT",
    "HOST_INTERFACES",
    "MAX_COMPONENT_BYTES",
    "STARTUP_TIMEOUT",
    "Capabilities",
    "Effective",
    "FileGrant",
    "Limits",
    "Origin",
    "PluginLink",
    "Preopen",
    "RequestedCapabilities",
    "decide",
    "topic_covers",
]

#: Host interfaces of package ``airssys:host``, linked only when granted.
HOST_INTERFACES: Final = frozenset({"log", "kv", "config", "http", "messaging"})
HOST_PACKAGE: Final = "airssys:host"
HOST_VERSION: Final = "0.1.0"

Mode = Literal["ro", "rw"]
DATA_DIR: Final = "data"


# -- one check per kind of item ------------------------------------------------------------
# Each raises ValueError("<what is wrong>; <how to fix it>"): the attrs converters below use
# them when capabilities are built in Python, and the table reader (policy/tables.py) when
# they come from plugin.toml, a grants file or a lockfile, splitting the message at "; ".

_ENV_RE: Final = _re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_INTERFACE_RE: Final = _re.compile(r"^[a-z][a-z0-9]*(-[a-z][a-z0-9]*)*$")


def guest_path(value: str) -> str:
    """An absolute path inside the sandbox without '..'; a trailing '/' is dropped."""
    if not value.startswith("/") or ".." in value.split("/"):
        raise ValueError(
            f"guest path {value!r} is not an absolute path without '..'; "
            'write the path the plugin sees, e.g. "/data"'
        )
    return value.rstrip("/") or "/"


def host_path(value: str) -> str:
    """``"data"`` or an absolute host path without '..' (whether it exists is checked when
    the plugin loads)."""
    if value != DATA_DIR and (not value.startswith("/") or ".." in value.split("/")):
        raise ValueError(
            f"host path {value!r} is neither \"data\" nor an absolute path without '..'; "
            'use "data" for the plugin\'s own data directory, or an absolute path'
        )
    return value


def file_mode(value: str) -> Mode:
    """The one read-only / read-write check."""
    if value == "ro":
        return "ro"
    if value == "rw":
        return "rw"
    raise ValueError(f'{value!r} is not a mode; write "ro" or "rw"')


def env_name(value: str) -> str:
    if not _ENV_RE.match(value):
        raise ValueError(
            f"{value!r} is not an environment variable name; "
            "list names only (letters, digits, '_'), without values or '$'"
        )
    return value


def interface_name(value: str) -> str:
    """Interface short names: the built-in ones (log, kv, config, http) or ones the host
    application provides; which exist is checked when a plugin loads."""
    if not _INTERFACE_RE.match(value):
        raise ValueError(f"{value!r} is not an interface name; use kebab-case, e.g. 'log' or 'kv'")
    return value


_TOPIC_SEGMENT_RE: Final = _re.compile(r"^[A-Za-z0-9_-]+$")
TOPIC_FIX: Final = (
    'write dot-separated words, "*" for any one word, ">" last for the rest, '
    'e.g. "orders.*" or "events.>"'
)


def topic_pattern(value: str) -> str:
    """A topic pattern: dot-separated words (letters, digits, ``_``, ``-``); ``*`` matches
    any one word, ``>`` (last only) one or more words (NATS subjects' rules)."""
    parts = value.split(".")
    for i, part in enumerate(parts):
        if part == "*" or (part == ">" and i == len(parts) - 1):
            continue
        if not _TOPIC_SEGMENT_RE.match(part):
            raise ValueError(f"{value!r} is not a topic pattern; {TOPIC_FIX}")
    return value


def topic_name(value: str) -> str:
    """A topic messages are published to: a pattern without wildcards."""
    topic_pattern(value)
    if any(part in ("*", ">") for part in value.split(".")):
        raise ValueError(
            f'{value!r} has a wildcard; messages go to one topic, e.g. "orders.created"'
        )
    return value


def topic_covers(pattern: str, other: str) -> bool:
    """Whether every topic ``other`` (a topic or a pattern) matches also matches ``pattern``."""
    mine, theirs = pattern.split("."), other.split(".")
    for i, part in enumerate(mine):
        if part == ">":
            return len(theirs) > i
        if i >= len(theirs) or theirs[i] == ">":
            return False
        if part != "*" and (part != theirs[i]):
            return False
    return len(theirs) == len(mine)


_LINK_RE: Final = _re.compile(
    r"^(?P<provider>[A-Za-z0-9][A-Za-z0-9_.-]*):(?P<interface>[a-z][a-z0-9-]*:[a-z][a-z0-9-]*"
    r"/[a-z][a-z0-9-]*)(?:@(?P<range>.+))?$"
)
LINK_FIX: Final = (
    'write "<provider plugin>:<namespace>:<package>/<interface>@<version range>", '
    'e.g. "tokenizer:textpipe:nlp/tokenize@^1"'
)


@attrs.frozen
class PluginLink:
    """A link to another plugin: ``interface`` (unversioned, ``ns:pkg/iface``) exported
    by plugin ``provider``, at a version in ``versions`` (a semver range; ``*``: any).

    Written ``"tokenizer:textpipe:nlp/tokenize@^1"`` in manifests and grants files. A
    granted link without a range (or ``*``) covers any range the plugin asks for."""

    provider: str
    interface: str
    versions: str = "*"

    @classmethod
    def parse(cls, text: str) -> PluginLink:
        m = _LINK_RE.match(text.strip())
        if m is None:
            raise ValueError(f"{text!r} is not a plugin link; {LINK_FIX}")
        versions = (m.group("range") or "*").strip()
        try:
            VersionRange.parse(versions)
        except ValueError:
            raise ValueError(
                f"{text!r}: {versions!r} is not a version range; use e.g. ^1, ~1.2 or >=1.0, <2"
            ) from None
        return cls(m.group("provider"), m.group("interface"), versions)

    def covers(self, other: PluginLink) -> bool:
        """Whether granting ``self`` allows ``other`` (same provider and interface, and
        no version range or the same one)."""
        return (
            self.provider == other.provider
            and self.interface == other.interface
            and (self.versions == "*" or self.versions == other.versions)
        )

    def accepts(self, version: str | None) -> bool:
        """Whether an export of the interface at ``version`` satisfies the link."""
        if self.versions == "*":
            return True
        return version is not None and VersionRange.parse(self.versions).contains(version)

    def __str__(self) -> str:
        suffix = "" if self.versions == "*" else f"@{self.versions}"
        return f"{self.provider}:{self.interface}{suffix}"


def _mode_validator(_: object, __: attrs.Attribute[str], value: str) -> None:
    file_mode(value)


@attrs.frozen
class FileGrant:
    """A preopened directory: ``guest`` path inside the sandbox -> ``host`` directory.

    ``host`` is a host path, or ``"data"`` for the plugin's own data directory (created on
    demand). ``mode`` is ``"ro"`` or ``"rw"``.
    """

    guest: str = attrs.field(converter=guest_path)
    host: str
    mode: Mode = attrs.field(default="ro", validator=_mode_validator)

    def covers(self, other: FileGrant) -> bool:
        """Whether granting ``self`` allows ``other`` (same place, mode at least as wide)."""
        same_place = self.guest == other.guest and (
            self.host == other.host or _same_path(self.host, other.host)
        )
        return same_place and (self.mode == "rw" or other.mode == "ro")

    def __str__(self) -> str:
        return f"filesystem {self.guest} -> {self.host} ({self.mode})"


def _same_path(a: str, b: str) -> bool:
    if DATA_DIR in (a, b):
        return a == b
    return os.path.realpath(a) == os.path.realpath(b)


_DEFAULT_PORTS: Final = {"http": 80, "https": 443}
_LABEL_RE: Final = _re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
ORIGIN_FIX: Final = 'write scheme://host[:port] only, e.g. "https://api.example.com"'


@attrs.frozen
class Origin:
    """An HTTP origin a plugin may reach: scheme, host and port (default by scheme).

    The one parser of origins: manifests, grants files, the API and the http host
    interface's request check all go through :meth:`parse` / :meth:`of_url`, so a granted
    origin and a request URL are compared in the same normal form: scheme and host
    lower-cased, international names as IDNA punycode (``xn--...``), IPv6 addresses in
    brackets, the port always explicit (``https://a.example`` is ``https://a.example:443``).
    """

    scheme: str
    host: str
    port: int

    @classmethod
    def parse(cls, text: str) -> Origin:
        """``scheme://host[:port]`` (a trailing ``/`` is allowed); ValueError says why not
        and how to write it."""
        origin, rest = cls._split(text)
        if rest not in ("", "/"):
            raise ValueError(
                f"{text!r} has a path, query or fragment ({rest!r}); an origin is only "
                f"scheme, host and port; {ORIGIN_FIX}"
            )
        return origin

    @classmethod
    def of_url(cls, url: str) -> Origin | None:
        """The origin of a request URL, or None if it has none an allowlist could hold."""
        try:
            return cls._split(url)[0]
        except ValueError:
            return None

    @classmethod
    def _split(cls, text: str) -> tuple[Origin, str]:
        scheme, sep, rest = text.strip().partition("://")
        scheme = scheme.lower()
        if not sep or scheme not in _DEFAULT_PORTS:
            raise ValueError(f"{text!r}: the scheme must be http or https; {ORIGIN_FIX}")
        cut = min((i for i in map(rest.find, "/?#") if i >= 0), default=len(rest))
        authority, rest = rest[:cut], rest[cut:]
        if "@" in authority:
            raise ValueError(
                f"{text!r} has user info before '@'; leave credentials out of the origin "
                f"(pass them in a header); {ORIGIN_FIX}"
            )
        if authority.startswith("["):
            end = authority.find("]")
            host, port_text = authority[1:end], authority[end + 1 :]
            try:
                host = f"[{ipaddress.IPv6Address(host if end > 0 else '?').compressed}]"
            except ValueError:
                raise ValueError(
                    f"{text!r}: {authority!r} is not an IPv6 address in brackets; "
                    'write it as e.g. "http://[::1]:8080"'
                ) from None
        elif authority.count(":") > 1:
            raise ValueError(
                f'{text!r}: an IPv6 address goes in brackets; write it as e.g. "http://[::1]:8080"'
            )
        else:
            host, colon, port_text = authority.partition(":")
            port_text = colon + port_text
            host = _hostname(text, host)
        if port_text and not re.fullmatch(r":\d{1,5}", port_text):
            raise ValueError(f"{text!r}: {port_text!r} is not ':PORT'; {ORIGIN_FIX}")
        port = int(port_text[1:]) if port_text else _DEFAULT_PORTS[scheme]
        if not 0 < port < 65536:
            raise ValueError(f"{text!r}: port {port} is out of range; use 1-65535")
        return cls(scheme, host, port), rest

    def __str__(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}"


def _hostname(text: str, host: str) -> str:
    """A DNS name (IDNA-encoded, lower case) or an IPv4 address."""
    if not host:
        raise ValueError(f"{text!r} has no host; {ORIGIN_FIX}")
    if "*" in host:
        raise ValueError(f"{text!r}: wildcards are not allowed; list each host")
    try:
        return str(ipaddress.IPv4Address(host))
    except ValueError:
        pass
    try:
        # stdlib IDNA (2003): enough to map "bücher.example" to "xn--bcher-kva.example"
        ascii_host = host.rstrip(".").encode("idna").decode("ascii").lower()
    except UnicodeError as exc:
        raise ValueError(
            f"{text!r}: {host!r} is not a valid host name ({exc}); {ORIGIN_FIX}"
        ) from None
    if not all(_LABEL_RE.match(label) for label in ascii_host.split(".")):
        raise ValueError(
            f"{text!r}: {host!r} is not a host name; use letters, digits and '-' between "
            "dots, or an IP address (IPv6 in brackets)"
        )
    return ascii_host


def _origins(values: Iterable[str | Origin]) -> frozenset[Origin]:
    return frozenset(v if isinstance(v, Origin) else Origin.parse(v) for v in values)


def _interfaces(values: Iterable[str]) -> frozenset[str]:
    return frozenset(map(interface_name, values))


def _files(values: Iterable[FileGrant]) -> tuple[FileGrant, ...]:
    return tuple(values)


def _names(values: Iterable[str]) -> frozenset[str]:
    return frozenset(map(env_name, values))


def _links(values: Iterable[str | PluginLink]) -> frozenset[PluginLink]:
    return frozenset(v if isinstance(v, PluginLink) else PluginLink.parse(v) for v in values)


def _patterns(values: Iterable[str]) -> frozenset[str]:
    return frozenset(map(topic_pattern, values))


@attrs.frozen
class Capabilities:
    """A set of rights: used for a plugin's request, the host's ceiling and the grants."""

    filesystem: tuple[FileGrant, ...] = attrs.field(default=(), converter=_files)
    env: frozenset[str] = attrs.field(default=frozenset(), converter=_names)
    network: frozenset[Origin] = attrs.field(default=frozenset(), converter=_origins)
    interfaces: frozenset[str] = attrs.field(default=frozenset(), converter=_interfaces)
    #: Links to other plugins' exports (``plugins = [...]``), and topic patterns the
    #: plugin may publish to and subscribe to (``publish``/``subscribe = [...]``).
    plugins: frozenset[PluginLink] = attrs.field(default=frozenset(), converter=_links)
    publish: frozenset[str] = attrs.field(default=frozenset(), converter=_patterns)
    subscribe: frozenset[str] = attrs.field(default=frozenset(), converter=_patterns)

    @classmethod
    def everything(cls) -> Capabilities:
        """A ceiling that adds no restriction of its own (the grants still apply)."""
        return _EVERYTHING

    @classmethod
    def nothing(cls) -> Capabilities:
        """No right at all (``Capabilities()``, one shared instance: it is immutable)."""
        return _NOTHING

    def describe(self) -> list[str]:
        """One line per right, for listings and messages."""
        lines = [str(f) for f in self.filesystem]
        lines += [f"env {name}" for name in sorted(self.env)]
        lines += [f"network {o}" for o in sorted(self.network, key=str)]
        lines += [f"interface {i}" for i in sorted(self.interfaces)]
        lines += [f"plugin link {link}" for link in sorted(self.plugins, key=str)]
        lines += [f"publish {t}" for t in sorted(self.publish)]
        lines += [f"subscribe {t}" for t in sorted(self.subscribe)]
        return lines

    def beyond(self, other: Capabilities) -> list[str]:
        """The rights of ``other`` that these do not cover, one line each."""
        extra = [str(g) for g in other.filesystem if not self.allows(g)]
        extra += [f"env {v}" for v in sorted(other.env - self.env)]
        extra += [f"network {v}" for v in sorted(map(str, other.network - self.network))]
        extra += [f"interface {v}" for v in sorted(other.interfaces - self.interfaces)]
        extra += [
            f"plugin link {v}"
            for v in sorted(other.plugins, key=str)
            if not any(mine.covers(v) for mine in self.plugins)
        ]
        for kind in ("publish", "subscribe"):
            extra += [
                f"{kind} {v}"
                for v in sorted(getattr(other, kind))
                if not any(topic_covers(mine, v) for mine in getattr(self, kind))
            ]
        return extra

    def covers(self, other: Capabilities) -> bool:
        """Whether ``other`` asks for nothing beyond these rights."""
        return not self.beyond(other)

    def allows(self, grant: FileGrant) -> bool:
        return any(g.covers(grant) for g in self.filesystem)


class _Everything(Capabilities):
    def beyond(self, other: Capabilities) -> list[str]:
        return []

    def allows(self, grant: FileGrant) -> bool:
        return True


_EVERYTHING: Final = _Everything()
_NOTHING: Final = Capabilities()


# -- the request, as a manifest writes it ---------------------------------------------------


@final
@attrs.frozen
class Preopen(FileGrant):
    """A directory the plugin asks to see: ``guest`` path inside the sandbox, ``host`` path
    (absolute, or ``"data"`` for the plugin's own data directory), mode ``ro`` or ``rw``.
    A :class:`FileGrant` written the manifest's way (``/data=data:rw``)."""

    def grant(self) -> FileGrant:
        return FileGrant(self.guest, self.host, self.mode)

    def __str__(self) -> str:
        return f"{self.guest}={self.host}:{self.mode}"


def _tuple_of_str(value: Iterable[str]) -> tuple[str, ...]:
    return tuple(value)


@final
@attrs.frozen
class RequestedCapabilities:
    """What a plugin asks for, in its manifest's order (duplicates dropped): a view of a
    :class:`Capabilities` that keeps the text the manifest or lockfile holds. Requests
    only: the host's policy decides what it gets."""

    filesystem: tuple[Preopen, ...] = ()
    env: tuple[str, ...] = attrs.field(default=(), converter=_tuple_of_str)
    network: tuple[str, ...] = attrs.field(default=(), converter=_tuple_of_str)
    interfaces: tuple[str, ...] = attrs.field(
        default=(),
        converter=_tuple_of_str,
        validator=attrs.validators.deep_iterable(attrs.validators.in_(HOST_INTERFACES)),
    )
    plugins: tuple[str, ...] = attrs.field(default=(), converter=_tuple_of_str)
    publish: tuple[str, ...] = attrs.field(default=(), converter=_tuple_of_str)
    subscribe: tuple[str, ...] = attrs.field(default=(), converter=_tuple_of_str)

    def __bool__(self) -> bool:
        return bool(
            self.filesystem
            or self.env
            or self.network
            or self.interfaces
            or self.plugins
            or self.publish
            or self.subscribe
        )

    def capabilities(self) -> Capabilities:
        """The request as the set of rights the policy intersects."""
        return Capabilities(
            filesystem=[p.grant() for p in self.filesystem],
            env=self.env,
            network=self.network,
            interfaces=self.interfaces,
            plugins=self.plugins,
            publish=self.publish,
            subscribe=self.subscribe,
        )

    def summary(self) -> list[str]:
        """One short string per requested capability, e.g. ``env:LANG``, ``fs:/data=data:rw``."""
        return (
            [f"iface:{i}" for i in self.interfaces]
            + [f"fs:{p}" for p in self.filesystem]
            + [f"env:{e}" for e in self.env]
            + [f"net:{o}" for o in self.network]
            + [f"plugin:{link}" for link in self.plugins]
            + [f"pub:{t}" for t in self.publish]
            + [f"sub:{t}" for t in self.subscribe]
        )

    def to_toml(self) -> dict[str, Any]:
        """The capabilities as manifest TOML values (what the lockfile writes)."""
        return {
            "interfaces": list(self.interfaces),
            "env": list(self.env),
            "network": list(self.network),
            "filesystem": [
                {"guest": p.guest, "host": p.host, "mode": p.mode} for p in self.filesystem
            ],
            **{
                key: list(values)
                for key, values in (
                    ("plugins", self.plugins),
                    ("publish", self.publish),
                    ("subscribe", self.subscribe),
                )
                if values  # absent when empty: lockfiles written before these keys stay equal
            },
        }

    def covers(self, other: RequestedCapabilities) -> bool:
        """Whether ``other`` asks for nothing beyond these capabilities."""
        return self.capabilities().covers(other.capabilities())


#: Seconds a plugin's start-up may take when neither its ``startup_timeout`` nor its
#: ``timeout`` is set.
STARTUP_TIMEOUT: Final = 10.0
#: Default largest component, in bytes (``Limits.max_component_bytes``); the largest real
#: components (componentize-py, a whole Python interpreter) are about 40 MB.
MAX_COMPONENT_BYTES: Final = 256 * 2**20
#: Default seconds compiling one component may take (``Limits.compile_timeout``).
COMPILE_TIMEOUT: Final = 120.0


@attrs.frozen
class Limits:
    """Resource limits of one plugin. ``None`` means no limit of that kind.

    ``timeout`` is seconds of wall-clock time per hook call; ``fuel`` the instructions per
    call (roughly; componentize-py guests burn ~16 G/s); ``memory`` bytes of linear memory
    (componentize-py guests need ~13 MiB to start); ``max_result_bytes`` the largest string
    or list a call may return; ``host_call_timeout`` seconds a host-interface call may take.

    Loading is bounded too, never unbounded: ``startup_timeout`` is seconds the component's
    start-up code (start functions run while instantiating) may take, by default the
    plugin's ``timeout``, or :data:`STARTUP_TIMEOUT` (10 s) when it has none (it also bounds
    unloading: the ``shutdown`` export, and the wait for a call still in flight);
    ``max_component_bytes`` the largest component file or bytes loaded (checked before the
    file is read, and so before it is compiled); ``compile_timeout`` seconds compiling it
    may take (a component over 256 KiB compiles in a child process, stopped at the
    deadline; a warm load from the compile cache does not compile).
    """

    timeout: float | None = 1.0
    fuel: int | None = None
    memory: int | None = 256 * 2**20
    instances: int | None = 100
    tables: int | None = 100
    max_result_bytes: int | None = 64 * 2**20
    host_call_timeout: float = 5.0
    startup_timeout: float | None = None
    max_component_bytes: int = MAX_COMPONENT_BYTES
    compile_timeout: float = COMPILE_TIMEOUT

    @property
    def startup_deadline(self) -> float:
        """Seconds start-up may take: ``startup_timeout``, else ``timeout``, else 10 s."""
        if self.startup_timeout is not None:
            return self.startup_timeout
        return STARTUP_TIMEOUT if self.timeout is None else self.timeout

    def __attrs_post_init__(self) -> None:
        problems = [
            f"limit {name} must be a positive number or None (no limit), got {value!r}"
            for name in ("timeout", "fuel", "memory", "instances", "tables", "max_result_bytes")
            if (value := getattr(self, name)) is not None and not _positive_number(value)
        ]
        if self.startup_timeout is not None and not _positive_number(self.startup_timeout):
            problems.append(
                "limit startup_timeout must be a positive number of seconds or None (the "
                f"plugin's timeout, else {STARTUP_TIMEOUT:g} s), got {self.startup_timeout!r}; "
                "start-up is never unbounded"
            )
        if not _positive_number(self.compile_timeout):
            problems.append(
                "limit compile_timeout must be a positive number of seconds, got "
                f"{self.compile_timeout!r}"
            )
        if not (
            isinstance(self.max_component_bytes, int)
            and not isinstance(self.max_component_bytes, bool)
            and self.max_component_bytes > 0
        ):
            problems.append(
                "limit max_component_bytes must be a positive whole number of bytes, got "
                f"{self.max_component_bytes!r}"
            )
        if not _positive_number(self.host_call_timeout):
            problems.append(
                "limit host_call_timeout must be a positive number of seconds, got "
                f"{self.host_call_timeout!r}"
            )
        problems += [
            f"limit {name} is {value!r} seconds, above the longest timeout of "
            f"{MAX_TIMEOUT:,} s (about 136 years){'; use None for no limit' if none else ''}"
            for name, none in _SECONDS_LIMITS
            if isinstance(value := getattr(self, name, None), int | float)
            and _positive_number(value)
            and not value <= MAX_TIMEOUT
        ]
        if problems:
            raise ValueError("; ".join(problems))


#: The longest timeout a limit may give (2**32 s): deadlines are converted to epoch ticks
#: and thread waits, which overflow on 1e308 or inf. None is how "no limit" is said.
MAX_TIMEOUT: Final = 2**32
# (limit, whether None is allowed)
_SECONDS_LIMITS: Final = (
    ("timeout", True),
    ("startup_timeout", False),
    ("host_call_timeout", False),
    ("compile_timeout", False),
)


def _positive_number(value: object) -> bool:
    # bool is an int, and NaN is not > 0: both are refused
    return isinstance(value, int | float) and not isinstance(value, bool) and value > 0


@attrs.frozen
class Effective:
    """What a plugin actually gets: rights and limits, with host paths resolved."""

    capabilities: Capabilities
    limits: Limits
    data_dir: Path | None = None

    def preopens(self) -> list[tuple[Path, str, bool]]:
        """(host directory, guest path, writable) for each granted directory."""
        result = []
        for grant in self.capabilities.filesystem:
            if grant.host == DATA_DIR:
                if self.data_dir is None:
                    raise ValueError("a data-directory grant needs the plugin's data_dir")
                self.data_dir.mkdir(parents=True, exist_ok=True)
                host = self.data_dir
            else:
                host = Path(grant.host)
            result.append((host, grant.guest, grant.mode == "rw"))
        return result


def _check_host_path(plugin: str, grant: FileGrant) -> str | None:
    """Why a host directory must not be preopened, or None if it may."""
    if grant.host == DATA_DIR:
        return None
    path = Path(grant.host)
    if not path.is_absolute():
        return f"host path {grant.host!r} is not absolute"
    if path.resolve() == Path("/"):
        return "the filesystem root '/' is never preopened"
    if path.is_symlink() or path.resolve() != Path(os.path.normpath(path)):
        return f"host path {grant.host!r} goes through a symlink; grant the real directory"
    if not path.is_dir():
        return f"host path {grant.host!r} is not an existing directory"
    return None


def decide(
    plugin: str,
    request: Capabilities,
    ceiling: Capabilities,
    grants: Capabilities,
    *,
    strict: bool = True,
) -> tuple[Capabilities, list[str]]:
    """Intersect ``request`` with ``ceiling`` and ``grants``.

    Returns the effective capabilities and the list of denied rights (one line each). With
    ``strict`` (the default) any denial raises :class:`CapabilityDenied` listing all of them
    and how to grant them.
    """

    def in_pool(pool: Capabilities, attr: str, value: object) -> bool:
        return isinstance(pool, _Everything) or value in getattr(pool, attr)

    denied: list[str] = []
    files = []
    for grant in request.filesystem:
        if not ceiling.allows(grant):
            denied.append(f"{grant} (above the host's ceiling)")
        elif not grants.allows(grant):
            denied.append(f"{grant} (not granted)")
        elif (problem := _check_host_path(plugin, grant)) is not None:
            denied.append(f"{grant} ({problem})")
        else:
            files.append(grant)
    kept: dict[str, set[object]] = {"env": set(), "network": set(), "interfaces": set()}
    labels = {"env": "env", "network": "network", "interfaces": "interface"}
    for attr in kept:
        for value in sorted(getattr(request, attr), key=str):
            if not in_pool(ceiling, attr, value):
                denied.append(f"{labels[attr]} {value} (above the host's ceiling)")
            elif not in_pool(grants, attr, value):
                denied.append(f"{labels[attr]} {value} (not granted)")
            else:
                kept[attr].add(value)

    # Links and topic patterns are covered (a granted pattern covers narrower ones), not
    # merely members.
    def links_cover(pool: Capabilities, link: PluginLink) -> bool:
        return isinstance(pool, _Everything) or any(p.covers(link) for p in pool.plugins)

    links: list[PluginLink] = []
    for link in sorted(request.plugins, key=str):
        if not links_cover(ceiling, link):
            denied.append(f"plugin link {link} (above the host's ceiling)")
        elif not links_cover(grants, link):
            denied.append(f"plugin link {link} (not granted; links to plugin {link.provider!r})")
        else:
            links.append(link)
    topics: dict[str, list[str]] = {"publish": [], "subscribe": []}
    for kind, kept_topics in topics.items():
        for pattern in sorted(getattr(request, kind)):
            pools = ((ceiling, "above the host's ceiling"), (grants, "not granted"))
            for pool, why in pools:
                if not isinstance(pool, _Everything) and not any(
                    topic_covers(p, pattern) for p in getattr(pool, kind)
                ):
                    denied.append(f"{kind} {pattern} ({why})")
                    break
            else:
                kept_topics.append(pattern)
    if not (files or links or any(kept.values()) or any(topics.values())):
        effective = _NOTHING  # no right at all: the shared instance
    else:
        effective = Capabilities(
            filesystem=tuple(files),
            env=frozenset(str(v) for v in kept["env"]),
            network=frozenset(v for v in kept["network"] if isinstance(v, Origin)),
            interfaces=frozenset(str(v) for v in kept["interfaces"]),
            plugins=frozenset(links),
            publish=frozenset(topics["publish"]),
            subscribe=frozenset(topics["subscribe"]),
        )
    if denied and strict:
        raise CapabilityDenied(plugin, denied)
    return effective, denied
