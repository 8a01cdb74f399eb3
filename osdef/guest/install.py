"""The create and rename pipelines the Ganeti entry points call.

create: check sizes → host steps (wipe, partition table, the cached grub boot
area when there is one; the zero-skipping copy of a filesystem image runs on a
thread while the appliance boots, whose block caches are dropped afterwards)
→ one appliance: layout steps (fsck/UUID/grow/mkfs/unpack, mount) → hooks
(built-in steps, then the site's) → clean shutdown → the boot area
grub-install wrote is cached for the image's next creates
(osdef.guest.bootarea).  Any failure undoes the completed steps (the disk's
first and last MiB end up zeroed) and re-raises.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from osdef.config import LibguestfsSettings
from osdef.customize import BUILTIN_HOOKS_DIR, HookContext, run_hooks
from osdef.errors import GuestError
from osdef.guest.bootarea import BootAreaCache, BootAreaUse
from osdef.guest.bootloader import GRUB_CONFIGS
from osdef.guest.hostnames import validate_fqdn
from osdef.guest.layout import DiskImageLayout, FilesystemImageLayout, Layout, TarballLayout
from osdef.guest.cloudinit import update_seed_hostname
from osdef.guest.rename import rename_guest
from osdef.guest.session import GuestSession
from osdef.guest.steps import BackgroundSteps, StepRunner
from osdef.guest.target import disk_size
from osdef.vocab import BOOT_MODES, PARTITION_TABLES as TABLES

IMAGE_FORMATS = ("filesystem", "disk", "tar")


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


def make_layout(disk: Path, image_stream: BinaryIO, image_size: int, image_format: str, *,
                fs_type: str, partition_table: str, boot: str) -> Layout:
    """The layout for an image format: "filesystem" (bare fs image), "disk" (partitioned), "tar"."""
    if partition_table not in TABLES:
        raise GuestError(f"unknown partition table {partition_table!r} (use one of: {', '.join(TABLES)})")
    if boot not in BOOT_MODES:
        raise GuestError(f"unknown boot mode {boot!r} (use one of: {', '.join(BOOT_MODES)})")
    if image_format == "filesystem":
        return FilesystemImageLayout(disk, image_stream, image_size, table=partition_table,
                                     boot=boot, fs_type=fs_type)
    if image_format == "tar":
        return TarballLayout(disk, image_stream, image_size, table=partition_table, boot=boot,
                             fs_type=fs_type)
    if image_format == "disk":
        return DiskImageLayout(disk, image_stream, image_size)
    raise GuestError(f"unknown image format {image_format!r} (use one of: {', '.join(IMAGE_FORMATS)})")


def install_root(disk: Path, image_stream: BinaryIO, image_size: int, image_format: str, *,
                 fs_type: str = "ext4", partition_table: str = "gpt", boot: str = "bios",
                 settings: LibguestfsSettings, hostname: str, serial_console: bool = False,
                 skip_hooks: set[str] | frozenset[str] = frozenset(),
                 site_hooks_dir: Path | None = None, params: dict[str, object] | None = None,
                 log: Callable[[str], None] = print,
                 hooks_dir: Path = BUILTIN_HOOKS_DIR, grub_config: str = "osdef",
                 extra_disks: Sequence[Path] = (), instance: Any = None,
                 saved_host_keys: dict[str, bytes] | None = None,
                 boot_cache: BootAreaCache | None = None) -> InstallReport:
    """Lay the image onto `disk`, customize it, install the bootloader.

    `image_stream` is the decompressed image (file-like, binary, read once);
    `image_size` its decompressed size in bytes (for a tarball: the size of its
    content, used for the disk-size check).  `grub_config`: "osdef" renders
    grub.cfg itself when the guest is simple (fast), "update-grub" always runs
    the guest's update-grub.  `extra_disks` (DISK_1.. in order) are attached
    after `disk` so steps reach disk i as session.device(i); `instance` and
    `saved_host_keys` are handed to the steps.  `boot_cache`: the image's
    cached BIOS boot areas (used, or filled by this create's grub-install).
    Everything is validated before the first byte is written.
    """
    disk = Path(disk)
    fqdn = validate_fqdn(hostname)
    if grub_config not in GRUB_CONFIGS:
        raise GuestError(f"unknown grub_config {grub_config!r} (use one of: {', '.join(GRUB_CONFIGS)})")
    layout = make_layout(disk, image_stream, image_size, image_format, fs_type=fs_type,
                         partition_table=partition_table, boot=boot)
    layout.check(disk_size(disk))

    boot_area = BootAreaUse(boot_cache, getattr(layout, "plan", None), boot, fs_type,
                            bootloader_runs="bootloader" not in skip_hooks)

    runner = StepRunner(log)
    started = time.monotonic()
    try:
        host = layout.host_steps() + boot_area.host_steps(disk)
        runner.run([s for s in host if not s.during_launch])
        background = BackgroundSteps(runner, [s for s in host if s.during_launch])
        if background.steps:
            background.start()
        log("start the appliance")
        launch_started = time.monotonic()
        session = GuestSession([disk, *[Path(d) for d in extra_disks]], settings, log=log)
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
            ctx = HookContext(guest=session, hostname=fqdn, serial_console=serial_console,
                              root_device=root.device, root_uuid=root.uuid,
                              root_fs_type=root.fs_type, esp_uuid=root.esp_uuid,
                              disk_device=root.disk_device or session.device(0), boot=boot,
                              grub_config=grub_config,
                              params=dict(params or {}), log=log, instance=instance,
                              saved_host_keys=saved_host_keys, boot_area=boot_area.area,
                              boot_capture=boot_area.capture)
            hooks_started = time.monotonic()
            ran = run_hooks(ctx, skip=set(skip_hooks), builtin_dir=hooks_dir,
                            site_dir=site_hooks_dir)
            runner.timings["customization steps"] = time.monotonic() - hooks_started
            shutdown_started = time.monotonic()
        runner.timings["shut the appliance down"] = time.monotonic() - shutdown_started
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


def rename(disk: Path, old: str, new: str, *, settings: LibguestfsSettings,
           log: Callable[[str], None] = print) -> None:
    """Rename the guest on `disk` (its OS found by inspection) from `old` to `new` FQDN."""
    validate_fqdn(new)
    with GuestSession([Path(disk)], settings, log=log) as session:
        session.mount_inspected_root()
        rename_guest(session, old, new, log)
        update_seed_hostname(session, new, log)
