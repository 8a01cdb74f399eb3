"""A root tarball: the partition table from the host, then mkfs and tar_in in the appliance.

Host: wipe, the partition table.  Appliance: mkfs with the variant's profile
(osdef.fsprofiles: the guest's feature set, never the node's mke2fs.conf; an
XFS root the guest's boot loader cannot read stops create), the ESP, mount,
then tar_in through a named pipe fed from the image stream (no temp file), and
./dev/* emptied (DIB tarballs carry the build host's device nodes there).
"""

from __future__ import annotations

import os
import tempfile
import threading
from pathlib import Path
from typing import BinaryIO

from osdef.create.layout.base import Devices, MountedRoot, PartitionedLayout, mib, too_small
from osdef.create.undoable import Step, StepRunner
from osdef.disk.copy import CopyStats
from osdef.disk.pipes import enlarge_pipe
from osdef.disk.units import MiB
from osdef.errors import GuestError
from osdef.fsprofiles import DEFAULT_PROFILE
from osdef.guest.mkfs import check_root_readable, make_filesystem
from osdef.guest.session import GuestSession
from osdef.vocab import ROOT_FILESYSTEMS, TAR

TAR_OVERHEAD = 1.15  # filesystem metadata and slack on top of a tarball's content


class TarballLayout(PartitionedLayout):
    """Root tarball → partition table (host), mkfs + tar_in through a named pipe (appliance)."""

    kind = TAR

    def __init__(self, disk: Path | str, image_stream: BinaryIO, image_size: int, *, table: str = "gpt",
                 boot: str = "bios", fs_type: str = "ext4", mkfs_profile: str | None = None):
        super().__init__(disk, image_stream, image_size, table=table, boot=boot, fs_type=fs_type)
        self.mkfs_profile = mkfs_profile or DEFAULT_PROFILE  # the guest's filesystem features

    def check(self, disk_size: int) -> None:
        if self.fs_type not in ROOT_FILESYSTEMS:
            raise GuestError(f"unknown root filesystem type {self.fs_type!r}"
                             f" (use one of: {', '.join(ROOT_FILESYSTEMS)})")
        want = int(self.image_size * TAR_OVERHEAD) + 64 * MiB
        if self.plan.root_capacity(disk_size) < want:
            raise too_small(self.disk, disk_size, want + disk_size - self.plan.root_capacity(disk_size),
                            f"{mib(self.image_size)} tarball")

    def host_steps(self) -> list[Step]:
        return [self.wipe_step(), Step("write the partition table", self.write_table)]

    def lay_down(self, session: GuestSession, runner: StepRunner) -> MountedRoot:
        dev = self.devices(session)
        root = runner.call("make the root filesystem", self._mkfs, session, dev)
        runner.call("unpack the root tarball", self._unpack, session)
        return root

    def _mkfs(self, session: GuestSession, dev: Devices) -> MountedRoot:
        make_filesystem(session, self.fs_type, dev.root, self.mkfs_profile, f"mkfs.{self.fs_type}")
        check_root_readable(session, self.fs_type, dev.root, self.mkfs_profile)
        return self.mount(session, dev, session.uuid(dev.root, "read the root UUID"))

    def _unpack(self, session: GuestSession) -> None:
        with tempfile.TemporaryDirectory(prefix="osdef-tar-") as tmp:
            fifo = Path(tmp) / "root.tar"
            os.mkfifo(fifo, 0o600)
            feeder = _FifoFeeder(fifo, self.image_stream)
            feeder.start()
            try:
                session.tar_in(str(fifo), "/")
            finally:
                feeder.finish()
            self.copy_stats = CopyStats(feeder.bytes_fed, feeder.bytes_fed)
        # tar_in (libguestfs 1.48) has no exclude list: empty ./dev afterwards
        for entry in session.ls("/dev"):
            session.remove_tree(f"/dev/{entry}")


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
        except BaseException as exc:
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
