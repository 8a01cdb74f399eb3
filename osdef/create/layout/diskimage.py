"""A partitioned raw disk image: copied onto the disk from the host, its last partition grown in the appliance.

Host: wipe, then a zero-skipping copy of the image onto the disk.  Appliance:
the GPT backup header moved to the disk's end, the last partition grown to it
(1 MiB aligned) and its filesystem with it (ext*: e2fsck + resize2fs; xfs and
btrfs grow while mounted, if this node's libguestfs has them), then the guest
mounted by inspection.
"""

from __future__ import annotations

from osdef.create.layout.base import Layout, MountedRoot, mib, too_small
from osdef.create.undoable import Step, StepRunner
from osdef.create.target import open_target
from osdef.disk.copy import copy_sparse
from osdef.disk.units import MiB
from osdef.errors import GuestError
from osdef.guest.session import GuestSession
from osdef.vocab import DISK_RAW, EXT_FAMILY


class DiskImageLayout(Layout):
    """Partitioned raw disk image → copy onto the disk (host); grow the last partition (appliance)."""

    kind = DISK_RAW

    def check(self, disk_size: int) -> None:
        if disk_size < self.image_size:
            raise too_small(self.disk, disk_size, self.image_size, f"{mib(self.image_size)} disk image")

    def host_steps(self) -> list[Step]:
        return [self.wipe_step(), Step("copy the disk image onto the disk", self._copy)]

    def _copy(self) -> None:
        with open_target(self.disk) as target:
            if target.size < self.image_size:
                raise too_small(self.disk, target.size, self.image_size, "disk image")
            self.copy_stats = copy_sparse(self.image_stream, target, 0, target.size,
                                          defined=self.image_size, what="disk image")

    def lay_down(self, session: GuestSession, runner: StepRunner) -> MountedRoot:
        last = runner.call("grow the last partition to the end of the disk", self._grow_partition, session)
        return runner.call("grow its filesystem and mount the guest", self._grow_fs_and_mount, session, last)

    def _grow_partition(self, session: GuestSession) -> str:
        """Grow the last partition to the disk's end (1 MiB aligned); its appliance device."""
        dev = session.device(0)
        table = session.partition_table(dev)
        if table.kind == "gpt":
            session.move_gpt_backup_to_end(dev)
        if not table.partitions:
            raise GuestError(f"the disk image on {self.disk} has no partitions")
        number, _, last_end = max(table.partitions, key=lambda p: p[1])
        end = table.total_sectors - (34 if table.kind == "gpt" else 1)
        end -= (end + 1) % (MiB // table.sector)  # keep the end 1 MiB aligned
        if end > last_end // table.sector:
            session.resize_partition(dev, number, end)
        return session.partition(0, number)

    def _grow_fs_and_mount(self, session: GuestSession, last: str) -> MountedRoot:
        fs_type = session.fs_type(last)
        if fs_type in EXT_FAMILY:
            session.e2fsck(last)
            session.resize2fs(last)
        elif fs_type in ("xfs", "btrfs"):
            if not session.has_feature(fs_type):
                raise GuestError(f"growing {fs_type} needs this node's libguestfs {fs_type} support"
                                 f" (Debian: apt-get install libguestfs-{fs_type})")
            # these grow while mounted: mount alone, grow, unmount, then mount the guest
            session.mount(last, "/", fs_type)
            session.grow_mounted(fs_type)
            session.unmount_all()
        elif fs_type not in ("swap", "vfat", ""):
            session.log(f"warning: cannot grow a {fs_type} filesystem; left at its size")
        root = session.mount_inspected_root()
        return MountedRoot(root, session.uuid(root, "read the root UUID"), session.fs_type(root),
                           None, session.device(0))
