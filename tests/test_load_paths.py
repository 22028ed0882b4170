"""The small plugin's load path: what a load shares with the loads before it (options,
call plans, hook functions, store limits) follows what it depends on, and what it leaves
out (audit records' generic ``__init__``, supervisor and lifecycle state) is made when it
is needed (see "Loads" and "Density" in docs/explanation/performance.md)."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
import pluggy
import pytest

from airssys_plugins import (
    HookOptions,
    Limits,
    PluginHost,
    PluginTrap,
    Reliability,
    RestartPolicy,
)
from airssys_plugins.host import bridge
from airssys_plugins.host.pipeline import LoadOptions
from airssys_plugins.host.settings import Unset
from airssys_plugins.host.supervision import Supervisor
from airssys_plugins.policy.audit import AuditEvent, AuditLog, _event
from airssys_plugins.runtime.layout import CoreLayout
from airssys_plugins.runtime.sandbox import SandboxSpec, _store_limits, store_limits
from airssys_plugins.testing import call_hook

from .demo import COUNTING_WAT, PACKAGE, PickTooHooks, demo_pm

Demo = Callable[..., Path]


def test_an_audit_event_made_directly_is_the_record_its_class_makes() -> None:
    """The audit log sets an event's slots directly: it must be the event the record's
    own ``__init__`` makes, field for field, and the record must have no field the direct
    way leaves unset."""
    assert [f.name for f in attrs.fields(AuditEvent)] == [
        "time",
        "kind",
        "plugin",
        "detail",
        "fields",
    ]
    fields = {"sha256": "ab", "rights": []}
    made = _event(1.5, "load", "p", "loaded", fields)
    assert made == AuditEvent(1.5, "load", "p", "loaded", fields)
    assert repr(made) == repr(AuditEvent(1.5, "load", "p", "loaded", fields))
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        made.kind = "unload"  # type: ignore[misc]
    log = AuditLog()
    event = log.record("load", "p", "loaded", sha256="ab")
    assert type(event) is AuditEvent
    assert log.events(plugin="p") == [event]
    assert event.fields == {"sha256": "ab"}
    with pytest.raises(ValueError, match="unknown audit event kind"):
        log.record("nonsense", "p", "x")


def test_a_plain_load_shares_one_options_record_and_any_option_makes_its_own() -> None:
    plain = LoadOptions.of(None, Unset.UNSET, None, None, None, 1, "shared")
    assert plain is LoadOptions.of(None, Unset.UNSET, None, None, None, 1, "shared")
    assert plain == LoadOptions()
    given: list[LoadOptions] = [
        LoadOptions.of(
            {"add_one": HookOptions(tryfirst=True)}, Unset.UNSET, None, None, None, 1, "shared"
        ),
        LoadOptions.of(None, 2.0, None, None, None, 1, "shared"),
        LoadOptions.of(None, None, None, None, None, 1, "shared"),
        LoadOptions.of(None, Unset.UNSET, None, Limits(fuel=10), None, 1, "shared"),
        LoadOptions.of(None, Unset.UNSET, None, None, {"k": "v"}, 1, "shared"),
        LoadOptions.of(None, Unset.UNSET, None, None, None, 2, "shared"),
        LoadOptions.of(None, Unset.UNSET, None, None, None, 1, "per-call"),
    ]
    for options in given:
        assert options is not plain
        assert options != plain
    assert given[4].config == {"k": "v"}
    assert given[6].isolation == "per-call"


def test_store_limits_kept_per_distinct_set_follow_the_spec_and_the_layout() -> None:
    layouts = [None, CoreLayout(memories=1, tables=1), CoreLayout(memories=2, tables=3)]
    specs = [
        SandboxSpec(),
        SandboxSpec(memory=64 * 2**20),
        SandboxSpec(memory=32 * 2**20, tables=2),
        SandboxSpec(memory=32 * 2**20, instances=4),
    ]
    for spec in specs:
        for layout in layouts:
            kept = _store_limits(spec, layout)
            assert kept == store_limits(spec, layout)
            assert _store_limits(spec, layout) is kept  # one record per distinct set
    assert _store_limits(specs[1], None) != _store_limits(specs[2], None)


def test_an_idle_supervisor_holds_no_failure_list_until_a_failure() -> None:
    opened: list[str] = []
    policy = RestartPolicy(max_failures=2, window=60, cooldown=None, backoff_base=0)
    supervisor = Supervisor("p", policy, lambda name, why: opened.append(name))
    assert supervisor.failures == ()
    supervisor.failure(RuntimeError("one"))
    assert isinstance(supervisor.failures, list)
    assert supervisor.status().recent_failures == 1
    supervisor.failure(RuntimeError("two"))
    assert supervisor.open
    assert opened == ["p"]
    supervisor.reset()
    assert supervisor.failures == ()
    assert not supervisor.open
    supervisor.failure(RuntimeError("again"))
    assert supervisor.status().recent_failures == 1


def test_each_plugin_gets_the_shared_hook_function_bound_to_it(
    demo: Demo, private_cache: Path
) -> None:
    """Plugins of one component: one function per hook (its parameters the plugin and the
    hook's arguments), bound to each plugin. pluggy reads the hook's argument names, calls
    reach the right plugin, and a zero-argument and a historic hook work alike."""
    a_wasm = demo(k=3, funcs=["add-one", "setup", "get-setup", "fail"])
    pm = demo_pm()
    with PluginHost(pm, package=PACKAGE) as host:
        a = host.load(a_wasm, name="a")
        b = host.load(a_wasm, name="b")
        assert a.add_one.__func__ is b.add_one.__func__
        assert a.add_one.__self__ is a
        assert b.add_one.__self__ is b
        assert a.lifecycle == {}
        assert list(inspect.signature(a.add_one.__func__).parameters)[1:] == ["x"]
        assert list(inspect.signature(a.add_one).parameters) == ["x"]
        assert call_hook(a, "add_one", x=2) == 5  # airssys_plugins.testing reads it alike
        with pytest.raises(TypeError, match="missing"):
            call_hook(a, "add_one")
        impls = {i.plugin_name: i for i in pm.hook.add_one.get_hookimpls()}
        assert impls["a"].argnames == ("x",)
        assert impls["a"].function is a.add_one
        assert pm.hook.add_one(x=1) == [4, 4]
        assert a.add_one(2) == 5
        pm.hook.setup.call_historic(kwargs={"x": 7})
        assert pm.hook.get_setup() == [7, 7]
        assert a.get_setup() == 7
        with pytest.raises(PluginTrap) as info:
            b.fail(1)
        assert info.value.plugin == "b"
        assert a.supervisor is not None
        assert a.supervisor.failures == ()  # a's own supervisor counted nothing
        assert b.supervisor is not None
        assert len(b.supervisor.failures) == 1


def test_generated_hook_functions_keep_their_names_apart_from_the_arguments() -> None:
    """The generated function's own names are prefixed apart from any argument name, even
    arguments named like them."""

    class Instance:
        def __init__(self) -> None:
            self.seen: list[tuple[Any, ...]] = []

        def call(self, bound: object, args: tuple[Any, ...]) -> Any:
            self.seen.append(args)
            return ("called", bound, args)

    class Supervised:
        open = False
        retry_at = None
        consecutive = 0

    class Plugin:
        name = "p"
        _context = object()
        _idle = None
        supervisor = Supervised()

        def __init__(self) -> None:
            self.instances = [Instance()]

    names = ("_ap_plugin", "_ap_args", "plugin", "args", "bound", "supervisor", "result")
    shared = bridge._hook_function("hook", names, False, False, "the-plan")
    plugin = Plugin()
    method = shared.__get__(plugin)
    assert list(inspect.signature(shared).parameters)[1:] == list(names)
    result = method(1, 2, 3, 4, 5, 6, 7)
    assert result == ("called", "the-plan", (1, 2, 3, 4, 5, 6, 7))
    empty = bridge._hook_function("nothing", (), False, False, "plan")
    assert empty.__get__(plugin)() == ("called", "plan", ())
    with pytest.raises(ValueError, match="not a Python identifier"):
        bridge._hook_function("hook", ("not valid",), False, False, "plan")
    # hooks of one arity share one compiled source, each with its own names
    bridge._generic_code.cache_clear()
    one = bridge._hook_function("first_hook", ("a", "b"), False, False, "plan-1")
    two = bridge._hook_function("second_hook", ("x", "y"), False, False, "plan-2")
    assert bridge._generic_code.cache_info().misses == 1
    assert (one.__name__, list(inspect.signature(one).parameters)[1:]) == ("first_hook", ["a", "b"])
    assert (two.__name__, list(inspect.signature(two).parameters)[1:]) == (
        "second_hook",
        ["x", "y"],
    )
    assert one.__get__(plugin)(1, 2) == ("called", "plan-1", (1, 2))
    assert two.__get__(plugin)(3, 4) == ("called", "plan-2", (3, 4))


def test_what_a_load_attaches_is_kept_per_component_and_follows_options_and_contract(
    demo: Demo, private_cache: Path
) -> None:
    """The hooks a load attaches are worked out once per compiled component, matches and
    project: another load of it reuses them; other options or hookspecs added since make
    them again (pluggy sees what each load asked for)."""
    wasm = demo(k=5, funcs=["add-one", "pick"])
    pm = pluggy.PluginManager("demo")
    from .demo import AddOnlyHooks

    pm.add_hookspecs(AddOnlyHooks)
    with PluginHost(pm, package=PACKAGE) as host:
        first = host.load(wasm, name="first")
        component = first.image.component
        plans = bridge._HOOK_PLANS[component]
        assert len(plans) == 1
        second = host.load(wasm, name="second")
        assert len(plans) == 1  # the same plan
        assert second.add_one.__func__ is first.add_one.__func__
        tried = host.load(wasm, name="tried", hooks={"add_one": HookOptions(tryfirst=True)})
        assert len(plans) == 2
        assert tried.add_one.__func__ is not first.add_one.__func__
        impls = {i.plugin_name: i for i in pm.hook.add_one.get_hookimpls()}
        assert impls["tried"].tryfirst
        assert not impls["first"].tryfirst
        pm.add_hookspecs(PickTooHooks)  # a new contract: new hook objects, new matches
        later = host.load(wasm, name="later")
        assert len(plans) == 3
        assert sorted(later.hooks) == ["add_one", "pick"]
        assert pm.hook.pick(x=5) == 50
        assert sorted(first.hooks) == ["add_one"]  # loaded before the hookspecs changed
        assert pm.hook.add_one(x=1) == [6, 6, 6, 6]


def test_a_failing_plugin_of_a_shared_plan_still_counts_for_itself(
    demo: Demo, private_cache: Path
) -> None:
    """Loads that share a plan share no state: each plugin's circuit opens for itself."""
    wasm = demo(k=3, funcs=["add-one", "fail"])
    pm = demo_pm()
    policy = RestartPolicy(max_failures=2, window=60, cooldown=None, backoff_base=0)
    with PluginHost(pm, package=PACKAGE, reliability=Reliability(restart=policy)) as host:
        host.load(wasm, name="a")
        host.unload("a")
        a = host.load(wasm, name="a")  # the plan of the first load, a new plugin
        b = host.load(wasm, name="b")
        for _ in range(2):
            with pytest.raises(PluginTrap):
                a.fail(1)
        assert a.supervisor is not None
        assert a.supervisor.open
        assert b.supervisor is not None
        assert not b.supervisor.open
        assert pm.hook.add_one(x=1) == [4]


def test_the_result_limit_is_set_before_each_instance_s_first_measured_call(
    tmp_path: Path,
) -> None:
    """An instance's measuring walks are told their limit at its first measured call, not
    at instantiation: an instance never called through them pays nothing, and every new
    instance (after a refusal, a trap or a restart) is told again before its first such
    call, so the limit holds exactly on each."""
    from airssys_plugins.runtime import instance as runtime_instance
    from airssys_plugins.runtime.image import ComponentImage
    from airssys_plugins.runtime.instance import PluginInstance

    from .test_hostile_calls import parse_component
    from .test_result_bounds import _bind_all

    image = ComponentImage.load(
        "count", parse_component(tmp_path, "count", COUNTING_WAT), cache=False
    )
    instance = PluginInstance(image, sandbox=SandboxSpec(max_result_bytes=1000))
    try:
        instance.instantiate()
        assert runtime_instance._LIMIT_SET not in instance._funcs  # nothing called yet
        bound = _bind_all(instance, image)["f"]
        assert bound.measured is not None
        assert instance.call(bound, [1000]) == (1, "\0" * 1000)
        assert runtime_instance._LIMIT_SET in instance._funcs
        for generation in range(3):  # each refusal replaces the instance
            with pytest.raises(Exception, match="returned 1,001 bytes or more") as info:
                instance.call(bound, [1001])
            assert getattr(info.value, "reason", None) == "result too large"
            assert instance.call(bound, [1000]) == (1, "\0" * 1000)  # a new instance
            assert instance.generation == generation + 2
    finally:
        instance.close()


def test_plugins_without_wasi_or_grants_share_a_sandbox_that_follows_their_limits(
    demo: Demo, private_cache: Path
) -> None:
    """A component without WASI imports, loaded with no link, directory or environment
    granted, gets the sandbox made for its granted interfaces and limits: shared by the
    plugins loaded alike, another for other limits, and never a stale one."""
    wasm = demo(k=3, funcs=["add-one", "spin"])
    with PluginHost(demo_pm(), package=PACKAGE) as host:
        a = host.load(wasm, name="a")
        b = host.load(wasm, name="b")
        spec = a.instances[0].sandbox
        assert b.instances[0].sandbox is spec
        assert spec.stdio_logger is None  # no WASI: no stdio to log
        assert spec.timeout == host.limits.timeout
        short = host.load(wasm, name="short", timeout=0.05)
        assert short.instances[0].sandbox is not spec
        assert short.instances[0].sandbox.timeout == 0.05
        assert a.instances[0].sandbox.timeout == host.limits.timeout
        from airssys_plugins import PluginTimeout

        with pytest.raises(PluginTimeout):
            short.spin()
        fueled = host.load(wasm, name="fueled", limits=Limits(fuel=10_000))
        assert fueled.instances[0].sandbox.fuel == 10_000
        assert fueled.instances[0].sandbox is not spec
        host.unload("a")
        again = host.load(wasm, name="a")
        assert again.instances[0].sandbox is spec
        assert again.add_one(1) == 4


def test_the_result_limit_is_set_long_after_start_up(tmp_path: Path) -> None:
    """The limit is set under a deadline of its own: an instance first called through a
    measuring walk after its start-up deadline passed still gets it (and the limit then
    holds). Without it the setter met the deadline the instantiation left."""
    import time

    from airssys_plugins.runtime.image import ComponentImage
    from airssys_plugins.runtime.instance import PluginInstance

    from .test_hostile_calls import parse_component
    from .test_result_bounds import _bind_all

    path = parse_component(tmp_path, "count", COUNTING_WAT)
    image = ComponentImage.load("count", path, cache=False)
    spec = SandboxSpec(max_result_bytes=1000, startup_timeout=0.05, timeout=10.0)
    instance = PluginInstance(image, sandbox=spec)
    try:
        instance.instantiate()
        time.sleep(0.3)  # its start-up deadline has passed
        bound = _bind_all(instance, image)["f"]
        assert instance.call(bound, [1000]) == (1, "\0" * 1000)
        with pytest.raises(Exception, match="returned 1,001 bytes or more"):
            instance.call(bound, [1001])
    finally:
        instance.close()


def test_an_image_made_directly_is_the_record_its_class_makes(
    demo: Demo, private_cache: Path
) -> None:
    """The loads make their ComponentImage with its slots set directly: it must be the
    image the record's own ``__init__`` makes from the same facts, field for field, and
    the record must have no field the direct way leaves unset."""
    from airssys_plugins.runtime import image as image_module

    with PluginHost(demo_pm(), package=PACKAGE) as host:
        loaded = host.load(demo(k=2, funcs=["add-one"]), name="p").image
        facts = loaded._facts
        assert facts is not None
        made = image_module.ComponentImage(
            "p",
            loaded.path,
            loaded.sha256,
            loaded.component,
            facts.exports,
            facts.imports,
            facts.byte_exports,
            loaded.fuel,
            facts.layout,
            facts.measured,
            facts.measure_limit,
            facts.raw_exports,
            facts.raw_probe,
            facts.added_exports,
            facts,
            cached=True,
        )
        direct = image_module._image(
            "p", loaded.path, loaded.sha256, loaded.component, loaded.fuel, facts, True
        )
        names = [f.name for f in attrs.fields(image_module.ComponentImage)]
        assert names[-4:] == ["_facts", "data", "_cached", "_own"]
        for name in names:
            assert getattr(direct, name) == getattr(made, name), name
        assert [getattr(loaded, n) for n in names[:-1]] == [getattr(made, n) for n in names[:-1]]
        assert direct.shared is made.shared is facts.shared
        with pytest.raises(attrs.exceptions.FrozenInstanceError):
            direct.name = "q"  # type: ignore[misc]


def test_a_component_importing_only_wasi_has_its_imports_known_without_a_walk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A component whose imports are all WASI's imports no functions the host or another
    plugin must serve: its import names say so, and wasmtime's import types are not
    walked. One more import, and they are (test_load_sharing checks what is found)."""
    import subprocess

    from airssys_plugins.authoring.build import find_tool
    from airssys_plugins.runtime import image as image_module

    wasi = """(import "wasi:cli/environment@0.2.0" (instance
    (export "get-arguments" (func (result (list string))))))"""
    other = """(import "test:lib/api@1.0.0" (instance
    (export "twice" (func (param "x" u32) (result u32)))))"""
    walked: list[object] = []
    walk = image_module._imported_functions

    def counted(eng: Any, component: Any) -> Any:
        walked.append(component)
        return walk(eng, component)

    monkeypatch.setattr(image_module, "_imported_functions", counted)
    found = []
    for name, imports in (("only-wasi", wasi), ("mixed", wasi + other)):
        src, out = tmp_path / f"{name}.wat", tmp_path / f"{name}.wasm"
        src.write_text(f"(component {imports})")
        subprocess.run([find_tool("wasm-tools"), "parse", str(src), "-o", str(out)], check=True)
        image = image_module.ComponentImage.load(name, out, cache=False)
        found.append((list(image.imported_functions()), len(walked)))
    assert found == [([], 0), ([("test:lib/api@1.0.0", "twice")], 1)]


def _fresh_process_facts(path: Path) -> Any:
    """The facts a new process finds for ``path``: nothing kept in this one (no facts, no
    compiled component), the compile cache and its notes as they are."""
    from airssys_plugins import release_compiled
    from airssys_plugins.runtime import image as image_module

    with image_module._facts_lock:
        image_module._FACTS.clear()
    release_compiled()
    return image_module.ComponentImage.load("count", path)._facts


def _same_facts(a: Any, b: Any) -> None:
    for name in (
        "compiled",
        "exports",
        "imports",
        "byte_exports",
        "measured",
        "measure_limit",
        "raw_exports",
        "raw_probe",
        "added_exports",
        "layout",
    ):
        assert getattr(a, name) == getattr(b, name), name


@pytest.mark.parametrize("guest", ["counting", "bytes"])
def test_a_checked_types_note_gives_what_the_checks_give(
    guest: str, tmp_path: Path, private_cache: Path, monkeypatch: pytest.MonkeyPatch, caplog: Any
) -> None:
    """A component with added exports (measuring ones; raw and byte-buffer ones for the
    bytes guest) has its types checked once: a new process reads the checks' results from
    the note beside the compile cache, and gets the same facts. A damaged or forged note
    is checked again and rewritten; a note of other checking code (another stamp) is not
    read."""
    from airssys_plugins.authoring.build import build_guest
    from airssys_plugins.runtime import image as image_module

    from .test_hostile_calls import parse_component

    if guest == "counting":
        path = parse_component(tmp_path, "count", COUNTING_WAT)
    else:
        path = build_guest(Path(__file__).parent / "guests" / "bytes")
    from airssys_plugins.runtime import measure as measure_module

    checks: list[object] = []
    measured = measure_module.checked_measured

    def counted(*args: Any) -> Any:
        checks.append(args)
        return measured(*args)

    monkeypatch.setattr(measure_module, "checked_measured", counted)
    first = image_module.ComponentImage.load("count", path)._facts
    assert first is not None
    assert first.measured  # the component has added exports: the note is used
    if guest == "bytes":
        assert first.raw_exports
        assert first.byte_exports
    assert len(checks) == 1
    (note,) = private_cache.glob("*-checked-*.plan")
    again = _fresh_process_facts(path)
    assert len(checks) == 1  # read from the note, not checked again
    _same_facts(first, again)
    assert again.exports
    assert not set(again.added_exports) & {f for _, f in again.exports}

    # damage: checked again, the same facts, the note rewritten
    for damaged in (b"not a note", note.read_bytes()[:-7]):
        note.write_bytes(damaged)
        with caplog.at_level("WARNING", logger="airssys_plugins"):
            redone = _fresh_process_facts(path)
        assert "unreadable checked-types note" in caplog.text
        caplog.clear()
        _same_facts(first, redone)
        _same_facts(first, _fresh_process_facts(path))  # the rewritten note reads back
    assert len(checks) == 3

    # a forged value of the right shape but the wrong type is refused too
    import marshal

    fields = marshal.loads(note.read_bytes())
    form, types, fast, measured_items, limit, probe, raw = fields
    forgeries = [
        (form, types, fast, tuple((k, 1, b) for k, _, b in measured_items), limit, probe, raw)
    ]
    if raw:  # a raw export whose parameters are no core types
        forged_raw = tuple((k, (*f[:5], ("i32",), *f[6:])) for k, f in raw)
        forgeries.append((form, types, fast, measured_items, limit, probe, forged_raw))
    for forged in forgeries:
        note.write_bytes(marshal.dumps(forged))
        _same_facts(first, _fresh_process_facts(path))
    assert len(checks) == 3 + len(forgeries)
    assert marshal.loads(note.read_bytes()) == fields  # rewritten as the checks give it

    # other checking code: another key, so the note is not read
    monkeypatch.setattr(image_module, "_checked_stamp", lambda: "other-code")
    _same_facts(first, _fresh_process_facts(path))
    assert len(checks) == 4 + len(forgeries)
    assert len(list(private_cache.glob("*-checked-*.plan"))) == 2


def test_a_component_loads_from_any_bytes_like_object_and_other_sources_are_named(
    demo: Callable[..., Path],
) -> None:
    """``load`` takes the component's bytes as bytes, a bytearray (what
    ``wasmtime.wat2wasm`` gives) or a memoryview, each copied; anything that is neither
    bytes nor a path is a TypeError that says what load takes."""
    data = demo(k=3, funcs=["add-one"]).read_bytes()
    for i, source in enumerate([bytearray(data), memoryview(data)]):
        pm = demo_pm()
        with PluginHost(pm, package=PACKAGE) as host:
            plugin = host.load(source, name=f"b{i}")
            if isinstance(source, bytearray):
                source[:] = b"\0" * len(source)  # the host kept its own copy
            assert pm.hook.add_one(x=1) == [4]
            assert plugin.image.data == data
    with (
        PluginHost(demo_pm(), package=PACKAGE) as host,
        pytest.raises(TypeError, match=r"load\(\) takes a component's path or bytes, .*; got int"),
    ):
        host.load(42, name="n")  # type: ignore[arg-type]
