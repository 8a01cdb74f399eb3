"""What a customization step gets: the plan, the session, the mounted root, the guest's facts.

`StepContext` is all a step (hooks/, a site's `*.py` hook) may use; hooks/README.md
lists every field.  The guest's facts (systemd, network backends, cloud-init)
are read from the mounted root at most once, on first use, and shared by the
steps, and so are the decisions made from them (who owns the network).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from osdef.create.layout.base import MountedRoot
from osdef.create.plan import CreatePlan
from osdef.guest import cloudinit, distro
from osdef.guest.network import select
from osdef.guest.session import GuestSession


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


@dataclass(frozen=True)
class StepContext:
    """The argument of every step's run(ctx)."""

    plan: CreatePlan
    guest: GuestSession  # root mounted at /
    root: MountedRoot
    facts: GuestFacts
    log: Callable[[str], None] = print
    boot_capture: Path | None = None  # where the bootloader step saves /boot/grub for the boot-area cache

    @classmethod
    def of(cls, plan: CreatePlan, guest: GuestSession, root: MountedRoot | None = None,
           log: Callable[[str], None] = print, boot_capture: Path | None = None) -> StepContext:
        return cls(plan, guest, root or MountedRoot(), GuestFacts(guest), log, boot_capture)

    @property
    def old_hostname(self) -> None:
        return None  # create: the guest has no previous name

    @cached_property
    def cloud_init_seed(self) -> bool:
        """Does this create write a cloud-init NoCloud seed (cloud_init=auto|on|off, the guest's cloud-init)?"""
        return cloudinit.wanted(self.plan.params.cloud_init, self.facts.has_cloud_init)

    @cached_property
    def network_owner(self) -> str:
        """Who configures the NICs, decided once: "cloud-init" (from the seed's network-config) or "osdef"
        (the network step writes the guest's files; cloud-init, if any, is told to keep off)."""
        state = self.plan.network
        if state is not None and self.cloud_init_seed and \
                cloudinit.configures_network(state, "netplan" in self.facts.network.installed):
            return "cloud-init"
        return "osdef"
