"""PluginHost: WebAssembly components registered as ordinary pluggy plugins."""

from __future__ import annotations

import keyword
import logging
import os
import threading
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, Final, final

import attrs
import pluggy

from . import _wit as wit
from ._annotations import Err
from ._contract import Contract, HookContract, WitBinding
from ._errors import ContractMismatchError, Mismatch, PluginConflictError, PluginResultError
from ._runtime import BoundFunc, ComponentImage, PluginInstance

__all__ = ["HookOptions", "PluginHost", "WasmPlugin"]

log = logging.getLogger("airssys_plugins")

_UNSET: Final[Any] = object()


@final
@attrs.frozen
class HookOptions:
    """pluggy hookimpl options for one hook of a component.

    ``specname`` registers the component's implementation of this hook for another
    hookspec (pluggy's ``specname``), e.g. after a hook was renamed.
    """

    tryfirst: bool = False
    trylast: bool = False
    specname: str | None = None


@final
class WasmPlugin:
    """A loaded component as pluggy sees it: one attribute per implemented hook.

    pluggy registers it like any plugin object; ``name`` is its registration name.
    """

    def __init__(self, name: str, image: ComponentImage, instance: PluginInstance):
        self.name = name
        self.image = image
        self.instance = instance
        #: Hook name -> the WIT function implementing it,
        #: e.g. ``textpipe:hooks/transform@1.0.0#transform``.
        self.hooks: dict[str, str] = {}
        self._history: list[tuple[BoundFunc, tuple[Any, ...]]] = []
        self._history_lock = threading.Lock()

    @property
    def path(self) -> Path | None:
        return self.image.path

    @property
    def sha256(self) -> str:
        return self.image.sha256

    def __repr__(self) -> str:
        return f"<WasmPlugin {self.name!r} hooks={sorted(self.hooks)} from {self.path}>"

    def _record(self, bound: BoundFunc, args: tuple[Any, ...]) -> None:
        with self._history_lock:
            self._history.append((bound, args))

    def _replay_history(self) -> None:
        """Run historic hook calls again in a fresh instance (its state died with the old)."""
        with self._history_lock:
            history = list(self._history)
        for bound, args in history:
            self.instance.call(bound, args)


def _signature_template(name: str, argnames: tuple[str, ...]) -> Callable[..., None]:
    """A no-op function whose parameters are ``argnames``, for pluggy's introspection."""
    for arg in (name, *argnames):
        if not arg.isidentifier() or keyword.iskeyword(arg):
            raise ValueError(f"{arg!r} is not a Python identifier")
    namespace: dict[str, Any] = {}
    exec(f"def {name}({', '.join(argnames)}): pass", namespace)  # identifiers checked above
    template: Callable[..., None] = namespace[name]
    return template


class PluginHost:
    """Loads WebAssembly components into a pluggy ``PluginManager``.

    The contract is the manager's hookspecs: ``pm.hook.transform(text=...)`` then calls
    Python plugins and components alike::

        pm = pluggy.PluginManager("textpipe")
        pm.add_hookspecs(TextHooks)
        host = PluginHost(pm, package="textpipe:hooks@1.0.0")
        host.load("plugins/shout.wasm")
        pm.hook.transform(text="hi")

    ``package`` is the WIT package id of the generated interfaces (default
    ``<project>:hooks@1.0.0``); ``bindings`` binds hooks to existing WIT functions
    (see :func:`wit_binding`); ``timeout`` is the default per-call deadline in seconds
    (``None``: no deadline).
    """

    def __init__(
        self,
        pm: pluggy.PluginManager,
        *,
        package: str | None = None,
        bindings: Mapping[str, str] | None = None,
        timeout: float | None = 1.0,
        compile_cache: bool = True,
    ):
        self.pm = pm
        self.timeout = timeout
        self.compile_cache = compile_cache
        self._package = package
        self._bindings = dict(bindings or {})
        self._contract = Contract.from_hookspecs(pm, package=package, bindings=self._bindings)
        self._plugins: dict[str, WasmPlugin] = {}
        self._lock = threading.RLock()
        self._mark = pluggy.HookimplMarker(pm.project_name)

    @property
    def contract(self) -> Contract:
        """The host's contract, rebuilt if hookspecs were added since."""
        names = {n for n, c in vars(self.pm.hook).items() if getattr(c, "spec", None)}
        if names != set(self._contract.hooks):
            self._contract = Contract.from_hookspecs(
                self.pm, package=self._package, bindings=self._bindings
            )
        return self._contract

    @property
    def plugins(self) -> Mapping[str, WasmPlugin]:
        """The loaded components by name."""
        return dict(self._plugins)

    def __iter__(self) -> Iterator[WasmPlugin]:
        return iter(list(self._plugins.values()))

    def __enter__(self) -> PluginHost:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def load(
        self,
        source: str | os.PathLike[str] | bytes,
        *,
        name: str | None = None,
        hooks: Mapping[str, HookOptions] | None = None,
        timeout: float | None = _UNSET,
    ) -> WasmPlugin:
        """Load a component (a path to a ``.wasm`` file, or its bytes) and register it.

        Its exports are checked against the contract first: every mismatch is reported at
        once in a :class:`ContractMismatchError`. ``hooks`` gives per-hook options.
        """
        if isinstance(source, bytes):
            if name is None:
                raise ValueError("give a name= when loading a component from bytes")
            origin: Path | bytes = source
        else:
            origin = Path(source)
            name = name or origin.stem
        with self._lock:
            if name in self._plugins or self.pm.get_plugin(name) is not None:
                raise PluginConflictError(
                    f"a plugin named {name!r} is already registered; unload it first or "
                    "load this one with another name=",
                    plugin=name,
                )
            image = ComponentImage.load(name, origin, cache=self.compile_cache)
            matches = self._match(name, image, dict(hooks or {}))
            instance = PluginInstance(image, timeout=self.timeout if timeout is _UNSET else timeout)
            plugin = WasmPlugin(name, image, instance)
            instance.on_new_instance = plugin._replay_history
            try:
                instance.instantiate()
                for hook, (iface, func), opts in matches:
                    bound = instance.bind(hook.name, iface, func, hook.signature)
                    attr = (opts.specname and f"{opts.specname}__via__{hook.name}") or hook.name
                    setattr(plugin, attr, self._impl(plugin, hook, bound, opts))
                    plugin.hooks[hook.name] = f"{iface}#{func}" if iface else func
                self.pm.register(plugin, name=name)
            except BaseException:
                instance.close()
                raise
            self._plugins[name] = plugin
            log.info("loaded plugin %r (hooks: %s)", name, ", ".join(sorted(plugin.hooks)))
            return plugin

    def unload(self, name: str) -> None:
        """Unregister the plugin from pluggy and free its instance."""
        with self._lock:
            if name not in self._plugins:
                raise KeyError(f"no component plugin named {name!r} is loaded")
            plugin = self._plugins.pop(name)
            if self.pm.get_plugin(name) is plugin:
                self.pm.unregister(plugin, name=name)
            plugin.instance.close()

    def close(self) -> None:
        """Unload every component (close Stores before the interpreter exits)."""
        for name in list(self._plugins):
            self.unload(name)

    # -- matching exports to hooks --------------------------------------------------------

    def _match(
        self, name: str, image: ComponentImage, options: dict[str, HookOptions]
    ) -> list[tuple[HookContract, tuple[str | None, str], HookOptions]]:
        contract = self.contract
        unknown_spec = [
            o.specname for o in options.values() if o.specname and o.specname not in contract.hooks
        ]
        problems: list[Mismatch] = []
        for spec in unknown_spec:
            problems.append(
                Mismatch(spec or "", "a hookspec", "(none)", f"specname {spec!r} is no hook")
            )
        matches: list[tuple[HookContract, tuple[str | None, str], HookOptions]] = []
        used: set[tuple[str | None, str]] = set()
        # Hooks the component can implement: every contract hook, plus option keys that
        # only exist through specname.
        wanted: dict[str, WitBinding] = {h: c.binding for h, c in contract.hooks.items()}
        for key, opts in options.items():
            if key not in wanted:
                if not opts.specname:
                    problems.append(
                        Mismatch(
                            key,
                            "a hook of the contract",
                            "(none)",
                            f"options for unknown hook {key!r}",
                        )
                    )
                    continue
                local = wit.kebab(key)
                wanted[key] = WitBinding(contract.package.interface(local), local)
        for key, binding in sorted(wanted.items()):
            opts = options.get(key, HookOptions())
            target = contract.hooks.get(opts.specname or key)
            if target is None:
                continue
            found = image.find_export(binding.interface, binding.function)
            if found is None:
                if binding.interface is not None and any(
                    self._same_interface(i, binding.interface) for i, _ in image.exports
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
            problems.extend(contract.check(target, sig, iface))
            matches.append((target, (iface, binding.function), opts))
            used.add((iface, binding.function))
        if problems:
            raise ContractMismatchError(name, problems)
        if not matches:
            exported = (
                ", ".join(sorted(f"{i}#{f}" if i else f for i, f in image.exports)) or "nothing"
            )
            expected = ", ".join(sorted(str(c.binding) for c in contract.hooks.values()))
            raise ContractMismatchError(
                name,
                [
                    Mismatch(
                        "*",
                        f"at least one of: {expected}",
                        exported,
                        "the component implements none of the host's hooks",
                    )
                ],
            )
        for export in sorted(set(image.exports) - used, key=str):
            log.debug("plugin %r: ignoring export %s#%s (no hook)", name, *export)
        return matches

    @staticmethod
    def _same_interface(a: str | None, b: str) -> bool:
        if a is None:
            return False
        sa, sb = wit.split_interface_name(a), wit.split_interface_name(b)
        return sa is not None and sb is not None and sa[:2] == sb[:2]

    def _impl(
        self, plugin: WasmPlugin, hook: HookContract, bound: BoundFunc, opts: HookOptions
    ) -> Callable[..., Any]:
        call = plugin.instance.call
        name = plugin.name

        if hook.unwrap_result:

            def impl(*args: Any) -> Any:
                value = call(bound, args)
                if isinstance(value, Err):
                    raise PluginResultError(
                        f"plugin {name!r} returned an error from hook {hook.name!r}: "
                        f"{value.value!r}",
                        plugin=name,
                        hook=hook.name,
                        error=value.value,
                    )
                return value.value

        elif hook.historic:

            def impl(*args: Any) -> Any:
                result = call(bound, args)
                plugin._record(bound, args)
                return result

        else:

            def impl(*args: Any) -> Any:
                return call(bound, args)

        impl.__name__ = hook.name
        impl.__qualname__ = f"WasmPlugin[{name}].{hook.name}"
        impl.__doc__ = f"{plugin.hooks.get(hook.name, bound.function)} in component {name!r}"
        # pluggy reads argument names from the code object behind __wrapped__.
        impl.__wrapped__ = _signature_template(hook.name, hook.argnames)  # type: ignore[attr-defined]
        marked: Callable[..., Any] = self._mark(
            tryfirst=opts.tryfirst, trylast=opts.trylast, specname=opts.specname
        )(impl)
        return marked
