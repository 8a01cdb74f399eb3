"""Partition-table bytes the partitioning tools will not write: raw MBR entries, GPT fields with CRCs redone.

For the differential tier's hostile layouts (a hybrid MBR, a partition past
the disk's end, a stale GPT whose primary copy is gone) and its mutations.
Offsets follow the UEFI specification (GPT header, 128-byte entries) and the
MBR's four 16-byte entries at byte 446.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

SECTOR = 512
MBR_ENTRIES = 446
ENTRY = struct.Struct("<B3xB3xII")  # status, (CHS), type, (CHS), first sector, sectors


def mbr_entries(path: Path) -> list[tuple[int, int, int, int]]:
    with open(path, "rb") as f:
        f.seek(MBR_ENTRIES)
        raw = f.read(64)
    return [ENTRY.unpack_from(raw, 16 * i) for i in range(4)]


def write_mbr(path: Path, entries: list[tuple[int, int, int, int]]) -> None:
    """Write up to four (status, type, first sector, sectors) entries and the 0x55AA signature."""
    raw = b"".join(ENTRY.pack(*e) for e in entries).ljust(64, b"\0") + b"\x55\xaa"
    with open(path, "r+b") as f:
        f.seek(MBR_ENTRIES)
        f.write(raw)


def _read(f, offset: int, length: int) -> bytearray:
    f.seek(offset)
    return bytearray(f.read(length))


def fix_gpt(path: Path, sector: int = SECTOR) -> None:
    """Recompute the partition-array and header CRCs of the primary and backup GPT headers, where present."""
    size = path.stat().st_size
    with open(path, "r+b") as f:
        for lba in (1, size // sector - 1):
            header = _read(f, lba * sector, sector)
            if header[:8] != b"EFI PART":
                continue
            hsize, = struct.unpack_from("<I", header, 12)
            entries_lba, count, entry_size = struct.unpack_from("<QII", header, 72)
            if not 92 <= hsize <= sector or (entries_lba + 1) * sector > size or count * entry_size > (1 << 20):
                continue
            array = _read(f, entries_lba * sector, count * entry_size)
            struct.pack_into("<I", header, 88, zlib.crc32(array))
            struct.pack_into("<I", header, 16, 0)
            struct.pack_into("<I", header, 16, zlib.crc32(header[:hsize]))
            f.seek(lba * sector)
            f.write(header)


def wipe_primary_gpt(path: Path) -> None:
    """Zero LBA 1-33 (the primary header and its array); the backup at the disk's end stays."""
    with open(path, "r+b") as f:
        f.seek(SECTOR)
        f.write(bytes(33 * SECTOR))
