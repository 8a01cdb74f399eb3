"""Reinstall: put back the SSH host keys of the previous installation (keep_ssh_host_keys=yes).

The caller reads them with osdef.guest.hostkeys.read_host_keys() before the
disk is rewritten and passes them as ctx.saved_host_keys; runs after
40-ssh-host-keys removed the image's keys.
"""

from osdef.guest.hostkeys import restore_host_keys

NAME = "ssh-host-keys-restore"


def run(ctx):
    keys = getattr(ctx, "saved_host_keys", None)
    if not keys:
        return
    if ctx.params.get("keep_ssh_host_keys", True) is False:
        ctx.log("ssh: keep_ssh_host_keys=no: the old host keys are not restored")
        return
    restore_host_keys(ctx.guest, keys, ctx.log)
