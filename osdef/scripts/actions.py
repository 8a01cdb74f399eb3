"""The five OS scripts: turn Ganeti's environment into one call each.

Each function validates all of its input first (environment, variant, OS
parameters, site config) and only then touches a disk.  The real work lives
elsewhere: osdef.pipeline for create/rename (libguestfs), osdef.stream for
export/import (pure block I/O).  A disk given only as a URI (DISK_N_URI,
EXPORT_DISK_URI, IMPORT_DISK_URI: ``rbd:pool/image``) is a disk like any
path: its URI is checked and completed with the site's Ceph user and
ceph.conf here, and its image opened and sized before anything is written.
"""

from __future__ import annotations

import os
import signal
import stat
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from osdef import config as siteconfig
from osdef import variants as variantmod
from osdef.disk.units import MiB
from osdef.errors import EnvError, OsdefError, ParamError, quote
from osdef.ganeti import environment as genv
from osdef.ganeti import params as osparams


def say(message: str) -> None:
    """One short line per step: Ganeti keeps the last 20 lines of create/rename output."""
    sys.stderr.write(f"osdef: {message}\n")
    sys.stderr.flush()


@dataclass(frozen=True)
class Context:
    """What every script knows before it starts working."""

    os_dir: Path
    environ: Mapping[str, str]
    config: siteconfig.SiteConfig
    catalog: variantmod.Catalog | None
    instance: genv.Instance
    variant: variantmod.Variant | None
    params: osparams.OsParams
    locations: tuple[str, ...] = ()  # what each instance disk is opened as: a path or a completed URI


def variants_dir(os_dir: Path) -> Path:
    """Variants of an installed OS dir; a source checkout's (or the package's) otherwise."""
    installed = os_dir / "variants"
    if installed.is_dir():
        return installed
    from osdef.paths import data_dir

    return data_dir("variants")


def resolve_location(location: str, key: str, *, write: bool = False) -> str:
    """A path as it is; a URI checked and completed with the site's Ceph user and ceph.conf (a snapshot
    only where nothing is written)."""
    from osdef.disk import rbduri

    if not rbduri.is_uri(location):
        return location
    from osdef.disk import rbd

    uri = rbd.resolve(location, key, EnvError)
    if write and uri.snapshot:
        raise EnvError(f"{key}={uri.display} is a snapshot: it can only be read")
    return str(uri)


def load_context(script: str, os_dir: Path, environ: Mapping[str, str]) -> Context:
    instance = genv.load_instance(environ, script)
    config = siteconfig.load(os_dir, environ)
    from osdef.disk import ceph

    ceph.configure(config.ceph)
    prefer = config.ceph.prefer_uri
    locations = tuple(resolve_location(d.location(prefer), d.location_key(prefer),
                                       write=script in ("create", "rename")) for d in instance.disks)
    catalog = variant = None
    if script in ("create", "rename", "verify"):
        catalog = variantmod.load_dir(variants_dir(os_dir), config.variants_dir)
        variant = catalog.get(instance.variant)
    source = str(config.source) if config.source else "site config"
    params = osparams.resolve(
        instance.os_params,
        variant_defaults=variant.os_parameters if variant else None,
        site_defaults=config.os_param_defaults,
        site_source=source,
    )
    return Context(os_dir, environ, config, catalog, instance, variant, params, locations)


SIZE_SLACK = 1 << 30  # a volume may be larger than asked: LVM rounds up to its extent size


def _device_size(path: str, key: str) -> int:
    """The size of a file or block device (anything else is refused)."""
    from osdef.disk.device import fd_size  # late: verify never opens a disk

    try:  # O_NONBLOCK: a FIFO or a tty must not hang the script; checked before any use
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise EnvError(f"{key}={quote(path)}: no such file or device") from None
    except OSError as exc:
        raise EnvError(f"{key}={quote(path)}: {exc.strerror}") from None
    try:
        st = os.fstat(fd)
        if not (stat.S_ISREG(st.st_mode) or stat.S_ISBLK(st.st_mode)):
            raise EnvError(f"{key}={quote(path)} is neither a file nor a block device")
        size, _ = fd_size(fd)
    except OSError as exc:
        raise EnvError(f"{key}={quote(path)}: {exc.strerror}") from None
    finally:
        os.close(fd)
    return size


def _image_size(uri: str, key: str) -> int:
    """The size of the RBD image a (completed) URI names: connects and opens it read-only."""
    from osdef.disk import rbd

    display = rbd.resolve(uri, key, EnvError).display
    try:
        return rbd.image_size(uri, error=EnvError, what=key)
    except EnvError as exc:
        raise EnvError(f"{key}={display}: {exc}") from None


def _check_disk(disk: genv.Disk, path: str | None = None, key: str | None = None) -> int:
    """The size of the disk at ``path`` (default: DISK_N_PATH or its URI), a file, block device or RBD
    image whose size matches DISK_N_SIZE (when Ganeti >= 3.0 passes it): a mismatch means the wrong
    disk."""
    from osdef.disk import rbduri

    path = path or disk.location()
    key = key or disk.location_key()
    size = _image_size(path, key) if rbduri.is_uri(path) else _device_size(path, key)
    if disk.size_mib is not None:
        declared = disk.size_mib * MiB
        if size < declared or size > declared + SIZE_SLACK:
            raise EnvError(f"DISK_{disk.index}_SIZE={disk.size_mib} (MiB) but {quote(path)} has "
                           f"{size / MiB:.1f} MiB: is {key} the instance's disk?")
    return size


def _ignore_stop_signals() -> None:
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)


def _disk_of(instance: genv.Instance, index: int) -> genv.Disk | None:
    return next((d for d in instance.disks if d.index == index), None)


def _check_swap(params: osparams.OsParams, disk0_size: int) -> None:
    swap = params.swap_size
    if swap and swap >= disk0_size:
        raise ParamError(f"swap_size={swap // MiB}M does not fit on disk 0 ({disk0_size // MiB} MiB): "
                         "lower swap_size or grow the disk")


# -- the scripts -----------------------------------------------------------------

def verify(args: list[str], os_dir: Path, environ: Mapping[str, str]) -> int:
    """`verify parameters`: one line per bad parameter on stderr, exit 1 if any."""
    instance = genv.load_instance(environ, "verify")
    config = siteconfig.load(os_dir, environ)
    lines = []
    variant = None
    try:
        variant = variantmod.load_dir(variants_dir(os_dir), config.variants_dir).get(instance.variant)
    except OsdefError as exc:
        lines.append(str(exc))
    source = str(config.source) if config.source else "site config"
    merged = osparams.merge(instance.os_params,
                            variant_defaults=variant.os_parameters if variant else None,
                            site_defaults=config.os_param_defaults, site_source=source)
    lines.extend(p.message for p in merged.problems())
    for line in lines:
        sys.stderr.write(line + "\n")
    return 1 if lines else 0


def create(os_dir: Path, environ: Mapping[str, str]) -> int:
    ctx = load_context("create", os_dir, environ)
    prefer = ctx.config.ceph.prefer_uri
    sizes = [_check_disk(disk, where, disk.location_key(prefer))
             for disk, where in zip(ctx.instance.disks, ctx.locations)]
    _check_swap(ctx.params, sizes[0])
    from osdef import pipeline

    pipeline.create(ctx, say)
    return 0


def rename(os_dir: Path, environ: Mapping[str, str]) -> int:
    ctx = load_context("rename", os_dir, environ)
    prefer = ctx.config.ceph.prefer_uri
    for disk, where in zip(ctx.instance.disks, ctx.locations):
        _check_disk(disk, where, disk.location_key(prefer))
    from osdef import pipeline

    pipeline.rename(ctx, say)
    return 0


def _data_context(script: str, os_dir: Path, environ: Mapping[str, str]
                  ) -> tuple[Context, genv.DataTarget, str]:
    """export's or import's context, its disk and where to open it (a device, or a completed URI);
    the disk checked against its DISK_N_SIZE."""
    ctx = load_context(script, os_dir, environ)
    load_target = genv.load_export_target if script == "export" else genv.load_import_target
    target = load_target(environ)
    prefer = ctx.config.ceph.prefer_uri
    key = target.location_key(prefer)
    where = resolve_location(target.location(prefer), key, write=script == "import")
    disk = _disk_of(ctx.instance, target.index)
    if disk is not None:
        _check_disk(disk, where, key)
    return ctx, target, where


def export(os_dir: Path, environ: Mapping[str, str]) -> int:
    ctx, target, where = _data_context("export", os_dir, environ)
    from osdef.stream import export_disk

    metadata = {
        "instance": ctx.instance.name,
        "instance_uuid": ctx.instance.uuid,
        "disk_index": target.index,
        "os": ctx.instance.os,
        "variant": ctx.instance.variant,
    }
    written = export_disk(where, sys.stdout.fileno(), size_fd=target.size_fd,
                          fmt=ctx.params.export_format,
                          compression=ctx.params.export_compression, metadata=metadata,
                          content=ctx.params.export_content, warn=say)
    say(f"exported disk {target.index}: {written} bytes written")
    return 0


def import_(os_dir: Path, environ: Mapping[str, str]) -> int:
    ctx, target, where = _data_context("import", os_dir, environ)
    from osdef.stream import import_disk

    try:
        r = import_disk(sys.stdin.fileno(), where, size_fd=target.size_fd,
                        expect=ctx.params.import_format)
    except OsdefError:
        _ignore_stop_signals()  # the target is wiped: nothing may keep the one line from being printed
        raise
    kind = "osdef stream" if r.kind == "stream" else "raw dump"
    if "content_plan" in r.metadata:
        from osdef.stream.content import describe_record

        for line in describe_record(r.metadata["content_plan"]) or ["its export plan record is malformed"]:
            say(f"imported disk {target.index}: as exported: {line}")
    say(f"imported disk {target.index}: {kind}{' (zstd)' if r.compressed else ''}, "
        f"{r.input_bytes} bytes read, {r.data_bytes >> 20} MiB of data written, "
        f"{r.zeroed_bytes >> 20} MiB zeroed without writing")
    say(f"imported disk {target.index}: {r.verified}")
    return 0


def run(script: str, args: list[str], *, os_dir: Path, environ: Mapping[str, str]) -> int:
    if script == "verify":
        return verify(args, os_dir, environ)
    if script == "create":
        return create(os_dir, environ)
    if script == "rename":
        return rename(os_dir, environ)
    if script == "export":
        return export(os_dir, environ)
    if script == "import":
        return import_(os_dir, environ)
    raise ValueError(f"unknown script {script!r}")
