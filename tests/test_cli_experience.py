"""What a new user sees from our command lines (airssys-plugins, textpipe, eventrouter),
run through the installed console scripts: errors as messages (tracebacks only with
--debug), warnings as one line, progress while slow, build failures trimmed to the
guest's error, and the rough edges of validate, inspect, wit, disable, cache and --help."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from airssys_plugins.authoring.build import trim_output
from sample_apps.textpipe.app import bundled_plugin_dir

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
CONTRACT = ["--contract", "hookspecs.textpipe:TextHooks"]
SHOUT_WAT = ROOT / "sample_apps" / "textpipe" / "plugins" / "shout"


def cli(
    *argv: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> tuple[int, str, str]:
    """Run a console script (``airssys-plugins``, ``textpipe``, ``eventrouter``) with args."""
    proc = subprocess.run(
        [str(BIN / argv[0]), *argv[1:]],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        cwd=cwd or ROOT,
        timeout=600,
    )
    return proc.returncode, proc.stdout, proc.stderr


@pytest.fixture
def bundled(textpipe_wasm: dict[str, Path]) -> Path:
    """textpipe's bundled plugin directory (shout and wordstats with their manifests)."""
    return bundled_plugin_dir()


@pytest.fixture
def broken(bundled: Path, tmp_path: Path) -> Path:
    """A plugin directory (named wshout) whose manifest has an unknown key."""
    plugin = tmp_path / "plugins" / "wshout"
    plugin.mkdir(parents=True)
    shutil.copy(bundled / "shout" / "shout.wasm", plugin / "shout.wasm")
    (plugin / "plugin.toml").write_text(
        'name = "wshout"\nbogus = 1\nversion = "1.0.0"\ncomponent = "shout.wasm"\n'
    )
    return plugin


@pytest.fixture
def wat_project(tmp_path: Path) -> Path:
    """A fresh copy of textpipe's shout (WAT) as a plugin project: contract WIT inside,
    a unique comment so that its build is never a cache hit."""
    project = tmp_path / "shouty"
    shutil.copytree(SHOUT_WAT, project)
    shutil.copy(ROOT / "hookspecs" / "textpipe.wit", project / "wit" / "textpipe.wit")
    wat = project / "guest.wat"
    wat.write_text(f";; {tmp_path}\n" + wat.read_text())
    manifest = project / "plugin.toml"
    manifest.write_text(manifest.read_text().replace('"shout.wasm"', '"shouty.wasm"'))
    return project


@pytest.mark.parametrize(
    "command",
    [
        ["validate", "{plugin}", *CONTRACT],
        ["list", *CONTRACT, "--dir", "{dir}", "--no-packs"],
        ["lock", *CONTRACT, "--dir", "{dir}", "--no-packs", "-o", "{dir}/plugins.lock"],
    ],
    ids=["validate", "list", "lock"],
)
def test_a_broken_plugin_is_reported_once(broken: Path, command: list[str]) -> None:
    """validate, list and lock print a broken manifest's problem once, not also as a
    log line of the loader."""
    argv = [a.format(plugin=broken, dir=broken.parent) for a in command]
    code, out, err = cli("airssys-plugins", *argv)
    assert code == 1
    assert (out + err).count("bogus: unknown key") == 1, out + err


def test_validate_and_inspect_of_a_missing_path_say_it_does_not_exist(tmp_path: Path) -> None:
    """A path that is not there is 'does not exist', not 'is not a plugin'."""
    for command in (["validate", str(tmp_path / "nope.wasm"), *CONTRACT], ["inspect", "nope.wasm"]):
        code, _, err = cli("airssys-plugins", *command, cwd=tmp_path)
        assert code == 1
        assert "nope.wasm does not exist" in err
        assert "is not a plugin" not in err


def test_inspect_of_a_broken_plugin_dir_reports_the_error(broken: Path) -> None:
    """inspect of a plugin dir with a broken manifest says why and exits 1 (was 'plugin
    wshout ?' and exit 0)."""
    code, out, err = cli("airssys-plugins", "inspect", str(broken))
    assert code == 1
    assert "plugin wshout ?" not in out
    assert "bogus: unknown key" in err
    assert f"airssys-plugins inspect {broken / 'shout.wasm'}" in err
    assert "Traceback" not in err


def test_wit_accepts_a_module_and_a_file() -> None:
    """wit MODULE collects the module's hookspec classes; wit FILE.py imports the file."""
    code, expected, _ = cli("airssys-plugins", "wit", "hookspecs.textpipe:TextHooks")
    assert code == 0
    assert "interface analyze" in expected or "analyze" in expected
    for spec in ("hookspecs.textpipe", str(ROOT / "hookspecs" / "textpipe.py")):
        code, out, err = cli("airssys-plugins", "wit", spec)
        assert (code, err) == (0, "")
        assert out == expected
    code, _, err = cli("airssys-plugins", "wit", "no/such/file.py")
    assert code == 1
    assert "there is no file no/such/file.py" in err


def test_disable_checks_the_name(bundled: Path) -> None:
    """A typo is refused with a did-you-mean; the right name (found with --dir) works."""
    code, out, err = cli(
        "airssys-plugins", "disable", "wordstas", "--app", "textpipe", "--dir", str(bundled)
    )
    assert code == 1
    assert "textpipe has no plugin named 'wordstas'; did you mean 'wordstats'?" in err
    code, out, _ = cli(
        "airssys-plugins", "disable", "wordstats", "--app", "textpipe", "--dir", str(bundled)
    )
    assert code == 0
    assert out.startswith("wordstats disabled for textpipe")
    # Once disabled it is known from the settings, so enabling needs no --dir.
    code, out, _ = cli("airssys-plugins", "enable", "wordstats", "--app", "textpipe")
    assert (code, out.split(" (")[0]) == (0, "wordstats enabled for textpipe")
    code, out, _ = cli("airssys-plugins", "disable", "vowles", "--app", "textpipe", "--force")
    assert code == 0


def test_cache_info_and_clear_cover_every_kind(tmp_path: Path) -> None:
    """cache info totals aot/, builds/ and npm/ (and lists others); clear empties all
    three unless --only narrows it; an app's own folder stays."""
    cache = tmp_path / "cache"
    sizes = {"aot/x.cwasm": 3 * 2**20, "builds/y.wasm": 2 * 2**20, "npm/jco/z.js": 2**20}
    for rel, size in sizes.items():
        (cache / rel).parent.mkdir(parents=True, exist_ok=True)
        (cache / rel).write_bytes(b"\0" * size)
    (cache / "textpipe-bundled").mkdir()
    (cache / "textpipe-bundled" / "keep").write_text("x")
    env = {"AIRSSYS_PLUGINS_CACHE_DIR": str(cache)}
    code, out, _ = cli("airssys-plugins", "cache", "info", env=env)
    assert code == 0
    assert re.search(r"compiled\s+aot/\s+3\.0 MiB", out)
    assert re.search(r"builds\s+builds/\s+2\.0 MiB", out)
    assert re.search(r"npm\s+npm/\s+1\.0 MiB", out)
    assert "total:     6.0 MiB" in out
    code, out, _ = cli("airssys-plugins", "cache", "clear", "--only", "npm", env=env)
    assert code == 0
    assert not (cache / "npm").exists()
    assert (cache / "builds" / "y.wasm").exists()
    code, out, _ = cli("airssys-plugins", "cache", "clear", env=env)
    assert code == 0
    assert not (cache / "aot" / "x.cwasm").exists()
    assert not (cache / "builds").exists()
    assert (cache / "textpipe-bundled" / "keep").exists()
    assert "removed 1 built file(s) (2.0 MiB)" in out
    assert "removed 1 compiled component(s) (3.0 MiB)" in out


def test_textpipe_strict_with_a_broken_plugin_prints_no_traceback(broken: Path) -> None:
    """textpipe --strict stops at a broken plugin with its message; --debug adds the
    traceback."""
    code, _, err = cli("textpipe", "--strict", "--plugins-dir", str(broken.parent), "hi")
    assert code == 1
    assert "Traceback" not in err
    assert "textpipe: error: the manifest of plugin 'wshout'" in err
    code, _, err = cli("textpipe", "--strict", "--debug", "--plugins-dir", str(broken.parent))
    assert code == 1
    assert "Traceback (most recent call last)" in err


def test_textpipe_formats_warnings_for_people(bundled: Path, tmp_path: Path) -> None:
    """A shadowed plugin is one 'textpipe: warning:' line, not Python's warning format."""
    extra = tmp_path / "extra"
    shutil.copytree(bundled / "shout", extra / "shout")
    code, _, err = cli("textpipe", "--plugins-dir", str(extra), "hi")
    assert code == 0
    assert "textpipe: warning: plugin 'shout' at " in err
    assert "PluginShadowedWarning" not in err
    assert "warnings.warn" not in err
    assert err.count("is shadowed") == 1


def test_textpipe_grants_file_and_a_refusal_said_once(tmp_path: Path) -> None:
    """A plugin asking for kv is refused once (one message, no log repeats) and loads
    with --grants granting it."""
    code, _, err = cli(
        "airssys-plugins", "new", "mirror", *CONTRACT, "--lang", "wat", "--uses", "kv",
        cwd=tmp_path,
    )  # fmt: skip
    assert code == 0, err
    assert cli("airssys-plugins", "build", "mirror", cwd=tmp_path)[0] == 0
    code, out, err = cli("textpipe", "--plugins-dir", str(tmp_path), "hi")
    assert code == 0
    assert "mirror [wasm]" not in out
    assert err.count("interface kv") == 1, err
    assert (
        "textpipe: plugin mirror broken: CapabilityDenied: plugin 'mirror' asks for 1 right(s)"
        in err
    )
    grants = tmp_path / "grants.toml"
    grants.write_text('[plugins.mirror]\ninterfaces = ["kv"]\n')
    code, out, err = cli("textpipe", "--plugins-dir", str(tmp_path), "--grants", str(grants), "hi")
    assert code == 0, err
    assert "mirror [wasm]" in out


def test_eventrouter_grants_file_refusal_is_a_message(tmp_path: Path) -> None:
    """eventrouter --grants with a file granting nothing: the refusal once, exit 1."""
    grants = tmp_path / "grants.toml"
    grants.write_text("# nothing granted\n")
    code, _, err = cli("eventrouter", "--grants", str(grants), "--no-lookup")
    assert code == 1
    assert "Traceback" not in err
    # progress lines ("compiling ...") come first on a cold compile cache
    errors = [line for line in err.splitlines() if line.startswith("eventrouter: error:")]
    assert len(errors) == 1, err
    assert errors[0].startswith("eventrouter: error: plugin "), err
    assert "deny " not in err
    assert "refuse " not in err


def _positional_and_contract_help(text: str) -> list[str]:
    """Entries of a --help listing with no help text: positionals, and --contract."""
    missing = []
    section = None
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if not line.startswith(" "):
            section = line
            continue
        entry = re.match(r"^  (\S.*?)(?:\s{2,}(\S.*))?$", line)
        if entry is None:
            continue
        name, help_text = entry.groups()
        wanted = section == "positional arguments:" or name.startswith("--contract")
        if section == "positional arguments:" and name.startswith("{"):
            wanted = False  # a subcommand list
        nxt = lines[i + 1] if i + 1 < len(lines) else ""
        if wanted and not help_text and not nxt.startswith(" " * 8):
            missing.append(name)
    return missing


@pytest.mark.parametrize(
    "command",
    [
        ["airssys-plugins", "wit"],
        ["airssys-plugins", "inspect"],
        ["airssys-plugins", "validate"],
        ["airssys-plugins", "list"],
        ["airssys-plugins", "lock"],
        ["airssys-plugins", "enable"],
        ["airssys-plugins", "disable"],
        ["airssys-plugins", "new"],
        ["airssys-plugins", "build"],
        ["textpipe"],
        ["eventrouter"],
    ],
    ids=lambda c: " ".join(c),
)
def test_help_explains_every_argument(command: list[str]) -> None:
    """Each positional argument and --contract has help text in --help."""
    code, out, _ = cli(*command, "--help", env={"COLUMNS": "100"})
    assert code == 0
    assert _positional_and_contract_help(out) == []


def test_build_failure_shows_the_guest_error_first(tmp_path: Path) -> None:
    """A broken Python guest: the error names the real app.py (not componentize-py's
    /0/app.py), leads with the guest's traceback, carries no Rust backtrace even with
    RUST_BACKTRACE=1, and no traceback of ours."""
    project = tmp_path / "broken"
    code, _, err = cli(
        "airssys-plugins", "new", "broken", *CONTRACT, "--hooks", "transform", cwd=tmp_path
    )
    assert code == 0, err
    app = project / "app.py"
    app.write_text(app.read_text() + "\nimport no_such_module_anywhere\n")
    code, _, err = cli("airssys-plugins", "build", str(project), env={"RUST_BACKTRACE": "1"})
    assert code == 1
    assert "/0/" not in err
    assert "Stack backtrace" not in err
    assert "anyhow" not in err
    assert 'Traceback (most recent call last):\n  File "' + str(app) in err
    assert "ModuleNotFoundError: No module named 'no_such_module_anywhere'" in err
    assert "sys.exit(script())" not in err  # componentize-py's own wrapper traceback
    assert len(err.splitlines()) < 15, err


def test_trim_output_maps_paths_and_drops_backtraces(tmp_path: Path) -> None:
    """The build copy's paths and /0/ become the source; backtraces and repeats go."""
    copy, source = Path("/tmp/airssys-build-x/src"), tmp_path / "guest"
    raw = (
        "Traceback (most recent call last):\n"
        '  File "/venv/bin/componentize-py", line 8, in <module>\n'
        "    sys.exit(script())\n"
        'AssertionError: Traceback (most recent call last):\n  File "/0/app.py", line 3, in <module>\n'
        "    boom()\n"
        "NameError: name 'boom' is not defined\n\n\n"
        "Caused by:\n    NameError: name 'boom' is not defined\n\n"
        f"note: see {copy}/app.py\n"
        "Stack backtrace:\n   0: anyhow::msg\n   1: tokio::run\n"
    )
    shown, full = trim_output(raw, {copy: source})
    assert shown.splitlines()[:4] == [
        "Traceback (most recent call last):",
        f'  File "{source}/app.py", line 3, in <module>',
        "    boom()",
        "NameError: name 'boom' is not defined",
    ]
    assert f"note: see {source}/app.py" in shown
    assert "anyhow" not in shown
    assert "Caused by" not in shown
    assert "anyhow" in full
    assert "/0/" not in full


def test_build_timeout_is_reported(wat_project: Path) -> None:
    """A tool that outlives the build timeout fails the build with a message that says
    how to raise the limit."""
    code, _, err = cli("airssys-plugins", "build", str(wat_project), "--timeout", "0.001")
    assert code == 1
    assert "timed out" in err
    assert "gave no result after 0.001 s" in err
    assert "AIRSSYS_PLUGINS_BUILD_TIMEOUT" in err


def test_build_progress_is_live_on_a_terminal_and_plain_otherwise(wat_project: Path) -> None:
    """Forced progress draws the rich spinner (escape codes, the step and its elapsed
    time, a ✓ line for the finished step); without a terminal the steps are plain lines."""
    code, _, err = cli("airssys-plugins", "build", str(wat_project))
    assert code == 0
    assert "\x1b[" not in err
    assert err.startswith("building wat guest shouty with wasm-tools")
    (wat_project / "guest.wat").write_text(";; again\n" + (wat_project / "guest.wat").read_text())
    code, _, err = cli(
        "airssys-plugins", "build", str(wat_project), env={"AIRSSYS_PLUGINS_PROGRESS": "always"}
    )
    assert code == 0
    assert "\x1b[" in err
    assert "building wat guest shouty with wasm-tools" in err  # the spinner's text
    assert re.search(r"\d:\d\d:\d\d", err)  # its elapsed time
    assert re.search(r"✓.*built shouty in \d+\.\d s", err)  # the finished step stays


def test_validate_on_a_cold_cache_says_it_is_compiling(bundled: Path, tmp_path: Path) -> None:
    """A first-time compile is announced once while validate waits for it; on a warm
    cache nothing is said."""
    env = {"AIRSSYS_PLUGINS_CACHE_DIR": str(tmp_path / "cold")}
    code, out, err = cli("airssys-plugins", "validate", str(bundled / "shout"), *CONTRACT, env=env)
    assert code == 0, err
    assert "ok  transform" in out
    # told by the host's progress hook, not parsed from a log record
    assert err.count("compiling shout (") == 1, err
    assert re.search(r"compiled shout in \d+\.\d s", err), err
    assert "once per version" not in err, err
    code, out, err = cli("airssys-plugins", "validate", str(bundled / "shout"), *CONTRACT, env=env)
    assert (code, err) == (0, "")


def _wait_for(proc: subprocess.Popen[str], pattern: str, deadline: float) -> str:
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if re.search(pattern, line):
            return line
    raise AssertionError(f"no line matching {pattern!r}")


def test_build_watch_rebuilds_on_every_change(wat_project: Path) -> None:
    """build --watch builds once, again after each save (a broken save is reported and
    watching goes on), and stops cleanly on Ctrl-C."""
    proc = subprocess.Popen(
        [str(BIN / "airssys-plugins"), "build", "--watch", str(wat_project), "--interval", "0.05"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        first = _wait_for(proc, r"^shout: .*shouty\.wasm", deadline)
        wat = wat_project / "guest.wat"
        source = wat.read_text()
        wat.write_text(source.replace("(i32.const 1024)", "(i32.const 2048)", 1))
        second = _wait_for(proc, r"^shout: .*shouty\.wasm", deadline)
        assert first.split("sha256 ")[1].split()[0] != second.split("sha256 ")[1].split()[0]
        wat.write_text("(module oops")
        time.sleep(0.5)
        wat.write_text(";; fixed\n" + source)
        _wait_for(proc, r"^shout: .*shouty\.wasm", deadline)
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0
    assert "changed: guest.wat; rebuilding shouty" in err
    assert "error: building shouty failed" in err
    assert "Traceback" not in err


def test_an_unwritable_output_is_a_message(tmp_path: Path) -> None:
    """wit -o into a missing directory: the OSError's message, no traceback."""
    target = tmp_path / "missing" / "x.wit"
    code, _, err = cli("airssys-plugins", "wit", "hookspecs.textpipe", "-o", str(target))
    assert code == 1
    assert "Traceback" not in err
    assert err.startswith("airssys-plugins: error: [Errno 2] No such file or directory")


def test_activity_turns_library_logs_into_steps_and_restores_the_loggers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """While open, the runtime's INFO records are progress lines (not also log records);
    afterwards the logger is as it was."""
    import io
    import logging

    from airssys_plugins.cli.progress import Activity

    monkeypatch.setenv("AIRSSYS_PLUGINS_PROGRESS", "plain")
    logger = logging.getLogger("airssys_plugins.runtime")
    before = (logger.level, logger.propagate, list(logger.handlers))
    out = io.StringIO()
    with Activity("checking", stream=out, prefix="app: "):
        logger.info("compiling %s (%.1f MB); this happens once per version", "big", 18.3)
        logger.debug("not progress")
    logger.info("after: not shown")
    assert out.getvalue() == "app: compiling big (18.3 MB); this happens once per version\n"
    assert (logger.level, logger.propagate, list(logger.handlers)) == before
    monkeypatch.setenv("AIRSSYS_PLUGINS_PROGRESS", "never")
    out = io.StringIO()
    with Activity("checking", stream=out):
        logger.info("compiling")
    assert out.getvalue() == ""


def test_a_watching_host_runs_each_build_of_build_watch(wat_project: Path) -> None:
    """The documented loop: build --watch rebuilds after a save, and a host that
    watch()es the plugin runs the new code without a restart."""
    import pluggy

    from airssys_plugins import PluginHost
    from hookspecs.textpipe import PACKAGE, TextHooks

    proc = subprocess.Popen(
        [str(BIN / "airssys-plugins"), "build", "--watch", str(wat_project), "--interval", "0.05"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        _wait_for(proc, r"^shout: .*shouty\.wasm", time.monotonic() + 120)
        pm = pluggy.PluginManager("textpipe")
        pm.add_hookspecs(TextHooks)
        with PluginHost(pm, package=PACKAGE) as host:
            host.load_plugins([wat_project])
            assert pm.hook.transform(text="hi") == ["HI!"]
            watcher = host.watch(interval=0.05)
            try:
                wat = wat_project / "guest.wat"
                wat.write_text(wat.read_text().replace("(i32.const 0x21)", "(i32.const 0x3f)"))
                deadline = time.monotonic() + 120
                while pm.hook.transform(text="hi") != ["HI?"]:
                    assert time.monotonic() < deadline, "the host never ran the new build"
                    time.sleep(0.02)
            finally:
                watcher.stop()
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=30)
