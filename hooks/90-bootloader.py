"""Install grub (BIOS or EFI, per the variant) and write grub.cfg; boot: none skips it.

Runs last among the built-in steps (AFTER = "*"): grub.cfg must see every
edit of /etc/default/grub (serial console) and of the root filesystem.
"""

from osdef.guest.bootloader import install

NAME = "bootloader"
AFTER = ("*",)  # every other built-in step


def run(ctx):
    root = ctx.root
    install(ctx.guest, root.disk_device, ctx.plan.boot, ctx.log, root_uuid=root.uuid,
            root_fs_type=root.fs_type, grub_config=ctx.plan.grub_config,
            boot_area=root.boot_area, capture=root.boot_capture)
