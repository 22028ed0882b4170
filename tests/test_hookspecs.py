"""The shipped hookspec modules and their checked-in WIT stay in step."""

from __future__ import annotations

from pathlib import Path

import pytest

from airssys_plugins import Contract
from airssys_plugins.cli import main
from airssys_plugins.host.builtins import builtin_functions
from airssys_plugins.host.interfaces import host_wit
from hookspecs import eventrouter, textpipe

HOOKSPECS = Path(textpipe.__file__).parent
ROOT = HOOKSPECS.parent


def test_textpipe_wit_matches_hookspecs() -> None:
    """hookspecs/textpipe.wit is exactly what the hookspecs generate (regenerate with the CLI)."""
    generated = Contract.from_hookspecs(textpipe.TextHooks, package=textpipe.PACKAGE).wit()
    checked_in = (HOOKSPECS / "textpipe.wit").read_text()
    assert generated == checked_in, (
        "hookspecs/textpipe.wit is stale: run `airssys-plugins wit hookspecs.textpipe:TextHooks "
        "-o hookspecs/textpipe.wit`"
    )


def test_eventrouter_wit_matches_hookspecs() -> None:
    """hookspecs/eventrouter.wit is exactly what the hookspecs generate."""
    generated = Contract.from_hookspecs(eventrouter.EventHooks, package=eventrouter.PACKAGE).wit()
    assert generated == (HOOKSPECS / "eventrouter.wit").read_text(), (
        "hookspecs/eventrouter.wit is stale: run `airssys-plugins wit "
        "hookspecs.eventrouter:EventHooks -o hookspecs/eventrouter.wit`"
    )


@pytest.mark.parametrize("guest", ["dedup", "lookup", "tagger", "tally", "oncall"])
def test_eventrouter_guests_import_the_current_host_wit(guest: str) -> None:
    """The airssys:host WIT a sample guest builds against is what the host provides."""
    copy = ROOT / "sample_apps/eventrouter/plugins" / guest / "wit/deps/airssys-host/host.wit"
    assert copy.read_text() == host_wit(builtin_functions())["airssys:host@0.1.0"], (
        f"{copy} is stale: write PluginHost.host_wit()['airssys:host@0.1.0'] into it"
    )


def test_cli_wit_prints_and_writes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`airssys-plugins wit` prints the WIT, or writes it with -o."""
    assert main(["wit", "hookspecs.textpipe:TextHooks"]) == 0
    assert capsys.readouterr().out == (HOOKSPECS / "textpipe.wit").read_text()
    out = tmp_path / "x.wit"
    assert (
        main(["wit", "hookspecs.textpipe:TextHooks", "--package", "tp:hooks@2.1.0", "-o", str(out)])
        == 0
    )
    assert out.read_text().startswith("package tp:hooks@2.1.0;")


def test_cli_wit_errors_are_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    """Bad CLI input gives a message, not a traceback."""
    with pytest.raises(SystemExit, match="names no hookspecs"):
        main(["wit", "hookspecs.textpipe:"])
    with pytest.raises(SystemExit, match="cannot import 'no_such_module'"):
        main(["wit", "no_such_module:X"])
    assert main(["wit", "hookspecs.textpipe:TextHooks", "--package", "bad"]) == 1
    assert "is not a WIT package id" in capsys.readouterr().err
