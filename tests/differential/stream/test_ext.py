"""ext2/3/4 feature matrix and group metadata that lies, judged by e2fsprogs.

Each disk is random old data, a GPT with one Linux partition at 1 MiB and an
ext filesystem made there over the garbage (no discard: free blocks and, with
lazy_itable_init, inode tables keep the old bytes) and filled by mke2fs -d
with a tree and a 20 MiB file that spans block groups.  Some cases are then
changed with debugfs as a kernel bug, bit rot or an old tool leaves them:
files deleted, descriptor flags set (BLOCK_UNINIT / INODE_UNINIT, with and
without group checksums, with a checksum that verifies or not), an
itable_unused count that hides inodes in use, a used block freed in its
bitmap with the counts kept right (``freeb``).
"""

from __future__ import annotations

import random
import subprocess
from pathlib import Path

import pytest

from tests.support import extoracle
from tests.support.bytecompare import extract, put
from tests.support.differential import check
from tests.support.fsdisks import MiB, Part, fill_random, gpt, make_fs, make_tree

pytestmark = pytest.mark.blockdev

SIZE = 96 * MiB
BIG = 20 * MiB  # /big/blob: spans several block groups at every block size
NO_CSUM = "^metadata_csum,^uninit_bg"  # no group checksums: the flags mean nothing (ext2fs_has_group_desc_csum)
INODE_UNINIT, BLOCK_UNINIT = 1, 2
FLAGS = {INODE_UNINIT: "INODE_UNINIT", BLOCK_UNINIT: "BLOCK_UNINIT", 4: "ITABLE_ZEROED"}


def _run_debugfs(image: Path, *commands: str) -> None:
    """Change ``image`` with debugfs -w, all ``commands`` in one session (a checksum is computed last)."""
    script = image.with_suffix(".cmds")
    script.write_text("".join(c + "\n" for c in commands))
    subprocess.run(["debugfs", "-w", "-f", str(script), str(image)], check=True, capture_output=True)
    script.unlink()


def _header(image: Path, key: str) -> int:
    out = subprocess.run(["dumpe2fs", "-h", str(image)], check=True, capture_output=True, text=True).stdout
    return int(next(ln.split(":", 1)[1] for ln in out.splitlines() if ln.startswith(key + ":")))


def _blob_group(image: Path) -> int:
    """The block group holding the middle of /big/blob."""
    bs = _header(image, "Block size")
    out = extoracle.debugfs(image, f"bmap /big/blob {BIG // bs // 2}")
    block = int(out.split("debugfs: ")[1].splitlines()[1])
    return (block - _header(image, "First block")) // _header(image, "Blocks per group")


def _busy_inode_group(image: Path) -> int:
    """The last block group with an inode in use (the files spill past group 0: few inodes per group)."""
    out = extoracle.debugfs(image, "ls -p /dir4")
    inodes = [int(ln.split("/")[1]) for ln in out.splitlines() if ln.startswith("/") and ln.split("/")[1].isdigit()]
    return (max(inodes) - 1) // _header(image, "Inodes per group")


def _flags(image: Path, group: int) -> int:
    """The group's descriptor flags as dumpe2fs names them."""
    out = subprocess.run(["dumpe2fs", str(image)], capture_output=True, text=True).stdout
    line = next(ln for ln in out.splitlines() if ln.startswith(f"Group {group}:"))
    return sum(bit for bit, name in FLAGS.items() if name in line)


def _set_flag(image: Path, group: int, bit: int, *, checksum: bool) -> None:
    """Add ``bit`` to the group's flags (keeping the others); recompute its checksum or leave it stale."""
    commands = [f"set_bg {group} flags {_flags(image, group) | bit}"]
    _run_debugfs(image, *commands, *([f"set_bg {group} checksum calc"] if checksum else []))


def deleted(image: Path) -> None:
    _run_debugfs(image, "rm /dir1/file1.bin", "rm /dir2/sub/file12.bin", "rm /dir3/file8.bin")


def block_uninit(image: Path) -> None:
    _set_flag(image, _blob_group(image), BLOCK_UNINIT, checksum=False)


def block_uninit_csum_ok(image: Path) -> None:
    _set_flag(image, _blob_group(image), BLOCK_UNINIT, checksum=True)


def inode_uninit(image: Path) -> None:
    _set_flag(image, _busy_inode_group(image), INODE_UNINIT, checksum=False)


def inode_uninit_csum_ok(image: Path) -> None:
    _set_flag(image, _busy_inode_group(image), INODE_UNINIT, checksum=True)


def itable_unused_csum_ok(image: Path) -> None:
    group = _busy_inode_group(image)
    ipg = _header(image, "Inodes per group")
    _run_debugfs(image, f"set_bg {group} itable_unused {ipg}", f"set_bg {group} checksum calc")


def freed_block(image: Path) -> None:
    """8 blocks of /big/blob marked free in their bitmap, the group's and the superblock's counts kept right."""
    bs, bpg, first = (_header(image, k) for k in ("Block size", "Blocks per group", "First block"))
    out = extoracle.debugfs(image, f"bmap /big/blob {BIG // bs // 3}")
    block = int(out.split("debugfs: ")[1].splitlines()[1])
    group = (block - first) // bpg
    dump = subprocess.run(["dumpe2fs", str(image)], capture_output=True, text=True).stdout
    free = int(dump.split(f"Group {group}:", 1)[1].split(" free blocks,", 1)[0].rsplit(None, 1)[1])
    _run_debugfs(image, f"freeb {block} 8", f"set_bg {group} free_blocks_count {free + 8}",
                 f"set_bg {group} checksum calc", f"ssv free_blocks_count {_header(image, 'Free blocks') + 8}")


# id: (filesystem, mke2fs options, change made afterwards with debugfs)
CASES = {
    "ext4-4k": ("ext4", ("-b", "4096", "-g", "8192"), None),
    "ext4-2k": ("ext4", ("-b", "2048", "-g", "8192"), None),
    "ext4-1k": ("ext4", ("-b", "1024"), None),
    "ext4-no-flex_bg": ("ext4", ("-O", "^flex_bg"), None),
    "ext4-no-64bit": ("ext4", ("-b", "4096", "-g", "8192", "-O", "^64bit"), None),
    "ext4-sparse_super2": ("ext4", ("-O", "sparse_super2", "-E", "num_backup_sb=1"), None),
    "ext4-no-journal": ("ext4", ("-O", "^has_journal"), None),
    "ext4-no-group-csum": ("ext4", ("-O", NO_CSUM), None),
    "ext4-uninit_bg": ("ext4", ("-O", "^metadata_csum,uninit_bg"), None),
    "ext4-lazy-itable": ("ext4", ("-E", "lazy_itable_init=1"), None),
    "ext4-inline_data": ("ext4", ("-O", "inline_data"), None),
    "ext4-128-byte-inodes": ("ext4", ("-I", "128", "-O", "^metadata_csum,uninit_bg"), None),
    "ext4-meta_bg": ("ext4", ("-O", "meta_bg,^resize_inode"), None),
    "ext4-bigalloc": ("ext4", ("-b", "4096", "-O", "bigalloc", "-C", "16384"), None),
    "ext3-4k": ("ext3", ("-b", "4096", "-g", "8192"), None),
    "ext3-1k": ("ext3", ("-b", "1024"), None),
    "ext2-1k": ("ext2", ("-b", "1024"), None),
    "ext2-4k": ("ext2", ("-b", "4096", "-g", "8192"), None),
    "ext4-deleted-files": ("ext4", (), deleted),
    "ext3-deleted-files": ("ext3", ("-b", "1024"), deleted),
    # issue 25, item 3: the flag without group checksums (the kernel and libext2fs ignore it)
    "block_uninit-without-csum": ("ext4", ("-O", NO_CSUM), block_uninit),
    "inode_uninit-without-csum": ("ext4", ("-N", "64", "-O", NO_CSUM), inode_uninit),
    # a flag whose descriptor checksum does not verify (libext2fs ignores it)
    "block_uninit-bad-crc32c": ("ext4", (), block_uninit),
    "block_uninit-bad-crc16": ("ext4", ("-O", "^metadata_csum,uninit_bg"), block_uninit),
    "inode_uninit-bad-crc32c": ("ext4", ("-N", "64"), inode_uninit),
    # issue 25, item 4: group metadata that contradicts the inodes and blocks in use, checksums right
    "block_uninit-on-used-blocks": ("ext4", (), block_uninit_csum_ok),
    "inode_uninit-on-used-inodes": ("ext4", ("-N", "64"), inode_uninit_csum_ok),
    "itable_unused-over-used-inodes": ("ext4", ("-N", "64"), itable_unused_csum_ok),
    "used-blocks-freed-in-bitmap": ("ext4", (), freed_block),
}


def _tree(root: Path) -> Path:
    make_tree(root)
    (root / "big").mkdir()
    (root / "big" / "blob").write_bytes(random.Random(5).randbytes(BIG))
    return root


@pytest.mark.parametrize("case", CASES)
def test_ext(work, loops, case):
    fs, options, change = CASES[case]
    part = Part(MiB, SIZE, fs)
    disk = fill_random(work / "disk.img", SIZE + 2 * MiB, seed=len(case))
    gpt(disk, [part])
    make_fs(disk, part, _tree(work / "tree"), options=options)
    image = extract(disk, part.start, part.size, work / "fs.img")
    assert extoracle.verdict(image)[0] == 0, "e2fsck -fn must find what mke2fs made clean"
    if change is not None:
        change(image)
        put(disk, part.start, image)
    image.unlink()
    check(disk, work, loops)
