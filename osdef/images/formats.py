"""Recognise image files by their first bytes (pure functions, no I/O).

Detects the container (qcow2, zstd) and, for raw data, what it holds: a
partitioned disk (GPT or MBR), a bare filesystem (ext2/3/4, XFS, btrfs) or a
tar archive.  Read HEADER_SIZE bytes from the start of the file and pass them
to detect().
"""

from __future__ import annotations

from dataclasses import dataclass

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
    if header[512:520] == b"EFI PART":
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
    """ext4/xfs/btrfs when the header starts with that filesystem's superblock."""
    if header[1080:1082] == b"\x53\xef":
        # ext2/3/4 share the magic; the feature flags tell them apart.
        compat = int.from_bytes(header[1024 + 0x5C:1024 + 0x60], "little")
        incompat = int.from_bytes(header[1024 + 0x60:1024 + 0x64], "little")
        if incompat & 0x2C0:  # extents | 64bit | flex_bg
            return "ext4"
        return "ext3" if compat & 0x4 else "ext2"  # has_journal
    if header[:4] == b"XFSB":
        return "xfs"
    if header[0x10040:0x10048] == b"_BHRfS_M":
        return "btrfs"
    return None


def _has_mbr_partitions(header: bytes) -> bool:
    if len(header) < 512 or header[510:512] != b"\x55\xaa":
        return False
    for i in range(4):
        entry = header[446 + 16 * i:446 + 16 * (i + 1)]
        status, ptype = entry[0], entry[4]
        start = int.from_bytes(entry[8:12], "little")
        count = int.from_bytes(entry[12:16], "little")
        if status not in (0x00, 0x80):
            return False
        if ptype and start and count:
            return True
    return False


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
