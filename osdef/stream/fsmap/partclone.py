"""Used-block maps of xfs and btrfs, from ``partclone.xfs -D`` / ``partclone.btrfs -D`` (a ddrescue domain log).

Their free space lives in B+trees (xfs: per-AG free-space btrees; btrfs: the
extent tree), which partclone already walks with the filesystems' own
libraries; a home-made walker would be far more code to trust.  So the tool
runs, treated as a parser of hostile input:

* on a read-only loop device limited to the partition (``losetup -r -o
  --sizelimit``; the whole disk itself when the filesystem fills it), so it
  can read nothing else and write nothing;
* in a new network namespace (``unshare -n``: no network), with its address
  space bounded (``prlimit --as``), killed after a timeout, stdin closed;
* its domain log is checked line by line (ordered, contiguous, inside the
  partition) before it is used; a non-zero exit, a timeout, or any line that
  does not parse makes the map unusable.

Clean state first: an xfs whose log is not clean (``xfs_logprint -t`` does
not say ``<CLEAN>``, run the same way) or a btrfs whose superblock points to a
log tree (an fsync log awaiting replay) is refused.
"""

from __future__ import annotations

import re
import shutil
import struct
import subprocess

from osdef.stream.fsmap import FsMap, Reader, Unusable

XFS_MAGIC = b"XFSB"
BTRFS_SUPER = 0x10000
BTRFS_MAGIC = b"_BHRfS_M"
TIMEOUT = 600  # seconds; partclone reads only metadata
ADDRESS_SPACE = 2 << 30  # bytes
_LINE = re.compile(r"^0x([0-9A-Fa-f]+)\s+0x([0-9A-Fa-f]+)\s+([?+*/\-])\s*$")


def _probe(reader: Reader) -> str | None:
    if reader.peek(0, 4) == XFS_MAGIC:
        return "xfs"
    if reader.peek(BTRFS_SUPER + 0x40, 8) == BTRFS_MAGIC:
        return "btrfs"
    return None


def _sandboxed(argv: list[str]) -> subprocess.CompletedProcess:
    wrapped = ["unshare", "-n", "prlimit", f"--as={ADDRESS_SPACE}", "--"] + argv
    try:
        return subprocess.run(wrapped, stdin=subprocess.DEVNULL, capture_output=True, timeout=TIMEOUT,
                              env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C"})
    except subprocess.TimeoutExpired:
        raise Unusable(f"{argv[0]} did not finish within {TIMEOUT} s") from None
    except OSError as e:
        raise Unusable(f"{argv[0]} could not run: {e.strerror}") from None


class _PartitionDevice:
    """A read-only block device showing exactly the partition: the disk itself, or a loop device over it."""

    def __init__(self, reader: Reader):
        self.reader = reader
        self.path = None
        self.loop = None

    def __enter__(self) -> str:
        disk, part = self.reader.disk, self.reader.part
        if part.start == 0 and part.length == disk.size:
            self.path = disk.path
            return self.path
        try:
            out = subprocess.run(["losetup", "-r", "-f", "--show", "-o", str(part.start), "--sizelimit",
                                  str(part.length), disk.path], capture_output=True, text=True, timeout=60)
        except (OSError, subprocess.TimeoutExpired):
            raise Unusable("no read-only loop device for it could be set up") from None
        if out.returncode != 0 or not out.stdout.strip().startswith("/dev/loop"):
            raise Unusable("no read-only loop device for it could be set up")
        self.loop = self.path = out.stdout.strip()
        return self.path

    def __exit__(self, *exc) -> None:
        if self.loop is not None:
            subprocess.run(["losetup", "-d", self.loop], capture_output=True, timeout=60, check=False)


def parse_domain(text: str, length: int) -> tuple[list[tuple[int, int]], int]:
    """(``+`` (used) ranges, bytes covered) of a ddrescue domain log, checked to tile [0, covered) in order."""
    used: list[tuple[int, int]] = []
    pos = 0
    seen_status = False
    for line in text.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        if not seen_status:  # the current-position line: "0xPOS  STATUS"
            seen_status = True
            if re.match(r"^0x[0-9A-Fa-f]+\s+\S\s*$", line):
                continue
        m = _LINE.match(line)
        if m is None:
            raise Unusable("partclone's domain log has a line that does not parse")
        start, size, status = int(m.group(1), 16), int(m.group(2), 16), m.group(3)
        if start != pos or size <= 0 or start + size > length:
            raise Unusable("partclone's domain log has a range out of order or outside the partition")
        if status == "+":
            if used and used[-1][0] + used[-1][1] == start:
                used[-1] = (used[-1][0], used[-1][1] + size)
            else:
                used.append((start, size))
        elif status != "?":
            raise Unusable(f"partclone's domain log marks a range {status!r}")
        pos = start + size
    if not used:
        raise Unusable("partclone's domain log holds no used range")
    return used, pos


def used_map(reader: Reader) -> FsMap | None:
    fs = _probe(reader)
    if fs is None:
        return None
    tool = f"partclone.{fs}"
    if shutil.which(tool) is None or shutil.which("unshare") is None or shutil.which("prlimit") is None:
        raise Unusable(f"its {fs} filesystem needs {tool} (package partclone) for a map")
    if fs == "btrfs":
        log_root, = struct.unpack_from("<Q", reader.read(BTRFS_SUPER + 0x60, 8))
        if log_root:
            raise Unusable("its btrfs has a log tree awaiting replay (not cleanly unmounted)")
    with _PartitionDevice(reader) as dev:
        if fs == "xfs":
            log = _sandboxed(["xfs_logprint", "-t", dev])
            if log.returncode != 0 or b"state: <CLEAN>" not in log.stdout:
                raise Unusable("its xfs log is not clean (not cleanly unmounted)")
        done = _sandboxed([tool, "-D", "-q", "-s", dev, "-o", "-"])
    if done.returncode != 0:
        raise Unusable(f"{tool} -D failed (exit {done.returncode})")
    used, covered = parse_domain(done.stdout.decode("ascii", "replace"), reader.length)
    return FsMap(fs, used, covered)  # past ``covered`` (a filesystem smaller than its partition): block level
