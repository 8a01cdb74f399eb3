"""Set /etc/hostname (short name), the 127.0.1.1 line of /etc/hosts and /etc/mailname."""

from osdef.guest.hostnames import apply_hostname, name_domain

NAME = "hostname"
EXCLUDABLE = True  # a variant may skip it


def run(ctx):  # a short INSTANCE_NAME gets `domain`, else dns_search, else the guest's resolver's
    apply_hostname(ctx.guest, ctx.plan.hostname, ctx.log, domain=name_domain(ctx.plan.params))
