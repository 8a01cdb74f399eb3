"""Format detection on synthetic headers and on real files made by mkfs/sfdisk/qemu-img/tar."""

from __future__ import annotations

import subprocess

import pytest

from osdef.images import formats
from osdef.images.formats import HEADER_SIZE, Detected, detect

from tests.support.images import make_disk, make_ext4, make_qcow2, make_tar


def head(path) -> bytes:
    with open(path, "rb") as f:
        return f.read(HEADER_SIZE)


def test_synthetic_headers():
    assert detect(b"QFI\xfb" + bytes(100)) == Detected("disk-qcow2")
    assert detect(bytes(HEADER_SIZE)) == formats.UNKNOWN
    assert detect(b"") == formats.UNKNOWN
    assert formats.is_zstd(b"\x28\xb5\x2f\xfd....")
    mbr_no_partitions = bytearray(1024)
    mbr_no_partitions[510:512] = b"\x55\xaa"
    assert detect(bytes(mbr_no_partitions)) == formats.UNKNOWN


def test_real_files(tmp_path):
    assert detect(head(make_ext4(tmp_path / "fs.img"))) == Detected("fs-image", "ext4")
    mbr = make_disk(tmp_path / "mbr.img", "dos")
    assert detect(head(mbr)) == Detected("disk-raw")
    assert detect(head(make_disk(tmp_path / "gpt.img", "gpt"))) == Detected("disk-raw")
    assert detect(head(make_qcow2(mbr, tmp_path / "d.qcow2"))) == Detected("disk-qcow2")
    assert detect(head(make_tar(tmp_path / "root.tar"))) == Detected("tar")


def test_ext2_is_not_ext4(tmp_path):
    path = tmp_path / "ext2.img"
    subprocess.run(["mkfs.ext2", "-q", "-F", str(path), "8M"], check=True, capture_output=True)
    assert detect(head(path)) == Detected("fs-image", "ext2")


@pytest.mark.parametrize("mkfs, size_mib, fs", [
    (["mkfs.xfs", "-q", "-f"], 320, "xfs"),
    (["mkfs.btrfs", "-q", "-f"], 128, "btrfs"),
])
def test_xfs_btrfs(tmp_path, mkfs, size_mib, fs):
    path = tmp_path / f"{fs}.img"
    with open(path, "wb") as f:
        f.truncate(size_mib << 20)
    subprocess.run(mkfs + [str(path)], check=True, capture_output=True)
    assert detect(head(path)) == Detected("fs-image", fs)
