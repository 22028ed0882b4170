"""Plugin authoring: ``airssys-plugins new`` and ``build`` for Python, JavaScript, C and WAT.

Each language goes the whole way a plugin author goes: scaffold against a contract, fill
in the stubs, build with the real toolchain (componentize-py, jco, clang + wasm-tools,
wasm-tools), load the project's manifest into a PluginHost and call through pluggy. The
skeleton generators are also run over every WIT type (stubs return zero values; C stubs
also echo their argument back).
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import shlex
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pluggy
import pytest

from airssys_plugins import Capabilities, Contract, Manifest, PluginHost, PluginSource
from airssys_plugins.authoring import ScaffoldError, new_plugin, set_manifest_digest
from airssys_plugins.authoring import abi as _abi
from airssys_plugins.authoring.build import (
    BuildError,
    ToolchainMissing,
    build_guest,
    find_tool,
    jco_dir,
)
from airssys_plugins.cli import main
from airssys_plugins.contract.wit import (
    EnumT,
    FlagsT,
    ListT,
    OptionT,
    Prim,
    RecordT,
    ResultT,
    TupleT,
    VariantT,
)

from .authoring_hooks import PACKAGE, AuthoringHooks, TypeHooks, Wrapper
from .kitchen_hooks import Circle, Color, Perms, Point
from .test_values import ROUND_TRIPS

CONTRACT = "tests.authoring_hooks:AuthoringHooks"
TYPES_PACKAGE = "test:types@1.0.0"
LANGS = ["python", "js", "c", "wat"]


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def fill(source: str, start: str, end: str, body: str) -> str:
    """Replace the stub after ``start``: from its TODO line up to the line starting ``end``."""
    at = source.index(start)
    todo = source.rindex("\n", 0, source.index("TODO: implement this hook.", at)) + 1
    stop = source.index("\n" + end, todo) + 1
    return source[:todo] + body + source[stop:]


# The same three hooks in each language: greet, add, and a firstresult detect_language
# that answers "en" for text starting with "the" and passes (none) otherwise.
PYTHON_BODIES = {
    "def greet(": '    return f"Hello, {name}!"\n',
    "def add(": "    return x + y\n",
    "def detect_language(": '    return "en" if text.startswith("the") else None\n',
}
JS_BODIES = {
    "greet(name) {": "    return `Hello, ${name}!`;\n",
    "add(x, y) {": "    return x + y;\n",
    "detectLanguage(text) {": '    return text.startsWith("the") ? "en" : null;\n',
}
C_BODIES = {
    " greet(": """\
  static const char hello[] = "Hello, ";
  size_t n = sizeof hello - 1;
  uint8_t *out = guest_alloc(n + name.len + 1, 1);
  memcpy(out, hello, n);
  memcpy(out + n, name.ptr, name.len);
  out[n + name.len] = '!';
  return (guest_string_t){ out, n + name.len + 1 };
""",
    " add(": "  return x + y;\n",
    " detect_language(": """\
  guest_option_string_t answer = {0};
  if (text.len >= 3 && text.ptr[0] == 't' && text.ptr[1] == 'h' && text.ptr[2] == 'e') {
    answer.is_some = true;
    answer.val = guest_string("en");
  }
  return answer;
""",
}


def wat_bodies(data: int) -> dict[str, str]:
    """WAT bodies; ``data`` is the free data area the skeleton's memory map names."""
    return {
        "(func $greet ": f"""\
    (local $out i32) (local $ret i32)
    (local.set $out (call $cabi_realloc (i32.const 0) (i32.const 0) (i32.const 1)
                      (i32.add (local.get $name.len) (i32.const 8))))
    (memory.copy (local.get $out) (i32.const {data}) (i32.const 7))
    (memory.copy (i32.add (local.get $out) (i32.const 7)) (local.get $name.ptr)
                 (local.get $name.len))
    (i32.store8 (i32.add (local.get $out) (i32.add (local.get $name.len) (i32.const 7)))
                (i32.const 33))
    (local.set $ret (call $cabi_realloc (i32.const 0) (i32.const 0) (i32.const 4) (i32.const 8)))
    (i32.store (local.get $ret) (local.get $out))
    (i32.store offset=4 (local.get $ret) (i32.add (local.get $name.len) (i32.const 8)))
    (local.get $ret))
""",
        "(func $add ": "    (i32.add (local.get $x) (local.get $y)))\n",
        "(func $detect-language ": f"""\
    (local $ret i32)
    (local.set $ret (call $cabi_realloc (i32.const 0) (i32.const 0) (i32.const 4) (i32.const 12)))
    (i32.store8 (local.get $ret) (i32.const 0))
    (if (i32.and (i32.ge_u (local.get $text.len) (i32.const 3))
          (i32.and (i32.eq (i32.load16_u (local.get $text.ptr)) (i32.const 0x6874))
                   (i32.eq (i32.load8_u offset=2 (local.get $text.ptr)) (i32.const 0x65))))
      (then (i32.store8 (local.get $ret) (i32.const 1))
            (i32.store offset=4 (local.get $ret) (i32.const {data + 7}))
            (i32.store offset=8 (local.get $ret) (i32.const 2))))
    (local.get $ret))
""",
    }


def implement(lang: str, project: Path) -> None:
    """Fill in the three stubs of a scaffolded project, as its author would."""
    if lang == "python":
        path = project / "plugin.py"
        source = path.read_text() + "\n"
        for start, body in PYTHON_BODIES.items():
            source = fill(source, start, "\n", body)
    elif lang == "js":
        path = project / "app.js"
        source = path.read_text()
        for start, body in JS_BODIES.items():
            source = fill(source, start, "  },", body)
    elif lang == "c":
        path = project / "guest.c"
        source = path.read_text()
        for start, body in C_BODIES.items():
            source = fill(source, start, "}", body)
    else:
        path = project / "guest.wat"
        source = path.read_text()
        data = int(re.search(r"\(data \(i32\.const (\d+)\)", source).group(1))  # type: ignore[union-attr]
        for start, body in wat_bodies(data).items():
            source = fill(source, start, '  (func (export "cabi_post_', body)
        source = source.replace(
            "\n  ;; cabi_realloc", f'\n  (data (i32.const {data}) "Hello, en")\n\n  ;; cabi_realloc'
        )
    path.write_text(source)


@pytest.fixture
def authoring_pm() -> pluggy.PluginManager:
    pm = pluggy.PluginManager("authoring")
    pm.add_hookspecs(AuthoringHooks)
    return pm


@pytest.mark.parametrize("lang", LANGS, ids=LANGS)
def test_new_build_load_call(
    lang: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    authoring_pm: pluggy.PluginManager,
) -> None:
    """scaffold -> fill in the stubs -> build -> load the manifest -> call through pluggy."""
    project = tmp_path / f"hello-{lang}"
    code, out, _ = run(
        capsys,
        "new",
        f"hello-{lang}",
        "--lang",
        lang,
        "--contract",
        CONTRACT,
        "--dir",
        str(project),
    )
    assert code == 0, out
    assert "hooks: add, detect_language, greet" in out
    assert f"airssys-plugins build {project}" in out
    implement(lang, project)

    code, out, err = run(capsys, "build", str(project))
    assert code == 0, err
    assert f"building {lang} guest hello-{lang}" in err or "unchanged" in err  # cached?
    component = project / f"hello-{lang}.wasm"
    digest = hashlib.sha256(component.read_bytes()).hexdigest()
    assert f"sha256 {digest}" in out
    manifest = Manifest.from_file(project / "plugin.toml")
    assert manifest.sha256 == digest
    assert manifest.contract is not None
    assert manifest.contract.accepts("test:authoring", "1.0.0")

    code, out, err = run(capsys, "build", str(project))  # unchanged: from the build cache
    assert code == 0
    assert "unchanged since the last build" in err

    with PluginHost(authoring_pm, package=PACKAGE) as host:
        report = host.load_plugins([PluginSource.from_path(project)], strict=True)
        assert report[f"hello-{lang}"].plugin is not None
        hook = authoring_pm.hook
        assert hook.greet(name="Bob") == ["Hello, Bob!"]
        assert hook.greet(name="wörld ✓") == ["Hello, wörld ✓!"]
        assert hook.add(x=2, y=40) == [42]
        assert hook.detect_language(text="the cat") == "en"
        assert hook.detect_language(text="le chat") is None


def test_new_writes_the_host_contract_and_host_interfaces(tmp_path: Path) -> None:
    """wit/contract.wit is the contract's WIT with a `guest` world of the chosen hooks;
    wit/deps/airssys-host/host.wit is PluginHost.host_wit(), lifecycle included."""
    pm = pluggy.PluginManager("authoring")
    pm.add_hookspecs(AuthoringHooks)
    with PluginHost(pm, package=PACKAGE) as host:
        host_wit = host.host_wit()
    contract = Contract.from_hookspecs(AuthoringHooks, package=PACKAGE)
    made = new_plugin(
        "two",
        lang="wat",
        contract=contract,
        host_wit=host_wit,
        directory=tmp_path / "two",
        hooks=["greet", "add"],
    )
    assert made.hooks == ("greet", "add")
    wit = (tmp_path / "two" / "wit" / "contract.wit").read_text()
    assert wit == contract.wit(world="guest", hooks=["greet", "add"])
    assert "export greet;" in wit
    assert "export detect-language;" not in wit
    host_file = (tmp_path / "two" / "wit" / "deps" / "airssys-host" / "host.wit").read_text()
    assert host_file == host_wit["airssys:host@0.1.0"]
    assert "interface lifecycle" in host_file
    readme = (tmp_path / "two" / "README.md").read_text()
    assert "airssys-plugins build two" in readme
    assert "WAT skeleton generator supports every WIT type" in readme
    assert "`guest.wat`" in readme


def test_new_refuses_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A bad name, an unknown hook or a non-empty directory is refused before any file is
    written, with the reason."""
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "notes.txt").write_text("mine")
    cases = [
        (["new", "bad name!", "--contract", CONTRACT], "is not a plugin name"),
        (["new", "x", "--contract", CONTRACT, "--hooks", "greet,nope"], "unknown hook(s) ['nope']"),
        (["new", "x", "--contract", CONTRACT, "--dir", str(tmp_path / "taken")], "not an empty"),
    ]
    for argv, message in cases:
        code, _, err = run(capsys, *argv)
        assert code == 1
        assert message in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken"]


def test_c_skeleton_refuses_flattened_variant_parameters(tmp_path: Path) -> None:
    """A variant parameter cannot be written by the C generator: the error names the hook,
    the parameter, the supported types and the alternatives."""
    contract = Contract.from_hookspecs(TypeHooks, package=TYPES_PACKAGE)
    with pytest.raises(ScaffoldError) as info:
        new_plugin(
            "shapes",
            lang="c",
            contract=contract,
            host_wit={},
            directory=tmp_path / "shapes",
            hooks=["echo_shape"],
        )
    message = str(info.value)
    assert "hook 'echo_shape', parameter 's'" in message
    assert "variant { circle(f64), rect(record" in message
    assert "C skeletons support: bool, s8-s64" in message
    assert "--lang wat, python or js" in message
    assert not (tmp_path / "shapes").exists()


# ----------------------------------------------------------------------------- every type

ARGS: dict[str, dict[str, Any]] = {
    "crash": {"x": 1},
    "divide": {"a": 7, "b": 2},
    "validate": {"name": "x"},
    "nothing": {},
    "wide": {k: k for k in "abcdefghi"},
    "single": {"x": Wrapper(7)},
    "keywords": {"default": "d", "new": 1},
}
for _hook, _value in ROUND_TRIPS:
    _param = {"echo_point": "p", "echo_perms": "p", "echo_shape": "s", "echo_color": "c"}
    ARGS.setdefault(_hook, {_param.get(_hook, "x"): _value})

ZEROS: dict[str, Any] = {
    "echo_bool": False,
    "echo_f32": 0.0,
    "echo_f64": 0.0,
    "echo_char": "\0",
    "echo_string": "",
    "echo_bytes": b"",
    "echo_list": [],
    "echo_strings": [],
    "echo_tuple": (0, "", False),
    "echo_option": None,
    "echo_point": Point(0, 0, ""),
    "echo_shape": Circle(0.0),
    "echo_color": Color.RED,
    "echo_perms": Perms(0),
    "echo_lines": [],
    "maybe_shape": None,
    "divide": 0,
    "validate": "",
    "nothing": None,
    "wide": "",
    "single": Wrapper(0),
    "keywords": "",
}
C_HOOKS = [h for h in sorted(ARGS) if h not in ("echo_shape", "maybe_shape")]


@pytest.fixture
def types_pm() -> pluggy.PluginManager:
    pm = pluggy.PluginManager("kitchen")
    pm.add_hookspecs(TypeHooks)
    return pm


def _scaffold_types(tmp_path: Path, lang: str, hooks: list[str] | None = None) -> Path:
    contract = Contract.from_hookspecs(TypeHooks, package=TYPES_PACKAGE)
    project = tmp_path / f"types-{lang}"
    new_plugin(
        f"types-{lang}",
        lang=lang,  # type: ignore[arg-type]
        contract=contract,
        host_wit={},
        directory=project,
        hooks=hooks,
    )
    return project


def _call(pm: pluggy.PluginManager, hook: str) -> Any:
    results = getattr(pm.hook, hook)(**ARGS[hook])
    assert len(results) <= 1
    return results[0] if results else None


def _check_zeros(pm: pluggy.PluginManager, hooks: list[str]) -> None:
    for hook in hooks:
        expected = ZEROS.get(hook, 0)
        got = _call(pm, hook)
        assert (got, type(got)) == (expected, type(expected)), hook


@pytest.mark.parametrize("lang", ["wat", "c", "js"], ids=["wat", "c", "js"])
def test_unedited_skeletons_of_every_type_return_zero_values(
    lang: str, tmp_path: Path, types_pm: pluggy.PluginManager
) -> None:
    """Built as generated, every stub returns its result type's zero value, whatever the
    type: the generated ABI (WAT, C) and value mapping (JS) fit what the host expects."""
    hooks = C_HOOKS if lang == "c" else None
    project = _scaffold_types(tmp_path, lang, hooks)
    with PluginHost(types_pm, package=TYPES_PACKAGE) as host:
        host.load(build_guest(project), name=f"types-{lang}")
        _check_zeros(types_pm, hooks or sorted(ARGS))


def test_c_skeleton_of_every_type_echoes_arguments(
    tmp_path: Path, types_pm: pluggy.PluginManager
) -> None:
    """C stubs filled with `return <argument>;` give every value back unchanged: the
    generated lifting of flat arguments and lowering of results are exact inverses."""
    project = _scaffold_types(tmp_path, "c", C_HOOKS)
    source = (project / "guest.c").read_text()
    for hook in C_HOOKS:
        if hook.startswith("echo_") or hook == "single":
            (param,) = ARGS[hook]
            source = fill(source, f" {hook}(", "}", f"  return {param};\n")
    wide_body = "  return h.len > 0 ? h : a;\n"
    source = fill(source, " wide(", "}", wide_body)
    (project / "guest.c").write_text(source)
    with PluginHost(types_pm, package=TYPES_PACKAGE) as host:
        host.load(build_guest(project), name="types-c")
        for hook, value in ROUND_TRIPS:
            if hook in C_HOOKS:
                (param,) = ARGS[hook]
                results = getattr(types_pm.hook, hook)(**{param: value})
                got = results[0] if results else None
                assert (got, type(got)) == (value, type(value)), hook
        assert _call(types_pm, "single") == Wrapper(7)
        assert _call(types_pm, "wide") == "h"


def _bindings(project: Path, dest: Path) -> Path:
    """componentize-py's generated Python modules for the project's world, in ``dest``."""
    tool = find_tool("componentize-py")
    cmd = [tool, "-d", str(project / "wit"), "-w", "guest", "bindings", str(dest)]
    subprocess.run(cmd, check=True, capture_output=True)
    return dest


def test_python_skeleton_of_every_type_matches_componentize_py_bindings(tmp_path: Path) -> None:
    """app.py and plugin.py run against the classes componentize-py generates for the WIT:
    every interface class exists, every stub's zero value constructs (no build needed)."""
    project = _scaffold_types(tmp_path, "python")
    bindings = _bindings(project, tmp_path / "bindings")
    script = textwrap.dedent(
        """
        import inspect, sys
        sys.path[:0] = [sys.argv[1], sys.argv[2]]
        import app
        from wit_world import exports
        seen = []
        for name, proto in inspect.getmembers(exports, inspect.isclass):
            if proto.__module__ != exports.__name__:
                continue
            impl = getattr(app, name)
            assert proto in impl.__mro__, name
            (method,) = [m for m in vars(proto) if not m.startswith("_")]
            arity = len(inspect.signature(getattr(proto, method)).parameters) - 1
            seen.append(f"{method}={getattr(impl(), method)(*[None] * arity)!r}")
        print("\\n".join(seen))
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", script, str(bindings), str(project)],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    results = dict(line.split("=", 1) for line in proc.stdout.splitlines())
    assert len(results) == 31
    assert results["echo_shape"] == "Shape_Circle(value=0.0)"
    assert results["echo_color"] == "<Color.RED: 0>"
    assert results["echo_perms"] == "<Perms: 0>"
    assert results["echo_point"] == "Point(x=0, y=0, label='')"
    assert results["echo_tuple"] == "(0, '', False)"
    assert results["echo_bytes"] == "b''"
    assert results["validate"] == "''"


# ----------------------------------------------------------------------------- tutorials

DOCS = Path(__file__).resolve().parent.parent / "docs" / "tutorials"


def _tutorial(doc: str) -> tuple[list[str], str, str, str, dict[str, list[str]]]:
    """From a tutorial: the `new` command's arguments, the file it has you write (its path
    and text), and textpipe's input and output lines by label."""
    text = (DOCS / doc).read_text()
    new = re.search(r"^\$ airssys-plugins (new .*)$", text, re.M)
    code = re.search(r'^```\w+ title="([^"]+)"\n(.*?)^```', text, re.M | re.S)
    run_ = re.search(r'^\$ textpipe --plugins-dir \. "([^"]+)"\n(.*?)^```', text, re.M | re.S)
    assert new is not None, doc
    assert code is not None, doc
    assert run_ is not None, doc
    shown: dict[str, list[str]] = {}
    for line in run_.group(2).splitlines():
        label, _, value = line.partition(":")
        shown.setdefault(label, []).append(value.strip())
    return shlex.split(new.group(1)), code.group(1), code.group(2), run_.group(1), shown


def _check_against_tutorial(
    shown: dict[str, list[str]], transform: str, analyze: list[tuple[str, float]], lang: Any
) -> None:
    assert transform in shown["transform"]
    for name, value in analyze:
        assert f"{name} = {value:g}" in shown["analyze"]
    if lang is not None:
        assert shown["language"] == [lang]


@pytest.mark.parametrize("doc", ["plugin-c.md", "plugin-javascript.md"], ids=["c", "javascript"])
def test_tutorial_builds_and_answers_as_shown(
    doc: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The tutorial's commands and code, run as written, give the output it shows."""
    from hookspecs.textpipe import PACKAGE as TEXTPIPE
    from hookspecs.textpipe import TextHooks

    argv, path, code, text, shown = _tutorial(doc)
    monkeypatch.chdir(tmp_path)
    assert run(capsys, *argv)[0] == 0
    (tmp_path / path).write_text(code)
    project = tmp_path / Path(path).parent
    assert run(capsys, "build", str(project))[0] == 0
    pm = pluggy.PluginManager("textpipe")
    pm.add_hookspecs(TextHooks)
    with PluginHost(pm, package=TEXTPIPE) as host:
        plugin = host.load_plugins([project], strict=True)[project.name].plugin
        assert plugin is not None
        (transformed,) = pm.hook.transform(text=text)
        stats = pm.hook.analyze(text=text)
        language = pm.hook.detect_language(text=text)
    _check_against_tutorial(
        shown, transformed, [(s.name, s.value) for ss in stats for s in ss], language
    )


def test_python_tutorial_code_answers_as_shown(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The Python tutorial's plugin.py, run against componentize-py's generated classes,
    answers as the tutorial shows (the build itself is what test_new_build_load_call
    proves)."""
    argv, path, code, text, shown = _tutorial("plugin-python.md")
    monkeypatch.chdir(tmp_path)
    assert run(capsys, *argv)[0] == 0
    (tmp_path / path).write_text(code)
    project = tmp_path / Path(path).parent
    bindings = _bindings(project, tmp_path / "bindings")
    script = textwrap.dedent(
        """
        import json, sys
        sys.path[:0] = [sys.argv[1], sys.argv[2]]
        import plugin
        stats = [(s.name, s.value) for s in plugin.analyze(sys.argv[3])]
        print(json.dumps([plugin.transform(sys.argv[3]), stats]))
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", script, str(bindings), str(project), text],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    transformed, stats = json.loads(proc.stdout)
    _check_against_tutorial(shown, transformed, [tuple(s) for s in stats], None)


# ----------------------------------------------------------------------------- the ABI


def test_canonical_abi_layouts() -> None:
    """Sizes, alignments and flattenings as CanonicalABI.md defines them."""
    string, u8, u32, u64, f32, f64 = (Prim(n) for n in ("string", "u8", "u32", "u64", "f32", "f64"))
    record = RecordT("r", (("a", u8), ("b", u64), ("c", u8)))
    layouts = [
        (string, 8, 4, ["i32", "i32"]),
        (OptionT(u8), 2, 1, ["i32", "i32"]),
        (OptionT(string), 12, 4, ["i32", "i32", "i32"]),
        (OptionT(u64), 16, 8, ["i32", "i64"]),
        (TupleT((u8, u32)), 8, 4, ["i32", "i32"]),
        (record, 24, 8, ["i32", "i64", "i32"]),
        (ListT(record), 8, 4, ["i32", "i32"]),
        (ResultT(f32, u32), 8, 4, ["i32", "i32"]),
        (ResultT(f64, u32), 16, 8, ["i32", "i64"]),
        (ResultT(None, None), 1, 1, ["i32"]),
        (OptionT(f32), 8, 4, ["i32", "f32"]),
        (EnumT("e", tuple(f"c{i}" for i in range(300))), 2, 2, ["i32"]),
        (FlagsT("f", tuple(f"f{i}" for i in range(9))), 2, 2, ["i32"]),
        (VariantT("v", (("a", u8), ("b", f64), ("c", None))), 16, 8, ["i32", "i64"]),
    ]
    for t, size, align, flat in layouts:
        assert (_abi.size(t), _abi.alignment(t), _abi.flatten(t)) == (size, align, flat), t
    assert [leaf.offset for leaf in _abi.leaves(OptionT(string), "r")] == [0, 4, 8]


# ----------------------------------------------------------------------------- toolchains


@pytest.mark.parametrize(
    ("lang", "hides", "install"),
    [
        ("c", "clang", "apt-get install clang lld"),
        ("js", "npm", "apt-get install npm"),
        ("python", "componentize-py", "pip install 'airssys-plugins[build]'"),
    ],
    ids=["c", "js", "python"],
)
def test_missing_toolchain_says_what_to_install(
    lang: str,
    hides: str,
    install: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Without the tool, build raises ToolchainMissing naming the package to install."""
    project = _scaffold_types(tmp_path, lang, ["echo_u32"])
    node = find_tool("node") if lang == "js" else None
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    if node is not None:  # node stays, npm goes; and jco is not installed yet
        (empty / "node").symlink_to(node)
        monkeypatch.setenv("AIRSSYS_PLUGINS_CACHE_DIR", str(tmp_path / "fresh-cache"))
        assert not jco_dir().exists()
    monkeypatch.setenv("PATH", str(empty))
    monkeypatch.setattr(sys, "executable", str(empty / "python"))
    with pytest.raises(ToolchainMissing, match=re.escape(install)) as info:
        build_guest(project)
    assert hides in str(info.value)
    assert isinstance(info.value, BuildError)
    assert isinstance(info.value, FileNotFoundError)


# ----------------------------------------------------------------------------- manifests


def test_set_manifest_digest_edits_one_line(tmp_path: Path) -> None:
    """The digest replaces an existing sha256 line or follows `component`; comments, order
    and tables stay as they were."""
    path = tmp_path / "plugin.toml"
    original = 'name = "x"  # mine\ncomponent = "x.wasm"\n\n[contract]\npackage = "a:b"\n'
    path.write_text(original)
    set_manifest_digest(path, "a" * 64)
    assert path.read_text() == original.replace('"x.wasm"\n', f'"x.wasm"\nsha256 = "{"a" * 64}"\n')
    set_manifest_digest(path, "b" * 64)
    assert path.read_text().count("sha256") == 1
    assert "b" * 64 in path.read_text()
    path.write_text('name = "y"\n\n[limits]\ntimeout = 1.0\n')
    set_manifest_digest(path, "c" * 64)
    assert Manifest.from_file(path).sha256 == "c" * 64
    assert path.read_text().startswith(f'name = "y"\nsha256 = "{"c" * 64}"\n')


def test_python_plugin_uses_host_interfaces_through_typed_helpers(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    authoring_pm: pluggy.PluginManager,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """`new --uses log,kv,config` imports the interfaces, requests them in plugin.toml and
    ships host.py: a plugin written with those helpers counts calls in kv and logs."""
    project = tmp_path / "counter"
    code, out, _ = run(
        capsys,
        "new",
        "counter",
        "--lang",
        "python",
        "--contract",
        CONTRACT,
        "--hooks",
        "greet",
        "--uses",
        "log,kv,config",
        "--dir",
        str(project),
    )
    assert code == 0, out
    assert "import airssys:host/kv@0.1.0;" in (project / "wit" / "contract.wit").read_text()
    assert 'interfaces = ["config", "kv", "log"]' in (project / "plugin.toml").read_text()
    source = (project / "plugin.py").read_text() + "\n"
    source = fill(
        source,
        "def greet(",
        "\n",
        (
            '    count = int(kv.get_text("count", "0") or "0") + 1\n'
            '    kv.set("count", str(count))\n'
            '    log("greeting", level="warning", name=name, count=count)\n'
            "    return f\"{config('greeting', default='Hello')}, {name} #{count}\"\n"
        ),
    )
    source = source.replace(
        "from __future__ import annotations\n",
        "from __future__ import annotations\n\nfrom host import config, kv, log\n",
    )
    (project / "plugin.py").write_text(source)
    assert run(capsys, "build", str(project))[0] == 0
    with PluginHost(authoring_pm, package=PACKAGE, data_dir=tmp_path / "data") as host:
        host.grants["counter"] = Capabilities(interfaces=["log", "kv", "config"])
        host.load_plugins([PluginSource.from_path(project)], strict=True)
        with caplog.at_level(logging.WARNING, logger="airssys_plugins.plugin.counter"):
            assert authoring_pm.hook.greet(name="Ann") == ["Hello, Ann #1"]
            assert authoring_pm.hook.greet(name="Bob") == ["Hello, Bob #2"]
        assert "greeting name='Bob' count='2'" in caplog.text
