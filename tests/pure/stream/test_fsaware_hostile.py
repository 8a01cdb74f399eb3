"""Hostile layouts for the filesystem-aware export (hypothesis).

Random MBR/GPT tables (valid checksums, partitions anywhere: overlapping, out
of range, chained EBRs that loop), and ext4 filesystems whose superblock,
group descriptors and bitmaps have random bytes overwritten.  Always: no
traceback, no read outside the disk, a plan of ordered segments inside the
disk, and an import that reproduces every byte the plan sends with zeros
everywhere else.
"""

from __future__ import annotations

import os
import random
import struct
import uuid
import zlib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import osdef.disk.filemap as filemap_mod
import osdef.stream.fsmap.base as fsmap_mod
import osdef.disk.ondisk.partitions as partitions_mod
from osdef.disk.device import read_at
from osdef.stream.blockio import open_disk
from osdef.stream.content import plan_content
from tests.support.stream import export_to_file, import_from_file, read_all
from tests.support.fsdisks import MiB, Part, make_fs, make_tree, mbr

DISK = 8 * MiB
FS = Part(1 * MiB, 6 * MiB, "ext4")
# data_too_large: Debian 12's hypothesis (6.67, 8 KiB of choices) overruns on some GPT draws and failed
# the health check in the Debian 12 root (1 run in 2); an overrun example is only skipped
HYPO = settings(max_examples=25, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.data_too_large,
                                       HealthCheck.too_slow])


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> bytes:
    """An 8 MiB disk: random bytes, an MBR, an ext4 at 1 MiB (1 KiB blocks) holding a few files."""
    d = tmp_path_factory.mktemp("tmpl")
    tree = make_tree(d / "tree", files=12, max_size=60_000)
    disk = d / "disk.img"
    disk.write_bytes(random.Random(1).randbytes(DISK))
    mbr(disk, [FS])
    make_fs(disk, FS, tree, options=("-U", "4f5ac6f4-5bd1-4c1c-9a43-2c9b87b0a2b1",  # fixed: a failure replays
                                     "-E", "hash_seed=0d1f1e2c-4d3a-4b5c-8e7f-6a5b4c3d2e1f"))
    return read_all(disk)


@pytest.fixture(params=["mapped", "unmapped"])
def bounded_reads(monkeypatch, request):
    """Fail the test on any metadata read outside the disk; run as a file (mapped) and as an unmapped device."""
    if request.param == "unmapped":  # what a DRBD/LVM device gets: no allocation map, the content path
        monkeypatch.setattr(filemap_mod.FileMap, "of", classmethod(lambda cls, disk: None))
    def checked(disk, view, offset):
        assert offset >= 0 and offset + len(view) <= disk.size, f"read at {offset}+{len(view)} outside the disk"
        return read_at(disk, view, offset)
    monkeypatch.setattr(partitions_mod, "read_at", checked)
    monkeypatch.setattr(fsmap_mod, "read_at", checked)


def _check(data: bytes, tmp: Path) -> None:
    src = tmp / "src.img"
    src.write_bytes(data)
    warnings: list[str] = []
    with open_disk(src, write=False) as disk:
        plan = plan_content(disk, warnings.append)
    pos = 0
    for seg in plan.segments:
        assert seg.offset >= pos and seg.length > 0 and seg.end <= len(data)
        pos = seg.end
    assert all("\n" not in w for w in warnings)
    stream = tmp / "stream"
    n, announced = export_to_file(src, stream, warn=warnings.append)
    assert n == announced
    target = tmp / "target.img"
    target.write_bytes(b"\xa5" * len(data))
    import_from_file(stream, target)
    out = read_all(target)
    pos = 0
    for seg in plan.segments:
        assert out[pos:seg.offset] == bytes(seg.offset - pos)
        assert out[seg.offset:seg.end] == data[seg.offset:seg.end]
        pos = seg.end
    assert out[pos:] == bytes(len(out) - pos)


def _mbr_entry(status, kind, start, count) -> bytes:
    return struct.pack("<B3xB3xII", status, kind, start, count)


sectors = st.one_of(st.integers(0, DISK // 512 + 64), st.integers(0, 2**32 - 1))
mbr_kinds = st.sampled_from([0x00, 0x83, 0x05, 0x0F, 0x82, 0xEF, 0xEE, 0x07, 0xDA])


@st.composite
def mbr_tables(draw) -> list[tuple[int, bytes]]:
    """(offset, bytes) writes: an MBR with four random entries and a few EBRs, possibly chained in loops."""
    writes = []
    entries = [_mbr_entry(draw(st.sampled_from([0, 0x80])), draw(mbr_kinds), draw(sectors), draw(sectors))
               for _ in range(4)]
    writes.append((446, b"".join(entries) + b"\x55\xaa"))
    for _ in range(draw(st.integers(0, 3))):
        at = draw(st.integers(1, DISK // 512 - 1))
        ebr = _mbr_entry(0, draw(mbr_kinds), draw(sectors), draw(sectors)) + \
            _mbr_entry(0, draw(st.sampled_from([0x05, 0x0F, 0x83])), draw(sectors), draw(sectors))
        writes.append((at * 512 + 446, ebr + bytes(32) + b"\x55\xaa"))
    return writes


@st.composite
def gpt_tables(draw) -> list[tuple[int, bytes]]:
    """A GPT (checksums right) with up to 8 random entries, at the primary and/or backup location.

    Every GUID is drawn (not uuid4()): a failure must replay from its --hypothesis-seed."""
    count = 128
    array = bytearray(count * 128)
    for i in range(draw(st.integers(0, 8))):
        first = draw(sectors)
        last = draw(st.one_of(st.integers(0, DISK // 512 + 64), st.integers(first, first + 20000)))
        kind = draw(st.one_of(st.sampled_from([uuid.UUID("0fc63daf-8483-4772-8e79-3d69d8477de4"),
                                               uuid.UUID("21686148-6449-6e6f-744e-656564454649")]), st.uuids()))
        struct.pack_into("<16s16sQQ", array, i * 128, kind.bytes_le, draw(st.uuids()).bytes_le, first, last)
    last_lba = DISK // 512 - 1
    writes = [(446, _mbr_entry(0, 0xEE, 1, last_lba) + bytes(48) + b"\x55\xaa")]
    for my_lba, entries_lba in draw(st.sampled_from([[(1, 2)], [(last_lba, last_lba - 32)],
                                                     [(1, 2), (last_lba, last_lba - 32)]])):
        header = bytearray(struct.pack("<8sIIIIQQQQ16sQIII", b"EFI PART", 0x10000, 92, 0, 0, my_lba,
                                       last_lba if my_lba == 1 else 1, 34, last_lba - 33, draw(st.uuids()).bytes,
                                       entries_lba, count, 128, zlib.crc32(array)))
        struct.pack_into("<I", header, 16, zlib.crc32(header))
        if draw(st.booleans()) and draw(st.booleans()):
            header[draw(st.integers(0, 91))] ^= 0xFF  # sometimes a broken header
        writes += [(my_lba * 512, bytes(header)), (entries_lba * 512, bytes(array))]
    return writes


@pytest.mark.parametrize("tables", [mbr_tables(), gpt_tables()], ids=["mbr", "gpt"])
def test_random_partition_tables(template, tmp_path, bounded_reads, tables):
    @HYPO
    @given(writes=tables)
    def run(writes):
        data = bytearray(template)
        for offset, raw in writes:
            data[offset:offset + len(raw)] = raw
        _check(bytes(data), tmp_path)

    run()


@HYPO
@given(flips=st.lists(st.tuples(st.integers(0, 12 * 1024 - 1), st.integers(0, 255)), min_size=1, max_size=12),
       where=st.sampled_from(["superblock", "descriptors", "anywhere"]))
def test_corrupted_ext_metadata(template, tmp_path, bounded_reads, flips, where):
    data = bytearray(template)
    base = FS.start + {"superblock": 1024, "descriptors": 2048, "anywhere": 0}[where]
    span = {"superblock": 1024, "descriptors": 1024, "anywhere": 12 * 1024}[where]
    for at, value in flips:
        data[base + at % span] = value
    _check(bytes(data), tmp_path)


@HYPO
@given(cut=st.integers(0, DISK))
def test_truncated_disks(template, tmp_path, bounded_reads, cut):
    _check(template[:cut], tmp_path)


def test_the_template_is_mapped(template, tmp_path):
    src = tmp_path / "t.img"
    src.write_bytes(template)
    with open_disk(src, write=False) as disk:
        plan = plan_content(disk, print)
    assert plan.mapped_partitions == 1 and plan.used_bytes < 2 * MiB
    os.unlink(src)


@pytest.mark.parametrize("offset,value", [(254, b"\x20\x00"), (254, b"\x00\x00"), (24, b"\x07\x00\x00\x00"),
                                          (32, b"\x00\x00\x00\x00"), (4, b"\xff\xff\xff\xff")])
def test_chosen_superblock_fields(template, tmp_path, offset, value):
    """A 64bit ext4 with a 32-byte descriptor size, no block size, zero blocks per group, a huge size."""
    data = bytearray(template)
    at = FS.start + 1024 + offset
    data[at:at + len(value)] = value
    _check(bytes(data), tmp_path)
