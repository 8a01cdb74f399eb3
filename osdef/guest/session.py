"""One libguestfs appliance per script run: launch, mount, run commands in the guest, shut down.

Every libguestfs failure leaves this module as a GuestError with a one-line
message naming what osdef was doing.  Guest filesystems are only ever mounted
inside the appliance, never on the host.

A disk given as an ``rbd:`` URI is attached with libguestfs' rbd protocol:
the appliance's qemu opens the image through its own librbd, as client.<id>
of the URI, with the monitors and the keyring named by the URI's ceph.conf
(passed to qemu as CEPH_CONF).  No cephx key is handed to libguestfs: it
would put it on qemu's command line (`ps`) and in its debug output.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Callable, Sequence
from pathlib import Path
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar

import guestfs

from osdef.disk.units import MiB
from osdef.config import LibguestfsSettings
from osdef.disk import rbduri
from osdef.errors import GuestError
from osdef.vocab import EXT_FAMILY

T = TypeVar("T")
P = ParamSpec("P")
_RC_MARK = "\n__osdef_rc="
GUEST_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
PREAD_MAX = MiB  # below libguestfs's 2 MiB message limit


def configure(g: guestfs.GuestFS, s: LibguestfsSettings) -> None:
    """Apply the site's libguestfs settings to a handle not yet launched (every appliance osdef or
    its tests launch)."""
    if s.backend:
        g.set_backend(s.backend)
    if s.backend_settings:
        g.set_backend_settings(list(s.backend_settings))
    if s.memsize_mib:
        g.set_memsize(s.memsize_mib)
    if s.smp:
        g.set_smp(s.smp)


def probe_launch() -> None:
    """Launch and stop an appliance with libguestfs' defaults and a 16 MiB scratch disk (does it work here?)."""
    g = guestfs.GuestFS(python_return_dict=True)
    g.add_drive_scratch(16 << 20)
    g.launch()
    g.shutdown()
    g.close()


def drive_letters(index: int) -> str:
    """a … z, aa … az, ba …: the suffix libguestfs gives the index-th drive."""
    letters = ""
    index += 1
    while index:
        index, rem = divmod(index - 1, 26)
        letters = chr(ord("a") + rem) + letters
    return letters


def one_line(text: str, limit: int = 300) -> str:
    """Collapse a (possibly multi-line) message into one line of at most `limit` characters."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else "…" + flat[-limit:]


class GuestSession:
    """An appliance with the given disks attached (raw), as a context manager."""

    def __init__(self, disks: Sequence[str | Path], settings: LibguestfsSettings, *,
                 readonly: bool = False, cachemode: str = "unsafe",
                 log: Callable[[str], None] | None = None):
        self.disks = [rbduri.as_location(d) for d in disks]  # paths, or completed rbd: URIs
        self.settings = settings
        self.readonly = readonly
        self.cachemode = cachemode
        self.log = log or (lambda _msg: None)
        self._g: guestfs.GuestFS | None = None
        self._mounts: list[str] = []  # mountpoints, in mount order

    # -- lifecycle ---------------------------------------------------------

    def __enter__(self) -> GuestSession:
        if self._g is None:
            self.launch()
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            self.shutdown()
        else:
            self.close()

    def launch(self) -> None:
        g = guestfs.GuestFS(python_return_dict=True, close_on_exit=False)
        self._g = g
        s = self.settings
        self.call("configure libguestfs", configure, g, s)
        for disk in self.disks:
            self._attach(g, disk)
        self.call("launch the appliance", g.launch)

    def _attach(self, g: guestfs.GuestFS, disk: str | Path) -> None:
        if not isinstance(disk, str):
            self.call(f"attach {disk}", g.add_drive_opts, str(disk), format="raw",
                      readonly=self.readonly, cachemode=self.cachemode)
            return
        try:
            uri = rbduri.parse(disk)
            confs = {(rbduri.parse(d).conf or rbduri.DEFAULT_CONF) for d in self.disks if isinstance(d, str)}
        except rbduri.UriError as exc:
            raise GuestError(str(exc)) from None
        conf = uri.conf or rbduri.DEFAULT_CONF
        if len(confs) > 1:
            raise GuestError("the instance's RBD disks name different ceph.conf files; one appliance reads "
                             "one: give them the same conf=")
        os.environ["CEPH_CONF"] = conf  # the appliance's qemu (a child) reads it: monitors and keyring
        self.call(f"attach {uri.display}", g.add_drive_opts, uri.spec, format="raw", protocol="rbd",
                  username=uri.user or rbduri.DEFAULT_USER, readonly=self.readonly or bool(uri.snapshot),
                  cachemode=self.cachemode)

    def shutdown(self) -> None:
        """Unmount everything, sync and stop the appliance; errors are GuestErrors."""
        if self._g is None:
            return
        try:
            if self._mounts:
                self.call("unmount the guest filesystems", self._g.umount_all)
                self._mounts.clear()
            self.call("shut the appliance down", self._g.shutdown)
        finally:
            self.close()

    def close(self) -> None:
        """Drop the handle without a clean shutdown (used on the error path)."""
        if self._g is not None:
            try:
                self._g.close()
            except RuntimeError:
                pass
            self._g = None

    # -- calling libguestfs --------------------------------------------------

    @property
    def g(self) -> guestfs.GuestFS:
        """The raw guestfs handle, for steps that need an API not wrapped here."""
        if self._g is None:
            raise GuestError("the appliance is not running")
        return self._g

    def call(self, what: str, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run a libguestfs call; turn its RuntimeError into a one-line GuestError."""
        try:
            return fn(*args, **kwargs)
        except RuntimeError as exc:
            raise GuestError(f"{what} failed: {one_line(str(exc)) or 'no message'}") from None

    # -- devices and mounts ----------------------------------------------------

    def device(self, index: int = 0) -> str:
        """API name of the index-th attached disk: /dev/sda, /dev/sdb … /dev/sdaa (no call).

        libguestfs names drives by the order they were added, whatever the
        appliance kernel calls them (guestfs(3), "BLOCK DEVICE NAMING"); a
        listing would cost a `udevadm settle` (≈0.3 s under TCG) per call.
        """
        if not 0 <= index < len(self.disks):
            raise GuestError(f"no disk number {index}: {len(self.disks)} attached")
        return "/dev/sd" + drive_letters(index)

    def partition(self, index: int, number: int) -> str:
        """API name of partition `number` on disk `index` (/dev/sda2), by the same rule.

        Not checked against a listing: osdef wrote or read the table itself, and
        a missing partition fails the next call that names it.
        """
        return f"{self.device(index)}{number}"

    def drop_caches(self) -> None:
        """Forget what the appliance kernel read from the disks (they were written meanwhile).

        One write to /proc/sys/vm/drop_caches drops the clean page cache of every
        block device (nothing is mounted or dirty yet), in one call instead of a
        `blockdev --flushbufs` per device and partition.
        """
        if self._mounts:
            raise GuestError("cannot drop the disk caches while guest filesystems are mounted")
        self.call("drop the appliance's disk caches", self.g.drop_caches, 3)

    def fs_type(self, device: str) -> str:
        return self.call(f"detect the filesystem on {device}", self.g.vfs_type, device)

    def mount(self, device: str, mountpoint: str = "/", fs_type: str | None = None) -> None:
        """Mount `device` at `mountpoint` in the appliance (ext*: noinit_itable keeps disks sparse)."""
        fs_type = fs_type or self.fs_type(device)
        options = "noinit_itable" if fs_type in EXT_FAMILY else ""
        if mountpoint != "/" and not self.readonly:
            self.mkdir(mountpoint)
        if self.readonly:  # drives added read-only: nothing is written, not even a journal replay
            self.call(f"mount {device} on {mountpoint}", self.g.mount_ro, device, mountpoint)
        else:
            self.call(f"mount {device} on {mountpoint}", self.g.mount_options, options, device, mountpoint)
        self._mounts.append(mountpoint)

    def mount_inspected_root(self) -> str:
        """Find the guest OS by inspection, mount its filesystems; return the root device."""
        roots = self.call("inspect the disk", self.g.inspect_os)
        if not roots:
            raise GuestError(f"no operating system found on {self.disks[0]}")
        root = roots[0]
        points = self.call("read the mountpoints", self.g.inspect_get_mountpoints, root)
        for mountpoint, device in sorted(points.items(), key=lambda kv: len(kv[0])):
            try:
                self.mount(device, mountpoint)
            except GuestError:
                if mountpoint == "/":
                    raise
                self.log(f"warning: could not mount {device} on {mountpoint}; continuing")
        return root

    def mountpoints(self) -> list[str]:
        """Where the appliance has filesystems mounted (as the guest sees them)."""
        return list(self.call("list mounts", self.g.mountpoints).values())

    def os_name(self, root: str) -> str:
        """The inspected OS on a root device, for people: "Debian GNU/Linux 12 (debian 12.0)"."""
        g = self.g
        return (f"{g.inspect_get_product_name(root)} ({g.inspect_get_distro(root)} "
                f"{g.inspect_get_major_version(root)}.{g.inspect_get_minor_version(root)})")

    @property
    def mounted(self) -> bool:
        return bool(self._mounts)

    def unmount_all(self) -> None:
        if self._mounts:
            self.call("unmount the guest filesystems", self.g.umount_all)
            self._mounts.clear()

    # -- running commands in the guest -----------------------------------------

    def sh(self, cmd: str, *, what: str | None = None, check: bool = True) -> str:
        """Run a shell command chrooted in the guest; return its stdout+stderr.

        libguestfs bind-mounts /dev, /proc and /sys for it.  A non-zero exit
        raises GuestError with the tail of the output unless check=False.
        """
        if not self._mounts:
            raise GuestError("cannot run a command in the guest before its root filesystem is mounted")
        script = f"export PATH={GUEST_PATH}; ( {cmd} ) 2>&1; echo \"{_RC_MARK.strip()}$?\""
        out = self.call(what or f"run {cmd!r} in the guest", self.g.command, ["/bin/sh", "-c", script])
        body, _, rc_text = out.rpartition(_RC_MARK.strip())
        rc = int(rc_text.strip() or "0")
        if rc != 0 and check:
            raise GuestError(f"{what or cmd} failed in the guest (exit {rc}): {one_line(body) or 'no output'}")
        return body

    def run(self, argv: Sequence[str], **kwargs: Any) -> str:
        """sh() with a quoted argument vector."""
        return self.sh(" ".join(shlex.quote(a) for a in argv), **kwargs)

    # -- files -------------------------------------------------------------------

    def exists(self, path: str) -> bool:
        return bool(self.call(f"check {path}", self.g.exists, path))

    def is_file(self, path: str) -> bool:
        return bool(self.call(f"check {path}", self.g.is_file, path, followsymlinks=True))

    def read_bytes(self, path: str) -> bytes:
        """A file's content.  pread is one daemon call (≈10 ms under TCG); read_file goes
        through a download to a host temp file (≈250 ms), so it only serves big files."""
        data = bytes(self.call(f"read {path}", self.g.pread, path, PREAD_MAX, 0))
        if len(data) < PREAD_MAX:
            return data
        return bytes(self.call(f"read {path}", self.g.read_file, path))

    def read_text(self, path: str) -> str:
        return self.read_bytes(path).decode("utf-8", errors="replace")

    def read_text_or_none(self, path: str) -> str | None:
        return self.read_text(path) if self.is_file(path) else None

    def write_text(self, path: str, text: str, mode: int | None = None) -> None:
        """Replace the file's content (a symlinked path writes its target); parents are created."""
        self.write_bytes(path, text.encode("utf-8"), mode)

    def write_bytes(self, path: str, data: bytes, mode: int | None = None) -> None:
        parent = path.rsplit("/", 1)[0] or "/"
        if not self.exists(parent):
            self.mkdir(parent)
        self.call(f"write {path}", self.g.write, path, data)
        if mode is not None:
            self.chmod(path, mode)

    def remove(self, path: str) -> None:
        self.call(f"remove {path}", self.g.rm_f, path)

    def symlink(self, target: str, linkname: str) -> None:
        self.mkdir(linkname.rsplit("/", 1)[0] or "/")
        self.call(f"link {linkname}", self.g.ln_sf, target, linkname)

    def glob(self, pattern: str) -> list[str]:
        return list(self.call(f"glob {pattern}", self.g.glob_expand, pattern))

    def mkdir(self, path: str, mode: int | None = None) -> None:
        """Create a directory and its parents (no error if it exists)."""
        self.call(f"create {path}", self.g.mkdir_p, path)
        if mode is not None:
            self.chmod(path, mode)

    def chmod(self, path: str, mode: int) -> None:
        self.call(f"chmod {path}", self.g.chmod, mode, path)

    def chown(self, path: str, uid: int = 0, gid: int = 0) -> None:
        self.call(f"chown {path}", self.g.chown, uid, gid, path)

    def ls(self, directory: str) -> list[str]:
        return list(self.call(f"list {directory}", self.g.ls, directory))

    def is_symlink(self, path: str) -> bool:
        """Is path a symlink (False when it does not exist)?"""
        try:
            return bool(self.g.is_symlink(path))
        except RuntimeError:  # no such file
            return False

    def readlink(self, path: str) -> str:
        return str(self.call(f"read the link {path}", self.g.readlink, path))

    def remove_tree(self, path: str) -> None:
        self.call(f"remove {path}", self.g.rm_rf, path)

    def rename(self, source: str, target: str) -> None:
        self.call(f"move {source}", self.g.mv, source, target)

    def upload(self, host_path: str, path: str) -> None:
        self.call(f"copy {host_path} into the guest", self.g.upload, host_path, path)

    def download(self, path: str, host_path: str) -> None:
        self.call(f"copy {path} out of the guest", self.g.download, path, host_path)

    def tar_in(self, host_tar: str, directory: str, *, what: str = "unpack the tarball") -> None:
        """Unpack a tar (a file or a named pipe on the host) into a guest directory, xattrs and ACLs kept."""
        self.call(what, self.g.tar_in, host_tar, directory, xattrs=True, acls=True)

    def tar_out(self, directory: str, host_tar: str, *, what: str | None = None,
                excludes: Sequence[str] = ()) -> None:
        self.call(what or f"save {directory}", self.g.tar_out, directory, host_tar, excludes=list(excludes))

    def lstat_files(self, directory: str, names: Sequence[str]) -> list[dict[str, int]]:
        """lstat of each name in directory, in one call (st_ino < 0 where a name is missing)."""
        return list(self.call(f"stat the files in {directory}", self.g.lstatnslist, directory, list(names)))

    def free_bytes(self, path: str = "/") -> int:
        """Bytes available to an unprivileged writer on the filesystem holding path."""
        vfs = self.call("check free space", self.g.statvfs, path)
        return int(vfs["bavail"] * vfs["bsize"])

    def allocate(self, path: str, size: int) -> None:
        """A file of ``size`` bytes, every block allocated (fallocate)."""
        self.call(f"allocate {path}", self.g.fallocate64, path, size)

    def touch(self, path: str) -> None:
        self.call(f"create {path}", self.g.touch, path)

    def set_no_cow(self, path: str) -> None:
        """chattr +C (btrfs: no copy-on-write, as a swap file needs; set while the file is empty)."""
        self.call(f"chattr +C {path}", self.g.set_e2attrs, path, "C")

    def mkswap_file(self, path: str) -> None:
        self.call(f"mkswap {path}", self.g.mkswap_file, path)

    # -- devices and filesystems -----------------------------------------------------

    def devices(self) -> list[str]:
        return list(self.call("list devices", self.g.list_devices))

    def partitions(self) -> list[str]:
        return list(self.call("list partitions", self.g.list_partitions))

    def signature(self, device: str) -> str:
        """What blkid sees on a device (a filesystem, LVM, RAID …), "" when nothing."""
        try:
            return str(self.g.vfs_type(device) or "")
        except RuntimeError:
            return ""

    def uuid(self, device: str, what: str | None = None) -> str:
        return str(self.call(what or f"read the UUID of {device}", self.g.vfs_uuid, device))

    def set_uuid(self, device: str, uuid: str) -> None:
        self.call("set a fresh filesystem UUID", self.g.set_uuid, device, uuid)

    def mkfs(self, fs_type: str, device: str, *, what: str | None = None, **options: Any) -> None:
        """mkfs in the appliance; ``options`` are libguestfs' mkfs options (e.g. features)."""
        self.call(what or f"make {fs_type} on {device}", self.g.mkfs, fs_type, device, **options)

    def e2fsck(self, device: str) -> None:
        """e2fsck -fy equivalent: correct what it finds (a failure is a GuestError)."""
        self.call("e2fsck", self.g.e2fsck, device, correct=True)

    def resize2fs(self, device: str) -> None:
        self.call("resize2fs", self.g.resize2fs, device)

    def grow_mounted(self, fs_type: str, mountpoint: str = "/") -> None:
        """Grow a mounted xfs or btrfs to its device."""
        if fs_type == "xfs":
            self.call("xfs_growfs", self.g.xfs_growfs, mountpoint)
        else:
            self.call("btrfs filesystem resize", self.g.btrfs_filesystem_resize, mountpoint)

    def has_feature(self, feature: str) -> bool:
        """Does this node's appliance support an optional libguestfs feature (xfs, btrfs …)?"""
        return bool(self.call(f"check libguestfs {feature} support", self.g.feature_available, [feature]))

    def read_device(self, device: str, size: int, offset: int = 0) -> bytes:
        return bytes(self.call(f"read {device}", self.g.pread_device, device, size, offset))

    def device_size(self, device: str) -> int:
        return int(self.call(f"read the size of {device}", self.g.blockdev_getsize64, device))

    def partition_table(self, device: str) -> PartitionTable:
        """The table type, sector size, total sectors and partitions of a device (read in the appliance)."""
        g = self.g
        kind = self.call("read the partition table type", g.part_get_parttype, device)
        parts = self.call("list partitions", g.part_list, device)
        sector = self.call("read the sector size", g.blockdev_getss, device)
        total = self.call("read the disk size", g.blockdev_getsz, device)  # 512-byte units
        return PartitionTable(kind, sector, total * 512 // sector,
                              tuple((p["part_num"], p["part_start"], p["part_end"]) for p in parts))

    def move_gpt_backup_to_end(self, device: str) -> None:
        self.call("move the GPT backup header to the end", self.g.part_expand_gpt, device)

    def resize_partition(self, device: str, number: int, end_sector: int) -> None:
        self.call("resize the last partition", self.g.part_resize, device, number, end_sector)

    # -- systemd units in the guest ----------------------------------------------------

    def enable_unit(self, unit_path: str, *targets: str, instance: str | None = None) -> None:
        """Enable a unit file for targets, as ``systemctl enable`` would: a link in each target's .wants.
        With ``instance``, unit_path is a template (``serial-getty@.service``) and the links are named
        for that instance (``serial-getty@ttyS0.service``) while pointing at the template."""
        name = unit_path.rsplit("/", 1)[-1]
        if instance is not None:
            if "@." not in name:
                raise GuestError(f"{unit_path} is not a template unit: it cannot be enabled as instance {instance}")
            name = name.replace("@.", f"@{instance}.", 1)
        for target in targets:
            self.symlink(unit_path, f"/etc/systemd/system/{target}.wants/{name}")

    def install_unit(self, name: str, text: str, *targets: str) -> None:
        """Write a unit file into /etc/systemd/system and enable it for its targets."""
        path = f"/etc/systemd/system/{name}"
        self.write_text(path, text, mode=0o644)
        self.enable_unit(path, *targets)


@dataclass(frozen=True)
class PartitionTable:
    """A device's partition table as the appliance reads it: (number, first byte, last byte) per partition."""

    kind: str  # "gpt", "msdos"
    sector: int
    total_sectors: int
    partitions: tuple[tuple[int, int, int], ...]
