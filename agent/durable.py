"""Crash-safe file writes: temp file, fsync, atomic rename, fsync of the directory.

After :func:`atomic_write` returns, the file holds either its old or its new content
after any crash (kill -9, power loss); never a mix, never a truncated file.
"""

from __future__ import annotations

import os
from pathlib import Path


def fsync_dir(directory: Path) -> None:
    """Make a rename in ``directory`` durable (a no-op where directories cannot be opened)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return  # Windows: directories cannot be opened; NTFS journals renames itself
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_synced(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Create ``path`` exclusively with ``data`` and fsync it (no rename)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    os.chmod(path, mode)  # O_CREAT's mode is filtered by the umask


def atomic_write(path: Path, data: bytes, mode: int = 0o600, tmp_dir: Path | None = None) -> None:
    """Write ``data`` to a temp file (beside ``path`` or in ``tmp_dir`` on the same file
    system), fsync it, rename it over ``path`` and fsync the directory."""
    tmp = (tmp_dir or path.parent) / f".{path.name}.{os.getpid()}.tmp"
    tmp.unlink(missing_ok=True)
    write_synced(tmp, data, mode)
    try:
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)
