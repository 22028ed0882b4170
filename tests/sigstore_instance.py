"""A throwaway Sigstore instance made in memory, so bundles can be verified offline in tests.

Real Sigstore bundles come from an online signer (Fulcio issues the certificate after an
OIDC login, Rekor logs the signature). This module plays both parts with fresh keys: a
certificate authority, a CT log that embeds a signed certificate timestamp (RFC 6962) in
the leaf, and a transparency log that signs the entry's timestamp promise and a
one-entry checkpoint. Its ``trusted_root.json`` names those keys, so ``sigstore``
verifies the bundles it makes exactly as it verifies public-good ones; nothing is mocked.
"""

from __future__ import annotations

import base64
import hashlib
import json
import struct
from datetime import UTC, datetime, timedelta
from typing import Any

import rfc8785
from cryptography import x509
from cryptography.hazmat import asn1
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, ExtensionOID, NameOID

NOW = datetime(2026, 1, 1, tzinfo=UTC)
ISSUER_OID = x509.ObjectIdentifier("1.3.6.1.4.1.57264.1.1")  # Fulcio's OIDC issuer (v1)
LOG_ORIGIN = "log.test.invalid"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _spki(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _key_entry(key: ec.EllipticCurvePrivateKey, url: str) -> dict[str, Any]:
    return {
        "baseUrl": url,
        "hashAlgorithm": "SHA2_256",
        "logId": {"keyId": _b64(hashlib.sha256(_spki(key)).digest())},
        "publicKey": {
            "rawBytes": _b64(_spki(key)),
            "keyDetails": "PKIX_ECDSA_P256_SHA_256",
            "validFor": {"start": "2025-01-01T00:00:00Z"},
        },
    }


class SigstoreInstance:
    """Keys of a CA, a CT log and a transparency log; ``bundle`` signs as ``identity``."""

    def __init__(self) -> None:
        new = lambda: ec.generate_private_key(ec.SECP256R1())  # noqa: E731
        self.ca_key, self.ct_key, self.log_key = new(), new(), new()
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test CA")])
        self.ca_name = name
        self.ca = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self.ca_key.public_key())
            .serial_number(1)
            .not_valid_before(NOW - timedelta(days=30))
            .not_valid_after(NOW + timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(False, False, False, False, False, True, True, False, False),
                critical=True,
            )
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(self.ca_key.public_key()),
                critical=False,
            )
            .sign(self.ca_key, hashes.SHA256())
        )

    def trusted_root(self) -> str:
        """The ``trusted_root.json`` of this instance."""
        return json.dumps(
            {
                "mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
                "tlogs": [_key_entry(self.log_key, f"https://{LOG_ORIGIN}")],
                "ctlogs": [_key_entry(self.ct_key, "https://ct.test.invalid")],
                "certificateAuthorities": [
                    {
                        "subject": {"organization": "test", "commonName": "test CA"},
                        "uri": "https://ca.test.invalid",
                        "certChain": {
                            "certificates": [
                                {"rawBytes": _b64(self.ca.public_bytes(serialization.Encoding.DER))}
                            ]
                        },
                        "validFor": {"start": "2025-01-01T00:00:00Z"},
                    }
                ],
            }
        )

    def _leaf(
        self, key: ec.EllipticCurvePrivateKey, identity: str, issuer: str
    ) -> x509.Certificate:
        """A short-lived code-signing certificate for ``identity``, with an embedded SCT."""
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([]))
            .issuer_name(self.ca_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(NOW - timedelta(minutes=5))
            .not_valid_after(NOW + timedelta(minutes=5))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(True, False, False, False, False, False, False, False, False),
                critical=True,
            )
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), False)
            .add_extension(x509.SubjectAlternativeName([x509.RFC822Name(identity)]), True)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.ca_key.public_key()),
                False,
            )
            .add_extension(x509.UnrecognizedExtension(ISSUER_OID, issuer.encode()), False)
        )
        # The CT log signs the precertificate: the TBS certificate without the SCT list.
        tbs = builder.sign(self.ca_key, hashes.SHA256()).tbs_certificate_bytes
        millis = int(NOW.timestamp() * 1000)
        issuer_key_hash = hashlib.sha256(_spki(self.ca_key)).digest()
        # RFC 6962 3.2: version v1, certificate_timestamp, timestamp, precert_entry,
        # issuer key hash, the TBS (24-bit length) and no extensions.
        signed = (
            struct.pack("!BBQH", 0, 0, millis, 1)
            + issuer_key_hash
            + len(tbs).to_bytes(3, "big")
            + tbs
            + struct.pack("!H", 0)
        )
        sct_sig = self.ct_key.sign(signed, ec.ECDSA(hashes.SHA256()))
        log_id = hashlib.sha256(_spki(self.ct_key)).digest()
        # SignedCertificateTimestamp: version, log id, timestamp, no extensions, then a
        # DigitallySigned (sha256=4, ecdsa=3) with a 16-bit length.
        sct = (
            b"\x00"
            + log_id
            + struct.pack("!QH", millis, 0)
            + struct.pack("!BBH", 4, 3, len(sct_sig))
            + sct_sig
        )
        sct_list = struct.pack("!HH", len(sct) + 2, len(sct)) + sct
        ext = x509.UnrecognizedExtension(
            ExtensionOID.PRECERT_SIGNED_CERTIFICATE_TIMESTAMPS, asn1.encode_der(sct_list)
        )
        return builder.add_extension(ext, False).sign(self.ca_key, hashes.SHA256())

    def bundle(self, artifact: bytes, *, identity: str, issuer: str) -> bytes:
        """A v0.3 bundle: ``artifact`` signed by a fresh key certified for ``identity``,
        logged as a hashedrekord entry with a signed promise and checkpoint."""
        key = ec.generate_private_key(ec.SECP256R1())
        cert = self._leaf(key, identity, issuer)
        digest = hashlib.sha256(artifact).digest()
        signature = key.sign(artifact, ec.ECDSA(hashes.SHA256()))
        body = rfc8785.dumps(
            {
                "apiVersion": "0.0.1",
                "kind": "hashedrekord",
                "spec": {
                    "data": {"hash": {"algorithm": "sha256", "value": digest.hex()}},
                    "signature": {
                        "content": _b64(signature),
                        "publicKey": {
                            "content": _b64(cert.public_bytes(serialization.Encoding.PEM))
                        },
                    },
                },
            }
        )
        log_id = hashlib.sha256(_spki(self.log_key)).digest()
        integrated = int(NOW.timestamp())
        promise = rfc8785.dumps(
            {
                "body": _b64(body),
                "integratedTime": integrated,
                "logID": log_id.hex(),
                "logIndex": 0,
            }
        )
        # A one-entry Merkle tree: its root is the leaf hash (RFC 6962 leaf prefix 0x00).
        leaf = hashlib.sha256(b"\x00" + body).digest()
        note = f"{LOG_ORIGIN}\n1\n{_b64(leaf)}\n"
        note_sig = self.log_key.sign(note.encode(), ec.ECDSA(hashes.SHA256()))
        checkpoint = f"{note}\n\u2014 {LOG_ORIGIN} {_b64(log_id[:4] + note_sig)}\n"
        doc = {
            "mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
            "verificationMaterial": {
                "certificate": {"rawBytes": _b64(cert.public_bytes(serialization.Encoding.DER))},
                "tlogEntries": [
                    {
                        "logIndex": "0",
                        "logId": {"keyId": _b64(log_id)},
                        "kindVersion": {"kind": "hashedrekord", "version": "0.0.1"},
                        "integratedTime": str(integrated),
                        "inclusionPromise": {
                            "signedEntryTimestamp": _b64(
                                self.log_key.sign(promise, ec.ECDSA(hashes.SHA256()))
                            )
                        },
                        "inclusionProof": {
                            "logIndex": "0",
                            "rootHash": _b64(leaf),
                            "treeSize": "1",
                            "hashes": [],
                            "checkpoint": {"envelope": checkpoint},
                        },
                        "canonicalizedBody": _b64(body),
                    }
                ],
            },
            "messageSignature": {
                "messageDigest": {"algorithm": "SHA2_256", "digest": _b64(digest)},
                "signature": _b64(signature),
            },
        }
        return json.dumps(doc, indent=2).encode()
