"""What the three layouts share: the frozen result they hand on, the base classes, the size refusal."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from osdef.create import partitioning
from osdef.create.partitioning import Extent, PartitionPlan
from osdef.create.undoable import Step, StepRunner
from osdef.create.target import wipe
from osdef.disk.copy import CopyStats
from osdef.disk.units import MiB
from osdef.errors import GuestError
from osdef.guest.session import GuestSession


@dataclass(frozen=True)
class MountedRoot:
    """The laid-out disk 0 as the appliance sees it, root filesystem mounted at /."""

    device: str = ""  # appliance device of the root fs, e.g. /dev/sda3
    uuid: str = ""
    fs_type: str = ""
    esp_uuid: str | None = None  # vfat UUID of the EFI system partition, if any
    disk_device: str = "/dev/sda"  # appliance device of DISK_0 (for grub-install)


def mib(n: int) -> str:
    return f"{(n + MiB - 1) // MiB} MiB"


def too_small(disk: Path | str, disk_size: int, needed: int, what: str) -> GuestError:
    return GuestError(
        f"disk {disk} is {mib(disk_size)} but the {what} needs at least {mib(needed)};"
        " grow the instance disk (gnt-instance modify --disk 0:size=…) or pick a smaller image")


class Layout:
    """What every layout offers the pipeline."""

    kind = "base"

    def __init__(self, disk: Path | str, image_stream: BinaryIO, image_size: int):
        self.disk = disk
        self.image_stream = image_stream
        self.image_size = image_size
        self.copy_stats: CopyStats | None = None  # what the host copy (or the unpack) moved

    def wipe_step(self) -> Step:
        return Step("wipe the start and end of the disk", lambda: wipe(self.disk), lambda: wipe(self.disk))

    def check(self, disk_size: int) -> None:
        raise NotImplementedError

    def host_steps(self) -> list[Step]:
        raise NotImplementedError

    def lay_down(self, session: GuestSession, runner: StepRunner) -> MountedRoot:
        raise NotImplementedError


@dataclass(frozen=True)
class Devices:
    """Where the partitions osdef wrote are in the appliance (found once, handed on)."""

    disk: str
    root: str
    esp: str | None


class PartitionedLayout(Layout):
    """Shared by the layouts for which osdef writes the partition table (osdef.create.partitioning)."""

    def __init__(self, disk: Path | str, image_stream: BinaryIO, image_size: int, *, table: str = "gpt",
                 boot: str = "bios", fs_type: str = "ext4"):
        super().__init__(disk, image_stream, image_size)
        self.table, self.boot, self.fs_type = table, boot, fs_type
        self.plan: PartitionPlan = partitioning.plan(table, boot)
        self.extents: dict[int, Extent] = {}

    def write_table(self) -> None:
        self.extents = partitioning.write_table(self.disk, self.plan)

    def root_extent(self) -> Extent:
        return self.extents[self.plan.root.number]

    def devices(self, session: GuestSession) -> Devices:
        esp = self.plan.by_role("esp")
        return Devices(session.device(0), session.partition(0, self.plan.root.number),
                       session.partition(0, esp.number) if esp is not None else None)

    def mount(self, session: GuestSession, dev: Devices, uuid: str) -> MountedRoot:
        """Format the ESP (if any), mount the root and the ESP: the result the steps get."""
        esp_uuid = None
        if dev.esp is not None:
            session.mkfs("vfat", dev.esp, what="format the EFI system partition")
            esp_uuid = session.uuid(dev.esp, "read the ESP UUID")
        session.mount(dev.root, "/", self.fs_type)
        if dev.esp is not None:
            session.mount(dev.esp, "/boot/efi", "vfat")
        return MountedRoot(dev.root, uuid, self.fs_type, esp_uuid, dev.disk)
