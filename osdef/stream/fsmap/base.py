"""What every filesystem map shares: the bounded ``Reader`` of one partition, the ``FsMap`` it yields,
and ``Unusable``, the refusal that sends a partition at block level."""

from __future__ import annotations

from dataclasses import dataclass

from osdef.disk.device import Disk, read_at
from osdef.disk.ondisk import Damaged
from osdef.disk.ondisk.partitions import Partition
from osdef.stream.blockio import BlockIOError

MAX_RANGES = 1 << 18  # a map more fragmented than this is not worth its memory: block level
MAX_METADATA_READ = 64 << 20  # a parser reads at most this much metadata, or 1/16 of its partition if more
METADATA_SHARE = 16


class Unusable(Damaged):
    """A filesystem was recognised but its map cannot be trusted; the message says why, ``fs`` which one."""


class Reader:
    """Reads of one partition, bounded by its length and by a total budget."""

    def __init__(self, disk: Disk, part: Partition, budget: int | None = None):
        self.disk = disk
        self.part = part
        self.length = part.length
        self.budget = budget if budget is not None else max(MAX_METADATA_READ, part.length // METADATA_SHARE)
        self.bytes_read = 0

    def read(self, offset: int, length: int) -> bytes:
        if offset < 0 or length < 0 or offset + length > self.length:
            raise Unusable(f"metadata at byte {offset} lies outside the partition")
        self.bytes_read += length
        if self.bytes_read > self.budget:
            raise Unusable("its metadata is larger than the bound this parser reads")
        buf = bytearray(length)
        try:
            read_at(self.disk, memoryview(buf), self.part.start + offset)
        except BlockIOError as e:
            raise Unusable(str(e)) from None
        return bytes(buf)

    def at(self, offset: int, length: int) -> bytes | None:
        """A ReadAt (osdef.disk.ondisk): None where the range does not fit the partition."""
        if offset < 0 or length < 0 or offset + length > self.length:
            return None
        return self.read(offset, length)


@dataclass
class FsMap:
    """A filesystem's used bytes: ``used`` ranges (relative to the partition) within its first ``covered`` bytes.

    Bytes of the partition past ``covered`` are not the filesystem's: they are sent at block level.
    """

    fs: str
    used: list[tuple[int, int]]
    covered: int
    source: str = ""  # where the map came from, for the export plan


def check(fsmap: FsMap, length: int) -> FsMap:
    """Raise Unusable unless the map is ordered, non-overlapping and inside the partition."""
    if not 0 < fsmap.covered <= length:
        raise Unusable(f"its {fsmap.fs} filesystem claims {fsmap.covered} bytes of a {length}-byte partition", fsmap.fs)
    if len(fsmap.used) > MAX_RANGES:
        raise Unusable(f"its {fsmap.fs} map has more than {MAX_RANGES} ranges", fsmap.fs)
    pos = total = 0
    for offset, size in fsmap.used:
        if size <= 0 or offset < pos or offset + size > fsmap.covered:
            raise Unusable(f"its {fsmap.fs} map has a range outside the filesystem or overlapping another", fsmap.fs)
        pos = offset + size
        total += size
    if total > fsmap.covered:
        raise Unusable(f"its {fsmap.fs} map uses more than the filesystem's size", fsmap.fs)
    return fsmap
