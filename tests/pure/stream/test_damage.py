"""Import of damaged input: truncated, corrupted, foreign version, empty — always one error and a wiped target."""

from __future__ import annotations

import struct

import pytest

from osdef.errors import StreamError
from osdef.stream import format as f
from tests.support.stream import (MiB, Layout, assert_refused, assert_wiped, export_to_file, fill_random, import_bytes,
                                  read_all)

DISK = 4 * MiB


@pytest.fixture(scope="module")
def stream(tmp_path_factory) -> bytes:
    d = tmp_path_factory.mktemp("damage")
    layout = Layout(DISK, ((0, 4096, "random"), (MiB + 100, 3000, "random"), (3 * MiB - 8192, 12288, "random"),
                           (DISK - 4096, 4096, "random")), 21)
    src = layout.create(d / "src")
    export_to_file(src, d / "stream")
    return read_all(d / "stream")


def boundaries(stream: bytes) -> dict[str, int]:
    """Named cut points: every record boundary and the middle of every record's header and data."""
    hlen = 32 + int.from_bytes(stream[28:32], "big") + 4
    points = {"header-mid": hlen // 2, "after-header": hlen}
    pos, i = hlen, 0
    while stream[pos:pos + 1] == b"D":
        i += 1
        length = int.from_bytes(stream[pos + 9:pos + 17], "big")
        points[f"record{i}-head-mid"] = pos + 10
        points[f"record{i}-data-mid"] = pos + f.RECORD_HEADER_SIZE + length // 2
        pos += f.RECORD_HEADER_SIZE + length
        points[f"after-record{i}"] = pos
    points["trailer-mid"] = pos + 30
    points["before-last-byte"] = len(stream) - 1
    return points


def check_fails(tmp_path, data: bytes, match: str | None = None) -> str:
    tgt = fill_random(tmp_path / "tgt", DISK + MiB + 4096)
    before = read_all(tgt)
    with pytest.raises(StreamError, match=match) as info:
        import_bytes(data, tgt)
    message = str(info.value)
    assert_refused(tgt, before, message)
    return message


def test_intact_stream_imports(tmp_path, stream):
    tgt = fill_random(tmp_path / "tgt", DISK)
    result = import_bytes(stream, tgt)
    assert result.records == 4  # one record per extent (a file is streamed by its allocation map)


def test_truncation_at_every_record_boundary_and_mid_record(tmp_path, stream):
    points = boundaries(stream)
    assert len(points) == 4 * 3 + 4
    for name, cut in points.items():
        message = check_fails(tmp_path, stream[:cut], "truncated")
        assert "export it again" in message, name


@pytest.mark.parametrize("where", ["header", "record-header", "data", "trailer", "digest"])
def test_flipped_byte_is_detected(tmp_path, stream, where):
    hlen = 32 + int.from_bytes(stream[28:32], "big") + 4
    position = {"header": 20, "record-header": hlen + 3, "data": hlen + f.RECORD_HEADER_SIZE + 1000,
                "trailer": len(stream) - f.TRAILER_SIZE + 5, "digest": len(stream) - 3}[where]
    damaged = bytearray(stream)
    damaged[position] ^= 0x01
    check_fails(tmp_path, bytes(damaged), "corrupt")


def test_version_mismatch(tmp_path, stream):
    damaged = bytearray(stream)
    damaged[8:10] = struct.pack(">H", 2)
    check_fails(tmp_path, bytes(damaged), "version 2 is not supported")


def test_empty_input(tmp_path):
    check_fails(tmp_path, b"", "empty")


def test_empty_zstd_frame(tmp_path):
    import zstandard

    check_fails(tmp_path, zstandard.ZstdCompressor().compress(b""), "empty")


def test_truncated_zstd(tmp_path, stream):
    import zstandard

    packed = zstandard.ZstdCompressor().compress(stream)
    check_fails(tmp_path, packed[:len(packed) // 2], "truncated|corrupt")


def test_trailing_garbage(tmp_path, stream):
    check_fails(tmp_path, stream + b"\0garbage", "after the stream trailer")


@pytest.mark.parametrize("prefix,name", [(b"QFI\xfb\x00\x00\x00\x03", "qcow2"), (b"\x1f\x8b\x08\x00", "gzip")])
def test_foreign_container_is_refused(tmp_path, prefix, name):
    check_fails(tmp_path, prefix + bytes(5000), name)


def test_sigterm_during_import_wipes_the_target(tmp_path, stream):
    """Ganeti aborting a transfer kills the import: the half-written disk must still be wiped."""
    import signal
    import subprocess
    import sys
    import time

    tgt = fill_random(tmp_path / "tgt", DISK)
    code = ("import sys; from osdef.stream import import_disk\n"
            "try:\n    import_disk(0, sys.argv[1], size_fd=None)\n"
            "except Exception as e:\n    print(e, file=sys.stderr); sys.exit(1)\n")
    before = read_all(tgt)[:4096]  # read first: the child may write before we look
    proc = subprocess.Popen([sys.executable, "-c", code, str(tgt)], stdin=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdin.write(stream[:len(stream) // 2])  # half a stream, then nothing: the import waits for more
    proc.stdin.flush()
    deadline = time.monotonic() + 60
    while read_all(tgt)[:4096] == before and time.monotonic() < deadline:  # wait until it is writing
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    proc.stdin.close()
    assert proc.returncode == 1
    assert b"SIGTERM" in err
    assert_wiped(tgt)
