"""The create and rename pipelines the Ganeti entry points call.

create: check sizes → host steps (wipe, partition table, the cached grub boot
area when there is one; the zero-skipping copy of a filesystem image runs on a
thread while the appliance boots, whose block caches are dropped afterwards)
→ one appliance: layout steps (fsck/UUID/grow/mkfs/unpack, mount) → the
plan's steps (osdef.guest.plan; built-in, then the site's) → clean shutdown → the boot area
grub-install wrote is cached for the image's next creates
(osdef.guest.bootarea).  Any failure undoes the completed steps (the disk's
first and last MiB end up zeroed) and re-raises.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from osdef.config import LibguestfsSettings
from osdef.disk.rbduri import as_location
from osdef.guest.bootarea import BootAreaUse
from osdef.guest.cloudinit import update_seed_hostname
from osdef.guest.context import MountedRoot, StepContext
from osdef.guest.customize import run_steps
from osdef.guest.hostnames import validate_fqdn
from osdef.guest.layout import DiskImageLayout, FilesystemImageLayout, Layout, TarballLayout
from osdef.guest.plan import CreatePlan
from osdef.guest.rename import rename_guest
from osdef.guest.session import GuestSession
from osdef.guest.steps import BackgroundSteps, StepRunner
from osdef.guest.target import disk_size
from osdef.vocab import FS_IMAGE, TAR


@dataclass(frozen=True)
class ImageData:
    """The decompressed image, read once: a binary stream and its size in bytes (for a tarball:
    the size of its content, used for the disk-size check)."""

    stream: BinaryIO
    size: int


@dataclass(frozen=True)
class InstallReport:
    """What a create did, for the log and the benchmarks."""

    layout: str
    root_device: str
    root_uuid: str
    root_fs_type: str
    bytes_read: int
    bytes_written: int
    steps_run: list[str]
    timings: dict[str, float] = field(default_factory=dict)  # step name → seconds
    boot_area_from_cache: bool = False  # grub-install skipped: osdef.guest.bootarea


def make_layout(disk: Path, image: ImageData, plan: CreatePlan) -> Layout:
    """The layout for the plan's image kind: a bare filesystem image, a tarball, a disk image."""
    if plan.layout == FS_IMAGE:
        return FilesystemImageLayout(disk, image.stream, image.size, table=plan.table,
                                     boot=plan.boot, fs_type=plan.fs_type)
    if plan.layout == TAR:
        return TarballLayout(disk, image.stream, image.size, table=plan.table, boot=plan.boot,
                             fs_type=plan.fs_type, mkfs_profile=plan.mkfs_profile)
    return DiskImageLayout(disk, image.stream, image.size)


def install_root(disk: Path, image: ImageData, plan: CreatePlan, settings: LibguestfsSettings,
                 log: Callable[[str], None] = print) -> InstallReport:
    """Lay the image onto `disk` as `plan` says, run its steps, install the bootloader.

    The plan was checked when it was built; the disk's size is checked here,
    before the first byte is written.  The plan's data disks are attached after
    `disk`, so steps reach disk i as session.device(i).
    """
    disk = as_location(disk)
    layout = make_layout(disk, image, plan)
    layout.check(disk_size(disk))
    boot_area = BootAreaUse(plan.boot_cache, getattr(layout, "plan", None), plan.boot, plan.fs_type,
                            bootloader_runs=plan.bootloader_runs)
    runner = StepRunner(log)
    started = time.monotonic()
    try:
        ran = _install(disk, layout, boot_area, plan, settings, runner, log)
    except BaseException:
        log("create failed: invalidating the disk")
        runner.rollback()
        boot_area.discard()
        raise
    boot_area.keep(disk)  # when grub-install ran: its output, for the image's next creates
    runner.timings["total"] = time.monotonic() - started
    stats = layout.copy_stats
    return InstallReport(
        layout=layout.kind, root_device=layout.root.device, root_uuid=layout.root.uuid,
        root_fs_type=layout.root.fs_type,
        bytes_read=stats.bytes_read if stats else 0,
        bytes_written=stats.bytes_written if stats else 0,
        steps_run=ran, timings=dict(runner.timings), boot_area_from_cache=boot_area.area is not None)


def _install(disk: Path, layout: Layout, boot_area: BootAreaUse, plan: CreatePlan,
             settings: LibguestfsSettings, runner: StepRunner, log: Callable[[str], None]) -> list[str]:
    """Host steps, then one appliance: layout steps, the plan's steps, clean shutdown."""
    host = layout.host_steps() + boot_area.host_steps(disk)
    runner.run([s for s in host if not s.during_launch])
    background = BackgroundSteps(runner, [s for s in host if s.during_launch])
    if background.steps:
        background.start()
    log("start the appliance")
    launch_started = time.monotonic()
    session = GuestSession([disk, *plan.data_disks], settings, log=log)
    try:
        session.launch()
    except BaseException:
        session.close()
        background.finish()
        raise
    runner.timings["launch the appliance"] = time.monotonic() - launch_started
    with session:
        background.finish()
        runner.timings["launch + host copy"] = time.monotonic() - launch_started
        if background.steps:
            session.drop_caches()
        runner.run(layout.guest_steps(session))
        root = layout.root
        mounted = MountedRoot(device=root.device, uuid=root.uuid, fs_type=root.fs_type,
                              esp_uuid=root.esp_uuid, disk_device=root.disk_device or session.device(0),
                              boot_area=boot_area.area, boot_capture=boot_area.capture)
        steps_started = time.monotonic()
        ran = run_steps(StepContext.of(plan, session, mounted, log))
        runner.timings["customization steps"] = time.monotonic() - steps_started
        shutdown_started = time.monotonic()
    runner.timings["shut the appliance down"] = time.monotonic() - shutdown_started
    return ran


def rename(disk: Path, old: str, new: str, *, settings: LibguestfsSettings,
           log: Callable[[str], None] = print, domain: str = "") -> None:
    """Rename the guest on `disk` (its OS found by inspection) from `old` to `new` (FQDNs, or
    short names qualified with domain: osdef.guest.hostnames)."""
    validate_fqdn(new)
    with GuestSession([disk], settings, log=log) as session:
        session.mount_inspected_root()
        rename_guest(session, old, new, log, domain)
        update_seed_hostname(session, new, log)
