"""Used-block map of an ext2/3/4 filesystem: its bitmaps, checked against its descriptors and its files.

A small parser of the on-disk format (osdef.disk.ondisk.ext) instead
of e2fsprogs: ``e2image``, ``dumpe2fs`` and ``partclone.ext4 -D`` all need a
subprocess (and a sandbox for hostile input) and print more than the map.

What is used: every block whose bit is set in its group's block bitmap; for a
group whose ``BLOCK_UNINIT`` flag may be believed (group checksums kept and
the descriptor's verifies), its superblock backup and descriptor blocks and
the bitmaps and inode tables that lie in it (what libext2fs assumes); every
group's bitmaps and inode table wherever they lie; always the boot block and
the superblock.  Where the flags may be believed, the tail of an inode table
past the group's last used inode (``bg_itable_unused``) is left out: the
kernel and e2fsck never read it, and it arrives as zeros.  Likewise the
internal journal of a cleanly unmounted filesystem (its superblock says it
is empty, ``s_start == 0``) is sent as its first block only.

Before that map is used, every group must agree with itself, as e2fsck's
``check_super_block`` and pass 5 would have it (else ``Unusable``: the
partition goes at block level): its descriptor checksum verifies where one is
kept; its metadata lies inside the filesystem (inside the group without
flex_bg) and overlaps neither another group's nor a superblock, descriptor or
reserved-descriptor block (libext2fs's ``ext2fs_check_desc``); its counts are in range; the
unused-inode count is at most the free-inode count; ``INODE_UNINIT`` means
every inode free and unused; the last group is not ``BLOCK_UNINIT``; a ``BLOCK_UNINIT``
group's free count is what its initialisation would leave; the block and
inode bitmaps (where read) match their free counts and, with
``metadata_csum``, their checksums; no in-use inode lies in the unused tail.
Then the inode walk (osdef.stream.fsmap.ext_walk) must find every block an
in-use inode references inside the map (the journal's inside the map or its
documented tail).  The walk can only confirm the map or send the partition at
block level; it never removes a block.

Refused outright: not cleanly unmounted (``needs_recovery``, state not
clean, errors recorded), features whose layout this parser does not follow
(``meta_bg``, ``bigalloc``, an external journal device, unknown features).
"""

from __future__ import annotations

import struct

from osdef.disk.ondisk import Damaged
from osdef.disk.ondisk.ext import (BG_BLOCK_UNINIT, BG_INODE_UNINIT, BLOCK_BITMAP_CSUM_HI_END, COMPAT_HAS_JOURNAL,
                                   INODE_BITMAP_CSUM_HI_END, GroupDesc, Superblock, bitmap_csum_ok, parse_group)
from osdef.stream.fsmap.base import FsMap, Reader, Unusable
from osdef.stream.fsmap.ext_walk import EXTENTS_FL, EXTENT_MAGIC, Walk
from osdef.stream.fsmap.ranges import RunIndex, Runs, contains_all

JBD2_MAGIC = 0xC03B3998
FLEX_BG = 0x200
SOURCE = "block bitmaps, checked by an inode walk"


def used_map(reader: Reader) -> FsMap:
    sb = Superblock(reader.read(1024, 1024), reader.length)
    try:
        sb.check_usable()
        return _map(reader, sb)
    except Damaged as e:
        e.fs = sb.kind
        raise


def _map(reader: Reader, sb: Superblock) -> FsMap:
    bs = sb.block_size
    gdt = reader.read((sb.first_data_block + 1) * bs, sb.groups * sb.desc_size)
    groups = [parse_group(sb, g, gdt[g * sb.desc_size:(g + 1) * sb.desc_size]) for g in range(sb.groups)]
    used = Runs()
    used.add(0, sb.first_data_block + 1)  # boot block and superblock
    holes = _check_descriptors(sb, groups)
    inode_bits = [_inode_bits(reader, sb, g, grp) for g, grp in enumerate(groups)]
    journal_tail = _journal_tail(reader, sb, groups)
    for g, grp in enumerate(groups):
        _group_used(reader, sb, g, grp, used)
    ranges = used.merged(holes + journal_tail)
    walk = Walk(reader, sb, groups, inode_bits)
    missing = walk.outside(RunIndex(ranges))
    if missing is None:
        missing = contains_all(used.merged(holes), walk.journal)
    if missing is not None:
        raise Unusable(f"its ext inodes use block {missing}, which its bitmaps call free")
    return FsMap(sb.kind, [(a * bs, (b - a) * bs) for a, b in ranges], sb.blocks_count * bs, SOURCE)


def _check_descriptors(sb: Superblock, groups: list[GroupDesc]) -> list[tuple[int, int]]:
    """e2fsck's descriptor checks; returns the inode-table tails left out (block ranges)."""
    metadata, holes = [], []
    for g, grp in enumerate(groups):
        if sb.group_csum and not grp.csum_ok:
            raise Unusable(f"the checksum of its ext group {g}'s descriptor does not verify")
        lo, hi = sb.first_data_block, sb.blocks_count
        if not sb.incompat & FLEX_BG:
            lo, hi = sb.group_start(g), sb.group_start(g) + sb.group_blocks(g)
        for block, count in ((grp.block_bitmap, 1), (grp.inode_bitmap, 1), (grp.inode_table, sb.itable_blocks)):
            if block < lo or block + count > hi:
                raise Unusable(f"its ext group {g} has metadata outside where it may lie")
            metadata.append((block, count))
        if grp.free_blocks > sb.blocks_per_group or max(grp.free_inodes, grp.used_dirs) > sb.inodes_per_group:
            raise Unusable(f"its ext group {g} has impossible counts")
        if sb.group_csum and grp.itable_unused > grp.free_inodes:
            raise Unusable(f"its ext group {g} has more unused inodes ({grp.itable_unused}) than free ones "
                           f"({grp.free_inodes})")
        if grp.trusted(BG_INODE_UNINIT) and (grp.free_inodes != sb.inodes_per_group or grp.used_dirs):
            raise Unusable(f"its ext group {g} is marked INODE_UNINIT but has inodes in use")
        # the flag with part of the table counted in use: two readings (Linux and libext2fs read none of
        # it, a reader without the flag the head). libext2fs (ext2fs_set_gdt_csum) and Linux's resize
        # (ext4_setup_new_descs) set INODE_UNINIT only with every inode unused.
        if grp.trusted(BG_INODE_UNINIT) and grp.itable_unused != sb.inodes_per_group:
            raise Unusable(f"its ext group {g} is marked INODE_UNINIT but counts {grp.itable_unused} of its "
                           f"{sb.inodes_per_group} inodes unused")
        if grp.trusted(BG_BLOCK_UNINIT) and g == sb.groups - 1:
            raise Unusable(f"its last ext group ({g}) is marked BLOCK_UNINIT")
        if sb.group_csum:
            live = sb.inodes_per_group - (sb.inodes_per_group if grp.trusted(BG_INODE_UNINIT) else grp.itable_unused)
            live_blocks = -(-live * sb.inode_size // sb.block_size)
            if live_blocks < sb.itable_blocks:
                holes.append((grp.inode_table + live_blocks, grp.inode_table + sb.itable_blocks))
    # as libext2fs's ext2fs_check_desc: no bitmap or inode table on another one, nor on a superblock,
    # descriptor or reserved-descriptor block (e2fsck would read the backup descriptors instead)
    reserved = [(sb.group_start(g), _base_meta(sb, g)) for g in range(sb.groups) if sb.has_backup(g)]
    end = -1
    for block, count in sorted(metadata + reserved):
        if block < end:
            raise Unusable("its ext groups' bitmaps and inode tables overlap each other or the superblocks "
                           "and descriptors")
        end = block + count
    return holes


def _base_meta(sb: Superblock, g: int) -> int:
    """Blocks of group g's superblock backup, descriptors and reserved descriptors (none without a backup)."""
    return 1 + sb.gdt_blocks + sb.reserved_gdt if sb.has_backup(g) else 0


def _own_metadata(sb: Superblock, g: int, grp: GroupDesc) -> list[tuple[int, int]]:
    """The group's own bitmaps and inode table blocks that lie inside the group (ext4_num_overhead_clusters)."""
    start, end = sb.group_start(g), sb.group_start(g) + sb.group_blocks(g)
    inside = []
    for block, count in ((grp.block_bitmap, 1), (grp.inode_bitmap, 1), (grp.inode_table, sb.itable_blocks)):
        lo, hi = max(block, start), min(block + count, end)
        if lo < hi:
            inside.append((lo, hi - lo))
    return inside


def _group_used(reader: Reader, sb: Superblock, g: int, grp: GroupDesc, used: Runs) -> None:
    """Add group g's used blocks: its bitmap's, or what an uninitialised bitmap stands for; and its metadata."""
    start, nblocks = sb.group_start(g), sb.group_blocks(g)
    for block, count in ((grp.block_bitmap, 1), (grp.inode_bitmap, 1), (grp.inode_table, sb.itable_blocks)):
        used.add(block, count)  # wherever it lies: a bitmap that forgets metadata still sends it
    if grp.trusted(BG_BLOCK_UNINIT):
        own = _own_metadata(sb, g, grp)
        expected = nblocks - _base_meta(sb, g) - sum(count for _, count in own)
        if grp.free_blocks != expected:
            raise Unusable(f"its ext group {g} is marked BLOCK_UNINIT but records {grp.free_blocks} free blocks, "
                           f"not the {expected} its initialisation leaves")
        used.add(start, _base_meta(sb, g))
        return
    bitmap = reader.read(grp.block_bitmap * sb.block_size, sb.block_size)
    if not bitmap_csum_ok(sb, bitmap, grp.block_bitmap_csum, sb.blocks_per_group, BLOCK_BITMAP_CSUM_HI_END):
        raise Unusable(f"the block bitmap of its ext group {g} fails its checksum")
    bits = int.from_bytes(bitmap, "little") & ((1 << nblocks) - 1)
    free = nblocks - bits.bit_count()
    if free != grp.free_blocks:
        raise Unusable(f"the block bitmap of its ext group {g} disagrees with the group's free count "
                       f"({free} free in the bitmap, {grp.free_blocks} recorded)")
    used.add_bits(start, bits)


def _inode_bits(reader: Reader, sb: Superblock, g: int, grp: GroupDesc) -> int:
    """Group g's in-use inodes as bits (bit i: inode g * ipg + i + 1), checked against the descriptor."""
    ipg = sb.inodes_per_group
    if grp.trusted(BG_INODE_UNINIT):
        return 0
    bitmap = reader.read(grp.inode_bitmap * sb.block_size, sb.block_size)
    if not bitmap_csum_ok(sb, bitmap, grp.inode_bitmap_csum, ipg, INODE_BITMAP_CSUM_HI_END):
        raise Unusable(f"the inode bitmap of its ext group {g} fails its checksum")
    bits = int.from_bytes(bitmap[:ipg // 8], "little")
    if ipg - bits.bit_count() != grp.free_inodes:
        raise Unusable(f"the inode bitmap of its ext group {g} disagrees with the group's free-inode count "
                       f"({ipg - bits.bit_count()} free in the bitmap, {grp.free_inodes} recorded)")
    if sb.group_csum and bits >> (ipg - grp.itable_unused):
        raise Unusable(f"its ext group {g} has inodes in use in the part of its inode table marked unused")
    return bits


def _journal_tail(reader: Reader, sb: Superblock, groups: list[GroupDesc]) -> list[tuple[int, int]]:
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
