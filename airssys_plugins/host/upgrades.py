"""Blue-green upgrades of loaded plugins: reload, rollback, and upgrades held for approval."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal, final

import pluggy

from .. import _attrs as attrs
from .._errors import PluginError
from ..contract.mapping import HookOptions
from ..policy.audit import AuditLog
from ..policy.capabilities import Capabilities, Limits
from ..policy.decisions import wider_rights
from ..policy.signing import Signatures
from .isolation import Isolation
from .loaded import LoadedPlugins
from .pipeline import LoadOptions, LoadPipeline
from .plugin import WasmPlugin
from .provenance import check_load
from .settings import Unset

__all__ = ["Carried", "ReloadError", "UpgradeHeld", "Upgrades"]


class ReloadError(PluginError, RuntimeError):
    """An upgrade failed; the old version keeps serving. The cause is ``__cause__``."""


class UpgradeHeld(PluginError, PermissionError):
    """An upgrade asks for more rights than the running version; approve it first."""

    def __init__(self, plugin: str, wider: list[str]):
        self.wider = tuple(wider)
        super().__init__(
            f"plugin {plugin!r}: the new version asks for more rights ({'; '.join(wider)}); "
            "the old version keeps serving until the operator approves "
            f"(host.approve_upgrade({plugin!r}))",
            plugin=plugin,
        )


_UNSET: Literal[Unset.UNSET] = Unset.UNSET


@final
@attrs.frozen
class Carried:
    """The :meth:`PluginHost.load` options of a reload; unset ones carry over from the
    running version (``timeout`` unset: the one in the limits)."""

    hooks: Mapping[str, HookOptions] | Literal[Unset.UNSET] | None = _UNSET
    timeout: float | Literal[Unset.UNSET] | None = _UNSET
    limits: Limits | Literal[Unset.UNSET] | None = _UNSET
    config: Mapping[str, str] | Literal[Unset.UNSET] | None = _UNSET
    pool_size: int | Literal[Unset.UNSET] = _UNSET
    isolation: Isolation | Literal[Unset.UNSET] = _UNSET

    def over(self, old: WasmPlugin, requests: Capabilities) -> LoadOptions:
        """The options of the new version: these, the unset ones taken from ``old``."""
        return LoadOptions(
            hooks=old.hook_options if self.hooks is Unset.UNSET else self.hooks,
            timeout=self.timeout,
            requests=requests,
            limits=old.limits if self.limits is Unset.UNSET else self.limits,
            config=old.config if self.config is Unset.UNSET else self.config,
            pool_size=old.pool_size if self.pool_size is Unset.UNSET else self.pool_size,
            isolation=old.isolation if self.isolation is Unset.UNSET else self.isolation,
        )


def _origin(old: WasmPlugin, source: str | os.PathLike[str] | bytes | None) -> Path | bytes:
    if source is not None:
        return source if isinstance(source, bytes) else Path(source)
    if old.path is None:
        raise ValueError(f"plugin {old.name!r} was loaded from bytes: give source=")
    return old.path


@final
class Upgrades:
    """Replaces loaded plugins with new versions staged by ``pipeline``. ``pending``
    holds the upgrades waiting for approval: name -> (source, requests). ``signatures``
    gives the host's signature policy, checked before a new version compiles."""

    def __init__(
        self,
        pm: pluggy.PluginManager,
        plugins: LoadedPlugins,
        *,
        pipeline: LoadPipeline,
        audit: AuditLog,
        signatures: Callable[[], Signatures] = Signatures,
        pending: dict[str, tuple[Path | bytes, Capabilities]] | None = None,
    ):
        self._signatures = signatures
        self._pm = pm
        self._plugins = plugins
        self._pipeline = pipeline
        self._audit = audit
        self.pending: dict[str, tuple[Path | bytes, Capabilities]] = (
            {} if pending is None else pending
        )

    def reload(
        self,
        name: str,
        source: str | os.PathLike[str] | bytes | None,
        *,
        requests: Capabilities | None,
        approve: bool,
        options: Carried | None = None,
        **carried: Any,
    ) -> WasmPlugin:
        """``name`` replaced by the version at ``source``, with ``options`` (or
        :class:`Carried` made of the ``carried`` keywords)."""
        options = Carried(**carried) if options is None else options
        with self._plugins.lock:
            old = self._plugins[name]
            origin = _origin(old, source)
            wanted = old.requested if requests is None else requests
            wider = wider_rights(wanted, old.requested)
            if wider and not approve:
                self.pending[name] = (origin, wanted)
                self._audit.record(
                    "refuse", name, f"upgrade held: asks for more rights ({'; '.join(wider)})"
                )
                raise UpgradeHeld(name, wider)
            new = self._stage(old, origin, wanted, options)
            self._swap(old, new)
            self._plugins.replace(new)
            self.pending.pop(name, None)
            self._audit.record(
                "load", name, f"upgraded {old.sha256[:12]} -> {new.sha256[:12]}", sha256=new.sha256
            )
        old.close()  # waits for calls in flight on the old instances
        return new

    def _stage(
        self, old: WasmPlugin, origin: Path | bytes, wanted: Capabilities, options: Carried
    ) -> WasmPlugin:
        """The new version, ready ("green"); a failure is a :class:`ReloadError`."""
        try:
            load = options.over(old, wanted)
            limits = self._pipeline.limits if load.limits is None else load.limits
            checked, path = check_load(
                old.name,
                origin,
                None,  # bytes given to reload say nothing of a file: they carry no signature
                signatures=self._signatures(),
                audit=self._audit,
                max_bytes=limits.max_component_bytes,
            )
            return self._pipeline.stage(old.name, checked, load, path=path)
        except PluginError as exc:
            self._audit.record("refuse", old.name, f"upgrade failed, old version kept: {exc}")
            raise ReloadError(
                f"plugin {old.name!r}: the new version failed ({type(exc).__name__}); the old "
                f"version keeps serving:\n{exc}",
                plugin=old.name,
            ) from exc

    def _swap(self, old: WasmPlugin, new: WasmPlugin) -> None:
        """Register ``new`` in place of ``old``; roll back if pluggy's replay fails."""
        name = old.name
        if self._pm.is_blocked(name):
            self._pm.unblock(name)
        elif self._pm.get_plugin(name) is old:
            self._pm.unregister(old, name=name)
        try:
            self._pm.register(new, name=name)  # replays historic calls into it
        except BaseException as exc:
            # pluggy keeps a plugin registered even when a historic replay into it fails;
            # take it out, and put the old version back with fresh instances (pluggy
            # replays the history into them, as after a restart).
            if self._pm.get_plugin(name) is new:
                self._pm.unregister(new, name=name)
            new.close()
            for instance in old.instances:
                instance.discard()
            with old._history_lock:
                old._history.clear()
            self._pm.register(old, name=name)
            self._audit.record("refuse", name, f"upgrade failed, old version kept: {exc}")
            raise ReloadError(
                f"plugin {name!r}: the new version failed while historic hook calls were "
                f"replayed into it; the old version keeps serving:\n{exc}",
                plugin=name,
            ) from exc

    def approve(self, name: str) -> WasmPlugin:
        origin, wanted = self.pending[name]
        return self.reload(name, origin, requests=wanted, approve=True, options=Carried())
