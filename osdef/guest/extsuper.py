"""Read an ext2/3/4 superblock on the host: was the filesystem checked since it was last mounted?

The filesystem-image layout copies a root filesystem image onto the disk from
the host.  An image that `osdef image build` e2fsck'd after diskimage-builder
made it, and that nobody mounted since, needs no second full check per
create: its bytes are the checked bytes (the artifact's sha256 is verified
while it is copied).  The test below is the one resize2fs and tune2fs -U apply
before they agree to touch a filesystem ("please run e2fsck -f first"), made a
little stricter: no recorded errors, no journal to replay, no orphan list.
Anything else — or anything that does not parse — means "run e2fsck".
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

SUPERBLOCK_OFFSET = 1024
SUPERBLOCK_SIZE = 1024
EXT_MAGIC = 0xEF53

_STATE_VALID = 0x1  # cleanly unmounted
_STATE_ERROR = 0x2  # errors detected
_STATE_ORPHANS = 0x4  # orphans being recovered
_INCOMPAT_RECOVER = 0x4  # the journal needs a replay
_RO_COMPAT_ORPHAN_PRESENT = 0x10000  # the orphan file has entries


@dataclass(frozen=True)
class ExtSuperblock:
    """The few superblock fields that say whether a filesystem needs a check."""

    state: int
    mtime: int  # last mount (0: never mounted)
    lastcheck: int
    incompat: int
    ro_compat: int
    last_orphan: int
    error_count: int

    @classmethod
    def parse(cls, block: bytes) -> ExtSuperblock | None:
        """The superblock from its 1024 bytes (offset 1024 of the filesystem); None if not ext."""
        if len(block) < SUPERBLOCK_SIZE:
            return None
        if struct.unpack_from("<H", block, 0x38)[0] != EXT_MAGIC:
            return None
        mtime_lo, = struct.unpack_from("<I", block, 0x2C)
        state, = struct.unpack_from("<H", block, 0x3A)
        lastcheck_lo, = struct.unpack_from("<I", block, 0x40)
        incompat, ro_compat = struct.unpack_from("<II", block, 0x60)
        last_orphan, = struct.unpack_from("<I", block, 0xE8)
        error_count, = struct.unpack_from("<I", block, 0x194)
        # ext4 keeps the high bytes of the 64-bit times apart (0 on ext2/3 and before 2038)
        mtime_hi, lastcheck_hi = block[0x275], block[0x277]
        return cls(state=state, mtime=mtime_hi << 32 | mtime_lo,
                   lastcheck=lastcheck_hi << 32 | lastcheck_lo, incompat=incompat,
                   ro_compat=ro_compat, last_orphan=last_orphan, error_count=error_count)

    def checked_since_mount(self) -> bool:
        """Clean, error-free, nothing to replay or recover, and e2fsck'd after its last mount."""
        return (self.state & (_STATE_VALID | _STATE_ERROR | _STATE_ORPHANS) == _STATE_VALID
                and not self.incompat & _INCOMPAT_RECOVER
                and not self.ro_compat & _RO_COMPAT_ORPHAN_PRESENT
                and self.last_orphan == 0 and self.error_count == 0
                and self.lastcheck >= self.mtime)


def checked_since_mount(fs_start: bytes) -> bool:
    """`fs_start` holds at least the first 2048 bytes of an ext filesystem."""
    sb = ExtSuperblock.parse(fs_start[SUPERBLOCK_OFFSET:SUPERBLOCK_OFFSET + SUPERBLOCK_SIZE])
    return sb is not None and sb.checked_since_mount()
