"""Signing subcommands: ``keygen`` and ``sign``.

airssys-plugins keygen PATH [--force]
airssys-plugins sign   PLUGIN --key PATH.key [-o FILE] [--payload-only]

``keygen`` writes ``PATH.key`` (the Ed25519 private key, PKCS#8 PEM, mode 0600) and
``PATH.pub`` (``ed25519:<base64>``, for grants files and ``TrustedKeys``). ``sign`` writes
the detached signature ``<component>.wasm.sig`` beside the component of PLUGIN (a plugin
directory, its ``plugin.toml``, or a bare ``.wasm``), over the component's SHA-256 and the
manifest's. ``--payload-only`` writes the signed payload instead, for ``sigstore sign``.
Both need the ``signing`` extra (``cryptography``).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
from pathlib import Path

from .._errors import PluginLoadError
from .._files import atomic_write
from ..discovery.sources import PluginSource
from ..policy.sigfiles import generate_key_pair, load_private_key, payload, sign
from ..policy.signing import SIGNATURE_SUFFIX, SigningKeyError

__all__ = ["register"]


def _cmd_keygen(args: argparse.Namespace) -> int:
    base = Path(args.path)
    if base.suffix in (".key", ".pub"):
        base = base.with_suffix("")
    private_path, public_path = (
        base.with_name(base.name + ".key"),
        base.with_name(base.name + ".pub"),
    )
    existing = [p for p in (private_path, public_path) if p.exists() or p.is_symlink()]
    if existing and not args.force:
        names = " and ".join(str(p) for p in existing)
        raise SigningKeyError(
            f"{names} already exist(s); keygen does not overwrite keys (a lost private key "
            "cannot sign again): choose another PATH, or give --force to replace them"
        )
    pem, public = generate_key_pair()
    private_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = private_path.with_name(f".{private_path.name}.{os.getpid()}.tmp")
    # Created 0600 from the first byte (no window in which the key is world-readable).
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(pem)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o600)  # whatever the umask
        os.replace(tmp, private_path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    atomic_write(public_path, f"{public}  {base.name}\n".encode())
    os.chmod(public_path, 0o644)  # a public key is for sharing
    print(f"private key: {private_path} (keep it secret; mode 0600)")
    print(f"public key:  {public_path}")
    print(f"key id:      {public.key_id}")
    print(f'trust it with signed-by = ["{public}"] in the grants file')
    return 0


def _cmd_sign(args: argparse.Namespace) -> int:
    source = PluginSource.from_path(args.plugin)
    if source.error is not None:
        raise source.error
    assert source.manifest is not None
    assert source.component is not None
    try:
        component = source.component.read_bytes()
        manifest_path = source.manifest.path
        manifest = None if manifest_path is None else manifest_path.read_bytes()
    except OSError as exc:
        raise PluginLoadError(
            f"plugin {source.name!r}: cannot read {exc.filename}: {exc.strerror or exc}",
            plugin=source.name,
        ) from exc
    component_sha256 = hashlib.sha256(component).hexdigest()
    manifest_sha256 = None if manifest is None else hashlib.sha256(manifest).hexdigest()
    if args.payload_only:
        data = payload(source.name, component_sha256, manifest_sha256)
        if args.output in (None, "-"):
            sys.stdout.buffer.write(data)
        else:
            atomic_write(Path(args.output), data)
            print(f"payload of {source.name!r}: {args.output} (sign it with `sigstore sign`)")
        return 0
    if args.key is None:
        raise SigningKeyError("give the private key to sign with: --key PATH.key")
    signature = sign(load_private_key(args.key), source.name, component_sha256, manifest_sha256)
    out = (
        Path(args.output)
        if args.output
        else source.component.with_name(source.component.name + SIGNATURE_SUFFIX)
    )
    atomic_write(out, signature.to_json().encode())
    print(f"signed {source.name!r} with key {signature.key_id}: {out}")
    print(f"  component sha256 {component_sha256}")
    print(f"  manifest  sha256 {manifest_sha256 or '(none: a bare .wasm)'}")
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    keygen = sub.add_parser(
        "keygen",
        help="make an Ed25519 key pair for signing components",
        description="Writes PATH.key (the private key, PKCS#8 PEM, mode 0600) and PATH.pub "
        "(ed25519:<base64>, for signed-by in grants files). Needs the signing extra.",
    )
    keygen.add_argument("path", metavar="PATH", help="where to write PATH.key and PATH.pub")
    keygen.add_argument("--force", action="store_true", help="replace existing key files")
    keygen.set_defaults(func=_cmd_keygen)
    signer = sub.add_parser(
        "sign",
        help="write a detached signature over a plugin's component and manifest",
        description="Writes <component>.wasm.sig beside the component: an Ed25519 signature "
        "over the plugin's name, the component's SHA-256 and its plugin.toml's SHA-256, so "
        "changing either breaks it. Needs the signing extra.",
    )
    signer.add_argument(
        "plugin", metavar="PLUGIN", help="a plugin directory, its plugin.toml, or a .wasm"
    )
    signer.add_argument("--key", metavar="PATH.key", help="the private key (from keygen)")
    signer.add_argument(
        "-o", "--output", metavar="FILE", help="where to write (default: <component>.wasm.sig)"
    )
    signer.add_argument(
        "--payload-only",
        action="store_true",
        help="write the signed payload (to FILE, or stdout) instead, to sign with sigstore",
    )
    signer.set_defaults(func=_cmd_sign)
