"""Ganeti's OS-script environment as typed values.

Ganeti (API 10, 15 and 20) hands every fact about the instance to an OS
script in environment variables.  This module turns that mapping into an
``Instance`` (plus a ``DataTarget`` for export and import; NICs: osdef.ganeti.nics)
and rejects anything missing or malformed with one line that names the
variable.  It never logs values: OS parameters may be secret.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from collections.abc import Mapping
from typing import TypedDict

from osdef.errors import EnvError, quote
from osdef.ganeti.envfields import (check_lengths, check_path, flag, indexed_count, integer, number, optional,
                                    require)
from osdef.ganeti.nics import Nic, parse_nic
from osdef.vocab import valid_hostname

SUPPORTED_API_VERSIONS = (20, 15, 10)

SCRIPTS = ("create", "rename", "export", "import", "verify")

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_UUID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\Z")


@dataclass(frozen=True)
class Disk:
    """One instance disk (DISK_N_*): a path, a URI (userspace access only), or both."""

    index: int
    path: str | None
    size_mib: int | None = None  # DISK_N_SIZE, Ganeti >= 3.0
    uuid: str | None = None
    name: str | None = None
    access: str | None = None  # rw | ro
    backend_type: str | None = None  # file:loop | block | userspace …
    uri: str | None = None  # userspace access only
    frontend_type: str | None = None

    def location(self, prefer_uri: bool = False) -> str:
        """What osdef opens: DISK_N_PATH, or DISK_N_URI when there is no path (or the site prefers it)."""
        return pick_location(self.path, self.uri, prefer_uri)

    def location_key(self, prefer_uri: bool = False) -> str:
        """The variable ``location`` came from, for messages."""
        return f"DISK_{self.index}_{'URI' if self.location(prefer_uri) == self.uri else 'PATH'}"


@dataclass(frozen=True)
class Instance:
    """Everything Ganeti told an OS script about the instance."""

    api_version: int
    os_name: str | None
    variant: str | None
    debug_level: int
    name: str | None = None
    os: str | None = None  # INSTANCE_OS, "name+variant"
    uuid: str | None = None
    hypervisor: str | None = None
    primary_node: str | None = None  # a node UUID, not a name
    secondary_nodes: tuple[str, ...] = ()
    ctime: float | None = None
    mtime: float | None = None
    be_params: Mapping[str, str] = field(default_factory=dict)
    hv_params: Mapping[str, str] = field(default_factory=dict)
    disks: tuple[Disk, ...] = ()
    nics: tuple[Nic, ...] = ()
    os_params: Mapping[str, str] = field(default_factory=dict)  # OSP_FOO → "foo"
    reinstall: bool = False
    old_name: str | None = None  # rename only

    @property
    def short_name(self) -> str | None:
        return self.name.split(".", 1)[0] if self.name else None

    def hv_bool(self, key: str) -> bool | None:
        """An INSTANCE_HV_* value Ganeti renders as True/False, or None if absent."""
        raw = self.hv_params.get(key)
        if raw is None or raw == "":
            return None
        return raw.strip().lower() in ("true", "1", "yes")


@dataclass(frozen=True)
class DataTarget:
    """The disk an export reads (EXPORT_*) or an import writes (IMPORT_*), and the fd that
    gets its byte count (EXP_SIZE_FD, the same variable for both).  A userspace-only disk
    comes as EXPORT_DISK_URI / IMPORT_DISK_URI and no device."""

    device: str | None
    index: int
    disk_path: str | None = None
    size_fd: int | None = None
    uri: str | None = None
    prefix: str = "EXPORT"

    def location(self, prefer_uri: bool = False) -> str:
        return pick_location(self.device, self.uri, prefer_uri)

    def location_key(self, prefer_uri: bool = False) -> str:
        return f"{self.prefix}_{'DISK_URI' if self.location(prefer_uri) == self.uri else 'DEVICE'}"


ExportTarget = ImportTarget = DataTarget


def pick_location(path: str | None, uri: str | None, prefer_uri: bool) -> str:
    """The path, or the URI where there is no path or the site prefers URIs (ceph.prefer_uri)."""
    if uri and (prefer_uri or not path):
        return uri
    assert path is not None  # parsing requires one of the two
    return path


def _check_uri(key: str, uri: str | None) -> str | None:
    if uri is not None and _CONTROL.search(uri):
        raise EnvError(f"{key} contains a control character")
    return uri


def parse_disk(env: Mapping[str, str], i: int) -> Disk:
    p = f"DISK_{i}_"
    path = optional(env, p + "PATH")
    uri = _check_uri(p + "URI", optional(env, p + "URI"))
    if path is None and uri is None:
        raise EnvError(f"DISK_{i}_PATH and DISK_{i}_URI are both unset; is this script being run by Ganeti?")
    if path is not None:
        check_path(p + "PATH", path)
    access = optional(env, p + "ACCESS")
    if access is not None and access not in ("rw", "ro"):
        raise EnvError(f"{p}ACCESS={quote(access)} must be rw or ro")
    return Disk(
        index=i,
        path=path,
        size_mib=integer(env, p + "SIZE", minimum=0),
        uuid=optional(env, p + "UUID"),
        name=optional(env, p + "NAME"),
        access=access,
        backend_type=optional(env, p + "BACKEND_TYPE"),
        uri=uri,
        frontend_type=optional(env, p + "FRONTEND_TYPE"),
    )


def os_params(env: Mapping[str, str]) -> dict[str, str]:
    """OSP_FOO_BAR=v → {"foo_bar": "v"} (Ganeti upper-cases and maps - to _)."""
    return {k[4:].lower(): v for k, v in env.items() if k.startswith("OSP_") and len(k) > 4}


def api_version(env: Mapping[str, str]) -> int:
    raw = env.get("OS_API_VERSION")
    if raw is None or raw == "":
        raise EnvError("OS_API_VERSION is not set; is this script being run by Ganeti?")
    try:
        version = int(raw)
    except ValueError:
        raise EnvError(f"OS_API_VERSION={quote(raw)} is not an integer") from None
    if version not in SUPPORTED_API_VERSIONS:
        supported = ", ".join(str(v) for v in SUPPORTED_API_VERSIONS)
        raise EnvError(f"OS_API_VERSION={version} is not supported (supported: {supported})")
    return version


def variant_name(env: Mapping[str, str]) -> str | None:
    """OS_VARIANT, else the part after '+' in INSTANCE_OS (API 10 passes no variant)."""
    variant = env.get("OS_VARIANT")
    if variant:
        return variant
    inst_os = env.get("INSTANCE_OS", "")
    if "+" in inst_os:
        return inst_os.split("+", 1)[1] or None
    return None


class _Common(TypedDict):
    """The Instance fields every script gets (verify gets only these)."""

    api_version: int
    os_name: str | None
    variant: str | None
    debug_level: int
    os_params: dict[str, str]


def load_instance(env: Mapping[str, str], script: str) -> Instance:
    """Build the Instance a given script needs, or raise EnvError naming the variable."""
    if script not in SCRIPTS:
        raise ValueError(f"unknown script {script!r}")
    check_lengths(env)
    version = api_version(env)
    debug = integer(env, "DEBUG_LEVEL", minimum=0) or 0
    base = _Common(
        api_version=version,
        os_name=optional(env, "OS_NAME"),
        variant=variant_name(env),
        debug_level=debug,
        os_params=os_params(env),
    )
    if script == "verify":
        return Instance(**base)

    name = require(env, "INSTANCE_NAME")
    if not valid_hostname(name):
        raise EnvError(
            f"INSTANCE_NAME={quote(name)} is not a valid host name (RFC 1123: letters, digits, '-', "
            "dot-separated labels of at most 63 characters)"
        )
    disk_count = indexed_count(env, "DISK", ("PATH", "URI"))
    if script in ("create", "rename") and disk_count == 0:
        raise EnvError("DISK_COUNT=0: the instance has no disk to work on")
    nic_count = indexed_count(env, "NIC", "MAC")
    old_name = None
    if script == "rename":
        old_name = require(env, "OLD_INSTANCE_NAME", "rename needs the old name")
        if not valid_hostname(old_name):
            raise EnvError(f"OLD_INSTANCE_NAME={quote(old_name)} is not a valid host name")
    uuid = optional(env, "INSTANCE_UUID")
    if uuid is not None and not _UUID_RE.match(uuid):
        raise EnvError(f"INSTANCE_UUID={quote(uuid)} is not a UUID")
    return Instance(
        **base,
        name=name.lower(),
        os=optional(env, "INSTANCE_OS"),
        uuid=uuid,
        hypervisor=optional(env, "HYPERVISOR"),
        primary_node=optional(env, "INSTANCE_PRIMARY_NODE"),
        secondary_nodes=tuple(s for s in (env.get("INSTANCE_SECONDARY_NODES") or "").split(",") if s),
        ctime=number(env, "INSTANCE_CTIME"),
        mtime=number(env, "INSTANCE_MTIME"),
        be_params={k[len("INSTANCE_BE_"):]: v for k, v in env.items() if k.startswith("INSTANCE_BE_")},
        hv_params={k[len("INSTANCE_HV_"):]: v for k, v in env.items() if k.startswith("INSTANCE_HV_")},
        disks=tuple(parse_disk(env, i) for i in range(disk_count)),
        nics=tuple(parse_nic(env, i) for i in range(nic_count)),
        reinstall=flag(env, "INSTANCE_REINSTALL"),
        old_name=old_name.lower() if old_name else None,
    )


def _data_target(env: Mapping[str, str], prefix: str) -> DataTarget:
    device = optional(env, f"{prefix}_DEVICE")
    uri = _check_uri(f"{prefix}_DISK_URI", optional(env, f"{prefix}_DISK_URI"))
    if device is None and uri is None:
        require(env, f"{prefix}_DEVICE", f"nor {prefix}_DISK_URI")
    return DataTarget(
        device=check_path(f"{prefix}_DEVICE", device) if device is not None else None,
        index=integer(env, f"{prefix}_INDEX", required=True, minimum=0) or 0,
        disk_path=optional(env, f"{prefix}_DISK_PATH"),
        size_fd=integer(env, "EXP_SIZE_FD", minimum=0),
        uri=uri,
        prefix=prefix,
    )


def load_export_target(env: Mapping[str, str]) -> DataTarget:
    return _data_target(env, "EXPORT")


def load_import_target(env: Mapping[str, str]) -> DataTarget:
    return _data_target(env, "IMPORT")
