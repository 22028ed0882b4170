"""Loading discovered plugins: the body of :meth:`PluginHost.load_plugins`.

Discovery finds and verifies sources without touching the host; this module drives the
host with them, so the dependency points from host to discovery only.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Literal, Protocol, final

from .. import _attrs as attrs
from .. import _log as logging
from .._errors import PluginError, PluginLoadError
from ..contract.mapping import Contract, HookOptions
from ..discovery.lockfile import Lockfile
from ..discovery.sources import (
    Discovery,
    PluginSource,
    checked_manifest,
    rank,
    requested_capabilities,
)
from ..policy.audit import AuditLog
from ..policy.capabilities import Capabilities, Limits
from .isolation import Isolation, check_isolation
from .plugin import WasmPlugin
from .provenance import check_signature
from .settings import SandboxPolicy, Unset


class _Loader(Protocol):
    """What loading needs of a host (``PluginHost`` is one)."""

    @property
    def contract(self) -> Contract: ...
    @property
    def limits(self) -> Limits: ...
    @property
    def policy(self) -> SandboxPolicy: ...
    @property
    def audit(self) -> AuditLog: ...
    def load(
        self,
        source: Path,
        *,
        name: str,
        hooks: dict[str, HookOptions],
        requests: Capabilities,
        limits: Limits,
        config: dict[str, str],
        timeout: float | Literal[Unset.UNSET] | None = ...,
        pool_size: int = ...,
        isolation: Isolation = ...,
    ) -> WasmPlugin: ...
    def unload(self, name: str) -> None: ...


__all__ = ["LoadReport", "PluginStatus", "load_path", "load_sources"]

log = logging.getLogger("airssys_plugins")

Status = Literal["loaded", "disabled", "broken", "shadowed"]


@final
@attrs.frozen
class PluginStatus:
    """What became of one plugin: ``loaded``, ``disabled``, ``broken`` or ``shadowed``.

    ``error`` is the named error of a broken plugin; ``plugin`` the loaded ``WasmPlugin``;
    ``note`` a remark (``not in the lockfile``, ``shadowed by ...``).
    """

    source: PluginSource
    status: Status
    error: PluginError | None = None
    plugin: WasmPlugin | None = None
    note: str = ""

    @property
    def name(self) -> str:
        return self.source.name

    @property
    def reason(self) -> str:
        """Why it is not loaded (or the note of a loaded one), on one line."""
        if self.error is not None:
            first = str(self.error).splitlines()[0]
            return f"{type(self.error).__name__}: {first}"
        return self.note


@final
@attrs.frozen
class LoadReport:
    """The outcome of :meth:`PluginHost.load_plugins`, one entry per plugin found."""

    entries: tuple[PluginStatus, ...]

    def __iter__(self) -> Iterator[PluginStatus]:
        return iter(self.entries)

    def __getitem__(self, name: str) -> PluginStatus:
        for entry in self.entries:
            if entry.name == name and entry.status != "shadowed":
                return entry
        raise KeyError(name)

    def _with(self, status: Status) -> tuple[PluginStatus, ...]:
        return tuple(e for e in self.entries if e.status == status)

    @property
    def loaded(self) -> dict[str, WasmPlugin]:
        return {e.name: e.plugin for e in self.entries if e.plugin is not None}

    @property
    def broken(self) -> tuple[PluginStatus, ...]:
        return self._with("broken")

    @property
    def disabled(self) -> tuple[PluginStatus, ...]:
        return self._with("disabled")

    @property
    def shadowed(self) -> tuple[PluginStatus, ...]:
        return self._with("shadowed")


def load_sources(
    host: _Loader,
    sources: Discovery | Iterable[PluginSource | str | os.PathLike[str]],
    *,
    strict: bool = False,
    lockfile: Lockfile | str | os.PathLike[str] | None = None,
    isolation: Isolation = "shared",
) -> LoadReport:
    """The body of :meth:`PluginHost.load_plugins`."""
    given = Overrides(isolation=check_isolation(isolation))  # a bad value: before any load
    if isinstance(sources, Discovery):
        winners, shadowed = list(sources.sources), list(sources.shadowed)
    else:
        items = [s if isinstance(s, PluginSource) else PluginSource.from_path(s) for s in sources]
        winners, shadowed = rank(items, warn=True)
    lock = lockfile if isinstance(lockfile, Lockfile | None) else Lockfile.read(lockfile)
    entries: list[PluginStatus] = []
    loaded_now: list[str] = []
    for source in winners:
        if not source.enabled:
            entries.append(PluginStatus(source, "disabled", note="disabled by the operator"))
            continue
        try:
            plugin, note = _load_one(host, source, lock, strict=strict, overrides=given)
        except Exception as exc:  # any failure of one plugin: the others still load
            error = exc if isinstance(exc, PluginError) else _unexpected(source, exc)
            if strict:
                for name in reversed(loaded_now):  # all or nothing
                    host.unload(name)
                if error is exc:
                    raise
                raise error from exc
            log.warning("plugin %r (%s) was not loaded: %s", source.name, source.where, error)
            entries.append(PluginStatus(source, "broken", error=error))
            continue
        loaded_now.append(source.name)
        entries.append(PluginStatus(source, "loaded", plugin=plugin, note=note or ""))
    for loser, winner in shadowed:
        entries.append(PluginStatus(loser, "shadowed", note=f"shadowed by {winner.where}"))
    return LoadReport(tuple(entries))


def _unexpected(source: PluginSource, exc: Exception) -> PluginLoadError:
    """A named error, caused by ``exc``, for a failure that is none of ours (a bug in a
    hook of the app, a full disk...)."""
    error = PluginLoadError(
        f"plugin {source.name!r} ({source.where}) could not be loaded: an unexpected "
        f"{type(exc).__name__}: {exc} (its traceback is in this error's __cause__)",
        plugin=source.name,
        path=None if source.component is None else str(source.component),
    )
    error.__cause__ = exc  # as `raise error from exc` does, also when it is only reported
    return error


@final
@attrs.frozen
class Overrides:
    """What a caller of ``load(directory, ...)`` gives explicitly, over the manifest's."""

    hooks: Mapping[str, HookOptions] | None = None
    requests: Capabilities | None = None
    limits: Limits | None = None
    config: Mapping[str, str] | None = None
    timeout: float | Literal[Unset.UNSET] | None = Unset.UNSET
    pool_size: int = 1
    isolation: Isolation = "shared"


def load_path(
    host: _Loader, path: str | os.PathLike[str], *, name: str | None, overrides: Overrides
) -> WasmPlugin:
    """``PluginHost.load`` of a plugin directory or a ``plugin.toml``: its manifest is read
    (hook options, capability requests, limits, config, name) and its component checked
    (digest, signature) as :meth:`PluginHost.load_plugins` does; arguments given
    explicitly win over the manifest's values."""
    source = PluginSource.from_path(path)
    if name is not None:
        source = attrs.evolve(source, name=name)
    plugin, _ = _load_one(host, source, None, strict=False, overrides=overrides)
    return plugin


def _load_one(
    host: _Loader,
    source: PluginSource,
    lock: Lockfile | None,
    *,
    strict: bool,
    overrides: Overrides | None = None,
) -> tuple[WasmPlugin, str | None]:
    manifest = checked_manifest(source, host.contract.package)
    # digests are checked before anything compiles; only a regular file within the cap is
    # hashed (in chunks, or its digest remembered for its current version), and the host
    # loads the file under that digest: refused if it changed since, read only if it must
    # be compiled (no copy of a warm component enters the Python heap)
    digest = source.component_digest(max_bytes=host.limits.max_component_bytes)
    note = None if lock is None else lock.check(source, digest, strict=strict)
    check_signature(source, digest, host.policy.signatures, host.audit)  # before compiling
    if note is not None:
        log.warning("plugin %r (%s) is %s", source.name, source.where, note)
    limits = attrs.evolve(
        host.limits, **{k: v for k, v in attrs.asdict(manifest.limits).items() if v is not None}
    )
    given = overrides if overrides is not None else Overrides()
    assert source.component is not None  # component_digest raised otherwise
    plugin = host.load(
        source.component,
        name=source.name,
        hooks=dict(manifest.hooks if given.hooks is None else given.hooks),
        requests=(
            requested_capabilities(source, manifest) if given.requests is None else given.requests
        ),
        limits=limits if given.limits is None else given.limits,
        config=dict(manifest.config if given.config is None else given.config),
        timeout=given.timeout,
        pool_size=given.pool_size,
        isolation=given.isolation,
    )
    return plugin, note
