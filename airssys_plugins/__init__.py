"""airssys-plugins: sandboxed WebAssembly components as pluggy plugins.

Declare pluggy hookspecs, hand the PluginManager to a :class:`PluginHost`, load
components; ``pm.hook.<name>(...)`` then calls Python plugins and components alike.
"""

# The annotation vocabulary and the errors load eagerly: hookspec modules import them, and
# they are pure Python. Everything else (the runtime, which loads wasmtime's native library,
# discovery, the HTTP and SQLite host interfaces) loads on first use: importing
# airssys_plugins for `u32` in a hookspec module must stay cheap.
from typing import TYPE_CHECKING, Any

from ._annotations import Err as Err
from ._annotations import Ok as Ok
from ._annotations import Result as Result
from ._annotations import char as char
from ._annotations import f32 as f32
from ._annotations import f64 as f64
from ._annotations import s8 as s8
from ._annotations import s16 as s16
from ._annotations import s32 as s32
from ._annotations import s64 as s64
from ._annotations import u8 as u8
from ._annotations import u16 as u16
from ._annotations import u32 as u32
from ._annotations import u64 as u64
from ._annotations import variant as variant
from ._errors import ArgumentError as ArgumentError
from ._errors import CapabilityDenied as CapabilityDenied
from ._errors import ContractMismatchError as ContractMismatchError
from ._errors import EngineConfigError as EngineConfigError
from ._errors import HookCallError as HookCallError
from ._errors import HookspecError as HookspecError
from ._errors import HostFunctionError as HostFunctionError
from ._errors import Mismatch as Mismatch
from ._errors import PluginABIError as PluginABIError
from ._errors import PluginConflictError as PluginConflictError
from ._errors import PluginError as PluginError
from ._errors import PluginExit as PluginExit
from ._errors import PluginLimitExceeded as PluginLimitExceeded
from ._errors import PluginLoadError as PluginLoadError
from ._errors import PluginResultError as PluginResultError
from ._errors import PluginTimeout as PluginTimeout
from ._errors import PluginTrap as PluginTrap

if TYPE_CHECKING:
    from ._audit import AuditEvent as AuditEvent
    from ._audit import AuditLog as AuditLog
    from ._capabilities import Capabilities as Capabilities
    from ._capabilities import FileGrant as FileGrant
    from ._capabilities import Limits as Limits
    from ._capabilities import Origin as Origin
    from ._contract import Contract as Contract
    from ._contract import HookContract as HookContract
    from ._contract import WitBinding as WitBinding
    from ._contract import wit_binding as wit_binding
    from ._discovery import Discovery as Discovery
    from ._discovery import LoadReport as LoadReport
    from ._discovery import PluginShadowedWarning as PluginShadowedWarning
    from ._discovery import PluginSource as PluginSource
    from ._discovery import PluginStatus as PluginStatus
    from ._discovery import discover_plugins as discover_plugins
    from ._host import HookOptions as HookOptions
    from ._host import PluginHost as PluginHost
    from ._host import ReloadError as ReloadError
    from ._host import UpgradeHeld as UpgradeHeld
    from ._host import WasmPlugin as WasmPlugin
    from ._host import Watcher as Watcher
    from ._hostapi import PluginContext as PluginContext
    from ._hostapi import current_plugin as current_plugin
    from ._lockfile import IntegrityError as IntegrityError
    from ._lockfile import LockEntry as LockEntry
    from ._lockfile import Lockfile as Lockfile
    from ._manifest import ContractTarget as ContractTarget
    from ._manifest import Manifest as Manifest
    from ._manifest import ManifestError as ManifestError
    from ._manifest import ManifestProblem as ManifestProblem
    from ._manifest import Preopen as Preopen
    from ._manifest import RequestedCapabilities as RequestedCapabilities
    from ._manifest import RequestedLimits as RequestedLimits
    from ._runtime import configure_engine as configure_engine
    from ._supervision import FailurePolicy as FailurePolicy
    from ._supervision import HookFailures as HookFailures
    from ._supervision import PluginUnavailable as PluginUnavailable
    from ._supervision import RestartPolicy as RestartPolicy
    from ._supervision import SupervisorStatus as SupervisorStatus

_LAZY: dict[str, tuple[str, str]] = {
    "AuditEvent": ("._audit", "AuditEvent"),
    "AuditLog": ("._audit", "AuditLog"),
    "Capabilities": ("._capabilities", "Capabilities"),
    "FileGrant": ("._capabilities", "FileGrant"),
    "Limits": ("._capabilities", "Limits"),
    "Origin": ("._capabilities", "Origin"),
    "Contract": ("._contract", "Contract"),
    "HookContract": ("._contract", "HookContract"),
    "WitBinding": ("._contract", "WitBinding"),
    "wit_binding": ("._contract", "wit_binding"),
    "Discovery": ("._discovery", "Discovery"),
    "LoadReport": ("._discovery", "LoadReport"),
    "PluginShadowedWarning": ("._discovery", "PluginShadowedWarning"),
    "PluginSource": ("._discovery", "PluginSource"),
    "PluginStatus": ("._discovery", "PluginStatus"),
    "discover_plugins": ("._discovery", "discover_plugins"),
    "HookOptions": ("._host", "HookOptions"),
    "PluginHost": ("._host", "PluginHost"),
    "ReloadError": ("._host", "ReloadError"),
    "UpgradeHeld": ("._host", "UpgradeHeld"),
    "WasmPlugin": ("._host", "WasmPlugin"),
    "Watcher": ("._host", "Watcher"),
    "PluginContext": ("._hostapi", "PluginContext"),
    "current_plugin": ("._hostapi", "current_plugin"),
    "IntegrityError": ("._lockfile", "IntegrityError"),
    "LockEntry": ("._lockfile", "LockEntry"),
    "Lockfile": ("._lockfile", "Lockfile"),
    "ContractTarget": ("._manifest", "ContractTarget"),
    "Manifest": ("._manifest", "Manifest"),
    "ManifestError": ("._manifest", "ManifestError"),
    "ManifestProblem": ("._manifest", "ManifestProblem"),
    "Preopen": ("._manifest", "Preopen"),
    "RequestedCapabilities": ("._manifest", "RequestedCapabilities"),
    "RequestedLimits": ("._manifest", "RequestedLimits"),
    "configure_engine": ("._runtime", "configure_engine"),
    "FailurePolicy": ("._supervision", "FailurePolicy"),
    "HookFailures": ("._supervision", "HookFailures"),
    "PluginUnavailable": ("._supervision", "PluginUnavailable"),
    "RestartPolicy": ("._supervision", "RestartPolicy"),
    "SupervisorStatus": ("._supervision", "SupervisorStatus"),
}


def __getattr__(name: str) -> Any:
    try:
        module_name, attr = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    import importlib

    value = getattr(importlib.import_module(module_name, __name__), attr)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


__version__ = "0.1.0"

__all__ = [
    "ArgumentError",
    "AuditEvent",
    "AuditLog",
    "Capabilities",
    "CapabilityDenied",
    "Contract",
    "ContractMismatchError",
    "ContractTarget",
    "Discovery",
    "EngineConfigError",
    "Err",
    "FailurePolicy",
    "FileGrant",
    "HookCallError",
    "HookContract",
    "HookFailures",
    "HookOptions",
    "HookspecError",
    "HostFunctionError",
    "IntegrityError",
    "Limits",
    "LoadReport",
    "LockEntry",
    "Lockfile",
    "Manifest",
    "ManifestError",
    "ManifestProblem",
    "Mismatch",
    "Ok",
    "Origin",
    "PluginABIError",
    "PluginConflictError",
    "PluginContext",
    "PluginError",
    "PluginExit",
    "PluginHost",
    "PluginLimitExceeded",
    "PluginLoadError",
    "PluginResultError",
    "PluginShadowedWarning",
    "PluginSource",
    "PluginStatus",
    "PluginTimeout",
    "PluginTrap",
    "PluginUnavailable",
    "Preopen",
    "ReloadError",
    "RequestedCapabilities",
    "RequestedLimits",
    "RestartPolicy",
    "Result",
    "SupervisorStatus",
    "UpgradeHeld",
    "WasmPlugin",
    "Watcher",
    "WitBinding",
    "__version__",
    "char",
    "configure_engine",
    "current_plugin",
    "discover_plugins",
    "f32",
    "f64",
    "s16",
    "s32",
    "s64",
    "s8",
    "u16",
    "u32",
    "u64",
    "u8",
    "variant",
    "wit_binding",
]
