"""From a component's exports to pluggy hookimpls: matching exports against the contract,
and the hook functions pluggy calls."""

from __future__ import annotations

import functools
import keyword
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence, Set
from types import CodeType, FunctionType, MethodType
from typing import TYPE_CHECKING, Any, Final, final
from weakref import WeakKeyDictionary

import pluggy

from .. import _attrs as attrs
from .. import _log as logging
from .._errors import (
    ContractMismatchError,
    HookCallError,
    Mismatch,
    PluginError,
    PluginLimitExceeded,
    PluginResultError,
    PluginTimeout,
)
from ..contract import wit
from ..contract.annotations import Err
from ..contract.mapping import Contract, HookContract, HookOptions, WitBinding
from ..contract.versions import Adapter, ContractVersion, OlderContract
from ..policy.audit import AuditLog
from ..runtime import BoundFunc, ComponentImage, reentrant_call
from .interfaces import calling_plugin, load_resources
from .plugin import WasmPlugin
from .supervision import PluginUnavailable, Supervisor

if TYPE_CHECKING:
    from ..runtime import resources as _resources

__all__ = ["HookBridge", "Match", "UnboundHook", "unbound_hooks"]

log = logging.getLogger("airssys_plugins")

#: A hook the component implements: the hook, its export (interface, function), options.
Match = tuple[HookContract, tuple[str | None, str], HookOptions]


@functools.lru_cache(maxsize=4096)
def _signature_template(name: str, argnames: tuple[str, ...]) -> Callable[..., None]:
    """A no-op function whose parameters are ``argnames``, for pluggy's introspection.

    Shared by every plugin implementing the hook (it is never called, only read)."""
    _check_identifiers(name, argnames)
    return _named_noop(name, argnames)


def _check_identifiers(name: str, argnames: tuple[str, ...]) -> None:
    for arg in (name, *argnames):
        if not arg.isidentifier() or keyword.iskeyword(arg):
            raise ValueError(f"{arg!r} is not a Python identifier")


def _named_noop(name: str, params: tuple[str, ...]) -> Callable[..., None]:
    """``def name(*params): pass``, made from a no-op's code of that arity renamed, not
    compiled (about 1 µs, against 30-40 µs for ``exec`` of its source)."""
    code = _noop_code(len(params)).replace(co_name=name, co_qualname=name, co_varnames=params)
    noop: Callable[..., None] = FunctionType(code, {}, name)
    return noop


@functools.lru_cache(maxsize=64)
def _noop_code(arity: int) -> CodeType:
    """The code of ``def noop(p0, ..., p{arity-1}): pass``: the module's own no-op with
    ``arity`` parameters (a no-op's bytecode reads none of them, so it is the same for
    every arity; compiling its source cost a new process 25-70 µs per arity)."""
    params = tuple(f"p{i}" for i in range(arity))
    return _noop.__code__.replace(co_argcount=arity, co_nlocals=arity, co_varnames=params)


# What every signature template's code is made from (see _noop_code). No docstring: a
# function made from its code would take that as its own __doc__.
def _noop() -> None:
    pass


_NO_OPTIONS: Final = HookOptions()
#: Whether a signature holds resource handles, by signature object (see _has_handles).
_HANDLES: dict[int, tuple[wit.FuncSig, bool]] = {}


def _has_handles(sig: wit.FuncSig) -> bool:
    """Whether ``sig`` passes resource handles: asked twice per hook and load, and a walk
    of its types each time; kept per signature object (the contract's, shared by loads)."""
    hit = _HANDLES.get(id(sig))
    if hit is not None and hit[0] is sig:
        return hit[1]
    found = next(wit.handles_in(sig), None) is not None
    if found:  # before anything converts a handle of this hook
        load_resources()
    if len(_HANDLES) >= 4096:
        _HANDLES.clear()
    _HANDLES[id(sig)] = (sig, found)
    return found


def _same_interface(a: str | None, b: str) -> bool:
    return a is not None and wit.unversioned(a) == wit.unversioned(b)


@final
class HookBridge:
    """The contract of a ``PluginManager`` (rebuilt when hookspecs are added), and the
    bridge between it and components: which export serves which hook, and the hookimpl
    that calls it under supervision."""

    def __init__(
        self,
        pm: pluggy.PluginManager,
        *,
        package: str | None,
        bindings: Mapping[str, str],
        audit: AuditLog,
        versions: Sequence[ContractVersion] = (),
    ):
        self._pm = pm
        self._package = package
        self._bindings = dict(bindings)
        self._contract = Contract.from_hookspecs(pm, package=package, bindings=self._bindings)
        self._mark = pluggy.HookimplMarker(pm.project_name)
        self._audit = audit
        self._versions = tuple(versions)
        self._older: tuple[Contract, list[OlderContract]] | None = None
        #: Plugin name -> the package id of the contract version it was matched against.
        self.contract_versions: dict[str, str] = {}
        # An older version's hook -> the current hook it serves, and its adapter.
        self._serves: dict[HookContract, tuple[HookContract, Adapter | None]] = {}
        self.older_contracts()  # every problem of the versions now, not at the first load

    @property
    def contract(self) -> Contract:
        names = {n for n, c in vars(self._pm.hook).items() if getattr(c, "spec", None)}
        if names != set(self._contract.hooks):
            self._contract = Contract.from_hookspecs(
                self._pm, package=self._package, bindings=self._bindings
            )
        return self._contract

    def older_contracts(self) -> list[OlderContract]:
        """The older contract versions this host accepts, checked against the current one
        (again when hookspecs were added)."""
        current = self.contract
        if self._older is None or self._older[0] is not current:
            older = [OlderContract.check(v, current, self._pm.project_name) for v in self._versions]
            self._older = (current, older)
            self._serves = {
                o.contract.hooks[name]: served for o in older for name, served in o.serves.items()
            }
        return self._older[1]

    # -- matching exports to hooks --------------------------------------------------------

    def match(
        self, name: str, image: ComponentImage, options: Mapping[str, HookOptions]
    ) -> list[Match]:
        """The hooks component ``name`` implements, against the current contract or the
        older version it targets; every problem at once in a
        :class:`ContractMismatchError`."""
        current = self.contract
        # what a component implements of a contract, under the same options, is worked out
        # once per component (its unbound-hook notes are logged at that first load)
        memo = ("hook matches", id(current), tuple(sorted(options.items())))
        known = image.shared.get(memo)
        if known is not None and known[0] is current:  # the entry holds what its key names
            self.contract_versions[name] = known[2]
            return list(known[1])
        try:
            matches = self._match(current, name, image, options)
        except ContractMismatchError as exc:
            older = self.older_contracts()
            if not older:
                raise
            errors = [exc]
            for version in older:
                try:
                    matches = self._match(version.contract, name, image, options, version)
                except ContractMismatchError as old_exc:
                    errors.append(old_exc)
                    continue
                self.contract_versions[name] = version.version.package
                return matches
            raise _closest(
                name, errors, [str(current.package), *(o.version.package for o in older)]
            ) from None
        package = self.contract_versions[name] = str(current.package)
        image.shared[memo] = (current, tuple(matches), package)
        return matches

    def _match(
        self,
        contract: Contract,
        name: str,
        image: ComponentImage,
        options: Mapping[str, HookOptions],
        older: OlderContract | None = None,
    ) -> list[Match]:
        problems: list[Mismatch] = []
        wanted = self._wanted(contract, options, problems)
        matches: list[Match] = []
        for key, binding in sorted(wanted.items()):
            opts = options.get(key, _NO_OPTIONS)
            target = contract.hooks.get(opts.specname or key)
            if target is None:
                continue
            if older is not None and target.name not in older.serves:
                continue  # a hook the current contract dropped
            found = image.find_export(binding.interface, binding.function)
            if found is None:
                if binding.interface is not None and any(
                    _same_interface(i, binding.interface) for i, _ in image.exports
                ):
                    problems.append(
                        Mismatch(
                            target.name,
                            target.signature.render(expanded=True),
                            "(not exported)",
                            f"interface {binding.interface} is exported without function "
                            f"{binding.function!r}",
                        )
                    )
                continue
            iface, sig = found
            problems.extend(_checked(contract, target, sig, iface, image))
            matches.append((target, (iface, binding.function), opts))
        if problems:
            raise ContractMismatchError(name, problems)
        if not matches:
            raise ContractMismatchError(name, [_nothing_implemented(contract, image)])
        implemented = {hook.name for hook, _, _ in matches}
        for note in unbound_hooks(contract, image.exports, implemented):
            if note.suggestion is not None:  # most likely a typo in the binding
                log.warning("plugin %r: %s", name, note)
            else:
                log.info("plugin %r: %s", name, note)
        used = {export for _, export, _ in matches}
        for export in sorted(set(image.exports) - used, key=str):
            log.debug("plugin %r: ignoring export %s#%s (no hook)", name, *export)
        return matches

    @staticmethod
    def _wanted(
        contract: Contract, options: Mapping[str, HookOptions], problems: list[Mismatch]
    ) -> dict[str, WitBinding]:
        """Hooks the component can implement: every contract hook, plus option keys that
        only exist through specname. Bad options go to ``problems``."""
        for opts in options.values():
            if opts.specname and opts.specname not in contract.hooks:
                problems.append(
                    Mismatch(
                        opts.specname,
                        "a hookspec",
                        "(none)",
                        f"specname {opts.specname!r} is no hook",
                    )
                )
        wanted = {h: c.binding for h, c in contract.hooks.items()}
        for key, opts in options.items():
            if key in wanted:
                continue
            if not opts.specname:
                problems.append(
                    Mismatch(
                        key, "a hook of the contract", "(none)", f"options for unknown hook {key!r}"
                    )
                )
                continue
            local = wit.kebab(key)
            wanted[key] = WitBinding(contract.package.interface(local), local)
        return wanted

    # -- the hookimpls --------------------------------------------------------------------

    def impl(
        self, plugin: WasmPlugin, hook: HookContract, bound: BoundFunc, opts: HookOptions
    ) -> Callable[..., Any]:
        """The hookimpl of ``hook`` for ``plugin``, marked with ``opts``; for a hook of an
        older contract version, the hookimpl of the current hook it serves.

        The common hooks (no resource handles, not served for an older contract version)
        get a function made by a maker shared by every plugin of the compiled component
        with the same hook, export and options (see :func:`_shared_maker`): per plugin,
        a method object binding it to the plugin."""
        served = self._serves.get(hook) if self._serves else None  # (a deep hash)
        if served is None and not _has_handles(hook.signature):
            export = (bound.interface, bound.function)
            return _shared_maker(self._mark, hook, export, opts, plugin)(plugin)
        call = self._supervised_call(plugin, hook, bound)
        name = plugin.name
        impl: Callable[..., Any]
        if served is not None:
            current, adapter = served
            impl = _adapted(plugin, hook, current, adapter, bound, call)
            hook = current
        elif hook.unwrap_result:

            def impl(*args: Any) -> Any:
                value = call(*args)
                if hook.historic:  # replayed into every new instance, as any historic call
                    plugin._record(bound, args)
                if isinstance(value, Err):
                    raise _result_error(name, hook.name, value)
                return value.value

        elif hook.historic:

            def impl(*args: Any) -> Any:
                result = call(*args)
                plugin._record(bound, args)
                return result

        else:
            impl = call  # pluggy calls it directly, no frame in between

        impl.__name__ = hook.name
        impl.__qualname__ = f"WasmPlugin[{name}].{hook.name}"
        impl.__doc__ = f"{plugin.hooks.get(hook.name, bound.function)} in component {name!r}"
        # pluggy reads argument names from the code object behind __wrapped__.
        impl.__wrapped__ = _signature_template(hook.name, hook.argnames)  # type: ignore[attr-defined]
        marked: Callable[..., Any] = self._mark(
            tryfirst=opts.tryfirst, trylast=opts.trylast, specname=opts.specname
        )(impl)
        return marked

    def hook_functions(self, plugin: WasmPlugin, matches: Sequence[Match]) -> list[HookPlan]:
        """What loading ``plugin`` attaches for ``matches``: per hook, its name, the
        attribute pluggy finds it under, what makes the plugin's hook function and the
        export's name. The common hooks' call plans are bound at their first call (see
        :class:`_LazyHook`); the others' now, on the plugin's first instance.

        The same matches (the bridge's match memo gives the same objects while the
        contract and the options are the same) of the same compiled component give the
        same list: kept with the component's makers, so a load of a component loaded
        before binds and looks up nothing per hook. A hook with resource handles, or
        served for an older contract version, gets its function made per plugin."""
        component = plugin.image.component
        plans = _HOOK_PLANS.get(component)
        key = (self._mark.project_name, *map(id, matches))
        if plans is not None:
            known = plans.get(key)
            if known is not None and all(a is b for a, b in zip(known[0], matches, strict=True)):
                return known[1]
        plan: list[HookPlan] = []
        every_common = True
        for hook, (iface, func), opts in matches:
            attr = (opts.specname and f"{opts.specname}__via__{hook.name}") or hook.name
            served = self._serves.get(hook) if self._serves else None  # (a deep hash)
            make: Maker
            if served is None and not _has_handles(hook.signature):
                make = _shared_maker(self._mark, hook, (iface, func), opts, plugin)
            else:  # bound now: its hookimpl is made per plugin, around the plan
                every_common = False
                bound = plugin.instances[0].bind(
                    hook.name, iface, func, hook.signature, timeout=opts.timeout
                )
                make = functools.partial(self._made, hook, bound, opts)
            plan.append((hook.name, attr, make, _export_name(iface, func)))
        if every_common:  # (the others hold the bridge, which must not outlive its host)
            if plans is None:
                plans = _HOOK_PLANS.setdefault(component, {})
            if len(plans) >= _CHECKS_KEPT:  # many contracts over one live component
                plans.clear()
            plans[key] = (tuple(matches), plan)
        return plan

    def _made(
        self, hook: HookContract, bound: BoundFunc, opts: HookOptions, plugin: WasmPlugin
    ) -> Callable[..., Any]:
        return self.impl(plugin, hook, bound, opts)

    def _supervised_call(
        self, plugin: WasmPlugin, hook: HookContract, bound: BoundFunc
    ) -> Callable[..., Any]:
        context = plugin.instance.context
        historic = hook.historic
        raw_call = plugin.broadcast if historic else plugin.call
        supervisor = plugin.supervisor
        assert supervisor is not None
        audit = self._audit
        name = plugin.name
        # Handles need the store they live in: such calls go through resources.call.
        with_handles = _has_handles(hook.signature)

        def call(*args: Any) -> Any:
            # A host function (possibly on a worker thread) calling back into the plugin
            # that is waiting for it would deadlock; the component model forbids it anyway.
            if calling_plugin() is context:
                raise reentrant_call(name, hook.name)
            if supervisor.open or supervisor.retry_at is not None:  # read without a lock
                supervisor.before_call(hook.name)
            try:
                if with_handles:
                    result = _call_with_handles(plugin, bound, args)
                elif plugin._idle is None and not historic:  # one instance: call it directly
                    result = plugin.instances[0].call(bound, args)
                else:
                    result = raw_call(bound, args)
            except HookCallError as exc:
                if not isinstance(exc, PluginUnavailable):
                    supervisor.failure(exc)
                if isinstance(exc, PluginTimeout | PluginLimitExceeded):
                    audit.record("limit", name, str(exc), hook=hook.name, reason=exc.reason)
                raise
            if supervisor.consecutive:
                supervisor.success()
            return result

        if with_handles:  # the plugin's resources: their methods are supervised alike
            from ..runtime import resources as _resources  # (a hook passing handles)

            guard = _member_guard(plugin, audit)
            for instance in plugin.instances:
                _resources.supervise(instance, guard)
        return call


Maker = Callable[[WasmPlugin], Callable[..., Any]]
#: A hook a load attaches: (hook name, attribute, maker of its function, export name).
HookPlan = tuple[str, str, Maker, str]

#: The hook-function makers of each compiled component, kept while it lives: (project,
#: hook, export, options) -> (hook, maker); the entry holds the hook its key names, so
#: the id stays its own (see :func:`_shared_maker`).
_Makers = dict[tuple[Any, ...], tuple[HookContract, Maker]]
_MAKERS: WeakKeyDictionary[Any, _Makers] = WeakKeyDictionary()
#: What loads of each compiled component attach (see :meth:`HookBridge.hook_functions`),
#: kept while it lives: (project, the matches' ids) -> (the matches, what to attach).
_HOOK_PLANS: WeakKeyDictionary[Any, dict[tuple[Any, ...], tuple[tuple[Any, ...], list[Any]]]] = (
    WeakKeyDictionary()
)


def _shared_maker(
    mark: pluggy.HookimplMarker,
    hook: HookContract,
    export: tuple[str | None, str],
    opts: HookOptions,
    plugin: WasmPlugin,
) -> Maker:
    """What makes ``plugin``'s function for ``hook``: one per compiled component, hook,
    export and options, shared by the plugins loaded from that component."""
    component = plugin.image.component
    makers = _MAKERS.get(component)
    if makers is None:
        makers = _MAKERS.setdefault(component, {})
    key = (mark.project_name, id(hook), export, opts)
    known = makers.get(key)
    if known is not None and known[0] is hook:
        return known[1]
    maker = _maker(mark, hook, export, opts, plugin)
    if len(makers) >= _CHECKS_KEPT:  # many contracts over one live component: start again
        makers.clear()
    makers[key] = (hook, maker)
    return maker


def _maker(
    mark: pluggy.HookimplMarker,
    hook: HookContract,
    export: tuple[str | None, str],
    opts: HookOptions,
    plugin: WasmPlugin,
) -> Maker:
    """The maker of the supervised hook functions of ``hook`` served by ``export``.

    One function is made here, for every plugin of the compiled component with this hook,
    export and options: its parameters are the plugin and the hook's arguments, and
    pluggy's marker options, its name and documentation are its own, made once. A plugin's
    hook function is that function bound to the plugin (a method object, 64 bytes: no
    function object, cell or strings of its own), which reads its plugin's state
    (supervisor, instances, context) when called. pluggy's ``register`` takes it as any
    bound method: the plugin's parameter is no hook argument (see :func:`_bound_template`
    for what its ``__wrapped__`` gives pluggy and :func:`..testing.call_hook`).

    The function's call plan is made at its first call (see :class:`_LazyHook`): a load
    binds nothing, and a process pays for the hooks it calls, not the hooks a component
    exports. Hooks with arguments named like the lazy function's own (``_ap_...``) are
    bound now."""
    hook_name = hook.name
    iface, func = export
    shared: Callable[..., Any]
    if _lazy_names_free(hook_name, hook.argnames):
        shared = _LazyHook(hook, iface, func, opts.timeout).function
    else:
        bound = plugin.instances[0].bind(
            hook_name, iface, func, hook.signature, timeout=opts.timeout
        )
        shared = _hook_function(hook_name, hook.argnames, hook.historic, hook.unwrap_result, bound)
    shared.__qualname__ = f"WasmPlugin.{hook_name}"
    shared.__wrapped__ = _bound_template(hook_name, hook.argnames)  # type: ignore[attr-defined]
    where = _export_name(iface, func)
    shared.__doc__ = f"{where} of a WebAssembly component (the plugin's hook {hook_name!r})"
    mark(tryfirst=opts.tryfirst, trylast=opts.trylast, specname=opts.specname)(shared)

    def make(plugin: WasmPlugin) -> Callable[..., Any]:
        return MethodType(shared, plugin)

    return make


def _lazy_factory(_ap_bound: Any) -> Callable[..., Any]:
    """A shared hook function before its first call: one free variable, the cell that
    its call plan goes into, as the hook's real code has (so the code can be swapped)."""

    def hook_function(
        _ap_plugin: Any, *_ap_args: Any, _ap_lazy: Any = None, **_ap_kwargs: Any
    ) -> Any:
        if _ap_lazy is None:  # never: every lazy function has its _LazyHook as a default
            raise TypeError(f"{_ap_bound!r} is no hook function")  # (keeps the cell free)
        return _ap_lazy.first_call(_ap_plugin, _ap_args, _ap_kwargs)

    return hook_function


#: The names of the lazy function's parameters (a hook whose arguments start so is bound
#: at load: a keyword argument must never reach its ``_ap_lazy``).
_LAZY_PREFIX: Final = "_ap_"
#: Held while a shared hook function is bound (first calls of a process: rare).
_BIND_LOCK: Final = threading.Lock()


def _lazy_names_free(name: str, argnames: tuple[str, ...]) -> bool:
    return not any(a.startswith(_LAZY_PREFIX) for a in (name, *argnames))


@final
class _LazyHook:
    """What a shared hook function needs to bind itself at its first call.

    Everything that decides whether a load succeeds is done at load: the export is
    found, its type checked against the contract, the rights decided. What is left is
    the call plan (the export's index, the converters, the raw route, the
    :class:`BoundFunc` record) and the hook function's own code: about 100 µs a hook in a
    new process, the same for every plugin of the component. The function made here
    takes any arguments and, at its first call, under a lock, binds the plan, puts it in
    its one cell and swaps its code for the hook's real code, then calls that: from the
    second call on it is the function an eager bind would have made (one frame from
    pluggy, nothing checked per call). The cell is set before the code is swapped, and a
    call that started on the lazy code finds the plan bound: no call sees half of it."""

    __slots__ = (
        "argnames",
        "export",
        "function",
        "historic",
        "hook",
        "interface",
        "signature",
        "timeout",
        "unwrap",
    )

    def __init__(
        self, hook: HookContract, interface: str | None, function: str, timeout: float | None
    ):
        self.hook = hook.name
        self.argnames = hook.argnames
        self.signature = hook.signature
        self.historic = hook.historic
        self.unwrap = hook.unwrap_result
        self.interface = interface
        self.export = function
        self.timeout = timeout
        shared = _lazy_factory(None)
        shared.__name__ = hook.name
        # (a cycle until the first call drops it: the function and this, nothing else)
        shared.__kwdefaults__ = {"_ap_lazy": self}
        self.function = shared

    def first_call(self, plugin: WasmPlugin, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        shared = self.function
        with _BIND_LOCK:
            if shared.__kwdefaults__ is not None:  # not bound yet
                bound = plugin.instances[0].bind(
                    self.hook, self.interface, self.export, self.signature, timeout=self.timeout
                )
                code = _hook_code(self.hook, self.argnames, self.historic, self.unwrap)
                closure = shared.__closure__
                assert closure is not None
                closure[0].cell_contents = bound  # first: the real code reads it
                shared.__code__ = code
                shared.__kwdefaults__ = None
        return shared(plugin, *args, **kwargs)


def _finish(
    plugin: WasmPlugin,
    hook: str,
    bound: BoundFunc,
    args: tuple[Any, ...],
    historic: bool,
    unwrap: bool,
) -> Any:
    """A supervised call of a historic hook or one whose result is unwrapped: recorded
    (replayed into every new instance) and unwrapped as the hook says."""
    value = _supervised(plugin, hook, bound, args, historic)
    if historic:
        plugin._record(bound, args)
    if unwrap:
        if isinstance(value, Err):
            raise _result_error(plugin.name, hook, value)
        return value.value
    return value


#: The source of the common hook function: one frame from pluggy (no historic record, no
#: unwrapped result). ``__P__`` becomes a prefix no argument name starts with. Its one
#: free variable is its call plan (the hook's name is the plan's); the names it calls
#: (``calling_plugin``, ``reentrant_call``, ``HookCallError``, ``_failed``) are this
#: module's globals, which the hook's own argument names cannot shadow (they are
#: parameters, renamed in ``co_varnames``; globals are ``co_names``).
_COMMON_BODY = """
def factory(__P__bound):
    def __NAME__(__P__plugin, __ARGS__):
        __P__args = (__TUPLE__)
        # A host function (possibly on a worker thread) calling back into the plugin that
        # is waiting for it would deadlock; the component model forbids it anyway.
        if calling_plugin() is __P__plugin._context:
            raise reentrant_call(__P__plugin.name, __P__bound.hook)
        __P__supervisor = __P__plugin.supervisor
        if __P__supervisor.open or __P__supervisor.retry_at is not None:  # read without a lock
            __P__supervisor.before_call(__P__bound.hook)
        try:
            if __P__plugin._idle is None:  # one instance: call it directly
                __P__result = __P__plugin.instances[0].call(__P__bound, __P__args)
            else:
                __P__result = __P__plugin.call(__P__bound, __P__args)
        except HookCallError as __P__exc:
            _failed(__P__plugin, __P__bound.hook, __P__exc)
            raise
        if __P__supervisor.consecutive:
            __P__supervisor.success()
        return __P__result
    return __NAME__
"""

_OTHER_BODY = """
def factory(__P__bound):
    def __NAME__(__P__plugin, __ARGS__):
        return _finish(
            __P__plugin, __P__bound.hook, __P__bound, (__TUPLE__), __HISTORIC__, __UNWRAP__
        )
    return __NAME__
"""


@functools.lru_cache(maxsize=4096)
def _bound_template(name: str, argnames: tuple[str, ...]) -> Callable[..., None]:
    """The ``__wrapped__`` of a shared hook function: a no-op ``name(*argnames)`` (what
    :func:`airssys_plugins.testing.call_hook` reads the hook's arguments from, as for every
    hookimpl), itself wrapping a no-op with the plugin's parameter first, where pluggy's
    ``varnames`` ends its walk (it leaves the first parameter of a bound method out)."""
    _check_identifiers(name, argnames)
    prefix = "_ap_"
    while any(a.startswith(prefix) for a in argnames):
        prefix = f"_{prefix}"
    outer = _named_noop(name, argnames)
    outer.__wrapped__ = _named_noop(name, (f"{prefix}plugin", *argnames))  # type: ignore[attr-defined]
    return outer


def _hook_function(
    name: str, argnames: tuple[str, ...], historic: bool, unwrap: bool, bound: Any
) -> Callable[..., Any]:
    """The hook function ``name(plugin, *argnames)`` calling ``bound`` (see :func:`_maker`):
    the hook's code (:func:`_hook_code`) over one cell holding ``bound``."""
    code = _hook_code(name, argnames, historic, unwrap)
    function: Callable[..., Any] = FunctionType(code, globals(), name, None, (_cell(bound),))
    return function


def _cell(value: Any) -> Any:
    """A closure cell holding ``value``."""
    closure = (lambda: value).__closure__
    assert closure is not None
    return closure[0]


@functools.lru_cache(maxsize=1024)
def _hook_code(name: str, argnames: tuple[str, ...], historic: bool, unwrap: bool) -> CodeType:
    """The code of hook function ``name(plugin, *argnames)``: compiled once per arity and
    kind (:func:`_generic_code`, parameters ``_ap_a0``, ``_ap_a1``...), renamed per hook
    signature with its own name and parameter names (about 2 µs: compiling it for each
    of a contract's hooks cost a new process's first load about 300 µs a hook)."""
    _check_identifiers(name, argnames)
    prefix = "_ap_"
    while any(a.startswith(prefix) for a in (name, *argnames)):
        prefix = f"_{prefix}"
    code = _generic_code(len(argnames), historic, unwrap, prefix)
    names = (f"{prefix}plugin", *argnames, *code.co_varnames[len(argnames) + 1 :])
    return code.replace(co_name=name, co_qualname=name, co_varnames=names)


@functools.lru_cache(maxsize=256)
def _generic_code(arity: int, historic: bool, unwrap: bool, prefix: str) -> CodeType:
    """The code of hook functions of ``arity`` arguments named ``{prefix}a0``...,
    compiled from the source (``_COMMON_BODY``, ``_OTHER_BODY``): one ``exec`` per arity,
    kind and prefix in a process, made at the first call of such a hook (a load compiles
    nothing; 250-350 µs a first call)."""
    args = [f"{prefix}a{i}" for i in range(arity)]
    common = not (historic or unwrap)
    body = _COMMON_BODY if common else _OTHER_BODY
    source = (
        body.replace("__P__", prefix)
        .replace("__NAME__", f"{prefix}hook_function")  # not {prefix}hook: a parameter
        .replace("__ARGS__", ", ".join(args))
        .replace("__TUPLE__", "".join(f"{a}, " for a in args))
        .replace("__HISTORIC__", str(historic))
        .replace("__UNWRAP__", str(unwrap))
    )
    namespace: dict[str, Any] = {}
    exec(source, namespace)  # generated names only; internals prefixed apart
    code: CodeType = namespace["factory"](None).__code__
    if code.co_freevars != (f"{prefix}bound",):  # pragma: no cover - the source says so
        raise RuntimeError(f"a hook function's code has free variables {code.co_freevars}")
    return code


@functools.lru_cache(maxsize=4096)
def _export_name(interface: str | None, function: str) -> str:
    """``interface#function``: one string per export, shared by the plugins naming it."""
    return f"{interface}#{function}" if interface else function


def _supervised(
    plugin: WasmPlugin, hook: str, bound: BoundFunc, args: tuple[Any, ...], historic: bool
) -> Any:
    """A supervised call of ``bound`` (every instance of the pool for a historic hook)."""
    if calling_plugin() is plugin._context:
        raise reentrant_call(plugin.name, hook)
    supervisor: Supervisor = plugin.supervisor  # type: ignore[assignment]
    if supervisor.open or supervisor.retry_at is not None:
        supervisor.before_call(hook)
    try:
        if plugin._idle is None and not historic:
            result = plugin.instances[0].call(bound, args)
        elif historic:
            result = plugin.broadcast(bound, args)
        else:
            result = plugin.call(bound, args)
    except HookCallError as exc:
        _failed(plugin, hook, exc)
        raise
    if supervisor.consecutive:
        supervisor.success()
    return result


def _failed(plugin: WasmPlugin, hook: str, exc: HookCallError) -> None:
    """A failed hook call: counted by the plugin's supervisor (unless it was refused by
    it), and audited when a limit stopped it."""
    supervisor = plugin.supervisor
    if supervisor is not None and not isinstance(exc, PluginUnavailable):
        supervisor.failure(exc)
    if plugin._audit is not None and isinstance(exc, PluginTimeout | PluginLimitExceeded):
        plugin._audit.record("limit", plugin.name, str(exc), hook=hook, reason=exc.reason)


def _result_error(plugin: str, hook: str, value: Err[Any]) -> PluginResultError:
    return PluginResultError(
        f"plugin {plugin!r} returned an error from hook {hook!r}: {value.value!r}",
        plugin=plugin,
        hook=hook,
        error=value.value,
    )


def _member_guard(plugin: WasmPlugin, audit: AuditLog) -> _resources.Guard:
    """Supervision of a plugin's resource member calls (``counter.get()`` on a proxy), as
    for its hooks: a failure counts, an open circuit refuses the call."""
    supervisor = plugin.supervisor
    assert supervisor is not None
    name = plugin.name

    def guard(what: str, run: Callable[[], Any]) -> Any:
        if supervisor.open or supervisor.retry_at is not None:
            supervisor.before_call(what)
        try:
            result = run()
        except HookCallError as exc:
            if not isinstance(exc, PluginUnavailable):
                supervisor.failure(exc)
            if isinstance(exc, PluginTimeout | PluginLimitExceeded):
                audit.record("limit", name, str(exc), hook=what, reason=exc.reason)
            raise
        if supervisor.consecutive:
            supervisor.success()
        return result

    return guard


def _call_with_handles(plugin: WasmPlugin, bound: BoundFunc, args: tuple[Any, ...]) -> Any:
    """A hook call whose arguments or result hold resource handles: on the instance that
    made the handles it passes, else on an idle one (a handle it returns stays tied to
    that instance)."""
    from ..runtime import resources as _resources

    idle = plugin._idle
    if idle is None:
        return _resources.call(plugin.instances[0], bound, args, interface=bound.interface)
    owner = _resources.owning_instance(args)
    if owner is not None:  # a plugin's handle can only go back to the instance that made it
        return _resources.call(owner, bound, args, interface=bound.interface)
    instance = idle.get()
    try:
        return _resources.call(instance, bound, args, interface=bound.interface)
    finally:
        idle.put(instance)


def _checked(
    contract: Contract,
    target: HookContract,
    sig: wit.FuncSig,
    iface: str | None,
    image: ComponentImage,
) -> list[Mismatch]:
    """``contract.check`` of the export found for ``target``, then its resources' members.
    Without resources in the hook's signature the answer depends on nothing but the
    contract, the hook and the export: kept per component (:attr:`ComponentImage.shared`),
    so loading the same component again checks nothing again."""
    if _has_handles(target.signature):
        return contract.check(target, sig, iface) or _resource_members(target, image, iface)
    memo = image.shared
    key = ("contract-check", id(contract), id(target), id(sig), iface)
    hit = memo.get(key)
    if hit is not None and hit[0] is contract and hit[1] is target and hit[2] is sig:
        return list(hit[3])
    problems = contract.check(target, sig, iface)
    if len(memo) >= _CHECKS_KEPT:  # many hosts (contracts) over one component: start again
        memo.clear()
    memo[key] = (contract, target, sig, tuple(problems))
    return problems


#: Most entries a component's memo keeps (hooks times the contracts that loaded it).
_CHECKS_KEPT = 4096


def _resource_members(
    hook: HookContract, image: ComponentImage, iface: str | None
) -> list[Mismatch]:
    """The members of each resource the component exports for ``hook`` (a ``@resource``
    class in its signature, not one the host provides), checked against its exports in
    the interface that exports them: every missing or different one."""
    from ..runtime import resources as _resources

    problems: list[Mismatch] = []
    seen: set[str] = set()
    for handle in wit.handles_in(hook.signature):
        res = handle.resource
        if res.name in seen or _resources.is_host_resource(res):
            continue
        seen.add(res.name)
        home = _resources.home_interface(image, res.name, iface)
        if home is False:  # imported by the component (linking checks it), or memberless
            continue
        assert not isinstance(home, bool)
        where = home or "the component root"
        for function, expected in res.functions():
            found = image.find_export(home, function)
            if found is None:
                problems.append(
                    Mismatch(
                        hook.name,
                        expected.render(expanded=True),
                        "(not exported)",
                        f"resource `{res.name}`: {where} does not export {function}",
                    )
                )
            elif found[1] != expected:
                problems.append(
                    Mismatch(
                        hook.name,
                        expected.render(expanded=True),
                        found[1].render(expanded=True),
                        f"resource `{res.name}`: {function} has another signature",
                    )
                )
    return problems


def _adapted(
    plugin: WasmPlugin,
    old: HookContract,
    new: HookContract,
    adapter: Adapter | None,
    bound: BoundFunc,
    call: Callable[..., Any],
) -> Callable[..., Any]:
    """The hookimpl of current hook ``new`` served by the export of older hook ``old``:
    through ``adapter``, or (same signature) by position."""
    name = plugin.name

    def old_call(*args: Any) -> Any:
        value = call(*args)
        if old.historic:
            plugin._record(bound, args)
        if old.unwrap_result:
            if isinstance(value, Err):
                raise _result_error(name, old.name, value)
            return value.value
        return value

    if adapter is None:
        return old_call

    def by_name(**kwargs: Any) -> Any:
        unknown = set(kwargs) - set(old.argnames)
        missing = [a for a in old.argnames if a not in kwargs]
        if unknown or missing:
            raise TypeError(
                f"adapter of hook {new.name!r} called the older hook with "
                f"{sorted(kwargs)}; it takes {list(old.argnames)}"
            )
        return old_call(*(kwargs[a] for a in old.argnames))

    def impl(*args: Any) -> Any:
        return adapter(by_name, **dict(zip(new.argnames, args, strict=True)))

    return impl


def _closest(name: str, errors: list[ContractMismatchError], accepted: list[str]) -> PluginError:
    """The mismatch of the version the component most likely targets (the fewest
    problems, version problems counted last), saying which versions the host accepts."""

    def weight(exc: ContractMismatchError) -> tuple[int, int]:
        versions = sum("incompatible package version" in m.detail for m in exc.mismatches)
        return (versions, len(exc.mismatches) - versions)

    best = min(errors, key=weight)
    note = Mismatch(
        "*",
        f"one of the contract versions {', '.join(accepted)}",
        "none of them",
        "the host accepts these versions side by side; the component fits none",
    )
    return ContractMismatchError(name, [*best.mismatches, note])


@final
@attrs.frozen
class UnboundHook:
    """A hook bound to a WIT function (``wit_binding``/``bindings=``) that a component does
    not export, and the export it probably meant (same function name elsewhere, or a close
    interface name), if any."""

    hook: str
    binding: WitBinding
    suggestion: str | None = None

    def __str__(self) -> str:
        text = (
            f"hook {self.hook!r} is bound to {self.binding}, which the component does not "
            "export, so it does not implement the hook"
        )
        if self.suggestion is not None:
            text += f"; it exports {self.suggestion}: is the binding misspelt?"
        return text


def unbound_hooks(
    contract: Contract, exports: Iterable[tuple[str | None, str]], implemented: Set[str]
) -> list[UnboundHook]:
    """The hooks bound to existing WIT that a component with ``exports`` leaves out (not in
    ``implemented``), each with the export it may have meant. Generated hooks are left out:
    a component implements any subset of those by design."""
    exported = [(i, f) for i, f in exports]
    shown = [f if i is None else f"{i}#{f}" for i, f in exported]
    notes = []
    for name, hook in sorted(contract.hooks.items()):
        if name in implemented or contract.is_generated(hook):
            continue
        want = str(hook.binding)
        same_function = [
            text for (_, f), text in zip(exported, shown, strict=True) if f == hook.binding.function
        ]
        if same_function:
            guess: str | None = same_function[0]
        else:
            import difflib  # imported on first use: most unbound hooks name a function

            close = difflib.get_close_matches(want, shown, n=1, cutoff=0.8)
            guess = close[0] if close else None
        notes.append(UnboundHook(name, hook.binding, guess))
    return notes


def _nothing_implemented(contract: Contract, image: ComponentImage) -> Mismatch:
    exported = ", ".join(sorted(f"{i}#{f}" if i else f for i, f in image.exports)) or "nothing"
    expected = ", ".join(sorted(str(c.binding) for c in contract.hooks.values()))
    return Mismatch(
        "*",
        f"at least one of: {expected}",
        exported,
        "the component implements none of the host's hooks",
    )
