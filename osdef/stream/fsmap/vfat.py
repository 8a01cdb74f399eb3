"""Used-block map of a FAT12/16/32 filesystem (the EFI system partition), from its FAT.

A small parser of the boot sector and the allocation table: used are the
reserved sectors, the FATs, the FAT12/16 root directory and every cluster
whose FAT entry is not zero (free).  Refused (``Unusable``): a filesystem
marked dirty (not cleanly unmounted), a geometry that does not fit its
partition, a FAT larger than the metadata bound.
"""

from __future__ import annotations

import struct

from osdef.stream.fsmap import FsMap, Reader, Unusable

CHUNK = 1 << 20


def _geometry(boot: bytes, length: int):
    if boot[510:512] != b"\x55\xaa" or boot[0] not in (0xEB, 0xE9):
        return None
    bps, spc, reserved, fats, root_entries, total16, _, fat16, = struct.unpack_from("<HBHBHHBH", boot, 11)
    total32, fat32 = struct.unpack_from("<II", boot, 32)
    if bps not in (512, 1024, 2048, 4096) or spc == 0 or spc & (spc - 1) or not 1 <= fats <= 4 or reserved == 0:
        return None
    fat_sectors = fat16 or fat32
    total = total16 or total32
    if fat_sectors == 0 or total == 0:
        return None
    root_sectors = -(-root_entries * 32 // bps)
    data_start = reserved + fats * fat_sectors + root_sectors
    if total * bps > length or data_start >= total:
        raise Unusable("its FAT filesystem is larger than its partition")
    clusters = (total - data_start) // spc
    kind = 12 if clusters < 4085 else 16 if clusters < 65525 else 32
    if kind == 32 and (fat16 or root_entries):
        return None
    if (clusters + 2) * kind > fat_sectors * bps * 8:
        raise Unusable("its FAT is too small for its clusters")
    state = boot[65] if kind == 32 else boot[37]
    if state & 0x01:
        raise Unusable("its FAT filesystem is marked dirty (not cleanly unmounted)")
    return bps, spc, reserved, fat_sectors, data_start, clusters, kind, total


def _used_clusters(reader: Reader, fat_offset: int, clusters: int, kind: int):
    """Yield the numbers (2..clusters+1) of clusters whose FAT entry is not zero."""
    if kind == 12:
        fat = reader.read(fat_offset, -(-(clusters + 2) * 3 // 2))
        for c in range(2, clusters + 2):
            i = c * 3 // 2
            v = fat[i] | fat[i + 1] << 8
            if (v >> 4 if c & 1 else v & 0xFFF):
                yield c
        return
    width = kind // 8
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


def used_map(reader: Reader) -> FsMap | None:
    boot = reader.peek(0, 512)
    if len(boot) < 512:
        return None
    geo = _geometry(boot, reader.length)
    if geo is None:
        return None
    bps, spc, reserved, fat_sectors, data_start, clusters, kind, total = geo
    ranges: list[tuple[int, int]] = [(0, data_start * bps)]
    cluster_bytes = spc * bps
    for c in _used_clusters(reader, reserved * bps, clusters, kind):
        offset = (data_start + (c - 2) * spc) * bps
        last = ranges[-1]
        if last[0] + last[1] == offset:
            ranges[-1] = (last[0], last[1] + cluster_bytes)
        else:
            ranges.append((offset, cluster_bytes))
    return FsMap(f"FAT{kind}", ranges, total * bps)
