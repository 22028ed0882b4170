"""Signature files: the signed payload, detached signatures, keys made and read, signing
and verifying (:mod:`.signing` holds the host's policy and the trusted keys).

Apart from :mod:`.signing` because a host needs only the policy records: this module (and
``json``, ``base64`` and the verification code it brings) is imported by the first
plugin whose signature is checked, by ``airssys-plugins keygen`` and ``sign``, and by an
application that signs components itself.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, final

from .. import _attrs as attrs
from .audit import AuditLog
from .signing import (
    DOMAIN,
    EXTRA_HINT,
    FORMAT,
    SIGNATURE_SUFFIX,
    SIGSTORE_SUFFIX,
    Outcome,
    PublicKey,
    SignatureError,
    SignaturePolicy,
    Signatures,
    SigningKeyError,
    SigningUnavailable,
    SigstoreIdentity,
    require_crypto,
)

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

__all__ = [
    "Signature",
    "generate_key_pair",
    "load_private_key",
    "payload",
    "public_key_of",
    "sign",
    "verify_component",
]


def _sha256_hex(value: str | None, field: str) -> str | None:
    if value is None:
        return None
    if len(value) != 64 or any(c not in "0123456789abcdef" for c in value):
        raise ValueError(f"{field} must be 64 lowercase hex digits, not {value!r}")
    return value


def payload(plugin: str, component_sha256: str, manifest_sha256: str | None) -> bytes:
    """The bytes a signature signs: :data:`DOMAIN` then canonical JSON of the plugin's
    name, its component's SHA-256 and its manifest's SHA-256 (``None``: no manifest)."""
    import json

    body = {
        "component_sha256": _sha256_hex(component_sha256, "component_sha256"),
        "manifest_sha256": _sha256_hex(manifest_sha256, "manifest_sha256"),
        "plugin": plugin,
    }
    return DOMAIN + json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


# -- signature files --------------------------------------------------------------------------


@final
@attrs.frozen
class Signature:
    """A detached signature file (``<component>.wasm.sig``): the signed fields, the signing
    key's id and the Ed25519 signature over :func:`payload` of those fields."""

    plugin: str
    component_sha256: str
    manifest_sha256: str | None
    key_id: str
    signature: bytes

    @property
    def payload(self) -> bytes:
        return payload(self.plugin, self.component_sha256, self.manifest_sha256)

    def to_json(self) -> str:
        import base64
        import json

        return (
            json.dumps(
                {
                    "format": FORMAT,
                    "plugin": self.plugin,
                    "component_sha256": self.component_sha256,
                    "manifest_sha256": self.manifest_sha256,
                    "key": self.key_id,
                    "signature": base64.b64encode(self.signature).decode(),
                },
                indent=2,
            )
            + "\n"
        )

    @classmethod
    def parse(cls, data: bytes) -> Signature:
        """A signature file's bytes; ``ValueError`` saying what is wrong."""
        import base64
        import binascii
        import json

        try:
            doc = json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            raise ValueError(f"not a JSON signature file ({exc})") from exc
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            raise ValueError(f"not an {FORMAT} signature file (its 'format' differs)")
        fields = ("plugin", "component_sha256", "key", "signature")
        for key in fields:
            if not isinstance(doc.get(key), str):
                raise ValueError(f"its {key!r} is missing or not a string")
        manifest = doc.get("manifest_sha256")
        if manifest is not None and not isinstance(manifest, str):
            raise ValueError("its 'manifest_sha256' is neither a string nor null")
        try:
            raw = base64.b64decode(doc["signature"], validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ValueError("its 'signature' is not valid base64") from exc
        _sha256_hex(doc["component_sha256"], "component_sha256")
        _sha256_hex(manifest, "manifest_sha256")
        return cls(doc["plugin"], doc["component_sha256"], manifest, doc["key"], raw)


def generate_key_pair() -> tuple[bytes, PublicKey]:
    """A new Ed25519 key pair: the private key as PKCS#8 PEM, and the public key."""
    ed25519 = require_crypto()
    from cryptography.hazmat.primitives import serialization

    private = ed25519.Ed25519PrivateKey.generate()
    pem: bytes = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    raw = private.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    return pem, PublicKey(raw)


def load_private_key(path: str | os.PathLike[str]) -> Ed25519PrivateKey:
    """The Ed25519 private key in a PEM file written by ``airssys-plugins keygen``."""
    require_crypto()
    from cryptography.hazmat.primitives import serialization

    p = Path(path)
    try:
        if not p.is_file():
            raise SigningKeyError(f"private key file {p} does not exist or is not a file")
        data = p.read_bytes()
        key = serialization.load_pem_private_key(data, password=None)
    except OSError as exc:
        raise SigningKeyError(f"cannot read private key file {p}: {exc.strerror or exc}") from exc
    except (ValueError, TypeError) as exc:
        raise SigningKeyError(
            f"{p} is not an unencrypted PEM private key ({exc}); make one with "
            "`airssys-plugins keygen`"
        ) from exc
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    if not isinstance(key, Ed25519PrivateKey):
        raise SigningKeyError(f"{p} holds a {type(key).__name__}, not an Ed25519 private key")
    return key


def public_key_of(private: Ed25519PrivateKey) -> PublicKey:
    from cryptography.hazmat.primitives import serialization

    return PublicKey(
        private.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
    )


def sign(
    private: Ed25519PrivateKey, plugin: str, component_sha256: str, manifest_sha256: str | None
) -> Signature:
    """The signature of ``private`` over :func:`payload` of these fields."""
    data = payload(plugin, component_sha256, manifest_sha256)
    return Signature(
        plugin,
        component_sha256,
        manifest_sha256,
        public_key_of(private).key_id,
        private.sign(data),
    )


# -- verification ------------------------------------------------------------------------------


def verify_component(
    name: str,
    *,
    component_sha256: str,
    manifest_sha256: str | None,
    signature: bytes | None,
    signature_path: Path | None,
    sigstore_bundle: bytes | None = None,
    sigstore_path: Path | None = None,
    signatures: Signatures,
    audit: AuditLog,
    pack: str | None = None,
) -> str | None:
    """Check plugin ``name``'s signature under ``signatures``; return the id of the key
    (or the Sigstore identity) that signed it, ``None`` if nothing was checked.

    ``signature`` is the signature file's bytes (``None``: there is none), read from
    ``signature_path``; ``sigstore_bundle`` a Sigstore bundle's. Every outcome is recorded
    in ``audit`` (kind ``signature``: ok, missing, malformed, untrusted, bad); a refusal
    raises :class:`SignatureError`.
    """
    mode = signatures.policy
    if mode == "ignore":
        return None
    where = str(signature_path) if signature_path is not None else f"{name}.wasm{SIGNATURE_SUFFIX}"
    trusted = signatures.keys.for_plugin(name, pack)
    tried = tuple(k.key_id for k in trusted)
    expected = payload(name, component_sha256, manifest_sha256)
    fix_keys = (
        f"trust the signer's public key for {name!r} (signed-by in [plugins.{name}] of the "
        "grants file, or Signatures(keys=TrustedKeys(plugins={...})))"
    )

    def refuse(outcome: Outcome, detail: str, fix: str, path: str | None = where) -> SignatureError:
        audit.record(
            "signature", name, f"{outcome}: {detail}", outcome=outcome, keys=list(tried), path=path
        )
        audit.record("refuse", name, f"not loaded: signature {outcome}")
        keys = ", ".join(tried) if tried else "none: no key is trusted for this plugin"
        return SignatureError(
            f"plugin {name!r}: {detail} (policy {mode!r}; trusted key(s) tried: {keys}). {fix}",
            plugin=name,
            path=path,
            outcome=outcome,
            keys=tried,
        )

    if signature is None and sigstore_bundle is not None and signatures.sigstore is not None:
        return _verify_sigstore(
            name, expected, sigstore_bundle, sigstore_path, signatures.sigstore, audit, mode
        )
    if signature is None:
        if mode == "verify-if-present":
            audit.record(
                "signature", name, "missing: loaded unsigned (policy verify-if-present)",
                outcome="missing", keys=list(tried), path=where,
            )  # fmt: skip
            return None
        bundle_note = (
            f"; a Sigstore bundle {sigstore_path} is present, but the host configures no "
            "Sigstore identity (Signatures(sigstore=SigstoreIdentity(...)))"
            if sigstore_bundle is not None
            else ""
        )
        raise refuse(
            "missing",
            f"the component is not signed: there is no {where}{bundle_note}",
            f"sign it with `airssys-plugins sign --key KEY.key PLUGIN` and ship {where} "
            "beside the component, or set the signature policy to 'verify-if-present'",
        )
    if not trusted:
        raise refuse(
            "untrusted",
            f"{where} is present but no key is trusted to sign this plugin",
            fix_keys,
        )
    try:
        parsed = Signature.parse(signature)
    except ValueError as exc:
        raise refuse(
            "malformed",
            f"{where} is not a valid signature file: {exc}",
            "sign the component again with `airssys-plugins sign`",
        ) from exc
    key = next((k for k in trusted if k.key_id == parsed.key_id), None)
    if key is None:
        raise refuse(
            "untrusted",
            f"{where} is signed by key {parsed.key_id}, which is not trusted for this plugin",
            fix_keys + ", or have it signed with a trusted key",
        )
    ed25519 = require_crypto()
    from cryptography.exceptions import InvalidSignature

    try:
        ed25519.Ed25519PublicKey.from_public_bytes(key.raw).verify(parsed.signature, expected)
    except InvalidSignature:
        changed = [
            label
            for label, signed, actual in (
                ("the plugin name", parsed.plugin, name),
                ("the component", parsed.component_sha256, component_sha256),
                ("the manifest", parsed.manifest_sha256, manifest_sha256),
            )
            if signed != actual
        ]
        what = (
            f"{' and '.join(changed)} changed since it was signed"
            if changed
            else "the signature does not verify"
        )
        raise refuse(
            "bad",
            f"{where} (key {key.key_id}) does not match: {what}",
            "reinstall the plugin from its publisher, or sign the reviewed files again",
        ) from None
    audit.record(
        "signature", name, f"ok: signed by key {key.key_id}", outcome="ok", key=key.key_id,
        path=where,
    )  # fmt: skip
    return key.key_id


def _verify_sigstore(
    name: str,
    expected: bytes,
    bundle_bytes: bytes,
    path: Path | None,
    identity: SigstoreIdentity,
    audit: AuditLog,
    mode: SignaturePolicy,
) -> str:
    """Verify a Sigstore bundle over ``expected`` offline; refuse with SignatureError."""
    where = str(path) if path is not None else f"{name}.wasm{SIGSTORE_SUFFIX}"
    who = f"{identity.identity} (issuer {identity.issuer})"

    def refuse(outcome: Outcome, detail: str, fix: str) -> SignatureError:
        audit.record(
            "signature", name, f"{outcome}: {detail}", outcome=outcome, keys=[who], path=where
        )
        audit.record("refuse", name, f"not loaded: signature {outcome}")
        return SignatureError(
            f"plugin {name!r}: {detail} (policy {mode!r}; Sigstore identity tried: {who}). {fix}",
            plugin=name,
            path=where,
            outcome=outcome,
            keys=(who,),
        )

    try:
        from sigstore.errors import Error as SigstoreError
        from sigstore.models import Bundle, TrustedRoot
        from sigstore.verify import Verifier, policy
    except ImportError as exc:
        raise SigningUnavailable(
            f"plugin {name!r} carries a Sigstore bundle {where}; verifying it needs the "
            f"'sigstore' library, which is not installed: {EXTRA_HINT}"
        ) from exc
    try:
        root = (
            TrustedRoot.from_file(str(identity.trusted_root))
            if identity.trusted_root is not None
            else _public_good_root()
        )
    except (OSError, ValueError, SigstoreError) as exc:
        raise refuse(
            "malformed",
            f"the Sigstore trusted root {identity.trusted_root} cannot be used: {exc}",
            "give SigstoreIdentity(trusted_root=...) a trusted_root.json of your Sigstore instance",
        ) from exc
    try:
        bundle = Bundle.from_json(bundle_bytes)
    except Exception as exc:  # sigstore raises pydantic, JSON and its own errors here
        raise refuse(
            "malformed",
            f"{where} is not a valid Sigstore bundle: {type(exc).__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else ''}",
            "sign the payload again (`airssys-plugins sign --payload-only`, then `sigstore sign`)",
        ) from exc
    try:
        Verifier(trusted_root=root).verify_artifact(
            expected, bundle, policy.Identity(identity=identity.identity, issuer=identity.issuer)
        )
    except Exception as exc:  # VerificationError and the errors of malformed contents
        raise refuse(
            "bad",
            f"{where} does not verify offline: {type(exc).__name__}: {exc}",
            "the bundle must sign this plugin's payload (`airssys-plugins sign --payload-only`) "
            "by the configured identity; sign it again or fix the SigstoreIdentity",
        ) from exc
    audit.record(
        "signature", name, f"ok: Sigstore bundle signed by {who}", outcome="ok", key=who,
        path=where,
    )  # fmt: skip
    return who


def _public_good_root() -> Any:
    """The public-good Sigstore trusted root shipped inside the ``sigstore`` package (no
    network: the TUF refresh is not run)."""
    import sigstore
    from sigstore.models import TrustedRoot

    base = Path(sigstore.__file__).parent / "_store" / "https%3A%2F%2Ftuf-repo-cdn.sigstore.dev"
    return TrustedRoot.from_file(str(base / "trusted_root.json"))
