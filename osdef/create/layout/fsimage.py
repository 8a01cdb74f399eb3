"""A root filesystem image (ext2/3/4, DIB ``-t raw`` without ``vm``): the default, fast path.

Host: the partition table, then a zero-skipping copy of the image into the root
partition (it runs while the appliance boots; the pipeline drops the
appliance's caches afterwards).  Appliance: e2fsck (skipped when the image was
e2fsck'd after its last mount: osdef.disk.ondisk.ext), a fresh UUID, resize2fs,
the ESP formatted, mount.
"""

from __future__ import annotations

import uuid as uuids

from osdef.create.layout.base import Devices, MountedRoot, PartitionedLayout, mib, too_small
from osdef.create.undoable import Step, StepRunner
from osdef.create.target import open_target
from osdef.disk.copy import copy_sparse
from osdef.disk.device import read_bytes
from osdef.disk.ondisk import ext as ondisk_ext
from osdef.errors import GuestError
from osdef.guest.session import GuestSession
from osdef.vocab import EXT_FAMILY, FS_IMAGE


class FilesystemImageLayout(PartitionedLayout):
    """Root filesystem image → partition table + copy into the root partition (host), grow (appliance)."""

    kind = FS_IMAGE
    image_checked = False  # its superblock says: e2fsck'd after the last mount (read after the copy)

    def check(self, disk_size: int) -> None:
        if self.fs_type not in EXT_FAMILY:
            raise GuestError(f"a filesystem image must be ext2/3/4 here, not {self.fs_type!r}")
        needed = self.image_size + (disk_size - self.plan.root_capacity(disk_size))
        if self.plan.root_capacity(disk_size) < self.image_size:
            raise too_small(self.disk, disk_size, needed, f"{mib(self.image_size)} filesystem image")

    def host_steps(self) -> list[Step]:
        return [
            self.wipe_step(),
            Step("write the partition table", self.write_table),
            # the appliance boots meanwhile; its caches of the disk are dropped after
            Step("copy the filesystem image into the root partition", self._copy, during_launch=True),
        ]

    def _copy(self) -> None:
        extent = self.root_extent()
        if extent.size < self.image_size:
            raise too_small(self.disk, extent.start + extent.size, extent.start + self.image_size,
                            "filesystem image")
        with open_target(self.disk) as target:
            self.copy_stats = copy_sparse(self.image_stream, target, extent.start, extent.size,
                                          defined=extent.size, what="filesystem image")
            # read back after the whole stream passed its sha256 check
            self.image_checked = ondisk_ext.checked_since_mount(
                read_bytes(target, extent.start, 2 * ondisk_ext.SUPERBLOCK_SIZE))

    def lay_down(self, session: GuestSession, runner: StepRunner) -> MountedRoot:
        dev = self.devices(session)
        runner.call("check the root filesystem", self._fsck, session, dev)
        uuid = runner.call("give the root filesystem a new UUID", self._new_uuid, session, dev)
        runner.call("grow the root filesystem to the partition", session.resize2fs, dev.root)
        # e2fsck accepted it, check() required ext2/3/4: no blkid probe needed
        return runner.call("mount the root filesystem", self.mount, session, dev, uuid)

    def _fsck(self, session: GuestSession, dev: Devices) -> None:
        if self.image_checked:
            # `osdef image build` e2fsck'd these very bytes; a second full check finds the same
            session.log("root filesystem: checked when the image was built, not mounted since; no e2fsck")
            return
        session.e2fsck(dev.root)

    @staticmethod
    def _new_uuid(session: GuestSession, dev: Devices) -> str:
        # before any mount: tune2fs -U wants a filesystem checked since its last mount
        # (e2fsck just now, or the image's own check); chosen here so it need not be read back
        fresh = str(uuids.uuid4())
        session.set_uuid(dev.root, fresh)
        return fresh
