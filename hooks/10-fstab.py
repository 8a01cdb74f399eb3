"""Mount the root filesystem (and the ESP) by UUID in /etc/fstab."""

from osdef.guest.fstab import render_fstab

NAME = "fstab"
EXCLUDABLE = False  # the layout gave the root a fresh UUID: without this step the guest cannot mount /


def run(ctx):
    root = ctx.root
    if not root.uuid:
        ctx.log("no root UUID known: /etc/fstab left unchanged")
        return
    current = ctx.guest.read_text_or_none("/etc/fstab") or ""
    ctx.guest.write_text("/etc/fstab", render_fstab(current, root.uuid, root.fs_type, root.esp_uuid))
