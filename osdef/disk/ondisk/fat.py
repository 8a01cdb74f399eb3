"""A FAT12/16/32 boot sector: is it one, its geometry by Linux's rules, and its FSInfo sector.

The type is decided as Linux (``fs/fat/inode.c`` ``fat_fill_super``), dosfstools and EDK2
decide it: FAT32 if and only if the 16-bit FAT size (``BPB_FATSz16``) is 0, then FAT12 up to
4084 clusters and FAT16 above — not by the cluster count alone (a FAT32 with fewer than 65525
clusters, as ``mkfs.vfat -F 32 -s 8`` on 100 MiB or an ESP with 4 KiB sectors makes, is
FAT32).  ``geometry`` cross-checks what the boot sector says and raises ``Damaged`` on any
contradiction: the geometry fits the partition, the FAT holds every cluster, a FAT16 has at
most 65524 clusters, a FAT32 has no root directory entries and its root cluster inside the
filesystem while a FAT12/16 has some (in whole sectors).  ``is_dirty``: not cleanly
unmounted.  ``check_fsinfo``: the FAT32 FSInfo sector carries its three signatures and a possible count.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from osdef.disk.ondisk import Damaged

MAX_FAT12, MAX_FAT16, MAX_FAT32 = 0xFF4, 0xFFF4, 0x0FFFFFF6
FSINFO_SIGNATURES = (0x41615252, 0x61417272, 0xAA550000)


@dataclass(frozen=True)
class Geometry:
    bps: int  # bytes per sector
    spc: int  # sectors per cluster
    reserved: int
    fats: int
    fat_sectors: int
    data_start: int  # sector
    clusters: int
    bits: int  # 12, 16 or 32
    total: int  # sectors
    media: int

    @property
    def name(self) -> str:
        return f"FAT{self.bits}"

    @property
    def fat_bytes(self) -> int:
        """Bytes of one FAT that hold entries (the clusters and the two reserved ones)."""
        return -(-(self.clusters + 2) * self.bits // 8)


def is_boot_sector(boot: bytes) -> bool:
    """Does this sector look like a FAT boot sector at all (jump, signature, sane BPB)?"""
    if len(boot) < 512 or boot[510:512] != b"\x55\xaa" or boot[0] not in (0xEB, 0xE9):
        return False
    bps, spc, reserved, fats = struct.unpack_from("<HBHB", boot, 11)
    media = boot[21]
    return (bps in (512, 1024, 2048, 4096) and spc != 0 and spc & (spc - 1) == 0 and 1 <= fats <= 4
            and reserved != 0 and (media == 0xF0 or media >= 0xF8))


def _sizes(boot: bytes, length: int) -> tuple[bool, int, int, int]:
    """(is FAT32, FAT sectors, total sectors, first data sector), the root directory checked."""
    bps, _, reserved, fats, root_entries, total16, _, fat16 = struct.unpack_from("<HBHBHHBH", boot, 11)
    total32, fat32 = struct.unpack_from("<II", boot, 32)
    is32 = fat16 == 0
    fat_sectors = fat32 if is32 else fat16
    name = "FAT32" if is32 else "FAT"
    if fat_sectors == 0:
        raise Damaged("its FAT boot sector gives no FAT size", name)
    if is32 and root_entries:
        raise Damaged("its FAT32 boot sector also gives FAT12/16 root directory entries", name)
    if not is32 and not root_entries:
        raise Damaged("its FAT12/16 boot sector gives no root directory", name)
    if root_entries % (bps // 32):
        raise Damaged("its FAT root directory does not fill whole sectors", name)
    total = total16 or total32
    data_start = reserved + fats * fat_sectors + root_entries * 32 // bps
    if total == 0 or data_start >= total or total * bps > length:
        raise Damaged("its FAT filesystem does not fit its partition", name)
    return is32, fat_sectors, total, data_start


def geometry(boot: bytes, length: int) -> Geometry:
    """The volume's geometry by Linux's rules, cross-checked (Damaged on a contradiction)."""
    bps, spc, reserved, fats = struct.unpack_from("<HBHB", boot, 11)
    is32, fat_sectors, total, data_start = _sizes(boot, length)
    clusters = (total - data_start) // spc
    bits = 32 if is32 else 16 if clusters > MAX_FAT12 else 12
    name = f"FAT{bits}"
    if clusters == 0 or clusters > {12: MAX_FAT12, 16: MAX_FAT16, 32: MAX_FAT32}[bits]:
        raise Damaged(f"its {name} has {clusters} clusters, more than a {name} can address", name)
    if (clusters + 2) * bits > fat_sectors * bps * 8:
        raise Damaged(f"its {name} table is too small for its {clusters} clusters", name)
    root_cluster, = struct.unpack_from("<I", boot, 44)
    if is32 and not 2 <= root_cluster < clusters + 2:
        raise Damaged(f"its FAT32 root directory starts at cluster {root_cluster}, outside the filesystem", name)
    return Geometry(bps, spc, reserved, fats, fat_sectors, data_start, clusters, bits, total, boot[21])


def is_dirty(boot: bytes, geo: Geometry) -> bool:
    """The volume's dirty bit (Linux sets it while mounted and clears it on a clean unmount)."""
    return bool(boot[65 if geo.bits == 32 else 37] & 0x01)


def fsinfo_sector(boot: bytes) -> int:
    """The sector of the FAT32 FSInfo structure (0 means 1, as Linux reads it)."""
    return struct.unpack_from("<H", boot, 48)[0] or 1


def check_fsinfo(raw: bytes, geo: Geometry) -> None:
    """The FSInfo sector's three signatures, and a free count no larger than the clusters."""
    lead, = struct.unpack_from("<I", raw, 0)
    struc, free = struct.unpack_from("<II", raw, 484)
    trail, = struct.unpack_from("<I", raw, 508)
    if (lead, struc, trail) != FSINFO_SIGNATURES:
        raise Damaged("its FAT32 FSInfo sector lacks its signatures", geo.name)
    if free != 0xFFFFFFFF and free > geo.clusters:
        raise Damaged("its FAT32 FSInfo sector counts more free clusters than there are", geo.name)
