"""The export plan of a disk, for people: what a filesystem-aware export would send, without sending it.

``osdef export-plan DISK`` (and ``osdef try export --plan``) print the
partition table as the guest's kernel reads it, each partition with its
filesystem, where its map came from and the bytes it would send (used
bytes from the map; at block level, its non-zero 4 KiB blocks, counted by
reading them unless ``count=False``), why a partition falls back, and the
lines an export would warn with.  The disk is opened read-only.
"""

from __future__ import annotations

import os

from osdef.disk.device import Disk
from osdef.disk.units import MiB
from osdef.stream.blockio import open_disk
from osdef.stream.content import BLOCK, ContentPlan, plan_content, size_text
from osdef.stream.extents import data_pieces, data_ranges, intersect

READ = 8 * MiB


def _nonzero(disk: Disk, buf: bytearray, ranges: list[tuple[int, int]]) -> int:
    """Bytes of the non-zero 4 KiB blocks of ``ranges`` (within the disk's allocation map, if it has one)."""
    if not ranges:
        return 0
    kept = list(intersect(data_ranges(disk), ranges))
    return sum(len(data) for _, data in data_pieces(disk, buf, ranges=kept))


def _outside(plan: ContentPlan, size: int) -> list[tuple[int, int]]:
    """The disk's bytes outside every partition of the plan."""
    out, pos = [], 0
    for p in sorted(plan.partitions, key=lambda p: p.start):
        if p.start > pos:
            out.append((pos, p.start - pos))
        pos = max(pos, p.start + p.length)
    if pos < size:
        out.append((pos, size - pos))
    return out


def plan_lines(device: str | os.PathLike[str], *, count: bool = True) -> list[str]:
    """The report, one line each: the disk, its table, each partition, what lies outside, the total."""
    warnings: list[str] = []
    with open_disk(device, write=False) as disk:
        plan = plan_content(disk, warnings.append)
        lines = [f"{disk.path}: {size_text(disk.size)}, " + plan.describe()[0]]
        buf = bytearray(READ)
        block_total = 0
        for p in plan.partitions:
            line = "  " + p.line()
            if count and p.mode == BLOCK and not plan.whole_disk_reason:
                n = _nonzero(disk, buf, [(p.start, p.length)])
                block_total += n
                line += f"; {size_text(n)} of non-zero blocks"
            lines.append(line)
        if count:
            rest = [(0, disk.size)] if plan.whole_disk_reason else _outside(plan, disk.size)
            n = _nonzero(disk, buf, rest)
            block_total += n
            where = "the whole disk" if plan.whole_disk_reason else "outside the partitions"
            lines.append(f"  {where}: {size_text(n)} of non-zero blocks at block level")
            lines.append(f"  to send: {size_text(plan.used_bytes)} used + {size_text(block_total)} at block level")
        else:
            lines.append(f"  to send: {size_text(plan.used_bytes)} used, and the non-zero blocks of the rest")
    return lines + [f"  warning: {w}" for w in warnings]
