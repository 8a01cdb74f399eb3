"""Reuse of the BIOS boot area the guest's grub-install wrote for the same image and layout.

The create plan holds the decision as values (``CreatePlan.boot_area``: the
entry to write, or ``capture_boot_area``: keep what grub-install writes); the
cache itself (``BootAreaCache``) is the pipeline's collaborator, asked once
when the plan is built and told afterwards what to store.

grub-install --target=i386-pc writes three things: boot.img into the first
440 bytes of the disk, core.img into the BIOS boot partition (gpt) or the gap
after the MBR (msdos), and its modules, fonts and locales under /boot/grub.
For one image (one grub build) on one partition layout they are the same on
every disk: /boot/grub sits on the disk grub boots from, so core.img finds it
by partition number ("(,gpt2)/boot/grub"), not by filesystem UUID.  Measured:
two creates with different filesystem UUIDs and disk GUIDs wrote byte-identical
boot areas.

So the first BIOS create of an image on a node runs the guest's own
grub-install and keeps what it wrote (/boot/grub as a tar, saved by
osdef.guest.bootloader in the appliance; the two areas read by `store` from
the host once the appliance is down); later creates of the same
image and layout write the two areas from the host with the partition table
and unpack the /boot/grub tree in the appliance: ≈1 s under TCG instead of
≈5 s for grub-probe + grub-install.  grub.cfg is never cached (it names the
root UUID); osdef renders it every time.

An entry is a directory <key>/ holding mbr.bin, core.bin, grub.tar and
entry.json (offsets, sizes, sha256 of each file); it is created under a
temporary name and renamed into place, and ignored (grub-install runs) when a
file is missing or its sha256 does not match.  The key hashes the image's
sha256, the table, the boot mode, the root filesystem type, the partition
plan and FORMAT.  Dropping the directory is always safe.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from osdef.disk.device import open_disk, read_bytes, sync, write_at
from osdef.disk.units import SECTOR, MiB
from osdef.errors import GuestError
from osdef.create.partitioning import PartitionPlan
from osdef.create.target import open_target

FORMAT = 1
MBR_CODE = 440  # boot.img's code; the disk signature and partition table follow
FILES = ("mbr.bin", "core.bin", "grub.tar")


@dataclass(frozen=True)
class BootArea:
    """One cached entry: where core.img goes and the files that hold the bytes."""

    directory: Path
    core_offset: int  # bytes from the start of the disk

    @property
    def mbr(self) -> Path:
        return self.directory / "mbr.bin"

    @property
    def core(self) -> Path:
        return self.directory / "core.bin"

    @property
    def grub_tree(self) -> Path:
        return self.directory / "grub.tar"


def core_region(plan: PartitionPlan) -> tuple[int, int]:
    """(offset, size) of the area grub-install embeds core.img in, for osdef's plans."""
    bios = plan.by_role("bios")
    if bios is not None and bios.size:
        return bios.start, bios.size
    first = min(p.start for p in plan.partitions)
    return SECTOR, first - SECTOR  # msdos: the gap between the MBR and the first partition


def entry_key(image_sha256: str, plan: PartitionPlan, boot: str, fs_type: str) -> str:
    """The cache key: everything grub-install's output depends on here."""
    layout = [(p.number, p.role, p.start, p.size if p.role != "root" else None)
              for p in plan.partitions]
    text = json.dumps({"format": FORMAT, "image": image_sha256, "table": plan.table,
                       "boot": boot, "fs": fs_type, "layout": layout}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(MiB), b""):
            h.update(chunk)
    return h.hexdigest()


def _trim(data: bytes) -> bytes:
    """Drop trailing zero sectors (grub writes core.img only; the rest is left as it was)."""
    end = len(data.rstrip(b"\0"))
    return data[:-(-end // SECTOR) * SECTOR] if end else b""


class BootAreaCache:
    """Boot areas of one image, in `directory` (the image cache's bootareas/)."""

    def __init__(self, directory: Path, image_sha256: str, log: Callable[[str], None] = print,
                 image_name: str = ""):
        self.directory = Path(directory)
        self.image_sha256 = image_sha256
        self.image_name = image_name
        self.log = log

    def decide(self, plan: PartitionPlan | None, boot: str, fs_type: str,
               bootloader_runs: bool) -> tuple[BootArea | None, bool]:
        """(the cached entry to write, whether to keep what grub-install writes) for one create.

        Only for BIOS boot on a table osdef writes (``plan``) with the bootloader step running;
        otherwise neither.
        """
        if plan is None or boot != "bios" or not bootloader_runs:
            return None, False
        area = self.load(plan, boot, fs_type)
        return area, area is None

    def key(self, plan: PartitionPlan, boot: str, fs_type: str) -> str:
        return entry_key(self.image_sha256, plan, boot, fs_type)

    def load(self, plan: PartitionPlan, boot: str, fs_type: str) -> BootArea | None:
        """The verified entry for this layout, or None (missing, partial, or damaged)."""
        if boot != "bios" or not self.image_sha256:
            return None
        path = self.directory / self.key(plan, boot, fs_type)
        try:
            meta = json.loads((path / "entry.json").read_text())
            offset, size = core_region(plan)
            if meta.get("format") != FORMAT or meta.get("core_offset") != offset:
                return None
            if (path / "core.bin").stat().st_size > size:
                return None
            for name in FILES:
                if _sha256(path / name) != meta["sha256"][name]:
                    self.log(f"warning: cached boot area {path} is damaged ({name}); running grub-install")
                    return None
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            self.log(f"warning: cached boot area {path} unreadable ({exc}); running grub-install")
            return None
        return BootArea(path, int(meta["core_offset"]))

    def store(self, disk: Path | str, plan: PartitionPlan, boot: str, fs_type: str,
              grub_tree: Path) -> Path | None:
        """Keep the boot area grub-install just wrote on `disk` (appliance down); never raises.

        `grub_tree` is the tar of /boot/grub captured right after grub-install
        (osdef.guest.bootloader).  Returns the entry's directory, or None when
        it could not be stored (logged; the create itself is not affected).
        """
        key = self.key(plan, boot, fs_type)
        final = self.directory / key
        offset, size = core_region(plan)
        tmp: str | None = None
        try:
            with open_disk(disk, write=False, error=GuestError) as source:
                mbr = read_bytes(source, 0, MBR_CODE)
                core = _trim(read_bytes(source, offset, size))
            if len(mbr) != MBR_CODE or not mbr.strip(b"\0") or not core:
                self.log(f"warning: no grub boot code found on {disk}; boot area not cached")
                return None
            self.directory.mkdir(parents=True, exist_ok=True)
            tmp = tempfile.mkdtemp(prefix=f".{key}.", dir=self.directory)
            (Path(tmp) / "mbr.bin").write_bytes(mbr)
            (Path(tmp) / "core.bin").write_bytes(core)
            shutil.copyfile(grub_tree, Path(tmp) / "grub.tar")
            meta = {"format": FORMAT, "image": self.image_name, "image_sha256": self.image_sha256,
                    "table": plan.table,
                    "boot": boot, "fs_type": fs_type, "core_offset": offset,
                    "sha256": {name: _sha256(Path(tmp) / name) for name in FILES}}
            (Path(tmp) / "entry.json").write_text(json.dumps(meta, indent=1) + "\n")
            for name in (*FILES, "entry.json"):
                with open(Path(tmp) / name, "rb") as f:
                    os.fsync(f.fileno())
            os.chmod(tmp, 0o755)
            os.rename(tmp, final)  # fails if another create stored it first: fine
            tmp = None
            self.log(f"boot area cached in {final} for the next creates of this image")
            self._drop_older_builds()
            return final
        except (OSError, GuestError) as exc:
            if final.is_dir():
                return final
            self.log(f"warning: boot area not cached ({getattr(exc, 'strerror', None) or exc})")
            return None
        finally:
            if tmp is not None:
                shutil.rmtree(tmp, ignore_errors=True)

    def _drop_older_builds(self) -> None:
        """Remove the entries of earlier builds of this image (another sha256): never used again."""
        if not self.image_name:
            return
        for entry in self.directory.iterdir():
            try:
                meta = json.loads((entry / "entry.json").read_text())
            except (OSError, ValueError):
                continue
            if meta.get("image") == self.image_name and meta.get("image_sha256") != self.image_sha256:
                shutil.rmtree(entry, ignore_errors=True)
                self.log(f"removed the boot area of an earlier build of {self.image_name}: {entry}")


def write_boot_area(disk: Path | str, area: BootArea) -> None:
    """Write boot.img's code and core.img from the cache onto `disk` (host side, before launch)."""
    try:
        mbr = area.mbr.read_bytes()[:MBR_CODE]
        core = area.core.read_bytes()
    except OSError as exc:
        raise GuestError(f"cannot read the cached boot area {area.directory}: {exc.strerror or exc}") from None
    with open_target(disk) as target:
        write_at(target, mbr, 0)
        write_at(target, core, area.core_offset)
        sync(target)
