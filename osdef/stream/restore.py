"""Import a stream from a file descriptor onto a disk (file or block device).

The input is classified by osdef.stream.sniff: our sparse stream, a
zstd-compressed stream (or compressed raw dump), or a raw byte dump (``dd``
compatible) — the latter only when it is plausibly one (never a damaged
stream; whole 512-byte sectors, at least 1 MiB).  A zstd input must end at
the end of a frame (osdef.stream.zstdframes) and its frames' content
checksums are verified by the decoder.
Every byte of the target ends up defined: data is written, holes and all-zero
blocks are zeroed cheaply (punched in files, discards on loop devices,
BLKZEROOUT on other block devices) and the tail beyond the source is zeroed,
so the result is byte-identical to the source even on a target full of old
data.  All of it goes through osdef.disk.copy.SparseWriter, the copy engine
create uses too.

A loop device is written through its backing file where osdef.disk.loop
allows it (the same bytes, one page cache instead of two); its own cached
pages are dropped afterwards, on success and on failure alike.

On any failure after the first write — a StreamError, any other exception,
SIGTERM, SIGINT or SIGHUP — the target's first and last MiB are zeroed (no
partition table, no backup GPT: the half-written disk can never boot or pass
as good) with those signals held off until the wipe is done, and a
StreamError with one line is raised.  A failure before the first write
leaves the target untouched and says so.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import FrameType
from typing import Any, Protocol

import zstandard

from osdef.errors import StreamError, quote
from osdef.stream import format as fmt_
from osdef.disk import loop
from osdef.disk.copy import SparseWriter
from osdef.disk.device import Disk, advise_sequential, sync
from osdef.disk.pipes import enlarge_pipe
from osdef.disk.units import MiB
from osdef.disk.zeroing import is_zero, wipe_ends
from osdef.stream import sniff, zstdframes
from osdef.stream.blockio import open_disk, write_out
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
    metadata: fmt_.Metadata
    unchecksummed_frames: int = 0  # zstd frames that carried no content checksum

    @property
    def verified(self) -> str:
        """What was proven about the data, in a few words for the import's output line."""
        if self.kind == "stream":
            return "every record CRC, the stream digest and the trailer verified"
        if self.compressed and not self.unchecksummed_frames:
            return "raw dump: no checksum of its own, the zstd content checksum verified"
        return "raw dump: no checksum, the data could not be verified"

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

    def readinto(self, view: memoryview | bytearray) -> int:
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


class _WalkedSource:
    """The compressed bytes of a zstd input, each shown to a FrameWalker on its way to the decoder."""

    def __init__(self, source: _FdSource):
        self._source = source
        self.walker = zstdframes.FrameWalker()

    def read(self, n: int = -1) -> bytes:
        data = self._source.read(n)
        self.walker.feed(data)
        return data


class _ReadInto(Protocol):
    """What _Reader reads from: an _FdSource, or zstandard's decompressing reader."""

    def readinto(self, view: memoryview, /) -> int: ...


class _Reader:
    """Exact reads into one reusable buffer, over an fd source or a decompressor."""

    def __init__(self, source: _ReadInto, prefix: bytes = b"", at_eof: Callable[[], None] | None = None):
        self._source = source
        self._prefix = prefix
        self._buf = bytearray(MiB)
        self._at_eof = at_eof  # called when the source ends (the zstd framing check)

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
                if self._at_eof is not None:
                    self._at_eof()
                break
            done += got
        return view[:done]

    def peek_prefix(self, n: int) -> bytes:
        data = bytes(self.read_exact(n))
        self._prefix = data + self._prefix
        return data


def _too_small(disk: Disk, source_size: int) -> StreamError:
    return StreamError(f"target {disk.path} has {disk.size} bytes but the exported disk has {source_size}: "
                       "create the instance disk at least as large as the exported one")


def _import_stream(reader: _Reader, target: SparseWriter, size_fd: int | None,
                   compressed: bool) -> tuple[int, int, fmt_.Metadata]:
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
    assert decoder.trailer is not None  # records() ends only at the trailer, which it sets
    return header.disk_size, decoder.trailer.record_count, header.metadata


def _import_raw(reader: _Reader, target: SparseWriter, compressed: bool) -> int:
    first = reader.read_exact(sniff.MIN_RAW)
    if len(first) < sniff.MIN_RAW:  # refused before anything is written
        sniff.check_raw_length(len(first), compressed=compressed)
    offset = 0
    data = first
    while data:
        if offset + len(data) > target.disk.size:
            raise StreamError(f"raw import data is larger than target {target.disk.path} ({target.disk.size} "
                              "bytes): create the instance disk at least as large as the exported one")
        if not is_zero(data):
            for start, end in nonzero_runs(data, offset):
                target.write(offset + start, data[start:end])
        offset += len(data)
        data = reader.read_exact(MiB)
    sniff.check_raw_length(offset, compressed=compressed)
    return offset


class _Interrupted(StreamError):
    """The import was stopped by a signal (Ganeti aborting the transfer, an admin's ^C, a lost terminal)."""


STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
# what signal.signal() returns: the handler it replaced (typeshed's signal._HANDLER)
_Handler = Callable[[int, FrameType | None], Any] | int | signal.Handlers | None


class _SignalGuard:
    """SIGTERM/SIGINT/SIGHUP raise _Interrupted once; during the failure wipe they are held off.

    Only the main thread can have signal handlers: elsewhere the guard does nothing.
    """

    def __init__(self, ignore_after_failure: bool = False) -> None:
        self.active = threading.current_thread() is threading.main_thread()
        self.ignore_after_failure = ignore_after_failure
        self.interrupted = False
        self.wiping = False  # set as the first statement of the failure path: the handler then only records
        self._old: dict[signal.Signals, _Handler] = {}

    def _handler(self, signum: int, _frame: FrameType | None) -> None:
        if self.interrupted or self.wiping:
            return  # a second signal, or one during the wipe: the import is failing already
        self.interrupted = True
        raise _Interrupted(f"import interrupted by signal {signal.Signals(signum).name}")

    def __enter__(self) -> _SignalGuard:
        if self.active:
            self._old = {sig: signal.signal(sig, self._handler) for sig in STOP_SIGNALS}
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        ignore = exc_type is not None and self.ignore_after_failure
        for sig, handler in self._old.items():
            signal.signal(sig, signal.SIG_IGN if ignore else handler)  # one swap: no moment without a handler

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        """Block the stop signals while the body runs (what arrives meanwhile is dropped by the handler)."""
        self.wiping = True
        if not self.active:
            yield
            return
        old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
        try:
            yield
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)


def import_disk(in_fd: int, device: str | os.PathLike[str], *, size_fd: int | None = None,
                expect: str = "auto", ignore_signals_after_failure: bool = False) -> ImportResult:
    """Restore the stream read from ``in_fd`` onto ``device``; see the module docstring.

    ``expect`` is the import_format OS parameter: auto, stream (raw refused) or raw (see sniff).
    ``ignore_signals_after_failure``: a failed import leaves the stop signals ignored instead of
    restoring the caller's handlers, so that a second SIGTERM cannot end the process before it
    prints the failure line (the import script); the swap from the guard's handler is atomic.
    """
    if expect not in sniff.EXPECT:
        raise StreamError(f"import format {expect!r} is not supported: use one of {', '.join(sniff.EXPECT)}")
    disk = open_disk(device, write=True)
    target = disk
    progress = None
    try:
        with _SignalGuard(ignore_signals_after_failure) as guard:
            try:
                target = _backing_target(disk)
                progress = SparseWriter(target)
                return _import(in_fd, progress, size_fd, expect)
            except (Exception, KeyboardInterrupt) as e:
                guard.wiping = True  # first: a signal from now on must not cut the wipe short
                with guard.held():
                    touched = progress is not None and progress.touched
                    if touched:
                        _wipe(target)
                raise StreamError(_failure_line(e, disk, touched)) from None
    finally:
        if target is not disk:
            target.close()
            _drop_device_cache(disk)
        disk.close()


def _failure_line(e: BaseException, disk: Disk, touched: bool) -> str:
    if isinstance(e, StreamError):
        message = str(e)
    elif isinstance(e, OSError):
        message = f"import onto {quote(disk.path)} failed: {e.strerror or e}"
    elif isinstance(e, KeyboardInterrupt):
        message = "import interrupted"
    else:
        message = f"import onto {quote(disk.path)} failed: internal error {type(e).__name__}: {quote(str(e))}"
    if touched:
        return f"{message} (the first and last MiB of {quote(disk.path)} were zeroed)"
    return f"{message} (nothing was written to {quote(disk.path)})"


def _backing_target(disk: Disk) -> Disk:
    """The loop device's backing file as the disk to write, where osdef.disk.loop allows it; else ``disk``."""
    if not disk.is_block:
        return disk
    backing = loop.open_backing(disk.fd, disk.size, write=True)  # None unless a loop device
    if backing is None:
        return disk
    return Disk(disk.path, backing[0], disk.size, False, error=disk.error)


def _drop_device_cache(disk: Disk) -> None:
    try:
        loop.drop_device_cache(disk.fd)
    except OSError as e:
        raise StreamError(f"cannot drop the cached pages of {disk.path} after the import: {e.strerror}; "
                          f"run `blockdev --flushbufs {disk.path}` before using it") from None


def _import(in_fd: int, target: SparseWriter, size_fd: int | None, expect: str) -> ImportResult:
    disk = target.disk
    enlarge_pipe(in_fd)
    advise_sequential(in_fd)  # a stream read from a file: deeper read-ahead (a pipe: no-op)
    source = _FdSource(in_fd)
    prefix = source.peek(sniff.PEEK)
    if not prefix:
        raise StreamError("the import stream is empty: the export produced nothing")
    kind = sniff.classify(prefix, expect=expect)
    compressed = kind == "zstd"
    walked = None
    if compressed:
        walked = _WalkedSource(source)
        dctx = zstandard.ZstdDecompressor()
        # _WalkedSource is the decompressor's input file as far as it goes: it calls read() only
        reader = _Reader(dctx.stream_reader(walked,  # type: ignore[arg-type]  # (its stub: IO[bytes])
                                            read_size=MiB, read_across_frames=True),
                         at_eof=walked.walker.finish)
        inner = reader.peek_prefix(sniff.PEEK)
        if not inner:
            raise StreamError("the zstd-compressed import stream is empty")
        kind = sniff.classify(inner, expect=expect, compressed=True)
    else:
        reader = _Reader(source)
    records = 0
    metadata: fmt_.Metadata = {}
    if kind == "stream":
        source_size, records, metadata = _import_stream(reader, target, size_fd, compressed)
    else:
        source_size = _import_raw(reader, target, compressed)
    target.zero_until(disk.size)
    sync(disk)
    return ImportResult(kind, compressed, source_size, disk.size, target.data_bytes, target.zeroed_bytes,
                        source.count, records, metadata,
                        unchecksummed_frames=walked.walker.unchecksummed if walked else 0)


def _wipe(disk: Disk) -> None:
    """Zero the first and last MiB of the target (best effort: the import already failed)."""
    for _ in range(3):  # nothing interrupts it (signals are held); a failed try is tried again
        try:
            wipe_ends(disk)
            return
        except (StreamError, OSError):
            continue
