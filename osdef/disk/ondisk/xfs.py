"""The XFS superblock fields osdef reads: its version and its incompatible-feature mask.

The superblock is the first 512 bytes of the filesystem, big-endian (xfsprogs'
``xfs_format.h``: ``sb_versionnum`` at 100, ``sb_features_incompat`` at 216, the
latter only meaningful from version 5 on).
"""

from __future__ import annotations

from osdef.disk.ondisk import Damaged

MAGIC = b"XFSB"
SUPERBLOCK_SIZE = 512
_VERSION_AT, _INCOMPAT_AT = 100, 216


def incompat_features(superblock: bytes) -> int | None:
    """The incompatible-feature mask of a V5 superblock; None for a V4 one (no feature masks).
    Damaged when the bytes are not an XFS superblock."""
    if superblock[:4] != MAGIC or len(superblock) < _INCOMPAT_AT + 4:
        raise Damaged("not an XFS superblock", "xfs")
    if int.from_bytes(superblock[_VERSION_AT:_VERSION_AT + 2], "big") & 0xF < 5:
        return None
    return int.from_bytes(superblock[_INCOMPAT_AT:_INCOMPAT_AT + 4], "big")
