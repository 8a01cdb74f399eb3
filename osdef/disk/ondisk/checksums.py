"""The two checksums ext filesystems keep, with e2fsprogs' conventions (no final inversion).

``crc16``: the ``gdt_csum`` group-descriptor checksum (``lib/ext2fs/crc16.c``,
the reflected 0x8005 polynomial, 0xA001), a table-driven loop over a few dozen
bytes per group.  ``crc32c``: ``ext2fs_crc32c_le``, the Castagnoli CRC
continued from a seed, from python3-crc32c (hardware-accelerated; a 4 KiB
bitmap costs about 2 µs); that module computes the inverted form, so the seed
and the result are inverted around it.
"""

from __future__ import annotations

import crc32c as _crc32c


def _table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
        table.append(crc)
    return table


_CRC16 = _table()


def crc16(crc: int, data: bytes) -> int:
    """ext2fs_crc16: continue ``crc`` over ``data``."""
    for b in data:
        crc = (crc >> 8) ^ _CRC16[(crc ^ b) & 0xFF]
    return crc


def crc32c(seed: int, data: bytes) -> int:
    """ext2fs_crc32c_le: the raw Castagnoli CRC of ``data`` continued from ``seed``."""
    return _crc32c.crc32c(data, seed ^ 0xFFFFFFFF) ^ 0xFFFFFFFF
