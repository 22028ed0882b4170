"""Provenance of a discovered plugin: its signature checked before anything compiles.

The glue between discovery (where a plugin's manifest, component and signature files are)
and :mod:`..policy.signing` (what a valid signature is, and the host's policy).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Final

from ..discovery.manifest import Manifest
from ..discovery.sources import PluginSource
from ..policy.audit import AuditLog
from ..policy.signing import SignatureError, Signatures, verify_component

__all__ = ["check_signature"]

#: Signature files and Sigstore bundles are small; a larger one is refused unread.
SIGNATURE_CAP: Final = 1 << 20


def check_signature(
    source: PluginSource, digest: str, signatures: Signatures, audit: AuditLog
) -> str | None:
    """Verify ``source``'s signature (its component has SHA-256 ``digest``, already read)
    under the host's ``signatures``; the signing key's id, or ``None`` when unchecked.
    Raises :class:`SignatureError` before the component is compiled."""
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
    return verify_component(
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


def _manifest_digest(source: PluginSource) -> str | None:
    """The SHA-256 of the manifest file's bytes (``None`` for a bare ``.wasm``). The bytes
    are parsed again and must give the manifest discovery parsed, so a manifest swapped
    after discovery cannot pass with another one's signature."""
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
