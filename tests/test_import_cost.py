"""What a new process imports: creating a host, loading a plugin and calling a hook must not
pull in the modules of features it does not use (asyncio, TOML, sockets, signing, the
authoring and discovery sides...); those features still work, importing them on first use.

Each check runs a fresh interpreter (``-X importtime``), so a failure names the chain of
modules that imported the unwanted one.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

#: The basic path: pluggy, the hookspecs, a host, one warm Python plugin, one call.
BASIC_PATH = """
import sys
import pluggy
from airssys_plugins import PluginHost
from tests.kitchen_hooks import KitchenHooks, PACKAGE
pm = pluggy.PluginManager("kitchen")
pm.add_hookspecs(KitchenHooks)
host = PluginHost(pm, package=PACKAGE)
host.load({wasm!r}, name="kitchen")
assert pm.hook.echo_string(x="hi") == ["hi"]
host.close()
"""

#: Not imported by the basic path: the standard library's and third-party modules of
#: features it does not use, and our own modules of those features.
NOT_ON_BASIC_PATH = (
    # awaited hooks and cancellation (host.aio, runtime.cancel), and what asyncio imports
    "asyncio",
    "concurrent.futures",
    "selectors",
    "ssl",
    "socket",
    "subprocess",
    # grants files, manifests, lockfiles, settings (TOML)
    "tomllib",
    "tomlkit",
    # the kv store, HTTP, signatures, scale-out, CLI output
    "sqlite3",
    "http.client",
    "urllib.request",
    "email",
    "cryptography",
    "sigstore",
    "dask",
    "distributed",
    "cloudpickle",
    "rich",
    "argparse",
    "multiprocessing",
    "zipfile",
    # the default data directory (found when a plugin's data or kv needs it)
    "platformdirs",
    # serializers and digests: the cache's notes are marshal's, a file's digest is the
    # digest index's, signatures and the audit log's JSON are made only when asked for
    "hashlib",
    "_hashlib",
    "pickle",
    "json",
    "base64",
    "difflib",
    "queue",
    # our own modules of other features
    "airssys_plugins.host.aio",
    "airssys_plugins.host.composition",
    "airssys_plugins.host.isolation",
    "airssys_plugins.host.messaging",
    "airssys_plugins.authoring",
    "airssys_plugins.cli",
    "airssys_plugins.discovery",
    "airssys_plugins.testing",
    "airssys_plugins.contract.bindgen",
    "airssys_plugins.contract.info",
    "airssys_plugins.contract.wit_json",
    "airssys_plugins.host.loading",
    "airssys_plugins.host.scaleout",
    "airssys_plugins.host.shipment",
    "airssys_plugins.host.status",
    "airssys_plugins.host.upgrades",
    "airssys_plugins.host.watch",
    "airssys_plugins.host.worker",
    "airssys_plugins.policy.tables",
    "airssys_plugins.runtime.describe",
    "airssys_plugins.runtime.measure",
    "airssys_plugins.runtime.wit_types",
    # the binary rewriter: a warm load decodes what it added (runtime.plans)
    "airssys_plugins.runtime.relift",
    "airssys_plugins.runtime.rawbytes",
    "airssys_plugins.runtime.rawimports",
    # resource handles: hooks and host functions that pass none
    "airssys_plugins.runtime.resources",
    # signature files and their checks (a host under the "ignore" policy needs the
    # policy records only, in policy.signing)
    "airssys_plugins.policy.sigfiles",
    # the built-in host interfaces' code (log, config, kv, http, messaging): linked by name
    "airssys_plugins.host.builtins",
)

_IMPORTTIME = re.compile(r"import time:\s+\d+ \|\s+\d+ \|( *)(\S+)")


def import_chains(importtime: str) -> dict[str, str]:
    """Module -> ``module <- its importer <- ...`` from ``python -X importtime`` output
    (which lists each module after the modules it imported, indented one level deeper)."""
    rows = [(len(m[1]) // 2, m[2]) for m in map(_IMPORTTIME.match, importtime.splitlines()) if m]
    chains: dict[str, str] = {}
    for i, (depth, name) in enumerate(rows):
        chain = [name]
        for outer, importer in rows[i + 1 :]:
            if outer < depth:
                chain.append(importer)
                depth = outer
        chains[name] = " <- ".join(chain)
    return chains


def run_fresh(code: str) -> tuple[set[str], dict[str, str], str]:
    """Run ``code`` in a new interpreter; the modules it left in ``sys.modules``, the
    import chain of each, and its last line of output."""
    code += "\n_modules = sorted(sys.modules)\nimport json\nprint(json.dumps(_modules))\n"
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    lines = proc.stdout.strip().splitlines()
    return set(json.loads(lines[-1])), import_chains(proc.stderr), "\n".join(lines[:-1])


def unwanted(modules: set[str], chains: dict[str, str], names: tuple[str, ...]) -> list[str]:
    """The ``names`` (or submodules of them) in ``modules``, each with who imported it;
    a module imported through another one found is left to that one's chain."""

    def listed(module: str) -> bool:
        return any(module == n or module.startswith(n + ".") for n in names)

    found = sorted(m for m in modules if listed(m))
    report = []
    for module in found:
        chain = chains.get(module, module + " (imported before -X importtime reports)")
        if not any(listed(importer) for importer in chain.split(" <- ")[1:]):
            report.append(chain)
    return report


@pytest.fixture(scope="module")
def basic_path(kitchen_wasm: Path) -> str:
    code = BASIC_PATH.format(wasm=str(kitchen_wasm))
    run_fresh(code)  # the first load fills the compile cache: measure a warm load
    return code


def test_the_basic_path_leaves_unused_features_unimported(basic_path: str) -> None:
    """Creating a host, loading a warm Python plugin and calling a hook imports none of
    the modules of features it does not use."""
    modules, chains, _ = run_fresh(basic_path)
    assert "airssys_plugins.host.plugin_host" in modules  # the path did run
    found = unwanted(modules, chains, NOT_ON_BASIC_PATH)
    assert not found, "imported by the basic path, though not used by it:\n" + "\n".join(found)


def test_the_package_declares_its_records_without_importing_attrs() -> None:
    """The package's records go through airssys_plugins._attrs (attrs' API, cheap at
    import): creating a host, with every module a load and a call use, imports no attrs;
    hookspecs that use attrs classes still import it themselves."""
    code = """
import json, sys
import pluggy
from airssys_plugins import PluginHost
import airssys_plugins.host.bridge, airssys_plugins.runtime.instance, airssys_plugins.runtime.image
spec = pluggy.HookspecMarker("demo")
class Spec:
    @spec
    def shout(self, text: str) -> str: ...
pm = pluggy.PluginManager("demo")
pm.add_hookspecs(Spec)
host = PluginHost(pm, package="demo:hooks")
print(sorted(host.contract.hooks), sorted(m for m in sys.modules if m.split(".")[0] in ("attr", "attrs")))
"""
    _, _, out = run_fresh(code)
    assert out == "['shout'] []"


def test_lazy_features_work_when_first_used(basic_path: str) -> None:
    """After the basic path, an awaited hook call imports asyncio and host.aio and works;
    the cancellation error is one class, an asyncio.CancelledError; the default data
    directory is found (platformdirs); a grants file is read (TOML); a status file is
    written (host.messaging imported then)."""
    code = (
        basic_path.replace("host.close()\n", "")
        + """
assert "asyncio" not in sys.modules and "tomllib" not in sys.modules
assert "airssys_plugins.host.aio" not in sys.modules
assert "airssys_plugins.host.messaging" not in sys.modules
import asyncio, tempfile, pathlib
from airssys_plugins import PluginCancelled, Capabilities, StatusFile
from airssys_plugins.runtime import cancel
assert PluginCancelled is cancel.PluginCancelled
assert issubclass(PluginCancelled, asyncio.CancelledError)
print("ahook", asyncio.run(host.ahook.echo_string(x="awaited")))
assert "platformdirs" not in sys.modules
print("data", host.data_dir.name)
host.close()
tmp = pathlib.Path(tempfile.mkdtemp())
(tmp / "grants.toml").write_text('[plugins.kitchen]\\nenv = ["HOME"]\\n')
granted = PluginHost(pm, package=PACKAGE, grants=tmp / "grants.toml")
print("grants", sorted(granted.grants["kitchen"].env))
granted.messaging.record_status(StatusFile(tmp / "status.json"), app="kitchen")
granted.close()
print("status", (tmp / "status.json").is_file())
"""
    )
    modules, _, out = run_fresh(code)
    assert out.splitlines() == [
        "ahook ['awaited']",
        "data plugin-data",
        "grants ['HOME']",
        "status True",
    ]
    assert {"asyncio", "tomllib", "airssys_plugins.host.status", "platformdirs"} <= modules
    assert {"airssys_plugins.host.aio", "airssys_plugins.host.messaging"} <= modules


def test_the_cancellation_error_is_one_class_for_every_thread() -> None:
    """``PluginCancelled`` is made on first access; threads racing for it get one class
    (what one raises, another catches)."""
    code = """
import json, sys, threading
from airssys_plugins.runtime import cancel
seen, start = [], threading.Barrier(8)
def get():
    start.wait()
    seen.append(cancel.PluginCancelled)
threads = [threading.Thread(target=get) for _ in range(8)]
for t in threads: t.start()
for t in threads: t.join()
print(len(seen), len(set(map(id, seen))), seen[0].__module__, seen[0].__qualname__)
"""
    _, _, out = run_fresh(code)
    assert out == "8 1 airssys_plugins.runtime.cancel PluginCancelled"


def test_the_runtime_package_imports_its_modules_on_first_use() -> None:
    """``import airssys_plugins.runtime`` loads no wasmtime; each public name imports its
    own module when first read."""
    code = """
import json, sys
import airssys_plugins.runtime as runtime
before = "wasmtime" in sys.modules
names = sorted(runtime.__all__) == dir(runtime) and runtime.TRAP_TABLE is not None
print(before, names, "airssys_plugins.runtime.instance" in sys.modules)
try:
    runtime.nothing_here
except AttributeError as exc:
    print(exc)
"""
    _, _, out = run_fresh(code)
    assert out.splitlines() == [
        "False True True",
        "module 'airssys_plugins.runtime' has no attribute 'nothing_here'",
    ]


def test_a_failure_names_who_imported_the_module() -> None:
    """The failure message of the checks above gives the import chain of a module."""
    modules, chains, _ = run_fresh("import json, sys\nimport airssys_plugins.host.status")
    found = unwanted(modules, chains, ("socket",))
    assert found == ["socket <- airssys_plugins.host.status"]


def test_the_basic_path_imports_logging_only_to_show_a_record(basic_path: str) -> None:
    """The package logs through airssys_plugins._log: until a record could be shown
    (WARNING and above, logging unconfigured), ``logging`` is not imported; a warning then
    reaches stderr as logging's last-resort handler prints it, and later records go
    through logging."""
    code = basic_path + (
        "imported = 'logging' in sys.modules\n"
        "from airssys_plugins import _log\n"
        "log = _log.getLogger('airssys_plugins.test')\n"
        "log.info('not shown'); log.debug('not shown either')\n"
        "before = 'logging' in sys.modules\n"
        "log.warning('shown %s', 1)\n"
        "print(imported, before, 'logging' in sys.modules, log.isEnabledFor(_log.INFO))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code + "\nimport json\nprint(json.dumps(sorted(sys.modules)))\n"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert proc.stdout.splitlines()[0] == "False False True False"
    assert proc.stderr.strip().splitlines()[-1] == "shown 1"


def test_a_record_names_the_caller_not_the_logger_stand_in(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """With logging imported, each call goes to the real logger with the caller's file,
    function and line, as if the module had called logging itself."""
    from airssys_plugins import _log

    log = _log.getLogger("airssys_plugins.test")
    assert log is _log.getLogger("airssys_plugins.test")
    with caplog.at_level("DEBUG", logger="airssys_plugins.test"):
        line = sys._getframe().f_lineno + 1
        for emit in (log.debug, log.info, log.warning, log.error):
            emit("via %s", emit.__name__)
        log.log(_log.INFO, "at a level")
        try:
            raise KeyError("k")
        except KeyError:
            log.exception("with its traceback")
    assert [r.getMessage() for r in caplog.records] == [
        "via debug",
        "via info",
        "via warning",
        "via error",
        "at a level",
        "with its traceback",
    ]
    assert caplog.records[-1].exc_info is not None
    assert caplog.records[-1].exc_info[0] is KeyError
    for record in caplog.records:
        assert record.pathname == __file__
        assert record.funcName == "test_a_record_names_the_caller_not_the_logger_stand_in"
    assert caplog.records[0].lineno == line + 1
    assert caplog.records[-2].lineno == line + 2


def test_the_basic_path_maps_no_lifecycle_or_subscriber_signature(basic_path: str) -> None:
    """The lifecycle exports', the subscriber export's and the built-in host functions'
    signatures are mapped at first use (the built-in functions' code is not even imported):
    a component exporting and importing none of them, in a new process, maps none; asking
    for them then gives what they are."""
    code = basic_path + (
        "from airssys_plugins.host import interfaces\n"
        "print(interfaces.lifecycle_signatures.cache_info().currsize,"
        " interfaces.subscriber_signature.cache_info().currsize,"
        " 'airssys_plugins.host.builtins' in sys.modules)\n"
        "print(interfaces.SUBSCRIBER.render(), sorted(interfaces.LIFECYCLE))\n"
    )
    _, _, out = run_fresh(code)
    assert out.splitlines()[-2:] == [
        "0 0 False",
        "func(topic: string, payload: list<u8>) -> option<list<u8>> ['health', 'init', 'shutdown']",
    ]
