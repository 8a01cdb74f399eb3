"""Zstandard framing check: walks the frame and block headers of a compressed input as it passes.

python-zstandard's streaming decoders return what they could decode and no
error when the input ends inside a frame (a transfer cut short; measured with
zstandard 0.25: a frame cut anywhere, even one byte before its checksum,
decodes "successfully").  ``FrameWalker`` is fed every compressed byte the
decoder reads and follows the frame layout of RFC 8878 (frame header, block
headers, content checksum, skippable frames) without decompressing, so
``finish()`` can tell whether the input ended exactly at the end of a frame.
It also records whether each frame carries a content checksum (the decoder
verifies those; frames without one are reported by the importer).

Pure bookkeeping over headers: a few operations per 128 KiB block.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from osdef.disk.handle import BytesLike
from osdef.errors import StreamError

FRAME_MAGIC = 0xFD2FB528
SKIPPABLE_MASK = 0xFFFFFFF0
SKIPPABLE_MAGIC = 0x184D2A50
MAX_BLOCK = 128 * 1024  # Block_Maximum_Size (RFC 8878 §3.1.1.2.3)


class FramingError(StreamError):
    """The compressed input is not a sequence of complete zstd frames."""


@dataclass
class _Need:
    """Waiting for ``size`` header bytes, then calling ``then`` with them."""

    size: int
    then: Callable[[bytes, int], None]  # (the header bytes, the input position after them)


class FrameWalker:
    """Follows zstd frames over fed bytes; ``finish()`` raises unless the input ended between frames."""

    def __init__(self) -> None:
        self.frames = 0  # complete frames seen
        self.unchecksummed = 0  # complete zstd frames without a content checksum
        self.position = 0  # compressed bytes fed
        self._skip = 0  # content bytes to pass over before the next header
        self._buf = b""
        self._need = _Need(4, self._magic)
        self._checksum = False
        self._in_frame = False

    # -- feeding -------------------------------------------------------------------

    def feed(self, data: BytesLike) -> None:
        view = memoryview(data).cast("B")
        start = self.position
        self.position += len(view)
        i = 0
        n = len(view)
        while i < n:
            if self._skip:
                k = min(self._skip, n - i)
                self._skip -= k
                i += k
                continue
            want = self._need.size - len(self._buf)
            piece = bytes(view[i:i + want])
            i += len(piece)
            self._buf += piece
            if len(self._buf) < self._need.size:
                break
            head, self._buf = self._buf, b""
            self._need.then(head, start + i)

    def finish(self) -> None:
        """The input ended: it must end between frames (and hold at least one)."""
        if self._in_frame or self._skip or self._buf:
            raise FramingError(f"the zstd-compressed input ends inside a frame (after {self.position} "
                               "bytes): the transfer was cut short; export it again")
        if not self.frames:
            raise FramingError("the zstd-compressed input holds no complete frame")

    # -- the layout (RFC 8878) ---------------------------------------------------------

    def _magic(self, head: bytes, at: int) -> None:
        magic = int.from_bytes(head, "little")
        self._in_frame = True
        if magic == FRAME_MAGIC:
            self._need = _Need(1, self._descriptor)
        elif magic & SKIPPABLE_MASK == SKIPPABLE_MAGIC:
            self._need = _Need(4, self._skippable_size)
        else:
            raise FramingError(f"the zstd-compressed input is corrupt: no frame starts at byte {at - 4}")

    def _skippable_size(self, head: bytes, at: int) -> None:
        self._skip = int.from_bytes(head, "little")  # finish() fails while content is still to come
        self._end_frame(counted=False)

    def _descriptor(self, head: bytes, at: int) -> None:
        d = head[0]
        if d & 0x08:
            raise FramingError(f"the zstd-compressed input is corrupt: reserved bit set in the frame header "
                               f"at byte {at - 1}")
        fcs_flag, single, self._checksum, dict_flag = d >> 6, bool(d & 0x20), bool(d & 0x04), d & 0x03
        size = (0 if single else 1) + (0, 1, 2, 4)[dict_flag] + ((1 if single else 0), 2, 4, 8)[fcs_flag]
        if size:
            self._need = _Need(size, self._frame_header_rest)
        else:
            self._need = _Need(3, self._block)

    def _frame_header_rest(self, head: bytes, at: int) -> None:
        self._need = _Need(3, self._block)

    def _block(self, head: bytes, at: int) -> None:
        h = int.from_bytes(head, "little")
        last, kind, size = h & 1, (h >> 1) & 3, h >> 3
        if kind == 3 or size > MAX_BLOCK:
            raise FramingError(f"the zstd-compressed input is corrupt: bad block header at byte {at - 3}")
        self._skip = 1 if kind == 1 else size  # an RLE block holds one byte
        if not last:
            self._need = _Need(3, self._block)
        elif self._checksum:
            self._need = _Need(4, self._frame_checksum)
        else:
            self.unchecksummed += 1
            self._end_frame()

    def _frame_checksum(self, head: bytes, at: int) -> None:
        self._end_frame()

    def _end_frame(self, counted: bool = True) -> None:
        """The last header of a frame was read (its last block's content may still be in _skip)."""
        if counted:
            self.frames += 1
        self._in_frame = False
        self._need = _Need(4, self._magic)
