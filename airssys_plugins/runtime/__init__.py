"""The runtime layer: the only part of airssys-plugins that imports wasmtime.

Everything above it talks to components through :class:`ComponentImage` (a compiled,
type-checked component), :class:`PluginInstance` (its sandboxed instance) and
:class:`BoundFunc` (a prepared call), all in terms of the :mod:`.._wit` model.

Each name is imported on first use (as the package's own names are): a process that
only needs, say, :mod:`.cancel` does not import the whole layer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .callbacks import DeferredHostFunc as DeferredHostFunc
    from .callbacks import HostFunc as HostFunc
    from .engine import CacheInfo as CacheInfo
    from .engine import aot_cache_dir as aot_cache_dir
    from .engine import cache_clear as cache_clear
    from .engine import cache_info as cache_info
    from .engine import configure_engine as configure_engine
    from .engine import evict as evict
    from .image import ComponentImage as ComponentImage
    from .image import imported_functions as imported_functions
    from .instance import TRAP_TABLE as TRAP_TABLE
    from .instance import BoundFunc as BoundFunc
    from .instance import PluginInstance as PluginInstance
    from .instance import classify_error as classify_error
    from .instance import reentrant_call as reentrant_call
    from .sandbox import HostLinker as HostLinker
    from .sandbox import SandboxSpec as SandboxSpec

_WHERE: dict[str, str] = {
    "DeferredHostFunc": ".callbacks",
    "HostFunc": ".callbacks",
    "CacheInfo": ".engine",
    "aot_cache_dir": ".engine",
    "cache_clear": ".engine",
    "cache_info": ".engine",
    "configure_engine": ".engine",
    "evict": ".engine",
    "ComponentImage": ".image",
    "imported_functions": ".image",
    "TRAP_TABLE": ".instance",
    "BoundFunc": ".instance",
    "PluginInstance": ".instance",
    "classify_error": ".instance",
    "reentrant_call": ".instance",
    "HostLinker": ".sandbox",
    "SandboxSpec": ".sandbox",
}


def __getattr__(name: str) -> Any:
    try:
        module = _WHERE[name]
    except KeyError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    import importlib

    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


__all__ = [
    "TRAP_TABLE",
    "BoundFunc",
    "CacheInfo",
    "DeferredHostFunc",
    "HostFunc",
    "HostLinker",
    "SandboxSpec",
    "ComponentImage",
    "PluginInstance",
    "aot_cache_dir",
    "cache_clear",
    "cache_info",
    "classify_error",
    "reentrant_call",
    "configure_engine",
    "evict",
    "imported_functions",
]
