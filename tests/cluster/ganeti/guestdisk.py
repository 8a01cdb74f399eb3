"""Read what is on an instance disk through a read-only libguestfs appliance (never a host mount).

``read_guests([path, …], settings)`` launches ONE appliance with every disk
added read-only and returns a ``GuestView`` per disk: the few facts the
scenario asserts on (hostname, hosts, fstab, root UUID, network and
resolver files, root's shadow field, time zone, SSH host keys) plus a digest
of the filesystem's contents and one of a few files only the image provides.
``plant_files`` is the one writer: it puts files on a disk, standing in for
what a first boot would create.  An appliance launch is most of a check's
cost (~15 s under TCG, a view ~5 s), so ``read_guests(..., plant=(path,
files))`` does both in the same launch, the planted disk added read-write,
and ``read_guests(..., scribble=path)`` then fills the free space of that
disk's root filesystem with random bytes and deletes them, as a guest that
wrote and removed a big file leaves its volume.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from collections.abc import Iterator

import guestfs

from osdef.config import LibguestfsSettings
from osdef.guest.session import configure
from tests.support.stream import fill_random

NETWORK_CONFIG_DIRS = ("/etc/network/interfaces.d", "/etc/systemd/network", "/etc/netplan",
                       "/etc/NetworkManager/system-connections")
NETWORK_CONFIG_FILES = ("/etc/network/interfaces",)
# files a rename legitimately changes; everything else must survive export/import unchanged
RENAMED_FILES = ("/etc/hostname", "/etc/hosts", "/etc/mailname")
DIGEST_TREES = ("/etc", "/boot", "/root", "/usr/lib/os-release")
# files only the image provides (create never writes them): equal iff laid down from the same image
IMAGE_FILES = ("/usr/lib/os-release", "/etc/debian_version", "/usr/bin/bash", "/usr/bin/ls",
               "/usr/lib/x86_64-linux-gnu/libc.so.6")


@dataclass
class GuestView:
    device: str
    root: str
    root_uuid: str
    hostname: str
    hosts: str
    fstab: str
    network_config: dict[str, str]
    resolv_conf: str
    root_shadow: str
    timezone: str
    ssh_host_keys: dict[str, str]
    digest: str  # listing + checksums of DIGEST_TREES, without RENAMED_FILES
    listing_entries: int = 0
    image_digest: str = ""  # checksums of IMAGE_FILES
    used_bytes: int = 0  # what the root filesystem uses (statvfs: blocks less free blocks)


def _handle(settings: LibguestfsSettings) -> guestfs.GuestFS:
    g = guestfs.GuestFS(python_return_dict=True)
    configure(g, settings)
    return g


@contextlib.contextmanager
def appliance(paths: list[Path], settings: LibguestfsSettings, readonly: bool = True,
              writable: Path | None = None, scribble: Path | None = None) -> Iterator[guestfs.GuestFS]:
    """One launched appliance over paths (scribble among them read-write; then writable, read-write,
    as the last device)."""
    g = _handle(settings)
    try:
        for p in paths:
            g.add_drive_opts(str(p), format="raw", readonly=readonly and p != scribble)
        if writable is not None:
            g.add_drive_opts(str(writable), format="raw", readonly=False)
        g.launch()
        yield g
    finally:
        try:
            g.shutdown()
        finally:
            g.close()


def _root_partition(g: guestfs.GuestFS, device: str) -> str:
    fs = g.list_filesystems()
    for part in g.list_partitions():
        if g.part_to_dev(part) == device and fs.get(part) in ("ext4", "xfs", "btrfs", "ext3"):
            return part
    if fs.get(device) in ("ext4", "xfs", "btrfs"):
        return device
    raise AssertionError(f"no root filesystem on {device}: {fs}")


def _read(g: guestfs.GuestFS, path: str) -> str:
    try:
        if g.is_file(path, followsymlinks=True):
            return g.cat(path)
    except RuntimeError:
        pass
    return ""


def _digest(g: guestfs.GuestFS) -> tuple[str, int]:
    """sha256 over (path, content checksum) of every regular file in DIGEST_TREES, minus RENAMED_FILES."""
    sums: list[str] = []
    for tree in DIGEST_TREES:
        if g.is_file(tree):
            sums.append(f"{tree} {g.checksum('sha256', tree)}")
        elif g.is_dir(tree):
            with tempfile.NamedTemporaryFile() as out:
                g.checksums_out("sha256", tree, out.name)
                for line in Path(out.name).read_text(errors="replace").splitlines():
                    checksum, _, name = line.partition("  ")
                    path = tree + name[1:] if name.startswith("./") else f"{tree}/{name}"
                    sums.append(f"{path} {checksum}")
    sums = sorted(s for s in sums if s.split(" ", 1)[0] not in RENAMED_FILES)
    return hashlib.sha256("\n".join(sums).encode()).hexdigest(), len(sums)


def _view(g: guestfs.GuestFS, device: str) -> GuestView:
    root = _root_partition(g, device)
    g.mount_ro(root, "/")
    try:
        network = {}
        for d in NETWORK_CONFIG_DIRS:
            if g.is_dir(d):
                for name in g.ls(d):
                    network[f"{d}/{name}"] = _read(g, f"{d}/{name}")
        for f in NETWORK_CONFIG_FILES:
            if g.is_file(f):
                network[f] = _read(g, f)
        shadow = _read(g, "/etc/shadow")
        root_shadow = next((ln for ln in shadow.splitlines() if ln.startswith("root:")), "")
        keys = {}
        if g.is_dir("/etc/ssh"):
            for name in g.ls("/etc/ssh"):
                if name.startswith("ssh_host_"):
                    keys[name] = _read(g, f"/etc/ssh/{name}")
        tz = _read(g, "/etc/timezone").strip()
        if g.is_symlink("/etc/localtime"):
            tz = tz or g.readlink("/etc/localtime")
        digest, entries = _digest(g)
        vfs = g.statvfs("/")
        used = (vfs["blocks"] - vfs["bfree"]) * vfs["frsize"]
        image_sums = [f"{f} {g.checksum('sha256', f) if g.is_file(f, followsymlinks=True) else '-'}"
                      for f in IMAGE_FILES]
        return GuestView(
            device=device, root=root, root_uuid=g.vfs_uuid(root),
            hostname=_read(g, "/etc/hostname").strip(), hosts=_read(g, "/etc/hosts"),
            fstab=_read(g, "/etc/fstab"), network_config=network,
            resolv_conf=_read(g, "/etc/resolv.conf"), root_shadow=root_shadow,
            timezone=tz, ssh_host_keys=keys, digest=digest, listing_entries=entries,
            image_digest=hashlib.sha256("\n".join(image_sums).encode()).hexdigest(),
            used_bytes=used,
        )
    finally:
        g.umount_all()


Planted = dict[str, tuple[str, int]]  # {guest path: (text, mode)}


def read_guests(paths: list[Path], settings: LibguestfsSettings,
                plant: tuple[Path, Planted] | None = None, scribble: Path | None = None) -> list[GuestView]:
    """One appliance, every disk read-only; a GuestView per path (its disk 0 holds the root).
    With plant=(disk, files), the same appliance also writes files onto that other disk; with
    scribble=path (one of paths), the free space of its root filesystem is filled with random bytes
    that are then deleted, after its view was read."""
    with appliance(paths, settings, writable=plant[0] if plant else None, scribble=scribble) as g:
        devices = g.list_devices()
        views = [_view(g, dev) for dev in devices[:len(paths)]]
        if plant:
            _plant(g, devices[len(paths)], plant[1])
        if scribble is not None:
            _scribble(g, devices[paths.index(scribble)])
        return views


def plant_files(path: Path, files: Planted, settings: LibguestfsSettings) -> None:
    """Write {guest path: (text, mode)} into the root filesystem of the disk at path."""
    with appliance([path], settings, readonly=False) as g:
        _plant(g, g.list_devices()[0], files)


def _plant(g: guestfs.GuestFS, device: str, files: Planted) -> None:
    g.mount(_root_partition(g, device), "/")
    for guest_path, (text, mode) in files.items():
        g.write(guest_path, text.encode())
        g.chmod(mode, guest_path)
    g.umount_all()
    g.sync()


def _scribble(g: guestfs.GuestFS, device: str, margin: int = 64 << 20) -> None:
    """Random bytes into all but margin of the root filesystem's free space, then deleted (not trimmed)."""
    g.mount(_root_partition(g, device), "/")
    st = g.statvfs("/")
    size = max(0, st["bfree"] * st["frsize"] - margin)
    with tempfile.TemporaryDirectory(dir="/var/tmp") as tmp:
        g.upload(str(fill_random(Path(tmp) / "garbage", size)), "/osdef-test-deleted-data")
    g.sync()
    g.rm("/osdef-test-deleted-data")
    g.umount_all()
    g.sync()


def allocated_bytes(path: Path) -> int:
    return os.stat(path).st_blocks * 512
