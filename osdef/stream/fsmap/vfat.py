"""Used-block map of a FAT12/16/32 filesystem (the EFI system partition), from its FAT.

The boot sector is read by osdef.disk.ondisk.fat (the type by Linux's rule, the geometry
cross-checked); here, before the map is used: the volume is not dirty, the FAT32 FSInfo
sector is sound, FAT[0] repeats the media byte, and every copy of the FAT is identical
(Linux reads the first, other systems may read another).  Any contradiction raises
``Unusable``: the partition goes at block level.

Used: the reserved sectors, the FATs, the FAT12/16 root directory and every cluster whose
entry in the FAT is not zero (free).
"""

from __future__ import annotations

from collections.abc import Iterator

from osdef.disk.units import MiB
from osdef.disk.ondisk import fat
from osdef.disk.ondisk.fat import Geometry
from osdef.stream.fsmap.base import FsMap, Reader, Unusable

CHUNK = MiB
SOURCE = "the FAT"


def _check_copies(reader: Reader, geo: Geometry) -> None:
    """FAT[0] repeats the media byte; every copy equals the first."""
    size = geo.fat_bytes
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


def _used_clusters(reader: Reader, geo: Geometry) -> Iterator[int]:
    """Yield the numbers (2..clusters+1) of clusters whose FAT entry is not zero."""
    fat_offset, clusters = geo.reserved * geo.bps, geo.clusters
    if geo.bits == 12:
        table = reader.read(fat_offset, geo.fat_bytes) + b"\0"
        for c in range(2, clusters + 2):
            i = c * 3 // 2
            v = table[i] | table[i + 1] << 8
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


def used_map(reader: Reader) -> FsMap:
    boot = reader.read(0, 512)
    geo = fat.geometry(boot, reader.length)
    if fat.is_dirty(boot, geo):
        raise Unusable(f"its {geo.name} filesystem is marked dirty (not cleanly unmounted)", geo.name)
    if geo.bits == 32:
        sector = fat.fsinfo_sector(boot)
        if sector >= geo.reserved:
            raise Unusable("its FAT32 FSInfo sector lies outside the reserved sectors", geo.name)
        fat.check_fsinfo(reader.read(sector * geo.bps, 512), geo)
    _check_copies(reader, geo)
    # FAT32's root directory is a cluster chain from BPB_RootClus: the kernel reads it whatever the FAT
    # says, so a root cluster the FAT calls free would be lost; such a filesystem goes at block level
    root = int.from_bytes(boot[44:48], "little") if geo.bits == 32 else None
    if root is not None and not 2 <= root < geo.clusters + 2:
        raise Unusable(f"its FAT32 root directory cluster {root} is outside the filesystem", geo.name)
    root_used = root is None
    ranges: list[tuple[int, int]] = [(0, geo.data_start * geo.bps)]
    cluster_bytes = geo.spc * geo.bps
    for c in _used_clusters(reader, geo):
        root_used = root_used or c == root
        offset = (geo.data_start + (c - 2) * geo.spc) * geo.bps
        last = ranges[-1]
        if last[0] + last[1] == offset:
            ranges[-1] = (last[0], last[1] + cluster_bytes)
        else:
            ranges.append((offset, cluster_bytes))
    if not root_used:
        raise Unusable(f"its FAT32 root directory cluster {root} is free in the FAT", geo.name)
    return FsMap(geo.name, ranges, geo.total * geo.bps, SOURCE)
