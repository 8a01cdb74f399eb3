"""Which partitions a guest's kernel sees on a disk image, asked of util-linux (libblkid), never of osdef.

``partx --show`` reads the table with libblkid, whose probers follow the
kernel's rules: a GPT only behind a protective or hybrid MBR, for the backup
header too (block/partitions/efi.c ``is_pmbr_valid``; libblkid's gpt.c
``is_pmbr_valid``), an MBR with a 0xEE entry is no MBR (msdos.c), extended
partitions by their chain of EBRs.  As the kernel does when it adds them
(block/partitions/core.c ``blk_add_partition``), a partition that starts
past the disk's end is dropped and one that runs past it is cut at the end.
An extended partition is a container (the kernel gives it 1 KiB): its bytes
are EBRs and logical partitions, which are regions of their own.

Two rules libblkid does not share, applied on top of its answer: efi.c
takes an 0xEE entry as protective only if it starts at LBA 1
(``pmbr_part_valid``), libblkid takes any; and efi.c ``find_valid_gpt``
reads the backup header only through a valid primary's ``alternate_lba``
(the header at the last LBA only with the ``gpt`` boot option), where
libblkid falls back to the backup when the primary is bad.  Either way the
kernel sees no partition at all (msdos.c defers to efi.c because of the
0xEE), while firmware and boot loaders may read the backup: two readings, so
everything must arrive as it was.  Whether the primary is valid is asked of
libblkid too, on a copy whose last sector (the backup header) is blanked.
A difference left, stricter than the kernel (a partition the kernel adds is
not a region here, so its bytes must arrive as they are): libblkid drops
GPT entries outside the usable LBAs, which the kernel keeps while they end
before the last LBA.

``probe`` asks ``blkid -p`` (libblkid's superblock probers, the ones
udev uses to name what a guest mounts) what a region holds.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

SECTOR = 512  # partx counts 512-byte sectors on an image file
CONTAINERS = {"0x5", "0xf", "0x85"}  # extended partitions (msdos.c is_extended_partition)


@dataclass(frozen=True)
class Region:
    """A partition as the kernel would create it (number 0: a whole disk without a table)."""

    number: int
    start: int  # bytes
    length: int  # bytes
    kind: str  # "0x83", a GPT type GUID, "" for a whole disk

    @property
    def end(self) -> int:
        return self.start + self.length

    @property
    def name(self) -> str:
        return "the whole disk" if self.number == 0 else f"partition {self.number}"


def probe(path: Path, offset: int = 0, size: int | None = None) -> dict[str, str]:
    """``blkid -p`` of a file (or of ``size`` bytes at ``offset`` in it): TYPE, PTTYPE, UUID, ... ({} if nothing;
    AMBIVALENT if libblkid finds signatures that exclude each other)."""
    argv = ["blkid", "-p", "-o", "export", "-O", str(offset)]
    if size is not None:
        argv += ["-S", str(size)]
    out = subprocess.run([*argv, str(path)], capture_output=True, text=True)
    if out.returncode == 8:  # two signatures that exclude each other: no tool would guess, nor may we
        return {"AMBIVALENT": out.stderr.strip()}
    if out.returncode not in (0, 2):  # 2: nothing found
        raise RuntimeError(f"blkid -p {path}: {out.stderr.strip()}")
    pairs = (line.split("=", 1) for line in out.stdout.splitlines() if "=" in line)
    return {k: v for k, v in pairs if k != "DEVNAME"}


def table_scheme(path: Path) -> str:
    """The partition table libblkid finds on the whole image ("dos", "gpt", "PMBR", ...; "" if none)."""
    return probe(path).get("PTTYPE", "")


PARTX = ["partx", "--show", "-g", "-o", "NR,START,SECTORS,TYPE"]  # + the image; parse_partx reads its output


def parse_partx(returncode: int, stdout: str) -> list[tuple[int, int, int, str]] | None:
    """PARTX's rows (number, first sector, sectors, type), or None when libblkid finds no table."""
    if returncode != 0:
        return None  # "failed to read partition table"
    rows = []
    for line in stdout.splitlines():
        nr, start, sectors, *kind = line.split()
        rows.append((int(nr), int(start), int(sectors), kind[0].lower() if kind else ""))
    return rows


def _partx(path: Path) -> list[tuple[int, int, int, str]] | None:
    out = subprocess.run([*PARTX, str(path)], capture_output=True, text=True)
    return parse_partx(out.returncode, out.stdout)


def _protective_at_lba1(path: Path) -> bool:
    with open(path, "rb") as f:
        mbr = f.read(SECTOR)
    return any(mbr[446 + 16 * i + 4] == 0xEE and int.from_bytes(mbr[446 + 16 * i + 8:446 + 16 * i + 12], "little") == 1
               for i in range(4))


def _primary_gpt_rows(path: Path) -> list[tuple[int, int, int, str]] | None:
    """partx's rows for a copy of the image whose backup GPT header is blanked: what the primary says."""
    copy = path.with_name(f".{path.name}.primary")
    size = path.stat().st_size
    try:
        with open(path, "rb") as src, open(copy, "wb") as dst:
            left = size - SECTOR
            while left:
                left -= os.copy_file_range(src.fileno(), dst.fileno(), left)
            dst.write(bytes(SECTOR))
        return _partx(copy)
    finally:
        copy.unlink(missing_ok=True)


def partitions(path: Path) -> list[Region]:
    """The regions the guest's kernel would create, in disk order (a whole-disk region if there is no table)."""
    disk_size = path.stat().st_size
    rows = _partx(path)
    if rows is None:
        return [Region(0, 0, disk_size, "")] if disk_size else []
    if rows and table_scheme(path) == "gpt":
        if not _protective_at_lba1(path) or _primary_gpt_rows(path) != rows:
            return []
    return regions(rows, disk_size)


def regions(rows: list[tuple[int, int, int, str]], disk_size: int) -> list[Region]:
    """Partx's rows as the kernel would add them: no containers, nothing past the end, cut at the end."""
    found = []
    for nr, start, sectors, kind in rows:
        begin, length = start * SECTOR, sectors * SECTOR
        if kind in CONTAINERS or length == 0 or begin >= disk_size:
            continue
        found.append(Region(nr, begin, min(length, disk_size - begin), kind))
    return sorted(found, key=lambda r: (r.start, r.number))


def outside(regions: list[Region], disk_size: int) -> list[tuple[int, int]]:
    """(offset, length) of the bytes no region covers: tables, EBRs, gaps, a GPT's backup."""
    gaps, pos = [], 0
    for r in sorted(regions, key=lambda r: r.start):
        if r.start > pos:
            gaps.append((pos, r.start - pos))
        pos = max(pos, r.end)
    if pos < disk_size:
        gaps.append((pos, disk_size - pos))
    return gaps
