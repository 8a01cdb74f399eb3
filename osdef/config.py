"""Site configuration: /etc/osdef/osdef.yaml, typed and schema-checked.

Ganeti runs create/rename/verify with a clean environment, so settings that
differ per node (image cache, libguestfs backend, mirrors) cannot come from
environment variables.  They come from the first file that exists of:

1. ``$OSDEF_CONFIG`` (tests and ``osdef try`` set it),
2. ``<OS dir>/osdef.yaml`` (written by ``osdef install --config FILE``),
3. ``/etc/osdef/osdef.yaml``.

No file at all is fine: every key has a production default.  A present file
with an unknown key or a value of the wrong type is an error that names the
file and the key.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from osdef import yamldoc
from osdef.errors import ConfigError

SYSTEM_CONFIG = Path("/etc/osdef/osdef.yaml")
OS_DIR_CONFIG_NAME = "osdef.yaml"
DEFAULT_IMAGE_DIR = Path("/var/cache/osdef/images")
DEFAULT_HOOKS_DIR = Path("/etc/osdef/hooks.d")
DEFAULT_VARIANTS_DIR = Path("/etc/osdef/variants.d")
DEFAULT_AGREEMENT_FILE = Path("/etc/osdef/images-agreed.json")
DEFAULT_CEPH_CONF = Path("/etc/ceph/ceph.conf")


@dataclass(frozen=True)
class LibguestfsSettings:
    """How to launch the appliance.  Empty settings = libguestfs defaults (KVM)."""

    backend: str | None = None
    backend_settings: tuple[str, ...] = ()
    memsize_mib: int | None = None
    smp: int | None = None

    def environment(self) -> dict[str, str]:
        """The LIBGUESTFS_* variables equivalent to these settings."""
        env: dict[str, str] = {}
        if self.backend:
            env["LIBGUESTFS_BACKEND"] = self.backend
        if self.backend_settings:
            env["LIBGUESTFS_BACKEND_SETTINGS"] = ":".join(self.backend_settings)
        if self.memsize_mib:
            env["LIBGUESTFS_MEMSIZE"] = str(self.memsize_mib)
        return env


@dataclass(frozen=True)
class ImageSettings:
    """Where images live and how missing ones may be produced."""

    cache_dir: Path = DEFAULT_IMAGE_DIR
    build_on_demand: bool = False  # create may run a DIB build when the image is missing
    fetch_on_demand: bool = True  # create may download a url+sha256 image when missing
    debian_mirror: str = "http://deb.debian.org/debian"
    debian_security_mirror: str = "http://deb.debian.org/debian-security"
    build_tmp_dir: Path | None = None
    agreement_file: Path = DEFAULT_AGREEMENT_FILE  # the cluster's image digests (image sync)


@dataclass(frozen=True)
class CephSettings:
    """How to reach a Ceph cluster for disks given as ``rbd:`` URIs (DISK_N_URI)."""

    conf: Path = DEFAULT_CEPH_CONF  # names the monitors and the keyring; a URI's conf= wins
    user: str = "admin"  # the cephx id (without "client."); a URI's id= wins
    connect_timeout: int = 30  # seconds until an unreachable monitor is an error
    op_timeout: int = 600  # seconds one read or write of the image may take
    prefer_uri: bool = False  # a disk with both DISK_N_PATH and DISK_N_URI: use the URI


@dataclass(frozen=True)
class SiteConfig:
    """Everything a node's admin may set for osdef."""

    source: Path | None = None  # the file it came from, None = built-in defaults
    images: ImageSettings = field(default_factory=ImageSettings)
    libguestfs: LibguestfsSettings = field(default_factory=LibguestfsSettings)
    hooks_dir: Path = DEFAULT_HOOKS_DIR
    variants_dir: Path = DEFAULT_VARIANTS_DIR  # a site's own variants (listed in variants.list)
    os_param_defaults: dict[str, str] = field(default_factory=dict)
    ceph: CephSettings = field(default_factory=CephSettings)


def config_path(os_dir: Path | None = None, environ: Mapping[str, str] | None = None) -> Path | None:
    """The config file in force, or None when there is none."""
    environ = os.environ if environ is None else environ
    explicit = environ.get("OSDEF_CONFIG")
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            raise ConfigError(f"OSDEF_CONFIG={explicit}: no such file")
        return path
    candidates = []
    if os_dir is not None:
        candidates.append(Path(os_dir) / OS_DIR_CONFIG_NAME)
    candidates.append(SYSTEM_CONFIG)
    for path in candidates:
        if path.is_file():
            return path
    return None


def load(os_dir: Path | None = None, environ: Mapping[str, str] | None = None) -> SiteConfig:
    """Load the site config in force (see the module docstring for the order)."""
    path = config_path(os_dir, environ)
    if path is None:
        return SiteConfig()
    return load_file(path)


def load_file(path: Path) -> SiteConfig:
    return parse(yamldoc.load(path, ConfigError), Path(path))


# -- schema -----------------------------------------------------------------

def _mapping(value: Any, where: str, path: Path) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(f"{path}: {where} must be a mapping, got {type(value).__name__}")
    return value


def _reject_unknown(data: dict[str, Any], allowed: set[str], prefix: str, path: Path) -> None:
    for key in data:
        if key not in allowed:
            raise ConfigError(
                f"{path}: unknown key {prefix}{key} (allowed: {', '.join(sorted(allowed))})"
            )


def _str(value: Any, key: str, path: Path) -> str:
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{path}: {key} must be a non-empty string")
    return value


def _bool(value: Any, key: str, path: Path) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{path}: {key} must be true or false, got {value!r}")
    return value


def _int(value: Any, key: str, path: Path, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{path}: {key} must be an integer >= {minimum}, got {value!r}")
    return value


def _abspath(value: Any, key: str, path: Path) -> Path:
    text = _str(value, key, path)
    if not text.startswith("/"):
        raise ConfigError(f"{path}: {key} must be an absolute path, got {text!r}")
    return Path(text)


def parse(data: Any, path: Path) -> SiteConfig:
    """Turn the YAML document into a SiteConfig, naming file and key on error."""
    top = _mapping(data, "the document", path)
    _reject_unknown(top, {"images", "libguestfs", "hooks_dir", "variants_dir", "os_parameters", "ceph"}, "",
                    path)
    return SiteConfig(
        source=Path(path),
        images=_images(_mapping(top.get("images"), "images", path), path),
        libguestfs=_libguestfs(_mapping(top.get("libguestfs"), "libguestfs", path), path),
        hooks_dir=(_abspath(top["hooks_dir"], "hooks_dir", path)
                   if "hooks_dir" in top else DEFAULT_HOOKS_DIR),
        variants_dir=(_abspath(top["variants_dir"], "variants_dir", path)
                      if "variants_dir" in top else DEFAULT_VARIANTS_DIR),
        os_param_defaults=_os_parameters(_mapping(top.get("os_parameters"), "os_parameters", path),
                                         path),
        ceph=_ceph(_mapping(top.get("ceph"), "ceph", path), path),
    )


#: a key's check: (value, key, path) → the value as its field's type (Any: the fields' types differ)
_Check = Callable[[Any, str, Path], Any]

#: images.<key> → how its value is checked
_IMAGE_KEYS: dict[str, _Check] = {
    "cache_dir": _abspath, "build_on_demand": _bool, "fetch_on_demand": _bool,
    "debian_mirror": _str, "debian_security_mirror": _str, "build_tmp_dir": _abspath,
    "agreement_file": _abspath,
}


def _images(img: dict[str, Any], path: Path) -> ImageSettings:
    _reject_unknown(img, set(_IMAGE_KEYS), "images.", path)
    return ImageSettings(**{key: check(img[key], f"images.{key}", path)
                            for key, check in _IMAGE_KEYS.items() if key in img})


def _cephx_user(value: Any, key: str, path: Path) -> str:
    text = _str(value, key, path)
    if not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}", text) or text.startswith("client."):
        raise ConfigError(f"{path}: {key} must be a cephx user name without 'client.' (such as admin), "
                          f"got {text!r}")
    return text


#: ceph.<key> → how its value is checked
_CEPH_KEYS: dict[str, _Check] = {
    "conf": _abspath, "user": _cephx_user, "connect_timeout": _int, "op_timeout": _int, "prefer_uri": _bool,
}


def _ceph(ceph: dict[str, Any], path: Path) -> CephSettings:
    _reject_unknown(ceph, set(_CEPH_KEYS), "ceph.", path)
    return CephSettings(**{key: check(ceph[key], f"ceph.{key}", path)
                           for key, check in _CEPH_KEYS.items() if key in ceph})


def _libguestfs(lg: dict[str, Any], path: Path) -> LibguestfsSettings:
    _reject_unknown(lg, {"backend", "backend_settings", "memsize_mib", "smp"}, "libguestfs.", path)
    settings = lg.get("backend_settings", [])
    if isinstance(settings, str):
        settings = [s for s in settings.split(":") if s]
    if not isinstance(settings, list) or not all(isinstance(s, str) and s for s in settings):
        raise ConfigError(
            f"{path}: libguestfs.backend_settings must be a list of strings such as [force_tcg]"
        )
    return LibguestfsSettings(
        backend=_str(lg["backend"], "libguestfs.backend", path) if "backend" in lg else None,
        backend_settings=tuple(settings),
        memsize_mib=_int(lg["memsize_mib"], "libguestfs.memsize_mib", path, 256)
        if "memsize_mib" in lg else None,
        smp=_int(lg["smp"], "libguestfs.smp", path) if "smp" in lg else None,
    )


def _os_parameters(osp: dict[str, Any], path: Path) -> dict[str, str]:
    defaults: dict[str, str] = {}
    for name, value in osp.items():
        text = yamldoc.scalar_text(value, lists=True)
        if text is None:
            raise ConfigError(f"{path}: os_parameters.{name} must be a string")
        defaults[str(name)] = text
    return defaults
