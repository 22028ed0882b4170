"""A component built by the Rust toolchain loads and runs like any other.

tests/guests/rust/lib.rs is compiled by a plain rustc for wasm32-unknown-unknown (Debian's
rustc + libstd-rust-dev-wasm32; ``bash scripts/test`` installs them) and componentized by
wasm-tools against the WIT the host generates from tests/rust_hooks.py: the same final
``wasm-tools component new`` step cargo-component performs. wit-bindgen is not reachable
offline, so the guest carries the canonical-ABI glue wit-bindgen would generate, written
by hand. Without the toolchain these tests fail; they never skip.

tests/guests/rust-wasi/lib.rs uses the standard library's files and environment through
WASI (wasm32-wasi, same Debian package), componentized with the WASI 0.2 reactor adapter
that ships in the jco npm package the JavaScript builds install.
"""

from __future__ import annotations

import os
import random
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pluggy
import pytest

from airssys_plugins import (
    Capabilities,
    Contract,
    FileGrant,
    Limits,
    PluginHost,
    PluginResultError,
)
from airssys_plugins.authoring.build import (
    JCO_VERSION,
    BuildError,
    ToolchainMissing,
    _jco,
    _run,
    _rustc,
    build_guest,
    find_tool,
    jco_dir,
)
from airssys_plugins.cli import main

from . import probe_hooks
from .rust_hooks import PACKAGE, Point, RustHooks, Summary, hookimpl

GUESTS = Path(__file__).resolve().parent / "guests"
GUEST = GUESTS / "rust"
CONTRACT = "tests.rust_hooks:RustHooks"
INSTALL_HINT = "`bash scripts/test` installs the guest toolchains."


@pytest.fixture(scope="session")
def rust_wasm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The Rust guest as a component, built once (and cached by content hash across runs,
    like every guest build) against the host's own WIT for the contract."""
    contract_wit = tmp_path_factory.mktemp("rust-wit") / "contract.wit"
    contract_wit.write_text(Contract.from_hookspecs(RustHooks, package=PACKAGE).wit(world="guest"))
    try:
        return build_guest(GUEST, wit_files=[contract_wit])
    except ToolchainMissing as exc:
        pytest.fail(f"{exc}\n{INSTALL_HINT}", pytrace=False)


class NativePlugin:
    """A Python plugin beside the Rust one, implementing some of the same hooks."""

    @hookimpl
    def transform(self, text: str) -> str:
        return text[::-1]

    @hookimpl
    def detect_language(self, text: str) -> str | None:
        return "en" if text.startswith("the ") else None

    @hookimpl
    def invert(self, data: bytes) -> bytes:
        return data


@pytest.fixture
def rust_pm() -> pluggy.PluginManager:
    pm = pluggy.PluginManager("rustguest")
    pm.add_hookspecs(RustHooks)
    return pm


@pytest.fixture
def rust_host(rust_pm: pluggy.PluginManager, rust_wasm: Path) -> Iterator[PluginHost]:
    rust_pm.register(NativePlugin(), name="native")
    with PluginHost(rust_pm, package=PACKAGE) as host:
        host.load(rust_wasm, name="rust")
        yield host


def inverted(data: bytes) -> bytes:
    return bytes(0xFF - b for b in reversed(data))


def test_strings_through_pluggy_next_to_a_python_plugin(
    rust_host: PluginHost, rust_pm: pluggy.PluginManager
) -> None:
    """Both plugins answer a plain hook; a firstresult hook takes the first non-none
    answer, from whichever language gives it."""
    assert sorted(rust_pm.hook.transform(text="grüße, welt")) == ["GRÜSSE, WELT!", "tlew ,eßürg"]
    assert sorted(rust_pm.hook.transform(text="")) == ["", "!"]
    assert rust_pm.hook.detect_language(text="der Hund") == "de"  # Rust: Some("de")
    assert rust_pm.hook.detect_language(text="the dog") == "en"  # Rust None, then Python
    assert rust_pm.hook.detect_language(text="le chien") is None
    assert list(rust_host.plugins) == ["rust"]


@pytest.mark.parametrize(
    "text",
    ["", "a", "\x00nul\x00", "ascii only", "ÿ€😀 and ä", "x" * 100_000],
    ids=["empty", "one", "nul", "ascii", "non-ascii", "100k"],
)
def test_string_round_trip(text: str, rust_host: PluginHost, rust_pm: pluggy.PluginManager) -> None:
    rust_pm.unregister(name="native")
    assert rust_pm.hook.transform(text=text) == [text.upper() + "!"]


def test_bytes_round_trip_with_random_bytes(
    rust_host: PluginHost, rust_pm: pluggy.PluginManager
) -> None:
    """``list<u8>`` both ways: empty, every byte value, and random bytes (0x80-0xff
    included), reversed and complemented by the guest and back again."""
    rust_pm.unregister(name="native")
    # the runtime's byte-buffer export carries them (Rust's empty Vec sits at address 1:
    # the shim must move it to an even one for the latin1 lift)
    (plugin,) = rust_host.plugins.values()
    assert [f for _, f in plugin.instance.image.byte_exports] == ["invert"]
    rng = random.Random(1234)
    samples = [b"", b"\x00", b"\xff", bytes(range(256))]
    samples += [rng.randbytes(n) for n in (1, 7, 255, 4096, 65_537, 1 << 20)]
    assert any(b >= 0x80 for b in samples[-1])
    for data in samples:
        (once,) = rust_pm.hook.invert(data=data)
        assert type(once) is bytes
        assert once == inverted(data)
        assert rust_pm.hook.invert(data=once) == [data]


def test_records_options_and_lists(rust_host: PluginHost, rust_pm: pluggy.PluginManager) -> None:
    """A record argument (flattened into four core parameters), a record result holding an
    option<string> (through the return area), and a list<string>."""
    hook = rust_pm.hook
    assert hook.describe(point=Point(x=-(2**31), y=2**31 - 1, label="ß")) == [
        "ß at (-2147483648, 2147483647)"
    ]
    assert hook.describe(point=Point(0, 0, "")) == [" at (0, 0)"]
    assert hook.summarize(text="a quick  brown\tfox") == [Summary(18, 4, "quick")]
    assert hook.summarize(text="Grüße aus Köln") == [Summary(14, 3, "Grüße")]
    assert hook.summarize(text=" \n ") == [Summary(3, 0, None)]
    assert hook.summarize(text="") == [Summary(0, 0, None)]
    assert hook.split_words(text=" ä  öü\tß\n") == [["ä", "öü", "ß"]]
    assert hook.split_words(text="") == [[]]
    assert hook.split_words(text="   ") == [[]]


def test_post_return_frees_results(rust_pm: pluggy.PluginManager, rust_wasm: Path) -> None:
    """The guest frees its arguments and, in the post-return functions, its results: 16
    round trips of 1 MiB (and 16 lists of 10,000 strings) fit in 8 MiB of linear memory."""
    with PluginHost(rust_pm, package=PACKAGE) as host:
        host.load(rust_wasm, name="rust", limits=Limits(memory=8 * 2**20))
        data = random.Random(5).randbytes(1 << 20)
        expected = inverted(data)
        words = " ".join(f"w{i}" for i in range(10_000))
        for _ in range(16):
            assert rust_pm.hook.invert(data=data) == [expected]
            assert len(rust_pm.hook.split_words(text=words)[0]) == 10_000
            assert rust_pm.hook.summarize(text=words)[0].longest == "w1000"


def test_inspect_and_validate(rust_wasm: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``inspect`` shows the Rust component's exports as WIT, and ``validate`` accepts it
    against the contract."""
    assert main(["inspect", str(rust_wasm)]) == 0
    out = capsys.readouterr().out
    assert "imports (0):" in out
    for line in [
        "interface test:rust/transform@1.0.0 {",
        "transform: func(text: string) -> string;",
        "invert: func(data: list<u8>) -> list<u8>;",
        "detect-language: func(text: string) -> option<string>;",
        "record point { x: s32, y: s32, label: string }",
        "record summary { chars: u32, words: u32, longest: option<string> }",
        "split-words: func(text: string) -> list<string>;",
    ]:
        assert line in out
    assert main(["validate", str(rust_wasm), "--contract", CONTRACT, "--package", PACKAGE]) == 0


def test_missing_rust_wasm_std_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A rustc without the wasm32 standard library (rustup's, often) does not count: the
    build names it and says what to install."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "rustc"
    fake.write_text(f"#!/bin/sh\necho {tmp_path / 'no-such-libdir'}\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_dir))
    monkeypatch.setattr("sys.executable", str(bin_dir / "python"))
    install = "apt-get install rustc libstd-rust-dev-wasm32"
    with pytest.raises(ToolchainMissing, match=re.escape(install)) as info:
        build_guest(GUEST, out_dir=tmp_path / "out")
    assert f"{fake} has no wasm32-unknown-unknown standard library" in str(info.value)
    assert isinstance(info.value, BuildError)


# ----------------------------------------------------------------------------- Rust std + WASI

WASI_HOOKS = ["read_file", "write_file", "get_env", "all_env"]


@pytest.fixture(scope="session")
def rust_wasi_wasm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tests/guests/rust-wasi as a component (built once per session: rustc takes ~1 s)."""
    out = tmp_path_factory.mktemp("rust-wasi")
    try:
        rustc = _rustc()
        wasm_tools = find_tool("wasm-tools")
        adapter = _jco(None).parents[1] / "lib" / "wasi_snapshot_preview1.reactor.wasm"
    except ToolchainMissing as exc:
        pytest.fail(f"{exc}\n{INSTALL_HINT}", pytrace=False)
    assert adapter.is_relative_to(jco_dir())
    assert adapter.is_file(), f"jco {JCO_VERSION} has no {adapter.name}"
    libdir = subprocess.run(
        [rustc, "--print", "target-libdir", "--target", "wasm32-wasi"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    crt = Path(libdir) / "self-contained"
    if not (crt / "crt1-reactor.o").is_file():
        pytest.fail(
            f"{rustc} has no wasm32-wasi standard library ({crt} lacks crt1-reactor.o); "
            f"install it with: apt-get install rustc libstd-rust-dev-wasm32\n{INSTALL_HINT}",
            pytrace=False,
        )
    contract = Contract.from_hookspecs(probe_hooks.ProbeHooks, package=probe_hooks.PACKAGE)
    (out / "contract.wit").write_text(contract.wit(world="guest", hooks=WASI_HOOKS))
    # A reactor, not the command rustc 1.63 links by default (see the guest's comment).
    rust_flags = ["--edition=2021", "--target=wasm32-wasi", "--crate-type=cdylib"]
    rust_flags += ["-Copt-level=2", "-Cstrip=debuginfo", "-Clink-self-contained=no"]
    rust_flags += ["-L", f"native={crt}", f"-Clink-arg={crt / 'crt1-reactor.o'}"]
    source = GUESTS / "rust-wasi" / "lib.rs"
    _run([rustc, *rust_flags, "-o", "core.wasm", str(source)], out, "rust-wasi")
    embed = ["component", "embed", "contract.wit", "core.wasm", "--world", "guest"]
    _run([wasm_tools, *embed, "-o", "embed.wasm"], out, "rust-wasi")
    adapt = ["--adapt", f"wasi_snapshot_preview1={adapter}"]
    _run(
        [wasm_tools, "component", "new", "embed.wasm", *adapt, "-o", "rust-wasi.wasm"],
        out,
        "rust-wasi",
    )
    return out / "rust-wasi.wasm"


def test_rust_std_reads_granted_files_and_env_through_wasi(
    rust_wasi_wasm: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """std::fs and std::env in the Rust guest see exactly what the host grants: a
    read-only directory, the plugin's data directory, one environment variable."""
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "note.txt").write_text("héllo from the host")
    monkeypatch.setenv("RUST_GUEST_ALLOWED", "fine")
    monkeypatch.setenv("RUST_GUEST_CANARY", "s3cr3t")
    requests = Capabilities(
        env=["RUST_GUEST_ALLOWED"],
        filesystem=[FileGrant("/shared", str(shared), "ro"), FileGrant("/data", "data", "rw")],
    )
    pm = pluggy.PluginManager("probe")
    pm.add_hookspecs(probe_hooks.ProbeHooks)
    with PluginHost(pm, package=probe_hooks.PACKAGE, data_dir=tmp_path / "data") as host:
        host.grants["rust-wasi"] = requests
        host.load(rust_wasi_wasm, name="rust-wasi", requests=requests)
        assert pm.hook.read_file(path="/shared/note.txt") == ["héllo from the host"]
        for path in ["/shared/missing.txt", "/etc/passwd", "/shared/../secret"]:
            with pytest.raises(PluginResultError, match=re.escape(path)):
                pm.hook.read_file(path=path)
        assert pm.hook.write_file(path="/data/state.txt", data="mine") == []
        assert (tmp_path / "data" / "rust-wasi" / "state.txt").read_text() == "mine"
        with pytest.raises(PluginResultError, match=re.escape("/shared/new.txt")):
            pm.hook.write_file(path="/shared/new.txt", data="x")
        assert not (shared / "new.txt").exists()
        assert pm.hook.get_env(name="RUST_GUEST_ALLOWED") == ["fine"]
        assert pm.hook.get_env(name="RUST_GUEST_CANARY") == []
        assert pm.hook.all_env() == [["RUST_GUEST_ALLOWED=fine"]]
    assert os.environ["RUST_GUEST_CANARY"] == "s3cr3t"
