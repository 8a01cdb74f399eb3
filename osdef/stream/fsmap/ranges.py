"""Block ranges for the maps: collected out of order, merged, cut by holes, and checked for containment."""

from __future__ import annotations

from array import array
from bisect import bisect_right
from collections.abc import Iterable

from osdef.disk import filemap

MAX_RUNS = 4 << 18  # runs kept before merging: a map more fragmented than this is refused


class Runs:
    """Used block ranges [start, end), collected out of order, merged at the end."""

    def __init__(self) -> None:
        self.runs: list[tuple[int, int]] = []

    def add(self, start: int, count: int) -> None:
        if count > 0:
            self.runs.append((start, start + count))
            if len(self.runs) > MAX_RUNS:
                from osdef.stream.fsmap.base import Unusable

                raise Unusable("its map is too fragmented to keep")

    def add_bits(self, first: int, bits: int) -> None:
        """Add the runs of set bits of ``bits`` (bit i: block first + i)."""
        pos = 0
        while bits:
            low = (bits & -bits).bit_length() - 1
            bits >>= low
            pos += low
            ones = (bits ^ (bits + 1)).bit_length() - 1
            self.add(first + pos, ones)
            bits >>= ones
            pos += ones

    def merged(self, holes: Iterable[tuple[int, int]] = ()) -> list[tuple[int, int]]:
        """The runs joined (osdef.disk.filemap.joined), in order, with the ``holes`` [start, end) cut out."""
        return cut(filemap.joined(self.runs), holes)


def cut(runs: list[tuple[int, int]], holes: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    """Ordered, disjoint ``runs`` minus the ``holes`` (any order, may overlap)."""
    holes = sorted(h for h in holes if h[0] < h[1])
    if not holes:
        return runs
    result = []
    h = 0
    for a, b in runs:
        while h < len(holes) and holes[h][1] <= a:
            h += 1
        k = h
        while a < b and k < len(holes) and holes[k][0] < b:
            ha, hb = holes[k]
            if ha > a:
                result.append((a, ha))
            a = max(a, hb)
            k += 1
        if a < b:
            result.append((a, b))
    return result


class RunIndex:
    """Ordered, disjoint, merged ``runs`` [start, end), for "is this range inside?" asked many times.

    A lookup first tries the run the previous one ended in (a filesystem's extents come
    mostly in order), then bisects: memory is that of the runs, however many ranges are asked.
    """

    def __init__(self, runs: list[tuple[int, int]]):
        self.starts = array("Q", (a for a, _ in runs))
        self.ends = array("Q", (b for _, b in runs))
        self.last = 0

    def outside(self, start: int, count: int) -> int | None:
        """The first block of [start, start + count) that no run holds, or None."""
        i = self.last
        if not (i < len(self.starts) and self.starts[i] <= start < self.ends[i]):
            i = bisect_right(self.starts, start) - 1
            if i < 0 or self.ends[i] <= start:
                return start
            self.last = i
        if start + count > self.ends[i]:  # merged runs: past this run's end is a block of none
            return self.ends[i]
        return None


def contains_all(runs: list[tuple[int, int]], ranges: Iterable[tuple[int, int]]) -> int | None:
    """The first block of ``ranges`` ((start, count), any order) outside the ordered, disjoint ``runs``; None."""
    index = RunIndex(runs)
    for start, count in ranges:
        missing = index.outside(start, count)
        if missing is not None:
            return missing
    return None
