"""Real-world WIT shapes hooks and host functions must reach (issue 16): interfaces that
hold only resources, functions imported at a world's root, inline exported interfaces,
``option<option<T>>`` and wasmtime's own "BUG:" traps; each with a WAT component."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import attrs
import pluggy
import pytest

from airssys_plugins import (
    WORLD_ROOT,
    ArgumentError,
    Borrow,
    Capabilities,
    HookspecError,
    PluginHost,
    PluginLoadError,
    PluginTrap,
    Some,
    StaleResourceError,
    resource,
    u32,
    wit_binding,
)
from airssys_plugins._errors import CapabilityDenied
from airssys_plugins.authoring.build import build_guest
from airssys_plugins.cli import main
from airssys_plugins.contract.mapping import Contract, WitBinding, WitBindingError
from airssys_plugins.runtime import classify_error

# An interface of resources only, shaped like jco's `resource_with_lists` fixture: a
# constructor and a static function taking and giving lists, methods on the handle.
THINGS_WIT = """package test:rl@1.0.0;

/// Only resources.
interface things {
  /// Bytes kept in the plugin.
  resource thing {
    constructor(l: list<u8>);
    foo: func() -> list<u8>;
    bar: func(l: list<u8>);
    /// The bytes given, with `!` appended.
    baz: static func(l: list<u8>) -> list<u8>;
  }
}

world only-resources {
  export things;
}
"""

# A thing's rep is the address of an 8-byte cell holding its list (pointer, length), which
# is also the return area of `foo`.
THINGS_WAT = """(module
  (import "[export]test:rl/things@1.0.0" "[resource-new]thing"
    (func $new (param i32) (result i32)))
  (memory (export "memory") 1)
  (global $next (mut i32) (i32.const 1024))
  (func $alloc (param $n i32) (result i32) (local $p i32)
    (local.set $p (global.get $next))
    (global.set $next (i32.add (local.get $p)
      (i32.and (i32.add (local.get $n) (i32.const 7)) (i32.const -8))))
    (local.get $p))
  (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32)
    (call $alloc (local.get 3)))
  (func $cell (param $p i32) (param $n i32) (result i32) (local $c i32)
    (local.set $c (call $alloc (i32.const 8)))
    (i32.store (local.get $c) (local.get $p))
    (i32.store offset=4 (local.get $c) (local.get $n))
    (local.get $c))
  (func (export "test:rl/things@1.0.0#[constructor]thing") (param i32 i32) (result i32)
    (call $new (call $cell (local.get 0) (local.get 1))))
  (func (export "test:rl/things@1.0.0#[method]thing.foo") (param i32) (result i32)
    (local.get 0))
  (func (export "test:rl/things@1.0.0#[method]thing.bar") (param i32 i32 i32)
    (i32.store (local.get 0) (local.get 1))
    (i32.store offset=4 (local.get 0) (local.get 2)))
  (func (export "test:rl/things@1.0.0#[static]thing.baz") (param $p i32) (param $n i32)
    (result i32) (local $q i32)
    (local.set $q (call $alloc (i32.add (local.get $n) (i32.const 1))))
    (memory.copy (local.get $q) (local.get $p) (local.get $n))
    (i32.store8 (i32.add (local.get $q) (local.get $n)) (i32.const 33))
    (call $cell (local.get $q) (i32.add (local.get $n) (i32.const 1))))
  (func (export "test:rl/things@1.0.0#[dtor]thing") (param i32))
)
"""


def _guest(tmp_path: Path, name: str, wit: str, wat: str, world: str) -> Path:
    src = tmp_path / name
    (src / "wit").mkdir(parents=True)
    (src / "wit" / "world.wit").write_text(wit)
    (src / "guest.wat").write_text(wat)
    return build_guest(src, world=world)


def _import(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def things(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The resource-only component, and the WIT dir it was built from."""
    tmp = tmp_path_factory.mktemp("things")
    return _guest(tmp, "things", THINGS_WIT, THINGS_WAT, "only-resources"), tmp / "things" / "wit"


# ------------------------------------------------------------ 1. resource-only interfaces


def test_bindgen_makes_constructor_and_static_functions_hooks(
    things: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A resource-only interface gives hooks: `new_thing` (the constructor) returns a proxy,
    `thing_baz` (the static function) its result; methods stay on the proxy."""
    wasm, wit = things
    out = tmp_path / "things_hooks.py"
    assert main(["bindgen", str(wit), "-o", str(out)]) == 0
    err = capsys.readouterr().err
    assert "[method]thing.foo: a method of resource `thing`" in err
    hooks = _import(out, "things_hooks")
    pm = hooks.plugin_manager()
    with PluginHost(pm) as host:
        host.load(wasm, name="things")
        [thing] = pm.hook.new_thing(l=b"abc")
        assert isinstance(thing, hooks.Thing)
        assert thing.foo() == b"abc"
        thing.bar(l=b"xyz")
        assert thing.foo() == b"xyz"
        assert pm.hook.thing_baz(l=b"hi") == [b"hi!"]
        thing.close()
        with pytest.raises(StaleResourceError, match="closed"):
            thing.foo()


def test_generated_resource_hooks_round_trip_to_the_same_wit(
    things: tuple[Path, Path], tmp_path: Path
) -> None:
    """`wit --bound` of the generated module writes the resource back in its interface
    (constructor, methods, static), not its members as free functions."""
    _, wit = things
    out = tmp_path / "rt_hooks.py"
    assert main(["bindgen", str(wit), "-o", str(out)]) == 0
    text = Contract.from_hookspecs(_import(out, "rt_hooks").plugin_manager()).bound_wit()
    assert "interface things {\n  /// Bytes kept in the plugin.\n  resource thing {\n" in text
    assert "    constructor(l: list<u8>);\n" in text
    assert "    baz: static func(l: list<u8>) -> list<u8>;\n" in text
    assert "[constructor]" not in text
    assert "[static]" not in text


spec = pluggy.HookspecMarker("gaps")


@resource
class Thing:
    """The plugin's `thing`, as a host writes it by hand."""

    def __init__(self, data: bytes) -> None: ...
    def foo(self) -> bytes: ...


class ThingHooks:
    @spec
    @wit_binding("test:rl/things@1.0.0#[constructor]thing")
    def make_thing(self, data: bytes) -> Thing: ...

    @spec
    @wit_binding("test:rl/things@1.0.0#[static]thing.baz")
    def shout(self, data: bytes) -> bytes: ...


def test_hand_written_hookspecs_bind_a_constructor_and_a_static_function(
    things: tuple[Path, Path],
) -> None:
    """`wit_binding("...#[constructor]thing")` and `"...#[static]thing.baz"` are hooks too;
    the hook's own name is free."""
    pm = pluggy.PluginManager("gaps")
    pm.add_hookspecs(ThingHooks)
    with PluginHost(pm) as host:
        host.load(things[0], name="things")
        [thing] = pm.hook.make_thing(data=b"\x00\x01")
        assert thing.foo() == b"\x00\x01"
        assert pm.hook.shout(data=b"") == [b"!"]


@pytest.mark.parametrize(
    "text",
    [
        "test:rl/things@1.0.0#[constructor]",
        "test:rl/things@1.0.0#[static]thing",
        "test:rl/things@1.0.0#[method]thing.",
        "test:rl/things@1.0.0#[destructor]thing",
        "Not Valid#f",
        "#f",
        "a#b c",
        "",
    ],
    ids=["no-resource", "static-no-name", "method-no-name", "unknown-kind", "bad-iface",
         "empty-iface", "bad-function", "empty"],
)  # fmt: skip
def test_bad_binding_strings_name_the_accepted_forms(text: str) -> None:
    """A binding that names no WIT function is a WitBindingError (a ValueError) listing
    every accepted form."""
    with pytest.raises(WitBindingError, match=r"namespace:package/interface@1\.2\.3#function") as e:
        wit_binding(text)
    assert isinstance(e.value, ValueError)
    assert "name#function" in str(e.value)
    assert "[constructor]res" in str(e.value)


def test_binding_forms() -> None:
    """Each accepted form parses to its interface and function."""
    assert WitBinding.parse("a:b/c@1.0.0#[static]r.f").member == ("static", "r", "f")
    assert WitBinding.parse("a:b/c#[constructor]r").member == ("constructor", "r", None)
    inline = WitBinding.parse("result#list-u8")
    assert (inline.interface, inline.function, inline.inline) == ("result", "list-u8", True)
    assert WitBinding.parse("add").interface is None


# ------------------------------------------------------------------ 2. world-root imports

ROOTY_WIT = """package test:rooty@1.0.0;

world rooty {
  resource counter {
    constructor(start: u32);
    get: func() -> u32;
  }
  import log: func(msg: string);
  import add: func(a: u32, b: u32) -> u32;
  export run: func(x: u32) -> u32;
}
"""

# run(x) logs "run", makes a host counter from x, and returns add(x, counter.get()).
ROOTY_WAT = """(module
  (import "$root" "log" (func $log (param i32 i32)))
  (import "$root" "add" (func $add (param i32 i32) (result i32)))
  (import "$root" "[constructor]counter" (func $ctor (param i32) (result i32)))
  (import "$root" "[method]counter.get" (func $get (param i32) (result i32)))
  (import "$root" "[resource-drop]counter" (func $drop (param i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "run")
  (func (export "run") (param $x i32) (result i32) (local $h i32) (local $n i32)
    (call $log (i32.const 16) (i32.const 3))
    (local.set $h (call $ctor (local.get $x)))
    (local.set $n (call $get (local.get $h)))
    (call $drop (local.get $h))
    (call $add (local.get $x) (local.get $n)))
  (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32) (i32.const 256))
)
"""


class RootHooks:
    @spec
    @wit_binding("run")
    def run(self, x: u32) -> u32: ...


@resource
class HostCounter:
    """The world's `counter`, kept by the host: ten times its start."""

    __wit_name__ = "counter"

    def __init__(self, start: u32) -> None:
        self.n = start * 10

    def get(self) -> u32:
        return self.n


def add(a: u32, b: u32) -> u32:
    return a + b


def add_text(a: str, b: u32) -> u32:
    return b


def ignore(msg: str) -> None:
    pass


ROOT_GRANTS = Capabilities(interfaces={"log", "add", "counter"})


@pytest.fixture(scope="module")
def rooty(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _guest(tmp_path_factory.mktemp("rooty"), "rooty", ROOTY_WIT, ROOTY_WAT, "rooty")


def _root_host(provided: dict[str, Any], grants: Capabilities = ROOT_GRANTS) -> PluginHost:
    pm = pluggy.PluginManager("gaps")
    pm.add_hookspecs(RootHooks)
    host = PluginHost(pm, grants={"rooty": grants})
    for name, func in provided.items():
        host.provide(func, interface=WORLD_ROOT, name=name)
    return host


def test_functions_and_resources_imported_at_the_world_root_are_provided(rooty: Path) -> None:
    """`provide(f, interface=WORLD_ROOT)` serves `import log: func(...)` of a world, and a
    @resource class its `resource counter` (constructor and methods run on the host)."""
    logged: list[str] = []

    def log(msg: str) -> None:
        logged.append(msg)

    with _root_host({"log": log, "add": add, "counter": HostCounter}) as host:
        host.load(rooty, name="rooty", requests=ROOT_GRANTS)
        assert host.pm.hook.run(x=2) == [2 + 20]
        assert logged == ["run"]


def test_a_missing_root_function_is_named_with_the_fix(rooty: Path) -> None:
    """A root import the host does not provide is refused at load, by name, saying how
    to provide it."""
    asks = Capabilities(interfaces={"log", "counter"})
    with _root_host({"log": ignore, "counter": HostCounter}) as host:
        with pytest.raises(PluginLoadError, match=r"add \(at the world's root\)") as e:
            host.load(rooty, name="rooty", requests=asks)
        assert "interface=WORLD_ROOT, name='add'" in str(e.value)
        assert e.value.plugin == "rooty"


def test_a_root_function_of_other_types_is_refused_with_both_signatures(rooty: Path) -> None:
    """A provided root function whose annotations differ from the import is refused
    before the plugin runs, both signatures shown."""
    host = _root_host({"log": ignore, "add": add_text, "counter": HostCounter})
    with host, pytest.raises(PluginLoadError) as e:
        host.load(rooty, name="rooty", requests=ROOT_GRANTS)
    text = str(e.value)
    assert "add (at the world's root): argument 1 ('a') is u32" in text
    assert "host provides:     func(a: string, b: u32) -> u32" in text


def test_root_imports_nobody_provides_are_named(rooty: Path) -> None:
    """Without any root function provided, the load names every missing root import."""
    host = _root_host({})
    with host, pytest.raises(PluginLoadError, match="imports at its world's root") as e:
        host.load(rooty, name="rooty")
    assert "log" in str(e.value)
    assert "[constructor]counter" in str(e.value)
    assert "WORLD_ROOT" in str(e.value)


def test_root_imports_must_be_granted_by_their_names(rooty: Path) -> None:
    """A root function is granted by its own name (a root resource by the resource's)."""
    only = Capabilities(interfaces={"log", "counter"})
    host = _root_host({"log": ignore, "add": add, "counter": HostCounter}, only)
    with host, pytest.raises(CapabilityDenied, match="add"):
        host.load(rooty, name="rooty", requests=ROOT_GRANTS)


# ----------------------------------------------------------- 3. inline exported interfaces

INLINE_WIT = """package test:inline@1.0.0;

world inline {
  /// Lists back, as wit-bindgen's `list-adapter-fusion` test component exports them.
  export %result: interface {
    record pair {
      a: u32,
      b: string,
    }
    /// The list given.
    list-u8: func(a: list<u8>) -> list<u8>;
    swap: func(p: pair) -> pair;
  }
  export twice: func(x: u32) -> u32;
}
"""

INLINE_WAT = """(module
  (memory (export "memory") 1)
  (global $next (mut i32) (i32.const 1024))
  (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32) (local $p i32)
    (local.set $p (global.get $next))
    (global.set $next (i32.add (local.get $p)
      (i32.and (i32.add (local.get 3) (i32.const 7)) (i32.const -8))))
    (local.get $p))
  (func (export "result#list-u8") (param $p i32) (param $n i32) (result i32)
    (i32.store (i32.const 16) (local.get $p))
    (i32.store (i32.const 20) (local.get $n))
    (i32.const 16))
  ;; pair { a, b } -> pair { a + 1, b }
  (func (export "result#swap") (param $a i32) (param $p i32) (param $n i32) (result i32)
    (i32.store (i32.const 32) (i32.add (local.get $a) (i32.const 1)))
    (i32.store (i32.const 36) (local.get $p))
    (i32.store (i32.const 40) (local.get $n))
    (i32.const 32))
  (func (export "twice") (param i32) (result i32) (i32.mul (local.get 0) (i32.const 2)))
)
"""


@pytest.fixture(scope="module")
def inline(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    tmp = tmp_path_factory.mktemp("inline")
    return _guest(tmp, "inline", INLINE_WIT, INLINE_WAT, "inline"), tmp / "inline" / "wit"


def test_bindgen_binds_hooks_to_an_inline_exported_interface(
    inline: tuple[Path, Path], tmp_path: Path
) -> None:
    """`export result: interface {...}` gives hooks bound to `result#list-u8`; the module
    loads the component and calls it, records included; `wit --bound` writes it back."""
    wasm, wit = inline
    out = tmp_path / "inline_hooks.py"
    assert main(["bindgen", str(wit), "-o", str(out)]) == 0
    hooks = _import(out, "inline_hooks")
    assert '@wit_binding("result#list-u8")' in out.read_text()
    pm = hooks.plugin_manager()
    with PluginHost(pm) as host:
        host.load(wasm, name="inline")
        assert pm.hook.list_u8(a=b"\x01\x02\xff") == [b"\x01\x02\xff"]
        assert pm.hook.swap(p=hooks.Pair(a=1, b="x")) == [hooks.Pair(a=2, b="x")]
        assert pm.hook.twice(x=21) == [42]
    bound = Contract.from_hookspecs(pm).bound_wit()
    assert "  export %result: interface {\n    record pair {\n" in bound
    assert "    list-u8: func(a: list<u8>) -> list<u8>;\n" in bound
    assert "  export twice: func(x: u32) -> u32;\n" in bound


class InlineHooks:
    @spec
    @wit_binding("result#list-u8")
    def echo_bytes(self, data: bytes) -> bytes: ...


def test_a_hand_written_hook_binds_an_inline_interface(inline: tuple[Path, Path]) -> None:
    """`wit_binding("result#list-u8")` (the inline interface's export name, `#`, the
    function) is a binding like any other."""
    pm = pluggy.PluginManager("gaps")
    pm.add_hookspecs(InlineHooks)
    with PluginHost(pm) as host:
        plugin = host.load(inline[0], name="inline")
        assert pm.hook.echo_bytes(data=b"ok") == [b"ok"]
        assert plugin.hooks["echo_bytes"] == "result#list-u8"


# ------------------------------------------------------------ 5. wasmtime's "BUG:" traps

BUG_WIT = """package test:bug@1.0.0;

interface t {
  resource thing {
    constructor(n: u32);
    get: func() -> u32;
  }
  record foo {
    thing: borrow<thing>,
  }
  take: func(a: list<foo>) -> u32;
}

world bug {
  import t;
  export run: func(n: u32) -> u32;
}
"""

# run(n) makes n host things, passes them to `take` as borrows inside n records, drops
# them and returns take's answer.
BUG_WAT = """(module
  (import "test:bug/t@1.0.0" "[constructor]thing" (func $ctor (param i32) (result i32)))
  (import "test:bug/t@1.0.0" "[resource-drop]thing" (func $drop (param i32)))
  (import "test:bug/t@1.0.0" "take" (func $take (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "run") (param $n i32) (result i32) (local $i i32) (local $r i32)
    (block $done (loop $each
      (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
      (i32.store (i32.add (i32.const 64) (i32.mul (local.get $i) (i32.const 4)))
        (call $ctor (i32.add (local.get $i) (i32.const 1))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $each)))
    (local.set $r (call $take (i32.const 64) (local.get $n)))
    (local.set $i (i32.const 0))
    (block $done2 (loop $each2
      (br_if $done2 (i32.ge_u (local.get $i) (local.get $n)))
      (call $drop (i32.load (i32.add (i32.const 64) (i32.mul (local.get $i) (i32.const 4)))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $each2)))
    (local.get $r))
  (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32) (i32.const 512))
)
"""


@resource
class BugThing:
    __wit_name__ = "thing"

    def __init__(self, n: u32) -> None:
        self.n = n

    def get(self) -> u32:
        return self.n


@attrs.frozen
class Foo:
    thing: Borrow[BugThing]


def take(a: list[Foo]) -> u32:
    return sum(foo.thing.get() for foo in a)


class BugHooks:
    @spec
    @wit_binding("run")
    def run(self, n: u32) -> u32: ...


def test_a_wasmtime_bug_trap_is_named_as_such(tmp_path: Path) -> None:
    """wasmtime 50 traps with `BUG: deferred host scope has no call context` when a host
    function gets two borrows inside records (one works): reason "runtime bug", the BUG
    line as the headline, and the plugin not blamed. When an upgrade fixes it, this test
    fails: then drop the note from docs/reference/errors.md, keep the row."""
    wasm = _guest(tmp_path, "bug", BUG_WIT, BUG_WAT, "bug")
    pm = pluggy.PluginManager("gaps")
    pm.add_hookspecs(BugHooks)
    grants = Capabilities(interfaces={"t"})
    with PluginHost(pm, grants={"bug": grants}) as host:
        host.provide(BugThing, interface="test:bug/t@1.0.0")
        host.provide(take, interface="test:bug/t@1.0.0")
        host.load(wasm, name="bug", requests=grants)
        assert pm.hook.run(n=1) == [1]
        with pytest.raises(PluginTrap) as e:
            pm.hook.run(n=2)
    assert e.value.reason == "runtime bug"
    text = str(e.value)
    assert "wasmtime 50.0.0 hit an internal bug (BUG: deferred host scope has no call " in text
    assert "not a fault of the plugin" in text
    assert "actionable" not in text  # the paragraph after the BUG line is not the headline


def test_bug_lines_classify_before_any_other_row() -> None:
    """A `BUG:` message is a runtime bug even when its explanation holds another row's
    words."""
    message = "error\nCaused by:\n    BUG: out of bounds of memory\nversion: 50.0.0\nunreachable"
    assert classify_error(message) == ("runtime bug", PluginTrap)


# -------------------------------------------------------------------- 4. option<option<T>>

OPTIONS_WIT = """package test:opt@1.0.0;

interface host {
  echo: func(a: option<option<string>>) -> option<option<string>>;
}

interface o {
  roundtrip: func(a: option<option<u32>>) -> option<option<u32>>;
  via-host: func(a: option<option<string>>) -> option<option<string>>;
}

world options {
  import host;
  export o;
}
"""

# option<option<u32>> flattens to (case, inner case, value) and comes back in memory:
# case byte at 0, inner case byte at 4, value at 8. option<option<string>> likewise, the
# string's pointer and length at 8 and 12.
OPTIONS_WAT = """(module
  (import "test:opt/host@1.0.0" "echo" (func $echo (param i32 i32 i32 i32 i32)))
  (memory (export "memory") 16)
  (global $next (mut i32) (i32.const 1024))
  (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32) (local $p i32)
    (local.set $p (global.get $next))
    (global.set $next (i32.add (local.get $p)
      (i32.and (i32.add (local.get 3) (i32.const 7)) (i32.const -8))))
    (local.get $p))
  (func (export "test:opt/o@1.0.0#roundtrip") (param i32 i32 i32) (result i32)
    (i32.store8 (i32.const 16) (local.get 0))
    (i32.store8 (i32.const 20) (local.get 1))
    (i32.store (i32.const 24) (local.get 2))
    (i32.const 16))
  (func (export "test:opt/o@1.0.0#via-host") (param i32 i32 i32 i32) (result i32)
    (call $echo (local.get 0) (local.get 1) (local.get 2) (local.get 3) (i32.const 64))
    (i32.const 64))
)
"""

OPTION_CASES: list[Some[int | None] | None] = [None, Some(None), Some(0), Some(7)]


@pytest.fixture(scope="module")
def options(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    tmp = tmp_path_factory.mktemp("options")
    return _guest(tmp, "options", OPTIONS_WIT, OPTIONS_WAT, "options"), tmp / "options" / "wit"


def test_option_of_option_is_some_both_ways(
    options: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`option<option<T>>` is `Some[T | None] | None`: bindgen writes it, hooks lower and
    lift it (`None`, `Some(None)`, `Some(x)` stay apart), and a host function gets and
    returns it."""
    wasm, wit = options
    out = tmp_path / "options_hooks.py"
    assert main(["bindgen", str(wit), "-o", str(out)]) == 0
    assert "option<option" not in capsys.readouterr().err  # nothing skipped
    text = out.read_text()
    assert "def roundtrip(self, a: Some[u32 | None] | None) -> Some[u32 | None] | None:" in text
    hooks = _import(out, "options_hooks")
    seen: list[object] = []

    def echo(a: Some[str | None] | None) -> Some[str | None] | None:
        seen.append(a)
        return a

    pm = hooks.plugin_manager()
    grants = Capabilities(interfaces={"host"})
    with PluginHost(pm, grants={"opt": grants}) as host:
        host.provide(echo, interface="test:opt/host@1.0.0")
        host.load(wasm, name="opt", requests=grants)
        # pluggy leaves None results out of the list: Some(None) is the one that shows
        assert pm.hook.roundtrip(a=None) == []
        for value in OPTION_CASES[1:]:
            assert pm.hook.roundtrip(a=value) == [value]
        assert pm.hook.via_host(a=None) == []
        for text_value in [Some(None), Some(""), Some("héllo")]:
            assert pm.hook.via_host(a=text_value) == [text_value]
        assert seen == [None, Some(None), Some(""), Some("héllo")]
        big = Some("x" * 100_000)  # large enough for the byte routes
        assert pm.hook.via_host(a=big) == [big]
        with pytest.raises(ArgumentError, match=r"expected Some\(\.\.\.\) or None"):
            pm.hook.roundtrip(a=7)
    bound = Contract.from_hookspecs(pm).bound_wit()
    assert "roundtrip: func(a: option<option<u32>>) -> option<option<u32>>;" in bound


def test_some_alone_is_no_annotation() -> None:
    """`Some[T]` without `| None` is refused with the form to write."""

    class Bad:
        @spec
        def f(self, a: Some[u32]) -> None: ...

    with pytest.raises(HookspecError, match=r"only allowed as `Some\[T\] \| None`"):
        Contract.from_hookspecs(Bad, project_name="gaps")


# ---------------------------------------------------- 6. historic calls carrying handles


class HistoricHandles:
    @spec(historic=True)
    @wit_binding("test:rl/things@1.0.0#take")
    def remember(self, thing: Borrow[Thing]) -> None: ...


def test_a_historic_hook_cannot_pass_resource_handles() -> None:
    """pluggy replays a historic call's arguments to later plugins and new instances; a
    handle cannot be replayed, so such a hookspec is refused, saying why and what to do."""
    with pytest.raises(HookspecError, match="historic and passes resource handles") as e:
        Contract.from_hookspecs(HistoricHandles, project_name="gaps")
    assert "borrow<thing>" in str(e.value)
    assert "make the hook not historic" in str(e.value)


# Two versions of one interface exported side by side (as jco's `versions` fixture does):
# each answers with its own number.
TWO_VERSIONS_WAT = """(component
  (core module $m
    (func (export "x1") (result i32) (i32.const 1))
    (func (export "x2") (result i32) (i32.const 2)))
  (core instance $i (instantiate $m))
  (func $x1 (result u32) (canon lift (core func $i "x1")))
  (func $x2 (result u32) (canon lift (core func $i "x2")))
  (instance $v1 (export "x" (func $x1)))
  (instance $v2 (export "x" (func $x2)))
  (export "test:dep/test@0.1.0" (instance $v1))
  (export "test:dep/test@0.2.0" (instance $v2)))"""

versions_spec = pluggy.HookspecMarker("versions")


class VersionHooks:
    @versions_spec
    @wit_binding("test:dep/test@0.1.0#x")
    def old_x(self) -> u32: ...

    @versions_spec
    @wit_binding("test:dep/test@0.2.0#x")
    def new_x(self) -> u32: ...


def test_a_binding_gets_the_version_it_names_when_several_are_exported(tmp_path: Path) -> None:
    """With @0.1.0 and @0.2.0 exported side by side, each hook calls the version its
    binding names (the first compatible one was taken for both before)."""
    from .test_hostile_calls import parse_component

    wasm = parse_component(tmp_path, "versions", TWO_VERSIONS_WAT)
    pm = pluggy.PluginManager("versions")
    pm.add_hookspecs(VersionHooks)
    with PluginHost(pm) as host:
        host.load(wasm, name="versions")
        assert pm.hook.old_x() == [1]
        assert pm.hook.new_x() == [2]
