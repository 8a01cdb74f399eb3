"""Used-block map of an ext2/3/4 filesystem, from its superblock, group descriptors and block bitmaps.

A small parser of the on-disk format instead of e2fsprogs: ``e2image``,
``dumpe2fs`` and ``partclone.ext4 -D`` all need a subprocess (and a sandbox
for hostile input) and print more than the map; reading one bitmap block per
group in-process costs a few milliseconds for a 10 GiB filesystem
(docs/stream.md, "Filesystem-aware export").

What is used: every block whose bit is set in its group's block bitmap; for a
group whose bitmap was never initialised (``BLOCK_UNINIT``), its superblock
backup and descriptor blocks and the bitmaps and inode tables that lie in it
(what libext2fs assumes); always the boot block and the superblock.  Where the
filesystem keeps group checksums (``uninit_bg`` or ``metadata_csum``), the
tail of an inode table past the group's last used inode (``bg_itable_unused``)
is left out: the kernel and e2fsck never read it, and it arrives as zeros.
Likewise the internal journal of a cleanly unmounted filesystem (its
superblock says it is empty, ``s_start == 0``) is sent as its first block
only: nothing reads the rest before writing it again.

Refused (``Unusable``): not cleanly unmounted (``needs_recovery``, state not
clean, errors recorded), features whose layout this parser does not follow
(``meta_bg``, ``bigalloc``, an external journal device, unknown incompatible
features), any field out of range, and a group whose bitmap disagrees with its
free block count (a bitmap that lies).
"""

from __future__ import annotations

import struct

from osdef.stream.fsmap import FsMap, Reader, Unusable

MAGIC = 0xEF53
STATE_VALID, STATE_ERROR = 0x1, 0x2
INCOMPAT_RECOVER, INCOMPAT_JOURNAL_DEV, INCOMPAT_META_BG = 0x4, 0x8, 0x10
INCOMPAT_64BIT = 0x80
INCOMPAT_KNOWN = 0x1 | 0x2 | 0x4 | 0x40 | 0x80 | 0x200 | 0x400 | 0x1000 | 0x2000 | 0x8000 | 0x10000 | 0x20000
# filetype, compression(refused below), recover, extents, 64bit, flex_bg, ea_inode, dirdata, csum_seed,
# largedir, inline_data, encrypt, casefold
INCOMPAT_COMPRESSION = 0x1
RO_COMPAT_SPARSE_SUPER, RO_COMPAT_GDT_CSUM, RO_COMPAT_BIGALLOC = 0x1, 0x10, 0x200
RO_COMPAT_METADATA_CSUM = 0x400
COMPAT_SPARSE_SUPER2 = 0x200
COMPAT_HAS_JOURNAL = 0x4
JBD2_MAGIC = 0xC03B3998
EXTENTS_FL = 0x80000
EXTENT_MAGIC = 0xF30A
BG_INODE_UNINIT, BG_BLOCK_UNINIT = 0x1, 0x2
MAX_GROUPS = 1 << 20


class _Super:
    """The superblock fields the map needs, checked."""

    def __init__(self, raw: bytes, length: int):
        (self.inodes_count, blocks_lo, _, _, _, self.first_data_block, log_block, _, self.blocks_per_group, _,
         self.inodes_per_group) = struct.unpack_from("<11I", raw, 0)
        self.state, = struct.unpack_from("<H", raw, 58)
        self.rev_level, = struct.unpack_from("<I", raw, 76)
        self.inode_size, = struct.unpack_from("<H", raw, 88)
        self.compat, self.incompat, self.ro_compat = struct.unpack_from("<III", raw, 92)
        self.reserved_gdt, = struct.unpack_from("<H", raw, 206)
        desc_size, = struct.unpack_from("<H", raw, 254)
        blocks_hi, = struct.unpack_from("<I", raw, 336)
        self.backup_bgs = struct.unpack_from("<II", raw, 0x24C)
        self.journal_inum, = struct.unpack_from("<I", raw, 0xE0)
        if self.incompat & INCOMPAT_RECOVER:
            raise Unusable("its ext filesystem needs journal recovery (not cleanly unmounted)")
        if not self.state & STATE_VALID:
            raise Unusable("its ext filesystem was not cleanly unmounted")
        if self.state & STATE_ERROR:
            raise Unusable("its ext filesystem has errors recorded")
        if self.incompat & INCOMPAT_JOURNAL_DEV:
            raise Unusable("it is an external ext journal")
        if self.incompat & INCOMPAT_META_BG:
            raise Unusable("its ext filesystem uses meta_bg (not followed by this parser)")
        if self.incompat & INCOMPAT_COMPRESSION or self.incompat & ~INCOMPAT_KNOWN:
            raise Unusable(f"its ext filesystem has unknown incompatible features (0x{self.incompat:x})")
        if self.ro_compat & RO_COMPAT_BIGALLOC:
            raise Unusable("its ext filesystem uses bigalloc (not followed by this parser)")
        if log_block > 6:
            raise Unusable("its ext superblock has an impossible block size")
        self.block_size = 1024 << log_block
        self.is64 = bool(self.incompat & INCOMPAT_64BIT)
        self.blocks_count = blocks_lo | (blocks_hi << 32 if self.is64 else 0)
        self.desc_size = desc_size if self.is64 else 32
        self.csum = bool(self.ro_compat & (RO_COMPAT_GDT_CSUM | RO_COMPAT_METADATA_CSUM))
        if self.rev_level == 0:
            self.inode_size = 128
        bs = self.block_size
        if self.first_data_block != (1 if bs == 1024 else 0):
            raise Unusable("its ext superblock has an impossible first data block")
        if not 256 <= self.blocks_per_group <= 8 * bs or self.blocks_per_group % 8:
            raise Unusable("its ext superblock has an impossible blocks-per-group count")
        if not ((64 if self.is64 else 32) <= self.desc_size <= 1024 and self.desc_size & (self.desc_size - 1) == 0):
            raise Unusable("its ext superblock has an impossible descriptor size")
        if self.inode_size < 128 or self.inode_size > bs or self.inode_size & (self.inode_size - 1):
            raise Unusable("its ext superblock has an impossible inode size")
        if not 0 < self.inodes_per_group <= 8 * bs:
            raise Unusable("its ext superblock has an impossible inodes-per-group count")
        if self.blocks_count <= self.first_data_block or self.blocks_count * bs > length:
            raise Unusable("its ext filesystem is larger than its partition")
        self.groups = -(-(self.blocks_count - self.first_data_block) // self.blocks_per_group)
        if self.groups > MAX_GROUPS:
            raise Unusable("its ext filesystem has too many block groups")
        self.itable_blocks = -(-self.inodes_per_group * self.inode_size // bs)
        self.gdt_blocks = -(-self.groups * self.desc_size // bs)

    def group_start(self, g: int) -> int:
        return self.first_data_block + g * self.blocks_per_group

    def group_blocks(self, g: int) -> int:
        return min(self.blocks_per_group, self.blocks_count - self.group_start(g))

    def has_backup(self, g: int) -> bool:
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


class _Group:
    __slots__ = ("block_bitmap", "inode_bitmap", "inode_table", "free", "flags", "itable_unused")

    def __init__(self, raw: memoryview, is64: bool):
        bb, ib, it, free, _, _, flags = struct.unpack_from("<IIIHHHH", raw, 0)
        unused, = struct.unpack_from("<H", raw, 28)
        if is64:
            bbh, ibh, ith, freeh, _, _, _, _, unusedh = struct.unpack_from("<IIIHHHHHH", raw, 32)
            bb, ib, it = bb | bbh << 32, ib | ibh << 32, it | ith << 32
            free |= freeh << 16
            unused |= unusedh << 16
        self.block_bitmap, self.inode_bitmap, self.inode_table = bb, ib, it
        self.free, self.flags, self.itable_unused = free, flags, unused


def _bit_runs(bits: int, nbits: int):
    """(start, length) of the runs of set bits among the low ``nbits`` of ``bits``."""
    bits &= (1 << nbits) - 1
    pos = 0
    while bits:
        low = (bits & -bits).bit_length() - 1
        bits >>= low
        pos += low
        ones = (bits ^ (bits + 1)).bit_length() - 1
        yield pos, ones
        bits >>= ones
        pos += ones


class _Used:
    """Used block ranges (in blocks), collected out of order, merged at the end."""

    def __init__(self):
        self.runs: list[tuple[int, int]] = []

    def add(self, start: int, count: int) -> None:
        if count > 0:
            self.runs.append((start, start + count))
            if len(self.runs) > 4 * (1 << 18):
                raise Unusable("its ext map is too fragmented to keep")

    def merged(self, holes: list[tuple[int, int]]) -> list[tuple[int, int]]:
        runs = sorted(self.runs)
        out: list[list[int]] = []
        for a, b in runs:
            if out and a <= out[-1][1]:
                out[-1][1] = max(out[-1][1], b)
            else:
                out.append([a, b])
        if not holes:
            return [(a, b) for a, b in out]
        result = []
        holes = sorted(holes)
        h = 0
        for a, b in out:
            while h < len(holes) and holes[h][1] <= a:
                h += 1
            k = h
            while a < b and k < len(holes) and holes[k][0] < b:
                ha, hb = holes[k]
                if ha > a:
                    result.append((a, ha))
                a = max(a, hb)
                k += 1
            if a < b:
                result.append((a, b))
        return result


def used_map(reader: Reader) -> FsMap | None:
    raw = reader.peek(1024, 1024)
    if len(raw) < 1024 or struct.unpack_from("<H", raw, 56)[0] != MAGIC:
        return None
    sb = _Super(raw, reader.length)
    bs = sb.block_size
    gdt = memoryview(reader.read((sb.first_data_block + 1) * bs, sb.groups * sb.desc_size))
    groups = [_Group(gdt[g * sb.desc_size:(g + 1) * sb.desc_size], sb.is64) for g in range(sb.groups)]
    used = _Used()
    used.add(0, sb.first_data_block + 1)  # boot block and superblock
    holes = []
    metadata = []  # (block, count) of every group's bitmaps and inode table
    for g, grp in enumerate(groups):
        for block, count in ((grp.block_bitmap, 1), (grp.inode_bitmap, 1), (grp.inode_table, sb.itable_blocks)):
            if block < sb.first_data_block or block + count > sb.blocks_count:
                raise Unusable(f"its ext group {g} has metadata outside the filesystem")
            metadata.append((block, count))
        if sb.csum:
            if grp.itable_unused > sb.inodes_per_group:
                raise Unusable(f"its ext group {g} has an impossible unused-inode count")
            live = sb.inodes_per_group - (sb.inodes_per_group if grp.flags & BG_INODE_UNINIT else grp.itable_unused)
            live_blocks = -(-live * sb.inode_size // bs)
            if live_blocks < sb.itable_blocks:
                holes.append((grp.inode_table + live_blocks, grp.inode_table + sb.itable_blocks))
    _check_overlaps(metadata)
    holes += _journal_tail(reader, sb, groups)
    by_group: dict[int, list[tuple[int, int]]] = {}
    for block, count in metadata:
        g = (block - sb.first_data_block) // sb.blocks_per_group
        by_group.setdefault(g, []).append((block, count))
    for g, grp in enumerate(groups):
        start, nblocks = sb.group_start(g), sb.group_blocks(g)
        if grp.flags & BG_BLOCK_UNINIT:
            if sb.has_backup(g):
                used.add(start, 1 + sb.gdt_blocks + sb.reserved_gdt)
            for block, count in by_group.get(g, ()):
                used.add(block, count)
            continue
        bitmap = reader.read(grp.block_bitmap * bs, bs)
        bits = int.from_bytes(bitmap, "little") & ((1 << nblocks) - 1)
        free = nblocks - bits.bit_count()
        if free != grp.free:
            raise Unusable(f"the block bitmap of its ext group {g} disagrees with the group's free count "
                           f"({free} free in the bitmap, {grp.free} recorded)")
        for run, count in _bit_runs(bits, nblocks):
            used.add(start + run, count)
        for block, count in by_group.get(g, ()):  # metadata a bitmap forgets is still sent
            used.add(block, count)
    ranges = [(a * bs, (b - a) * bs) for a, b in used.merged(holes)]
    return FsMap("ext", ranges, sb.blocks_count * bs)


def _check_overlaps(metadata: list[tuple[int, int]]) -> None:
    end = -1
    for block, count in sorted(metadata):
        if block < end:
            raise Unusable("its ext groups' bitmaps and inode tables overlap")
        end = block + count


def _journal_tail(reader: Reader, sb: _Super, groups: list[_Group]) -> list[tuple[int, int]]:
    """Block ranges of an empty internal journal past its superblock; [] if anything is not plain."""
    if not sb.compat & COMPAT_HAS_JOURNAL or not 0 < sb.journal_inum <= sb.inodes_per_group:
        return []
    index = sb.journal_inum - 1
    inode = reader.read(groups[0].inode_table * sb.block_size + index * sb.inode_size, 128)
    flags, = struct.unpack_from("<I", inode, 0x20)
    if not flags & EXTENTS_FL:
        return []
    magic, entries, _, depth = struct.unpack_from("<HHHH", inode, 0x28)
    if magic != EXTENT_MAGIC or depth != 0 or not 0 < entries <= 4:
        return []
    extents = []
    for i in range(entries):
        logical, length, start_hi, start_lo = struct.unpack_from("<IHHI", inode, 0x28 + 12 * (i + 1))
        if length > 32768:
            return []  # an uninitialised extent in a journal: not plain
        start = start_lo | start_hi << 32
        if start < sb.first_data_block or start + length > sb.blocks_count or length == 0:
            return []
        extents.append((logical, start, length))
    extents.sort()
    if extents[0][0] != 0:
        return []
    jsb = reader.read(extents[0][1] * sb.block_size, 32)
    magic, blocktype, _, _, _, _, _, start = struct.unpack(">IIIIIIII", jsb)  # s_start: 0 when empty
    if magic != JBD2_MAGIC or blocktype not in (3, 4) or start != 0:
        return []
    tail = [(s + (1 if logical == 0 else 0), s + n) for logical, s, n in extents]
    return [(a, b) for a, b in tail if a < b]
