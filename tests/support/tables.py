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

from osdef.disk.ondisk.partitions import EXTENDED_NODE, read_table
from osdef.stream.blockio import open_disk
from tests.support.kernelview import parse_partx, regions

SECTOR = 512
MBR_ENTRIES = 446
ENTRY = struct.Struct("<B3xB3xII")  # status, (CHS), type, (CHS), first sector, sectors


def mbr_entries(path: Path) -> list[tuple[int, int, int, int]]:
    with open(path, "rb") as f:
        f.seek(MBR_ENTRIES)
        raw = f.read(64)
    return [ENTRY.unpack_from(raw, 16 * i) for i in range(4)]


def table_bytes(entries: list[tuple[int, int, int, int]]) -> bytes:
    """A boot record's last 66 bytes: up to four (status, type, first sector, sectors) entries and 0x55AA."""
    return b"".join(ENTRY.pack(*e) for e in entries).ljust(64, b"\0") + b"\x55\xaa"


def write_mbr(path: Path, entries: list[tuple[int, int, int, int]], at: int = 0) -> None:
    """Write ``table_bytes(entries)`` into the boot record at byte ``at`` (the MBR, or an extended boot record)."""
    with open(path, "r+b") as f:
        f.seek(at + MBR_ENTRIES)
        f.write(table_bytes(entries))


# --- MBRs that util-linux's libblkid reads otherwise than Linux (docs/stream.md A6, A7) ----------------------

EXT = 40960  # the extended partition of ``chain``: sectors EXT .. EXT + 60000
U32 = 1 << 32


def chain(path: Path, second: list[tuple[int, int, int, int]]) -> None:
    """Partition 1, and an extended partition at EXT whose first boot record holds a logical partition and links
    to a second boot record, at EXT + 10000, with the entries ``second``."""
    write_mbr(path, [(0, 0x83, 2048, 20480), (0, 0x05, EXT, 60000)])
    write_mbr(path, [(0, 0x83, 2048, 4096), (0, 0x05, 10000, 20000)], at=EXT * SECTOR)
    write_mbr(path, second, at=(EXT + 10000) * SECTOR)


def _backwards(path: Path) -> None:
    chain(path, [(0, 0x83, 2048, 1024), (0, 0x05, 5000, 1000)])  # links back to EXT + 5000
    write_mbr(path, [(0, 0x83, 100, 200)], at=(EXT + 5000) * SECTOR)


def self_link(path: Path) -> None:
    """An extended partition at EXT whose boot record links to itself (a zero link): Linux repeats its logical
    partition up to its limit."""
    write_mbr(path, [(0, 0x05, EXT, 20000)])
    write_mbr(path, [(0, 0x83, 2048, 1024), (0, 0x05, 0, 20000)], at=EXT * SECTOR)  # a zero link: to itself


def _aix(path: Path) -> None:
    write_mbr(path, [(0, 0x83, 2048, 20480)])
    with open(path, "r+b") as f:
        f.write(b"\xc9\xc2\xd4\xc1")


# name: (how to write it on a blank 64 MiB disk, the libblkid versions that read it otherwise than Linux)
OTHER_READINGS = {
    # Linux: past the disk's end; 2.38's 32-bit sum: EXT + 5000
    "chain: a sum that wraps": (lambda p: chain(p, [(0, 0x83, U32 - 5000, 1024)]), {"2.38"}),
    "chain: a start taken twice": (lambda p: chain(p, [(0, 0x83, 1, 100), (0, 0, 0, 0), (0, 0x83, 1, 50)]),
                                   {"2.38", "2.41.5"}),
    # a 3rd entry Linux skips (it overflows its boot record's span), which 2.38's 32-bit sums take in
    "chain: a 3rd entry that wraps": (lambda p: chain(p, [(0, 0x83, 2048, 1024), (0, 0, 0, 0),
                                                          (0, 0x83, U32 - 4000, 12000)]), {"2.38"}),
    "chain: a partition outside the extended one": (lambda p: chain(p, [(0, 0x83, 60000, 1024)]), {"2.41.5"}),
    "chain: a link backwards": (_backwards, {"2.41.5"}),
    "chain: a zero link": (self_link, {"2.38", "2.41.5"}),  # Linux repeats the partition up to its limit
    "a swap partition past the disk's end": (lambda p: write_mbr(p, [(0, 0x83, 2048, 20480),
                                                                     (0, 0x82, 131072 - 2048, 4096)]),
                                             {"2.38", "2.41.5"}),  # 0x82 is Solaris x86 to libblkid
    "AIX magic on an MBR": (_aix, {"2.38", "2.41.5"}),
}
ONE_READING = {"chain: plain": lambda p: chain(p, [(0, 0x83, 2048, 4096)])}  # what fdisk, sfdisk and parted write


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


def linux_reading(path: Path) -> set[tuple[int, int, int]]:
    """(number, first byte, bytes) of the partitions osdef says Linux creates, extended nodes left out."""
    with open_disk(path, write=False) as disk:
        table = read_table(disk)
    return {(p.number, p.start, p.length) for p in table.partitions
            if p.number and table.block.get(p.number) != EXTENDED_NODE}


def libblkid_reading(returncode: int, stdout: str, disk_size: int) -> set[tuple[int, int, int]]:
    """The same, from the output of kernelview.PARTX (libblkid), with the kernel's rules for the disk's end."""
    rows = parse_partx(returncode, stdout)
    return {(r.number, r.start, r.length) for r in regions(rows or [], disk_size)}
