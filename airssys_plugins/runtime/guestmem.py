"""Where a component's linear memory lies in this process, and bounds-checked copies.

wasmtime's C API gives no handle on a component's core memory, so the raw byte route
(:mod:`.rawbytes`, :mod:`.rawabi`) finds it once per instance. The rewritten component
exports a *probe* (``func(a: u64, b: u64) -> u64``): it asks the guest's allocator for a
16-byte block, stores ``a ^ b`` and ``a + b`` there, and returns the block's address
``p`` packed with the memory's size (``pages << 32 | p``). The host then looks, at ``S + p``
for every start ``S`` of a readable mapping in ``/proc/self/maps`` whose run of readable
mappings holds the whole memory, for those 16 bytes. They are *derived* in wasm right
before the store, so the only adjacent copy of them is the guest's memory (the arguments
themselves travel in 16- and 32-byte value slots and may be spilled by compiled code;
their mix is not). Exactly one mapping must match, and a second probe with fresh values
(another block) must land at the same base. A base seen before is tried first.

Every read that could fault goes through the kernel: the bytes are ``write``-n to a pipe
and read back, and an address that is not mapped readable gives EFAULT instead of a
crash (a mapping may go away between reading the maps and looking, when another thread
drops a Store). The pipe is per process, re-created in a forked child.

Then :class:`GuestMemory` moves bytes with ``memmove``/``string_at`` at ``base + ptr``
after checking ``ptr + n`` against the memory size the shim reported in the same call.
The engine is configured with ``memory_may_move = False`` (and a 32-bit memory has its
4 GiB reserved), so growing never moves the memory; an instance that is discarded
forgets its base.

Linux only: elsewhere :data:`AVAILABLE` is False and the caller keeps the slower routes.
Every failure raises :class:`GuestMemoryError` (internal; the call path turns it into a
``PluginTrap`` or ``PluginABIError`` naming the plugin and the hook).
"""

from __future__ import annotations

import bisect
import contextlib
import ctypes
import errno
import os
import struct
import sys
import threading
from collections.abc import Callable
from typing import Final

__all__ = [
    "AVAILABLE",
    "GuestMemory",
    "GuestMemoryError",
    "Probe",
    "find_base",
    "find_memory",
    "probe_values",
    "safe_read",
    "unpack",
]

#: Whether the raw route can be used here: Linux's /proc/self/maps, a little-endian host
#: (guest memory is little-endian and the host reads it in place).
AVAILABLE: Final = (
    sys.platform.startswith("linux")
    and sys.byteorder == "little"
    and os.access("/proc/self/maps", os.R_OK)
)

#: ``probe(a, b) -> pages << 32 | p``: the rewritten component's probe export.
Probe = Callable[[int, int], int]

_MASK64: Final = (1 << 64) - 1
_PAGE: Final = 65536
#: A 32-bit memory's reservation: no pointer and length reach past it.
_MAX_MEMORY: Final = 1 << 32
_pack_qq = struct.Struct("<QQ").pack
_memmove = ctypes.memmove
_string_at = ctypes.string_at


class GuestMemoryError(Exception):
    """The raw route cannot go on: ``reason`` is a short cause (as in the trap table:
    "out-of-bounds pointer", "realloc out of bounds", "memory not found", ...)."""

    def __init__(self, message: str, *, reason: str):
        super().__init__(message)
        self.reason = reason


def unpack(packed: int) -> tuple[int, int]:
    """(pointer, memory size in bytes) of a value the shim packed."""
    return packed & 0xFFFFFFFF, (packed >> 32) * _PAGE


def probe_values(a: int, b: int) -> bytes:
    """The 16 bytes the shim's probe stores for arguments ``a``, ``b``."""
    return _pack_qq(a ^ b, (a + b) & _MASK64)


# ------------------------------------------------------------------ reads that cannot fault


class _SafeReader:
    """``write(pipe, addr, n)`` then ``read``: the kernel answers EFAULT for a bad address."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._fds: tuple[int, int] | None = None
        self._write: Callable[[int, int, int], int] | None = None

    def reset_after_fork(self) -> None:
        # The child must not share the parent's pipe (their reads would interleave), and
        # the lock may have been held by a thread that does not exist in the child.
        fds, self._fds = self._fds, None
        self._lock = threading.Lock()
        if fds is not None:
            for fd in fds:
                with contextlib.suppress(OSError):
                    os.close(fd)

    def _open(self) -> tuple[int, int]:
        if self._write is None:
            libc = ctypes.CDLL(None, use_errno=True)
            write = libc.write
            write.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_size_t]
            write.restype = ctypes.c_ssize_t
            self._write = write
        r, w = os.pipe()
        os.set_inheritable(r, False)
        os.set_inheritable(w, False)
        self._fds = (r, w)
        return r, w

    def read(self, addr: int, n: int) -> bytes | None:
        if not 0 < n <= 4096 or addr <= 0:
            return None
        with self._lock:
            fds = self._fds or self._open()
            write = self._write
            assert write is not None
            done = write(fds[1], addr, n)
            if done <= 0:
                if ctypes.get_errno() not in (errno.EFAULT, 0):
                    # Not the answer for a bad address: the pipe itself is unusable.
                    self.reset_after_fork()
                return None
            data = os.read(fds[0], done)
        return data if done == n else None


_reader = _SafeReader()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reader.reset_after_fork)


def safe_read(addr: int, n: int) -> bytes | None:
    """``n`` (1..4096) bytes at process address ``addr``, or None if not all readable."""
    return _reader.read(addr, n)


# ------------------------------------------------------------------ finding the base

_known_lock = threading.Lock()
#: Bases found before, newest last: a new instance's memory often reuses the address of
#: one dropped before (the kernel hands the same range out again).
_known_bases: list[int] = []
_KNOWN_MAX: Final = 64


def _readable_runs() -> tuple[list[int], list[tuple[int, int]]]:
    """Starts of the readable mappings, and runs of adjacent readable mappings (merged)."""
    starts: list[int] = []
    runs: list[tuple[int, int]] = []
    with open("/proc/self/maps", "rb") as maps:
        for line in maps:
            fields = line.split()
            if len(fields) < 5 or fields[1][:1] != b"r":
                continue
            path = fields[5] if len(fields) > 5 else b""
            if path.startswith((b"[v", b"/dev/")):
                continue  # [vvar], [vsyscall], devices: reading them may have effects
            lo_text, _, hi_text = fields[0].partition(b"-")
            lo, hi = int(lo_text, 16), int(hi_text, 16)
            starts.append(lo)
            if runs and runs[-1][1] == lo:
                runs[-1] = (runs[-1][0], hi)
            else:
                runs.append((lo, hi))
    return starts, runs


def _probe(probe: Probe) -> tuple[int, int, bytes]:
    a, b = (int.from_bytes(os.urandom(8), "little") for _ in range(2))
    p, size = unpack(probe(a, b))
    if p + 16 > size:
        raise GuestMemoryError(
            f"the probe's block (at {p:#x}) is outside the guest's memory ({size:,} bytes)",
            reason="realloc out of bounds",
        )
    return p, size, probe_values(a, b)


def find_memory(probe: Probe) -> GuestMemory:
    """:func:`find_base`, with the size the probe reported (the memory may grow later)."""
    sizes: list[int] = []

    def sized(a: int, b: int) -> int:
        packed = probe(a, b)
        sizes.append(unpack(packed)[1])
        return packed

    base = find_base(sized)
    return GuestMemory(base, max(sizes, default=0))


def find_base(probe: Probe) -> int:
    """The address of the guest memory's byte 0 in this process (see the module doc).

    ``probe`` calls the component's probe export; whatever it raises propagates.
    GuestMemoryError when the platform has no /proc/self/maps or the memory is not found
    exactly once.
    """
    if not AVAILABLE:
        raise GuestMemoryError(
            "finding a guest's memory needs Linux's /proc/self/maps", reason="unavailable"
        )
    p, size, want = _probe(probe)
    with _known_lock:
        known = list(reversed(_known_bases))
    for base in known:
        if safe_read(base + p, 16) == want and _confirm(probe, base):
            _remember(base)
            return base
    starts, runs = _readable_runs()
    run_starts = [lo for lo, _ in runs]
    found = []
    for s in starts:
        k = bisect.bisect_right(run_starts, s) - 1
        # the whole memory [s, s + size) must be readable: few mappings qualify
        if k >= 0 and s + size <= runs[k][1] and safe_read(s + p, 16) == want:
            found.append(s)
    if len(found) != 1:
        raise GuestMemoryError(
            f"the guest's memory was found {len(found)} times in this process, not once",
            reason="memory not found",
        )
    base = found[0]
    if not _confirm(probe, base):
        raise GuestMemoryError(
            "a second probe did not find the guest's memory where the first did",
            reason="memory not found",
        )
    _remember(base)
    return base


def _confirm(probe: Probe, base: int) -> bool:
    p, _, want = _probe(probe)
    return safe_read(base + p, 16) == want


def _remember(base: int) -> None:
    with _known_lock:
        if base in _known_bases:
            _known_bases.remove(base)
        _known_bases.append(base)
        del _known_bases[:-_KNOWN_MAX]


# ------------------------------------------------------------------ checked copies


class GuestMemory:
    """One instance's memory: its base here and its size as last reported by the shim.

    Every copy is checked against that size; the shim reports it with every pointer it
    returns (:meth:`update`), so a check always uses the size as of the latest call into
    the guest. Used under the instance's lock (one call at a time)."""

    __slots__ = ("base", "size")

    def __init__(self, base: int, size: int = 0):
        self.base = base
        self.size = size

    def update(self, packed: int) -> int:
        """Take the size from a packed shim result; return its pointer."""
        self.size = (packed >> 32) * _PAGE
        return packed & 0xFFFFFFFF

    def check(self, ptr: int, n: int, what: str) -> None:
        if ptr + n > self.size or ptr < 0 or n < 0:
            raise GuestMemoryError(
                f"{what} (pointer {ptr:#x}, {n:,} bytes) is outside the guest's memory "
                f"({self.size:,} bytes)",
                reason="out-of-bounds pointer",
            )

    def write(self, ptr: int, data: bytes | bytearray, what: str = "a block") -> None:
        n = len(data)
        self.check(ptr, n, what)
        if n:
            _memmove(self.base + ptr, bytes(data) if isinstance(data, bytearray) else data, n)

    def read(self, ptr: int, n: int, what: str = "a result") -> bytes:
        self.check(ptr, n, what)
        return _string_at(self.base + ptr, n) if n else b""

    def read_grown(self, ptr: int, n: int, what: str) -> bytes:
        """``n`` bytes at ``ptr``, where the memory may have grown since its size was last
        reported (a host function reading its arguments: the guest cannot tell the host
        its size during the call). The known size is a lower bound; past it, the last
        byte is read through the kernel (:func:`safe_read`) first. A 32-bit memory has its
        4 GiB reserved and grows only at its end, so if that byte is readable, the memory
        holds the whole range; nothing past 4 GiB is ever read."""
        end = ptr + n
        if ptr < 0 or n < 0 or end > _MAX_MEMORY:
            raise GuestMemoryError(
                f"{what} (pointer {ptr:#x}, {n:,} bytes) is outside the guest's memory "
                "(past 4 GiB)",
                reason="out-of-bounds pointer",
            )
        if end > self.size:
            if safe_read(self.base + end - 1, 1) is None:
                raise GuestMemoryError(
                    f"{what} (pointer {ptr:#x}, {n:,} bytes) is outside the guest's memory",
                    reason="out-of-bounds pointer",
                )
            self.size = -(-end // _PAGE) * _PAGE  # a lower bound again
        return _string_at(self.base + ptr, n) if n else b""
