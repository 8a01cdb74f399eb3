"""Make ranges of a disk read as zeros, cheaply where the disk allows; wipe a disk's head and tail.

Files: a punched hole (fallocate PUNCH_HOLE: the file stays sparse, a reused
one loses its old bytes).  Loop devices: a discard, which the loop driver
turns into a punched hole in the backing file, so the volume stays sparse
(BLKZEROOUT there becomes FALLOC_FL_ZERO_RANGE and allocates the range).
Other block devices: BLKZEROOUT.  The unaligned edges, and whatever the
kernel refuses, get written zeros.  An RBD image (a volume, no fd):
``write_zeroes``, which keeps it thin (osdef.disk.rbd).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import fcntl
import struct

from osdef.disk.device import Disk, sync, write_at, zero_volume
from osdef.disk.handle import BytesLike
from osdef.disk.units import SECTOR, MiB

ZEROS = bytes(MiB)  # a distinct object: `buf == ZEROS` is a memcmp (~58 GiB/s)

BLKZEROOUT = 0x127F
BLKDISCARD = 0x1277
FALLOC_FL_KEEP_SIZE = 0x01
FALLOC_FL_PUNCH_HOLE = 0x02
DISCARD_ALIGN = 4096  # loop devices: the backing filesystem's block size

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
_libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64]


def is_zero(view: BytesLike) -> bool:
    """True if ``view`` (at most 1 MiB) holds only zero bytes."""
    return ZEROS.startswith(view)


def _write_zeros(disk: Disk, offset: int, length: int) -> None:
    while length:
        n = min(length, MiB)
        write_at(disk, ZEROS[:n] if n < MiB else ZEROS, offset)
        offset += n
        length -= n


def _range_ioctl(disk: Disk, request: int, offset: int, length: int) -> bool:
    """A (start, length) block-device ioctl; False if the kernel refuses it."""
    try:
        fcntl.ioctl(disk.fd, request, struct.pack("QQ", offset, length))
        return True
    except OSError:
        return False


def _blkzeroout(disk: Disk, offset: int, length: int) -> bool:
    return _range_ioctl(disk, BLKZEROOUT, offset, length)


def _blkdiscard(disk: Disk, offset: int, length: int) -> bool:
    return _range_ioctl(disk, BLKDISCARD, offset, length)


def _zero_block_range(disk: Disk, start: int, stop: int) -> bool:
    """Zero sector-aligned [start, stop) of a block device without writing data; False if refused.

    A loop device gets a discard (punched holes: zeros, and its file stays
    sparse) on the 4 KiB-aligned middle; everything else, and whatever the
    discard leaves, gets BLKZEROOUT.
    """
    if disk.discard_zeroes:
        a = -(-start // DISCARD_ALIGN) * DISCARD_ALIGN
        b = stop // DISCARD_ALIGN * DISCARD_ALIGN
        if b > a and _blkdiscard(disk, a, b - a):
            return ((a == start or _blkzeroout(disk, start, a - start))
                    and (b == stop or _blkzeroout(disk, b, stop - b)))
    return _blkzeroout(disk, start, stop - start)


def punch_hole(fd: int, offset: int, length: int) -> bool:
    """fallocate(PUNCH_HOLE | KEEP_SIZE) on a file; False if the filesystem refuses it."""
    rc: int = _libc.fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, offset, length)
    return rc == 0


def zero_range(disk: Disk, offset: int, length: int) -> None:
    """Make [offset, offset+length) read as zeros (clipped to the disk), cheaply where the disk allows.

    Files: punch a hole. Block devices: on the sector-aligned middle a discard
    (loop devices) or BLKZEROOUT, explicit zeros at the unaligned edges.
    Anything the kernel refuses falls back to writing zeros.
    """
    end = min(offset + length, disk.size)
    if end <= offset:
        return
    if disk.volume is not None:
        zero_volume(disk, offset, end - offset)
        return
    if not disk.is_block:
        if not punch_hole(disk.fd, offset, end - offset):
            _write_zeros(disk, offset, end - offset)
        return
    start = -(-offset // SECTOR) * SECTOR
    stop = end // SECTOR * SECTOR
    if stop - start >= SECTOR and _zero_block_range(disk, start, stop):
        _write_zeros(disk, offset, start - offset)
        _write_zeros(disk, stop, end - stop)
    else:
        _write_zeros(disk, offset, end - offset)


def wipe_ends(disk: Disk) -> None:
    """Zero the first and last MiB (partition tables, a backup GPT, superblocks) and flush.

    What a failed write leaves behind: the disk can never boot or pass as good.
    """
    zero_range(disk, 0, min(MiB, disk.size))
    zero_range(disk, max(0, disk.size - MiB), min(MiB, disk.size))
    sync(disk)
