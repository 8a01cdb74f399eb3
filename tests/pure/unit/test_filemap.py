"""osdef.disk.filemap without root: the range arithmetic (against byte sets), SEEK_DATA on real sparse
files (against their bytes), the choice of map, an RBD image's map from a stand-in volume, one-line failures."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from osdef.disk import filemap
from osdef.disk.device import Disk
from osdef.disk.units import MiB
from osdef.stream import blockio, extents
from osdef.stream.blockio import BlockIOError

BLOCK = 4096
extent_lists = st.lists(st.tuples(st.integers(0, 200), st.integers(0, 40)), max_size=12)


def _bytes(ranges) -> set[int]:
    return {b for offset, length in ranges for b in range(offset, offset + length)}


def _assert_ordered(ranges) -> None:
    """Ordered, disjoint, not touching, non-empty: what every map yields."""
    for (o1, n1), (o2, _) in zip(ranges, ranges[1:]):
        assert o1 + n1 < o2
    assert all(n > 0 for _, n in ranges)


@given(extent_lists)
def test_merged_covers_the_same_bytes_in_order(extents_):
    got = filemap.merged(extents_)
    _assert_ordered(got)
    assert _bytes(got) == _bytes(extents_)


@given(extent_lists, st.integers(0, 250), st.integers(0, 250))
def test_shifted_is_the_intersection_with_the_device_moved_to_zero(extents_, offset, size):
    ordered = filemap.merged(extents_)  # a file's extents: ordered and disjoint
    got = list(filemap.shifted(ordered, offset, size))
    _assert_ordered(got)
    assert _bytes(got) == {b - offset for b in _bytes(ordered) if offset <= b < offset + size}


def _sparse_file(path: Path, size: int, writes) -> Path:
    with open(path, "wb") as f:
        f.truncate(size)
        for block, count in writes:
            f.seek(block * BLOCK)
            f.write(b"\xa5" * min(count * BLOCK, size - block * BLOCK))
    return path


@settings(max_examples=60, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.integers(1, 64), st.lists(st.tuples(st.integers(0, 63), st.integers(1, 6)), max_size=6), st.data())
def test_seek_extents_hold_every_written_byte_of_a_sparse_file(tmp_path, blocks, writes, data):
    """Against the file's own bytes: every non-zero byte of [start, end) lies in an extent inside it."""
    writes = [(b, n) for b, n in writes if b < blocks]
    size = blocks * BLOCK - data.draw(st.integers(0, BLOCK - 1))
    path = _sparse_file(tmp_path / f"f{os.getpid()}-{len(writes)}-{size}", size, writes)
    start = data.draw(st.integers(0, size))
    end = data.draw(st.integers(start, size))
    content = path.read_bytes()
    fd = os.open(path, os.O_RDONLY)
    try:
        got = list(filemap.seek_extents(fd, start, end))
    finally:
        os.close(fd)
        path.unlink()
    assert all(start <= o and o + n <= end for o, n in got)
    for (o1, n1), (o2, _) in zip(got, got[1:]):
        assert o1 + n1 <= o2
    covered = _bytes(got)
    assert all(b in covered for b in range(start, end) if content[b])


def test_a_file_gets_its_extents_and_an_empty_one_none(tmp_path):
    path = _sparse_file(tmp_path / "d", 4 * MiB, [(1, 1), (512, 2)])
    with blockio.open_disk(path, write=False) as disk, filemap.filemap(disk) as found:
        assert (found.kind, found.mapped, found.source, found.shift) == ("file", True, disk, 0)
        assert list(found.ranges()) == [(BLOCK, BLOCK), (2 * MiB, 2 * BLOCK)]
    hole = _sparse_file(tmp_path / "h", MiB, [])
    empty = _sparse_file(tmp_path / "e", 0, [])
    for path in (hole, empty):  # SEEK_DATA answers ENXIO: a map with nothing in it, not "no map"
        with blockio.open_disk(path, write=False) as disk:
            found = filemap.filemap(disk)
            assert found.mapped and list(found.ranges()) == []


def _refusing(error: int, whence: int):
    real = os.lseek

    def lseek(fd, pos, how):
        if how == whence:
            raise OSError(error, os.strerror(error))
        return real(fd, pos, how)
    return lseek


@pytest.mark.parametrize("error", [errno.EINVAL, errno.EOPNOTSUPP])
def test_a_filesystem_without_seek_data_has_no_map(tmp_path, monkeypatch, error):
    path = _sparse_file(tmp_path / "d", 3 * MiB, [(3, 1)])
    with blockio.open_disk(path, write=False) as disk:
        monkeypatch.setattr(os, "lseek", _refusing(error, os.SEEK_DATA))
        found = filemap.filemap(disk)
        assert (found.kind, found.mapped) == ("none", False)
        assert list(found.ranges()) == [(0, 3 * MiB)]  # the caller reads everything
        assert extents.plan_extents(disk) is None
        with pytest.raises(BlockIOError, match="lost its allocation map"):
            next(extents.extent_spans(disk, bytearray(2 * extents.READ_SIZE)))


def test_a_failing_listing_is_the_disks_one_line_error(tmp_path, monkeypatch):
    path = _sparse_file(tmp_path / "d", MiB, [(3, 1)])
    with blockio.open_disk(path, write=False) as disk:
        monkeypatch.setattr(os, "lseek", _refusing(errno.EIO, os.SEEK_DATA))
        with pytest.raises(BlockIOError) as info:
            filemap.filemap(disk)
        assert str(info.value) == f"cannot list the data extents of {path}: Input/output error"
        monkeypatch.setattr(os, "lseek", _refusing(errno.EIO, os.SEEK_HOLE))
        with pytest.raises(BlockIOError, match="^cannot list the data extents of .*: Input/output error$"):
            list(filemap.FileMap(disk).ranges())


def test_an_empty_disk_without_a_map_has_no_range(tmp_path):
    with blockio.open_disk(_sparse_file(tmp_path / "e", 0, []), write=False) as disk:
        assert list(filemap.NoMap(disk).ranges()) == []


class FakeRbdVolume:
    """What osdef.disk.rbd.RbdVolume gives filemap: diff_iterate's extents, and reads."""

    def __init__(self, data: bytearray, reported, error: OSError | None = None):
        self.data, self.reported, self.error = data, reported, error

    def diff_iterate(self, seen) -> None:
        if self.error is not None:
            raise self.error
        for offset, length, exists in self.reported:
            seen(offset, length, exists)

    def read_into(self, view, offset: int) -> None:
        view[:] = self.data[offset:offset + len(view)]

    def close(self) -> None:
        pass


def _rbd_disk(volume: FakeRbdVolume) -> Disk:
    return Disk("rbd:pool/image", -1, len(volume.data), False, error=BlockIOError, volume=volume)


@given(st.lists(st.tuples(st.integers(0, 15), st.integers(0, 4), st.booleans()), max_size=10))
def test_an_rbd_images_map_is_what_diff_iterate_reports_existing_joined(reported):
    unit = 4096
    volume = FakeRbdVolume(bytearray(20 * unit), [(o * unit, n * unit, e) for o, n, e in reported])
    found = filemap.filemap(_rbd_disk(volume))
    assert (found.kind, found.mapped, found.shift) == ("rbd", True, 0)
    got = list(found.ranges())
    _assert_ordered(got)
    assert _bytes(got) == _bytes((o * unit, n * unit) for o, n, e in reported if e)


def test_an_rbd_image_is_planned_and_read_from_its_map():
    data = bytearray(12 * MiB)
    data[MiB:MiB + 5] = b"osdef"
    data[9 * MiB:10 * MiB] = b"\x01" * MiB
    # out of order, and a range reported as not existing (a discarded object): the map sorts and drops it
    volume = FakeRbdVolume(data, [(8 * MiB, 4 * MiB, True), (0, 4 * MiB, True), (4 * MiB, 4 * MiB, False)])
    disk = _rbd_disk(volume)
    assert list(extents.data_ranges(disk)) == [(0, 4 * MiB), (8 * MiB, 4 * MiB)]
    plan = extents.plan_extents(disk)
    spans = [(s.offset, bytes(s.data)) for s in extents.extent_spans(disk, bytearray(2 * extents.READ_SIZE))]
    assert (plan.records, plan.data_bytes) == (len(spans), sum(len(d) for _, d in spans)) == (2, 8 * MiB)
    assert spans == [(0, bytes(data[:4 * MiB])), (8 * MiB, bytes(data[8 * MiB:]))]


def test_a_failing_diff_iterate_is_one_line_naming_the_image():
    disk = _rbd_disk(FakeRbdVolume(bytearray(MiB), [], OSError(errno.ETIMEDOUT, "Connection timed out")))
    with pytest.raises(BlockIOError) as info:
        extents.plan_extents(disk)
    assert str(info.value) == "cannot list the data extents of rbd:pool/image: Connection timed out"
