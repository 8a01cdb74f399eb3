"""FAT12/16/32 with every cluster size (mkfs.vfat -s 1..128), judged by dosfstools and 7-Zip.

Each disk is random old data, an MBR with one ESP-typed partition at 1 MiB,
a FAT made there by mkfs.vfat and filled with a tree (mtools; the FAT32s with
fewer than 65525 clusters, which mtools 4.0.32 cannot write, by
tests/support/fatwrite).  Among them the ESP layouts of issue 25: FAT32 with
8 sectors per cluster on 100 MiB and with 4 KiB sectors on 160 MiB.
"""

from __future__ import annotations

import pytest

from tests.support import fatoracle
from tests.support.bytecompare import extract
from tests.support.differential import check
from tests.support.fsdisks import MiB, Part, fill_random, make_fs, make_tree, mbr, tree_sums, without_symlinks

pytestmark = pytest.mark.blockdev

CLUSTERS = (1, 2, 4, 8, 16, 32, 64, 128)
FAT12_MIB = {1: 2, 2: 3, 4: 6, 8: 12}  # FAT12 stays under 4085 clusters; 24 MiB from 16 sectors per cluster on
FAT16_CLUSTERS = 4300  # just over FAT16's 4085-cluster floor, to keep the large-cluster disks small


def _size(bits: int, spc: int) -> int:
    if bits == 12:
        return FAT12_MIB.get(spc, 24) * MiB
    if bits == 16:
        return (-(-FAT16_CLUSTERS * spc * 512 // MiB) + 1) * MiB
    return 100 * MiB


CASES = [pytest.param(bits, ("-s", str(spc)), _size(bits, spc), id=f"fat{bits}-s{spc}")
         for bits in (12, 16, 32) for spc in CLUSTERS]
CASES.append(pytest.param(32, ("-S", "4096"), 160 * MiB, id="fat32-4k-sectors"))


@pytest.mark.parametrize("bits,options,size", CASES)
def test_fat(work, loops, bits, options, size):
    part = Part(MiB, size, "vfat")
    tree = make_tree(work / "tree", seed=bits, files=24, max_size=size // 80)
    disk = fill_random(work / "disk.img", size + 2 * MiB, seed=size + bits)
    mbr(disk, [part])
    make_fs(disk, part, tree, options=("-F", str(bits), *options))
    image = extract(disk, part.start, part.size, work / "fs.img")
    assert fatoracle.verdict(image)[0] == 0, "fsck.fat -n must find the source clean"
    assert fatoracle.layout(image).bits == bits
    assert fatoracle.files(image, work / "fs")["contents"] == without_symlinks(tree_sums(tree))
    image.unlink()
    check(disk, work, loops)
