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

# XFS cannot be given features through libguestfs (its mkfs passes -O, which mkfs.xfs lacks), so
# an XFS root gets the node's mkfs.xfs defaults.  What the guest's GRUB reads from its root is
# checked instead: GRUB's XFS_SB_FEAT_INCOMPAT_SUPPORTED.  Debian 13's xfsprogs 6.13 turns on
# nrext64 by default, which Debian 12's GRUB 2.06 predates (GRUB 2.12 reads it).
XFS_INCOMPAT = {"ftype": 0x1, "sparse_inodes": 0x2, "meta_uuid": 0x4, "bigtime": 0x8,
                "needsrepair": 0x10, "nrext64": 0x20, "exchange": 0x40, "parent": 0x80,
                "metadir": 0x100}
_GRUB_2_06 = ("ftype", "sparse_inodes", "meta_uuid", "bigtime", "needsrepair")
#: profile → the XFS incompatible features its guests' boot loader reads on the root
XFS_ROOT_READABLE: dict[str, tuple[str, ...]] = {
    "debian-12": _GRUB_2_06,
    "debian-13": _GRUB_2_06 + ("nrext64",),  # GRUB 2.12
}


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


def unreadable_xfs_features(profile: str, incompat: int | None) -> list[str]:
    """The incompatible features of an XFS root (its superblock's mask, osdef.disk.ondisk.xfs; None for
    a V4 superblock) that the profile's boot loader cannot read; [] when there are none."""
    if incompat is None:
        return []  # V4: no feature masks
    readable = 0
    for name in XFS_ROOT_READABLE[check_profile(profile)]:
        readable |= XFS_INCOMPAT[name]
    names = {bit: name for name, bit in XFS_INCOMPAT.items()}
    return [names.get(1 << n, f"0x{1 << n:x}") for n in range(32) if incompat & ~readable & (1 << n)]
