"""Loop devices: set up and torn down through losetup, and what the kernel says of a bound one.

The helper every part of osdef (and its tests) uses to drive util-linux's
``losetup``: ``attach`` (read-only, offset, size limit, sector size),
``detach``, ``devices_of`` (find the devices a file backs, ``losetup -j``),
``refresh_capacity`` (after a backing file grew) and ``attached`` (a device
for a ``with`` block).  Every failure raises ``LoopError`` with one line:
what was being done, to which file or device, and losetup's last stderr line.

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

import contextlib
import errno
import fcntl
import os
import stat
import struct
import subprocess
from collections.abc import Iterator
from typing import TypedDict, Unpack

from osdef.fileutil import tool_said
from osdef.errors import OsdefError

LOSETUP = "losetup"
LOSETUP_TIMEOUT = 60  # seconds; losetup answers in milliseconds
SECTOR_SIZES = (512, 1024, 2048, 4096)  # what the loop driver accepts as a logical block size

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


class LoopError(OsdefError):
    """losetup could not attach, detach, list or resize a loop device."""


def _losetup(args: list[str], what: str) -> str:
    """losetup's stdout; a failure raises LoopError with ``what`` and losetup's last stderr line."""
    try:
        proc = subprocess.run([LOSETUP, *args], capture_output=True, text=True, errors="replace",
                              stdin=subprocess.DEVNULL, timeout=LOSETUP_TIMEOUT, check=False)
    except FileNotFoundError:
        raise LoopError(f"{what}: losetup not found: install util-linux") from None
    except subprocess.TimeoutExpired:
        raise LoopError(f"{what}: losetup did not answer within {LOSETUP_TIMEOUT} s") from None
    except OSError as e:
        raise LoopError(f"{what}: losetup could not run: {e.strerror}") from None
    if proc.returncode != 0:
        raise LoopError(f"{what}: {tool_said(proc)}")
    return proc.stdout


def _attach_args(read_only: bool, offset: int, sizelimit: int, sector_size: int) -> list[str]:
    """losetup's options for ``attach``, checked first: a bad value raises LoopError before losetup runs."""
    for name, value in (("offset", offset), ("size limit", sizelimit)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise LoopError(f"loop device {name} {value!r}: use a whole number of bytes >= 0")
    if sector_size and sector_size not in SECTOR_SIZES:
        raise LoopError(f"loop device sector size {sector_size!r}: use one of "
                        f"{', '.join(map(str, SECTOR_SIZES))}")
    args = ["-f", "--show"]
    if read_only:
        args.append("-r")
    if offset:
        args += ["-o", str(offset)]
    if sizelimit:
        args += ["--sizelimit", str(sizelimit)]
    if sector_size:
        args += ["-b", str(sector_size)]
    return args


class AttachOptions(TypedDict, total=False):
    """attach()'s keyword arguments (for attached())."""

    read_only: bool
    offset: int
    sizelimit: int
    sector_size: int


def attach(backing: str | os.PathLike[str], *, read_only: bool = False, offset: int = 0, sizelimit: int = 0,
           sector_size: int = 0) -> str:
    """Attach ``backing`` (a file or a block device) to a free loop device; its path (/dev/loopN).

    ``offset`` and ``sizelimit`` (bytes; 0: from the start, to the end) show
    only a part of it (a partition); ``sector_size`` is the device's logical
    sector size (0: the driver's default, 512).
    """
    args = _attach_args(read_only, offset, sizelimit, sector_size)
    out = _losetup([*args, os.fspath(backing)], f"cannot attach {os.fspath(backing)} to a loop device")
    device = out.strip()
    if not device.startswith("/dev/loop") or "\n" in device:
        raise LoopError(f"losetup attached {os.fspath(backing)} but printed no device ({out!r})")
    return device


def detach(device: str) -> None:
    """Detach the loop device (the kernel finishes it once its last user closes it)."""
    _losetup(["-d", device], f"cannot detach {device}")


def devices_of(backing: str | os.PathLike[str]) -> list[str]:
    """The loop devices now backed by this file (usually zero or one), as ``losetup -j`` finds them."""
    out = _losetup(["-j", os.fspath(backing), "-n", "-O", "NAME"],
                   f"cannot list the loop devices of {os.fspath(backing)}")
    return [line.strip() for line in out.splitlines() if line.strip()]


def refresh_capacity(device: str) -> None:
    """Make the loop device see its backing file's new size (after it grew)."""
    _losetup(["-c", device], f"cannot update the size of {device}")


@contextlib.contextmanager
def attached(backing: str | os.PathLike[str], **options: Unpack[AttachOptions]) -> Iterator[str]:
    """A loop device over ``backing`` (``attach``'s options) for the ``with`` block, detached afterwards.

    A failed detach raises LoopError, unless the block itself failed (its error is the one that matters).
    """
    device = attach(backing, **options)
    try:
        yield device
    except BaseException:
        with contextlib.suppress(LoopError):
            detach(device)
        raise
    detach(device)
