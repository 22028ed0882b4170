"""The pytest plugin airssys_plugins.testing, used the way a plugin author uses it.

Each test writes a small test suite into a pytester directory and runs it in-process,
with the plugin loaded through its ``pytest11`` entry point, against real components:
textpipe's ``shout`` (WAT), a demo WAT component that can spin, and eventrouter's
``dedup`` (componentize-py, imports kv and log).
"""

from __future__ import annotations

import importlib.metadata
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from airssys_plugins import PluginHost, PluginTrap
from airssys_plugins.testing import raises_limit

pytest_plugins = ["pytester"]

# The inner sessions run in this process. Their faulthandler plugin would disable and
# re-enable faulthandler at the end, which restores the signal handlers from before this
# session started and so drops wasmtime's trap handlers (a later trap would then kill the
# process with SIGILL): keep it off in the inner sessions.
#: (The inner sessions run in this process, which imported the package already: pytest
#: 9.2 warns that it cannot rewrite its asserts. A pytest run of its own never sees that.)
STRICT_INI = """\
[pytest]
addopts = --strict-config --strict-markers -p no:cacheprovider -p no:faulthandler
filterwarnings =
    error
    ignore:Module already imported so cannot be rewritten:pytest.PytestAssertRewriteWarning
"""


def ini(**options: str) -> str:
    return STRICT_INI + "".join(f"{key} = {value}\n" for key, value in options.items())


def test_entry_point_declares_the_plugin() -> None:
    """pyproject's pytest11 entry point names the module (reinstall if this fails)."""
    points = importlib.metadata.entry_points(group="pytest11").select(name="airssys_plugins")
    assert [p.value for p in points] == ["airssys_plugins.testing"]


def test_loading_the_plugin_does_not_load_wasmtime() -> None:
    """pytest loads the plugin in every session, so it stays light until a test loads a
    component."""
    code = "import sys, airssys_plugins.testing; print('wasmtime' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert (out.returncode, out.stdout.strip()) == (0, "False"), out.stderr


def test_fixtures_are_listed_and_can_be_disabled(pytester: pytest.Pytester) -> None:
    """The fixtures come with the installed package; -p no:airssys_plugins removes them."""
    pytester.makeini(STRICT_INI)
    pytester.makepyfile("def test_uses(plugin_host):\n    pass\n")
    listed = pytester.runpytest("--fixtures")
    listed.stdout.fnmatch_lines(
        [
            "*fixtures defined from airssys_plugins.testing*",
            "plugin_host -- *",
            "*Factory: contract -> a PluginHost*",
            "load_component -- *",
            "conformance -- *",
        ]
    )
    disabled = pytester.runpytest("-p", "no:airssys_plugins")
    disabled.assert_outcomes(errors=1)
    disabled.stdout.fnmatch_lines(["*fixture 'plugin_host' not found*"])


SHOUT_TESTS = """
import shutil

import pytest

from airssys_plugins import Capabilities, ContractMismatchError
from airssys_plugins.testing import call_hook

SHOUT = {shout!r}


def test_call_one_implementation(load_component):
    plugin = load_component(SHOUT, name="shout")
    assert call_hook(plugin, "transform", text="hi") == "HI!"
    assert plugin.hooks == {{"transform": "textpipe:hooks/transform@1.0.0#transform"}}
    assert plugin.capabilities == Capabilities()


def test_components_share_the_default_host(load_component):
    load_component(SHOUT, name="a")
    load_component(SHOUT, name="b")
    assert load_component.host().pm.hook.transform(text="x") == ["X!", "X!"]


def test_each_host_is_fresh(plugin_host, tmp_path):
    host = plugin_host()
    assert host.pm.project_name == "textpipe"
    assert host.pm.get_plugins() == set()
    assert str(host.contract.package) == "textpipe:hooks@1.0.0"
    assert host.data_dir.is_relative_to(tmp_path)


def test_conformance(conformance):
    report = conformance(SHOUT, ["transform"], name="shout")
    assert report.hooks == {{"transform": "textpipe:hooks/transform@1.0.0#transform"}}
    assert report.missing == ("analyze", "configure", "detect_language")
    assert report.imports == ()


def test_conformance_names_every_missing_hook(conformance):
    with pytest.raises(ContractMismatchError) as info:
        conformance(SHOUT, ["transform", "analyze", "detect_language"])
    assert {{m.hook for m in info.value.mismatches}} == {{"analyze", "detect_language"}}


def test_call_hook_checks_arguments_and_hooks(load_component):
    plugin = load_component(SHOUT, name="shout")
    with pytest.raises(TypeError, match=r"takes \\(text\\): missing \\['text'\\]; unexpected \\['txt'\\]"):
        call_hook(plugin, "transform", txt="hi")
    with pytest.raises(AssertionError, match="does not implement hook 'analyze'"):
        call_hook(plugin, "analyze", text="hi")


def test_plugin_directory_with_manifest(load_component, tmp_path):
    shutil.copy(SHOUT, tmp_path / "shout.wasm")
    (tmp_path / "plugin.toml").write_text(
        'name = "shouty"\\ncomponent = "shout.wasm"\\n'
        '[contract]\\npackage = "textpipe:hooks"\\nversion = "^1.0"\\n'
        "[limits]\\ntimeout = 0.5\\n"
        '[config]\\ncolour = "red"\\n'
    )
    plugin = load_component(tmp_path)
    assert plugin.name == "shouty"
    assert plugin.limits.timeout == 0.5
    assert plugin.config == {{"colour": "red"}}
    assert call_hook(plugin, "transform", text="ok") == "OK!"


def test_manifest_for_another_contract_is_refused(load_component, tmp_path):
    shutil.copy(SHOUT, tmp_path / "shout.wasm")
    (tmp_path / "plugin.toml").write_text(
        'name = "stray"\\ncomponent = "shout.wasm"\\n'
        '[contract]\\npackage = "other:hooks"\\nversion = "^1.0"\\n'
    )
    with pytest.raises(ContractMismatchError, match="targets other:hooks"):
        load_component(tmp_path)


def test_what_an_author_sees_when_a_hook_is_missing(conformance):
    conformance(SHOUT, ["analyze"], name="shout")
"""


def test_author_suite_against_shout(
    pytester: pytest.Pytester, textpipe_wasm: dict[str, Path]
) -> None:
    """load_component, call_hook, conformance and manifests against textpipe's contract
    (set once with the airssys_contract ini option); a failing conformance check reads
    as the contract mismatch."""
    pytester.makeini(ini(airssys_contract="hookspecs.textpipe:TextHooks"))
    pytester.makepyfile(test_shout=SHOUT_TESTS.format(shout=str(textpipe_wasm["shout"])))
    result = pytester.runpytest()
    result.assert_outcomes(passed=8, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*ContractMismatchError: plugin 'shout' does not fit the host contract "
            "(1 problem(s) in hook(s) analyze)*",
            "*hook 'analyze': textpipe:hooks/analyze@1.0.0#analyze is missing",
            "*expected: func(text: string) -> list<record { name: string, value: f64 }>",
            "*actual:   (not exported)",
            "FAILED test_shout.py::test_what_an_author_sees_when_a_hook_is_missing*",
        ]
    )


LIMIT_TESTS = """
import pluggy
import pytest

from airssys_plugins import Limits, u32
from airssys_plugins.testing import call_hook, raises_limit, raises_timeout

hookspec = pluggy.HookspecMarker("demo")
PACKAGE = "demo:hooks@1.0.0"
WASM = {wasm!r}


class DemoHooks:
    @hookspec
    def add_one(self, x: u32) -> u32: ...

    @hookspec
    def spin(self) -> None: ...


def test_timeout_names_plugin_and_hook(load_component):
    plugin = load_component(WASM, name="spinner", contract=DemoHooks, limits=Limits(timeout=0.05))
    host = load_component.host(DemoHooks)
    with raises_timeout("spinner", hook="spin", reason="timeout") as info:
        host.pm.hook.spin()
    assert "after 0.05 s" in str(info.value)
    assert call_hook(plugin, "add_one", x=1) == 2  # a fresh instance after the timeout


def test_fuel(load_component):
    plugin = load_component(WASM, name="hog", contract=DemoHooks, limits=Limits(fuel=100_000))
    with raises_limit("hog", hook="spin", reason="fuel exhausted"):
        call_hook(plugin, "spin")


def test_limit_events_are_audited(plugin_host, load_component):
    host = plugin_host(DemoHooks, limits=Limits(timeout=0.05))
    load_component(WASM, name="spinner", host=host)
    with raises_limit("spinner"):
        host.pm.hook.spin()
    assert [e.kind for e in host.audit.events(plugin="spinner", kind="limit")] == ["limit"]


def test_wrong_plugin_named(load_component):
    load_component(WASM, name="spinner", contract=DemoHooks, limits=Limits(timeout=0.05))
    with raises_timeout("other", hook="spin"):
        load_component.host(DemoHooks).pm.hook.spin()


def test_no_limit_hit(load_component):
    plugin = load_component(WASM, name="calm", contract=DemoHooks)
    with raises_limit("calm"):
        call_hook(plugin, "add_one", x=1)
"""


def test_limit_helpers(pytester: pytest.Pytester, demo: Callable[..., Path]) -> None:
    """raises_limit/raises_timeout pass when the named plugin hits a limit, and fail with
    a message saying what differed (another plugin) or that nothing was raised."""
    pytester.makeini(STRICT_INI)
    pytester.makepyfile(test_limits=LIMIT_TESTS.format(wasm=str(demo(funcs=["add-one", "spin"]))))
    result = pytester.runpytest()
    result.assert_outcomes(passed=3, failed=2)
    result.stdout.fnmatch_lines(
        [
            "*AssertionError: PluginTimeout was raised, but it names plugin 'spinner', "
            "not 'other':",
            "*plugin 'spinner' timed out in hook 'spin' after 0.05 s*",
        ]
    )
    result.stdout.fnmatch_lines(["*Failed: DID NOT RAISE*"])


GRANT_TESTS = """
import pytest

from airssys_plugins import Capabilities
from airssys_plugins.testing import call_hook, grant, raises_denied
from hookspecs.eventrouter import Event, Field

DEDUP = {dedup!r}
NEEDS = Capabilities(interfaces=["kv", "log"])


def event(id):
    return Event(id, "github", "push", "ada", "{{}}", [])


def test_requested_rights_are_granted(load_component):
    plugin = load_component(DEDUP, name="dedup", requests=NEEDS)
    assert plugin.capabilities == NEEDS
    assert call_hook(plugin, "filter_event", event=event("1")) is None
    assert call_hook(plugin, "filter_event", event=event("1")) == (
        "duplicate delivery of github event 1"
    )
    assert call_hook(plugin, "report") == [
        Field("github/duplicate", "1"),
        Field("github/new", "1"),
    ]


def test_kv_state_is_per_test(load_component):
    plugin = load_component(DEDUP, name="dedup", requests=NEEDS)
    assert call_hook(plugin, "filter_event", event=event("1")) is None


def test_refused_without_the_operators_grants(plugin_host, load_component):
    host = plugin_host()
    with raises_denied("dedup", "interface kv", "interface log"):
        load_component(DEDUP, name="dedup", host=host, requests=NEEDS, grants=None)


def test_imports_need_requests(load_component):
    with raises_denied("dedup", "interface airssys:host/kv@0.1.0 (imported, not granted)"):
        load_component(DEDUP, name="dedup")


def test_grant_helper_adds_up(plugin_host, load_component):
    host = plugin_host()
    grant(host, "dedup", interfaces=["kv"])
    assert grant(host, "dedup", Capabilities(interfaces=["log"])) == NEEDS
    plugin = load_component(DEDUP, name="dedup", host=host, requests=NEEDS, grants=None)
    assert plugin.capabilities == NEEDS
"""


def test_grant_helpers_with_a_component_importing_kv(
    pytester: pytest.Pytester, eventrouter_wasm: dict[str, Path]
) -> None:
    """Requested rights are granted by default; grants=None tests the operator's grants;
    grant() adds rights up; raises_denied names the refused ones; kv is per test."""
    pytester.makeini(ini(airssys_contract="hookspecs.eventrouter:EventHooks"))
    pytester.makepyfile(test_grants=GRANT_TESTS.format(dedup=str(eventrouter_wasm["dedup"])))
    result = pytester.runpytest()
    result.assert_outcomes(passed=5)


def test_missing_contract_is_explained(
    pytester: pytest.Pytester, textpipe_wasm: dict[str, Path], tmp_path: Path
) -> None:
    """Without a contract argument or ini option, the fixture says how to give one."""
    wasm = tmp_path / "shout.wasm"
    shutil.copy(textpipe_wasm["shout"], wasm)
    pytester.makeini(STRICT_INI)
    pytester.makepyfile(f"def test_it(load_component):\n    load_component({str(wasm)!r})\n")
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["*ValueError: no contract: pass contract='module:Hooks'*set airssys_contract*"]
    )


def _doc_block(title: str) -> str:
    """The code block of docs/howto/test-a-plugin.md with this title."""
    text = (Path(__file__).parent.parent / "docs/howto/test-a-plugin.md").read_text()
    match = re.search(rf'```\w+ title="{re.escape(title)}"\n(.*?)```', text, re.DOTALL)
    assert match is not None, f"no code block titled {title!r}"
    return match.group(1)


@pytest.mark.parametrize(
    ("title", "contract", "component", "passed"),
    [
        ("tests/test_shout.py", "hookspecs.textpipe:TextHooks", ("textpipe", "shout"), 4),
        ("tests/test_dedup.py", "hookspecs.eventrouter:EventHooks", ("eventrouter", "dedup"), 2),
    ],
    ids=["shout", "dedup"],
)
def test_howto_examples_pass(
    pytester: pytest.Pytester,
    request: pytest.FixtureRequest,
    title: str,
    contract: str,
    component: tuple[str, str],
    passed: int,
) -> None:
    """The test files in the how-to page pass as written, against the real components."""
    app, name = component
    built: dict[str, Path] = request.getfixturevalue(f"{app}_wasm")
    shutil.copy(built[name], pytester.path / f"{name}.wasm")
    if title == "tests/test_shout.py":  # the page shows the ini option in this block
        assert f'airssys_contract = "{contract}"' in _doc_block("pyproject.toml")
    pytester.makeini(ini(airssys_contract=contract))
    pytester.makepyfile(**{Path(title).stem: _doc_block(title)})
    pytester.runpytest().assert_outcomes(passed=passed)


def test_traps_still_caught_after_an_inner_session(
    pytester: pytest.Pytester, demo: Callable[..., Path], host: PluginHost, pm: Any
) -> None:
    """An in-process inner session that loaded a component leaves wasmtime's signal
    handlers in place: a trap in this process is still a PluginTrap, not a SIGILL."""
    wasm = demo(funcs=["add-one", "fail"])
    pytester.makeini(ini(airssys_contract="tests.demo:DemoHooks"))
    pytester.makepyfile(
        f"def test_load(load_component):\n    load_component({str(wasm)!r}, name='d')\n"
    )
    pytester.runpytest().assert_outcomes(passed=1)
    host.load(wasm, name="d")
    with raises_limit("d", kind=PluginTrap, reason="unreachable executed"):
        pm.hook.fail(x=1)
