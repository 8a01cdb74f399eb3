"""Reinstall: put back the SSH host keys of the previous installation (keep_ssh_host_keys=yes).

osdef.create.plan reads them with osdef.guest.hostkeys.read_host_keys() before
the disk is rewritten, only with keep_ssh_host_keys=yes, into the plan
(ctx.plan.saved_host_keys); runs after 40-ssh-host-keys removed the image's keys.
"""

from osdef.guest.hostkeys import restore_host_keys

NAME = "ssh-host-keys-restore"
EXCLUDABLE = True  # a variant may skip it
AFTER = ("ssh-host-keys",)  # which removed the image's keys


def run(ctx):
    keys = ctx.plan.saved_host_keys
    if not keys:
        return
    restore_host_keys(ctx.guest, keys, ctx.log)
