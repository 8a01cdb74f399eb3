"""What a script knows before it starts working: the typed Request, loaded and checked once per script.

Everything Ganeti hands a script is read and validated here, before anything
touches a disk: the environment (osdef.ganeti.environment), the site config,
the variant, the OS parameters (osdef.ganeti.params, merged with the variant's
and the site's defaults), and each disk's location — a path, or a URI
(``rbd:pool/image``, checked and completed with the site's Ceph user and
ceph.conf) — whose size must match ``DISK_N_SIZE`` (a mismatch means the wrong
disk).  ``verify_problems`` is the same reading for ``verify parameters``,
collecting every bad parameter instead of stopping at the first.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from osdef import config as siteconfig
from osdef import variants as variantmod
from osdef.disk.units import GiB, MiB
from osdef.errors import EnvError, OsdefError, ParamError, quote
from osdef.ganeti import environment as genv
from osdef.ganeti import params as osparams

SIZE_SLACK = GiB  # a volume may be larger than asked: LVM rounds up to its extent size


@dataclass(frozen=True)
class Request:
    """One script run, read and checked: what Ganeti asked for and everything it names."""

    script: str
    os_dir: Path
    environ: Mapping[str, str]
    config: siteconfig.SiteConfig
    instance: genv.Instance
    variant: variantmod.Variant | None  # create, rename: the OS_VARIANT's
    params: osparams.OsParams
    locations: tuple[str, ...] = ()  # what each instance disk is opened as: a path or a completed URI
    sizes: tuple[int, ...] = ()  # create, rename: each disk's size in bytes, as check_disk measured it

    @property
    def disk0(self) -> str:
        return self.locations[0]


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


def _variant(os_dir: Path, config: siteconfig.SiteConfig, instance: genv.Instance) -> variantmod.Variant:
    return variantmod.load_dir(variants_dir(os_dir), config.variants_dir).get(instance.variant)


def _source(config: siteconfig.SiteConfig) -> str:
    return str(config.source) if config.source else "site config"


def load(script: str, os_dir: Path, environ: Mapping[str, str]) -> Request:
    """The Request of create, rename, export or import: every input checked, every disk sized (create
    and rename; export and import size their one disk in ``data_target``)."""
    instance = genv.load_instance(environ, script)
    config = siteconfig.load(os_dir, environ)
    from osdef.disk import ceph

    ceph.configure(config.ceph)
    prefer = config.ceph.prefer_uri
    locations = tuple(resolve_location(d.location(prefer), d.location_key(prefer),
                                       write=script in ("create", "rename")) for d in instance.disks)
    variant = _variant(os_dir, config, instance) if script in ("create", "rename") else None
    params = osparams.resolve(instance.os_params, variant_defaults=variant.os_parameters if variant else None,
                              site_defaults=config.os_param_defaults, site_source=_source(config))
    sizes: tuple[int, ...] = ()
    if script in ("create", "rename"):
        sizes = tuple(check_disk(disk, where, disk.location_key(prefer))
                      for disk, where in zip(instance.disks, locations, strict=True))
        if script == "create":
            _check_swap(params, sizes[0])
    return Request(script, os_dir, environ, config, instance, variant, params, locations, sizes)


def verify_problems(os_dir: Path, environ: Mapping[str, str]) -> list[str]:
    """`verify parameters`: one line per bad parameter (or a variant that cannot be read)."""
    instance = genv.load_instance(environ, "verify")
    config = siteconfig.load(os_dir, environ)
    lines = []
    variant = None
    try:
        variant = _variant(os_dir, config, instance)
    except OsdefError as exc:
        lines.append(str(exc))
    merged = osparams.merge(instance.os_params, variant_defaults=variant.os_parameters if variant else None,
                            site_defaults=config.os_param_defaults, site_source=_source(config))
    return lines + [p.message for p in merged.problems()]


def data_target(request: Request) -> tuple[genv.DataTarget, str]:
    """export's or import's disk and where to open it (a device, or a completed URI), checked against
    its DISK_N_SIZE."""
    load_target = genv.load_export_target if request.script == "export" else genv.load_import_target
    target = load_target(request.environ)
    prefer = request.config.ceph.prefer_uri
    key = target.location_key(prefer)
    where = resolve_location(target.location(prefer), key, write=request.script == "import")
    disk = next((d for d in request.instance.disks if d.index == target.index), None)
    if disk is not None:
        check_disk(disk, where, key)
    return target, where


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


def check_disk(disk: genv.Disk, path: str | None = None, key: str | None = None) -> int:
    """The size of the disk at ``path`` (default: DISK_N_PATH or its URI), a file, block device or RBD
    image whose size matches DISK_N_SIZE (when Ganeti >= 3.0 passes it)."""
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


def _check_swap(params: osparams.OsParams, disk0_size: int) -> None:
    swap = params.swap_size
    if swap and swap >= disk0_size:
        raise ParamError(f"swap_size={swap // MiB}M does not fit on disk 0 ({disk0_size // MiB} MiB): "
                         "lower swap_size or grow the disk")
