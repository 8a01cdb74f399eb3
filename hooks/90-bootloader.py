"""Install grub (BIOS or EFI, per the variant) and regenerate grub.cfg; boot: none skips it."""

from osdef.guest.bootloader import install

NAME = "bootloader"


def run(ctx):
    install(ctx.guest, ctx.disk_device, ctx.boot, ctx.log)
