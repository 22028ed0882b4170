"""Host functions components may import, the linker that serves them, the ``kv`` store."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar, final

from ..contract import wit
from ..policy.capabilities import Capabilities
from ..runtime import HostFunc, HostLinker, PluginInstance
from .aio import async_host_function, is_async_function
from .interfaces import HostFunction, KVStore, PluginContext, builtin_functions, host_wit

__all__ = ["HostFunctionRegistry"]

F = TypeVar("F", bound=Callable[..., Any])


def _trampoline_for(function: HostFunction) -> Callable[..., Any]:
    def impl(instance: PluginInstance, *args: Any) -> Any:
        context = instance.context
        assert isinstance(context, PluginContext)
        return function.invoke(context, list(args))

    return impl


def _short(interface: str) -> str:
    """``airssys:host/kv@0.1.0`` -> ``kv``, the name grants use; a world-level import
    (``imports``, no package) is its own short name."""
    return wit.unversioned(interface).rsplit("/", 1)[-1]


@final
class HostFunctionRegistry:
    """The built-in and provided host functions of one host.

    The linker is built when the first plugin loads; after that the set is fixed. The
    ``kv`` store is opened when the first plugin granted ``kv`` loads, closed by
    :meth:`close` (and opened again if needed after).
    """

    def __init__(self, package: Callable[[], wit.PackageId], *, kv_path: Path, kv_timeout: float):
        self._package = package
        self._kv_path = kv_path
        self._kv_timeout = kv_timeout
        self._provided: list[HostFunction] = []
        self._linker: HostLinker | None = None
        self._host_funcs: list[HostFunc] | None = None
        self.kv_store: KVStore | None = None

    def provide(
        self, func: F | None, *, interface: str | None, name: str | None
    ) -> F | Callable[[F], F]:
        """Register ``func`` (or, without it, return a decorator that does)."""

        def register(f: F) -> F:
            if self._linker is not None:
                raise RuntimeError("provide() host functions before loading the first plugin")
            fname = name or wit.kebab(f.__name__)
            iface = interface or self._package().interface(fname)
            if wit.split_interface_name(iface) is None and not wit.is_identifier(iface):
                raise ValueError(
                    f"provide({f.__name__}): interface {iface!r} is neither a full interface "
                    "name (namespace:package/interface@1.2.3) nor the name of a world-level "
                    "import (a kebab-case word such as 'imports')"
                )
            function = HostFunction.from_function(iface, f, name=fname)
            if is_async_function(f):  # awaited on the host's loop, blocking only the guest
                function = async_host_function(function)
            self._provided.append(function)
            return f

        return register if func is None else register(func)

    @property
    def functions(self) -> list[HostFunction]:
        return [*builtin_functions(), *self._provided]

    def wit(self) -> dict[str, str]:
        return host_wit(self.functions)

    def _funcs(self) -> list[HostFunc]:
        if self._host_funcs is None:
            self._host_funcs = [
                HostFunc(f.interface, f.name, f.signature, _trampoline_for(f))
                for f in self.functions
            ]
        return self._host_funcs

    def linker(self, extra: Sequence[HostFunc] = ()) -> HostLinker:
        """The linker every plugin shares; with ``extra`` (the per-link host functions of a
        plugin importing another plugin's export, see :mod:`.composition`) a linker of its
        own that adds them."""
        if self._linker is None:
            self._linker = HostLinker(self._funcs())
        if extra:
            return HostLinker([*self._funcs(), *extra])
        return self._linker

    def interfaces(self) -> frozenset[str]:
        """Unversioned names of every host interface (granted or not)."""
        return frozenset(wit.unversioned(f.interface) for f in self.functions)

    def provided_interfaces(self) -> set[str]:
        """Short names of every interface a plugin may be granted."""
        return {_short(f.interface) for f in self.functions}

    def linked_interfaces(self, rights: Capabilities) -> frozenset[str]:
        """Unversioned names of the interfaces ``rights`` let a plugin import."""
        return frozenset(
            wit.unversioned(f.interface)
            for f in self.functions
            if _short(f.interface) in rights.interfaces
        )

    def kv(self) -> KVStore:
        if self.kv_store is None:
            self.kv_store = KVStore(self._kv_path, timeout=self._kv_timeout)
        return self.kv_store

    def close(self) -> None:
        if self.kv_store is not None:
            self.kv_store.close()
            self.kv_store = None
