"""MS-DOS partition tables as Linux reads them (``block/partitions/msdos.c``), extended partitions included.

``kernel_mbr`` ports ``msdos_partition`` and ``parse_extended`` rule for rule
(512-byte logical sectors):

* an AIX label (its magic, no entry of a Linux type, ``_LVM`` in sector 7):
  not an MBR, even without 0x55AA;
* no 0x55AA signature: not an MBR;
* a boot indicator other than 0x00/0x80 in any entry: not an MBR (whether
  Linux then calls it a whole-disk FAT or nothing, it has no partitions);
* an entry of type 0xEE: Linux leaves the disk to its GPT reader;
* every entry with a non-zero sector count is a partition, whatever its type
  (type 0 included); an extended one (0x05, 0x0F, 0x85) becomes a 2-sector
  partition over its boot record and its chain is followed: in each extended
  boot record every non-extended entry with a sector count is a logical
  partition (the 3rd and 4th only if they lie inside the extended
  partition), the first extended entry links to the next record, and the walk
  stops after 100 links without a data partition, at 256 partitions, at a
  record without 0x55AA or past the end of the disk.  Logical partitions are
  numbered from 5 in the order found; a chain that loops repeats partitions,
  as Linux does.
* nested labels inside BSD (0xA5, 0xA6, 0xA9), Minix (0x81), UnixWare (0x63)
  and Solaris (0x82, 0xBF) partitions add partitions Linux creates on top;
  they are reported in ``nested`` (the caller cannot map those).

Where util-linux's libblkid (what ``blkid``, ``partx``, ``lsblk``, parted's
and udev's probes read) would see other partitions than Linux, the reading
is reported in ``libblkid_differs``: two readings of the same bytes.  That
is the case (``libblkid/src/partitions/dos.c``, 2.38 in Debian 12 to 2.41
and later) when

* the first sector also starts as an AIX label, an NTFS or an exFAT boot
  sector (libblkid reads no MBR there; Linux does, unless AIX's LVM);
* on a disk larger than 1440 KiB, a primary partition of type 0x63, 0x81,
  0x82, 0xA5, 0xA6 or 0xA9 runs past the disk's end: libblkid probes it for
  a nested label and refuses the whole table (``partitions.c``
  ``blkid_partitions_do_subprobe``: "overflow detected"), where Linux drops
  or cuts that one partition;
* an extended partition's chain is not one every reader walks alike: an
  extended partition at sector 0 or ending past 2^32 sectors, a logical
  partition outside its extended partition or at a start already taken, a
  sum past 32 bits (libblkid 2.38 wraps), a link Linux follows that is
  zero, does not advance or leaves the extended partition (libblkid skips it
  or stops), or more than 255 partitions (Linux stops, libblkid goes on).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import TypeGuard

from osdef.disk.ondisk import ReadAt

SECTOR = 512
EXTENDED_TYPES = (0x05, 0x0F, 0x85)
PROTECTIVE_TYPE = 0xEE
LIMIT = 256  # DISK_MAX_PARTS: partition numbers 1..255
MAX_EMPTY_LINKS = 100
BSD_MAGIC = 0x82564557
SOLARIS_SANE = 0x600DDEEE
UNIXWARE_MAGIC, UNIXWARE_MAGIC2 = 0xCA5E600D, 0x600DDEEE
LIBBLKID_NESTED_TYPES = (0x63, 0x81, 0x82, 0xA5, 0xA6, 0xA9)  # libblkid dos.c dos_nested
AIX_MAGIC = b"\xc9\xc2\xd4\xc1"  # EBCDIC "IBMA"
LINUX_TYPES = (0x82, 0xFD, 0x83, 0x8E)  # swap, RAID, data, LVM: msdos.c aix_magic_present
U32 = 1 << 32  # libblkid 2.38 keeps sectors in 32-bit integers
LIBBLKID_TINY = 1440 * 1024  # probe.c BLKID_FL_TINY_DEV: no nested probing at or below this size


@dataclass(frozen=True)
class Slot:
    """A partition Linux creates from an MBR: number, start and length in bytes, type byte."""

    number: int
    start: int
    length: int
    kind: int

    @property
    def extended(self) -> bool:
        return self.kind in EXTENDED_TYPES


@dataclass
class MbrReading:
    slots: list[Slot] = field(default_factory=list)
    nested: list[str] = field(default_factory=list)  # one line per nested label Linux would read
    libblkid_differs: str | None = None  # why util-linux's libblkid reads other partitions than Linux


def entries(sector: bytes) -> list[tuple[int, int, int, int]]:
    """(boot indicator, type, first sector, sector count) of the four entries of an MBR or EBR."""
    return [struct.unpack_from("<B3xB3xII", sector, 446 + 16 * i) for i in range(4)]


def has_signature(sector: bytes | None) -> TypeGuard[bytes]:
    return sector is not None and len(sector) >= SECTOR and sector[510:512] == b"\x55\xaa"


def kernel_mbr(read: ReadAt, sector0: bytes, disk_size: int) -> MbrReading | None:
    """The partitions Linux creates from the MBR in ``sector0``; None where Linux does not read it as one."""
    if len(sector0) < SECTOR:
        return None
    table = entries(sector0)
    if _aix(read, sector0, table) or not has_signature(sector0):
        return None
    if any(boot not in (0x00, 0x80) for boot, _, _, _ in table):
        return None
    if any(kind == PROTECTIVE_TYPE for _, kind, _, _ in table):
        return None
    reading = MbrReading()
    state = _Numbering()
    starts = {first for _, _, first, count in table if count}  # libblkid lists every primary, extended ones whole
    for slot, (_, kind, first, count) in enumerate(table, 1):
        if not count:
            continue
        if kind in EXTENDED_TYPES:
            reading.slots.append(Slot(slot, first * SECTOR, min(count, 2) * SECTOR, kind))
            _extended(read, first, count, disk_size, state, reading, starts)
            continue
        reading.slots.append(Slot(slot, first * SECTOR, count * SECTOR, kind))
    for slot, (_, kind, first, count) in enumerate(table, 1):
        if count:
            label = _nested_label(read, kind, first)
            if label:
                reading.nested.append(f"partition {slot} holds a {label} label")
    reading.libblkid_differs = _other_label(sector0) or _nested_overflow(table, disk_size) or reading.libblkid_differs
    return reading


def _aix(read: ReadAt, sector0: bytes, table: list[tuple[int, int, int, int]]) -> bool:
    """aix_magic_present: Linux reads an AIX disk, not an MBR, when no entry has a Linux type and sector 7 says _LVM."""
    if sector0[:4] != AIX_MAGIC or any(kind in LINUX_TYPES + EXTENDED_TYPES for _, kind, _, _ in table):
        return False
    return read(7 * SECTOR, 4) == b"_LVM"


def _other_label(sector0: bytes) -> str | None:
    """A first sector libblkid takes for something else than an MBR (dos.c probe_dos_pt: AIX, NTFS, exFAT)."""
    for magic, at, what in ((AIX_MAGIC, 0, "an AIX label"), (b"NTFS    ", 3, "an NTFS boot sector"),
                            (b"EXFAT   ", 3, "an exFAT boot sector")):
        if sector0[at:at + len(magic)] == magic:
            return f"its first sector is also {what}, where util-linux's libblkid reads no MBR"
    return None


def _nested_overflow(table: list[tuple[int, int, int, int]], disk_size: int) -> str | None:
    """A primary partition libblkid would probe for a nested label that runs past the disk's end."""
    if disk_size <= LIBBLKID_TINY:
        return None
    for slot, (_, kind, first, count) in enumerate(table, 1):
        if count and kind in LIBBLKID_NESTED_TYPES and (first + count) * SECTOR > disk_size:
            return (f"partition {slot} (type 0x{kind:02x}) runs past the disk's end, so util-linux's libblkid "
                    "reads no partition table at all where Linux reads the others")
    return None


class _Numbering:
    def __init__(self) -> None:
        self.next = 5


def _extended(read: ReadAt, first: int, size: int, disk_size: int, state: _Numbering, reading: MbrReading,
              starts: set[int]) -> None:
    """parse_extended: the chain of extended boot records, rule for rule; notes where libblkid walks it otherwise."""
    end = first + size
    differs = _Differs(reading)
    if first == 0 or end > U32:
        differs.note("the extended partition " + ("starts at sector 0, which util-linux's libblkid ignores" if not first
                                                  else "ends past 2^32 sectors, which libblkid 2.38 cannot add up"))
    this, this_size = first, size
    empty_links = 0
    while True:
        empty_links += 1
        if empty_links > MAX_EMPTY_LINKS or state.next == LIMIT:
            return
        data = read(this * SECTOR, SECTOR) if this * SECTOR < disk_size else None
        if not has_signature(data):
            return
        table = entries(data)
        for i, (_, kind, start, count) in enumerate(table):
            if not count or kind in EXTENDED_TYPES:
                continue
            at = this + start
            if i >= 2 and (start + count > this_size or at < first or at + count > end):
                if (start + count) % U32 <= this_size and (this + start) % U32 >= first and \
                        (this + start + count) % U32 <= end % U32:
                    differs.note(f"an entry Linux skips in the boot record at sector {this} is one to libblkid 2.38 "
                                 "(its sums wrap at 32 bits)")
                continue
            if at < first or at + count > end:
                differs.note(f"logical partition {state.next} lies outside its extended partition (libblkid drops "
                             "it, or 2.38 wraps its sector past 32 bits)")
            elif at in starts:
                differs.note(f"logical partition {state.next} starts where another one does (libblkid drops it)")
            starts.add(at)
            reading.slots.append(Slot(state.next, at * SECTOR, count * SECTOR, kind))
            empty_links = 0
            state.next += 1
            if state.next == LIMIT:
                differs.note("the chain reaches Linux's limit of 255 partitions, where libblkid reads on")
                return
        link = next(((start, count) for _, kind, start, count in table if count and kind in EXTENDED_TYPES), None)
        if link is None:
            return
        nxt = first + link[0]
        if (not link[0] or nxt <= this or nxt + link[1] > end) and \
                any(t * SECTOR < disk_size and has_signature(read(t * SECTOR, SECTOR)) for t in {nxt, nxt % U32}):
            differs.note(f"the boot record at sector {this} links to sector {nxt}, a link libblkid does not follow "
                         "alike (zero, backwards or out of the extended partition)")
        this, this_size = nxt, link[1]


class _Differs:
    """The first reason libblkid reads this chain otherwise than Linux, kept on the reading."""

    def __init__(self, reading: MbrReading):
        self.reading = reading

    def note(self, why: str) -> None:
        if self.reading.libblkid_differs is None:
            self.reading.libblkid_differs = f"its extended partition's chain is read otherwise by libblkid: {why}"


def _u32(read: ReadAt, offset: int) -> int | None:
    raw = read(offset, 4)
    return None if raw is None else struct.unpack("<I", raw)[0]


def _nested_label(read: ReadAt, kind: int, first: int) -> str | None:
    """The nested label Linux's second msdos pass would find in a partition of this type, if any."""
    base = first * SECTOR
    if kind in (0xA5, 0xA6, 0xA9) and _u32(read, base + SECTOR) == BSD_MAGIC:
        return "BSD disklabel"
    if kind in (0x82, 0xBF) and _u32(read, base + SECTOR + 12) == SOLARIS_SANE:
        return "Solaris x86 VTOC"
    if kind == 0x63 and _u32(read, base + 29 * SECTOR + 4) == UNIXWARE_MAGIC:
        return "UnixWare disklabel"
    if kind == 0x81:
        sector = read(base, SECTOR)
        if has_signature(sector) and entries(sector)[0][1] == 0x81:
            return "Minix subpartition table"
    return None
