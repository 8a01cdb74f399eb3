"""The create's disk (DISK_0) from the host side, in the guest layer's terms (GuestError).

Opening for writing, the size check before any write, and the wipe of the
head and tail that makes a failed create never look like a good disk; the
I/O itself is osdef.disk's (zeroing keeps a loop device's volume sparse).
"""

from __future__ import annotations

from pathlib import Path

from osdef.disk import device
from osdef.disk.device import Disk
from osdef.disk.zeroing import wipe_ends
from osdef.errors import GuestError


def open_target(path: Path | str) -> Disk:
    """DISK_0 opened read-write (a regular file or a block device); failures raise GuestError."""
    return device.open_disk(path, write=True, error=GuestError)


def disk_size(path: Path | str) -> int:
    """Size in bytes of a file or block device, without opening it for writing."""
    return device.disk_size(path, error=GuestError)


def wipe(path: Path | str) -> None:
    """Invalidate a disk after a failed create: its first and last MiB zeroed (errors raise)."""
    with open_target(path) as disk:
        wipe_ends(disk)
