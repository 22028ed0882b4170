"""WIT resources both ways: a component's resources as host proxies, the host's resources
as guest handles, with own/borrow rules, stale handles and leaks (real WAT components)."""

from __future__ import annotations

import logging
from pathlib import Path

import pluggy
import pytest

from airssys_plugins import (
    ArgumentError,
    Capabilities,
    ContractMismatchError,
    HookspecError,
    Limits,
    PluginHost,
    PluginTrap,
    u32,
    wit_binding,
)
from airssys_plugins._errors import StaleResourceError
from airssys_plugins.authoring.build import build_guest
from airssys_plugins.contract.annotations import Borrow, resource
from airssys_plugins.contract.mapping import Contract
from airssys_plugins.runtime.resources import guest_resource, leaked_handles

from .resource_hooks import COUNTERS, DOCS, Counter, Document, Hooks, open_document, spec

GUESTS = Path(__file__).resolve().parent / "guests"
ROOT = GUESTS.parent.parent
# The world both guests implement: a WAT one (below) and a componentize-py one
# (tests/guests/resources: app.py, and counters.py for the resource class).
WIT = (GUESTS / "resources" / "wit" / "world.wit").read_text()

# A counter's rep is the address of a 4-byte cell holding its count; [dtor]counter counts
# destructor runs in a global (read back through `boom`'s neighbour, `dtors`).
WAT = """(module
  (import "[export]test:res/counters@1.0.0" "[resource-new]counter"
    (func $new (param i32) (result i32)))
  (import "[export]test:res/counters@1.0.0" "[resource-rep]counter"
    (func $rep (param i32) (result i32)))
  (import "[export]test:res/counters@1.0.0" "[resource-drop]counter" (func $drop (param i32)))
  (import "test:res/docs@1.0.0" "[method]document.length"
    (func $doclen (param i32) (result i32)))
  (import "test:res/docs@1.0.0" "open" (func $open (param i32 i32) (result i32)))
  (import "test:res/docs@1.0.0" "[resource-drop]document" (func $docdrop (param i32)))
  (memory (export "memory") 1)
  (global $next (mut i32) (i32.const 16))
  (global $dtors (mut i32) (i32.const 0))
  (func $alloc (param $v i32) (result i32) (local $p i32)
    (local.set $p (global.get $next))
    (global.set $next (i32.add (global.get $next) (i32.const 4)))
    (i32.store (local.get $p) (local.get $v))
    (local.get $p))
  (func (export "test:res/counters@1.0.0#[constructor]counter") (param i32) (result i32)
    (call $new (call $alloc (local.get 0))))
  (func (export "test:res/counters@1.0.0#[method]counter.get") (param i32) (result i32)
    (i32.load (local.get 0)))
  (func (export "test:res/counters@1.0.0#[method]counter.inc") (param i32 i32)
    (i32.store (local.get 0) (i32.add (i32.load (local.get 0)) (local.get 1))))
  (func (export "test:res/counters@1.0.0#[method]counter.explode") (param i32) unreachable)
  (func (export "test:res/counters@1.0.0#[static]counter.zero") (result i32)
    (call $new (call $alloc (i32.const 0))))
  (func (export "test:res/counters@1.0.0#make") (param i32) (result i32)
    (call $new (call $alloc (local.get 0))))
  (func (export "test:res/counters@1.0.0#peek") (param i32) (result i32)
    (i32.load (local.get 0)))
  (func (export "test:res/counters@1.0.0#consume") (param i32) (result i32) (local $r i32)
    (local.set $r (call $rep (local.get 0)))
    (call $drop (local.get 0))
    (i32.load (local.get $r)))
  (func (export "test:res/counters@1.0.0#boom") (result i32) unreachable)
  (func (export "test:res/counters@1.0.0#make-many") (param $n i32) (result i32)
    (local $arr i32) (local $i i32) (local $ret i32)
    (local.set $arr (global.get $next))
    (global.set $next (i32.add (global.get $next) (i32.mul (local.get $n) (i32.const 4))))
    (block $done
      (loop $each
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (i32.store (i32.add (local.get $arr) (i32.mul (local.get $i) (i32.const 4)))
          (call $new (call $alloc (local.get $i))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $each)))
    (local.set $ret (global.get $next))
    (global.set $next (i32.add (global.get $next) (i32.const 8)))
    (i32.store (local.get $ret) (local.get $arr))
    (i32.store offset=4 (local.get $ret) (local.get $n))
    (local.get $ret))
  ;; borrows of its own resource arrive as reps: the cells themselves
  (func (export "test:res/counters@1.0.0#total") (param $p i32) (param $n i32) (result i32)
    (local $i i32) (local $sum i32)
    (block $done
      (loop $each
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (local.set $sum (i32.add (local.get $sum)
          (i32.load (i32.load (i32.add (local.get $p) (i32.mul (local.get $i) (i32.const 4)))))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $each)))
    (local.get $sum))
  (func (export "test:res/counters@1.0.0#[dtor]counter") (param i32)
    (global.set $dtors (i32.add (global.get $dtors) (i32.const 1))))
  (func (export "doclen") (param i32) (result i32) (local $n i32)
    (local.set $n (call $doclen (local.get 0)))
    (call $docdrop (local.get 0))
    (local.get $n))
  (func (export "open-and-measure") (param i32 i32) (result i32) (local $h i32) (local $n i32)
    (local.set $h (call $open (local.get 0) (local.get 1)))
    (local.set $n (call $doclen (local.get $h)))
    (call $docdrop (local.get $h))
    (local.get $n))
  (func (export "keep") (param i32) (result i32)
    (call $doclen (local.get 0)))
  ;; a handle index it was never given
  (func (export "forge") (result i32)
    (call $doclen (i32.const 99)))
  (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32) (local $p i32)
    (local.set $p (global.get $next))
    (global.set $next (i32.add (global.get $next)
      (i32.and (i32.add (local.get 3) (i32.const 7)) (i32.const -8))))
    (local.get $p))
)
"""


@pytest.fixture(scope="module")
def wat_wasm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    src = tmp_path_factory.mktemp("resources") / "guest"
    (src / "wit").mkdir(parents=True)
    (src / "wit" / "world.wit").write_text(WIT)
    (src / "guest.wat").write_text(WAT)
    return build_guest(src, world="guest")


@pytest.fixture(scope="module", params=["wat", "componentize-py"])
def wasm(request: pytest.FixtureRequest, wat_wasm: Path) -> Path:
    """The same world from two toolchains: hand-written WAT and componentize-py."""
    if request.param == "wat":
        return wat_wasm
    return build_guest(GUESTS / "resources", world="guest")


@pytest.fixture
def loaded(wasm: Path):  # type: ignore[no-untyped-def]
    pm = pluggy.PluginManager("res")
    pm.add_hookspecs(Hooks)
    # An 18 MB componentize-py component compiles once (then the AOT cache serves it);
    # on a loaded CI machine that first compile may take longer than the default limit.
    slow_ok = Limits(compile_timeout=900)
    with PluginHost(pm, grants={"g": Capabilities(interfaces={"docs"})}, limits=slow_ok) as host:
        host.provide(Document, interface=DOCS)
        host.provide(open_document, interface=DOCS, name="open")
        plugin = host.load(wasm, name="g", requests=Capabilities(interfaces={"docs"}))
        yield pm, host, plugin


def test_resource_hookspecs_map_to_wit() -> None:
    """A @resource class is a WIT resource: constructor, methods, static; own and borrow."""
    text = Contract.from_hookspecs(Hooks).bound_wit()
    assert "  resource counter {\n    constructor(start: u32);\n" in text
    assert "    get: func() -> u32;\n    inc: func(by: u32);\n" in text
    assert "    zero: static func() -> counter;\n" in text
    assert "make: func(start: u32) -> counter;" in text
    assert "peek: func(c: borrow<counter>) -> u32;" in text
    assert "export doclen: func(d: borrow<document>) -> u32;" in text


class Plain:
    pass


class Bad:
    @spec
    def f(self, x: Borrow[Plain]) -> u32: ...


@resource
class LongerCounter:
    """The same WIT resource as Counter, with one method the component lacks."""

    __wit_name__ = "counter"

    def get(self) -> u32: ...
    def reset(self) -> None: ...


class WantsMore:
    @spec
    @wit_binding(f"{COUNTERS}#make")
    def make(self, start: u32) -> LongerCounter: ...


class WantsU32:
    @spec
    @wit_binding(f"{COUNTERS}#peek")
    def peek(self, c: u32) -> u32: ...


def test_borrow_of_a_class_that_is_no_resource_is_refused() -> None:
    """Borrow[T] of a plain class is a HookspecError that says to mark it @resource."""
    with pytest.raises(HookspecError, match=r"Plain is not a resource; mark the class with"):
        Contract.from_hookspecs(Bad)


def test_guest_resource_reaches_the_host_as_a_proxy(loaded) -> None:  # type: ignore[no-untyped-def]
    """own<counter> from a hook is a proxy (an instance of the @resource class) whose
    methods call the plugin; borrow lends it, own gives it away."""
    pm, _, _ = loaded
    [counter] = pm.hook.make(start=5)
    assert isinstance(counter, Counter)
    counter.inc(3)
    assert counter.get() == 8
    assert pm.hook.peek(c=counter) == [8]
    assert counter.get() == 8  # a borrow leaves it with the host
    assert pm.hook.consume(c=counter) == [8]
    with pytest.raises(StaleResourceError, match=r"plugin 'g'.*`counter`.*given away") as info:
        counter.get()
    assert info.value.plugin == "g"
    assert info.value.resource == "counter"


def test_handles_inside_lists(loaded) -> None:  # type: ignore[no-untyped-def]
    """A list of own<counter> comes back as proxies; a list of borrows is lent whole."""
    pm, _, _ = loaded
    [counters] = pm.hook.make_many(n=4)
    assert [c.get() for c in counters] == [0, 1, 2, 3]
    assert pm.hook.total(cs=counters) == [6]
    assert all(not c.closed for c in counters)
    for c in counters:
        c.close()
    with pytest.raises(StaleResourceError, match="it was closed"):
        pm.hook.total(cs=counters)


def test_constructor_static_and_close(loaded) -> None:  # type: ignore[no-untyped-def]
    """guest_resource gives the constructor and statics; a with block closes (drops) it."""
    _, _, plugin = loaded
    counters = guest_resource(plugin, Counter)
    with counters(9) as c:
        c.inc(1)
        assert c.get() == 10
    assert c.closed
    with pytest.raises(StaleResourceError, match="it was closed"):
        c.get()
    c.close()  # closing twice is a no-op
    zero = counters.zero()
    assert zero.get() == 0


def test_handle_of_a_replaced_instance_is_stale(loaded) -> None:  # type: ignore[no-untyped-def]
    """After a trap replaces the instance, its proxies raise StaleResourceError (no crash),
    and the plugin keeps serving new handles."""
    pm, _, _ = loaded
    [counter] = pm.hook.make(start=1)
    with pytest.raises(PluginTrap):
        pm.hook.boom()
    with pytest.raises(StaleResourceError, match="instance that made it was replaced"):
        counter.get()
    with pytest.raises(StaleResourceError):
        pm.hook.peek(c=counter)
    counter.close()  # forgetting a stale handle is fine
    [fresh] = pm.hook.make(start=4)
    assert fresh.get() == 4


def test_method_calls_are_supervised_like_hooks(loaded) -> None:  # type: ignore[no-untyped-def]
    """A trap in a resource method is a PluginTrap that the plugin's supervisor counts (as
    for a hook); the proxy is stale after it, new ones work."""
    pm, host, _ = loaded
    [counter] = pm.hook.make(start=1)
    with pytest.raises(PluginTrap, match=r"plugin 'g' trapped in hook '\[method\]counter.explode'"):
        counter.explode()
    status = host.status("g")
    assert status.consecutive_failures == 1
    assert status.last_error is not None
    assert "explode" in status.last_error
    with pytest.raises(StaleResourceError):
        counter.get()
    [fresh] = pm.hook.make(start=3)
    assert fresh.get() == 3
    assert host.status("g").consecutive_failures == 0  # a success resets the count


def test_wrong_value_for_a_handle_is_an_argument_error(loaded) -> None:  # type: ignore[no-untyped-def]
    """Passing something that is no handle names the resource expected."""
    pm, _, _ = loaded
    with pytest.raises(ArgumentError, match=r"expected a Counter \(borrow<counter>\), got int"):
        pm.hook.peek(c=3)


def test_host_resource_lent_and_given_to_a_guest(loaded) -> None:  # type: ignore[no-untyped-def]
    """A host Document lent to a plugin (borrow) is called back through its methods; one
    the guest gets from a host function and drops leaves no handle behind."""
    pm, _, plugin = loaded
    before = leaked_handles("g")
    assert pm.hook.doclen(d=Document("abcd")) == [4]
    assert pm.hook.open_and_measure(name="xyz") == [6]
    plugin.instance.discard()
    assert leaked_handles("g") == before  # the counter counts since the process started


def test_leaked_host_handles_are_reported(loaded, caplog) -> None:  # type: ignore[no-untyped-def]
    """A guest that keeps an own<document> and is discarded is reported as a leak: log
    warning, counter and audit."""
    pm, host, plugin = loaded
    before = leaked_handles("g").get(("g", "document"), 0)
    assert pm.hook.keep(d=Document("abc")) == [3]
    assert pm.hook.keep(d=Document("de")) == [2]
    with caplog.at_level(logging.WARNING, logger="airssys_plugins.runtime"):
        plugin.instance.discard()
    assert "plugin 'g' leaked 2 `document` handle(s)" in caplog.text
    assert leaked_handles("g")[("g", "document")] == before + 2
    assert any("leaked 2 `document`" in e.detail for e in host.audit.events())


#: A new process that meets resources only at its load: runtime/resources.py is imported
#: by the host where a signature with handles, or a host resource class, is first met.
FRESH_PROCESS = """
import sys
import pluggy
from airssys_plugins import Capabilities, PluginHost
from tests.resource_hooks import Document, Hooks, open_document

pm = pluggy.PluginManager("res")
pm.add_hookspecs(Hooks)
host = PluginHost(pm, grants={{"g": Capabilities(interfaces={{"docs"}})}})
print("before", "airssys_plugins.runtime.resources" in sys.modules)
if {provide}:
    host.provide(Document, interface="test:res/docs@1.0.0")
    host.provide(open_document, interface="test:res/docs@1.0.0", name="open")
wanted = Capabilities(interfaces={{"docs"}} if {provide} else set())
plugin = host.load({wasm!r}, name="g", requests=wanted)
(counter,) = pm.hook.make(start=5)
counter.inc(2)
print("calls", pm.hook.peek(c=counter), counter.get(), pm.hook.consume(c=counter))
if {provide}:
    print("keep", pm.hook.keep(d=Document("abc")))
    plugin.instance.discard()
    print("audited", any("leaked 1 `document`" in e.detail for e in host.audit.events()))
host.close()
"""


def _counters_only(wat: str) -> str:
    """The WAT guest without its ``docs`` import and the exports that use it."""
    head, _, rest = wat.partition('  (func (export "doclen")')
    tail = rest[rest.index('  (func (export "cabi_realloc")') :]
    lines = [
        line
        for line in head.splitlines(keepends=True)
        if '"test:res/docs@1.0.0"' not in line and "(func $doclen " not in line
    ]
    return "".join(lines) + tail


@pytest.fixture(scope="module")
def counters_wasm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A guest exporting only ``counters`` (its resources), importing nothing."""
    src = tmp_path_factory.mktemp("counters") / "guest"
    (src / "wit").mkdir(parents=True)
    world = WIT[: WIT.index("world guest")] + "world counters-only {\n  export counters;\n}\n"
    (src / "wit" / "world.wit").write_text(world)
    (src / "guest.wat").write_text(_counters_only(WAT))
    return build_guest(src, world="counters-only")


@pytest.mark.parametrize("provide", [False, True], ids=["guest resources", "and host ones"])
def test_resources_work_in_a_process_that_had_not_imported_them(
    wat_wasm: Path, counters_wasm: Path, provide: bool
) -> None:
    """The handle converters, proxies, tables and leak reports come with the module, which
    a new process imports only when its host first meets a handle: a load whose hooks
    pass a guest's resources, or a host resource class provided before it."""
    import subprocess
    import sys

    code = FRESH_PROCESS.format(wasm=str(wat_wasm if provide else counters_wasm), provide=provide)
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    expected = ["before False", "calls [7] 7 [7]"]
    if provide:
        expected += ["keep [3]", "audited True"]
    assert done.stdout.splitlines() == expected


def test_a_host_function_passing_handles_brings_the_resources_module() -> None:
    """A host function whose signature passes a guest's handles is the first thing such a
    host may meet that needs handle converters: defining it imports the module; one
    passing none does not."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from airssys_plugins import Borrow, resource, u32\n"
        "from airssys_plugins.host.interfaces import HostFunction\n"
        "@resource\n"
        "class Counter:\n"
        "    def get(self) -> u32: ...\n"
        "def plain(x: u32) -> u32: ...\n"
        "def total(c: Borrow[Counter]) -> u32: ...\n"
        "loaded = lambda: 'airssys_plugins.runtime.resources' in sys.modules\n"
        "HostFunction.from_function('test:x/y@1.0.0', plain)\n"
        "print(loaded())\n"
        "HostFunction.from_function('test:x/y@1.0.0', total)\n"
        "print(loaded())\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split() == ["False", "True"]


def test_forged_handle_traps_and_the_plugin_recovers(loaded) -> None:  # type: ignore[no-untyped-def]
    """A guest using a handle it was never given traps (a named error, the instance
    replaced); the host's objects and the next calls are unaffected."""
    pm, _, _ = loaded
    with pytest.raises(PluginTrap) as info:
        pm.hook.forge()
    assert info.value.plugin == "g"
    assert pm.hook.doclen(d=Document("still fine")) == [10]


def test_proxies_of_a_pool_stay_with_their_instance(wat_wasm: Path) -> None:
    """With an instance pool, each proxy calls the instance that made it."""
    pm = pluggy.PluginManager("res")
    pm.add_hookspecs(Hooks)
    with PluginHost(pm, grants={"g": Capabilities(interfaces={"docs"})}) as host:
        host.provide(Document, interface=DOCS)
        host.provide(open_document, interface=DOCS, name="open")
        plugin = host.load(
            wat_wasm, name="g", requests=Capabilities(interfaces={"docs"}), pool_size=2
        )
        counters = [pm.hook.make(start=n)[0] for n in range(6)]
        assert {id(c._instance) for c in counters} == {id(i) for i in plugin.instances}
        for n, c in reversed(list(enumerate(counters))):  # not the order the pool serves
            c.inc(1)
            assert c.get() == n + 1
            assert pm.hook.peek(c=c) == [n + 1]
            assert pm.hook.total(cs=[c]) == [n + 1]


def test_mismatch_names_the_resource(wat_wasm: Path) -> None:
    """A hook expecting u32 where the component takes borrow<counter> says so by name."""
    pm = pluggy.PluginManager("res")
    pm.add_hookspecs(WantsU32)
    with PluginHost(pm, grants={"g": Capabilities(interfaces={"docs"})}) as host:
        host.provide(Document, interface=DOCS)
        host.provide(open_document, interface=DOCS, name="open")
        with pytest.raises(ContractMismatchError, match=r"has type borrow<counter>, expected u32"):
            host.load(wat_wasm, name="g", requests=Capabilities(interfaces={"docs"}))


def test_missing_resource_method_is_a_mismatch(wat_wasm: Path) -> None:
    """A @resource method the component does not export is reported at load."""
    pm = pluggy.PluginManager("res")
    pm.add_hookspecs(WantsMore)
    with PluginHost(pm, grants={"g": Capabilities(interfaces={"docs"})}) as host:
        host.provide(Document, interface=DOCS)
        host.provide(open_document, interface=DOCS, name="open")
        with pytest.raises(
            ContractMismatchError, match=r"resource `counter`.*\[method\]counter.reset"
        ):
            host.load(wat_wasm, name="g", requests=Capabilities(interfaces={"docs"}))


def test_a_python_guest_with_resources_keeps_its_added_exports() -> None:
    """componentize-py exports its resources from an instance of an inner component, and
    a root export cannot name them: a function whose result holds such a handle
    (``make-many``) is measured after the copy, the others keep their measuring and raw
    exports. (The whole widened binary was refused, "func not valid to be used as
    export", and the guest ran with none of them.)"""
    from airssys_plugins.runtime.image import ComponentImage

    data = build_guest(GUESTS / "resources", world="guest").read_bytes()
    image = ComponentImage.load("res", data)
    assert ("exports", "init") in image.measured
    assert ("test:res/counters@1.0.0", "make-many") not in image.measured
    assert (None, "open-and-measure") in image.raw_exports
