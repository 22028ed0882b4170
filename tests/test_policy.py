"""The policy layer: one capability parser, limits validation, per-hook ceilings."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pluggy
import pytest

from airssys_plugins import (
    Capabilities,
    CapabilityDenied,
    FileGrant,
    Limits,
    ManifestError,
    PluginHost,
    Preopen,
    RequestedCapabilities,
)
from airssys_plugins.discovery.lockfile import IntegrityError, Lockfile
from airssys_plugins.discovery.manifest import Manifest
from airssys_plugins.policy.audit import AuditLog
from airssys_plugins.policy.decisions import (
    GrantsError,
    decide_for_hooks,
    grants_from_mapping,
    load_grants,
)

from .demo import PACKAGE

# -- limits ---------------------------------------------------------------------------------

LIMIT_FIELDS = ["timeout", "fuel", "memory", "instances", "tables", "max_result_bytes"]


@pytest.mark.parametrize("field", [*LIMIT_FIELDS, "host_call_timeout"])
@pytest.mark.parametrize(
    "value", [0, -1, float("nan"), True], ids=["zero", "negative", "nan", "bool"]
)
def test_limits_refuse_non_positive_values(field: str, value: object) -> None:
    """Each limit must be positive; the message names the field and what is allowed."""
    with pytest.raises(ValueError, match=f"limit {field} must be a positive number") as info:
        Limits(**{field: value})  # type: ignore[arg-type]
    assert repr(value) in str(info.value)


@pytest.mark.parametrize("field", LIMIT_FIELDS)
def test_limits_allow_none_as_no_limit(field: str) -> None:
    """None means no limit of that kind, except for host_call_timeout."""
    assert getattr(Limits(**{field: None}), field) is None  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="host_call_timeout must be a positive number of seconds"):
        Limits(host_call_timeout=None)  # type: ignore[arg-type]


def test_limits_report_every_bad_field_at_once() -> None:
    """Several bad limits are named together, not only the first."""
    with pytest.raises(ValueError, match="limit timeout") as info:
        Limits(timeout=0, memory=-5, host_call_timeout=0)
    assert "limit memory" in str(info.value)
    assert "limit host_call_timeout" in str(info.value)


# -- one capability parser ------------------------------------------------------------------

BAD_TABLE = """\
interfaces = ["lgo"]
env = ["$HOME", "OK"]
network = ["https://a.example/v1"]
filesystem = [{ guest = "data", host = "rel", mode = "rwx" }]
envs = []
"""


def test_grants_file_reports_every_problem_naming_file_table_and_key(tmp_path: Path) -> None:
    """One GrantsError lists each problem of each [plugins.<name>] table, with a fix."""
    path = tmp_path / "grants.toml"
    path.write_text(
        f"[plugins.a]\n{BAD_TABLE}\n[plugins.b]\nenv = [3]\n[other]\n", encoding="utf-8"
    )
    with pytest.raises(GrantsError) as info:
        load_grants(path)
    err = info.value
    assert isinstance(err, ValueError)
    assert [p.field for p in err.problems] == [
        "other",
        "plugins.a.envs",
        "plugins.a.env[0]",
        "plugins.a.network[0]",
        "plugins.a.filesystem[0].guest",
        "plugins.a.filesystem[0].host",
        "plugins.a.filesystem[0].mode",
        "plugins.b.env[0]",
    ]
    assert all(p.file == str(path) and p.fix for p in err.problems)
    text = str(err)
    assert "8 problem(s)" in text
    assert "plugins.a.envs: unknown key. Fix: did you mean 'env'?" in text
    assert """plugins.a.filesystem[0].mode: 'rwx' is not a mode. Fix: write "ro" or "rw\"""" in text


def test_manifest_and_grants_share_the_parser() -> None:
    """plugin.toml [capabilities] reports the same problems, under capabilities.<key>."""
    with pytest.raises(ManifestError) as info:
        Manifest.from_toml(f'name = "p"\n[capabilities]\n{BAD_TABLE}')
    manifest = {(p.field.removeprefix("capabilities."), p.message) for p in info.value.problems}
    with pytest.raises(GrantsError) as ginfo:
        grants_from_mapping(__import__("tomllib").loads(BAD_TABLE), where="api")
    grants = {(p.field, p.message) for p in ginfo.value.problems}
    # a request may name only the built-in interfaces; a grant may name the host's own
    assert manifest - grants == {("interfaces[0]", "'lgo' is not a host interface")}
    assert grants - manifest == set()


def test_grants_may_name_host_provided_interfaces() -> None:
    """A grants table may grant an interface the host application adds (kebab-case)."""
    caps = grants_from_mapping({"interfaces": ["log", "ping-pong"]}, where="api")
    assert caps.interfaces == {"log", "ping-pong"}
    with pytest.raises(GrantsError, match="'Ping' is not an interface name"):
        grants_from_mapping({"interfaces": ["Ping"]}, where="api")


def test_lockfile_entries_use_the_parser(tmp_path: Path) -> None:
    """A malformed lockfile entry names each problem found by the same parser."""
    path = tmp_path / "plugins.lock"
    path.write_text(
        'version = 1\napp = "a"\n[plugins.p]\nversion = "1.0.0"\nsource = "dir x"\n'
        'sha256 = "00"\n[plugins.p.capabilities]\nenv = ["$X"]\nnetwork = ["ftp://h"]\n',
        encoding="utf-8",
    )
    with pytest.raises(IntegrityError) as info:
        Lockfile.read(path)
    assert "capabilities.env[0]: '$X' is not an environment variable name" in str(info.value)
    assert "capabilities.network[0]: 'ftp://h': the scheme must be http or https" in str(info.value)


def test_request_converts_to_capabilities_without_toml() -> None:
    """A manifest's request is a view of the policy's Capabilities, origins normalised."""
    req = RequestedCapabilities(
        filesystem=(Preopen("/data/", "data", "rw"),),
        env=("LANG",),
        network=("https://A.example",),
        interfaces=("http",),
    )
    caps = req.capabilities()
    assert caps == Capabilities(
        filesystem=[FileGrant("/data", "data", "rw")],
        env=["LANG"],
        network=["https://a.example:443"],
        interfaces=["http"],
    )
    assert str(req.filesystem[0]) == "/data=data:rw"
    assert str(caps.filesystem[0]) == "filesystem /data -> data (rw)"


@pytest.mark.parametrize(
    ("granted", "asked", "covered"),
    [("rw", "ro", True), ("ro", "rw", False), ("ro", "ro", True), ("rw", "rw", True)],
)
def test_one_mode_rule(granted: str, asked: str, covered: bool) -> None:
    """rw covers ro and not the reverse, for grants, requests and lockfile checks alike."""
    assert FileGrant("/d", "data", granted).covers(FileGrant("/d", "data", asked)) is covered  # type: ignore[arg-type]
    locked = RequestedCapabilities(filesystem=(Preopen("/d", "data", granted),))  # type: ignore[arg-type]
    wanted = RequestedCapabilities(filesystem=(Preopen("/d", "data", asked),))  # type: ignore[arg-type]
    assert locked.covers(wanted) is covered
    with pytest.raises(ValueError, match="'rwx' is not a mode"):
        Preopen("/d", "data", "rwx")  # type: ignore[arg-type]


def test_capabilities_constructor_uses_the_same_checks() -> None:
    """Capabilities(...) in Python refuses what the parser refuses."""
    with pytest.raises(ValueError, match="not an environment variable name"):
        Capabilities(env=["$HOME"])
    with pytest.raises(ValueError, match="not an absolute path"):
        FileGrant("data", "data")


# -- per-hook ceilings ----------------------------------------------------------------------

ASK = Capabilities(env=["A", "B", "C"], interfaces=["log"])
GRANT = Capabilities(env=["A", "B", "C"], interfaces=["log"])
HOOK_CEILINGS = {
    "wide": Capabilities(env=["A", "B", "C"], interfaces=["log"]),
    "mid": Capabilities(env=["A", "B"], interfaces=["log"]),
    "narrow": Capabilities(env=["A"]),
}


@pytest.mark.parametrize(
    ("hooks", "env", "interfaces"),
    [
        (["wide"], {"A", "B", "C"}, {"log"}),
        (["mid"], {"A", "B"}, {"log"}),
        (["wide", "mid"], {"A", "B"}, {"log"}),
        (["mid", "narrow", "wide"], {"A"}, set()),
        (["unceilinged"], {"A", "B", "C"}, {"log"}),
    ],
    ids=["wide", "mid", "two-hooks", "narrowest-wins", "no-hook-ceiling"],
)
def test_decide_for_hooks_narrows_to_the_intersection(
    hooks: list[str], env: set[str], interfaces: set[str]
) -> None:
    """A plugin serving several hooks gets the intersection of their ceilings."""
    audit = AuditLog()
    rights = decide_for_hooks(
        "p",
        ASK,
        hooks,
        ceiling=Capabilities.everything(),
        hook_ceilings=HOOK_CEILINGS,
        grant=GRANT,
        strict=False,
        provided={"log"},
        audit=audit,
    )
    assert (rights.env, rights.interfaces) == (env, interfaces)
    denied = {e.detail for e in audit.events(plugin="p", kind="deny")}
    expected = {f"env {v} (above the host's ceiling)" for v in {"A", "B", "C"} - env}
    expected |= {f"interface {i} (above the host's ceiling)" for i in {"log"} - interfaces}
    assert denied == expected
    assert {e.detail for e in audit.events(kind="grant")} == set(rights.describe())


def test_decide_for_hooks_within_the_host_ceiling() -> None:
    """A hook ceiling narrows the host's ceiling, it never widens it."""
    rights = decide_for_hooks(
        "p",
        ASK,
        ["wide"],
        ceiling=Capabilities(env=["B"]),
        hook_ceilings=HOOK_CEILINGS,
        grant=GRANT,
        strict=False,
        provided={"log"},
        audit=AuditLog(),
    )
    assert rights.env == {"B"}
    assert rights.interfaces == frozenset()


def test_strict_hook_ceiling_denial_is_audited_and_refuses() -> None:
    """With strict, a right above a hook's ceiling refuses the plugin, audited."""
    audit = AuditLog()
    with pytest.raises(CapabilityDenied, match="env B"):
        decide_for_hooks(
            "p",
            Capabilities(env=["A", "B"]),
            ["narrow", "wide"],
            ceiling=Capabilities.everything(),
            hook_ceilings=HOOK_CEILINGS,
            grant=GRANT,
            strict=True,
            provided=set(),
            audit=audit,
        )
    assert [e.detail for e in audit.events(kind="deny")] == ["env B (above the host's ceiling)"]
    assert [e.kind for e in audit.events(kind="refuse")] == ["refuse"]


def test_plugin_host_applies_hook_ceilings(tmp_path: Path, demo: Callable[..., Path]) -> None:
    """Through PluginHost: a component serving two hooks gets the narrower ceiling."""
    from .demo import DemoHooks

    pm = pluggy.PluginManager("demo")
    pm.add_hookspecs(DemoHooks)
    with PluginHost(
        pm,
        package=PACKAGE,
        hook_ceilings={"add_one": Capabilities(env=["A", "B"]), "pick": Capabilities(env=["A"])},
        grants={"both": Capabilities(env=["A", "B"]), "one": Capabilities(env=["A", "B"])},
        on_denied="drop",
        data_dir=tmp_path,
    ) as host:
        both = host.load(
            demo(k=1, funcs=["add-one", "pick"]), name="both", requests=Capabilities(env=["A", "B"])
        )
        one = host.load(
            demo(k=2, funcs=["add-one"]), name="one", requests=Capabilities(env=["A", "B"])
        )
        assert both.capabilities.env == {"A"}
        assert one.capabilities.env == {"A", "B"}
        assert pm.hook.add_one(x=1) == [3, 2]
        denied = [e.detail for e in host.audit.events(plugin="both", kind="deny")]
        assert denied == ["env B (above the host's ceiling)"]
        assert host.audit.events(plugin="one", kind="deny") == []


def test_intersect_keeps_every_kind_of_right_both_sides_allow() -> None:
    """Two ceilings met keep folders, links and topic patterns that both allow, narrowest."""
    from airssys_plugins.policy.capabilities import PluginLink
    from airssys_plugins.policy.decisions import intersect

    wide = Capabilities(
        filesystem=[FileGrant("/data", "data", "rw")],
        plugins=[PluginLink.parse("tokenizer:textpipe:nlp/tokenize@^1")],
        publish=["orders.>"],
        subscribe=[">"],
    )
    narrow = Capabilities(
        filesystem=[FileGrant("/data", "data", "ro")],
        plugins=[PluginLink.parse("tokenizer:textpipe:nlp/tokenize@^1")],
        publish=["orders.eu"],
        subscribe=["alerts.*"],
    )
    for met in (intersect(wide, narrow), intersect(narrow, wide)):
        assert [str(g) for g in met.filesystem] == [str(FileGrant("/data", "data", "ro"))]
        assert met.plugins == narrow.plugins
        assert met.publish == frozenset({"orders.eu"})
        assert met.subscribe == frozenset({"alerts.*"})
    assert intersect(wide, Capabilities()) == Capabilities()
