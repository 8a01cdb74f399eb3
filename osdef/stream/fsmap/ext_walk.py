"""Every block the in-use inodes of an ext2/3/4 filesystem reference, to hold the bitmaps to account.

A block bitmap can be wrong while the filesystem says it is clean (a kernel
or tool bug, bit rot, a hand-edited descriptor), and a map that calls a used
block free loses it silently.  So before an export trusts the bitmaps, this
walk reads what the files themselves say:

* the in-use inodes: each group's inode bitmap bits (none for a group whose
  ``INODE_UNINIT`` flag is trusted), read from the inode table;
* for each, what its ``i_block`` holds by Linux's rules: an extent tree
  (``EXTENTS_FL``: index and leaf blocks, every extent, uninitialised ones
  included), or a block map (12 direct pointers, then single, double and
  triple indirect blocks); nothing for device nodes, FIFOs, sockets, inline
  data and fast symlinks (``ext4_inode_is_fast_symlink``: no blocks beyond an
  xattr block); and its extended-attribute block (``i_file_acl``).  The
  journal, resize and bad-block inodes are walked like any other.

``Walk.outside(index)`` checks every range against the map (an
osdef.stream.fsmap.ranges.RunIndex) as it is found and returns the first block
outside it; ``Walk.journal`` keeps the journal inode's ranges apart (its empty
tail is a documented exception of the map).  The common inode (a file or a
directory whose extents all sit in the inode) is read in one unpack; the rest
take the general path.  Anything that does
not parse — a pointer outside the filesystem, an extent header that fails
its checks, an index or indirect block reached twice, a tree deeper than
Linux allows, an inode of no known type that points at blocks — raises
``Unusable``: the caller then sends the partition at block level.  Reads go
through the partition's bounded ``Reader``.
"""

from __future__ import annotations

import struct
from array import array
from collections.abc import Iterable

from osdef.disk.units import MiB
from osdef.disk.ondisk.ext import INCOMPAT_INLINE_DATA, RO_COMPAT_HUGE_FILE, GroupDesc, Superblock
from osdef.stream.fsmap.base import Reader, Unusable
from osdef.stream.fsmap.ranges import RunIndex

EXTENTS_FL, INLINE_DATA_FL, EA_INODE_FL, HUGE_FILE_FL = 0x80000, 0x10000000, 0x200000, 0x40000
EXTENT_MAGIC = 0xF30A
MAX_DEPTH = 5  # EXT4_MAX_EXTENT_DEPTH
S_IFMT, S_IFLNK, S_IFREG, S_IFDIR = 0xF000, 0xA000, 0x8000, 0x4000
NO_BLOCKS = (0x1000, 0x2000, 0x6000, 0xC000)  # FIFO, character and block devices, sockets: i_block is no map
CHUNK = MiB  # inode-table bytes read at a time
_INODE = struct.Struct("<H2xI20xII4x60s4xII4xI")  # mode, size, blocks_lo, flags, i_block, acl_lo, size_hi, osd2
# the same inode with i_block read as an extent header and its four in-inode entries (the fast path)
_INODE_EXTENTS = struct.Struct("<H2xI20xII4xHHHH4x" + "IHHI" * 4 + "4xII4xI")
_BITS = [tuple(i for i in range(8) if byte >> i & 1) for byte in range(256)]
_EXT_HEAD = struct.Struct("<HHHH4x")
_EXT_ENTRY = struct.Struct("<IHHI")
_EXT_INDEX = struct.Struct("<IIH2x")


class Walk:
    """The walk over one filesystem: ``outside(index)`` finds a referenced block the map lacks."""

    def __init__(self, reader: Reader, sb: Superblock, groups: list[GroupDesc], inode_bits: list[int]):
        self.reader, self.sb, self.groups, self.inode_bits = reader, sb, groups, inode_bits
        self.bs = sb.block_size
        self.seen: set[int] = set()  # index, leaf and indirect blocks: each may be reached once
        self.journal: list[tuple[int, int]] = []
        self.inodes = 0

    def outside(self, index: RunIndex) -> int | None:
        """The first block an in-use inode (not the journal) references that ``index`` lacks, or None."""
        for g, bits in enumerate(self.inode_bits):
            if bits:
                missing = self._group(g, bits, index)
                if missing is not None:
                    return missing
        return None

    def _group(self, g: int, bits: int, index: RunIndex) -> int | None:
        """The inodes of group g whose bits are set, read in chunks of its inode table."""
        size, ipg = self.sb.inode_size, self.sb.inodes_per_group
        per_chunk = CHUNK // size
        table = self.groups[g].inode_table * self.bs
        used = [8 * k + j for k, byte in enumerate(bits.to_bytes((ipg + 7) // 8, "little")) if byte
                for j in _BITS[byte]]
        i = 0
        while i < len(used):
            first = used[i] // per_chunk * per_chunk
            count = min(per_chunk, used[-1] + 1 - first)
            raw = self.reader.read(table + first * size, count * size)
            stop = i
            while stop < len(used) and used[stop] < first + count:
                stop += 1
            missing = self._inodes(raw, g * ipg + first + 1, [(n - first) for n in used[i:stop]], index)
            if missing is not None:
                return missing
            i = stop
        return None

    def _inodes(self, raw: bytes, ino0: int, offsets: list[int], index: RunIndex) -> int | None:
        """Check the inodes at ``offsets`` (in inodes) of ``raw`` (inode ``ino0`` first).

        The common inode — a file or directory whose extents all sit in the inode, no xattr
        block — is read in one unpack and checked inline; the rest take ``_inode``.
        """
        size, journal, lo, hi = self.sb.inode_size, self.sb.journal_inum, self.sb.first_data_block, \
            self.sb.blocks_count
        unpack = _INODE_EXTENTS.unpack_from
        starts, ends = index.starts, index.ends
        for n in offsets:
            f = unpack(raw, n * size)
            ino = ino0 + n
            if (f[0] & S_IFMT in (S_IFREG, S_IFDIR) and f[3] & EXTENTS_FL and not f[3] & INLINE_DATA_FL
                    and f[4] == EXTENT_MAGIC and f[7] == 0 and f[5] <= f[6] <= 4 and not f[24]
                    and not f[26] >> 16 and ino != journal):
                for k in range(8, 8 + 4 * f[5], 4):
                    length = f[k + 1] - 32768 if f[k + 1] > 32768 else f[k + 1]
                    start = f[k + 3] | f[k + 2] << 32
                    if length <= 0 or start < lo or start + length > hi:
                        raise Unusable(f"its ext inode {ino} points outside the filesystem")
                    last = index.last
                    if starts[last] <= start and start + length <= ends[last]:
                        continue  # inside the run the previous extent was in: the common case
                    missing = index.outside(start, length)
                    if missing is not None:
                        return missing
                continue
            for start, count in self._inode(ino, raw, n * size):
                missing = index.outside(start, count)
                if missing is not None:
                    return missing
        self.inodes += len(offsets)
        return None

    def _inode(self, ino: int, raw: bytes, at: int) -> list[tuple[int, int]]:
        mode, _, blocks_lo, flags, i_block, acl_lo, _, osd2 = _INODE.unpack_from(raw, at)
        acl = acl_lo | ((osd2 >> 16) << 32 if self.sb.is64 else 0)
        out: list[tuple[int, int]] = []
        if acl:
            out.append(self._check(acl, 1, ino))
        kind = mode & S_IFMT
        inline = flags & INLINE_DATA_FL and self.sb.incompat & INCOMPAT_INLINE_DATA
        if kind in NO_BLOCKS or inline or self._fast_symlink(kind, flags, blocks_lo, osd2, acl):
            pass
        elif kind in (S_IFREG, S_IFDIR, S_IFLNK) or (kind == 0 and ino < self.sb.first_ino):
            if flags & EXTENTS_FL:
                self._extents(i_block, MAX_DEPTH, ino, out)
            else:
                self._block_map(i_block, ino, out)
        elif any(i_block):
            raise Unusable(f"its ext inode {ino} has an unknown type (mode 0{mode:o}) and points at blocks")
        if ino == self.sb.journal_inum:
            self.journal.extend(out)
            return []
        return out

    def _fast_symlink(self, kind: int, flags: int, blocks_lo: int, osd2: int, acl: int) -> bool:
        """ext4_inode_is_fast_symlink: a symlink with no blocks but its xattr block's."""
        if kind != S_IFLNK or flags & EA_INODE_FL:
            return False
        blocks = blocks_lo
        if self.sb.ro_compat & RO_COMPAT_HUGE_FILE:
            blocks |= (osd2 & 0xFFFF) << 32
            if flags & HUGE_FILE_FL:
                blocks *= self.bs // 512
        return blocks - (self.bs // 512 if acl else 0) == 0

    def _check(self, block: int, count: int, ino: int) -> tuple[int, int]:
        if count <= 0 or block < self.sb.first_data_block or block + count > self.sb.blocks_count:
            raise Unusable(f"its ext inode {ino} points outside the filesystem")
        return block, count

    def _once(self, block: int, ino: int) -> bytes:
        """Read an index, leaf or indirect block that no other path reached."""
        self._check(block, 1, ino)
        if block in self.seen:
            raise Unusable(f"its ext inode {ino} reaches a mapping block another path reached too")
        self.seen.add(block)
        return self.reader.read(block * self.bs, self.bs)

    def _extents(self, node: bytes, depth_left: int, ino: int, out: list[tuple[int, int]]) -> None:
        magic, entries, capacity, depth = _EXT_HEAD.unpack_from(node, 0)
        if magic != EXTENT_MAGIC or entries > capacity or 12 + 12 * capacity > len(node) or depth > depth_left:
            raise Unusable(f"its ext inode {ino} has a damaged extent tree")
        for i in range(entries):
            if depth == 0:
                _, length, hi, lo = _EXT_ENTRY.unpack_from(node, 12 + 12 * i)
                length = length - 32768 if length > 32768 else length  # uninitialised extents are allocated too
                out.append(self._check(lo | hi << 32, length, ino))
                continue
            _, lo, hi = _EXT_INDEX.unpack_from(node, 12 + 12 * i)
            child = lo | hi << 32
            out.append((child, 1))
            block = self._once(child, ino)
            if _EXT_HEAD.unpack_from(block, 0)[3] != depth - 1:
                raise Unusable(f"its ext inode {ino} has a damaged extent tree")
            self._extents(block, depth - 1, ino, out)

    def _block_map(self, i_block: bytes, ino: int, out: list[tuple[int, int]]) -> None:
        pointers = struct.unpack("<15I", i_block)
        _runs(pointers[:12], out)
        for level, block in enumerate(pointers[12:], 1):
            if block:
                self._indirect(block, level, ino, out)
        for block, count in out:
            self._check(block, count, ino)

    def _indirect(self, block: int, level: int, ino: int, out: list[tuple[int, int]]) -> None:
        out.append((block, 1))
        table = array("I")
        table.frombytes(self._once(block, ino))
        if table.itemsize != 4:
            raise Unusable("this machine's array('I') is not 32-bit")  # never on Linux/x86-64 or arm64
        if level == 1:
            _runs(table, out)
            return
        for child in table:
            if child:
                self._indirect(child, level - 1, ino, out)


def _runs(pointers: Iterable[int], out: list[tuple[int, int]]) -> None:
    """Append the non-zero block pointers as runs of consecutive blocks."""
    start = count = 0
    for p in pointers:
        if p and count and p == start + count:
            count += 1
            continue
        if count:
            out.append((start, count))
        start, count = p, (1 if p else 0)
    if count:
        out.append((start, count))
