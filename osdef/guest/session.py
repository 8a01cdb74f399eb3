"""One libguestfs appliance per script run: launch, mount, run commands in the guest, shut down.

Every libguestfs failure leaves this module as a GuestError with a one-line
message naming what osdef was doing.  Guest filesystems are only ever mounted
inside the appliance, never on the host.

A disk given as an ``rbd:`` URI is attached with libguestfs' rbd protocol:
the appliance's qemu opens the image through its own librbd, as client.<id>
of the URI, with the monitors and the keyring named by the URI's ceph.conf
(passed to qemu as CEPH_CONF).  No cephx key is handed to libguestfs: it
would put it on qemu's command line (`ps`) and in its debug output.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import guestfs

from osdef.config import LibguestfsSettings
from osdef.disk import rbduri
from osdef.errors import GuestError
from osdef.vocab import EXT_FAMILY

T = TypeVar("T")
_RC_MARK = "\n__osdef_rc="
GUEST_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
PREAD_MAX = 1 << 20  # below libguestfs's 2 MiB message limit


def configure(g: Any, s: LibguestfsSettings) -> None:
    """Apply the site's libguestfs settings to a handle not yet launched (every appliance osdef or
    its tests launch)."""
    if s.backend:
        g.set_backend(s.backend)
    if s.backend_settings:
        g.set_backend_settings(list(s.backend_settings))
    if s.memsize_mib:
        g.set_memsize(s.memsize_mib)
    if s.smp:
        g.set_smp(s.smp)


def drive_letters(index: int) -> str:
    """a … z, aa … az, ba …: the suffix libguestfs gives the index-th drive."""
    letters = ""
    index += 1
    while index:
        index, rem = divmod(index - 1, 26)
        letters = chr(ord("a") + rem) + letters
    return letters


def one_line(text: str, limit: int = 300) -> str:
    """Collapse a (possibly multi-line) message into one line of at most `limit` characters."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else "…" + flat[-limit:]


class GuestSession:
    """An appliance with the given disks attached (raw), as a context manager."""

    def __init__(self, disks: Sequence[str | Path], settings: LibguestfsSettings, *,
                 readonly: bool = False, cachemode: str = "unsafe",
                 log: Callable[[str], None] | None = None):
        self.disks = [rbduri.as_location(d) for d in disks]  # paths, or completed rbd: URIs
        self.settings = settings
        self.readonly = readonly
        self.cachemode = cachemode
        self.log = log or (lambda _msg: None)
        self._g: Any = None
        self._mounts: list[str] = []  # mountpoints, in mount order

    # -- lifecycle ---------------------------------------------------------

    def __enter__(self) -> "GuestSession":
        if self._g is None:
            self.launch()
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            self.shutdown()
        else:
            self.close()

    def launch(self) -> None:
        g = guestfs.GuestFS(python_return_dict=True, close_on_exit=False)
        self._g = g
        s = self.settings
        self.call("configure libguestfs", configure, g, s)
        for disk in self.disks:
            self._attach(g, disk)
        self.call("launch the appliance", g.launch)

    def _attach(self, g: Any, disk: str | Path) -> None:
        if not isinstance(disk, str):
            self.call(f"attach {disk}", g.add_drive_opts, str(disk), format="raw",
                      readonly=self.readonly, cachemode=self.cachemode)
            return
        try:
            uri = rbduri.parse(disk)
            confs = {(rbduri.parse(d).conf or rbduri.DEFAULT_CONF) for d in self.disks if isinstance(d, str)}
        except rbduri.UriError as exc:
            raise GuestError(str(exc)) from None
        conf = uri.conf or rbduri.DEFAULT_CONF
        if len(confs) > 1:
            raise GuestError("the instance's RBD disks name different ceph.conf files; one appliance reads "
                             "one: give them the same conf=")
        os.environ["CEPH_CONF"] = conf  # the appliance's qemu (a child) reads it: monitors and keyring
        self.call(f"attach {uri.display}", g.add_drive_opts, uri.spec, format="raw", protocol="rbd",
                  username=uri.user or rbduri.DEFAULT_USER, readonly=self.readonly or bool(uri.snapshot),
                  cachemode=self.cachemode)

    def shutdown(self) -> None:
        """Unmount everything, sync and stop the appliance; errors are GuestErrors."""
        if self._g is None:
            return
        try:
            if self._mounts:
                self.call("unmount the guest filesystems", self._g.umount_all)
                self._mounts.clear()
            self.call("shut the appliance down", self._g.shutdown)
        finally:
            self.close()

    def close(self) -> None:
        """Drop the handle without a clean shutdown (used on the error path)."""
        if self._g is not None:
            try:
                self._g.close()
            except RuntimeError:
                pass
            self._g = None

    # -- calling libguestfs --------------------------------------------------

    @property
    def g(self) -> Any:
        """The raw guestfs handle, for steps that need an API not wrapped here."""
        if self._g is None:
            raise GuestError("the appliance is not running")
        return self._g

    def call(self, what: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a libguestfs call; turn its RuntimeError into a one-line GuestError."""
        try:
            return fn(*args, **kwargs)
        except RuntimeError as exc:
            raise GuestError(f"{what} failed: {one_line(str(exc)) or 'no message'}") from None

    # -- devices and mounts ----------------------------------------------------

    def device(self, index: int = 0) -> str:
        """API name of the index-th attached disk: /dev/sda, /dev/sdb … /dev/sdaa (no call).

        libguestfs names drives by the order they were added, whatever the
        appliance kernel calls them (guestfs(3), "BLOCK DEVICE NAMING"); a
        listing would cost a `udevadm settle` (≈0.3 s under TCG) per call.
        """
        if not 0 <= index < len(self.disks):
            raise GuestError(f"no disk number {index}: {len(self.disks)} attached")
        return "/dev/sd" + drive_letters(index)

    def partition(self, index: int, number: int) -> str:
        """API name of partition `number` on disk `index` (/dev/sda2), by the same rule.

        Not checked against a listing: osdef wrote or read the table itself, and
        a missing partition fails the next call that names it.
        """
        return f"{self.device(index)}{number}"

    def drop_caches(self) -> None:
        """Forget what the appliance kernel read from the disks (they were written meanwhile).

        One write to /proc/sys/vm/drop_caches drops the clean page cache of every
        block device (nothing is mounted or dirty yet), in one call instead of a
        `blockdev --flushbufs` per device and partition.
        """
        if self._mounts:
            raise GuestError("cannot drop the disk caches while guest filesystems are mounted")
        self.call("drop the appliance's disk caches", self.g.drop_caches, 3)

    def fs_type(self, device: str) -> str:
        return self.call(f"detect the filesystem on {device}", self.g.vfs_type, device)

    def mount(self, device: str, mountpoint: str = "/", fs_type: str | None = None) -> None:
        """Mount `device` at `mountpoint` in the appliance (ext*: noinit_itable keeps disks sparse)."""
        fs_type = fs_type or self.fs_type(device)
        options = "noinit_itable" if fs_type in EXT_FAMILY else ""
        if mountpoint != "/":
            self.call(f"create {mountpoint}", self.g.mkdir_p, mountpoint)
        self.call(f"mount {device} on {mountpoint}", self.g.mount_options, options, device,
                  mountpoint)
        self._mounts.append(mountpoint)

    def mount_inspected_root(self) -> str:
        """Find the guest OS by inspection, mount its filesystems; return the root device."""
        roots = self.call("inspect the disk", self.g.inspect_os)
        if not roots:
            raise GuestError(f"no operating system found on {self.disks[0]}")
        root = roots[0]
        points = self.call("read the mountpoints", self.g.inspect_get_mountpoints, root)
        for mountpoint, device in sorted(points.items(), key=lambda kv: len(kv[0])):
            try:
                self.mount(device, mountpoint)
            except GuestError:
                if mountpoint == "/":
                    raise
                self.log(f"warning: could not mount {device} on {mountpoint}; continuing")
        return root

    @property
    def mounted(self) -> bool:
        return bool(self._mounts)

    def unmount_all(self) -> None:
        if self._mounts:
            self.call("unmount the guest filesystems", self.g.umount_all)
            self._mounts.clear()

    # -- running commands in the guest -----------------------------------------

    def sh(self, cmd: str, *, what: str | None = None, check: bool = True) -> str:
        """Run a shell command chrooted in the guest; return its stdout+stderr.

        libguestfs bind-mounts /dev, /proc and /sys for it.  A non-zero exit
        raises GuestError with the tail of the output unless check=False.
        """
        if not self._mounts:
            raise GuestError("cannot run a command in the guest before its root filesystem is mounted")
        script = f"export PATH={GUEST_PATH}; ( {cmd} ) 2>&1; echo \"{_RC_MARK.strip()}$?\""
        out = self.call(what or f"run {cmd!r} in the guest", self.g.command, ["/bin/sh", "-c", script])
        body, _, rc_text = out.rpartition(_RC_MARK.strip())
        rc = int(rc_text.strip() or "0")
        if rc != 0 and check:
            raise GuestError(f"{what or cmd} failed in the guest (exit {rc}): {one_line(body) or 'no output'}")
        return body

    def run(self, argv: Sequence[str], **kwargs: Any) -> str:
        """sh() with a quoted argument vector."""
        return self.sh(" ".join(shlex.quote(a) for a in argv), **kwargs)

    # -- files -------------------------------------------------------------------

    def exists(self, path: str) -> bool:
        return bool(self.call(f"check {path}", self.g.exists, path))

    def is_file(self, path: str) -> bool:
        return bool(self.call(f"check {path}", self.g.is_file, path, followsymlinks=True))

    def read_bytes(self, path: str) -> bytes:
        """A file's content.  pread is one daemon call (≈10 ms under TCG); read_file goes
        through a download to a host temp file (≈250 ms), so it only serves big files."""
        data = bytes(self.call(f"read {path}", self.g.pread, path, PREAD_MAX, 0))
        if len(data) < PREAD_MAX:
            return data
        return bytes(self.call(f"read {path}", self.g.read_file, path))

    def read_text(self, path: str) -> str:
        return self.read_bytes(path).decode("utf-8", errors="replace")

    def read_text_or_none(self, path: str) -> str | None:
        return self.read_text(path) if self.is_file(path) else None

    def write_text(self, path: str, text: str, mode: int | None = None) -> None:
        """Replace the file's content (a symlinked path writes its target); parents are created."""
        parent = path.rsplit("/", 1)[0] or "/"
        if not self.exists(parent):
            self.call(f"create {parent}", self.g.mkdir_p, parent)
        self.call(f"write {path}", self.g.write, path, text.encode("utf-8"))
        if mode is not None:
            self.call(f"chmod {path}", self.g.chmod, mode, path)

    def remove(self, path: str) -> None:
        self.call(f"remove {path}", self.g.rm_f, path)

    def symlink(self, target: str, linkname: str) -> None:
        parent = linkname.rsplit("/", 1)[0] or "/"
        self.call(f"create {parent}", self.g.mkdir_p, parent)
        self.call(f"link {linkname}", self.g.ln_sf, target, linkname)

    def glob(self, pattern: str) -> list[str]:
        return list(self.call(f"glob {pattern}", self.g.glob_expand, pattern))
