"""Partition-table shapes, read by util-linux as the guest's kernel reads them, judged with every filesystem.

GPT, MBR with logical partitions, a hybrid MBR, a whole-disk filesystem, and
the reused volumes of issue 25 item 1: a disk that held a GPT with ext4
partitions full of data, then partitioned with an MBR (sfdisk --wipe never,
as an installer that does not wipe) at several offsets and given a new ext4
with other data; once with both GPT copies left, once with only the backup
at the disk's end.  Linux and libblkid ignore a GPT behind an MBR without a
0xEE entry; a reader that trusts the stale GPT maps the old filesystems'
bitmaps over the new one.  Also: a GPT whose primary header is damaged (the
kernel reads no backup), a GPT made for 4 KiB sectors on this
512-byte-sector disk (the kernel sees no partition), an MBR 0xEE entry with
no GPT behind it, overlapping partitions and partitions past the disk's end.
"""

from __future__ import annotations

import random
import subprocess
from pathlib import Path

import pytest

from tests.support.differential import check
from tests.support.fsdisks import MiB, SECTOR, Part, fill_random, gpt, make_fs, make_tree, mbr, run
from tests.support.kernelview import partitions, table_scheme
from tests.support.tables import wipe_primary_gpt, write_mbr

pytestmark = pytest.mark.blockdev

DISK = 128 * MiB


def _tree(work: Path, name: str, seed: int, blob: int = 0) -> Path:
    root = make_tree(work / name, seed=seed, files=24)
    if blob:
        (root / "blob").write_bytes(random.Random(seed).randbytes(blob))
    return root


def _disk(work: Path, seed: int, size: int = DISK) -> Path:
    return fill_random(work / "disk.img", size, seed=seed)


def gpt_efi(work: Path) -> Path:
    disk = _disk(work, 1)
    parts = [Part(MiB, MiB, "bios"), Part(2 * MiB, 30 * MiB, "vfat"), Part(32 * MiB, 80 * MiB, "ext4"),
             Part(112 * MiB, 15 * MiB, "swap")]
    gpt(disk, parts)
    for p in parts[1:]:
        make_fs(disk, p, _tree(work, f"t{p.start}", p.start) if p.fs != "swap" else None)
    return disk


def mbr_logical(work: Path) -> Path:
    disk = _disk(work, 2)
    parts = [Part(MiB, 20 * MiB, "vfat"), Part(22 * MiB, 40 * MiB, "ext3"), Part(63 * MiB, 40 * MiB, "ext2"),
             Part(104 * MiB, 20 * MiB, "swap")]
    mbr(disk, parts, logical_from=1)
    for p in parts:
        make_fs(disk, p, _tree(work, f"t{p.start}", p.start) if p.fs != "swap" else None)
    return disk


def hybrid_mbr(work: Path) -> Path:
    """A GPT behind an MBR whose 0xEE entry sits beside a FAT entry (gdisk's hybrid): Linux uses the GPT."""
    disk = gpt_efi(work)
    write_mbr(disk, [(0, 0x0C, 2 * MiB // SECTOR, 30 * MiB // SECTOR), (0, 0xEE, 1, 2 * MiB // SECTOR - 1)])
    assert len(partitions(disk)) == 4
    return disk


def protective_not_at_lba1(work: Path) -> Path:
    """A GPT behind an 0xEE entry that does not start at LBA 1: efi.c refuses it, msdos.c defers: no partition."""
    disk = gpt_efi(work)
    write_mbr(disk, [(0, 0xEE, 2, DISK // SECTOR - 2)])
    assert partitions(disk) == []
    return disk


def gpt_primary_damaged(work: Path) -> Path:
    """A protective MBR, a GPT whose primary header fails its CRC, a valid backup: firmware may read the
    backup, Linux does not (efi.c reads the header at the last LBA only with the ``gpt`` boot option)."""
    disk = gpt_efi(work)
    with open(disk, "r+b") as f:
        f.seek(SECTOR + 16)
        f.write(b"\xde\xad")
    assert partitions(disk) == []
    return disk


def whole_disk(fs: str, *options: str):
    def build(work: Path) -> Path:
        disk = _disk(work, 3, 64 * MiB)
        make_fs(disk, Part(0, 64 * MiB, fs), _tree(work, "t", 3), options=options)
        return disk
    build.__name__ = "_".join(["whole_disk", fs, *(o.strip("-") for o in options)])
    return build


def _old_gpt_guest(work: Path) -> Path:
    """A volume an earlier guest used: a GPT and two ext4 partitions holding data."""
    disk = _disk(work, 4)
    old = [Part(MiB, 40 * MiB, "ext4"), Part(41 * MiB, 85 * MiB, "ext4")]
    gpt(disk, old)
    make_fs(disk, old[0], _tree(work, "old1", 41))
    make_fs(disk, old[1], _tree(work, "old2", 42, 40 * MiB))
    return disk


def stale_gpt(offset_mib: int, backup_only: bool):
    """The old GPT guest's volume, given to a new guest that made an MBR at ``offset_mib`` without wiping."""
    def build(work: Path) -> Path:
        disk = _old_gpt_guest(work)
        if backup_only:
            wipe_primary_gpt(disk)
        new = Part(offset_mib * MiB, DISK - (offset_mib + 2) * MiB, "ext4")
        run("sfdisk", "-q", "--wipe", "never", disk, input=f"label: dos\nstart={new.start // SECTOR}, "
            f"size={new.size // SECTOR}, type=83\n")
        make_fs(disk, new, _tree(work, "new", 43, 30 * MiB))
        assert table_scheme(disk) == "dos" and [p.start for p in partitions(disk)] == [new.start]
        with open(disk, "rb") as f:  # the stale GPT is still there
            f.seek(DISK - SECTOR)
            assert f.read(8) == b"EFI PART"
        return disk
    build.__name__ = f"stale_gpt_{offset_mib}_{'backup' if backup_only else 'both'}"
    return build


def gpt_4k_sectors(work: Path, loops) -> Path:
    """A GPT written for 4 KiB sectors: on this 512-byte-sector disk the kernel finds no partition at all."""
    disk = _disk(work, 5, 64 * MiB)
    dev = loops.attach(disk, sector_size=4096)
    subprocess.run(["sfdisk", "-q", dev], input="label: gpt\nstart=256, size=8192, type=L\n", text=True,
                   capture_output=True)
    loops.detach(dev)
    make_fs(disk, Part(MiB, 32 * MiB, "ext4"), _tree(work, "t", 5))
    assert partitions(disk) == []
    return disk


def protective_without_gpt(work: Path) -> Path:
    """An MBR with a 0xEE entry and an ext4 entry, no GPT: Linux sees no partition (msdos.c defers to efi.c)."""
    disk = _disk(work, 6, 64 * MiB)
    part = Part(2 * MiB, 40 * MiB, "ext4")
    make_fs(disk, part, _tree(work, "t", 6))
    write_mbr(disk, [(0, 0xEE, 1, 2 * MiB // SECTOR - 1), (0, 0x83, part.start // SECTOR, part.size // SECTOR)])
    assert partitions(disk) == []
    return disk


def overlapping(work: Path) -> Path:
    disk = _disk(work, 7)
    first, second = Part(MiB, 60 * MiB, "ext4"), Part(40 * MiB, 80 * MiB, "ext4")
    make_fs(disk, first, _tree(work, "a", 7, 20 * MiB))
    make_fs(disk, second, _tree(work, "b", 8))
    write_mbr(disk, [(0, 0x83, p.start // SECTOR, p.size // SECTOR) for p in (first, second)])
    return disk


def past_the_end(work: Path) -> Path:
    """Partition 2 runs past the disk's end (the kernel cuts it), partition 3 starts past it (dropped)."""
    disk = _disk(work, 8, 96 * MiB)
    first, second = Part(MiB, 40 * MiB, "ext4"), Part(41 * MiB, 55 * MiB, "ext4")
    for p in (first, second):
        make_fs(disk, p, _tree(work, f"t{p.start}", p.start))
    write_mbr(disk, [(0, 0x83, first.start // SECTOR, first.size // SECTOR),
                     (0, 0x83, second.start // SECTOR, 100 * MiB // SECTOR),
                     (0, 0x83, 200 * MiB // SECTOR, MiB // SECTOR)])
    assert [p.length for p in partitions(disk)] == [first.size, second.size]
    return disk


def fs_larger_than_partition(work: Path) -> Path:
    disk = _disk(work, 9, 96 * MiB)
    make_fs(disk, Part(MiB, 80 * MiB, "ext4"), _tree(work, "t", 9))
    mbr(disk, [Part(MiB, 50 * MiB, "ext4")])
    return disk


BUILDERS = [gpt_efi, mbr_logical, hybrid_mbr, protective_not_at_lba1, gpt_primary_damaged, whole_disk("ext4"),
            whole_disk("vfat", "-F", "16"), whole_disk("vfat", "-F", "32"), protective_without_gpt, overlapping,
            past_the_end, fs_larger_than_partition]
BUILDERS += [stale_gpt(offset, backup) for offset in (1, 2, 8, 41) for backup in (False, True)]


@pytest.mark.parametrize("build", BUILDERS, ids=lambda b: b.__name__)
def test_table(work, loops, build):
    check(build(work), work, loops)


def test_gpt_for_4k_sectors_on_a_512_byte_disk(work, loops):
    check(gpt_4k_sectors(work, loops), work, loops)
