"""A disk's allocation map: which ranges may hold data, and where to read them (bmaptool's Filemap).

``filemap(disk)`` picks the map of the kind of disk and runs its checks; the
map lists the ranges that may hold data (``ranges``: ordered, disjoint,
inside the disk; the rest reads as zeros) and says where their bytes are
read from (``source``, at ``offset + shift``).  One class per kind:

* ``FileMap``, a regular file: SEEK_DATA/SEEK_HOLE (about 1 ms);
* ``LoopMap``, a loop device (what osdef's ``loopfile`` volumes and their
  snapshots are): the extents of its backing file, shifted by the loop
  offset and clipped to the device, the file checked to be the inode the
  driver holds and the device flushed first (osdef.disk.loop.open_backing);
  the bytes are read from the file: one page cache instead of two;
* ``RbdMap``, an RBD image (osdef.disk.rbd): librbd's ``diff_iterate``, per
  RADOS object from its start to its highest written byte;
* ``NoMap``, every other block device (DRBD, LVM, a partition of a loop
  device, a loop device whose file does not check out) and a file on a
  filesystem without SEEK_DATA: no map; its one range is the whole disk,
  which the caller reads (and may scan for zeros).

Each ``filemap`` call takes the map anew (a loop device is flushed again), and
``ranges`` lists it lazily (a fragmented file can have many extents).  A map
may hold an fd (a loop device's backing file): close it, or use it as a
context manager.  Failures raise the disk's typed error (``Disk.error``), one
line naming the disk.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterable, Iterator

from osdef.disk import loop
from osdef.disk.device import Disk

Range = tuple[int, int]  # (offset, length) in bytes


def seek_extents(fd: int, start: int, end: int) -> Iterator[Range]:
    """(offset, length) of the data extents of a regular file within [start, end), by SEEK_DATA/SEEK_HOLE.

    Raises OSError where the filesystem cannot answer (EINVAL, EOPNOTSUPP).
    """
    pos = start
    while pos < end:
        try:
            data = os.lseek(fd, pos, os.SEEK_DATA)
        except OSError as e:
            if e.errno == errno.ENXIO:  # only a hole is left
                return
            raise
        if data >= end:
            return
        stop = min(os.lseek(fd, data, os.SEEK_HOLE), end)
        yield data, stop - data
        pos = stop


def shifted(extents: Iterable[Range], offset: int, size: int) -> Iterator[Range]:
    """A backing file's extents as a device's ranges: minus the device's ``offset`` in the file, clipped to
    [0, size)."""
    for start, length in extents:
        lo = max(start - offset, 0)
        hi = min(start + length - offset, size)
        if hi > lo:
            yield lo, hi - lo


def joined(spans: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    """[start, end) spans sorted, empty ones dropped, overlapping and adjacent ones joined."""
    ordered = sorted(s for s in spans if s[0] < s[1])
    if not ordered:
        return []
    out: list[tuple[int, int]] = []
    start, end = ordered[0]
    for a, b in ordered:
        if a <= end:
            if b > end:
                end = b
        else:
            out.append((start, end))
            start, end = a, b
    out.append((start, end))
    return out


def merged(extents: Iterable[Range]) -> list[Range]:
    """The (offset, length) extents sorted, empty ones dropped, overlapping and adjacent ones joined."""
    return [(a, b - a) for a, b in joined((offset, offset + length) for offset, length in extents)]


class Filemap:
    """A disk's allocation map: what every kind says (``kind``, ``mapped``, ``ranges``, where to read)."""

    kind = ""
    mapped = True  # False: no map, ``ranges`` is the whole disk

    def __init__(self, disk: Disk, source: Disk | None = None, shift: int = 0):
        self.disk = disk
        self.source = disk if source is None else source  # holds the bytes of ``disk``…
        self.shift = shift  # …at offset + shift

    def ranges(self) -> Iterator[Range]:
        """(offset, length) on the disk of the ranges that may hold data: ordered, disjoint, non-empty."""
        raise NotImplementedError

    def _listed(self, extents: Iterator[Range]) -> Iterator[Range]:
        """``extents``, with a failure to list them as the disk's one-line error."""
        try:
            yield from extents
        except OSError as e:
            raise self.disk.error(f"cannot list the data extents of {self.disk.path}: "
                                  f"{e.strerror or e}") from None

    def close(self) -> None:
        """Release what the map holds (nothing but a loop device's backing file)."""

    def __enter__(self) -> Filemap:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class NoMap(Filemap):
    """No allocation map (a block device other than a checked loop device): the whole disk may hold data."""

    kind = "none"
    mapped = False

    def ranges(self) -> Iterator[Range]:
        if self.disk.size:
            yield 0, self.disk.size


class FileMap(Filemap):
    """A regular file: its data extents by SEEK_DATA/SEEK_HOLE."""

    kind = "file"

    @classmethod
    def of(cls, disk: Disk) -> FileMap | None:
        """The map of a regular file, or None where its filesystem has no SEEK_DATA (EINVAL, EOPNOTSUPP)."""
        try:
            os.lseek(disk.fd, 0, os.SEEK_DATA)
        except OSError as e:
            if e.errno in (errno.EINVAL, errno.EOPNOTSUPP):
                return None
            if e.errno != errno.ENXIO:  # ENXIO: no data at all, an empty map
                raise disk.error(f"cannot list the data extents of {disk.path}: {e.strerror}") from None
        return cls(disk)

    def ranges(self) -> Iterator[Range]:
        return self._listed(seek_extents(self.disk.fd, 0, self.disk.size))


class LoopMap(Filemap):
    """A loop device: its backing file's data extents, shifted by the loop offset; read from the file."""

    kind = "loop"

    @classmethod
    def of(cls, disk: Disk) -> LoopMap | None:
        """The map of a whole, bound loop device whose backing file checks out (flushed first), else None."""
        backing = loop.open_backing(disk.fd, disk.size)
        if backing is None:
            return None
        fd, offset = backing
        return cls(disk, Disk(disk.path, fd, offset + disk.size, False, error=disk.error), offset)

    def ranges(self) -> Iterator[Range]:
        extents = seek_extents(self.source.fd, self.shift, self.shift + self.disk.size)
        return self._listed(shifted(extents, self.shift, self.disk.size))

    def close(self) -> None:
        self.source.close()


class RbdMap(Filemap):
    """An RBD image: the extents librbd's diff_iterate reports written, joined (object-granular)."""

    kind = "rbd"

    def ranges(self) -> Iterator[Range]:
        return self._listed(self._written())

    def _written(self) -> Iterator[Range]:
        found: list[Range] = []

        def seen(offset: int, length: int, exists: bool) -> int:
            if exists:
                found.append((offset, length))
            return 0

        self.disk.volume.diff_iterate(seen)  # type: ignore[union-attr]
        yield from merged(found)


def filemap(disk: Disk) -> Filemap:
    """The allocation map of an open disk: its kind's, or ``NoMap`` where the disk has none."""
    if disk.volume is not None:
        return RbdMap(disk)
    found = LoopMap.of(disk) if disk.is_block else FileMap.of(disk)
    return NoMap(disk) if found is None else found
