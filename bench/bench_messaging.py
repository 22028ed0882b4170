"""Plugins together: plugin-to-plugin calls and messages, against their baselines.

Run from the repository root::

    python bench/bench_messaging.py            # about 30 s
    python bench/bench_messaging.py --quick    # smoke run

Rows, each measured in this run against its baseline:

* **calls**: ``pm.hook.word_count`` into ``wordstats``, which calls ``tokenizer``'s export
  through a link (two component calls), against the same hook into ``selfcount``, which
  counts the words itself (one component call, the same work). The difference is the cost
  of one plugin-to-plugin call; the host-to-plugin call is ``selfcount``'s row.
* **throughput**: messages handled per second through one mailbox (a Python subscriber,
  and a component subscriber), and through 4 component subscribers on 4 topics at once.
* **latency**: publish-to-handle, one message at a time (median, p99): a Python
  subscriber, against a plain ``queue.Queue`` hand-off between two threads (the floor);
  and a component's ``host.request`` round trip.

Timings are reported, never asserted; ``--json PATH`` writes the numbers.
"""

from __future__ import annotations

import argparse
import json
import queue
import statistics
import sys
import tempfile
import threading
import time
import timeit
from pathlib import Path

import pluggy

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchlib import machine_info  # noqa: E402

from airssys_plugins import Capabilities, MessagingPolicy, PluginHost  # noqa: E402
from airssys_plugins.authoring.build import build_guest  # noqa: E402
from tests.demo import DemoHooks  # noqa: E402
from tests.test_composition import (  # noqa: E402
    LINK,
    WordHooks,
    tokenizer_source,
    wordstats_source,
)
from tests.test_messaging import subscriber_source  # noqa: E402


def _selfcount_source(root: Path) -> Path:
    """``word-count`` implemented in the component itself (the tokenizer's loop)."""
    tok = tokenizer_source(root / "tok", "1.0.0", 0)
    wat = (tok / "guest.wat").read_text()
    wat = wat.replace(
        "textpipe:nlp/tokenize@1.0.0#count", "wstats:hooks/word-count@1.0.0#word-count"
    )
    wat = wat.replace("textpipe:nlp/tokenize@1.0.0#", "unused#")
    src = root / "selfcount"
    (src / "wit").mkdir(parents=True, exist_ok=True)
    (src / "wit" / "x.wit").write_text(
        "package wstats:hooks@1.0.0;\n"
        "interface word-count { word-count: func(text: string) -> u32; }\n"
        "world guest { export word-count; }\n"
    )
    (src / "guest.wat").write_text(wat)
    return src


def _per_call_ns(fn: object, target: float, repeat: int) -> float:
    timer = timeit.Timer(fn)  # type: ignore[arg-type]
    n, _ = timer.autorange()
    n = max(1, int(n * target / 0.2))
    return min(timer.repeat(repeat=repeat, number=n)) / n * 1e9


def bench_calls(root: Path, target: float, repeat: int) -> dict[str, float]:
    pm_link = pluggy.PluginManager("wstats")
    pm_link.add_hookspecs(WordHooks)
    host = PluginHost(
        pm_link, package="wstats:hooks@1.0.0", grants={"wordstats": Capabilities(plugins=[LINK])}
    )
    host.load(build_guest(tokenizer_source(root, "1.0.0", 0)), name="tokenizer")
    host.load(
        build_guest(wordstats_source(root)),
        name="wordstats",
        requests=Capabilities(plugins=[LINK]),
    )
    pm_self = pluggy.PluginManager("wstats")
    pm_self.add_hookspecs(WordHooks)
    host_self = PluginHost(pm_self, package="wstats:hooks@1.0.0")
    host_self.load(build_guest(_selfcount_source(root)), name="selfcount")
    text = "the quick brown fox jumps over the lazy dog"
    assert pm_link.hook.word_count(text=text) == pm_self.hook.word_count(text=text) == [9]
    linked = _per_call_ns(lambda: pm_link.hook.word_count(text=text), target, repeat)
    direct = _per_call_ns(lambda: pm_self.hook.word_count(text=text), target, repeat)
    host.close()
    host_self.close()
    return {"hook_via_link_ns": linked, "hook_direct_ns": direct, "link_call_ns": linked - direct}


def _demo_pm() -> pluggy.PluginManager:
    pm = pluggy.PluginManager("demo")
    pm.add_hookspecs(DemoHooks)
    return pm


def _echo_wasm(root: Path) -> Path:
    with PluginHost(_demo_pm(), package="demo:hooks@1.0.0") as host:
        wit = host.host_wit()["airssys:host@0.1.0"]
    return build_guest(subscriber_source(root, wit))


def _rate(host: PluginHost, topics: list[str], names: list[str], n: int) -> float:
    """Messages handled per second: ``n`` published round-robin over ``topics``."""

    def handled() -> int:
        subs = host.messaging.counters()["subscribers"]
        return sum(subs[name].delivered for name in names if name in subs)

    before = handled()
    started = time.perf_counter()
    for i in range(n):
        host.publish(topics[i % len(topics)], b"?")  # '?': the component answers none
    while handled() - before < n:
        time.sleep(0.001)
    return n / (time.perf_counter() - started)


def bench_throughput(root: Path, n: int) -> dict[str, float]:
    echo = _echo_wasm(root)
    policy = MessagingPolicy(mailbox_size=n + 1)
    out: dict[str, float] = {}
    # one Python mailbox
    host = PluginHost(_demo_pm(), package="demo:hooks@1.0.0", messaging=policy)
    sub = host.subscribe("work", lambda topic, payload: None)
    out["python_one_mailbox_msgs_per_s"] = _rate(host, ["work"], [sub.name], n)
    host.close()
    # one component mailbox
    rights = {
        f"e{i}": Capabilities(interfaces=["messaging"], subscribe=[f"w{i}"]) for i in range(4)
    }
    host = PluginHost(_demo_pm(), package="demo:hooks@1.0.0", messaging=policy, grants=rights)
    host.load(echo, name="e0", requests=rights["e0"])
    out["component_one_mailbox_msgs_per_s"] = _rate(host, ["w0"], ["e0"], n)
    for i in range(1, 4):
        host.load(echo, name=f"e{i}", requests=rights[f"e{i}"])
    out["component_four_mailboxes_msgs_per_s"] = _rate(
        host, [f"w{i}" for i in range(4)], [f"e{i}" for i in range(4)], n
    )
    host.close()
    return out


def _percentiles(samples: list[float]) -> tuple[float, float]:
    samples = sorted(samples)
    return statistics.median(samples), samples[min(len(samples) - 1, int(len(samples) * 0.99))]


def bench_latency(root: Path, n: int) -> dict[str, float]:
    # floor: a queue.Queue hand-off between two threads, one item at a time
    q: queue.Queue[int | None] = queue.Queue()
    done = threading.Event()
    floor: list[float] = []

    def consumer() -> None:
        while (sent := q.get()) is not None:
            floor.append(time.perf_counter_ns() - sent)
            done.set()

    thread = threading.Thread(target=consumer)
    thread.start()
    for _ in range(n):
        done.clear()
        q.put(time.perf_counter_ns())
        done.wait()
    q.put(None)
    thread.join()
    # a Python subscriber, the same protocol
    host = PluginHost(_demo_pm(), package="demo:hooks@1.0.0")
    lat: list[float] = []
    handled = threading.Event()

    def handler(topic: str, payload: bytes) -> None:
        lat.append(time.perf_counter_ns() - int(payload))
        handled.set()

    host.subscribe("lat", handler)
    for _ in range(n):
        handled.clear()
        host.publish("lat", str(time.perf_counter_ns()).encode())
        handled.wait()
    host.close()
    # a component's request round trip (publish, handle, reply)
    rights = Capabilities(interfaces=["messaging"], subscribe=["work"])
    host = PluginHost(_demo_pm(), package="demo:hooks@1.0.0", grants={"echo": rights})
    host.load(_echo_wasm(root), name="echo", requests=rights)
    rtt: list[float] = []
    for _ in range(n):
        t0 = time.perf_counter_ns()
        host.request("work", b"E")  # 'E': echoed back, nothing published
        rtt.append(time.perf_counter_ns() - t0)
    host.close()
    out = {}
    for label, samples in (
        ("queue_floor", floor),
        ("python_subscriber", lat),
        ("component_request_rtt", rtt),
    ):
        median, p99 = _percentiles(samples)
        out[f"{label}_median_ns"], out[f"{label}_p99_ns"] = median, p99
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--quick", action="store_true", help="small counts, a smoke run")
    ap.add_argument("--json", metavar="PATH", help="write the numbers here")
    args = ap.parse_args(argv)
    n_msgs, n_lat, target, repeat = (2_000, 300, 0.05, 3) if args.quick else (20_000, 3_000, 0.2, 7)
    print("\nairssys-plugins plugins-together benchmark (bench/bench_messaging.py)")
    for line in machine_info():
        print("  " + line)
    with tempfile.TemporaryDirectory(prefix="bench-messaging-") as tmp:
        root = Path(tmp)
        results: dict[str, float] = {}
        results.update(bench_calls(root, target, repeat))
        results.update(bench_throughput(root, n_msgs))
        results.update(bench_latency(root, n_lat))
    r = results
    print("\ncalls (ns per hook call, best of batches)")
    print(f"  host -> selfcount (one component call)         {r['hook_direct_ns']:>10,.0f}")
    print(f"  host -> wordstats -> tokenizer (linked)        {r['hook_via_link_ns']:>10,.0f}")
    print(
        f"  one plugin-to-plugin call (difference)         {r['link_call_ns']:>10,.0f}"
        f"   ({r['link_call_ns'] / r['hook_direct_ns']:.2f}x a host-to-plugin call)"
    )
    print(f"\nthroughput ({n_msgs:,} messages, handled per second)")
    for label, key in (
        ("one Python mailbox", "python_one_mailbox"),
        ("one component mailbox", "component_one_mailbox"),
        ("4 component mailboxes, 4 topics", "component_four_mailboxes"),
    ):
        print(f"  {label:<46} {r[key + '_msgs_per_s']:>10,.0f}")
    print(f"\nlatency ({n_lat:,} messages one at a time, ns)        median        p99")
    for label, key in (
        ("queue.Queue hand-off (floor)", "queue_floor"),
        ("publish -> Python subscriber", "python_subscriber"),
        ("host.request -> component -> reply", "component_request_rtt"),
    ):
        print(f"  {label:<42} {r[key + '_median_ns']:>10,.0f} {r[key + '_p99_ns']:>10,.0f}")
    print(
        f"  publish-to-handle / floor (median): "
        f"{r['python_subscriber_median_ns'] / r['queue_floor_median_ns']:.2f}x"
    )
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
