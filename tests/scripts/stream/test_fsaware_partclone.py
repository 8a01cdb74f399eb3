"""xfs and btrfs maps from partclone's domain log (sandboxed), on random-filled file disks.

Filesystems are made in place on a loop device over the random disk's partition (mkfs.xfs -K,
mkfs.btrfs -K --rootdir: no discard, so their free space keeps the random bytes); nothing is
mounted.  The btrfs files are read back with ``btrfs restore``; xfs is checked by xfs_repair -n
(its files are compared through libguestfs in tests/appliance/guest/test_fsaware_export.py).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from osdef.disk import loop
from osdef.stream.fsmap import Unusable
from osdef.stream.fsmap.partclone import parse_domain
from tests.support.stream import export_to_file, import_from_file, read_all
from tests.support.fsdisks import MiB, Part, fill_random, gpt, make_tree, run, tree_sums
from tests.pure.stream.test_fsaware import BIOS, _assert_plan_kept, _plan

pytestmark = pytest.mark.skipif(shutil.which("partclone.xfs") is None or shutil.which("partclone.btrfs") is None,
                                reason="needs partclone")
SIZES = {"xfs": 400 * MiB, "btrfs": 160 * MiB}  # mkfs.xfs wants 300 MB, mkfs.btrfs ~110 MiB


def _root(disk: Path) -> Part:
    return Part(2 * MiB, disk.stat().st_size - 4 * MiB, "raw")


pytestmark = [pytestmark, pytest.mark.blockdev]


def _disk_with(tmp_path: Path, fs: str, tree: Path | None) -> Path:
    disk = fill_random(tmp_path / "disk.img", SIZES[fs])
    root = _root(disk)
    gpt(disk, [BIOS, root])
    with loop.attached(disk, offset=root.start, sizelimit=root.size) as dev:
        if fs == "xfs":
            run("mkfs.xfs", "-q", "-f", "-K", dev)
        else:
            run("mkfs.btrfs", "-q", "-f", "-K", *(["--rootdir", tree] if tree else []), dev)
    return disk


def _partition_file(disk: Path, out: Path) -> Path:
    root = _root(disk)
    run("dd", f"if={disk}", f"of={out}", "bs=1M", f"skip={root.start // MiB}", f"count={root.size // MiB}",
        "status=none")
    return out


def _roundtrip(disk: Path, tmp_path: Path) -> tuple[Path, int, list[str]]:
    warnings: list[str] = []
    n, announced = export_to_file(disk, tmp_path / "stream", warn=warnings.append)
    assert n == announced
    target = fill_random(tmp_path / "target.img", disk.stat().st_size, seed=77)
    import_from_file(tmp_path / "stream", target)
    return target, n, warnings


def test_xfs_is_mapped(tmp_path):
    disk = _disk_with(tmp_path, "xfs", None)
    assert _plan(disk).mapped_partitions == 1
    target, n, warnings = _roundtrip(disk, tmp_path)
    assert warnings == [] and n < 80 * MiB  # the log and metadata, not 396 MiB of random bytes
    part = _partition_file(target, tmp_path / "p.img")
    assert subprocess.run(["xfs_repair", "-n", "-f", str(part)], capture_output=True).returncode == 0
    _assert_plan_kept(disk, target)


def test_btrfs_is_mapped_and_its_files_survive(tmp_path):
    tree = make_tree(tmp_path / "tree", files=30)
    disk = _disk_with(tmp_path, "btrfs", tree)
    assert _plan(disk).mapped_partitions == 1
    target, n, warnings = _roundtrip(disk, tmp_path)
    assert warnings == [] and n < 3 * 6 * MiB + 4 * MiB
    part = _partition_file(target, tmp_path / "p.img")
    assert subprocess.run(["btrfs", "check", "--readonly", str(part)], capture_output=True).returncode == 0
    out = tmp_path / "restored"
    out.mkdir()
    run("btrfs", "restore", "-S", part, out)
    assert tree_sums(out) == tree_sums(tree)
    _assert_plan_kept(disk, target)


def test_btrfs_with_a_log_tree_falls_back(tmp_path):
    disk = _disk_with(tmp_path, "btrfs", None)
    root = _root(disk)
    with open(disk, "r+b") as f:  # log_root in the superblock: an fsync log that awaits replay
        f.seek(root.start + 0x10000 + 0x60)
        f.write((12345 * 4096).to_bytes(8, "little"))
    target, n, warnings = _roundtrip(disk, tmp_path)
    assert len(warnings) == 1 and "partition 2" in warnings[0] and "log tree" in warnings[0], warnings
    end = root.start + root.size
    assert read_all(target)[root.start:end] == read_all(disk)[root.start:end]


def test_a_dirty_xfs_log_falls_back(tmp_path, monkeypatch):
    """xfs_logprint not saying <CLEAN> (a log with transactions) refuses the map."""
    from osdef.stream.fsmap import partclone

    disk = _disk_with(tmp_path, "xfs", None)
    real = partclone._sandboxed

    def dirty(argv, device):
        done = real(argv, device)
        if argv[0] == "xfs_logprint":
            done.stdout = done.stdout.replace(b"<CLEAN>", b"<DIRTY>")
        return done

    monkeypatch.setattr(partclone, "_sandboxed", dirty)
    warnings: list[str] = []
    plan = _plan(disk, warnings)
    assert plan.mapped_partitions == 0
    assert len(warnings) == 1 and "xfs log is not clean" in warnings[0]


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="0x123456789ABCDEF?+-/* #\n\t", max_size=300))
def test_domain_logs_that_do_not_check_out_are_refused(text):
    try:
        used, covered = parse_domain(text, 1 << 20)
    except Unusable:
        return
    pos = 0
    for start, size in used:
        assert start >= pos and size > 0 and start + size <= covered <= 1 << 20
        pos = start + size


def test_a_domain_log_is_read():
    text = ("# Domain logfile\n0x00300000     ?\n#      pos        size  status\n"
            "0x00000000  0x00014000  +\n0x00014000  0x00100000  ?\n0x00114000  0x00001000  +\n")
    assert parse_domain(text, 1 << 22) == ([(0, 0x14000), (0x114000, 0x1000)], 0x115000)
    with pytest.raises(Unusable):
        parse_domain("0x0 0x10 +\n0x20 0x10 +\n", 1 << 20)  # a gap
    with pytest.raises(Unusable):
        parse_domain("0x0 0x10 +\n0x10 0x100000 +\n", 1 << 20)  # past the partition


def test_the_tools_run_unprivileged_and_see_only_their_device(tmp_path):
    """The sandbox: nobody, no capabilities, no network, one device node of its own (read-only)."""
    from osdef.stream.fsmap import partclone

    img = tmp_path / "d.img"
    img.write_bytes(b"\x5a" * (1 << 20))
    with loop.attached(img, read_only=True) as dev:
        script = ('id -u; grep CapEff /proc/self/status; ls /tmp; wc -l < /proc/net/dev; '
                  'head -c 512 "$0" | wc -c; head -c 512 ' + dev + ' | wc -c; '
                  'dd if=/dev/zero of="$0" bs=512 count=1 conv=notrunc 2>/dev/null && echo wrote || echo no-write')
        done = partclone._sandboxed(["sh", "-c", script, dev], dev)  # "$0": the sandbox's own node of dev
    lines = done.stdout.decode().split("\n")
    assert lines[0] == "65534", lines
    assert lines[1].split()[1] == "0000000000000000", lines  # no capabilities
    assert lines[2] == "osdef-fs", lines  # the private tmpfs holds its device node, nothing else
    assert lines[3] == "3", lines  # /proc/net/dev: two header lines and lo only
    assert lines[4:7] == ["512", "0", "no-write"], lines  # its node reads; the host's node does not; no writes
    assert img.read_bytes()[:512] == b"\x5a" * 512
