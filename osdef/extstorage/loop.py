"""Loop devices through losetup: find, attach, detach, resize.

An existing attachment is found with ``losetup -j FILE`` so that ``attach``
is idempotent and cheap (one losetup call when already attached).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from osdef.extstorage.errors import LoopError

LOSETUP = "losetup"


def _run(args: list[str], what: str) -> str:
    try:
        proc = subprocess.run([LOSETUP, *args], capture_output=True, text=True, check=False)
    except FileNotFoundError:
        raise LoopError("losetup not found: install util-linux") from None
    if proc.returncode != 0:
        detail = (proc.stderr.strip().splitlines() or [f"exit code {proc.returncode}"])[-1]
        raise LoopError(f"{what}: {detail}")
    return proc.stdout


def devices_of(backing: Path) -> list[str]:
    """The loop devices currently backed by this file (usually zero or one)."""
    out = _run(["-j", str(backing), "-n", "-O", "NAME"], f"cannot list loop devices of {backing}")
    return [line.strip() for line in out.splitlines() if line.strip()]


def attach(backing: Path) -> str:
    """Attach the file to a free loop device; returns /dev/loopN."""
    out = _run(["-f", "--show", str(backing)], f"cannot attach {backing} to a loop device")
    device = out.strip()
    if not device.startswith("/dev/"):
        raise LoopError(f"losetup attached {backing} but printed no device ({out!r})")
    return device


def detach(device: str) -> None:
    _run(["-d", device], f"cannot detach {device}")


def refresh_capacity(device: str) -> None:
    """Make the loop device see its backing file's new size (after grow)."""
    _run(["-c", device], f"cannot update the size of {device}")
