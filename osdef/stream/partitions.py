"""The partition table of a disk, read from its bytes: GPT (primary or backup header) or MBR.

No kernel partition scan, no mount, no libguestfs: the table is parsed from
the first (and, for a GPT backup, the last) sectors of the disk.  The disk is
written by its guest, so every field is hostile input: a partition is kept
only if it lies inside the disk, and partitions that overlap one another are
reported so their bytes are sent at block level (``overlapping``).

A disk whose first sectors hold no table may hold a single filesystem: it is
returned as one partition covering the whole disk (``scheme == "none"``).
Bytes outside every partition (the tables themselves, gaps, a GPT backup)
are not the concern of this module: the caller sends them as it always did.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field

from osdef.disk.device import Disk, read_at
from osdef.disk.units import SECTOR
from osdef.stream.blockio import BlockIOError

GPT_SIGNATURE = b"EFI PART"
MAX_GPT_ENTRIES = 1024  # the spec's minimum array is 128; anything past 1024 is refused
MAX_LOGICAL = 128  # logical partitions followed in an extended partition's chain
EXTENDED_TYPES = (0x05, 0x0F, 0x85)
PROTECTIVE_TYPE = 0xEE
BIOS_BOOT_GUID = "21686148-6449-6e6f-744e-656564454649"
ESP_GUID = "c12a7328-f81f-11d2-ba4b-00a0c93ec93b"


@dataclass(frozen=True)
class Partition:
    """A partition: ``number`` as the guest's kernel would name it (0 for a whole-disk filesystem)."""

    number: int
    start: int  # byte offset on the disk
    length: int  # bytes
    kind: str  # GPT type GUID, or "0x83"-style MBR type, or "" for a whole disk

    @property
    def end(self) -> int:
        return self.start + self.length

    @property
    def name(self) -> str:
        return "whole disk" if self.number == 0 else f"partition {self.number}"


@dataclass
class Table:
    """What was found: the scheme, the partitions kept, and notes on what was refused."""

    scheme: str  # "gpt", "mbr" or "none"
    partitions: list[Partition] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # one line each: what was ignored and why
    overlapping: set[int] = field(default_factory=set)  # numbers of partitions that overlap another


def _read(disk: Disk, offset: int, length: int) -> bytes | None:
    """``length`` bytes at ``offset``, or None if they are not all inside the disk."""
    if offset < 0 or length < 0 or offset + length > disk.size:
        return None
    buf = bytearray(length)
    try:
        read_at(disk, memoryview(buf), offset)
    except BlockIOError:
        return None
    return bytes(buf)


def _guid(raw: bytes) -> str:
    a, b, c = struct.unpack_from("<IHH", raw)
    d = raw[8:10].hex()
    e = raw[10:16].hex()
    return f"{a:08x}-{b:04x}-{c:04x}-{d}-{e}"


def _gpt_header(disk: Disk, lba: int, sector: int) -> tuple | None:
    """Parse and check a GPT header at ``lba``: (entries_lba, count, entry_size, entries_crc) or None."""
    raw = _read(disk, lba * sector, sector)
    if raw is None or raw[:8] != GPT_SIGNATURE:
        return None
    (size,) = struct.unpack_from("<I", raw, 12)
    if size < 92 or size > sector:
        return None
    (crc,) = struct.unpack_from("<I", raw, 16)
    check = raw[:16] + b"\0\0\0\0" + raw[20:size]
    if zlib.crc32(check) != crc:
        return None
    my_lba, = struct.unpack_from("<Q", raw, 24)
    if my_lba != lba:
        return None
    entries_lba, count, entry_size, entries_crc = struct.unpack_from("<QIII", raw, 72)
    if entry_size < 128 or entry_size % 8 or entry_size > 4096 or count == 0 or count > MAX_GPT_ENTRIES:
        return None
    return entries_lba, count, entry_size, entries_crc


def _gpt(disk: Disk, sector: int, table: Table) -> bool:
    """Fill ``table`` from a GPT with ``sector``-byte sectors; False if there is none."""
    last_lba = disk.size // sector - 1
    found = None
    for lba, which in ((1, "primary"), (last_lba, "backup")):
        header = _gpt_header(disk, lba, sector) if lba >= 1 else None
        if header is None:
            if which == "primary" and _read(disk, sector, 8) == GPT_SIGNATURE:
                table.notes.append("the primary GPT header is damaged: using the backup")
            continue
        entries_lba, count, entry_size, entries_crc = header
        array = _read(disk, entries_lba * sector, count * entry_size)
        if array is None or zlib.crc32(array) != entries_crc:
            table.notes.append(f"the {which} GPT partition array is damaged")
            continue
        found = (array, count, entry_size)
        break
    if found is None:
        return bool(table.notes)
    array, count, entry_size = found
    table.scheme = "gpt"
    for i in range(count):
        entry = array[i * entry_size:(i + 1) * entry_size]
        if entry[:16] == bytes(16):
            continue
        first, last = struct.unpack_from("<QQ", entry, 32)
        _add(disk, table, i + 1, first * sector, (last - first + 1) * sector, _guid(entry[:16]),
             valid=last >= first)
    return True


def _add(disk: Disk, table: Table, number: int, start: int, length: int, kind: str, *, valid: bool = True) -> None:
    if not valid or length <= 0 or start < 0 or start + length > disk.size:
        table.notes.append(f"partition {number} lies outside the disk: ignored")
        return
    table.partitions.append(Partition(number, start, length, kind))


def _mbr_entries(sector: bytes) -> list[tuple[int, int, int]] | None:
    """(type, first sector, sector count) of the four entries of an MBR/EBR, or None if it is not one."""
    if len(sector) < SECTOR or sector[510:512] != b"\x55\xaa":
        return None
    entries = []
    for i in range(4):
        status, kind, first, count = struct.unpack_from("<B3xB3xII", sector, 446 + 16 * i)
        if status not in (0x00, 0x80):
            return None
        entries.append((kind, first, count))
    return entries


def _mbr(disk: Disk, first: bytes, table: Table) -> bool:
    entries = _mbr_entries(first)
    if entries is None or all(kind == 0 for kind, _, _ in entries):
        return False
    table.scheme = "mbr"
    for i, (kind, start, count) in enumerate(entries):
        if kind == 0 or count == 0:
            continue
        if kind in EXTENDED_TYPES:
            _logical(disk, table, start, count)
            continue
        _add(disk, table, i + 1, start * SECTOR, count * SECTOR, f"0x{kind:02x}")
    return True


def _logical(disk: Disk, table: Table, ext_start: int, ext_count: int) -> None:
    """Follow an extended partition's chain of EBRs (bounded, loops refused)."""
    ebr = ext_start
    seen = set()
    number = 5
    while len(seen) < MAX_LOGICAL:
        if ebr in seen or not ext_start <= ebr < ext_start + ext_count:
            table.notes.append("the extended partition's chain is broken: the rest ignored")
            return
        seen.add(ebr)
        entries = _mbr_entries(_read(disk, ebr * SECTOR, SECTOR) or b"")
        if entries is None:
            table.notes.append("an extended boot record is damaged: the rest ignored")
            return
        (kind, start, count), (next_kind, next_start, _) = entries[0], entries[1]
        if kind and count:
            _add(disk, table, number, (ebr + start) * SECTOR, count * SECTOR, f"0x{kind:02x}")
            number += 1
        if next_kind not in EXTENDED_TYPES or next_start == 0:
            return
        ebr = ext_start + next_start
    table.notes.append(f"more than {MAX_LOGICAL} logical partitions: the rest ignored")


def _mark_overlaps(table: Table) -> None:
    parts = sorted(table.partitions, key=lambda p: p.start)
    for i, a in enumerate(parts):
        for b in parts[i + 1:]:
            if b.start >= a.end:
                break
            table.overlapping.update((a.number, b.number))


def read_table(disk: Disk) -> Table:
    """The partitions of ``disk``, from its GPT or MBR; a whole-disk pseudo-partition if it has neither."""
    table = Table("none")
    first = _read(disk, 0, SECTOR)
    if first is not None:
        mbr = _mbr_entries(first)
        protective = mbr is not None and any(kind == PROTECTIVE_TYPE for kind, _, _ in mbr)
        for sector in (SECTOR, 4096):
            if _gpt(disk, sector, table):
                break
        if table.scheme == "none" and not protective:
            _mbr(disk, first, table)
    if table.scheme == "none" and not table.notes and disk.size:
        table.partitions.append(Partition(0, 0, disk.size, ""))
    _mark_overlaps(table)
    return table
