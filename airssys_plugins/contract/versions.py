"""Versioned contracts side by side: a host's current hookspecs plus the older versions
it still accepts, each with an adapter where a hook's signature changed.

A component built for ``textpipe:hooks@1.0.0`` keeps working in a host whose hookspecs
are now ``textpipe:hooks@2.0.0``: the host checks the component against the version it
targets (v1's hookspecs), and calls its v1 export through the adapter of that hook::

    def transform_v1(old, text, style):          # the v2 hook's arguments
        out = old(text=text)                     # the v1 hook's arguments
        return out if style == "plain" else out.upper()

    PluginHost(pm, versions=[ContractVersion(V1Hooks, "textpipe:hooks@1.0.0",
                                             adapters={"transform": transform_v1})])

A hook whose WIT signature is the same in both versions needs no adapter; a hook of the
older version that the current one dropped is not served.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, cast, final

from .. import _attrs as attrs
from .._errors import HookspecError
from .mapping import Contract, HookContract

__all__ = ["Adapter", "ContractVersion", "OlderContract"]

#: ``adapter(old, **new_kwargs)``: serves the current hook; ``old(**old_kwargs)`` calls the
#: component's export of the older hook (with a ``Result`` already unwrapped).
Adapter = Callable[..., Any]


@final
@attrs.frozen
class ContractVersion:
    """An older version of the host's hookspecs that components may still target.

    ``specs`` holds that version's hookspecs (a class or module, same pluggy project as
    the current ones), ``package`` its WIT package id (``textpipe:hooks@1.0.0``),
    ``adapters`` maps a hook name to the :data:`Adapter` that serves the current hook
    with the older export, ``bindings`` is as for ``PluginHost(bindings=...)``.
    """

    specs: object
    package: str
    adapters: Mapping[str, Adapter] = attrs.field(factory=dict)
    bindings: Mapping[str, str] = attrs.field(factory=dict)


@final
@attrs.frozen
class OlderContract:
    """A :class:`ContractVersion` checked against the current contract: each of its hooks
    with the current hook it serves and the adapter (``None``: same signature)."""

    version: ContractVersion
    contract: Contract
    serves: Mapping[str, tuple[HookContract, Adapter | None]]

    @classmethod
    def check(cls, version: ContractVersion, current: Contract, project: str) -> OlderContract:
        """Every problem at once: a hook that changed without an adapter, an adapter for
        no hook."""
        contract = Contract.from_hookspecs(
            version.specs,
            package=version.package,
            project_name=project,
            bindings=version.bindings,
        )
        problems: list[HookspecError] = []
        serves: dict[str, tuple[HookContract, Adapter | None]] = {}
        for name in sorted(set(version.adapters) - set(contract.hooks)):
            problems.append(
                HookspecError(
                    f"contract {version.package}: adapter for {name!r}, which is no hook of "
                    f"that version (its hooks: {', '.join(sorted(contract.hooks))})",
                    hook=name,
                )
            )
        for name, old in sorted(contract.hooks.items()):
            new = current.hooks.get(name)
            adapter = version.adapters.get(name)
            if new is None:
                if adapter is not None:
                    problems.append(
                        HookspecError(
                            f"contract {version.package}: adapter for {name!r}, which the "
                            f"current contract {current.package} no longer has",
                            hook=name,
                        )
                    )
                continue  # dropped in the current version: not served
            if adapter is not None and not callable(cast(object, adapter)):
                problems.append(
                    HookspecError(
                        f"contract {version.package}: the adapter of {name!r} is not callable",
                        hook=name,
                    )
                )
                continue
            if adapter is None and not _same_shape(old, new):
                problems.append(
                    HookspecError(
                        f"hook {name!r} changed between {version.package} "
                        f"({old.signature.render(expanded=True)}) and {current.package} "
                        f"({new.signature.render(expanded=True)}); give "
                        f"ContractVersion(adapters={{{name!r}: ...}}) a function that serves "
                        "the new hook with the old export",
                        hook=name,
                    )
                )
                continue
            serves[name] = (new, adapter)
        if len(problems) == 1:
            raise problems[0]
        if problems:
            raise ExceptionGroup(
                f"contract {version.package} cannot be accepted beside {current.package}",
                problems,
            )
        return cls(version, contract, serves)


def _same_shape(old: HookContract, new: HookContract) -> bool:
    """Whether the old export can serve the new hook as it is: same WIT signature (bound
    by position) and the same Result unwrapping."""
    return old.signature == new.signature and old.unwrap_result == new.unwrap_result
