"""Filesystem-aware export on file disks: partition tables, ext2/3/4, vfat and swap maps, fallbacks.

Disks are random-filled files (old data everywhere) with filesystems made in
place (tests/support/fsdisks.py); nothing is mounted.  After export → import
onto another random-filled file: e2fsck -fn is clean, every file reads back
identical (debugfs rdump, mtools), and what the plan sends is byte-identical.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from osdef.stream import export_disk
from osdef.stream.blockio import open_disk
from osdef.stream.content import BLOCK, USED, Segment, plan_content
from osdef.disk.ondisk.partitions import BIOS_BOOT_GUID, read_table
from tests.support.stream import export_to_file, import_from_file, read_all
from tests.support.fsdisks import (MiB, Part, e2fsck, ext_files, fill_random, gpt, make_fs, make_tree, mbr, run,
                                  tree_sums, vfat_files, without_symlinks)

DISK = 96 * MiB
BIOS = Part(1 * MiB, 1 * MiB, "bios")
ESP = Part(2 * MiB, 16 * MiB, "vfat")
ROOT = Part(18 * MiB, 64 * MiB, "ext4")
SWAP = Part(82 * MiB, 12 * MiB, "swap")


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    return make_tree(tmp_path_factory.mktemp("tree") / "root")


def _plan(path: Path, warnings: list[str] | None = None):
    with open_disk(path, write=False) as disk:
        return plan_content(disk, (warnings if warnings is not None else []).append)


def _roundtrip(src: Path, tmp_path: Path, **kw) -> tuple[Path, int, list[str]]:
    """Export src (warnings collected), import onto a random-filled file; return (target, stream bytes, warnings)."""
    warnings: list[str] = []
    stream = tmp_path / "stream"
    n, announced = export_to_file(src, stream, warn=warnings.append, **kw)
    assert n == stream.stat().st_size
    if kw.get("compression") != "zstd":  # zstd announces an estimate
        assert n == announced
    target = fill_random(tmp_path / "target.img", src.stat().st_size, seed=99)
    import_from_file(stream, target)
    return target, n, warnings


def _assert_plan_kept(src: Path, target: Path) -> None:
    """Every byte the plan sends is identical; every byte it leaves out reads as zero."""
    plan = _plan(src)
    a, b = read_all(src), read_all(target)
    pos = 0
    for seg in plan.segments:
        assert b[pos:seg.offset] == bytes(seg.offset - pos), f"free bytes at {pos} not zero"
        assert a[seg.offset:seg.end] == b[seg.offset:seg.end], f"{seg} differs"
        pos = seg.end
    assert b[pos:] == bytes(len(b) - pos)


def _gpt_disk(tmp_path: Path, tree: Path, parts=(BIOS, ESP, ROOT, SWAP)) -> Path:
    disk = fill_random(tmp_path / "disk.img", DISK)
    gpt(disk, list(parts))
    for p in parts:
        make_fs(disk, p, tree if p.fs in ("ext4", "vfat", "ext2", "ext3") else None)
    return disk


def test_gpt_layout_is_read_from_the_bytes(tmp_path, tree):
    disk = _gpt_disk(tmp_path, tree)
    with open_disk(disk, write=False) as d:
        table = read_table(d)
    assert table.scheme == "gpt" and not table.notes
    assert [(p.number, p.start, p.length) for p in table.partitions] == [
        (i, p.start, p.size) for i, p in enumerate((BIOS, ESP, ROOT, SWAP), 1)]
    assert table.partitions[0].kind == BIOS_BOOT_GUID


def test_gpt_with_a_damaged_primary_header_sends_the_whole_disk_at_block_level(tmp_path, tree):
    """Linux never falls back to the backup header (efi.c find_valid_gpt); libblkid and gdisk do: two readings."""
    disk = _gpt_disk(tmp_path, tree, (BIOS, ROOT))
    with open(disk, "r+b") as f:
        f.seek(512 + 20)
        f.write(b"\xff\xff")  # primary header CRC broken
    with open_disk(disk, write=False) as d:
        table = read_table(d)
    assert table.scheme == "none" and "backup header" in table.ambiguous
    warnings: list[str] = []
    plan = _plan(disk, warnings)
    assert plan.segments == [Segment(0, DISK, BLOCK)] and plan.mapped_partitions == 0
    assert any("whole disk is sent at block level" in w and "backup header" in w for w in warnings)
    target, _, _ = _roundtrip(disk, tmp_path)
    assert read_all(target) == read_all(disk)  # random data everywhere: nothing is zero, all of it is sent


def test_gpt_without_its_backup_header_uses_the_primary(tmp_path, tree):
    disk = _gpt_disk(tmp_path, tree, (BIOS, ROOT))
    with open(disk, "r+b") as f:
        f.seek(DISK - 512)
        f.write(bytes(512))
    with open_disk(disk, write=False) as d:
        table = read_table(d)
    assert [p.start for p in table.partitions] == [BIOS.start, ROOT.start]


def test_mbr_with_logical_partitions(tmp_path, tree):
    parts = [Part(1 * MiB, 16 * MiB, "vfat"), Part(20 * MiB, 40 * MiB, "ext3"), Part(62 * MiB, 30 * MiB, "ext2")]
    disk = fill_random(tmp_path / "disk.img", DISK)
    mbr(disk, parts, logical_from=1)
    for p in parts:
        make_fs(disk, p, tree)
    with open_disk(disk, write=False) as d:
        table = read_table(d)
    assert table.scheme == "mbr"
    ext_start = parts[1].start - MiB  # the extended partition: Linux makes a 2-sector node over its boot record
    assert [(p.number, p.start, p.length) for p in table.partitions] == [
        (1, parts[0].start, parts[0].size), (2, ext_start, 1024), (5, parts[1].start, parts[1].size),
        (6, parts[2].start, parts[2].size)]
    assert list(table.block) == [2] and table.ambiguous is None
    target, n, warnings = _roundtrip(disk, tmp_path)
    assert warnings == []
    assert n < 3 * _tree_bytes(tree) + _outside(parts) + 4 * MiB  # random gaps outside the partitions are sent
    for i, p in enumerate(parts[1:]):
        assert e2fsck(target, p).returncode == 0
        assert ext_files(target, p, tmp_path / f"out{i}") == tree_sums(tree)
    assert vfat_files(target, parts[0], tmp_path / "esp") == without_symlinks(tree_sums(tree))
    _assert_plan_kept(disk, target)


def test_efi_disk_sends_what_its_filesystems_use(tmp_path, tree):
    disk = _gpt_disk(tmp_path, tree)
    plan = _plan(disk)
    assert plan.mapped_partitions == 3  # ESP, root, swap; the BIOS boot partition at block level
    target, n, warnings = _roundtrip(disk, tmp_path)
    assert warnings == []
    assert n < 2 * _tree_bytes(tree) + _outside([BIOS, ESP, ROOT, SWAP]) + BIOS.size + 4 * MiB  # the garbage of 96 MiB is not sent
    assert e2fsck(target, ROOT).returncode == 0
    assert ext_files(target, ROOT, tmp_path / "root") == tree_sums(tree)
    assert vfat_files(target, ESP, tmp_path / "esp") == without_symlinks(tree_sums(tree))
    swap = read_all(target)[SWAP.start:SWAP.start + SWAP.size]
    assert swap[4086:4096] == b"SWAPSPACE2" and swap[4096:] == bytes(SWAP.size - 4096)
    bios = read_all(target)[BIOS.start:BIOS.start + BIOS.size]
    assert bios == read_all(disk)[BIOS.start:BIOS.start + BIOS.size]  # block level: kept
    _assert_plan_kept(disk, target)


@pytest.mark.parametrize("fs,blocksize", [("ext2", 1024), ("ext3", 4096), ("ext4", 1024), ("ext4", 4096)])
def test_ext_family(tmp_path, tree, fs, blocksize):
    root = Part(ROOT.start, ROOT.size, fs)
    disk = fill_random(tmp_path / "disk.img", DISK)
    gpt(disk, [BIOS, root])
    make_fs(disk, root, tree, blocksize)
    target, n, warnings = _roundtrip(disk, tmp_path)
    assert warnings == []
    assert n < _tree_bytes(tree) + _outside([BIOS, root]) + BIOS.size + 4 * MiB
    assert e2fsck(target, root).returncode == 0
    assert ext_files(target, root, tmp_path / "out") == tree_sums(tree)


def test_a_whole_disk_filesystem_without_a_table(tmp_path, tree):
    disk = fill_random(tmp_path / "disk.img", 64 * MiB)
    whole = Part(0, 64 * MiB, "ext4")
    make_fs(disk, whole, tree)
    assert _plan(disk).mapped_partitions == 1
    target, n, warnings = _roundtrip(disk, tmp_path)
    assert n < _tree_bytes(tree) + 8 * MiB and warnings == []
    assert ext_files(target, whole, tmp_path / "out") == tree_sums(tree)


def _outside(parts) -> int:
    return DISK - sum(p.size for p in parts)


def _tree_bytes(tree: Path) -> int:
    return sum(p.stat().st_size for p in tree.rglob("*") if p.is_file() and not p.is_symlink())


def _partition_identical(src: Path, target: Path, part: Part) -> bool:
    return read_all(src)[part.start:part.start + part.size] == read_all(target)[part.start:part.start + part.size]


def test_needs_recovery_falls_back_with_one_line(tmp_path, tree):
    disk = _gpt_disk(tmp_path, tree, (BIOS, ROOT))
    run("debugfs", "-w", "-R", "feature needs_recovery", f"{disk}?offset={ROOT.start}")
    target, n, warnings = _roundtrip(disk, tmp_path)
    assert len(warnings) == 1 and "partition 2" in warnings[0] and "recovery" in warnings[0], warnings
    assert n > ROOT.size  # the random garbage of the partition is sent: block level
    assert _partition_identical(disk, target, ROOT)


def test_a_bitmap_that_lies_falls_back_with_one_line(tmp_path, tree):
    disk = _gpt_disk(tmp_path, tree, (BIOS, ROOT))
    out = run("dumpe2fs", f"{disk}?offset={ROOT.start}").stdout
    line = next(ln for ln in out.splitlines() if "Block bitmap at" in ln)
    bitmap_block = int(line.split("Block bitmap at ")[1].split()[0])
    block_size = int(next(ln for ln in out.splitlines() if ln.startswith("Block size:")).split()[-1])
    with open(disk, "r+b") as f:  # clear the first 64 bits of group 0's bitmap: used blocks now "free"
        f.seek(ROOT.start + bitmap_block * block_size)
        f.write(bytes(8))
    target, n, warnings = _roundtrip(disk, tmp_path)
    assert len(warnings) == 1 and "partition 2" in warnings[0] and "bitmap" in warnings[0], warnings
    assert _partition_identical(disk, target, ROOT)


def test_allocated_content_is_byte_identical(tmp_path, tree):
    disk = _gpt_disk(tmp_path, tree)
    target, n, warnings = _roundtrip(disk, tmp_path, content="allocated")
    assert read_all(target) == read_all(disk)
    assert warnings == [] and n > DISK // 2


def test_an_unknown_content_value_is_refused(tmp_path):
    from osdef.errors import StreamError

    with pytest.raises(StreamError, match="export content"):
        export_disk(tmp_path / "x", 1, content="everything")


def test_zstd_and_no_size_fd_use_the_same_plan(tmp_path, tree):
    disk = _gpt_disk(tmp_path, tree, (BIOS, ROOT))
    target, n, _ = _roundtrip(disk, tmp_path, compression="zstd")
    assert ext_files(target, ROOT, tmp_path / "out") == tree_sums(tree)
    stream = tmp_path / "nosize"
    with open(stream, "wb") as f:
        export_disk(disk, f.fileno())
    target2 = fill_random(tmp_path / "t2.img", DISK, seed=5)
    import_from_file(stream, target2)
    assert ext_files(target2, ROOT, tmp_path / "out2") == tree_sums(tree)
    plan = _plan(disk)
    assert plan.ranges(USED) and plan.ranges(BLOCK)
