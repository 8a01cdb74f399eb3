"""The disk being written from the host side: a regular file or a block device.

Opening, measuring, zeroing ranges (so skipped ranges read back as zeros) and
wiping the head and tail so a failed create can never look like a good disk.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import fcntl
import os
import stat
import struct
from pathlib import Path

from osdef.errors import GuestError

MiB = 1 << 20
BLKZEROOUT = 0x127F  # _IO(0x12, 127)
FALLOC_FL_KEEP_SIZE = 0x01
FALLOC_FL_PUNCH_HOLE = 0x02
_ZERO_CHUNK = bytes(MiB)

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
_libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_longlong, ctypes.c_longlong]


class DiskTarget:
    """An open read-write handle on DISK_0 (file or block device)."""

    def __init__(self, path: Path):
        self.path = Path(path)
        try:
            self.fd = os.open(self.path, os.O_RDWR | os.O_CLOEXEC)
        except OSError as exc:
            raise GuestError(f"cannot open disk {self.path}: {exc.strerror}") from None
        mode = os.fstat(self.fd).st_mode
        self.is_block = stat.S_ISBLK(mode)
        if not (self.is_block or stat.S_ISREG(mode)):
            os.close(self.fd)
            raise GuestError(f"disk {self.path} is neither a regular file nor a block device")
        self.size = os.lseek(self.fd, 0, os.SEEK_END)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> "DiskTarget":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def zero_range(self, offset: int, length: int) -> None:
        """Make [offset, offset+length) read back as zeros without writing data.

        Block devices: BLKZEROOUT (fallback: write zeros).  Files: punch a hole
        (a fresh sparse file stays sparse, a reused one loses its old bytes).
        """
        length = min(length, self.size - offset)
        if length <= 0:
            return
        if self.is_block:
            try:
                fcntl.ioctl(self.fd, BLKZEROOUT, struct.pack("QQ", offset, length))
                return
            except OSError as exc:
                if exc.errno not in (errno.EOPNOTSUPP, errno.ENOTTY, errno.EINVAL):
                    raise GuestError(f"cannot zero {self.path}: {exc.strerror}") from None
        elif _libc.fallocate(self.fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                             offset, length) == 0:
            return
        self._write_zeros(offset, length)

    def _write_zeros(self, offset: int, length: int) -> None:
        end = offset + length
        while offset < end:
            n = min(MiB, end - offset)
            os.pwrite(self.fd, _ZERO_CHUNK[:n], offset)
            offset += n

    def wipe_head_and_tail(self) -> None:
        """Overwrite the first and last MiB (MBR, GPT headers, fs superblocks) with zeros."""
        try:
            self._write_zeros(0, min(MiB, self.size))
            if self.size > 2 * MiB:
                self._write_zeros(self.size - MiB, MiB)
            self.sync()
        except OSError as exc:
            raise GuestError(f"cannot wipe {self.path}: {exc.strerror}") from None

    def sync(self) -> None:
        os.fsync(self.fd)


def disk_size(path: Path) -> int:
    """Size in bytes of a file or block device, without opening it for writing."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as exc:
        raise GuestError(f"cannot open disk {path}: {exc.strerror}") from None
    try:
        return os.lseek(fd, 0, os.SEEK_END)
    finally:
        os.close(fd)


def wipe(path: Path) -> None:
    """Invalidate a disk after a failed create (best effort is not enough: errors raise)."""
    with DiskTarget(path) as target:
        target.wipe_head_and_tail()
