"""The data directory: one sparse backing file per volume, plus its metadata.

``<data_dir>/<VOL_NAME>.img`` holds the volume, ``<VOL_NAME>.meta`` what
Ganeti gave to setinfo.  Work on an existing volume happens under an
exclusive flock on its backing file, so two concurrent attaches of the same
volume cannot end up on two loop devices.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from collections.abc import Iterator

from osdef.fileutil import tool_said
from osdef.disk.units import MiB
from osdef.extstorage.errors import VolumeError

IMAGE_SUFFIX = ".img"
META_SUFFIX = ".meta"


@dataclass(frozen=True)
class Store:
    data_dir: Path

    def image(self, name: str) -> Path:
        return self.data_dir / f"{name}{IMAGE_SUFFIX}"

    def meta(self, name: str) -> Path:
        return self.data_dir / f"{name}{META_SUFFIX}"

    def exists(self, name: str) -> bool:
        return self.image(name).is_file()

    def size_bytes(self, name: str) -> int:
        try:
            return self.image(name).stat().st_size
        except FileNotFoundError:
            raise self.missing(name) from None

    def missing(self, name: str) -> VolumeError:
        return VolumeError(f"volume {name} does not exist (no {self.image(name)}); "
                           "was it created on this node with this data_dir?")

    def ensure_dir(self) -> None:
        try:
            self.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as exc:
            raise VolumeError(f"cannot create the data directory {self.data_dir}: {exc.strerror}") from None

    @contextlib.contextmanager
    def locked(self, name: str) -> Iterator[Path]:
        """Hold an exclusive lock on the volume's backing file; yields its path."""
        path = self.image(name)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            raise self.missing(name) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield path
        finally:
            os.close(fd)  # releases the lock

    def new_image(self, name: str, size_mib: int, preallocate: bool) -> Path:
        """Create the backing file (sparse unless preallocate); fails if it exists."""
        self.ensure_dir()
        path = self.image(name)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        except FileExistsError:
            raise VolumeError(f"volume {name} already exists ({path}); remove it first") from None
        except OSError as exc:
            raise VolumeError(f"cannot create {path}: {exc.strerror}") from None
        try:
            os.ftruncate(fd, size_mib * MiB)
            if preallocate:
                os.posix_fallocate(fd, 0, size_mib * MiB)
        except OSError as exc:
            os.close(fd)
            path.unlink(missing_ok=True)
            raise VolumeError(f"cannot allocate {size_mib} MiB for {path}: {exc.strerror}") from None
        os.close(fd)
        return path

    def resize(self, name: str, size_mib: int) -> None:
        try:
            os.truncate(self.image(name), size_mib * MiB)
        except FileNotFoundError:
            raise self.missing(name) from None
        except OSError as exc:
            raise VolumeError(f"cannot grow {self.image(name)} to {size_mib} MiB: {exc.strerror}") from None

    def copy(self, name: str, copy_name: str, size_mib: int | None = None) -> Path:
        """A point-in-time copy of a volume (reflink where the filesystem can, else sparse)."""
        src, dest = self.image(name), self.image(copy_name)
        if dest.exists():
            raise VolumeError(f"snapshot {copy_name} already exists ({dest}); remove it first")
        tmp = dest.with_name(f".{dest.name}.tmp")
        proc = subprocess.run(["cp", "--sparse=always", "--reflink=auto", "--", str(src), str(tmp)],
                              capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            tmp.unlink(missing_ok=True)
            raise VolumeError(f"cannot copy {src} to {dest}: {tool_said(proc)}")
        try:
            if size_mib is not None and size_mib * MiB > tmp.stat().st_size:
                os.truncate(tmp, size_mib * MiB)
            os.chmod(tmp, 0o600)
            os.replace(tmp, dest)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise VolumeError(f"cannot finish snapshot {dest}: {exc.strerror}") from None
        return dest

    def write_meta(self, name: str, text: str) -> None:
        path = self.meta(name)
        tmp = path.with_name(f".{path.name}.tmp")
        try:
            tmp.write_text(text + "\n", encoding="utf-8")
            os.replace(tmp, path)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise VolumeError(f"cannot write {path}: {exc.strerror}") from None

    def delete(self, name: str) -> None:
        for path in (self.image(name), self.meta(name)):
            try:
                path.unlink(missing_ok=True)
            except OSError as exc:
                raise VolumeError(f"cannot remove {path}: {exc.strerror}") from None
