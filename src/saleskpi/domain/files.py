"""Workspace files readable by their owner only: 0600 files in 0700 folders.

The workspace holds password and token hashes (``state.sqlite``), the company's
data (``analytics.duckdb``), the questions people asked and uploaded files. Every
file or folder saleskpi creates there goes through these helpers, whatever the
process's umask, so another account on the machine can read none of it.
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

PRIVATE_FILE = 0o600
PRIVATE_DIR = 0o700
# Files a database keeps next to its own while it writes.
COMPANIONS = (".wal", "-wal", "-shm", "-journal")


def private_dir(path: Path) -> Path:
    """``path`` as a folder only its owner may use: the folders made for it are 0700, and
    ``path`` itself is made 0700 when it already existed, unless it is a shared folder
    (sticky, as ``/tmp`` is): making that private would lock every other account and
    service out of it (a store opened as ``/tmp/x.duckdb`` did). The files saleskpi
    writes there are 0600 all the same."""
    missing: list[Path] = []
    current = path
    while not current.exists() and current != current.parent:
        missing.append(current)
        current = current.parent
    for folder in reversed(missing):
        with contextlib.suppress(FileExistsError):
            folder.mkdir(mode=PRIVATE_DIR)
        _chmod(folder, PRIVATE_DIR)
    if not _shared(path):
        _chmod(path, PRIVATE_DIR)
    return path


def _shared(path: Path) -> bool:
    """A folder every account may create files in, each its own (the sticky bit)."""
    try:
        return bool(path.stat().st_mode & stat.S_ISVTX)
    except OSError:
        return False


def with_companions(path: Path) -> tuple[Path, ...]:
    """``path`` and the companion files a database keeps next to it (they may not exist)."""
    return (path, *(path.with_name(path.name + c) for c in COMPANIONS))


def private_file(path: Path) -> None:
    """Make an existing file (and a database's companion files next to it) 0600."""
    for candidate in with_companions(path):
        if candidate.is_file():
            _chmod(candidate, PRIVATE_FILE)


def open_private(path: Path) -> int:
    """A descriptor on ``path`` for writing, created (or truncated) 0600."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
    handle = os.open(path, flags, PRIVATE_FILE)
    with contextlib.suppress(OSError):
        os.fchmod(handle, PRIVATE_FILE)  # the file may have existed with another mode
    return handle


def write_private(path: Path, text: str) -> None:
    """``text`` (UTF-8) written to ``path``, a 0600 file."""
    with os.fdopen(open_private(path), "w", encoding="utf-8") as out:
        out.write(text)


def replace_private(path: Path, text: str) -> None:
    """``path`` replaced by ``text`` (UTF-8, 0600): written whole under a name of its
    own in the same folder and renamed into place, so a reader (of any process) sees
    the old file or the new one, never half of it, and two writers never share the
    half-written one."""
    import tempfile  # only when something is written: not on a command's usual path

    handle, temporary = tempfile.mkstemp(prefix=".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
        os.replace(temporary, path)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def keep_newest(folder: Path, pattern: str, count: int) -> None:
    """Remove all but the ``count`` most recently written files of ``folder`` matching
    ``pattern`` (a cache's folder that would otherwise only grow)."""
    files = list(folder.glob(pattern))
    if len(files) <= count:
        return
    for old in sorted(files, key=_written_at)[:len(files) - count]:
        old.unlink(missing_ok=True)


def _written_at(path: Path) -> int:
    try:
        return path.stat().st_mtime_ns
    except FileNotFoundError:  # another process removed it meanwhile
        return 0


def _chmod(path: Path, mode: int) -> None:
    # Not ours (a shared parent) or a system without modes: nothing to do.
    with contextlib.suppress(OSError, NotImplementedError):
        os.chmod(path, mode)
