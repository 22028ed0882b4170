"""wasmtime's own component-model tests through the framework, as hooks.

    .venv/bin/python bench/wast_coverage.py --wasmtime DIR [--markdown FILE] [--json FILE]

``--wasmtime DIR`` is a checkout of github.com/bytecodealliance/wasmtime. Every
``tests/misc_testsuite/component-model/*.wast`` (not the ``async/`` ones: wasmtime-py 50
cannot call component-model async) is converted by ``wasm-tools json-from-wast`` into its
components and commands. Each component gets the hookspecs ``bindgen`` makes of its own
WIT and is loaded by a ``PluginHost`` (limits raised to what wasmtime's test runner allows:
no memory or result cap, a 30 s timeout), and every ``invoke`` of the script is called as
a hook:

- ``assert_return``: the hook's result must be the expected value;
- ``assert_trap``: the call must fail with the framework's error, whose message carries
  wasmtime's trap text.

These components are written by hand in WAT to test the canonical ABI's corners: strings
in every encoding between nested components, big strings, misaligned pointers, invalid
discriminants, resources, memory64. They pass through everything a load does (the binary
rewriters, the measuring walks, the raw and latin1 routes), so a difference from wasmtime's
own expectation is a framework bug, unless the row says why it is not. Every row names its
check; the summary counts them.
"""

from __future__ import annotations

import argparse
import enum
import json
import os
import subprocess
import sys
import tempfile
import time
import types
import typing
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import pluggy

from airssys_plugins import Capabilities, Limits, PluginError, PluginHost
from airssys_plugins.authoring.build import find_tool
from airssys_plugins.cli.bindgen import read_wit_json
from airssys_plugins.contract import wit
from airssys_plugins.contract.annotations import is_variant
from airssys_plugins.contract.bindgen import BindgenError, hookspec_module
from airssys_plugins.contract.mapping import _BINDING_ATTR
from airssys_plugins.contract.wit_json import Resolved, WitJsonError

sys.path.insert(0, str(Path(__file__).resolve().parent))
from jco_coverage import _exec, _import_functions, _provide, _safe

SUITE = "tests/misc_testsuite/component-model"
#: What wasmtime's runner allows: the tests grow memories to gigabytes on purpose.
LIMITS = Limits(memory=None, max_result_bytes=None, timeout=30.0)


@attrs.define
class Check:
    wast: str
    line: int
    kind: str  # assert_return, assert_trap
    field: str
    verdict: str = ""  # "ok", or what differed
    group: str = ""


class Unconvertible(Exception):
    """A value this script does not translate between the wast's JSON and Python."""


# ----------------------------------------------------------------------------- values


def to_python(value: dict[str, Any], ann: Any) -> Any:
    """The wast's JSON value as the hook's argument of annotation ``ann``."""
    kind: str = value["type"]
    v: Any = value.get("value")
    if kind in ("u8", "u16", "u32", "u64", "s8", "s16", "s32", "s64"):
        return int(v)
    if kind in ("bool", "string", "char"):
        return v
    args = typing.get_args(ann)
    if kind == "list":
        if ann is bytes:
            return bytes(int(x["value"]) for x in v)
        return [to_python(x, args[0] if args else Any) for x in v]
    if kind == "tuple":
        return tuple(to_python(x, a) for x, a in zip(v, args or [Any] * len(v), strict=True))
    if kind == "enum" and isinstance(ann, type) and issubclass(ann, enum.Enum):
        return ann(v)
    if kind == "variant" and is_variant(ann):
        for case in ann.__subclasses__():
            if _case_name(case) == v["case"]:
                fields = attrs.fields(case) if attrs.has(case) else ()
                if v.get("payload") is None:
                    return case()
                return case(to_python(v["payload"], fields[0].type if fields else Any))
    raise Unconvertible(f"a {kind} argument")


def _case_name(case: type) -> str:
    """The WIT name of a variant case class, as the contract names it."""
    name = case.__dict__.get("__wit_name__")
    return str(name) if name else wit.kebab(case.__name__)


def wast_shape(value: dict[str, Any]) -> Any:
    """An expected JSON value, made comparable with :func:`python_shape`."""
    kind: str = value["type"]
    v: Any = value.get("value")
    if kind in ("u8", "u16", "u32", "u64", "s8", "s16", "s32", "s64"):
        return int(v)
    if kind in ("bool", "string", "char", "enum"):
        return v
    if kind in ("list", "tuple"):
        return [wast_shape(x) for x in v]
    if kind == "variant":
        payload = v.get("payload")
        return ("variant", v["case"], None if payload is None else wast_shape(payload))
    raise Unconvertible(f"an expected {kind}")


def python_shape(value: Any) -> Any:
    """A hook's result, made comparable with :func:`wast_shape`."""
    if isinstance(value, bool | int | str):
        return value
    if isinstance(value, bytes):
        return list(value)
    if isinstance(value, list | tuple):
        return [python_shape(x) for x in value]
    if isinstance(value, enum.Enum):
        return value.value
    cls = type(value)
    if any(is_variant(base) for base in cls.__mro__):
        fields = attrs.fields(cls) if attrs.has(cls) else ()
        payload = python_shape(getattr(value, fields[0].name)) if fields else None
        return ("variant", _case_name(cls), payload)
    return value


# ----------------------------------------------------------------------------- the host

#: The runner's host functions (wasmtime's ``link_component_spectest``): the ``host``
#: instance's functions and its ``resource1``, whose objects keep the ``rep`` they were
#: made with; the host counts the drops of those objects (a guest dropping its handle
#: frees the object: nothing else holds it).
_DROPS = {"count": 0, "last": 0}


def _made(_m: types.ModuleType, obj: Any, rep: int) -> None:
    obj.rep = rep
    weakref.finalize(obj, _dropped, rep)


def _dropped(rep: int) -> None:
    _DROPS["count"] += 1
    _DROPS["last"] = rep


def _same_rep(_m: types.ModuleType, obj: Any, rep: int) -> None:
    assert obj.rep == rep, f"the handle names the object of rep {obj.rep}, not {rep}"


SPECTEST: dict[str, Any] = {
    "host-return-two": lambda _m: 2,
    "return-three": lambda _m: 3,
    "return-hi": lambda _m: "hi",
    "[constructor]resource1": _made,
    "[static]resource1.assert": _same_rep,
    "[method]resource1.simple": _same_rep,
    "[method]resource1.take-borrow": lambda _m, _a, _b: None,
    "[method]resource1.take-own": lambda _m, _a, _b: None,
    "[static]resource1.last-drop": lambda _m: _DROPS["last"],
    "[static]resource1.drops": lambda _m: _DROPS["count"],
}


# ----------------------------------------------------------------------------- a wast


class Loaded:
    """One instance of a component: its host, plugin manager and hookspec module, or why
    it could not be loaded."""

    def __init__(self, path: Path, label: str):
        self.host: PluginHost | None = None
        self.pm: pluggy.PluginManager | None = None
        self.hooks: dict[str, tuple[str, dict[str, Any]]] = {}  # field -> hook, annotations
        self.why = ""
        try:
            data = read_wit_json(path)
            world = Resolved(data).world(None)
            generated = hookspec_module(world, project="wast")
        except (PluginError, BindgenError, WitJsonError) as exc:
            self.why = f"no hookspecs: {_first_line(exc)}"
            return
        module = _exec(generated.text, f"wast_hooks_{_safe(label).replace('-', '_')}")
        self.pm = module.plugin_manager()
        for spec in _specs(module):
            binding = getattr(spec, _BINDING_ATTR, None)
            field = binding.function if binding is not None else spec.__name__
            hints = typing.get_type_hints(spec, module.__dict__)
            hints.pop("return", None)
            self.hooks[field] = (spec.__name__, hints)
        self.host = PluginHost(self.pm, grants={"p": Capabilities.everything()}, limits=LIMITS)
        #: what the runner's host functions found wrong (a handle that named another object)
        self.failures: list[str] = []
        try:
            imports, refused = _import_functions(data)
            if refused:
                raise BindgenError("; ".join(f"{w}: {r}" for w, r in refused))
            shorts, _ = _provide(self.host, imports, SPECTEST, self.failures, label, module)
            self.host.load(path, name="p", requests=Capabilities(interfaces=shorts))
        except (PluginError, BindgenError) as exc:
            self.why = f"not loaded: {_first_line(exc)}"
            self.close()

    def close(self) -> None:
        if self.host is not None:
            self.host.close()
        self.host = None

    def call(self, field: str, args: list[dict[str, Any]]) -> Any:
        if self.why:
            raise Unconvertible(self.why)
        if field not in self.hooks:
            raise Unconvertible(f"no hook for {field!r}")
        name, hints = self.hooks[field]
        kwargs = {n: to_python(a, ann) for (n, ann), a in zip(hints.items(), args, strict=True)}
        assert self.pm is not None
        return getattr(self.pm.hook, name)(**kwargs)


def _specs(module: types.ModuleType) -> Iterator[Any]:
    cls = module.WorldHooks
    for name in dir(cls):
        member = getattr(cls, name)
        if callable(member) and hasattr(member, "wast_spec"):
            yield member


def _first_line(exc: BaseException) -> str:
    """The exception's class and the line of its message that says what (wasm-tools'
    ``error:`` line where there is one), without the temporary directory's path."""
    lines = [line.strip() for line in str(exc).strip().splitlines()]
    line = next((x for x in lines if x.startswith("error:")), lines[0] if lines else "")
    for tmp in _TMP:
        line = line.replace(tmp + "/", "")
    return f"{type(exc).__name__}: {line}"[:300]


_TMP: list[str] = []  # the temporary directory of this run (left out of the messages)


def run_wast(wast: Path, tmp: Path) -> list[Check]:
    out = tmp / wast.stem
    out.mkdir()
    subprocess.run(
        [find_tool("wasm-tools"), "json-from-wast", str(wast), "-o", str(out / "cmds.json"),
         "--wasm-dir", str(out)],
        check=True, capture_output=True,
        # (two of the suite's files still write `(memory $i "name")`)
        env={**os.environ, "WAST_STRICT_COMPONENT_INDICES": "0"},
    )  # fmt: skip
    commands = json.loads((out / "cmds.json").read_text())["commands"]
    checks: list[Check] = []
    definitions: dict[str, str] = {}
    current: Loaded | None = None
    try:
        for c in commands:
            kind = c["type"]
            if kind in ("module", "module_instance"):
                filename = c.get("filename") or definitions.get(c.get("module", ""))
                if current is not None:
                    current.close()
                current = None
                if filename and c.get("module_type", "binary") == "binary":
                    current = Loaded(out / filename, f"{wast.stem}:{c['line']}")
            elif kind == "module_definition":
                definitions[c["name"]] = c["filename"]
            action = c.get("action")
            if (
                not action
                or action.get("type") != "invoke"
                or kind
                not in (
                    "assert_return",
                    "assert_trap",
                )
            ):
                continue
            check = Check(wast.stem, c["line"], kind, action["field"])
            checks.append(check)
            if current is None:
                check.verdict, check.group = "no component to call", "skipped"
                continue
            _run(check, current, action["args"], c)
    finally:
        if current is not None:
            current.close()
    return checks


def _run(check: Check, loaded: Loaded, args: list[dict[str, Any]], c: dict[str, Any]) -> None:
    try:
        results = loaded.call(check.field, args)
    except Unconvertible as exc:
        check.verdict, check.group = str(exc), "skipped"
        return
    except PluginError as exc:
        # the trap of wasmtime's test, in a named error that names the plugin
        if check.kind == "assert_trap" and c["text"] in str(exc) and exc.plugin == "p":
            check.verdict, check.group = "ok", "ok"
        elif check.kind == "assert_trap":
            check.verdict = f"failed otherwise: {_first_line(exc)} (wasmtime: {c['text']!r})"
            check.group = "differs"
        else:
            check.verdict, check.group = f"failed: {_first_line(exc)}", "bug"
        return
    if check.kind == "assert_trap":
        check.verdict = f"returned {results!r}, wasmtime traps: {c['text']!r}"
        check.group = "bug"
        return
    try:
        want = [wast_shape(v) for v in c["expected"]]
    except Unconvertible as exc:
        check.verdict, check.group = str(exc), "skipped"
        return
    got = [python_shape(r) for r in results]
    if got == want:
        check.verdict, check.group = "ok", "ok"
    else:
        check.verdict, check.group = f"returned {got!r}, expected {want!r}", "bug"


# ----------------------------------------------------------------------------- report


GROUPS = {
    "ok": "as wasmtime's test expects",
    "differs": "refused with another error than wasmtime's trap (see the reason)",
    "bug": "a different result: a framework bug",
    "skipped": "not called (no hookspecs for the component, or a value kind not translated)",
}


def markdown(checks: list[Check]) -> str:
    lines = ["| wast | line | check | export | verdict |", "|---|---:|---|---|---|"]
    for ch in checks:
        if ch.group != "ok":
            verdict = ch.verdict.replace("|", "\\|")
            lines.append(f"| {ch.wast} | {ch.line} | {ch.kind} | `{ch.field}` | {verdict} |")
    return "\n".join(lines)


def summary(checks: list[Check]) -> str:
    counts = {g: sum(1 for c in checks if c.group == g) for g in GROUPS}
    return f"{len(checks)} checks: " + ", ".join(f"{n} {g}" for g, n in counts.items())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wasmtime", type=Path, required=True, help="a checkout of wasmtime")
    parser.add_argument("--markdown", type=Path, help="write the table here too")
    parser.add_argument("--json", type=Path, help="write the checks as JSON here")
    parser.add_argument("names", nargs="*", help="only these wast files (stems)")
    args = parser.parse_args()
    wasts = sorted((args.wasmtime / SUITE).glob("*.wast"))
    if args.names:
        wasts = [w for w in wasts if w.stem in args.names]
    if not wasts:
        parser.error(f"no .wast files under {args.wasmtime / SUITE}")
    checks: list[Check] = []
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        _TMP.append(str(Path(tmp).resolve()))
        _TMP.append(tmp)
        for i, wast in enumerate(wasts, 1):
            print(f"[{i}/{len(wasts)}] {wast.name}", file=sys.stderr, flush=True)
            try:
                found = run_wast(wast, Path(tmp))
            except subprocess.CalledProcessError as exc:
                print(f"    json-from-wast failed: {exc.stderr.decode()[:200]}", file=sys.stderr)
                continue
            checks += found
            for ch in found:
                if ch.group != "ok":
                    print(
                        f"    {ch.group:8} line {ch.line} {ch.field}: {ch.verdict}", file=sys.stderr
                    )
    table = markdown(checks)
    print(table)
    print(f"{summary(checks)} ({time.perf_counter() - start:.0f} s)")
    if args.markdown:
        args.markdown.write_text(table + "\n\n" + summary(checks) + "\n")
    if args.json:
        args.json.write_text(json.dumps([attrs.asdict(c) for c in checks], indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
