"""One function per ExtStorage script of the `rbd` provider; each takes the Request and its Placement.

Userspace only: ``attach`` maps nothing and prints an empty line (no block
device) and the KVM URI, ``detach`` has nothing to undo; both are
idempotent.  Every other action writes its one-line report on ``log``
(Ganeti keeps it in /var/log/ganeti/extstorage/).  Failures raise typed
errors (one line, osdef.extstorage.entry).
"""

from __future__ import annotations

from typing import TextIO
from collections.abc import Callable

from osdef.disk.units import MiB
from osdef.extstorage.errors import RequestError, VolumeError
from osdef.extstorage.rbd.config import Placement
from osdef.extstorage.rbd.images import Found, Pool
from osdef.extstorage.volume import Request, require


def _missing(name: str, where: Placement) -> VolumeError:
    return VolumeError(f"volume {name} does not exist in pool {where.pool} (cluster of {where.conf}); "
                       "was it created with these pool and conf parameters?")


def _existing(pool: Pool, name: str, where: Placement) -> Found:
    """What the volume name is (an image or a snapshot of one), or the one-line error that it is none."""
    found = pool.find(name)
    if found is None:
        raise _missing(name, where)
    return found


def create(req: Request, where: Placement, out: TextIO, log: TextIO) -> None:
    size = require(req.size_mib, "VOL_SIZE", "create")
    with Pool(where) as pool:
        pool.create(req.name, size)
    log.write(f"created {where.pool}/{req.name} ({size} MiB, thin)\n")


def remove(req: Request, where: Placement, out: TextIO, log: TextIO) -> None:
    with Pool(where) as pool:
        found = pool.find(req.name)
        if found is None:
            log.write(f"volume {req.name} does not exist in pool {where.pool}: nothing to remove\n")
            return
        if found.snapshot:
            pool.remove_snapshot(found)
            log.write(f"removed the snapshot {where.pool}/{found.image}@{found.snapshot}\n")
            return
        for snapshot in pool.snapshots_of(req.name):  # left by an export that never removed them
            pool.remove_snapshot(Found(req.name, snapshot))
            log.write(f"removed the snapshot {where.pool}/{req.name}@{snapshot}\n")
        pool.remove(req.name)
    log.write(f"removed {where.pool}/{req.name}\n")


def grow(req: Request, where: Placement, out: TextIO, log: TextIO) -> None:
    new = require(req.new_size_mib, "VOL_NEW_SIZE", "grow")
    with Pool(where) as pool:
        _existing(pool, req.name, where)
        current = pool.size(req.name)
        if new * MiB < current:
            raise RequestError(f"grow of {req.name}: VOL_NEW_SIZE={new} MiB is smaller than the "
                               f"volume ({current // MiB} MiB); volumes never shrink")
        pool.resize(req.name, new)
    log.write(f"grown {where.pool}/{req.name} to {new} MiB\n")


def attach(req: Request, where: Placement, out: TextIO, log: TextIO) -> None:
    with Pool(where) as pool:
        found = _existing(pool, req.name, where)
    out.write("\n" + f"kvm:{where.uri(found.image, found.snapshot)}\n")


def detach(req: Request, where: Placement, out: TextIO, log: TextIO) -> None:
    log.write(f"{where.pool}/{req.name}: userspace access only, nothing to detach\n")


def setinfo(req: Request, where: Placement, out: TextIO, log: TextIO) -> None:
    metadata = require(req.metadata, "VOL_METADATA", "setinfo")
    with Pool(where) as pool:
        _existing(pool, req.name, where)
        pool.set_metadata(req.name, metadata)
    log.write(f"metadata of {where.pool}/{req.name}: {metadata}\n")


def verify(req: Request, where: Placement, out: TextIO, log: TextIO) -> None:
    log.write(f"parameters OK: pool {where.pool}, conf {where.conf}, user {where.cephx_user}\n")


def snapshot(req: Request, where: Placement, out: TextIO, log: TextIO) -> None:
    snap = require(req.snapshot_name, "VOL_SNAPSHOT_NAME", "snapshot")
    with Pool(where) as pool:
        if _existing(pool, req.name, where).snapshot:
            raise _missing(req.name, where)
        pool.snapshot(req.name, snap)
    log.write(f"snapshot of {where.pool}/{req.name}: {where.pool}/{req.name}@{snap} (volume {snap})\n")


def open_(req: Request, where: Placement, out: TextIO, log: TextIO) -> None:
    """librbd needs nothing opened: only check that the volume exists."""
    with Pool(where) as pool:
        _existing(pool, req.name, where)
    log.write(f"opened {where.pool}/{req.name} (exclusive={req.open_exclusive})\n")


def close(req: Request, where: Placement, out: TextIO, log: TextIO) -> None:
    log.write(f"closed {where.pool}/{req.name}\n")


Action = Callable[[Request, Placement, TextIO, TextIO], None]

ACTIONS: dict[str, Action] = {
    "create": create, "remove": remove, "grow": grow, "attach": attach, "detach": detach,
    "setinfo": setinfo, "verify": verify, "snapshot": snapshot, "open": open_, "close": close,
}
