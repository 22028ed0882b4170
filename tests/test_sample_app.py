"""The textpipe sample: its bundled WAT and Python components plus a Python plugin."""

from __future__ import annotations

from pathlib import Path

import pytest

from airssys_plugins.cli import main as cli_main
from hookspecs.textpipe import Stat
from sample_apps.textpipe.app import main, run


def test_pipeline_runs_every_kind_of_plugin(textpipe_wasm: dict[str, Path]) -> None:
    """configure (historic), detect_language (firstresult), transform (1:N), analyze."""
    result = run("the cat is here", max_length=8)
    assert sorted(result["plugins"]) == [
        ("shout", "wasm"),
        ("titlecase", "python"),
        ("wordstats", "wasm"),
    ]
    assert result["language"] == "en"
    assert result["transform"] == [
        "THE CAT IS HERE!",
        "The Cat ",
    ]  # titlecase is trylast; max_length=8
    assert result["analyze"] == [
        Stat("words", 4.0),
        Stat("characters", 15.0),
        Stat("average-word-length", 3.0),
        Stat("max-length", 8.0),  # the historic configure call reached the component
    ]


def test_german_and_unknown_languages(textpipe_wasm: dict[str, Path]) -> None:
    assert run("Hallo, das ist der Hund")["language"] == "de"
    assert run("lorem ipsum")["language"] is None


def test_cli_output(textpipe_wasm: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    """The textpipe command prints each stage."""
    assert main(["Hello and welcome"]) == 0
    out = capsys.readouterr().out
    assert "plugins:    shout [wasm], titlecase [python], wordstats [wasm]" in out
    assert "transform:  HELLO AND WELCOME!" in out
    assert "analyze:    words = 3" in out


def test_inspect_and_validate_bundled_components(
    textpipe_wasm: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """`airssys-plugins inspect` and `validate` on the sample's components."""
    assert cli_main(["inspect", str(textpipe_wasm["shout"])]) == 0
    out = capsys.readouterr().out
    assert (
        "interface textpipe:hooks/transform@1.0.0 {\n    transform: func(text: string) -> string;"
        in out
    )
    assert (
        cli_main(
            [
                "validate",
                str(textpipe_wasm["wordstats"]),
                "--contract",
                "hookspecs.textpipe:TextHooks",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "ok  detect_language" in out
    assert "textpipe:hooks/analyze@1.0.0#analyze" in out
