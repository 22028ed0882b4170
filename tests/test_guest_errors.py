"""A failing guest call: what the guest wrote to stderr, the named wasm frames, and what
the restart policy does next."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pluggy
import pytest

from airssys_plugins import (
    PluginHost,
    PluginTimeout,
    PluginTrap,
    PluginUnavailable,
    RestartPolicy,
)

from . import probe_hooks
from .demo import PACKAGE
from .kitchen_hooks import PACKAGE as KITCHEN
from .kitchen_hooks import KitchenHooks
from .test_rust_guest import rust_wasi_wasm  # noqa: F401  # the fixture, built once per session


def test_python_exception_reaches_the_host_with_its_type_and_message(
    kitchen_wasm: Path,
) -> None:
    """A raising Python hook: the exception line is in the message, the whole stderr in
    guest_output, without the host configuring logging."""
    pm = pluggy.PluginManager("kitchen")
    pm.add_hookspecs(KitchenHooks)
    with PluginHost(pm, package=KITCHEN) as host:
        host.load(kitchen_wasm, name="kitchen")
        assert pm.hook.echo_u8(x=7) == [7]
        with pytest.raises(PluginTrap) as caught:
            pm.hook.crash(x=3)
        message = str(caught.value)
        assert "the guest wrote to stderr" in message
        assert "RuntimeError: kitchen guest crash(3) on purpose" in message
        assert ", line 161, in crash" in message  # where, in the guest source
        assert "RUST_BACKTRACE" not in message  # the runtime's note says nothing useful
        output = caught.value.guest_output
        assert output[0] == "Traceback (most recent call last):"
        assert "RuntimeError: kitchen guest crash(3) on purpose" in output
        # the guest function named in the component's name section, not the abort frames
        assert "test:kitchen/crash@1.0.0#crash" in message
        assert "std::process::abort" not in message
        # the next failure shows only what its own call wrote
        with pytest.raises(PluginTrap) as again:
            pm.hook.crash(x=4)
        assert "crash(3)" not in str(again.value)
        assert sum(line.startswith("Traceback") for line in again.value.guest_output) == 1


def test_wasm_backtrace_names_guest_functions_and_folds_recursion(
    demo: Callable[..., Path], host: PluginHost, pm: pluggy.PluginManager
) -> None:
    """A stack overflow shows the named guest function once with its count, not 20 lines;
    a function without a name in the name section is not shown."""
    host.load(demo(funcs=["recurse", "fail"]))
    with pytest.raises(PluginTrap) as caught:
        pm.hook.recurse(n=100_000_000)
    message = str(caught.value)
    assert "\nwasm backtrace, innermost first:\n  <unknown>!rec (x" in message, message
    assert message.count("!rec") == 1
    with pytest.raises(PluginTrap) as failed:
        pm.hook.fail(x=1)
    assert failed.value.guest_output == ()  # a WAT guest without WASI writes nothing
    assert "the guest wrote" not in str(failed.value)
    assert "wasm function" not in str(failed.value)


def test_failure_messages_say_what_the_restart_policy_does_next(
    demo: Callable[..., Path], pm: pluggy.PluginManager
) -> None:
    """A first failure says a fresh instance runs next; a second in a row says the calls
    are refused for the backoff (what the next call then raises); the last one opening the
    circuit says so."""
    policy = RestartPolicy(max_failures=3, backoff_base=0.2, cooldown=None)
    with PluginHost(pm, package=PACKAGE, restart=policy, timeout=0.05) as host:
        host.load(demo(funcs=["spin", "fail"]), name="flaky")
        with pytest.raises(PluginTimeout) as timed_out:
            pm.hook.spin()
        assert str(timed_out.value).endswith(
            "its instance was replaced; the next call runs on a fresh instance"
        )
        with pytest.raises(PluginTrap) as trapped:
            pm.hook.fail(x=1)
        message = str(trapped.value)
        assert "starts fresh" not in message
        assert message.endswith(
            "; after 2 failures in a row its calls are refused for 0.20 s (restart backoff), "
            "then run on a fresh instance"
        )
        with pytest.raises(PluginUnavailable, match=r"retry in 0\.\d\d s"):
            pm.hook.fail(x=1)  # as the message said
        time.sleep(0.25)
        with pytest.raises(PluginTrap) as opened:
            pm.hook.fail(x=1)
        assert str(opened.value).endswith(
            "its circuit is now open (3 failures within 60 s): pluggy skips it and direct "
            "calls are refused until host.unblock('flaky')"
        )
        assert pm.hook.fail(x=1) == []  # skipped, as it said


def test_rust_panic_message_reaches_the_host(rust_wasi_wasm: Path) -> None:  # noqa: F811
    """A Rust guest's panic (written to stderr by std) is in the trap's message."""
    pm = pluggy.PluginManager("probe")
    pm.add_hookspecs(probe_hooks.ProbeHooks)
    with PluginHost(pm, package=probe_hooks.PACKAGE) as host:
        host.load(rust_wasi_wasm, name="rust-wasi")
        with pytest.raises(PluginTrap) as caught:
            pm.hook.read_file(path="/panic")
    message = str(caught.value)
    assert "asked to panic while reading /panic" in message, message
    assert any("panicked at" in line for line in caught.value.guest_output)
    assert "RUST_BACKTRACE" not in message


def test_javascript_exception_reaches_the_host(tmp_path: Path) -> None:
    """A jco (QuickJS) guest that throws: the Error's message and where it was thrown are
    in the trap message and guest_output."""
    import subprocess
    import sys

    from .authoring_hooks import PACKAGE as AUTHORING
    from .authoring_hooks import AuthoringHooks

    project = tmp_path / "throwing-js"
    cli = [sys.executable, "-m", "airssys_plugins"]
    contract = "tests.authoring_hooks:AuthoringHooks"
    root = Path(__file__).parent.parent
    new = [*cli, "new", "throwing-js", "--lang", "js", "--contract", contract]
    subprocess.run([*new, "--dir", str(project)], check=True, cwd=root, capture_output=True)
    app = project / "app.js"
    source = app.read_text()
    stub = '  greet(name) {\n    // TODO: implement this hook.\n    return "";\n  },'
    assert stub in source
    app.write_text(
        source.replace(
            stub, "  greet(name) {\n    throw new Error(`greet(${name}) failed on purpose`);\n  },"
        )
    )
    built = subprocess.run([*cli, "build", str(project)], cwd=root, capture_output=True, text=True)
    assert built.returncode == 0, built.stderr
    pm = pluggy.PluginManager("authoring")
    pm.add_hookspecs(AuthoringHooks)
    with PluginHost(pm, package=AUTHORING) as host:
        host.load(project)
        with pytest.raises(PluginTrap) as caught:
            pm.hook.greet(name="Bob")
    message = str(caught.value)
    assert "the guest wrote to stderr" in message
    assert "greet(Bob) failed on purpose" in message
    assert "at greet (/app.js:" in "\n".join(caught.value.guest_output)
