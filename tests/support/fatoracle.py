"""What dosfstools and 7-Zip say a FAT12/16/32 image holds: its used clusters, its files, its fsck verdict.

The geometry and the FAT type are ``fsck.fat -v``'s (dosfstools decides FAT32
as Linux's fs/fat/inode.c does: by a zero BPB_FATSz16, not by the cluster
count); used are the reserved sectors, the FATs, the FAT12/16 root directory
and every cluster whose entry is not zero in any of the FATs.  Files come
from 7-Zip (``7zz x`` and ``7zz l -slt``: names, sizes, times, attributes),
which also takes FAT32 from the BPB (root entries 0, FATSz16 0) and reads it
with 32-bit entries whatever its cluster count.  mtools 4.0.32 (Debian 12)
cannot: it refuses, or misreads, a FAT32 with fewer than 65525 clusters.
The verdict is ``fsck.fat -n``'s exit code and output.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from tests.support.fsdisks import tree_sums


@dataclass(frozen=True)
class FatLayout:
    """fsck.fat's reading of the boot sector (bytes within the filesystem image)."""

    fat_start: int
    fats: int
    fat_bytes: int
    bits: int
    data_start: int
    cluster_bytes: int
    clusters: int
    size: int  # sectors total × sector size

    def used(self, image: Path) -> list[tuple[int, int]]:
        """Byte ranges [start, end): everything before the data area, and every cluster a FAT calls used."""
        with open(image, "rb") as f:
            f.seek(self.fat_start)
            tables = [f.read(self.fat_bytes) for _ in range(self.fats)]
        ranges = [(0, self.data_start)]
        for c in range(2, self.clusters + 2):
            if any(_entry(t, c, self.bits) for t in tables):
                start = self.data_start + (c - 2) * self.cluster_bytes
                if ranges[-1][1] == start:
                    ranges[-1] = (ranges[-1][0], start + self.cluster_bytes)
                else:
                    ranges.append((start, start + self.cluster_bytes))
        return ranges


def _entry(table: bytes, cluster: int, bits: int) -> int:
    if bits == 12:
        i = cluster * 3 // 2
        v = int.from_bytes(table[i:i + 2], "little")
        return v >> 4 if cluster & 1 else v & 0xFFF
    width = bits // 8
    v = int.from_bytes(table[cluster * width:(cluster + 1) * width], "little")
    return v & 0x0FFFFFFF if bits == 32 else v


def _number(pattern: str, text: str) -> int | None:
    m = re.search(pattern, text, re.M)
    return int(m.group(1)) if m else None


def verdict(image: Path) -> tuple[int, str]:
    """``fsck.fat -n -v -l``: exit code and output (the image's name replaced)."""
    out = subprocess.run(["fsck.fat", "-n", "-v", "-l", str(image)], capture_output=True, text=True,
                         errors="surrogateescape")
    return out.returncode, (out.stdout + out.stderr).replace(str(image), "IMAGE")


def layout(image: Path) -> FatLayout | None:
    """The geometry fsck.fat reads; None if it cannot read the boot sector."""
    _, text = verdict(image)
    fields = [_number(p, text) for p in (
        r"First FAT starts at byte (\d+)", r"^\s*(\d+) FATs, \d+ bit entries", r"^\s*(\d+) bytes per FAT",
        r"FATs, (\d+) bit entries", r"Data area starts at byte (\d+)", r"^\s*(\d+) bytes per cluster",
        r"^\s*(\d+) data clusters", r"^\s*(\d+) sectors total", r"^\s*(\d+) bytes per logical sector")]
    if None in fields:
        return None
    *geometry, sectors, sector_size = fields
    return FatLayout(*geometry, sectors * sector_size)


def _sevenzip() -> str:
    return shutil.which("7zz") or shutil.which("7z") or "7zz"


def files(image: Path, out: Path) -> dict[str, object]:
    """What 7-Zip shows: every file's contents, the listing (names, sizes, times, attributes), its complaints."""
    out.mkdir()
    seven = _sevenzip()
    listing = subprocess.run([seven, "l", "-slt", "-tFAT", str(image)], capture_output=True, text=True,
                             errors="surrogateescape")
    extract = subprocess.run([seven, "x", "-y", "-tFAT", f"-o{out}", str(image)], capture_output=True,
                             text=True, errors="surrogateescape")
    entries = listing.stdout.split("\n----------\n", 1)[-1] if listing.returncode == 0 else ""
    return {"contents": tree_sums(out), "listing": entries, "7z": (listing.returncode, extract.returncode)}
