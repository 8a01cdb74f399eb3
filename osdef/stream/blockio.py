"""The stream's I/O: the disks it opens (failures as BlockIOError) and the stream fd it writes.

Disks themselves (sizes, positional reads and writes, zeroing, loop devices,
pipe sizing) are osdef.disk's; this module adds what only a stream does:
writing whole byte pieces to its output fd and sendfile from a disk's page
cache into it.
"""

from __future__ import annotations

import errno
import os

from osdef.disk import device
from osdef.disk.device import Disk
from osdef.disk.handle import BytesLike
from osdef.errors import StreamError


class BlockIOError(StreamError):
    """A disk or pipe could not be opened, read or written."""


def open_disk(path: str | os.PathLike[str], *, write: bool) -> Disk:
    """Open a file or block device for export or import (never creating or truncating it)."""
    return device.open_disk(path, write=write, error=BlockIOError)


def write_out(fd: int, *parts: BytesLike) -> int:
    """Write all ``parts`` to a stream fd (pipe, file, socket) in as few syscalls as possible."""
    views = [memoryview(p) for p in parts if len(p)]
    total = sum(len(v) for v in views)
    while views:
        try:
            n = os.writev(fd, views)
        except OSError as e:
            if e.errno == errno.EINTR:
                continue
            raise BlockIOError(f"cannot write the stream to fd {fd}: {e.strerror}") from None
        while n and views:
            if n >= len(views[0]):
                n -= len(views.pop(0))
            else:
                views[0] = views[0][n:]
                n = 0
    return total


# sendfile cannot join these fds (out_fd opened O_APPEND, a file system without splice, an
# old kernel): the caller writes the bytes itself
_NO_SENDFILE = (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP)


def send_range(out_fd: int, src_fd: int, offset: int, length: int) -> bool:
    """Copy ``length`` bytes at ``offset`` of ``src_fd`` to ``out_fd`` inside the kernel (sendfile).

    Into a pipe the page cache's pages are passed by reference: the bytes are
    neither copied into this process nor out of it.  Returns False, having
    sent nothing, when the kernel cannot sendfile between these two fds, or
    the disk has no fd (an RBD image: its bytes were read into the process).
    """
    if src_fd < 0:
        return False
    done = 0
    while done < length:
        try:
            n = os.sendfile(out_fd, src_fd, offset + done, length - done)
        except OSError as e:
            if e.errno == errno.EINTR:
                continue
            if done == 0 and e.errno in _NO_SENDFILE:
                return False
            raise BlockIOError(f"cannot send the disk's bytes at offset {offset + done} to fd {out_fd}: "
                              f"{e.strerror}") from None
        if n == 0:
            raise BlockIOError(f"the disk ended at offset {offset + done} while being sent: "
                               "was it resized during the export?")
        done += n
    return True
