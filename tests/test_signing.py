"""Signed components: keygen and sign, the require / verify-if-present / ignore policy,
trusted keys per plugin and per pack, grants-file keys, the audit log, Sigstore refusals."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import sysconfig
import textwrap
from collections.abc import Callable
from pathlib import Path

import pluggy
import pytest

from airssys_plugins import (
    PluginHost,
    PublicKey,
    ReloadError,
    SignatureError,
    Signatures,
    SigstoreIdentity,
    TrustedKeys,
    discover_plugins,
)
from airssys_plugins.cli import main as cli
from airssys_plugins.policy.decisions import GrantsError
from airssys_plugins.policy.sigfiles import Signature, payload
from airssys_plugins.policy.signing import DOMAIN

from .demo import PACKAGE
from .sigstore_instance import SigstoreInstance
from .test_pack import PACK, _build_pack_module, _run

Demo = Callable[..., Path]
ROOT = Path(__file__).resolve().parent.parent


def keygen(path: Path) -> PublicKey:
    """A key pair made by the CLI: PATH.key and PATH.pub."""
    assert cli(["keygen", str(path)]) == 0
    return PublicKey.from_file(path.with_name(path.name + ".pub"))


def plugin_dir(root: Path, name: str, wasm: Path, extra: str = "") -> Path:
    d = root / name
    d.mkdir(parents=True, exist_ok=True)
    shutil.copy(wasm, d / f"{name}.wasm")
    (d / "plugin.toml").write_text(f'name = "{name}"\nversion = "1.0.0"\n{extra}')
    return d


def sign(plugin: Path, key: Path) -> Path:
    assert cli(["sign", str(plugin), "--key", str(key)]) == 0
    wasm = next(plugin.glob("*.wasm")) if plugin.is_dir() else plugin
    return wasm.with_name(wasm.name + ".sig")


def load(
    pm: pluggy.PluginManager, root: Path, signatures: Signatures | str | Path
) -> tuple[PluginHost, object]:
    host = PluginHost(pm, package=PACKAGE, signatures=signatures)
    found = discover_plugins("demo", [root], user_dirs=False, site_dirs=False, packs=False)
    return host, host.load_plugins(found)


def test_keygen_writes_a_private_key_only_its_owner_reads(tmp_path: Path) -> None:
    """keygen writes PATH.key (0600, PEM) and PATH.pub, refuses to overwrite, --force replaces."""
    public = keygen(tmp_path / "keys" / "alice")
    private = tmp_path / "keys" / "alice.key"
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert private.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    assert (tmp_path / "keys" / "alice.pub").read_text().startswith(str(public))
    before = private.read_bytes()
    assert cli(["keygen", str(tmp_path / "keys" / "alice")]) == 1
    assert private.read_bytes() == before
    assert cli(["keygen", str(tmp_path / "keys" / "alice"), "--force"]) == 0
    assert private.read_bytes() != before
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert PublicKey.from_file(tmp_path / "keys" / "alice.pub") != public


def test_signed_payload_is_domain_separated_and_names_everything() -> None:
    """The payload starts with the domain prefix and binds the name and both digests."""
    data = payload("shout", "a" * 64, "b" * 64)
    assert data.startswith(DOMAIN)
    body = json.loads(data[len(DOMAIN) :])
    assert body == {"plugin": "shout", "component_sha256": "a" * 64, "manifest_sha256": "b" * 64}
    assert payload("shout", "a" * 64, None) != payload("shout", "a" * 64, "b" * 64)
    assert payload("shout", "a" * 64, None) != payload("shou", "a" * 64, None)
    with pytest.raises(ValueError, match="64 lowercase hex"):
        payload("shout", "A" * 64, None)


def test_require_loads_a_plugin_signed_by_its_trusted_key(
    demo: Demo, pm: pluggy.PluginManager, tmp_path: Path
) -> None:
    """Under require a plugin signed by a key trusted for it loads; the audit log says so."""
    public = keygen(tmp_path / "alice")
    d = plugin_dir(tmp_path / "plugins", "adder", demo(k=2, funcs=["add-one"]))
    sign(d, tmp_path / "alice.key")
    rules = Signatures("require", TrustedKeys(plugins={"adder": [public]}))
    host, report = load(pm, tmp_path / "plugins", rules)
    with host:
        assert list(report.loaded) == ["adder"]  # type: ignore[attr-defined]
        assert pm.hook.add_one(x=1) == [3]
        [event] = host.audit.events(kind="signature")
        assert event.plugin == "adder"
        assert event.fields["outcome"] == "ok"
        assert event.fields["key"] == public.key_id
        assert host.policy.signatures == rules


def test_unsigned_plugin_is_refused_before_it_compiles(
    pm: pluggy.PluginManager, tmp_path: Path
) -> None:
    """An unsigned component under require is a SignatureError naming plugin, keys and fix,
    raised before compiling: even bytes that are no WebAssembly get this error."""
    public = keygen(tmp_path / "alice")
    d = tmp_path / "plugins" / "adder"
    d.mkdir(parents=True)
    (d / "adder.wasm").write_bytes(b"not webassembly at all")
    (d / "plugin.toml").write_text('name = "adder"\n')
    host, report = load(pm, tmp_path / "plugins", Signatures("require", TrustedKeys([public])))
    with host:
        [broken] = report.broken  # type: ignore[attr-defined]
        error = broken.error
        assert isinstance(error, SignatureError)
        assert error.outcome == "missing"
        assert error.plugin == "adder"
        assert error.keys == (public.key_id,)
        message = str(error)
        assert "plugin 'adder'" in message
        assert public.key_id in message
        assert "airssys-plugins sign" in message
        assert str(d / "adder.wasm.sig") in message
        outcomes = [(e.kind, e.fields.get("outcome")) for e in host.audit.events(plugin="adder")]
        assert outcomes == [("signature", "missing"), ("refuse", None)]


@pytest.mark.parametrize(
    ("tamper", "changed"),
    [
        ("widen-manifest", "the manifest changed"),
        ("swap-component", "the component changed"),
        ("rename-plugin", "the plugin name and the manifest changed"),
    ],
    ids=["widen-manifest", "swap-component", "rename-plugin"],
)
def test_any_change_after_signing_breaks_the_signature(
    demo: Demo, pm: pluggy.PluginManager, tmp_path: Path, tamper: str, changed: str
) -> None:
    """Widening the manifest's capabilities, swapping the component or reusing a signature
    for another plugin name is refused as a bad signature."""
    public = keygen(tmp_path / "alice")
    root = tmp_path / "plugins"
    d = plugin_dir(root, "adder", demo(k=2, funcs=["add-one"]))
    sig = sign(d, tmp_path / "alice.key")
    name = "adder"
    if tamper == "widen-manifest":
        with (d / "plugin.toml").open("a") as f:
            f.write('[capabilities]\nenv = ["HOME"]\n')
    elif tamper == "swap-component":
        shutil.copy(demo(k=5, funcs=["add-one"]), d / "adder.wasm")
    else:  # the same component and signature under another name
        name = "other"
        other = plugin_dir(root, name, d / "adder.wasm")
        shutil.copy(sig, other / "other.wasm.sig")
        shutil.rmtree(d)
    host, report = load(pm, root, Signatures("require", TrustedKeys([public])))
    with host:
        [broken] = report.broken  # type: ignore[attr-defined]
        assert broken.name == name
        assert isinstance(broken.error, SignatureError)
        assert broken.error.outcome == "bad"
        assert changed in str(broken.error)
        assert public.key_id in str(broken.error)
        assert pm.get_plugin(name) is None
        [event] = host.audit.events(kind="signature")
        assert event.fields["outcome"] == "bad"


def test_keys_are_trusted_only_for_what_they_are_named_for(
    demo: Demo, pm: pluggy.PluginManager, tmp_path: Path
) -> None:
    """A valid signature by a key trusted for another plugin (or none) is untrusted."""
    alice = keygen(tmp_path / "alice")
    mallory = keygen(tmp_path / "mallory")
    root = tmp_path / "plugins"
    sign(plugin_dir(root, "adder", demo(k=2, funcs=["add-one"])), tmp_path / "mallory.key")
    rules = Signatures("require", TrustedKeys(plugins={"adder": [alice], "other": [mallory]}))
    host, report = load(pm, root, rules)
    with host:
        [broken] = report.broken  # type: ignore[attr-defined]
        assert isinstance(broken.error, SignatureError)
        assert broken.error.outcome == "untrusted"
        assert mallory.key_id in str(broken.error)  # the key that signed it
        assert broken.error.keys == (alice.key_id,)  # the keys tried
        assert "signed-by in [plugins.adder]" in str(broken.error)
    with PluginHost(pm, package=PACKAGE, signatures=Signatures("require")) as host:
        found = discover_plugins("demo", [root], user_dirs=False, site_dirs=False, packs=False)
        [broken] = host.load_plugins(found).broken
        assert isinstance(broken.error, SignatureError)
        assert broken.error.outcome == "untrusted"
        assert "no key is trusted for this plugin" in str(broken.error)


@pytest.mark.parametrize(
    "content",
    [b"", b"{not json", b'{"format": "something-else/1"}', "signature-of-other-format"],
    ids=["empty", "not-json", "other-format", "bad-base64"],
)
def test_a_garbled_signature_file_is_malformed(
    demo: Demo, pm: pluggy.PluginManager, tmp_path: Path, content: bytes | str
) -> None:
    """A signature file that is not one is refused as malformed, also under verify-if-present."""
    public = keygen(tmp_path / "alice")
    root = tmp_path / "plugins"
    d = plugin_dir(root, "adder", demo(k=2, funcs=["add-one"]))
    sig = sign(d, tmp_path / "alice.key")
    if isinstance(content, str):
        doc = json.loads(sig.read_text())
        doc["signature"] = "!!not base64!!"
        content = json.dumps(doc).encode()
    sig.write_bytes(content)
    host, report = load(pm, root, Signatures("verify-if-present", TrustedKeys([public])))
    with host:
        [broken] = report.broken  # type: ignore[attr-defined]
        assert isinstance(broken.error, SignatureError)
        assert broken.error.outcome == "malformed"
        assert "is not a valid signature file" in str(broken.error)


def test_a_signature_path_that_is_no_file_is_refused_unread(
    demo: Demo, pm: pluggy.PluginManager, tmp_path: Path
) -> None:
    """A FIFO (or directory) where the signature should be is malformed, without blocking."""
    public = keygen(tmp_path / "alice")
    root = tmp_path / "plugins"
    d = plugin_dir(root, "adder", demo(k=2, funcs=["add-one"]))
    os.mkfifo(d / "adder.wasm.sig")  # opening it for reading would block forever
    (plugin_dir(root, "other", demo(k=3, funcs=["add-one"])) / "other.wasm.sig").mkdir()
    host, report = load(pm, root, Signatures("require", TrustedKeys([public])))
    with host:
        assert sorted(b.name for b in report.broken) == ["adder", "other"]  # type: ignore[attr-defined]
        for entry in report.broken:  # type: ignore[attr-defined]
            assert isinstance(entry.error, SignatureError)
            assert entry.error.outcome == "malformed"
            assert "is not a regular file" in str(entry.error)
        outcomes = [e.fields["outcome"] for e in host.audit.events(kind="signature")]
        assert outcomes == ["malformed", "malformed"]


def test_verify_if_present_loads_unsigned_but_checks_signed(
    demo: Demo, pm: pluggy.PluginManager, tmp_path: Path
) -> None:
    """verify-if-present loads an unsigned plugin (audited as missing) and refuses a bad one."""
    public = keygen(tmp_path / "alice")
    root = tmp_path / "plugins"
    plugin_dir(root, "adder", demo(k=2, funcs=["add-one"]))
    signed = plugin_dir(root, "other", demo(k=3, funcs=["add-one"]))
    sign(signed, tmp_path / "alice.key")
    shutil.copy(demo(k=4, funcs=["add-one"]), signed / "other.wasm")
    host, report = load(pm, root, Signatures("verify-if-present", TrustedKeys([public])))
    with host:
        assert list(report.loaded) == ["adder"]  # type: ignore[attr-defined]
        assert [b.name for b in report.broken] == ["other"]  # type: ignore[attr-defined]
        outcomes = {e.plugin: e.fields["outcome"] for e in host.audit.events(kind="signature")}
        assert outcomes == {"adder": "missing", "other": "bad"}


def test_ignore_checks_nothing(demo: Demo, pm: pluggy.PluginManager, tmp_path: Path) -> None:
    """Under ignore (the default) even a garbage signature file is not read."""
    root = tmp_path / "plugins"
    d = plugin_dir(root, "adder", demo(k=2, funcs=["add-one"]))
    (d / "adder.wasm.sig").write_bytes(b"garbage")
    host, report = load(pm, root, Signatures())
    with host:
        assert list(report.loaded) == ["adder"]  # type: ignore[attr-defined]
        assert host.audit.events(kind="signature") == []


def test_a_bare_wasm_is_signed_without_a_manifest(
    demo: Demo, pm: pluggy.PluginManager, tmp_path: Path
) -> None:
    """A bare .wasm's signature has no manifest digest and verifies as such."""
    public = keygen(tmp_path / "alice")
    root = tmp_path / "plugins"
    root.mkdir()
    wasm = shutil.copy(demo(k=2, funcs=["add-one"]), root / "adder.wasm")
    sig = sign(Path(wasm), tmp_path / "alice.key")
    assert Signature.parse(sig.read_bytes()).manifest_sha256 is None
    host, report = load(pm, root, Signatures("require", TrustedKeys([public])))
    with host:
        assert list(report.loaded) == ["adder"]  # type: ignore[attr-defined]


def test_grants_file_names_the_policy_and_keys(
    demo: Demo, pm: pluggy.PluginManager, tmp_path: Path
) -> None:
    """[signatures] policy and signed-by in [plugins.<name>] of a grants file apply to a
    host given grants= that file; the plugin's grants still apply."""
    keygen(tmp_path / "keys" / "alice")
    root = tmp_path / "plugins"
    adder = plugin_dir(
        root, "adder", demo(k=2, funcs=["add-one"]), '[capabilities]\nenv = ["LANG"]\n'
    )
    plugin_dir(root, "other", demo(k=3, funcs=["add-one"]))
    sign(adder, tmp_path / "keys" / "alice.key")
    grants = tmp_path / "grants.toml"
    grants.write_text(
        textwrap.dedent(
            """
            [signatures]
            policy = "require"

            [plugins.adder]
            env = ["LANG"]
            signed-by = ["keys/alice.pub"]
            """
        )
    )
    with PluginHost(pm, package=PACKAGE, grants=grants) as host:
        found = discover_plugins("demo", [root], user_dirs=False, site_dirs=False, packs=False)
        report = host.load_plugins(found)
        assert list(report.loaded) == ["adder"]
        assert report["adder"].plugin is not None
        assert report["adder"].plugin.capabilities.env == {"LANG"}
        assert isinstance(report["other"].error, SignatureError)
        assert host.policy.signatures.policy == "require"


def test_grants_file_policy_defaults_follow_its_keys(tmp_path: Path) -> None:
    """A grants file naming keys but no policy means verify-if-present; one naming
    neither means ignore, and its grants still read as before."""
    key = PublicKey(bytes(range(32)))
    keyed = tmp_path / "keyed.toml"
    keyed.write_text(f'[signatures.packs]\n"Textpipe_Reverse" = ["{key}"]\n')
    rules = Signatures.from_grants_file(keyed)
    assert rules.policy == "verify-if-present"
    assert rules.keys.for_plugin("reverse", pack="textpipe-reverse") == (key,)
    assert rules.keys.for_plugin("reverse") == ()
    plain = tmp_path / "plain.toml"
    plain.write_text('[plugins.shout]\ninterfaces = ["log"]\n')
    assert Signatures.from_grants_file(plain) == Signatures()


def test_grants_file_signature_problems_are_reported_together(tmp_path: Path) -> None:
    """Every problem of the signature tables is one GrantsError naming file and field."""
    grants = tmp_path / "grants.toml"
    grants.write_text(
        textwrap.dedent(
            """
            [signatures]
            policy = "always"
            keys = ["ed25519:???", 3]
            colour = "red"

            [plugins.adder]
            signed-by = ["missing.pub"]
            """
        )
    )
    with pytest.raises(GrantsError) as info:
        Signatures.from_grants_file(grants)
    fields = sorted(p.field for p in info.value.problems)
    assert fields == [
        "plugins.adder.signed-by[0]",
        "signatures.colour",
        "signatures.keys[0]",
        "signatures.keys[1]",
        "signatures.policy",
    ]
    assert str(grants) in str(info.value)


def test_require_without_cryptography_names_the_extra(demo: Demo, tmp_path: Path) -> None:
    """Without cryptography, import and the ignore policy work; asking for verification says
    at once which extra to install."""
    wasm = demo(k=2, funcs=["add-one"])
    d = plugin_dir(tmp_path / "plugins", "adder", wasm)
    (d / "adder.wasm.sig").write_text("{}")
    script = textwrap.dedent(
        f"""
        import sys
        sys.modules["cryptography"] = None  # as if it were not installed
        import pluggy
        from airssys_plugins import PluginHost, Signatures, TrustedKeys, PublicKey, discover_plugins
        from tests.demo import DemoHooks, PACKAGE
        pm = pluggy.PluginManager("demo")
        pm.add_hookspecs(DemoHooks)
        found = discover_plugins("demo", [{str(tmp_path / "plugins")!r}], user_dirs=False,
                                 site_dirs=False, packs=False)
        with PluginHost(pm, package=PACKAGE) as host:
            print("ignore:", sorted(host.load_plugins(found).loaded))
        key = PublicKey(bytes(32))
        try:
            Signatures("require", TrustedKeys([key]))
        except ImportError as exc:
            print("require:", type(exc).__name__, exc)
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == "ignore: ['adder']"
    assert lines[1].startswith("require: SigningUnavailable")
    assert "pip install 'airssys-plugins[signing]'" in lines[1]
    assert "cryptography" in lines[1]


def test_sign_cli_payload_only_writes_the_signed_bytes(demo: Demo, tmp_path: Path) -> None:
    """--payload-only writes what a signature signs (for sigstore sign)."""
    d = plugin_dir(tmp_path, "adder", demo(k=2, funcs=["add-one"]))
    out = tmp_path / "payload.bin"
    assert cli(["sign", str(d), "--payload-only", "-o", str(out)]) == 0
    data = out.read_bytes()
    assert data.startswith(DOMAIN)
    assert json.loads(data[len(DOMAIN) :])["plugin"] == "adder"


def test_sign_cli_refuses_a_broken_plugin_and_a_bad_key(
    demo: Demo, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """sign reports a missing component or an unusable key as a message, exit 1."""
    d = plugin_dir(tmp_path, "adder", demo(k=2, funcs=["add-one"]))
    (tmp_path / "bad.key").write_text("not a key")
    assert cli(["sign", str(d), "--key", str(tmp_path / "bad.key")]) == 1
    assert "is not an unencrypted PEM private key" in capsys.readouterr().err
    (d / "adder.wasm").unlink()
    assert cli(["sign", str(d), "--key", str(tmp_path / "bad.key")]) == 1
    assert "does not exist" in capsys.readouterr().err
    assert not (d / "adder.wasm.sig").exists()


# -- Sigstore ---------------------------------------------------------------------------------


def _sigstore_rules() -> Signatures:
    return Signatures(
        "require", sigstore=SigstoreIdentity("dev@example.com", "https://issuer.example.com")
    )


def test_sigstore_missing_bundle_under_require(
    demo: Demo, pm: pluggy.PluginManager, tmp_path: Path
) -> None:
    """With a Sigstore identity configured and neither signature nor bundle: missing."""
    plugin_dir(tmp_path / "plugins", "adder", demo(k=2, funcs=["add-one"]))
    host, report = load(pm, tmp_path / "plugins", _sigstore_rules())
    with host:
        [broken] = report.broken  # type: ignore[attr-defined]
        assert isinstance(broken.error, SignatureError)
        assert broken.error.outcome == "missing"


@pytest.mark.parametrize(
    "bundle",
    [b"{not json", b'{"mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json"}'],
    ids=["not-json", "empty-bundle"],
)
def test_sigstore_garbled_bundle_is_malformed(
    demo: Demo, pm: pluggy.PluginManager, tmp_path: Path, bundle: bytes
) -> None:
    """A bundle that sigstore cannot parse is refused as malformed, naming the identity."""
    d = plugin_dir(tmp_path / "plugins", "adder", demo(k=2, funcs=["add-one"]))
    (d / "adder.wasm.sigstore.json").write_bytes(bundle)
    host, report = load(pm, tmp_path / "plugins", _sigstore_rules())
    with host:
        [broken] = report.broken  # type: ignore[attr-defined]
        assert isinstance(broken.error, SignatureError)
        assert broken.error.outcome == "malformed"
        assert "is not a valid Sigstore bundle" in str(broken.error)
        assert "dev@example.com" in str(broken.error)
        [event] = host.audit.events(kind="signature")
        assert event.fields["outcome"] == "malformed"


def test_sigstore_bundle_without_identity_configured_is_not_trusted(
    demo: Demo, pm: pluggy.PluginManager, tmp_path: Path
) -> None:
    """A bundle beside a component does not count when the host configures no identity."""
    public = PublicKey(bytes(32))
    d = plugin_dir(tmp_path / "plugins", "adder", demo(k=2, funcs=["add-one"]))
    (d / "adder.wasm.sigstore.json").write_text("{}")
    host, report = load(pm, tmp_path / "plugins", Signatures("require", TrustedKeys([public])))
    with host:
        [broken] = report.broken  # type: ignore[attr-defined]
        assert isinstance(broken.error, SignatureError)
        assert broken.error.outcome == "missing"
        assert "configures no Sigstore identity" in str(broken.error)


def test_public_key_text_round_trips_and_rejects_other_kinds(tmp_path: Path) -> None:
    """ed25519:<base64> parses back to the same key; other texts are SigningKeyErrors."""
    key = PublicKey(bytes(range(32)))
    assert PublicKey.parse(str(key) + "  a comment") == key
    for bad in ("rsa:AAAA", "ed25519:@@@", "ed25519:AAAA", ""):
        with pytest.raises(ValueError, match="key"):
            PublicKey.parse(bad)
    (tmp_path / "k.pub").write_text(str(key))
    assert PublicKey.of("k.pub", base=tmp_path) == key


# -- Sigstore bundles, verified offline against a test instance's trusted root -------------------

IDENTITY = "dev@example.com"
ISSUER = "https://issuer.example.com"


@pytest.fixture(scope="module")
def sigstore_instance() -> SigstoreInstance:
    return SigstoreInstance()


def sigstore_signed(
    instance: SigstoreInstance, plugin: Path, tmp_path: Path, *, identity: str = IDENTITY
) -> Path:
    """A Sigstore bundle over the plugin's payload (what `sigstore sign` would make of
    `airssys-plugins sign --payload-only`), beside its component."""
    out = tmp_path / f"{plugin.name}.payload"
    assert cli(["sign", str(plugin), "--payload-only", "-o", str(out)]) == 0
    bundle = plugin / f"{plugin.name}.wasm.sigstore.json"
    bundle.write_bytes(instance.bundle(out.read_bytes(), identity=identity, issuer=ISSUER))
    return bundle


def sigstore_rules(instance: SigstoreInstance, tmp_path: Path) -> Signatures:
    root = tmp_path / "trusted_root.json"
    root.write_text(instance.trusted_root())
    return Signatures("require", sigstore=SigstoreIdentity(IDENTITY, ISSUER, root))


def test_sigstore_bundle_verifies_offline(
    demo: Demo, pm: pluggy.PluginManager, tmp_path: Path, sigstore_instance: SigstoreInstance
) -> None:
    """A bundle by the configured identity under the configured root loads the plugin."""
    d = plugin_dir(tmp_path / "plugins", "adder", demo(k=2, funcs=["add-one"]))
    sigstore_signed(sigstore_instance, d, tmp_path)
    host, report = load(pm, tmp_path / "plugins", sigstore_rules(sigstore_instance, tmp_path))
    with host:
        assert list(report.loaded) == ["adder"]  # type: ignore[attr-defined]
        [event] = host.audit.events(kind="signature")
        assert event.fields["outcome"] == "ok"
        assert IDENTITY in event.fields["key"]


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("widened-manifest", "Bundle message digest mismatch"),
        ("other-identity", "SANs do not match"),
        ("other-instance", "certificate"),
    ],
    ids=["widened-manifest", "other-identity", "other-instance"],
)
def test_sigstore_bundle_for_something_else_is_refused(
    demo: Demo,
    pm: pluggy.PluginManager,
    tmp_path: Path,
    sigstore_instance: SigstoreInstance,
    case: str,
    reason: str,
) -> None:
    """A bundle over another payload, by another identity, or from another Sigstore
    instance is a bad signature."""
    d = plugin_dir(tmp_path / "plugins", "adder", demo(k=2, funcs=["add-one"]))
    signer = SigstoreInstance() if case == "other-instance" else sigstore_instance
    identity = "mallory@example.com" if case == "other-identity" else IDENTITY
    sigstore_signed(signer, d, tmp_path, identity=identity)
    if case == "widened-manifest":
        with (d / "plugin.toml").open("a") as f:
            f.write('[capabilities]\nenv = ["HOME"]\n')
    host, report = load(pm, tmp_path / "plugins", sigstore_rules(sigstore_instance, tmp_path))
    with host:
        [broken] = report.broken  # type: ignore[attr-defined]
        assert isinstance(broken.error, SignatureError)
        assert broken.error.outcome == "bad"
        assert reason.lower() in str(broken.error).lower()
        assert IDENTITY in str(broken.error)


def test_grants_file_configures_sigstore(
    demo: Demo, pm: pluggy.PluginManager, tmp_path: Path, sigstore_instance: SigstoreInstance
) -> None:
    """[signatures.sigstore] names identity, issuer and a trusted root beside the file."""
    d = plugin_dir(tmp_path / "plugins", "adder", demo(k=2, funcs=["add-one"]))
    sigstore_signed(sigstore_instance, d, tmp_path)
    (tmp_path / "root.json").write_text(sigstore_instance.trusted_root())
    grants = tmp_path / "grants.toml"
    grants.write_text(
        textwrap.dedent(
            f"""
            [signatures]
            policy = "require"
            [signatures.sigstore]
            identity = "{IDENTITY}"
            issuer = "{ISSUER}"
            trusted-root = "root.json"
            """
        )
    )
    rules = Signatures.from_grants_file(grants)
    assert rules.sigstore == SigstoreIdentity(IDENTITY, ISSUER, tmp_path / "root.json")
    host, report = load(pm, tmp_path / "plugins", grants)
    with host:
        assert list(report.loaded) == ["adder"]  # type: ignore[attr-defined]


# -- component packs: the signature travels in the wheel, found through its RECORD ---------------


@pytest.fixture(scope="module")
def signed_pack_venv(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, PublicKey]:
    """A venv with a textpipe-reverse wheel whose component was signed before the build."""
    tmp = tmp_path_factory.mktemp("signed-pack")
    assert cli(["keygen", str(tmp / "pack")]) == 0
    public = PublicKey.from_file(tmp / "pack.pub")
    staging = tmp / "staging"
    shutil.copytree(PACK, staging, ignore=shutil.ignore_patterns("guest", "__pycache__", "*.wasm"))
    plugin = staging / "textpipe_reverse" / "reverse"
    shutil.copy(_build_pack_module().build_component(), plugin / "reverse.wasm")
    assert cli(["sign", str(plugin), "--key", str(tmp / "pack.key")]) == 0
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
         "--no-index", "--quiet", "-w", str(tmp / "dist"), str(staging)],
        check=True,
    )  # fmt: skip
    [wheel] = (tmp / "dist").glob("textpipe_reverse-*.whl")
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps",
         "--no-index", "--quiet", str(wheel)],
        check=True,
    )  # fmt: skip
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True, capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip
    here = sysconfig.get_paths()["purelib"]
    (Path(site) / "host_packages.pth").write_text(f"import site; site.addsitedir({here!r})\n")
    return python, public


PACK_SCRIPT = """
import json, sys, pluggy
from pathlib import Path
from airssys_plugins import PluginHost, PublicKey, Signatures, TrustedKeys, discover_plugins
from hookspecs.textpipe import PACKAGE, TextHooks

key = PublicKey.parse(sys.argv[1])
other = PublicKey(bytes(32))
[source] = discover_plugins("textpipe", user_dirs=False, site_dirs=False)
sig, bundle = source.signature_paths()
out = {"sig": sig.name if sig else None, "bundle": bundle}
for label, keys in [("pack key", {"textpipe-reverse": [key]}), ("other pack", {"other": [key]}),
                    ("wrong key", {"textpipe-reverse": [other]})]:
    pm = pluggy.PluginManager("textpipe")
    pm.add_hookspecs(TextHooks)
    rules = Signatures("require", TrustedKeys(packs=keys))
    with PluginHost(pm, package=PACKAGE, signatures=rules) as host:
        report = host.load_plugins([source])
        out[label] = report["reverse"].error.outcome if report.broken else pm.hook.transform(text="ab")
print(json.dumps(out))
"""


def test_signed_pack_verifies_from_its_wheel(signed_pack_venv: tuple[Path, PublicKey]) -> None:
    """The pack's reverse.wasm.sig is found through the RECORD and checked against the keys
    trusted for that distribution; no pack code is imported."""
    python, public = signed_pack_venv
    proc = _run(python, "-c", PACK_SCRIPT, str(public))
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result == {
        "sig": "reverse.wasm.sig",
        "bundle": None,
        "pack key": ["ba"],
        "other pack": "untrusted",
        "wrong key": "untrusted",
    }


def test_a_signature_removed_from_an_installed_pack_is_missing(
    signed_pack_venv: tuple[Path, PublicKey],
) -> None:
    """The RECORD lists the signature; deleting the file makes the plugin unsigned."""
    python, public = signed_pack_venv
    site = Path(
        _run(
            python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"
        ).stdout.strip()
    )
    sig = site / "textpipe_reverse" / "reverse" / "reverse.wasm.sig"
    saved = sig.read_bytes()
    sig.unlink()
    try:
        proc = _run(python, "-c", PACK_SCRIPT, str(public))
    finally:
        sig.write_bytes(saved)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["pack key"] == "missing"


# -- host.load() and host.reload() verify too ------------------------------------------------


def _require(public: PublicKey) -> Signatures:
    return Signatures("require", TrustedKeys(plugins={"adder": [public]}))


def test_load_of_a_path_verifies_its_signature_and_manifest(
    demo: Demo, pm: pluggy.PluginManager, tmp_path: Path
) -> None:
    """Under require host.load(path) checks the .sig beside it, over the plugin.toml beside
    it; a bare signed .wasm loads too; an unsigned one is refused before it compiles."""
    public = keygen(tmp_path / "alice")
    d = plugin_dir(tmp_path / "plugins", "adder", demo(k=2, funcs=["add-one"]))
    sign(d, tmp_path / "alice.key")
    bare = tmp_path / "bare" / "adder.wasm"
    bare.parent.mkdir()
    shutil.copy(demo(k=3, funcs=["add-one"]), bare)
    sign(bare, tmp_path / "alice.key")
    junk = tmp_path / "junk" / "adder.wasm"
    junk.parent.mkdir()
    junk.write_bytes(b"not webassembly at all")
    with PluginHost(pm, package=PACKAGE, signatures=_require(public)) as host:
        plugin = host.load(d / "adder.wasm")
        assert plugin.path == d / "adder.wasm"
        assert pm.hook.add_one(x=1) == [3]
        host.unload("adder")
        host.load(bare)
        assert pm.hook.add_one(x=1) == [4]
        host.unload("adder")
        with pytest.raises(SignatureError) as caught:
            host.load(junk)  # no parse error: refused before compiling
        assert caught.value.outcome == "missing"
        assert str(junk) + ".sig" in str(caught.value)
        outcomes = [e.fields["outcome"] for e in host.audit.events(kind="signature")]
        assert outcomes == ["ok", "ok", "missing"]


def test_load_of_a_path_refuses_a_component_changed_after_signing(
    demo: Demo, pm: pluggy.PluginManager, tmp_path: Path
) -> None:
    """A component swapped after signing, or loaded under another name, is refused as bad."""
    public = keygen(tmp_path / "alice")
    d = plugin_dir(tmp_path / "plugins", "adder", demo(k=2, funcs=["add-one"]))
    sign(d, tmp_path / "alice.key")
    rules = Signatures("require", TrustedKeys([public]))
    with PluginHost(pm, package=PACKAGE, signatures=rules) as host:
        with pytest.raises(SignatureError) as renamed:
            host.load(d / "adder.wasm", name="other")
        assert renamed.value.outcome == "bad"
        shutil.copy(demo(k=9, funcs=["add-one"]), d / "adder.wasm")
        with pytest.raises(SignatureError) as swapped:
            host.load(d / "adder.wasm")
        assert swapped.value.outcome == "bad"
        assert pm.hook.add_one(x=1) == []


def test_load_of_bytes_under_require_is_refused_unless_their_file_is_named(
    demo: Demo, pm: pluggy.PluginManager, tmp_path: Path
) -> None:
    """Bytes carry no signature: refused under require with how to load the signed file;
    bytes with path= are checked against the signature beside that file."""
    public = keygen(tmp_path / "alice")
    d = plugin_dir(tmp_path / "plugins", "adder", demo(k=2, funcs=["add-one"]))
    sign(d, tmp_path / "alice.key")
    data = (d / "adder.wasm").read_bytes()
    with PluginHost(pm, package=PACKAGE, signatures=_require(public)) as host:
        with pytest.raises(SignatureError) as caught:
            host.load(data, name="adder")
        error = caught.value
        assert error.outcome == "missing"
        assert error.plugin == "adder"
        assert "carry no signature" in str(error)
        assert "host.load('path/to/plugin.wasm')" in str(error)
        assert "path=" in str(error)
        with pytest.raises(SignatureError) as other_bytes:
            host.load(
                demo(k=5, funcs=["add-one"]).read_bytes(), name="adder", path=d / "adder.wasm"
            )
        assert other_bytes.value.outcome == "bad"
        host.load(data, name="adder", path=d / "adder.wasm")
        assert pm.hook.add_one(x=1) == [3]
        events = [(e.kind, e.fields.get("outcome")) for e in host.audit.events(plugin="adder")]
        assert events[:2] == [("signature", "missing"), ("refuse", None)]
        assert ("signature", "ok") in events


def test_load_of_bytes_under_verify_if_present_is_audited_unsigned(
    demo: Demo, pm: pluggy.PluginManager, tmp_path: Path
) -> None:
    """verify-if-present loads bytes (nothing to verify) and audits them as missing."""
    public = keygen(tmp_path / "alice")
    rules = Signatures("verify-if-present", TrustedKeys([public]))
    with PluginHost(pm, package=PACKAGE, signatures=rules) as host:
        host.load(demo(k=2, funcs=["add-one"]).read_bytes(), name="adder")
        assert pm.hook.add_one(x=1) == [3]
        [event] = host.audit.events(kind="signature")
        assert event.fields["outcome"] == "missing"
        assert "from bytes" in event.detail


def test_reload_verifies_the_new_version(
    demo: Demo, pm: pluggy.PluginManager, tmp_path: Path
) -> None:
    """host.reload(name) under require refuses an unsigned new version (the old one keeps
    serving), then takes it once signed; reload from bytes is refused."""
    public = keygen(tmp_path / "alice")
    d = plugin_dir(tmp_path / "plugins", "adder", demo(k=2, funcs=["add-one"]))
    sign(d, tmp_path / "alice.key")
    with PluginHost(pm, package=PACKAGE, signatures=_require(public)) as host:
        host.load(d / "adder.wasm")
        new = demo(k=7, funcs=["add-one"])
        shutil.copy(new, d / "adder.wasm")  # the old signature no longer matches
        with pytest.raises(ReloadError) as stale:
            host.reload("adder")
        assert isinstance(stale.value.__cause__, SignatureError)
        assert stale.value.__cause__.outcome == "bad"
        assert pm.hook.add_one(x=1) == [3]  # the old version keeps serving
        with pytest.raises(ReloadError) as from_bytes:
            host.reload("adder", new.read_bytes())
        assert isinstance(from_bytes.value.__cause__, SignatureError)
        assert "carry no signature" in str(from_bytes.value)
        sign(d, tmp_path / "alice.key")
        host.reload("adder")
        assert pm.hook.add_one(x=1) == [8]
