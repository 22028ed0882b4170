"""Lockfiles: the plugins an operator reviewed, pinned by SHA-256.

``airssys-plugins lock`` writes one (TOML)::

    version = 1
    app = "textpipe"

    [plugins.shout]
    version = "1.0.0"
    source = "dir /srv/textpipe/plugins"
    sha256 = "25265ac4..."

    [plugins.shout.capabilities]
    interfaces = []
    env = []
    network = []
    filesystem = []

    [plugins.shout.limits]

With a lockfile, a component whose digest differs from the pinned one is refused with an
:class:`IntegrityError` before it is compiled, and so is a plugin that asks for
capabilities the lockfile does not record. In strict mode, a plugin missing from the
lockfile is refused too.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Final, Protocol, final

import tomli_w

from .. import _attrs as attrs
from .._errors import PluginError
from .._files import atomic_write, read_metadata_file
from .manifest import Manifest, ManifestError, RequestedCapabilities, RequestedLimits, TableParser


class LockedSource(Protocol):
    """What the lock needs of a plugin source (discovery's ``PluginSource`` is one)."""

    @property
    def name(self) -> str: ...
    @property
    def where(self) -> str: ...
    @property
    def where_short(self) -> str: ...
    @property
    def component(self) -> Path | None: ...
    @property
    def manifest(self) -> Manifest | None: ...


__all__ = ["LOCK_VERSION", "IntegrityError", "LockEntry", "Lockfile"]

LOCK_VERSION: Final = 1

_HEADER: Final = (
    "# airssys-plugins lockfile: the plugins reviewed for this app, pinned by SHA-256.\n"
    "# Written by `airssys-plugins lock`; review the changes, then commit it.\n"
)


class IntegrityError(PluginError, ValueError):
    """A component's bytes or a plugin's requests differ from what was pinned (lockfile,
    manifest ``sha256``, the wheel's RECORD), or the lockfile itself is unusable.
    Nothing of the plugin was loaded."""

    def __init__(self, message: str, *, plugin: str | None = None, path: str | None = None):
        super().__init__(message, plugin=plugin)
        self.path = path


def _frozen(value: Mapping[str, LockEntry]) -> Mapping[str, LockEntry]:
    return dict(value)


@final
@attrs.frozen
class LockEntry:
    """One pinned plugin."""

    name: str
    version: str
    source: str
    sha256: str
    capabilities: RequestedCapabilities = attrs.field(factory=RequestedCapabilities)
    limits: RequestedLimits = attrs.field(factory=RequestedLimits)

    @classmethod
    def for_source(cls, source: LockedSource, sha256: str) -> LockEntry:
        """The entry pinning ``source`` whose component has digest ``sha256``."""
        manifest = source.manifest
        if manifest is None:
            raise ValueError(f"plugin {source.name!r} is broken; it cannot be locked")
        return cls(
            source.name,
            manifest.version,
            source.where_short,
            sha256,
            manifest.capabilities,
            manifest.limits,
        )

    def to_toml(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "source": self.source,
            "sha256": self.sha256,
            "capabilities": self.capabilities.to_toml(),
            "limits": self.limits.to_toml(),
        }


@final
@attrs.frozen
class Lockfile:
    """The pinned plugins of one app, by name. ``path`` is where it was read from."""

    app: str
    entries: Mapping[str, LockEntry] = attrs.field(factory=dict, converter=_frozen)
    path: Path | None = None

    @classmethod
    def read(cls, path: str | os.PathLike[str]) -> Lockfile:
        """Read a lockfile; an unreadable or malformed one raises :class:`IntegrityError`
        (without a trustworthy lockfile nothing can be checked)."""
        path = Path(path)
        fix = "regenerate it with `airssys-plugins lock`"
        try:
            data = tomllib.loads(read_metadata_file(path, what="lockfile").decode("utf-8"))
        except OSError as exc:
            raise IntegrityError(
                f"cannot read the lockfile {path}: {exc.strerror or exc}; {fix}", path=str(path)
            ) from exc
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise IntegrityError(
                f"the lockfile {path} is not valid TOML ({exc}); {fix}", path=str(path)
            ) from exc
        if data.get("version") != LOCK_VERSION:
            raise IntegrityError(
                f"the lockfile {path} has version {data.get('version')!r}; this airssys-plugins "
                f"reads version {LOCK_VERSION}; {fix}",
                path=str(path),
            )
        app, plugins = data.get("app"), data.get("plugins", {})
        if not isinstance(app, str) or not isinstance(plugins, dict):
            raise IntegrityError(
                f'the lockfile {path} needs app = "NAME" and a [plugins] table; {fix}',
                path=str(path),
            )
        entries: dict[str, LockEntry] = {}
        for name, table in plugins.items():
            entries[name] = _entry(path, name, table)
        return cls(app, entries, path)

    @classmethod
    def from_entries(cls, app: str, entries: Iterable[LockEntry]) -> Lockfile:
        return cls(app, {e.name: e for e in entries})

    def dumps(self) -> str:
        plugins = {name: self.entries[name].to_toml() for name in sorted(self.entries)}
        return _HEADER + tomli_w.dumps(
            {"version": LOCK_VERSION, "app": self.app, "plugins": plugins}
        )

    def write(self, path: str | os.PathLike[str]) -> Path:
        """Write atomically to ``path`` (a reader sees the old file or the new one)."""
        return atomic_write(path, self.dumps())

    def check(self, source: LockedSource, sha256: str, *, strict: bool) -> str | None:
        """Refuse ``source`` (component digest ``sha256``) if it breaks the lock.

        Returns a note for the report when the plugin is simply not listed and ``strict``
        is off; raises :class:`IntegrityError` otherwise.
        """
        where = self.path or "the lockfile"
        entry = self.entries.get(source.name)
        if entry is None:
            if strict:
                raise IntegrityError(
                    f"plugin {source.name!r} ({source.where}) is not in {where}, and strict "
                    "mode loads only locked plugins; review it, then run `airssys-plugins "
                    "lock` to add it",
                    plugin=source.name,
                    path=str(source.component),
                )
            return f"not in {where}"
        if entry.sha256 != sha256:
            raise IntegrityError(
                f"plugin {source.name!r}: {source.component} has sha256 {sha256}, but {where} "
                f"pins {entry.sha256}; nothing of it was loaded. Restore the pinned file, or "
                "review the new one and run `airssys-plugins lock` again",
                plugin=source.name,
                path=str(source.component),
            )
        manifest = source.manifest
        if manifest is not None and not entry.capabilities.covers(manifest.capabilities):
            locked = set(entry.capabilities.summary())
            extra = [c for c in manifest.capabilities.summary() if c not in locked]
            raise IntegrityError(
                f"plugin {source.name!r} asks for capabilities that {where} does not record: "
                f"{', '.join(extra)}; it stays unloaded until they are reviewed and approved "
                "by running `airssys-plugins lock` again",
                plugin=source.name,
                path=str(manifest.path),
            )
        return None


def _entry(path: Path, name: str, table: object) -> LockEntry:
    fix = "regenerate it with `airssys-plugins lock`"
    if not isinstance(table, dict):
        raise IntegrityError(f"{path}: plugins.{name} must be a table; {fix}", path=str(path))
    fields = {k: table.get(k) for k in ("version", "source", "sha256")}
    missing = [k for k, v in fields.items() if not isinstance(v, str)]
    if missing:
        raise IntegrityError(
            f"{path}: plugins.{name} lacks {', '.join(missing)}; {fix}", path=str(path)
        )
    parser = TableParser(path)
    caps = parser.capabilities({"capabilities": table.get("capabilities", {})})
    limits = parser.limits({"limits": table.get("limits", {})})
    if parser.problems:
        raise IntegrityError(
            f"{path}: plugins.{name} is malformed: {ManifestError(parser.problems)}; {fix}",
            path=str(path),
        )
    return LockEntry(
        name, str(fields["version"]), str(fields["source"]), str(fields["sha256"]), caps, limits
    )
