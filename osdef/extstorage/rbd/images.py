"""The `rbd` provider's pool through librbd: images by volume name, their metadata and snapshots.

A volume is the RBD image named VOL_NAME.  A snapshot Ganeti asks for
(VOL_SNAPSHOT_NAME, later attached and removed as a volume of its own name)
is an RBD snapshot ``<image>@<snapshot name>``, plus a small RADOS object
``osdef.snapshot.<snapshot name>`` in the pool that says which image it
belongs to, so that ``attach`` and ``remove`` of that name find it.
VOL_METADATA is the image metadata key ``ganeti.metadata``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, cast

from osdef.disk import ceph
from osdef.disk.units import MiB
from osdef.extstorage.errors import ExtStorageError, VolumeError
from osdef.extstorage.rbd.config import Placement

if TYPE_CHECKING:  # python3-rbd is imported when a Pool connects (ceph.libraries)
    import rbd

METADATA_KEY = "ganeti.metadata"
MARKER_PREFIX = "osdef.snapshot."


@dataclass(frozen=True)
class Found:
    """What a volume name names: an image, or a snapshot of one (``snapshot`` set)."""

    image: str
    snapshot: str | None = None


class Pool:
    """The placement's pool, connected (use as a context manager)."""

    def __init__(self, where: Placement):
        self.where = where
        ceph.configure(replace(ceph.settings(), connect_timeout=where.connect_timeout))
        self.conn = ceph.connect(where.conf, where.cephx_user, ExtStorageError)
        self.rados, self.rbd = ceph.libraries(ExtStorageError)
        try:
            self.ioctx = self.conn.pool(where.pool)
        except BaseException:
            self.conn.close()
            raise

    def __enter__(self) -> Pool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.conn.close()

    def _fail(self, exc: Exception, doing: str, name: str) -> ExtStorageError:
        # conn.fail makes the error type conn was made with: ExtStorageError (__init__)
        return cast(ExtStorageError, self.conn.fail(exc, doing, self.where.pool, f"{self.where.pool}/{name}"))

    # -- images -----------------------------------------------------------------

    def image(self, name: str, *, snapshot: str | None = None, read_only: bool = True) -> rbd.Image:
        try:
            image: rbd.Image = self.rbd.Image(self.ioctx, name, snapshot=snapshot, read_only=read_only)
            return image
        except self.rbd.Error as exc:
            raise self._fail(exc, "open", name + (f"@{snapshot}" if snapshot else "")) from None

    def exists(self, name: str) -> bool:
        try:
            self.rbd.Image(self.ioctx, name, read_only=True).close()
            return True
        except self.rbd.ImageNotFound:
            return False
        except self.rbd.Error as exc:
            raise self._fail(exc, "open", name) from None

    def create(self, name: str, size_mib: int) -> None:
        try:
            self.rbd.RBD().create(self.ioctx, name, size_mib * MiB, old_format=False)
        except self.rbd.ImageExists:
            raise VolumeError(f"volume {name} already exists in pool {self.where.pool}") from None
        except self.rbd.Error as exc:
            raise self._fail(exc, "create", name) from None

    def remove(self, name: str) -> None:
        try:
            self.rbd.RBD().remove(self.ioctx, name)
        except self.rbd.ImageNotFound:
            return
        except self.rbd.ImageBusy:
            raise VolumeError(f"volume {name} in pool {self.where.pool} is in use (a running instance?): "
                              "stop it before removing the volume") from None
        except self.rbd.ImageHasSnapshots:
            raise VolumeError(f"volume {name} in pool {self.where.pool} has snapshots this provider did not "
                              "make: remove them (rbd snap ls/rm) first") from None
        except self.rbd.Error as exc:
            raise self._fail(exc, "remove", name) from None

    def size(self, name: str) -> int:
        with self.image(name) as image:
            return image.size()

    def resize(self, name: str, size_mib: int) -> None:
        with self.image(name, read_only=False) as image:
            try:
                image.resize(size_mib * MiB)
            except self.rbd.Error as exc:
                raise self._fail(exc, "resize", name) from None

    def set_metadata(self, name: str, text: str) -> None:
        with self.image(name, read_only=False) as image:
            try:
                image.metadata_set(METADATA_KEY, text)
            except self.rbd.Error as exc:
                raise self._fail(exc, "set the metadata of", name) from None

    # -- snapshots ----------------------------------------------------------------

    def find(self, name: str) -> Found | None:
        """What the volume name ``name`` is: an image, an osdef snapshot of one, or nothing (None)."""
        parent = self._marker(name)
        if parent is not None:
            return Found(parent, name)
        return Found(name) if self.exists(name) else None

    def _marker(self, snapshot: str) -> str | None:
        try:
            return self.ioctx.read(MARKER_PREFIX + snapshot, 1024).decode("ascii", "replace") or None
        except self.rados.ObjectNotFound:
            return None
        except self.rados.Error as exc:
            raise self._fail(exc, "read the snapshot record of", snapshot) from None

    def snapshots_of(self, name: str) -> list[str]:
        """The snapshots of image ``name`` that this provider made (those with a marker naming it)."""
        with self.image(name) as image:
            names = [s["name"] for s in image.list_snaps()]
        return [s for s in names if self._marker(s) == name]

    def snapshot(self, name: str, snapshot: str) -> None:
        """Take ``name@snapshot`` and record it; an existing one (stale data) is refused."""
        if self._marker(snapshot) is not None or self.exists(snapshot):
            raise VolumeError(f"a volume or snapshot named {snapshot} already exists in pool {self.where.pool}: "
                              f"remove it first (VOL_NAME={snapshot} remove)")
        with self.image(name, read_only=False) as image:
            try:
                image.create_snap(snapshot)
            except self.rbd.ImageExists:
                raise VolumeError(f"{name} already has a snapshot {snapshot}: remove it first "
                                  f"(rbd snap rm {self.where.pool}/{name}@{snapshot})") from None
            except self.rbd.Error as exc:
                raise self._fail(exc, "snapshot", name) from None
        try:
            self.ioctx.write_full(MARKER_PREFIX + snapshot, name.encode("ascii"))
        except self.rados.Error as exc:
            self.remove_snapshot(Found(name, snapshot))
            raise self._fail(exc, "record the snapshot of", name) from None

    def remove_snapshot(self, found: Found) -> None:
        """Remove ``found``'s snapshot (if still there) and then its marker."""
        try:
            image = self.rbd.Image(self.ioctx, found.image)
        except self.rbd.ImageNotFound:
            image = None  # the image went first: only the marker is left
        except self.rbd.Error as exc:
            raise self._fail(exc, "open", found.image) from None
        if image is not None:
            with image:
                try:
                    if found.snapshot in {s["name"] for s in image.list_snaps()}:
                        image.remove_snap(found.snapshot)
                except self.rbd.Error as exc:
                    raise self._fail(exc, "remove the snapshot of", found.image) from None
        try:
            self.ioctx.remove_object(MARKER_PREFIX + str(found.snapshot))
        except self.rados.ObjectNotFound:
            pass
        except self.rados.Error as exc:
            raise self._fail(exc, "remove the snapshot record of", found.image) from None
