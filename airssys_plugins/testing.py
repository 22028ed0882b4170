"""pytest plugin for plugin authors: load a component against a host's contract and test it.

Installed with airssys-plugins (entry point ``pytest11``, name ``airssys_plugins``), so
the fixtures are there in every test session; ``-p no:airssys_plugins`` turns it off::

    from airssys_plugins.testing import call_hook, raises_timeout

    def test_shout(load_component):
        plugin = load_component("build/shout.wasm", contract="hookspecs.textpipe:TextHooks")
        assert call_hook(plugin, "transform", text="hi") == "HI!"
        assert plugin.hooks == {"transform": "textpipe:hooks/transform@1.0.0#transform"}

Fixtures (each a factory; everything they create is closed when the test ends):

``plugin_host(contract=None, ...)``
    A :class:`~airssys_plugins.PluginHost` over a fresh ``PluginManager`` holding the
    contract's hookspecs, with its data (kv store, data directories) under ``tmp_path``.
``load_component(source, ...)``
    Loads a ``.wasm`` (or a plugin directory / ``plugin.toml``) into a host and returns
    the :class:`~airssys_plugins.WasmPlugin`. The rights it requests are granted unless
    the test says otherwise (``grants=``).
``conformance(source, hooks=..., ...)``
    Checks that a component exports the given hooks with the contract's WIT types, without
    instantiating it; raises :class:`~airssys_plugins.ContractMismatchError` listing every
    problem, or returns a :class:`Conformance`.

Helpers: :func:`grant`, :func:`call_hook`, :func:`raises_limit`, :func:`raises_timeout`,
:func:`raises_denied`, :func:`check_conformance`; for asyncio hosts :func:`run_async` (run a
coroutine to completion under a deadline, no pytest async plugin needed) and
:func:`acall_hook` (await one component's implementation off the event loop, cancellable)::

    def test_shout_async(load_component):
        plugin = load_component("build/shout.wasm")
        assert run_async(acall_hook(plugin, "transform", text="hi")) == "HI!"
        with pytest.raises(TimeoutError):  # cancelled after 0.1 s: the guest is stopped
            run_async(acall_hook(plugin, "spin"), timeout=0.1)

The contract is a hookspec class or module, or its ``"module:object"`` name. Set it once
for a test suite in the pytest configuration and the fixtures use it by default::

    [tool.pytest.ini_options]
    airssys_contract = "textpipe_hooks:TextHooks"
    airssys_package = "textpipe:hooks@1.0.0"   # optional: else PACKAGE beside the hookspecs
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import importlib
import os
import re
import types
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal, TypeVar, final

import pluggy
import pytest

from . import _attrs as attrs
from ._errors import (
    CapabilityDenied,
    ContractMismatchError,
    HookCallError,
    Mismatch,
    PluginLimitExceeded,
    PluginTimeout,
)
from .contract.mapping import Contract, _find_hookspecs
from .policy.capabilities import Capabilities, FileGrant, Limits, Origin

if TYPE_CHECKING:  # pytest loads this plugin in every session: wasmtime loads on first use
    from .host.plugin_host import HookOptions, PluginHost, WasmPlugin

T = TypeVar("T")

__all__ = [
    "acall_hook",
    "run_async",
    "ComponentLoader",
    "Conformance",
    "ConformanceChecker",
    "ContractSpec",
    "HostFactory",
    "call_hook",
    "check_conformance",
    "grant",
    "raises_denied",
    "raises_limit",
    "raises_timeout",
]

#: A contract: a hookspec class or module, or its ``"module:object"`` / ``"module"`` name.
ContractSpec = str | type | types.ModuleType

_INI_CONTRACT: Final = "airssys_contract"
_INI_PACKAGE: Final = "airssys_package"


# ----------------------------------------------------------------------------- pytest hooks


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini(
        _INI_CONTRACT,
        "default contract of the airssys-plugins fixtures: MODULE:OBJECT of the hookspecs",
        default="",
    )
    parser.addini(
        _INI_PACKAGE,
        "WIT package id of that contract (default: PACKAGE beside the hookspecs)",
        default="",
    )


# ----------------------------------------------------------------------------- contracts


def _resolve(spec: ContractSpec) -> type | types.ModuleType:
    """The hookspec object a contract spec names."""
    if not isinstance(spec, str):
        return spec
    module_name, _, attr = spec.partition(":")
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(f"contract {spec!r}: cannot import {module_name!r}: {exc}") from exc
    for part in filter(None, attr.split(".")):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise ValueError(f"contract {spec!r}: {module_name!r} has no {attr!r}") from None
    if not isinstance(obj, type | types.ModuleType):
        raise ValueError(f"contract {spec!r} is {obj!r}, not a hookspec class or module")
    return obj


def _package_beside(specs: type | types.ModuleType) -> str | None:
    """The ``PACKAGE`` constant of the hookspecs' module (the CLI's rule too)."""
    module = (
        specs if isinstance(specs, types.ModuleType) else importlib.import_module(specs.__module__)
    )
    package = getattr(module, "PACKAGE", None)
    return package if isinstance(package, str) else None


# ----------------------------------------------------------------------------- plugin_host


@final
class HostFactory:
    """The ``plugin_host`` fixture: ``plugin_host(contract=None, *, package=None, ...)``.

    Each call makes a fresh ``pluggy.PluginManager`` for the contract's project, adds the
    hookspecs and wraps it in a :class:`PluginHost` (reach the manager as ``host.pm``).
    ``package`` defaults to the ini option ``airssys_package``, then to a ``PACKAGE``
    constant beside the hookspecs. ``data_dir`` defaults to a fresh directory under the
    test's ``tmp_path``. Other keyword arguments go to :class:`PluginHost` unchanged
    (``grants``, ``ceiling``, ``limits``, ``failure_policies``...). Every host is closed
    when the test ends.
    """

    def __init__(self, tmp_path: Path, default_contract: str, default_package: str):
        self._tmp_path = tmp_path
        self._default_contract = default_contract
        self._default_package = default_package
        self._hosts: list[PluginHost] = []

    def __call__(
        self,
        contract: ContractSpec | None = None,
        *,
        package: str | None = None,
        project_name: str | None = None,
        data_dir: str | os.PathLike[str] | None = None,
        grants: Mapping[str, Capabilities] | str | os.PathLike[str] | None = None,
        limits: Limits | None = None,
        **options: Any,
    ) -> PluginHost:
        specs = _resolve(self._contract(contract))
        project = project_name or _find_hookspecs(specs, None).project
        package = package or self._default_package or _package_beside(specs)
        from .host.plugin_host import PluginHost

        pm = pluggy.PluginManager(project)
        pm.add_hookspecs(specs)
        if data_dir is None:
            data_dir = self._tmp_path / "airssys-plugins" / f"host-{len(self._hosts)}"
        host = PluginHost(
            pm, package=package, data_dir=data_dir, grants=grants, limits=limits, **options
        )
        self._hosts.append(host)
        return host

    def _contract(self, contract: ContractSpec | None) -> ContractSpec:
        if contract is not None:
            return contract
        if not self._default_contract:
            raise ValueError(
                "no contract: pass contract='module:Hooks' (or the hookspec class), or set "
                f"{_INI_CONTRACT} = 'module:Hooks' in the pytest configuration"
            )
        return self._default_contract

    def close(self) -> None:
        for host in reversed(self._hosts):
            host.close()
        self._hosts.clear()


@pytest.fixture
def plugin_host(tmp_path: Path, pytestconfig: pytest.Config) -> Iterator[HostFactory]:
    """Factory: contract -> a PluginHost with a fresh PluginManager, closed at teardown."""
    factory = HostFactory(
        tmp_path,
        str(pytestconfig.getini(_INI_CONTRACT)),
        str(pytestconfig.getini(_INI_PACKAGE)),
    )
    yield factory
    factory.close()


# ----------------------------------------------------------------------------- grants


def grant(
    host: PluginHost,
    plugin: str,
    capabilities: Capabilities | None = None,
    *,
    interfaces: Sequence[str] = (),
    network: Sequence[str | Origin] = (),
    env: Sequence[str] = (),
    filesystem: Sequence[FileGrant] = (),
) -> Capabilities:
    """Add rights to the operator's grants of ``plugin`` in ``host`` (before loading it).

    Rights add up: ``grant(host, "p", interfaces=["kv"])`` then ``grant(host, "p",
    network=["http://127.0.0.1:8000"])`` grants both. Returns the plugin's grants.
    """
    extra = Capabilities(
        filesystem=filesystem, env=frozenset(env), network=network, interfaces=interfaces
    )
    merged = _union(host.grants.get(plugin, Capabilities()), _union(capabilities, extra))
    host.grants[plugin] = merged
    return merged


def _union(a: Capabilities | None, b: Capabilities) -> Capabilities:
    if a is None:
        return b
    return Capabilities(
        filesystem=(*a.filesystem, *(g for g in b.filesystem if g not in a.filesystem)),
        env=a.env | b.env,
        network=a.network | b.network,
        interfaces=a.interfaces | b.interfaces,
    )


# ----------------------------------------------------------------------------- load_component


@final
class ComponentLoader:
    """The ``load_component`` fixture: load a component into a host, return its WasmPlugin.

    ``load_component(source, *, name=None, host=None, contract=None, package=None,
    requests=None, grants="requested", limits=None, config=None, hooks=None, pool_size=1,
    isolation="shared")``

    ``source`` is a ``.wasm`` path or its bytes (give ``name=``), or a plugin directory or
    ``plugin.toml``: then the manifest supplies the name, requests, limits, config and hook
    options, and its ``[contract]`` target is checked; explicit arguments override it.

    Without ``host``, the component goes into a host made by ``plugin_host`` for
    ``contract`` (the ini option ``airssys_contract`` by default), one per contract and
    package per test, so that several components loaded in one test share a
    PluginManager. ``grants="requested"`` grants exactly what the plugin requests;
    ``grants=None`` leaves the host's grants alone (test what the operator's grants allow);
    a :class:`Capabilities` replaces the plugin's grants with it.
    """

    def __init__(self, hosts: HostFactory):
        self._hosts = hosts
        self._shared: dict[tuple[int | str, str | None], PluginHost] = {}

    def __call__(
        self,
        source: str | os.PathLike[str] | bytes,
        *,
        name: str | None = None,
        host: PluginHost | None = None,
        contract: ContractSpec | None = None,
        package: str | None = None,
        requests: Capabilities | None = None,
        grants: Capabilities | Literal["requested"] | None = "requested",
        limits: Limits | None = None,
        config: Mapping[str, str] | None = None,
        hooks: Mapping[str, HookOptions] | None = None,
        pool_size: int = 1,
        isolation: Literal["shared", "per-call"] = "shared",
    ) -> WasmPlugin:
        __tracebackhide__ = True
        if host is None:
            host = self.host(contract, package=package)
        origin: str | os.PathLike[str] | bytes = source
        if not isinstance(source, bytes) and Path(source).suffix != ".wasm":
            manifest = _manifest_defaults(host, Path(source))
            origin = manifest.component
            name = name or manifest.name
            requests = manifest.requests if requests is None else requests
            limits = manifest.limits if limits is None else limits
            config = manifest.config if config is None else config
            hooks = manifest.hooks if hooks is None else hooks
        if name is None:
            if isinstance(origin, bytes):
                raise ValueError("give name= when loading a component from bytes")
            name = Path(origin).stem
        if grants == "requested":
            host.grants[name] = requests or Capabilities()
        elif grants is not None:
            host.grants[name] = grants
        return host.load(
            origin,
            name=name,
            requests=requests,
            limits=limits,
            config=config,
            hooks=hooks,
            pool_size=pool_size,
            isolation=isolation,
        )

    def host(
        self, contract: ContractSpec | None = None, *, package: str | None = None
    ) -> PluginHost:
        """The host ``load_component`` uses for ``contract`` when no ``host=`` is given."""
        spec = self._hosts._contract(contract)
        key = (spec if isinstance(spec, str) else id(spec), package)
        if key not in self._shared:
            self._shared[key] = self._hosts(spec, package=package)
        return self._shared[key]


@attrs.frozen
class _ManifestDefaults:
    name: str
    component: Path
    requests: Capabilities
    limits: Limits
    config: Mapping[str, str]
    hooks: Mapping[str, HookOptions]


def _manifest_defaults(host: PluginHost, path: Path) -> _ManifestDefaults:
    """What a plugin's manifest says, as the host's discovery would read it."""
    from .discovery.sources import PluginSource, checked_manifest, requested_capabilities

    source = PluginSource.from_path(path)
    manifest = checked_manifest(source, host.contract.package)
    assert source.component is not None  # a source without an error has both
    requested = {k: v for k, v in attrs.asdict(manifest.limits).items() if v is not None}
    return _ManifestDefaults(
        name=source.name,
        component=source.component,
        requests=requested_capabilities(source, manifest),
        limits=attrs.evolve(host.limits, **requested),
        config=dict(manifest.config),
        hooks=dict(manifest.hooks),
    )


@pytest.fixture
def load_component(plugin_host: HostFactory) -> ComponentLoader:
    """Factory: component (+ name, requests, grants, limits, config) -> loaded WasmPlugin."""
    return ComponentLoader(plugin_host)


# ----------------------------------------------------------------------------- calling


def call_hook(plugin: WasmPlugin, hook: str, /, **kwargs: Any) -> Any:
    """Call one component's implementation of ``hook`` (not the whole pluggy hook).

    Arguments are the hookspec's, by name. The value is what pluggy would receive from
    this implementation: ``None`` for a WIT ``none``, the ``ok`` value of a ``Result``
    hook (an ``err`` raises :class:`~airssys_plugins.PluginResultError`).
    """
    __tracebackhide__ = True
    # A hook registered through HookOptions(specname=...) lives under another attribute.
    attr = next((a for a in plugin._impl_attrs if a.split("__via__")[0] == hook), None)
    impl: Callable[..., Any] | None = None if attr is None else getattr(plugin, attr, None)
    if impl is None or hook not in plugin.hooks:
        raise AssertionError(
            f"plugin {plugin.name!r} does not implement hook {hook!r}; "
            f"it implements {sorted(plugin.hooks) or 'nothing'}"
        )
    template = impl.__wrapped__  # type: ignore[attr-defined]
    argnames = template.__code__.co_varnames[: template.__code__.co_argcount]
    missing = [a for a in argnames if a not in kwargs]
    unexpected = sorted(set(kwargs) - set(argnames))
    if missing or unexpected:
        problems = [f"missing {missing}"] if missing else []
        problems += [f"unexpected {unexpected}"] if unexpected else []
        raise TypeError(f"hook {hook!r} takes ({', '.join(argnames)}): {'; '.join(problems)}")
    return impl(*(kwargs[a] for a in argnames))


async def acall_hook(plugin: WasmPlugin, hook: str, /, **kwargs: Any) -> Any:
    """:func:`call_hook`, awaited: the component runs on a worker thread, the event loop
    goes on, and cancelling the awaiting task stops the guest (as ``host.ahook`` does)."""
    __tracebackhide__ = True
    from .runtime.cancel import CancelScope, cancel_scope

    scope = CancelScope()

    def run() -> Any:
        with cancel_scope(scope):
            return call_hook(plugin, hook, **kwargs)

    future = asyncio.get_running_loop().run_in_executor(None, contextvars.copy_context().run, run)
    try:
        return await asyncio.shield(future)  # a cancelled await leaves the worker running
    except asyncio.CancelledError:
        scope.cancel()
        await asyncio.wait([future], timeout=5)
        if future.done() and not future.cancelled():
            future.exception()  # retrieved: the PluginCancelled of the stopped guest
        raise


def run_async(awaitable: Awaitable[T], *, timeout: float | None = 30.0) -> T:
    """Run ``awaitable`` in a new event loop and return its result, for plain (sync) test
    functions. Past ``timeout`` seconds it is cancelled (which stops a running guest)
    and :class:`TimeoutError` says so."""
    __tracebackhide__ = True

    async def main() -> T:
        try:
            return await asyncio.wait_for(awaitable, timeout)
        except TimeoutError:
            raise TimeoutError(f"the awaited call did not finish within {timeout} s") from None

    return asyncio.run(main())


# ----------------------------------------------------------------------------- limits


@contextlib.contextmanager
def raises_limit(
    plugin: str,
    *,
    hook: str | None = None,
    reason: str | None = None,
    match: str | None = None,
    kind: type[HookCallError] | tuple[type[HookCallError], ...] = (
        PluginTimeout,
        PluginLimitExceeded,
    ),
) -> Iterator[pytest.ExceptionInfo[HookCallError]]:
    """Assert that the block hits a limit of ``plugin``: ``PluginTimeout`` or
    ``PluginLimitExceeded`` (or ``kind``), naming that plugin, and ``hook`` if given.

    ``reason`` is the error's short classification (``"fuel exhausted"``, ``"timeout"``,
    ``"host call timeout"``, ``"result too large"``...), ``match`` a regular expression
    searched in its message. Yields pytest's ``ExceptionInfo``::

        with raises_limit("hog", hook="spin", reason="fuel exhausted"):
            host.pm.hook.spin()
    """
    __tracebackhide__ = True
    with pytest.raises(kind) as info:
        yield info
    exc = info.value
    problems = []
    if exc.plugin != plugin:
        problems.append(f"it names plugin {exc.plugin!r}, not {plugin!r}")
    if hook is not None and exc.hook != hook:
        problems.append(f"it names hook {exc.hook!r}, not {hook!r}")
    if reason is not None and exc.reason != reason:
        problems.append(f"its reason is {exc.reason!r}, not {reason!r}")
    if match is not None and not re.search(match, str(exc)):
        problems.append(f"its message does not match {match!r}")
    if problems:
        raise AssertionError(
            f"{type(exc).__name__} was raised, but {'; '.join(problems)}:\n  {exc}"
        ) from exc


def raises_timeout(
    plugin: str, *, hook: str | None = None, reason: str | None = None, match: str | None = None
) -> contextlib.AbstractContextManager[pytest.ExceptionInfo[HookCallError]]:
    """:func:`raises_limit` for :class:`~airssys_plugins.PluginTimeout` only (a call's
    deadline: reason ``"timeout"``; a blocking host call: ``"host call timeout"``)."""
    return raises_limit(plugin, hook=hook, reason=reason, match=match, kind=PluginTimeout)


@contextlib.contextmanager
def raises_denied(plugin: str, *rights: str) -> Iterator[pytest.ExceptionInfo[CapabilityDenied]]:
    """Assert that the block raises :class:`~airssys_plugins.CapabilityDenied` for
    ``plugin``, and that each of ``rights`` starts one of its denied lines
    (``"interface kv"``, ``"network http://127.0.0.1:8000"``, ``"env HOME"``...)."""
    __tracebackhide__ = True
    with pytest.raises(CapabilityDenied) as info:
        yield info
    exc = info.value
    problems = []
    if exc.plugin != plugin:
        problems.append(f"it names plugin {exc.plugin!r}, not {plugin!r}")
    for right in rights:
        if not any(line.startswith(right) for line in exc.denied):
            problems.append(f"{right!r} is not among the denied rights {list(exc.denied)}")
    if problems:
        raise AssertionError(
            f"CapabilityDenied was raised, but {'; '.join(problems)}:\n  {exc}"
        ) from exc


# ----------------------------------------------------------------------------- conformance


@attrs.frozen
class Conformance:
    """A component that fits a contract: which hooks it implements (hook -> WIT export),
    which hooks of the contract it leaves out, and the interfaces it imports."""

    plugin: str
    hooks: Mapping[str, str]
    missing: tuple[str, ...]
    imports: tuple[str, ...]


def check_conformance(
    source: str | os.PathLike[str] | bytes,
    contract: ContractSpec | Contract,
    *,
    hooks: Sequence[str] | None = None,
    package: str | None = None,
    name: str | None = None,
) -> Conformance:
    """Check a component's exports against ``contract`` without instantiating it.

    With ``hooks``, each of them must be exported with the contract's WIT type and a
    compatible package version; without, the component must implement at least one hook
    and every hook it exports must fit. Raises
    :class:`~airssys_plugins.ContractMismatchError` listing every problem at once.
    """
    __tracebackhide__ = True
    from .runtime import ComponentImage  # compiles (through the AOT cache) on first use

    if not isinstance(contract, Contract):
        specs = _resolve(contract)
        contract = Contract.from_hookspecs(specs, package=package or _package_beside(specs))
    if name is None:
        if isinstance(source, bytes):
            raise ValueError("give name= when checking a component from bytes")
        name = Path(source).stem
    required = list(contract.hooks) if hooks is None else list(hooks)
    unknown = [h for h in required if h not in contract.hooks]
    if unknown:
        raise ValueError(f"unknown hook(s) {unknown}; the contract has {sorted(contract.hooks)}")
    image = ComponentImage.load(name, source if isinstance(source, bytes) else Path(source))
    problems: list[Mismatch] = []
    implemented: dict[str, str] = {}
    for hook_name, hook in sorted(contract.hooks.items()):
        found = image.find_export(hook.binding.interface, hook.binding.function)
        if found is None:
            if hooks is not None and hook_name in required:
                problems.extend(contract.check(hook, None, None))
            continue
        iface, sig = found
        problems.extend(contract.check(hook, sig, iface))
        where = hook.binding.function
        implemented[hook_name] = f"{iface}#{where}" if iface else where
    if hooks is None and not implemented and not problems:
        expected = ", ".join(sorted(str(h.binding) for h in contract.hooks.values()))
        problems.append(
            Mismatch(
                "*",
                f"at least one of: {expected}",
                "nothing",
                "the component implements none of the host's hooks",
            )
        )
    if problems:
        raise ContractMismatchError(name, problems)
    return Conformance(
        plugin=name,
        hooks=implemented,
        missing=tuple(h for h in sorted(contract.hooks) if h not in implemented),
        imports=tuple(sorted(image.imports)),
    )


@final
class ConformanceChecker:
    """The ``conformance`` fixture: :func:`check_conformance` with the contract and package
    of the pytest configuration as defaults:
    ``conformance(source, hooks=None, *, contract=None, package=None, name=None)``."""

    def __init__(self, default_contract: str, default_package: str):
        self._default_contract = default_contract
        self._default_package = default_package

    def __call__(
        self,
        source: str | os.PathLike[str] | bytes,
        hooks: Sequence[str] | None = None,
        *,
        contract: ContractSpec | Contract | None = None,
        package: str | None = None,
        name: str | None = None,
    ) -> Conformance:
        __tracebackhide__ = True
        if contract is None:
            if not self._default_contract:
                raise ValueError(
                    f"no contract: pass contract=, or set {_INI_CONTRACT} in the pytest "
                    "configuration"
                )
            contract = self._default_contract
        return check_conformance(
            source,
            contract,
            hooks=hooks,
            package=package or self._default_package or None,
            name=name,
        )


@pytest.fixture
def conformance(pytestconfig: pytest.Config) -> ConformanceChecker:
    """Factory: component (+ hooks) -> Conformance, checked against the contract's types."""
    return ConformanceChecker(
        str(pytestconfig.getini(_INI_CONTRACT)), str(pytestconfig.getini(_INI_PACKAGE))
    )
