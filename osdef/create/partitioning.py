"""Partition tables osdef writes itself: the plan (pure), its sfdisk script, and writing it from the host.

Layout, 1 MiB aligned:
  gpt:   1 BIOS boot (EF02, 1 MiB, lets grub-pc embed core.img) [, 2 ESP when EFI], last = root
  msdos: [1 ESP (type ef) when EFI,] last = root (bootable flag)
The root partition always runs to the end of the disk.  Writing the table
from the host with sfdisk is not a mount: no guest filesystem is touched.
An RBD disk (an ``rbd:`` URI, which sfdisk cannot open) gets the table
sfdisk writes onto a sparse scratch file of its size: the scratch file's
first and last MiB (the MBR, the GPT and its backup) are copied onto it
through librbd.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from osdef.disk.rbduri import is_uri
from osdef.disk.units import SECTOR, MiB
from osdef.errors import GuestError

ALIGN = MiB
BIOS_BOOT_SIZE = MiB
ESP_SIZE = 256 * MiB
GPT_TAIL = MiB  # backup GPT + alignment slack kept free at the end of a gpt disk

GPT_TYPES = {
    "bios": "21686148-6449-6E6F-744E-656564454649",
    "esp": "C12A7328-F81F-11D2-BA4B-00A0C93EC93B",
    "root": "0FC63DAF-8483-4772-8E79-3D69D8477DE4",
}
MBR_TYPES = {"esp": "ef", "root": "83"}


@dataclass(frozen=True)
class Partition:
    """One partition of the plan; size None means 'to the end of the disk'."""

    number: int
    role: str  # "bios" | "esp" | "root"
    start: int  # bytes
    size: int | None  # bytes


@dataclass(frozen=True)
class PartitionPlan:
    """The table osdef writes onto DISK_0."""

    table: str
    partitions: tuple[Partition, ...]

    def by_role(self, role: str) -> Partition | None:
        return next((p for p in self.partitions if p.role == role), None)

    @property
    def root(self) -> Partition:
        root = self.by_role("root")
        assert root is not None
        return root

    def root_capacity(self, disk_size: int) -> int:
        """Bytes available to the root partition on a disk of `disk_size` (conservative)."""
        tail = GPT_TAIL if self.table == "gpt" else 0
        return disk_size - self.root.start - tail


def plan(table: str, boot: str) -> PartitionPlan:
    """The partition plan for a table type and a boot mode."""
    # table and boot are words of osdef.vocab, checked where a variant or parameter named them
    parts: list[Partition] = []
    offset = ALIGN
    if table == "gpt":
        parts.append(Partition(len(parts) + 1, "bios", offset, BIOS_BOOT_SIZE))
        offset += BIOS_BOOT_SIZE
    if boot == "efi":
        parts.append(Partition(len(parts) + 1, "esp", offset, ESP_SIZE))
        offset += ESP_SIZE
    parts.append(Partition(len(parts) + 1, "root", offset, None))
    return PartitionPlan(table, tuple(parts))


def sfdisk_script(p: PartitionPlan) -> str:
    """The sfdisk input that writes plan `p` (sizes in 512-byte sectors)."""
    lines = [f"label: {'gpt' if p.table == 'gpt' else 'dos'}", "unit: sectors", ""]
    for part in p.partitions:
        fields = [f"start={part.start // SECTOR}"]
        if part.size is not None:
            fields.append(f"size={part.size // SECTOR}")
        if p.table == "gpt":
            fields.append(f"type={GPT_TYPES[part.role]}")
            fields.append(f'name="{part.role}"')
        else:
            fields.append(f"type={MBR_TYPES[part.role]}")
            if part.role == "root":
                fields.append("bootable")
        lines.append(", ".join(fields))
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class Extent:
    """Where a partition actually landed, in bytes."""

    start: int
    size: int


def parse_sfdisk_json(text: str) -> dict[int, Extent]:
    """Partition number → extent, from `sfdisk --json` output."""
    table = json.loads(text)["partitiontable"]
    sector = int(table.get("sectorsize", SECTOR))
    result: dict[int, Extent] = {}
    for entry in table.get("partitions", []):
        node = entry["node"]
        digits = ""
        for ch in reversed(node):
            if not ch.isdigit():
                break
            digits = ch + digits
        result[int(digits)] = Extent(int(entry["start"]) * sector, int(entry["size"]) * sector)
    return result


def _sfdisk(args: list[str], stdin: str | None = None) -> str:
    proc = subprocess.run(["sfdisk", *args], input=stdin, capture_output=True, text=True,
                          env={"PATH": "/sbin:/bin:/usr/sbin:/usr/bin", "LC_ALL": "C"})
    if proc.returncode != 0:
        msg = " ".join((proc.stderr or proc.stdout).split())[-300:]
        raise GuestError(f"sfdisk {' '.join(args)} failed: {msg}")
    return proc.stdout


def write_table(disk: Path | str, p: PartitionPlan) -> dict[int, Extent]:
    """Write plan `p` onto `disk` (file, block device or rbd: URI) and return where partitions landed."""
    if is_uri(disk):
        return _write_table_through_scratch(str(disk), p)
    _sfdisk(["--quiet", "--no-reread", "--no-tell-kernel", "--wipe", "always",
             "--wipe-partitions", "never", str(disk)], sfdisk_script(p))
    return read_table(disk)


def _write_table_through_scratch(uri: str, p: PartitionPlan) -> dict[int, Extent]:
    """sfdisk onto a sparse file of the disk's size, then its head and tail MiB onto the disk."""
    from osdef.disk.device import sync, write_at
    from osdef.create.target import open_target

    with open_target(uri) as target, tempfile.TemporaryDirectory(prefix="osdef-table-") as tmp:
        scratch = Path(tmp) / "disk.img"
        with open(scratch, "wb") as f:
            f.truncate(target.size)
        extents = write_table(scratch, p)
        with open(scratch, "rb") as f:
            for offset in sorted({0, max(0, target.size - MiB)}):
                length = min(MiB, target.size - offset)
                write_at(target, os.pread(f.fileno(), length, offset), offset)
        sync(target)
    return extents


def read_table(disk: Path | str) -> dict[int, Extent]:
    return parse_sfdisk_json(_sfdisk(["--json", str(disk)]))
