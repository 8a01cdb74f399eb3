"""File-level building blocks of the image cache: per-image lock, temporary
names, fsync, atomic rename, and removal of what a killed build left behind.

Layout of the cache dir (one flat directory)::

    <name>.lock                        flock()ed while building/fetching <name>
    <name>.json                        manifest: the commit point
    <name>.<sha256[:16]>.zst           the artifact the manifest names
    .<name>.<random>.partial           work in progress (never valid)
"""

from __future__ import annotations

import errno
import fcntl
import os
import secrets
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from osdef.errors import ImageError

PARTIAL_SUFFIX = ".partial"
NO_SPACE = (errno.ENOSPC, errno.EDQUOT)


def lock_path(cache_dir: Path, name: str) -> Path:
    return cache_dir / f"{name}.lock"


def manifest_path(cache_dir: Path, name: str) -> Path:
    return cache_dir / f"{name}.json"


def artifact_name(name: str, sha256: str) -> str:
    return f"{name}.{sha256[:16]}.zst"


def temp_path(cache_dir: Path, name: str, what: str = "") -> Path:
    """A fresh temporary name for <name>, recognisable as partial work."""
    tag = f".{what}" if what else ""
    return cache_dir / f".{name}{tag}.{secrets.token_hex(6)}{PARTIAL_SUFFIX}"


def ensure_dir(cache_dir: Path) -> None:
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ImageError(f"cannot create image cache dir {cache_dir}: {exc.strerror}") from None


@contextmanager
def image_lock(cache_dir: Path, name: str,
               on_wait: Callable[[], None] | None = None) -> Iterator[None]:
    """Hold the exclusive per-image lock (fcntl.flock) for the block.

    The lock file is never removed: removing it would let two processes lock
    two different inodes.  The kernel drops the lock when the process dies,
    so a killed build never leaves the image locked.
    """
    ensure_dir(cache_dir)
    path = lock_path(cache_dir, name)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError as exc:
        raise ImageError(f"cannot open lock file {path}: {exc.strerror}") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if on_wait is not None:
                on_wait()
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, text: str) -> None:
    """Write text to path so that readers see the old or the new file, never a part."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}{PARTIAL_SUFFIX}")
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        fsync_dir(path.parent)
    except OSError as exc:
        remove_quietly(tmp)
        raise no_space_or(exc, path.parent, f"cannot write {path}") from None


def remove_quietly(path: Path | None) -> None:
    if path is None:
        return
    try:
        path.unlink()
    except FileNotFoundError:
        pass


def remove_partials(cache_dir: Path, name: str) -> None:
    """Delete partial files and work dirs of <name> left by a killed run (call under the lock)."""
    for path in cache_dir.glob(f".{name}.*{PARTIAL_SUFFIX}"):
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            remove_quietly(path)


def remove_stale_artifacts(cache_dir: Path, name: str, keep: str) -> None:
    """Delete artifacts of <name> other than `keep` (call under the lock)."""
    prefix = f"{name}."
    for path in cache_dir.glob(f"{name}.*.zst"):
        stem = path.name[len(prefix):-len(".zst")]
        if path.name != keep and len(stem) == 16 and all(c in "0123456789abcdef" for c in stem):
            remove_quietly(path)


def no_space_or(exc: OSError, where: Path, what: str) -> ImageError:
    """The one-line ImageError for an OSError, with a clear text for a full disk."""
    if exc.errno in NO_SPACE:
        return ImageError(f"{what}: no space left in {where}; free space there and retry "
                          "(the cache was left as it was)")
    return ImageError(f"{what}: {exc.strerror or exc}")
