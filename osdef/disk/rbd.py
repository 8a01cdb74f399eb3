"""An RBD image as a ``Disk``, through librbd (python3-rbd): no kernel device, no qemu-nbd.

``open_rbd`` returns an osdef.disk.device.Disk without a file descriptor
(``fd == -1``) whose ``volume`` is an ``RbdVolume``: osdef.disk.device's
``read_at``/``write_at``/``sync``, osdef.disk.zeroing's ``zero_range`` and
everything built on them (the copy engine, the stream's extents, the
partition-table and filesystem-map readers) reach the image through it
unchanged.  What differs from a block device:

* ``diff_iterate``: what librbd reports written — per RADOS object, from its
  start to its highest written byte; a never-written object is a hole
  (osdef.disk.filemap.RbdMap: the stream uses it as it uses SEEK_DATA on a file);
* ``zero``: ``write_zeroes``, which removes whole objects and truncates or
  punches partial ones, so holes stay thin (``rbd du`` ≈ the data).  Not
  ``discard``: librbd skips discards smaller than its granularity, and the
  bytes would stay;
* a snapshot (``rbd:pool/image@snap``) opens read-only.

librbd's exceptions become ``OSError`` here (``device`` turns those into the
disk's typed error with its display name); opening failures are one line.
"""

from __future__ import annotations

import contextlib
import errno
from collections.abc import Callable
from typing import TYPE_CHECKING

from osdef.disk.units import GiB
from osdef.disk import ceph, rbduri
from osdef.disk.handle import BytesLike, Disk
from osdef.errors import OsdefError

if TYPE_CHECKING:  # python3-rbd is imported only for an RBD disk (ceph.libraries)
    import rbd

ZERO_CALL = GiB  # bytes per write_zeroes call


class RbdVolume:
    """An open librbd Image and the cluster connection it needs; read/write/zero/flush by offset."""

    def __init__(self, conn: ceph.Connection, image: rbd.Image, uri: rbduri.RbdUri, writable: bool):
        self.conn = conn
        self.image = image
        self.uri = uri
        self.writable = writable
        self._rbd = ceph.libraries(conn.error)[1]

    def _os_error(self, exc: Exception) -> OSError:
        code = getattr(exc, "errno", None)
        return OSError(abs(code) if isinstance(code, int) and code else errno.EIO, ceph.reason(exc))

    def size(self) -> int:
        return self.image.size()

    def read_into(self, view: memoryview, offset: int) -> None:
        try:
            data = self.image.read(offset, len(view))
        except self._rbd.Error as exc:
            raise self._os_error(exc) from None
        if len(data) != len(view):
            raise OSError(errno.EIO, f"short read ({len(data)} of {len(view)} bytes)")
        view[:] = data

    def write(self, view: BytesLike, offset: int) -> None:
        try:
            done = self.image.write(bytes(view), offset)
        except self._rbd.Error as exc:
            raise self._os_error(exc) from None
        if done != len(view):
            raise OSError(errno.EIO, f"short write ({done} of {len(view)} bytes)")

    def zero(self, offset: int, length: int) -> None:
        end = offset + length
        try:
            while offset < end:  # python3-rbd returns the count as a C int: a call must stay below 2 GiB
                n = min(end - offset, ZERO_CALL)
                self.image.write_zeroes(offset, n)
                offset += n
        except self._rbd.Error as exc:
            raise self._os_error(exc) from None

    def flush(self) -> None:
        if not self.writable:
            return
        try:
            self.image.flush()
        except self._rbd.Error as exc:
            raise self._os_error(exc) from None

    def diff_iterate(self, seen: Callable[[int, int, bool], int]) -> None:
        """librbd's diff_iterate over the whole image from its creation: ``seen(offset, length, exists)``
        per extent (osdef.disk.filemap.RbdMap makes the allocation map of it)."""
        try:
            self.image.diff_iterate(0, self.image.size(), None, seen)
        except self._rbd.Error as exc:
            raise self._os_error(exc) from None

    def close(self) -> None:
        """The image, then the connection.  A librbd error closing the image is not raised: the writes
        were flushed by ``sync`` on success, and on a failure path it must not hide the first error."""
        image, self.image = self.image, None  # type: ignore[assignment]  # closed: not used after close()
        try:
            if image is not None:
                with contextlib.suppress(self._rbd.Error):
                    image.close()
        finally:
            self.conn.close()


def resolve(location: str, what: str, error: type[OsdefError]) -> rbduri.RbdUri:
    """The URI in ``location`` with the site's user and ceph.conf filled in; a bad one raises ``error``."""
    s = ceph.settings()
    try:
        return rbduri.parse(location, what).with_defaults(s.user, str(s.conf))
    except rbduri.UriError as exc:
        raise error(str(exc)) from None


def open_rbd(location: str, *, write: bool, error: type[OsdefError], what: str = "the disk URI") -> Disk:
    """Open the RBD image (or snapshot, read-only) a URI names as a Disk; failures raise ``error``."""
    uri = resolve(location, what, error)
    if write and uri.snapshot:
        raise error(f"{uri.display} is a snapshot: it can only be read")
    _, rbd = ceph.libraries(error)
    conn = ceph.connect(uri.conf, uri.user, error)  # type: ignore[arg-type]  # resolve() filled both in
    try:
        ioctx = conn.pool(uri.pool, uri.namespace)
        try:
            image = rbd.Image(ioctx, uri.image, snapshot=uri.snapshot, read_only=not write)
        except rbd.Error as exc:
            raise conn.fail(exc, "open", uri.pool, uri.spec) from None
        volume = RbdVolume(conn, image, uri, write)
        size = volume.size()
    except BaseException:
        conn.close()
        raise
    return Disk(uri.display, -1, size, False, error=error, volume=volume)


def image_size(location: str, *, error: type[OsdefError], what: str = "the disk URI") -> int:
    """Size in bytes of the image a URI names (opened read-only for the look)."""
    disk = open_rbd(location, write=False, error=error, what=what)
    try:
        return disk.size
    finally:
        disk.close()
