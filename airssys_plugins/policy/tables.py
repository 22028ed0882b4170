"""Reading TOML tables into policy data, collecting every problem before raising.

The one parser of capabilities: ``[capabilities]`` of a plugin.toml, the
``[plugins.<name>]`` tables of a grants file and the entries of a lockfile all go through
:func:`read_capabilities`. A problem names the file, the field and a fix; unknown keys get
a "did you mean" when a known key is close.

Why not cattrs: its structuring collects errors as ExceptionGroups with a path, but the
messages are its own ("invalid value for type, expected str @ $.env[1]"). Every problem
here carries a specific reason and a fix (did-you-mean, what to write instead), and some
are not about types at all (network without the http interface, a guest path mapped
twice), so turning cattrs' groups back into these problems would cost more code than the
small collector below.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, Final, Generic, TypeVar

from .. import _attrs as attrs
from .._errors import PluginError
from .._files import read_metadata_file
from .capabilities import (
    HOST_INTERFACES,
    Capabilities,
    Origin,
    PluginLink,
    Preopen,
    RequestedCapabilities,
    env_name,
    file_mode,
    guest_path,
    host_path,
    interface_name,
    topic_pattern,
)

#: What :func:`read_capabilities` returns: filesystem, env, network, interfaces, plugin
#: links, publish and subscribe patterns, each in the table's order.
CapabilityRows = tuple[
    tuple[Preopen, ...],
    tuple[str, ...],
    tuple[str, ...],
    tuple[str, ...],
    tuple[str, ...],
    tuple[str, ...],
    tuple[str, ...],
]

__all__ = [
    "GrantsError",
    "TableProblem",
    "TableReader",
    "grants_from_mapping",
    "read_capabilities",
    "read_grant",
    "read_grants",
    "read_request",
    "read_signature_tables",
]

CAPABILITY_KEYS: Final = (
    "filesystem",
    "env",
    "network",
    "interfaces",
    "plugins",
    "publish",
    "subscribe",
)
_PREOPEN_KEYS: Final = ("guest", "host", "mode")

_TOML_TYPES: Final = {
    str: "a string",
    bool: "a boolean",
    int: "an integer",
    float: "a number",
    list: "an array",
    dict: "a table",
}

T = TypeVar("T")


def describe(value: object) -> str:
    """A TOML value in words for messages: ``a string 'x'``, ``a table``."""
    for py, name in _TOML_TYPES.items():
        if type(value) is py:
            return f"{name.split(' ', 1)[1]} {value!r}" if py is not dict else "a table"
    return type(value).__name__


@attrs.frozen
class TableProblem:
    """One problem in a TOML file: where it is, what is wrong, and how to fix it."""

    file: str
    field: str
    message: str
    fix: str

    def __str__(self) -> str:
        return f"{self.file}: {self.field}: {self.message}. Fix: {self.fix}"


class TableReader:
    """Walks TOML data once, collecting every problem. ``problem_type`` lets the manifest
    parser record its own :class:`TableProblem` subclass."""

    problem_type: type[TableProblem] = TableProblem

    def __init__(self, file: str):
        self.file = file
        self.problems: list[TableProblem] = []

    def problem(self, field: str, message: str, fix: str) -> None:
        self.problems.append(self.problem_type(self.file, field, message, fix))

    def checked(self, check: Callable[[str], T], value: str, field: str) -> T | None:
        """``check(value)``, or None with its "reason; fix" recorded as a problem."""
        try:
            return check(value)
        except ValueError as exc:
            reason, _, fix = str(exc).partition("; ")
            self.problem(field, reason, fix or "correct the value")
            return None

    def unknown_keys(self, table: Mapping[str, Any], known: Iterable[str], prefix: str) -> None:
        known = list(known)
        for key in table:
            if key in known:
                continue
            import difflib  # error paths only: imported when a key is unknown

            close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
            fix = (
                f"did you mean {close[0]!r}?"
                if close
                else f"remove it; the keys here are: {', '.join(known)}"
            )
            self.problem(f"{prefix}{key}", "unknown key", fix)

    def typed(self, table: Mapping[str, Any], key: str, kind: type, field: str) -> Any:
        """``table[key]`` if present and of type ``kind`` (numbers: int or float), else None."""
        if key not in table:
            return None
        value = table[key]
        kinds: tuple[type, ...] = (int, float) if kind is float else (kind,)
        if (isinstance(value, bool) and kind is not bool) or not isinstance(value, kinds):
            self.problem(
                field,
                f"must be {_TOML_TYPES[kind]}, not {describe(value)}",
                f"write {field} as {_TOML_TYPES[kind]}",
            )
            return None
        return value

    def table(self, data: Mapping[str, Any], key: str, field: str) -> dict[str, Any]:
        value = self.typed(data, key, dict, field)
        return value if isinstance(value, dict) else {}

    def str_list(self, table: Mapping[str, Any], key: str, field: str) -> list[tuple[int, str]]:
        value = self.typed(table, key, list, field)
        out: list[tuple[int, str]] = []
        for i, item in enumerate(value or []):
            if isinstance(item, str):
                out.append((i, item))
            else:
                self.problem(
                    f"{field}[{i}]",
                    f"must be a string, not {describe(item)}",
                    "write each entry as a quoted string",
                )
        return out


def read_request(
    reader: TableReader, table: Mapping[str, Any], prefix: str
) -> RequestedCapabilities:
    """A plugin's request (plugin.toml ``[capabilities]``, a lockfile entry), in its order:
    only the built-in host interfaces may be asked for, and network origins need ``http``."""
    return RequestedCapabilities(*read_capabilities(reader, table, prefix, request=True))


def read_grant(reader: TableReader, table: Mapping[str, Any], prefix: str) -> Capabilities:
    """An operator's grant (a grants file table): may also grant interfaces the host
    application provides."""
    filesystem, env, network, interfaces, links, publish, subscribe = read_capabilities(
        reader, table, prefix, request=False
    )
    return Capabilities(
        [p.grant() for p in filesystem], env, network, interfaces, links, publish, subscribe
    )


def read_capabilities(
    reader: TableReader, table: Mapping[str, Any], prefix: str, *, request: bool
) -> CapabilityRows:
    """The one capability parser: the filesystem, env, network, interfaces, plugins,
    publish and subscribe entries of ``table`` (fields named ``<prefix>.<key>``), each
    problem recorded in ``reader``."""
    prefix = f"{prefix}." if prefix else ""
    reader.unknown_keys(table, CAPABILITY_KEYS, prefix)
    interfaces: list[str] = []
    for i, name in reader.str_list(table, "interfaces", f"{prefix}interfaces"):
        field = f"{prefix}interfaces[{i}]"
        if name in HOST_INTERFACES or (
            not request and reader.checked(interface_name, name, field) is not None
        ):
            if name not in interfaces:
                interfaces.append(name)
        elif request:
            import difflib

            close = difflib.get_close_matches(name, sorted(HOST_INTERFACES), n=1, cutoff=0.5)
            reader.problem(
                field,
                f"{name!r} is not a host interface",
                f"did you mean {close[0]!r}?"
                if close
                else f"choose from {', '.join(sorted(HOST_INTERFACES))}",
            )
    env: list[str] = []
    for i, var in reader.str_list(table, "env", f"{prefix}env"):
        if reader.checked(env_name, var, f"{prefix}env[{i}]") is not None and var not in env:
            env.append(var)
    network: list[str] = []
    for i, text in reader.str_list(table, "network", f"{prefix}network"):
        origin = reader.checked(Origin.parse, text, f"{prefix}network[{i}]")
        if origin is not None and str(origin) not in network:
            network.append(str(origin))
    if request and network and "http" not in interfaces:
        reader.problem(
            f"{prefix}network",
            "network origins are reached through the http host interface, which is not requested",
            f'add "http" to {prefix}interfaces',
        )
    filesystem: list[Preopen] = []
    raw = reader.typed(table, "filesystem", list, f"{prefix}filesystem") or []
    for i, item in enumerate(raw):
        field = f"{prefix}filesystem[{i}]"
        preopen = _preopen(reader, item, field)
        if preopen is None:
            continue
        if any(p.guest == preopen.guest for p in filesystem):
            reader.problem(
                f"{field}.guest",
                f"{preopen.guest!r} is mapped twice",
                "give each guest path one entry",
            )
            continue
        filesystem.append(preopen)
    links: list[str] = []
    for i, text in reader.str_list(table, "plugins", f"{prefix}plugins"):
        link = reader.checked(PluginLink.parse, text, f"{prefix}plugins[{i}]")
        if link is not None and str(link) not in links:
            links.append(str(link))
    topics: dict[str, list[str]] = {"publish": [], "subscribe": []}
    for kind, kept in topics.items():
        for i, text in reader.str_list(table, kind, f"{prefix}{kind}"):
            checked = reader.checked(topic_pattern, text, f"{prefix}{kind}[{i}]")
            if checked is not None and text not in kept:
                kept.append(text)
    if request and topics["publish"] and "messaging" not in interfaces:
        reader.problem(
            f"{prefix}publish",
            "messages are published through the messaging host interface, which is not requested",
            f'add "messaging" to {prefix}interfaces',
        )
    return (
        tuple(filesystem),
        tuple(env),
        tuple(network),
        tuple(interfaces),
        tuple(links),
        tuple(topics["publish"]),
        tuple(topics["subscribe"]),
    )


def _preopen(reader: TableReader, item: object, field: str) -> Preopen | None:
    if not isinstance(item, dict):
        reader.problem(
            field,
            f"must be a table, not {describe(item)}",
            'write { guest = "/data", host = "data", mode = "ro" }',
        )
        return None
    reader.unknown_keys(item, _PREOPEN_KEYS, f"{field}.")
    for key in ("guest", "host"):
        if key not in item:
            reader.problem(f"{field}.{key}", "missing", f"add {key} = ... to the entry")
    values = {key: reader.typed(item, key, str, f"{field}.{key}") for key in _PREOPEN_KEYS}
    checks = {"guest": guest_path, "host": host_path, "mode": file_mode}
    for key, check in checks.items():
        if values[key] is not None:
            values[key] = reader.checked(check, values[key], f"{field}.{key}")
    guest, host, mode = values["guest"], values["host"], values["mode"]
    if guest is None or host is None or (mode is None and "mode" in item):
        return None
    return Preopen(guest, host, mode or "ro")


# -- grants files ---------------------------------------------------------------------------


class GrantsError(PluginError, ValueError):
    """A grants file (or a grants table) is invalid; ``problems`` lists every problem, each
    naming the file, the ``[plugins.<name>]`` table and the key."""

    def __init__(self, problems: Iterable[TableProblem], *, path: str):
        self.problems = tuple(problems)
        self.path = path
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"{path}: {len(self.problems)} problem(s) in the grants:\n{lines}")


def grants_from_mapping(data: Mapping[str, object], *, where: str) -> Capabilities:
    """Capabilities from one TOML-shaped grants table:

    ``filesystem = [{guest = "/data", host = "data", mode = "rw"}]``, ``env = ["LANG"]``,
    ``network = ["https://api.example.com"]``, ``interfaces = ["log", "kv"]``.

    Every problem is raised at once in a :class:`GrantsError`; ``where`` names the table.
    """
    reader = TableReader(where)
    caps = read_grant(reader, data, "")
    if reader.problems:
        raise GrantsError(reader.problems, path=where)
    return caps


def _grants_toml(path: Path, reader: TableReader) -> dict[str, Any]:
    """The TOML of the grants file ``path``; unreadable or invalid, a :class:`GrantsError`."""
    import tomllib  # only a host given a grants file reads TOML

    try:
        return tomllib.loads(read_metadata_file(path, what="grants file").decode("utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        reader.problem(
            "(file)",
            f"cannot read the grants file: {exc}",
            "check that it exists and is valid TOML",
        )
        raise GrantsError(reader.problems, path=str(path)) from exc


def read_grants(path: Path) -> dict[str, Capabilities]:
    """A grants file: ``[plugins.<name>]`` tables, one per plugin. Every problem of every
    table is raised at once in a :class:`GrantsError`."""
    reader = TableReader(str(path))
    data = _grants_toml(path, reader)
    reader.unknown_keys(data, ["plugins", "signatures"], "")
    grants: dict[str, Capabilities] = {}
    for name, table in reader.table(data, "plugins", "plugins").items():
        field = f"plugins.{name}"
        if not isinstance(table, dict):
            reader.problem(
                field,
                f"must be a table, not {describe(table)}",
                f"write the grants of {name!r} as [{field}] with filesystem, env, network, "
                "interfaces",
            )
            continue
        # signed-by (trusted signing keys) is read by read_signature_tables
        table = {k: v for k, v in table.items() if k != "signed-by"}
        grants[name] = read_grant(reader, table, field)
    if reader.problems:
        raise GrantsError(reader.problems, path=str(path))
    return grants


# -- signature settings of a grants file ------------------------------------------------------

K = TypeVar("K")
_SIGNATURE_KEYS: Final = ("policy", "keys", "packs", "sigstore")
_SIGSTORE_KEYS: Final = ("identity", "issuer", "trusted-root")


@attrs.frozen
class SignatureTables(Generic[K]):
    """The signature settings of a grants file, keys parsed by the caller's function:
    ``[signatures]`` ``policy`` and ``keys`` (any plugin), ``[signatures.packs]`` (per
    distribution), ``signed-by`` of each ``[plugins.<name>]``, ``[signatures.sigstore]``
    as (identity, issuer, trusted-root or None)."""

    policy: str | None
    default: tuple[K, ...]
    plugins: dict[str, tuple[K, ...]]
    packs: dict[str, tuple[K, ...]]
    sigstore: tuple[str, str, str | None] | None


def read_signature_tables(path: Path, parse_key: Callable[[str], K]) -> SignatureTables[K]:
    """The signature settings of the grants file ``path``; ``parse_key`` turns an
    ``ed25519:...`` text or a ``.pub`` path into a key (its ``ValueError`` becomes a
    problem). Every problem is raised at once in a :class:`GrantsError`."""
    reader = TableReader(str(path))
    data = _grants_toml(path, reader)

    def keys(table: Mapping[str, Any], key: str, field: str) -> tuple[K, ...]:
        out = [
            reader.checked(parse_key, text, f"{field}[{i}]")
            for i, text in reader.str_list(table, key, field)
        ]
        return tuple(k for k in out if k is not None)

    section = reader.table(data, "signatures", "signatures")
    reader.unknown_keys(section, _SIGNATURE_KEYS, "signatures.")
    policy = reader.typed(section, "policy", str, "signatures.policy")
    if policy is not None and policy not in ("require", "verify-if-present", "ignore"):
        reader.problem(
            "signatures.policy",
            f"{policy!r} is not a signature policy",
            'write "require", "verify-if-present" or "ignore"',
        )
    packs = {
        name: keys(section["packs"], name, f"signatures.packs.{name}")
        for name in reader.table(section, "packs", "signatures.packs")
    }
    plugins = {
        name: keys(table, "signed-by", f"plugins.{name}.signed-by")
        for name, table in reader.table(data, "plugins", "plugins").items()
        if isinstance(table, dict) and "signed-by" in table
    }
    default = keys(section, "keys", "signatures.keys")
    sigstore = None
    if "sigstore" in section:
        table = reader.table(section, "sigstore", "signatures.sigstore")
        reader.unknown_keys(table, _SIGSTORE_KEYS, "signatures.sigstore.")
        for key in ("identity", "issuer"):
            if key not in table:
                reader.problem(
                    f"signatures.sigstore.{key}", "missing", f"add {key} = ... to the table"
                )
        identity, issuer, root = (
            reader.typed(table, key, str, f"signatures.sigstore.{key}") for key in _SIGSTORE_KEYS
        )
        if identity is not None and issuer is not None:
            sigstore = (identity, issuer, root)
    if reader.problems:
        raise GrantsError(reader.problems, path=str(path))
    return SignatureTables(policy, default, plugins, packs, sigstore)
