"""diskimage-builder: argv/environment (pure), tar /dev stripping, missing
element, and one real build of debian-12 kept in the shared test cache."""

from __future__ import annotations

import io
import struct
import subprocess
import tarfile
from pathlib import Path

import pytest

from osdef.config import ImageSettings
from osdef.errors import ImageError
from osdef.disk.ondisk.ext import checked_since_mount
from osdef.images.dib import DibBuilder, dib_command, dib_environment, strip_dev_entries, venv_bin
from osdef.images.recipe import DibRecipe, load_recipe

from tests.support.image_cache import RECIPES_DIR, ensure_test_image

SETTINGS = ImageSettings(cache_dir=Path("/c"), debian_mirror="http://mirror/debian",
                         debian_security_mirror="http://mirror/debian-security",
                         build_tmp_dir=Path("/bt"))


def test_command_and_environment():
    dib = DibRecipe(elements=("debian-minimal", "osdef-guest"), release="trixie",
                    packages=("grub-pc", "openssh-server"), output="tar", fs_type=None,
                    environment={"DIB_DEBIAN_COMPONENTS": "main,contrib"})
    argv = dib_command(Path("/v/bin/disk-image-create"), dib, Path("/w/img"))
    assert argv == ["/v/bin/disk-image-create", "-a", "amd64", "-t", "tar", "-o", "/w/img",
                    "-p", "grub-pc,openssh-server", "debian-minimal", "osdef-guest"]
    env = dib_environment(SETTINGS, dib, Path("/r/images/elements"),
                          {"PATH": "/usr/bin", "HOME": "/root"})
    assert env["DIB_RELEASE"] == "trixie"
    assert env["DIB_DISTRIBUTION_MIRROR"] == "http://mirror/debian"
    assert env["DIB_DEBIAN_SECURITY_MIRROR"] == "http://mirror/debian-security"
    assert env["ELEMENTS_PATH"] == "/r/images/elements"
    assert env["TMP_DIR"] == "/bt"
    assert env["DIB_DEBIAN_COMPONENTS"] == "main,contrib"
    assert env["PATH"] == f"{venv_bin()}:/usr/bin"
    assert (venv_bin() / "disk-image-create").exists()


def test_strip_dev_entries(tmp_path):
    src = tmp_path / "dib.tar"
    with tarfile.open(src, "w") as t:
        for name, kind in ((".", tarfile.DIRTYPE), ("./dev", tarfile.DIRTYPE),
                           ("./dev/null", tarfile.CHRTYPE), ("./dev/pts", tarfile.DIRTYPE),
                           ("./etc", tarfile.DIRTYPE), ("./etc/hostname", tarfile.REGTYPE),
                           ("./devices.txt", tarfile.REGTYPE)):
            info = tarfile.TarInfo(name)
            info.type = kind
            data = b"debian\n" if kind == tarfile.REGTYPE else b""
            info.size = len(data)
            t.addfile(info, io.BytesIO(data) if data else None)
    dest = tmp_path / "clean.tar"
    assert strip_dev_entries(src, dest) == 2
    with tarfile.open(dest) as t:
        assert t.getnames() == [".", "./dev", "./etc", "./etc/hostname", "./devices.txt"]
        assert t.extractfile("./etc/hostname").read() == b"debian\n"


def test_missing_element_is_one_line(tmp_path):
    recipe_file = tmp_path / "bad.yaml"
    recipe_file.write_text("elements: [debian-minimal, no-such-element]\nrelease: bookworm\n")
    builder = DibBuilder(SETTINGS, RECIPES_DIR / "elements", tmp_path / "log")
    with pytest.raises(ImageError, match=r"DIB element 'no-such-element' not found in") as exc:
        builder(load_recipe(recipe_file), tmp_path)
    assert "\n" not in str(exc.value)


def debugfs_ls(image: Path, directory: str) -> str:
    out = subprocess.run(["debugfs", "-R", f"ls {directory}", str(image)],
                         capture_output=True, text=True, check=True)
    return out.stdout


@pytest.mark.dib
def test_real_debian_12_build(tmp_path):
    """Build (or reuse) debian-12 and check what the create step relies on."""
    art = ensure_test_image("debian-12")
    assert (art.format, art.manifest.fs_type) == ("fs-image", "ext4")
    assert art.manifest.source == "dib" and art.manifest.dib_version
    image = tmp_path / "debian-12.raw"  # inspected with debugfs, never mounted
    with art.open() as f, open(image, "wb") as out:
        for chunk in iter(lambda: f.read(4 << 20), b""):
            if chunk.count(0) == len(chunk):
                out.seek(len(chunk), 1)
            else:
                out.write(chunk)
        out.truncate()
    assert image.stat().st_size == art.size
    # e2fsck'd after DIB's loop mount (creates may skip their own full check), and the
    # recipe's metadata_csum_seed is on (incompat 0x2000: a new UUID is a superblock write)
    with open(image, "rb") as f:
        head = f.read(2048)
    assert checked_since_mount(head)
    assert struct.unpack_from("<I", head, 1024 + 0x60)[0] & 0x2000
    sbin = debugfs_ls(image, "/usr/sbin")
    for tool in ("grub-install", "sshd", "dhclient", "ifup"):
        assert tool in sbin, tool
    grub = debugfs_ls(image, "/usr/lib/grub")
    assert "i386-pc" in grub and "x86_64-efi" in grub
    boot = debugfs_ls(image, "/boot")
    assert "vmlinuz-" in boot and "initrd.img-" in boot
    assert "ssh_host_" not in debugfs_ls(image, "/etc/ssh")
    assert "eth0" not in debugfs_ls(image, "/etc/network/interfaces.d")


@pytest.mark.parametrize("line, level", [
    ("E: Unable to locate package no-such-package-xyz", 2),
    ("E: Can not write log (Is /dev/pts mounted?) - posix_openpt (19: No such device)", 0),
    ("Failed to open connection to \"system\" message bus: Failed to connect to socket "
     "/run/dbus/system_bus_socket: No such file or directory", 0),
    ("ERROR diskimage_builder.block_device.blockdevice [-] boom", 2),
    ("umount failed on /x", 1),
    ("Setting up libc6", 0),
])
def test_error_line_choice(line, level):
    from osdef.images.dib import error_level
    assert error_level(line) == level
