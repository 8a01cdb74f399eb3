"""Finish a filesystem image diskimage-builder just built: e2fsck -f -p, then the recipe's
fs_features (tune2fs -O), once, on the build host.

DIB made this filesystem on this host (mkfs, a loop mount, a copy), so a host
e2fsck of its output adds no exposure the build did not already have.  The
check leaves the image "checked since its last mount", which lets every create
skip its own full e2fsck in the appliance (osdef.disk.ondisk.ext) — the bytes a
create writes are the checked bytes.  A filesystem e2fsck cannot repair on its
own fails the build.  Images that are added or downloaded are not checked on
the host: their creates run e2fsck in the appliance.

fs_features: metadata_csum_seed (for guests whose GRUB reads it — Debian 12's
2.06-13 and later do) keeps the checksum seed in the superblock, so each
create's `tune2fs -U` rewrites the superblock alone instead of every metadata
checksum (measured under TCG in one appliance, cold: 1.3 s instead of 1.9 s).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from osdef.errors import ImageError
from osdef.fileutil import tool_said, which_sbin
from osdef.vocab import EXT_FAMILY

#: e2fsck exit codes that leave a consistent filesystem: 0 clean, 1 errors corrected
ACCEPTED = (0, 1)


def check_built_image(path: Path, fs_type: str | None, features: tuple[str, ...] = ()) -> bool:
    """e2fsck -f -p an ext2/3/4 image in place, then turn `features` on; False (nothing
    done) for other filesystem types."""
    if fs_type not in EXT_FAMILY:
        return False
    proc = _run("e2fsck", "-f", "-p", str(path))
    if proc.returncode not in ACCEPTED:
        raise ImageError(f"the filesystem diskimage-builder built ({path.name}) fails e2fsck "
                         f"(exit {proc.returncode}): {tool_said(proc)}")
    if features:
        proc = _run("tune2fs", "-O", ",".join(features), str(path))
        if proc.returncode != 0:
            raise ImageError(f"tune2fs -O {','.join(features)} failed on {path.name} "
                             f"(exit {proc.returncode}): {tool_said(proc)}")
    return True


def _run(tool: str, *args: str) -> subprocess.CompletedProcess[str]:
    exe = which_sbin(tool)
    if exe is None:
        raise ImageError(f"{tool} is needed to finish the built image: apt-get install e2fsprogs")
    return subprocess.run([exe, *args], stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          check=False)

