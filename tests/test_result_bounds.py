"""Results are measured in guest memory before wasmtime copies them (issue 12, hole 3).

Hand-written components return results whose flat data is a few hundred bytes of guest
memory while the value wasmtime would lift is many times ``max_result_bytes``: list
entries that all alias one 1 MiB region, in every shape a result can take (lists of
strings, of byte lists, of records, of options, nested lists, records, tuples, options,
results and variants holding them), and flat data that the host's values amplify
(``list<u8>`` and ``list<bool>`` lifted element by element, a long ``list<u32>``, one long
string). Each big case runs in a child process, which reads its peak RSS (VmHWM) around
the call: the call must fail with ``PluginLimitExceeded("result too large")`` naming the
plugin and hook, with the peak added RSS a small multiple of the limit, and a sibling
plugin must still answer. The same layouts, small, must give exactly what the unmeasured
path gives.
"""

from __future__ import annotations

import json
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

import attrs
import pluggy
import pytest

from airssys_plugins import PluginLimitExceeded, Result, u32, variant
from airssys_plugins.authoring.build import build_guest
from airssys_plugins.contract import wit
from airssys_plugins.contract.annotations import Own, resource
from airssys_plugins.contract.mapping import Contract
from airssys_plugins.runtime import convert, resources
from airssys_plugins.runtime.image import ComponentImage
from airssys_plugins.runtime.instance import PluginInstance
from airssys_plugins.runtime.measure import VAL_SIZE
from airssys_plugins.runtime.sandbox import HostLinker, SandboxSpec

from .demo import COUNTING_WAT
from .test_hostile_calls import RESULT_SIBLING, parse_component
from .test_rust_guest import rust_wasm  # noqa: F401  (a fixture)

MiB = 2**20
ROOT = Path(__file__).resolve().parent.parent
GUESTS = Path(__file__).parent / "guests"
REGION = 65536  # where the one aliased region starts
AREA = 16  # the return area
PAGES = 40  # 2.5 MiB of guest memory


@attrs.frozen
class Named:
    name: str
    items: list[str]


@attrs.frozen
class Tagged:
    a: u32
    s: str


@resource
class Thing:
    """A handle the hostile guest makes (it has no methods)."""


@attrs.frozen
class Held:
    items: list[str]
    t: Own[Thing]


@variant
class Bag:
    """empty | many(list<string>)"""


@attrs.frozen
class Empty(Bag):
    pass


@attrs.frozen
class Many(Bag):
    value: list[str]


spec = pluggy.HookspecMarker("hostile")


class ResultHooks:
    @spec
    def strings(self) -> list[str]: ...
    @spec
    def nested(self) -> list[list[str]]: ...
    @spec
    def deep(self) -> list[list[list[str]]]: ...
    @spec
    def blobs(self) -> list[bytes]: ...
    @spec
    def named(self) -> Named: ...
    @spec
    def pair(self) -> tuple[u32, list[str]]: ...
    @spec
    def maybe(self) -> list[str] | None: ...
    @spec
    def outcome(self) -> Result[list[str], str]: ...
    @spec
    def bag(self) -> Bag: ...
    @spec
    def tagged(self) -> list[Tagged]: ...
    @spec
    def optionals(self) -> list[str | None]: ...
    @spec
    def held(self) -> Held: ...
    @spec
    def numbers(self) -> list[u32]: ...
    @spec
    def raw(self) -> bytes: ...
    @spec
    def text(self) -> str: ...
    @spec
    def bools(self) -> list[bool]: ...
    @spec
    def pong(self) -> u32: ...


def _u32(*values: int) -> bytes:
    return struct.pack(f"<{len(values)}I", *values)


def _pairs(n: int, length: int) -> bytes:
    return _u32(REGION, length) * n


@attrs.frozen
class Case:
    """A result type (component WAT type definitions, the last one the result) and its
    flat data: the return area and more segments, for ``entries`` aliases of a region of
    ``length`` bytes; ``handle_at``: where the guest stores a new handle of its resource
    `thing` before it returns."""

    hook: str
    types: str
    layout: Any  # (entries, length) -> {address: bytes}
    handle_at: int | None = None


def _list_at(addr: int, entries: int) -> bytes:
    return _u32(addr, entries)


CASES = [
    Case("strings", "(type $r (list string))",
         lambda n, ln: {AREA: _list_at(1024, n), 1024: _pairs(n, ln)}),
    Case("nested", "(type $r (list (list string)))",
         lambda n, ln: {AREA: _list_at(1024, n), 1024: _u32(2048, 1) * n,
                        2048: _pairs(1, ln)}),
    Case("deep", "(type $r (list (list (list string))))",
         lambda n, ln: {AREA: _list_at(1024, n), 1024: _u32(2048, 1) * n,
                        2048: _u32(3072, n), 3072: _pairs(n, ln)}),
    Case("blobs", "(type $r (list (list u8)))",
         lambda n, ln: {AREA: _list_at(1024, n), 1024: _pairs(n, ln)}),
    Case("named", '(type $r (record (field "name" string) (field "items" (list string))))',
         lambda n, ln: {AREA: _u32(REGION, ln, 1024, n), 1024: _pairs(n, ln)}),
    Case("pair", "(type $r (tuple u32 (list string)))",
         lambda n, ln: {AREA: _u32(7, 1024, n), 1024: _pairs(n, ln)}),
    Case("maybe", "(type $r (option (list string)))",
         lambda n, ln: {AREA: _u32(1, 1024, n), 1024: _pairs(n, ln)}),
    Case("outcome", "(type $r (result (list string) (error string)))",
         lambda n, ln: {AREA: _u32(0, 1024, n), 1024: _pairs(n, ln)}),
    Case("bag", '(type $r (variant (case "empty") (case "many" (list string))))',
         lambda n, ln: {AREA: _u32(1, 1024, n), 1024: _pairs(n, ln)}),
    Case("tagged", '(type $tagged (record (field "a" u32) (field "s" string)))'
         "(type $r (list $tagged))",
         lambda n, ln: {AREA: _list_at(1024, n), 1024: _u32(5, REGION, ln) * n}),
    Case("optionals", "(type $r (list (option string)))",
         lambda n, ln: {AREA: _list_at(1024, n), 1024: _u32(1, REGION, ln) * n}),
    Case("held", '(type $own (own $thing))'
         '(type $r (record (field "items" (list string)) (field "t" $own)))',
         lambda n, ln: {AREA: _list_at(1024, n), 1024: _pairs(n, ln)}, handle_at=AREA + 8),
    # no aliases: flat data the host's values amplify, or that is simply too long
    Case("numbers", "(type $r (list u32))", lambda n, ln: {AREA: _u32(REGION, n * ln // 4)}),
    Case("raw", "(type $r (list u8))", lambda n, ln: {AREA: _u32(REGION, n * ln)}),
    Case("text", "(type $r string)", lambda n, ln: {AREA: _u32(REGION, n * ln)}),
    Case("bools", "(type $r (list bool))", lambda n, ln: {AREA: _u32(REGION, n * ln)}),
]  # fmt: skip

#: (entries, region length) of the big cases: 64 aliases of 1 MiB; the unaliased ones
#: (numbers, raw, text, bools) get entries * length bytes of flat data (within memory).
BIG = {"numbers": (1, 2 * MiB), "raw": (1, 2 * MiB), "text": (1, 2 * MiB), "bools": (1, MiB)}


def _escaped(blob: bytes) -> str:
    return "".join("\\" + format(b, "02x") for b in blob)


def component(case: Case, entries: int, length: int) -> str:
    """The component WAT: ``case.hook`` returns the flat data of ``case.layout``."""
    segments = case.layout(entries, length)
    segments.setdefault(REGION, b"abc" if length < 16 else b"")
    data = "\n".join(
        f'    (data (i32.const {addr}) "{_escaped(blob)}")'
        for addr, blob in sorted(segments.items())
        if blob
    )
    named = {
        "named": ("rec", "$r"), "bag": ("choice", "$r"), "tagged": ("item", "$tagged"),
        "held": ("holder", "$r"),
    }  # fmt: skip
    exported = [nt for hook, nt in named.items() if hook == case.hook]
    if case.handle_at is not None:
        exported.insert(0, ("thing", "$thing"))
    type_exports = "".join(f' (export "{n}" (type {t}))' for n, t in exported)
    resource = new = store = with_new = ""
    if case.handle_at is not None:
        resource = """(type $thing (resource (rep i32)))
  (core func $new (canon resource.new $thing))
  (core instance $ni (export "new" (func $new)))"""
        new = '(import "" "new" (func $new (param i32) (result i32)))'
        store = f"(i32.store (i32.const {case.handle_at}) (call $new (i32.const 7)))"
        with_new = ' (with "" (instance $ni))'
    return f"""(component
  {resource}
  (core module $m
    {new}
    (memory (export "memory") {PAGES})
{data}
    (func (export "{case.hook}") (result i32) {store} (i32.const {AREA})))
  (core instance $i (instantiate $m{with_new}))
  {case.types}
  (func $f (result $r) (canon lift (core func $i "{case.hook}")
    (memory (core memory $i "memory"))))
  (instance $iface{type_exports} (export "{case.hook}" (func $f)))
  (export "hostile:res/{case.hook}@1.0.0" (instance $iface)))"""


def nested_component(case: Case, entries: int, length: int) -> str:
    """The same component one level down, as jco lays components out: an outer component
    that instantiates it and re-exports its interface."""
    inner = component(case, entries, length)
    name = f"hostile:res/{case.hook}@1.0.0"
    return f"""(component
  (component $inner {inner.removeprefix("(component")[:-1]})
  (instance $i (instantiate $inner))
  (export "{name}" (instance $i "{name}")))"""


LAYOUTS = {"top": component, "nested": nested_component}


# Runs in a child process: loads the sibling and the hostile plugin, reads VmHWM, calls
# the hook, then reports what happened, the peak RSS added and the RSS left after.
DRIVER = r"""
import gc, json, sys
import pluggy
from airssys_plugins import Limits, PluginError, PluginHost
from tests.test_result_bounds import ResultHooks

def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key):
            return int(line.split()[1]) * 1024

hostile, hook, sibling = sys.argv[1], sys.argv[2], sys.argv[3]
limit = None if sys.argv[4] == "none" else int(sys.argv[4])
pm = pluggy.PluginManager("hostile")
pm.add_hookspecs(ResultHooks)
out = {}
with PluginHost(pm, package="hostile:res@1.0.0") as host:
    host.load(sibling, name="sibling")
    assert pm.hook.pong() == [42]
    host.load(hostile, name="hostile", limits=Limits(max_result_bytes=limit))
    gc.collect()
    before = status("VmHWM:")
    rss = status("VmRSS:")
    try:
        out["size"] = len(str(getattr(pm.hook, hook)()))
    except PluginError as exc:
        out.update(error=type(exc).__name__, reason=getattr(exc, "reason", None),
                   plugin=exc.plugin, hook=getattr(exc, "hook", None), message=str(exc))
    out["peak_added"] = status("VmHWM:") - before
    out["sibling"] = pm.hook.pong()
    gc.collect()
    out["rss_after"] = status("VmRSS:") - rss
print(json.dumps(out))
"""


def run_driver(
    hostile: Path, hook: str, sibling: Path, limit: int | None, env: dict[str, str] | None = None
) -> dict[str, Any]:
    """Call ``hook`` of ``hostile`` in a child process (see DRIVER); ``env``: its
    environment (None: this one)."""
    proc = subprocess.run(
        [sys.executable, "-c", DRIVER, str(hostile), hook, str(sibling), str(limit).lower()],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.splitlines()[-1])  # type: ignore[no-any-return]


def big_component(tmp: Path, case: Case, layout: str = "top") -> Path:
    entries, length = BIG.get(case.hook, (64, MiB))
    return parse_component(tmp, case.hook, LAYOUTS[layout](case, entries, length))


#: (case, layout) of every measured case: handles of a nested component's resources
#: cannot be re-exported by its outer one (see test_nested_handles_...).
MEASURED = [
    pytest.param(c, layout, id=f"{c.hook}-{layout}")
    for layout in sorted(LAYOUTS)
    for c in CASES
    if not (layout == "nested" and c.handle_at is not None)
]


@pytest.mark.parametrize(("case", "layout"), MEASURED)
def test_big_results_are_refused_before_they_are_copied(
    tmp_path: Path, case: Case, layout: str
) -> None:
    """Under max_result_bytes = 1 MiB every big result is PluginLimitExceeded('result too
    large') naming plugin and hook, measured before wasmtime copies it, whether the
    component lifts its functions at the top or one component down: the peak RSS added
    by the call stays within 2 MiB (it was up to 200 MiB when measured after the copy),
    RSS returns to its baseline and the sibling still answers."""
    hostile = big_component(tmp_path, case, layout)
    sibling = parse_component(tmp_path, "sibling", RESULT_SIBLING)
    out = run_driver(hostile, case.hook, sibling, MiB)
    assert (out.get("error"), out.get("reason")) == ("PluginLimitExceeded", "result too large")
    assert (out["plugin"], out["hook"]) == ("hostile", case.hook)
    assert "before copying" in out["message"]
    assert out["sibling"] == [42]
    assert out["peak_added"] < 2 * MiB, out
    assert out["rss_after"] < 2 * MiB, out


def _comparable(value: Any) -> Any:
    """``value``, with a resource handle (a proxy of this one call) as its class."""
    if isinstance(value, Held):
        assert isinstance(value.t, Thing)
        with value.t:  # drops the guest's handle
            return (value.items, "Thing")
    return value


def test_nested_handles_are_measured_after_the_copy(tmp_path: Path) -> None:
    """A result holding a handle of a nested component's own resource is not measured
    first (the outer component cannot name the inner one's resource type to re-export
    the measuring function): it is measured after wasmtime's copy, still refused as
    "result too large", and the sibling answers. The other functions of such a component
    keep their measuring exports."""
    case = next(c for c in CASES if c.hook == "held")
    small = parse_component(tmp_path, "small", nested_component(case, 3, 3))
    assert ComponentImage.load("held", small, cache=False).measured == {}
    hostile = big_component(tmp_path, case, "nested")
    sibling = parse_component(tmp_path, "sibling", RESULT_SIBLING)
    out = run_driver(hostile, case.hook, sibling, MiB)
    assert (out.get("error"), out.get("reason")) == ("PluginLimitExceeded", "result too large")
    assert "before copying" not in out["message"]
    assert out["sibling"] == [42]


def _bind_all(instance: PluginInstance, image: ComponentImage) -> dict[str, Any]:
    """Each export bound with the hookspec's signature (Python classes for named types)."""
    hooks = Contract.from_hookspecs(ResultHooks, package="hostile:res@1.0.0").hooks
    return {
        f: instance.bind(f, i, f, hooks[f].signature if f in hooks else sig)
        for (i, f), sig in image.exports.items()
    }


@pytest.mark.parametrize(("case", "layout"), MEASURED)
def test_small_results_are_the_same_measured_or_not(
    tmp_path: Path, case: Case, layout: str
) -> None:
    """The same layouts, small, within the limit: the measured path (a measuring call and
    the real lift of its stashed result) gives exactly what the plain export gives."""
    wasm = parse_component(tmp_path, case.hook, LAYOUTS[layout](case, 3, 3))
    image = ComponentImage.load(case.hook, wasm, cache=False)
    assert set(image.measured) == {(f"hostile:res/{case.hook}@1.0.0", case.hook)}
    measured = PluginInstance(image, sandbox=SandboxSpec(max_result_bytes=MiB))
    plain = PluginInstance(image, sandbox=SandboxSpec(max_result_bytes=None))
    try:
        bound = _bind_all(measured, image)[case.hook]
        assert bound.measured is not None
        iface = f"hostile:res/{case.hook}@1.0.0"

        def call(instance: PluginInstance, bound: Any) -> Any:
            if case.handle_at is None:
                return instance.call(bound, [])
            return _comparable(resources.call(instance, bound, [], interface=iface))

        got = [call(measured, bound) for _ in range(3)]
        want = call(plain, _bind_all(plain, image)[case.hook])
        assert got == [want] * 3
        assert "abc" in str(want) or "97, 98, 99" in str(want) or case.hook in ("numbers", "bools")
    finally:
        measured.close()
        plain.close()


def test_the_limit_is_exact_and_the_guest_runs_once(tmp_path: Path) -> None:
    """A string of exactly max_result_bytes passes, one byte more does not; a counting
    guest shows that each measured call runs the guest function once."""
    image = ComponentImage.load(
        "count", parse_component(tmp_path, "count", COUNTING_WAT), cache=False
    )
    instance = PluginInstance(image, sandbox=SandboxSpec(max_result_bytes=1000))
    try:
        bound = _bind_all(instance, image)["f"]
        assert bound.measured is not None
        assert instance.call(bound, [1000]) == (1, "\0" * 1000)
        assert instance.call(bound, [10]) == (2, "\0" * 10)
        with pytest.raises(Exception, match="returned 1,001 bytes or more") as info:
            instance.call(bound, [1001])
        assert getattr(info.value, "reason", None) == "result too large"
        # refused: the instance was replaced, so the count starts again, once per call
        assert instance.call(bound, [0]) == (1, "")
    finally:
        instance.close()


def test_walk_counts_as_the_host_measure_does() -> None:
    """The walk's bytes per list element are the C API's value size."""
    assert VAL_SIZE == convert.VAL_SIZE


def _has_var(t: wit.WitType | None) -> bool:
    if t is None:
        return False
    if isinstance(t, wit.Prim):
        return t.name == "string"
    if isinstance(t, wit.ListT):
        return True
    if isinstance(t, wit.TupleT):
        return any(_has_var(e) for e in t.elements)
    if isinstance(t, wit.RecordT):
        return any(_has_var(f) for _, f in t.fields)
    if isinstance(t, wit.OptionT):
        return _has_var(t.inner)
    if isinstance(t, wit.ResultT):
        return _has_var(t.ok) or _has_var(t.err)
    if isinstance(t, wit.VariantT):
        return any(_has_var(c) for _, c in t.cases)
    return False


@pytest.mark.parametrize("fixture", ["kitchen_wasm", "rust_wasm", "bytes_wasm", "jco_wasm"])
def test_real_toolchains_get_measured_results(fixture: str, request: pytest.FixtureRequest) -> None:
    """Every export with a string or list in its result is measured, for components made
    by componentize-py (wit-component's layout), cargo (Rust), wasm-tools from WAT and
    jco (a nested component: its functions are lifted one component down)."""
    wasm: Path = request.getfixturevalue(fixture)
    image = ComponentImage.load(fixture, wasm)
    variable = {key for key, sig in image.exports.items() if _has_var(sig.result)}
    assert variable
    assert set(image.measured) == variable


@pytest.fixture(scope="session")
def bytes_wasm() -> Path:
    return build_guest(GUESTS / "bytes")


@pytest.fixture(scope="session")
def jco_wasm() -> Path:
    return build_guest(GUESTS / "raw-js")


def test_jco_guest_is_measured_and_answers_alike(jco_wasm: Path) -> None:
    """jco's nested layout: the measured path gives what the plain one gives, and a result
    over the limit is refused before it is copied."""
    image = ComponentImage.load("jco", jco_wasm)
    measured = PluginInstance(image, sandbox=SandboxSpec(max_result_bytes=64))
    plain = PluginInstance(image, sandbox=SandboxSpec(max_result_bytes=None))
    try:
        key = next(k for k in image.measured if k[1] == "invert")
        sig = image.exports[key]
        data = bytes(range(40))
        assert measured.bind("invert", key[0], "invert", sig).measured is not None
        want = plain.call(plain.bind("invert", key[0], "invert", sig), [data])
        assert want == [~b & 0xFF for b in data]  # list<u8> as the WIT default: a list
        assert measured.call(measured.bind("invert", key[0], "invert", sig), [data]) == want
        with pytest.raises(PluginLimitExceeded, match="before copying"):
            measured.call(measured.bind("invert", key[0], "invert", sig), [bytes(100)])
    finally:
        measured.close()
        plain.close()


@pytest.mark.parametrize(
    ("memory", "measured_first"), [(4 * MiB, False), (4 * MiB + 1, True), (None, True)]
)
def test_one_string_keeps_one_call_when_memory_bounds_it(
    tmp_path: Path, memory: int | None, measured_first: bool
) -> None:
    """A result of one string cannot alias, so its copy is at most the guest's memory:
    when the memory limit is at most 4 x max_result_bytes it keeps the single call (and
    is measured after the copy); otherwise it is measured in guest memory first. Either
    way a string over the limit is PluginLimitExceeded('result too large')."""
    case = next(c for c in CASES if c.hook == "text")
    wasm = parse_component(tmp_path, "text", component(case, 1, 2 * MiB))
    image = ComponentImage.load("text", wasm, cache=False)
    instance = PluginInstance(image, sandbox=SandboxSpec(max_result_bytes=MiB, memory=memory))
    try:
        bound = _bind_all(instance, image)["text"]
        assert bound.single_buffer
        with pytest.raises(Exception, match="from hook 'text'") as info:
            instance.call(bound, [])
        assert getattr(info.value, "reason", None) == "result too large"
        assert ("before copying" in str(info.value)) is measured_first
    finally:
        instance.close()


TYPES_IMPORT = "hostile:types/t@1.0.0"


def imported_types_component(case: Case, entries: int, length: int) -> str:
    """``component``, its result type defined in the type of an instance it imports and
    aliased at its root: wit-component's layout for a type an exported interface uses
    from an imported one (``use wasi:http/types.{response}``)."""
    top = component(case, entries, length)
    head, _, rest = top.partition("\n")
    ours = f'(import "{TYPES_IMPORT}" (instance $ti {case.types} (export "r" (type (eq $r)))))'
    rest = rest.replace(f"  {case.types}\n", '  (alias export $ti "r" (type $r))\n', 1)
    rest = rest.replace(' (export "rec" (type $r))', "").replace(' (export "choice" (type $r))', "")
    return f"{head}\n  {ours}\n{rest}"


class _TypesLinker(HostLinker):
    """The default linker, with the (empty) instance the types come from."""

    def __init__(self) -> None:
        super().__init__()
        self.interfaces = frozenset({"hostile:types/t"})

    def _build(self, fuel: bool) -> Any:
        linker = super()._build(fuel)
        with linker.root() as root, root.add_instance(TYPES_IMPORT):
            pass
        return linker


#: The cases whose result is one type definition (``$r``), which an instance type can export.
IMPORTABLE = [c.hook for c in CASES if c.types.count("(type ") == 1]


@pytest.mark.parametrize("hook", IMPORTABLE)
def test_results_of_imported_types_are_measured_before_the_copy(tmp_path: Path, hook: str) -> None:
    """A result whose type is an imported instance's, aliased (the measuring rewriter
    read only the root's own types, so these were measured after wasmtime's copy): the
    big layout (64 entries aliasing 1 MiB, or the long flat data) is refused by the
    measuring call, and the same layout, small, gives what the plain export gives."""
    case = next(c for c in CASES if c.hook == hook)
    big = BIG.get(hook, (64, MiB))
    iface = f"hostile:res/{hook}@1.0.0"
    linker = _TypesLinker()
    for entries, length in (big, (3, 3)):
        wasm = parse_component(tmp_path, hook, imported_types_component(case, entries, length))
        image = ComponentImage.load(hook, wasm, cache=False)
        assert set(image.measured) == {(iface, hook)}
        granted = frozenset({"hostile:types/t"})
        measured = PluginInstance(
            image, sandbox=SandboxSpec(max_result_bytes=MiB, interfaces=granted), linker=linker
        )
        plain = PluginInstance(
            image, sandbox=SandboxSpec(max_result_bytes=None, interfaces=granted), linker=linker
        )
        try:
            bound = _bind_all(measured, image)[hook]
            assert bound.measured is not None
            if (entries, length) == big:
                with pytest.raises(PluginLimitExceeded, match="before copying") as info:
                    measured.call(bound, [])
                assert info.value.reason == "result too large"
            else:
                want = plain.call(_bind_all(plain, image)[hook], [])
                assert measured.call(bound, []) == want
        finally:
            measured.close()
            plain.close()
