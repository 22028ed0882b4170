"""A compiled component and what it exports: :class:`ComponentImage`, shared by the
instances of one plugin (see :mod:`.instance`)."""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Final

import attrs
from wasmtime import WasmtimeError
from wasmtime.component import Component

from .._errors import PluginLoadError
from .._files import read_regular_file
from ..contract import wit
from ..policy.capabilities import COMPILE_TIMEOUT, MAX_COMPONENT_BYTES
from . import engine as _engine
from .convert import is_byte_list
from .layout import CoreLayout, core_layout
from .measure import MeasuredExports, checked_measured, result_plan
from .relift import PLAN_VERSION, FastExport, Plan, decode_plan, encode_plan
from .wit_types import component_exports, component_imports

__all__ = ["BYTE_EXPORTS", "ComponentImage", "as_latin1"]

log = logging.getLogger("airssys_plugins.runtime")


#: Set AIRSSYS_PLUGINS_NO_BYTE_EXPORTS=1 to compile components exactly as given (no
#: byte-buffer exports; every ``list<u8>`` then crosses element by element).
BYTE_EXPORTS: Final = not os.environ.get("AIRSSYS_PLUGINS_NO_BYTE_EXPORTS")


def as_latin1(t: wit.WitType | None) -> wit.WitType | None:
    """``t`` with every ``list<u8>`` (inside lists, tuples, options, results) a string."""
    if t is None:
        return None
    if is_byte_list(t):
        return wit.Prim("string")
    if isinstance(t, wit.ListT):
        return wit.ListT(as_latin1(t.element))  # type: ignore[arg-type]
    if isinstance(t, wit.TupleT):
        return wit.TupleT(tuple(as_latin1(e) for e in t.elements))  # type: ignore[misc]
    if isinstance(t, wit.OptionT):
        return wit.OptionT(as_latin1(t.inner))  # type: ignore[arg-type]
    if isinstance(t, wit.ResultT):
        return wit.ResultT(as_latin1(t.ok), as_latin1(t.err))
    return t


ByteExports = dict[tuple[str | None, str], str]


def _byte_export_plan(data: bytes, digest: str, label: str, cache: bool) -> Plan | None:
    """What :mod:`._relift` appends to ``data``; kept beside the compile cache, so a warm
    load neither parses the component again nor hashes the wider binary."""
    key = f"{digest}-r{PLAN_VERSION}"
    if cache:
        blob = _engine.load_plan(key)
        if blob is not None:
            try:
                return decode_plan(blob)
            except (ValueError, TypeError, KeyError) as exc:
                log.warning("%s: ignoring an unreadable byte-export plan (%s)", label, exc)
    plan = result_plan(data)
    if cache:
        _engine.store_plan(key, encode_plan(plan))
    return plan


def _checked_fast(
    exports: dict[tuple[str | None, str], wit.FuncSig], added: Sequence[FastExport]
) -> ByteExports:
    """(interface, function) -> export name for the added exports whose types are the
    originals' with list<u8> parameters (and a list<u8> result) as strings: all of them,
    unless the binary reader misread something. They are removed from ``exports``."""
    fast: ByteExports = {}
    for extra in added:
        if extra.kind != "bytes":  # measuring exports: see checked_measured
            continue
        sig = exports.pop((None, extra.name), None)
        original = exports.get((extra.interface, extra.function))
        if sig is None or original is None:
            continue
        result = original.result  # rewritten only when it is a list<u8> itself
        if sig.param_types == tuple(as_latin1(t) for t in original.param_types) and (
            sig.result == (wit.Prim("string") if is_byte_list(result) else result)
        ):
            fast[(extra.interface, extra.function)] = extra.name
        else:  # pragma: no cover - would be a bug in _relift
            log.warning("byte-buffer export %s does not match %s", extra.name, extra.function)
    return fast


@attrs.frozen(eq=False)
class ComponentImage:
    """A compiled component and what it exports. Immutable; shared by its instances."""

    name: str
    path: Path | None
    sha256: str
    component: Component
    exports: dict[tuple[str | None, str], wit.FuncSig]
    imports: tuple[str, ...]
    #: (interface, function) -> name of the added export lifting it with bytes as
    #: latin1 strings; see :mod:`._relift`.
    byte_exports: ByteExports = attrs.field(factory=dict)
    #: Compiled for the Engine that meters fuel (needed by a plugin with a fuel limit).
    fuel: bool = False
    #: The memories and tables its core modules define (bounds their counts and splits
    #: the memory limit, see :func:`.sandbox.store_limits`); None: unreadable.
    layout: CoreLayout | None = None
    #: (interface, function) -> the exports measuring its result in guest memory before
    #: it is copied, and the name of their limit setter; see :mod:`.measure`.
    measured: MeasuredExports = attrs.field(factory=dict)
    measure_limit: str | None = None

    @classmethod
    def load(
        cls,
        name: str,
        source: Path | bytes,
        *,
        cache: bool = True,
        path: Path | None = None,
        fuel: bool = False,
        max_bytes: int = MAX_COMPONENT_BYTES,
        compile_timeout: float = COMPILE_TIMEOUT,
        progress: _engine.Progress | None = None,
    ) -> ComponentImage:
        """Compile ``source`` (a file, or bytes already read from ``path``); ``fuel``:
        for the Engine that meters fuel, which a plugin with a fuel limit needs.
        ``max_bytes``: the largest component loaded (a file only if regular, its size
        checked before reading; see :func:`.._files.read_regular_file`); ``compile_timeout``
        the seconds compiling may take, ``progress`` what is told of a compilation (see
        :func:`.engine.compile_component`)."""
        if isinstance(source, bytes):
            data = source
            if len(data) > max_bytes:
                raise PluginLoadError(
                    f"plugin {name!r}: {path or 'the component'} is {len(data):,} bytes, above "
                    f"the cap of {max_bytes:,} bytes; raise it with "
                    "Limits(max_component_bytes=...) if the component is trusted",
                    plugin=name,
                    path=None if path is None else str(path),
                )
        else:
            path = source
            try:
                data = read_regular_file(
                    source,
                    cap=max_bytes,
                    what="component",
                    raise_with="Limits(max_component_bytes=...)",
                )
            except OSError as exc:
                raise PluginLoadError(
                    f"plugin {name!r}: cannot read {source}: {exc.strerror or exc}",
                    plugin=name,
                    path=str(source),
                ) from exc
        if data[:4] != b"\0asm":
            raise PluginLoadError(
                f"plugin {name!r}: {path or 'data'} is not a WebAssembly binary",
                plugin=name,
                path=None if path is None else str(path),
            )
        if data[4:8] == b"\x01\0\0\0":
            raise PluginLoadError(
                f"plugin {name!r}: {path or 'data'} is a core WebAssembly module, not a "
                "component; wrap it with `wasm-tools component new`",
                plugin=name,
                path=None if path is None else str(path),
            )
        digest = hashlib.sha256(data).hexdigest()
        label = f"plugin {name!r}"
        relifted = _byte_export_plan(data, digest, label, cache) if BYTE_EXPORTS else None
        component = None
        if relifted is not None:
            tail, added = relifted
            # data + tail is made only when it must be compiled; its key is cheap to make
            wider_digest = hashlib.sha256(bytes.fromhex(digest) + tail).hexdigest()
            try:
                component = _engine.compile_component(
                    lambda: data + tail,
                    wider_digest,
                    label=label,
                    cache=cache,
                    fuel=fuel,
                    plugin=name,
                    timeout=compile_timeout,
                    progress=progress,
                )
            except WasmtimeError as exc:  # then the component as given says what is wrong
                log.info("%s: no byte-buffer exports (%s)", label, str(exc).splitlines()[0])
        try:
            if component is None:
                component = _engine.compile_component(
                    data,
                    digest,
                    label=label,
                    cache=cache,
                    fuel=fuel,
                    plugin=name,
                    timeout=compile_timeout,
                    progress=progress,
                )
        except WasmtimeError as exc:
            raise PluginLoadError(
                f"plugin {name!r}: {path or 'data'} is not a valid component: "
                f"{_engine.error_text(exc)}",
                plugin=name,
                path=None if path is None else str(path),
            ) from exc
        eng = _engine.engine(fuel)
        exports = component_exports(eng, component)
        fast = _checked_fast(exports, added) if relifted is not None else {}
        measured, limit = checked_measured(exports, added, fast) if relifted else ({}, None)
        return cls(
            name,
            path,
            digest,
            component,
            exports,
            tuple(component_imports(eng, component)),
            fast,
            fuel,
            core_layout(data, tail if relifted is not None and (fast or measured) else b""),
            measured,
            limit,
        )

    def find_export(
        self, interface: str | None, function: str
    ) -> tuple[str | None, wit.FuncSig] | None:
        """The export for ``interface#function``; interfaces match across versions."""
        if interface is None:
            sig = self.exports.get((None, function))
            return None if sig is None else (None, sig)
        want = wit.split_interface_name(interface)
        for (iface, fname), sig in self.exports.items():
            if iface is None or fname != function:
                continue
            have = wit.split_interface_name(iface)
            if iface == interface or (
                want is not None and have is not None and have[:2] == want[:2]
            ):
                return iface, sig
        return None
