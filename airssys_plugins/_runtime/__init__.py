"""The runtime layer: the only part of airssys-plugins that imports wasmtime.

Everything above it talks to components through :class:`ComponentImage` (a compiled,
type-checked component), :class:`PluginInstance` (its sandboxed instance) and
:class:`BoundFunc` (a prepared call), all in terms of the :mod:`.._wit` model.
"""

from ._engine import CacheInfo as CacheInfo
from ._engine import aot_cache_dir as aot_cache_dir
from ._engine import cache_clear as cache_clear
from ._engine import cache_info as cache_info
from ._engine import configure_engine as configure_engine
from ._engine import evict as evict
from ._hostfuncs import HostFunc as HostFunc
from ._instance import TRAP_TABLE as TRAP_TABLE
from ._instance import BoundFunc as BoundFunc
from ._instance import ComponentImage as ComponentImage
from ._instance import PluginInstance as PluginInstance
from ._instance import classify_error as classify_error
from ._sandbox import HostLinker as HostLinker
from ._sandbox import SandboxSpec as SandboxSpec

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
    "configure_engine",
    "evict",
]
