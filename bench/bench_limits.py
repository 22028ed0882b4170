"""What limits cost: per-call time with epoch deadlines and fuel on vs off, in one run.

    python bench/bench_limits.py [--quick]

Two levels:

* raw wasmtime-py, four engines (plain, epoch interruption, fuel, both) calling the same
  component: the cost of the instrumentation wasmtime compiles into the guest;
* the framework (whose engine always has epoch + fuel on), with a plugin's limits off
  (``Limits(timeout=None, fuel=None)``) vs on (``timeout=1.0, fuel=10**9``): the per-call
  cost of setting a deadline and refuelling.

Rows are medians of 7 interleaved batches; ratios are against the plain row of each group.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import pluggy
from wasmtime import Config, Engine, Store
from wasmtime.component import Component, Linker

from airssys_plugins import Limits, PluginHost, u32
from airssys_plugins.authoring.build import build_guest

GUEST = Path(__file__).resolve().parent / "guests" / "bench"
BURN_N = 20_000
hookspec = pluggy.HookspecMarker("bench")


class Hooks:
    @hookspec
    def add_one(self, x: u32) -> u32:  # type: ignore[empty-body]
        ...

    @hookspec
    def burn(self, n: u32) -> u32:  # type: ignore[empty-body]
        ...


def raw_caller(wasm: Path, *, epoch: bool, fuel: bool) -> dict[str, Callable[[], object]]:
    cfg = Config()
    cfg.epoch_interruption = epoch
    cfg.consume_fuel = fuel
    engine = Engine(cfg)
    component = Component.from_file(engine, str(wasm))
    store = Store(engine)
    if epoch:
        store.set_epoch_deadline(2**62)
    if fuel:
        store.set_fuel(2**63)
    instance = Linker(engine).instantiate(store, component)

    def func(name: str) -> Callable[..., object]:
        iface = component.get_export_index(f"bench:hooks/{name}@1.0.0")
        index = component.get_export_index(name, iface)
        assert index is not None, f"bench:hooks/{name}#{name} not exported"
        f = instance.get_func(store, index)
        assert f is not None
        return lambda *a: f(store, *a)

    add_one, burn = func("add-one"), func("burn")
    assert add_one(1) == 2
    return {"add_one": lambda: add_one(1), "burn": lambda: burn(BURN_N)}


def framework_caller(wasm: Path, limits: Limits) -> dict[str, Callable[[], object]]:
    pm = pluggy.PluginManager("bench")
    pm.add_hookspecs(Hooks)
    host = PluginHost(pm, package="bench:hooks@1.0.0", limits=limits)
    host.load(wasm, name="bench")
    assert pm.hook.add_one(x=1) == [2]
    return {"add_one": lambda: pm.hook.add_one(x=1), "burn": lambda: pm.hook.burn(n=BURN_N)}


def measure(
    rows: dict[str, Callable[[], object]], batches: int, seconds: float
) -> dict[str, float]:
    counts = {}
    for name, fn in rows.items():  # calibrate each row to ~`seconds` per batch
        n, started = 0, time.perf_counter()
        while time.perf_counter() - started < seconds / 4:
            fn()
            n += 1
        counts[name] = max(1, n * 4)
    samples: dict[str, list[float]] = {name: [] for name in rows}
    for _ in range(batches):  # interleaved, so machine noise hits every row alike
        for name, fn in rows.items():
            n = counts[name]
            started = time.perf_counter_ns()
            for _ in range(n):
                fn()
            samples[name].append((time.perf_counter_ns() - started) / n)
    return {name: statistics.median(v) for name, v in samples.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 short batches (CI smoke)")
    args = parser.parse_args()
    batches, seconds = (3, 0.05) if args.quick else (7, 0.2)
    wasm = build_guest(GUEST)
    raw = {
        "plain": raw_caller(wasm, epoch=False, fuel=False),
        "epoch": raw_caller(wasm, epoch=True, fuel=False),
        "fuel": raw_caller(wasm, epoch=False, fuel=True),
        "epoch+fuel": raw_caller(wasm, epoch=True, fuel=True),
    }
    fw = {
        "limits off": framework_caller(wasm, Limits(timeout=None, fuel=None)),
        "timeout+fuel on": framework_caller(wasm, Limits(timeout=1.0, fuel=10**9)),
    }
    for call in ("add_one", f"burn({BURN_N})"):
        key = "add_one" if call == "add_one" else "burn"
        print(f"\n{call}")
        print(f"  {'row':<44} {'median ns':>12} {'vs plain':>9}")
        times = measure({f"raw wasmtime-py, {k}": v[key] for k, v in raw.items()}, batches, seconds)
        base = times["raw wasmtime-py, plain"]
        for name, t in times.items():
            print(f"  {name:<44} {t:>12,.0f} {t / base:>8.2f}x")
        times = measure(
            {f"framework via pluggy, {k}": v[key] for k, v in fw.items()}, batches, seconds
        )
        base = times["framework via pluggy, limits off"]
        for name, t in times.items():
            print(f"  {name:<44} {t:>12,.0f} {t / base:>8.2f}x")


if __name__ == "__main__":
    main()
