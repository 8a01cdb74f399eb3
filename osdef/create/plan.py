"""The create plan: everything one create will do, decided and checked before the first write.

``build`` makes it from the Request (osdef.create.request) in the order of what
is cheap to check: the steps (loaded, skip names known, order declarations
sound: osdef.create.steps), the NICs (the network model, built here and only
here), the node's image against the cluster's agreement, then the image itself
(built or fetched when the site allows), and the boot area the image's cache
holds for this layout (osdef.create.bootarea).  Constructing a ``CreatePlan``
checks the rest once: host name, image kind, partition table, boot mode and
grub.cfg policy (the bootloader step trusts them), the mkfs profile.  The
disk's size is checked by the layout, still before any write.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from osdef.create import partitioning
from osdef.create.bootarea import BootArea, BootAreaCache
from osdef.create.request import Request
from osdef.create.steps import Steps, load_steps
from osdef.disk.rbduri import as_location
from osdef.errors import GuestError
from osdef.fsprofiles import DEFAULT_PROFILE, check_profile
from osdef.ganeti.environment import Instance
from osdef.ganeti.params import OsParams
from osdef.guest.bootloader import GRUB_CONFIGS
from osdef.guest.hostnames import validate_fqdn
from osdef.guest.network import model as network_model
from osdef.guest.network.model import NetworkState
from osdef.paths import data_root
from osdef.vocab import BOOT_MODES, FS_IMAGE, IMAGE_KINDS, PARTITION_TABLES as TABLES, TAR

if TYPE_CHECKING:  # osdef.images (zstandard) is imported when create builds its plan (image_store)
    from osdef.images import Artifact, ImageStore

BOOT_AREAS = "bootareas"  # in the image cache: grub boot areas per image and layout


def _one_of(what: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise GuestError(f"unknown {what} {value!r} (use one of: {', '.join(allowed)})")


@dataclass(frozen=True)
class CreatePlan:
    """One create, decided.  Constructing it validates it (GuestError, one line)."""

    layout: str  # an image kind (osdef.vocab.IMAGE_KINDS)
    hostname: str  # the instance's FQDN (lower-cased by the check)
    fs_type: str = "ext4"  # root filesystem made by the filesystem/tar layouts
    table: str = "gpt"  # partition table (TABLES)
    boot: str = "bios"  # BOOT_MODES
    serial_console: bool = False  # decided: OS parameter or the hypervisor's setting
    grub_config: str = "osdef"  # GRUB_CONFIGS: render grub.cfg (fast) or run update-grub
    params: OsParams = field(default_factory=OsParams.defaults)
    steps: Steps = field(default_factory=load_steps)  # loaded, ordered and checked
    instance: Instance | None = None  # NICs, disks, uuid, reinstall: from Ganeti, if known
    network: NetworkState | None = None  # the instance's NICs as one model (network_model.build)
    data_disks: tuple[Path | str, ...] = ()  # disks 1..N attached for data_disks (empty: "keep"); str: rbd: URI
    saved_host_keys: Mapping[str, bytes] | None = None  # reinstall with keep_ssh_host_keys
    mkfs_profile: str = DEFAULT_PROFILE  # ext features of what create formats (osdef.guest.mkfs)
    boot_area: BootArea | None = None  # a cached BIOS boot area to write instead of running grub-install
    capture_boot_area: bool = False  # keep what grub-install writes, for the image's next creates

    def __post_init__(self) -> None:
        object.__setattr__(self, "hostname", validate_fqdn(self.hostname))
        _one_of("image format", self.layout, IMAGE_KINDS)
        _one_of("partition table", self.table, TABLES)
        _one_of("boot mode", self.boot, BOOT_MODES)
        _one_of("grub_config", self.grub_config, GRUB_CONFIGS)
        check_profile(self.mkfs_profile)
        object.__setattr__(self, "data_disks", tuple(as_location(d) for d in self.data_disks))

    @property
    def bootloader_runs(self) -> bool:
        return self.steps.will_run("bootloader")

    @property
    def partition_plan(self) -> partitioning.PartitionPlan | None:
        """The table osdef writes (filesystem image and tarball layouts); None for a disk image."""
        return partitioning.plan(self.table, self.boot) if self.layout in (FS_IMAGE, TAR) else None

    def with_boot_cache(self, cache: BootAreaCache | None) -> CreatePlan:
        """This plan with the cache's decision for its layout (osdef.create.bootarea)."""
        if cache is None:
            return self
        area, capture = cache.decide(self.partition_plan, self.boot, self.fs_type, self.bootloader_runs)
        return replace(self, boot_area=area, capture_boot_area=capture)


@dataclass(frozen=True)
class Built:
    """What ``build`` decided: the plan, the image it lays down and the image's boot-area cache."""

    plan: CreatePlan
    artifact: Artifact
    boot_cache: BootAreaCache


def image_store(request: Request) -> ImageStore:
    from osdef.images import ImageStore

    return ImageStore(request.config.images, data_root() / "images")


def serial_console_wanted(request: Request) -> bool:
    """serial_console=yes/no wins; auto follows the hypervisor's serial_console."""
    choice = request.params.serial_console
    if choice == "auto":
        return bool(request.instance.hv_bool("serial_console"))
    return choice == "yes"


def hooks_dir(request: Request) -> Path:
    installed = request.os_dir / "hooks"
    return installed if installed.is_dir() else data_root() / "hooks"


def check_agreed_image(request: Request, store: ImageStore, name: str,
                       artifact: Artifact | None = None) -> None:
    """Refuse before any write (and before any build or fetch) when this node's image
    for name is not the one the cluster agreed on (`osdef image sync`)."""
    from osdef.images import agreement
    from osdef.images.sync import node_name

    entries = agreement.load(request.config.images.agreement_file)
    if name not in entries:
        return
    art = artifact if artifact is not None else store.artifact(name)
    agreement.check(entries, name, art.sha256 if art else None, node_name())


def agreed_artifact(request: Request, store: ImageStore, name: str) -> Artifact:
    """The image create reads, present (built or fetched when the site allows) and agreed."""
    check_agreed_image(request, store, name)
    artifact = store.ensure(name, allow_build=request.config.images.build_on_demand,
                            allow_fetch=request.config.images.fetch_on_demand)
    check_agreed_image(request, store, name, artifact)  # the one create will read
    return artifact


def build(request: Request, say: Callable[[str], None]) -> Built:
    """The checked CreatePlan, its image and the image's boot-area cache.

    The cheap checks (steps, NICs) run before the image is built or fetched; the
    old SSH host keys are read (read-only) once everything else is known good."""
    inst, variant, params = request.instance, request.variant, request.params
    assert variant is not None  # a create request always has its variant
    assert inst.name is not None  # and its INSTANCE_NAME (load_instance requires it for create)
    steps = load_steps(skip=frozenset(variant.skip_hooks), builtin_dir=hooks_dir(request),  # unknown skip
                       site_dir=request.config.hooks_dir)                    # names, broken site hooks, order
    network = network_model.build(inst, params)  # bad NIC settings: one line, before any write
    store = image_store(request)
    artifact = agreed_artifact(request, store, variant.image)
    # disks 1..N are attached only when data_disks formats them; "keep" leaves them untouched
    extra = request.locations[1:] if params.data_disks != "keep" else ()
    cache = BootAreaCache(store.cache_dir / BOOT_AREAS, artifact.sha256, say, image_name=artifact.name)
    plan = CreatePlan(
        layout=artifact.format, hostname=inst.name,
        fs_type=artifact.manifest.fs_type or params.filesystem or variant.filesystem,
        table=params.partition_table or variant.partition_table, boot=variant.boot,
        serial_console=serial_console_wanted(request), params=params, steps=steps, instance=inst,
        network=network, data_disks=extra, mkfs_profile=variant.mkfs).with_boot_cache(cache)
    say(f"{'reinstall' if inst.reinstall else 'create'} {inst.name}: variant {variant.name}, image {artifact.name} "
        f"({artifact.format}, {artifact.size >> 20} MiB, sha256 {artifact.sha256}), "
        f"{plan.table} table, boot {plan.boot}")
    if inst.reinstall and params.keep_ssh_host_keys:
        from osdef.guest.hostkeys import read_host_keys

        say("reinstall: reading the SSH host keys of the previous installation")
        plan = replace(plan, saved_host_keys=read_host_keys(request.disk0, request.config.libguestfs, say))
    return Built(plan, artifact, cache)
