"""An RBD image (or snapshot) as a read-only regular file, for a tool that reads a path.

partclone maps xfs and btrfs (osdef.stream.fsmap.partclone) and reads a
device node; an image given as an ``rbd:`` URI has none here (no kernel rbd,
no nbd).  ``exposed`` starts ``qemu-storage-daemon`` (Debian 12's
qemu-system-common, 13's qemu-utils; qemu-block-extra's rbd driver) with the image as a
read-only block node and a FUSE export of it onto a file in a private
directory (mode 0700), waits until the export is mounted, yields the file,
and stops the daemon afterwards (the mount goes with it; a lazy unmount if
it did not).  A loop device can then stand on the file as on any file.
The daemon gets SIGTERM when this process ends, however it ends
(``setpriv --pdeathsig``): a killed export leaves no daemon or mount behind.

The daemon reaches the cluster as qemu does for libguestfs (osdef.guest.session):
client.<id> of the URI, monitors and keyring from its ceph.conf; no key is
read or passed by osdef.  Nothing is written: the node is opened
``read-only=on`` and exported ``writable=off``.  Failures raise
``RbdFileError`` with one line (the daemon's own last line, when it said one).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from osdef.disk.rbduri import RbdUri
from osdef.errors import OsdefError

DAEMON = "qemu-storage-daemon"
READY_TIMEOUT = 60.0  # seconds until the export is mounted (a cluster connection included)
STOP_TIMEOUT = 30.0


class RbdFileError(OsdefError):
    """The image could not be exposed as a file."""


def available() -> str | None:
    """None when ``exposed`` can work here, else why not."""
    if shutil.which("setpriv") is None:
        return "setpriv (util-linux) is not installed"
    if shutil.which(DAEMON) is None:
        return f"{DAEMON} is not installed (package qemu-system-common on Debian 12, qemu-utils on 13)"
    if not os.path.exists("/dev/fuse"):
        return "/dev/fuse does not exist (no FUSE in this kernel)"
    return None


def blockdev(uri: RbdUri) -> str:
    """The ``--blockdev`` value: qemu's rbd driver on the image, read-only (commas doubled, as qemu quotes)."""
    options = [("driver", "rbd"), ("node-name", "image"), ("pool", uri.pool), ("image", uri.image)]
    options += [(k, v) for k, v in (("namespace", uri.namespace), ("snapshot", uri.snapshot),
                                    ("conf", uri.conf), ("user", uri.user)) if v]
    options += [("read-only", "on"), ("cache.direct", "off")]
    return ",".join(f"{k}={v.replace(',', ',,')}" for k, v in options)


@contextlib.contextmanager
def exposed(uri: RbdUri, size: int) -> Iterator[Path]:
    """The image as a read-only file of ``size`` bytes while the ``with`` block runs."""
    why = available()
    if why is not None:
        raise RbdFileError(why)
    with tempfile.TemporaryDirectory(prefix="osdef-rbdfile-") as private:
        path = Path(private) / "image"
        path.touch(mode=0o400)
        # setpriv --pdeathsig: the daemon ends with this process, even one killed without a chance to clean up
        argv = ["setpriv", "--pdeathsig", "TERM", "--", DAEMON, "--blockdev", blockdev(uri),
                "--export", f"type=fuse,id=export,node-name=image,mountpoint={path},writable=off"]
        env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C"}
        log = Path(private) / "daemon.log"  # a file, not a pipe: a chatty daemon must never block on it
        with open(log, "wb") as err:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err, env=env)
        try:
            _wait_mounted(proc, path, size, uri, log)
            yield path
        finally:
            _stop(proc, path)


def _wait_mounted(proc: subprocess.Popen[bytes], path: Path, size: int, uri: RbdUri, log: Path) -> None:
    unmounted = os.stat(path.parent).st_dev
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            said = log.read_bytes()[-4096:].decode("utf-8", "replace").strip().splitlines()
            last = said[-1] if said else f"exit {proc.returncode}"
            raise RbdFileError(f"{DAEMON} could not export {uri.display}: {last[:300]}")
        st = os.stat(path)
        if st.st_dev != unmounted:
            if st.st_size != size:
                raise RbdFileError(f"{DAEMON} exported {uri.display} with {st.st_size} bytes, not {size}")
            return
        time.sleep(0.02)
    raise RbdFileError(f"{DAEMON} did not export {uri.display} within {READY_TIMEOUT:.0f} s")


def _stop(proc: subprocess.Popen[bytes], path: Path) -> None:
    """End the daemon (its FUSE mount goes with it); a lazy unmount if the file is still a mount."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    if os.path.ismount(path):
        subprocess.run(["umount", "-l", str(path)], check=False, capture_output=True)
