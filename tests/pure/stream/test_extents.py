"""Extent discovery: SEEK_DATA ranges, chunk pieces, non-zero runs, and reads planned from a scan."""

from __future__ import annotations

from hypothesis import given, settings, strategies as st

from osdef.stream import blockio, extents
from tests.support.stream import MiB, Layout


@settings(max_examples=200, deadline=None, database=None)
@given(st.lists(st.tuples(st.integers(0, 20 * MiB), st.integers(1, 5 * MiB)), max_size=5))
def test_pieces_cover_ranges_within_single_chunks(ranges):
    ranges = sorted(ranges)
    got = list(extents.pieces(iter(ranges)))
    assert sum(n for _, n in got) == sum(n for _, n in ranges)
    for off, n in got:
        assert off // extents.CHUNK == (off + n - 1) // extents.CHUNK


@settings(max_examples=300, deadline=None, database=None)
@given(st.integers(0, 3 * extents.BLOCK), st.integers(1, 40_000), st.data())
def test_nonzero_runs_keep_every_nonzero_byte_and_only_nonzero_blocks(offset, size, data):
    buf = bytearray(size)
    for pos in data.draw(st.lists(st.integers(0, size - 1), max_size=6)):
        buf[pos] = 1 + pos % 255
    runs = list(extents.nonzero_runs(memoryview(buf), offset))
    covered = bytearray(size)
    last = -1
    for start, end in runs:
        assert last < start < end <= size  # ordered, non-adjacent, non-empty
        covered[start:end] = buf[start:end]
        # run ends are block-aligned on the disk unless at the view's edge
        assert start == 0 or (offset + start) % extents.BLOCK == 0
        assert end == size or (offset + end) % extents.BLOCK == 0
        last = end
    assert covered == buf


def test_data_ranges_follow_allocation(tmp_path):
    src = Layout(10 * MiB, ((5000, 10, "random"), (4 * MiB, 2 * MiB, "random")), 1).create(tmp_path / "s")
    with blockio.open_disk(src, write=False) as disk:
        assert list(extents.data_ranges(disk)) == [(4096, 4096), (4 * MiB, 2 * MiB)]


def test_spans_skip_chunks_the_scan_found_empty(tmp_path):
    layout = Layout(20 * MiB, ((0, 12 * MiB, "random"), (3 * MiB, 2 * MiB, "zeros"), (9 * MiB, MiB, "zeros")), 2)
    src = layout.create(tmp_path / "s")
    with blockio.open_disk(src, write=False) as disk:
        assert list(extents.spans(disk)) == [(0, 8 * MiB), (8 * MiB, 4 * MiB)]
        scan = extents.scan_disk(disk, bytearray(extents.READ_SIZE))
        assert scan.data_bytes == 9 * MiB and scan.bytes_read == 12 * MiB
        assert list(extents.spans(disk, scan)) == [(0, 3 * MiB), (5 * MiB, 3 * MiB), (8 * MiB, MiB),
                                                   (10 * MiB, 2 * MiB)]
