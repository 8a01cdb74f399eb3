"""Partitioned disk images whose last partition is xfs or btrfs: grown to the disk (one appliance each)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from osdef.errors import GuestError
from osdef.create.layout.diskimage import DiskImageLayout
from osdef.guest.session import GuestSession
from osdef.create.undoable import StepRunner

from tests.support.guest import FS_IMAGE_SIZE, MiB, allocated, sparse_file

pytestmark = pytest.mark.guestfs
DATA_SIZE = {"xfs": 320 * MiB, "btrfs": 160 * MiB}  # at least each mkfs's minimum
DISK = 1024 * MiB


def _image_with_data_partition(tmp: Path, fs_image: Path, fs_type: str) -> Path:
    """gpt: 1 = ext4 root (the test tree), 2 = empty `fs_type` filesystem, last."""
    data = sparse_file(tmp / f"data.{fs_type}", DATA_SIZE[fs_type])
    mkfs = {"xfs": ["mkfs.xfs", "-q", "-f"], "btrfs": ["mkfs.btrfs", "-q", "-f"]}[fs_type]
    subprocess.run([*mkfs, str(data)], check=True, capture_output=True)
    image = sparse_file(tmp / "disk.raw", MiB + FS_IMAGE_SIZE + DATA_SIZE[fs_type] + MiB)
    subprocess.run(["sfdisk", "-q", str(image)], check=True, text=True, capture_output=True,
                   input=f"label: gpt\nstart=2048, size={FS_IMAGE_SIZE // 512}, type=L\n"
                         f"size={DATA_SIZE[fs_type] // 512}, type=L\n")
    for src, seek in ((fs_image, 1), (data, 1 + FS_IMAGE_SIZE // MiB)):
        subprocess.run(["dd", f"if={src}", f"of={image}", "bs=1M", f"seek={seek}",
                        "conv=sparse,notrunc", "status=none"], check=True)
    return image


@pytest.mark.parametrize("fs_type", ["xfs", "btrfs"])
def test_last_partition_and_its_filesystem_grow(tmp_path, guest_images, settings, fs_type):
    if shutil.which(f"mkfs.{fs_type}") is None:
        pytest.skip(f"mkfs.{fs_type} not installed")
    image = _image_with_data_partition(tmp_path, guest_images.fs_image, fs_type)
    disk = sparse_file(tmp_path / "disk0.img", DISK)
    logs: list[str] = []
    with open(image, "rb") as stream:
        layout = DiskImageLayout(disk, stream, image.stat().st_size)
        layout.check(DISK)
        runner = StepRunner(logs.append)
        runner.run(layout.host_steps())
        with GuestSession([disk], settings) as session:
            try:
                root = layout.lay_down(session, runner)
            except GuestError as exc:
                if f"libguestfs-{fs_type}" in str(exc):  # the node lacks the optional package
                    pytest.skip(str(exc))
                raise
            g = session.g
            assert root.device == "/dev/sda1" and root.fs_type == "ext4"
            last = g.part_list("/dev/sda")[-1]
            assert DISK - (last["part_end"] + 1) <= MiB + 34 * 512
            session.unmount_all()
            session.mount("/dev/sda2", "/", fs_type)
            vfs = g.statvfs("/")
            assert vfs["blocks"] * vfs["frsize"] > 0.85 * last["part_size"], (vfs, last)
    assert allocated(disk) < 120 * MiB
