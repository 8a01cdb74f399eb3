"""The grub boot area cache: keys, storing from a disk, verified loading, writing it back."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from osdef.create import partitioning as partition
from osdef.create.bootarea import (MBR_CODE, BootAreaCache, core_region, entry_key,
                                  write_boot_area)

MiB = 1 << 20
GPT = partition.plan("gpt", "bios")
MSDOS = partition.plan("msdos", "bios")


def _disk_with_grub(path: Path, plan, core: bytes = b"\x52core" * 7000) -> Path:
    with open(path, "wb") as f:
        f.truncate(64 * MiB)
        os.pwrite(f.fileno(), b"\xeb\x63" + b"\x90" * (MBR_CODE - 2) + b"TABLE", 0)
        os.pwrite(f.fileno(), core, core_region(plan)[0])
    return path


def _tree(tmp_path: Path) -> Path:
    tree = tmp_path / "grub.tar"
    tree.write_bytes(b"tar bytes")
    return tree


def test_key_changes_with_image_table_boot_and_filesystem():
    keys = {entry_key("a" * 64, GPT, "bios", "ext4"), entry_key("b" * 64, GPT, "bios", "ext4"),
            entry_key("a" * 64, MSDOS, "bios", "ext4"), entry_key("a" * 64, GPT, "bios", "xfs"),
            entry_key("a" * 64, partition.plan("gpt", "efi"), "efi", "ext4")}
    assert len(keys) == 5


def test_core_regions():
    assert core_region(GPT) == (MiB, MiB)  # the BIOS boot partition
    assert core_region(MSDOS) == (512, MiB - 512)  # the gap after the MBR


@pytest.mark.parametrize("plan", [GPT, MSDOS], ids=["gpt", "msdos"])
def test_stored_area_is_loaded_and_written_back_byte_for_byte(tmp_path, plan):
    logs: list[str] = []
    cache = BootAreaCache(tmp_path / "areas", "f" * 64, logs.append)
    source = _disk_with_grub(tmp_path / "a.img", plan)
    assert cache.load(plan, "bios", "ext4") is None
    assert cache.store(source, plan, "bios", "ext4", _tree(tmp_path)) is not None
    area = cache.load(plan, "bios", "ext4")
    assert area is not None and area.grub_tree.read_bytes() == b"tar bytes"

    target = tmp_path / "b.img"
    with open(target, "wb") as f:
        f.truncate(64 * MiB)
        os.pwrite(f.fileno(), b"OTHER-TABLE", MBR_CODE)
    write_boot_area(target, area)
    offset, size = core_region(plan)
    a, b = source.read_bytes(), target.read_bytes()
    assert b[:MBR_CODE] == a[:MBR_CODE] and b[offset:offset + size] == a[offset:offset + size]
    assert b[MBR_CODE:MBR_CODE + 11] == b"OTHER-TABLE"  # the partition table is not touched
    assert cache.load(plan, "bios", "xfs") is None and cache.load(plan, "efi", "ext4") is None


def test_damaged_entry_is_ignored_with_a_warning(tmp_path):
    logs: list[str] = []
    cache = BootAreaCache(tmp_path / "areas", "f" * 64, logs.append)
    entry = cache.store(_disk_with_grub(tmp_path / "a.img", GPT), GPT, "bios", "ext4", _tree(tmp_path))
    assert entry is not None
    (entry / "core.bin").write_bytes(b"\0" * 512)
    assert cache.load(GPT, "bios", "ext4") is None
    assert any("damaged (core.bin)" in line for line in logs)
    (entry / "entry.json").write_text("{not json")
    assert cache.load(GPT, "bios", "ext4") is None


def test_a_disk_without_boot_code_is_not_stored(tmp_path):
    logs: list[str] = []
    cache = BootAreaCache(tmp_path / "areas", "f" * 64, logs.append)
    blank = tmp_path / "blank.img"
    blank.write_bytes(b"\0" * (4 * MiB))
    assert cache.store(blank, GPT, "bios", "ext4", _tree(tmp_path)) is None
    assert "no grub boot code" in logs[-1] and not (tmp_path / "areas").exists()


def test_an_unwritable_cache_does_not_fail(tmp_path):
    logs: list[str] = []
    (tmp_path / "areas").write_text("a file, not a directory")
    cache = BootAreaCache(tmp_path / "areas", "f" * 64, logs.append)
    assert cache.store(_disk_with_grub(tmp_path / "a.img", GPT), GPT, "bios", "ext4",
                       _tree(tmp_path)) is None
    assert "boot area not cached" in logs[-1]


def test_storing_a_new_build_drops_the_older_builds_entries(tmp_path):
    logs: list[str] = []
    old = BootAreaCache(tmp_path / "areas", "a" * 64, logs.append, image_name="debian-12")
    other = BootAreaCache(tmp_path / "areas", "c" * 64, logs.append, image_name="debian-13")
    new = BootAreaCache(tmp_path / "areas", "b" * 64, logs.append, image_name="debian-12")
    disk = _disk_with_grub(tmp_path / "a.img", GPT)
    old_entry = old.store(disk, GPT, "bios", "ext4", _tree(tmp_path))
    other_entry = other.store(disk, GPT, "bios", "ext4", _tree(tmp_path))
    assert old_entry and other_entry and new.store(disk, GPT, "bios", "ext4", _tree(tmp_path))
    assert not old_entry.exists() and other_entry.exists()
    assert new.load(GPT, "bios", "ext4") is not None and old.load(GPT, "bios", "ext4") is None


def test_one_creates_use_of_the_cache(tmp_path):
    """The plan holds the decision (a value); the cache is asked once and told afterwards what to store."""
    from osdef.create.bootarea import write_boot_area

    cache = BootAreaCache(tmp_path / "areas", "f" * 64, lambda m: None)
    for inert in (cache.decide(None, "bios", "ext4", True), cache.decide(GPT, "efi", "ext4", True),
                  cache.decide(GPT, "bios", "ext4", False)):
        assert inert == (None, False)
    area, capture = cache.decide(GPT, "bios", "ext4", True)  # miss: grub-install's output is kept
    assert area is None and capture
    grub_tree = tmp_path / "grub.tar"
    grub_tree.write_bytes(b"tar")  # what the bootloader step saves after grub-install
    source = _disk_with_grub(tmp_path / "a.img", GPT)
    assert cache.store(source, GPT, "bios", "ext4", grub_tree) is not None
    area, capture = cache.decide(GPT, "bios", "ext4", True)  # hit: written from the host
    assert area is not None and not capture
    target = tmp_path / "b.img"
    target.write_bytes(b"\0" * (4 * MiB))
    write_boot_area(target, area)
    assert target.read_bytes()[:MBR_CODE] == source.read_bytes()[:MBR_CODE]
