"""One function per ExtStorage script; each takes the Request and the Store.

``attach`` writes the block device on ``out`` (Ganeti reads stdout); every
other action writes its one-line report on ``log``, which Ganeti collects
into /var/log/ganeti/extstorage/.  Failures raise typed errors.
"""

from __future__ import annotations

from pathlib import Path
from typing import TextIO
from collections.abc import Callable

from osdef.disk import loop
from osdef.disk.units import MiB
from osdef.extstorage import params
from osdef.extstorage.errors import RequestError
from osdef.extstorage.store import Store
from osdef.extstorage.volume import Request, require


def create(req: Request, store: Store, out: TextIO, log: TextIO) -> None:
    size = require(req.size_mib, "VOL_SIZE", "create")
    prealloc = params.preallocate(req.params)
    path = store.new_image(req.name, size, prealloc)
    log.write(f"created {path} ({size} MiB, {'preallocated' if prealloc else 'sparse'})\n")


def _detach_all(path: Path, log: TextIO) -> None:
    """Detach every loop device over the volume file `path` (held under its lock)."""
    for device in loop.devices_of(path):
        loop.detach(device)
        log.write(f"detached {device} ({path})\n")


def remove(req: Request, store: Store, out: TextIO, log: TextIO) -> None:
    if not store.exists(req.name):
        store.delete(req.name)  # a stale .meta
        log.write(f"volume {req.name} does not exist: nothing to remove\n")
        return
    with store.locked(req.name) as path:
        _detach_all(path, log)
        store.delete(req.name)
    log.write(f"removed {path}\n")


def grow(req: Request, store: Store, out: TextIO, log: TextIO) -> None:
    new = require(req.new_size_mib, "VOL_NEW_SIZE", "grow")
    with store.locked(req.name) as path:
        current = store.size_bytes(req.name)
        if new * MiB < current:
            raise RequestError(f"grow of {req.name}: VOL_NEW_SIZE={new} MiB is smaller than the "
                               f"volume ({current // MiB} MiB); volumes never shrink")
        store.resize(req.name, new)
        for device in loop.devices_of(path):
            loop.refresh_capacity(device)
    log.write(f"grown {path} to {new} MiB\n")


def attach(req: Request, store: Store, out: TextIO, log: TextIO) -> None:
    with store.locked(req.name) as path:
        devices = loop.devices_of(path)
        device = devices[0] if devices else loop.attach(path)
    out.write(device + "\n")


def detach(req: Request, store: Store, out: TextIO, log: TextIO) -> None:
    if not store.exists(req.name):
        log.write(f"volume {req.name} does not exist: nothing to detach\n")
        return
    with store.locked(req.name) as path:
        _detach_all(path, log)


def setinfo(req: Request, store: Store, out: TextIO, log: TextIO) -> None:
    metadata = require(req.metadata, "VOL_METADATA", "setinfo")
    if not store.exists(req.name):
        raise store.missing(req.name)
    store.write_meta(req.name, metadata)
    log.write(f"metadata of {req.name}: {metadata}\n")


def verify(req: Request, store: Store, out: TextIO, log: TextIO) -> None:
    params.check(req.params)
    log.write("parameters OK\n")


def snapshot(req: Request, store: Store, out: TextIO, log: TextIO) -> None:
    snap = require(req.snapshot_name, "VOL_SNAPSHOT_NAME", "snapshot")
    with store.locked(req.name):
        dest = store.copy(req.name, snap, req.snapshot_size_mib)
    log.write(f"snapshot of {req.name} in {dest}\n")


def open_(req: Request, store: Store, out: TextIO, log: TextIO) -> None:
    """Loop devices have no access control: only check that the volume exists."""
    if not store.exists(req.name):
        raise store.missing(req.name)
    log.write(f"opened {req.name} (exclusive={req.open_exclusive})\n")


def close(req: Request, store: Store, out: TextIO, log: TextIO) -> None:
    log.write(f"closed {req.name}\n")


Action = Callable[[Request, Store, TextIO, TextIO], None]

ACTIONS: dict[str, Action] = {
    "create": create,
    "remove": remove,
    "grow": grow,
    "attach": attach,
    "detach": detach,
    "setinfo": setinfo,
    "verify": verify,
    "snapshot": snapshot,
    "open": open_,
    "close": close,
}
