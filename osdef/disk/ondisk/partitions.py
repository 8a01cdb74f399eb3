"""The partitions of a disk as its guest's Linux kernel sees them, and whether another reading is plausible.

No kernel partition scan, no mount, no libguestfs: the table is parsed from
the disk's bytes (osdef.disk.ondisk.gpt, .mbr), with Linux's rules
(``block/partitions/core.c``, ``efi.c``, ``msdos.c``; 512-byte logical
sectors, as Ganeti's virtual disks have):

1. GPT first, and only behind a protective or hybrid MBR (an 0xEE entry at
   LBA 1); only its primary header; then the MBR, unless it has an 0xEE
   entry; else no table: the whole disk is one partition (number 0).
2. A partition that starts past the end of the disk is ignored; one that
   runs past it is cut at the end (``blk_add_partition``) and sent at block
   level, as is every partition that overlaps another, and an extended
   partition's 2-sector node.

The export is a backup, so it refuses to guess (``Table.ambiguous``: the
whole disk goes at block level, with one line saying why) wherever the same
bytes allow another plausible reading:

* a GPT header that checks out (primary or backup, 512- or 4096-byte
  sectors; libblkid, parted, gdisk and firmware read those) and lists other
  partitions than the ones Linux uses — e.g. a stale GPT under an MBR;
* a hybrid MBR entry that cuts across a GPT partition;
* a nested label (BSD, Solaris, UnixWare, Minix) or a Windows LDM partition
  (type 0x42): partitions Linux adds that this module does not follow;
* another kind of label at the start of a disk without an MBR or GPT (AIX,
  SGI, Sun, Mac, Amiga, OSF): Linux reads those too;
* an MBR that util-linux's libblkid reads otherwise than Linux (a first
  sector with AIX, NTFS or exFAT magic too; a partition of a nested-label
  type past the disk's end; an extended partition's chain not every reader
  walks alike: mbr.py).

A filesystem at the start of the whole disk beside a partition table is the
caller's check (osdef.stream.content asks osdef.disk.ondisk.signatures).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from osdef.disk.device import Disk, read_at
from osdef.disk.ondisk import gpt, mbr
from osdef.errors import OsdefError

SECTOR = 512
BIOS_BOOT_GUID = "21686148-6449-6e6f-744e-656564454649"
ESP_GUID = "c12a7328-f81f-11d2-ba4b-00a0c93ec93b"
LDM_TYPE = 0x42
EXTENDED_NODE = "is an extended partition's boot record"  # block level, and no fallback worth a warning


@dataclass(frozen=True)
class Partition:
    """A partition: ``number`` as the guest's kernel names it (0 for the whole disk)."""

    number: int
    start: int  # byte offset on the disk
    length: int  # bytes
    kind: str  # GPT type GUID, "0x83"-style MBR type, or "" for the whole disk

    @property
    def end(self) -> int:
        return self.start + self.length

    @property
    def name(self) -> str:
        return "whole disk" if self.number == 0 else f"partition {self.number}"


@dataclass
class Table:
    """The guest kernel's reading: scheme, partitions, and what goes at block level and why."""

    scheme: str  # "gpt", "mbr" or "none"
    partitions: list[Partition] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # one line each: what was ignored and why
    block: dict[int, str] = field(default_factory=dict)  # partition number -> why it is sent at block level
    ambiguous: str | None = None  # set: the whole disk goes at block level, for this reason

    @property
    def overlapping(self) -> set[int]:
        return {n for n, why in self.block.items() if why.startswith("overlaps")}


class _Bytes:
    """Bounded reads of the disk: None for anything not wholly inside it or unreadable."""

    def __init__(self, disk: Disk):
        self.disk = disk

    def __call__(self, offset: int, length: int) -> bytes | None:
        if offset < 0 or length < 0 or offset + length > self.disk.size:
            return None
        buf = bytearray(length)
        try:
            read_at(self.disk, memoryview(buf), offset)
        except OsdefError:  # the disk's typed error: an unreadable sector is no table
            return None
        return bytes(buf)


def _add(table: Table, number: int, start: int, length: int, kind: str, size: int) -> None:
    """blk_add_partition: skip empty ones and those past the end; cut those that run past it."""
    if length <= 0:
        return
    if start >= size:
        table.notes.append(f"partition {number} starts past the end of the disk: ignored")
        return
    if start + length > size:
        length = size - start
        table.block[number] = "runs past the end of the disk (Linux cuts it there)"
    table.partitions.append(Partition(number, start, length, kind))


def _from_gpt(table: Table, header: gpt.Header, size: int) -> None:
    table.scheme = "gpt"
    for e in header.entries:
        length = ((e.last_lba - e.first_lba + 1) % (1 << 64)) * SECTOR
        _add(table, e.number, e.first_lba * SECTOR, length, e.type_guid, size)


def _from_mbr(table: Table, reading: mbr.MbrReading, size: int) -> None:
    table.scheme = "mbr"
    for s in reading.slots:
        _add(table, s.number, s.start, s.length, f"0x{s.kind:02x}", size)
        if s.extended and s.number in {p.number for p in table.partitions}:
            table.block[s.number] = EXTENDED_NODE


def _mark_overlaps(table: Table) -> None:
    parts = sorted(table.partitions, key=lambda p: (p.start, p.number))
    for i, a in enumerate(parts):
        for b in parts[i + 1:]:
            if b.start >= a.end:
                break
            for p, q in ((a, b), (b, a)):
                table.block.setdefault(p.number, f"overlaps partition {q.number}")


def _other_readings(table: Table, read: _Bytes, sector0: bytes, used: gpt.Header | None, size: int) -> str | None:
    """Why another reading of these bytes is plausible, or None."""
    kernel = {(p.start, p.length) for p in table.partitions}
    for header in gpt.any_gpt(read, size):
        if used is not None and (header.lba, header.sector) == (used.lba, used.sector):
            continue
        if gpt.spans(header, size) != kernel:
            what = "the MBR's" if table.scheme == "mbr" else "no" if table.scheme == "none" else "the primary GPT's"
            return (f"a GPT ({header.where}) lists other partitions than Linux reads ({what} partitions): "
                    "a stale or damaged table")
    if used is not None:
        return _hybrid_conflict(table, sector0)
    if table.scheme == "mbr":
        if any(p.kind == f"0x{LDM_TYPE:02x}" for p in table.partitions):
            return "it has a Windows LDM partition (type 0x42), whose volumes are not followed"
        return None
    if table.scheme == "none":
        return _foreign_label(read, sector0)
    return None


def _hybrid_conflict(table: Table, sector0: bytes) -> str | None:
    """A hybrid MBR entry that neither matches a GPT partition nor stays clear of all of them."""
    for _, kind, first, count in mbr.entries(sector0):
        if not count or kind in (0, gpt.PROTECTIVE_TYPE):
            continue
        start, end = first * SECTOR, (first + count) * SECTOR
        for p in table.partitions:
            if (p.start, p.end) != (start, end) and start < p.end and p.start < end:
                return f"its hybrid MBR has an entry (type 0x{kind:02x}) that cuts across GPT {p.name}"
    return None


def _foreign_label(read: _Bytes, sector0: bytes) -> str | None:
    """Another partition format Linux reads on a disk with neither MBR nor GPT (block/partitions/*.c)."""
    checks = (
        (sector0[:4] == mbr.AIX_MAGIC, "an AIX label"),
        (struct.unpack_from(">I", sector0, 0)[0] == 0x0BE5A941, "an SGI disk label"),
        (struct.unpack_from(">H", sector0, 508)[0] == 0xDABE, "a Sun disk label"),
        (sector0[:2] == b"ER" and (read(SECTOR, 2) or b"") == b"PM", "a Mac partition map"),
        (struct.unpack_from("<I", sector0, 64)[0] == mbr.BSD_MAGIC, "an OSF/BSD disk label"),
    )
    for hit, what in checks:
        if hit:
            return f"it has {what}, which Linux reads as partitions not followed here"
    for lba in range(16):
        if (read(lba * SECTOR, 4) or b"") == b"RDSK":
            return "it has an Amiga rigid disk block, which Linux reads as partitions not followed here"
    return None


def read_table(disk: Disk) -> Table:
    """The guest kernel's partitions of ``disk``; ``ambiguous`` set where another reading is plausible."""
    table = Table("none")
    read = _Bytes(disk)
    sector0 = read(0, SECTOR)
    if sector0 is None:
        if disk.size:
            table.partitions.append(Partition(0, 0, disk.size, ""))
        return table
    used = gpt.kernel_gpt(read, sector0, disk.size)
    if used is not None:
        _from_gpt(table, used, disk.size)
    elif not gpt.has_protective_entry(sector0):
        reading = mbr.kernel_mbr(read, sector0, disk.size)
        if reading is not None and reading.slots:
            _from_mbr(table, reading, disk.size)
            if reading.nested:
                table.ambiguous = f"its {reading.nested[0]}, which Linux reads as more partitions"
            table.ambiguous = table.ambiguous or reading.libblkid_differs
    elif gpt.is_pmbr_valid(sector0):
        table.notes.append("its protective MBR has no valid primary GPT behind it: Linux sees no partitions")
    _mark_overlaps(table)
    table.ambiguous = table.ambiguous or _other_readings(table, read, sector0, used, disk.size)
    if table.scheme == "none" and disk.size:
        table.partitions.append(Partition(0, 0, disk.size, ""))
    return table
