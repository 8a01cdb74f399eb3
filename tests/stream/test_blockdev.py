"""Round trips on real loop block devices: no SEEK_DATA (full read, zero skip), BLKZEROOUT on dirty targets."""

from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from osdef.errors import StreamError
from osdef.stream import blockio, extents
from tests.stream.conftest import (MiB, Layout, LoopDevices, assert_restored, assert_wiped, export_to_file,
                                   fill_random, import_bytes, import_from_file, layouts, read_all)

pytestmark = pytest.mark.blockdev


def test_seek_data_on_a_block_device_is_einval(loops, tmp_path):
    dev = loops.attach(Layout(2 * MiB, ((MiB, 10, "random"),), 1).create(tmp_path / "s"))
    fd = os.open(dev, os.O_RDONLY)
    try:
        with pytest.raises(OSError) as info:
            os.lseek(fd, 0, os.SEEK_DATA)
        assert info.value.errno == errno.EINVAL
    finally:
        os.close(fd)
    with blockio.open_disk(dev, write=False) as disk:
        assert disk.is_block and disk.size == 2 * MiB
        assert list(extents.data_ranges(disk)) == [(0, 2 * MiB)]


@settings(max_examples=12, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(layouts(align=512), st.integers(0, 2048), st.sampled_from(["none", "zstd"]))
def test_loop_round_trip_onto_dirty_loop(loops: LoopDevices, layout: Layout, extra_sectors: int, compression: str):
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        try:
            src = layout.create(d / "src")
            src_dev = loops.attach(src)
            n, announced = export_to_file(src_dev, d / "stream", compression=compression)
            assert n == (d / "stream").stat().st_size
            if compression == "none":
                assert n == announced
            tgt_dev = loops.attach(fill_random(d / "tgt", layout.size + extra_sectors * 512, seed=layout.seed))
            result, size_line = import_from_file(d / "stream", tgt_dev)
            assert size_line == (b"%d\n" % n if compression == "none" else b"")
            assert result.data_bytes <= src.stat().st_blocks * 512
            assert_restored(src, tgt_dev)
        finally:
            loops.detach_all()


def test_file_stream_and_loop_stream_carry_the_same_data(loops, tmp_path):
    layout = Layout(10 * MiB, ((0, 5000, "random"), (3 * MiB, 2 * MiB, "random"), (5 * MiB, MiB, "zeros"),
                               (10 * MiB - 512, 512, "random")), 8)
    src = layout.create(tmp_path / "s")
    n_file, _ = export_to_file(src, tmp_path / "a")
    n_dev, _ = export_to_file(loops.attach(src), tmp_path / "b")
    # Block devices are read in 1 MiB chunks, files by extents: record boundaries may differ,
    # but neither sends the allocated zeros and the sizes are within a few record headers.
    assert abs(n_file - n_dev) < 200
    assert n_dev < 3 * MiB + 10_000


def test_raw_export_and_raw_import_on_loop(loops, tmp_path):
    src = Layout(3 * MiB + 512, ((512, 700_000, "random"),), 4).create(tmp_path / "s")
    n, announced = export_to_file(loops.attach(src), tmp_path / "raw", fmt="raw")
    assert n == announced == src.stat().st_size
    assert read_all(tmp_path / "raw") == read_all(src)
    tgt_dev = loops.attach(fill_random(tmp_path / "t", 4 * MiB))
    result = import_bytes(read_all(tmp_path / "raw"), tgt_dev)
    assert result.kind == "raw"
    assert_restored(src, tgt_dev)


def test_failed_import_wipes_a_loop_device(loops, tmp_path):
    tgt_dev = loops.attach(fill_random(tmp_path / "t", 5 * MiB))
    with pytest.raises(StreamError, match="empty"):
        import_bytes(b"", tgt_dev)
    assert_wiped(tgt_dev)


def test_zero_range_on_block_device_handles_unaligned_edges(loops, tmp_path):
    tgt_dev = loops.attach(fill_random(tmp_path / "t", 2 * MiB))
    with blockio.open_disk(tgt_dev, write=True) as disk:
        blockio.zero_range(disk, 100, 5000)
        blockio.sync(disk)
    data = read_all(tgt_dev)
    assert data[100:5100] == bytes(5000) and data[99] | data[5100] != 0 or data[:100] != bytes(100)
    assert read_all(tmp_path / "t")[100:5100] == bytes(5000)
