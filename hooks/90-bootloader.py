"""Install grub (BIOS or EFI, per the variant) and write grub.cfg; boot: none skips it.

Runs last among the built-in steps (AFTER = "*"): grub.cfg must see every
edit of /etc/default/grub (serial console) and of the root filesystem.
grub-install runs in the guest (BIOS: on disk 0; EFI: into the ESP with
`--removable --no-nvram`), from the guest's own packages.  BIOS: the first
create of an image and layout on a node keeps the boot area grub-install
wrote; later creates get it from the plan (already written on the disk,
osdef/create/bootarea.py) and only unpack its /boot/grub.  grub.cfg is
rendered by osdef for simple guests (`grub_config: osdef`), else the guest's
update-grub runs.
"""

from osdef.guest.bootloader import install

NAME = "bootloader"
EXCLUDABLE = True  # a variant may skip it
AFTER = ("*",)  # every other built-in step


def run(ctx):
    root, plan = ctx.root, ctx.plan
    area = plan.boot_area  # a cached boot area already written on the disk: grub-install skipped
    install(ctx.guest, root.disk_device, plan.boot, ctx.log, root_uuid=root.uuid, root_fs_type=root.fs_type,
            grub_config=plan.grub_config, cached_grub_tree=area.grub_tree if area is not None else None,
            capture=ctx.boot_capture)
