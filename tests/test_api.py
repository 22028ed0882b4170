"""The public API is exactly what __all__ says, and nothing else imports wasmtime."""

from __future__ import annotations

import ast
from pathlib import Path

import airssys_plugins

PUBLIC = {
    "Borrow",
    "Own",
    "ResourceProxy",
    "StaleResourceError",
    "guest_resource",
    "resource",
    "LinkCycleError",
    "LinkError",
    "LinkInfo",
    "LinkedCallError",
    "Counters",
    "DeadLetter",
    "MailboxFull",
    "Message",
    "Messaging",
    "MessagingError",
    "MessagingPolicy",
    "NoReply",
    "Subscription",
    "TopicDenied",
    "StatusFile",
    "StatusFileError",
    "AsyncHookCaller",
    "AsyncHookError",
    "AsyncHooks",
    "PluginCancelled",
    "SupervisorStatus",
    "ReloadError",
    "UpgradeHeld",
    "Watcher",
    "FailurePolicy",
    "HookFailures",
    "PluginStatus",
    "PluginUnavailable",
    "RestartPolicy",
    "LoadProgress",
    "Reliability",
    "SandboxPolicy",
    "PublicKey",
    "SignatureError",
    "Signatures",
    "SigningKeyError",
    "SigningUnavailable",
    "SigstoreIdentity",
    "TrustedKeys",
    "BatchError",
    "BatchReport",
    "BatchResult",
    "BatchRun",
    "LocalPool",
    "NotShippable",
    "RemoteError",
    "WorkerLost",
    "WorkerSetupError",
    "ContractTarget",
    "Discovery",
    "IntegrityError",
    "LoadReport",
    "LockEntry",
    "Lockfile",
    "Manifest",
    "ManifestError",
    "ManifestProblem",
    "PluginShadowedWarning",
    "PluginSource",
    "Preopen",
    "RequestedCapabilities",
    "RequestedLimits",
    "discover_plugins",
    "AuditEvent",
    "AuditLog",
    "Capabilities",
    "CapabilityDenied",
    "EngineConfigError",
    "FileGrant",
    "HostFunctionError",
    "Limits",
    "Origin",
    "PluginABIError",
    "PluginContext",
    "PluginExit",
    "PluginLimitExceeded",
    "configure_engine",
    "keep_compiled",
    "release_compiled",
    "current_plugin",
    "ArgumentError",
    "Contract",
    "ContractMismatchError",
    "ContractVersion",
    "Err",
    "HookCallError",
    "HookContract",
    "HookOptions",
    "HookspecError",
    "Mismatch",
    "Ok",
    "PluginConflictError",
    "PluginError",
    "PluginHost",
    "PluginLoadError",
    "PluginResultError",
    "PluginTimeout",
    "PluginTrap",
    "Result",
    "WasmPlugin",
    "WitBinding",
    "__version__",
    "char",
    "f32",
    "f64",
    "s8",
    "s16",
    "s32",
    "s64",
    "u8",
    "u16",
    "u32",
    "u64",
    "variant",
    "wit_binding",
    "WitBindingError",
    "WORLD_ROOT",
    "Some",
}


def test_public_names_are_pinned() -> None:
    """Adding or removing a public name is a deliberate change to this list."""
    assert set(airssys_plugins.__all__) == PUBLIC
    for name in PUBLIC:
        assert hasattr(airssys_plugins, name)


def test_errors_share_one_root() -> None:
    """Every exception class exported derives from PluginError (warning categories aside)."""
    for name in PUBLIC:
        obj = getattr(airssys_plugins, name)
        if (
            isinstance(obj, type)
            and issubclass(obj, BaseException)
            and not issubclass(obj, Warning)
        ):
            assert issubclass(obj, airssys_plugins.PluginError), name


def test_import_linter_contracts_hold() -> None:
    """The layer, wasmtime-only-in-runtime and no-cycle contracts in pyproject.toml hold."""
    import subprocess
    import sys

    root = Path(airssys_plugins.__file__).parent.parent
    lint = Path(sys.executable).with_name("lint-imports")
    done = subprocess.run(
        [str(lint), "--no-cache"], cwd=root, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "3 kept, 0 broken" in done.stdout, done.stdout


def test_no_import_cycles_at_all() -> None:
    """No module reaches itself through imports, deferred and TYPE_CHECKING ones counted.

    import-linter's acyclic_siblings contract compares siblings; this also catches a module
    that imports its own package's ``__init__`` which imports it back.
    """
    import grimp

    graph = grimp.build_graph("airssys_plugins", cache_dir=None)
    cycles = []
    for module in sorted(graph.modules):
        if module == "airssys_plugins":  # the public face imports everything, nothing imports it
            continue
        for imported in graph.find_modules_directly_imported_by(module):
            if graph.find_shortest_chain(importer=imported, imported=module):
                cycles.append(f"{module} -> {imported}")
    assert cycles == []
    assert not graph.find_modules_that_directly_import("airssys_plugins")


def test_atomic_write_replaces_whole_files_and_leaves_no_temporaries(tmp_path: Path) -> None:
    """atomic_write creates parents, replaces content, and cleans up when writing fails."""
    import pytest

    from airssys_plugins._files import atomic_write

    target = tmp_path / "a" / "b.toml"
    assert atomic_write(target, "one") == target
    atomic_write(target, b"two", durable=False)
    assert target.read_bytes() == b"two"
    with pytest.raises(TypeError):
        atomic_write(target, 3)  # type: ignore[arg-type]
    assert target.read_bytes() == b"two"
    assert sorted(p.name for p in target.parent.iterdir()) == ["b.toml"]


def test_import_loads_neither_wasmtime_nor_the_layers() -> None:
    """`import airssys_plugins` is cheap: no wasmtime, no host or runtime modules."""
    import subprocess
    import sys

    code = (
        "import sys, airssys_plugins; "
        "print(sorted(m for m in sys.modules if m.startswith(('wasmtime', 'airssys_plugins.'))))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_version_comes_from_the_package_metadata() -> None:
    """__version__ is the installed distribution's version, not a second copy of it."""
    from importlib.metadata import version

    assert airssys_plugins.__version__ == version("airssys-plugins")


def test_the_architecture_page_maps_every_module() -> None:
    """docs/explanation/architecture.md names every module of the package in its module map."""
    package = Path(airssys_plugins.__file__).parent
    page = (package.parent / "docs" / "explanation" / "architecture.md").read_text()
    missing = [
        str(path.relative_to(package))
        for path in sorted(package.rglob("*.py"))
        if path.name not in {"__init__.py", "__main__.py"} and f"`{path.name}`" not in page
    ]
    assert missing == []


def test_no_class_grows_past_400_lines() -> None:
    """A class past 400 lines is doing several jobs: give the new one a collaborator."""
    package = Path(airssys_plugins.__file__).parent
    big = []
    for path in sorted(package.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef):
                lines = (node.end_lineno or node.lineno) - node.lineno + 1
                if lines > 400:
                    big.append(f"{path.relative_to(package)}:{node.name} ({lines} lines)")
    assert big == []


def test_only_hookexec_touches_pluggys_private_names() -> None:
    """pluggy's private attributes are used in host/hookexec.py only (one place to fix on
    a pluggy upgrade)."""
    package = Path(airssys_plugins.__file__).parent
    private = {"_inner_hookexec", "_hookimpls", "_call_history"}
    users = set()
    for path in sorted(package.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = set()
            if isinstance(node, ast.Attribute):
                names.add(node.attr)
            elif isinstance(node, ast.Constant) and isinstance(node.value, str):
                names.add(node.value)
            if names & private:
                users.add(str(path.relative_to(package)))
    assert users == {"host/hookexec.py"}
