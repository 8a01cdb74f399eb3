"""timezone → /etc/localtime (symlink into the guest's zoneinfo) and /etc/timezone."""

from osdef.errors import GuestError
from osdef.guest.osparams import check_zone_name

NAME = "timezone"
ZONEINFO = "/usr/share/zoneinfo"


def run(ctx):
    zone = str(ctx.params.get("timezone") or "")
    if not zone:
        return
    check_zone_name(zone)
    g = ctx.guest
    if not g.is_file(f"{ZONEINFO}/{zone}"):
        raise GuestError(f"timezone={zone}: the guest has no {ZONEINFO}/{zone} (is tzdata installed?);"
                         " choose a zone the image has, or leave timezone empty")
    g.remove("/etc/localtime")
    g.symlink(f"{ZONEINFO}/{zone}", "/etc/localtime")
    g.write_text("/etc/timezone", zone + "\n", mode=0o644)
    ctx.log(f"timezone: {zone}")
