"""Finding plugins: directories, the platformdirs plugin dirs, and pip component packs.

A plugin is a directory holding ``plugin.toml`` and the component it names, or a bare
``.wasm`` file (name from the file name, no capabilities). Where plugins are looked for,
first match of a name wins:

1. the directories (or single plugins) the host passes, in the order given;
2. the user data dir: ``platformdirs.user_data_dir(app)/plugins``;
3. the site data dirs: ``platformdirs.site_data_dir(app, multipath=True)``, each ``/plugins``;
4. component packs: installed distributions with entry points in group ``<app>.components``.

A name found again later is *shadowed*: it is reported, and a
:class:`PluginShadowedWarning` names both files.

Component packs are found through distribution metadata only: the entry point's value
names a file inside the distribution (``package.sub:plugin.toml`` is the file
``package/sub/plugin.toml``), which is located with ``Distribution.locate_file`` and
checked against the wheel's RECORD hash. No code of the pack is imported or run.
"""

from __future__ import annotations

import base64
import errno
import hashlib
import logging
import os
import re
import warnings
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path, PurePosixPath
from typing import Final, Literal, final

import importlib_metadata

from .. import _attrs as attrs
from .._errors import ContractMismatchError, Mismatch, PluginError, PluginLoadError
from .._files import (
    RegularFile,
    describe_kind,
    known_digest,
    open_regular_file,
    read_metadata_file,
    remember_digest,
)
from ..contract.wit import PackageId
from ..policy.capabilities import MAX_COMPONENT_BYTES, Capabilities
from .lockfile import IntegrityError
from .manifest import Manifest, ManifestError, ManifestProblem
from .state import PluginState

__all__ = [
    "Discovery",
    "PluginShadowedWarning",
    "PluginSource",
    "discover_plugins",
    "checked_manifest",
    "rank",
    "requested_capabilities",
    "plugin_dirs",
]

log = logging.getLogger("airssys_plugins.discovery")

SourceKind = Literal["dir", "user", "site", "pack", "path"]

MANIFEST_NAME: Final = "plugin.toml"
_ENTRY_POINT_RE: Final = re.compile(r"^\s*([A-Za-z_][\w]*(?:\.[A-Za-z_]\w*)*)\s*:\s*([\w.-]+)\s*$")


class PluginShadowedWarning(UserWarning):
    """Two plugins have the same name; the one found first is used."""


def _record_hex(value: str) -> str:
    """A RECORD hash value (urlsafe base64, unpadded) as hex."""
    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).hex()


@final
@attrs.frozen
class PluginSource:
    """A plugin found somewhere, not loaded yet.

    ``kind`` says where it was found (``dir``, ``user``, ``site``, ``pack`` or ``path``)
    and ``origin`` which directory or distribution. A broken plugin has ``error`` set (and
    ``manifest`` is ``None`` when the manifest itself is the problem). ``record_sha256`` is
    the component's digest in the wheel's RECORD, for packs.
    """

    name: str
    kind: SourceKind
    origin: str
    manifest: Manifest | None
    component: Path | None
    error: PluginError | None = None
    record_sha256: str | None = None
    enabled: bool = True
    #: packs: the component's detached signature and Sigstore bundle, if the RECORD lists them
    pack_signatures: tuple[Path | None, Path | None] = (None, None)

    @property
    def broken(self) -> bool:
        return self.error is not None

    @property
    def version(self) -> str:
        return "?" if self.manifest is None else self.manifest.version

    @property
    def path(self) -> Path | None:
        """The file that defines the plugin: its manifest, or its bare component."""
        if self.manifest is not None and self.manifest.path is not None:
            return self.manifest.path
        if isinstance(self.error, ManifestError) and self.error.path is not None:
            return Path(self.error.path)
        return self.component

    @property
    def where_short(self) -> str:
        """``dir /srv/plugins``, ``pack textpipe-reverse 1.0.0``, ``path x.wasm``..."""
        return f"{self.kind} {self.origin}"

    @property
    def where(self) -> str:
        """The defining file, and the pack for a pack: for messages naming a plugin's place."""
        if self.kind == "pack":
            return f"{self.path} (pack {self.origin})"
        return str(self.path or self.origin)

    @classmethod
    def from_path(
        cls, path: str | os.PathLike[str], *, kind: SourceKind = "path", origin: str | None = None
    ) -> PluginSource:
        """The plugin at ``path``: a ``.wasm``, a ``plugin.toml``, or a directory holding
        one. Never raises: a problem makes a broken source."""
        p = Path(path)
        origin = origin if origin is not None else str(p)
        if p.is_dir() and (p / MANIFEST_NAME).is_file():
            return _from_manifest(kind, origin, p / MANIFEST_NAME)
        if p.is_file() and p.suffix == ".toml":
            return _from_manifest(kind, origin, p)
        if p.is_file() and p.suffix == ".wasm":
            return cls(p.stem, kind, origin, Manifest.for_component(p), p)
        error = PluginLoadError(
            f"{p} is not a plugin ({what_is(p)}): give a .wasm component, a {MANIFEST_NAME}, "
            f"or a directory holding a {MANIFEST_NAME}",
            plugin=p.stem,
            path=str(p),
        )
        return cls(p.stem or str(p), kind, origin, None, None, error)

    def signature_paths(self) -> tuple[Path | None, Path | None]:
        """Where its detached signature (``<component>.sig``) and Sigstore bundle
        (``<component>.sigstore.json``) are: beside the component; for a pack, only files
        the wheel's RECORD lists (``None``: not shipped)."""
        if self.kind == "pack":
            return self.pack_signatures
        if self.component is None:
            return None, None
        return (
            self.component.with_name(self.component.name + ".sig"),
            self.component.with_name(self.component.name + ".sigstore.json"),
        )

    def read_component(self, *, max_bytes: int = MAX_COMPONENT_BYTES) -> tuple[bytes, str]:
        """The component's bytes and their SHA-256, checked against the manifest's
        ``sha256`` and the wheel's RECORD. Raises before anything is compiled. Only a
        regular file of at most ``max_bytes`` is read (``Limits.max_component_bytes``).
        The bytes are hashed unless this process hashed this very version of the file
        before (see :class:`.._files.FileKey`) and it did not change while read."""
        with self._open_component(max_bytes) as f:
            data = f.read()
            digest = known_digest(f.key) if f.unchanged() else None
            if digest is None:
                digest = hashlib.sha256(data).hexdigest()
                if f.unchanged():
                    remember_digest(f.key, digest)
        self._check_pins(digest)
        return data, digest

    def component_digest(self, *, max_bytes: int = MAX_COMPONENT_BYTES) -> str:
        """The SHA-256 of the component, checked as :meth:`read_component` checks it, without
        keeping its bytes: remembered for the file's current version (see
        :class:`.._files.FileKey`), else hashed from the file in chunks."""
        with self._open_component(max_bytes) as f:
            digest = known_digest(f.key) or f.sha256()
        self._check_pins(digest)
        return digest

    def _open_component(self, max_bytes: int) -> RegularFile:
        if self.error is not None:
            raise self.error
        if self.component is None:
            raise PluginLoadError(f"plugin {self.name!r} has no component", plugin=self.name)
        try:
            return open_regular_file(
                self.component,
                cap=max_bytes,
                what="component",
                raise_with="Limits(max_component_bytes=...)",
            )
        except OSError as exc:
            raise PluginLoadError(
                f"plugin {self.name!r}: cannot read {self.component}: {exc.strerror or exc}",
                plugin=self.name,
                path=str(self.component),
            ) from exc

    def _check_pins(self, digest: str) -> None:
        """Refuse a component whose digest differs from its RECORD's or its manifest's."""
        if self.record_sha256 is not None and digest != self.record_sha256:
            raise IntegrityError(
                f"plugin {self.name!r}: {self.component} has sha256 {digest}, but the RECORD "
                f"of {self.origin} says {self.record_sha256}: the installed file was changed. "
                "Reinstall the pack (pip install --force-reinstall)",
                plugin=self.name,
                path=str(self.component),
            )
        pinned = None if self.manifest is None else self.manifest.sha256
        if pinned is not None and digest != pinned:
            raise IntegrityError(
                f"plugin {self.name!r}: {self.component} has sha256 {digest}, but its manifest "
                f"{self.path} says {pinned}. Put the right component in place, or update "
                "sha256 in the manifest",
                plugin=self.name,
                path=str(self.component),
            )


def _from_manifest(
    kind: SourceKind,
    origin: str,
    path: Path,
    *,
    data: bytes | None = None,
    expected_name: str | None = None,
) -> PluginSource:
    try:
        manifest = Manifest.from_file(path, data=data)
    except ManifestError as exc:
        name = exc.plugin or path.parent.name
        return PluginSource(name, kind, origin, None, _guess_component(path, name), exc)
    if expected_name is not None and manifest.name != expected_name:
        mismatch = ManifestError(
            [
                ManifestProblem(
                    str(path),
                    "name",
                    f"the manifest says {manifest.name!r} but the entry point is named "
                    f"{expected_name!r}",
                    "give the entry point and the manifest the same name",
                )
            ],
            plugin=manifest.name,
            path=str(path),
        )
        return PluginSource(manifest.name, kind, origin, None, manifest.component_path, mismatch)
    component = manifest.component_path
    if not component.is_file():
        error = PluginLoadError(
            f"plugin {manifest.name!r}: {path} names the component {manifest.component!r}, "
            f"but {component} {what_is(component)}; build it or correct `component`",
            plugin=manifest.name,
            path=str(component),
        )
        return PluginSource(manifest.name, kind, origin, manifest, component, error)
    return PluginSource(manifest.name, kind, origin, manifest, component)


def what_is(path: Path) -> str:
    """What ``path`` is, for a message: ``is a FIFO (named pipe)``, ``does not exist``."""
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        if os.path.islink(path):
            loop = exc.errno == errno.ELOOP
            return "is a symlink loop" if loop else "is a dangling symlink"
        return "does not exist" if exc.errno == errno.ENOENT else f"cannot be read ({exc})"
    via = " (through a symlink)" if os.path.islink(path) else ""
    return f"is {describe_kind(mode)}{via}"


def _guess_component(manifest_path: Path, name: str) -> Path | None:
    """For a broken manifest: the component it most likely means, if that file exists."""
    try:
        import tomllib

        text = read_metadata_file(manifest_path, what="manifest").decode("utf-8")
        raw = tomllib.loads(text).get("component")
    except (OSError, ValueError):
        raw = None
    for candidate in (raw, f"{name}.wasm"):
        if isinstance(candidate, str) and candidate.endswith(".wasm"):
            path = manifest_path.parent / candidate
            if path.is_file() and path.resolve().is_relative_to(manifest_path.parent.resolve()):
                return path
    return None


def _scan_dir(kind: SourceKind, directory: Path) -> list[PluginSource]:
    """The plugins in a plugin directory: subdirectories with a manifest, and ``.wasm`` files."""
    found: list[PluginSource] = []
    if not directory.is_dir():
        return found  # the default dirs usually do not exist; that is fine
    try:
        entries = sorted(directory.iterdir())
    except OSError as exc:
        log.warning("cannot list plugin directory %s: %s", directory, exc.strerror or exc)
        return found
    for entry in entries:
        if entry.name.startswith("."):
            continue
        if entry.is_dir() and os.path.lexists(entry / MANIFEST_NAME):
            # read even when it is no regular file: the error then says what it is
            found.append(_from_manifest(kind, str(directory), entry / MANIFEST_NAME))
        elif entry.is_file() and entry.suffix == ".wasm":
            found.append(
                PluginSource(entry.stem, kind, str(directory), Manifest.for_component(entry), entry)
            )
        elif entry.suffix == ".wasm":  # a FIFO, socket, device, dangling symlink, a directory
            error = PluginLoadError(
                f"plugin {entry.stem!r}: {entry} {what_is(entry)}; a plugin is a regular "
                f".wasm file or a directory holding a {MANIFEST_NAME}",
                plugin=entry.stem,
                path=str(entry),
            )
            found.append(PluginSource(entry.stem, kind, str(directory), None, entry, error))
        else:
            log.debug("ignoring %s: neither a plugin directory nor a .wasm", entry)
    return found


def plugin_dirs(app: str) -> list[tuple[SourceKind, Path]]:
    """The default plugin directories of ``app``: user, then site data dirs."""
    import platformdirs  # on first use: ~10 ms of every start otherwise

    dirs: list[tuple[SourceKind, Path]] = [
        ("user", Path(platformdirs.user_data_dir(app)) / "plugins")
    ]
    for site in platformdirs.site_data_dir(app, multipath=True).split(os.pathsep):
        if site:
            dirs.append(("site", Path(site) / "plugins"))
    return dirs


def _entry_point_file(value: str) -> PurePosixPath:
    """``pkg.sub:plugin.toml`` (or ``pkg/sub/plugin.toml``) -> ``pkg/sub/plugin.toml``."""
    m = _ENTRY_POINT_RE.match(value)
    if m is not None:
        rel = PurePosixPath(*m.group(1).split("."), m.group(2))
    else:
        rel = PurePosixPath(value.strip())
    if rel.is_absolute() or ".." in rel.parts or rel.suffix not in (".toml", ".wasm"):
        raise ValueError(
            f"entry point value {value!r} does not name a .toml or .wasm file inside the "
            "distribution; write it as package.subpackage:plugin.toml"
        )
    return rel


def _scan_packs(app: str) -> list[PluginSource]:
    """Component packs: entry points of group ``<app>.components``, read as data."""
    group = f"{app}.components"
    found: list[PluginSource] = []
    eps = importlib_metadata.entry_points(group=group)
    for ep in sorted(eps, key=lambda e: ((e.dist.name if e.dist else ""), e.name)):
        dist = ep.dist
        origin = f"{dist.name} {dist.version}" if dist is not None else f"entry point {ep.name}"
        try:
            found.append(_pack_source(ep.name, ep.value, dist, origin))
        except (PluginError, ValueError, OSError) as exc:
            error = (
                exc
                if isinstance(exc, PluginError)
                else PluginLoadError(
                    f"component pack {origin}, entry point {ep.name!r} in group {group!r}: {exc}",
                    plugin=ep.name,
                )
            )
            found.append(PluginSource(ep.name, "pack", origin, None, None, error))
    return found


def _pack_source(
    name: str, value: str, dist: importlib_metadata.Distribution | None, origin: str
) -> PluginSource:
    if dist is None:
        raise ValueError("its distribution is unknown")
    rel = _entry_point_file(value)
    record = {str(PurePosixPath(str(f))): f for f in dist.files or []}

    def locate(rel: PurePosixPath) -> tuple[Path, str | None]:
        entry = record.get(str(rel))
        if record and entry is None:
            raise ValueError(f"{rel} is not listed in the RECORD of {origin}")
        path = Path(str(dist.locate_file(str(rel))))
        digest = entry.hash.value if entry is not None and entry.hash is not None else None
        if entry is not None and entry.hash is not None and entry.hash.mode != "sha256":
            digest = None  # only sha256 RECORDs are checked
        return path, None if digest is None else _record_hex(digest)

    def signatures(component: PurePosixPath) -> tuple[Path | None, Path | None]:
        """The signature files the RECORD lists beside ``component`` (no RECORD: those that
        exist)."""
        found = []
        for suffix in (".sig", ".sigstore.json"):
            beside = component.with_name(component.name + suffix)
            path = Path(str(dist.locate_file(str(beside))))
            listed = str(beside) in record if record else path.is_file()
            found.append(path if listed else None)
        return found[0], found[1]

    path, record_hex = locate(rel)
    if rel.suffix == ".wasm":
        return PluginSource(
            name, "pack", origin, Manifest.for_component(path, name=name), path, None, record_hex,
            pack_signatures=signatures(rel),
        )  # fmt: skip
    data = read_metadata_file(path, what="manifest")
    if record_hex is not None and hashlib.sha256(data).hexdigest() != record_hex:
        raise IntegrityError(
            f"plugin {name!r}: {path} differs from the RECORD of {origin}: the installed file "
            "was changed. Reinstall the pack (pip install --force-reinstall)",
            plugin=name,
            path=str(path),
        )
    source = _from_manifest("pack", origin, path, data=data, expected_name=name)
    if source.manifest is None or source.error is not None:
        return source
    component_rel = rel.parent / source.manifest.component
    _, component_hex = locate(component_rel)
    return attrs.evolve(
        source, record_sha256=component_hex, pack_signatures=signatures(component_rel)
    )


def rank(
    candidates: Iterable[PluginSource], *, warn: bool
) -> tuple[list[PluginSource], list[tuple[PluginSource, PluginSource]]]:
    """First of each name wins; the rest are shadowed (and warned about)."""
    winners: dict[str, PluginSource] = {}
    shadowed: list[tuple[PluginSource, PluginSource]] = []
    for source in candidates:
        first = winners.get(source.name)
        if first is None:
            winners[source.name] = source
            continue
        shadowed.append((source, first))
        if warn:
            warnings.warn(
                PluginShadowedWarning(
                    f"plugin {source.name!r} at {source.where} is shadowed by the plugin of "
                    f"the same name at {first.where}, which comes first; remove or rename one "
                    "of them"
                ),
                stacklevel=3,
            )
    return list(winners.values()), shadowed


@final
@attrs.frozen
class Discovery:
    """The plugins found for an app, in precedence order, one per name.

    ``shadowed`` pairs each plugin that lost on its name with the one that won;
    ``searched`` lists the places looked at, in order.
    """

    app: str
    sources: tuple[PluginSource, ...]
    shadowed: tuple[tuple[PluginSource, PluginSource], ...] = ()
    searched: tuple[str, ...] = ()

    def __iter__(self) -> Iterator[PluginSource]:
        return iter(self.sources)

    def __len__(self) -> int:
        return len(self.sources)

    def get(self, name: str) -> PluginSource | None:
        return next((s for s in self.sources if s.name == name), None)


def discover_plugins(
    app: str,
    dirs: Sequence[str | os.PathLike[str]] = (),
    *,
    user_dirs: bool = True,
    site_dirs: bool = True,
    packs: bool = True,
    state: PluginState | None = None,
) -> Discovery:
    """Find the plugins of ``app``: ``dirs`` in order, then the user and site plugin dirs,
    then component packs (group ``<app>.components``). First of a name wins.

    Each of ``dirs`` is a plugin directory to search, or a single plugin (a ``.wasm``, a
    ``plugin.toml``, or a directory holding one). Plugins disabled in ``state`` (default:
    the app's settings in its user config dir) come back with ``enabled=False``.
    """
    candidates: list[PluginSource] = []
    searched: list[str] = []
    for entry in dirs:
        path = Path(entry)
        if path.is_dir() and not (path / MANIFEST_NAME).is_file():
            searched.append(f"dir {path}")
            candidates += _scan_dir("dir", path)
        elif path.exists():
            searched.append(f"path {path}")
            candidates.append(PluginSource.from_path(path))
        else:
            log.warning("plugin directory %s does not exist", path)
            searched.append(f"dir {path} (missing)")
    for kind, path in plugin_dirs(app):
        if (kind == "user" and user_dirs) or (kind == "site" and site_dirs):
            searched.append(f"{kind} {path}")
            candidates += _scan_dir(kind, path)
    if packs:
        searched.append(f"pack entry points {app}.components")
        candidates += _scan_packs(app)
    winners, shadowed = rank(candidates, warn=True)
    disabled = (state or PluginState.for_app(app)).disabled
    sources = tuple(attrs.evolve(s, enabled=s.name not in disabled) for s in winners)
    return Discovery(app, sources, tuple(shadowed), tuple(searched))


def requested_capabilities(source: PluginSource, manifest: Manifest) -> Capabilities:
    """The manifest's request in the sandbox's terms (validated when it was parsed; a
    hand-built Manifest may still hold a bad origin or name)."""
    try:
        return manifest.capabilities.capabilities()
    except ValueError as exc:
        where = str(manifest.path or source.where)
        reason, _, fix = str(exc).partition("; ")
        raise ManifestError(
            [ManifestProblem(where, "capabilities", reason, fix or "correct the request")],
            plugin=source.name,
            path=where,
        ) from exc


def checked_manifest(source: PluginSource, package: PackageId) -> Manifest:
    """The source's manifest, if it is usable and targets ``package``'s contract."""
    if source.error is not None:
        raise source.error
    manifest = source.manifest
    assert manifest is not None  # a source without a manifest carries its error
    target = manifest.contract
    if target is not None and not target.accepts(
        f"{package.namespace}:{package.name}", package.version
    ):
        raise ContractMismatchError(
            source.name,
            [
                Mismatch(
                    "*",
                    str(package),
                    str(target),
                    f"the manifest {manifest.path} targets {target}, which the host's "
                    f"contract {package} is not part of",
                )
            ],
        )
    return manifest
