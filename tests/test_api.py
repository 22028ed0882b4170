"""The public API is exactly what __all__ says, and nothing else imports wasmtime."""

from __future__ import annotations

import ast
from pathlib import Path

import airssys_plugins

PUBLIC = {
    "SupervisorStatus",
    "ReloadError",
    "UpgradeHeld",
    "Watcher",
    "FailurePolicy",
    "HookFailures",
    "PluginStatus",
    "PluginUnavailable",
    "RestartPolicy",
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
    "current_plugin",
    "ArgumentError",
    "Contract",
    "ContractMismatchError",
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


def test_only_the_runtime_layer_imports_wasmtime() -> None:
    """`import wasmtime` stays inside airssys_plugins/_runtime."""
    package = Path(airssys_plugins.__file__).parent
    offenders = []
    for path in package.rglob("*.py"):
        if "_runtime" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            if any(n == "wasmtime" or n.startswith("wasmtime.") for n in names):
                offenders.append(str(path.relative_to(package)))
    assert offenders == []
