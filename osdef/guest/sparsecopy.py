"""Copy a byte stream into a disk at an offset in one pass, skipping all-zero blocks.

The caller zeroes the destination range first (DiskTarget.zero_range), so the
skipped blocks read back as zeros on block devices and stay holes in files.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import BinaryIO

from osdef.errors import GuestError

CHUNK = 1 << 20
ZEROS = bytes(CHUNK)  # a distinct object: `buf == ZEROS` is a fast memcmp


@dataclass(frozen=True)
class CopyStats:
    """What one copy moved: bytes read from the stream and bytes written to the disk."""

    bytes_read: int
    bytes_written: int


def _fill(stream: BinaryIO, view: memoryview) -> int:
    """Read until the buffer is full or the stream ends; return the byte count."""
    got = 0
    size = len(view)
    while got < size:
        n = stream.readinto(view[got:])  # type: ignore[attr-defined]
        if not n:
            break
        got += n
    return got


def copy_skipping_zeros(stream: BinaryIO, fd: int, offset: int, limit: int,
                        *, what: str = "image") -> CopyStats:
    """Write `stream` to `fd` starting at `offset`; never more than `limit` bytes.

    A stream longer than `limit` raises GuestError (the destination was sized
    from the announced image size, so a longer stream is a lie or corruption).
    """
    buf = bytearray(CHUNK)
    view = memoryview(buf)
    read = written = 0
    while True:
        n = _fill(stream, view)
        if n == 0:
            break
        if read + n > limit:
            raise GuestError(
                f"the {what} is larger than the {limit // (1 << 20)} MiB it may occupy on the disk;"
                " the image file is corrupt or its size was misreported")
        if n == CHUNK:
            is_zero = buf == ZEROS
        else:
            is_zero = view[:n] == ZEROS[:n]
        if not is_zero:
            try:
                os.pwrite(fd, view[:n], offset + read)
            except OSError as exc:
                raise GuestError(f"writing the {what} to the disk failed: {exc.strerror}") from None
            written += n
        read += n
        if n < CHUNK:
            break
    return CopyStats(bytes_read=read, bytes_written=written)
