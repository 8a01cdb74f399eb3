"""A loop device and its backing file: its discards, the file behind it, writes through it.

``is_loop_device`` tells osdef.disk.device which block devices zero a range
by a discard (a punched hole in the backing file: the volume stays sparse).

``open_backing`` gives the backing file of a bound loop device, checked:
osdef.disk.filemap maps a loop device through it (its SEEK_DATA extents,
read from the file), and import writes through it (``write=True``: one page
cache instead of the device's and the file's, whose write-out runs one after
the other; 1.1 GiB from memory, fsync'ed: 2.2-2.9 s through the device,
1.1-1.3 s into the file).  Writing only for a loop device at offset 0 without
a size limit; ``drop_device_cache`` then discards the device's cached pages,
which would otherwise still show the old bytes.

Used only when everything checks out: a whole loop device (not a partition),
its backing file found under ``/sys/dev/block/M:N/loop/backing_file`` and
proven to be the same inode the driver holds (LOOP_GET_STATUS64), the
device's own dirty pages flushed first.  Anything else returns None and the
caller uses the device itself, as for any block device.
"""

from __future__ import annotations

import errno
import fcntl
import os
import stat
import struct

LOOP_MAJOR = 7
LOOP_GET_STATUS64 = 0x4C05
LO_FLAGS_READ_ONLY = 1
BLKFLSBUF = 0x1261
# struct loop_info64: lo_device, lo_inode, lo_rdevice, lo_offset, lo_sizelimit (u64 each),
# lo_number, lo_encrypt_type, lo_encrypt_key_size, lo_flags (u32 each), names and key (160 bytes),
# lo_init[2] (u64 each): 232 bytes.
_INFO64 = struct.Struct("=QQQQQIIII64s64s32sQQ")


def _new_decode_dev(dev: int) -> tuple[int, int]:
    """(major, minor) of a dev_t as the kernel encodes it in loop_info64 (new_encode_dev)."""
    return (dev & 0xFFF00) >> 8, (dev & 0xFF) | ((dev >> 12) & 0xFFF00)


def is_loop_device(fd: int) -> bool:
    """True for a whole, bound loop device.

    Its discards are punched holes in the backing file (loop's REQ_OP_DISCARD
    is fallocate(PUNCH_HOLE)): they read back as zeros and keep the file sparse,
    where BLKZEROOUT becomes FALLOC_FL_ZERO_RANGE and allocates the range.
    """
    try:
        st = os.fstat(fd)
        return (stat.S_ISBLK(st.st_mode) and os.major(st.st_rdev) == LOOP_MAJOR
                and os.path.isdir(f"/sys/dev/block/{LOOP_MAJOR}:{os.minor(st.st_rdev)}/loop"))
    except OSError:
        return False


def open_backing(fd: int, size: int, *, write: bool = False) -> tuple[int, int] | None:
    """(fd of the backing file, loop offset) once everything checks out, else None.

    After this the file holds what the device shows (its dirty pages were
    flushed), so its bytes at ``offset + loop offset`` may be read instead of
    the device's: one page cache instead of two.  The caller closes the fd.
    With ``write`` the file is opened read-write, and only for a writable
    device at loop offset 0 whose file covers the whole device; after
    writing, the caller syncs the file and calls ``drop_device_cache``.
    """
    return _backing_file(fd, size, write)


def drop_device_cache(fd: int) -> None:
    """Discard the loop device's own cached pages (BLKFLSBUF), stale after writes to its backing file."""
    fcntl.ioctl(fd, BLKFLSBUF, 0)


def _backing_file(fd: int, size: int, write: bool = False) -> tuple[int, int] | None:
    """(open fd of the backing file, loop offset) once everything checks out, else None."""
    try:
        st = os.fstat(fd)
        if not stat.S_ISBLK(st.st_mode) or os.major(st.st_rdev) != LOOP_MAJOR:
            return None
        sysdir = f"/sys/dev/block/{os.major(st.st_rdev)}:{os.minor(st.st_rdev)}"
        if not os.path.isdir(f"{sysdir}/loop"):
            return None  # a partition of a loop device, or not bound
        with open(f"{sysdir}/loop/backing_file", encoding="utf-8", errors="surrogateescape") as f:
            backing = f.read().rstrip("\n")
        info = _INFO64.unpack(fcntl.ioctl(fd, LOOP_GET_STATUS64, bytes(_INFO64.size)))
    except OSError:
        return None
    lo_device, lo_inode, _, lo_offset, lo_sizelimit = info[:5]
    lo_flags = info[8]
    if write and (lo_offset or lo_sizelimit or lo_flags & LO_FLAGS_READ_ONLY):
        return None  # writes stay on the device: no offset arithmetic behind the driver's back
    try:
        bfd = os.open(backing, (os.O_RDWR if write else os.O_RDONLY) | os.O_CLOEXEC)
    except OSError:
        return None  # e.g. "… (deleted)", or a path in another mount namespace
    try:
        bst = os.fstat(bfd)
        if (not stat.S_ISREG(bst.st_mode) or bst.st_ino != lo_inode
                or (os.major(bst.st_dev), os.minor(bst.st_dev)) != _new_decode_dev(lo_device)):
            raise LookupError("not the file the driver holds")
        if lo_sizelimit and lo_sizelimit < size:
            raise LookupError("the device would be smaller than it says: do not guess")
        if write and bst.st_size < lo_offset + size:
            raise LookupError("the file does not cover the device")
        try:
            os.lseek(bfd, 0, os.SEEK_DATA)  # does the backing filesystem answer SEEK_DATA at all?
        except OSError as e:
            if e.errno != errno.ENXIO:
                raise
        os.fsync(fd)  # the device's dirty pages reach the backing file before it is mapped
        return bfd, lo_offset
    except (OSError, LookupError):
        os.close(bfd)
        return None

