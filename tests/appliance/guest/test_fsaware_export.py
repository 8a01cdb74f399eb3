"""Filesystem-aware export of created guests: created on a random-filled unmapped loop device,
exported, imported onto another random-filled device, every file's checksum compared through a
read-only appliance (no host mount).

Two appliance launches per guest (create, compare); the ext4 root is mapped by osdef's bitmap
parser, the xfs and btrfs ones by sandboxed partclone.xfs/partclone.btrfs -D.
"""

from __future__ import annotations

import contextlib
import os
import random
import subprocess
import tempfile
from pathlib import Path

import guestfs
import pytest

from osdef.disk import loop
from osdef.create.pipeline import ImageData, install_root
from osdef.create.plan import CreatePlan
from osdef.guest.session import configure
from osdef.stream.blockio import open_disk
from osdef.stream.content import plan_content
from tests.support.stream import export_to_file, import_from_file

from tests.support.guest import MiB

pytestmark = [pytest.mark.guestfs, pytest.mark.blockdev]
DISK = 512 * MiB


def _random_device(path: Path, seed: int) -> str:
    rng = random.Random(seed)
    with open(path, "wb") as f:
        for _ in range(DISK // (4 * MiB)):
            f.write(rng.randbytes(4 * MiB))
    dev = loop.attach(path)
    path.unlink()  # deleted backing file: osdef sees an unmapped block device, as LVM/DRBD
    return dev


def _checksums(g: guestfs.GuestFS, root: str) -> dict[str, str]:
    g.mount_ro(root, "/")
    try:
        with tempfile.NamedTemporaryFile() as out:
            g.checksums_out("sha256", "/", out.name)
            lines = Path(out.name).read_text(errors="replace").splitlines()
    finally:
        g.umount_all()
    return {name: checksum for checksum, _, name in (ln.partition("  ") for ln in lines)}


@pytest.fixture
def devices():
    if os.geteuid() != 0:
        pytest.skip("needs root and loop devices")
    made: list[str] = []
    yield made
    for dev in made:
        with contextlib.suppress(loop.LoopError):
            loop.detach(dev)


@pytest.mark.parametrize("fs_type", ["ext4", "xfs", "btrfs"])
def test_created_guest_round_trip(tmp_path, guest_images, settings, devices, fs_type):
    src = _random_device(tmp_path / "src.img", 1)
    dst = _random_device(tmp_path / "dst.img", 2)
    devices += [src, dst]
    logs: list[str] = []
    with open(guest_images.tarball, "rb") as stream:
        install_root(Path(src), ImageData(stream, guest_images.tarball.stat().st_size),
                     CreatePlan(layout="tar", hostname="web1.example.org", boot="none", table="gpt",
                                fs_type=fs_type), settings, logs.append)
    warnings: list[str] = []
    with open_disk(src, write=False) as disk:
        assert plan_content(disk, warnings.append).mapped_partitions == 1  # the root; BIOS boot: block level
    n, announced = export_to_file(src, tmp_path / "stream", warn=warnings.append)
    assert n == announced and warnings == []
    import_from_file(tmp_path / "stream", dst)
    g = guestfs.GuestFS(python_return_dict=True)
    try:
        configure(g, settings)
        g.add_drive_opts(src, format="raw", readonly=True)
        g.add_drive_opts(dst, format="raw", readonly=True)
        g.launch()
        assert g.list_filesystems()["/dev/sda2"] == fs_type
        before = _checksums(g, "/dev/sda2")
        after = _checksums(g, "/dev/sdb2")
        assert after == before and len(before) > 10
        assert g.vfs_uuid("/dev/sdb2") == g.vfs_uuid("/dev/sda2")
    finally:
        g.shutdown()
        g.close()
    part = loop.attach(dst, read_only=True, offset=2 * MiB)
    devices.append(part)
    check = {"ext4": ["e2fsck", "-fn", part], "xfs": ["xfs_repair", "-n", part],
             "btrfs": ["btrfs", "check", "--readonly", part]}[fs_type]
    proc = subprocess.run(check, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    # a few MiB of files and metadata (xfs: its log and inode chunks, ~70 MiB), not 512 MiB of random bytes
    assert n < (64 if fs_type == "ext4" else 128) * MiB, n
