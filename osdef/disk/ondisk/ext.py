"""An ext2/3/4 filesystem's superblock, its group descriptors and their checksums.

Fields and rules as e2fsprogs' ``lib/ext2fs`` (``ext2_fs.h``, ``csum.c``) and
Linux's ``fs/ext4`` read them.  A group's shortcut flags (``BLOCK_UNINIT``,
``INODE_UNINIT``) and its unused-inode count mean something only where the
filesystem keeps group checksums (``uninit_bg``/``gdt_csum`` or
``metadata_csum``: ``ext2fs_has_group_desc_csum``) *and* the descriptor's
checksum verifies (crc16 over the UUID, the group number and the
descriptor with ``gdt_csum``; crc32c from the filesystem's seed with
``metadata_csum``): ``GroupDesc.trusted``.  Everything is hostile input:
each field is range-checked before use (``Damaged`` otherwise).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from osdef.disk.ondisk import Damaged
from osdef.disk.ondisk.checksums import crc16, crc32c

MAGIC = 0xEF53
SUPERBLOCK_OFFSET, SUPERBLOCK_SIZE = 1024, 1024
STATE_VALID, STATE_ERROR = 0x1, 0x2
INCOMPAT_COMPRESSION, INCOMPAT_RECOVER, INCOMPAT_JOURNAL_DEV, INCOMPAT_META_BG = 0x1, 0x4, 0x8, 0x10
INCOMPAT_EXTENTS, INCOMPAT_64BIT, INCOMPAT_CSUM_SEED, INCOMPAT_INLINE_DATA = 0x40, 0x80, 0x2000, 0x8000
INCOMPAT_FLEX_BG = 0x200
# filetype, recover, extents, 64bit, mmp, flex_bg, ea_inode, dirdata, csum_seed, largedir, inline_data, encrypt,
# casefold (compression is refused below, journal_dev and meta_bg too)
INCOMPAT_KNOWN = 0x2 | 0x4 | 0x40 | 0x80 | 0x100 | 0x200 | 0x400 | 0x1000 | 0x2000 | 0x4000 | 0x8000 | 0x10000 \
    | 0x20000
RO_COMPAT_SPARSE_SUPER, RO_COMPAT_GDT_CSUM, RO_COMPAT_BIGALLOC, RO_COMPAT_METADATA_CSUM = 0x1, 0x10, 0x200, 0x400
RO_COMPAT_HUGE_FILE = 0x8
# sparse_super, large_file, btree_dir, huge_file, gdt_csum, dir_nlink, extra_isize, quota, metadata_csum,
# readonly, project, shared_blocks, verity, orphan_present (bigalloc is refused below)
RO_COMPAT_KNOWN = 0x1 | 0x2 | 0x4 | 0x8 | 0x10 | 0x20 | 0x40 | 0x100 | 0x400 | 0x1000 | 0x2000 | 0x4000 | 0x8000 \
    | 0x10000
COMPAT_HAS_JOURNAL, COMPAT_SPARSE_SUPER2 = 0x4, 0x200
BG_INODE_UNINIT, BG_BLOCK_UNINIT = 0x1, 0x2
MAX_GROUPS = 1 << 20
BLOCK_BITMAP_CSUM_HI_END, INODE_BITMAP_CSUM_HI_END = 0x3A, 0x3C  # descriptor sizes that hold the high halves


def _kind(compat: int, incompat: int, ro_compat: int) -> str:
    if incompat & (INCOMPAT_EXTENTS | INCOMPAT_64BIT | INCOMPAT_FLEX_BG) or ro_compat & RO_COMPAT_METADATA_CSUM:
        return "ext4"
    return "ext3" if compat & COMPAT_HAS_JOURNAL else "ext2"


def kind(raw: bytes) -> str | None:
    """"ext2", "ext3" or "ext4" from a superblock's 1024 bytes by its magic and features; None if not ext."""
    if len(raw) < SUPERBLOCK_SIZE or struct.unpack_from("<H", raw, 56)[0] != MAGIC:
        return None
    return _kind(*struct.unpack_from("<III", raw, 92))


class Superblock:
    """The superblock fields the map and the walk need, each checked for range."""

    # the fields unpacked from the raw superblock (struct gives no types)
    inodes_count: int
    first_data_block: int
    blocks_per_group: int
    inodes_per_group: int
    state: int
    rev_level: int
    first_ino: int
    inode_size: int
    compat: int
    incompat: int
    ro_compat: int
    reserved_gdt: int
    journal_inum: int
    desc_size_field: int
    backup_bgs: tuple[int, int]
    checksum_seed: int
    blocks_count: int

    def __init__(self, raw: bytes, length: int):
        if struct.unpack_from("<H", raw, 56)[0] != MAGIC:
            raise Damaged("it has no ext superblock")
        (self.inodes_count, blocks_lo, _, _, _, self.first_data_block, log_block, _, self.blocks_per_group, _,
         self.inodes_per_group) = struct.unpack_from("<11I", raw, 0)
        self.state, = struct.unpack_from("<H", raw, 58)
        self.rev_level, = struct.unpack_from("<I", raw, 76)
        self.first_ino, self.inode_size = struct.unpack_from("<IH", raw, 84)
        self.compat, self.incompat, self.ro_compat = struct.unpack_from("<III", raw, 92)
        self.uuid = raw[104:120]
        self.reserved_gdt, = struct.unpack_from("<H", raw, 206)
        self.journal_inum, = struct.unpack_from("<I", raw, 0xE0)
        self.desc_size_field, = struct.unpack_from("<H", raw, 254)
        blocks_hi, = struct.unpack_from("<I", raw, 336)
        self.backup_bgs = struct.unpack_from("<II", raw, 0x24C)
        self.checksum_seed, = struct.unpack_from("<I", raw, 0x270)
        log_cluster, = struct.unpack_from("<I", raw, 0x1C)
        log_groups_per_flex, checksum_type = raw[0x174], raw[0x175]
        checksum, = struct.unpack_from("<I", raw, 0x3FC)
        if log_block > 6:
            raise Damaged("its ext superblock has an impossible block size")
        # what libext2fs's ext2fs_open2 calls a corrupt superblock (e2fsck then reads a backup instead)
        if self.rev_level > 1 or log_groups_per_flex > 31 or \
                (log_cluster != log_block and not self.ro_compat & RO_COMPAT_BIGALLOC):
            raise Damaged("its ext superblock has an impossible revision, cluster size or flex_bg size")
        if self.ro_compat & RO_COMPAT_METADATA_CSUM and (
                checksum_type != 1 or crc32c(0xFFFFFFFF, raw[:0x3FC]) != checksum):
            raise Damaged("its ext superblock fails its checksum")
        self.block_size = 1024 << log_block
        self.is64 = bool(self.incompat & INCOMPAT_64BIT)
        self.blocks_count = blocks_lo | (blocks_hi << 32 if self.is64 else 0)
        self.desc_size = self.desc_size_field if self.is64 else 32
        if self.rev_level == 0:
            self.inode_size, self.first_ino = 128, 11
        self._check_geometry(length)
        self.groups = -(-(self.blocks_count - self.first_data_block) // self.blocks_per_group)
        if self.groups > MAX_GROUPS or self.groups * self.inodes_per_group != self.inodes_count:
            raise Damaged("its ext superblock has an impossible group or inode count")
        self.itable_blocks = -(-self.inodes_per_group * self.inode_size // self.block_size)
        self.gdt_blocks = -(-self.groups * self.desc_size // self.block_size)

    def _check_geometry(self, length: int) -> None:
        bs = self.block_size
        if self.first_data_block != (1 if bs == 1024 else 0):
            raise Damaged("its ext superblock has an impossible first data block")
        if not 256 <= self.blocks_per_group <= 8 * bs or self.blocks_per_group % 8:
            raise Damaged("its ext superblock has an impossible blocks-per-group count")
        if not ((64 if self.is64 else 32) <= self.desc_size <= 1024 and self.desc_size & (self.desc_size - 1) == 0):
            raise Damaged("its ext superblock has an impossible descriptor size")
        if self.inode_size < 128 or self.inode_size > bs or self.inode_size & (self.inode_size - 1):
            raise Damaged("its ext superblock has an impossible inode size")
        if not 0 < self.inodes_per_group <= 8 * bs or self.inodes_per_group % 8:
            raise Damaged("its ext superblock has an impossible inodes-per-group count")
        if not 1 <= self.first_ino <= self.inodes_per_group:
            raise Damaged("its ext superblock has an impossible first inode")
        if self.blocks_count <= self.first_data_block or self.blocks_count * bs > length:
            raise Damaged("its ext filesystem is larger than its partition")

    @property
    def kind(self) -> str:
        return _kind(self.compat, self.incompat, self.ro_compat)

    @property
    def metadata_csum(self) -> bool:
        return bool(self.ro_compat & RO_COMPAT_METADATA_CSUM)

    @property
    def group_csum(self) -> bool:
        """ext2fs_has_group_desc_csum: do the descriptors carry checksums (and their flags count)?"""
        return bool(self.ro_compat & (RO_COMPAT_GDT_CSUM | RO_COMPAT_METADATA_CSUM))

    @property
    def csum_seed(self) -> int:
        """The crc32c seed of every metadata_csum checksum (s_checksum_seed, or crc32c of the UUID)."""
        if self.incompat & INCOMPAT_CSUM_SEED:
            return self.checksum_seed
        return crc32c(0xFFFFFFFF, self.uuid)

    def check_usable(self) -> None:
        """Refuse what is not cleanly unmounted or not followed by this parser."""
        if self.incompat & INCOMPAT_RECOVER:
            raise Damaged("its ext filesystem needs journal recovery (not cleanly unmounted)")
        if not self.state & STATE_VALID:
            raise Damaged("its ext filesystem was not cleanly unmounted")
        if self.state & STATE_ERROR:
            raise Damaged("its ext filesystem has errors recorded")
        if self.incompat & INCOMPAT_JOURNAL_DEV:
            raise Damaged("it is an external ext journal")
        if self.incompat & INCOMPAT_META_BG:
            raise Damaged("its ext filesystem uses meta_bg (not followed by this parser)")
        if self.incompat & INCOMPAT_COMPRESSION or self.incompat & ~INCOMPAT_KNOWN:
            raise Damaged(f"its ext filesystem has unknown incompatible features (0x{self.incompat:x})")
        if self.ro_compat & RO_COMPAT_BIGALLOC:
            raise Damaged("its ext filesystem uses bigalloc (not followed by this parser)")
        if self.ro_compat & ~RO_COMPAT_KNOWN:
            raise Damaged(f"its ext filesystem has unknown read-only features (0x{self.ro_compat:x})")

    def group_start(self, g: int) -> int:
        return self.first_data_block + g * self.blocks_per_group

    def group_blocks(self, g: int) -> int:
        return min(self.blocks_per_group, self.blocks_count - self.group_start(g))

    def has_backup(self, g: int) -> bool:
        """ext2fs_bg_has_super: does group g hold a superblock (and descriptor) backup?"""
        if g == 0:
            return True
        if self.compat & COMPAT_SPARSE_SUPER2:
            return g in self.backup_bgs
        if not self.ro_compat & RO_COMPAT_SPARSE_SUPER or g == 1:
            return True
        for base in (3, 5, 7):
            n = base
            while n < g:
                n *= base
            if n == g:
                return True
        return False


@dataclass(frozen=True)
class GroupDesc:
    """One group descriptor (offsets as struct ext4_group_desc) and whether its checksum verified."""

    block_bitmap: int
    inode_bitmap: int
    inode_table: int
    free_blocks: int
    free_inodes: int
    used_dirs: int
    flags: int
    itable_unused: int
    block_bitmap_csum: int
    inode_bitmap_csum: int
    csum_ok: bool  # a group checksum is kept and it verifies

    def trusted(self, flag: int) -> bool:
        """Is the shortcut flag set, and may it be believed (checksums kept and verified)?"""
        return self.csum_ok and bool(self.flags & flag)


def _desc_csum(sb: Superblock, g: int, raw: bytes) -> int:
    """ext2fs_group_desc_csum: the checksum descriptor g should carry."""
    group = struct.pack("<I", g)
    if sb.metadata_csum:
        crc = crc32c(sb.csum_seed, group)
        return crc32c(crc, raw[:0x1E] + b"\0\0" + raw[0x20:]) & 0xFFFF
    crc = crc16(0xFFFF, sb.uuid)
    crc = crc16(crc, group)
    return crc16(crc, raw[:0x1E] + raw[0x20:])


def parse_group(sb: Superblock, g: int, raw: bytes) -> GroupDesc:
    bb, ib, it, free, ifree, dirs, flags = struct.unpack_from("<IIIHHHH", raw, 0)
    bcsum, icsum, unused, csum = struct.unpack_from("<HHHH", raw, 0x18)
    if sb.is64:
        bbh, ibh, ith, freeh, ifreeh, dirsh, unusedh = struct.unpack_from("<IIIHHHH", raw, 0x20)
        bb, ib, it = bb | bbh << 32, ib | ibh << 32, it | ith << 32
        free, ifree, dirs, unused = free | freeh << 16, ifree | ifreeh << 16, dirs | dirsh << 16, unused | unusedh << 16
        if sb.desc_size >= BLOCK_BITMAP_CSUM_HI_END:
            bcsum |= struct.unpack_from("<H", raw, 0x38)[0] << 16
        if sb.desc_size >= INODE_BITMAP_CSUM_HI_END:
            icsum |= struct.unpack_from("<H", raw, 0x3A)[0] << 16
    csum_ok = sb.group_csum and _desc_csum(sb, g, raw) == csum
    return GroupDesc(bb, ib, it, free, ifree, dirs, flags, unused, bcsum, icsum, csum_ok)


def bitmap_csum_ok(sb: Superblock, bitmap: bytes, stored: int, nbits: int, hi_end: int) -> bool:
    """Does a block or inode bitmap match its descriptor's crc32c (metadata_csum only; else True)?"""
    if not sb.metadata_csum:
        return True
    crc = crc32c(sb.csum_seed, bitmap[:nbits // 8])
    mask = 0xFFFFFFFF if sb.desc_size >= hi_end else 0xFFFF
    return crc & mask == stored & mask


STATE_ORPHANS = 0x4  # orphans being recovered
RO_COMPAT_ORPHAN_PRESENT = 0x10000  # the orphan file has entries


def checked_since_mount(fs_start: bytes) -> bool:
    """Clean, error-free, nothing to replay or recover, and e2fsck'd after its last mount.

    ``fs_start`` holds at least the first 2048 bytes of an ext filesystem.  The test is the one
    resize2fs and tune2fs -U apply before they agree to touch a filesystem ("please run e2fsck -f
    first"), a little stricter: no recorded errors, no journal to replay, no orphan list.  Anything
    else, or anything that does not parse, means "run e2fsck".
    """
    raw = fs_start[SUPERBLOCK_OFFSET:SUPERBLOCK_OFFSET + SUPERBLOCK_SIZE]
    if kind(raw) is None:
        return False
    mtime_lo, = struct.unpack_from("<I", raw, 0x2C)
    state, = struct.unpack_from("<H", raw, 0x3A)
    lastcheck_lo, = struct.unpack_from("<I", raw, 0x40)
    incompat, ro_compat = struct.unpack_from("<II", raw, 0x60)
    last_orphan, = struct.unpack_from("<I", raw, 0xE8)
    error_count, = struct.unpack_from("<I", raw, 0x194)
    # ext4 keeps the high bytes of the 64-bit times apart (0 on ext2/3 and before 2038)
    mtime, lastcheck = raw[0x275] << 32 | mtime_lo, raw[0x277] << 32 | lastcheck_lo
    return (state & (STATE_VALID | STATE_ERROR | STATE_ORPHANS) == STATE_VALID
            and not incompat & INCOMPAT_RECOVER and not ro_compat & RO_COMPAT_ORPHAN_PRESENT
            and last_orphan == 0 and error_count == 0 and lastcheck >= mtime)
