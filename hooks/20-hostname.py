"""Set /etc/hostname (short name), the 127.0.1.1 line of /etc/hosts and /etc/mailname."""

from osdef.guest.hostnames import apply_hostname

NAME = "hostname"


def run(ctx):
    apply_hostname(ctx.guest, ctx.plan.hostname, ctx.log)
