"""timezone → /etc/localtime (symlink into the guest's zoneinfo) and /etc/timezone.

The name was checked once, by the OS parameter table (osdef.ganeti.params.Timezone).
"""

from osdef.errors import GuestError

NAME = "timezone"
EXCLUDABLE = True  # a variant may skip it
ZONEINFO = "/usr/share/zoneinfo"


def run(ctx):
    zone = ctx.plan.params.timezone
    if not zone:
        return
    g = ctx.guest
    if not g.is_file(f"{ZONEINFO}/{zone}"):
        raise GuestError(f"timezone={zone}: the guest has no {ZONEINFO}/{zone} (is tzdata installed?);"
                         " choose a zone the image has, or leave timezone empty")
    g.remove("/etc/localtime")
    g.symlink(f"{ZONEINFO}/{zone}", "/etc/localtime")
    g.write_text("/etc/timezone", zone + "\n", mode=0o644)
    ctx.log(f"timezone: {zone}")
