"""Export/import round trips on real sparse files: formats, compression, sizes, dirty targets, raw input."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

from osdef.errors import StreamError
from osdef.stream import export_disk, import_disk
from osdef.stream import format as f
from tests.support.stream import (RAW_ALIGN, RAW_MIN, MiB, Layout, assert_restored, export_to_file, fill_random,
                                   import_bytes, import_from_file, layouts, read_all)


def sha(path) -> str:
    return hashlib.sha256(read_all(path)).hexdigest()


@settings(max_examples=25, deadline=None, database=None)
@given(layouts(), st.integers(0, 3 * MiB + 7))
def test_sparse_round_trip_onto_dirty_target(layout: Layout, extra: int):
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        src = layout.create(d / "src")
        before = sha(src)
        n, announced = export_to_file(src, d / "stream", metadata={"instance": "i1", "disk": 0})
        assert sha(src) == before, "export modified the source"
        assert n == announced == (d / "stream").stat().st_size
        tgt = fill_random(d / "tgt", layout.size + extra, seed=layout.seed)
        result, size_line = import_from_file(d / "stream", tgt)
        assert size_line == b"%d\n" % n
        assert result.kind == "stream" and not result.compressed
        assert result.input_bytes == n
        assert result.data_bytes + result.zeroed_bytes == layout.size + extra
        assert result.metadata["instance"] == "i1"
        assert_restored(src, tgt)
        # The stream holds no more data than is allocated, and the target stays sparse.
        src_alloc = src.stat().st_blocks * 512
        assert result.data_bytes <= src_alloc
        assert tgt.stat().st_blocks * 512 <= src_alloc + (result.records + 1) * 8192  # partial blocks at gap edges


@settings(max_examples=10, deadline=None, database=None)
@given(layouts(max_size=6 * MiB, align=RAW_ALIGN, min_size=RAW_MIN), st.sampled_from(["sparse", "raw"]))
def test_zstd_round_trip(layout: Layout, fmt: str):
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        src = layout.create(d / "src")
        n, estimate = export_to_file(src, d / "stream", fmt=fmt, compression="zstd")
        assert n == (d / "stream").stat().st_size
        assert estimate > 0
        assert read_all(d / "stream")[:4] == f.ZSTD_MAGIC
        tgt = fill_random(d / "tgt", layout.size + 4096)
        result, size_line = import_from_file(d / "stream", tgt)
        assert result.compressed and result.kind == ("stream" if fmt == "sparse" else "raw")
        assert size_line == b""  # compressed length is unknown to the importer
        assert_restored(src, tgt)


def test_zstd_estimate_is_close_for_compressible_data(tmp_path):
    src = Layout(64 * MiB, ((0, 20 * MiB, "pattern"), (30 * MiB, 10 * MiB, "random")), 3).create(tmp_path / "s")
    n, estimate = export_to_file(src, tmp_path / "stream", compression="zstd")
    assert 0.5 * n <= estimate <= 2 * n


def test_raw_export_is_byte_exact(tmp_path):
    src = Layout(5 * MiB + 123, ((1000, 5000, "random"), (4 * MiB, MiB, "random")), 5).create(tmp_path / "s")
    n, announced = export_to_file(src, tmp_path / "stream", fmt="raw")
    assert n == announced == src.stat().st_size
    assert read_all(tmp_path / "stream") == read_all(src)


def test_export_with_and_without_size_fd(tmp_path):
    """With EXP_SIZE_FD a file is streamed by its allocation map (allocated zeros included, size
    known from the map); without it, all-zero blocks are dropped. Both restore the same disk."""
    src = Layout(9 * MiB, ((MiB - 10, 3 * MiB, "random"), (7 * MiB, 4096, "zeros")), 9).create(tmp_path / "s")
    n, announced = export_to_file(src, tmp_path / "a")
    assert n == announced
    with open(tmp_path / "b", "wb") as out:
        export_disk(src, out.fileno(), size_fd=None)
    a, b = read_all(tmp_path / "a"), read_all(tmp_path / "b")
    assert int.from_bytes(a[20:28], "big") == len(a) and b[20:28] == bytes(8)
    # a: one record per extent (3 MiB one, the zero block); b: the 3 MiB extent in 1 MiB pieces (5 records)
    assert len(a) == len(b) + 4096 + f.RECORD_HEADER_SIZE - 3 * f.RECORD_HEADER_SIZE
    for stream in ("a", "b"):
        tgt = fill_random(tmp_path / f"t{stream}", 9 * MiB)
        import_from_file(tmp_path / stream, tgt)
        assert_restored(src, tgt)


def test_pipeline_through_real_pipes(tmp_path):
    """export → pipe → import, concurrently, as in Ganeti's pipeline."""
    src = Layout(40 * MiB, ((0, 3 * MiB, "random"), (20 * MiB + 17, 5 * MiB, "random")), 11).create(tmp_path / "s")
    tgt = fill_random(tmp_path / "t", 48 * MiB)
    r, w = os.pipe()
    size_r, size_w = os.pipe()
    written = []

    def run_export():
        try:
            written.append(export_disk(src, w, size_fd=size_w))
        finally:
            os.close(w)

    t = threading.Thread(target=run_export)
    t.start()
    try:
        result = import_disk(r, tgt, size_fd=None)
    finally:
        os.close(r)
        t.join()
    os.close(size_w)
    assert int(os.read(size_r, 100)) == written[0] == result.input_bytes
    os.close(size_r)
    assert_restored(src, tgt)


@settings(max_examples=15, deadline=None, database=None)
@given(layouts(max_size=6 * MiB, align=RAW_ALIGN, min_size=RAW_MIN), st.integers(0, MiB))
def test_raw_dump_round_trip_onto_dirty_target(layout: Layout, extra: int):
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        src = layout.create(d / "src")
        tgt = fill_random(d / "tgt", layout.size + extra, seed=layout.seed)
        result = import_bytes(read_all(src), tgt)
        assert result.kind == "raw" and result.source_size == layout.size
        assert result.data_bytes <= src.stat().st_blocks * 512
        assert_restored(src, tgt)


def test_raw_input_from_dd(tmp_path):
    src = Layout(6 * MiB + 512, ((0, 4096, "random"), (5 * MiB, MiB + 512, "random")), 2).create(tmp_path / "s")
    tgt = fill_random(tmp_path / "t", 8 * MiB)
    dd = subprocess.Popen(["dd", f"if={src}", "bs=4M", "status=none"], stdout=subprocess.PIPE)
    try:
        result = import_disk(dd.stdout.fileno(), tgt, size_fd=None)
    finally:
        dd.stdout.close()
        dd.wait()
    assert result.kind == "raw" and result.source_size == src.stat().st_size
    assert_restored(src, tgt)
    assert tgt.stat().st_blocks * 512 <= src.stat().st_blocks * 512 + MiB


def test_target_smaller_than_source_fails_before_writing_data(tmp_path):
    src = Layout(4 * MiB, ((0, MiB, "random"),), 4).create(tmp_path / "s")
    export_to_file(src, tmp_path / "stream")
    tgt = fill_random(tmp_path / "t", 3 * MiB)
    before = read_all(tgt)
    with pytest.raises(StreamError, match="at least as large.*nothing was written"):
        import_from_file(tmp_path / "stream", tgt)
    assert read_all(tgt) == before  # refused from the header alone: the disk keeps what it had


def test_raw_input_larger_than_target_fails(tmp_path):
    src = fill_random(tmp_path / "s", 3 * MiB)
    tgt = fill_random(tmp_path / "t", 2 * MiB, seed=7)
    with open(src, "rb") as fsrc, pytest.raises(StreamError, match="larger than target"):
        import_disk(fsrc.fileno(), tgt, size_fd=None)


def test_bad_options_and_missing_device(tmp_path):
    src = Layout(MiB, (), 0).create(tmp_path / "s")
    with pytest.raises(StreamError, match="format"):
        export_disk(src, 1, size_fd=None, fmt="qcow2")
    with pytest.raises(StreamError, match="compression"):
        export_disk(src, 1, size_fd=None, compression="gzip")
    with pytest.raises(StreamError, match="cannot open"):
        export_disk(tmp_path / "missing", 1, size_fd=None)


def test_empty_disk_round_trip(tmp_path):
    src = Layout(3 * MiB + 5, (), 0).create(tmp_path / "s")
    n, announced = export_to_file(src, tmp_path / "stream")
    tgt = fill_random(tmp_path / "t", 4 * MiB)
    result, _ = import_from_file(tmp_path / "stream", tgt)
    assert set(result.metadata) == {"tool", "format", "content_plan"}
    assert n == announced == f.stream_length(result.metadata, 0, 0)
    assert result.records == 0 and result.data_bytes == 0
    assert_restored(src, tgt)
    assert tgt.stat().st_blocks == 0


def test_memory_stays_bounded_on_a_huge_sparse_disk(tmp_path):
    """A 2 TiB sparse disk: export (with pre-scan) and import in a fresh process stay far below 100 MiB."""
    src = Layout(2 << 40, ((0, MiB, "random"), (1 << 40, 3 * MiB + 5, "random"), ((2 << 40) - 4096, 4096, "random")),
                 13).create(tmp_path / "s")
    tgt = tmp_path / "t"
    with open(tgt, "wb") as fh:
        fh.truncate(2 << 40)
    code = f"""
import os
from osdef.stream import export_disk, import_disk
r, w = os.pipe()
with open({str(tmp_path / 'stream')!r}, 'wb') as out:
    n = export_disk({str(src)!r}, out.fileno(), size_fd=w)
assert int(os.read(r, 100)) == n
with open({str(tmp_path / 'stream')!r}, 'rb') as inp:
    import_disk(inp.fileno(), {str(tgt)!r}, size_fd=None)
print([l for l in open('/proc/self/status') if l.startswith('VmHWM')][0].split()[1])
"""
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    assert int(out) < 60 * 1024  # KiB
    with open(src, "rb") as a, open(tgt, "rb") as b:
        for off in (0, 1 << 40, (2 << 40) - 4096):
            a.seek(off)
            b.seek(off)
            assert a.read(4 * MiB) == b.read(4 * MiB)
    assert tgt.stat().st_blocks * 512 < 16 * MiB


@pytest.mark.parametrize("fmt,compression", [("sparse", "none"), ("raw", "none"), ("sparse", "zstd")])
def test_size_is_announced_before_the_first_stream_byte(tmp_path, fmt, compression):
    src = Layout(6 * MiB, ((MiB, 2 * MiB, "random"),), 17).create(tmp_path / "s")
    r, w = os.pipe()
    size_r, size_w = os.pipe()
    os.set_blocking(size_r, False)
    seen = []

    def consume():
        first = os.read(r, 1)  # blocks until the exporter writes its first stream byte
        try:
            seen.append(os.read(size_r, 100))
        except BlockingIOError:
            seen.append(b"")
        seen.append(first)
        while os.read(r, MiB):
            pass

    t = threading.Thread(target=consume)
    t.start()
    try:
        export_disk(src, w, size_fd=size_w, fmt=fmt, compression=compression)
    finally:
        os.close(w)
        t.join()
        os.close(r)
        os.close(size_r)
        os.close(size_w)
    assert seen[0].endswith(b"\n") and int(seen[0]) > 0
    assert seen[1]


def test_export_to_a_closed_pipe_is_one_stream_error(tmp_path):
    src = Layout(4 * MiB, ((0, MiB, "random"),), 3).create(tmp_path / "s")
    r, w = os.pipe()
    os.close(r)
    try:
        with pytest.raises(StreamError, match="Broken pipe") as info:
            export_disk(src, w, size_fd=None)
        assert "\n" not in str(info.value)
    finally:
        os.close(w)


@pytest.mark.parametrize("fmt,size_fd", [("sparse", True), ("sparse", False), ("raw", True)])
def test_sendfile_and_written_output_are_the_same_stream(tmp_path, monkeypatch, fmt, size_fd):
    """Record data goes out by sendfile; where the kernel refuses (an O_APPEND file: EINVAL)
    the exporter writes the bytes itself, and the stream is byte for byte the same."""
    tail = 512 if fmt == "raw" else 5  # a raw dump is whole sectors; a stream may end anywhere
    src = Layout(11 * MiB + tail, ((3, 2 * MiB, "random"), (9 * MiB, MiB + tail, "random")),
                 13).create(tmp_path / "s")
    calls = []
    real_sendfile = os.sendfile

    def counting_sendfile(*args):
        calls.append(args)
        return real_sendfile(*args)

    monkeypatch.setattr(os, "sendfile", counting_sendfile)
    streams = []
    for name, flags in (("plain", 0), ("append", os.O_APPEND)):
        fd = os.open(tmp_path / name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | flags, 0o600)
        size_r, size_w = os.pipe() if size_fd else (None, None)
        try:
            n = export_disk(src, fd, size_fd=size_w, fmt=fmt)
        finally:
            os.close(fd)
            for x in (size_r, size_w):
                if x is not None:
                    os.close(x)
        streams.append(read_all(tmp_path / name))
        assert n == len(streams[-1])
        if name == "plain":
            sent = len(calls)
            assert sent > 0, "no record data went out by sendfile"
    assert len(calls) == sent + 1, "the O_APPEND export should try sendfile once, then write"
    assert streams[0] == streams[1]
    tgt = fill_random(tmp_path / "t", src.stat().st_size)
    import_from_file(tmp_path / "plain", tgt)
    assert_restored(src, tgt)


def test_a_disk_written_during_export_fails_its_checksum_on_import(tmp_path, monkeypatch):
    """sendfile sends the page cache's bytes as they are at send time: a disk changed between
    the checksumming read and the send gives a record the importer refuses, never a silent import."""
    from osdef.stream import export as export_mod

    src = Layout(6 * MiB, ((0, 3 * MiB, "random"),), 17).create(tmp_path / "s")
    real_send = export_mod.send_range

    def write_then_send(out_fd, src_fd, offset, length):
        with open(src, "r+b") as f:
            f.seek(offset + 100)
            f.write(b"changed under the exporter")
        return real_send(out_fd, src_fd, offset, length)

    monkeypatch.setattr(export_mod, "send_range", write_then_send)
    export_to_file(src, tmp_path / "stream")
    tgt = fill_random(tmp_path / "t", 6 * MiB)
    with pytest.raises(StreamError, match="checksum mismatch in record 1"):
        import_from_file(tmp_path / "stream", tgt)
