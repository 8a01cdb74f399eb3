"""What a customization step gets: the plan, the session, the mounted root, the guest's facts.

`StepContext` is all a step (hooks/, a site's `*.py` hook) may use; hooks/README.md
lists every field.  The guest's facts (systemd, network backends, cloud-init)
are read from the mounted root at most once, on first use, and shared by the
steps.  The flat names of the former HookContext (`ctx.hostname`,
`ctx.root_uuid`, `ctx.params` …) still resolve, for site hooks written
against them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from osdef.guest import cloudinit, distro
from osdef.guest.bootarea import BootArea
from osdef.guest.network import select
from osdef.guest.plan import CreatePlan
from osdef.guest.session import GuestSession


@dataclass(frozen=True)
class MountedRoot:
    """The laid-out disk 0 as the appliance sees it, root filesystem mounted at /."""

    device: str = ""  # appliance device of the root fs, e.g. /dev/sda3
    uuid: str = ""
    fs_type: str = ""
    esp_uuid: str | None = None  # vfat UUID of the EFI system partition, if any
    disk_device: str = "/dev/sda"  # appliance device of DISK_0 (for grub-install)
    boot_area: BootArea | None = None  # a cached boot area already on the disk: skip grub-install
    boot_capture: Path | None = None  # where the bootloader step saves /boot/grub for the cache


class GuestFacts:
    """What the image has, read from the mounted guest once (on first use), before steps add to it."""

    def __init__(self, session: GuestSession):
        self._session = session

    @cached_property
    def has_systemd(self) -> bool:
        return distro.has_systemd(self._session)

    @cached_property
    def has_cloud_init(self) -> bool:
        return any(self._session.exists(p) for p in cloudinit.CLOUD_INIT_MARKERS)

    @cached_property
    def network(self) -> select.NetworkFacts:
        return select.read_facts(self._session)

    @cached_property
    def network_backend(self) -> str | None:
        """The backend osdef renders for (osdef.guest.network.select), None if the guest has none."""
        return select.select(self.network)

    @cached_property
    def distro(self) -> distro.DistroFacts:
        """os-release and markers (for site hooks; the built-in steps need the facts above)."""
        return distro.read_facts(self._session)


_FORMER_NAMES = {  # HookContext field → where it lives now
    "hostname": "plan.hostname", "serial_console": "plan.serial_console", "boot": "plan.boot",
    "grub_config": "plan.grub_config", "params": "plan.params", "instance": "plan.instance",
    "saved_host_keys": "plan.saved_host_keys", "root_device": "root.device",
    "root_uuid": "root.uuid", "root_fs_type": "root.fs_type", "esp_uuid": "root.esp_uuid",
    "disk_device": "root.disk_device", "boot_area": "root.boot_area",
    "boot_capture": "root.boot_capture",
}


@dataclass(frozen=True)
class StepContext:
    """The argument of every step's run(ctx)."""

    plan: CreatePlan
    guest: GuestSession  # root mounted at /
    root: MountedRoot
    facts: GuestFacts
    log: Callable[[str], None] = print

    @classmethod
    def of(cls, plan: CreatePlan, guest: GuestSession, root: MountedRoot | None = None,
           log: Callable[[str], None] = print) -> "StepContext":
        return cls(plan, guest, root or MountedRoot(), GuestFacts(guest), log)

    @property
    def old_hostname(self) -> None:
        return None  # create: the guest has no previous name

    def __getattr__(self, name: str) -> Any:
        path = _FORMER_NAMES.get(name)
        if path is None:
            raise AttributeError(name)
        value: Any = self
        for part in path.split("."):
            value = getattr(value, part)
        return value
