"""Round trips on real loop block devices: no SEEK_DATA (the backing file's map, or a full read with
zero skip), BLKZEROOUT on dirty targets."""

from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from osdef.disk import device, filemap, loop, zeroing
from osdef.errors import StreamError
from osdef.stream import blockio, extents
from tests.support.stream import (MiB, Layout, LoopDevices, assert_restored, assert_wiped, export_to_file,
                                   fill_random, import_bytes, import_from_file, layouts, read_all, unmapped)

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
        # the backing file's map: only its one data extent is read
        assert list(extents.data_ranges(disk)) == [(MiB, 4096)]
        with unmapped():
            assert list(extents.data_ranges(disk)) == [(0, 2 * MiB)]


def test_loop_map_shifts_by_the_loop_offset(loops, tmp_path):
    src = Layout(4 * MiB, ((512 * 1024, 4096, "random"), (3 * MiB, 8192, "random")), 2).create(tmp_path / "s")
    dev = loops.attach(src, offset=MiB)
    with blockio.open_disk(dev, write=False) as disk:
        assert disk.size == 3 * MiB
        assert list(extents.data_ranges(disk)) == [(2 * MiB, 8192)]
    export_to_file(dev, tmp_path / "stream")
    tgt = tmp_path / "t"
    tgt.write_bytes(b"")
    os.truncate(tgt, 3 * MiB)
    import_from_file(tmp_path / "stream", tgt)
    assert read_all(tgt) == read_all(src)[MiB:]


def test_loop_map_falls_back_to_a_full_read(loops, tmp_path):
    """A deleted backing file cannot be mapped: the device is read whole, and nothing is lost."""
    src = Layout(3 * MiB, ((MiB + 512, 5000, "random"),), 3).create(tmp_path / "s")
    expected = read_all(src)
    dev = loops.attach(src)
    src.unlink()
    with blockio.open_disk(dev, write=False) as disk:
        assert filemap.filemap(disk).kind == "none"
        assert list(extents.data_ranges(disk)) == [(0, 3 * MiB)]
    export_to_file(dev, tmp_path / "stream")
    tgt = fill_random(tmp_path / "t", 3 * MiB)
    import_from_file(tmp_path / "stream", tgt)
    assert read_all(tgt) == expected


def test_loop_map_sees_data_written_through_the_device(loops, tmp_path):
    """Unflushed writes to the device still count: the map is taken after an fsync of the device."""
    src = tmp_path / "s"
    src.write_bytes(b"")
    os.truncate(src, 4 * MiB)
    dev = loops.attach(src)
    fd = os.open(dev, os.O_WRONLY)  # kept open: the last close of a block device would flush it
    try:
        os.pwrite(fd, b"\x5a" * 4096, 2 * MiB)  # buffered in the device's page cache, not yet in src
        with blockio.open_disk(dev, write=False) as disk:
            assert list(extents.data_ranges(disk)) == [(2 * MiB, 4096)]
        # the export reads the backing file: the block must be there, with its bytes
        os.pwrite(fd, b"\xa5" * 4096, 3 * MiB)
        export_to_file(dev, tmp_path / "stream")
    finally:
        os.close(fd)
    tgt = fill_random(tmp_path / "t", 4 * MiB)
    import_from_file(tmp_path / "stream", tgt)
    expected = bytearray(4 * MiB)
    expected[2 * MiB:2 * MiB + 4096] = b"\x5a" * 4096
    expected[3 * MiB:3 * MiB + 4096] = b"\xa5" * 4096
    assert read_all(tgt) == bytes(expected)


@settings(max_examples=12, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(layouts(align=512), st.integers(0, 2048), st.sampled_from(["none", "zstd"]), st.booleans())
def test_loop_round_trip_onto_dirty_loop(loops: LoopDevices, layout: Layout, extra_sectors: int, compression: str,
                                         mapped: bool):
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        try:
            src = layout.create(d / "src")
            src_dev = loops.attach(src)
            if mapped:
                n, announced = export_to_file(src_dev, d / "stream", compression=compression)
            else:
                with unmapped():  # the full-read path other block devices take
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
    dev = loops.attach(src)
    n_file, _ = export_to_file(src, tmp_path / "a")
    n_dev, _ = export_to_file(dev, tmp_path / "b")
    # A loop device is streamed by its backing file's map: the same stream as the file's,
    # allocated zeros included.
    assert read_all(tmp_path / "a") == read_all(tmp_path / "b")
    assert n_dev > 3 * MiB  # 2 MiB of data + 1 MiB of allocated zeros + the small extents
    # Without a map (any other block device) the device is read whole and the zeros are dropped.
    with unmapped():
        n_unmapped, announced = export_to_file(dev, tmp_path / "c")
    assert n_unmapped == announced
    assert 2 * MiB < n_unmapped < 2 * MiB + 16_000  # 4 KiB blocks of the small extents


def test_raw_export_and_raw_import_on_loop(loops, tmp_path):
    src = Layout(3 * MiB + 512, ((512, 700_000, "random"),), 4).create(tmp_path / "s")  # whole sectors
    n, announced = export_to_file(loops.attach(src), tmp_path / "raw", fmt="raw")
    assert n == announced == src.stat().st_size
    assert read_all(tmp_path / "raw") == read_all(src)
    tgt_dev = loops.attach(fill_random(tmp_path / "t", 4 * MiB))
    result = import_bytes(read_all(tmp_path / "raw"), tgt_dev)
    assert result.kind == "raw"
    assert_restored(src, tgt_dev)


def test_failed_import_wipes_a_loop_device(loops, tmp_path):
    src = Layout(4 * MiB, ((0, MiB, "random"), (2 * MiB, 2 * MiB, "random")), 8).create(tmp_path / "s")
    export_to_file(src, tmp_path / "stream")
    tgt_dev = loops.attach(fill_random(tmp_path / "t", 5 * MiB))
    with pytest.raises(StreamError, match="truncated") as info:
        import_bytes(read_all(tmp_path / "stream")[:2 * MiB], tgt_dev)  # cut in record 2: record 1 written
    assert "were zeroed" in str(info.value)
    assert_wiped(tgt_dev)


def test_refusal_before_the_first_write_leaves_a_loop_device_untouched(loops, tmp_path):
    tgt_dev = loops.attach(fill_random(tmp_path / "t", 5 * MiB))
    before = read_all(tgt_dev)
    with pytest.raises(StreamError, match="empty") as info:
        import_bytes(b"", tgt_dev)
    assert "nothing was written" in str(info.value)
    assert read_all(tgt_dev) == before


def test_zero_range_on_block_device_handles_unaligned_edges(loops, tmp_path):
    tgt_dev = loops.attach(fill_random(tmp_path / "t", 2 * MiB))
    with blockio.open_disk(tgt_dev, write=True) as disk:
        zeroing.zero_range(disk, 100, 5000)
        device.sync(disk)
    data = read_all(tgt_dev)
    assert (data[100:5100] == bytes(5000) and data[99] | data[5100] != 0) or data[:100] != bytes(100)
    assert read_all(tmp_path / "t")[100:5100] == bytes(5000)


def _device_writes_only(monkeypatch):
    """Make import write through the loop device, as for one whose backing file osdef.disk.loop will not
    open for writing."""
    real = loop.open_backing
    monkeypatch.setattr(loop, "open_backing",
                        lambda fd, size, write=False: None if write else real(fd, size))


@pytest.mark.parametrize("via", ["backing file", "device"])
def test_import_onto_a_loop_device_keeps_its_backing_file_sparse(loops, tmp_path, monkeypatch, via):
    """Holes become punched holes in the backing file (through the device: discards), never
    BLKZEROOUT (which allocates)."""
    src = Layout(64 * MiB, ((MiB + 512, 100_000, "random"), (40 * MiB, 3 * MiB, "random")), 11).create(tmp_path / "s")
    export_to_file(src, tmp_path / "stream")
    backing = fill_random(tmp_path / "t", 64 * MiB, seed=3)  # old data everywhere
    dev = loops.attach(backing)
    with blockio.open_disk(dev, write=True) as disk:
        assert disk.discard_zeroes
    if via == "device":
        _device_writes_only(monkeypatch)
    import_from_file(tmp_path / "stream", dev)
    assert_restored(src, dev)
    allocated = backing.stat().st_blocks * 512
    assert allocated < 5 * MiB, allocated  # the data (~3.1 MiB), not the 64 MiB of old data


def test_import_through_the_backing_file_leaves_no_stale_device_pages(loops, tmp_path, monkeypatch):
    """The device's page cache held the old bytes; after the import, reads through it see the new ones.

    A holder keeps the device open throughout (the last close would drop the cache anyway)."""
    size = 12 * MiB
    src = Layout(size, ((5000, 3 * MiB, "random"), (9 * MiB, MiB, "random")), 21).create(tmp_path / "s")
    export_to_file(src, tmp_path / "stream")
    dev = loops.attach(fill_random(tmp_path / "t", size, seed=6))
    opened = []
    real = loop.open_backing

    def spy(fd, size, write=False):
        opened.append(write)
        return real(fd, size, write=write)

    monkeypatch.setattr(loop, "open_backing", spy)
    holder = os.open(dev, os.O_RDONLY)
    try:
        old = os.pread(holder, size, 0)  # the device's own page cache now holds the old bytes
        import_from_file(tmp_path / "stream", dev)
        new = os.pread(holder, size, 0)
    finally:
        os.close(holder)
    assert opened == [True], "the import did not write through the backing file"
    assert new != old and new == read_all(src)


def test_a_loop_device_with_an_offset_is_written_through_the_device(loops, tmp_path):
    src = Layout(4 * MiB, ((100, 2 * MiB, "random"),), 22).create(tmp_path / "s")
    export_to_file(src, tmp_path / "stream")
    backing = fill_random(tmp_path / "t", 6 * MiB, seed=7)
    head = read_all(backing)[:MiB]
    dev = loops.attach(backing, offset=MiB)
    with blockio.open_disk(dev, write=True) as disk:
        assert loop.open_backing(disk.fd, disk.size, write=True) is None
        bfd, shift = loop.open_backing(disk.fd, disk.size)  # reading it stays allowed
        os.close(bfd)
        assert shift == MiB
    import_from_file(tmp_path / "stream", dev)
    assert_restored(src, dev)
    assert read_all(backing)[:MiB] == head  # the bytes before the loop offset are not the device's


def test_blkzeroout_fallback_when_discard_is_refused(loops, tmp_path, monkeypatch):
    src = Layout(8 * MiB, ((3 * MiB + 100, 5000, "random"),), 12).create(tmp_path / "s")
    export_to_file(src, tmp_path / "stream")
    dev = loops.attach(fill_random(tmp_path / "t", 8 * MiB, seed=4))
    _device_writes_only(monkeypatch)
    monkeypatch.setattr(zeroing, "_blkdiscard", lambda disk, offset, length: False)
    import_from_file(tmp_path / "stream", dev)
    assert_restored(src, dev)
