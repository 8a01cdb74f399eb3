"""mkfs in the appliance with the variant's profile (osdef.fsprofiles): data disks, tarball roots.

vfat, xfs and btrfs are made with the appliance's defaults: libguestfs passes
no feature options for them (docs/debian.md).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from osdef.fsprofiles import mkfs_options

if TYPE_CHECKING:
    from osdef.guest.session import GuestSession


def make_filesystem(session: GuestSession, fs_type: str, device: str, profile: str, what: str) -> None:
    """mkfs fs_type on device in the appliance, with the profile's features."""
    session.call(what, session.g.mkfs, fs_type, device, **mkfs_options(profile, fs_type))
