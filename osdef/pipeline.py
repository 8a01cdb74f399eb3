"""create and rename, end to end: Ganeti context → plan → image → guest → steps.

Data flows one way.  Everything that can be checked without writing is
checked first (environment, variant, OS parameters by the caller; here the
steps, the NICs, the node's image against the cluster's agreement, the image
present), all of it gathered into one frozen osdef.guest.plan.CreatePlan; the
disk's size is checked inside osdef.guest.install before its first write; then
one libguestfs appliance does the guest work.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from osdef.paths import data_root

BOOT_AREAS = "bootareas"  # in the image cache: grub boot areas per image and layout


def image_store(ctx):
    from osdef.images import ImageStore

    return ImageStore(ctx.config.images, data_root() / "images")


def serial_console_wanted(ctx) -> bool:
    """serial_console=yes/no wins; auto follows the hypervisor's serial_console."""
    choice = ctx.params.serial_console
    if choice == "auto":
        return bool(ctx.instance.hv_bool("serial_console"))
    return choice == "yes"


def hooks_dir(ctx) -> Path:
    installed = ctx.os_dir / "hooks"
    return installed if installed.is_dir() else data_root() / "hooks"


def check_agreed_image(ctx, store, name: str, artifact=None) -> None:
    """Refuse before any write (and before any build or fetch) when this node's image
    for name is not the one the cluster agreed on (`osdef image sync`)."""
    from osdef.images import agreement
    from osdef.images.sync import node_name

    entries = agreement.load(ctx.config.images.agreement_file)
    if name not in entries:
        return
    art = artifact if artifact is not None else store.artifact(name)
    agreement.check(entries, name, art.sha256 if art else None, node_name())


def create(ctx, say: Callable[[str], None]) -> None:
    from osdef.guest.install import ImageData, install_root

    store = image_store(ctx)
    plan, artifact = build_plan(ctx, store, say)
    disk0 = ctx.locations[0]
    with artifact.open() as stream:
        report = install_root(disk0, ImageData(stream, artifact.size), plan, ctx.config.libguestfs, say)
    total = report.timings.get("total")
    say(f"done: {plan.hostname} on {disk0} (root {report.root_fs_type} UUID {report.root_uuid}"
        + (f", {total:.1f} s" if total is not None else "") + ")")


def build_plan(ctx, store, say: Callable[[str], None]):
    """The checked CreatePlan (osdef.guest.plan) and the image artifact it lays down.

    The cheap checks (steps, NICs) run before the image is built or fetched; the
    old SSH host keys are read (read-only) once everything else is known good."""
    from dataclasses import replace

    from osdef.guest.bootarea import BootAreaCache
    from osdef.guest.customize import load_steps
    from osdef.guest.network import model as network_model
    from osdef.guest.plan import CreatePlan

    inst, variant, params = ctx.instance, ctx.variant, ctx.params
    steps = load_steps(skip=frozenset(variant.skip_hooks), builtin_dir=hooks_dir(ctx),  # unknown skip
                       site_dir=ctx.config.hooks_dir)                  # names, broken site hooks, order
    network = network_model.build(inst, params)  # bad NIC settings: one line, before any write
    artifact = agreed_artifact(ctx, store, variant.image)
    # disks 1..N are attached only when data_disks formats them; "keep" leaves them untouched
    extra = ctx.locations[1:] if params.data_disks != "keep" else ()
    plan = CreatePlan(
        layout=artifact.format, hostname=inst.name, fs_type=artifact.fs_type or params.filesystem or variant.filesystem,
        table=params.partition_table or variant.partition_table, boot=variant.boot,
        serial_console=serial_console_wanted(ctx), params=params, steps=steps, instance=inst,
        network=network, data_disks=extra, mkfs_profile=variant.mkfs,
        boot_cache=BootAreaCache(store.cache_dir / BOOT_AREAS, artifact.sha256, say, image_name=artifact.name))
    say(f"{'reinstall' if inst.reinstall else 'create'} {inst.name}: variant {variant.name}, image {artifact.name} "
        f"({artifact.format}, {artifact.size >> 20} MiB, sha256 {artifact.sha256}), "
        f"{plan.table} table, boot {plan.boot}")
    if inst.reinstall and params.keep_ssh_host_keys:
        from osdef.guest.hostkeys import read_host_keys

        say("reinstall: reading the SSH host keys of the previous installation")
        plan = replace(plan, saved_host_keys=read_host_keys(ctx.locations[0], ctx.config.libguestfs, say))
    return plan, artifact


def agreed_artifact(ctx, store, name: str):
    """The image create reads, present (built or fetched when the site allows) and agreed."""
    check_agreed_image(ctx, store, name)
    artifact = store.ensure(name, allow_build=ctx.config.images.build_on_demand,
                            allow_fetch=ctx.config.images.fetch_on_demand)
    check_agreed_image(ctx, store, name, artifact)  # the one create will read
    return artifact


def rename(ctx, say: Callable[[str], None]) -> None:
    from osdef.guest.hostnames import name_domain
    from osdef.guest.install import rename as rename_guest

    inst = ctx.instance
    say(f"rename {inst.old_name} → {inst.name}")
    rename_guest(ctx.locations[0], inst.old_name, inst.name,
                 settings=ctx.config.libguestfs, log=say, domain=name_domain(ctx.params))
    say("done")
