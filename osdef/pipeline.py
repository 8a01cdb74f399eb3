"""create and rename, end to end: Ganeti context → variant → image → guest → hooks.

Data flows one way.  Everything that can be checked without writing is
checked first (environment, variant, OS parameters, the node's image against
the cluster's agreement, image present, disk big enough: the last one inside
osdef.guest before its first write); then one libguestfs appliance does the
guest work.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from osdef.errors import ImageError
from osdef.paths import source_root

# image artifact format (osdef.images) → layout (osdef.guest)
LAYOUT_OF_FORMAT = {"fs-image": "filesystem", "disk-raw": "disk", "tar": "tar"}
BOOT_AREAS = "bootareas"  # in the image cache: grub boot areas per image and layout


def image_store(ctx):
    from osdef.images import ImageStore

    return ImageStore(ctx.config.images, source_root() / "images")


def serial_console_wanted(ctx) -> bool:
    """serial_console=yes/no wins; auto follows the hypervisor's serial_console."""
    choice = ctx.params["serial_console"]
    if choice == "auto":
        return bool(ctx.instance.hv_bool("serial_console"))
    return choice == "yes"


def hooks_dir(ctx) -> Path:
    installed = ctx.os_dir / "hooks"
    return installed if installed.is_dir() else source_root() / "hooks"


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
    from osdef.guest.bootarea import BootAreaCache
    from osdef.guest.install import install_root
    from osdef.guest.network import model as network_model

    inst, variant = ctx.instance, ctx.variant
    disk0 = Path(inst.disks[0].path)
    network_model.build(inst, ctx.params)  # bad NIC settings: one line, before any write
    from osdef.customize import check_steps

    check_steps(skip=set(variant.skip_hooks), builtin_dir=hooks_dir(ctx),  # unknown skip names,
                site_dir=ctx.config.hooks_dir)                               # broken site hooks
    store = image_store(ctx)
    check_agreed_image(ctx, store, variant.image)
    artifact = store.ensure(variant.image, allow_build=ctx.config.images.build_on_demand,
                            allow_fetch=ctx.config.images.fetch_on_demand)
    check_agreed_image(ctx, store, variant.image, artifact)  # the one create will read
    layout = LAYOUT_OF_FORMAT.get(artifact.format)
    if layout is None:
        raise ImageError(f"image {artifact.name} has format {artifact.format!r}, which create cannot lay down")
    fs_type = artifact.fs_type or ctx.params["filesystem"] or variant.filesystem
    table = ctx.params["partition_table"] or variant.partition_table
    action = "reinstall" if inst.reinstall else "create"
    say(f"{action} {inst.name}: variant {variant.name}, image {artifact.name} "
        f"({artifact.format}, {artifact.size >> 20} MiB, sha256 {artifact.sha256}), "
        f"{table} table, boot {variant.boot}")
    saved_keys = None
    if inst.reinstall and ctx.params["keep_ssh_host_keys"]:
        from osdef.guest.hostkeys import read_host_keys

        say("reinstall: reading the SSH host keys of the previous installation")
        saved_keys = read_host_keys(disk0, ctx.config.libguestfs, say)
    # disks 1..N are attached only when data_disks formats them; "keep" leaves them untouched
    extra = [Path(d.path) for d in inst.disks[1:]] if ctx.params["data_disks"] != "keep" else []
    with artifact.open() as stream:
        report = install_root(
            disk0, stream, artifact.size, layout,
            fs_type=fs_type, partition_table=table, boot=variant.boot,
            settings=ctx.config.libguestfs, hostname=inst.name,
            serial_console=serial_console_wanted(ctx),
            skip_hooks=set(variant.skip_hooks), site_hooks_dir=ctx.config.hooks_dir,
            params=ctx.params, log=say, hooks_dir=hooks_dir(ctx),
            extra_disks=extra, instance=inst, saved_host_keys=saved_keys,
            boot_cache=BootAreaCache(store.cache_dir / BOOT_AREAS, artifact.sha256, say,
                                     image_name=artifact.name),
        )
    total = report.timings.get("total")
    say(f"done: {inst.name} on {disk0} (root {report.root_fs_type} UUID {report.root_uuid}"
        + (f", {total:.1f} s" if total is not None else "") + ")")


def rename(ctx, say: Callable[[str], None]) -> None:
    from osdef.guest.install import rename as rename_guest

    inst = ctx.instance
    say(f"rename {inst.old_name} → {inst.name}")
    rename_guest(Path(inst.disks[0].path), inst.old_name, inst.name,
                 settings=ctx.config.libguestfs, log=say)
    say("done")
