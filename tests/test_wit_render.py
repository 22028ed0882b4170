"""The one WIT renderer (contract/wit.py): its text parses with wasm-tools and round-trips.

Contracts (``Contract.wit()``) and the host interfaces (``host_wit()``) are both rendered
by ``wit.render_package``. Each document is parsed by ``wasm-tools component wit
--json``; the resolved package is read back into the WIT model and rendered again, which
must give the same text: nothing is lost, reordered or misspelled on the way.
"""

from __future__ import annotations

import importlib
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from airssys_plugins.authoring.build import find_tool
from airssys_plugins.contract import wit
from airssys_plugins.contract.mapping import Contract
from airssys_plugins.contract.wit_json import Resolved
from airssys_plugins.host.builtins import builtin_functions
from airssys_plugins.host.interfaces import host_wit

SPECS = [
    ("tests.kitchen_hooks", "KitchenHooks"),
    ("tests.demo", "DemoHooks"),
    ("tests.rust_hooks", "RustHooks"),
    ("hookspecs.textpipe", "TextHooks"),
    ("hookspecs.eventrouter", "EventHooks"),
]


def _resolve(text: str, tmp_path: Path) -> dict[str, Any]:
    """wasm-tools' resolved view of a WIT document (fails the test if it does not parse)."""
    source = tmp_path / "doc.wit"
    source.write_text(text)
    done = subprocess.run(
        [find_tool("wasm-tools"), "component", "wit", "--json", str(source)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, f"wasm-tools rejects the rendered WIT:\n{done.stderr}\n{text}"
    resolved: dict[str, Any] = json.loads(done.stdout)
    return resolved


def _docs(item: dict[str, Any]) -> tuple[str, ...]:
    contents = item.get("docs", {}).get("contents")
    return () if contents is None else tuple(contents.split("\n"))


def _rerender(resolved: dict[str, Any]) -> str:
    """The resolved (single) package rendered again from the model, read by the
    library's reader of wasm-tools' JSON (contract/wit_json.py)."""
    (package,) = resolved["packages"]
    reader = Resolved(resolved)
    interfaces = [
        wit.Interface(iface["name"], reader.functions(iface), _docs(iface))
        for _, iface in reader.interfaces()
    ]
    world = None
    for w in resolved["worlds"]:
        exports = tuple(
            resolved["interfaces"][e["interface"]["id"]]["name"] for e in w["exports"].values()
        )
        world = wit.World(w["name"], exports, _docs(w))
    return wit.render_package(package["name"], interfaces, world=world)


@pytest.mark.parametrize(("module", "cls"), SPECS, ids=[c for _, c in SPECS])
def test_contract_wit_parses_and_round_trips(module: str, cls: str, tmp_path: Path) -> None:
    """A contract's WIT parses with wasm-tools and renders back to the same text."""
    specs = importlib.import_module(module)
    contract = Contract.from_hookspecs(getattr(specs, cls), package=specs.PACKAGE)
    text = contract.wit()
    assert text.startswith(f"package {specs.PACKAGE};\n\n")
    assert _rerender(_resolve(text, tmp_path)) == text


def test_contract_subset_world_round_trips(tmp_path: Path) -> None:
    """A world exporting a subset of the hooks, under its own name, round-trips too."""
    specs = importlib.import_module("tests.kitchen_hooks")
    contract = Contract.from_hookspecs(specs.KitchenHooks, package=specs.PACKAGE)
    text = contract.wit(world="echoes", hooks=["echo_point", "echo_shape"])
    resolved = _resolve(text, tmp_path)
    assert [w["name"] for w in resolved["worlds"]] == ["echoes"]
    assert _rerender(resolved) == text


def test_host_wit_parses_and_round_trips(tmp_path: Path) -> None:
    """Every host interface document parses and renders back to the same text."""
    documents = host_wit(list(builtin_functions()))
    assert documents
    for package, text in documents.items():
        resolved = _resolve(text, tmp_path)
        assert resolved["packages"][0]["name"] == package
        assert "lifecycle" in {i["name"] for i in resolved["interfaces"]}
        assert _rerender(resolved) == text


def test_render_package_text() -> None:
    """render_package's layout: docs, typedefs once each, functions, comments, world."""
    point = wit.RecordT("point", (("x", wit.Prim("s32")), ("type", wit.Prim("u8"))))
    sig = wit.FuncSig((("p", point), ("q", wit.ListT(point))), wit.OptionT(point))
    iface = wit.Interface("move", (("move", sig), ("stop", wit.FuncSig((), None))), ("Moves.", ""))
    text = wit.render_package(
        "a:b@1.0.0",
        [iface],
        comments=["a note"],
        world=wit.World("plugin", ("move",), ("The world.",)),
    )
    assert text == (
        "package a:b@1.0.0;\n"
        "\n"
        "/// Moves.\n"
        "///\n"
        "interface move {\n"
        "  record point {\n"
        "    x: s32,\n"
        "    %type: u8,\n"
        "  }\n"
        "\n"
        "  move: func(p: point, q: list<point>) -> option<point>;\n"
        "  stop: func();\n"
        "}\n"
        "\n"
        "// a note\n"
        "\n"
        "/// The world.\n"
        "world plugin {\n"
        "  export move;\n"
        "}\n"
    )


def test_type_renderings() -> None:
    """By name, written out in full, or written out only when anonymous."""
    anon = wit.EnumT("", ("a", "b"))
    named = wit.RecordT("pt", (("x", wit.ListT(anon)),))
    t = wit.ResultT(None, wit.TupleT((named, anon)))
    assert wit.render_type(t) == "result<_, tuple<pt, >>"
    assert wit.render_type_expanded(t) == (
        "result<_, tuple<record { x: list<enum { a, b }> }, enum { a, b }>>"
    )
    assert wit.render_type_inline(t) == "result<_, tuple<pt, enum { a, b }>>"
    assert wit.render_func(wit.FuncSig((("own", named),), None), wit.render_type_inline) == (
        "func(%own: pt)"
    )


@given(st.text(alphabet="aZz0_9AbQx-é", max_size=12))
def test_kebab_splits_words_as_the_patterns_it_replaced(name: str) -> None:
    """``kebab`` splits camel case and checks the result by hand; it gives what the two
    ``re.sub`` passes and the ``_ID`` pattern gave, and refuses the same names."""
    import re

    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name)
    spaced = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", spaced)
    assert wit._split_camel(name) == spaced
    words: list[str] = []
    for word in spaced.lower().split("_"):
        if word and word[0].isdigit() and words:
            words[-1] += word
        elif word:
            words.append(word)
    joined = "-".join(words)
    assert wit._is_lower_id(joined) == (re.fullmatch(wit._ID, joined) is not None)


_NAME_PARTS = st.sampled_from(
    ["a", "b2", "x-y", "A", "-", "é", "%", "@", "/", ":", "#", " ", "\n", "1.0.0", "0.2.1-rc.1", ""]
)


@given(st.lists(_NAME_PARTS, max_size=9).map("".join))
def test_split_interface_name_reads_as_the_pattern_it_replaced(full: str) -> None:
    """``split_interface_name`` reads ``ns:pkg/iface@version`` by hand; it gives what the
    pattern gave for every text, malformed ones included (``None``)."""
    import re

    m = re.match(rf"^({wit._ID}:{wit._ID})/(%?{wit._ID})(?:@([^\s#]+))?$", full)
    expected = None if m is None else (m.group(1), m.group(2).lstrip("%"), m.group(3))
    assert wit.split_interface_name(full) == expected


@given(st.lists(_NAME_PARTS, max_size=9).map("".join))
def test_package_id_parse_reads_as_the_pattern_it_replaced(text: str) -> None:
    """``PackageId.parse`` reads ``ns:name@version`` by hand; it accepts what the pattern
    matched (the version then checked as semver), refusing the rest alike."""
    import re

    from airssys_plugins.contract.semver import Version

    m = re.match(rf"^(?P<ns>{wit._ID}):(?P<name>{wit._ID})(?:@(?P<v>[^\s/#]+))?$", text.strip())
    try:
        parsed: wit.PackageId | None = wit.PackageId.parse(text)
    except ValueError:
        parsed = None
    if m is None:
        assert parsed is None
        return
    try:
        expected: wit.PackageId | None = wit.PackageId(m["ns"], m["name"], m["v"])
        if m["v"] is not None:
            Version.parse(m["v"])
    except ValueError:
        expected = None
    assert parsed == expected


def test_package_id_examples() -> None:
    assert wit.PackageId.parse(" test:kitchen@1.0.0\n") == wit.PackageId("test", "kitchen", "1.0.0")
    assert wit.PackageId.parse("a-b:c2") == wit.PackageId("a-b", "c2", None)
    for bad in ("a", "a:", ":b", "A:b", "a:b@", "a:b@1.0.0/x", "a:b@1#2", "a:b@1 0", "a:b@x.y.z"):
        with pytest.raises(ValueError, match=r"not a WIT package id|not semver"):
            wit.PackageId.parse(bad)


def test_split_interface_name_examples() -> None:
    assert wit.split_interface_name("test:kitchen/echo-string@1.0.0") == (
        "test:kitchen", "echo-string", "1.0.0"
    )  # fmt: skip
    assert wit.split_interface_name("wasi:io/%streams") == ("wasi:io", "streams", None)
    assert wit.split_interface_name("a:b/c@1.0.0\n") == ("a:b", "c", "1.0.0")
    for bad in ("a:b", "a/b", "a:b/", "a:b/c@", "a:b/c@1 0", "a:b/c@1#2", "A:b/c", "a:b/c\n\n"):
        assert wit.split_interface_name(bad) is None, bad
