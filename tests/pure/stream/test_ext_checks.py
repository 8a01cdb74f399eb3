"""ext: the group checks and the inode walk, each made to fire by the tools that define the format.

A bitmap that calls a used block free (debugfs ``freeb``: bitmap, free counts and
checksums all updated, the filesystem still flagged clean), a bitmap or descriptor
whose checksum fails, ext2/ext3 block maps and ext4 extent trees, fast and slow
symlinks, xattr blocks: each either maps (files identical after a round trip,
checked with debugfs) or sends the partition at block level with one line.
"""

from __future__ import annotations

import re
import struct
from pathlib import Path

import pytest

from osdef.stream.blockio import open_disk
from osdef.stream.content import BLOCK, USED, plan_content
from osdef.disk.ondisk.ext import Superblock, parse_group
from tests.support.fsdisks import MiB, Part, ext_files, fill_random, make_tree, run, tree_sums
from tests.support.stream import export_to_file, import_from_file

DISK = 48 * MiB
WHOLE = Part(0, DISK, "ext4")


def _plan(path: Path):
    warnings: list[str] = []
    with open_disk(path, write=False) as d:
        return plan_content(d, warnings.append), warnings


def _debugfs(path: Path, *cmds: str, write: bool = False) -> str:
    """Run debugfs requests in one session (-f: a single -R runs only the last request given)."""
    if len(cmds) == 1:
        return run("debugfs", *(["-w"] if write else []), "-R", cmds[0], path).stdout
    script = path.with_suffix(".debugfs")
    script.write_text("\n".join(cmds) + "\n")
    return run("debugfs", *(["-w"] if write else []), "-f", script, path).stdout


def _fs(tmp_path: Path, kind: str, features: str | None = None, tree: Path | None = None) -> Path:
    disk = fill_random(tmp_path / "disk.img", DISK)
    argv = ["mke2fs", "-q", "-F", "-t", kind, "-E", "nodiscard"]
    if features:
        argv += ["-O", features]
    if tree is not None:
        argv += ["-d", tree]
    run(*argv, disk)
    return disk


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    root = make_tree(tmp_path_factory.mktemp("tree") / "root", files=30, max_size=400_000)
    (root / "big.bin").write_bytes(bytes(range(256)) * 20_000)  # 5 MB: indirect blocks on ext2/3
    (root / "short-link").symlink_to("dir0")  # a fast symlink
    (root / "long-link").symlink_to("x" * 200)  # a slow one: a block (or an extent) of its own
    return root


def _free_block(disk: Path, block: int) -> None:
    """Clear a used block's bitmap bit and count it free everywhere, checksums recomputed: a consistent lie."""
    info = run("dumpe2fs", disk).stdout
    per_group = int(re.search(r"Blocks per group:\s+(\d+)", info).group(1))
    first = int(re.search(r"First block:\s+(\d+)", info).group(1))
    group = (block - first) // per_group
    free = int(re.search(rf"^Group {group}:.*?(\d+) free blocks", info, re.S | re.M).group(1))
    total = int(re.search(r"^Free blocks:\s+(\d+)", info, re.M).group(1))
    _debugfs(disk, f"freeb {block}", f"set_bg {group} free_blocks_count {free + 1}", f"set_bg {group} checksum calc",
             f"ssv free_blocks_count {total + 1}", write=True)


def _first_data_block(disk: Path, name: str) -> int:
    out = _debugfs(disk, f"blocks /{name}")
    return int(out.split()[0])


@pytest.mark.parametrize("kind", ["ext2", "ext3", "ext4"])
def test_a_used_block_the_bitmap_calls_free_sends_the_filesystem_at_block_level(tmp_path, tree, kind):
    disk = _fs(tmp_path, kind, tree=tree)
    plan, warnings = _plan(disk)
    assert plan.mapped_partitions == 1 and warnings == []
    block = _first_data_block(disk, "big.bin")
    _free_block(disk, block)
    assert "clean" in run("dumpe2fs", "-h", disk).stdout.split("Filesystem state:")[1].splitlines()[0]
    plan, warnings = _plan(disk)
    assert plan.mapped_partitions == 0 and plan.partitions[0].mode == BLOCK
    assert len(warnings) == 1 and f"use block {block}, which its bitmaps call free" in warnings[0]
    stream = tmp_path / "stream"
    export_to_file(disk, stream)
    target = fill_random(tmp_path / "target.img", DISK, seed=9)
    import_from_file(stream, target)
    assert ext_files(target, WHOLE, tmp_path / "out") == tree_sums(tree)


@pytest.mark.parametrize("kind,features", [("ext2", None), ("ext3", None), ("ext4", None),
                                           ("ext4", "^metadata_csum,^uninit_bg"), ("ext4", "^extent,^64bit,^flex_bg")])
def test_files_of_every_kind_round_trip_through_the_walk(tmp_path, tree, kind, features):
    disk = _fs(tmp_path, kind, features, tree=tree)
    plan, warnings = _plan(disk)
    assert warnings == [] and plan.partitions[0].mode == USED
    assert "inode walk" in plan.partitions[0].source
    stream = tmp_path / "stream"
    export_to_file(disk, stream)
    target = fill_random(tmp_path / "target.img", DISK, seed=9)
    import_from_file(stream, target)
    assert ext_files(target, WHOLE, tmp_path / "out") == tree_sums(tree)
    assert run("e2fsck", "-fn", target).returncode == 0


def test_an_xattr_block_is_walked(tmp_path, tree):
    disk = _fs(tmp_path, "ext4", "^inline_data", tree=tree)
    value = tmp_path / "value"
    value.write_bytes(b"v" * 300)  # too big for the inode's spare bytes: an xattr block
    _debugfs(disk, f"ea_set -f {value} /big.bin user.big", write=True)
    acl = int(re.search(r"File ACL: (\d+)", _debugfs(disk, "stat /big.bin")).group(1))
    assert acl
    plan, warnings = _plan(disk)
    assert warnings == [] and plan.mapped_partitions == 1
    _free_block(disk, acl)
    plan, warnings = _plan(disk)
    assert plan.mapped_partitions == 0 and f"use block {acl}" in warnings[0]


def _group_desc_offset(disk: Path) -> tuple[int, int]:
    """(byte offset of group 0's descriptor, descriptor size)."""
    with open(disk, "rb") as f:
        f.seek(1024)
        sb = Superblock(f.read(1024), DISK)
    return (sb.first_data_block + 1) * sb.block_size, sb.desc_size


def test_a_descriptor_whose_checksum_fails_is_not_believed(tmp_path, tree):
    disk = _fs(tmp_path, "ext4", tree=tree)
    at, _ = _group_desc_offset(disk)
    with open(disk, "r+b") as f:
        f.seek(at + 0x1E)
        csum, = struct.unpack("<H", f.read(2))
        f.seek(at + 0x1E)
        f.write(struct.pack("<H", csum ^ 1))
    plan, warnings = _plan(disk)
    assert plan.mapped_partitions == 0 and "group 0's descriptor does not verify" in warnings[0]


def test_a_block_bitmap_whose_crc32c_fails_is_not_believed(tmp_path, tree):
    disk = _fs(tmp_path, "ext4", tree=tree)
    info = run("dumpe2fs", disk).stdout
    bs = int(re.search(r"Block size:\s+(\d+)", info).group(1))
    with open(disk, "r+b") as f:  # two differing bytes swapped: the count still agrees, the crc32c does not
        groups = re.findall(r"^Group (\d+): [^\n]*?(\[[^\n]*\])?\n.*?Block bitmap at (\d+)", info, re.S | re.M)
        for group, flags, bitmap in ((int(g), fl, int(b)) for g, fl, b in groups):
            if "BLOCK_UNINIT" in flags:  # its bitmap block is never read (here: random bytes)
                continue
            f.seek(bitmap * bs)
            bits = f.read(bs // 2)
            i = next((i for i in range(len(bits) - 1) if bits[i] != bits[i + 1]), None)
            if i is not None:
                break
        f.seek(bitmap * bs + i)
        f.write(bytes([bits[i + 1], bits[i]]))
    plan, warnings = _plan(disk)
    assert f"block bitmap of its ext group {group} fails its checksum" in warnings[0]


def test_itable_unused_high_half_is_read_from_0x32():
    """struct ext4_group_desc: bg_itable_unused_hi at 0x32 (0x36 is bg_exclude_bitmap_hi's second half)."""
    sb_raw = bytearray(1024)
    struct.pack_into("<11I", sb_raw, 0, 8192, 32768, 0, 0, 0, 0, 2, 2, 32768, 32768, 8192)
    struct.pack_into("<H", sb_raw, 56, 0xEF53)
    struct.pack_into("<IH", sb_raw, 84, 11, 256)
    struct.pack_into("<I", sb_raw, 76, 1)
    struct.pack_into("<III", sb_raw, 92, 0, 0x80, 0)  # 64bit
    struct.pack_into("<H", sb_raw, 254, 64)
    sb = Superblock(bytes(sb_raw), 1 << 30)
    desc = bytearray(64)
    struct.pack_into("<H", desc, 0x1C, 5)
    struct.pack_into("<H", desc, 0x32, 1)
    struct.pack_into("<H", desc, 0x36, 7)
    assert parse_group(sb, 0, bytes(desc)).itable_unused == (1 << 16) + 5


def test_a_bitmap_on_a_reserved_descriptor_block_is_a_second_reading(tmp_path, tree):
    """libext2fs refuses such descriptors and e2fsck reads the backups: block level (a differential mutant)."""
    disk = _fs(tmp_path, "ext4", tree=tree)
    reserved = re.search(r"Reserved GDT blocks at (\d+)-", run("dumpe2fs", disk).stdout)
    _debugfs(disk, f"set_bg 1 inode_bitmap {int(reserved.group(1)) + 5}", "set_bg 1 checksum calc", write=True)
    plan, warnings = _plan(disk)
    assert plan.mapped_partitions == 0 and "the superblocks and descriptors" in warnings[0]


def test_a_superblock_failing_its_checksum_is_not_believed(tmp_path, tree):
    disk = _fs(tmp_path, "ext4", tree=tree)
    with open(disk, "r+b") as f:
        f.seek(1024 + 0x78)  # s_volume_name: changed without the superblock's crc32c
        f.write(b"not-the-label")
    plan, warnings = _plan(disk)
    assert plan.mapped_partitions == 0 and "superblock fails its checksum" in warnings[0]


def test_inode_uninit_over_a_partly_initialised_inode_table_is_a_second_reading(tmp_path, tree):
    """INODE_UNINIT says no inode of the group was ever used; bg_itable_unused below the group's inode count says
    its head was.  Linux and libext2fs follow the flag (none of the table is read), a reader that drops it reads
    the head; e2fsck -fn calls such a filesystem clean.  A differential mutant (crc16 group checksums)."""
    disk = _fs(tmp_path, "ext4", "^metadata_csum,uninit_bg", tree=tree)
    info = run("dumpe2fs", disk).stdout
    ipg = int(re.search(r"Inodes per group:\s+(\d+)", info).group(1))
    group = int(re.search(r"^Group (\d+): .*INODE_UNINIT", info, re.M).group(1))
    plan, warnings = _plan(disk)
    assert plan.mapped_partitions == 1 and warnings == []
    _debugfs(disk, f"set_bg {group} itable_unused {ipg - 10}", f"set_bg {group} checksum calc", write=True)
    run("e2fsck", "-fn", disk)  # exit 0: clean
    plan, warnings = _plan(disk)
    assert plan.mapped_partitions == 0
    assert f"group {group} is marked INODE_UNINIT but counts {ipg - 10} of its {ipg} inodes unused" in warnings[0]
