"""A Ganeti instance's guest files, read from its disk file with e2fsprogs (debugfs): no mount,
no appliance.

The trixie tier checks the guest after every cluster step; a libguestfs
appliance per check would cost ~50 s under TCG, debugfs a second, and it is
an oracle independent of osdef's own libguestfs code.  The root filesystem
is the disk's largest partition (sfdisk -J), a data disk a filesystem on the
whole disk; both are addressed as ``disk?offset=N`` (e2fsprogs' unix I/O
manager).  Only our own test guests are read this way.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from tests.cluster.ganeti.guestdisk import DIGEST_TREES, IMAGE_FILES, RENAMED_FILES
from tests.support.fsdisks import tree_sums


def root_partition(disk: Path) -> tuple[int, int]:
    """(start, size) in bytes of the disk's largest partition: the guest's root."""
    table = json.loads(subprocess.run(["sfdisk", "-J", str(disk)], capture_output=True, text=True,
                                      check=True).stdout)["partitiontable"]
    part = max(table["partitions"], key=lambda p: p["size"])
    return part["start"] * 512, part["size"] * 512


def _debugfs(ref: str, request: str, *, write: bool = False) -> subprocess.CompletedProcess:
    argv = ["debugfs", *(["-w"] if write else []), "-R", request, ref]
    proc = subprocess.run(argv, capture_output=True, text=True, errors="replace")
    # debugfs exits 0 after a failed request; its errors come on stderr after the banner
    errors = [ln for ln in proc.stderr.splitlines() if ln.strip() and not ln.startswith("debugfs ")]
    if proc.returncode != 0 or errors:
        raise FileNotFoundError(f"debugfs {request!r} on {ref}: {' '.join(errors) or proc.returncode}")
    return proc


@dataclass(frozen=True)
class ExtFs:
    """One ext filesystem inside a disk file."""

    disk: Path
    offset: int = 0

    @classmethod
    def root_of(cls, disk: Path) -> ExtFs:
        return cls(disk, root_partition(disk)[0])

    @property
    def ref(self) -> str:
        return f"{self.disk}?offset={self.offset}"

    def cat(self, path: str) -> str | None:
        """The file's text; None when it does not exist."""
        try:
            return _debugfs(self.ref, f"cat {path}").stdout
        except FileNotFoundError:
            return None

    def write(self, path: str, text: str) -> None:
        """A new file at path (its directory must exist)."""
        with tempfile.NamedTemporaryFile("w", suffix=".txt") as src:
            src.write(text)
            src.flush()
            _debugfs(self.ref, f"write {src.name} {path}", write=True)

    def sha256(self, path: str) -> str:
        """sha256 of a file's bytes (debugfs dump: binary-safe); '-' when it does not exist."""
        with tempfile.TemporaryDirectory(dir="/var/tmp") as tmp:
            out = Path(tmp) / "file"
            try:
                _debugfs(self.ref, f"dump {path} {out}")
            except FileNotFoundError:
                return "-"
            return hashlib.sha256(out.read_bytes()).hexdigest()

    def sums(self, trees: tuple[str, ...]) -> dict[str, str]:
        """{guest path: sha256 or '-> target'} of every file under trees (debugfs rdump)."""
        found: dict[str, str] = {}
        with tempfile.TemporaryDirectory(dir="/var/tmp") as tmp:
            for tree in trees:
                out = Path(tmp) / tree.strip("/").replace("/", "_")
                out.mkdir()
                _debugfs(self.ref, f"rdump {tree} {out}")
                base = tree.rsplit("/", 1)[0]
                found.update({f"{base}/{name}": s for name, s in tree_sums(out).items()})
        return found


def digest(sums: dict[str, str], leave_out: tuple[str, ...] = RENAMED_FILES) -> str:
    lines = sorted(f"{path} {s}" for path, s in sums.items() if path not in leave_out)
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


@dataclass(frozen=True)
class GuestFiles:
    """What the tier asserts on after each step (cf. tests/cluster/ganeti/guestdisk.GuestView)."""

    hostname: str
    hosts: str
    fstab: str
    digest: str  # DIGEST_TREES without the files a rename changes
    image_digest: str  # files only the image provides: equal iff laid down from the same image


def read_guest(disk: Path) -> GuestFiles:
    root = ExtFs.root_of(disk)
    image = {f: root.sha256(f) for f in IMAGE_FILES}
    return GuestFiles(hostname=(root.cat("/etc/hostname") or "").strip(), hosts=root.cat("/etc/hosts") or "",
                      fstab=root.cat("/etc/fstab") or "", digest=digest(root.sums(DIGEST_TREES)),
                      image_digest=digest(image, leave_out=()))


def filesystem_uuid(disk: Path, offset: int = 0) -> str:
    out = subprocess.run(["dumpe2fs", "-h", f"{disk}?offset={offset}"], capture_output=True, text=True,
                         check=True).stdout
    return next(ln.split(":", 1)[1].strip() for ln in out.splitlines() if ln.startswith("Filesystem UUID:"))
