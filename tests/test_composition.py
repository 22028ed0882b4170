"""Plugins linked together: one plugin's export serving another's import, through the host.

The components are WAT text built with wasm-tools here: ``tokenizer`` exports
``textpipe:nlp/tokenize@<version>`` (``count``, ``fail``, ``spin``); ``wordstats`` imports
it and implements the hooks of a small contract by calling it.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pluggy
import pytest

from airssys_plugins import (
    Capabilities,
    CapabilityDenied,
    LinkCycleError,
    LinkedCallError,
    LinkError,
    PluginHost,
    PluginLoadError,
    ReloadError,
    u32,
)
from airssys_plugins.authoring.build import build_guest
from airssys_plugins.policy.capabilities import PluginLink
from airssys_plugins.policy.tables import TableReader, grants_from_mapping, read_request

hookspec = pluggy.HookspecMarker("wstats")

LINK = "tokenizer:textpipe:nlp/tokenize@^1"


class WordHooks:
    @hookspec
    def word_count(self, text: str) -> u32:
        """Words in text (the tokenizer plugin counts them)."""

    @hookspec
    def boom(self) -> u32:
        """Call the tokenizer's trapping function."""

    @hookspec
    def slow(self) -> u32:
        """Call the tokenizer's endless loop."""


_REALLOC = """
  (memory (export "memory") 1)
  (global $bump (mut i32) (i32.const 1024))
  (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32)
    (local $p i32)
    (local.set $p (global.get $bump))
    (global.set $bump (i32.add (local.get $p) (local.get 3)))
    (local.get $p))
"""


def tokenizer_source(root: Path, version: str, offset: int) -> Path:
    """The provider's sources (also built by bench/bench_messaging.py)."""
    src = root / f"tokenizer-{version}-{offset}"
    (src / "wit").mkdir(parents=True, exist_ok=True)
    (src / "wit" / "nlp.wit").write_text(
        f"package textpipe:nlp@{version};\n"
        "interface tokenize {\n"
        "  count: func(text: string) -> u32;\n  fail: func() -> u32;\n  spin: func() -> u32;\n}\n"
        "world guest { export tokenize; }\n"
    )
    iface = f"textpipe:nlp/tokenize@{version}"
    (src / "guest.wat").write_text(
        f"""(module {_REALLOC}
  (func (export "{iface}#count") (param $ptr i32) (param $len i32) (result i32)
    (local $i i32) (local $n i32)
    (if (i32.eqz (local.get $len)) (then (return (i32.const {offset}))))
    (local.set $n (i32.const {offset + 1}))
    (block $done (loop $next
      (br_if $done (i32.ge_u (local.get $i) (local.get $len)))
      (if (i32.eq (i32.load8_u (i32.add (local.get $ptr) (local.get $i))) (i32.const 32))
        (then (local.set $n (i32.add (local.get $n) (i32.const 1)))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $next)))
    (global.set $bump (i32.const 1024))
    (local.get $n))
  (func (export "{iface}#fail") (result i32) unreachable)
  (func (export "{iface}#spin") (result i32) (loop $l (br $l)) (i32.const 0)))
"""
    )
    return src


def wordstats_source(root: Path) -> Path:
    """The importer's sources (also built by bench/bench_messaging.py)."""
    src = root / "wordstats"
    (src / "wit" / "deps" / "nlp").mkdir(parents=True, exist_ok=True)
    (src / "wit" / "deps" / "nlp" / "nlp.wit").write_text(
        "package textpipe:nlp@1.0.0;\n"
        "interface tokenize {\n"
        "  count: func(text: string) -> u32;\n  fail: func() -> u32;\n  spin: func() -> u32;\n}\n"
    )
    (src / "wit" / "world.wit").write_text(
        "package wstats:hooks@1.0.0;\n"
        "interface word-count { word-count: func(text: string) -> u32; }\n"
        "interface boom { boom: func() -> u32; }\n"
        "interface slow { slow: func() -> u32; }\n"
        "world guest {\n  import textpipe:nlp/tokenize@1.0.0;\n"
        "  export word-count;\n  export boom;\n  export slow;\n}\n"
    )
    (src / "guest.wat").write_text(
        f"""(module
  (import "textpipe:nlp/tokenize@1.0.0" "count" (func $count (param i32 i32) (result i32)))
  (import "textpipe:nlp/tokenize@1.0.0" "fail" (func $fail (result i32)))
  (import "textpipe:nlp/tokenize@1.0.0" "spin" (func $spin (result i32)))
  {_REALLOC}
  (func (export "wstats:hooks/word-count@1.0.0#word-count") (param i32 i32) (result i32)
    (local $r i32)
    (local.set $r (call $count (local.get 0) (local.get 1)))
    (global.set $bump (i32.const 1024))
    (local.get $r))
  (func (export "wstats:hooks/boom@1.0.0#boom") (result i32) (call $fail))
  (func (export "wstats:hooks/slow@1.0.0#slow") (result i32) (call $spin)))
"""
    )
    return src


@pytest.fixture(scope="module")
def guests(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("composition")
    return {
        "tokenizer": build_guest(tokenizer_source(root, "1.0.0", 0)),
        "tokenizer-v1.2": build_guest(tokenizer_source(root, "1.2.0", 100)),
        "tokenizer-v2": build_guest(tokenizer_source(root, "2.0.0", 0)),
        "wordstats": build_guest(wordstats_source(root)),
    }


@pytest.fixture
def wpm() -> pluggy.PluginManager:
    pm = pluggy.PluginManager("wstats")
    pm.add_hookspecs(WordHooks)
    return pm


MakeHost = Callable[..., PluginHost]


@pytest.fixture
def make_host(wpm: pluggy.PluginManager) -> Iterator[MakeHost]:
    hosts: list[PluginHost] = []

    def make(**kwargs: object) -> PluginHost:
        kwargs.setdefault("grants", {"wordstats": Capabilities(plugins=[LINK])})
        host = PluginHost(wpm, package="wstats:hooks@1.0.0", **kwargs)  # type: ignore[arg-type]
        hosts.append(host)
        return host

    yield make
    for host in hosts:
        host.close()


def _load_wordstats(host: PluginHost, guests: dict[str, Path], **kwargs: object) -> None:
    host.load(
        guests["wordstats"],
        name="wordstats",
        requests=Capabilities(plugins=[LINK]),
        **kwargs,  # type: ignore[arg-type]
    )


def test_importer_calls_the_providers_export(
    make_host: MakeHost, wpm: pluggy.PluginManager, guests: dict[str, Path]
) -> None:
    """A string goes from the importer through the host into the provider and back."""
    host = make_host()
    host.load(guests["tokenizer"], name="tokenizer")
    _load_wordstats(host, guests)
    assert wpm.hook.word_count(text="the quick brown fox") == [4]
    assert wpm.hook.word_count(text="") == [0]
    [info] = host.links()
    assert (info.importer, info.provider, info.interface, info.state) == (
        "wordstats",
        "tokenizer",
        "textpipe:nlp/tokenize@1.0.0",
        "linked",
    )
    links = [e for e in host.audit.events() if e.kind == "link"]
    assert any("linked to plugin 'tokenizer'" in e.detail for e in links)
    assert (
        "plugin link tokenizer:textpipe:nlp/tokenize@^1"
        in host.plugins["wordstats"].capabilities.describe()
    )


def test_importer_loaded_first_waits_for_its_provider(
    make_host: MakeHost, wpm: pluggy.PluginManager, guests: dict[str, Path]
) -> None:
    """Under "wait", calls fail naming both plugins until the provider loads."""
    host = make_host()
    _load_wordstats(host, guests)
    assert [i.state for i in host.links()] == ["waiting"]
    with pytest.raises(LinkedCallError, match="'tokenizer' is not loaded") as info:
        wpm.hook.word_count(text="a b")
    assert (info.value.importer, info.value.provider) == ("wordstats", "tokenizer")
    assert info.value.reason == "provider not loaded"
    host.load(guests["tokenizer"], name="tokenizer")
    assert wpm.hook.word_count(text="a b") == [2]


def test_missing_provider_fails_under_fail_policy(
    make_host: MakeHost, guests: dict[str, Path]
) -> None:
    """Under "fail", an importer whose provider is not loaded is refused, naming both."""
    host = make_host(missing_provider="fail")
    with pytest.raises(LinkError, match="plugin 'tokenizer', which is not loaded") as info:
        _load_wordstats(host, guests)
    assert (info.value.importer, info.value.provider) == ("wordstats", "tokenizer")
    assert "wordstats" not in host.plugins


def test_link_not_granted_is_denied_naming_both(
    make_host: MakeHost, guests: dict[str, Path]
) -> None:
    """A requested link the operator did not grant (here: another major version) is a
    CapabilityDenied naming both plugins."""
    host = make_host(
        grants={"wordstats": Capabilities(plugins=["tokenizer:textpipe:nlp/tokenize@^2"])}
    )
    host.load(guests["tokenizer"], name="tokenizer")
    with pytest.raises(CapabilityDenied) as info:
        _load_wordstats(host, guests)
    assert "plugin 'wordstats'" in str(info.value)
    assert "plugin link tokenizer:textpipe:nlp/tokenize@^1 (not granted" in str(info.value)
    assert "'tokenizer'" in str(info.value)


def test_import_without_a_link_says_how_to_ask(
    make_host: MakeHost, guests: dict[str, Path]
) -> None:
    """Importing another plugin's interface without asking for the link says how to ask."""
    host = make_host()
    host.load(guests["tokenizer"], name="tokenizer")
    with pytest.raises(PluginLoadError, match="host does not provide") as info:
        host.load(guests["wordstats"], name="wordstats")
    assert 'plugins = ["<provider>:textpipe:nlp/tokenize@^<major>"]' in str(info.value)


def test_provider_version_outside_the_range_is_refused(
    make_host: MakeHost, guests: dict[str, Path]
) -> None:
    """A provider exporting 2.0.0 does not serve a ^1 link: refused at either load order."""
    host = make_host()
    host.load(guests["tokenizer-v2"], name="tokenizer")
    with pytest.raises(LinkError, match=r"version 2.0.0, outside the range \^1"):
        _load_wordstats(host, guests)
    host.unload("tokenizer")
    _load_wordstats(host, guests)  # waits
    with pytest.raises(LinkError, match="'wordstats' links to") as info:
        host.load(guests["tokenizer-v2"], name="tokenizer")
    assert info.value.plugin == "tokenizer"
    assert "tokenizer" not in host.plugins


def test_provider_trap_names_both_and_the_provider_restarts(
    make_host: MakeHost, wpm: pluggy.PluginManager, guests: dict[str, Path]
) -> None:
    """A trap in the provider fails the importer's call with both names; the provider's
    supervisor records it and the provider serves the next call from a fresh instance."""
    host = make_host()
    tokenizer = host.load(guests["tokenizer"], name="tokenizer")
    _load_wordstats(host, guests)
    generation = tokenizer.instance.generation
    with pytest.raises(LinkedCallError) as info:
        wpm.hook.boom()
    err = info.value
    assert (err.plugin, err.importer, err.provider) == ("wordstats", "wordstats", "tokenizer")
    assert err.reason == "unreachable executed"
    assert "plugin 'wordstats' called textpipe:nlp/tokenize@1.0.0#fail of plugin 'tokenizer'" in (
        str(err)
    )
    assert host.status("tokenizer").restarts == 1
    assert wpm.hook.word_count(text="x y z") == [3]
    assert tokenizer.instance.generation == generation + 1


def test_the_callers_deadline_bounds_the_providers_call(
    make_host: MakeHost, wpm: pluggy.PluginManager, guests: dict[str, Path]
) -> None:
    """A provider with a long timeout is interrupted when the importer's deadline passes."""
    host = make_host()
    host.load(guests["tokenizer"], name="tokenizer", timeout=30.0)
    _load_wordstats(host, guests, timeout=0.3)
    started = time.monotonic()
    with pytest.raises(LinkedCallError) as info:
        wpm.hook.slow()
    assert info.value.reason == "timeout"
    assert time.monotonic() - started < 10  # far below the provider's own 30 s


def test_the_providers_own_timeout_applies(
    make_host: MakeHost, wpm: pluggy.PluginManager, guests: dict[str, Path]
) -> None:
    """The provider's limits hold for calls from another plugin too."""
    host = make_host()
    host.load(guests["tokenizer"], name="tokenizer", timeout=0.2)
    _load_wordstats(host, guests, timeout=30.0)
    with pytest.raises(LinkedCallError, match="timed out") as info:
        wpm.hook.slow()
    assert info.value.reason == "timeout"
    assert any(e.kind == "limit" and e.plugin == "tokenizer" for e in host.audit.events())


def test_reloading_the_provider_relinks_its_dependants(
    make_host: MakeHost, wpm: pluggy.PluginManager, guests: dict[str, Path]
) -> None:
    """After a reload calls go to the new provider; a reload that breaks a link is refused
    and the old provider keeps serving."""
    host = make_host()
    host.load(guests["tokenizer"], name="tokenizer")
    _load_wordstats(host, guests)
    assert wpm.hook.word_count(text="a b") == [2]
    host.reload("tokenizer", guests["tokenizer-v1.2"])  # 1.2.0 is inside ^1: re-linked
    assert wpm.hook.word_count(text="a b") == [102]
    with pytest.raises(ReloadError) as info:
        host.reload("tokenizer", guests["tokenizer-v2"])
    assert isinstance(info.value.__cause__, LinkError)
    assert "'wordstats' links to" in str(info.value)
    assert wpm.hook.word_count(text="a b") == [102]


def test_unloading_the_provider_leaves_dependants_waiting(
    make_host: MakeHost, wpm: pluggy.PluginManager, guests: dict[str, Path]
) -> None:
    """Unloaded, the provider's dependants fail their calls until it is loaded again."""
    host = make_host()
    host.load(guests["tokenizer"], name="tokenizer")
    _load_wordstats(host, guests)
    host.unload("tokenizer")
    assert [i.state for i in host.links()] == ["waiting"]
    with pytest.raises(LinkedCallError, match="not loaded"):
        wpm.hook.word_count(text="a")
    host.load(guests["tokenizer"], name="tokenizer")
    assert wpm.hook.word_count(text="a") == [1]
    assert any("unloaded" in e.detail for e in host.audit.events() if e.kind == "link")


def _cycle_src(root: Path, name: str, other: str) -> Path:
    src = root / name
    (src / "wit" / "deps" / other).mkdir(parents=True, exist_ok=True)
    (src / "wit" / "deps" / other / "x.wit").write_text(
        f"package cyc:{other}@1.0.0;\ninterface api {{ f: func() -> u32; }}\n"
    )
    (src / "wit" / "x.wit").write_text(
        f"package cyc:{name}@1.0.0;\ninterface api {{ f: func() -> u32; }}\n"
        f"world guest {{ import cyc:{other}/api@1.0.0; export api; }}\n"
    )
    (src / "guest.wat").write_text(
        f'(module (import "cyc:{other}/api@1.0.0" "f" (func $f (result i32)))'
        f' (func (export "cyc:{name}/api@1.0.0#f") (result i32) (call $f)))'
    )
    return src


def test_an_import_cycle_is_refused_naming_it(make_host: MakeHost, tmp_path: Path) -> None:
    """a imports from b and b from a: the second load is refused, naming the cycle."""
    links = {"a": "b:cyc:b/api@^1", "b": "a:cyc:a/api@^1"}
    host = make_host(grants={n: Capabilities(plugins=[link]) for n, link in links.items()})
    a = build_guest(_cycle_src(tmp_path, "a", "b"))
    b = build_guest(_cycle_src(tmp_path, "b", "a"))
    host.load(a, name="a", requests=Capabilities(plugins=[links["a"]]))
    with pytest.raises(LinkCycleError, match="import cycle: b -> a -> b") as info:
        host.load(b, name="b", requests=Capabilities(plugins=[links["b"]]))
    assert info.value.cycle == ("b", "a", "b")
    assert "b" not in host.plugins


def test_a_pure_provider_needs_a_link_naming_it(
    make_host: MakeHost, guests: dict[str, Path]
) -> None:
    """A component implementing no hook loads only when some grant links to it."""
    from airssys_plugins import ContractMismatchError

    host = make_host(grants={})
    with pytest.raises(ContractMismatchError, match="implements none of the host's hooks"):
        host.load(guests["tokenizer"], name="tokenizer")
    host.grants["wordstats"] = Capabilities(plugins=[LINK])
    assert host.load(guests["tokenizer"], name="tokenizer").hooks == {}


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("tokenizer:textpipe:nlp/tokenize@^1", ("tokenizer", "textpipe:nlp/tokenize", "^1")),
        ("tok-2:a:b/c", ("tok-2", "a:b/c", "*")),
        ("p:a:b/c@>=1.2, <3", ("p", "a:b/c", ">=1.2, <3")),
    ],
    ids=["caret", "any", "comparators"],
)
def test_plugin_link_syntax(text: str, parsed: tuple[str, str, str]) -> None:
    """Links are provider:namespace:package/interface@range."""
    link = PluginLink.parse(text)
    assert (link.provider, link.interface, link.versions) == parsed


def test_plugin_link_ranges_follow_semver() -> None:
    """A link accepts the versions its range holds; a grant without a range covers any."""
    link = PluginLink.parse("p:a:b/c@^1.2")
    assert link.accepts("1.5.0")
    assert not link.accepts("2.0.0")
    assert not link.accepts("1.1.9")
    assert PluginLink.parse("p:a:b/c").covers(link)
    assert not PluginLink.parse("p:a:b/c@^2").covers(link)
    assert not PluginLink.parse("q:a:b/c").covers(link)


def test_manifest_and_grants_read_links_with_every_problem() -> None:
    """[capabilities] plugins is read by the one table parser; each bad entry is reported."""
    reader = TableReader("plugin.toml")
    request = read_request(
        reader, {"plugins": [LINK, "no-interface", "p:a:b/c@not a range"]}, "capabilities"
    )
    assert request.plugins == (LINK,)
    fields = [p.field for p in reader.problems]
    assert fields == ["capabilities.plugins[1]", "capabilities.plugins[2]"]
    assert "is not a version range" in str(reader.problems[1])
    grant = grants_from_mapping({"plugins": ["tokenizer:textpipe:nlp/tokenize"]}, where="g")
    assert grant.covers(request.capabilities())


def test_compose_fuses_the_provider_into_the_consumer(
    make_host: MakeHost, wpm: pluggy.PluginManager, guests: dict[str, Path], tmp_path: Path
) -> None:
    """Offline fusion: one component importing nothing from the provider, same answers."""
    from airssys_plugins.authoring.compose import compose_components

    result = compose_components(guests["wordstats"], [guests["tokenizer"]], tmp_path / "ws.wasm")
    assert result.satisfied == ("textpipe:nlp/tokenize@1.0.0",)
    assert result.imports == ()
    assert result.tool.startswith(("wasm-tools", "wac"))
    host = make_host(grants={})
    host.load(result.path, name="fused")  # no link, no provider loaded
    assert wpm.hook.word_count(text="one two three") == [3]
    assert host.links() == []


def test_compose_refuses_providers_that_satisfy_nothing(
    guests: dict[str, Path], tmp_path: Path
) -> None:
    """Composing a provider the consumer does not import from says so."""
    from airssys_plugins.authoring.build import BuildError
    from airssys_plugins.authoring.compose import compose_components

    with pytest.raises(BuildError, match="nothing to compose"):
        compose_components(guests["tokenizer"], [guests["wordstats"]], tmp_path / "x.wasm")


def test_compose_without_a_tool_says_what_to_install(
    guests: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No wac and no wasm-tools: ToolchainMissing names both and the run-time alternative."""
    from airssys_plugins.authoring.build import ToolchainMissing
    from airssys_plugins.authoring.compose import compose_components

    monkeypatch.setattr("sys.executable", str(tmp_path / "python"))
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ToolchainMissing, match="install wac") as info:
        compose_components(guests["wordstats"], [guests["tokenizer"]], tmp_path / "x.wasm")
    assert "link them at run time" in str(info.value)


def test_a_plugin_directory_links_from_the_manifests(
    make_host: MakeHost, wpm: pluggy.PluginManager, guests: dict[str, Path], tmp_path: Path
) -> None:
    """load_plugins reads the link from plugin.toml; the consumer may come first."""
    import shutil

    for name in ("wordstats", "tokenizer"):  # listed in this order: the consumer first
        folder = tmp_path / "plugins" / name
        folder.mkdir(parents=True)
        shutil.copy(guests[name], folder / f"{name}.wasm")
        caps = f'[capabilities]\nplugins = ["{LINK}"]\n' if name == "wordstats" else ""
        (folder / "plugin.toml").write_text(f'name = "{name}"\ncomponent = "{name}.wasm"\n{caps}')
    host = make_host()
    report = host.load_plugins(
        [tmp_path / "plugins" / "wordstats", tmp_path / "plugins" / "tokenizer"], strict=True
    )
    assert sorted(report.loaded) == ["tokenizer", "wordstats"]
    assert wpm.hook.word_count(text="a b c d e") == [5]


def test_listings_show_requested_links_and_topics() -> None:
    """`airssys-plugins list` shows a manifest's links and topics with its other requests."""
    from airssys_plugins import RequestedCapabilities

    wanted = RequestedCapabilities(
        interfaces=("messaging",), plugins=(LINK,), publish=("a.b",), subscribe=("c.*",)
    )
    assert wanted.summary() == ["iface:messaging", f"plugin:{LINK}", "pub:a.b", "sub:c.*"]
    assert wanted.to_toml()["plugins"] == [LINK]


def test_calls_during_reloads_see_the_old_or_the_new_provider(
    make_host: MakeHost, wpm: pluggy.PluginManager, guests: dict[str, Path]
) -> None:
    """Calls racing provider reloads never fail and always get one version's answer."""
    import threading

    host = make_host()
    host.load(guests["tokenizer"], name="tokenizer")
    _load_wordstats(host, guests)
    answers: set[int] = set()
    errors: list[BaseException] = []
    stop = threading.Event()

    def caller() -> None:
        while not stop.is_set():
            try:
                answers.update(wpm.hook.word_count(text="a b"))
            except BaseException as exc:  # any failure is the test's failure
                errors.append(exc)
                return

    thread = threading.Thread(target=caller)
    thread.start()
    try:
        for version in ["tokenizer-v1.2", "tokenizer", "tokenizer-v1.2", "tokenizer"] * 3:
            host.reload("tokenizer", guests[version])
    finally:
        stop.set()
        thread.join(30)
    assert errors == []
    assert answers <= {2, 102}
    assert wpm.hook.word_count(text="a b") == [2]


def test_cli_compose_says_which_tool_and_what_it_satisfied(
    guests: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`airssys-plugins compose` writes the fused component and names the tool."""
    from airssys_plugins.cli import main

    out = tmp_path / "fused.wasm"
    argv = ["compose", str(guests["wordstats"]), str(guests["tokenizer"]), "-o", str(out)]
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert captured.err.startswith(("composed with wasm-tools", "composed with wac"))
    assert "satisfied: textpipe:nlp/tokenize@1.0.0" in captured.out
    assert "imports:   (nothing)" in captured.out
    assert out.read_bytes()[:4] == b"\0asm"


def test_cli_compose_without_a_tool_is_one_message(
    guests: dict[str, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """No composition tool: exit status 1 and what to install, no traceback, no file."""
    from airssys_plugins.cli import main

    monkeypatch.setattr("sys.executable", str(tmp_path / "python"))
    monkeypatch.setenv("PATH", str(tmp_path))
    out = tmp_path / "fused.wasm"
    argv = ["compose", str(guests["wordstats"]), str(guests["tokenizer"]), "-o", str(out)]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "install wac" in err
    assert "Traceback" not in err
    assert not out.exists()


def _plugin_dirs(root: Path, guests: dict[str, Path], provider: str) -> Path:
    """wordstats (linking to the tokenizer) and ``provider`` as the tokenizer, each a plugin
    directory with its manifest, in ``root/plugins``."""
    import shutil

    for name, wasm in (("wordstats", guests["wordstats"]), ("tokenizer", guests[provider])):
        folder = root / "plugins" / name
        folder.mkdir(parents=True)
        shutil.copy(wasm, folder / f"{name}.wasm")
        caps = f'[capabilities]\nplugins = ["{LINK}"]\n' if name == "wordstats" else ""
        (folder / "plugin.toml").write_text(f'name = "{name}"\ncomponent = "{name}.wasm"\n{caps}')
    (root / "grants.toml").write_text(f'[plugins.wordstats]\nplugins = ["{LINK}"]\n')
    return root / "plugins"


LIST = ["list", "--contract", "tests.test_composition:WordHooks", "--package", "wstats:hooks@1.0.0"]
LIST_ONLY = ["--no-user-dirs", "--no-site-dirs", "--no-packs"]


@pytest.fixture
def state_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The user state dir (host status and circuit files) in tmp_path."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    return tmp_path / "state"


def test_cli_list_shows_which_provider_serves_which_import(
    guests: dict[str, Path], tmp_path: Path, state_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`list --contract` loads the plugins together and shows each link: importer, import,
    provider, range, state and the version the provider serves it at (1.2.0 here)."""
    from airssys_plugins.cli import main

    plugins = _plugin_dirs(tmp_path, guests, "tokenizer-v1.2")
    grants = str(tmp_path / "grants.toml")
    assert main([*LIST, "--dir", str(plugins), *LIST_ONLY, "--grants", grants]) == 0
    out = capsys.readouterr().out
    assert out.endswith(
        "\nlinks between these plugins, loaded together:\n"
        "  wordstats imports textpipe:nlp/tokenize@1.0.0 from plugin 'tokenizer' (range ^1): "
        "linked, served as textpipe:nlp/tokenize@1.2.0\n"
    )
    assert main([*LIST, "--dir", str(plugins), *LIST_ONLY, "--grants", grants, "--json"]) == 0
    rows = {row["name"]: row for row in json.loads(capsys.readouterr().out)}
    assert rows["wordstats"]["links"] == [
        {
            "provider": "tokenizer",
            "interface": "textpipe:nlp/tokenize@1.0.0",
            "versions": "^1",
            "served": "textpipe:nlp/tokenize@1.2.0",
            "state": "linked",
        }
    ]
    assert rows["tokenizer"]["links"] == []
    assert "live_links" not in rows["wordstats"]  # no host of the app has written a status


def test_cli_list_shows_the_live_links_of_the_apps_host(
    make_host: MakeHost,
    guests: dict[str, Path],
    state_home: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`list` (even without a contract) shows the links of the app's running host, read
    from its status file, and says the host is live; a waiting link says so."""
    from airssys_plugins.cli import main
    from airssys_plugins.host.status import StatusFile

    host = make_host()
    writer = host.messaging.record_status(
        StatusFile.for_app("wstats"), app="wstats", links=host.links
    )
    assert writer is not None
    _load_wordstats(host, guests)  # before its provider: the link waits
    writer.flush()
    assert main(["list", "--app", "wstats", *LIST_ONLY]) == 0
    out = capsys.readouterr().out
    assert re.search(r"\nlinks in the app's host \(live: pid \d+ is running; last written", out)
    assert out.endswith(
        "  wordstats imports textpipe:nlp/tokenize@1.0.0 from plugin 'tokenizer' (range ^1): "
        "waiting, no provider loaded\n"
    )
    host.load(guests["tokenizer"], name="tokenizer")
    writer.flush()
    assert main(["list", "--app", "wstats", *LIST_ONLY, "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []  # no plugin directories: no rows
    assert main(["list", "--app", "wstats", *LIST_ONLY]) == 0
    assert capsys.readouterr().out.endswith(
        "  wordstats imports textpipe:nlp/tokenize@1.0.0 from plugin 'tokenizer' (range ^1): "
        "linked, served as textpipe:nlp/tokenize@1.0.0\n"
    )


def test_link_infos_say_which_version_serves_them(
    make_host: MakeHost, guests: dict[str, Path]
) -> None:
    """host.links(): ``served`` is the interface and version the provider serves the link
    with, None while the link waits; a reload to another version changes it."""
    host = make_host()
    _load_wordstats(host, guests)
    [waiting] = host.links()
    assert (waiting.state, waiting.served) == ("waiting", None)
    host.load(guests["tokenizer"], name="tokenizer")
    [linked] = host.links()
    assert (linked.state, linked.served) == ("linked", "textpipe:nlp/tokenize@1.0.0")
    host.reload("tokenizer", guests["tokenizer-v1.2"])
    [relinked] = host.links()
    assert relinked.served == "textpipe:nlp/tokenize@1.2.0"


def test_inspect_lines_say_how_each_import_is_served(
    make_host: MakeHost, guests: dict[str, Path], state_home: Path
) -> None:
    """import_links (for `inspect`): host interfaces are left out; an import the
    manifest links is named with its provider and range, one it does not is flagged with
    the fix; with the app, the running host's link is shown with its state."""
    from airssys_plugins.cli.plugins import import_links
    from airssys_plugins.host.status import StatusFile

    imports = [
        "wasi:cli/environment@0.2.0",
        "airssys:host/log@0.1.0",
        "textpipe:nlp/tokenize@1.0.0",
    ]
    assert import_links("wordstats", imports[:2]) == []
    assert import_links("wordstats", imports, [LINK]) == [
        "links:",
        "  textpipe:nlp/tokenize@1.0.0: from plugin 'tokenizer' (a link, range ^1), as its "
        "manifest asks; the operator must grant it",
    ]
    [_, flagged] = import_links("wordstats", imports)
    assert "no link asked for" in flagged
    assert 'plugins = ["<provider>:textpipe:nlp/tokenize"]' in flagged
    host = make_host()
    writer = host.messaging.record_status(
        StatusFile.for_app("wstats"), app="wstats", links=host.links
    )
    assert writer is not None
    _load_wordstats(host, guests)
    host.load(guests["tokenizer"], name="tokenizer")
    writer.flush()
    lines = import_links("wordstats", imports, [LINK], app="wstats")
    assert lines[2].startswith("in the app's host (live: pid ")
    assert lines[3] == (
        "  wordstats imports textpipe:nlp/tokenize@1.0.0 from plugin 'tokenizer' (range ^1): "
        "linked, served as textpipe:nlp/tokenize@1.0.0"
    )


def test_inspect_of_a_plugin_dir_shows_its_links(
    tmp_path: Path, guests: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """`airssys-plugins inspect DIR` prints, after the WIT, how each import that no host
    interface serves is linked (from the manifest's `plugins`), in text and in --json."""
    import shutil

    from airssys_plugins.cli import main

    folder = tmp_path / "wordstats"
    folder.mkdir()
    shutil.copy(guests["wordstats"], folder / "wordstats.wasm")
    (folder / "plugin.toml").write_text(
        f'name = "wordstats"\ncomponent = "wordstats.wasm"\n[capabilities]\nplugins = ["{LINK}"]\n'
    )
    assert main(["inspect", str(folder)]) == 0
    out = capsys.readouterr().out
    assert (
        "links:\n  textpipe:nlp/tokenize@1.0.0: from plugin 'tokenizer' (a link, range ^1)" in out
    )
    assert main(["inspect", "--json", str(folder)]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["links"][0] == "links:"
    assert "from plugin 'tokenizer'" in data["links"][1]
    # a bare component has no manifest, so nothing is said about links
    assert main(["inspect", "--json", str(folder / "wordstats.wasm")]) == 0
    assert json.loads(capsys.readouterr().out)["links"] == []


# An importer whose linked interface passes a resource handle (a borrow<thing>).
HANDLE_IMPORTER = """(component
  (import "res:link/things@1.0.0" (instance $t
    (export "thing" (type $thing (sub resource)))
    (export "peek" (func (param "t" (borrow $thing)) (result u32)))
    (export "size" (func (result u32)))))
  (core module $m (func (export "boom") (result i32) (i32.const 1)))
  (core instance $i (instantiate $m))
  (func $boom (result u32) (canon lift (core func $i "boom")))
  (instance $hooks (export "boom" (func $boom)))
  (export "wstats:hooks/boom@1.0.0" (instance $hooks)))"""


def test_a_link_passing_resource_handles_is_refused(make_host: MakeHost, tmp_path: Path) -> None:
    """Links carry values only: an import from another plugin whose functions pass
    resource handles is a LinkError naming the functions and what to do instead."""
    from .test_hostile_calls import parse_component

    link = "holder:res:link/things@^1"
    host = make_host(grants={"importer": Capabilities(plugins=[link])})
    wasm = parse_component(tmp_path, "importer", HANDLE_IMPORTER)
    with pytest.raises(LinkError, match=r"peek pass resource handles") as info:
        host.load(wasm, name="importer", requests=Capabilities(plugins=[link]))
    assert (info.value.importer, info.value.provider) == ("importer", "holder")
    assert "host.provide" in str(info.value)
    assert "size" not in str(info.value).split("but")[1]  # only the functions with handles
    assert "importer" not in host.plugins
