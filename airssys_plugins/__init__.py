"""airssys-plugins: sandboxed WebAssembly components as pluggy plugins.

Declare pluggy hookspecs, hand the PluginManager to a :class:`PluginHost`, load
components; ``pm.hook.<name>(...)`` then calls Python plugins and components alike.
"""

# Every public name is imported on first use: the runtime loads wasmtime's native library,
# discovery reads distribution metadata, the host interfaces pull in HTTP and SQLite, and
# importing airssys_plugins for `u32` in a hookspec module must stay cheap. The block below
# is written once: type checkers read it as imports, and at run time `_exports()` reads the
# same lines as the table behind `__getattr__`, `__dir__` and `__all__`.
from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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
    from ._errors import StaleResourceError as StaleResourceError
    from .contract.annotations import Borrow as Borrow
    from .contract.annotations import Err as Err
    from .contract.annotations import Ok as Ok
    from .contract.annotations import Own as Own
    from .contract.annotations import Result as Result
    from .contract.annotations import Some as Some
    from .contract.annotations import char as char
    from .contract.annotations import f32 as f32
    from .contract.annotations import f64 as f64
    from .contract.annotations import resource as resource
    from .contract.annotations import s8 as s8
    from .contract.annotations import s16 as s16
    from .contract.annotations import s32 as s32
    from .contract.annotations import s64 as s64
    from .contract.annotations import u8 as u8
    from .contract.annotations import u16 as u16
    from .contract.annotations import u32 as u32
    from .contract.annotations import u64 as u64
    from .contract.annotations import variant as variant
    from .contract.mapping import Contract as Contract
    from .contract.mapping import HookContract as HookContract
    from .contract.mapping import WitBinding as WitBinding
    from .contract.mapping import WitBindingError as WitBindingError
    from .contract.mapping import wit_binding as wit_binding
    from .contract.versions import ContractVersion as ContractVersion
    from .contract.wit import WORLD_ROOT as WORLD_ROOT
    from .discovery.lockfile import IntegrityError as IntegrityError
    from .discovery.lockfile import LockEntry as LockEntry
    from .discovery.lockfile import Lockfile as Lockfile
    from .discovery.manifest import ContractTarget as ContractTarget
    from .discovery.manifest import Manifest as Manifest
    from .discovery.manifest import ManifestError as ManifestError
    from .discovery.manifest import ManifestProblem as ManifestProblem
    from .discovery.manifest import Preopen as Preopen
    from .discovery.manifest import RequestedCapabilities as RequestedCapabilities
    from .discovery.manifest import RequestedLimits as RequestedLimits
    from .discovery.sources import Discovery as Discovery
    from .discovery.sources import PluginShadowedWarning as PluginShadowedWarning
    from .discovery.sources import PluginSource as PluginSource
    from .discovery.sources import discover_plugins as discover_plugins
    from .host.aio import AsyncHookCaller as AsyncHookCaller
    from .host.aio import AsyncHookError as AsyncHookError
    from .host.aio import AsyncHooks as AsyncHooks
    from .host.composition import LinkCycleError as LinkCycleError
    from .host.composition import LinkedCallError as LinkedCallError
    from .host.composition import LinkError as LinkError
    from .host.composition import LinkInfo as LinkInfo
    from .host.interfaces import PluginContext as PluginContext
    from .host.interfaces import current_plugin as current_plugin
    from .host.loading import LoadReport as LoadReport
    from .host.loading import PluginStatus as PluginStatus
    from .host.messaging import Counters as Counters
    from .host.messaging import DeadLetter as DeadLetter
    from .host.messaging import MailboxFull as MailboxFull
    from .host.messaging import Message as Message
    from .host.messaging import Messaging as Messaging
    from .host.messaging import MessagingError as MessagingError
    from .host.messaging import MessagingPolicy as MessagingPolicy
    from .host.messaging import NoReply as NoReply
    from .host.messaging import Subscription as Subscription
    from .host.messaging import TopicDenied as TopicDenied
    from .host.plugin_host import HookOptions as HookOptions
    from .host.plugin_host import PluginHost as PluginHost
    from .host.plugin_host import WasmPlugin as WasmPlugin
    from .host.scaleout import BatchError as BatchError
    from .host.scaleout import BatchReport as BatchReport
    from .host.scaleout import BatchResult as BatchResult
    from .host.scaleout import BatchRun as BatchRun
    from .host.scaleout import LocalPool as LocalPool
    from .host.scaleout import WorkerLost as WorkerLost
    from .host.scaleout import WorkerSetupError as WorkerSetupError
    from .host.settings import LoadProgress as LoadProgress
    from .host.settings import Reliability as Reliability
    from .host.settings import SandboxPolicy as SandboxPolicy
    from .host.shipment import NotShippable as NotShippable
    from .host.shipment import RemoteError as RemoteError
    from .host.status import StatusFile as StatusFile
    from .host.status import StatusFileError as StatusFileError
    from .host.supervision import FailurePolicy as FailurePolicy
    from .host.supervision import HookFailures as HookFailures
    from .host.supervision import PluginUnavailable as PluginUnavailable
    from .host.supervision import RestartPolicy as RestartPolicy
    from .host.supervision import SupervisorStatus as SupervisorStatus
    from .host.upgrades import ReloadError as ReloadError
    from .host.upgrades import UpgradeHeld as UpgradeHeld
    from .host.watch import Watcher as Watcher
    from .policy.audit import AuditEvent as AuditEvent
    from .policy.audit import AuditLog as AuditLog
    from .policy.capabilities import Capabilities as Capabilities
    from .policy.capabilities import FileGrant as FileGrant
    from .policy.capabilities import Limits as Limits
    from .policy.capabilities import Origin as Origin
    from .policy.signing import PublicKey as PublicKey
    from .policy.signing import SignatureError as SignatureError
    from .policy.signing import Signatures as Signatures
    from .policy.signing import SigningKeyError as SigningKeyError
    from .policy.signing import SigningUnavailable as SigningUnavailable
    from .policy.signing import SigstoreIdentity as SigstoreIdentity
    from .policy.signing import TrustedKeys as TrustedKeys
    from .runtime import configure_engine as configure_engine
    from .runtime.cancel import PluginCancelled as PluginCancelled
    from .runtime.engine import keep_compiled as keep_compiled
    from .runtime.engine import release_compiled as release_compiled
    from .runtime.resources import ResourceProxy as ResourceProxy
    from .runtime.resources import guest_resource as guest_resource


@functools.cache
def _exports() -> dict[str, tuple[str, str]]:
    """Public name -> (module, attribute), read from the TYPE_CHECKING block above, whose
    every line is ``from .module import name as name`` (one name a line, as ruff's isort
    keeps it). Read as text: parsing the module with ``ast`` cost every process 1.5 ms."""
    with open(__file__, encoding="utf-8") as f:
        block = f.read().split("\nif TYPE_CHECKING:\n", 1)[1].split("\n\n", 1)[0]
    table: dict[str, tuple[str, str]] = {}
    for line in block.splitlines():
        words = line.split()
        if len(words) != 6 or words[0] != "from" or words[2:5:2] != ["import", "as"]:
            raise ImportError(
                f"airssys_plugins/__init__.py: {line.strip()!r} is not of the form "
                "'from .module import name as name'"
            )
        table[words[5]] = (words[1], words[3])
    return table


def __getattr__(name: str) -> Any:
    if name == "__version__":
        from importlib.metadata import version

        value: Any = version("airssys-plugins")
    else:
        try:
            module_name, attr = _exports()[name]
        except KeyError:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
        import importlib

        value = getattr(importlib.import_module(module_name, __name__), attr)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


__all__ = sorted([*_exports(), "__version__"])
