"""ssh_authorized_keys → /root/.ssh/authorized_keys (0700/0600), each key added once."""

from osdef.guest.osparams import merge_authorized_keys

NAME = "ssh-authorized-keys"
EXCLUDABLE = True  # a variant may skip it
SSH_DIR = "/root/.ssh"
AUTHORIZED_KEYS = f"{SSH_DIR}/authorized_keys"


def run(ctx):
    keys = ctx.plan.params.ssh_authorized_keys
    if not keys:
        return
    g = ctx.guest
    g.mkdir(SSH_DIR, mode=0o700)
    g.chown(SSH_DIR)
    existing = g.read_text_or_none(AUTHORIZED_KEYS) or ""
    g.write_text(AUTHORIZED_KEYS, merge_authorized_keys(existing, keys), mode=0o600)
    g.chown(AUTHORIZED_KEYS)
    ctx.log(f"ssh: {len(keys)} key(s) for root")
