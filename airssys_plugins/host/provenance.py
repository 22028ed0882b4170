"""Provenance of a discovered plugin: its signature checked before anything compiles.

The glue between discovery (where a plugin's manifest, component and signature files are)
and :mod:`..policy.signing` (what a valid signature is, and the host's policy).
"""

from __future__ import annotations

import contextvars
from pathlib import Path
from typing import TYPE_CHECKING, Final

from .. import _attrs as attrs
from ..policy.audit import AuditLog
from ..policy.signing import SignatureError, Signatures

if TYPE_CHECKING:  # discovery is imported on first use: a host that loads unsigned
    # plugins from paths or bytes never needs it (~10 ms of a new process's start-up)
    from ..discovery.sources import PluginSource

__all__ = ["check_load", "check_signature", "checked_digest"]

#: Signature files and Sigstore bundles are small; a larger one is refused unread.
SIGNATURE_CAP: Final = 1 << 20

#: (plugin name, component SHA-256) whose signature :func:`check_signature` has just
#: passed in this context: ``load_plugins`` verifies, then calls ``host.load(bytes,
#: path=...)`` with exactly those bytes, which :func:`check_load` then does not verify
#: (and audit) a second time.
_VERIFIED: contextvars.ContextVar[tuple[str, str] | None] = contextvars.ContextVar(
    "airssys_plugins_verified", default=None
)


#: (plugin name, origin, SHA-256) checked last in this context: the
#: pipeline then loads the origin under that digest (:func:`checked_digest`), so a file
#: changed after its check is refused, and a verified file is not read to be hashed again.
_CHECKED: contextvars.ContextVar[tuple[str, Path | bytes, str] | None] = contextvars.ContextVar(
    "airssys_plugins_checked", default=None
)


def checked_digest(name: str, origin: Path | bytes, *, take: bool = True) -> str | None:
    """The SHA-256 :func:`check_load` (or :func:`check_signature`) checked ``origin`` (the
    same path, or the very same bytes object) with for plugin ``name``, if it was the last
    thing checked; with ``take``, taken once."""
    checked = _CHECKED.get()
    if checked is None or checked[0] != name:
        return None
    same = checked[1] is origin if isinstance(origin, bytes) else checked[1] == origin
    if not same:
        return None
    if take:
        _CHECKED.set(None)
    return checked[2]


def check_signature(
    source: PluginSource, digest: str, signatures: Signatures, audit: AuditLog
) -> str | None:
    """Verify ``source``'s signature (its component has SHA-256 ``digest``, already read)
    under the host's ``signatures``; the signing key's id, or ``None`` when unchecked.
    Raises :class:`SignatureError` before the component is compiled.

    Under every policy, ``digest`` is what a following ``host.load(source.component)``
    loads the file under (:func:`checked_digest`): what load_plugins checked (lockfile,
    pins, signature) is what compiles, even if the file changes in between."""
    if source.component is not None:
        _CHECKED.set((source.name, source.component, digest))
    if signatures.policy == "ignore":
        return None
    signature_path, bundle_path = source.signature_paths()
    try:
        manifest_sha256 = _manifest_digest(source)
        signature = _read_small(source, signature_path)
        bundle = _read_small(source, bundle_path)
    except SignatureError as exc:  # audited like every other outcome
        audit.record(
            "signature", source.name, f"{exc.outcome}: {exc}", outcome=exc.outcome,
            keys=[], path=exc.path,
        )  # fmt: skip
        audit.record("refuse", source.name, f"not loaded: signature {exc.outcome}")
        raise
    from ..policy.sigfiles import verify_component  # (a policy that checks)

    key = verify_component(
        source.name,
        component_sha256=digest,
        manifest_sha256=manifest_sha256,
        signature=signature,
        signature_path=signature_path,
        sigstore_bundle=bundle,
        sigstore_path=bundle_path,
        signatures=signatures,
        audit=audit,
        pack=source.origin.rsplit(" ", 1)[0] if source.kind == "pack" else None,
    )
    _VERIFIED.set((source.name, digest))
    return key


def check_load(
    name: str,
    origin: Path | bytes,
    path: Path | None,
    *,
    signatures: Signatures,
    audit: AuditLog,
    max_bytes: int,
) -> tuple[Path | bytes, Path | None]:
    """Verify the signature of what ``host.load()`` or ``host.reload()`` is given, before
    it compiles: ``origin`` is a component's path or bytes, ``path`` the file the bytes were
    read from (if the caller says so). Returns the origin to compile and its path. The
    digest verified is handed to the pipeline (:func:`checked_digest`), which loads the
    origin under it: a file whose content changes between the check and the load is
    refused, and a warm load maps the compiled artefact of exactly the verified digest
    without reading the file again.

    A path is checked as ``load_plugins`` checks it: the signature ``<component>.wasm.sig``
    (or Sigstore bundle) beside it, over the component and the ``plugin.toml`` beside it
    when that manifest names this component. Bytes with a ``path`` are checked against the
    signature beside ``path``; bytes alone carry no signature: refused under ``require``,
    loaded unsigned (and audited so) under ``verify-if-present``."""
    if checked_digest(name, origin, take=False) is None:
        _CHECKED.set(None)  # only what load_plugins checked of this very origin stays
    if signatures.policy == "ignore":
        return origin, path
    if isinstance(origin, bytes):
        import hashlib  # imported here: a path's digest is the file index's

        digest = hashlib.sha256(origin).hexdigest()
        _CHECKED.set((name, origin, digest))
        if _VERIFIED.get() == (name, digest):  # load_plugins verified these very bytes
            _VERIFIED.set(None)
            return origin, path
        if path is None:
            _unsigned_bytes(name, signatures, audit)  # raises under require
            return origin, path
        source = _source_at(name, Path(path))
        check_signature(source, digest, signatures, audit)
        _VERIFIED.set(None)
        return origin, path
    source = _source_at(name, origin)
    # the file is hashed (or its digest taken from this process's memo of its current
    # version), not kept: the pipeline loads it under this digest, refusing it if its
    # content changed since, and reads it only if it must be compiled
    digest = source.component_digest(max_bytes=max_bytes)
    if _VERIFIED.get() != (name, digest):  # else load_plugins verified this very content
        check_signature(source, digest, signatures, audit)
    _VERIFIED.set(None)
    _CHECKED.set((name, origin, digest))
    return origin, source.component


def _source_at(name: str, component: Path) -> PluginSource:
    """The plugin source of the component file ``component``, named ``name``: with the
    ``plugin.toml`` beside it when that manifest names this component (the signature
    covers that manifest then), else a bare component."""
    from ..discovery.sources import MANIFEST_NAME, PluginSource

    manifest_path = component.with_name(MANIFEST_NAME)
    if component.suffix == ".wasm" and manifest_path.is_file():
        beside = PluginSource.from_path(manifest_path)
        if (
            not beside.broken
            and beside.component is not None
            and beside.component.resolve() == component.resolve()
        ):
            return attrs.evolve(beside, name=name)
    return attrs.evolve(PluginSource.from_path(component), name=name)


def _unsigned_bytes(name: str, signatures: Signatures, audit: AuditLog) -> None:
    """Bytes given without the file they came from: nothing to verify them against.
    Audited; a :class:`SignatureError` under ``require``."""
    if signatures.policy == "verify-if-present":
        audit.record(
            "signature", name, "missing: loaded from bytes, unsigned (policy verify-if-present)",
            outcome="missing", keys=[], path=None,
        )  # fmt: skip
        return
    audit.record(
        "signature", name, "missing: loaded from bytes, which carry no signature",
        outcome="missing", keys=[], path=None,
    )  # fmt: skip
    audit.record("refuse", name, "not loaded: signature missing")
    raise SignatureError(
        f"plugin {name!r}: loaded from bytes, which carry no signature (policy 'require'). "
        "Load the signed file instead, host.load('path/to/plugin.wasm') with its "
        "signature plugin.wasm.sig beside it (airssys-plugins sign makes one), or give the "
        "file the bytes were read from: host.load(data, name=..., path='path/to/plugin.wasm')",
        plugin=name,
        path=None,
        outcome="missing",
    )


def _manifest_digest(source: PluginSource) -> str | None:
    """The SHA-256 of the manifest file's bytes (``None`` for a bare ``.wasm``). The bytes
    are parsed again and must give the manifest discovery parsed, so a manifest swapped
    after discovery cannot pass with another one's signature."""
    import hashlib

    from ..discovery.manifest import Manifest

    manifest = source.manifest
    if manifest is None or manifest.path is None:
        return None
    data = _read_small(source, manifest.path)
    if data is None or Manifest.from_file(manifest.path, data=data) != manifest:
        raise SignatureError(
            f"plugin {source.name!r}: its manifest {manifest.path} changed while it was being "
            "loaded; load it again",
            plugin=source.name,
            path=str(manifest.path),
            outcome="bad",
        )
    return hashlib.sha256(data).hexdigest()


def _read_small(source: PluginSource, path: Path | None) -> bytes | None:
    """A signature file's (or manifest's) bytes; ``None`` if there is none. Only regular
    files up to :data:`SIGNATURE_CAP` are read."""
    if path is None or not path.exists():
        return None
    try:
        if not path.is_file():
            raise SignatureError(
                f"plugin {source.name!r}: {path} is not a regular file; replace it with the "
                "signature file",
                plugin=source.name,
                path=str(path),
                outcome="malformed",
            )
        with path.open("rb") as f:
            data = f.read(SIGNATURE_CAP + 1)
    except OSError as exc:
        raise SignatureError(
            f"plugin {source.name!r}: cannot read {path}: {exc.strerror or exc}",
            plugin=source.name,
            path=str(path),
            outcome="malformed",
        ) from exc
    if len(data) > SIGNATURE_CAP:
        raise SignatureError(
            f"plugin {source.name!r}: {path} is larger than {SIGNATURE_CAP} bytes: not a signature",
            plugin=source.name,
            path=str(path),
            outcome="malformed",
        )
    return data
