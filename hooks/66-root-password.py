"""root_password_hash → root's field in /etc/shadow (the hash is never logged)."""

import time

from osdef.errors import GuestError
from osdef.guest.osparams import set_root_hash

NAME = "root-password"
EXCLUDABLE = True  # a variant may skip it
SHADOW = "/etc/shadow"


def run(ctx):
    password_hash = ctx.plan.params.root_password_hash
    if not password_hash:
        return
    g = ctx.guest
    shadow = g.read_text_or_none(SHADOW)
    if shadow is None:
        raise GuestError("the guest has no /etc/shadow; cannot set root_password_hash")
    today = int(time.time() // 86400)
    g.write_text(SHADOW, set_root_hash(shadow, password_hash, today))  # write keeps mode and owner
    ctx.log("root password set (hash not shown)")
