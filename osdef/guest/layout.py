"""Three ways to lay the root filesystem onto DISK_0, each a short list of undoable steps.

- FilesystemImageLayout: a bare ext2/3/4 image (DIB `-t raw` without `vm`).  Host:
  partition table + zero-skipping copy into the root partition.  Appliance:
  e2fsck (unless the image was checked after it was built: ondisk.ext), fresh
  UUID, resize2fs, mount.  The default, fast path.
- DiskImageLayout: a raw partitioned disk image.  Host: zero-skipping copy
  onto the disk.  Appliance: GPT backup header moved, last partition and its
  filesystem (ext*, xfs, btrfs) grown, mount by inspection.
- TarballLayout: a root tarball.  Host: partition table.  Appliance: mkfs,
  mount, tar_in through a named pipe (streamed, no temp file), ./dev/* emptied.

Every layout's first step wipes the first and last MiB of the disk; its undo
does it again, so a create that fails later leaves no valid-looking table.
`check(disk_size)` runs before any byte is written.
"""

from __future__ import annotations

import os
import tempfile
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from osdef.disk.copy import CopyStats, copy_sparse
from osdef.disk.device import read_bytes
from osdef.disk.ondisk import ext as ondisk_ext
from osdef.disk.pipes import enlarge_pipe
from osdef.disk.units import MiB
from osdef.errors import GuestError
from osdef.fsprofiles import DEFAULT_PROFILE
from osdef.guest import partition
from osdef.guest.mkfs import check_root_readable, make_filesystem
from osdef.guest.partition import Extent, PartitionPlan
from osdef.guest.session import GuestSession
from osdef.guest.steps import Step
from osdef.guest.target import open_target, wipe
from osdef.vocab import DISK_RAW, EXT_FAMILY, FS_IMAGE, ROOT_FILESYSTEMS, TAR

TAR_OVERHEAD = 1.15  # filesystem metadata and slack on top of a tarball's content
MKFS_TYPES = ROOT_FILESYSTEMS


def _mib(n: int) -> str:
    return f"{(n + MiB - 1) // MiB} MiB"


def too_small(disk: Path, disk_size: int, needed: int, what: str) -> GuestError:
    return GuestError(
        f"disk {disk} is {_mib(disk_size)} but the {what} needs at least {_mib(needed)};"
        " grow the instance disk (gnt-instance modify --disk 0:size=…) or pick a smaller image")


@dataclass
class RootInfo:
    """What the appliance steps found out about the root filesystem."""

    device: str = ""
    fs_type: str = ""
    uuid: str = ""
    esp_device: str | None = None
    esp_uuid: str | None = None
    disk_device: str = ""


@dataclass
class Layout:
    """Common state of the three layouts."""

    disk: Path
    image_stream: BinaryIO
    image_size: int
    root: RootInfo = field(default_factory=RootInfo)
    copy_stats: CopyStats | None = None
    kind = "base"

    def _wipe_step(self) -> Step:
        return Step("wipe the start and end of the disk",
                    lambda: wipe(self.disk), lambda: wipe(self.disk))

    def check(self, disk_size: int) -> None:
        raise NotImplementedError

    def host_steps(self) -> list[Step]:
        raise NotImplementedError

    def guest_steps(self, session: GuestSession) -> list[Step]:
        raise NotImplementedError


@dataclass
class _PartitionedLayout(Layout):
    """Shared by the layouts for which osdef writes the partition table."""

    table: str = "gpt"
    boot: str = "bios"
    fs_type: str = "ext4"
    plan: PartitionPlan | None = None
    extents: dict[int, Extent] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.plan = partition.plan(self.table, self.boot)

    def _write_table(self) -> None:
        assert self.plan is not None
        self.extents = partition.write_table(self.disk, self.plan)

    def _root_extent(self) -> Extent:
        assert self.plan is not None
        return self.extents[self.plan.root.number]

    def _find_devices(self, session: GuestSession) -> None:
        assert self.plan is not None
        self.root.disk_device = session.device(0)
        self.root.device = session.partition(0, self.plan.root.number)
        esp = self.plan.by_role("esp")
        if esp is not None:
            self.root.esp_device = session.partition(0, esp.number)

    def _make_esp(self, session: GuestSession) -> None:
        if self.root.esp_device is None:
            return
        session.call("format the EFI system partition", session.g.mkfs, "vfat",
                     self.root.esp_device)
        self.root.esp_uuid = session.call("read the ESP UUID", session.g.vfs_uuid,
                                          self.root.esp_device)

    def _mount_esp(self, session: GuestSession) -> None:
        if self.root.esp_device is not None:
            session.mount(self.root.esp_device, "/boot/efi", "vfat")


@dataclass
class FilesystemImageLayout(_PartitionedLayout):
    """Root filesystem image → partition table + copy into the root partition (host), grow (appliance)."""

    kind = FS_IMAGE
    image_checked: bool = False  # its superblock says: e2fsck'd after the last mount

    def check(self, disk_size: int) -> None:
        assert self.plan is not None
        if self.fs_type not in EXT_FAMILY:
            raise GuestError(f"a filesystem image must be ext2/3/4 here, not {self.fs_type!r}")
        needed = self.image_size + (disk_size - self.plan.root_capacity(disk_size))
        if self.plan.root_capacity(disk_size) < self.image_size:
            raise too_small(self.disk, disk_size, needed, f"{_mib(self.image_size)} filesystem image")

    def host_steps(self) -> list[Step]:
        return [
            self._wipe_step(),
            Step("write the partition table", self._write_table),
            # the appliance boots meanwhile; its caches of the disk are dropped after
            Step("copy the filesystem image into the root partition", self._copy,
                 during_launch=True),
        ]

    def _copy(self) -> None:
        extent = self._root_extent()
        if extent.size < self.image_size:
            raise too_small(self.disk, extent.start + extent.size,
                            extent.start + self.image_size, "filesystem image")
        with open_target(self.disk) as target:
            self.copy_stats = copy_sparse(self.image_stream, target, extent.start, extent.size,
                                          defined=extent.size, what="filesystem image")
            # read back after the whole stream passed its sha256 check
            self.image_checked = ondisk_ext.checked_since_mount(
                read_bytes(target, extent.start, 2 * ondisk_ext.SUPERBLOCK_SIZE))

    def guest_steps(self, session: GuestSession) -> list[Step]:
        return [
            Step("check the root filesystem", lambda: self._fsck(session)),
            Step("give the root filesystem a new UUID", lambda: self._new_uuid(session)),
            Step("grow the root filesystem to the partition", lambda: self._grow(session)),
            Step("mount the root filesystem", lambda: self._mount(session)),
        ]

    def _fsck(self, session: GuestSession) -> None:
        self._find_devices(session)
        if self.image_checked:
            # `osdef image build` e2fsck'd these very bytes; a second full check finds the same
            session.log("root filesystem: checked when the image was built, not mounted since;"
                        " no e2fsck")
            return
        session.call("e2fsck", session.g.e2fsck, self.root.device, correct=True)

    def _new_uuid(self, session: GuestSession) -> None:
        # before any mount: tune2fs -U wants a filesystem checked since its last mount
        # (e2fsck just now, or the image's own check); chosen here so it need not be read back
        fresh = str(uuid.uuid4())
        session.call("set a fresh filesystem UUID", session.g.set_uuid, self.root.device, fresh)
        self.root.uuid = fresh

    def _grow(self, session: GuestSession) -> None:
        session.call("resize2fs", session.g.resize2fs, self.root.device)

    def _mount(self, session: GuestSession) -> None:
        # e2fsck accepted it, check() required ext2/3/4: no blkid probe needed
        self.root.fs_type = self.fs_type
        self._make_esp(session)
        session.mount(self.root.device, "/", self.root.fs_type)
        self._mount_esp(session)


@dataclass
class TarballLayout(_PartitionedLayout):
    """Root tarball → partition table (host), mkfs + tar_in through a named pipe (appliance)."""

    mkfs_profile: str = DEFAULT_PROFILE  # the guest's filesystem features (osdef.fsprofiles)
    kind = TAR

    def check(self, disk_size: int) -> None:
        assert self.plan is not None
        if self.fs_type not in MKFS_TYPES:
            raise GuestError(f"unknown root filesystem type {self.fs_type!r}"
                             f" (use one of: {', '.join(MKFS_TYPES)})")
        want = int(self.image_size * TAR_OVERHEAD) + 64 * MiB
        if self.plan.root_capacity(disk_size) < want:
            raise too_small(self.disk, disk_size,
                            want + disk_size - self.plan.root_capacity(disk_size),
                            f"{_mib(self.image_size)} tarball")

    def host_steps(self) -> list[Step]:
        return [self._wipe_step(), Step("write the partition table", self._write_table)]

    def guest_steps(self, session: GuestSession) -> list[Step]:
        return [
            Step("make the root filesystem", lambda: self._mkfs(session)),
            Step("unpack the root tarball", lambda: self._unpack(session)),
        ]

    def _mkfs(self, session: GuestSession) -> None:
        self._find_devices(session)
        make_filesystem(session, self.fs_type, self.root.device, self.mkfs_profile, f"mkfs.{self.fs_type}")
        check_root_readable(session, self.fs_type, self.root.device, self.mkfs_profile)
        self.root.fs_type = self.fs_type
        self.root.uuid = session.call("read the root UUID", session.g.vfs_uuid, self.root.device)
        self._make_esp(session)
        session.mount(self.root.device, "/", self.fs_type)
        self._mount_esp(session)

    def _unpack(self, session: GuestSession) -> None:
        with tempfile.TemporaryDirectory(prefix="osdef-tar-") as tmp:
            fifo = Path(tmp) / "root.tar"
            os.mkfifo(fifo, 0o600)
            feeder = _FifoFeeder(fifo, self.image_stream)
            feeder.start()
            try:
                session.call("unpack the tarball", session.g.tar_in, str(fifo), "/",
                             xattrs=True, acls=True)
            finally:
                feeder.finish()
            self.copy_stats = CopyStats(feeder.bytes_fed, feeder.bytes_fed)
        # tar_in (libguestfs 1.48) has no exclude list: empty ./dev afterwards,
        # DIB tarballs carry the build host's device nodes there.
        for entry in session.call("list /dev", session.g.ls, "/dev"):
            session.call(f"remove /dev/{entry}", session.g.rm_rf, f"/dev/{entry}")


class _FifoFeeder(threading.Thread):
    """Feeds a stream into a named pipe that libguestfs reads as tar_in's file."""

    def __init__(self, fifo: Path, stream: BinaryIO):
        super().__init__(name="osdef-tar-feeder", daemon=True)
        self.fifo = fifo
        self.stream = stream
        self.bytes_fed = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            with open(self.fifo, "wb", buffering=0) as out:
                enlarge_pipe(out.fileno())
                while True:
                    chunk = self.stream.read(MiB)
                    if not chunk:
                        break
                    out.write(chunk)
                    self.bytes_fed += len(chunk)
        except BrokenPipeError:
            self.error = GuestError("the appliance stopped reading the tarball early")
        except BaseException as exc:  # noqa: BLE001 - reported by finish()
            self.error = exc

    def finish(self) -> None:
        """Join the feeder; if the reader never opened the pipe, unblock the writer first."""
        self.join(timeout=0.5)
        if self.is_alive():
            try:
                fd = os.open(self.fifo, os.O_RDONLY | os.O_NONBLOCK)
                os.close(fd)
            except OSError:
                pass
            self.join()
        if self.error is not None and not isinstance(self.error, GuestError):
            raise GuestError(f"reading the tarball failed: {self.error}")


@dataclass
class DiskImageLayout(Layout):
    """Partitioned raw disk image → copy onto the disk (host); grow the last partition (appliance)."""

    kind = DISK_RAW

    def check(self, disk_size: int) -> None:
        if disk_size < self.image_size:
            raise too_small(self.disk, disk_size, self.image_size, f"{_mib(self.image_size)} disk image")

    def host_steps(self) -> list[Step]:
        return [self._wipe_step(), Step("copy the disk image onto the disk", self._copy)]

    def _copy(self) -> None:
        with open_target(self.disk) as target:
            if target.size < self.image_size:
                raise too_small(self.disk, target.size, self.image_size, "disk image")
            self.copy_stats = copy_sparse(self.image_stream, target, 0, target.size,
                                          defined=self.image_size, what="disk image")

    def guest_steps(self, session: GuestSession) -> list[Step]:
        return [
            Step("grow the last partition to the end of the disk", lambda: self._grow_partition(session)),
            Step("grow its filesystem and mount the guest", lambda: self._grow_fs_and_mount(session)),
        ]

    def _grow_partition(self, session: GuestSession) -> None:
        g = session.g
        dev = session.device(0)
        self.root.disk_device = dev
        table = session.call("read the partition table type", g.part_get_parttype, dev)
        if table == "gpt":
            session.call("move the GPT backup header to the end", g.part_expand_gpt, dev)
        parts = session.call("list partitions", g.part_list, dev)
        if not parts:
            raise GuestError(f"the disk image on {self.disk} has no partitions")
        last = max(parts, key=lambda p: p["part_start"])
        number = last["part_num"]
        sector = session.call("read the sector size", g.blockdev_getss, dev)
        total = session.call("read the disk size", g.blockdev_getsz, dev)  # 512-byte units
        total_sectors = total * 512 // sector
        end = total_sectors - (34 if table == "gpt" else 1)
        end -= (end + 1) % (MiB // sector)  # keep the end 1 MiB aligned
        if end > last["part_end"] // sector:
            session.call("resize the last partition", g.part_resize, dev, number, end)
        self._last = session.partition(0, number)

    def _grow_fs_and_mount(self, session: GuestSession) -> None:
        g = session.g
        last = self._last
        fs_type = session.fs_type(last)
        if fs_type in EXT_FAMILY:
            session.call("e2fsck", g.e2fsck, last, correct=True)
            session.call("resize2fs", g.resize2fs, last)
        elif fs_type in ("xfs", "btrfs"):
            if not session.call("check libguestfs features", g.feature_available, [fs_type]):
                raise GuestError(f"growing {fs_type} needs this node's libguestfs {fs_type} support"
                                 f" (Debian: apt-get install libguestfs-{fs_type})")
            # these grow while mounted: mount alone, grow, unmount, then mount the guest
            session.mount(last, "/", fs_type)
            if fs_type == "xfs":
                session.call("xfs_growfs", g.xfs_growfs, "/")
            else:
                session.call("btrfs filesystem resize", g.btrfs_filesystem_resize, "/")
            session.unmount_all()
        elif fs_type not in ("swap", "vfat", ""):
            session.log(f"warning: cannot grow a {fs_type} filesystem; left at its size")
        root = session.mount_inspected_root()
        self.root.device = root
        self.root.fs_type = session.fs_type(root)
        self.root.uuid = session.call("read the root UUID", g.vfs_uuid, root)
