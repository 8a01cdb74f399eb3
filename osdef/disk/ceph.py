"""A connection to a Ceph cluster through librados (python3-rados), bounded in time, failing in one line.

Who uses it: the RBD disk layer (osdef.disk.rbd: export, import, create's
host-side copy) and the ``rbd`` ExtStorage provider.  The monitors and the
cephx key come from a ceph.conf and the keyring it names, read by librados
itself: osdef never reads, holds or prints a key.  Connecting waits at most
``connect_timeout`` seconds for a monitor (librados' own default is 300 s),
and every later operation at most ``op_timeout``.

python3-rados and python3-rbd are optional: they are imported only when a
disk is an ``rbd:`` URI, and their absence is one line saying which Debian
packages to install.  Every librados/librbd failure becomes the caller's
typed error with one line saying what failed, on which pool or image, and
what to check; it never repeats a key (librados' messages carry none).
"""

from __future__ import annotations

import os
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from collections.abc import Iterator

from osdef.config import CephSettings
from osdef.errors import OsdefError, quote

if TYPE_CHECKING:  # python3-rados is imported only for an RBD disk (libraries())
    from rados import Ioctx

PACKAGES = "python3-rbd python3-rados"
_settings = CephSettings()


def configure(settings: CephSettings) -> None:
    """The site's Ceph settings (timeouts, defaults) for every later connection of this process."""
    global _settings
    _settings = settings


def settings() -> CephSettings:
    return _settings


def libraries(error: type[OsdefError]) -> tuple[Any, Any]:
    """The ``rados`` and ``rbd`` modules, or ``error`` saying which packages to install."""
    try:
        import rados
        import rbd
    except ImportError:
        raise error(f"this disk is an RBD image but python3-rbd is not installed here: "
                    f"apt-get install {PACKAGES}") from None
    return rados, rbd


@dataclass(frozen=True)
class Target:
    """Where a message says the failure was: the cluster's ceph.conf and cephx user, a pool, an image."""

    conf: str
    user: str
    pool: str | None = None
    image: str | None = None  # "pool/image[@snap]" as rbd(8) writes it


def explain(exc: BaseException, where: Target, doing: str) -> str:
    """One admin-facing line for a librados/librbd exception raised while ``doing`` something."""
    name = type(exc).__name__
    timeout = _settings.connect_timeout
    if name == "TimedOut" and doing == "connect":
        return (f"no Ceph monitor named in {where.conf} answered within {timeout} s: is the cluster up and "
                "reachable from this node?")
    if name in ("TimedOut", "Timeout"):
        return f"Ceph did not answer within {_settings.op_timeout} s while trying to {doing} {where.image or ''}"
    if name in ("PermissionDeniedError", "PermissionError") and doing == "connect":
        return (f"the Ceph cluster of {where.conf} refused client.{where.user}: its cephx key is wrong or "
                "missing in the keyring that ceph.conf names")
    if name == "ObjectNotFound" and doing == "connect":
        return (f"no cephx key for client.{where.user}: {where.conf} names no keyring that holds it "
                f"(default /etc/ceph/ceph.client.{where.user}.keyring)")
    if name == "ObjectNotFound" and doing == "open the pool":
        return f"pool {quote(where.pool)} does not exist in the Ceph cluster of {where.conf}"
    if name == "ImageNotFound":
        return f"RBD image {where.image} does not exist (cluster of {where.conf})"
    if name in ("PermissionDeniedError", "PermissionError"):
        return f"client.{where.user} may not {doing} {where.image or where.pool or ''} (cephx capabilities)"
    return f"cannot {doing} {where.image or where.pool or ''}: {reason(exc)}"


def reason(exc: BaseException) -> str:
    """What a librados/librbd exception says, in a few words (no message text of its own)."""
    name = type(exc).__name__
    if name in ("TimedOut", "Timeout"):
        return f"Ceph did not answer within {_settings.op_timeout} s"
    errno = getattr(exc, "errno", None)
    return f"Ceph error {name}" + (f" (errno {abs(errno)})" if isinstance(errno, int) and errno else "")


class Connection:
    """An open librados cluster handle; ``pool()`` opens an IoCtx.  Use as a context manager."""

    def __init__(self, handle: Any, target: Target, error: type[OsdefError]):
        self.handle = handle
        self.target = target
        self.error = error
        self._ioctxs: list[Ioctx] = []

    def pool(self, pool: str, namespace: str | None = None) -> Ioctx:
        rados, _ = libraries(self.error)
        where = Target(self.target.conf, self.target.user, pool)
        try:
            ioctx: Ioctx = self.handle.open_ioctx(pool)
        except rados.Error as exc:
            raise self.error(explain(exc, where, "open the pool")) from None
        if namespace:
            ioctx.set_namespace(namespace)
        self._ioctxs.append(ioctx)
        return ioctx

    def fail(self, exc: BaseException, doing: str, pool: str | None = None, image: str | None = None) -> OsdefError:
        """The typed error for a librados/librbd exception (raise it)."""
        return self.error(explain(exc, Target(self.target.conf, self.target.user, pool, image), doing))

    def close(self) -> None:
        """Close every pool context and the cluster handle; a close that fails is past caring about."""
        for ioctx in self._ioctxs:
            with suppress(Exception):
                ioctx.close()
        self._ioctxs.clear()
        if self.handle is not None:
            with suppress(Exception):
                self.handle.shutdown()
            self.handle = None

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def connect(conf: str, user: str, error: type[OsdefError]) -> Connection:
    """Connect as client.``user`` to the cluster ``conf`` names; failures raise ``error`` (one line)."""
    rados, _ = libraries(error)
    target = Target(conf, user)
    if not os.access(conf, os.R_OK):
        raise error(f"cannot read the Ceph config {conf}: "
                    f"{'no such file' if not os.path.exists(conf) else 'permission denied'}")
    options = {"client_mount_timeout": str(_settings.connect_timeout),
               "rados_mon_op_timeout": str(_settings.connect_timeout),
               "rados_osd_op_timeout": str(_settings.op_timeout)}
    handle = None
    try:
        handle = rados.Rados(conffile=conf, rados_id=user, conf=options)
        handle.connect()
    except rados.Error as exc:
        if handle is not None:
            handle.shutdown()
        raise error(explain(exc, target, "connect")) from None
    return Connection(handle, target, error)


@contextmanager
def connected(conf: str, user: str, error: type[OsdefError]) -> Iterator[Connection]:
    conn = connect(conf, user, error)
    try:
        yield conn
    finally:
        conn.close()
