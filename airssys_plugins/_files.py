"""Files written atomically, and files read without trusting what the path points at.

:func:`atomic_write`: a reader sees the old content or the new, never half of it.
:func:`read_regular_file`: only a regular file is read, and only up to a size cap checked
before reading, so a FIFO, a device (``/dev/zero``), a socket or a huge file named as a
plugin, manifest, lockfile, grants or state file fails at once instead of hanging the host
or exhausting its memory.
"""

from __future__ import annotations

import errno
import os
import stat
import tempfile
from pathlib import Path
from typing import Final

__all__ = [
    "FileRefusedError",
    "atomic_write",
    "describe_kind",
    "metadata_cap",
    "read_metadata_file",
    "read_regular_file",
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
        chunks: list[bytes] = []
        remaining = cap + 1
        while remaining > 0:
            chunk = os.read(fd, min(remaining, 2**20 * 8))
            if not chunk:
                break
            chunks.append(chunk)
            remaining -= len(chunk)
    finally:
        os.close(fd)
    data = b"".join(chunks)
    _check_size(path, what, len(data), cap, raise_with, grew=True)
    return data


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
