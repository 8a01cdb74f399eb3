"""Filesystem-aware export of unmapped block devices (an LVM/DRBD volume that held older data).

The source is a loop device whose backing file was filled with random bytes,
given a GPT (BIOS boot, ext4 root populated by mke2fs -d, swap) and then
deleted, so osdef sees a block device without an allocation map; the target
is another such device.  Only the block-level segments are pre-scanned, the
used ones are sized from the map; the import is e2fsck-clean with every file
identical (debugfs rdump, no mount).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from osdef.stream import export as export_mod
from osdef.stream import extents
from tests.support.stream import export_to_file, import_from_file, read_all
from tests.support.fsdisks import MiB, Part, fill_random, gpt, make_fs, make_tree, run, tree_sums

pytestmark = pytest.mark.blockdev

DISK = 160 * MiB
BIOS = Part(1 * MiB, 1 * MiB, "bios")
ROOT = Part(2 * MiB, 142 * MiB, "ext4")
SWAP = Part(144 * MiB, 15 * MiB, "swap")  # the last MiB holds the GPT backup


def _deleted_backing(loops, path: Path) -> str:
    dev = loops.attach(path)
    path.unlink()
    return dev


def _ext_dev(loops, dev: str, part: Part) -> str:
    return loops.attach(dev, read_only=True, offset=part.start, sizelimit=part.size)


@pytest.fixture
def source(loops, tmp_path):
    tree = make_tree(tmp_path / "tree", files=60)
    disk = fill_random(tmp_path / "src.img", DISK, seed=11)
    gpt(disk, [BIOS, ROOT, SWAP])
    for p in (ROOT, SWAP):
        make_fs(disk, p, tree, 4096)
    return _deleted_backing(loops, disk), tree


def test_an_unmapped_device_sends_its_used_blocks_only(loops, tmp_path, source, monkeypatch):
    dev, tree = source
    scanned = []
    real_scan = export_mod.scan_disk

    def scan(*args, **kwargs):
        result = real_scan(*args, **kwargs)
        scanned.append(result.bytes_read)
        return result

    monkeypatch.setattr(export_mod, "scan_disk", scan)
    warnings = []
    stream = tmp_path / "stream"
    n, announced = export_to_file(dev, stream, warn=warnings.append)
    assert n == announced and warnings == []
    assert scanned and scanned[0] <= 4 * MiB  # the pre-scan read the block-level segments only
    used = sum(p.stat().st_size for p in tree.rglob("*") if p.is_file() and not p.is_symlink())
    assert n < used + 2 * MiB + 12 * MiB  # + BIOS/GPT/scan + ext metadata (journal)
    target = _deleted_backing(loops, fill_random(tmp_path / "tgt.img", DISK, seed=12))
    import_from_file(stream, target)
    root = _ext_dev(loops, target, ROOT)
    assert run("e2fsck", "-fn", root).returncode == 0
    out = tmp_path / "out"
    out.mkdir()
    run("debugfs", "-R", f"rdump / {out}", root)
    assert tree_sums(out) == tree_sums(tree)
    with open(target, "rb") as f:
        f.seek(SWAP.start)
        head = f.read(SWAP.size)
    assert head[4086:4096] == b"SWAPSPACE2" and head[4096:] == bytes(SWAP.size - 4096)


def test_needs_recovery_on_a_device_falls_back(loops, tmp_path, source):
    dev, _ = source
    root = loops.attach(dev, offset=ROOT.start, sizelimit=ROOT.size)
    run("debugfs", "-w", "-R", "feature needs_recovery", root)
    loops.detach(root)
    warnings = []
    stream = tmp_path / "stream"
    n, announced = export_to_file(dev, stream, warn=warnings.append)
    assert n == announced and len(warnings) == 1 and "partition 2" in warnings[0], warnings
    assert n > ROOT.size // 2  # the partition's garbage is sent: block level
    target = _deleted_backing(loops, fill_random(tmp_path / "tgt.img", DISK, seed=13))
    import_from_file(stream, target)
    with open(dev, "rb") as a, open(target, "rb") as b:
        a.seek(ROOT.start)
        b.seek(ROOT.start)
        assert a.read(ROOT.size) == b.read(ROOT.size)


def test_allocated_on_a_device_is_byte_identical(loops, tmp_path, source):
    dev, _ = source
    stream = tmp_path / "stream"
    n, announced = export_to_file(dev, stream, content="allocated")
    assert n == announced and n > DISK // 2
    target = _deleted_backing(loops, fill_random(tmp_path / "tgt.img", DISK, seed=14))
    import_from_file(stream, target)
    assert read_all(target) == read_all(dev)


def test_a_mapped_loop_device_intersects_its_map(loops, tmp_path):
    """A loop device with its backing file (osdef's ExtStorage volume): the map and the used blocks agree."""
    tree = make_tree(tmp_path / "tree", files=20)
    disk = tmp_path / "sparse.img"
    with open(disk, "wb") as f:
        f.truncate(DISK)
    gpt(disk, [BIOS, ROOT, SWAP])
    make_fs(disk, ROOT, tree)
    dev = loops.attach(disk)
    stream = tmp_path / "stream"
    n, announced = export_to_file(dev, stream)
    assert n == announced
    with open(dev, "rb") as f:
        from osdef.stream.blockio import open_disk
        with open_disk(dev, write=False) as d:
            assert extents.plan_extents(d) is not None
    target = tmp_path / "t.img"
    with open(target, "wb") as f:
        f.truncate(DISK)
    import_from_file(stream, target)
    assert read_all(target)[ROOT.start:ROOT.start + 4096] == read_all(disk)[ROOT.start:ROOT.start + 4096]
    assert run("e2fsck", "-fn", f"{target}?offset={ROOT.start}").returncode == 0
    os.unlink(target)
