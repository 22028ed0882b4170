"""Signed components: Ed25519 keys, detached signatures, and the host's signature policy.

A signature binds one plugin's component *and* its manifest to a key. The signed bytes are
a domain-separation prefix followed by canonical JSON (sorted keys, no spaces)::

    airssys-plugins component signature v1\\n
    {"component_sha256":"<hex>","manifest_sha256":"<hex or null>","plugin":"<name>"}

``manifest_sha256`` is the SHA-256 of the exact bytes of ``plugin.toml`` (``null`` for a
bare ``.wasm``), so widening a manifest's capabilities, swapping the component, renaming
the plugin or presenting a signature made for something else than a plugin component all
break the signature. The detached signature file sits beside the component as
``<component>.wasm.sig``: a small JSON document (:class:`Signature`).

Public keys are written ``ed25519:<base64 of the 32 raw bytes>``, one line, readable
without ``cryptography``; private keys are PKCS#8 PEM files. Only signing and verifying
need the ``cryptography`` library (the ``signing`` extra): importing this module, parsing
keys and running hosts under the ``ignore`` policy do not.

Where a Sigstore bundle (``<component>.wasm.sigstore.json``) sits beside a component and
the host configures :class:`SigstoreIdentity`, it is verified offline with the ``sigstore``
library against the configured trusted root; the artifact it signs is the same payload.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal, final

from .. import _attrs as attrs
from .._errors import PluginError, PluginLoadError

if TYPE_CHECKING:
    pass

__all__ = [
    "DOMAIN",
    "POLICIES",
    "SIGNATURE_SUFFIX",
    "SIGSTORE_SUFFIX",
    "PublicKey",
    "SignatureError",
    "SignaturePolicy",
    "Signatures",
    "SigningKeyError",
    "SigningUnavailable",
    "SigstoreIdentity",
    "TrustedKeys",
    "require_crypto",
]

#: The domain-separation prefix of every signed payload (version 1 of the format).
DOMAIN: Final = b"airssys-plugins component signature v1\n"
FORMAT: Final = "airssys-plugins-signature/1"
#: The detached signature beside a component: ``shout.wasm`` -> ``shout.wasm.sig``.
SIGNATURE_SUFFIX: Final = ".sig"
#: A Sigstore bundle beside a component: ``shout.wasm`` -> ``shout.wasm.sigstore.json``.
SIGSTORE_SUFFIX: Final = ".sigstore.json"

SignaturePolicy = Literal["require", "verify-if-present", "ignore"]
POLICIES: Final[tuple[SignaturePolicy, ...]] = ("require", "verify-if-present", "ignore")
EXTRA_HINT: Final = "pip install 'airssys-plugins[signing]'"


class SigningUnavailable(PluginError, ImportError):
    """Signing or verifying needs the ``cryptography`` library, which is not installed."""


class SigningKeyError(PluginError, ValueError):
    """A key (file or ``ed25519:...`` text) cannot be read or is not an Ed25519 key."""


Outcome = Literal["missing", "bad", "untrusted", "malformed"]


class SignatureError(PluginLoadError):
    """A component's signature is missing, malformed, made by an untrusted key, or does not
    match the component and manifest; raised before anything is compiled.

    ``outcome`` is ``missing``, ``malformed``, ``untrusted`` or ``bad``; ``keys`` the ids of
    the trusted keys that were tried.
    """

    def __init__(
        self,
        message: str,
        *,
        plugin: str,
        path: str | None,
        outcome: Outcome,
        keys: Iterable[str] = (),
    ):
        super().__init__(message, plugin=plugin, path=path)
        self.outcome: Outcome = outcome
        self.keys = tuple(keys)


def require_crypto() -> Any:
    """The ``ed25519`` module of ``cryptography``, or a :class:`SigningUnavailable`."""
    try:
        from cryptography.hazmat.primitives.asymmetric import ed25519
    except ImportError as exc:
        raise SigningUnavailable(
            "signing and verifying components needs the 'cryptography' library, which is "
            f"not installed; install the signing extra: {EXTRA_HINT}"
        ) from exc
    return ed25519


def _raw_key(_: object, __: attrs.Attribute[bytes], value: bytes) -> None:
    if len(value) != 32:
        raise SigningKeyError(f"an Ed25519 public key has 32 bytes, not {len(value)}")


@final
@attrs.frozen
class PublicKey:
    """An Ed25519 public key, written ``ed25519:<base64>``; ``key_id`` is the first 16 hex
    digits of the SHA-256 of its raw bytes (what messages and the audit log show)."""

    raw: bytes = attrs.field(validator=_raw_key)

    @property
    def key_id(self) -> str:
        import hashlib

        return hashlib.sha256(self.raw).hexdigest()[:16]

    def __str__(self) -> str:
        import base64

        return "ed25519:" + base64.b64encode(self.raw).decode()

    @classmethod
    def parse(cls, text: str) -> PublicKey:
        """``ed25519:<base64>`` (anything after whitespace is a comment)."""
        import base64
        import binascii

        word = text.strip().split(maxsplit=1)[0] if text.strip() else ""
        kind, sep, b64 = word.partition(":")
        if not sep or kind != "ed25519":
            raise SigningKeyError(
                f"{text.strip()[:40]!r} is not a public key; write it as ed25519:<base64>, as "
                "`airssys-plugins keygen` writes it into the .pub file"
            )
        try:
            raw = base64.b64decode(b64, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise SigningKeyError(f"public key {word[:40]!r}: not valid base64") from exc
        return cls(raw)

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> PublicKey:
        """A ``.pub`` file written by ``airssys-plugins keygen``."""
        p = Path(path)
        try:
            if not p.is_file():
                raise SigningKeyError(f"public key file {p} does not exist or is not a file")
            if p.stat().st_size > 4096:
                raise SigningKeyError(f"public key file {p} is larger than 4 KiB: not a key")
            text = p.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise SigningKeyError(f"cannot read public key file {p}: {exc}") from exc
        try:
            return cls.parse(text)
        except SigningKeyError as exc:
            raise SigningKeyError(f"{p}: {exc}") from exc

    @classmethod
    def of(
        cls, value: PublicKey | str | os.PathLike[str], *, base: Path | None = None
    ) -> PublicKey:
        """A key, an ``ed25519:...`` text, or the path of a ``.pub`` file (relative to
        ``base``, the directory of the grants file naming it)."""
        if isinstance(value, PublicKey):
            return value
        if isinstance(value, str) and value.startswith("ed25519:"):
            return cls.parse(value)
        path = Path(value)
        return cls.from_file(path if base is None or path.is_absolute() else base / path)


def _keys(values: Iterable[PublicKey | str | os.PathLike[str]]) -> tuple[PublicKey, ...]:
    if isinstance(values, str | os.PathLike | PublicKey):
        values = [values]
    out: list[PublicKey] = []
    for value in values:
        key = PublicKey.of(value)
        if key not in out:
            out.append(key)
    return tuple(out)


def _key_map(
    value: Mapping[str, Iterable[PublicKey | str | os.PathLike[str]]] | None,
) -> Mapping[str, tuple[PublicKey, ...]]:
    import types

    return types.MappingProxyType({name: _keys(keys) for name, keys in (value or {}).items()})


@final
@attrs.frozen
class TrustedKeys:
    """Which keys may sign which plugins: ``default`` keys sign any plugin, ``plugins`` maps
    a plugin name to its keys, ``packs`` a component pack's distribution name to the keys
    that may sign every plugin it carries. Keys are :class:`PublicKey`, ``ed25519:...``
    texts or ``.pub`` file paths."""

    default: tuple[PublicKey, ...] = attrs.field(default=(), converter=_keys)
    plugins: Mapping[str, tuple[PublicKey, ...]] = attrs.field(factory=dict, converter=_key_map)
    packs: Mapping[str, tuple[PublicKey, ...]] = attrs.field(factory=dict, converter=_key_map)

    def for_plugin(self, name: str, pack: str | None = None) -> tuple[PublicKey, ...]:
        """The keys trusted to sign plugin ``name`` (from pack distribution ``pack``)."""
        keys = list(self.default) + list(self.plugins.get(name, ()))
        if pack is not None:
            keys += self.packs.get(_dist_key(pack), ())
        return tuple(dict.fromkeys(keys))

    def __bool__(self) -> bool:
        return bool(self.default or self.plugins or self.packs)


def _dist_key(name: str) -> str:
    """A distribution name normalised as PEP 503 does (``Textpipe_Reverse`` ->
    ``textpipe-reverse``)."""
    import re

    return re.sub(r"[-_.]+", "-", name).lower()


def _policy(_: object, __: attrs.Attribute[str], value: str) -> None:
    if value not in POLICIES:
        raise ValueError(
            f"the signature policy must be one of {', '.join(POLICIES)}, not {value!r}"
        )


def _packs(value: TrustedKeys) -> TrustedKeys:
    return attrs.evolve(value, packs={_dist_key(k): v for k, v in value.packs.items()})


def _optional_path(value: str | os.PathLike[str] | None) -> Path | None:
    return None if value is None else Path(value)


@final
@attrs.frozen
class SigstoreIdentity:
    """Who must have signed a Sigstore bundle: the certificate's ``identity`` (an e-mail
    or a workflow URL) and OIDC ``issuer``, checked against ``trusted_root`` (a Sigstore
    ``trusted_root.json``; ``None``: the public-good instance's root shipped with
    ``sigstore``), offline."""

    identity: str
    issuer: str
    trusted_root: Path | None = attrs.field(default=None, converter=_optional_path)


@final
@attrs.frozen
class Signatures:
    """The host's signature policy: ``PluginHost(pm, signatures=Signatures(...))``.

    ``policy`` is ``require`` (every plugin must carry a valid signature by one of its
    trusted keys), ``verify-if-present`` (a signature that is present must be valid and
    trusted; unsigned plugins load) or ``ignore`` (no check, ``cryptography`` not needed).
    ``keys`` are the :class:`TrustedKeys`; ``sigstore`` the :class:`SigstoreIdentity` a
    Sigstore bundle beside a component is checked against.
    """

    policy: SignaturePolicy = attrs.field(default="ignore", validator=_policy)
    keys: TrustedKeys = attrs.field(factory=TrustedKeys, converter=_packs)
    sigstore: SigstoreIdentity | None = None

    def __attrs_post_init__(self) -> None:
        if self.policy != "ignore":
            require_crypto()  # a host that must verify says at once what to install

    @classmethod
    def from_grants_file(cls, path: str | os.PathLike[str]) -> Signatures:
        """The signature settings of a grants file: ``[signatures]`` (``policy``, ``keys``
        and ``[signatures.packs]``) and ``signed-by`` in each ``[plugins.<name>]``."""
        from .tables import read_signature_tables

        p = Path(path)
        tables = read_signature_tables(p, lambda text: PublicKey.of(text, base=p.parent))
        keys = TrustedKeys(tables.default, tables.plugins, tables.packs)
        policy = tables.policy or ("verify-if-present" if keys else "ignore")
        sigstore = None
        if tables.sigstore is not None:
            identity, issuer, root = tables.sigstore
            sigstore = SigstoreIdentity(identity, issuer, None if root is None else p.parent / root)
        return cls(policy, keys, sigstore)  # type: ignore[arg-type]
