"""Block ranges for the maps: collected out of order, merged, cut by holes, and checked for containment."""

from __future__ import annotations

from array import array
from bisect import bisect_right
from collections.abc import Iterable

MAX_RUNS = 4 << 18  # runs kept before merging: a map more fragmented than this is refused


class Runs:
    """Used block ranges [start, end), collected out of order, merged at the end."""

    def __init__(self):
        self.runs: list[tuple[int, int]] = []

    def add(self, start: int, count: int) -> None:
        if count > 0:
            self.runs.append((start, start + count))
            if len(self.runs) > MAX_RUNS:
                from osdef.stream.fsmap import Unusable

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

    def merged(self, holes: list[tuple[int, int]] = ()) -> list[tuple[int, int]]:
        """The runs merged, in order, with the ``holes`` [start, end) cut out."""
        out: list[list[int]] = []
        for a, b in sorted(self.runs):
            if out and a <= out[-1][1]:
                out[-1][1] = max(out[-1][1], b)
            else:
                out.append([a, b])
        return cut([(a, b) for a, b in out], holes)


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


def contains_all(runs: list[tuple[int, int]], ranges: Iterable[tuple[int, int]]) -> int | None:
    """The first block of ``ranges`` ((start, count), any order) outside the ordered, disjoint ``runs``; None.

    Streams: each range is looked up by bisection, so memory stays that of ``runs`` however many
    ranges (a filesystem's extents) come.  ``runs`` are merged, so a range reaching past its run's
    end reaches a block outside every run.
    """
    starts = array("Q", (a for a, _ in runs))
    ends = array("Q", (b for _, b in runs))
    for start, count in ranges:
        i = bisect_right(starts, start) - 1
        if i < 0 or ends[i] <= start:
            return start
        if start + count > ends[i]:
            return ends[i]
    return None
