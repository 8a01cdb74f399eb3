"""Export one disk (file or block device, opened read-only) as a stream on a file descriptor.

Formats: ``sparse`` (the self-describing stream of osdef.stream.format) or
``raw`` (a byte-exact dump, what ``dd`` would produce). Compression: ``none`` or
``zstd`` (multi-threaded, one frame).

With a ``size_fd`` the exporter first writes the number of bytes it will put
on ``out_fd`` — exact for uncompressed output, an estimate for zstd.  A disk
with an allocation map (a file, a loop device) is then streamed extent by
extent, its size counted from the map (osdef.stream.extents.ExtentPlan, one
read of the data); any other disk, and zstd output, needs a pre-scan of the
data (osdef.stream.extents.Scan).  Without a ``size_fd`` nothing is announced
and all-zero blocks are dropped even inside allocated extents.

Uncompressed output takes each record's data by sendfile from the disk's page
cache, where the read that checksummed it left it (blockio.send_range): the
data is copied once (the read) instead of twice; a raw dump is sent without
being read into the process at all.  The bytes sent are therefore
the disk's bytes at send time — the same ones for a stopped instance or a
snapshot, the only disks Ganeti exports; were a disk written to during an
export, a changed record fails its CRC on import instead of importing silently.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import zstandard

from osdef import __version__
from osdef.errors import StreamError
from osdef.stream import format as fmt_
from osdef.disk.device import Disk, advise_sequential, read_at
from osdef.disk.filemap import Range
from osdef.disk.handle import BytesLike
from osdef.disk.pipes import enlarge_pipe
from osdef.disk.units import MiB
from osdef.stream.blockio import open_disk, send_range, write_out
from osdef.stream.content import BLOCK, USED, ContentPlan, header_record, plan_content
from osdef.stream.extents import (READ_SIZE, Scan, data_pieces, data_ranges, extent_spans, intersect, plan_extents,
                                  range_spans, read_spans, scan_disk)

log = logging.getLogger(__name__)

FORMATS = ("sparse", "raw")
COMPRESSIONS = ("none", "zstd")
CONTENTS = ("used", "allocated")
ZSTD_LEVEL = 3
# Each zstd worker costs ~12 MiB (measured: 1 → 60 MiB peak RSS, 2 → 75, 4 → 98, 8 → 146), so two
# workers keep an export under the 100 MiB bound; Ganeti runs one export per disk in parallel anyway.
ZSTD_THREADS = min(2, os.cpu_count() or 1)
SAMPLE_BYTES = 64 * 1024  # zstd size estimate: compress the first 64 KiB of every data piece during the scan
ZERO_MIB_COMPRESSED = 64  # what zstd makes of 1 MiB of zeros (a few dozen bytes)


class _Output:
    """Where the stream goes: writes whole byte pieces to an fd and counts them."""

    def __init__(self, fd: int):
        self.fd = fd
        self.written = 0
        self._sendfile = True

    def write(self, *parts: BytesLike) -> None:
        self.written += write_out(self.fd, *parts)

    def send(self, src_fd: int, offset: int, length: int) -> bool:
        """Send ``length`` bytes of ``src_fd`` at ``offset`` by sendfile; False if the caller must write them."""
        if self._sendfile and send_range(self.fd, src_fd, offset, length):
            self.written += length
            return True
        self._sendfile = False
        return False

    def record(self, head: bytes, data: memoryview, src_fd: int, offset: int) -> None:
        """Write a record: its header, then its data (``data``, also at ``offset`` of ``src_fd``)."""
        self.write(head)
        if not self.send(src_fd, offset, len(data)):
            self.write(data)

    def close(self) -> None:
        pass


class _Sink:
    """File-like adapter for zstandard's stream_writer."""

    def __init__(self, write: Callable[[BytesLike], int]) -> None:
        self.write = write

    def flush(self) -> None:
        pass


class _ZstdOutput(_Output):
    """The same, through a multi-threaded zstd compressor (one frame)."""

    def __init__(self, fd: int, level: int, threads: int):
        super().__init__(fd)
        cctx = zstandard.ZstdCompressor(level=level, threads=threads, write_checksum=True)
        # _Sink is the writer's file object as far as stream_writer goes: it calls write() and flush() only
        self._zw = cctx.stream_writer(_Sink(self._sink_write),  # type: ignore[arg-type]  # (its stub: IO[bytes])
                                      closefd=False, write_size=MiB)

    def write(self, *parts: BytesLike) -> None:
        for p in parts:
            self._zw.write(p)

    def send(self, src_fd: int, offset: int, length: int) -> bool:
        return False  # the compressor needs the bytes

    def close(self) -> None:
        self._zw.close()  # flushes the end of the frame through _sink_write

    def _sink_write(self, data: BytesLike) -> int:
        n = write_out(self.fd, data)
        self.written += n
        return n


@dataclass
class _Estimate:
    """Compression ratio measured on a sample of the data."""

    level: int
    raw: int = 0
    packed: int = 0

    def __post_init__(self) -> None:
        self._cctx = zstandard.ZstdCompressor(level=self.level)

    def sample(self, data: memoryview) -> None:
        part = data[:SAMPLE_BYTES]
        self.raw += len(part)
        self.packed += len(self._cctx.compress(part))

    def size(self, data_bytes: int, zero_bytes: int, overhead: int) -> int:
        ratio = self.packed / self.raw if self.raw else 1.0
        return overhead + int(data_bytes * ratio) + zero_bytes // MiB * ZERO_MIB_COMPRESSED + 64


def _check_options(fmt: str, compression: str, content: str = "used") -> None:
    if content not in CONTENTS:
        raise StreamError(f"export content {content!r} is not supported: use one of {', '.join(CONTENTS)}")
    if fmt not in FORMATS:
        raise StreamError(f"export format {fmt!r} is not supported: use one of {', '.join(FORMATS)}")
    if compression not in COMPRESSIONS:
        raise StreamError(f"export compression {compression!r} is not supported: use one of "
                          f"{', '.join(COMPRESSIONS)}")


def _announce(size_fd: int, size: int) -> None:
    try:
        write_out(size_fd, b"%d\n" % size)
    except StreamError:
        raise StreamError(f"cannot write the expected export size to fd {size_fd} (EXP_SIZE_FD)") from None


def _write_sparse(disk: Disk, out: _Output, buf: bytearray, metadata: fmt_.Metadata, scan: Scan | None,
                  ranges: Iterable[Range] | None = None) -> None:
    length = fmt_.stream_length(metadata, scan.records, scan.data_bytes) if scan else 0
    enc = fmt_.Encoder(disk.size, metadata, length)
    out.write(enc.header)
    for offset, data in data_pieces(disk, buf, scan, ranges=ranges):
        out.record(enc.record(offset, data), data, disk.fd, offset)
    out.write(enc.trailer())


def _write_extents(disk: Disk, out: _Output, buf: bytearray, metadata: fmt_.Metadata, length: int,
                   keep: Iterable[Range] | None = None) -> None:
    enc = fmt_.Encoder(disk.size, metadata, length)
    out.write(enc.header)
    for span in extent_spans(disk, buf, keep):
        out.record(enc.record(span.offset, span.data), span.data, span.fd, span.at)
    out.write(enc.trailer())


def _content_size(disk: Disk, buf: bytearray, plan: ContentPlan, meta: fmt_.Metadata) -> tuple[Scan, int]:
    """Exact length of a content stream: used segments from the map, block-level ones from a scan of them only."""
    scan = scan_disk(disk, buf, ranges=plan.ranges(BLOCK))
    records, data_bytes = scan.records, scan.data_bytes
    for _, length in read_spans(plan.ranges(USED)):
        records += 1
        data_bytes += length
    return scan, fmt_.stream_length(meta, records, data_bytes)


def _write_content(disk: Disk, out: _Output, buf: bytearray, metadata: fmt_.Metadata, length: int, plan: ContentPlan,
                   scan: Scan | None) -> None:
    """Used segments as they are (read once, read ahead), block-level ones as the scan found them, in order."""
    enc = fmt_.Encoder(disk.size, metadata, length)
    out.write(enc.header)
    i = 0
    segments = plan.segments
    while i < len(segments):
        mode = segments[i].mode
        j = i
        while j < len(segments) and segments[j].mode == mode:
            j += 1
        ranges = [(s.offset, s.length) for s in segments[i:j]]
        if mode == USED:
            for span in range_spans(disk, buf, ranges):
                out.record(enc.record(span.offset, span.data), span.data, span.fd, span.at)
        else:
            for offset, data in data_pieces(disk, buf, scan, ranges=ranges):
                out.record(enc.record(offset, data), data, disk.fd, offset)
        i = j
    out.write(enc.trailer())


def _write_raw(disk: Disk, out: _Output, buf: bytearray) -> None:
    view = memoryview(buf)
    offset = 0
    while offset < disk.size:
        part = view[:min(len(view), disk.size - offset)]
        if not out.send(disk.fd, offset, len(part)):
            read_at(disk, part, offset)
            out.write(part)
        offset += len(part)


def _plan(disk: Disk, buf: bytearray, fmt: str, compression: str, meta: fmt_.Metadata,
          level: int, ranges: Iterable[Range] | None = None) -> tuple[Scan | None, int]:
    """Pre-scan where needed; return (scan, bytes the export will write: exact, or estimated for zstd)."""
    estimate = _Estimate(level) if compression == "zstd" else None
    if fmt == "raw" and estimate is None:  # the disk's size: nothing to scan
        return None, disk.size
    scan = scan_disk(disk, buf, estimate.sample if estimate else None, ranges if fmt == "sparse" else None)
    if fmt == "raw":
        expected = disk.size
        if estimate is not None:
            expected = estimate.size(scan.data_bytes, disk.size - scan.data_bytes, 0)
        return scan, expected
    expected = fmt_.stream_length(meta, scan.records, scan.data_bytes)
    if estimate is not None:
        expected = estimate.size(scan.data_bytes, 0, expected - scan.data_bytes)
    return scan, expected


def export_disk(device: str | os.PathLike[str], out_fd: int, *, size_fd: int | None = None,
                fmt: str = "sparse", compression: str = "none", metadata: fmt_.Metadata | None = None,
                zstd_level: int = ZSTD_LEVEL, zstd_threads: int = ZSTD_THREADS, content: str = "used",
                warn: Callable[[str], None] | None = None) -> int:
    """Write ``device`` to ``out_fd`` as a stream; return the number of bytes written.

    If ``size_fd`` is given, "<bytes>\\n" is written there before the first
    byte of the stream (exact without compression, an estimate with zstd).
    The device is opened read-only and never modified.  ``content="used"``
    (sparse format only) sends what the disk's filesystems use
    (osdef.stream.content); ``warn(line)`` hears of partitions sent at block level.
    """
    _check_options(fmt, compression, content)
    meta: fmt_.Metadata = {"tool": f"osdef {__version__}", "format": fmt}
    meta.update(metadata or {})
    try:
        return _export(device, out_fd, size_fd, fmt, compression, meta, zstd_level, zstd_threads,
                       content, warn or log.warning)
    except (OSError, zstandard.ZstdError) as e:
        raise StreamError(f"export of {os.fspath(device)} failed: {getattr(e, 'strerror', None) or e}") from None


def _export(device: str | os.PathLike[str], out_fd: int, size_fd: int | None, fmt: str, compression: str,
            meta: fmt_.Metadata, zstd_level: int, zstd_threads: int, content: str,
            warn: Callable[[str], None]) -> int:
    with open_disk(device, write=False) as disk:
        advise_sequential(disk.fd)
        enlarge_pipe(out_fd)
        scan = expected = extent_plan = None
        plan = None
        if content == "used" and fmt == "sparse":
            # the metadata reads go through an fd of their own: scattered reads on the data fd would
            # shrink its read-ahead window, and the data is read with a cold cache afterwards
            with open_disk(device, write=False) as meta_disk:
                plan = plan_content(meta_disk, warn)
            meta["content_plan"] = header_record(plan)  # a stored export says what it holds
        keep = plan.ranges() if plan is not None else None
        exact = size_fd is not None and fmt == "sparse" and compression == "none"
        if exact:
            extent_plan = plan_extents(disk, keep)
        content_plan = plan if exact and extent_plan is None else None  # the content path: exact, no map
        # only the single-pass and pre-scan paths walk these; the two exact paths have their own plan
        sparse_ranges = None
        if keep is not None and extent_plan is None and content_plan is None:
            sparse_ranges = list(intersect(data_ranges(disk), keep))
        # the extent and content paths read ahead into two halves; the others use one READ_SIZE buffer
        buf = bytearray(2 * READ_SIZE if extent_plan is not None or content_plan is not None else READ_SIZE)
        if size_fd is not None:  # (the extent and content paths are exact ones: they have a size_fd)
            if extent_plan is not None:
                expected = fmt_.stream_length(meta, extent_plan.records, extent_plan.data_bytes)
            elif content_plan is not None:
                scan, expected = _content_size(disk, buf, content_plan, meta)
            else:
                scan, expected = _plan(disk, buf, fmt, compression, meta, zstd_level, sparse_ranges)
            _announce(size_fd, expected)
        out = _ZstdOutput(out_fd, zstd_level, zstd_threads) if compression == "zstd" else _Output(out_fd)
        if extent_plan is not None:
            assert expected is not None  # announced above
            _write_extents(disk, out, buf, meta, expected, keep)
        elif content_plan is not None:
            assert expected is not None  # announced above
            _write_content(disk, out, buf, meta, expected, content_plan, scan)
        elif fmt == "sparse":
            _write_sparse(disk, out, buf, meta, scan, sparse_ranges)
        else:
            _write_raw(disk, out, buf)
        out.close()
    if size_fd is not None and compression == "none" and out.written != expected:
        log.warning("export wrote %d bytes but announced %d: %s changed during the export",
                    out.written, expected, device)
    return out.written
