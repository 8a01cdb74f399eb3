"""ssh_authorized_keys → /root/.ssh/authorized_keys (0700/0600), each key added once."""

from osdef.guest.osparams import merge_authorized_keys

NAME = "ssh-authorized-keys"
SSH_DIR = "/root/.ssh"
AUTHORIZED_KEYS = f"{SSH_DIR}/authorized_keys"


def run(ctx):
    keys = ctx.plan.params.ssh_authorized_keys
    if not keys:
        return
    g = ctx.guest
    g.call(f"create {SSH_DIR}", g.g.mkdir_p, SSH_DIR)
    g.call(f"chmod {SSH_DIR}", g.g.chmod, 0o700, SSH_DIR)
    g.call(f"chown {SSH_DIR}", g.g.chown, 0, 0, SSH_DIR)
    existing = g.read_text_or_none(AUTHORIZED_KEYS) or ""
    g.write_text(AUTHORIZED_KEYS, merge_authorized_keys(existing, keys), mode=0o600)
    g.call(f"chown {AUTHORIZED_KEYS}", g.g.chown, 0, 0, AUTHORIZED_KEYS)
    ctx.log(f"ssh: {len(keys)} key(s) for root")
