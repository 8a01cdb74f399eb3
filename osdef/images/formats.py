"""Recognise image files by their first bytes (pure functions, no I/O).

Detects the container (qcow2, zstd) and, for raw data, what it holds: a
partitioned disk (GPT or MBR), a bare filesystem (ext2/3/4, XFS, btrfs) or a
tar archive.  Read HEADER_SIZE bytes from the start of the file and pass them
to detect().  Partition tables and superblocks are read by osdef.disk.ondisk,
as export reads them.
"""

from __future__ import annotations

from dataclasses import dataclass

from osdef.disk.ondisk import gpt, mbr, reader_of, signatures
from osdef.vocab import DISK_QCOW2, DISK_RAW, FS_IMAGE, IMAGE_KINDS, TAR

#: Enough to see the btrfs superblock at 64 KiB.
HEADER_SIZE = 128 * 1024

ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
QCOW2_MAGIC = b"QFI\xfb"

#: The formats an artifact in the cache may have (qcow2 is converted on the way in).
STORED_FORMATS = IMAGE_KINDS


@dataclass(frozen=True)
class Detected:
    """What a header looks like: format plus filesystem type for fs-image."""

    format: str  # fs-image | disk-raw | disk-qcow2 | tar | unknown
    fs_type: str | None = None

    def describe(self) -> str:
        return f"{self.format} ({self.fs_type})" if self.fs_type else self.format


UNKNOWN = Detected("unknown")


def is_zstd(header: bytes) -> bool:
    return header[:4] == ZSTD_MAGIC


def detect(header: bytes) -> Detected:
    """Classify an (uncompressed) image from its first bytes."""
    if header[:4] == QCOW2_MAGIC:
        return Detected(DISK_QCOW2)
    if header[512:520] == gpt.SIGNATURE:
        return Detected(DISK_RAW)
    fs = filesystem_type(header)
    if fs is not None:
        return Detected(FS_IMAGE, fs)
    if _has_mbr_partitions(header):
        return Detected(DISK_RAW)
    if _is_tar(header):
        return Detected(TAR)
    return UNKNOWN


def filesystem_type(header: bytes) -> str | None:
    """ext2/ext3/ext4, xfs or btrfs when the header starts with that filesystem's superblock."""
    return signatures.image_filesystem(reader_of(header))


def _has_mbr_partitions(header: bytes) -> bool:
    """An MBR that Linux reads, with at least one partition (its extended chain read within the header)."""
    reading = mbr.kernel_mbr(reader_of(header), header[:512], len(header))
    return reading is not None and any(s.start for s in reading.slots)


def _is_tar(header: bytes) -> bool:
    if header[257:262] == b"ustar":
        return True
    # Old (v7) tar: no magic; check the header checksum of the first block.
    if len(header) < 512 or not header[:1].strip(b"\0"):
        return False
    try:
        stored = int(header[148:156].split(b"\0")[0].strip() or b"-1", 8)
    except ValueError:
        return False
    computed = sum(header[:148]) + 8 * 32 + sum(header[156:512])
    return stored == computed
