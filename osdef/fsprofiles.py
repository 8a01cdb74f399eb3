"""The ext feature sets of the filesystems osdef makes for a guest, per guest profile.

mke2fs takes its default features from the node's /etc/mke2fs.conf (in the
appliance: the node's own file), so without options a Debian 13 node gives a
Debian 12 guest `orphan_file` and `metadata_csum_seed`, which that guest's own
mke2fs would not set.  Each variant names a profile (``mkfs: debian-12``); the
profile lists the ext features the guest's own release turns on (its
mke2fs.conf), and mkfs gets them as ``-O none,<features>``: "none" first clears
whatever the node's file would add.  A variant without the key gets the oldest
profile (the most compatible).  Pure data: osdef.guest.mkfs applies it.
"""

from __future__ import annotations

from osdef.errors import GuestError
from osdef.vocab import EXT_FAMILY

# [defaults] base_features of Debian's mke2fs.conf (e2fsprogs 1.47.0 and 1.47.2 alike)
_BASE = ("sparse_super", "large_file", "filetype", "resize_inode", "dir_index", "ext_attr")
# [fs_types] ext4 of Debian 12's e2fsprogs 1.47.0-2 (Debian turned orphan_file and
# metadata_csum_seed off there, for older e2fsck and GRUB)
_EXT4_DEBIAN_12 = ("has_journal", "extent", "huge_file", "flex_bg", "metadata_csum", "64bit",
                   "dir_nlink", "extra_isize")

#: profile → filesystem → the ext features its guests' own mke2fs would set
PROFILES: dict[str, dict[str, tuple[str, ...]]] = {
    "debian-12": {
        "ext2": _BASE,
        "ext3": _BASE + ("has_journal",),
        "ext4": _BASE + _EXT4_DEBIAN_12,
    },
    "debian-13": {  # e2fsprogs 1.47.2-3: upstream's ext4 defaults
        "ext2": _BASE,
        "ext3": _BASE + ("has_journal",),
        "ext4": _BASE + _EXT4_DEBIAN_12 + ("metadata_csum_seed", "orphan_file"),
    },
}
DEFAULT_PROFILE = "debian-12"  # the oldest: what a variant without `mkfs:` gets


def check_profile(name: str) -> str:
    if name not in PROFILES:
        raise GuestError(f"unknown mkfs profile {name!r} (use one of: {', '.join(PROFILES)})")
    return name


def ext_features(profile: str, fs_type: str) -> str:
    """The mke2fs -O argument for fs_type under profile: "none," then the explicit set."""
    return "none," + ",".join(PROFILES[check_profile(profile)][fs_type])


def mkfs_options(profile: str, fs_type: str) -> dict[str, str]:
    """Keyword arguments for libguestfs' mkfs: the explicit features for ext2/3/4, else none."""
    return {"features": ext_features(profile, fs_type)} if fs_type in EXT_FAMILY else {}
