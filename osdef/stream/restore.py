"""Import a stream from a file descriptor onto a disk (file or block device).

The input is auto-detected: our sparse stream, a zstd-compressed stream (or
compressed raw dump), or anything else as a raw byte dump (``dd`` compatible).
Every byte of the target ends up defined: data is written, holes and all-zero
blocks are zeroed cheaply (punched in files, BLKZEROOUT on block devices) and
the tail beyond the source is zeroed, so the result is byte-identical to the
source even on a target full of old data.

A loop device is written through its backing file where osdef.stream.loopmap
allows it (the same bytes, one page cache instead of two); its own cached
pages are dropped afterwards, on success and on failure alike.

On any failure the target's first and last MiB are zeroed (no partition
table, no backup GPT: the half-written disk can never boot or pass as good)
and a StreamError with one line is raised.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from dataclasses import dataclass

import zstandard

from osdef.errors import StreamError
from osdef.stream import format as fmt_
from osdef.stream import loopmap
from osdef.stream.blockio import ZEROS, MiB, Disk, advise_sequential, enlarge_pipe, is_zero, open_disk, \
    start_writeback, sync, write_at, write_out, zero_range
from osdef.stream.extents import nonzero_runs


@dataclass(frozen=True)
class ImportResult:
    """What an import did."""

    kind: str  # "stream" or "raw"
    compressed: bool
    source_size: int  # size of the exported disk (raw: bytes of the dump)
    target_size: int
    data_bytes: int  # bytes written as data
    zeroed_bytes: int  # bytes made zero without writing data (holes, zero blocks, tail)
    input_bytes: int  # bytes read from in_fd
    records: int  # data records (stream) or 0 (raw)
    metadata: dict

    def __str__(self) -> str:
        source = ("zstd-compressed " if self.compressed else "") + ("osdef stream" if self.kind == "stream"
                                                                    else "raw dump")
        return (f"{source} of a {self.source_size} byte disk: {self.data_bytes} bytes of data written, "
                f"{self.zeroed_bytes} bytes zeroed, {self.input_bytes} bytes read")


class _FdSource:
    """Reads an fd with a pushback buffer for auto-detection; counts bytes read."""

    def __init__(self, fd: int):
        self.fd = fd
        self.pending = b""
        self.count = 0

    def peek(self, n: int) -> bytes:
        while len(self.pending) < n:
            chunk = self._raw_read(n - len(self.pending))
            if not chunk:
                break
            self.pending += chunk
        return self.pending[:n]

    def _raw_read(self, n: int) -> bytes:
        try:
            data = os.read(self.fd, n)
        except OSError as e:
            raise StreamError(f"cannot read the import stream from fd {self.fd}: {e.strerror}") from None
        self.count += len(data)
        return data

    def readinto(self, view) -> int:
        view = memoryview(view).cast("B")
        if self.pending:
            n = min(len(view), len(self.pending))
            view[:n] = self.pending[:n]
            self.pending = self.pending[n:]
            return n
        try:
            n = os.readv(self.fd, [view])
        except OSError as e:
            raise StreamError(f"cannot read the import stream from fd {self.fd}: {e.strerror}") from None
        self.count += n
        return n

    def read(self, n: int = -1) -> bytes:
        if n < 0:
            n = MiB
        buf = bytearray(n)
        got = self.readinto(buf)
        return bytes(buf[:got])


class _Reader:
    """Exact reads into one reusable buffer, over an fd source or a decompressor."""

    def __init__(self, source, prefix: bytes = b""):
        self._source = source
        self._prefix = prefix
        self._buf = bytearray(MiB)

    def read_exact(self, n: int) -> memoryview:
        if n > len(self._buf):
            self._buf = bytearray(n)
        view = memoryview(self._buf)[:n]
        done = 0
        if self._prefix:
            k = min(n, len(self._prefix))
            view[:k] = self._prefix[:k]
            self._prefix = self._prefix[k:]
            done = k
        while done < n:
            try:
                got = self._source.readinto(view[done:])
            except zstandard.ZstdError as e:
                raise fmt_.FormatError(f"zstd-compressed import stream is corrupt or truncated ({e})") from None
            if not got:
                break
            done += got
        return view[:done]

    def peek_prefix(self, n: int) -> bytes:
        data = bytes(self.read_exact(n))
        self._prefix = data + self._prefix
        return data


SMALL_GAP = 64 * 1024  # on block devices, gaps below this are written as zeros (cheaper than an ioctl each)
WRITEBACK_WINDOW = 8 * MiB  # start the write-out of written data every this many bytes of disk


class _Target:
    """Writes data and zeroes gaps on the target, tracking what was done."""

    def __init__(self, disk: Disk):
        self.disk = disk
        self.end = 0  # everything before this offset is defined
        self.data_bytes = 0
        self.zeroed_bytes = 0
        self._flushed_to = 0  # write-out of everything before this offset has been started

    def write(self, offset: int, data) -> None:
        self.zero_until(offset)
        write_at(self.disk, data, offset)
        self.data_bytes += len(data)
        self.end = offset + len(data)
        if self.end - self._flushed_to >= WRITEBACK_WINDOW:
            start_writeback(self.disk, self._flushed_to, self.end - self._flushed_to)
            self._flushed_to = self.end

    def zero_until(self, offset: int) -> None:
        gap = offset - self.end
        if gap <= 0:
            return
        if self.disk.is_block and gap < SMALL_GAP:
            write_at(self.disk, ZEROS[:gap], self.end)
        else:
            zero_range(self.disk, self.end, gap)
        self.zeroed_bytes += gap
        self.end = offset


def _too_small(disk: Disk, source_size: int) -> StreamError:
    return StreamError(f"target {disk.path} has {disk.size} bytes but the exported disk has {source_size}: "
                       "create the instance disk at least as large as the exported one")


def _import_stream(reader: _Reader, target: _Target, size_fd: int | None, compressed: bool):
    header = fmt_.decode_header(reader.read_exact)
    if header.disk_size > target.disk.size:
        raise _too_small(target.disk, header.disk_size)
    if size_fd is not None and header.stream_length and not compressed:
        write_out(size_fd, b"%d\n" % header.stream_length)
    decoder = fmt_.Decoder(header, reader.read_exact)
    for record in decoder.records():
        target.write(record.offset, record.data)
    if reader.read_exact(1):
        raise fmt_.FormatError(f"unexpected data after the stream trailer at byte {decoder.position}: "
                               "the stream is corrupt")
    return header.disk_size, decoder.trailer.record_count, header.metadata


def _import_raw(reader: _Reader, target: _Target) -> int:
    offset = 0
    while True:
        data = reader.read_exact(MiB)
        if not data:
            break
        if offset + len(data) > target.disk.size:
            raise StreamError(f"raw import data is larger than target {target.disk.path} ({target.disk.size} "
                              "bytes): create the instance disk at least as large as the exported one")
        if not is_zero(data):
            for start, end in nonzero_runs(data, offset):
                target.write(offset + start, data[start:end])
        offset += len(data)
    return offset


class _Interrupted(StreamError):
    """The import was stopped by a signal (Ganeti aborting the transfer, an admin's ^C)."""


def _on_signal(signum, _frame):
    raise _Interrupted(f"import interrupted by signal {signal.Signals(signum).name}")


@contextlib.contextmanager
def _signals_raise():
    """Turn SIGTERM/SIGINT into an exception while importing, so the target still gets wiped."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = {sig: signal.signal(sig, _on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)


def import_disk(in_fd: int, device: str | os.PathLike, *, size_fd: int | None = None) -> ImportResult:
    """Restore the stream read from ``in_fd`` onto ``device``; see the module docstring."""
    disk = open_disk(device, write=True)
    target = disk
    try:
        target = _backing_target(disk)
        with _signals_raise():
            return _import(in_fd, target, size_fd)
    except (StreamError, OSError) as e:
        message = str(e) if isinstance(e, StreamError) else f"import onto {disk.path} failed: {e}"
        _wipe(target)
        raise StreamError(f"{message} (the first and last MiB of {disk.path} were zeroed)") from None
    finally:
        if target is not disk:
            target.close()
            _drop_device_cache(disk)
        disk.close()


def _backing_target(disk: Disk) -> Disk:
    """The loop device's backing file as the disk to write, where loopmap allows it; else ``disk``."""
    if not disk.is_block:
        return disk
    backing = loopmap.open_backing(disk.fd, disk.size, write=True)  # None unless a loop device
    if backing is None:
        return disk
    return Disk(disk.path, backing[0], disk.size, False)


def _drop_device_cache(disk: Disk) -> None:
    try:
        loopmap.drop_device_cache(disk.fd)
    except OSError as e:
        raise StreamError(f"cannot drop the cached pages of {disk.path} after the import: {e.strerror}; "
                          f"run `blockdev --flushbufs {disk.path}` before using it") from None


def _import(in_fd: int, disk: Disk, size_fd: int | None) -> ImportResult:
    enlarge_pipe(in_fd)
    advise_sequential(in_fd)  # a stream read from a file: deeper read-ahead (a pipe: no-op)
    source = _FdSource(in_fd)
    prefix = source.peek(fmt_.DETECT_BYTES)
    if not prefix:
        raise StreamError("the import stream is empty: the export produced nothing")
    kind = fmt_.detect(prefix)
    compressed = kind == "zstd"
    if compressed:
        dctx = zstandard.ZstdDecompressor()
        reader = _Reader(dctx.stream_reader(source, read_size=MiB, read_across_frames=True))
        inner = reader.peek_prefix(fmt_.DETECT_BYTES)
        if not inner:
            raise StreamError("the zstd-compressed import stream is empty")
        kind = fmt_.detect(inner)
    else:
        reader = _Reader(source)
    if kind not in ("stream", "raw", "zstd"):
        raise fmt_.FormatError(f"the import stream is a {kind}, not an osdef stream or a raw disk dump: "
                               "convert it to a raw disk first (e.g. qemu-img convert -O raw)")
    if kind == "zstd":
        raise fmt_.FormatError("the import stream is compressed twice with zstd: decompress it once first")
    target = _Target(disk)
    records = 0
    metadata: dict = {}
    if kind == "stream":
        source_size, records, metadata = _import_stream(reader, target, size_fd, compressed)
    else:
        source_size = _import_raw(reader, target)
    target.zero_until(disk.size)
    sync(disk)
    return ImportResult(kind, compressed, source_size, disk.size, target.data_bytes, target.zeroed_bytes,
                        source.count, records, metadata)


def _wipe(disk: Disk) -> None:
    """Zero the first and last MiB of the target (best effort: the import already failed)."""
    try:
        zero_range(disk, 0, min(MiB, disk.size))
        zero_range(disk, max(0, disk.size - MiB), min(MiB, disk.size))
        sync(disk)
    except (StreamError, OSError):
        pass
