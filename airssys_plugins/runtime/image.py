"""A compiled component and what it exports: :class:`ComponentImage`, shared by the
instances of one plugin (see :mod:`.instance`)."""

from __future__ import annotations

import functools
import os
import stat
import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Final, TypeVar, final

from wasmtime import Engine, WasmtimeError
from wasmtime.component import Component, ComponentInstanceType, FuncType

from .. import _attrs as attrs
from .. import _log as logging
from .._errors import PluginLimitExceeded, PluginLoadError
from .._files import (
    FileKey,
    RegularFile,
    known_digest,
    open_regular_file,
    read_regular_file,
    remember_digest,
)
from ..contract import wit
from ..policy.capabilities import COMPILE_TIMEOUT, MAX_COMPONENT_BYTES
from . import engine as _engine
from . import notes
from .convert import is_byte_list
from .guestmem import AVAILABLE as _RAW_AVAILABLE
from .layout import (
    IN_PROCESS_FUNCTIONS,
    IN_PROCESS_INLINED,
    IN_PROCESS_LOCALS,
    MAX_INLINED,
    CoreLayout,
    Expansion,
    read_layout,
    sections_layout,
)
from .measured import MeasuredExports
from .plans import (
    EXPORT_PLAN_VERSION,
    RAW_IMPORTS,
    ExportPlan,
    FastExport,
    ImportPatch,
    RawExports,
    RawImport,
    decode_export_plan,
    encode_export_plan,
    raw_names,
)

__all__ = ["BYTE_EXPORTS", "RAW_BYTES", "ComponentImage", "as_latin1", "imported_functions"]

log = logging.getLogger("airssys_plugins.runtime")


#: Set AIRSSYS_PLUGINS_NO_BYTE_EXPORTS=1 to compile components exactly as given (no
#: byte-buffer exports; every ``list<u8>`` then crosses element by element).
BYTE_EXPORTS: Final = not os.environ.get("AIRSSYS_PLUGINS_NO_BYTE_EXPORTS")
#: Set AIRSSYS_PLUGINS_NO_RAW_BYTES=1 to leave out the raw exports (lists and strings then
#: take the latin1 route or cross element by element); off where guest memory cannot be
#: found (see :mod:`.guestmem`: Linux only).
RAW_BYTES: Final = (
    BYTE_EXPORTS and _RAW_AVAILABLE and not os.environ.get("AIRSSYS_PLUGINS_NO_RAW_BYTES")
)


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
        return wit.OptionT(as_latin1(t.inner), some=t.some)  # type: ignore[arg-type]
    if isinstance(t, wit.ResultT):
        return wit.ResultT(as_latin1(t.ok), as_latin1(t.err))
    return t


ByteExports = dict[tuple[str | None, str], str]
Exports = dict[tuple[str | None, str], wit.FuncSig]
Imported = dict[tuple[str, str], wit.FuncSig]
RawImports = dict[tuple[str, str], tuple[RawImport, wit.FuncSig]]


def _plan_key(digest: str) -> str:
    raw = ("" if RAW_IMPORTS else "i") if RAW_BYTES else "n"
    return f"{digest}-r{EXPORT_PLAN_VERSION}{raw}"


def _byte_export_plan(
    data: Callable[[], bytes], digest: str, label: str, cache: bool
) -> tuple[ExportPlan, str] | None:
    """What :mod:`.relift`, :mod:`.measure` and :mod:`.rawbytes` add to the component
    (:func:`.rawbytes.export_tail`), and the compile-cache key of the wider binary it
    makes (:func:`_plan_digest`); kept beside the compile cache, so a warm load neither
    reads nor parses the component again, nor hashes anything."""

    def make() -> tuple[ExportPlan, str] | None:
        from .rawbytes import export_tail  # (a cache miss: the binary is read)

        plan = export_tail(data(), raw=RAW_BYTES, label=label)
        return None if plan is None else (plan, _plan_digest(digest, plan))

    key = _plan_key(digest) if cache else ""
    return _kept(key, f"byte-export plan of {label}", _read_export_note, make, _export_note)


def _export_note(noted: tuple[ExportPlan, str] | None) -> bytes:
    """The note of an export plan and its wider binary's digest (or of no plan)."""
    if noted is None:
        return notes.dump((encode_export_plan(None), None), {})
    return notes.dump((encode_export_plan(noted[0]), noted[1]), {})


def _read_export_note(blob: bytes) -> tuple[ExportPlan, str] | None:
    """The inverse of :func:`_export_note`; ValueError for anything else."""
    encoded, wider = notes.load(blob, {})
    if not isinstance(encoded, bytes):
        raise ValueError("not an export plan note")
    plan = decode_export_plan(encoded)
    if plan is None:
        return None
    if not (isinstance(wider, str) and _engine.is_sha256_hex(wider)):
        raise ValueError("no digest of the wider binary")
    return plan, wider


def _wider(plan: ExportPlan, data: Callable[[], bytes]) -> bytes:
    return plan.wider(data())


def _plan_digest(digest: str, plan: ExportPlan) -> str:
    """The compile-cache key of ``plan`` applied to the binary of ``digest``."""
    import hashlib

    return hashlib.sha256(bytes.fromhex(digest) + encode_export_plan(plan)).hexdigest()


def _types(
    eng: Engine, component: Component, compiled: str, cache: bool
) -> tuple[Exports, tuple[str, ...]]:
    """The exported functions' types and the import names of ``component`` (compiled from
    the bytes of digest ``compiled``), kept beside the compile cache: reading them through
    wasmtime's type API costs a new process 10-12 ms for the 18 MB Python guest, reading
    the note 0.3 ms. The note (:mod:`.notes`) may name only the :mod:`..contract.wit`
    model's classes (no other code runs, as the cache holds native code anyway); one it
    cannot read is written again."""
    key = f"{compiled}-types-{_types_stamp()}" if cache else ""
    return _kept(
        key,
        "type note",
        _read_types,
        lambda: _read_through_wasmtime(eng, component),
        lambda types: notes.dump(types, _NOTE_CLASSES),
    )


def _read_types(blob: bytes) -> tuple[Exports, tuple[str, ...]]:
    exports, imports = notes.load(blob, _NOTE_CLASSES)
    if not (isinstance(exports, dict) and isinstance(imports, tuple)):
        raise ValueError("not a component's types")
    return exports, imports


_T = TypeVar("_T")


def _kept(
    key: str,
    what: str,
    read: Callable[[bytes], _T],
    make: Callable[[], _T],
    write: Callable[[_T], bytes],
) -> _T:
    """``make()``, kept beside the compile cache under ``key`` (none: not kept): a note
    that is there is ``read`` back; one it cannot read (any damage) is made and written
    again; a value the note cannot hold (``write`` raises ValueError) is made each time."""
    if key:
        blob = _engine.load_plan(key)
        if blob is not None:
            try:
                return read(blob)
            except Exception as exc:  # any damage: make it again
                log.warning("unreadable %s %s (%s); making it again", what, key, exc)
    value = make()
    if key:
        try:
            _engine.store_plan(key, write(value))
        except ValueError as exc:  # a type the model cannot note: made each time
            log.info("no %s for %s (%s)", what, key, exc)
    return value


@functools.cache
def _types_stamp() -> str:
    """What the type notes depend on: wasmtime's version and the code that reads the types
    and defines and writes the model (a change to any makes new notes), named as
    :func:`_code_stamp` names it: a new process opens and hashes none of the files."""
    here = Path(__file__)  # (wit_types named by file: a note's reader never imports it)
    sources = (Path(wit.__file__ or ""), here.with_name("wit_types.py"), Path(notes.__file__ or ""))
    return _engine.wasmtime_version() + "-" + _code_stamp(sources)


def _code_stamp(sources: Sequence[Path]) -> str:
    """A name for the versions of the source files ``sources``: their statuses hashed
    together, where each can be trusted to change with the content
    (:meth:`.._files.FileKey.of`: any write changes the ctime, a replacement the inode),
    so a new process stats the files instead of opening each and reading its digest from
    the index (0.4-0.6 ms for the 8 files of the two stamps); else the first 10 hex
    digits of each one's SHA-256. CPython's hash of a tuple of ints is the same in every
    process (only str, bytes and datetime hashes are salted). Another version of a file
    with the same content, or an interpreter hashing otherwise, only makes notes again."""
    keys: list[FileKey] = []
    for source in sources:
        try:
            key = FileKey.of(os.stat(source))
        except OSError:
            key = None
        if key is None:
            return "-".join(_code_digest(source) for source in sources)
        keys.append(key)
    return f"k{hash(tuple(tuple(key) for key in keys)) & 0xFFFF_FFFF_FFFF_FFFF:016x}"


def _code_digest(source: Path) -> str:
    """The first 10 hex digits of the SHA-256 of the source file ``source``."""
    with open_regular_file(source, cap=MAX_COMPONENT_BYTES, what="module", raise_with="") as f:
        return _file_digest(f, True)[:10]


#: The first value of a checked-types note (see :func:`_checked_types`).
_CHECKED_FORMAT: Final = "airssys-checked-1"
#: What the checks of a component's added exports give: its exports (the added ones
#: taken out), imports, byte exports, measured exports and their limit setter, whether
#: the raw probe has its type, and the raw exports.
Checked = tuple[
    Exports, tuple[str, ...], ByteExports, MeasuredExports, str | None, bool, RawExports
]


def _checked_types(
    eng: Engine, component: Component, compiled: str, cache: bool, relifted: ExportPlan
) -> Checked:
    """The types of ``component``, whose binary has the exports ``relifted`` added
    (byte-buffer, measuring and raw exports), checked against what was added, the added
    exports taken out: kept beside the compile cache as the checks give them. A new
    process reads those results and the types of the exports it shows, not the added
    ones': for the 18 MB Python guest, 218 records instead of the 465 of all 74 exports
    (about 0.4 against 1 ms to read back). The key names the compiled binary (whose
    digest names the plan applied) and the checking code (:func:`_checked_stamp`); a note
    it cannot read is checked again and written again."""
    key = f"{compiled}-checked-{_checked_stamp()}" if cache else ""
    return _kept(
        key,
        "checked-types note",
        _read_checked,
        lambda: _check_types(eng, component, compiled, cache, relifted),
        _write_checked,
    )


def _check_types(
    eng: Engine, component: Component, compiled: str, cache: bool, relifted: ExportPlan
) -> Checked:
    """What :func:`_checked_types` keeps: the types, checked against what was added."""
    exports, imports = _types(eng, component, compiled, cache)
    added = relifted.fast
    fast = _checked_fast(exports, added)
    from .measure import checked_measured  # (a cache miss: the checks run)
    from .rawbytes import checked_probe, checked_raw

    measured, limit = checked_measured(exports, added, fast)
    raw_plan = relifted.raw
    probe_ok = raw_plan is not None and checked_probe(exports, raw_plan)
    raw = checked_raw(exports, raw_plan) if raw_plan is not None else {}
    return exports, imports, fast, measured, limit, probe_ok, raw


@functools.cache
def _checked_stamp() -> str:
    """What a checked-types note depends on beyond a type note's stamp: the code that
    checks the added exports and defines what the checks give (this module,
    :mod:`.measure`, :mod:`.measured`, :mod:`.rawbytes`, and :mod:`.plans`, whose records
    the note holds), named by file (:func:`_code_stamp`): a process reading the note
    never imports :mod:`.measure` nor :mod:`.rawbytes`."""
    here = Path(__file__)
    names = (here.name, "measure.py", "measured.py", "rawbytes.py", "plans.py")
    return _types_stamp() + "-" + _code_stamp([here.with_name(name) for name in names])


def _write_checked(checked: Checked) -> bytes:
    import marshal

    exports, imports, fast, measured, limit, probe_ok, raw = checked
    return marshal.dumps(
        (
            _CHECKED_FORMAT,
            notes.dump((exports, imports), _NOTE_CLASSES),
            tuple(fast.items()),
            tuple((k, m.shape, m.real) for k, m in measured.items()),
            limit,
            probe_ok,
            tuple(
                (
                    k,
                    (
                        r.interface,
                        r.function,
                        r.call,
                        r.post,
                        r.alloc,
                        r.params,
                        r.retptr,
                        r.result,
                    ),
                )
                for k, r in raw.items()
            ),
        ),
        4,
    )


def _read_checked(blob: bytes) -> Checked:
    """What :func:`_write_checked` wrote, every value's type checked; ``ValueError`` for
    anything else."""
    import marshal

    from .measured import Measured
    from .plans import RawExport

    form, types, fast_items, measured_items, limit, probe_ok, raw_items = marshal.loads(blob)
    if form != _CHECKED_FORMAT:
        raise ValueError(f"a note of another format ({form!r})")
    exports, imports = notes.load(types, _NOTE_CLASSES)
    if not isinstance(exports, dict) or not isinstance(imports, tuple):
        raise ValueError("not a component's types")
    fast = {_key(k): _text(v) for k, v in fast_items}
    measured = {_key(k): Measured(_text(a), _text(b)) for k, a, b in measured_items}
    raw = {}
    for k, (iface, function, call, post, alloc, params, retptr, result) in raw_items:
        if type(params) is not tuple or any(type(p) is not int for p in params):
            raise ValueError("raw export parameters are not core types")
        if type(retptr) is not bool or (result is not None and type(result) is not int):
            raise ValueError("a raw export's result is not a core type")
        raw[_key(k)] = RawExport(
            _text(iface, None), _text(function), _text(call), _text(post, None),
            _text(alloc), params, retptr, result,
        )  # fmt: skip
    if (limit is not None and type(limit) is not str) or type(probe_ok) is not bool:
        raise ValueError("not a limit setter and a probe")
    return exports, imports, fast, measured, limit, probe_ok, raw


def _key(k: Any) -> tuple[str | None, str]:
    if type(k) is not tuple or len(k) != 2:
        raise ValueError(f"{k!r} names no export")
    return _text(k[0], None), _text(k[1])


_NO_TEXT: Final = object()


def _text(v: Any, none: Any = _NO_TEXT) -> Any:
    """``v`` if it is a string (or None, when ``none`` is None); else ``ValueError``."""
    if type(v) is str or (v is None and none is None):
        return v
    raise ValueError(f"{v!r} is no name")


#: The classes a type note may hold: the WIT model's types and signatures.
_NOTE_CLASSES: Final[dict[str, type]] = {
    name: value
    for name, value in vars(wit).items()
    if isinstance(value, type)
    and value.__module__ == wit.__name__
    and (name.endswith("T") or name in ("Prim", "FuncSig"))
}


def _layout(
    data: Callable[[], bytes], digest: str, cache: bool
) -> tuple[CoreLayout | None, Expansion | None]:
    """:func:`.layout.read_layout` of the component as given, kept beside the compile
    cache (a warm load does not read the component for it)."""
    key = f"{digest}-layout{_LAYOUT_NOTE}"
    if cache:
        blob = _engine.load_plan(key)
        if blob is not None:
            parts = blob.split()
            if parts == [b"-"]:
                return None, None
            if len(parts) == 6 and all(p.isdigit() for p in parts[2:]):
                expansion = Expansion(*(int(p) for p in parts[2:]))
                if parts[:2] == [b"-", b"-"]:
                    return None, expansion
                if all(p.isdigit() for p in parts[:2]):
                    return CoreLayout(int(parts[0]), int(parts[1])), expansion
    found, expanded = read_layout(data())
    if cache:
        if expanded is None:
            blob = b"-"
        else:
            counts = b"- -" if found is None else b"%d %d" % (found.memories, found.tables)
            blob = b"%s %d %d %d %d" % (
                counts,
                expanded.instances,
                expanded.inlined,
                expanded.functions,
                expanded.locals,
            )
        _engine.store_plan(key, blob)
    return found, expanded


#: Bumped when read_layout() counts differently (2: once per instantiation, not
#: definition; 3: with the expansion; 4: with its functions and locals).
_LAYOUT_NOTE: Final = 4

#: A store's instance limit when a plugin has none (``Limits(instances=None)``):
#: wasmtime's own default.
WASMTIME_INSTANCES: Final = 10_000


def _check_expansion(
    name: str, where: Path | None, expansion: Expansion | None, instances: int | None
) -> bool:
    """Refuse, before it is compiled, a component that expands (its nested components
    inlined once per instantiation, see :class:`.layout.Expansion`) to more core
    instances than ``instances`` (the plugin's limit, or wasmtime's default) lets it
    create, or to more than :data:`.layout.MAX_INLINED` items: compiling it would take
    this process's time and memory without bound, and it could never run. Returns whether
    it must compile in the child process (bounded by ``compile_timeout``): it expands to
    more than :data:`.layout.IN_PROCESS_INLINED` items, its core modules define more than
    :data:`.layout.IN_PROCESS_FUNCTIONS` functions or declare more than
    :data:`.layout.IN_PROCESS_LOCALS` locals (a few bytes declare 50,000), or it could not
    be read."""
    if expansion is None:
        return True
    limit = WASMTIME_INSTANCES if instances is None else instances
    own = " (wasmtime's default: the plugin has none of its own)" if instances is None else ""
    if expansion.instances > limit:
        over = PluginLimitExceeded(
            f"plugin {name!r}: {where or 'its component'} creates {expansion.instances:,} "
            f"core instances when instantiated (its nested components counted once per "
            f"instantiation), above its instance limit of {limit:,}{own}; it was refused "
            "before compiling. Raise Limits(instances=...) if the plugin is trusted.",
            plugin=name,
        )
        over.reason = "too many instances"
        raise over
    if expansion.inlined > MAX_INLINED:
        raise _refuse(
            name,
            where,
            f"expands to {expansion.inlined:,} items when compiled (its nested components "
            f"inlined once per instantiation), above the cap of {MAX_INLINED:,}: compiling "
            "it would take time and memory without bound (a compile bomb), so it was "
            "refused before compiling. Real components stay far below the cap; if this one "
            "is genuine, flatten its nesting (instantiate each nested component fewer times)",
        )
    return (
        expansion.inlined > IN_PROCESS_INLINED
        or expansion.functions > IN_PROCESS_FUNCTIONS
        or expansion.locals > IN_PROCESS_LOCALS
    )


def _checked_fast(exports: Exports, added: Sequence[FastExport]) -> ByteExports:
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


@final
class _Bytes:
    """The component's bytes, read on first use only (a warm load never needs them), and
    then checked against the digest the load was keyed by: nothing is parsed or compiled
    under a digest that is not its own."""

    def __init__(
        self,
        name: str,
        where: Path | None,
        digest: str,
        fetch: Callable[[], bytes],
        *,
        checked: bool = False,
    ):
        self._checked = checked  # ``digest`` was computed from exactly these bytes
        self._name = name
        self._where = where
        self._digest = digest
        self._fetch: Callable[[], bytes] | None = fetch
        self._data: bytes | None = None

    def __call__(self) -> bytes:
        import hashlib

        if self._data is None:
            fetch, self._fetch = self._fetch, None
            assert fetch is not None
            try:
                data = fetch()
            except OSError as exc:  # e.g. it grew past the cap since it was hashed
                raise PluginLoadError(
                    f"plugin {self._name!r}: cannot read {self._where}: {exc.strerror or exc}",
                    plugin=self._name,
                    path=None if self._where is None else str(self._where),
                ) from exc
            if not self._checked and hashlib.sha256(data).hexdigest() != self._digest:
                raise PluginLoadError(
                    f"plugin {self._name!r}: {self._where or 'the component'} changed while it "
                    "was being loaded (its bytes no longer have the SHA-256 it was checked "
                    "with); nothing of it was loaded. Load it again",
                    plugin=self._name,
                    path=None if self._where is None else str(self._where),
                )
            self._data = data
        return self._data


@final
class _Facts:
    """What a component's bytes tell, the same for every image of them: kept per (digest,
    engine) in this process, so loading the same bytes again reads no types."""

    __slots__ = (
        "added_exports",
        "byte_exports",
        "compiled",
        "exports",
        "found",
        "imported",
        "imports",
        "in_child",
        "layout",
        "measure_limit",
        "measured",
        "raw_exports",
        "raw_imports",
        "raw_probe",
        "shared",
        "stamp",
    )

    def __init__(
        self,
        compiled: str,
        exports: Exports,
        imports: tuple[str, ...],
        byte_exports: ByteExports,
        layout: CoreLayout | None,
        measured: MeasuredExports | None = None,
        measure_limit: str | None = None,
        raw_exports: RawExports | None = None,
        raw_probe: str | None = None,
        added_exports: frozenset[str] = frozenset(),
    ):
        #: The digest the compiled component is cached under (with the byte exports or not).
        self.compiled = compiled
        self.exports = exports
        self.imports = imports
        self.byte_exports = byte_exports
        self.layout = layout
        self.measured: MeasuredExports = {} if measured is None else measured
        self.measure_limit = measure_limit
        self.raw_exports: RawExports = {} if raw_exports is None else raw_exports
        self.raw_probe = raw_probe
        self.added_exports = added_exports
        self.imported: Imported | None = None
        self.found: dict[tuple[str | None, str], tuple[str | None, wit.FuncSig] | None] = {}
        #: :func:`.engine.plan_stamp` of the byte-export plan these facts were made with:
        #: a plan changed or removed on disk since (``cache clear``) makes them stale.
        self.stamp: tuple[int, int, int] | None = None
        #: See :attr:`ComponentImage.shared`.
        self.shared: dict[Any, Any] = {}
        #: See :attr:`ComponentImage.raw_imports`.
        self.raw_imports: RawImports = {}
        #: Whether compiling it again must happen in the child process (see
        #: :func:`_check_expansion`).
        self.in_child = False


#: Facts of the components loaded lately (with the compile cache), by (digest, fuel, byte
#: exports on, raw exports on, compile cache directory): pure Python (no wasmtime
#: objects), small, and what a load after an unload would compute again. The cache
#: directory is part of the key so that a process pointed at another cache fills it as a
#: new process would.
_FactsKey = tuple[str, bool, bool, bool, str | None]
_FACTS: OrderedDict[_FactsKey, _Facts] = OrderedDict()
_FACTS_KEPT: Final = 256
_facts_lock = threading.Lock()


def _remember(key: _FactsKey, facts: _Facts) -> None:
    with _facts_lock:
        _FACTS[key] = facts
        _FACTS.move_to_end(key)
        while len(_FACTS) > _FACTS_KEPT:
            _FACTS.popitem(last=False)


_RAISE_CAP: Final = "Limits(max_component_bytes=...)"


def _refuse(name: str, where: Path | None, what: str) -> PluginLoadError:
    return PluginLoadError(
        f"plugin {name!r}: {where or 'data'} {what}",
        plugin=name,
        path=None if where is None else str(where),
    )


def _check_header(name: str, where: Path | None, head: bytes) -> None:
    if head[:4] != b"\0asm":
        raise _refuse(name, where, "is not a WebAssembly binary")
    if head[4:8] == b"\x01\0\0\0":
        raise _refuse(
            name,
            where,
            "is a core WebAssembly module, not a component; wrap it with "
            "`wasm-tools component new`",
        )


@attrs.frozen(eq=False)
class ComponentImage:
    """A compiled component and what it exports. Immutable; shared by its instances."""

    name: str
    path: Path | None
    sha256: str
    component: Component
    exports: Exports
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
    #: (interface, function) -> its raw exports (see :mod:`.rawbytes`), and the probe
    #: export that finds the guest's memory.
    raw_exports: RawExports = attrs.field(factory=dict)
    raw_probe: str | None = None
    #: Every export the runtime added (hidden from ``exports`` and from ``inspect``).
    added_exports: frozenset[str] = frozenset()
    _facts: _Facts | None = attrs.field(default=None, repr=False)
    #: The bytes it was loaded from when no file holds them (``load(data)`` without
    #: ``path=``): what a batch ships to its workers (host/shipment.py). None when it
    #: came from a file, which is read again (and checked against ``sha256``) instead.
    data: bytes | None = attrs.field(default=None, repr=False)
    #: Loaded through the compile cache (``PluginHost(compile_cache=False)``: not).
    _cached: bool = attrs.field(default=False, repr=False)
    #: The memo of an image with no facts (made at its first use: loads never need one).
    _own: dict[Any, Any] | None = attrs.field(default=None, init=False, repr=False)

    @property
    def shared(self) -> dict[Any, Any]:
        """A memo shared by every image of the same component bytes in this process (what
        the host derives from the exports alone, e.g. contract checks), or this image's
        own when nothing is kept per digest (``compile_cache=False``). Entries must hold
        what their keys name, so a key's ids stay theirs."""
        facts = self._facts
        if facts is not None:
            return facts.shared
        own = self._own
        if own is None:
            own = {}
            _set(self, "_own", own)
        return own

    @property
    def raw_imports(self) -> RawImports:
        """(interface, function) -> how its list and string parameters reach the host as
        a pointer and a length, with its signature as the guest's WIT gives it (see
        :mod:`.rawimports`); empty when none were rewritten."""
        facts = self._facts
        return {} if facts is None else facts.raw_imports

    def retain(self) -> None:
        """Keep the compiled component in memory after this image's plugin is unloaded,
        among the :func:`.engine.keep_compiled` most recent, so a load of the same bytes
        costs an instantiation (see :func:`.engine.retain`). An image loaded without the
        compile cache keeps nothing (every such load starts from scratch)."""
        if self._cached and self._facts is not None:
            _engine.retain(self._facts.compiled, self.fuel)

    def export_index(self, name: str, interface: str | None = None) -> Any:
        """``component.get_export_index(name, <interface's index>)``, looked up once per
        compiled component (shared by the images of copies loaded at once): the hooks of
        one interface share its index. None: no such export."""
        comp = self.component
        indices = _INDICES.get(comp)
        if indices is None:
            indices = _INDICES.setdefault(comp, {})
        key = (interface, name)
        try:
            return indices[key]
        except KeyError:
            pass
        if interface is None:
            index = comp.get_export_index(name)
        else:
            parent = self.export_index(interface)
            index = None if parent is None else comp.get_export_index(name, parent)
        indices[key] = index
        return index

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
        sha256: str | None = None,
        instances: int | None = None,
    ) -> ComponentImage:
        """Compile ``source`` (a file, or bytes already read from ``path``); ``fuel``:
        for the Engine that meters fuel, which a plugin with a fuel limit needs.
        ``max_bytes``: the largest component loaded (a file only if regular, its size
        checked before reading; see :func:`.._files.open_regular_file`); ``compile_timeout``
        the seconds compiling may take, ``progress`` what is told of a compilation (see
        :func:`.engine.compile_component`).

        ``sha256``: the digest the caller checked (a lockfile, a signature). A file whose
        content has another digest is refused; bytes given with it are hashed only if they
        must be parsed or compiled. A file is hashed only when this process (or, with
        ``cache``, the compile cache's digest index) does not know the digest of its
        current version (see :class:`.._files.FileKey`), and read only when it must be
        compiled or parsed: a warm load maps the compiled artefact and reads nothing else
        (see "Loads" in docs/explanation/performance.md).

        ``instances``: the plugin's instance limit (None: none of its own, wasmtime's
        default then bounds it). A component that expands to more core instances, or to
        more than :data:`.layout.MAX_INLINED` items when compiled, is refused before it is
        compiled (see :func:`_check_expansion`)."""
        opts: dict[str, Any] = {"cache": cache, "fuel": fuel, "plugin": name,
                                "timeout": compile_timeout, "progress": progress,
                                "instances": instances}  # fmt: skip
        if isinstance(source, bytes):
            if len(source) > max_bytes:
                raise PluginLoadError(
                    f"plugin {name!r}: {path or 'the component'} is {len(source):,} bytes, "
                    f"above the cap of {max_bytes:,} bytes; raise it with "
                    "Limits(max_component_bytes=...) if the component is trusted",
                    plugin=name,
                    path=None if path is None else str(path),
                )
            _check_header(name, path, source[:8])
            given = source
            if sha256 is not None:
                digest = sha256
            else:
                import hashlib  # imported here: a file's digest is the file index's

                digest = hashlib.sha256(given).hexdigest()
            data = _Bytes(name, path, digest, lambda: given, checked=sha256 is None)
            image = cls._make(name, path, digest, data, opts)
            # no file holds these bytes: keep them, for what ships to batch workers
            return image if path is not None else attrs.evolve(image, data=given)
        path = source
        if cache:
            known = cls._known(name, source, max_bytes, sha256, opts)
            if known is not None:
                return known
        try:
            f = open_regular_file(source, cap=max_bytes, what="component", raise_with=_RAISE_CAP)
        except OSError as exc:
            raise PluginLoadError(
                f"plugin {name!r}: cannot read {source}: {exc.strerror or exc}",
                plugin=name,
                path=str(source),
            ) from exc
        with f:
            try:
                _check_header(name, path, os.pread(f.fd, 8, 0))
                digest = _file_digest(f, cache)
            except PluginLoadError:
                raise
            except OSError as exc:  # e.g. it grew past the cap while hashed
                raise PluginLoadError(
                    f"plugin {name!r}: cannot read {source}: {exc.strerror or exc}",
                    plugin=name,
                    path=str(source),
                ) from exc
            if sha256 is not None and digest != sha256:
                raise _refuse(
                    name,
                    path,
                    f"has SHA-256 {digest}, not the {sha256} it was checked with (it changed "
                    "after the check); nothing of it was loaded. Load it again",
                )
            return cls._make(name, path, digest, _Bytes(name, path, digest, f.read), opts)

    @classmethod
    def _known(
        cls, name: str, path: Path, max_bytes: int, sha256: str | None, opts: dict[str, Any]
    ) -> ComponentImage | None:
        """The image of a file version this process has loaded before, found by its status
        alone: a regular file within the cap, whose :class:`.._files.FileKey` has a digest
        in this process's memo (the one a lockfile or signature asked for, if any), and
        whose facts are known (so its bytes compiled under that digest before: they are a
        component). Nothing is opened: a warm load maps or shares the compiled code of
        exactly that digest, and if it must read the bytes after all they are read then
        and refused unless they have it. None: load it the long way (which also says what
        is wrong with a file that is none of these)."""
        try:
            st = os.stat(path)  # follows symlinks, as opening would
        except OSError:
            return None
        if not stat.S_ISREG(st.st_mode) or st.st_size > max_bytes:
            return None
        digest = known_digest(FileKey.of(st))
        if digest is None or (sha256 is not None and digest != sha256):
            return None
        cache_dir = str(_engine.aot_cache_dir())
        if (digest, opts["fuel"], BYTE_EXPORTS, RAW_BYTES, cache_dir) not in _FACTS:
            return None

        def read() -> bytes:
            return read_regular_file(path, cap=max_bytes, what="component", raise_with=_RAISE_CAP)

        data = _Bytes(name, path, digest, read)
        return cls._make(name, path, digest, data, opts, cache_dir=cache_dir)

    @classmethod
    def _make(
        cls,
        name: str,
        path: Path | None,
        digest: str,
        data: _Bytes,
        opts: dict[str, Any],
        *,
        cache_dir: str | None = None,
    ) -> ComponentImage:
        opts = dict(opts)
        instances = opts.pop("instances", None)  # only for the first load's check
        fuel = opts["fuel"]
        # without the compile cache every load starts from scratch, as it always did
        if cache_dir is None and opts["cache"]:
            cache_dir = str(_engine.aot_cache_dir())
        key = (digest, fuel, BYTE_EXPORTS, RAW_BYTES, cache_dir)
        facts = _FACTS.get(key) if cache_dir is not None else None
        component = None
        if facts is not None and BYTE_EXPORTS:
            # its facts hold while it lives (loaded, or kept): share its compiled code
            component = _engine.loaded(facts.compiled, fuel)
            if component is None and _engine.plan_stamp(_plan_key(digest)) != facts.stamp:
                facts = None  # the compile cache changed under us: read it again
        if facts is not None and component is None:
            try:
                component = _engine.compile_component(
                    data,
                    facts.compiled,
                    **opts,
                    label=f"plugin {name!r}",
                    in_child=facts.in_child,
                )
            except WasmtimeError:  # pragma: no cover - it compiled before
                facts = None
        if component is None or facts is None:
            opts = {**opts, "label": f"plugin {name!r}"}
            component, facts = cls._first(name, path, digest, data, opts, instances)
            if cache_dir is not None:
                _remember(key, facts)
        return _image(name, path, digest, component, fuel, facts, cache_dir is not None)

    @staticmethod
    def _first(
        name: str,
        path: Path | None,
        digest: str,
        data: _Bytes,
        opts: dict[str, Any],
        instances: int | None,
    ) -> tuple[Component, _Facts]:
        """Compile (or take from the cache) and read the types of the component ``data``
        the first time this process loads it (refused first if it expands beyond
        ``instances``, the plugin's instance limit, see :func:`_check_expansion`)."""
        cache, fuel = opts["cache"], opts["fuel"]
        # what it expands to, checked before anything else reads or compiles it
        layout, expansion = _layout(data, digest, cache)
        in_child = _check_expansion(name, path, expansion, instances)
        opts = {**opts, "in_child": in_child}
        noted = _byte_export_plan(data, digest, opts["label"], cache) if BYTE_EXPORTS else None
        relifted, wider_digest = (None, None) if noted is None else noted
        component = None
        compiled = digest
        while relifted is not None:
            plan = relifted
            # the wider binary is made only when it must be compiled; its key is noted
            if wider_digest is None:
                wider_digest = _plan_digest(digest, plan)
            try:
                wider = functools.partial(_wider, plan, data)
                component = _engine.compile_component(wider, wider_digest, **opts)
                compiled = wider_digest
                break
            except WasmtimeError as exc:  # then the component as given says what is wrong
                first = str(exc).splitlines()[0]
                wider_digest = None
                if plan.fold is not None:  # the shims as modules of their own, as before
                    log.info("%s: shims not folded (%s)", opts["label"], first)
                    relifted = plan.without_fold()
                    continue
                # e.g. a memory64 guest: the raw shim imports a 32-bit memory; try without
                what = "raw" if plan.raw is not None else "byte-buffer"
                log.info("%s: no %s exports (%s)", opts["label"], what, first)
                relifted = plan.without_raw() if plan.raw is not None else None
        try:
            if component is None:
                component = _engine.compile_component(data, digest, **opts)
        except WasmtimeError as exc:
            raise _refuse(
                name, path, f"is not a valid component: {_engine.error_text(exc)}"
            ) from exc
        eng = _engine.engine(fuel)
        added = () if relifted is None else relifted.fast
        raw_plan = None if relifted is None else relifted.raw
        try:
            if relifted is None:
                exports, imports = _types(eng, component, compiled, cache)
                checked: Checked = (exports, imports, {}, {}, None, False, {})
            else:
                checked = _checked_types(eng, component, compiled, cache, relifted)
        except PluginLoadError as exc:
            if exc.plugin is not None:
                raise
            raise _refuse(name, path, str(exc)) from None  # (types too large to read)
        exports, imports, fast, measured, limit, probe_ok, raw = checked
        patch = None if relifted is None or not probe_ok else relifted.imports
        raw_imports = {} if patch is None else checked_imports(eng, component, patch)
        if relifted is not None and (fast or measured or raw or probe_ok) and layout is not None:
            more = sections_layout(relifted.added_sections)
            layout = None if more is None else layout + more
        hidden = {a.name for a in added} | set(() if raw_plan is None else raw_names(raw_plan))
        facts = _Facts(
            compiled,
            exports,
            imports,
            fast,
            layout,
            measured,
            limit,
            raw,
            None if raw_plan is None else raw_plan.probe,
            frozenset(hidden),
        )
        facts.raw_imports = raw_imports
        facts.in_child = in_child
        if cache and BYTE_EXPORTS:
            facts.stamp = _engine.plan_stamp(_plan_key(digest))
        return component, facts

    def imported_functions(self) -> Imported:
        """(interface, function) -> signature of every function the component imports from
        an interface other than WASI's (what host functions or other plugins must provide;
        the sandbox links WASI); read once per component in this process."""
        facts = self._facts
        if facts is not None and facts.imported is not None:
            return facts.imported
        if all(name.startswith("wasi:") for name in self.imports):
            found: Imported = {}  # (the import names are known: no type API walk, ~0.3 ms)
        else:
            try:
                found = _imported_functions(_engine.engine(self.fuel), self.component)
            except PluginLoadError as exc:  # (types too large to read)
                raise _refuse(self.name, self.path, str(exc)) from None
        if facts is not None:  # as the guest's WIT gives them, not as rewritten
            found.update({k: sig for k, (_, sig) in facts.raw_imports.items()})
        if facts is not None:
            facts.imported = found
        return found

    def find_export(
        self, interface: str | None, function: str
    ) -> tuple[str | None, wit.FuncSig] | None:
        """The export for ``interface#function``; interfaces match across versions."""
        facts = self._facts
        if facts is None:
            return self._find_export(interface, function)
        key = (interface, function)
        try:
            return facts.found[key]
        except KeyError:
            found = facts.found[key] = self._find_export(interface, function)
            return found

    def _find_export(
        self, interface: str | None, function: str
    ) -> tuple[str | None, wit.FuncSig] | None:
        if interface is None:
            sig = self.exports.get((None, function))
            return None if sig is None else (None, sig)
        exact = self.exports.get((interface, function))
        if exact is not None:  # the version asked for, when it is exported beside others
            return interface, exact
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


#: Export indices by compiled component, while it lives (see export_index).
_INDICES: weakref.WeakKeyDictionary[Component, dict[tuple[str | None, str], Any]] = (
    weakref.WeakKeyDictionary()
)


def _file_digest(f: RegularFile, cache: bool) -> str:
    """The SHA-256 of the opened component ``f``: remembered in this process or (with
    ``cache``) in the compile cache's digest index for its :class:`.._files.FileKey`, else
    hashed (and remembered when the file did not change meanwhile)."""
    digest = known_digest(f.key)
    if digest is None and cache and f.key is not None:
        digest = _engine.load_digest(f.key.token())
        if digest is not None:
            remember_digest(f.key, digest)
    if digest is None:
        digest = f.sha256()
        if cache and known_digest(f.key) == digest:  # remembered: it did not change
            _engine.store_digest(f.key.token(), digest)  # type: ignore[union-attr]
    return digest


class _Unnamed:
    """Type names for imported signatures: structure only (as ``inspect`` reads none)."""

    def type_name(self, t: Any) -> str:
        return ""

    def resource_name(self, r: Any) -> str:
        return "resource"


def _read_through_wasmtime(eng: Engine, component: Component) -> tuple[Exports, tuple[str, ...]]:
    """The exports' types and the import names, read through wasmtime's type API (what a
    type note keeps; :mod:`.wit_types` is imported only then)."""
    from .wit_types import component_exports, component_imports

    return component_exports(eng, component), tuple(component_imports(eng, component))


def _imported_functions(eng: Engine, component: Component) -> Imported:
    from .wit_types import MOST_EXPORT_TYPE_NODES, _Budget, func_sig  # (a host interface's)

    found: Imported = {}
    budget = _Budget(MOST_EXPORT_TYPE_NODES)  # (imports' types are bounded alike)
    for name, ext in component.type.imports(eng).items():
        if name.startswith("wasi:"):
            continue  # the sandbox links WASI; reading its ~400 signatures cost 15-25 ms
        ty = ext.ty
        if isinstance(ty, ComponentInstanceType):
            names = _Unnamed()
            for fname, fext in ty.exports(eng).items():
                if isinstance(fext.ty, FuncType):
                    found[(name, fname)] = func_sig(fext.ty, names, budget)
    return found


def checked_imports(eng: Engine, component: Component, patch: ImportPatch) -> RawImports:
    """The raw imports of ``patch`` whose rewritten types wasmtime reports as expected,
    each with its original signature."""
    from .rawimports import original_sig  # (a cache miss: the checks run)

    found = _imported_functions(eng, component)
    checked: RawImports = {}
    for f in patch.functions:
        sig = found.get((f.interface, f.function))
        original = None if sig is None else original_sig(sig, f)
        if original is None:  # a bug in rawimports, or a binary it misread
            log.warning("raw import %s#%s does not have the expected type", *attrs.astuple(f)[:2])
            continue
        checked[(f.interface, f.function)] = (f, original)
    return checked


_set = object.__setattr__


def _image(
    name: str,
    path: Path | None,
    digest: str,
    component: Component,
    fuel: bool,
    facts: _Facts,
    cached: bool,
) -> ComponentImage:
    """``ComponentImage(name, path, digest, component, <facts' fields>, fuel, ...,
    cached=cached)``, its slots set directly: every field is given and the record
    declares no converter or validator, so this is the record its ``__init__`` makes,
    about a microsecond instead of the generic ``__init__``'s 6 µs, paid by every load
    in a process's first 50 (until the record's own is compiled).
    tests/test_load_paths.py checks both make the same image."""
    image = object.__new__(ComponentImage)
    _set(image, "name", name)
    _set(image, "path", path)
    _set(image, "sha256", digest)
    _set(image, "component", component)
    _set(image, "exports", facts.exports)
    _set(image, "imports", facts.imports)
    _set(image, "byte_exports", facts.byte_exports)
    _set(image, "fuel", fuel)
    _set(image, "layout", facts.layout)
    _set(image, "measured", facts.measured)
    _set(image, "measure_limit", facts.measure_limit)
    _set(image, "raw_exports", facts.raw_exports)
    _set(image, "raw_probe", facts.raw_probe)
    _set(image, "added_exports", facts.added_exports)
    _set(image, "_facts", facts)
    _set(image, "data", None)
    _set(image, "_cached", cached)
    _set(image, "_own", None)
    return image


def imported_functions(image: ComponentImage) -> Imported:
    """:meth:`ComponentImage.imported_functions` of ``image``."""
    return image.imported_functions()
