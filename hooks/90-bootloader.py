"""Install grub (BIOS or EFI, per the variant) and write grub.cfg; boot: none skips it.

Runs last among the built-in steps: grub.cfg must see every edit of
/etc/default/grub (serial console) and of the root filesystem.
"""

from osdef.guest.bootloader import install

NAME = "bootloader"


def run(ctx):
    install(ctx.guest, ctx.disk_device, ctx.boot, ctx.log, root_uuid=ctx.root_uuid,
            root_fs_type=ctx.root_fs_type, grub_config=ctx.grub_config,
            boot_area=ctx.boot_area, capture=ctx.boot_capture)
