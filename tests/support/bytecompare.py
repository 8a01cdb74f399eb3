"""Byte-range comparisons of two disk images, counted in 4 KiB blocks (fast enough for a few hundred MiB)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

BLOCK = 4096
SECTOR = 512  # the unit of "the source's bytes or zeros": a FAT cluster can be one sector
CHUNK = 8 << 20
ZERO = bytes(BLOCK)


@dataclass(frozen=True)
class Difference:
    blocks: int  # 4 KiB blocks (or shorter tails) that differ
    first: int  # byte offset of the first one

    def __str__(self) -> str:
        return f"{self.blocks} blocks of 4 KiB differ, the first at byte {self.first}"


def _blocks(a: bytes, b: bytes, base: int, allow_zero: bool) -> tuple[int, int | None]:
    """4 KiB blocks where ``b`` differs from ``a`` (with ``allow_zero``: in a 512-byte sector that is not zero)."""
    count, first = 0, None
    for i in range(0, len(a), BLOCK):
        x, y = a[i:i + BLOCK], b[i:i + BLOCK]
        if x == y or (allow_zero and (y == ZERO[:len(y)] or all(
                y[j:j + SECTOR] in (x[j:j + SECTOR], ZERO[:len(y) - j][:SECTOR]) for j in range(0, len(y), SECTOR)))):
            continue
        count += 1
        first = base + i if first is None else first
    return count, first


def differences(a: Path, b: Path, ranges, *, allow_zero: bool = False) -> Difference | None:
    """Where ``b`` differs from ``a`` within ``ranges`` ((start, end) byte pairs); with ``allow_zero``
    a sector of ``b`` that is all zeros counts as equal.  None if nothing differs."""
    total, first = 0, None
    with open(a, "rb") as fa, open(b, "rb") as fb:
        for start, end in ranges:
            pos = start
            while pos < end:
                n = min(CHUNK, end - pos)
                x, y = os.pread(fa.fileno(), n, pos), os.pread(fb.fileno(), n, pos)
                if x != y:
                    count, where = _blocks(x, y, pos, allow_zero)
                    total += count
                    first = where if first is None else first
                pos += n
    return Difference(total, first) if total else None


def identical(a: Path, b: Path, start: int, length: int) -> bool:
    return differences(a, b, [(start, start + length)]) is None


def extract(image: Path, start: int, length: int, out: Path) -> Path:
    """Copy ``length`` bytes at ``start`` of ``image`` into the file ``out`` (for tools that take a whole image)."""
    with open(image, "rb") as src, open(out, "wb") as dst:
        left, pos = length, start
        while left:
            n = os.copy_file_range(src.fileno(), dst.fileno(), min(left, 1 << 30), pos)
            if n <= 0:
                raise OSError(f"short copy from {image} at {pos}")
            pos += n
            left -= n
    return out


def put(image: Path, start: int, part: Path) -> None:
    """Write the file ``part`` back into ``image`` at ``start`` (after a tool changed an extracted copy)."""
    with open(part, "rb") as src, open(image, "r+b") as dst:
        left, pos = part.stat().st_size, 0
        while left:
            n = os.copy_file_range(src.fileno(), dst.fileno(), min(left, 1 << 30), pos, start + pos)
            if n <= 0:
                raise OSError(f"short copy into {image} at {start + pos}")
            pos += n
            left -= n


def subtract(runs: list[tuple[int, int]], holes: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The parts of sorted, disjoint ``runs`` outside every hole (all pairs are [start, end))."""
    out, holes, h = [], sorted(holes), 0
    for a, b in runs:
        while h < len(holes) and holes[h][1] <= a:
            h += 1
        k = h
        while a < b and k < len(holes) and holes[k][0] < b:
            if holes[k][0] > a:
                out.append((a, holes[k][0]))
            a = max(a, holes[k][1])
            k += 1
        if a < b:
            out.append((a, b))
    return out
