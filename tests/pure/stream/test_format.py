"""Pure tests of the stream format: encode/decode round trips, detection, damage of every kind."""

from __future__ import annotations

import io
import struct
import zlib

import pytest
from hypothesis import given, settings, strategies as st

from osdef.errors import StreamError
from osdef.stream import format as f
from osdef.stream import sniff


def encode(disk_size: int, records: list[tuple[int, bytes]], metadata=None, with_length=True) -> bytes:
    metadata = metadata or {"instance": "inst1.example.com", "disk": 0}
    length = f.stream_length(metadata, len(records), sum(len(d) for _, d in records)) if with_length else 0
    enc = f.Encoder(disk_size, metadata, length)
    out = [enc.header]
    for offset, data in records:
        out += [enc.record(offset, data), data]
    out.append(enc.trailer())
    stream = b"".join(out)
    if with_length:
        assert len(stream) == length
    return stream


def decode(stream: bytes):
    src = io.BytesIO(stream)

    def read(n):
        return memoryview(src.read(n))

    header = f.decode_header(read)
    dec = f.Decoder(header, read)
    records = [(r.offset, bytes(r.data)) for r in dec.records()]
    assert src.read() == b""
    return header, records, dec.trailer


@st.composite
def record_lists(draw):
    disk_size = draw(st.integers(1, 1 << 40))
    count = draw(st.integers(0, min(8, disk_size)))
    offsets = sorted(draw(st.lists(st.integers(0, disk_size - 1), min_size=count, max_size=count, unique=True)))
    records = []
    for i, off in enumerate(offsets):
        limit = (offsets[i + 1] if i + 1 < len(offsets) else disk_size) - off
        n = draw(st.integers(1, min(limit, 5000)))
        records.append((off, draw(st.binary(min_size=n, max_size=n))))
    return disk_size, records


@settings(max_examples=150, deadline=None, database=None)
@given(record_lists(), st.dictionaries(st.text(max_size=8), st.integers() | st.text(max_size=20), max_size=4),
       st.booleans())
def test_round_trip(layout, metadata, with_length):
    disk_size, records = layout
    stream = encode(disk_size, records, metadata or {"k": 1}, with_length)
    assert sniff.classify(stream) == "stream"
    header, decoded, trailer = decode(stream)
    assert header.disk_size == disk_size
    assert header.metadata == (metadata or {"k": 1})
    assert decoded == records
    assert trailer == f.Trailer(len(records), sum(len(d) for _, d in records))


SMALL = encode(10_000, [(0, b"first"), (100, b"x" * 300), (9_990, b"0123456789")])


def test_truncation_anywhere_is_detected():
    for cut in range(len(SMALL)):
        with pytest.raises(f.FormatError):
            decode(SMALL[:cut])


@pytest.mark.parametrize("position", range(f.DETECT_BYTES, len(SMALL)))
def test_flipped_byte_is_detected(position):
    damaged = bytearray(SMALL)
    damaged[position] ^= 0x40
    with pytest.raises(f.FormatError):
        decode(bytes(damaged))


def test_flipped_magic_is_a_damaged_stream_not_a_raw_dump():
    """The magic is the only part of a stream without a checksum: any bit of it flipped must still be
    refused, never taken for a raw dump (issue 14: one flip used to import the stream's own bytes)."""
    for position in range(f.DETECT_BYTES):
        for bit in range(8):
            damaged = bytearray(SMALL)
            damaged[position] ^= 1 << bit
            with pytest.raises(sniff.InputRefused, match="damaged osdef stream"):
                sniff.classify(bytes(damaged))


def test_version_mismatch_names_the_version():
    damaged = bytearray(SMALL)
    damaged[8:10] = struct.pack(">H", 7)
    with pytest.raises(f.FormatError, match="version 7"):
        decode(bytes(damaged))


def test_trailing_garbage_is_not_part_of_the_stream():
    header, records, _ = decode(SMALL)
    with pytest.raises(AssertionError):
        decode(SMALL + b"\0")


def test_detection():
    assert sniff.classify(b"\x28\xb5\x2f\xfd\x00\x00\x00\x00") == "zstd"
    assert sniff.classify(b"\0" * 8) == "raw"  # the length rule is the importer's, at the end


@pytest.mark.parametrize("prefix", [b"", b"\x28", b"\x28\xb5\x2f\xfd\x00", f.MAGIC[:7], b"\x01" * 7])
def test_an_input_shorter_than_the_magic_is_refused_as_truncated(prefix):
    """Too short to be anything: no guess at what one or two bytes were cut from (a random byte is
    within one bit of a magic's first byte 1 time in 28)."""
    with pytest.raises(sniff.InputRefused, match=f"only {len(prefix)} bytes.*truncated"):
        sniff.classify(prefix)


def test_encoder_rejects_overlap_and_out_of_range():
    enc = f.Encoder(100, {})
    enc.record(0, b"abc")
    with pytest.raises(StreamError):
        enc.record(2, b"x")
    with pytest.raises(StreamError):
        enc.record(99, b"xy")


def test_decoder_rejects_overlapping_records():
    enc = f.Encoder(100, {})
    a = enc.record(0, b"abc")
    # Forge a second, overlapping record with a valid CRC.
    b = f.encode_record_header(1, b"z")
    stream = enc.header + a + b"abc" + b + b"z" + f.encode_trailer(2, 4, b"\0" * 32)
    with pytest.raises(f.FormatError, match="record 2"):
        decode(stream)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=70_000), st.integers(0, 2**32 - 1))
def test_record_crc_is_zlibs_crc32_whichever_implementation_computes_it(data, start):
    """isal's CRC-32 (used when installed) and zlib's must agree: streams stay readable across nodes."""
    assert f.data_crc32(data, start) == zlib.crc32(data, start)
    assert f.record_crc(5 * 4096, data) == zlib.crc32(data, zlib.crc32((5 * 4096).to_bytes(8, "big")
                                                                     + len(data).to_bytes(8, "big")))


def test_the_accelerated_crc_is_in_use():
    """`make test` installs isal (a dependency): the slow fallback must not go unnoticed."""
    assert f.data_crc32.__module__ == "isal.isal_zlib"
