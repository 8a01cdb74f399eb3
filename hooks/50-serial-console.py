"""Serial console (INSTANCE_HV_serial_console): kernel console on ttyS0 and a login there.

systemd starts serial-getty@ttyS0 by itself when console=ttyS0 is on the
kernel command line; the unit is also enabled explicitly for kernels booted
another way.  The grub command line takes effect when the bootloader step
regenerates grub.cfg.
"""

from osdef.guest.bootloader import set_serial_console

NAME = "serial-console"
EXCLUDABLE = True  # a variant may skip it
BEFORE = ("bootloader",)  # grub.cfg is rendered from /etc/default/grub


def run(ctx):
    if not ctx.plan.serial_console:
        return
    set_serial_console(ctx.guest, ctx.log)
    g = ctx.guest
    for unit_dir in ("/lib/systemd/system", "/usr/lib/systemd/system"):
        if g.exists(f"{unit_dir}/serial-getty@.service"):
            g.enable_unit(f"{unit_dir}/serial-getty@.service", "getty.target", instance="ttyS0")
            break
