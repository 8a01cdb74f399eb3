"""osdef.disk on regular files: the open's type check, sizes, zeroing, the sparse copy engine (no root)."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest

from osdef.disk import device, pipes, zeroing
from osdef.disk.copy import SparseWriter, copy_sparse
from osdef.disk.units import MiB
from osdef.errors import GuestError, StreamError
from osdef.stream.blockio import BlockIOError


def _file(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("error", [GuestError, BlockIOError])
def test_open_refuses_a_fifo_without_hanging_in_the_callers_terms(tmp_path, error):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(error, match="not a regular file or block device"):
        device.open_disk(fifo, write=True, error=error)
    with pytest.raises(error, match="cannot open disk"):
        device.open_disk(tmp_path / "missing", write=False, error=error)


def test_size_and_a_read_past_the_end_raise_the_disks_error(tmp_path):
    disk_path = _file(tmp_path / "d", b"x" * 5000)
    assert device.disk_size(disk_path, error=GuestError) == 5000
    with device.open_disk(disk_path, write=False, error=GuestError) as disk:
        assert (disk.size, disk.is_block, disk.discard_zeroes) == (5000, False, False)
        with pytest.raises(GuestError, match="ended at offset 5000"):
            device.read_at(disk, memoryview(bytearray(100)), 4950)
    assert disk.fd == -1


def test_zero_range_punches_a_hole_clipped_to_the_disk(tmp_path):
    disk_path = _file(tmp_path / "d", b"\xee" * (4 * MiB))
    with device.open_disk(disk_path, write=True, error=StreamError) as disk:
        zeroing.zero_range(disk, MiB, 10 * MiB)
        zeroing.zero_range(disk, 100, 0)
    data = disk_path.read_bytes()
    assert len(data) == 4 * MiB and data[:MiB] == b"\xee" * MiB and data[MiB:] == bytes(3 * MiB)
    assert os.stat(disk_path).st_blocks * 512 <= MiB + 64 * 1024


def test_wipe_ends_zeroes_the_first_and_last_mib(tmp_path):
    disk_path = _file(tmp_path / "d", b"\xee" * (3 * MiB))
    with device.open_disk(disk_path, write=True, error=GuestError) as disk:
        zeroing.wipe_ends(disk)
    data = disk_path.read_bytes()
    assert data[:MiB] == bytes(MiB) and data[-MiB:] == bytes(MiB) and data[MiB:2 * MiB] == b"\xee" * MiB


def test_sparse_writer_defines_the_gaps_and_counts(tmp_path):
    disk_path = _file(tmp_path / "d", b"\xee" * (2 * MiB))
    with device.open_disk(disk_path, write=True, error=StreamError) as disk:
        writer = SparseWriter(disk, 100)
        writer.write(1000, b"abc")
        writer.zero_until(2 * MiB)
        assert (writer.data_bytes, writer.zeroed_bytes, writer.touched) == (3, 2 * MiB - 103, True)
    data = disk_path.read_bytes()
    assert data[:100] == b"\xee" * 100 and data[100:1000] == bytes(900) and data[1000:1003] == b"abc"
    assert data[1003:] == bytes(2 * MiB - 1003)


def test_copy_sparse_defines_more_than_the_stream_and_refuses_a_longer_one(tmp_path):
    disk_path = _file(tmp_path / "d", b"\xee" * (4 * MiB))
    with device.open_disk(disk_path, write=True, error=GuestError) as disk:
        stats = copy_sparse(io.BytesIO(b"A" * 10 + bytes(MiB)), disk, 0, 4 * MiB, defined=3 * MiB)
        assert (stats.bytes_read, stats.bytes_written) == (MiB + 10, MiB)
        data = disk_path.read_bytes()
        assert data[:10] == b"A" * 10 and data[10:3 * MiB] == bytes(3 * MiB - 10)
        assert data[3 * MiB:] == b"\xee" * MiB
        with pytest.raises(GuestError, match="the disk image is larger than the 1 MiB it may occupy"):
            copy_sparse(io.BytesIO(b"B" * (2 * MiB)), disk, 0, MiB, defined=MiB, what="disk image")


def test_enlarge_pipe_grows_a_pipe_and_ignores_a_file(tmp_path):
    r, w = os.pipe()
    try:
        assert pipes.enlarge_pipe(w) >= 64 * 1024
    finally:
        os.close(r)
        os.close(w)
    with open(_file(tmp_path / "f", b""), "rb") as f:
        assert pipes.enlarge_pipe(f.fileno()) == 0
