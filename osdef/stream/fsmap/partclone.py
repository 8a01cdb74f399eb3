"""Used-block maps of xfs and btrfs, from ``partclone.xfs -D`` / ``partclone.btrfs -D`` (a ddrescue domain log).

Their free space lives in B+trees (xfs: per-AG free-space btrees; btrfs: the
extent tree), which partclone already walks with the filesystems' own
libraries; a home-made walker would be far more code to trust.  So the tool
runs, treated as a parser of hostile input:

* on a read-only loop device limited to the partition (osdef.disk.loop:
  ``losetup -r -o --sizelimit``; the whole disk itself when the filesystem
  fills it), so it can read nothing else and write nothing;
* in new network and mount namespaces (``unshare -n -m``: no network), as
  the unprivileged ``nobody`` with no capabilities (``setpriv``), reading the
  loop device through a node made for it on a private tmpfs (the only device
  it can open; the node vanishes with the namespace), its address space
  bounded (``prlimit --as``), killed after a timeout, stdin closed, its log
  sent to /dev/null;
* its domain log is checked line by line (ordered, contiguous, inside the
  partition) before it is used; a non-zero exit, a timeout, or any line that
  does not parse makes the map unusable.

Clean state first: an xfs whose log is not clean (``xfs_logprint -t`` does
not say ``<CLEAN>``, run the same way) or a btrfs whose superblock points to a
log tree (an fsync log awaiting replay) is refused.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import shutil
import stat
import struct
import subprocess
from collections.abc import Iterator

from osdef.disk import loop
from osdef.disk.ondisk import signatures
from osdef.stream.fsmap.base import FsMap, Reader, Unusable

TIMEOUT = 600  # seconds; partclone reads only metadata
ADDRESS_SPACE = 2 << 30  # bytes
SANDBOX_ID = 65534  # nobody / nogroup
SANDBOX_NODE = "/tmp/osdef-fs"  # on the tmpfs mounted over /tmp inside the sandbox's mount namespace
TOOLS = ("unshare", "prlimit", "setpriv", "mknod", "mount")
_LINE = re.compile(r"^0x([0-9A-Fa-f]+)\s+0x([0-9A-Fa-f]+)\s+([?+*/\-])\s*$")


def _sandboxed(argv: list[str], device: str) -> subprocess.CompletedProcess[bytes]:
    """Run argv (which names ``device``) unprivileged, without network, on its own node of ``device``."""
    try:
        rdev = os.stat(device).st_rdev if stat.S_ISBLK(os.stat(device).st_mode) else None
    except OSError:
        rdev = None
    if rdev is None:
        raise Unusable(f"{device} is not a block device to sandbox {argv[0]} on")
    inner = [SANDBOX_NODE if a == device else a for a in argv]
    ident = f"{SANDBOX_ID}:{SANDBOX_ID}"
    script = (f"mount -t tmpfs -o size=64k,mode=0755 osdef-sandbox /tmp && "
              f"mknod -m 0600 {SANDBOX_NODE} b {os.major(rdev)} {os.minor(rdev)} && "
              f"chown {ident} {SANDBOX_NODE} && "
              f"exec setpriv --reuid={SANDBOX_ID} --regid={SANDBOX_ID} --clear-groups --no-new-privs "
              f"--inh-caps=-all --bounding-set=-all prlimit --as={ADDRESS_SPACE} -- {shlex.join(inner)}")
    wrapped = ["unshare", "-n", "-m", "--propagation", "private", "sh", "-c", script]
    try:
        return subprocess.run(wrapped, stdin=subprocess.DEVNULL, capture_output=True, timeout=TIMEOUT,
                              env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C"})
    except subprocess.TimeoutExpired:
        raise Unusable(f"{argv[0]} did not finish within {TIMEOUT} s") from None
    except OSError as e:
        raise Unusable(f"{argv[0]} could not run: {e.strerror}") from None


@contextlib.contextmanager
def _partition_device(reader: Reader) -> Iterator[str]:
    """A read-only loop device showing exactly the partition (or the whole disk it fills), detached afterwards."""
    disk, part = reader.disk, reader.part
    try:  # also for a filesystem that fills the disk: the tool gets a read-only device node, nothing else
        device = loop.attach(disk.path, read_only=True, offset=part.start, sizelimit=part.length)
    except loop.LoopError:
        raise Unusable("no read-only loop device for it could be set up") from None
    try:
        yield device
    finally:
        with contextlib.suppress(loop.LoopError):  # the map is read: a device left attached is no reason to drop it
            loop.detach(device)


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


def used_map(reader: Reader) -> FsMap:
    fs = signatures.by_magic(reader.at)
    if fs not in ("xfs", "btrfs"):
        raise Unusable(f"partclone maps xfs and btrfs, not {fs}")
    tool = f"partclone.{fs}"
    if reader.disk.volume is not None:  # an RBD image (osdef.disk.rbd): no device node to sandbox partclone on
        raise Unusable(f"its {fs} filesystem is on an RBD image, which {tool} cannot read (no kernel device)")
    if shutil.which(tool) is None or any(shutil.which(t) is None for t in TOOLS):
        raise Unusable(f"its {fs} filesystem needs {tool} (package partclone) and util-linux's "
                       f"{', '.join(TOOLS)} for a map", fs)
    if fs == "btrfs":
        log_root, = struct.unpack_from("<Q", reader.read(signatures.BTRFS_SUPER + 0x60, 8))
        if log_root:
            raise Unusable("its btrfs has a log tree awaiting replay (not cleanly unmounted)")
    with _partition_device(reader) as dev:
        if fs == "xfs":
            log = _sandboxed(["xfs_logprint", "-t", dev], dev)
            if log.returncode != 0 or b"state: <CLEAN>" not in log.stdout:
                raise Unusable("its xfs log is not clean (not cleanly unmounted)")
        done = _sandboxed([tool, "-D", "-q", "-L", "/dev/null", "-s", dev, "-o", "-"], dev)
    if done.returncode != 0:
        raise Unusable(f"{tool} -D failed (exit {done.returncode})")
    used, covered = parse_domain(done.stdout.decode("ascii", "replace"), reader.length)
    # past ``covered`` (a filesystem smaller than its partition): block level
    return FsMap(fs, used, covered, f"{tool} -D")
