"""A small contract (``ademo:hooks@1.0.0``) and a WAT component for the async tests and
bench: a constant adder, a firstresult hook, an endless loop, CPU work, and two hooks
that call host functions (``fetch`` and ``meet``) the host provides."""

from __future__ import annotations

from pathlib import Path

import pluggy

from airssys_plugins import u32
from airssys_plugins.authoring.build import build_guest

hookspec = pluggy.HookspecMarker("ademo")
hookimpl = pluggy.HookimplMarker("ademo")
PACKAGE = "ademo:hooks@1.0.0"


class AsyncDemoHooks:
    @hookspec
    def add_one(self, x: u32) -> u32:
        """Return x plus the plugin's constant."""

    @hookspec(firstresult=True)
    def pick(self, x: u32) -> u32 | None:
        """Answer (x * 10) only for the plugin's own number."""

    @hookspec(historic=True)
    def setup(self, x: u32) -> None:
        """Remember x."""

    @hookspec
    def get_setup(self) -> u32:
        """Return what setup remembered."""

    @hookspec
    def spin(self) -> None:
        """Loop forever."""

    @hookspec
    def work(self, n: u32) -> u32:
        """n rounds of a 32-bit LCG: CPU work."""

    @hookspec
    def ask(self, x: u32) -> u32:
        """The host's fetch(x), plus the plugin's constant."""

    @hookspec
    def meet(self) -> u32:
        """Call the host's meet(), then return the plugin's constant."""


WIT = """package ademo:hooks@1.0.0;
interface add-one { add-one: func(x: u32) -> u32; }
interface pick { pick: func(x: u32) -> option<u32>; }
interface setup { setup: func(x: u32); }
interface get-setup { get-setup: func() -> u32; }
interface spin { spin: func(); }
interface work { work: func(n: u32) -> u32; }
interface ask { ask: func(x: u32) -> u32; }
interface meet { meet: func() -> u32; }
interface fetch { fetch: func(x: u32) -> u32; }
interface rendezvous { rendezvous: func() -> u32; }
world guest {
  import fetch; import rendezvous;
  export add-one; export pick; export setup; export get-setup; export spin; export work;
  export ask; export meet;
}
"""


def _wat(k: int) -> str:
    def name(f: str) -> str:
        return f'"ademo:hooks/{f}@1.0.0#{f}"'

    return f"""(module
  (import "ademo:hooks/fetch@1.0.0" "fetch" (func $fetch (param i32) (result i32)))
  (import "ademo:hooks/rendezvous@1.0.0" "rendezvous" (func $rendezvous (result i32)))
  (memory (export "memory") 1)
  (global $g (mut i32) (i32.const 0))
  (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32) (i32.const 1024))
  (func (export {name("add-one")}) (param i32) (result i32)
    (i32.add (local.get 0) (i32.const {k})))
  (func (export {name("pick")}) (param $x i32) (result i32)
    (if (i32.eq (local.get $x) (i32.const {k}))
      (then (i32.store8 (i32.const 256) (i32.const 1))
            (i32.store (i32.const 260) (i32.mul (local.get $x) (i32.const 10))))
      (else (i32.store8 (i32.const 256) (i32.const 0))))
    (i32.const 256))
  (func (export {name("setup")}) (param i32) (global.set $g (local.get 0)))
  (func (export {name("get-setup")}) (result i32) (global.get $g))
  (func (export {name("spin")}) (loop $l (br $l)))
  (func (export {name("work")}) (param $n i32) (result i32)
    (local $acc i32)
    (local.set $acc (local.get $n))
    (block $done (loop $round
      (br_if $done (i32.eqz (local.get $n)))
      (local.set $acc (i32.add (i32.mul (local.get $acc) (i32.const 1664525))
                               (i32.const 1013904223)))
      (local.set $n (i32.sub (local.get $n) (i32.const 1)))
      (br $round)))
    (local.get $acc))
  (func (export {name("ask")}) (param $x i32) (result i32)
    (i32.add (call $fetch (local.get $x)) (i32.const {k})))
  (func (export {name("meet")}) (result i32)
    (drop (call $rendezvous)) (i32.const {k}))
)
"""


def async_component(workdir: Path, k: int = 1) -> Path:
    """Build the component with constant ``k`` (cached by content hash)."""
    guest = workdir / f"ademo-{k}"
    (guest / "wit").mkdir(parents=True, exist_ok=True)
    (guest / "wit" / "ademo.wit").write_text(WIT)
    (guest / "guest.wat").write_text(_wat(k))
    return build_guest(guest)


def work_reference(n: int) -> int:
    """What the guest's ``work`` returns, in Python."""
    acc = n
    for _ in range(n):
        acc = (acc * 1664525 + 1013904223) & 0xFFFFFFFF
    return acc
