"""The host-side superblock test that lets a create skip e2fsck, and the build-time check behind it.

Filesystems are made with the host's mkfs.ext4 and edited with debugfs (never mounted).
"""

from __future__ import annotations

import struct
import subprocess
from pathlib import Path

import pytest

from osdef.errors import ImageError
from osdef.disk.ondisk.ext import checked_since_mount, kind
from osdef.images.fscheck import check_built_image

MiB = 1 << 20


def _run(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, check=False)


def _mkfs(path: Path, fs_type: str = "ext4") -> Path:
    _run("mkfs." + fs_type, "-q", "-F", str(path), "16M").check_returncode()
    return path


def _set(path: Path, field: str, value: str) -> None:
    _run("debugfs", "-w", "-R", f"ssv {field} {value}", str(path)).check_returncode()


def _head(path: Path) -> bytes:
    return path.read_bytes()[:2048]


@pytest.mark.parametrize("fs_type", ["ext2", "ext3", "ext4"])
def test_a_fresh_filesystem_counts_as_checked(tmp_path, fs_type):
    image = _mkfs(tmp_path / "fs.img", fs_type)
    mtime, = struct.unpack_from("<I", _head(image), 1024 + 0x2C)
    lastcheck, = struct.unpack_from("<I", _head(image), 1024 + 0x40)
    assert kind(_head(image)[1024:]) == fs_type and mtime == 0 and lastcheck > 0  # mkfs never mounted it
    assert checked_since_mount(_head(image))


@pytest.mark.parametrize("field, value", [
    ("mtime", "20991231"),  # mounted after its last check
    ("state", "0"),  # not cleanly unmounted
    ("state", "3"),  # errors detected
    ("error_count", "1"),
    ("last_orphan", "12"),
    ("feature_incompat", "0x2c6"),  # ext4's usual flags plus needs_recovery (0x4)
])
def test_anything_but_clean_and_checked_means_run_e2fsck(tmp_path, field, value):
    image = _mkfs(tmp_path / "fs.img")
    _set(image, field, value)
    assert not checked_since_mount(_head(image))


def test_the_high_time_bytes_count(tmp_path):
    image = _mkfs(tmp_path / "fs.img")
    block = bytearray(_head(image))
    lastcheck, = struct.unpack_from("<I", block, 1024 + 0x40)
    struct.pack_into("<I", block, 1024 + 0x2C, lastcheck - 1)  # mounted just before the check…
    block[1024 + 0x275] = 1  # …but in 2106 or later
    assert not checked_since_mount(bytes(block))
    block[1024 + 0x277] = 1
    assert checked_since_mount(bytes(block))


def test_not_ext_or_too_short_means_run_e2fsck():
    assert not checked_since_mount(bytes(2048))
    assert not checked_since_mount(b"")
    assert kind(bytes(100)) is None


def test_the_build_check_marks_a_mounted_image_checked(tmp_path):
    image = _mkfs(tmp_path / "fs.img")
    _set(image, "mtime", "20250101")  # as after DIB's loop mount
    _set(image, "lastcheck", "20240101")
    assert not checked_since_mount(_head(image))
    assert check_built_image(image, "ext4") is True
    assert checked_since_mount(_head(image))


def test_the_build_check_leaves_other_filesystems_alone(tmp_path):
    image = tmp_path / "fs.img"
    image.write_bytes(b"x" * MiB)
    assert check_built_image(image, "xfs") is False and check_built_image(image, None) is False
    assert image.read_bytes() == b"x" * MiB


def test_a_filesystem_e2fsck_cannot_repair_fails_the_build_in_one_line(tmp_path):
    image = _mkfs(tmp_path / "fs.img")
    _run("debugfs", "-w", "-R", "clri <2>", str(image)).check_returncode()  # no root directory
    with pytest.raises(ImageError) as err:
        check_built_image(image, "ext4")
    msg = str(err.value)
    assert "fs.img" in msg and "fails e2fsck (exit 4)" in msg and "\n" not in msg


def test_the_build_check_turns_the_recipes_features_on(tmp_path):
    image = _mkfs(tmp_path / "fs.img")
    assert check_built_image(image, "ext4", ("metadata_csum_seed",)) is True
    features = _run("dumpe2fs", "-h", str(image)).stdout
    assert "metadata_csum_seed" in features
    assert checked_since_mount(_head(image))  # tune2fs -O left the check standing
