"""Host functions components may import, the linker that serves them, the ``kv`` store."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar, cast, final

from .._errors import PluginLoadError
from ..contract import wit
from ..policy.capabilities import Capabilities
from ..runtime import (
    ComponentImage,
    DeferredHostFunc,
    HostFunc,
    HostLinker,
    PluginInstance,
    imported_functions,
)
from .asyncimpls import is_async_function
from .interfaces import BUILTIN_NAMES, HostFunction, KVStore, PluginContext, host_wit

__all__ = ["HostFunctionRegistry"]

F = TypeVar("F", bound=Callable[..., Any])


def _trampoline_for(function: HostFunction) -> Callable[..., Any]:
    def impl(instance: PluginInstance, *args: Any) -> Any:
        context = instance.context
        assert isinstance(context, PluginContext)
        return function.invoke(context, list(args))

    return impl


def _short(interface: str, name: str) -> str:
    """``airssys:host/kv@0.1.0`` -> ``kv``, the name grants use; a world-level import
    (``imports``, no package) is its own short name, and so is a function or resource
    imported at the world's root (``log``)."""
    return wit.import_key(interface, name).rsplit("/", 1)[-1]


def _host_func(function: HostFunction) -> HostFunc:
    return HostFunc(
        function.interface,
        function.name,
        function.signature,
        _trampoline_for(function),
        function.keep,
    )


def _built_in(interface: str, name: str) -> HostFunc:
    from .builtins import builtin_function  # (a plugin's first call of one)

    return _host_func(builtin_function(interface, name))


def _builtin_functions() -> tuple[HostFunction, ...]:
    from .builtins import builtin_functions

    return builtin_functions()


def _compatible(
    interface: str, versions: dict[str, dict[str, HostFunction]]
) -> dict[str, HostFunction] | None:
    """The host's functions of the version of ``interface`` that serves its imports (the
    component model's semver rule: the same major, for 0.x the same minor)."""
    if interface in versions:
        return versions[interface]
    wanted = _version(interface)
    for name, functions in sorted(versions.items(), reverse=True):
        if wit.version_compatible(_version(name), wanted):
            return functions
    return None


def _version(interface: str) -> str | None:
    split = wit.split_interface_name(interface)
    return None if split is None else split[2]


_VALUE_TYPES = (
    wit.Prim, wit.ListT, wit.OptionT, wit.ResultT, wit.TupleT,
    wit.RecordT, wit.VariantT, wit.EnumT, wit.FlagsT,
)  # fmt: skip


def _comparable(sig: wit.FuncSig) -> bool:
    """Whether ``sig`` holds plain values only: resource handles are checked by the
    resource table, not compared here."""

    def plain(t: wit.WitType | None) -> bool:
        if t is None:
            return True
        if not isinstance(t, _VALUE_TYPES):
            return False
        return all(plain(inner) for inner in wit.inner_types(t))

    return all(plain(t) for t in (*sig.param_types, sig.result))


def _difference(host: wit.FuncSig, component: wit.FuncSig) -> str:
    if len(host.params) != len(component.params):
        return (
            f"the component passes {len(component.params)} argument(s), the host function "
            f"takes {len(host.params)}"
        )
    pairs = zip(host.params, component.params, strict=True)
    for i, ((hname, ht), (cname, ct)) in enumerate(pairs, 1):
        if ht != ct:
            return (
                f"argument {i} ({cname!r}) is {wit.render_type_expanded(ct)}, the host "
                f"function's parameter {hname!r} is {wit.render_type_expanded(ht)}"
            )
    return (
        f"the component expects {_render(component.result)} back, the host function "
        f"returns {_render(host.result)}"
    )


def _render(t: wit.WitType | None) -> str:
    return "nothing" if t is None else wit.render_type_expanded(t)


@final
class HostFunctionRegistry:
    """The built-in and provided host functions of one host.

    The linker is built when the first plugin loads; after that the set is fixed. The
    ``kv`` store is opened when the first plugin granted ``kv`` loads, closed by
    :meth:`close` (and opened again if needed after).
    """

    def __init__(
        self,
        package: Callable[[], wit.PackageId],
        *,
        kv_path: Callable[[], Path],
        kv_timeout: float,
    ):
        self._package = package
        self._kv_path = kv_path
        self._kv_timeout = kv_timeout
        self._provided: list[HostFunction] = []
        self._linker: HostLinker | None = None
        self._host_funcs: list[HostFunc | DeferredHostFunc] | None = None
        self.kv_store: KVStore | None = None
        # What the fixed set (once the linker exists) answers, worked out once: the key
        # "functions", "interfaces", "provided", ("linked", granted interfaces).
        self._fixed: dict[Any, Any] = {}
        #: Stands for this registry in the memos images share (see check_imports).
        self._token = object()

    def provide(
        self, func: F | None, *, interface: str | None, name: str | None
    ) -> F | Callable[[F], F]:
        """Register ``func`` (or, without it, return a decorator that does)."""

        def register(f: F) -> F:
            if self._linker is not None:
                raise RuntimeError("provide() host functions before loading the first plugin")
            fname = name or wit.kebab(f.__name__)
            iface = self._package().interface(fname) if interface is None else interface
            if (
                iface != wit.WORLD_ROOT
                and wit.split_interface_name(iface) is None
                and not wit.is_identifier(iface)
            ):
                raise ValueError(
                    f"provide({f.__name__}): interface {iface!r} is neither a full interface "
                    "name (namespace:package/interface@1.2.3), the name of a world-level "
                    "import (a kebab-case word such as 'imports'), nor WORLD_ROOT (a "
                    "function imported at the world's root)"
                )
            function = HostFunction.from_function(iface, f, name=fname)
            if is_async_function(f):  # awaited on the host's loop, blocking only the guest
                from .aio import async_host_function

                function = async_host_function(function)
            self._provided.append(function)
            return f

        return register if func is None else register(func)

    @property
    def functions(self) -> list[HostFunction]:
        found: list[HostFunction] = self._memo(
            "functions", lambda: [*_builtin_functions(), *self._provided]
        )
        return found

    def _memo(self, key: Any, make: Callable[[], Any]) -> Any:
        """``make()``, once the set is fixed (then remembered under ``key``)."""
        if self._linker is None:
            return make()
        try:
            return self._fixed[key]
        except KeyError:
            value = self._fixed[key] = make()
            return value

    def wit(self) -> dict[str, str]:
        return host_wit(self.functions)

    def _funcs(self) -> list[HostFunc | DeferredHostFunc]:
        """What the linker defines: the built-in functions made at their first call (their
        signatures are mapped then), the provided ones now."""
        if self._host_funcs is None:
            self._host_funcs = [
                *(
                    DeferredHostFunc(i, n, functools.partial(_built_in, i, n))
                    for i, n, *_ in BUILTIN_NAMES
                ),
                *(_host_func(f) for f in self._provided),
            ]
        return self._host_funcs

    def _names(self) -> list[tuple[str, str]]:
        """(interface, name) of every host function, the built-in ones' without mapping
        their signatures."""
        return [
            *((i, n) for i, n, *_ in BUILTIN_NAMES),
            *((f.interface, f.name) for f in self._provided),
        ]

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
        """Unversioned names of every host interface (granted or not), and the names of
        what is provided at the world's root."""
        return cast(
            "frozenset[str]",
            self._memo(
                "interfaces",
                lambda: frozenset(wit.import_key(i, n) for i, n in self._names()),
            ),
        )

    def provided_interfaces(self) -> frozenset[str]:
        """Short names of every interface a plugin may be granted."""
        return cast(
            "frozenset[str]",
            self._memo("provided", lambda: frozenset(_short(i, n) for i, n in self._names())),
        )

    def linked_interfaces(self, rights: Capabilities) -> frozenset[str]:
        """Unversioned names of the interfaces ``rights`` let a plugin import (and of the
        root functions and resources: their own names)."""
        granted = frozenset(rights.interfaces)
        return cast(
            "frozenset[str]",
            self._memo(
                ("linked", granted),
                lambda: frozenset(
                    wit.import_key(i, n) for i, n in self._names() if _short(i, n) in granted
                ),
            ),
        )

    def check_imports(self, plugin: str, image: ComponentImage) -> None:
        """Refuse, before instantiating, a component that imports a function of a host
        interface the host functions do not serve as the component declares it: missing,
        with other types, or as an ``async func`` (host functions are sync).

        wasmtime links host functions without comparing their types, so without this a
        wrong annotation shows only at the first call, as an unrelated error. A component
        that passed once passes again while the set is fixed (remembered per component).
        """
        passed = ("host imports served", self._token)
        if self._linker is not None and image.shared.get(passed):
            return
        self._check_imports(plugin, image)
        if self._linker is not None:
            image.shared[passed] = True

    def _check_imports(self, plugin: str, image: ComponentImage) -> None:
        problems: list[str] = []
        imported = dict(imported_functions(image))
        if any(i == wit.WORLD_ROOT for i, _ in self._names()):  # provided at the root: rare
            from ..runtime.describe import root_imported_functions

            imported.update(
                ((wit.WORLD_ROOT, n), sig) for n, sig in root_imported_functions(image).items()
            )
        if not any(not iface.startswith("wasi:") for iface, _ in imported):
            return  # nothing to check (and no signature of ours mapped for it)
        by_interface: dict[str, dict[str, dict[str, HostFunction]]] = {}
        for f in self.functions:
            versions = by_interface.setdefault(wit.unversioned(f.interface), {})
            versions.setdefault(f.interface, {})[f.name] = f
        for (iface, fname), sig in sorted(imported.items()):
            offered = by_interface.get(wit.unversioned(iface))
            if offered is None or iface.startswith("wasi:"):
                continue  # WASI, links and unknown interfaces are refused elsewhere
            if fname.startswith("["):  # a resource's member: a provided resource class
                continue  # serves them all (checked when runtime/resources.py links it)
            where = f"{iface}#{fname}" if iface else f"{fname} (at the world's root)"
            served = _compatible(iface, offered)
            if served is None:
                problems.append(f"{where}: the host provides only {', '.join(sorted(offered))}")
                continue
            if sig.is_async:
                problems.append(
                    f"{where}: imported as an `async func` (component-model async), which "
                    "wasmtime-py host functions cannot serve; import a plain (sync) `func`"
                )
                continue
            function = served.get(fname)
            if function is None:
                target = "WORLD_ROOT" if iface == wit.WORLD_ROOT else repr(iface)
                problems.append(
                    f"{where}: imported by the component, not provided by the host "
                    f"(provide it: @host.provide(interface={target}, name={fname!r}))"
                )
            elif _comparable(sig) and sig != function.signature:
                problems.append(
                    f"{where}: {_difference(function.signature, sig)}\n"
                    f"      component imports: {sig.render(expanded=True)}\n"
                    f"      host provides:     {function.signature.render(expanded=True)}"
                )
        if problems:
            path = None if image.path is None else str(image.path)
            lines = "".join(f"\n  - {p}" for p in problems)
            raise PluginLoadError(
                f"plugin {plugin!r} imports host functions the host does not serve as the "
                f"component declares them ({len(problems)} problem(s)):{lines}\n"
                "Make the provided functions' annotations match the component's WIT "
                f"(`airssys-plugins inspect {image.path.name if image.path else plugin}` "
                "shows its imports), or rebuild the component against the host's WIT "
                "(`host.host_wit()`).",
                plugin=plugin,
                path=path,
            )

    def kv(self) -> KVStore:
        if self.kv_store is None:
            self.kv_store = KVStore(self._kv_path(), timeout=self._kv_timeout)
        return self.kv_store

    def close(self) -> None:
        if self.kv_store is not None:
            self.kv_store.close()
            self.kv_store = None
