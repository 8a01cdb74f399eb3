"""Remove the image's SSH host keys; the guest makes fresh ones on first boot.

With systemd, a oneshot unit runs `ssh-keygen -A` before ssh.service when a
key is missing (Debian's ssh.service would otherwise fail its `sshd -t`).
The unit prints the new fingerprints on the console (the admin can compare them
through `gnt-instance console`).  Without systemd the keys are generated now,
in the appliance (`ssh-keygen -A`).
"""

NAME = "ssh-host-keys"

UNIT_NAME = "osdef-ssh-host-keys.service"
UNIT = """[Unit]
Description=Generate SSH host keys on first boot (osdef)
Before=ssh.service ssh.socket sshd.service
ConditionPathExists=!/etc/ssh/ssh_host_ed25519_key

[Service]
Type=oneshot
ExecStart=/usr/bin/ssh-keygen -A
ExecStartPost=/bin/sh -c 'echo "osdef: SSH host keys generated:"; for k in /etc/ssh/ssh_host_*_key.pub; do ssh-keygen -l -f "$k"; done'
StandardOutput=journal+console
RemainAfterExit=yes

[Install]
WantedBy=multi-user.target ssh.service
"""


def run(ctx):
    g = ctx.guest
    keys = g.glob("/etc/ssh/ssh_host_*")
    for key in keys:
        g.remove(key)
    if not g.exists("/usr/bin/ssh-keygen"):
        ctx.log(f"removed {len(keys)} SSH host key file(s); the guest has no ssh-keygen")
        return
    if ctx.facts.has_systemd:
        g.write_text(f"/etc/systemd/system/{UNIT_NAME}", UNIT, mode=0o644)
        for target in ("multi-user.target.wants", "ssh.service.wants"):
            g.symlink(f"/etc/systemd/system/{UNIT_NAME}", f"/etc/systemd/system/{target}/{UNIT_NAME}")
        ctx.log(f"removed {len(keys)} SSH host key file(s); new ones are made on first boot")
    else:
        g.run(["ssh-keygen", "-A"], what="ssh-keygen -A")
        ctx.log("SSH host keys regenerated")
