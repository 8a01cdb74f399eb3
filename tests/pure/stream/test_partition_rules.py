"""The partition-table rules of docs/stream.md (P1-P6, A1-A7), one crafted disk each.

Tables are written with sfdisk/sgdisk and then edited byte by byte where a tool
would refuse to write them; where Linux and libblkid agree, util-linux's
``partx --show`` (libblkid) is the oracle for which partitions exist; where they
disagree, the disk must go at block level as a whole.
"""

from __future__ import annotations

import struct
import subprocess
import zlib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from osdef.stream.blockio import open_disk
from osdef.stream.content import BLOCK, Segment, plan_content
from osdef.disk.ondisk import mbr, reader_of
from osdef.disk.ondisk.partitions import read_table
from tests.support.fsdisks import MiB, Part, gpt, make_fs, run
from tests.support.kernelview import PARTX
from tests.support.tables import (EXT, ONE_READING, OTHER_READINGS, libblkid_reading, linux_reading,
                                  self_link, table_bytes, write_mbr)

DISK = 64 * MiB


def _blank(tmp_path: Path, size: int = DISK) -> Path:
    path = tmp_path / "disk.img"
    with open(path, "wb") as f:
        f.truncate(size)
    return path


def _table(path: Path):
    with open_disk(path, write=False) as d:
        return read_table(d)


def _spans(table) -> list[tuple[int, int, int]]:
    return sorted((p.number, p.start // 512, p.length // 512) for p in table.partitions)


def _partx(path: Path) -> list[tuple[int, int, int]]:
    out = subprocess.run(["partx", "--show", "-g", "-b", "-o", "NR,START,SECTORS", str(path)],
                         capture_output=True, text=True)
    return sorted(tuple(int(v) for v in line.split()) for line in out.stdout.splitlines())


def _whole_disk_block(path: Path, why: str) -> None:
    warnings: list[str] = []
    with open_disk(path, write=False) as d:
        plan = plan_content(d, warnings.append)
    assert plan.segments == [Segment(0, path.stat().st_size, BLOCK)]
    assert why in plan.whole_disk_reason
    assert len(warnings) == 1 and "whole disk is sent at block level" in warnings[0]


def test_every_entry_with_sectors_is_a_partition_type_zero_included(tmp_path):  # P3
    disk = _blank(tmp_path)
    write_mbr(disk, [(0x80, 0x83, 2048, 20480), (0, 0x00, 30000, 2000), (0, 0x07, 0, 0)])
    table = _table(disk)
    assert table.scheme == "mbr" and table.ambiguous is None
    assert _spans(table) == _partx(disk) == [(1, 2048, 20480), (2, 30000, 2000)]


def test_a_bad_boot_indicator_means_no_mbr(tmp_path):  # P3
    disk = _blank(tmp_path)
    write_mbr(disk, [(0x80, 0x83, 2048, 20480), (0x01, 0x83, 30000, 2000)])
    table = _table(disk)
    assert table.scheme == "none" and _partx(disk) == []
    assert [(p.number, p.start, p.length) for p in table.partitions] == [(0, 0, DISK)]


def test_the_extended_chain_follows_the_kernel(tmp_path):  # P4
    """EBR entries 3 and 4 count only inside the extended partition; the first extended entry links."""
    disk = _blank(tmp_path)
    ext = 40960
    write_mbr(disk, [(0, 0x83, 2048, 20480), (0, 0x05, ext, 60000)])
    write_mbr(disk, [(0, 0x83, 2048, 4096), (0, 0x05, 10000, 8000), (0, 0x83, 6144, 1024), (0, 0x83, 70000, 100)],
         at=ext * 512)  # 3rd entry inside: kept; 4th outside the extended partition: ignored
    write_mbr(disk, [(0, 0x82, 2048, 4096)], at=(ext + 10000) * 512)
    table = _table(disk)
    expected = [(1, 2048, 20480), (2, ext, 2), (5, ext + 2048, 4096), (6, ext + 6144, 1024),
                (7, ext + 10000 + 2048, 4096)]
    assert _spans(table) == expected
    # libblkid lists the extended partition whole; Linux makes a 2-sector node over its boot record
    assert _partx(disk) == [e if e[0] != 2 else (2, ext, 60000) for e in expected]
    assert set(table.block) == {2}


def test_a_looping_chain_ends_at_the_partition_limit(tmp_path):  # P4: Linux repeats partitions, so do we
    disk = _blank(tmp_path)
    self_link(disk)
    table = _table(disk)
    logical = [p for p in table.partitions if p.number >= 5]
    assert len(logical) == 251 and {p.start for p in logical} == {(EXT + 2048) * 512}
    assert all(table.block[p.number].startswith("overlaps") for p in logical)
    assert "libblkid" in table.ambiguous  # A7: libblkid skips a zero link


@pytest.mark.parametrize("name", sorted(OTHER_READINGS))
def test_what_libblkid_reads_otherwise_is_two_readings(tmp_path, name):  # A6, A7
    """Each layout sends the whole disk at block level; where Debian 12's libblkid (2.38, this host's partx) is
    one that reads it otherwise, it does (tests/trixie asks 2.41.5 of Debian 13)."""
    write, versions = OTHER_READINGS[name]
    disk = _blank(tmp_path)
    write(disk)
    out = subprocess.run([*PARTX, str(disk)], capture_output=True, text=True)
    assert (libblkid_reading(out.returncode, out.stdout, DISK) != linux_reading(disk)) == ("2.38" in versions)
    _whole_disk_block(disk, "libblkid")


@pytest.mark.parametrize("name", sorted(ONE_READING))
def test_a_plain_chain_is_one_reading(tmp_path, name):  # A7: what fdisk, sfdisk and parted write
    disk = _blank(tmp_path)
    ONE_READING[name](disk)
    out = subprocess.run([*PARTX, str(disk)], capture_output=True, text=True)
    assert _table(disk).ambiguous is None
    assert libblkid_reading(out.returncode, out.stdout, DISK) == linux_reading(disk)


def test_a_partition_past_the_end_is_cut_and_one_beyond_it_ignored(tmp_path):  # P6
    disk = _blank(tmp_path)
    sectors = DISK // 512
    write_mbr(disk, [(0, 0x83, 2048, 20480), (0, 0x83, sectors - 2048, 4096), (0, 0x83, sectors + 10, 100)])
    table = _table(disk)
    assert _spans(table) == [(1, 2048, 20480), (2, sectors - 2048, 2048)]
    assert "past the end" in table.block[2] and any("partition 3 starts past the end" in n for n in table.notes)


def test_overlapping_partitions_go_at_block_level(tmp_path):  # P6
    disk = _blank(tmp_path)
    write_mbr(disk, [(0, 0x83, 2048, 20480), (0, 0x83, 10000, 20480), (0, 0x83, 40960, 2048)])
    table = _table(disk)
    assert set(table.block) == {1, 2} and _spans(table) == _partx(disk)


def _gpt_disk(tmp_path: Path) -> Path:
    disk = _blank(tmp_path)
    gpt(disk, [Part(MiB, MiB, "bios"), Part(2 * MiB, 40 * MiB, "ext4")])
    return disk


def test_a_protective_entry_not_at_lba_1_hides_the_gpt_from_linux_only(tmp_path):  # P1, A1
    disk = _gpt_disk(tmp_path)
    with open(disk, "r+b") as f:
        f.seek(446 + 8)
        f.write(struct.pack("<I", 2))  # the 0xEE entry now starts at LBA 2
    table = _table(disk)
    assert table.scheme == "none" and _partx(disk) != []  # libblkid still reads the GPT
    _whole_disk_block(disk, "primary header")


def test_a_damaged_primary_beside_a_valid_backup_is_two_readings(tmp_path):  # P2, A1
    disk = _gpt_disk(tmp_path)
    with open(disk, "r+b") as f:
        f.seek(512 + 16)
        f.write(b"\0\0\0\0")  # header CRC
    assert _table(disk).scheme == "none" and _partx(disk) != []
    _whole_disk_block(disk, "backup header")


@pytest.mark.parametrize("keep", ["primary", "backup"])
def test_a_stale_gpt_under_an_mbr_is_two_readings(tmp_path, keep):  # A1: the data-loss case 1
    disk = _gpt_disk(tmp_path)
    if keep == "backup":
        with open(disk, "r+b") as f:
            f.seek(512)
            f.write(bytes(512))
    run("sfdisk", "-q", "--wipe", "never", disk, input="label: dos\nstart=4096, size=61440, type=83\n")
    table = _table(disk)
    assert table.scheme == "mbr" and _spans(table) == [(1, 4096, 61440)]
    _whole_disk_block(disk, f"{keep} header")


def _hybrid(disk: Path, first: int, count: int) -> None:
    with open(disk, "r+b") as f:
        f.seek(446 + 16)
        f.write(struct.pack("<B3xB3xII", 0, 0x83, first, count))


def test_a_hybrid_entry_matching_a_gpt_partition_is_fine_one_cutting_across_is_not(tmp_path):  # A2
    disk = _gpt_disk(tmp_path)
    _hybrid(disk, 4096, 40 * MiB // 512)
    table = _table(disk)
    assert table.scheme == "gpt" and table.ambiguous is None
    _hybrid(disk, 8192, 1000)
    assert "hybrid MBR" in _table(disk).ambiguous


def test_a_bsd_label_in_a_bsd_partition_is_not_followed(tmp_path):  # A3
    disk = _blank(tmp_path)
    write_mbr(disk, [(0, 0xA5, 2048, 20480)])
    with open(disk, "r+b") as f:
        f.seek((2048 + 1) * 512)
        f.write(struct.pack("<I", 0x82564557))
    _whole_disk_block(disk, "BSD disklabel")


@pytest.mark.parametrize("kind", [0x63, 0x81, 0x82, 0xA5, 0xA6, 0xA9])
@pytest.mark.parametrize("where", ["runs past", "starts past"])
def test_a_nested_label_type_past_the_end_makes_libblkid_refuse_the_table(tmp_path, kind, where):  # A6
    disk = _blank(tmp_path)
    sectors = DISK // 512
    first = sectors - 2048 if where == "runs past" else sectors + 10
    write_mbr(disk, [(0, 0x83, 2048, 20480), (0, kind, first, 4096)])
    table = _table(disk)
    assert _spans(table)[0] == (1, 2048, 20480)  # Linux keeps partition 1 and drops or cuts partition 2
    assert _partx(disk) == []  # libblkid: "subprobe: overflow detected", no table at all
    _whole_disk_block(disk, "libblkid reads no partition table")


@pytest.mark.parametrize("kind", [0x83, 0xBF])  # 0xBF: Linux probes it for a Solaris label, libblkid does not
def test_other_types_past_the_end_leave_one_reading(tmp_path, kind):  # P6
    disk = _blank(tmp_path)
    write_mbr(disk, [(0, 0x83, 2048, 20480), (0, kind, DISK // 512 - 2048, 4096)])
    table = _table(disk)
    assert table.ambiguous is None and _spans(table) == [(1, 2048, 20480), (2, DISK // 512 - 2048, 2048)]
    assert _partx(disk) == [(1, 2048, 20480), (2, DISK // 512 - 2048, 4096)]


def test_a_tiny_disk_is_not_probed_for_nested_labels(tmp_path):  # A6: libblkid skips them at 1440 KiB or less
    disk = _blank(tmp_path, 1440 * 1024)
    write_mbr(disk, [(0, 0x83, 64, 1024), (0, 0x82, 2000, 1000)])
    table = _table(disk)
    assert table.ambiguous is None and _partx(disk) == [(1, 64, 1024), (2, 2000, 1000)]


def test_an_aix_disk_with_lvm_is_not_read_as_an_mbr(tmp_path):  # P3: msdos.c aix_magic_present
    disk = _blank(tmp_path)
    write_mbr(disk, [(0, 0x07, 2048, 20480)])
    with open(disk, "r+b") as f:
        f.write(b"\xc9\xc2\xd4\xc1")
        f.seek(7 * 512)
        f.write(b"_LVM")
    table = _table(disk)
    assert table.scheme == "none" and "AIX" in (table.ambiguous or "")


@pytest.mark.parametrize("magic", [b"NTFS    ", b"EXFAT   "])
def test_an_mbr_that_is_also_an_ntfs_or_exfat_boot_sector_is_two_readings(tmp_path, magic):  # A6
    """libblkid reads no MBR where its NTFS or exFAT prober accepts sector 0; osdef takes the magic alone."""
    disk = _blank(tmp_path)
    write_mbr(disk, [(0, 0x83, 2048, 20480)])
    with open(disk, "r+b") as f:
        f.seek(3)
        f.write(magic)
    _whole_disk_block(disk, "boot sector, where util-linux's libblkid reads no MBR")


def test_a_filesystem_on_the_whole_disk_beside_a_table_is_two_readings(tmp_path):  # A5
    disk = _blank(tmp_path)
    make_fs(disk, Part(0, DISK, "ext4"))
    write_mbr(disk, [(0, 0x83, 40960, 20480)])
    _whole_disk_block(disk, "ext4 filesystem starts at the disk's first byte")


def test_entries_past_the_255th_are_two_readings(tmp_path):  # P2, A1
    disk = _blank(tmp_path)
    run("sgdisk", "-a", "1", "-S", "512", "-n", "256:2048:4095", disk)
    table = _table(disk)
    assert table.scheme == "gpt" and table.partitions == []
    assert _partx(disk) == [(256, 2048, 2048)]
    _whole_disk_block(disk, "lists other partitions")


def test_a_gpt_entry_ending_before_it_starts_runs_to_the_end(tmp_path):  # P6: u64 wrap, as Linux
    disk = _gpt_disk(tmp_path)
    with open(disk, "r+b") as f:
        f.seek(1024 + 128 + 32)  # entry 2: first LBA, last LBA
        f.write(struct.pack("<QQ", 40000, 30000))
        f.seek(1024)
        array = f.read(128 * 128)
        for header in (512, DISK - 512):
            f.seek(header)
            raw = bytearray(f.read(92))
            if header == 512:
                struct.pack_into("<I", raw, 88, zlib.crc32(array))
                struct.pack_into("<I", raw, 16, 0)
                struct.pack_into("<I", raw, 16, zlib.crc32(bytes(raw)))
                f.seek(header)
                f.write(raw)
    table = _table(disk)
    part = next(p for p in table.partitions if p.number == 2)
    assert (part.start, part.end) == (40000 * 512, DISK) and "past the end" in table.block[2]


def _boot_record(entries: list[tuple[int, int, int, int]], prefix: bytes) -> bytes:
    return prefix + bytes(446 - len(prefix)) + table_bytes(entries)


ENTRY = st.tuples(st.sampled_from([0, 0x80, 1]), st.sampled_from([0, 0x05, 0x0F, 0x82, 0x83, 0xA5, 0xEE, 0x07]),
                  st.one_of(st.integers(0, 64), st.integers(0, 2 ** 32 - 1)),
                  st.one_of(st.integers(0, 64), st.integers(0, 2 ** 32 - 1)))


@settings(max_examples=300, deadline=None)
@given(header=st.binary(max_size=1100),
       records=st.lists(st.tuples(st.lists(ENTRY, max_size=4),
                                  st.sampled_from([b"", b"\xc9\xc2\xd4\xc1", b"\xeb\x52\x90NTFS    "])),
                        max_size=3), cut=st.integers(0, 3000))
def test_any_bytes_give_a_reading_or_none_never_an_error(header, records, cut):  # hostile input
    """kernel_mbr over arbitrary bytes and over boot records chained in 512-byte steps (AIX and NTFS magic too),
    whole or cut short."""
    data = header + b"".join(_boot_record(e, prefix) for e, prefix in records) + bytes(512) + b"_LVM"
    for disk in (data, data[:cut], data[len(header):], data[len(header):][:cut]):
        reading = mbr.kernel_mbr(reader_of(disk), disk[:512], len(disk))
        assert reading is None or all(s.length > 0 for s in reading.slots)
