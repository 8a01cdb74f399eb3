"""Mount the root filesystem (and the ESP) by UUID in /etc/fstab."""

from osdef.guest.fstab import render_fstab

NAME = "fstab"


def run(ctx):
    if not ctx.root_uuid:
        ctx.log("no root UUID known: /etc/fstab left unchanged")
        return
    current = ctx.guest.read_text_or_none("/etc/fstab") or ""
    ctx.guest.write_text("/etc/fstab", render_fstab(current, ctx.root_uuid, ctx.root_fs_type,
                                                    ctx.esp_uuid))
