"""Run files that are private from their first byte: directories 0700, files 0600.

A run directory holds secrets by nature (the embedded SSH target's client key, event details,
exports), and other users of a shared machine must never read any of it, not even for the
instant between creating a file and fixing its mode. So every run file is created with its
final mode by the system call that creates it (``mkdir(0700)``, ``open(O_CREAT|O_EXCL, 0600)``),
never chmodded afterwards. The process umask is never changed: it is process-wide, so children
(PTY programs, shells run by the targets) would inherit it, and it can only remove permission
bits anyway, so a mode passed at creation is never widened by it.

Every writer of a run file goes through this module: the event log, the exports, PTY output
logs and the embedded targets' state.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = [
    "DIR_MODE",
    "FILE_MODE",
    "json_text",
    "new_private_dir",
    "open_private",
    "private_dir",
    "write_private",
]

DIR_MODE = 0o700
FILE_MODE = 0o600
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


def private_dir(path: Path, *, tighten: bool = False) -> Path:
    """Create ``path`` and any missing parents as 0700 directories; return it.

    An existing directory is left as it is (a runs directory the user shares on purpose),
    unless ``tighten``: then, if the current user owns it, it is made 0700 (a reused key
    directory may predate this rule). Files inside are created 0600 either way.
    """
    missing: list[Path] = []
    probe = path
    while not probe.exists():
        missing.append(probe)
        if probe.parent == probe:
            break
        probe = probe.parent
    for directory in reversed(missing):
        with contextlib.suppress(FileExistsError):  # made concurrently: checked below
            os.mkdir(directory, DIR_MODE)
    if tighten:
        info = path.stat()
        if info.st_uid == os.geteuid() and info.st_mode & 0o777 != DIR_MODE:
            os.chmod(path, DIR_MODE)
    return path


def new_private_dir(base: Path) -> Path:
    """Create a fresh 0700 directory named ``base``, or ``base-2``, ``base-3``... if taken.

    The directory is made by this call (``mkdir`` fails on an existing name), so a directory
    someone else planted at a predictable run path is never used.
    """
    private_dir(base.parent)
    n = 1
    while True:
        path = base if n == 1 else base.with_name(f"{base.name}-{n}")
        try:
            os.mkdir(path, DIR_MODE)
        except FileExistsError:
            n += 1
            continue
        return path


def open_private(
    path: Path, flags: int = os.O_WRONLY | os.O_APPEND, *, exclusive: bool = False
) -> int:
    """Open (creating) ``path`` as a 0600 file and return the descriptor.

    ``exclusive`` fails if the file exists (``O_EXCL``), for files whose contents must be ours
    alone, such as keys. A symlink is never followed. A file that already existed with a wider
    mode is tightened before anything is written to it.
    """
    flags |= os.O_CREAT | os.O_CLOEXEC | _NOFOLLOW | (os.O_EXCL if exclusive else 0)
    fd = os.open(path, flags, FILE_MODE)
    try:
        info = os.fstat(fd)
        if info.st_mode & 0o077 and info.st_uid == os.geteuid():
            os.fchmod(fd, FILE_MODE)
    except OSError:
        os.close(fd)
        raise
    return fd


def write_private(path: Path, data: bytes | str, *, exclusive: bool = False) -> None:
    """Write ``path`` whole, 0600 from the first byte.

    Atomic: the bytes go to a private temporary file in the same directory (``mkstemp``
    creates it 0600 with ``O_EXCL``), which is renamed over ``path``, so a reader never sees
    half a file. The temporary file is removed if anything fails. ``exclusive`` refuses to
    replace an existing file.
    """
    raw = data.encode("utf-8") if isinstance(data, str) else data
    if exclusive:
        fd = open_private(path, os.O_WRONLY, exclusive=True)
        try:
            _write_fd(fd, raw)
        except BaseException:
            os.close(fd)
            with contextlib.suppress(OSError):
                os.unlink(path)
            raise
        os.close(fd)
        return
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        try:
            _write_fd(fd, raw)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _write_fd(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def json_text(value: Any, **options: Any) -> str:
    """``json.dumps(value, **options)`` for a run file, NaN and infinities written as null.

    ``json.dumps`` writes them as ``NaN`` and ``Infinity`` by default, which JSON has no word
    for: jq, k6's tooling and ``JSON.parse`` reject the whole file. ``allow_nan=False`` then
    makes one that slipped through (a ``default`` that returns a float) an error, not a file
    no reader opens.
    """
    return json.dumps(_finite(value), allow_nan=False, **options)


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value
