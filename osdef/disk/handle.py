"""An open disk as a value: the ``Disk`` record every disk user holds, and the ``Volume`` interface.

A file or block device is a ``Disk`` with a file descriptor; a disk given as a
URI (``rbd:pool/image``) is one without (``fd == -1``) whose ``volume`` does the
I/O (osdef.disk.rbd.RbdVolume).  osdef.disk.device opens both and does their
I/O; this module only defines what they are, so that the volume kinds and the
device layer need not import each other.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from collections.abc import Callable
from typing import Protocol

from osdef.errors import OsdefError


#: what a write takes: bytes, or a view of them (a memoryview of bytes: its len() is in bytes)
BytesLike = bytes | bytearray | memoryview


class Volume(Protocol):
    """A disk reached through a library instead of a file descriptor (osdef.disk.rbd.RbdVolume).

    Failures raise OSError (errno, one-line strerror)."""

    def read_into(self, view: memoryview, offset: int) -> None: ...
    def write(self, view: BytesLike, offset: int) -> None: ...
    def zero(self, offset: int, length: int) -> None: ...
    def flush(self) -> None: ...
    # the written extents: seen(offset, length, exists) (osdef.disk.filemap)
    def diff_iterate(self, seen: Callable[[int, int, bool], int]) -> None: ...
    def close(self) -> None: ...


@dataclass
class Disk:
    """An open file or block device, or a volume (``fd == -1``)."""

    path: str  # for messages: the path, or a volume's display name (rbd:pool/image, no options)
    fd: int
    size: int
    is_block: bool
    discard_zeroes: bool = False  # a block device whose discards read back as zeros (a loop device)
    error: type[OsdefError] = OsdefError  # what its failures raise: the user's typed error
    volume: Volume | None = None  # set for a disk given as a URI (then fd is -1)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
        if self.volume is not None:
            self.volume.close()
            self.volume = None

    def __enter__(self) -> Disk:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
