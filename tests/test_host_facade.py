"""PluginHost's settings objects, explicit signatures, the pluggy patch and load_plugins."""

from __future__ import annotations

import inspect
import shutil
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pluggy
import pytest
from pluggy import HookImpl

import airssys_plugins.host.loading
from airssys_plugins import (
    Capabilities,
    Limits,
    PluginHost,
    PluginLoadError,
    Reliability,
    RestartPolicy,
    SandboxPolicy,
)
from airssys_plugins.host.hookexec import FailurePolicies

from .demo import PACKAGE
from .test_reliability import PyAdder, PyBroken

Demo = Callable[..., Path]


# --------------------------------------------------------------------------- value objects


def test_value_objects_configure_the_host(pm: pluggy.PluginManager) -> None:
    """policy= and reliability= set what the keywords set, and the host acts on them."""
    grants = {"shout": Capabilities(interfaces=["log"])}
    policy = SandboxPolicy(
        ceiling=Capabilities(interfaces=["log"]), grants=grants, on_denied="drop"
    )
    restart = RestartPolicy(max_failures=2)
    reliability = Reliability(restart=restart, failure_policies={"add_one": "skip"})
    with PluginHost(pm, package=PACKAGE, policy=policy, reliability=reliability) as host:
        assert host.grants == grants
        assert host.ceiling == Capabilities(interfaces=["log"])
        assert host.on_denied == "drop"
        assert host.restart_policy is restart
        assert host.policy == policy
        assert host.reliability == reliability
        pm.register(PyAdder(), name="py-good")
        pm.register(PyBroken(), name="py-broken")
        assert pm.hook.add_one(x=1) == [101]  # skip, from the Reliability


def test_keywords_build_the_same_value_objects(pm: pluggy.PluginManager) -> None:
    """The old keywords keep working and mean the same SandboxPolicy and Reliability."""
    grants = {"shout": Capabilities(env=["LANG"])}
    with PluginHost(
        pm,
        package=PACKAGE,
        ceiling=Capabilities(env=["LANG"]),
        hook_ceilings={"add_one": Capabilities()},
        grants=grants,
        on_denied="drop",
        restart=RestartPolicy(cooldown=None),
        failure_policies={"add_one": "collect"},
    ) as host:
        assert host.policy == SandboxPolicy(
            ceiling=Capabilities(env=["LANG"]),
            hook_ceilings={"add_one": Capabilities()},
            grants=grants,
            on_denied="drop",
        )
        assert host.reliability == Reliability(
            restart=RestartPolicy(cooldown=None), failure_policies={"add_one": "collect"}
        )
        host.grants["other"] = Capabilities()  # grants stay a dict the app may change
        assert "other" in host.policy.grants


def test_defaults_without_keywords_or_objects(pm: pluggy.PluginManager) -> None:
    """No settings: everything as the ceiling, no grants, refuse, RestartPolicy()."""
    with PluginHost(pm, package=PACKAGE) as host:
        assert host.policy == SandboxPolicy()
        assert host.on_denied == "refuse"
        assert host.ceiling == Capabilities.everything()
        assert host.reliability == Reliability()


@pytest.mark.parametrize(
    ("keywords", "named"),
    [
        ({"policy": SandboxPolicy(), "grants": {}}, "grants="),
        ({"policy": SandboxPolicy(), "on_denied": "refuse"}, "on_denied="),
        ({"policy": SandboxPolicy(), "ceiling": Capabilities()}, "ceiling="),
        ({"reliability": Reliability(), "restart": RestartPolicy()}, "restart="),
        ({"reliability": Reliability(), "failure_policies": {}}, "failure_policies="),
    ],
    ids=["policy+grants", "policy+on_denied", "policy+ceiling", "rel+restart", "rel+policies"],
)
def test_value_object_and_its_keyword_is_a_type_error(
    pm: pluggy.PluginManager, keywords: dict[str, Any], named: str
) -> None:
    """Giving a setting both inside its value object and as a keyword is refused."""
    original = pm._inner_hookexec
    with pytest.raises(TypeError, match=f"and also {named}") as info:
        PluginHost(pm, package=PACKAGE, **keywords)
    assert "not both" in str(info.value)
    assert pm._inner_hookexec is original  # nothing was installed on the way


def test_value_objects_validate_at_construction(tmp_path: Path) -> None:
    """A bad on_denied or failure policy fails when the object is made; a grants file is
    read then."""
    with pytest.raises(ValueError, match="on_denied must be 'refuse' or 'drop'"):
        SandboxPolicy(on_denied="maybe")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="hook 'add_one': failure policy must be one of"):
        Reliability(failure_policies={"add_one": "ignore"})  # type: ignore[dict-item]
    path = tmp_path / "grants.toml"
    path.write_text('[plugins.shout]\ninterfaces = ["log"]\n')
    assert SandboxPolicy(grants=path).grants == {"shout": Capabilities(interfaces=["log"])}
    with pytest.raises(TypeError):
        SandboxPolicy().grants["x"] = Capabilities()  # type: ignore[index]  # read-only


# --------------------------------------------------------------------------- signatures


def test_misspelt_load_and_reload_options_are_refused(
    pm: pluggy.PluginManager, demo: Demo, tmp_path: Path
) -> None:
    """load and reload take explicit keywords: a typo is a TypeError, not ignored."""
    wasm = tmp_path / "a.wasm"
    shutil.copy(demo(k=1, funcs=["add-one"]), wasm)
    with PluginHost(pm, package=PACKAGE) as host:
        with pytest.raises(TypeError, match="pool_sise"):
            host.load(wasm, pool_sise=5)  # type: ignore[call-arg]
        host.load(wasm)
        with pytest.raises(TypeError, match="pool_sise"):
            host.reload("a", pool_sise=5)  # type: ignore[call-arg]
        assert pm.hook.add_one(x=1) == [2]  # the old version still serves
    assert list(inspect.signature(PluginHost.reload).parameters) == [
        "self",
        "name",
        "source",
        "requests",
        "approve",
        "hooks",
        "timeout",
        "limits",
        "config",
        "pool_size",
    ]


def test_reload_carries_over_what_is_not_given(
    pm: pluggy.PluginManager, demo: Demo, tmp_path: Path
) -> None:
    """Unset reload options carry over; None means what it means for load."""
    wasm = tmp_path / "a.wasm"
    shutil.copy(demo(k=1, funcs=["add-one"]), wasm)
    with PluginHost(pm, package=PACKAGE, limits=Limits(timeout=9.0)) as host:
        host.load(wasm, pool_size=2, limits=Limits(timeout=3.0), config={"k": "v"})
        kept = host.reload("a")
        assert (len(kept.instances), kept.limits.timeout, kept.config) == (2, 3.0, {"k": "v"})
        changed = host.reload("a", pool_size=1, timeout=4.0, config=None, limits=None)
        assert (len(changed.instances), changed.config) == (1, {})
        assert changed.limits.timeout == 4.0  # timeout= over the host's default limits
        assert host.reload("a", limits=None).limits == Limits(timeout=9.0)


# --------------------------------------------------------------------------- pluggy patch


def test_close_gives_pluggy_its_hook_execution_back(pm: pluggy.PluginManager) -> None:
    """After close, pm._inner_hookexec is pluggy's again, and a second host on the same
    manager applies its own policies."""
    original = pm._inner_hookexec
    pm.register(PyAdder(), name="py-good")
    pm.register(PyBroken(), name="py-broken")
    first = PluginHost(pm, package=PACKAGE, failure_policies={"add_one": "skip"})
    assert pm._inner_hookexec is not original
    first.close()
    assert pm._inner_hookexec is original
    with pytest.raises(ZeroDivisionError):
        pm.hook.add_one(x=1)  # no policy any more
    with PluginHost(pm, package=PACKAGE) as second:
        assert pm._inner_hookexec is original  # a host without policies never patches
        second.set_failure_policy("add_one", "skip")
        assert pm.hook.add_one(x=1) == [101]
    assert pm._inner_hookexec is original


def test_hosts_closed_out_of_order_leave_pluggy_clean(pm: pluggy.PluginManager) -> None:
    """Two hosts on one manager: closing the first keeps the second's policy; closing the
    second then restores pluggy's function, skipping the first's wrapper."""
    original = pm._inner_hookexec
    pm.register(PyAdder(), name="py-good")
    pm.register(PyBroken(), name="py-broken")
    first = PluginHost(pm, package=PACKAGE, failure_policies={"add_one": "skip"})
    second = PluginHost(pm, package=PACKAGE)
    second.set_failure_policy("add_one", "skip")
    first.close()
    assert pm.hook.add_one(x=1) == [101]  # the second host's policy still applies
    second.close()
    assert pm._inner_hookexec is original


def test_pluggy_hook_execution_is_what_failure_policies_wrap() -> None:
    """Smoke test of pluggy's private API that host/hookexec.py depends on."""
    where = (
        f"pluggy {pluggy.__version__} changed PluginManager._inner_hookexec, which "
        "airssys_plugins/host/hookexec.py wraps for failure policies; adapt that module"
    )
    pm = pluggy.PluginManager("smoke")
    inner = getattr(pm, "_inner_hookexec", None)
    assert callable(inner), where
    params = list(inspect.signature(inner).parameters)
    assert params == ["hook_name", "hook_impls", "caller_kwargs", "firstresult"], where

    class Spec:
        @pluggy.HookspecMarker("smoke")
        def ping(self, x: int) -> int: ...  # type: ignore[empty-body]

    class Impl:
        @pluggy.HookimplMarker("smoke")
        def ping(self, x: int) -> int:
            return x + 1

    seen: list[tuple[object, ...]] = []

    def spy(
        hook_name: str,
        hook_impls: Sequence[HookImpl],
        caller_kwargs: Mapping[str, object],
        firstresult: bool,
    ) -> object:
        seen.append((hook_name, list(hook_impls), dict(caller_kwargs), firstresult))
        return inner(hook_name, hook_impls, caller_kwargs, firstresult)

    pm.add_hookspecs(Spec)
    pm.register(Impl())
    pm._inner_hookexec = spy
    assert pm.hook.ping(x=1) == [2], where
    assert len(seen) == 1, where  # every hook call goes through _inner_hookexec
    name, impls, kwargs, firstresult = seen[0]
    assert (name, kwargs, firstresult) == ("ping", {"x": 1}, False), where
    assert all(isinstance(i, HookImpl) for i in impls), where  # type: ignore[attr-defined]


def test_missing_pluggy_hook_execution_is_a_clear_error(pm: pluggy.PluginManager) -> None:
    """Without pluggy's _inner_hookexec, installing a policy says which pluggy it was."""
    del pm._inner_hookexec
    with pytest.raises(RuntimeError, match=f"pluggy {pluggy.__version__} has no"):
        FailurePolicies(pm, {"add_one": "skip"})


# --------------------------------------------------------------------------- load_plugins


def _plugin_dir(root: Path, name: str, wasm: Path) -> Path:
    d = root / name
    d.mkdir(parents=True)
    shutil.copy(wasm, d / f"{name}.wasm")
    (d / "plugin.toml").write_text(f'name = "{name}"\nversion = "1.0.0"\n')
    return d


@pytest.fixture
def fails_for_broken(monkeypatch: pytest.MonkeyPatch) -> Callable[[BaseException], None]:
    """Make loading the plugin named ``broken`` raise the given exception."""

    def arm(exc: BaseException) -> None:
        real = airssys_plugins.host.loading.checked_manifest

        def checked_manifest(source: Any, package: Any) -> Any:
            if source.name == "broken":
                raise exc
            return real(source, package)

        monkeypatch.setattr(airssys_plugins.host.loading, "checked_manifest", checked_manifest)

    return arm


@pytest.mark.parametrize(
    "exc",
    [RecursionError("too deep"), OSError(28, "No space left on device"), ValueError("bad")],
    ids=["RecursionError", "OSError", "ValueError"],
)
def test_any_failure_of_one_plugin_is_reported_as_broken(
    pm: pluggy.PluginManager,
    demo: Demo,
    tmp_path: Path,
    fails_for_broken: Callable[[BaseException], None],
    exc: Exception,
) -> None:
    """An unexpected error loading one plugin becomes a named PluginLoadError (caused by
    it) in the report, and the other plugins still load."""
    wasm = demo(k=1, funcs=["add-one"])
    good, broken = _plugin_dir(tmp_path, "good", wasm), _plugin_dir(tmp_path, "broken", wasm)
    fails_for_broken(exc)
    with PluginHost(pm, package=PACKAGE) as host:
        report = host.load_plugins([broken, good])
        assert list(report.loaded) == ["good"]
        error = report["broken"].error
        assert isinstance(error, PluginLoadError)
        assert error.plugin == "broken"
        assert error.__cause__ is exc
        assert f"plugin 'broken' ({broken / 'plugin.toml'}) could not be loaded" in str(error)
        assert type(exc).__name__ in str(error)
        assert report["broken"].reason.startswith("PluginLoadError: plugin 'broken'")


def test_strict_raises_an_unexpected_failure_and_loads_nothing(
    pm: pluggy.PluginManager,
    demo: Demo,
    tmp_path: Path,
    fails_for_broken: Callable[[BaseException], None],
) -> None:
    """strict=True raises the named error and unloads what the call had loaded."""
    wasm = demo(k=1, funcs=["add-one"])
    good, broken = _plugin_dir(tmp_path, "a-good", wasm), _plugin_dir(tmp_path, "broken", wasm)
    cause = RecursionError("too deep")
    fails_for_broken(cause)
    with PluginHost(pm, package=PACKAGE) as host:
        with pytest.raises(PluginLoadError, match="plugin 'broken'") as info:
            host.load_plugins([good, broken], strict=True)
        assert info.value.__cause__ is cause
        assert host.plugins == {}
        assert pm.get_plugin("a-good") is None
