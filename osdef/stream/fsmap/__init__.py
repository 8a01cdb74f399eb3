"""Used-block maps of the filesystems on a disk's partitions: which bytes a filesystem uses.

One parser per filesystem: ``ext`` (ext2/3/4: bitmaps checked against the
descriptors and an inode walk), ``vfat`` and ``swap`` are
small pure-Python readers of the on-disk metadata that run in-process, read
only through a ``Reader`` bound to their partition (a read outside it is
refused, never done), and are bounded in what they read and keep; xfs and
btrfs keep free space in B+trees, so ``partclone`` maps them from
``partclone.xfs/btrfs -D`` run sandboxed (see its docstring).  A parser
that does not recognise its partition returns None (the partition is sent at
block level, silently); one that recognises it but cannot vouch for its map
(not cleanly unmounted, a field out of range, a bitmap that disagrees with its
counts) raises ``Unusable`` with the reason, and the caller sends the
partition at block level and says why.  Every map is checked again here
(ordered, non-overlapping, inside the partition) before it is used.
"""

from __future__ import annotations

import struct

from osdef.disk.device import Disk
from osdef.disk.ondisk import Damaged, signatures
from osdef.disk.ondisk.partitions import BIOS_BOOT_GUID, Partition
from osdef.stream.fsmap import ext, partclone, swap, vfat
from osdef.stream.fsmap.base import FsMap, Reader, Unusable, check

__all__ = ["FsMap", "Reader", "Unusable", "used_map"]

MAPS = {"ext2": ext.used_map, "ext3": ext.used_map, "ext4": ext.used_map, "FAT": vfat.used_map,
        "swap": swap.used_map, "xfs": partclone.used_map, "btrfs": partclone.used_map}


def used_map(disk: Disk, part: Partition) -> FsMap | None:
    """The checked map of ``part``'s filesystem; None if none is recognised. Raises Unusable."""
    if part.kind == BIOS_BOOT_GUID or part.kind in ("0x05", "0x0f", "0x85"):
        return None
    reader = Reader(disk, part)
    family = signatures.by_magic(reader.at)
    if family is None:
        return None
    try:
        found = MAPS[family](reader)
    except Damaged as e:
        raise Unusable(str(e), e.fs or family) from None
    except (ValueError, IndexError, OverflowError, ZeroDivisionError, MemoryError, RecursionError,
            struct.error) as e:
        raise Unusable(f"its filesystem could not be parsed ({type(e).__name__})", family) from None
    return check(found, part.length)
