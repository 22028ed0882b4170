"""Files written atomically, and files read without trusting what the path points at.

:func:`atomic_write`: a reader sees the old content or the new, never half of it.
:func:`read_regular_file`: only a regular file is read, and only up to a size cap checked
before reading, so a FIFO, a device (``/dev/zero``), a socket or a huge file named as a
plugin, manifest, lockfile, grants or state file fails at once instead of hanging the host
or exhausting its memory.
:func:`open_regular_file` and :class:`RegularFile`: the same checks, for a caller that
wants the file's SHA-256 (:meth:`RegularFile.sha256`, remembered per :class:`FileKey`
while the file is unchanged, see :func:`known_digest`) before deciding to read it.
"""

from __future__ import annotations

import errno
import os
import stat
import threading
import time
from pathlib import Path
from typing import Final, final

__all__ = [
    "FileKey",
    "FileRefusedError",
    "RegularFile",
    "atomic_write",
    "describe_kind",
    "forget_digests",
    "known_digest",
    "metadata_cap",
    "open_regular_file",
    "read_metadata_file",
    "read_regular_file",
    "remember_digest",
]

#: Size cap of the small files the project reads (manifests, lockfiles, grants, state).
METADATA_CAP: Final = 16 * 2**20
#: How to raise :data:`METADATA_CAP` (an environment variable, in MiB).
METADATA_CAP_ENV: Final = "AIRSSYS_PLUGINS_MAX_METADATA_MB"

_KINDS: Final = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
)


def metadata_cap() -> int:
    """The size cap of manifests, lockfiles, grants and state files:
    ``$AIRSSYS_PLUGINS_MAX_METADATA_MB`` or 16 MiB."""
    value = os.environ.get(METADATA_CAP_ENV)
    try:
        mib = float(value) if value else 0.0
    except ValueError:
        mib = 0.0
    return int(mib * 2**20) if mib > 0 else METADATA_CAP


def describe_kind(mode: int) -> str:
    """What a file of ``mode`` is, as a phrase (``"a FIFO (named pipe)"``)."""
    for test, kind in _KINDS:
        if test(mode):
            return kind
    return "a regular file" if stat.S_ISREG(mode) else "not a regular file"


class FileRefusedError(OSError):
    """A file the project will not read: not a regular file, too big, missing, a loop.

    ``strerror`` is the reason (it reads well after "cannot read PATH: "), ``filename`` the
    path, ``kind`` what the path is, ``size`` its size and ``cap`` the cap in force (the two
    last only for a file too big).
    """

    def __init__(
        self,
        code: int,
        reason: str,
        path: Path,
        *,
        kind: str | None = None,
        size: int | None = None,
        cap: int | None = None,
    ):
        super().__init__(code, reason, str(path))
        self.kind = kind
        self.size = size
        self.cap = cap

    def __str__(self) -> str:
        return f"{self.filename}: {self.strerror}"


def read_regular_file(
    path: str | os.PathLike[str], *, cap: int, what: str, raise_with: str
) -> bytes:
    """The bytes of ``path`` (``what`` it is, e.g. ``"component"``), which must be a regular
    file (a symlink is followed only to one) of at most ``cap`` bytes.

    The size is checked on the opened descriptor before anything is read (no window for a
    swap between the check and the read), and at most ``cap + 1`` bytes are read, so a file
    growing meanwhile is refused too. The file is opened non-blocking and without becoming a
    controlling terminal, so a FIFO or a tty swapped in after the first check cannot block.
    ``raise_with`` says how to raise the cap (e.g. ``"Limits(max_component_bytes=...)"``).
    Raises :class:`FileRefusedError` (an ``OSError``) naming the file, what it is, and the
    size and cap when it is too big; other ``OSError``s (permission denied) pass through.
    """
    with open_regular_file(path, cap=cap, what=what, raise_with=raise_with) as f:
        return f.read()


def open_regular_file(
    path: str | os.PathLike[str], *, cap: int, what: str, raise_with: str
) -> RegularFile:
    """``path`` opened with the checks of :func:`read_regular_file` (a regular file of at
    most ``cap`` bytes), nothing read yet. Close it (it is a context manager)."""
    path = Path(path)
    try:
        st = os.stat(path)  # follows symlinks: what would be opened
    except OSError as exc:
        raise _refused_missing(path, what, exc) from exc
    if not stat.S_ISREG(st.st_mode):
        raise _refused_kind(path, what, st.st_mode)
    _check_size(path, what, st.st_size, cap, raise_with)
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(path, flags)
    try:
        st = os.fstat(fd)  # what was opened, which may differ from what was stat-ed
        if not stat.S_ISREG(st.st_mode):
            raise _refused_kind(path, what, st.st_mode)
        _check_size(path, what, st.st_size, cap, raise_with)
    except BaseException:
        os.close(fd)
        raise
    return RegularFile(path, fd, st, cap=cap, what=what, raise_with=raise_with)


#: A file whose mtime or ctime is less than this old when it is hashed gets no memo entry:
#: a write within the same timestamp tick as our ``fstat`` (a tick is a jiffy on Linux, up
#: to 2 s on FAT) would leave its key unchanged ("racily clean", as git calls it).
RACY_NS: Final = 2_000_000_000
#: Set (to anything) in the environment, no digest is remembered: every load hashes.
NO_DIGEST_MEMO_ENV: Final = "AIRSSYS_PLUGINS_NO_DIGEST_MEMO"
_MEMO_ENTRIES: Final = 4096
_HASH_CHUNK: Final = 1 << 20


class FileKey(tuple[int, int, int, int, int]):
    """What identifies one version of a file without reading it: any write changes the
    ``ctime``, which only the kernel sets (``utime`` can put ``mtime`` back, not ``ctime``);
    replacing the file changes the inode or the ``ctime``.

    A plain tuple subclass, ``(dev, ino, size, mtime_ns, ctime_ns)``: a ``NamedTuple``
    cost every new process 0.3 ms to make (its methods are generated source)."""

    __slots__ = ()

    def __new__(cls, dev: int, ino: int, size: int, mtime_ns: int, ctime_ns: int) -> FileKey:
        return tuple.__new__(cls, (dev, ino, size, mtime_ns, ctime_ns))

    def __repr__(self) -> str:
        return "FileKey(dev={}, ino={}, size={}, mtime_ns={}, ctime_ns={})".format(*self)

    @property
    def dev(self) -> int:
        return self[0]

    @property
    def ino(self) -> int:
        return self[1]

    @property
    def size(self) -> int:
        return self[2]

    @property
    def mtime_ns(self) -> int:
        return self[3]

    @property
    def ctime_ns(self) -> int:
        return self[4]

    @classmethod
    def of(cls, st: os.stat_result, *, now_ns: int | None = None) -> FileKey | None:
        """The key of a file with status ``st``; ``None`` when it cannot be trusted to
        change with the content: no inode or ctime (some FUSE and network filesystems),
        or changed within :data:`RACY_NS` of ``now_ns``; or always, when the environment
        sets :data:`NO_DIGEST_MEMO_ENV` (then every load hashes the file again)."""
        if not st.st_ino or not st.st_ctime_ns or os.environ.get(NO_DIGEST_MEMO_ENV):
            return None
        now = _now_ns() if now_ns is None else now_ns
        if now - max(st.st_mtime_ns, st.st_ctime_ns) < RACY_NS:
            return None
        return cls(st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)

    def token(self) -> str:
        """The key as a file-name-safe string (for an index on disk)."""
        return "-".join(str(v) for v in self)


def _now_ns() -> int:  # the clock FileKey.of compares timestamps with (tests move it)
    return time.time_ns()


_memo_lock = threading.Lock()
_memo: dict[FileKey, str] = {}


def known_digest(key: FileKey | None) -> str | None:
    """The SHA-256 (hex) remembered for the file version ``key`` in this process."""
    if key is None:
        return None
    with _memo_lock:
        return _memo.get(key)


def remember_digest(key: FileKey | None, digest: str) -> None:
    """Remember that the file version ``key`` has SHA-256 ``digest`` (the oldest of
    :data:`_MEMO_ENTRIES` entries makes room)."""
    if key is None:
        return
    with _memo_lock:
        _memo.pop(key, None)
        _memo[key] = digest
        while len(_memo) > _MEMO_ENTRIES:
            del _memo[next(iter(_memo))]


def forget_digests() -> None:
    """Forget every remembered digest (the next hash of each file reads it again)."""
    with _memo_lock:
        _memo.clear()


@final
class RegularFile:
    """A regular file opened by :func:`open_regular_file`: its descriptor, status and key."""

    def __init__(
        self, path: Path, fd: int, st: os.stat_result, *, cap: int, what: str, raise_with: str
    ):
        self.path = path
        self.fd = fd
        self.st = st
        self._cap = cap
        self._what = what
        self._raise_with = raise_with
        #: This version's :class:`FileKey`, or ``None`` (see :meth:`FileKey.of`).
        self.key = FileKey.of(st)

    def __enter__(self) -> RegularFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def unchanged(self) -> bool:
        """Whether the file still has the key it was opened with (and has one)."""
        return self.key is not None and FileKey.of(os.fstat(self.fd)) == self.key

    def read(self) -> bytes:
        """The whole file (at most ``cap + 1`` bytes are read: one grown past it is refused)."""
        chunks: list[bytes] = []
        remaining = self._cap + 1
        offset = 0
        while remaining > 0:
            chunk = os.pread(self.fd, min(remaining, 2**20 * 8), offset)
            if not chunk:
                break
            chunks.append(chunk)
            remaining -= len(chunk)
            offset += len(chunk)
        data = b"".join(chunks)
        _check_size(self.path, self._what, len(data), self._cap, self._raise_with, grew=True)
        return data

    def sha256(self) -> str:
        """The file's SHA-256 (hex), read in 1 MiB chunks (no copy of the file is kept);
        remembered for its key when the file did not change while it was hashed."""
        import hashlib

        digest = hashlib.sha256()
        buf = bytearray(_HASH_CHUNK)
        view = memoryview(buf)
        offset, remaining = 0, self._cap + 1
        while remaining > 0:
            n = os.preadv(self.fd, [view[: min(remaining, _HASH_CHUNK)]], offset)
            if not n:
                break
            digest.update(view[:n])
            offset += n
            remaining -= n
        _check_size(self.path, self._what, offset, self._cap, self._raise_with, grew=True)
        hexdigest = digest.hexdigest()
        if self.unchanged():
            remember_digest(self.key, hexdigest)
        return hexdigest


def _refused_missing(path: Path, what: str, exc: OSError) -> OSError:
    if exc.errno == errno.ELOOP:
        return FileRefusedError(
            errno.ELOOP,
            f"the {what} path is a symlink loop (or a chain of too many symlinks)",
            path,
            kind="a symlink loop",
        )
    if exc.errno == errno.ENOENT:
        dangling = os.path.islink(path)
        return FileRefusedError(
            errno.ENOENT,
            f"the {what} {'is a dangling symlink' if dangling else 'does not exist'}",
            path,
            kind="a dangling symlink" if dangling else "missing",
        )
    return exc


def _refused_kind(path: Path, what: str, mode: int) -> FileRefusedError:
    kind = describe_kind(mode)
    via = " (through a symlink)" if os.path.islink(path) else ""
    return FileRefusedError(
        errno.EISDIR if stat.S_ISDIR(mode) else errno.EINVAL,
        f"the {what} path is {kind}{via}, not a regular file; only regular files are read",
        path,
        kind=kind,
    )


def _check_size(
    path: Path, what: str, size: int, cap: int, raise_with: str, *, grew: bool = False
) -> None:
    if size > cap:  # ``grew``: it passed the check on its size, then grew while being read
        raise FileRefusedError(
            errno.EFBIG,
            f"the {what} is {'more than ' if grew else ''}{size - grew:,} bytes, above the "
            f"cap of {cap:,} bytes; raise it with {raise_with} if the file is trusted",
            path,
            kind="a regular file",
            size=size,
            cap=cap,
        )


def atomic_write(
    path: str | os.PathLike[str], data: bytes | bytearray | str, *, durable: bool = True
) -> Path:
    """Write ``data`` (``str`` as UTF-8) to ``path`` through a temporary file beside it.

    With ``durable`` the temporary file is flushed to disk before it replaces ``path``
    (caches that can be rebuilt skip that); it is removed if anything fails, and the
    parent directory is created when missing.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    blob = data.encode("utf-8") if isinstance(data, str) else data
    import tempfile  # imported on first write: ~10-20 ms (shutil, random) a warm start skips

    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(blob)
            if durable:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def read_metadata_file(path: str | os.PathLike[str], *, what: str) -> bytes:
    """:func:`read_regular_file` for the project's small files (``what``: "manifest",
    "lockfile", "grants file", "plugin settings"), capped by :func:`metadata_cap`."""
    return read_regular_file(
        path,
        cap=metadata_cap(),
        what=what,
        raise_with=f"the environment variable {METADATA_CAP_ENV}=<MiB>",
    )
