"""mkfs in the appliance with the variant's profile (osdef.fsprofiles): data disks, tarball roots.

vfat, xfs and btrfs are made with the appliance's defaults: libguestfs passes
no feature options for them (docs/debian.md).  An XFS root is checked instead:
its incompatible features must be ones the guest's boot loader reads, else
create stops with one line (a Debian 13 node's mkfs.xfs would give a Debian 12
guest a root its GRUB cannot read).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from osdef.disk.ondisk import Damaged, xfs
from osdef.errors import GuestError
from osdef.fsprofiles import mkfs_options, unreadable_xfs_features

if TYPE_CHECKING:
    from osdef.guest.session import GuestSession


def make_filesystem(session: GuestSession, fs_type: str, device: str, profile: str, what: str) -> None:
    """mkfs fs_type on device in the appliance, with the profile's features."""
    session.mkfs(fs_type, device, what=what, **mkfs_options(profile, fs_type))


def check_root_readable(session: GuestSession, fs_type: str, device: str, profile: str) -> None:
    """A root filesystem just made on device must be readable by the profile's boot loader."""
    if fs_type != "xfs":
        return  # ext: the profile's own features; btrfs: Debian 12's and 13's defaults agree
    try:
        incompat = xfs.incompat_features(session.read_device(device, xfs.SUPERBLOCK_SIZE, 0))
    except Damaged as e:
        raise GuestError(f"the root just made on {device}: {e}") from None
    unreadable = unreadable_xfs_features(profile, incompat)
    if unreadable:
        raise GuestError(f"this node's mkfs.xfs made the root with {', '.join(unreadable)}, which the "
                         f"{profile} guest's boot loader cannot read: use filesystem=ext4 for this "
                         "instance, or create it on a node with the guest's own release")
