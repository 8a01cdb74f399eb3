"""The on-disk formats a guest leaves, read from their bytes: one reader for every part of osdef.

``partitions`` (with ``mbr`` and ``gpt``): the partition table as the guest's Linux
kernel reads it, and whether another reading is plausible; ``ext``: the ext2/3/4
superblock, group descriptors and their checksums (``checksums``); ``fat``: the FAT
boot sector and its geometry; ``xfs``: the superblock's version and feature mask;
``signatures``: which filesystem starts at an offset (ext, FAT, swap, xfs, btrfs).
The stream's maps (osdef.stream.fsmap), image detection (osdef.images.formats), create's
layout (osdef.create.layout) and the XFS root check (osdef.guest.mkfs) use these.

Everything read here is hostile input: every field is range-checked before use, and a
contradiction raises ``Damaged`` (with the filesystem's name where known) instead of
being guessed around.  Readers take bytes, or a ``ReadAt`` that returns None for what
lies outside what can be read.
"""

from __future__ import annotations

from collections.abc import Callable

ReadAt = Callable[[int, int], "bytes | None"]  # (offset, length) -> the bytes, or None outside the disk


class Damaged(Exception):
    """A format was recognised but its fields contradict each other; the message says how, ``fs`` which."""

    def __init__(self, message: str, fs: str = ""):
        super().__init__(message)
        self.fs = fs


def reader_of(data: bytes) -> ReadAt:
    """A ReadAt over bytes in memory (an image header, a copied superblock)."""
    def read(offset: int, length: int) -> bytes | None:
        if offset < 0 or length < 0 or offset + length > len(data):
            return None
        return data[offset:offset + length]
    return read
