"""Plugin manifests: ``plugin.toml`` beside a component, parsed into frozen, validated data.

A manifest (every key but ``name`` is optional; ``docs/reference/manifest.md`` lists them)::

    name = "reverse"
    version = "1.0.0"
    description = "Reverses text"
    component = "reverse.wasm"
    sha256 = "9f86d081..."

    [contract]
    package = "textpipe:hooks"
    version = "^1.0"

    [hooks.transform]
    tryfirst = true

    [capabilities]
    interfaces = ["log", "http"]
    env = ["LANG"]
    network = ["https://api.example.com"]
    filesystem = [{ guest = "/data", host = "data", mode = "rw" }]
    plugins = ["tokenizer:textpipe:nlp/tokenize@^1"]   # links to other plugins' exports
    publish = ["events.enriched"]                       # topic patterns (messaging)
    subscribe = ["events.raw.*"]

    [limits]
    memory = "64 MiB"
    timeout = 0.5
    fuel = 1_000_000

    [config]
    greeting = "hello"

Parsing collects every problem and raises them together in one :class:`ManifestError`;
each names the file, the field and a fix. Unknown keys are problems too, with a "did you
mean" when a known key is close.
"""

from __future__ import annotations

import math
import re
import tomllib
import types
from collections.abc import Iterable, Mapping
from pathlib import Path, PurePosixPath
from typing import Any, Final, final

from .. import _attrs as attrs
from .._errors import PluginError
from .._files import read_metadata_file
from ..contract.mapping import HookOptions
from ..contract.semver import Version, VersionRange
from ..policy.capabilities import (
    HOST_INTERFACES,
    MAX_TIMEOUT,
    Preopen,
    RequestedCapabilities,
)
from ..policy.tables import TableProblem, TableReader, describe, read_request

__all__ = [
    "INTERFACES",
    "ContractTarget",
    "Manifest",
    "ManifestError",
    "ManifestProblem",
    "Preopen",
    "RequestedCapabilities",
    "RequestedLimits",
    "VersionRange",
]

#: Host interfaces a plugin may ask for (the sandbox layer decides what they grant).
INTERFACES: Final = HOST_INTERFACES

_NAME_RE: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_SHA256_RE: Final = re.compile(r"^[0-9a-f]{64}$")
_WIT_ID: Final = r"[a-z][a-z0-9]*(?:-[a-z][a-z0-9]*)*"
_PACKAGE_RE: Final = re.compile(rf"^{_WIT_ID}:{_WIT_ID}$")
_SIZE_RE: Final = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMG]i?B|B)?\s*$")
_SIZE_UNITS: Final = {
    None: 1,
    "B": 1,
    "KB": 1000,
    "MB": 1000**2,
    "GB": 1000**3,
    "KiB": 1024,
    "MiB": 1024**2,
    "GiB": 1024**3,
}
_WASM_PAGE: Final = 65536

# -- problems -------------------------------------------------------------------------------


@final
@attrs.frozen
class ManifestProblem(TableProblem):
    """One problem in a manifest: where it is, what is wrong, and how to fix it."""


class ManifestError(PluginError, ValueError):
    """A manifest is invalid; ``problems`` lists every problem found, not only the first."""

    def __init__(
        self,
        problems: Iterable[TableProblem],
        *,
        plugin: str | None = None,
        path: str | None = None,
    ):
        self.problems = tuple(problems)
        self.path = path
        lines = "\n".join(f"  - {p}" for p in self.problems)
        who = f"plugin {plugin!r}" if plugin else "a plugin"
        super().__init__(
            f"the manifest of {who} ({path or 'no file'}) has {len(self.problems)} "
            f"problem(s):\n{lines}",
            plugin=plugin,
        )


# -- the manifest's parts -------------------------------------------------------------------


@final
@attrs.frozen
class ContractTarget:
    """The host contract a plugin was built for: a WIT package and a semver range."""

    package: str
    versions: VersionRange

    def accepts(self, package: str, version: str | None) -> bool:
        """Whether a host publishing ``package@version`` fits this target."""
        if package != self.package:
            return False
        if version is None:
            return not self.versions.clauses
        try:
            return self.versions.contains(version)
        except ValueError:
            return False

    def __str__(self) -> str:
        return f"{self.package} {self.versions}"


def _positive(_: object, attribute: attrs.Attribute[Any], value: float | None) -> None:
    if value is not None and not value > 0:
        raise ValueError(f"{attribute.name} must be positive, not {value!r}")


@final
@attrs.frozen
class RequestedLimits:
    """Limits a plugin asks for: ``memory`` in bytes, ``timeout`` per call in seconds,
    ``fuel`` in instructions. ``None``: the host's default."""

    memory: int | None = attrs.field(default=None, validator=_positive)
    timeout: float | None = attrs.field(default=None, validator=_positive)
    fuel: int | None = attrs.field(default=None, validator=_positive)

    def to_toml(self) -> dict[str, Any]:
        return {k: v for k, v in attrs.asdict(self).items() if v is not None}


def _frozen_mapping(value: Mapping[str, Any]) -> Mapping[str, Any]:  # read-only view
    return types.MappingProxyType(dict(value))


@final
@attrs.frozen
class Manifest:
    """A plugin's manifest. ``path`` is the ``plugin.toml`` it came from (``None`` for the
    defaults of a bare ``.wasm``); ``component`` is relative to the manifest's directory."""

    name: str
    version: str = "0.0.0"
    description: str = ""
    component: str = ""
    sha256: str | None = None
    contract: ContractTarget | None = None
    hooks: Mapping[str, HookOptions] = attrs.field(factory=dict, converter=_frozen_mapping)
    capabilities: RequestedCapabilities = attrs.field(factory=RequestedCapabilities)
    limits: RequestedLimits = attrs.field(factory=RequestedLimits)
    config: Mapping[str, str] = attrs.field(factory=dict, converter=_frozen_mapping)
    path: Path | None = None

    @property
    def component_path(self) -> Path:
        """Where the component is: beside the manifest, as ``component`` says."""
        base = self.path.parent if self.path is not None else Path()
        return base / (self.component or f"{self.name}.wasm")

    @classmethod
    def for_component(cls, wasm: str | Path, *, name: str | None = None) -> Manifest:
        """The defaults for a bare ``.wasm`` without a manifest: name from the file name,
        no capabilities, no contract target."""
        path = Path(wasm)
        return cls(name=name or path.stem, component=str(path))

    @classmethod
    def from_file(cls, path: str | Path, *, data: bytes | None = None) -> Manifest:
        """Read and validate ``path`` (or ``data``, its already-read bytes)."""
        path = Path(path)
        if data is None:
            try:
                data = read_metadata_file(path, what="manifest")
            except OSError as exc:
                raise ManifestError(
                    [
                        ManifestProblem(
                            str(path),
                            "(file)",
                            f"cannot read the manifest: {exc.strerror or exc}",
                            "check that the file exists and is readable",
                        )
                    ],
                    path=str(path),
                ) from exc
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ManifestError(
                [
                    ManifestProblem(
                        str(path),
                        "(file)",
                        f"not UTF-8 text ({exc.reason} at byte {exc.start})",
                        "save the manifest as UTF-8",
                    )
                ],
                path=str(path),
            ) from exc
        return cls.from_toml(text, path=path)

    @classmethod
    def from_toml(cls, text: str, *, path: str | Path = "plugin.toml") -> Manifest:
        """Parse manifest TOML text; ``path`` is used in messages and to find the component."""
        path = Path(path)
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ManifestError(
                [
                    ManifestProblem(
                        str(path),
                        "(syntax)",
                        f"not valid TOML: {exc}",
                        "correct the TOML syntax at that line and column",
                    )
                ],
                path=str(path),
            ) from exc
        return TableParser(path).manifest(data)


# -- the parser -----------------------------------------------------------------------------

_TOP_KEYS: Final = (
    "name",
    "version",
    "description",
    "component",
    "sha256",
    "contract",
    "hooks",
    "capabilities",
    "limits",
    "config",
)
_CONTRACT_KEYS: Final = ("package", "version")
_HOOK_KEYS: Final = ("tryfirst", "trylast", "specname", "timeout")
_LIMIT_KEYS: Final = ("memory", "timeout", "fuel")


def _is_semver(text: str) -> bool:
    try:
        Version.parse(text)
    except ValueError:
        return False
    return True


class TableParser(TableReader):
    """Walks the TOML data once, collecting every problem before raising."""

    problem_type = ManifestProblem

    def __init__(self, path: Path):
        super().__init__(str(path))
        self.path = path

    # -- sections ---------------------------------------------------------------------------

    def manifest(self, data: Mapping[str, Any]) -> Manifest:
        self.unknown_keys(data, _TOP_KEYS, "")
        name = self.typed(data, "name", str, "name")
        if "name" not in data:
            self.problem("name", "missing", 'add name = "<plugin name>" at the top')
        elif name is not None and not _NAME_RE.match(name):
            self.problem(
                "name",
                f"{name!r} is not a plugin name",
                "use 1-64 letters, digits, '-', '_' or '.', starting with a letter or digit",
            )
            name = None
        version = self.typed(data, "version", str, "version")
        if version is not None and not _is_semver(version):
            self.problem(
                "version",
                f"{version!r} is not a semantic version",
                'write it as MAJOR.MINOR.PATCH, e.g. "1.0.0"',
            )
        description = self.typed(data, "description", str, "description")
        component = self.typed(data, "component", str, "component")
        if component is not None:
            component = self.component(component)
        sha256 = self.typed(data, "sha256", str, "sha256")
        if sha256 is not None and not _SHA256_RE.match(sha256):
            self.problem(
                "sha256",
                "not a SHA-256 digest (64 lowercase hex digits)",
                "write the digest printed by `sha256sum COMPONENT.wasm`, or remove the key",
            )
            sha256 = None
        contract = self.contract(data)
        hooks = self.hooks(data)
        capabilities = self.capabilities(data)
        limits = self.limits(data)
        config = self.config(data)
        if self.problems or name is None:
            raise ManifestError(
                self.problems, plugin=name or self.path.parent.name, path=str(self.path)
            )
        return Manifest(
            name=name,
            version=version or "0.0.0",
            description=description or "",
            component=component or f"{name}.wasm",
            sha256=sha256,
            contract=contract,
            hooks=hooks,
            capabilities=capabilities,
            limits=limits,
            config=config,
            path=self.path,
        )

    def config(self, data: Mapping[str, Any]) -> dict[str, str]:
        """Default values of the plugin's ``config`` interface, which carries strings."""
        out: dict[str, str] = {}
        for key, value in self.table(data, "config", "config").items():
            if isinstance(value, str):
                out[key] = value
            elif isinstance(value, bool):
                out[key] = "true" if value else "false"
            elif isinstance(value, int | float):
                out[key] = str(value)
            else:
                self.problem(
                    f"config.{key}",
                    f"must be a string, number or boolean, not {describe(value)}",
                    "write one scalar value per key (the config interface passes strings)",
                )
        return out

    def component(self, value: str) -> str | None:
        rel = PurePosixPath(value)
        if rel.is_absolute() or ".." in rel.parts or not value or "\\" in value:
            self.problem(
                "component",
                f"{value!r} is not a path inside the plugin's directory",
                'name the .wasm file relative to plugin.toml, e.g. "reverse.wasm"',
            )
            return None
        if rel.suffix != ".wasm":
            self.problem(
                "component",
                f"{value!r} does not end in .wasm",
                "point component at the WebAssembly component file",
            )
            return None
        return value

    def contract(self, data: Mapping[str, Any]) -> ContractTarget | None:
        table = self.table(data, "contract", "contract")
        if not table:
            return None
        self.unknown_keys(table, _CONTRACT_KEYS, "contract.")
        package = self.typed(table, "package", str, "contract.package")
        if "package" not in table:
            self.problem(
                "contract.package", "missing", 'add package = "namespace:name" to [contract]'
            )
        elif package is not None and not _PACKAGE_RE.match(package):
            fix = (
                "put the version in contract.version"
                if "@" in package
                else 'write the WIT package as namespace:name, e.g. "textpipe:hooks"'
            )
            self.problem("contract.package", f"{package!r} is not a WIT package name", fix)
            package = None
        text = self.typed(table, "version", str, "contract.version")
        versions = VersionRange.parse("*")
        if text is not None:
            try:
                versions = VersionRange.parse(text)
            except ValueError as exc:
                self.problem(
                    "contract.version",
                    str(exc),
                    'write a semver range such as "^1.0", "~1.2", ">=1.0, <2" or "*"',
                )
        return None if package is None else ContractTarget(package, versions)

    def hooks(self, data: Mapping[str, Any]) -> dict[str, HookOptions]:
        table = self.table(data, "hooks", "hooks")
        out: dict[str, HookOptions] = {}
        for hook, opts in table.items():
            field = f"hooks.{hook}"
            if not hook.isidentifier():
                fix = (
                    f"use the Python hook name, e.g. [hooks.{hook.replace('-', '_')}]"
                    if hook.replace("-", "_").isidentifier()
                    else "name the hook as its hookspec is named in Python"
                )
                self.problem(field, f"{hook!r} is not a hook name", fix)
                continue
            if not isinstance(opts, dict):
                self.problem(
                    field,
                    f"must be a table, not {describe(opts)}",
                    f"write the options as [hooks.{hook}] with tryfirst/trylast/specname",
                )
                continue
            self.unknown_keys(opts, _HOOK_KEYS, f"{field}.")
            tryfirst = self.typed(opts, "tryfirst", bool, f"{field}.tryfirst")
            trylast = self.typed(opts, "trylast", bool, f"{field}.trylast")
            specname = self.typed(opts, "specname", str, f"{field}.specname")
            if tryfirst and trylast:
                self.problem(
                    field, "tryfirst and trylast are both true", "keep at most one of them"
                )
            if specname is not None and not specname.isidentifier():
                self.problem(
                    f"{field}.specname",
                    f"{specname!r} is not a hook name",
                    "name the hookspec this export serves, as written in Python",
                )
                specname = None
            timeout = self.typed(opts, "timeout", float, f"{field}.timeout")
            if timeout is not None and not (math.isfinite(timeout) and timeout > 0):
                self.problem(
                    f"{field}.timeout",
                    f"{timeout!r} is not a positive number of seconds",
                    "write this hook's per-call deadline in seconds, e.g. 0.5",
                )
                timeout = None
            out[hook] = HookOptions(
                tryfirst=bool(tryfirst),
                trylast=bool(trylast),
                specname=specname or None,
                timeout=None if timeout is None else float(timeout),
            )
        return out

    def capabilities(self, data: Mapping[str, Any]) -> RequestedCapabilities:
        table = self.table(data, "capabilities", "capabilities")
        return read_request(self, table, "capabilities")

    def limits(self, data: Mapping[str, Any]) -> RequestedLimits:
        table = self.table(data, "limits", "limits")
        self.unknown_keys(table, _LIMIT_KEYS, "limits.")
        memory: int | None = None
        if "memory" in table:
            memory = self.size(table["memory"], "limits.memory")
        timeout = self.typed(table, "timeout", float, "limits.timeout")
        if timeout is not None and not (math.isfinite(timeout) and timeout > 0):
            self.problem(
                "limits.timeout",
                f"{timeout!r} is not a positive number of seconds",
                "write the per-call deadline in seconds, e.g. 0.5",
            )
            timeout = None
        elif timeout is not None and timeout > MAX_TIMEOUT:
            self.problem(
                "limits.timeout",
                f"{timeout!r} seconds is above the longest timeout ({MAX_TIMEOUT:,} s)",
                "write the per-call deadline in seconds, or leave it out for the host's",
            )
            timeout = None
        fuel = self.typed(table, "fuel", int, "limits.fuel")
        if fuel is not None and fuel <= 0:
            self.problem(
                "limits.fuel", f"{fuel} is not positive", "write a positive instruction budget"
            )
            fuel = None
        return RequestedLimits(memory, None if timeout is None else float(timeout), fuel)

    def size(self, value: object, field: str) -> int | None:
        fix = 'write bytes as an integer, or a string such as "64 MiB" (B, KiB, MiB, GiB)'
        if isinstance(value, bool) or not isinstance(value, int | str):
            self.problem(field, f"must be a size, not {describe(value)}", fix)
            return None
        if isinstance(value, int):
            size = value
        else:
            m = _SIZE_RE.match(value)
            if m is None:
                self.problem(field, f"{value!r} is not a size", fix)
                return None
            size = int(float(m.group(1)) * _SIZE_UNITS[m.group(2)])
        if size < _WASM_PAGE:
            self.problem(
                field,
                f"{value!r} is less than one WebAssembly page (64 KiB)",
                'allow at least "64 KiB"',
            )
            return None
        return size
