"""Turn an input image file into a stored artifact: sniff, normalise, compress.

Input may be raw (bare filesystem or partitioned disk), tar, or qcow2, each
optionally zstd-compressed.  qcow2 is converted to raw with `qemu-img
convert` on the way in (the cache keeps only raw and tar, so `create` can read
any artifact as one decompressing stream without qemu).  The output is one
multi-threaded zstd frame with a checksum, written to a temporary file whose
sha256, apparent size and used size are measured in the same pass.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from collections.abc import Iterable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import zstandard

from osdef.fileutil import tool_said
from osdef.disk.units import MiB
from osdef.errors import ImageError
from osdef.images import formats
from osdef.images.cachefiles import no_space_or, remove_quietly, temp_path
from osdef.vocab import DISK_QCOW2

CHUNK = MiB
BLOCK = 4096
ZSTD_LEVEL = 3
_ZERO_CHUNK = bytes(CHUNK)
_ZERO_BLOCK = bytes(BLOCK)


@dataclass(frozen=True)
class Stored:
    """A compressed artifact written to a temporary path, with its measurements."""

    path: Path
    format: str
    fs_type: str | None
    sha256: str  # of the compressed file
    stored_size: int
    size: int  # uncompressed
    used_size: int
    origin_sha256: str | None = None


class _HashingWriter:
    """File wrapper that hashes and counts everything written through it."""

    def __init__(self, f: BinaryIO) -> None:
        self._f = f
        self.hash = hashlib.sha256()
        self.count = 0

    def write(self, data: bytes) -> int:
        self.hash.update(data)
        self.count += len(data)
        return self._f.write(data)

    def flush(self) -> None:
        self._f.flush()


def used_bytes(chunk: bytes) -> int:
    """Bytes of `chunk` that lie in 4 KiB blocks holding something other than zeros."""
    if len(chunk) == CHUNK and chunk == _ZERO_CHUNK:
        return 0
    view = memoryview(chunk)
    used = 0
    for off in range(0, len(chunk), BLOCK):
        block = view[off:off + BLOCK]
        if len(block) < BLOCK:
            if any(block):
                used += len(block)
        elif block != _ZERO_BLOCK:
            used += BLOCK
    return used


def read_full(f: BinaryIO, n: int) -> bytes:
    """Read up to n bytes, looping over short reads; fewer only at EOF."""
    parts = []
    while n > 0:
        data = f.read(n)
        if not data:
            break
        parts.append(data)
        n -= len(data)
    return b"".join(parts)


def _chunks(f: BinaryIO, first: bytes) -> Iterator[bytes]:
    if first:
        yield first
    while True:
        data = read_full(f, CHUNK)
        if not data:
            return
        yield data


def compress_chunks(chunks: Iterable[bytes], dest: Path, size_hint: int | None = None,
                    threads: int = -1) -> tuple[str, int, int, int]:
    """Write chunks as one zstd frame to dest, fsync it.

    Returns (sha256 of dest, bytes of dest, uncompressed size, used size).
    """
    cctx = zstandard.ZstdCompressor(level=ZSTD_LEVEL, threads=threads, write_checksum=True)
    size = used = 0
    with open(dest, "xb") as f:
        hw = _HashingWriter(f)
        # _HashingWriter is the writer's file object as far as stream_writer goes: it calls write() and flush() only
        writer = cctx.stream_writer(hw,  # type: ignore[arg-type]  # (its stub: IO[bytes])
                                    size=size_hint if size_hint is not None else -1, closefd=False)
        for chunk in chunks:
            size += len(chunk)
            used += used_bytes(chunk)
            writer.write(chunk)
        writer.flush(zstandard.FLUSH_FRAME)
        f.flush()
        os.fsync(f.fileno())
    return hw.hash.hexdigest(), hw.count, size, used


def _sniff(path: Path) -> tuple[bool, formats.Detected]:
    """(is the file zstd-compressed, what the uncompressed data looks like)."""
    with open(path, "rb") as f:
        head = read_full(f, formats.HEADER_SIZE)
        if not formats.is_zstd(head):
            return False, formats.detect(head)
        f.seek(0)
        reader = zstandard.ZstdDecompressor().stream_reader(f, read_across_frames=True)
        try:
            inner = read_full(reader, formats.HEADER_SIZE)
        except zstandard.ZstdError as exc:
            raise ImageError(f"{path}: corrupt zstd data: {exc}") from None
        return True, formats.detect(inner)


def ingest_file(src: Path, cache_dir: Path, name: str, *, expect: str | None = None,
                work_dir: Path | None = None) -> Stored:
    """Store `src` (raw/tar/qcow2, maybe zstd) as a compressed artifact in a temp file.

    `expect` is a declared format (fs-image, disk-raw, disk-qcow2, tar); a
    mismatch with what the file holds is an error.  The caller renames the
    result into place and writes the manifest.
    """
    try:
        compressed, found = _sniff(src)
    except OSError as exc:
        raise ImageError(f"cannot read {src}: {exc.strerror}") from None
    if found.format == "unknown":
        raise ImageError(
            f"{src}: not a recognised image (expected a raw disk with MBR/GPT, an ext4/xfs/btrfs "
            "filesystem image, a tar archive or qcow2, optionally zstd-compressed)")
    if expect is not None and expect != found.format:
        raise ImageError(f"{src}: declared format {expect} but the file holds {found.describe()}")
    if found.format == DISK_QCOW2:
        return _ingest_qcow2(src, compressed, cache_dir, name, work_dir or cache_dir)
    dest = temp_path(cache_dir, name, "zst")
    try:
        with ExitStack() as stack:
            f = stack.enter_context(open(src, "rb"))
            size_hint: int | None = None
            if compressed:
                stream: BinaryIO = stack.enter_context(
                    zstandard.ZstdDecompressor().stream_reader(f, read_across_frames=True))
            else:
                stream = f
                size_hint = os.fstat(f.fileno()).st_size
            sha, stored_size, size, used = compress_chunks(_chunks(stream, b""), dest, size_hint)
    except zstandard.ZstdError as exc:
        remove_quietly(dest)
        raise ImageError(f"{src}: corrupt zstd data: {exc}") from None
    except OSError as exc:
        remove_quietly(dest)
        raise no_space_or(exc, cache_dir, f"storing image {name}") from None
    except BaseException:
        remove_quietly(dest)
        raise
    if size == 0:
        remove_quietly(dest)
        raise ImageError(f"{src}: the image is empty")
    return Stored(path=dest, format=found.format, fs_type=found.fs_type, sha256=sha,
                  stored_size=stored_size, size=size, used_size=used)


def _ingest_qcow2(src: Path, compressed: bool, cache_dir: Path, name: str,
                  work_dir: Path) -> Stored:
    qemu_img = shutil.which("qemu-img")
    if qemu_img is None:
        raise ImageError("qemu-img is needed to store a qcow2 image: apt-get install qemu-utils")
    plain = raw = None
    try:
        source = src
        if compressed:
            plain = temp_path(work_dir, name, "qcow2")
            with open(src, "rb") as f, open(plain, "xb") as out:
                zstandard.ZstdDecompressor().copy_stream(f, out)
            source = plain
        raw = temp_path(work_dir, name, "raw")
        proc = subprocess.run(
            [qemu_img, "convert", "-q", "-f", "qcow2", "-O", "raw", str(source), str(raw)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            text=True, check=False)
        if proc.returncode != 0:
            raise ImageError(f"{src}: qemu-img convert to raw failed: {tool_said(proc)}")
        return ingest_file(raw, cache_dir, name, work_dir=work_dir)
    except OSError as exc:
        raise no_space_or(exc, work_dir, f"converting {src} to raw") from None
    finally:
        remove_quietly(plain)
        remove_quietly(raw)
