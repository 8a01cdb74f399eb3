"""The pipeline: create and rename, end to end, each one call below its script.

create: Request → plan (osdef.create.plan: everything checked, nothing
written) → the disk's size checked by the layout → host steps (wipe,
partition table, a cached grub boot area; the zero-skipping copy of a
filesystem image runs on a thread while the appliance boots, whose block
caches are dropped afterwards) → one appliance: the layout lays the root down
and mounts it (osdef.create.layout) → the plan's customization steps
(built-in, then the site's) → clean shutdown → what grub-install wrote is
kept for the image's next creates (osdef.create.bootarea).  Any failure
undoes the completed steps (the disk's first and last MiB end up zeroed) and
re-raises.

rename: one appliance, the guest's OS found by inspection, its names edited
in place (osdef.guest.rename) and the cloud-init seed's hostname with them.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from osdef.config import LibguestfsSettings
from osdef.create.bootarea import BootAreaCache, write_boot_area
from osdef.create.context import StepContext
from osdef.create.layout.base import Layout, MountedRoot
from osdef.create.layout.diskimage import DiskImageLayout
from osdef.create.layout.fsimage import FilesystemImageLayout
from osdef.create.layout.tarball import TarballLayout
from osdef.create.plan import CreatePlan, build
from osdef.create.request import Request
from osdef.create.runner import run_steps
from osdef.create.undoable import BackgroundSteps, Step, StepRunner
from osdef.create.target import disk_size
from osdef.disk.rbduri import as_location
from osdef.guest.cloudinit import update_seed_hostname
from osdef.guest.hostnames import name_domain
from osdef.guest.rename import rename_guest
from osdef.guest.session import GuestSession
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
    root: MountedRoot
    bytes_read: int
    bytes_written: int
    steps_run: list[str]
    timings: dict[str, float] = field(default_factory=dict)  # step name → seconds
    boot_area_from_cache: bool = False  # grub-install skipped: osdef.create.bootarea


def create(request: Request, say: Callable[[str], None]) -> None:
    """The create script's work: plan, image, install."""
    built = build(request, say)
    disk0 = request.disk0
    with built.artifact.open() as stream:
        report = install_root(disk0, ImageData(stream, built.artifact.size), built.plan, request.config.libguestfs,
                              say, boot_cache=built.boot_cache, disk_bytes=request.sizes[0])
    total = report.timings.get("total")
    say(f"done: {built.plan.hostname} on {disk0} (root {report.root.fs_type} UUID {report.root.uuid}"
        + (f", {total:.1f} s" if total is not None else "") + ")")


def rename(request: Request, say: Callable[[str], None]) -> None:
    """The rename script's work: the guest on disk 0 renamed in place, from OLD_INSTANCE_NAME."""
    inst = request.instance
    assert inst.name is not None and inst.old_name is not None  # load_instance requires both for rename
    say(f"rename {inst.old_name} → {inst.name}")
    with GuestSession([request.disk0], request.config.libguestfs, log=say) as session:
        session.mount_inspected_root()
        rename_guest(session, inst.old_name, inst.name, say, name_domain(request.params))
        update_seed_hostname(session, inst.name, say)
    say("done")


def make_layout(disk: Path | str, image: ImageData, plan: CreatePlan) -> Layout:
    """The layout for the plan's image kind: a bare filesystem image, a tarball, a disk image."""
    if plan.layout == FS_IMAGE:
        return FilesystemImageLayout(disk, image.stream, image.size, table=plan.table, boot=plan.boot,
                                     fs_type=plan.fs_type)
    if plan.layout == TAR:
        return TarballLayout(disk, image.stream, image.size, table=plan.table, boot=plan.boot,
                             fs_type=plan.fs_type, mkfs_profile=plan.mkfs_profile)
    return DiskImageLayout(disk, image.stream, image.size)


def install_root(disk: Path | str, image: ImageData, plan: CreatePlan, settings: LibguestfsSettings,
                 log: Callable[[str], None] = print, *, boot_cache: BootAreaCache | None = None,
                 disk_bytes: int | None = None) -> InstallReport:
    """Lay the image onto `disk` as `plan` says, run its steps, install the bootloader.

    The plan was checked when it was built; the disk's size is checked here,
    before the first byte is written (``disk_bytes``: as the request measured
    it, else read now).  The plan's data disks are attached after `disk`, so
    steps reach disk i as session.device(i).  ``boot_cache`` stores what
    grub-install wrote when the plan asks for it.
    """
    disk = as_location(disk)
    layout = make_layout(disk, image, plan)
    layout.check(disk_size(disk) if disk_bytes is None else disk_bytes)
    runner = StepRunner(log)
    started = time.monotonic()
    with ExitStack() as stack:
        capture = None
        if plan.capture_boot_area and boot_cache is not None:
            capture = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="osdef-bootarea-"))) / "grub.tar"
        try:
            root, ran = _install(disk, layout, plan, settings, runner, log, capture)
        except BaseException:
            log("create failed: invalidating the disk")
            runner.rollback()
            raise
        if capture is not None and boot_cache is not None and capture.is_file() and plan.partition_plan is not None:
            boot_cache.store(disk, plan.partition_plan, plan.boot, plan.fs_type, capture)
    runner.timings["total"] = time.monotonic() - started
    stats = layout.copy_stats
    return InstallReport(layout=layout.kind, root=root, bytes_read=stats.bytes_read if stats else 0,
                         bytes_written=stats.bytes_written if stats else 0, steps_run=ran,
                         timings=dict(runner.timings), boot_area_from_cache=plan.boot_area is not None)


def _host_steps(disk: Path | str, layout: Layout, plan: CreatePlan) -> list[Step]:
    steps = layout.host_steps()
    area = plan.boot_area
    if area is not None:
        steps.append(Step("write the cached grub boot area", lambda: write_boot_area(disk, area)))
    return steps


def _install(disk: Path | str, layout: Layout, plan: CreatePlan, settings: LibguestfsSettings,
             runner: StepRunner, log: Callable[[str], None], capture: Path | None) -> tuple[MountedRoot, list[str]]:
    """Host steps, then one appliance: the layout, the plan's steps, clean shutdown."""
    host = _host_steps(disk, layout, plan)
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
        root = layout.lay_down(session, runner)
        steps_started = time.monotonic()
        ran = run_steps(StepContext.of(plan, session, root, log, capture))
        runner.timings["customization steps"] = time.monotonic() - steps_started
        shutdown_started = time.monotonic()
    runner.timings["shut the appliance down"] = time.monotonic() - shutdown_started
    return root, ran
