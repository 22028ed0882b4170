"""What a batch ships to its workers: a host described as data (:class:`HostSpec`).

A worker rebuilds the host from the spec alone: the contract's hookspecs (imported by
name), the sandbox policy, the reliability settings, the provided host functions (pickled,
that is imported by name), the Python plugins (pickled) and each component's bytes with
the rights it was granted. Nothing is looked up again on the worker: no discovery, no
manifests read, no pack code imported. Whatever cannot travel is refused here, before any
item runs, naming the plugin or the function (:class:`NotShippable`).
"""

from __future__ import annotations

import hashlib
import importlib
import pickle
import types
import weakref
from collections.abc import Mapping
from typing import Any, final

from .. import _attrs as attrs
from .._errors import PluginError
from ..contract.mapping import HookOptions
from ..policy.capabilities import Capabilities, Limits
from ..runtime.engine import Artefact, export_artefact
from .hookexec import historic_calls
from .plugin import WasmPlugin
from .supervision import FailurePolicy, RestartPolicy

__all__ = [
    "ComponentSpec",
    "FunctionSpec",
    "HostSpec",
    "NotShippable",
    "ObjectRef",
    "PythonPluginSpec",
    "RemoteError",
    "Shipment",
    "capture",
]


class NotShippable(PluginError, TypeError):
    """Part of a host cannot travel to worker processes (``plugin`` names it, or
    ``function`` the host function); nothing of the batch ran."""

    def __init__(self, message: str, *, plugin: str | None = None, function: str | None = None):
        super().__init__(message, plugin=plugin)
        self.function = function


class RemoteError(PluginError, RuntimeError):
    """Stands for an exception raised on a worker that could not be pickled back (a
    wasmtime error, say): ``type_name`` is its type, the message its text."""

    def __init__(self, message: str, *, type_name: str):
        super().__init__(message)
        self.type_name = type_name


@final
@attrs.frozen
class ObjectRef:
    """A module, or a class or function of one, named so a worker can import it."""

    module: str
    qualname: str = ""

    @classmethod
    def of(cls, obj: object) -> ObjectRef:
        if isinstance(obj, types.ModuleType):
            return cls(obj.__name__)
        return cls(getattr(obj, "__module__", "") or "", getattr(obj, "__qualname__", ""))

    def resolve(self) -> Any:
        found: Any = importlib.import_module(self.module)
        for part in self.qualname.split(".") if self.qualname else ():
            found = getattr(found, part)
        return found

    def __str__(self) -> str:
        return f"{self.module}:{self.qualname}" if self.qualname else self.module


@final
@attrs.frozen
class ComponentSpec:
    """One loaded component: its bytes and everything it was loaded with. ``requests`` are
    the rights the host *granted* it, so the worker's decision can only narrow them.
    ``artefact``: the host's compiled code for it, which a worker whose wasmtime, engine
    configuration and target match deserialises instead of compiling the bytes."""

    name: str
    data: bytes = attrs.field(repr=lambda d: f"<{len(d)} bytes>")
    sha256: str
    path: str | None
    hooks: Mapping[str, HookOptions]
    requests: Capabilities
    limits: Limits
    config: Mapping[str, str]
    pool_size: int
    artefact: Artefact | None = None
    #: "shared" or "per-call" (see :mod:`.isolation`): the worker isolates calls alike.
    isolation: str = "shared"


@final
@attrs.frozen
class PythonPluginSpec:
    """A Python plugin registered on the host's PluginManager: pickled, or a module
    (imported by name on the worker)."""

    name: str
    pickled: bytes | None = None
    module: str | None = None

    def resolve(self) -> object:
        if self.module is not None:
            return importlib.import_module(self.module)
        assert self.pickled is not None
        return pickle.loads(self.pickled)


@final
@attrs.frozen
class FunctionSpec:
    """A host function given with :meth:`PluginHost.provide` (the function pickled)."""

    interface: str
    name: str
    pickled: bytes


@final
@attrs.frozen
class HostSpec:
    """A :class:`PluginHost` as data: what a worker needs to rebuild it exactly.

    ``plugins`` are in registration order (pluggy calls the last registered first).
    """

    host_class: ObjectRef
    project: str
    hookspecs: tuple[ObjectRef, ...]
    package: str
    bindings: Mapping[str, str]
    limits: Limits
    ceiling: Capabilities
    hook_ceilings: Mapping[str, Capabilities]
    grants: Mapping[str, Capabilities]
    on_denied: str
    restart: RestartPolicy
    failure_policies: Mapping[str, FailurePolicy]
    data_dir: str
    compile_cache: bool
    functions: tuple[FunctionSpec, ...]
    plugins: tuple[ComponentSpec | PythonPluginSpec, ...]
    #: Calls of historic hooks made so far (hook, arguments), replayed on the worker.
    historic: tuple[tuple[str, Mapping[str, Any]], ...] = ()
    #: The older contract versions the host accepts (``PluginHost(versions=...)``).
    versions: tuple[Any, ...] = ()
    #: ``PluginHost(missing_provider=...)``: links are made again as plugins load.
    missing_provider: str = "wait"


@final
@attrs.frozen
class Shipment:
    """A pickled :class:`HostSpec` and its key (the sha256 of the pickle): a worker
    builds one host per key and keeps it for every later item."""

    key: str
    blob: bytes = attrs.field(repr=lambda b: f"<{len(b)} bytes>")

    @classmethod
    def of(cls, spec: HostSpec) -> Shipment:
        try:
            blob = pickle.dumps(spec, protocol=pickle.HIGHEST_PROTOCOL)
        except (pickle.PicklingError, TypeError, AttributeError) as exc:
            raise NotShippable(
                f"the host cannot be shipped to workers: {exc} (a hook option, config "
                "value or historic call argument that does not pickle)"
            ) from exc
        return cls(hashlib.sha256(blob).hexdigest(), blob)

    def spec(self) -> HostSpec:
        spec = pickle.loads(self.blob)
        assert isinstance(spec, HostSpec)
        return spec


def capture(host: Any, *, artefacts: bool = False) -> HostSpec:
    """Describe ``host`` (a :class:`PluginHost`) for its workers; every part that cannot
    travel is reported at once in an ``ExceptionGroup`` of :class:`NotShippable` (a single
    one is raised bare). ``artefacts``: ship each component's compiled code too (for
    workers that do not share this machine's compile cache).

    The host is typed ``Any``: the facade imports this module (through ``map``), so this
    module may not import the facade, not even for type checking.
    """
    pm = host.pm
    problems: list[NotShippable] = []
    hookspecs = _hookspec_refs(pm, problems)
    functions = tuple(_function_spec(f, problems) for f in host._functions._provided)
    plugins: list[ComponentSpec | PythonPluginSpec] = []
    for name, obj in pm.list_name_plugin():
        if obj is None:  # blocked: its circuit is open, so it takes no calls here either
            continue
        spec: ComponentSpec | PythonPluginSpec | None
        if isinstance(obj, WasmPlugin):
            spec = _component_spec(obj, problems, artefacts=artefacts)
        else:
            spec = _python_spec(name, obj, problems)
        if spec is not None:
            plugins.append(spec)
    if len(problems) == 1:
        raise problems[0]
    if problems:
        raise ExceptionGroup(
            f"{len(problems)} part(s) of the host cannot travel to worker processes", problems
        )
    policy, reliability = host.policy, host.reliability
    return HostSpec(
        host_class=ObjectRef.of(type(host)),
        project=pm.project_name,
        hookspecs=hookspecs,
        package=str(host.contract.package),
        bindings=dict(host._bridge._bindings),
        limits=host.limits,
        ceiling=policy.ceiling,
        hook_ceilings=dict(policy.hook_ceilings),
        grants=dict(policy.grants),
        on_denied=policy.on_denied,
        restart=reliability.restart,
        failure_policies=dict(reliability.failure_policies),
        data_dir=str(host.data_dir),
        compile_cache=host.compile_cache,
        functions=tuple(f for f in functions if f is not None),
        plugins=tuple(plugins),
        historic=_historic_calls(pm),
        versions=tuple(getattr(host._bridge, "_versions", ())),
        missing_provider=getattr(getattr(host, "_links", None), "missing_provider", "wait"),
    )


def _historic_calls(pm: Any) -> tuple[tuple[str, Mapping[str, Any]], ...]:
    # pluggy keeps a historic hook's past calls on the caller, privately, and has no
    # public reader: read it (never write it) so that a worker's plugins see the same
    # setup calls as the host's did. Result callbacks stay home.
    calls = []
    for name, caller in vars(pm.hook).items():
        for kwargs in historic_calls(caller):
            calls.append((name, dict(kwargs)))
    return tuple(calls)


def _hookspec_refs(pm: Any, problems: list[NotShippable]) -> tuple[ObjectRef, ...]:
    refs: list[ObjectRef] = []
    for name, caller in vars(pm.hook).items():
        spec = getattr(caller, "spec", None)
        if spec is None:
            continue
        ref = ObjectRef.of(spec.namespace)
        if ref in refs:
            continue
        try:
            same = ref.resolve() is spec.namespace
        except (ImportError, AttributeError):
            same = False
        if not same:
            problems.append(
                NotShippable(
                    f"the hookspecs of hook {name!r} ({ref}) cannot be imported by name, so "
                    "workers cannot rebuild the contract; define them at the top level of "
                    "an importable module",
                )
            )
            continue
        refs.append(ref)
    return tuple(refs)


def _function_spec(function: Any, problems: list[NotShippable]) -> FunctionSpec | None:
    label = f"{function.interface}#{function.name}"
    try:
        pickled = pickle.dumps(function.func, protocol=pickle.HIGHEST_PROTOCOL)
    except (pickle.PicklingError, TypeError, AttributeError) as exc:
        problems.append(
            NotShippable(
                f"host function {label} ({function.func!r}) cannot be pickled, so workers "
                f"cannot provide it ({exc}); provide a function defined at the top level "
                "of an importable module (not a lambda, closure or bound method of an "
                "unpicklable object)",
                function=label,
            )
        )
        return None
    return FunctionSpec(function.interface, function.name, pickled)


def _component_spec(
    plugin: WasmPlugin, problems: list[NotShippable], *, artefacts: bool
) -> ComponentSpec | None:
    data = _component_bytes(plugin)
    if data is None or hashlib.sha256(data).hexdigest() != plugin.sha256:
        path = plugin.path
        where = "was loaded from bytes" if path is None else f"no longer matches {path}"
        problems.append(
            NotShippable(
                f"plugin {plugin.name!r} {where}, and its bytes are not kept, so there is "
                "nothing to ship to workers; load it from a file (or pass path= with the "
                "bytes) and keep the file unchanged while the batch runs",
                plugin=plugin.name,
            )
        )
        return None
    return ComponentSpec(
        name=plugin.name,
        data=data,
        sha256=plugin.sha256,
        path=None if plugin.path is None else str(plugin.path),
        hooks=dict(plugin.hook_options),
        requests=plugin.capabilities,
        limits=plugin.limits,
        config=dict(plugin.config),
        pool_size=plugin.pool_size,
        isolation=plugin.isolation,
        artefact=_artefact(plugin.image) if artefacts else None,
    )


def _component_bytes(plugin: WasmPlugin) -> bytes | None:
    # A component loaded from bytes without path= keeps them (ComponentImage.data); one
    # loaded from a file is read again (checked against its digest by the caller).
    kept = getattr(plugin.image, "data", None)
    if isinstance(kept, bytes):
        return kept
    if plugin.path is None:
        return None
    try:
        return plugin.path.read_bytes()
    except OSError:
        return None


# Serialising a big component's code takes a while; once per loaded image is enough.
_artefacts: weakref.WeakKeyDictionary[Any, Artefact | None] = weakref.WeakKeyDictionary()


def _artefact(image: Any) -> Artefact | None:
    try:
        return _artefacts[image]
    except KeyError:
        pass
    artefact = export_artefact(image.component)
    _artefacts[image] = artefact
    return artefact


def _python_spec(name: str, obj: object, problems: list[NotShippable]) -> PythonPluginSpec | None:
    if isinstance(obj, types.ModuleType):
        return PythonPluginSpec(name, module=obj.__name__)
    try:
        return PythonPluginSpec(name, pickled=pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL))
    except (pickle.PicklingError, TypeError, AttributeError) as exc:
        problems.append(
            NotShippable(
                f"Python plugin {name!r} ({type(obj).__qualname__}) cannot be pickled, so it "
                f"cannot travel to workers ({exc}); make it picklable (a class defined at "
                "module level whose attributes pickle), or unregister it before the batch",
                plugin=name,
            )
        )
        return None
