"""What a filesystem-aware export sends: the disk cut into used, block-level and free segments.

The disk's partition table (osdef.stream.partitions) and each partition's
used-block map (osdef.stream.fsmap) give the plan:

* ``used``: bytes a filesystem uses, sent as they are (their size is known
  from the map, so the data is read once);
* ``block``: bytes sent as the block-level export always did (allocation
  map, all-zero blocks dropped): everything outside the partitions (tables,
  gaps, a GPT backup), a partition with no recognised filesystem (a BIOS boot
  partition, an unknown one), and one whose map could not be trusted;
* anything else is free space of a filesystem: not sent, it arrives as zeros.

A partition that falls back to block level while it holds a recognised
filesystem gets one ``warn`` line naming it and why.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass

from osdef.disk.device import Disk
from osdef.stream.fsmap import Unusable, used_map
from osdef.stream.partitions import read_table

USED, BLOCK = "used", "block"


@dataclass(frozen=True)
class Segment:
    offset: int
    length: int
    mode: str  # USED or BLOCK

    @property
    def end(self) -> int:
        return self.offset + self.length


@dataclass
class ContentPlan:
    """The ordered, non-overlapping segments to send; free space is what lies between them."""

    segments: list[Segment]
    mapped_partitions: int = 0

    def ranges(self, mode: str | None = None) -> list[tuple[int, int]]:
        return [(s.offset, s.length) for s in self.segments if mode is None or s.mode == mode]

    @property
    def used_bytes(self) -> int:
        return sum(s.length for s in self.segments if s.mode == USED)


def _append(segments: list[Segment], offset: int, length: int, mode: str) -> None:
    if length <= 0:
        return
    if segments and segments[-1].mode == mode and segments[-1].end == offset:
        last = segments.pop()
        segments.append(Segment(last.offset, last.length + length, mode))
    else:
        segments.append(Segment(offset, length, mode))


def plan_content(disk: Disk, warn: Callable[[str], None]) -> ContentPlan:
    """Read the disk's layout and maps (metadata reads only) and return what to send."""
    try:
        table = read_table(disk)
    except (ValueError, IndexError, OverflowError, struct.error) as e:  # never expected: the table at block level
        warn(f"{disk.path}: its partition table could not be parsed ({type(e).__name__}): sent at block level")
        return ContentPlan([Segment(0, disk.size, BLOCK)] if disk.size else [])
    for note in table.notes:
        warn(f"{disk.path}: {note}")
    segments: list[Segment] = []
    mapped = 0
    pos = 0
    for part in sorted(table.partitions, key=lambda p: p.start):
        if part.start < pos:  # overlaps the previous one: its bytes past ``pos`` fill the next gap (block level)
            warn(f"{disk.path}: {part.name} overlaps another partition: sent at block level")
            continue
        _append(segments, pos, part.start - pos, BLOCK)
        pos = part.end
        if part.number in table.overlapping:
            warn(f"{disk.path}: {part.name} overlaps another partition: sent at block level")
            _append(segments, part.start, part.length, BLOCK)
            continue
        try:
            fsmap = used_map(disk, part)
        except Unusable as e:
            warn(f"{disk.path}: {part.name}: {e}: sent at block level")
            fsmap = None
        if fsmap is None:
            _append(segments, part.start, part.length, BLOCK)
            continue
        mapped += 1
        for offset, length in fsmap.used:
            _append(segments, part.start + offset, length, USED)
        _append(segments, part.start + fsmap.covered, part.length - fsmap.covered, BLOCK)
    _append(segments, pos, disk.size - pos, BLOCK)
    return ContentPlan(segments, mapped)
