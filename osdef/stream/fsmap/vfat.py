"""Used-block map of a FAT12/16/32 filesystem (the EFI system partition), from its FAT.

The type is decided as Linux (``fs/fat/inode.c``), dosfstools and EDK2 decide
it: FAT32 if and only if the 16-bit FAT size (``BPB_FATSz16``) is 0, then
FAT12 up to 4084 clusters and FAT16 above — not by the cluster count alone (a
FAT32 with fewer than 65525 clusters, as ``mkfs.vfat -F 32 -s 8`` on 100 MiB
or an ESP with 4 KiB sectors makes, is FAT32).  Then what the boot sector
says is cross-checked, and any contradiction raises ``Unusable`` (the
partition goes at block level): the geometry fits the partition, the FAT
holds every cluster, a FAT16 has at most 65524 clusters and a FAT32 no root
directory entries, the root directory fills whole sectors, the FAT32 FSInfo
sector carries its three signatures, FAT[0] repeats the media byte, every
copy of the FAT is identical (Linux reads the first, other systems may read
another), and the volume is not marked dirty.

Used: the reserved sectors, the FATs, the FAT12/16 root directory and every
cluster whose entry in the FAT is not zero (free).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from osdef.stream.fsmap import FsMap, Reader, Unusable

CHUNK = 1 << 20
MAX_FAT12, MAX_FAT16, MAX_FAT32 = 0xFF4, 0xFFF4, 0x0FFFFFF6
SOURCE = "the FAT"


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


def _boot_sector(boot: bytes) -> bool:
    """Does this sector look like a FAT boot sector at all (jump, signature, sane BPB)?"""
    if len(boot) < 512 or boot[510:512] != b"\x55\xaa" or boot[0] not in (0xEB, 0xE9):
        return False
    bps, spc, reserved, fats = struct.unpack_from("<HBHB", boot, 11)
    media = boot[21]
    return (bps in (512, 1024, 2048, 4096) and spc != 0 and spc & (spc - 1) == 0 and 1 <= fats <= 4
            and reserved != 0 and (media == 0xF0 or media >= 0xF8))


def _geometry(boot: bytes, length: int) -> Geometry:
    """The volume's geometry by Linux's rules, cross-checked (Unusable on a contradiction)."""
    bps, spc, reserved, fats, root_entries, total16, media, fat16 = struct.unpack_from("<HBHBHHBH", boot, 11)
    total32, fat32 = struct.unpack_from("<II", boot, 32)
    is32 = fat16 == 0
    fat_sectors = fat32 if is32 else fat16
    name = "FAT32" if is32 else "FAT"
    if fat_sectors == 0:
        raise Unusable("its FAT boot sector gives no FAT size", name)
    if is32 and root_entries:
        raise Unusable("its FAT32 boot sector also gives FAT12/16 root directory entries", name)
    if root_entries % (bps // 32):
        raise Unusable("its FAT root directory does not fill whole sectors", name)
    total = total16 or total32
    data_start = reserved + fats * fat_sectors + root_entries * 32 // bps
    if total == 0 or data_start >= total or total * bps > length:
        raise Unusable("its FAT filesystem does not fit its partition", name)
    clusters = (total - data_start) // spc
    bits = 32 if is32 else 16 if clusters > MAX_FAT12 else 12
    name = f"FAT{bits}"
    if clusters == 0 or clusters > {12: MAX_FAT12, 16: MAX_FAT16, 32: MAX_FAT32}[bits]:
        raise Unusable(f"its {name} has {clusters} clusters, more than a {name} can address", name)
    if (clusters + 2) * bits > fat_sectors * bps * 8:
        raise Unusable(f"its {name} table is too small for its {clusters} clusters", name)
    if boot[65 if is32 else 37] & 0x01:
        raise Unusable(f"its {name} filesystem is marked dirty (not cleanly unmounted)", name)
    return Geometry(bps, spc, reserved, fats, fat_sectors, data_start, clusters, bits, total, media)


def _check_fsinfo(reader: Reader, boot: bytes, geo: Geometry) -> None:
    sector, = struct.unpack_from("<H", boot, 48)
    sector = sector or 1  # as Linux
    if sector >= geo.reserved:
        raise Unusable("its FAT32 FSInfo sector lies outside the reserved sectors", geo.name)
    raw = reader.read(sector * geo.bps, 512)
    lead, = struct.unpack_from("<I", raw, 0)
    struc, free = struct.unpack_from("<II", raw, 484)
    trail, = struct.unpack_from("<I", raw, 508)
    if (lead, struc, trail) != (0x41615252, 0x61417272, 0xAA550000):
        raise Unusable("its FAT32 FSInfo sector lacks its signatures", geo.name)
    if free != 0xFFFFFFFF and free > geo.clusters:
        raise Unusable("its FAT32 FSInfo sector counts more free clusters than there are", geo.name)


def _fat_bytes(geo: Geometry) -> int:
    return -(-(geo.clusters + 2) * geo.bits // 8)


def _check_copies(reader: Reader, geo: Geometry) -> None:
    """FAT[0] repeats the media byte; every copy equals the first."""
    size = _fat_bytes(geo)
    first = reader.read(geo.reserved * geo.bps, min(4, size))
    entry0 = int.from_bytes(first[:(2 if geo.bits == 12 else geo.bits // 8)], "little")
    mask = {12: 0xFFF, 16: 0xFFFF, 32: 0x0FFFFFFF}[geo.bits]
    if entry0 & mask != mask & ~0xFF | geo.media:
        raise Unusable(f"its {geo.name} FAT[0] does not repeat the media byte", geo.name)
    for copy in range(1, geo.fats):
        for at in range(0, size, CHUNK):
            n = min(CHUNK, size - at)
            a = reader.read(geo.reserved * geo.bps + at, n)
            b = reader.read((geo.reserved + copy * geo.fat_sectors) * geo.bps + at, n)
            if a != b:
                raise Unusable(f"its {geo.name} FAT copies differ (FAT {copy + 1} from FAT 1)", geo.name)


def _used_clusters(reader: Reader, geo: Geometry):
    """Yield the numbers (2..clusters+1) of clusters whose FAT entry is not zero."""
    fat_offset, clusters = geo.reserved * geo.bps, geo.clusters
    if geo.bits == 12:
        fat = reader.read(fat_offset, _fat_bytes(geo)) + b"\0"
        for c in range(2, clusters + 2):
            i = c * 3 // 2
            v = fat[i] | fat[i + 1] << 8
            if (v >> 4 if c & 1 else v & 0xFFF):
                yield c
        return
    width = geo.bits // 8
    per_chunk = CHUNK // width
    first = 0
    while first < clusters + 2:
        n = min(per_chunk, clusters + 2 - first)
        entries = memoryview(reader.read(fat_offset + first * width, n * width)).cast("H" if width == 2 else "I")
        for i, v in enumerate(entries):
            c = first + i
            if c >= 2 and (v & 0x0FFFFFFF if width == 4 else v):
                yield c
        first += n


def probe(reader: Reader) -> str | None:
    boot = reader.peek(0, 512)
    if not _boot_sector(boot):
        return None
    try:
        return _geometry(boot, reader.length).name
    except Unusable:
        return None


def used_map(reader: Reader) -> FsMap | None:
    boot = reader.peek(0, 512)
    if not _boot_sector(boot):
        return None
    geo = _geometry(boot, reader.length)
    if geo.bits == 32:
        _check_fsinfo(reader, boot, geo)
    _check_copies(reader, geo)
    ranges: list[tuple[int, int]] = [(0, geo.data_start * geo.bps)]
    cluster_bytes = geo.spc * geo.bps
    for c in _used_clusters(reader, geo):
        offset = (geo.data_start + (c - 2) * geo.spc) * geo.bps
        last = ranges[-1]
        if last[0] + last[1] == offset:
            ranges[-1] = (last[0], last[1] + cluster_bytes)
        else:
            ranges.append((offset, cluster_bytes))
    return FsMap(geo.name, ranges, geo.total * geo.bps, SOURCE)
