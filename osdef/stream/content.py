"""What a filesystem-aware export sends: the disk cut into used, block-level and free segments, and why.

The disk's partition table as its guest's kernel reads it
(osdef.disk.ondisk.partitions) and each partition's used-block map
(osdef.stream.fsmap) give the plan:

* ``used``: bytes a filesystem uses, sent as they are (their size is known
  from the map, so the data is read once);
* ``block``: bytes sent as the block-level export always did (allocation
  map, all-zero blocks dropped): everything outside the partitions (tables,
  gaps, a GPT backup), a partition with no recognised filesystem (a BIOS boot
  partition, an unknown one), one whose map could not be trusted, and the
  whole disk where its partition table allows two readings;
* anything else is free space of a filesystem: not sent, it arrives as zeros.

``ContentPlan.partitions`` says the same per partition, for people: the
filesystem, where its map came from, what is sent, and why a partition went
at block level (``describe`` prints it; the export records it in the
stream's header).  Each fallback of a recognised filesystem, and of the whole
disk, is also one ``warn`` line.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from osdef.disk.units import GiB, KiB, MiB
from osdef.disk.device import Disk
from osdef.disk.ondisk import signatures
from osdef.disk.ondisk.partitions import EXTENDED_NODE, Partition, Table, read_table
from osdef.stream.fsmap import FsMap, Reader, Unusable, used_map

USED, BLOCK = "used", "block"


@dataclass(frozen=True)
class Segment:
    offset: int
    length: int
    mode: str  # USED or BLOCK

    @property
    def end(self) -> int:
        return self.offset + self.length


@dataclass(frozen=True)
class PartitionPlan:
    """One partition's part of the plan, for the admin: what it holds and how it is sent."""

    name: str  # "partition 2", "whole disk"
    start: int
    length: int
    fs: str  # the filesystem recognised ("ext4", "FAT32", "swap", "xfs"), or "" for none
    source: str  # where its map came from, or "" at block level
    mode: str  # USED or BLOCK
    used: int  # bytes of it sent as used (USED); 0 at block level
    reason: str = ""  # why it went at block level

    def line(self) -> str:
        what = f"{self.fs} " if self.fs else ""
        where = f"{self.name} ({what}{size_text(self.length)} at {size_text(self.start)})"
        if self.mode == USED:
            return f"{where}: {size_text(self.used)} used, from {self.source}"
        return f"{where}: block level" + (f": {self.reason}" if self.reason else "")


@dataclass
class ContentPlan:
    """The ordered, non-overlapping segments to send; free space is what lies between them."""

    segments: list[Segment]
    scheme: str = "none"
    partitions: list[PartitionPlan] = field(default_factory=list)
    whole_disk_reason: str = ""  # set: the whole disk goes at block level, and why

    def ranges(self, mode: str | None = None) -> list[tuple[int, int]]:
        return [(s.offset, s.length) for s in self.segments if mode is None or s.mode == mode]

    @property
    def used_bytes(self) -> int:
        return sum(s.length for s in self.segments if s.mode == USED)

    @property
    def mapped_partitions(self) -> int:
        return sum(1 for p in self.partitions if p.mode == USED)

    def describe(self) -> list[str]:
        """One line for the table, one per partition."""
        head = f"partition table: {self.scheme}"
        if self.whole_disk_reason:
            head += f"; the whole disk at block level: {self.whole_disk_reason}"
        return [head] + [p.line() for p in self.partitions]



def size_text(n: int) -> str:
    """A size for people: 1.5 GiB, 12.0 KiB, 512 B."""
    for unit, scale in (("GiB", GiB), ("MiB", MiB), ("KiB", KiB)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} B"


def _append(segments: list[Segment], offset: int, length: int, mode: str) -> None:
    if length <= 0:
        return
    if segments and segments[-1].mode == mode and segments[-1].end == offset:
        last = segments.pop()
        segments.append(Segment(last.offset, last.length + length, mode))
    else:
        segments.append(Segment(offset, length, mode))


def _whole_disk(disk: Disk, scheme: str, reason: str, warn: Callable[[str], None]) -> ContentPlan:
    warn(f"{disk.path}: the whole disk is sent at block level: {reason}")
    return ContentPlan([Segment(0, disk.size, BLOCK)] if disk.size else [], scheme, whole_disk_reason=reason)


def _ambiguity(disk: Disk, table: Table) -> str | None:
    """Why the table allows two readings (partitions.py's, or a filesystem on the whole disk beside it)."""
    if table.ambiguous:
        return table.ambiguous
    if table.scheme != "none" and all(p.start > 0 for p in table.partitions):
        try:
            fs = signatures.at_start(Reader(disk, Partition(0, 0, disk.size, "")).at, disk.size)
        except Unusable:  # its first 128 KiB cannot be read: the export fails there anyway
            fs = None
        if fs:
            return f"a {fs} filesystem starts at the disk's first byte beside its {table.scheme} partition table"
    return None


def _partition_plan(disk: Disk, part: Partition, table: Table,
                    warn: Callable[[str], None]) -> tuple[PartitionPlan, FsMap | None]:
    """How one partition is sent: its plan line and its used ranges (None: block level)."""
    why = table.block.get(part.number)
    if why:
        if why != EXTENDED_NODE:
            warn(f"{disk.path}: {part.name} {why}: sent at block level")
        return PartitionPlan(part.name, part.start, part.length, "", "", BLOCK, 0, why), None
    try:
        fsmap = used_map(disk, part)
    except Unusable as e:
        warn(f"{disk.path}: {part.name}: {e}: sent at block level")
        return PartitionPlan(part.name, part.start, part.length, e.fs, "", BLOCK, 0, str(e)), None
    if fsmap is None:
        reason = "BIOS boot partition" if part.kind.startswith("21686148") else "no filesystem recognised"
        return PartitionPlan(part.name, part.start, part.length, "", "", BLOCK, 0, reason), None
    used = sum(length for _, length in fsmap.used)
    return PartitionPlan(part.name, part.start, part.length, fsmap.fs, fsmap.source, USED, used), fsmap


def plan_content(disk: Disk, warn: Callable[[str], None]) -> ContentPlan:
    """Read the disk's layout and maps (metadata reads only) and return what to send."""
    try:
        table = read_table(disk)
        reason = _ambiguity(disk, table)
    except (ValueError, IndexError, OverflowError, struct.error) as e:  # never expected: the disk at block level
        return _whole_disk(disk, "unknown", f"its partition table could not be parsed ({type(e).__name__})", warn)
    if reason:
        return _whole_disk(disk, table.scheme, reason, warn)
    for note in table.notes:
        warn(f"{disk.path}: {note}")
    plan = ContentPlan([], table.scheme)
    pos = 0
    for part in sorted(table.partitions, key=lambda p: (p.start, p.number)):
        if part.start < pos:  # overlaps an earlier one: both are block level already; its bytes past pos follow
            plan.partitions.append(PartitionPlan(part.name, part.start, part.length, "", "", BLOCK, 0,
                                                 table.block.get(part.number, "overlaps another partition")))
            _append(plan.segments, pos, part.end - pos, BLOCK)
            pos = max(pos, part.end)
            continue
        _append(plan.segments, pos, part.start - pos, BLOCK)
        pos = part.end
        line, fsmap = _partition_plan(disk, part, table, warn)
        plan.partitions.append(line)
        if fsmap is None:
            _append(plan.segments, part.start, part.length, BLOCK)
            continue
        for offset, length in fsmap.used:
            _append(plan.segments, part.start + offset, length, USED)
        _append(plan.segments, part.start + fsmap.covered, part.length - fsmap.covered, BLOCK)
    _append(plan.segments, pos, disk.size - pos, BLOCK)
    return plan


MAX_PLAN_PARTITIONS = 64  # recorded in a stream's header (bounded: the header's JSON is at most 64 KiB)
MAX_TEXT = 200


def _clean(text: object, limit: int = MAX_TEXT) -> str:
    """A string from a stream header made safe to print: printable, one line, bounded."""
    if not isinstance(text, str):
        raise ValueError("not a string")
    return "".join(c if c.isprintable() else "?" for c in text)[:limit]


def header_record(plan: ContentPlan) -> dict[str, object]:
    """The plan as it goes into the stream's header: bounded in partitions and text."""
    parts = []
    for p in plan.partitions[:MAX_PLAN_PARTITIONS]:
        d = asdict(p)
        d["reason"] = p.reason[:MAX_TEXT]
        parts.append(d)
    record: dict[str, object] = {"scheme": plan.scheme, "whole_disk_reason": plan.whole_disk_reason[:MAX_TEXT],
                                 "partitions": parts}
    if len(plan.partitions) > MAX_PLAN_PARTITIONS:
        record["more_partitions"] = len(plan.partitions) - MAX_PLAN_PARTITIONS
    return record


def describe_record(record: Any) -> list[str]:  # JSON from a stream header: anything
    """The lines of a plan read back from a stream's header (hostile input: checked, cleaned); [] if malformed."""
    try:
        plan = ContentPlan([], _clean(record["scheme"], 16), whole_disk_reason=_clean(record["whole_disk_reason"]))
        for d in record["partitions"][:MAX_PLAN_PARTITIONS]:
            numbers = [d[k] for k in ("start", "length", "used")]
            if not all(type(n) is int and 0 <= n < 1 << 64 for n in numbers) or d["mode"] not in (USED, BLOCK):
                return []
            plan.partitions.append(PartitionPlan(_clean(d["name"], 32), d["start"], d["length"], _clean(d["fs"], 16),
                                                 _clean(d["source"], 64), d["mode"], d["used"], _clean(d["reason"])))
        more = record.get("more_partitions", 0)
    except (KeyError, TypeError, ValueError, AttributeError):
        return []
    lines = plan.describe()
    if type(more) is int and more > 0:
        lines.append(f"… and {more} more partitions")
    return lines
