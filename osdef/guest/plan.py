"""The create plan: everything one create will do, built and checked before the first write.

osdef.pipeline builds it from the Instance (osdef.ganeti.environment), the
Variant, the typed OS parameters (osdef.ganeti.params.OsParams) and the image
artifact; osdef.guest.install lays it down and the steps read it (as
`ctx.plan`, osdef.guest.context).  Building it checks what can be checked
without the disk: host name, layout kind, partition table, boot mode, grub.cfg
policy, the steps (loaded, skip names known, order declarations sound: see
osdef.guest.customize.load_steps) and the NICs (the network model, built once
here).  The disk's size is checked by the layout, still before any write.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from osdef.disk.rbduri import as_location
from osdef.errors import GuestError
from osdef.ganeti.environment import Instance
from osdef.ganeti.params import OsParams
from osdef.guest.bootarea import BootAreaCache
from osdef.guest.bootloader import GRUB_CONFIGS
from osdef.guest.customize import Steps, load_steps
from osdef.guest.hostnames import validate_fqdn
from osdef.fsprofiles import DEFAULT_PROFILE, check_profile
from osdef.guest.network.model import NetworkState, build as build_network
from osdef.vocab import BOOT_MODES, IMAGE_KINDS, PARTITION_TABLES as TABLES, image_kind


def _one_of(what: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise GuestError(f"unknown {what} {value!r} (use one of: {', '.join(allowed)})")


@dataclass(frozen=True)
class CreatePlan:
    """One create, decided.  Constructing it validates it (GuestError, one line)."""

    layout: str  # an image kind (osdef.vocab.IMAGE_KINDS; other spellings are mapped to it)
    hostname: str  # the instance's FQDN (lower-cased by the check)
    fs_type: str = "ext4"  # root filesystem made by the filesystem/tar layouts
    table: str = "gpt"  # partition table (TABLES)
    boot: str = "bios"  # BOOT_MODES
    serial_console: bool = False  # decided: OS parameter or the hypervisor's setting
    grub_config: str = "osdef"  # GRUB_CONFIGS: render grub.cfg (fast) or run update-grub
    params: OsParams = field(default_factory=OsParams.defaults)
    steps: Steps = field(default_factory=load_steps)  # loaded, ordered and checked
    instance: Instance | None = None  # NICs, disks, uuid, reinstall: from Ganeti, if known
    network: NetworkState | None = None  # built from instance + params when not given
    data_disks: tuple[Path | str, ...] = ()  # disks 1..N attached for data_disks (empty: "keep"); str: rbd: URI
    saved_host_keys: Mapping[str, bytes] | None = None  # reinstall with keep_ssh_host_keys
    boot_cache: BootAreaCache | None = None  # the image's cached BIOS boot areas
    mkfs_profile: str = DEFAULT_PROFILE  # ext features of what create formats (osdef.guest.mkfs)

    def __post_init__(self) -> None:
        object.__setattr__(self, "hostname", validate_fqdn(self.hostname))
        object.__setattr__(self, "layout", image_kind(self.layout) or self.layout)
        _one_of("image format", self.layout, IMAGE_KINDS)
        _one_of("partition table", self.table, TABLES)
        _one_of("boot mode", self.boot, BOOT_MODES)
        _one_of("grub_config", self.grub_config, GRUB_CONFIGS)
        check_profile(self.mkfs_profile)
        object.__setattr__(self, "data_disks", tuple(as_location(d) for d in self.data_disks))
        if self.network is None and self.instance is not None:
            object.__setattr__(self, "network", build_network(self.instance, self.params))

    @property
    def bootloader_runs(self) -> bool:
        return self.steps.will_run("bootloader")
