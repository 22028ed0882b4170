"""A small test contract (``demo:hooks@1.0.0``) and WAT components implementing it.

The components are generated as WAT text and built by wasm-tools in the tests (cached by
content hash), so every fixture is readable source.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from pathlib import Path
from types import ModuleType

import pluggy

from airssys_plugins import u32
from airssys_plugins.authoring.build import build_guest

hookspec = pluggy.HookspecMarker("demo")
hookimpl = pluggy.HookimplMarker("demo")
PACKAGE = "demo:hooks@1.0.0"


class DemoHooks:
    @hookspec
    def add_one(self, x: u32) -> u32:
        """Return x plus the plugin's constant."""

    @hookspec(firstresult=True)
    def pick(self, x: u32) -> u32 | None:
        """Answer only for the plugin's own number."""

    @hookspec(historic=True)
    def setup(self, x: u32) -> None:
        """Remember x."""

    @hookspec
    def get_setup(self) -> u32:
        """Return what setup remembered."""

    @hookspec
    def fail(self, x: u32) -> u32:
        """Trap (unreachable)."""

    @hookspec
    def spin(self) -> None:
        """Loop forever."""

    @hookspec
    def recurse(self, n: u32) -> u32:
        """Recurse without end."""


class AddOnlyHooks:
    """DemoHooks' add_one alone: with :class:`PickTooHooks` added after a load, the
    contract changes under a loaded component."""

    @hookspec
    def add_one(self, x: u32) -> u32:  # type: ignore[empty-body]
        ...


class PickTooHooks:
    """DemoHooks' pick, added to an :class:`AddOnlyHooks` manager later."""

    @hookspec(firstresult=True)
    def pick(self, x: u32) -> u32 | None:
        """Answer only for the plugin's own number."""


def demo_pm() -> pluggy.PluginManager:
    """A plugin manager of the demo project with :class:`DemoHooks`."""
    pm = pluggy.PluginManager("demo")
    pm.add_hookspecs(DemoHooks)
    return pm


#: A component whose ``f(len)`` returns ``(calls so far, a string of len bytes)``: it
#: counts how often the guest function ran (a measured call must run it once).
COUNTING_WAT = """(component
  (core module $m
    (memory (export "memory") 1)
    (global $n (mut i32) (i32.const 0))
    (func (export "f") (param $len i32) (result i32)
      (global.set $n (i32.add (global.get $n) (i32.const 1)))
      (i32.store (i32.const 16) (global.get $n))
      (i32.store (i32.const 20) (i32.const 1024))
      (i32.store (i32.const 24) (local.get $len))
      (i32.const 16)))
  (core instance $i (instantiate $m))
  (type $r (tuple u32 string))
  (func $f (param "len" u32) (result $r) (canon lift (core func $i "f")
    (memory (core memory $i "memory"))))
  (export "f" (func $f)))"""


WIT_FUNCS = {
    "add-one": "add-one: func(x: u32) -> u32;",
    "pick": "pick: func(x: u32) -> option<u32>;",
    "setup": "setup: func(x: u32);",
    "get-setup": "get-setup: func() -> u32;",
    "fail": "fail: func(x: u32) -> u32;",
    "spin": "spin: func();",
    "recurse": "recurse: func(n: u32) -> u32;",
}


def _core_funcs(k: int, version: str) -> dict[str, str]:
    def name(f: str) -> str:
        return f'"demo:hooks/{f}@{version}#{f}"'

    return {
        "add-one": f"(func (export {name('add-one')}) (param i32) (result i32)"
        f" (i32.add (local.get 0) (i32.const {k})))",
        "pick": f"""(func (export {name("pick")}) (param $x i32) (result i32)
    (if (i32.eq (local.get $x) (i32.const {k}))
      (then (i32.store8 (i32.const 256) (i32.const 1))
            (i32.store (i32.const 260) (i32.mul (local.get $x) (i32.const 10))))
      (else (i32.store8 (i32.const 256) (i32.const 0))))
    (i32.const 256))""",
        "setup": f"(func (export {name('setup')}) (param i32) (global.set $g (local.get 0)))",
        "get-setup": f"(func (export {name('get-setup')}) (result i32) (global.get $g))",
        "fail": f"(func (export {name('fail')}) (param i32) (result i32) unreachable)",
        "spin": f"(func (export {name('spin')}) (loop $l (br $l)))",
        "recurse": f"""(func $rec (export {name("recurse")}) (param $n i32) (result i32)
    (i32.add (call $rec (i32.add (local.get $n) (i32.const 1))) (i32.const 1)))""",
    }


def demo_component(
    workdir: Path,
    *,
    k: int = 1,
    funcs: Iterable[str] = tuple(WIT_FUNCS),
    version: str = "1.0.0",
    wit_overrides: dict[str, str] | None = None,
    core_overrides: dict[str, str] | None = None,
) -> Path:
    """Build a demo component exporting ``funcs`` (WIT names) with constant ``k``."""
    chosen = list(funcs)
    wit_funcs = {**WIT_FUNCS, **(wit_overrides or {})}
    core = {**_core_funcs(k, version), **(core_overrides or {})}
    interfaces = "\n".join(f"interface {f} {{ {wit_funcs[f]} }}" for f in chosen)
    exports = " ".join(f"export {f};" for f in chosen)
    wit = f"package demo:hooks@{version};\n{interfaces}\nworld guest {{ {exports} }}\n"
    body = "\n  ".join(core[f] for f in chosen)
    wat = f"""(module
  (memory (export "memory") 1)
  (global $g (mut i32) (i32.const 0))
  (global $heap (mut i32) (i32.const 1024))
  (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32)
    (global.get $heap)
    (global.set $heap (i32.add (global.get $heap) (local.get 3))))
  {body}
)
"""
    slug = f"demo-{k}-{version}-{'-'.join(chosen)}"[:80]
    guest = workdir / slug
    (guest / "wit").mkdir(parents=True, exist_ok=True)
    (guest / "wit" / "demo.wit").write_text(wit)
    (guest / "guest.wat").write_text(wat)
    return build_guest(guest)


def hostile_shapes() -> ModuleType:
    """bench/bench_hostile_load.py, whose generators of hostile components (``many_funcs``,
    ``declared_locals``, ``doubling_wat``, ``component``, ``core_module``, ``leb``) the
    tests load: the shapes the benchmark measures."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
    try:
        import bench_hostile_load
    finally:
        sys.path.pop(0)
    return bench_hostile_load
