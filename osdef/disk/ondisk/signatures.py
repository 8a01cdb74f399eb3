"""Which filesystem starts at an offset: by its magic alone, or with its geometry checked too.

``by_magic`` names the family a parser should try (ext2/3/4 by their features, FAT when a
boot sector looks like one, swap, xfs, btrfs); ``at_start`` only answers when the
superblock is plausible as a whole (geometry inside ``length``): the question a partition
table asks of the bytes at the start of a whole disk.  ``image_filesystem`` is the one an
image file's header answers (ext2/3/4, xfs, btrfs: what can be a root filesystem image).
"""

from __future__ import annotations

import struct

from osdef.disk.ondisk import Damaged, ReadAt, ext, fat, xfs

SWAP_PAGE = 4096
SWAP_MAGIC = b"SWAPSPACE2"
XFS_MAGIC = xfs.MAGIC
BTRFS_SUPER, BTRFS_MAGIC = 0x10000, b"_BHRfS_M"
BTRFS_MAGIC_AT = BTRFS_SUPER + 0x40


def image_filesystem(read: ReadAt) -> str | None:
    """ext2/ext3/ext4, xfs or btrfs when their superblock's magic is where it belongs."""
    kind = ext.kind(read(ext.SUPERBLOCK_OFFSET, ext.SUPERBLOCK_SIZE) or b"")
    if kind:
        return kind
    if read(0, 4) == XFS_MAGIC:
        return "xfs"
    if read(BTRFS_MAGIC_AT, 8) == BTRFS_MAGIC:
        return "btrfs"
    return None


def by_magic(read: ReadAt) -> str | None:
    """The family to try: "ext2"/"ext3"/"ext4", "FAT", "swap", "xfs", "btrfs", or None."""
    found = image_filesystem(read)
    if found:
        return found
    if fat.is_boot_sector(read(0, 512) or b""):
        return "FAT"
    if read(SWAP_PAGE - len(SWAP_MAGIC), len(SWAP_MAGIC)) == SWAP_MAGIC:
        return "swap"
    return None


def at_start(read: ReadAt, length: int) -> str | None:
    """A filesystem whose superblock plausibly starts here, its size inside ``length``; never raises."""
    family = by_magic(read)
    try:
        if family in ("ext2", "ext3", "ext4"):
            return ext.Superblock(read(ext.SUPERBLOCK_OFFSET, ext.SUPERBLOCK_SIZE) or b"", length).kind
        if family == "FAT":
            return fat.geometry(read(0, 512) or b"", length).name
    except (Damaged, ValueError, IndexError, struct.error):
        return None
    return family
