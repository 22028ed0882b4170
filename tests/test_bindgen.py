"""`airssys-plugins bindgen`: Python hookspecs from WIT that load the components they came
from, round-trip to the same WIT, and type ``pm.hook`` calls for mypy."""

from __future__ import annotations

import enum
import importlib.util
import shutil
import subprocess
import sys
import typing
from pathlib import Path
from types import ModuleType

import attrs
import pytest

from airssys_plugins import Borrow, Capabilities, PluginHost, guest_resource, resource, u32
from airssys_plugins.authoring.build import _jco, build_guest, find_tool, jco_dir
from airssys_plugins.cli import main
from airssys_plugins.cli.bindgen import read_wit_json
from airssys_plugins.contract.annotations import is_resource
from airssys_plugins.contract.bindgen import BindgenError, hookspec_module
from airssys_plugins.contract.mapping import Contract
from airssys_plugins.contract.wit_json import Resolved, WitJsonError

from .test_resources import WAT as RESOURCES_WAT
from .test_resources import WIT as RESOURCES_WIT

ROOT = Path(__file__).resolve().parent.parent

# The component model book's adder, with doc comments.
ADDER_WIT = """package docs:adder@0.1.0;

/// Adds numbers.
interface add {
  /// The sum of two numbers.
  add: func(x: u32, y: u32) -> u32;
}

world adder {
  export add;
}
"""
ADDER_WAT = """(module
  (func (export "docs:adder/add@0.1.0#add") (param i32 i32) (result i32)
    (i32.add (local.get 0) (local.get 1))))
"""

# Every kind of WIT type, names that are Python keywords or clash, and what hooks cannot
# carry (async; resource methods); option<option<T>> (Some[T | None] | None).
KITCHEN_WIT = """package test:kitchen@2.1.0;

/// Shapes and colours.
interface shapes {
  /// A point on the plane.
  record point {
    /// Across.
    x: f64,
    y: f64,
  }

  /// Paint.
  enum color {
    red,
    light-blue,
    level2,
  }

  flags perms {
    read,
    write,
    exec,
  }

  variant shape {
    circle(f64),
    rect(tuple<f32, f32>),
    none,
    at(point),
  }

  variant answer {
    none,
    some(string),
  }

  record from-to {
    %from: u8,
    %type: s16,
    self: char,
  }

  /// Draw things.
  draw: func(s: shape, c: color, p: perms, at: option<point>) -> result<list<point>, string>;
  decide: func(a: answer, ft: from-to) -> result<_, answer>;
  blob: func(data: list<u8>, nums: list<u64>, pairs: list<tuple<s8, u16>>) -> option<list<u8>>;
  get: func() -> s32;
}

interface other {
  get: func() -> u32;
  nothing: func();
  handle: func(h: borrow<thing>);
  resource thing {
    size: func() -> u32;
  }
  nested: func() -> option<option<u8>>;
}

world kitchen {
  export shapes;
  export other;
  export top-level: func(name: string) -> bool;
  export tick: async func();
}
"""


def _wit_dir(tmp_path: Path, name: str, text: str) -> Path:
    source = tmp_path / name / "wit"
    source.mkdir(parents=True)
    (source / "world.wit").write_text(text)
    return source


def _import(path: Path) -> ModuleType:
    name = f"bindgen_{path.stem}_{abs(hash(path))}"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclass/attrs and get_type_hints look it up
    spec.loader.exec_module(module)
    return module


def _bindgen(
    capsys: pytest.CaptureFixture[str], source: Path, out: Path, *args: str
) -> tuple[ModuleType, str]:
    """Run the CLI, import the module it wrote; return it and what went to stderr."""
    assert main(["bindgen", str(source), "-o", str(out), *args]) == 0
    return _import(out), capsys.readouterr().err


def _functions(resolved: Resolved, world: str | None) -> dict[str, object]:
    return {f.binding: f.signature for f in resolved.world(world).functions}


@pytest.fixture(scope="session")
def wasi_cli(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """WASI 0.2's wasi:cli package with its deps, as jco ships them."""
    _jco(None)  # installs jco (and its WASI WIT) on first use; fails loudly without npm
    builtin = jco_dir() / "node_modules/@bytecodealliance/jco/lib/wit/builtin/0.2.12"
    root = tmp_path_factory.mktemp("wasi") / "wit"
    (root / "deps").mkdir(parents=True)
    shutil.copy(builtin / "wasi-cli" / "package.wit", root / "cli.wit")
    for dep in ("io", "clocks", "filesystem", "random", "sockets"):
        (root / "deps" / dep).mkdir()
        shutil.copy(builtin / f"wasi-{dep}" / "package.wit", root / "deps" / dep)
    return root


def test_adder_module_loads_the_component_it_came_from(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The module generated from the adder's WIT loads the adder unedited and calls it."""
    wit = _wit_dir(tmp_path, "adder", ADDER_WIT)
    (wit.parent / "guest.wat").write_text(ADDER_WAT)
    wasm = build_guest(wit.parent, world="adder")
    hooks, err = _bindgen(capsys, wit, tmp_path / "adder_hooks.py")
    assert "wrote" in err
    pm = hooks.plugin_manager()
    with PluginHost(pm) as host:
        plugin = host.load(wasm)
        assert plugin.hooks == {"add": "docs:adder/add@0.1.0#add"}
        assert pm.hook.add(x=40, y=2) == [42]
        assert hooks.relay(pm).add(x=1, y=2) == [3]
    assert hooks.AddHooks.add.__doc__.startswith("The sum of two numbers.")
    assert "Adds numbers." in hooks.AddHooks.__doc__

    # The component's own embedded WIT gives the same hooks.
    from_component, _ = _bindgen(capsys, wasm, tmp_path / "from_wasm.py", "--project", "adder")
    pm = from_component.plugin_manager()
    with PluginHost(pm) as host:
        host.load(wasm)
        assert pm.hook.add(x=40, y=2) == [42]


def test_textpipe_module_serves_the_bundled_components(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], textpipe_wasm: dict[str, Path]
) -> None:
    """Hookspecs generated from hookspecs/textpipe.wit (records, option, historic-less)
    load textpipe's Python components, built from the hand-written hookspecs."""
    hooks, _ = _bindgen(capsys, ROOT / "hookspecs" / "textpipe.wit", tmp_path / "tp.py")
    pm = hooks.plugin_manager()
    assert pm.project_name == "textpipe"
    with PluginHost(pm) as host:
        for name, wasm in sorted(textpipe_wasm.items()):
            host.load(wasm, name=name)
        assert pm.hook.transform(text="hi") == ["HI!"]
        stats = pm.hook.analyze(text="a b")
        assert [s.name for s in stats[0]][:2] == ["words", "characters"]
        assert isinstance(stats[0][0], hooks.Stat)


@pytest.mark.parametrize(
    ("source", "world"),
    [
        ("kitchen", None),
        ("hookspecs/textpipe.wit", None),
        ("hookspecs/eventrouter.wit", None),
        ("adder", None),
        ("wasi-cli", "command"),
        ("resources", None),
    ],
    ids=["kitchen", "textpipe", "eventrouter", "adder", "wasi-cli-command", "resources"],
)
def test_round_trip_to_the_same_wit(
    source: str,
    world: str | None,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    wasi_cli: Path,
) -> None:
    """`wit --bound` of the generated module is the input's WIT: every function (not
    skipped) with the same binding and the same type, as wasm-tools resolves them."""
    path = {
        "kitchen": lambda: _wit_dir(tmp_path, "k", KITCHEN_WIT),
        "adder": lambda: _wit_dir(tmp_path, "a", ADDER_WIT),
        "wasi-cli": lambda: wasi_cli,
        "resources": lambda: _wit_dir(tmp_path, "r", RESOURCES_WIT),
    }.get(source, lambda: ROOT / source)()
    args = ("--world", world) if world else ()
    module, err = _bindgen(capsys, path, tmp_path / "gen.py", *args)
    original = Resolved(read_wit_json(path))
    skipped = {line.split(": ", 1)[0].removeprefix("skipped ") for line in err.splitlines()}
    expected = {b: s for b, s in _functions(original, world).items() if b not in skipped}
    assert expected

    assert main(["wit", str(tmp_path / "gen.py"), "--bound", "-o", str(tmp_path / "b.wit")]) == 0
    again = Resolved(read_wit_json(tmp_path / "b.wit"))
    assert _functions(again, "bound") == expected
    # and the contract of the module holds the same, hook by hook
    contract = Contract.from_hookspecs(module.plugin_manager())
    assert {str(h.binding): h.signature for h in contract.hooks.values()} == expected


def test_resource_module_loads_the_component_it_came_from(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """WIT resources become @resource classes (constructor, methods, static), handles
    `Counter` / `Borrow[Counter]`; the module loads the component and its handles work."""
    wit = _wit_dir(tmp_path, "res", RESOURCES_WIT)
    (wit.parent / "guest.wat").write_text(RESOURCES_WAT)
    wasm = build_guest(wit.parent, world="guest")
    hooks, _ = _bindgen(capsys, wit, tmp_path / "res_hooks.py", "--project", "res")
    assert is_resource(hooks.Counter)
    assert isinstance(hooks.Counter.__dict__["zero"], staticmethod)
    assert (
        typing.get_type_hints(hooks.CountersHooks.peek, include_extras=True)["c"]
        == (Borrow[hooks.Counter])
    )
    pm = hooks.plugin_manager()
    with PluginHost(pm, grants={"g": Capabilities(interfaces={"docs"})}) as host:

        @resource
        class Document(hooks.Document):  # the host's own implementation of the import
            __wit_name__ = "document"

            def __init__(self, text: str) -> None:
                self.text = text

            def length(self) -> u32:
                return len(self.text)

        def open_document(name: str) -> Document:
            return Document(name)

        open_document.__annotations__ = {"name": str, "return": Document}  # a local class
        host.provide(Document, interface="test:res/docs@1.0.0")
        host.provide(open_document, interface="test:res/docs@1.0.0", name="open")
        host.load(wasm, name="g", requests=Capabilities(interfaces={"docs"}))
        [counter] = pm.hook.make(start=2)
        assert isinstance(counter, hooks.Counter)
        counter.inc(by=5)
        assert pm.hook.peek(c=counter) == [7]
        assert guest_resource(host.plugins["g"], hooks.Counter).zero().get() == 0


def test_what_hooks_cannot_carry_is_skipped_with_the_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Async funcs are left out, named with the reason (a resource's methods are reached
    through its class, not as hooks); option<option<T>> is Some[T | None] | None; names
    that clash or are keywords are renamed, WIT names kept."""
    module, err = _bindgen(capsys, _wit_dir(tmp_path, "k", KITCHEN_WIT), tmp_path / "k.py")
    assert "skipped tick: an `async func` (component-model async)" in err
    assert "#[method]thing.size: a method of resource `thing`" in err
    assert "nested" not in err  # option<option<T>> is Some[T | None] | None
    pm = module.plugin_manager()
    hooks = {n for n, c in vars(pm.hook).items() if getattr(c, "spec", None)}
    assert hooks == {
        "top_level", "draw", "decide", "blob", "shapes_get", "other_get", "nothing", "handle",
        "nested",
    }  # fmt: skip
    assert is_resource(module.Thing)
    assert module.ShapeNone.__wit_name__ == "none"
    assert module.AnswerNone.__wit_name__ == "none"
    assert [f.name for f in attrs.fields(module.FromTo)] == ["from_", "type", "self_"]
    assert issubclass(module.Perms, enum.Flag)
    assert [m.name for m in module.Perms] == ["READ", "WRITE", "EXEC"]
    assert module.Color("light-blue") is module.Color.LIGHT_BLUE


def test_world_choice_and_empty_worlds_are_named_errors(tmp_path: Path, wasi_cli: Path) -> None:
    """Several worlds without --world, an unknown world, and a world with nothing hooks
    can carry are errors that say what to do."""
    resolved = Resolved(read_wit_json(wasi_cli))
    with pytest.raises(WitJsonError, match="choose one with --world"):
        resolved.world(None)
    with pytest.raises(WitJsonError, match="has no world 'nope'; its worlds are"):
        resolved.world("nope")
    with pytest.raises(BindgenError, match="exports no function hooks can carry"):
        hookspec_module(resolved.world("imports"))


def test_bindgen_reports_unreadable_wit(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """WIT that wasm-tools rejects is reported with its error, not a traceback."""
    bad = tmp_path / "bad.wit"
    bad.write_text("package a:b;\ninterface i { f: func(x: nope); }\n")
    assert main(["bindgen", str(bad)]) == 1
    err = capsys.readouterr().err
    assert "wasm-tools cannot read the WIT of" in err
    assert "nope" in err
    assert "Traceback" not in err


MYPY_USER = """
from {module} import plugin_manager, relay

pm = plugin_manager()
total: list[int] = relay(pm).add(x=40, y=2)
relay(pm).add(x="forty", y=2)
relay(pm).sub(x=1, y=2)
"""


_MYPY_CACHE: list[Path] = []


def _mypy(tmp_path: Path, script: str) -> list[str]:
    """mypy --strict's errors in ``script`` (user.py); the cache of typeshed, pluggy and
    attrs is shared between the tests of a session."""
    if not _MYPY_CACHE:
        _MYPY_CACHE.append(tmp_path / ".mypy_cache")
    (tmp_path / "user.py").write_text(script)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            f"--cache-dir={_MYPY_CACHE[0]}",
            "--follow-imports=silent",
            "user.py",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
        env={"MYPYPATH": str(ROOT), "PATH": str(Path(find_tool("wasm-tools")).parent)},
    )
    return [line for line in done.stdout.splitlines() if line.startswith("user.py:")]


def test_relay_types_hook_calls_for_mypy(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """relay(pm).add(...) is checked: a wrong argument type and an unknown hook are errors,
    the right call is not."""
    _bindgen(capsys, _wit_dir(tmp_path, "a", ADDER_WIT), tmp_path / "adder_hooks.py")
    errors = _mypy(tmp_path, MYPY_USER.format(module="adder_hooks"))
    assert len(errors) == 2, errors
    assert errors[0].startswith("user.py:6:")
    assert '"add" of "HookRelay"' in errors[0]
    assert errors[1].startswith("user.py:7:")
    assert 'has no attribute "sub"' in errors[1]


STUB_USER = """
from relay_textpipe import relay
import pluggy
from hookspecs.textpipe import TextHooks

pm = pluggy.PluginManager("textpipe")
pm.add_hookspecs(TextHooks)
out: list[str] = relay(pm).transform(text="hi")
lang: str | None = relay(pm).detect_language(text="hi")
relay(pm).transform(text=3)
"""


def test_stub_for_hand_written_hookspecs(tmp_path: Path) -> None:
    """--stub-for writes a HookRelay for hand-written hookspecs: firstresult hooks return
    one value, others a list; argument types are checked."""
    out = tmp_path / "relay_textpipe.py"
    assert main(["bindgen", "--stub-for", "hookspecs.textpipe:TextHooks", "-o", str(out)]) == 0
    text = out.read_text()
    assert "def detect_language(self, *, text: str) -> str | None: ..." in text
    assert "def transform(self, *, text: str) -> list[str]: ..." in text
    assert "configure: pluggy.HookCaller" in text  # historic: call_historic(kwargs=...)
    errors = _mypy(tmp_path, STUB_USER)
    assert len(errors) == 1, errors
    assert errors[0].startswith("user.py:10:")


def _fenced(page: str, opening: str) -> str:
    """The code of the block whose fence line is ``opening`` in docs/``page``."""
    text = (ROOT / "docs" / page).read_text()
    start = text.index(opening + "\n") + len(opening) + 1
    return text[start : text.index("```", start)]


def test_the_how_to_shows_what_bindgen_writes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """docs/howto/bindgen.md shows the module bindgen writes for its WIT, and the WIT
    `wit --bound` gives back for it."""
    wit = tmp_path / "adder" / "wit"
    wit.mkdir(parents=True)
    (wit / "world.wit").write_text(
        _fenced("howto/bindgen.md", '```wit title="adder/wit/world.wit"')
    )
    out = tmp_path / "adder_hooks.py"
    _bindgen(capsys, wit, out)
    assert out.read_text() == _fenced("howto/bindgen.md", '```python title="adder_hooks.py"')
    assert main(["wit", str(out), "--bound"]) == 0
    shown = _fenced("howto/bindgen.md", "```console\n$ airssys-plugins wit adder_hooks.py --bound")
    assert capsys.readouterr().out == shown


def test_one_function_in_two_versions_of_an_interface_gets_two_hook_names() -> None:
    """wit-bindgen's `versions` component has `test:dep/test@0.1.0#x` and `@0.2.0#x`: both
    become hooks, told apart by their version (the second used to be skipped as a
    duplicate); names that are already unique are left alone."""
    from airssys_plugins.contract import wit
    from airssys_plugins.contract.bindgen import _hook_names
    from airssys_plugins.contract.wit_json import WitFunction

    sig = wit.FuncSig((), wit.Prim("f32"))
    funcs = [
        WitFunction("test:dep/test@0.1.0", "x", sig),
        WitFunction("test:dep/test@0.2.0", "x", sig),
        WitFunction("test:dep/other@0.2.0", "y", sig),
        WitFunction(None, "run", sig),
    ]
    assert _hook_names(funcs) == ["test_x_v0_1_0", "test_x_v0_2_0", "y", "run"]
