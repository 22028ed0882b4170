"""The process's wasmtime Engines, their epoch ticker, and the persistent compile cache.

There are two Engines, created on first use: both interrupt guests by epoch (timeouts);
only the second also meters fuel. Fuel metering makes every loop of the compiled guest
count and check instructions (about 17 instructions a round instead of 5 for a tight
loop, and it runs slower still when both cores are busy), so a plugin is compiled for the
fuel Engine only when it has a fuel limit. A component compiled for one Engine cannot run
in the other: the compile-cache key holds the Engine's configuration.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import sys
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Final

from wasmtime import Config, Engine, WasmtimeError
from wasmtime.component import Component

from .. import _attrs as attrs
from .. import _log as logging
from .._errors import EngineConfigError, PluginLoadError
from .._files import atomic_write

__all__ = [
    "CATCH_UP",
    "COMPILE_TIMEOUT",
    "EPOCH_TICK",
    "IN_PROCESS_COMPILE_BYTES",
    "CacheInfo",
    "Progress",
    "aot_cache_dir",
    "cache_clear",
    "cache_info",
    "compile_component",
    "configure_engine",
    "engine",
    "error_text",
    "evict",
]

log = logging.getLogger("airssys_plugins.runtime")

#: Seconds between epoch ticks: the resolution of per-call timeouts.
EPOCH_TICK: Final = 0.005
#: Components up to this size compile in the host process: whatever their shape that takes
#: a few seconds at most (bench/bench_hostile_load.py: ~15 s per MB for the worst shape,
#: many tiny functions, on a busy 2-core machine). Larger ones compile in a child process
#: that is killed at the compile deadline: wasmtime cannot interrupt a compilation.
IN_PROCESS_COMPILE_BYTES: Final = 256 * 2**10
#: Default seconds a compilation may take (``Limits.compile_timeout``).
COMPILE_TIMEOUT: Final = 120.0
#: Most ticks the ticker makes up after it was held up (see tick()); deadlines add them.
CATCH_UP: Final = 2
#: Ticks the ticker has made (read by callers to skip resetting an unchanged deadline).
epochs = 0


@functools.cache
def wasmtime_version() -> str:
    """The installed wasmtime-py's version (part of the compile-cache key). Read on first
    use, from the ``METADATA`` of the one ``wasmtime-*.dist-info`` beside the imported
    package when there is exactly one: ``importlib.metadata`` costs ~10-20 ms to import
    (email, zipfile, csv), which a new process loading from the compile cache would pay
    on every start. Anything else asks ``importlib.metadata``."""
    found = _dist_info_version()
    if found is not None:
        return found
    from importlib.metadata import version

    return version("wasmtime")


def _dist_info_version() -> str | None:
    import wasmtime

    site = os.path.dirname(os.path.dirname(os.path.abspath(wasmtime.__file__)))
    try:
        # (the prefix test first: a site-packages of hundreds of entries was 0.1 ms of
        # calls to the full check)
        infos = [n for n in os.listdir(site) if n[:9].lower() == "wasmtime-" and _is_dist_info(n)]
        if len(infos) != 1:
            return None
        with open(os.path.join(site, infos[0], "METADATA"), encoding="utf-8") as f:
            head = f.read(4096)
    except OSError:
        return None
    fields = dict(
        line.split(": ", 1) for line in head.split("\n\n", 1)[0].splitlines() if ": " in line
    )
    name, version = fields.get("Name", ""), fields.get("Version", "")
    if name.lower() != "wasmtime" or not _is_version_text(version):
        return None
    return version


# The two checks below are read by hand: compiling their patterns cost every new process
# about 0.2 ms (tests/test_load_sharing.py checks each against its pattern).


def _is_dist_info(name: str) -> bool:
    r"""Whether ``name`` is ``wasmtime-<version>.dist-info`` (any case): what
    ``re.fullmatch(r"wasmtime-[^-]+\.dist-info", name, re.IGNORECASE)`` accepts, for
    ASCII names."""
    folded = name.lower()
    middle = folded[len("wasmtime-") : -len(".dist-info")]
    return (
        folded.startswith("wasmtime-")
        and folded.endswith(".dist-info")
        and len(folded) > len("wasmtime-.dist-info")
        and "-" not in middle
    )


_VERSION_CHARS: Final = frozenset(
    "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz.+!_-"
)


def _is_version_text(text: str) -> bool:
    """What ``re.fullmatch(r"[0-9][0-9A-Za-z.+!_-]*", text)`` accepts."""
    return bool(text) and "0" <= text[0] <= "9" and _VERSION_CHARS.issuperset(text)


def _fingerprint(fuel: bool) -> str:
    """Everything in the Config that changes compiled code; part of the compile-cache key."""
    return f"epoch=1;fuel={int(fuel)};nomove=1"


DEFAULT_CACHE_LIMIT: Final = 2 * 2**30
_STALE_TEMP_SECONDS: Final = 3600

_lock = threading.Lock()
_engines: dict[bool, Engine] = {}
_ticker: threading.Thread | None = None


def engine(fuel: bool = False) -> Engine:
    """The process-wide Engine with epoch interruption, and fuel metering if ``fuel``
    (each created on first use)."""
    eng = _engines.get(fuel)
    if eng is None:
        with _lock:
            eng = _engines.get(fuel)
            if eng is None:
                cfg = Config()
                cfg.epoch_interruption = True
                cfg.consume_fuel = fuel
                # The raw byte route (runtime/guestmem.py) finds a guest's memory once per
                # instance: it must never move. (A 32-bit memory has its 4 GiB reserved,
                # so it does not in practice; this makes it a guarantee.)
                cfg.memory_may_move = False
                if _max_wasm_stack is not None:
                    cfg.max_wasm_stack = _max_wasm_stack
                eng = _engines[fuel] = Engine(cfg)
    return eng


_max_wasm_stack: int | None = None
# Native stack a wasm call may need beyond its own max_wasm_stack (host frames, trampolines).
_STACK_MARGIN: Final = 256 * 2**10


def configure_engine(*, max_wasm_stack: int | None = None) -> None:
    """Validate and set engine options; must run before the first plugin loads.

    A ``max_wasm_stack`` larger than the native stack of the threads that call plugins makes
    deep recursion in a guest overflow the *native* stack: the whole process dies (SIGSEGV).
    It must leave room within the smallest thread stack in use: the main thread's
    ``RLIMIT_STACK`` and ``threading.stack_size()`` for new threads.
    """
    global _max_wasm_stack
    if max_wasm_stack is None:
        return
    if _engines:
        raise EngineConfigError(
            "the engine already exists; call configure_engine() before loading any plugin"
        )
    if max_wasm_stack < 64 * 2**10:
        raise EngineConfigError(f"max_wasm_stack={max_wasm_stack} is below 64 KiB")
    room = min(_native_stack_sizes()) - _STACK_MARGIN
    if max_wasm_stack > room:
        raise EngineConfigError(
            f"max_wasm_stack={max_wasm_stack:,} bytes does not fit the native thread stack "
            f"({room + _STACK_MARGIN:,} bytes, minus {_STACK_MARGIN:,} for host frames); a guest "
            "recursing that deep would crash the process. Lower it, or raise the thread "
            "stack size (threading.stack_size / ulimit -s) first."
        )
    _max_wasm_stack = max_wasm_stack


def _native_stack_sizes() -> list[int]:
    import resource

    sizes = []
    soft, _ = resource.getrlimit(resource.RLIMIT_STACK)
    if soft not in (resource.RLIM_INFINITY, -1) and soft > 0:
        sizes.append(soft)
    thread_size = threading.stack_size()
    sizes.append(thread_size if thread_size else 8 * 2**20)
    return sizes


def start_ticker() -> None:
    """Start the daemon thread that advances the engines' epoch every EPOCH_TICK."""
    global _ticker
    with _lock:
        if _ticker is not None:
            return

        def tick() -> None:
            # Each wake-up makes one tick, on a schedule kept by the clock: a sleep that
            # overshoots (by ~30 % on a busy machine, which made a 10 s deadline last 13 s)
            # shortens the next one. One tick at a time, never a jump: a call reuses its
            # deadline while the count has not moved (instance.py), which a jump of many
            # ticks would cut short. A backlog over CATCH_UP ticks (a suspend, a stall)
            # is dropped rather than made up, so a deadline is never early by more.
            global epochs
            next_at = time.monotonic() + EPOCH_TICK
            while True:
                delay = next_at - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                now = time.monotonic()
                if now - next_at > CATCH_UP * EPOCH_TICK:
                    next_at = now
                next_at += EPOCH_TICK
                epochs += 1  # before the engines': a reader seeing the old count is early
                for eng in list(_engines.values()):
                    eng.increment_epoch()

        _ticker = threading.Thread(target=tick, name="airssys-plugins-epoch", daemon=True)
        _ticker.start()


def error_text(exc: BaseException, *, limit: int = 600) -> str:
    """A wasmtime error on one line with its whole cause chain: ``failed to parse
    WebAssembly module: magic header not detected...``, not only the headline (the
    parser's reason is in the chain)."""
    text = str(exc).strip()
    head, _, chain = text.partition("Caused by:")
    parts = [head]
    if chain.strip():
        numbered = re.search(r"^\s+0: ", chain, re.MULTILINE)
        parts += re.split(r"\n\s+\d+: ", "\n" + chain.strip("\n")) if numbered else [chain]
    flat = ": ".join(joined for p in parts if (joined := " ".join(p.split())))
    flat = re.sub(r"\[ ", "[", flat).replace(", ]", "]")
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def aot_cache_dir() -> Path:
    """Where compiled components are kept: ``$AIRSSYS_PLUGINS_CACHE_DIR`` or the user cache."""
    env = os.environ
    override = env.get("AIRSSYS_PLUGINS_CACHE_DIR")
    if override:  # the other two matter only without it (a load asks several times)
        return _aot_cache_dir(override, None, None)
    return _aot_cache_dir(None, env.get("XDG_CACHE_HOME"), env.get("HOME"))


@functools.lru_cache(maxsize=16)
def _aot_cache_dir(override: str | None, xdg: str | None, home: str | None) -> Path:
    # Keyed by the variables platformdirs reads on Linux: a load asks several times, and
    # platformdirs costs ~0.1 ms a call; a test or a host that changes them is still seen.
    if override:
        return Path(override) / "aot"
    user = _linux_cache_dir(xdg, home)
    if user is None:
        import platformdirs  # imported where the answer is not plain (see below): ~8 ms

        user = platformdirs.user_cache_dir("airssys-plugins")
    return Path(user) / "aot"


def _linux_cache_dir(xdg: str | None, home: str | None) -> str | None:
    """platformdirs' ``user_cache_dir("airssys-plugins")`` on Linux, where the answer is
    plain: under ``$XDG_CACHE_HOME`` if it is absolute, else under ``$HOME/.cache`` if
    ``HOME`` is (``~`` expanded as :func:`os.path.expanduser` does). None elsewhere
    (other systems, Android, a relative or missing ``HOME``): platformdirs answers then.
    Importing platformdirs costs a new process's first load about 8 ms (it imports
    tempfile, shutil and random); tests/test_load_sharing.py checks that the two agree
    on the plain cases and that the others are left to it."""
    android = hasattr(sys, "getandroidapilevel") or "ANDROID_DATA" in os.environ
    if sys.platform != "linux" or android:
        return None
    if xdg and xdg.startswith("/"):
        return os.path.join(xdg, "airssys-plugins")
    if home and home.startswith("/"):
        return os.path.join(home.rstrip("/") + "/.cache", "airssys-plugins")
    return None


#: ``progress(stage, detail)``: told of slow steps (see :func:`compile_component`).
Progress = Callable[[str, str], None]


def compile_component(
    data: bytes | Callable[[], bytes],
    digest: str,
    *,
    label: str,
    cache: bool = True,
    fuel: bool = False,
    plugin: str | None = None,
    timeout: float = COMPILE_TIMEOUT,
    progress: Progress | None = None,
    in_child: bool = False,
) -> Component:
    """Compile ``data`` (a component binary, or a function making it only if it must be
    compiled) for :func:`engine` ``(fuel)``, through the persistent AOT cache.

    A compilation is bounded by ``timeout`` seconds: one of a binary larger than
    :data:`IN_PROCESS_COMPILE_BYTES`, or with ``in_child`` (a small binary that expands
    when compiled, see :mod:`.layout`), runs in a child process, killed at the deadline
    (then :class:`PluginLoadError` naming ``plugin``); a smaller one in this process.

    The cache key is the component's sha256, the wasmtime version and the engine
    configuration, so an upgrade or a config change never loads a stale artefact. Writes
    are atomic (temp file + rename); an unreadable entry is logged and recompiled.

    Entries are memory-mapped while their components live: replace or delete them, never
    rewrite one in place (truncating a mapped file kills the process with SIGBUS).

    ``progress(stage, detail)`` is told ``("compiling", "first time only, 18.3 MB")``
    before a compilation (not when the cache or a loaded copy serves).
    """
    eng = engine(fuel)
    key = _live_key(digest, fuel)
    live = _LIVE_COMPONENTS.get(key)
    if live is not None:  # the same bytes are loaded already (or kept): share the code
        return live
    component = _compile_or_load(
        eng,
        data,
        digest,
        label=label,
        cache=cache,
        fuel=fuel,
        plugin=plugin,
        timeout=timeout,
        progress=progress,
        in_child=in_child,
    )
    _LIVE_COMPONENTS[key] = component
    return component


def loaded(digest: str, fuel: bool) -> Component | None:
    """The compiled component of ``digest`` for :func:`engine` ``(fuel)`` if this process
    holds it (a plugin uses it, or it is kept), else None."""
    return _LIVE_COMPONENTS.get(_live_key(digest, fuel))


def _live_key(digest: str, fuel: bool) -> str:
    return f"{digest}-{_fingerprint(fuel)}"


# Compiled components by sha256 while anything uses them: loading one file under several
# names (or again after an unload) maps its artefact once.
_LIVE_COMPONENTS: weakref.WeakValueDictionary[str, Component] = weakref.WeakValueDictionary()

#: How many compiled components of unloaded plugins stay in memory (see :func:`keep_compiled`).
DEFAULT_KEEP_COMPILED: Final = 8
_kept: OrderedDict[str, Component] = OrderedDict()
_keep_count = DEFAULT_KEEP_COMPILED


def retain(digest: str, fuel: bool) -> None:
    """Keep the compiled component of ``digest`` for :func:`engine` ``(fuel)`` (see
    :func:`loaded`) in memory after its last user is gone: the host calls this when a
    plugin is unloaded. The :func:`keep_compiled` most recently retained are kept; a
    digest this process holds no component of is ignored."""
    key = _live_key(digest, fuel)
    component = _LIVE_COMPONENTS.get(key)
    if component is None:
        return
    with _lock:
        _kept[key] = component
        _kept.move_to_end(key)
        while len(_kept) > _keep_count:
            _kept.popitem(last=False)


def keep_compiled(count: int | None = None) -> int:
    """How many compiled components of unloaded plugins this process keeps in memory
    (default 8, the most recently unloaded); with ``count``, set it first (0: none; the
    excess is released at once). Returns the number in effect.

    Loading a kept component again (an unload and a load of the same bytes, a plugin
    loaded per request or per tenant) maps nothing and reads nothing but the file's
    status and its remembered digest: it costs an instantiation. A kept component holds
    its machine code (mapped from the compile cache, with one open file descriptor: file
    pages the kernel can reclaim) and its type information; no instance, store or guest
    memory, which go with the plugin. A load that fails keeps nothing."""
    global _keep_count
    if count is not None:
        if count < 0:
            raise ValueError(f"keep_compiled({count}): give 0 or more")
        with _lock:
            _keep_count = count
            while len(_kept) > count:
                _kept.popitem(last=False)
    return _keep_count


def release_compiled() -> int:
    """Drop every kept compiled component no plugin uses (see :func:`keep_compiled`);
    returns how many were kept. Components of loaded plugins stay until they unload."""
    with _lock:
        count = len(_kept)
        _kept.clear()
    return count


def _compile_or_load(
    eng: Engine,
    data: bytes | Callable[[], bytes],
    digest: str,
    *,
    label: str,
    cache: bool,
    fuel: bool,
    plugin: str | None,
    timeout: float,
    progress: Progress | None = None,
    in_child: bool = False,
) -> Component:
    path = aot_cache_dir() / f"{digest}-{wasmtime_version()}-{_file_tag(fuel)}.cwasm"
    if cache and path.is_file():
        try:
            component = Component.deserialize_file(eng, str(path))
            _touch(path)
            return component
        except WasmtimeError as exc:
            log.warning(
                "compile cache entry %s for %s is unusable (%s); recompiling", path, label, exc
            )
            path.unlink(missing_ok=True)
    started = time.perf_counter()
    if callable(data):
        data = data()
    log.info("compiling %s (%.1f MB); this happens once per version", label, len(data) / 1e6)
    if progress is not None:
        size = f"{len(data) / 1e6:.1f} MB" if len(data) >= 100_000 else f"{len(data):,} bytes"
        progress("compiling", f"first time only, {size}")
    artefact: bytes | bytearray | None
    if len(data) <= IN_PROCESS_COMPILE_BYTES and not in_child:
        component = Component(eng, data)
        artefact = component.serialize() if cache else None
    else:
        child = _compile_in_child(data, fuel, label=label, plugin=plugin, timeout=timeout)
        component, artefact = Component.deserialize(eng, child), child
    log.info("compiled %s in %.2f s", label, time.perf_counter() - started)
    if cache and artefact is not None:
        _store_atomically(path, artefact)
        evict(keep=path)
    return component


# The child builds the same Config as engine(): an artefact of another configuration would
# not deserialize. Its error text goes to stderr, its artefact to stdout.
_CHILD = """
import sys
import wasmtime
from wasmtime.component import Component
cfg = wasmtime.Config()
cfg.epoch_interruption = True
cfg.consume_fuel = sys.argv[1] == "1"
cfg.memory_may_move = False
if sys.argv[2] != "-":
    cfg.max_wasm_stack = int(sys.argv[2])
data = sys.stdin.buffer.read()
try:
    blob = Component(wasmtime.Engine(cfg), data).serialize()
except wasmtime.WasmtimeError as exc:
    sys.stderr.write(str(exc))
    sys.exit(3)
sys.stdout.buffer.write(blob)
"""


def _compile_in_child(
    data: bytes, fuel: bool, *, label: str, plugin: str | None, timeout: float
) -> bytes:
    """The serialized artefact of ``data``, compiled by a child process killed after
    ``timeout`` seconds (its memory is its own, so a compile bomb cannot exhaust ours)."""
    import subprocess  # imported on first use: most processes never compile in a child

    stack = "-" if _max_wasm_stack is None else str(_max_wasm_stack)
    argv = [sys.executable, "-I", "-c", _CHILD, "1" if fuel else "0", stack]
    try:
        done = subprocess.run(argv, input=data, capture_output=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:
        raise PluginLoadError(
            f"{label}: compiling its {len(data):,}-byte component took longer than {timeout:g} "
            "s and was stopped; a component this slow to compile is refused. Raise "
            "Limits(compile_timeout=...) if it is trusted",
            plugin=plugin,
        ) from exc
    if done.returncode == 3:
        raise WasmtimeError(done.stderr.decode("utf-8", "replace"))
    if done.returncode != 0:
        raise PluginLoadError(
            f"{label}: the compiler process failed (exit status {done.returncode}): "
            f"{done.stderr.decode('utf-8', 'replace').strip()[-2000:]}",
            plugin=plugin,
        )
    return done.stdout


@attrs.frozen
class CacheInfo:
    """What the compile cache holds."""

    directory: Path
    entries: int
    total_bytes: int
    limit_bytes: int


def cache_limit() -> int:
    """Size bound of the compile cache: ``$AIRSSYS_PLUGINS_CACHE_MAX_MB`` or 2 GiB."""
    value = os.environ.get("AIRSSYS_PLUGINS_CACHE_MAX_MB")
    try:
        return int(float(value) * 2**20) if value else DEFAULT_CACHE_LIMIT
    except ValueError:
        log.warning("AIRSSYS_PLUGINS_CACHE_MAX_MB=%r is not a number; using 2 GiB", value)
        return DEFAULT_CACHE_LIMIT


def _entries() -> list[tuple[Path, os.stat_result]]:
    directory = aot_cache_dir()
    if not directory.is_dir():
        return []
    found = []
    for path in directory.glob("*.cwasm"):
        try:
            found.append((path, path.stat()))
        except OSError:  # removed by another process meanwhile
            continue
    return found


def cache_info() -> CacheInfo:
    entries = [e for e in _entries() if not e[0].name.startswith(".tmp-")]
    return CacheInfo(
        aot_cache_dir(), len(entries), sum(st.st_size for _, st in entries), cache_limit()
    )


def cache_clear() -> int:
    """Delete every compile cache entry, and release the compiled components kept in
    memory (:func:`release_compiled`); returns how many entries. Live components keep
    working (their mapping outlives the unlinked file)."""
    release_compiled()
    removed = 0
    for path, _ in _entries():
        with contextlib.suppress(OSError):
            path.unlink()
            removed += 1
    directory = aot_cache_dir()
    for path in directory.glob("*.plan") if directory.is_dir() else ():
        with contextlib.suppress(OSError):
            path.unlink()
    digests = directory / _DIGESTS
    for path in digests.iterdir() if digests.is_dir() else ():
        with contextlib.suppress(OSError):
            path.unlink()
    return removed


def load_plan(key: str) -> bytes | None:
    """A small note kept beside the compile cache (see _instance: byte-export plans)."""
    try:
        return (aot_cache_dir() / f"{key}.plan").read_bytes()
    except OSError:
        return None


def plan_stamp(key: str) -> tuple[int, int, int] | None:
    """(inode, size, mtime) of the note :func:`load_plan` reads for ``key``; None if absent.
    A process that remembers what a note said checks that it is still the same file."""
    try:
        st = os.stat(aot_cache_dir() / f"{key}.plan")
    except OSError:
        return None
    return st.st_ino, st.st_size, st.st_mtime_ns


def store_plan(key: str, blob: bytes) -> None:
    _store_atomically(aot_cache_dir() / f"{key}.plan", blob)


#: Subdirectory of the compile cache holding the digest index: one small file per file
#: version (named by its :class:`.._files.FileKey` token) holding its SHA-256.
_DIGESTS: Final = "digests"
_HEX: Final = frozenset("0123456789abcdef")


def is_sha256_hex(text: str) -> bool:
    """Whether ``text`` is a SHA-256 as the cache writes one: 64 lower-case hex digits
    (what ``re.fullmatch("[0-9a-f]{64}", text)`` accepts)."""
    return len(text) == 64 and _HEX.issuperset(text)


#: Most entries the digest index keeps; past that it starts again empty.
_DIGESTS_KEPT: Final = 10_000


def load_digest(token: str) -> str | None:
    """The SHA-256 the digest index holds for the file version ``token``, if any.

    The index is as trusted as the compiled artefacts beside it (whoever can write the
    cache can already put native code under any digest), and an entry only names an
    artefact: bytes that must be compiled are hashed again first (see
    :mod:`.image`)."""
    try:
        blob = (aot_cache_dir() / _DIGESTS / token).read_bytes()
    except OSError:
        return None
    text = blob.decode("latin-1")  # (any byte decodes; a non-hex one then fails the check)
    return text if is_sha256_hex(text) else None


def store_digest(token: str, digest: str) -> None:
    directory = aot_cache_dir() / _DIGESTS
    try:
        if directory.is_dir() and len(os.listdir(directory)) >= _DIGESTS_KEPT:
            for name in os.listdir(directory):
                with contextlib.suppress(OSError):
                    (directory / name).unlink()
    except OSError:
        pass
    _store_atomically(directory / token, digest.encode())


def evict(*, keep: Path | None = None, limit: int | None = None) -> int:
    """Delete least-recently-used entries until the cache fits its size bound, and
    temp files abandoned by crashed writers. Returns how many files were removed."""
    limit = cache_limit() if limit is None else limit
    now = time.time()
    removed = 0
    live: list[tuple[Path, os.stat_result]] = []
    for path, st in _entries():
        if path.name.startswith(".tmp-"):
            if now - st.st_mtime > _STALE_TEMP_SECONDS:
                with contextlib.suppress(OSError):
                    path.unlink()
                    removed += 1
            continue
        live.append((path, st))
    total = sum(st.st_size for _, st in live)
    for path, st in sorted(live, key=lambda e: e[1].st_mtime):
        if total <= limit:
            break
        if path == keep:
            continue
        with contextlib.suppress(OSError):
            path.unlink()
            removed += 1
            total -= st.st_size
            log.info("evicted compile cache entry %s (%.1f MB)", path.name, st.st_size / 2**20)
    return removed


def _touch(path: Path) -> None:
    with contextlib.suppress(OSError):  # a read-only cache still serves hits
        os.utime(path)


def _file_tag(fuel: bool) -> str:
    """The Config's part of a compile-cache file name: its fingerprint, spelt for a file
    name (``epoch1-fuel0-nomove1``); read as it is, not hashed."""
    return _fingerprint(fuel).replace("=", "").replace(";", "-")


def _store_atomically(path: Path, blob: bytes | bytearray) -> None:
    try:
        atomic_write(path, blob, durable=False)  # a lost entry is compiled again
    except OSError as exc:  # a read-only or full cache must not stop a plugin from loading
        log.warning("cannot write compile cache entry %s: %s", path, exc)


# -- compiled artefacts for other processes (host/shipment.py: a batch's workers) ----------


@attrs.frozen
class Artefact:
    """A compiled component as bytes, for a process elsewhere: ``key`` is its compile-cache
    key (digest and engine configuration), ``fingerprint`` what must match where it is
    deserialised (the wasmtime version, the engine configuration and the target)."""

    key: str
    fingerprint: str
    fuel: bool
    data: bytes = attrs.field(repr=lambda d: f"<{len(d)} bytes>")


def _ship_fingerprint(fuel: bool) -> str:
    import platform

    target = f"{platform.machine()}-{sys.platform}"
    return f"wasmtime={wasmtime_version()};{_fingerprint(fuel)};target={target}"


def export_artefact(component: Component) -> Artefact | None:
    """``component`` (a live compiled component of this process) as an :class:`Artefact`;
    None if this process did not compile or load it through :func:`compile_component`."""
    for key, live in list(_LIVE_COMPONENTS.items()):
        if live is component:
            fuel = key.endswith(f"-{_fingerprint(True)}")
            return Artefact(key, _ship_fingerprint(fuel), fuel, bytes(component.serialize()))
    return None


def import_artefact(artefact: Artefact) -> Component | None:
    """Deserialise ``artefact`` (made by :func:`export_artefact` in a trusted process: it is
    native code) so that :func:`compile_component` of the same digest uses it instead of
    compiling; hold the result while loading. None (compile from bytes instead) where the
    fingerprint differs or wasmtime refuses it (a CPU without the features it was compiled
    for, say)."""
    if artefact.fingerprint != _ship_fingerprint(artefact.fuel):
        return None
    live = _LIVE_COMPONENTS.get(artefact.key)
    if live is not None:
        return live
    try:
        component = Component.deserialize(engine(artefact.fuel), artefact.data)
    except WasmtimeError as exc:
        log.info("a shipped artefact is unusable here (%s); compiling instead", error_text(exc))
        return None
    _LIVE_COMPONENTS[artefact.key] = component
    return component
