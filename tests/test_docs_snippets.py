"""Every code block of the docs (``docs/**/*.md`` and ``README.md``) is tested.

Each ```python block is one test, named ``<file>:<line of its opening fence>``, and falls in
one of these categories:

* **doctest**: a ``>>>`` session, run with :mod:`doctest` against the real package. The
  outputs shown must be the outputs you get.
* **program**: run with ``exec`` in the page's namespace, with the page's workspace (a
  temporary directory holding the files the page talks about) as the current directory.
  A ``print(...)`` whose line ends in a comment must print exactly that comment.
* **guest**: the code of a componentize-py guest (it imports ``wit_world``); the page's
  fixture builds it into a component, which the page's later blocks load and call.
* **pytest**: a test module (it defines ``test_*`` functions); run with pytest in a
  subprocess, in the page's workspace.
* **compile-only**: marked ``<!-- snippet: compile-only -->`` in the markdown, for a
  fragment that cannot run on its own. It must parse, and every ``airssys_plugins`` name
  it uses must exist, with the keyword arguments it passes.
* **signature**: marked ``<!-- snippet: signature -->``, a listing such as
  ``host.load(source, *, name: str | None = None, ...)``. Each entry must list exactly the
  real parameters of the object it names: names, order, kind and defaults (a default
  written ``<like.this>`` only has to exist). Annotations are not compared.

The blocks of a page run in order and share one namespace, like one doctest file: a
``>>>`` session can use the ``host`` that the program above it made. A block whose fence
has a file name as its title (```python title="app.py"```) is also written to that file.
A page's fixture (in ``PAGES`` below) prepares its workspace (components built from the
repository's WAT and Python sources, with the file names the page uses) and may run a
preamble first, for reference pages whose snippets assume an application around them
(those pages run each block on its own, after a fresh preamble).

Other blocks: ```toml blocks must parse with tomllib; ```wit blocks must be valid WIT
(``wasm-tools component wit``, with the contract they export from beside them), and a
WIT fragment of named types must be what the Python classes of the block before it
generate. A ```text or ```console block marked ``<!-- snippet: output -->`` is the exact
output (stdout and stderr) of the python block before it.

SHA-256 digests (12 or 64 hex digits) in expected output match any digest: a component's
bytes, and so its digest, depend on the wasm-tools version that built it (it records
itself in the component's producers section).
"""

from __future__ import annotations

import ast
import contextlib
import doctest
import functools
import importlib
import importlib.util
import inspect
import io
import linecache
import logging
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import tokenize
import tomllib
import types
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pluggy
import pytest

import airssys_plugins
from airssys_plugins import Contract, PluginHost
from airssys_plugins.authoring.build import build_guest, find_tool
from airssys_plugins.host.builtins import builtin_functions
from airssys_plugins.host.interfaces import host_wit

ROOT = Path(__file__).resolve().parent.parent
GUESTS = ROOT / "tests" / "guests"
DOC_FILES = [*sorted((ROOT / "docs").rglob("*.md")), ROOT / "README.md"]

# ----------------------------------------------------------------------------- the blocks

FENCE = re.compile(r"^(?P<indent> *)```(?P<lang>[\w-]*)(?P<info>.*)$")
MARKER = re.compile(r"^\s*<!-- snippet: (?P<kind>[a-z-]+) -->\s*$")
MARKERS = ("compile-only", "signature", "output")


@dataclass(frozen=True)
class Block:
    doc: str  # relative to the repository root
    line: int  # 1-based line of the opening fence
    lang: str
    title: str | None
    code: str
    marker: str | None

    @property
    def id(self) -> str:
        return f"{self.doc}:{self.line}"

    @property
    def kind(self) -> str:
        if self.lang != "python":
            return self.lang
        if self.marker in ("compile-only", "signature"):
            return self.marker
        if re.search(r"^>>> ", self.code, re.M):
            return "doctest"
        tree = ast.parse(self.code)
        imported = set()
        for n in ast.walk(tree):
            if isinstance(n, ast.Import):
                imported |= {a.name.split(".")[0] for a in n.names}
            elif isinstance(n, ast.ImportFrom) and n.module:
                imported.add(n.module.split(".")[0])
        if imported & {"wit_world", "componentize_py_types"}:
            return "guest"
        if any(isinstance(n, ast.FunctionDef) and n.name.startswith("test_") for n in tree.body):
            return "pytest"
        return "program"


def parse_blocks(path: Path) -> list[Block]:
    lines = path.read_text().splitlines()
    doc = str(path.relative_to(ROOT))
    blocks = []
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if m is None:
            i += 1
            continue
        indent = m["indent"]
        end = next(j for j in range(i + 1, len(lines)) if lines[j].strip() == "```")
        body = [line.removeprefix(indent) for line in lines[i + 1 : end]]
        title = re.search(r'title="([^"]+)"', m["info"])
        previous = next((lines[j] for j in range(i - 1, -1, -1) if lines[j].strip()), "")
        marker = MARKER.match(previous)
        blocks.append(
            Block(
                doc=doc,
                line=i + 1,
                lang=m["lang"],
                title=title[1] if title else None,
                code="\n".join(body) + "\n",
                marker=marker["kind"] if marker else None,
            )
        )
        i = end + 1
    return blocks


BLOCKS = [b for path in DOC_FILES for b in parse_blocks(path)]
PYTHON = [b for b in BLOCKS if b.lang == "python"]


def _ids(blocks: list[Block]) -> list[str]:
    return [b.id for b in blocks]


# ----------------------------------------------------------------------------- outputs

_DIGEST = re.compile(r"\b(?:[0-9a-f]{64}|[0-9a-f]{12})\b")


def _normalized(text: str) -> str:
    text = _DIGEST.sub(lambda m: "<sha256>" if len(m[0]) == 64 else "<sha256[:12]>", text)
    return "\n".join(line.rstrip() for line in text.strip("\n").splitlines())


class _Checker(doctest.OutputChecker):
    def check_output(self, want: str, got: str, optionflags: int) -> bool:
        return super().check_output(_normalized(want), _normalized(got), optionflags)


class _Prints:
    """``print`` for a snippet: records what each of the snippet's own lines printed."""

    def __init__(self, filename: str):
        self.filename = filename
        self.lines: dict[int, list[str]] = {}

    def __call__(self, *args: Any, **kwargs: Any) -> None:
        print(*args, **kwargs)
        frame = sys._getframe(1)
        if frame.f_code.co_filename == self.filename and kwargs.get("file") is None:
            text = kwargs.get("sep", " ").join(map(str, args))
            self.lines.setdefault(frame.f_lineno, []).append(text)


def _print_comments(code: str) -> dict[int, str]:
    """Line -> comment, for each one-line ``print(...)`` statement that ends in a comment."""
    comments = {
        tok.start[0]: tok.string[1:].strip()
        for tok in tokenize.generate_tokens(io.StringIO(code).readline)
        if tok.type == tokenize.COMMENT
    }
    found = {}
    for node in ast.walk(ast.parse(code)):
        if (
            isinstance(node, ast.Expr)
            and isinstance(node.value, ast.Call)
            and isinstance(node.value.func, ast.Name)
            and node.value.func.id == "print"
            and node.lineno == node.end_lineno
            and node.lineno in comments
        ):
            found[node.lineno] = comments[node.lineno]
    return found


# ----------------------------------------------------------------------------- sessions


class BlockFailed(Exception):
    """A block before this one on the page failed, so this one cannot run."""


@dataclass
class Page:
    """How to run a page's blocks."""

    #: text replacements (in code and expected output) for the page's workspace
    subs: Callable[[Path], dict[str, str]] | None = None
    #: prepares the workspace, after the files the page shows with a title are written
    setup: Callable[[Session], None] | None = None
    #: code run before the page's first block (before each block when ``isolated``)
    preamble: str = ""
    #: every block starts from a fresh namespace (and preamble) instead of the one before
    isolated: bool = False
    #: builds a guest block (the session, the block) into a component
    guest: Callable[[Session, Block], None] | None = None
    #: extra pytest arguments for a pytest block, by its title or line
    pytest_args: dict[str, list[str]] = field(default_factory=dict)
    #: more checks after a block ran (the session, the block)
    check: Callable[[Session, Block], None] | None = None


class Session:
    """One page's run: its workspace, its namespace, and what each block did."""

    def __init__(self, doc: str, page: Page, workspace: Path):
        self.doc = doc
        self.page = page
        self.ws = workspace.resolve()
        self.blocks = [b for b in BLOCKS if b.doc == doc]
        #: text replacements applied to code and expected output (e.g. absolute host paths)
        self.subs: dict[str, str] = {}
        self.results: dict[int, BaseException | None] = {}
        self.outputs: dict[int, str] = {}
        self.pytest_failures: dict[int, str | None] = {}
        self.modules: list[str] = []
        self.hosts: list[PluginHost] = []
        self._ready = False
        self.ns: dict[str, Any] = {}

    # -- lifecycle

    def _fresh_namespace(self) -> None:
        slug = re.sub(r"\W", "_", self.doc)
        name = f"docs_snippet_{len(self.modules)}_{slug}"
        module = types.ModuleType(name)
        sys.modules[name] = module
        self.modules.append(name)
        self.ns = module.__dict__
        if self.page.preamble:
            self._exec(self.page.preamble, f"<preamble of {self.doc}>", None, io.StringIO())

    def prepare(self) -> None:
        if self._ready:
            return
        self._ready = True
        if self.page.subs:
            self.subs = self.page.subs(self.ws)
        for block in self.blocks:  # the files the page has you write (guests: when built)
            if block.title and re.fullmatch(r"[\w./-]+", block.title) and block.kind != "guest":
                target = self.ws / block.title
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(self.sub(block.code))
        if self.page.setup:
            self.page.setup(self)
        if not self.page.isolated:
            self._fresh_namespace()

    def close(self) -> None:
        for value in self.ns.values():
            if isinstance(value, airssys_plugins.Watcher):
                value.stop()
        for value in [*self.hosts, *self.ns.values()]:
            if isinstance(value, PluginHost):
                value.close()
        for name in self.modules:
            sys.modules.pop(name, None)
        for name, module in list(sys.modules.items()):
            path = getattr(module, "__file__", None)
            if path and Path(path).resolve().is_relative_to(self.ws):
                del sys.modules[name]

    def sub(self, text: str) -> str:
        for old, new in self.subs.items():
            text = text.replace(old, new)
        return text

    @contextlib.contextmanager
    def running(self, out: io.StringIO) -> Iterator[None]:
        """cwd in the workspace, the workspace importable, stdout and stderr (and log
        records, as without any logging configuration) into ``out``."""
        cwd = os.getcwd()
        root = logging.getLogger()
        handlers, level = root.handlers[:], root.level
        os.chdir(self.ws)
        sys.path.insert(0, str(self.ws))
        root.handlers.clear()
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
                yield
        finally:
            root.handlers[:] = handlers
            root.setLevel(level)
            sys.path.remove(str(self.ws))
            os.chdir(cwd)

    # -- running blocks

    def result(self, block: Block) -> None:
        """Run ``block`` (and, first, the blocks before it); raise its failure."""
        self.prepare()
        if self.page.isolated:
            self._fresh_namespace()
            try:
                self._run(block)
            finally:
                for value in self.ns.values():
                    if isinstance(value, PluginHost):
                        value.close()
            return
        for earlier in self.blocks:
            if earlier.line >= block.line:
                break
            if earlier.kind == "pytest":  # test modules run on their own
                continue
            if earlier.kind in RUNNABLE and earlier.line not in self.results:
                self._record(earlier)
            if self.results.get(earlier.line) is not None:
                raise BlockFailed(f"{earlier.id} failed, and this block runs after it")
        if block.line not in self.results:
            self._record(block)
        failure = self.results[block.line]
        if failure is not None:
            raise failure

    def _record(self, block: Block) -> None:
        try:
            self._run(block)
        except BaseException as exc:  # kept for the test of this block
            if isinstance(exc, KeyboardInterrupt):
                raise
            self.results[block.line] = exc
        else:
            self.results[block.line] = None

    def _run(self, block: Block) -> None:
        {
            "program": self._program,
            "doctest": self._doctest,
            "guest": self._guest,
            "pytest": self._pytest,
        }[block.kind](block)
        if self.page.check:
            self.page.check(self, block)

    def _exec(self, code: str, filename: str, prints: _Prints | None, out: io.StringIO) -> None:
        linecache.cache[filename] = (len(code), None, code.splitlines(True), filename)
        if prints is not None:
            self.ns["print"] = prints
        try:
            with self.running(out):
                exec(compile(code, filename, "exec"), self.ns)
        finally:
            self.ns.pop("print", None)
            self.hosts += [v for v in self.ns.values() if isinstance(v, PluginHost)]

    def _program(self, block: Block) -> None:
        code = self.sub(block.code)
        filename = f"<{block.id}>"
        prints = _Prints(filename)
        out = io.StringIO()
        try:
            self._exec(code, filename, prints, out)
        except BaseException as exc:
            shown = out.getvalue()
            exc.add_note(f"{block.id} failed" + (f"; its output:\n{shown}" if shown else ""))
            raise
        self.outputs[block.line] = out.getvalue()
        for line, comment in _print_comments(code).items():
            printed = "\n".join(prints.lines.get(line, ["<not printed>"]))
            assert _normalized(printed) == _normalized(comment), (
                f"{block.id}, line {line} of the block: prints {printed!r}, "
                f"the comment says {comment!r}"
            )

    def _doctest(self, block: Block) -> None:
        test = doctest.DocTestParser().get_doctest(
            self.sub(block.code), {}, block.id, str(ROOT / block.doc), block.line
        )
        test.globs = self.ns  # share the page's namespace (get_doctest copies it)
        runner = doctest.DocTestRunner(checker=_Checker(), optionflags=doctest.ELLIPSIS)
        report: list[str] = []
        with self.running(io.StringIO()):
            runner.run(test, out=report.append, clear_globs=False)
        if runner.failures:
            raise AssertionError(f"{block.id}: doctest failed\n{''.join(report)}")

    def _guest(self, block: Block) -> None:
        assert self.page.guest is not None, f"{block.id}: no page fixture builds this guest"
        self.page.guest(self, block)

    def _pytest_file(self, block: Block) -> str:
        return block.title or f"tests/test_snippet_{block.line}.py"

    def _pytest_args(self, block: Block) -> list[str]:
        return self.page.pytest_args.get(block.title or str(block.line), [])

    def _pytest(self, block: Block) -> None:
        """Run the page's test modules that take the same pytest arguments in one
        session (one subprocess), and report this block's tests."""
        if block.line not in self.pytest_failures:
            args = self._pytest_args(block)
            batch = [b for b in self.blocks if b.kind == "pytest" and self._pytest_args(b) == args]
            for b in batch:
                path = self.ws / self._pytest_file(b)
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(self.sub(b.code))
            report = self.ws / "pytest-report.xml"
            proc = subprocess.run(
                [
                    *(sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"),
                    *(f"--junitxml={report}", *args, *(self._pytest_file(b) for b in batch)),
                ],
                cwd=self.ws,
                capture_output=True,
                text=True,
                env={**os.environ, "PYTHONPATH": str(ROOT)},
                check=False,
            )
            cases = ElementTree.parse(report).getroot().iter("testcase")
            outcomes: dict[str, list[bool]] = {}
            for case in cases:
                failed = any(c.tag in ("failure", "error") for c in case)
                outcomes.setdefault(case.get("classname", ""), []).append(not failed)
            for b in batch:
                module = self._pytest_file(b).removesuffix(".py").replace("/", ".")
                ok = outcomes.get(module, [])
                self.pytest_failures[b.line] = (
                    None if ok and all(ok) else f"{proc.stdout}{proc.stderr}"
                )
        failure = self.pytest_failures[block.line]
        assert failure is None, f"{block.id}: pytest failed\n{failure}"


RUNNABLE = ("program", "doctest", "guest", "pytest")


@pytest.fixture(scope="session")
def pages(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[str], Session]]:
    sessions: dict[str, Session] = {}

    def get(doc: str) -> Session:
        if doc not in sessions:
            workspace = tmp_path_factory.mktemp(Path(doc).stem)
            sessions[doc] = Session(doc, PAGES.get(doc, Page()), workspace)
        return sessions[doc]

    yield get
    for session in sessions.values():
        session.close()


# ----------------------------------------------------------------------------- components


def _replace(text: str, old: str, new: str) -> str:
    assert old in text, f"{old!r} is not in the source any more"
    return text.replace(old, new)


@functools.cache
def _built(name: str) -> Path:
    """Components the pages use, built (cached by content) from the repository's sources."""
    from sample_apps.textpipe.app import build_bundled

    if name in ("shout", "wordstats"):
        return build_bundled()[name]
    if name in ("dedup", "lookup"):
        from sample_apps.eventrouter.app import build_bundled as eventrouter

        return eventrouter()[name]
    if name == "kitchen":
        return build_guest(GUESTS / "kitchen")
    # Variants of the textpipe sample's hand-written `shout`.
    shout = ROOT / "sample_apps/textpipe/plugins/shout"
    wat = (shout / "guest.wat").read_text()
    wit = (shout / "wit/guest.wit").read_text()
    contract = [ROOT / "hookspecs/textpipe.wit"]
    if name in ("shout-2", "shout-3"):  # appends "?" instead of "!"
        wat = _replace(wat, "(i32.const 0x21)", "(i32.const 0x3f)")
        if name == "shout-3":  # a later build of version 2: the same answers, other bytes
            wat = _replace(wat, "(memory (export", "(func $build3)\n  (memory (export")
    elif name == "old":  # built when `transform` was still called `transform_text`
        wat = _replace(wat, "textpipe:hooks/transform@", "textpipe:hooks/transform-text@")
        wat = _replace(wat, "#transform", "#transform-text")
        wit = (
            "package textpipe:hooks@1.0.0;\n\ninterface transform-text {\n"
            "  transform-text: func(text: string) -> string;\n}\n\n"
            "world guest {\n  export transform-text;\n}\n"
        )
        contract = []
    elif name == "slow":  # transform never returns
        locals_ = "(local $out i32) (local $i i32) (local $c i32) (local $ret i32)\n"
        wat = _replace(wat, locals_, locals_ + "    (loop $forever (br $forever))\n")
    else:
        raise KeyError(name)
    with tempfile.TemporaryDirectory(prefix="docs-snippets-") as work:
        guest = Path(work) / name
        (guest / "wit").mkdir(parents=True)
        (guest / "guest.wat").write_text(wat)
        (guest / "wit/guest.wit").write_text(wit)
        return build_guest(guest, wit_files=contract)


def _place(session: Session, name: str, target: str) -> Path:
    path = session.ws / target
    path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(_built(name), path)
    return path


def _build_python_guest(s: Session, block: Block, wit: dict[str, str], target: str) -> None:
    """Build a componentize-py guest from ``block`` (an ``app.py``) with the given WIT
    files, and put the component at ``target`` in the workspace, where the page has it."""
    assert block.title is not None, block.id
    src = s.ws / "guest-src" / Path(target).stem
    shutil.rmtree(src, ignore_errors=True)
    (src / "wit").mkdir(parents=True)
    (src / "app.py").write_text(block.code)
    for rel, text in wit.items():
        (src / "wit" / rel).parent.mkdir(parents=True, exist_ok=True)
        (src / "wit" / rel).write_text(text)
    (s.ws / block.title).parent.mkdir(parents=True, exist_ok=True)
    (s.ws / block.title).write_text(block.code)
    (s.ws / target).parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(build_guest(src), s.ws / target)


def _host_wit() -> str:
    return host_wit(list(builtin_functions()))["airssys:host@0.1.0"]


# ----------------------------------------------------------------------------- the pages


def _ws_import(s: Session, module: str) -> Any:
    """A module the page has you write, imported from its workspace."""
    sys.path.insert(0, str(s.ws))
    try:
        return importlib.import_module(module)
    finally:
        sys.path.remove(str(s.ws))


@contextlib.contextmanager
def _cwd(path: Path) -> Iterator[None]:
    old = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(old)


def _cli(s: Session, *argv: str) -> None:
    from airssys_plugins.cli import main

    out = io.StringIO()
    with _cwd(s.ws), contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        code = main(list(argv))
    assert code == 0, f"airssys-plugins {' '.join(argv)} failed:\n{out.getvalue()}"


def _doc_command(doc: str, command: str) -> list[str]:
    """The arguments of the first ``$ airssys-plugins <command> ...`` line of a page."""
    text = (ROOT / doc).read_text()
    found = re.search(rf"^\$ airssys-plugins ({command} .*)$", text, re.M)
    assert found is not None, f"{doc} shows no `airssys-plugins {command}` command"
    return shlex.split(found[1])


def _bundled_plugins(s: Session, target: str) -> None:
    """The textpipe sample's plugin directory (shout and wordstats, with manifests)."""
    from sample_apps.textpipe.app import bundled_plugin_dir

    shutil.copytree(bundled_plugin_dir(), s.ws / target)


TEXTPIPE_HOST = """
import pluggy

from airssys_plugins import PluginHost, discover_plugins
from hookspecs.textpipe import PACKAGE, TextHooks

pm = pluggy.PluginManager("textpipe")
pm.add_hookspecs(TextHooks)
host = PluginHost(pm, package=PACKAGE)
"""

KITCHEN_HOST = """
import pluggy

from airssys_plugins import PluginHost, PluginResultError, Result
from tests.kitchen_hooks import PACKAGE, KitchenHooks, Problem, hookspec

pm = pluggy.PluginManager("kitchen")
pm.add_hookspecs(KitchenHooks)
host = PluginHost(pm, package=PACKAGE)
host.load("kitchen.wasm")
"""

#: type-mapping.md's `check_all` hook, and a component for it (``check_all.wasm``).
CHECK_ALL_HOST = """
class CheckHooks:
    @hookspec
    def check_all(self, items: list[str]) -> list[Result[int, str]]: ...


pm.add_hookspecs(CheckHooks)
host.load("check_all.wasm")
"""
CHECK_ALL_WIT = """package test:kitchen@1.0.0;

interface check-all {
  check-all: func(items: list<string>) -> list<result<s64, string>>;
}

world guest {
  export check-all;
}
"""
# Each item is a string (ptr, len) of 8 bytes; each answer a result<s64, string> of 16:
# the case (0 ok, 1 err) at 0, the payload at 8 (an s64, or the err string's ptr, len).
CHECK_ALL_WAT = """(module
  (memory (export "memory") 1)
  (data (i32.const 16) "empty item")
  (global $heap (mut i32) (i32.const 1024))
  (func $realloc (export "cabi_realloc") (param i32 i32 i32 i32) (result i32)
    (local $p i32)
    (local.set $p (i32.and (i32.add (global.get $heap) (i32.sub (local.get 2) (i32.const 1)))
                           (i32.sub (i32.const 0) (local.get 2))))
    (global.set $heap (i32.add (local.get $p) (local.get 3)))
    (local.get $p))
  (func (export "test:kitchen/check-all@1.0.0#check-all") (param $items i32) (param $n i32)
        (result i32)
    (local $out i32) (local $i i32) (local $len i32) (local $el i32) (local $ret i32)
    (local.set $out (call $realloc (i32.const 0) (i32.const 0) (i32.const 8)
                                   (i32.mul (local.get $n) (i32.const 16))))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (local.set $len (i32.load offset=4 (i32.add (local.get $items)
                                                    (i32.mul (local.get $i) (i32.const 8)))))
        (local.set $el (i32.add (local.get $out) (i32.mul (local.get $i) (i32.const 16))))
        (if (local.get $len)
          (then (i32.store8 (local.get $el) (i32.const 0))
                (i64.store offset=8 (local.get $el) (i64.extend_i32_u (local.get $len))))
          (else (i32.store8 (local.get $el) (i32.const 1))
                (i32.store offset=8 (local.get $el) (i32.const 16))
                (i32.store offset=12 (local.get $el) (i32.const 10))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    (local.set $ret (call $realloc (i32.const 0) (i32.const 0) (i32.const 4) (i32.const 8)))
    (i32.store (local.get $ret) (local.get $out))
    (i32.store offset=4 (local.get $ret) (local.get $n))
    (local.get $ret)))
"""


def _type_mapping(s: Session) -> None:
    _place(s, "kitchen", "kitchen.wasm")
    src = s.ws / "guest-src/check_all"
    (src / "wit").mkdir(parents=True)
    (src / "wit/check.wit").write_text(CHECK_ALL_WIT)
    (src / "guest.wat").write_text(CHECK_ALL_WAT)
    shutil.copy(build_guest(src), s.ws / "check_all.wasm")


def _tutorial(s: Session) -> None:
    wit = (ROOT / "hookspecs/textpipe.wit").read_text()
    for guest in ("wordcount", "shout"):
        (s.ws / guest / "wit" / "textpipe.wit").write_text(wit)
    shutil.copy(ROOT / "sample_apps/textpipe/plugins/shout/guest.wat", s.ws / "shout")
    shutil.copy(build_guest(s.ws / "shout"), s.ws / "shout/shout.wasm")


def _tutorial_guest(s: Session, block: Block) -> None:
    assert block.title == "wordcount/app.py", block.id
    hooks = _ws_import(s, "textpipe_hooks")
    wit = {
        "textpipe.wit": Contract.from_hookspecs(hooks.TextHooks, package=hooks.PACKAGE).wit(),
        "guest.wit": (s.ws / "wordcount/wit/guest.wit").read_text(),
    }
    _build_python_guest(s, block, wit, "wordcount/wordcount.wasm")


def _plugin_python(s: Session) -> None:
    _cli(s, *_doc_command("docs/tutorials/plugin-python.md", "new"))


@contextlib.contextmanager
def _modules(extra: dict[str, types.ModuleType]) -> Iterator[None]:
    saved = {name: sys.modules.get(name) for name in extra}
    sys.modules.update(extra)
    try:
        yield
    finally:
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module


def _plugin_python_check(s: Session, block: Block) -> None:
    if block.code.startswith("def transform"):  # the stub `new` generates
        assert block.code in (s.ws / "vowels/plugin.py").read_text()
    if block.code.startswith("from host import"):  # the helpers `new --uses` generates
        argv = _doc_command("docs/tutorials/plugin-python.md", "new")
        argv[argv.index("vowels")] = "helpers"
        _cli(s, *argv, "--uses", "log,kv,config,http")
        stub = types.ModuleType("componentize_py_types")
        stub.Err = type("Err", (Exception,), {})  # type: ignore[attr-defined]
        spec = importlib.util.spec_from_file_location("host", s.ws / "helpers/host.py")
        assert spec is not None
        assert spec.loader is not None
        host = importlib.util.module_from_spec(spec)
        with _modules({"componentize_py_types": stub, "host": host}):
            spec.loader.exec_module(host)  # without wit_world: every interface is absent
        problems = _api_problems(ast.parse(block.code), {"host": host})
        assert not problems, f"{block.id}: {problems}"


def _plugin_python_guest(s: Session, block: Block) -> None:
    from hookspecs.textpipe import PACKAGE, TextHooks

    assert block.title == "vowels/plugin.py", block.id
    (s.ws / block.title).write_text(block.code)
    wasm = build_guest(s.ws / "vowels")
    pm = pluggy.PluginManager("textpipe")
    pm.add_hookspecs(TextHooks)
    with PluginHost(pm, package=PACKAGE) as host:
        host.load(wasm, name="vowels")
        assert pm.hook.transform(text="Hello") == ["HEllO"]


def _grant_a_folder_subs(ws: Path) -> dict[str, str]:
    return {
        "/srv/handbook": str(ws / "srv/handbook"),
        "/var/lib/handbook": str(ws / "var/lib/handbook"),
    }


def _grant_a_folder(s: Session) -> None:
    handbook = s.ws / "srv/handbook"
    (handbook / "guides").mkdir(parents=True)
    (handbook / "intro.md").write_text("Welcome to the handbook.\n")
    (handbook / "guides/setup.md").write_text("Install it.\n")


def _grant_a_folder_guest(s: Session, block: Block) -> None:
    assert block.title == "indexer/app.py", block.id
    hooks = _ws_import(s, "handbook_hooks")
    contract = Contract.from_hookspecs(hooks.HandbookHooks, package=hooks.PACKAGE)
    wit = {"handbook.wit": contract.wit(world="guest")}
    _build_python_guest(s, block, wit, "indexer/indexer.wasm")


def _lockfile(s: Session) -> None:
    _bundled_plugins(s, "plugins")
    _cli(s, *_doc_command("docs/howto/lockfile.md", "lock"))


def _without_docstrings(tree: ast.AST) -> str:
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.FunctionDef)
            and isinstance(node.body[0], ast.Expr)
            and isinstance(node.body[0].value, ast.Constant)
            and isinstance(node.body[0].value.value, str)
        ):
            node.body = node.body[1:]
    return ast.dump(tree)


def _eventrouter_check(s: Session, block: Block) -> None:
    """The function shown is the sample's own (its docstring left out)."""
    app = ast.parse((ROOT / "sample_apps/eventrouter/app.py").read_text())
    shown = ast.parse(block.code).body
    assert len(shown) == 1, block.id
    assert isinstance(shown[0], ast.FunctionDef), block.id
    real = [n for n in app.body if isinstance(n, ast.FunctionDef) and n.name == shown[0].name]
    assert real, f"{block.id}: sample_apps/eventrouter/app.py has no {shown[0].name}"
    assert _without_docstrings(real[0]) == _without_docstrings(shown[0]), (
        f"{block.id} differs from {shown[0].name} in sample_apps/eventrouter/app.py"
    )
    assert s.ns["requests_for"]("dedup", None).interfaces == {"kv", "log"}


def _test_a_plugin(s: Session) -> None:
    for name in ("shout", "dedup", "slow"):
        _place(s, name, f"{name}.wasm")
    _place(s, "shout", "plugin/shout.wasm")
    (s.ws / "plugin/plugin.toml").write_text(
        'name = "shout"\ncomponent = "shout.wasm"\n\n'
        '[contract]\npackage = "textpipe:hooks"\nversion = "^1.0"\n\n'
        "[limits]\ntimeout = 0.5\n"
    )


def _upgrade(s: Session) -> None:
    _place(s, "shout", "plugins/shout.wasm")
    _place(s, "shout-2", "releases/shout-2.wasm")
    _place(s, "shout-3", "releases/shout-3.wasm")


def _reliability_guest(s: Session, block: Block) -> None:
    assert block.title == "app.py", block.id
    wit = {
        "demo.wit": (s.ws / "wit/demo.wit").read_text(),
        "deps/airssys-host/host.wit": _host_wit(),
    }
    _build_python_guest(s, block, wit, "adder.wasm")


def _wit_first(s: Session) -> None:
    wit = next(b for b in s.blocks if b.lang == "wit").code
    version = re.search(r"package docs:adder@([\d.]+);", wit)
    assert version is not None
    src = s.ws / "guest-src/adder"
    (src / "wit").mkdir(parents=True)
    (src / "wit/adder.wit").write_text(wit)
    (src / "guest.wat").write_text(
        f'(module\n  (func (export "docs:adder/add@{version[1]}#add") (param i32 i32) (result i32)\n'
        "    (i32.add (local.get 0) (local.get 1))))\n"
    )
    shutil.copy(build_guest(src, world="adder"), s.ws / "adder.wasm")


def _api(s: Session) -> None:
    _place(s, "shout", "shout.wasm")
    _place(s, "old", "old.wasm")
    _lockfile(s)


def _discovery(s: Session) -> None:
    from sample_apps.textpipe_pack.build_pack import PACK, build_component

    _place(s, "shout", "plugins/shout.wasm")
    reverse = s.ws / "plugins/reverse"
    reverse.mkdir()
    shutil.copy(PACK / "textpipe_reverse/reverse/plugin.toml", reverse)
    shutil.copy(build_component(), reverse / "reverse.wasm")
    (s.ws / "plugins/README.txt").write_text("Put plugins here.\n")


def _placing(name: str, target: str) -> Callable[[Session], None]:
    def setup(s: Session) -> None:
        _place(s, name, target)

    return setup


PAGES: dict[str, Page] = {
    "README.md": Page(setup=_placing("shout", "plugins/shout.wasm")),
    "docs/index.md": Page(setup=_placing("shout", "shout.wasm")),
    "docs/tutorial.md": Page(setup=_tutorial, guest=_tutorial_guest),
    "docs/tutorials/plugin-python.md": Page(
        setup=_plugin_python, guest=_plugin_python_guest, check=_plugin_python_check
    ),
    "docs/howto/grant-a-folder.md": Page(
        subs=_grant_a_folder_subs, setup=_grant_a_folder, guest=_grant_a_folder_guest
    ),
    "docs/howto/lockfile.md": Page(setup=_lockfile, preamble=TEXTPIPE_HOST),
    "docs/howto/eventrouter.md": Page(
        preamble="from airssys_plugins import Capabilities\n"
        "from sample_apps.eventrouter.app import origin_of\n",
        check=_eventrouter_check,
    ),
    "docs/howto/component-pack.md": Page(
        preamble=TEXTPIPE_HOST
        + "from sample_apps.textpipe.app import bundled_plugin_dir\n"
        + "bundled_dir = bundled_plugin_dir()\n"
    ),
    "docs/howto/test-a-plugin.md": Page(
        setup=_test_a_plugin,
        pytest_args={
            "tests/test_dedup.py": ["-o", "airssys_contract=hookspecs.eventrouter:EventHooks"]
        },
    ),
    "docs/howto/upgrade-without-downtime.md": Page(setup=_upgrade),
    "docs/reference/reliability.md": Page(guest=_reliability_guest),
    "docs/reference/type-mapping.md": Page(
        setup=_type_mapping, preamble=KITCHEN_HOST + CHECK_ALL_HOST
    ),
    "docs/reference/errors.md": Page(
        setup=_placing("kitchen", "kitchen.wasm"), preamble=KITCHEN_HOST
    ),
    "docs/reference/wit-first.md": Page(setup=_wit_first),
    "docs/reference/api.md": Page(
        setup=_api,
        isolated=True,
        preamble=TEXTPIPE_HOST
        + "from airssys_plugins import Contract, HookOptions, u32, wit_binding\n"
        + "from hookspecs.textpipe import hookspec\n",
    ),
    "docs/reference/capabilities.md": Page(
        setup=_placing("shout", "shout.wasm"),
        isolated=True,
        preamble=TEXTPIPE_HOST
        + "from airssys_plugins import AuditLog, Capabilities, FileGrant, HookOptions, Limits\n",
    ),
    "docs/reference/discovery.md": Page(setup=_discovery, preamble=TEXTPIPE_HOST),
}


# ----------------------------------------------------------------------------- API checks

#: The usual variable names of the package's objects in snippets.
INSTANCES = {
    "host": "PluginHost",
    "lockfile": "Lockfile",
    "plugin": "WasmPlugin",
    "report": "LoadReport",
    "contract": "Contract",
    "audit": "AuditLog",
}


def _resolve(dotted: str) -> Any:
    """``PluginHost``, ``host.load``, ``Contract.from_hookspecs`` -> the package's object."""
    first, *rest = dotted.split(".")
    obj = getattr(airssys_plugins, INSTANCES.get(first, first))
    for part in rest:
        obj = getattr(obj, part)
    return obj


def _api_problems(tree: ast.AST, modules: dict[str, types.ModuleType] | None = None) -> list[str]:
    """Names of airssys_plugins (or of ``modules``) a fragment uses that do not exist, and
    keyword arguments its calls pass that the real signatures do not take."""
    problems = []
    known: dict[str, Any] = {}
    modules = modules or {}
    for node in ast.walk(tree):
        if not isinstance(node, ast.ImportFrom) or node.module is None:
            continue
        if node.module in modules or node.module.startswith("airssys_plugins"):
            module = modules.get(node.module) or importlib.import_module(node.module)
            for alias in node.names:
                if not hasattr(module, alias.name):
                    problems.append(f"{node.module} has no {alias.name}")
                else:
                    known[alias.asname or alias.name] = getattr(module, alias.name)
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id == "airssys_plugins"
            and not hasattr(airssys_plugins, node.attr)
        ):
            problems.append(f"airssys_plugins has no {node.attr}")
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        target: Any = None
        if isinstance(func, ast.Name) and func.id in known:
            target = known[func.id]
        elif isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
            owner = func.value.id
            cls = known.get(owner) or (
                getattr(airssys_plugins, INSTANCES[owner]) if owner in INSTANCES else None
            )
            if cls is not None:
                if not hasattr(cls, func.attr):
                    problems.append(f"{owner}.{func.attr} does not exist")
                    continue
                target = getattr(cls, func.attr)
        if target is None or not callable(target):
            continue
        params = inspect.signature(target).parameters
        takes_any = any(p.kind is p.VAR_KEYWORD for p in params.values())
        for kw in node.keywords:
            if kw.arg is not None and kw.arg not in params and not takes_any:
                problems.append(f"{ast.unparse(func)}() takes no argument {kw.arg!r}")
    return problems


def _signature_entries(code: str) -> list[tuple[str, ast.FunctionDef]]:
    """``name(params) -> result`` entries of a signature listing, as parsed stubs."""
    entries = []
    chunk: list[str] = []
    for line in code.splitlines():
        line = re.sub(r"\s+#.*$", "", line)
        if not line.strip():
            continue
        chunk.append(line)
        text = "\n".join(chunk)
        if text.count("(") == text.count(")"):
            m = re.fullmatch(r"([\w.]+)\((.*)\)(?:\s*->\s*(.+))?", text.strip(), re.S)
            assert m is not None, f"not a signature: {text!r}"
            params = re.sub(r"<[\w.]+>", "...", m[2])
            result = f" -> {m[3]}" if m[3] else ""
            stub = ast.parse(f"def _({params}){result}: ...").body[0]
            assert isinstance(stub, ast.FunctionDef)
            entries.append((m[1], stub))
            chunk = []
    assert not chunk, f"unbalanced signature: {chunk!r}"
    return entries


def _signature_problems(name: str, stub: ast.FunctionDef) -> list[str]:
    obj = _resolve(name)
    real = list(inspect.signature(obj).parameters.values())
    if real and real[0].name == "self":
        real = real[1:]
    a = stub.args
    kinds = inspect.Parameter
    documented: list[tuple[str, Any, ast.expr | None]] = []
    positional = [*a.posonlyargs, *a.args]
    defaults: list[ast.expr | None] = [None] * (len(positional) - len(a.defaults))
    defaults += a.defaults
    for i, arg in enumerate(positional):
        kind = kinds.POSITIONAL_ONLY if i < len(a.posonlyargs) else kinds.POSITIONAL_OR_KEYWORD
        documented.append((arg.arg, kind, defaults[i]))
    if a.vararg:
        documented.append((a.vararg.arg, kinds.VAR_POSITIONAL, None))
    for arg, default in zip(a.kwonlyargs, a.kw_defaults, strict=True):
        documented.append((arg.arg, kinds.KEYWORD_ONLY, default))
    if a.kwarg:
        documented.append((a.kwarg.arg, kinds.VAR_KEYWORD, None))
    shown = [d[0] for d in documented]
    actual = [p.name for p in real]
    if shown != actual:
        return [f"{name}: the docs list parameters {shown}, the real ones are {actual}"]
    problems = []
    for (pname, kind, default), param in zip(documented, real, strict=True):
        if kind != param.kind:
            problems.append(
                f"{name}: {pname} is {param.kind.description}, the docs say {kind.description}"
            )
        has_default = param.default is not inspect.Parameter.empty
        if default is None:
            if has_default:
                problems.append(f"{name}: {pname} has a default ({param.default!r}), not shown")
        elif isinstance(default, ast.Constant) and default.value is Ellipsis:
            if not has_default:
                problems.append(f"{name}: {pname} has no default")
        else:
            value = eval(compile(ast.Expression(default), name, "eval"), {})
            if not has_default or param.default != value:
                problems.append(
                    f"{name}: {pname} defaults to {param.default!r}, the docs say {value!r}"
                )
    return problems


# ----------------------------------------------------------------------------- the tests


@pytest.mark.parametrize("block", PYTHON, ids=_ids(PYTHON))
def test_python_block(block: Block, pages: Callable[[str], Session]) -> None:
    kind = block.kind
    if kind == "compile-only":
        problems = _api_problems(ast.parse(block.code))
        assert not problems, f"{block.id}: {problems}"
        page = PAGES.get(block.doc)
        if page is not None and page.check is not None:
            session = pages(block.doc)
            session.prepare()
            page.check(session, block)
    elif kind == "signature":
        problems = [
            p
            for name, stub in _signature_entries(block.code)
            for p in _signature_problems(name, stub)
        ]
        assert not problems, f"{block.id}:\n" + "\n".join(problems)
    else:
        pages(block.doc).result(block)


OUTPUTS = [b for b in BLOCKS if b.marker == "output"]


@pytest.mark.parametrize("block", OUTPUTS, ids=_ids(OUTPUTS))
def test_output_block(block: Block, pages: Callable[[str], Session]) -> None:
    session = pages(block.doc)
    program = [b for b in session.blocks if b.lang == "python" and b.line < block.line][-1]
    assert program.kind == "program", f"{block.id} follows {program.id}, not a program"
    session.result(program)
    lines = block.code.splitlines()
    if block.lang == "console" and lines and lines[0].startswith("$ "):
        lines = lines[1:]
    expected = _normalized(session.sub("\n".join(lines)))
    assert _normalized(session.outputs[program.line]) == expected


TOML = [b for b in BLOCKS if b.lang == "toml"]


@pytest.mark.parametrize("block", TOML, ids=_ids(TOML))
def test_toml_block(block: Block) -> None:
    tomllib.loads(block.code)


def test_markers_are_known() -> None:
    """Every marker is one of the conventions, and sits where it means something."""
    for block in BLOCKS:
        if block.marker is None:
            continue
        assert block.marker in MARKERS, f"{block.id}: unknown marker {block.marker!r}"
        if block.marker == "output":
            assert block.lang in ("text", "console"), block.id
        else:
            assert block.lang == "python", block.id


# ----------------------------------------------------------------------------- WIT

WIT = [b for b in BLOCKS if b.lang == "wit"]
#: Where the WIT of a fragment's exports may come from: the repository's own WIT files.
CONTEXT_WIT = sorted(
    p
    for pattern in ("hookspecs/*.wit", "tests/guests/*/wit/*.wit", "sample_apps/**/wit/*.wit")
    for p in ROOT.glob(pattern)
    if "deps" not in p.parts
)
TYPEDEF = re.compile(r"^(record|enum|flags|variant) ", re.M)


def _defined(text: str) -> set[str]:
    return set(re.findall(r"^\s*interface ([\w-]+)", text, re.M))


def _generated_typedefs(classes: list[type]) -> str:
    """The WIT generated for a hook taking one argument of each class."""
    hookspec = pluggy.HookspecMarker("docs")
    params = ", ".join(f"a{i}: C{i}" for i in range(len(classes)))
    namespace: dict[str, Any] = {f"C{i}": c for i, c in enumerate(classes)}
    exec(f"def use(self, {params}) -> None: ...", namespace)
    namespace["use"].__qualname__ = "Spec.use"
    spec = type("Spec", (), {"use": hookspec(namespace["use"])})
    return Contract.from_hookspecs(spec, package="docs:snippet@1.0.0").wit()


@pytest.mark.parametrize("block", WIT, ids=_ids(WIT))
def test_wit_block(block: Block, tmp_path: Path, pages: Callable[[str], Session]) -> None:
    text = "\n".join(line for line in block.code.splitlines() if line.strip() != "...") + "\n"
    if TYPEDEF.search(text) and not re.search(r"^(package|interface|world) ", text, re.M):
        # Named types alone: what the Python classes in the block before them generate.
        session = pages(block.doc)
        program = [b for b in session.blocks if b.lang == "python" and b.line < block.line][-1]
        session.result(program)
        names = [n.name for n in ast.parse(program.code).body if isinstance(n, ast.ClassDef)]
        classes = [session.ns[n] for n in names]
        roots = [c for c in classes if not any(o is not c and issubclass(c, o) for o in classes)]
        generated = [line.strip() for line in _generated_typedefs(roots).splitlines()]
        wanted = [line.strip() for line in text.strip().splitlines()]
        assert any(generated[i : i + len(wanted)] == wanted for i in range(len(generated))), (
            f"{block.id}: not what the classes generate:\n{_generated_typedefs(roots)}"
        )
        return
    package = re.search(r"^\s*package ([^;]+);", text, re.M)
    used = set(re.findall(r"^\s*(?:export|import) ([\w-]+);", text, re.M)) - _defined(text)
    context = []
    if used:
        context = [
            p
            for p in CONTEXT_WIT
            if used <= _defined(p.read_text())
            and (package is None or f"package {package[1]};" in p.read_text())
        ][:1]
        assert context, f"{block.id}: no WIT in the repository defines {sorted(used)}"
        if package is None:
            found = re.search(r"^package ([^;]+);", context[0].read_text(), re.M)
            assert found is not None
            text = f"package {found[1]};\n{text}"
    elif package is None:
        text = f"package docs:snippet@1.0.0;\n{text}"
    (tmp_path / "snippet.wit").write_text(text)
    for i, path in enumerate(context):  # its worlds renamed, so that they cannot clash
        other = re.sub(r"^world ([\w-]+)", r"world context-\1", path.read_text(), flags=re.M)
        (tmp_path / f"context{i}.wit").write_text(other)
    if "airssys:host/" in text and "package airssys:host" not in text:
        (tmp_path / "deps/airssys-host").mkdir(parents=True)
        (tmp_path / "deps/airssys-host/host.wit").write_text(_host_wit())
    proc = subprocess.run(
        [find_tool("wasm-tools"), "component", "wit", str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, f"{block.id}: invalid WIT\n{text}\n{proc.stderr}"
