"""Remove the image's SSH host keys; the guest makes fresh ones on first boot.

With systemd, a oneshot unit runs `ssh-keygen -A` before ssh.service when a
key is missing (Debian's ssh.service would otherwise fail its `sshd -t`).
The unit prints the new fingerprints on the console (the admin can compare them
through `gnt-instance console`).  Without systemd the keys are generated now,
in the appliance (`ssh-keygen -A`).
"""

from osdef.guest.units import oneshot

NAME = "ssh-host-keys"
EXCLUDABLE = True  # a variant may skip it

UNIT_NAME = "osdef-ssh-host-keys.service"
TARGETS = ("multi-user.target", "ssh.service")
UNIT = oneshot("Generate SSH host keys on first boot (osdef)", "/usr/bin/ssh-keygen -A",
               unit=("Before=ssh.service ssh.socket sshd.service",
                     "ConditionPathExists=!/etc/ssh/ssh_host_ed25519_key"),
               exec_start_post="/bin/sh -c 'echo \"osdef: SSH host keys generated:\"; "
                               "for k in /etc/ssh/ssh_host_*_key.pub; do ssh-keygen -l -f \"$k\"; done'",
               wanted_by=TARGETS)


def run(ctx):
    g = ctx.guest
    keys = g.glob("/etc/ssh/ssh_host_*")
    for key in keys:
        g.remove(key)
    if not g.exists("/usr/bin/ssh-keygen"):
        ctx.log(f"removed {len(keys)} SSH host key file(s); the guest has no ssh-keygen")
        return
    if ctx.facts.has_systemd:
        g.install_unit(UNIT_NAME, UNIT, *TARGETS)
        ctx.log(f"removed {len(keys)} SSH host key file(s); new ones are made on first boot")
    else:
        g.run(["ssh-keygen", "-A"], what="ssh-keygen -A")
        ctx.log("SSH host keys regenerated")
