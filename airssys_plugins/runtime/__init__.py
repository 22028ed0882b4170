"""The runtime layer: the only part of airssys-plugins that imports wasmtime.

Everything above it talks to components through :class:`ComponentImage` (a compiled,
type-checked component), :class:`PluginInstance` (its sandboxed instance) and
:class:`BoundFunc` (a prepared call), all in terms of the :mod:`.._wit` model.
"""

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

__all__ = [
    "TRAP_TABLE",
    "BoundFunc",
    "CacheInfo",
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
