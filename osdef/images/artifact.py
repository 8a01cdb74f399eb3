"""A ready image in the cache, and its one-pass decompressing reader.

`Artifact.open()` gives a binary file-like object producing the uncompressed
image bytes straight from the zstd file (no temporary copy).  While it reads
it hashes the compressed bytes; at the end of the stream it checks the sha256
and the uncompressed size recorded in the manifest, so a corrupt or swapped
artifact fails the read instead of producing a bad disk.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from datetime import datetime, UTC
from pathlib import Path
from typing import BinaryIO

import zstandard

from osdef.disk.units import MiB
from osdef.errors import ImageError
from osdef.images.manifest import Manifest


@dataclass(frozen=True)
class Artifact:
    """One stored image: what it is, how big it is uncompressed, where it lives."""

    name: str
    path: Path  # the compressed file in the cache
    manifest: Manifest  # everything else the build recorded: fs_type, used_size, created_at …

    @property
    def format(self) -> str:
        """fs-image | disk-raw | tar."""
        return self.manifest.format

    @property
    def size(self) -> int:
        """Uncompressed byte size: exactly what open() will produce."""
        return self.manifest.size

    @property
    def sha256(self) -> str:
        return self.manifest.sha256

    def open(self) -> BinaryIO:
        """The decompressed image as a stream; use as a context manager.

        Reads return exactly the bytes asked for, except at the end.  When the
        last byte (`size`) has been read, the stored file is checked against
        the manifest (sha256, size) and a mismatch raises ImageError.
        """
        try:
            raw = open(self.path, "rb")  # noqa: SIM115 -- the returned reader owns and closes it
        except FileNotFoundError:
            raise ImageError(
                f"image {self.name}: {self.path} vanished (replaced by a new build?); retry"
            ) from None
        except OSError as exc:
            raise ImageError(f"image {self.name}: cannot open {self.path}: {exc.strerror}") from None
        reader = ArtifactReader(raw, self)
        return io.BufferedReader(reader, buffer_size=MiB)


class _HashingReader:
    """Read-side twin of the hashing writer: hashes what zstd pulls from the file."""

    def __init__(self, f: BinaryIO) -> None:
        self._f = f
        self.hash = hashlib.sha256()
        self.count = 0

    def read(self, n: int = -1) -> bytes:
        data = self._f.read(n)
        self.hash.update(data)
        self.count += len(data)
        return data


class ArtifactReader(io.RawIOBase):
    """Decompresses an artifact and verifies it against its manifest at EOF."""

    def __init__(self, raw: BinaryIO, artifact: Artifact) -> None:
        super().__init__()
        self._raw = raw
        self._artifact = artifact
        self._hashing = _HashingReader(raw)
        # _HashingReader is the source as far as stream_reader goes: it calls read() only
        self._zreader = zstandard.ZstdDecompressor().stream_reader(
            self._hashing,  # type: ignore[arg-type]  # (its stub: IO[bytes])
            read_size=MiB, read_across_frames=True, closefd=False)
        self._produced = 0
        self._verified = False

    def readable(self) -> bool:
        return True

    def readinto(self, buf: bytearray | memoryview) -> int:  # type: ignore[override]
        view = memoryview(buf).cast("B")
        filled = 0
        try:
            while filled < len(view):
                n = self._zreader.readinto(view[filled:])
                if n == 0:
                    break
                filled += n
        except zstandard.ZstdError as exc:
            raise ImageError(
                f"image {self._artifact.name}: {self._artifact.path} is corrupt ({exc}); "
                f"rebuild it with `osdef image build {self._artifact.name}`") from None
        self._produced += filled
        if (filled == 0 and len(view) > 0) or self._produced >= self._artifact.size:
            self._verify()
        return filled

    def _verify(self) -> None:
        if self._verified:
            return
        self._verified = True
        try:
            # A reader that stops after `size` bytes still gets the check: finish the
            # frame (zstd verifies its checksum there) and hash what follows it.
            extra = self._zreader.read(1)
        except zstandard.ZstdError as exc:
            raise ImageError(
                f"image {self._artifact.name}: {self._artifact.path} is corrupt ({exc}); "
                f"rebuild it with `osdef image build {self._artifact.name}`") from None
        self._produced += len(extra)
        while self._hashing.read(MiB):
            pass
        art = self._artifact
        if self._produced != art.size or self._hashing.hash.hexdigest() != art.sha256:
            raise ImageError(
                f"image {art.name}: {art.path} does not match its manifest "
                f"(sha256 or size differ); rebuild it with `osdef image build {art.name}`")

    def close(self) -> None:
        if not self.closed:
            try:
                self._zreader.close()
            finally:
                self._raw.close()
        super().close()


def parse_time(text: str) -> datetime:
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        return datetime.fromtimestamp(0, UTC)
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def open_image(artifact: Artifact) -> tuple[BinaryIO, int]:
    """(decompressed stream, uncompressed size): the create step's single read pass."""
    return artifact.open(), artifact.size
