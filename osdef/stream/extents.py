"""Finding the data of a disk: which byte ranges hold anything but zeros.

Where the data may be is the disk's allocation map (osdef.disk.filemap: a
file's SEEK_DATA extents, a loop device's backing file, an RBD image's
diff_iterate; none for other block devices, which are read whole).  This
module only asks it: "is there a map?", "its ranges", "read them where?".

Two ways to stream, each able to announce its exact size first (EXP_SIZE_FD):

* with an allocation map, ``extent_spans``: the map's extents cut at 8 MiB,
  sent as they are (allocated zero blocks included); ``ExtentPlan`` counts
  them from the map alone, so the data is read once;
* ``data_pieces``: the ranges cut into *pieces* at 1 MiB-aligned chunk
  boundaries, and within each piece only the runs of 4 KiB blocks holding
  non-zero bytes are sent.  That drops allocated-but-zero blocks, and keeps a
  few scattered metadata blocks on a block device from costing a whole MiB
  each.  Its exact size needs a ``Scan``: a pre-pass that remembers, one bit
  per chunk, which chunks hold non-zero data (1 bit per MiB of disk, 1.25 MiB
  for 10 TiB); the streaming pass never re-reads chunks the scan found empty
  (a block device is read fully only once).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import NamedTuple

from osdef.disk.device import Disk, drop_cache, read_at
from osdef.disk.filemap import Range, filemap
from osdef.disk.units import MiB
from osdef.disk.zeroing import is_zero
from osdef.stream.blockio import BlockIOError

CHUNK = MiB  # unit of zero detection and of the scan's bitmap
BLOCK = 4096  # unit of the runs that are sent
READ_SIZE = 8 * MiB  # unit of reading: 8 MiB reads stream a block device faster than 1 MiB ones


def data_ranges(disk: Disk) -> Iterator[tuple[int, int]]:
    """(offset, length) of the ranges that may hold data, in order: the map, or the whole disk."""
    with filemap(disk) as found:
        yield from found.ranges()


def _cut(ranges: Iterable[Range], unit: int) -> Iterator[tuple[int, int]]:
    """Cut ranges at ``unit``-aligned boundaries."""
    for offset, length in ranges:
        end = offset + length
        while offset < end:
            stop = min(end, (offset // unit + 1) * unit)
            yield offset, stop - offset
            offset = stop


def read_spans(ranges: Iterable[Range]) -> Iterator[tuple[int, int]]:
    """Cut ranges at READ_SIZE-aligned boundaries: every span fits the read buffer."""
    return _cut(ranges, READ_SIZE)


@dataclass
class ExtentPlan:
    """What an extent-exact sparse stream will hold: one record per span of the allocation map.

    Zero blocks inside allocated extents are sent as they are, so the size is
    known from the map alone (~1 ms) and the disk is read once.
    """

    records: int = 0
    data_bytes: int = 0


def intersect(a: Iterable[Range], b: Iterable[Range]) -> Iterator[Range]:
    """(offset, length) of the bytes in both ``a`` and ``b`` (each ordered and non-overlapping)."""
    it = iter(b)
    cur = next(it, None)
    for offset, length in a:
        end = offset + length
        while cur is not None and cur[0] + cur[1] <= offset:
            cur = next(it, None)
        while cur is not None and cur[0] < end:
            lo, hi = max(offset, cur[0]), min(end, cur[0] + cur[1])
            if lo < hi:
                yield lo, hi - lo
            if cur[0] + cur[1] <= end:
                cur = next(it, None)
            else:
                break


def _kept(ranges: Iterable[Range], keep: Iterable[Range] | None) -> Iterable[Range]:
    return ranges if keep is None else intersect(ranges, keep)


def plan_extents(disk: Disk, keep: Iterable[Range] | None = None) -> ExtentPlan | None:
    """Count the records and bytes of an extent-exact stream; None if the disk has no map.

    ``keep`` (ordered ranges) limits the stream to those bytes of the map.
    """
    with filemap(disk) as found:
        if not found.mapped:
            return None
        plan = ExtentPlan()
        for _, length in read_spans(_kept(found.ranges(), keep)):
            plan.records += 1
            plan.data_bytes += length
    return plan


class Span(NamedTuple):
    """One span of the disk as read: ``data`` is the disk's bytes at ``offset``, which lie at ``at`` of ``fd``."""

    offset: int
    data: memoryview
    fd: int  # the disk, or a loop device's backing file
    at: int


def extent_spans(disk: Disk, buf: bytearray, keep: Iterable[Range] | None = None) -> Iterator[Span]:
    """Yield a Span for every span of the allocation map, in order.

    The spans are read where the map says (a loop device's from its backing
    file: the same bytes, without the loop driver and a second page cache).
    Reads run one span ahead on a helper thread (preadv releases the GIL), so
    the disk is read while the caller checksums and sends the previous span.
    ``buf`` holds two READ_SIZE halves, used in turn: each yielded view is
    valid until the next one; the span's ``fd`` is open until the generator
    ends.  ``keep`` limits the spans as in plan_extents.
    """
    with filemap(disk) as found:
        if not found.mapped:
            raise BlockIOError(f"{disk.path} lost its allocation map during the export")
        mapped: Iterable[Range] = found.ranges()
        if keep is not None:
            # listed before the first read: on ext4 a read (or its readahead) over an unwritten extent puts
            # pages in the cache that SEEK_DATA then reports as data, and the spans must be the ones counted
            mapped = list(_kept(mapped, keep))
        yield from _read_ahead(found.source, found.shift, mapped, buf)


def range_spans(disk: Disk, buf: bytearray, ranges: Iterable[Range]) -> Iterator[Span]:
    """A Span for every READ_SIZE cut of ``ranges``, read from the disk itself (read ahead as extent_spans)."""
    return _read_ahead(disk, 0, ranges, buf)


def _read_ahead(source: Disk, shift: int, mapped: Iterable[Range], buf: bytearray) -> Iterator[Span]:
    halves = (memoryview(buf)[:READ_SIZE], memoryview(buf)[READ_SIZE:2 * READ_SIZE])
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="osdef-read") as reader:
        pending: tuple[Future[None], Span] | None = None
        for i, (offset, length) in enumerate(read_spans(mapped)):
            view = halves[i % 2][:length]
            reading = reader.submit(read_at, source, view, shift + offset)
            if pending is not None:
                pending[0].result()
                yield pending[1]
            pending = (reading, Span(offset, view, source.fd, shift + offset))
        if pending is not None:
            pending[0].result()
            yield pending[1]


def pieces(ranges: Iterable[Range]) -> Iterator[tuple[int, int]]:
    """Cut ranges at CHUNK-aligned boundaries: every piece lies within one chunk."""
    return _cut(ranges, CHUNK)


@dataclass
class Scan:
    """Result of the pre-pass: which chunks hold data and how much would be sent."""

    disk_size: int
    chunks: bytearray = field(repr=False)
    records: int = 0
    data_bytes: int = 0
    bytes_read: int = 0

    def has_data(self, chunk: int) -> bool:
        return bool(self.chunks[chunk >> 3] & (1 << (chunk & 7)))

    def mark(self, chunk: int) -> None:
        self.chunks[chunk >> 3] |= 1 << (chunk & 7)


def new_scan(disk: Disk) -> Scan:
    chunk_count = -(-disk.size // CHUNK)
    return Scan(disk.size, bytearray(-(-chunk_count // 8)))


def nonzero_runs(view: memoryview, offset: int) -> Iterator[tuple[int, int]]:
    """(start, end) within ``view`` (disk data at ``offset``) of maximal runs of non-zero blocks.

    Blocks are BLOCK bytes aligned on disk offsets; a run's ends may be
    unaligned only where ``view`` itself is.
    """
    size = len(view)
    pos = 0
    run = -1
    while pos < size:
        stop = min(size, (offset + pos) // BLOCK * BLOCK + BLOCK - offset)
        if is_zero(view[pos:stop]):
            if run >= 0:
                yield run, pos
                run = -1
        elif run < 0:
            run = pos
        pos = stop
    if run >= 0:
        yield run, size


def spans(disk: Disk, scan: Scan | None = None, ranges: Iterable[Range] | None = None) -> Iterator[Range]:
    """(offset, length) of the reads to do: data ranges cut at READ_SIZE boundaries.

    With a ``scan``, chunks it found empty are left out (never read again).
    ``ranges`` (ordered) replaces the disk's data ranges.
    """
    for offset, length in (data_ranges(disk) if ranges is None else ranges):
        end = offset + length
        pos = offset
        while pos < end:
            chunk_end = min(end, (pos // CHUNK + 1) * CHUNK)
            if scan is not None and not scan.has_data(pos // CHUNK):
                pos = chunk_end
                continue
            stop = min(end, (pos // READ_SIZE + 1) * READ_SIZE)
            if scan is not None:
                cut = chunk_end
                while cut < stop and scan.has_data(cut // CHUNK):
                    cut = min(stop, cut + CHUNK)
                stop = cut
            yield pos, stop - pos
            pos = stop


def data_pieces(disk: Disk, buf: bytearray, scan: Scan | None = None,
                on_read: Callable[[int], None] | None = None,
                ranges: Iterable[Range] | None = None) -> Iterator[tuple[int, memoryview]]:
    """Yield (offset, data) for every run of non-zero blocks of the disk, in order.

    ``buf`` (READ_SIZE bytes) is reused: each yielded view is valid until the next.
    With a ``scan``, chunks it found empty are not read at all.
    ``on_read(n)`` is called for every read (for statistics).  ``ranges`` as in spans.
    """
    view = memoryview(buf)
    for span_offset, span_length in spans(disk, scan, ranges):
        read_at(disk, view[:span_length], span_offset)
        if on_read is not None:
            on_read(span_length)
        for offset, length in pieces([(span_offset, span_length)]):
            part = view[offset - span_offset:offset - span_offset + length]
            if not is_zero(part):
                for start, end in nonzero_runs(part, offset):
                    yield offset + start, part[start:end]
            elif disk.is_block:
                drop_cache(disk.fd, offset, length)  # a full-device read must not evict the node's page cache


def scan_disk(disk: Disk, buf: bytearray, sample: Callable[[memoryview], None] | None = None,
              ranges: Iterable[Range] | None = None) -> Scan:
    """Pre-pass over the disk: count the records and data bytes a sparse stream will hold.

    ``sample(data)`` is called on every non-zero piece (used to estimate compression).
    ``ranges`` (ordered) limits the pass to those bytes.
    """
    scan = new_scan(disk)

    def count(n: int) -> None:
        scan.bytes_read += n

    for offset, data in data_pieces(disk, buf, on_read=count, ranges=ranges):
        scan.mark(offset // CHUNK)
        scan.records += 1
        scan.data_bytes += len(data)
        if sample is not None:
            sample(data)
    return scan
