"""osdef's vocabulary: the words for image kinds, filesystems, partition tables,
boot modes, host names and time zones, defined once, at the bottom of the tree.

The edges (variants, OS parameters, recipes, the image store's manifests)
check what a user wrote against these words and hand the checked values on;
the modules inside trust them.  Every module may import this one: it imports
nothing from osdef.
"""

from __future__ import annotations

import re

# -- image kinds: what an image artifact holds ---------------------------------------

FS_IMAGE = "fs-image"  # a bare root filesystem image
DISK_RAW = "disk-raw"  # a partitioned raw disk image
TAR = "tar"  # a root tarball
DISK_QCOW2 = "disk-qcow2"  # accepted on the way in only: stored as disk-raw
#: the kinds an artifact in the image cache has, and create lays down
IMAGE_KINDS = (FS_IMAGE, DISK_RAW, TAR)
#: the kinds a downloaded file may declare (a recipe's format)
URL_KINDS = (FS_IMAGE, DISK_RAW, DISK_QCOW2, TAR)
#: the kinds a diskimage-builder recipe may produce (its output)
DIB_KINDS = (FS_IMAGE, TAR)

# -- filesystems --------------------------------------------------------------------

#: the root (and data disk) filesystems a variant, an OS parameter or a recipe may name
FILESYSTEMS = ("ext4", "xfs", "btrfs")
DEFAULT_FILESYSTEM = "ext4"
#: the filesystems of the ext2 superblock layout (and of e2fsprogs)
EXT_FAMILY = ("ext2", "ext3", "ext4")
#: every filesystem a root may have: FILESYSTEMS plus the older ext ones an image may hold
ROOT_FILESYSTEMS = ("ext4", "ext3", "ext2", "xfs", "btrfs")

# -- partition tables and boot modes ----------------------------------------------------

PARTITION_TABLES = ("gpt", "msdos")
DEFAULT_PARTITION_TABLE = "gpt"
BOOT_MODES = ("bios", "efi", "none")
DEFAULT_BOOT_MODE = "bios"

# -- host names ------------------------------------------------------------------------

_LABEL_RE = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)\Z", re.IGNORECASE)
MAX_HOSTNAME = 253


def valid_hostname(name: str) -> bool:
    """RFC 1123 host name: dot-separated labels of [a-z0-9-] (any case), <= 253 chars,
    no trailing dot."""
    if not name or len(name) > MAX_HOSTNAME or name.endswith("."):
        return False
    return all(_LABEL_RE.match(label) for label in name.split("."))


# -- time zones ------------------------------------------------------------------------

MAX_ZONE = 128  # the longest tz name is 32 characters
_ZONE_RE = re.compile(r"[A-Za-z0-9_+-]{1,64}(/[A-Za-z0-9_+-]{1,64})*\Z")


def valid_zone_name(zone: str) -> bool:
    """A tz database name in form (UTC, Europe/Berlin): no '..', no absolute path.
    Whether the zone exists is for the caller that knows which zoneinfo to look in."""
    return len(zone) <= MAX_ZONE and bool(_ZONE_RE.match(zone)) and ".." not in zone
