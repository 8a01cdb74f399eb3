"""GUID partition tables as Linux and libblkid read them: the protective MBR, the headers, the entries.

Two readers of the same bytes, because they disagree and a backup tool must
know when they do (osdef.disk.ondisk.partitions decides what follows):

* ``kernel_gpt`` follows Linux's ``block/partitions/efi.c``: a GPT counts only
  behind a valid protective or hybrid MBR (``is_pmbr_valid``: the 0x55AA
  signature and an entry of type 0xEE whose first LBA is 1), and only the
  primary header is used (``find_valid_gpt`` never falls back to the backup
  header without the ``gpt`` boot option); header checks as ``is_gpt_valid``,
  entries as ``is_pte_valid`` (non-null type, first and last LBA inside the
  disk), at most 255 entries (the disk's partition limit minus one).
* ``any_gpt`` finds every GPT header that checks out (libblkid's
  ``get_gpt_header`` rules) wherever a tool may look: LBA 1 and the last LBA,
  with 512- and 4096-byte sectors, with or without a protective MBR —
  libblkid, parted and gdisk read a backup header alone, and firmware may see
  a disk with 4 KiB sectors.

Every field is hostile input: reads stay inside the disk, and the entry
array is bounded (``MAX_ARRAY``, the kernel's kmalloc limit).
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

from osdef.disk.ondisk import ReadAt

SIGNATURE = b"EFI PART"
PROTECTIVE_TYPE = 0xEE
ENTRY_SIZE = 128
HEADER_MIN = 92
MAX_ARRAY = 4 << 20  # bytes of entries: the kernel refuses more (KMALLOC_MAX_SIZE on x86-64)
KERNEL_MAX_ENTRIES = 255  # efi_partition: i < state->limit - 1, the limit being DISK_MAX_PARTS (256)
SECTOR = 512
NULL_GUID = bytes(16)


@dataclass(frozen=True)
class Entry:
    """One used GPT entry: its number (index + 1), type GUID and raw first/last LBA."""

    number: int
    type_guid: str
    first_lba: int
    last_lba: int


@dataclass(frozen=True)
class Header:
    """A GPT header that checked out, and its entries."""

    lba: int
    sector: int
    entries: tuple[Entry, ...]
    first_usable: int
    last_usable: int

    @property
    def where(self) -> str:
        which = "primary" if self.lba == 1 else "backup"
        return f"{which} header, {self.sector}-byte sectors"


def guid_str(raw: bytes) -> str:
    a, b, c = struct.unpack_from("<IHH", raw)
    return f"{a:08x}-{b:04x}-{c:04x}-{raw[8:10].hex()}-{raw[10:16].hex()}"


def is_pmbr_valid(sector0: bytes) -> bool:
    """Linux's is_pmbr_valid: a protective or hybrid MBR (0x55AA and a 0xEE entry starting at LBA 1)."""
    if len(sector0) < SECTOR or sector0[510:512] != b"\x55\xaa":
        return False
    for i in range(4):
        kind, = struct.unpack_from("<B", sector0, 446 + 16 * i + 4)
        first, = struct.unpack_from("<I", sector0, 446 + 16 * i + 8)
        if kind == PROTECTIVE_TYPE and first == 1:
            return True
    return False


def has_protective_entry(sector0: bytes) -> bool:
    """libblkid's is_pmbr_valid, and what makes Linux's msdos reader step aside: any 0xEE entry."""
    if len(sector0) < SECTOR or sector0[510:512] != b"\x55\xaa":
        return False
    return any(sector0[446 + 16 * i + 4] == PROTECTIVE_TYPE for i in range(4))


def _header(read: ReadAt, lba: int, sector: int, disk_size: int, kernel: bool) -> Header | None:
    """The header at ``lba`` if it checks out (kernel: is_gpt_valid; else libblkid's get_gpt_header)."""
    last_lba = disk_size // sector - 1
    if lba < 1 or lba > last_lba:
        return None
    raw = read(lba * sector, sector)
    if raw is None or raw[:8] != SIGNATURE:
        return None
    size, crc = struct.unpack_from("<II", raw, 12)
    if not HEADER_MIN <= size <= sector:
        return None
    if zlib.crc32(raw[:16] + b"\0\0\0\0" + raw[20:size]) != crc:
        return None
    my_lba, _, first_usable, last_usable = struct.unpack_from("<QQQQ", raw, 24)
    entries_lba, count, entry_size, entries_crc = struct.unpack_from("<QIII", raw, 72)
    if my_lba != lba or first_usable > last_lba or last_usable > last_lba or last_usable < first_usable:
        return None
    if not kernel and first_usable < lba < last_usable:
        return None  # libblkid: the header must lie outside the usable area
    if entry_size != ENTRY_SIZE or count == 0 or count * entry_size > MAX_ARRAY:
        return None
    array = read(entries_lba * sector, count * entry_size) if entries_lba <= last_lba else None
    if array is None or zlib.crc32(array) != entries_crc:
        return None
    entries = []
    for i in range(count):
        raw_entry = array[i * ENTRY_SIZE:(i + 1) * ENTRY_SIZE]
        if raw_entry[:16] == NULL_GUID:
            continue
        first, last = struct.unpack_from("<QQ", raw_entry, 32)
        entries.append(Entry(i + 1, guid_str(raw_entry[:16]), first, last))
    return Header(lba, sector, tuple(entries), first_usable, last_usable)


def kernel_gpt(read: ReadAt, sector0: bytes, disk_size: int) -> Header | None:
    """The GPT Linux uses (512-byte logical sectors), or None: then Linux reads the disk as MBR."""
    if not is_pmbr_valid(sector0):
        return None
    header = _header(read, 1, SECTOR, disk_size, kernel=True)
    if header is None:
        return None
    last_lba = disk_size // SECTOR - 1
    kept = tuple(e for e in header.entries if e.number <= KERNEL_MAX_ENTRIES
                 and e.first_lba <= last_lba and e.last_lba <= last_lba)
    return Header(header.lba, header.sector, kept, header.first_usable, header.last_usable)


def any_gpt(read: ReadAt, disk_size: int) -> list[Header]:
    """Every GPT header that checks out at LBA 1 or the last LBA, for 512- and 4096-byte sectors."""
    found = []
    for sector in (SECTOR, 4096):
        for lba in (1, disk_size // sector - 1):
            header = _header(read, lba, sector, disk_size, kernel=False)
            if header is not None:
                found.append(header)
    return found


def spans(header: Header, disk_size: int) -> set[tuple[int, int]]:
    """(start, length) in bytes of the header's partitions, as a reading that keeps every listed entry."""
    out = set()
    for e in header.entries:
        start = e.first_lba * header.sector
        length = ((e.last_lba - e.first_lba + 1) % (1 << 64)) * header.sector
        if length and start < disk_size:
            out.add((start, min(length, disk_size - start)))
    return out
