"""swap_size → /swapfile (allocated, 0600, mkswap'd) and its /etc/fstab line.

btrfs: the file is made No_COW (chattr +C) while empty, as btrfs swap files must be.
"""

from osdef.errors import GuestError
from osdef.disk.units import MiB
from osdef.guest.fstab import SWAPFILE, swap_entry
from osdef.guest.osparams import swap_size_bytes

NAME = "swap"
EXCLUDABLE = True  # a variant may skip it
AFTER = ("fstab",)  # adds its line to the fstab that step wrote
HEADROOM = 32 * MiB  # left free on the root filesystem


def run(ctx):
    size = swap_size_bytes(ctx.plan.params.swap_size)
    if size == 0:
        return
    g = ctx.guest
    root = ctx.root
    fs_type = root.fs_type or (g.fs_type(root.device) if root.device else "")
    free = g.free_bytes("/")
    if size + HEADROOM > free:
        raise GuestError(f"swap_size={size // MiB}M does not fit: the root filesystem has"
                         f" {free // MiB} MiB free; grow disk 0 or lower swap_size")
    g.remove(SWAPFILE)
    if fs_type == "btrfs":
        g.touch(SWAPFILE)
        g.set_no_cow(SWAPFILE)
    g.allocate(SWAPFILE, size)
    g.chmod(SWAPFILE, 0o600)
    g.mkswap_file(SWAPFILE)
    fstab = g.read_text_or_none("/etc/fstab") or ""
    g.write_text("/etc/fstab", swap_entry(fstab))
    ctx.log(f"swap: {SWAPFILE} of {size // MiB} MiB")
