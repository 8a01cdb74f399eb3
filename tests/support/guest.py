"""Fixtures for the guest tier: small synthetic guests (a root tree with a working /bin/sh),
as an ext4 filesystem image, a partitioned raw disk and a tarball; sparse files and loop devices.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from osdef.config import LibguestfsSettings
from osdef.create.steporder import order
from osdef.create.steps import Steps, load_builtin_hooks
from osdef.disk import loop

MiB = 1 << 20
FS_IMAGE_SIZE = 64 * MiB
OLD_NAME = "image-host.example.net"

FILES = {
    "etc/hostname": "image-host\n",
    "etc/hosts": ("127.0.0.1\tlocalhost\n127.0.1.1\timage-host.example.net image-host\n"
                  "::1\tlocalhost ip6-localhost ip6-loopback\n"),
    "etc/mailname": "image-host.example.net\n",
    "etc/os-release": ('PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME="Debian GNU/Linux"\n'
                       'VERSION_ID="12"\nVERSION="12 (bookworm)"\nID=debian\n'),
    "etc/debian_version": "12.8\n",
    "etc/fstab": "# static file system information\nLABEL=cloudimg-rootfs\t/\text4\tdiscard,errors=remount-ro\t0 1\n",
    "etc/machine-id": "0123456789abcdef0123456789abcdef\n",
    "etc/default/grub": 'GRUB_DEFAULT=0\nGRUB_CMDLINE_LINUX_DEFAULT="quiet"\nGRUB_CMDLINE_LINUX=""\n',
    "etc/ssh/ssh_host_ed25519_key": "PRIVATE\n",
    "etc/ssh/ssh_host_ed25519_key.pub": "ssh-ed25519 AAAA image\n",
    "etc/ssh/ssh_host_rsa_key": "PRIVATE\n",
    "usr/bin/ssh-keygen": "#!/bin/sh\nexit 0\n",
    "usr/lib/systemd/systemd": "",
    "usr/lib/systemd/system/serial-getty@.service": "[Unit]\n",
    "var/lib/systemd/random-seed": "seed\n",
}


def _copy_shell(root: Path) -> None:
    """A working /bin/sh (the host's dash and its two libraries) so g.command works."""
    for src, dst in [("/usr/bin/dash", "usr/bin/dash"),
                     ("/lib/x86_64-linux-gnu/libc.so.6", "lib/x86_64-linux-gnu/libc.so.6"),
                     ("/lib64/ld-linux-x86-64.so.2", "lib64/ld-linux-x86-64.so.2")]:
        target = root / dst
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(os.path.realpath(src), target)
    (root / "bin").symlink_to("usr/bin")
    (root / "usr/bin/sh").symlink_to("dash")
    (root / "usr/sbin").mkdir(parents=True)
    (root / "sbin").symlink_to("usr/sbin")


def make_tree(root: Path) -> Path:
    root.mkdir()
    _copy_shell(root)
    for rel, text in FILES.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    (root / "usr/bin/ssh-keygen").chmod(0o755)
    for d in ("dev", "proc", "sys", "tmp", "root", "var/lib/dbus"):
        (root / d).mkdir(parents=True, exist_ok=True)
    (root / "var/lib/dbus/machine-id").symlink_to("/etc/machine-id")
    return root


def run(*argv: str) -> str:
    return subprocess.run(argv, check=True, capture_output=True, text=True).stdout


@dataclass(frozen=True)
class Images:
    tree: Path
    fs_image: Path  # bare ext4, FS_IMAGE_SIZE bytes
    disk_image: Path  # gpt: partition 1 = bios boot, partition 2 = ext4 (the fs image)
    tarball: Path  # the tree, plus a ./dev/null device node as DIB tarballs have


@pytest.fixture(scope="session")
def guest_images(tmp_path_factory: pytest.TempPathFactory) -> Images:
    base = tmp_path_factory.mktemp("guest-images")
    tree = make_tree(base / "root")
    fs_image = base / "root.ext4"
    run("mkfs.ext4", "-q", "-F", "-L", "cloudimg-rootfs", "-d", str(tree), str(fs_image), "64M")

    disk_image = base / "disk.raw"
    with open(disk_image, "wb") as f:
        f.truncate(3 * MiB + FS_IMAGE_SIZE)
    subprocess.run(["sfdisk", "-q", str(disk_image)], check=True, text=True, capture_output=True,
                   input="label: gpt\nstart=2048, size=2048, type=21686148-6449-6E6F-744E-656564454649\n"
                         f"start=4096, size={FS_IMAGE_SIZE // 512}, type=L\n")
    run("dd", f"if={fs_image}", f"of={disk_image}", "bs=1M", "seek=2", "conv=notrunc,sparse",
        "status=none")

    tarball = base / "root.tar"
    with tarfile.open(tarball, "w", format=tarfile.PAX_FORMAT) as tar:
        tar.add(tree, arcname=".")
        node = tarfile.TarInfo("./dev/null")
        node.type, node.devmajor, node.devminor, node.mode = tarfile.CHRTYPE, 1, 3, 0o666
        tar.addfile(node)
    return Images(tree, fs_image, disk_image, tarball)


@pytest.fixture(scope="session")
def unchecked_fs_image(guest_images: Images, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The fs image as it looks after a mount (mounted after its last check): create must e2fsck it."""
    image = tmp_path_factory.mktemp("unchecked") / "root.ext4"
    run("cp", "--sparse=always", str(guest_images.fs_image), str(image))
    for field, value in (("lastcheck", "20240101"), ("mtime", "20250101")):
        run("debugfs", "-w", "-R", f"ssv {field} {value}", str(image))
    return image


def host_fsck(disk: Path, start: int, size: int, work: Path) -> str:
    """e2fsck -f -n of the filesystem at [start, start+size) of a disk file, on a sparse copy
    (a test-only look with host tools at our own synthetic guest; nothing is mounted)."""
    part = work / "fsck-copy.img"
    run("dd", f"if={disk}", f"of={part}", "bs=1M", f"skip={start // MiB}", f"count={size // MiB}",
        "conv=sparse", "status=none")
    proc = subprocess.run(["e2fsck", "-f", "-n", str(part)], capture_output=True, text=True)
    part.unlink()
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


@pytest.fixture(scope="session")
def settings() -> LibguestfsSettings:
    """Tests run under TCG (no nested KVM here); product code takes this from the site config."""
    return LibguestfsSettings(backend_settings=("force_tcg",))


def sparse_file(path: Path, size: int) -> Path:
    with open(path, "wb") as f:
        f.truncate(size)
    return path


@pytest.fixture
def loop_device(tmp_path: Path):
    """A 1 GiB loop device over a sparse file, filled with old data first; detached afterwards."""
    if os.geteuid() != 0 or shutil.which("losetup") is None:
        pytest.skip("needs root and losetup")
    backing = sparse_file(tmp_path / "loop-backing.img", 1024 * MiB)
    # old data everywhere a skipped range could be: it must read back as zeros after create
    with open(backing, "r+b") as f:
        for offset in range(0, 1024 * MiB, 32 * MiB):
            f.seek(offset)
            f.write(b"\xa5" * MiB)
    with loop.attached(backing) as dev:
        yield Path(dev)


def allocated(path: Path) -> int:
    return os.stat(path).st_blocks * 512


def open_image(path: Path) -> io.BufferedReader:
    return open(path, "rb")


READ_BACK_FILES = ("/etc/hostname", "/etc/hosts", "/etc/mailname", "/etc/fstab", "/etc/machine-id",
                   "/etc/default/grub", "/etc/os-release")


@dataclass
class GuestView:
    """What a fresh appliance sees on a created disk (read-only, no host mount)."""

    files: dict[str, str | None]
    exists: dict[str, bool]
    table: str
    partitions: list[dict]  # libguestfs part_list rows
    disk_bytes: int
    root_device: str
    root_uuid: str
    root_fs_type: str
    root_fs_bytes: int  # statvfs blocks * frsize
    dev_entries: list[str]
    links: dict[str, str]  # where each of the paths that is a symlink points


def read_back(disk: Path, settings: LibguestfsSettings,
              paths: tuple[str, ...] = (), then=None) -> GuestView:
    """Open `disk` in a new appliance, mount the OS found by inspection, collect a GuestView.

    `then(session)` runs in the same appliance afterwards (saves a launch).
    """
    from osdef.guest.session import GuestSession

    with GuestSession([disk], settings, readonly=then is None) as s:
        g = s.g
        dev = s.device(0)
        root = s.mount_inspected_root()
        vfs = g.statvfs("/")
        view = GuestView(
            files={p: s.read_text_or_none(p) for p in READ_BACK_FILES},
            exists={p: s.exists(p) for p in paths},
            table=g.part_get_parttype(dev),
            partitions=g.part_list(dev),
            disk_bytes=g.blockdev_getsize64(dev),
            root_device=root,
            root_uuid=g.vfs_uuid(root),
            root_fs_type=g.vfs_type(root),
            root_fs_bytes=vfs["blocks"] * vfs["frsize"],
            dev_entries=g.ls("/dev"),
            links={p: s.readlink(p) for p in paths if s.is_symlink(p)},
        )
        if then is not None:
            then(s)
    return view


def only_steps(*names: str) -> Steps:
    """The built-in steps with only ``names`` running: what a test of a few steps needs.

    A variant cannot ask for this (load_steps refuses to skip a step with EXCLUDABLE = False,
    such as fstab); a test that checks a few steps on a bare image may.
    """
    hooks = order(load_builtin_hooks())
    unknown = set(names) - {h.name for h in hooks}
    assert not unknown, f"no such built-in steps: {unknown}"
    return Steps(tuple(hooks), frozenset(h.name for h in hooks) - set(names))
