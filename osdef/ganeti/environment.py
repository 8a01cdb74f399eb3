"""Ganeti's OS-script environment as typed values.

Ganeti (API 10, 15 and 20) hands every fact about the instance to an OS
script in environment variables.  This module turns that mapping into an
``Instance`` (plus ``ExportTarget`` / ``ImportTarget`` for the data scripts)
and rejects anything missing or malformed with one line that names the
variable.  It never logs values: OS parameters may be secret.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from typing import Callable, Mapping, TypeVar

from osdef.errors import EnvError, quote
from osdef.vocab import valid_hostname

SUPPORTED_API_VERSIONS = (20, 15, 10)
T = TypeVar("T")

SCRIPTS = ("create", "rename", "export", "import", "verify")

_MAC_RE = re.compile(r"[0-9a-f]{2}(:[0-9a-f]{2}){5}\Z")
_UUID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\Z")
MAX_VALUE = 64 * 1024  # any variable; longer ones are refused before use
MAX_PATH = 4095  # PATH_MAX less the NUL
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True)
class Network:
    """A Ganeti network a NIC is connected to (NIC_N_NETWORK_*)."""

    name: str | None = None
    uuid: str | None = None
    tags: tuple[str, ...] = ()
    subnet: ipaddress.IPv4Network | None = None
    gateway: ipaddress.IPv4Address | None = None
    subnet6: ipaddress.IPv6Network | None = None
    gateway6: ipaddress.IPv6Address | None = None
    mac_prefix: str | None = None


@dataclass(frozen=True)
class Nic:
    """One network interface (NIC_N_*)."""

    index: int
    mac: str
    ip: IPAddress | None = None
    mode: str | None = None  # bridged | routed | openvswitch
    link: str | None = None
    bridge: str | None = None
    uuid: str | None = None
    name: str | None = None
    vlan: str | None = None
    network: Network | None = None


@dataclass(frozen=True)
class Disk:
    """One instance disk (DISK_N_*)."""

    index: int
    path: str
    size_mib: int | None = None  # DISK_N_SIZE, Ganeti >= 3.0
    uuid: str | None = None
    name: str | None = None
    access: str | None = None  # rw | ro
    backend_type: str | None = None  # file:loop | block | userspace …
    uri: str | None = None  # userspace access only
    frontend_type: str | None = None


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
class ExportTarget:
    """What the export script reads (EXPORT_*), and where it reports the size."""

    device: str
    index: int
    disk_path: str | None = None
    size_fd: int | None = None


@dataclass(frozen=True)
class ImportTarget:
    """What the import script writes (IMPORT_*), and where it reports the size."""

    device: str
    index: int
    disk_path: str | None = None
    size_fd: int | None = None


# -- field parsers: each names the variable it failed on ------------------------

def _get(env: Mapping[str, str], key: str) -> str | None:
    value = env.get(key)
    return None if value is None else value


def _require(env: Mapping[str, str], key: str, why: str = "") -> str:
    value = env.get(key)
    if value is None or value == "":
        hint = f" ({why})" if why else ""
        raise EnvError(f"{key} is not set{hint}; is this script being run by Ganeti?")
    return value


def _int(env: Mapping[str, str], key: str, *, required: bool = False,
         minimum: int | None = None) -> int | None:
    raw = _require(env, key) if required else _get(env, key)
    if raw is None or raw == "":
        return None
    try:
        value = int(raw.strip())
    except ValueError:
        raise EnvError(f"{key}={quote(raw)} is not an integer") from None
    if minimum is not None and value < minimum:
        raise EnvError(f"{key}={value} must be >= {minimum}")
    return value


def _float(env: Mapping[str, str], key: str) -> float | None:
    raw = _get(env, key)
    if not raw:
        return None
    try:
        return float(raw)
    except ValueError:
        raise EnvError(f"{key}={quote(raw)} is not a number") from None


def _bool_flag(env: Mapping[str, str], key: str) -> bool:
    raw = (_get(env, key) or "").strip().lower()
    if raw in ("", "0", "false", "no"):
        return False
    if raw in ("1", "true", "yes"):
        return True
    raise EnvError(f"{key}={quote(raw)} must be 0 or 1")


def _opt(env: Mapping[str, str], key: str) -> str | None:
    value = env.get(key)
    return value if value else None


def _parsed(env: Mapping[str, str], key: str, parse: Callable[[str], T], what: str,
            *, none_word: bool = False) -> T | None:
    """The value of key parsed by parse; unset/empty (and "None" if none_word) is None."""
    raw = _opt(env, key)
    if raw is None or (none_word and raw.lower() == "none"):
        return None
    try:
        return parse(raw.strip())
    except ValueError:
        raise EnvError(f"{key}={quote(raw)} is not {what}") from None


def _ip(env: Mapping[str, str], key: str) -> IPAddress | None:
    return _parsed(env, key, ipaddress.ip_address, "an IP address", none_word=True)


def _net4(env: Mapping[str, str], key: str) -> ipaddress.IPv4Network | None:
    return _parsed(env, key, ipaddress.IPv4Network,
                   "an IPv4 network such as 198.51.100.0/24")


def _net6(env: Mapping[str, str], key: str) -> ipaddress.IPv6Network | None:
    return _parsed(env, key, ipaddress.IPv6Network, "an IPv6 network such as 2001:db8::/64")


def _addr4(env: Mapping[str, str], key: str) -> ipaddress.IPv4Address | None:
    return _parsed(env, key, ipaddress.IPv4Address, "an IPv4 address")


def _addr6(env: Mapping[str, str], key: str) -> ipaddress.IPv6Address | None:
    return _parsed(env, key, ipaddress.IPv6Address, "an IPv6 address")


def _count(env: Mapping[str, str], prefix: str, item_key: str) -> int:
    """Check *_COUNT against the indexed variables actually present."""
    count_key = f"{prefix}_COUNT"
    count = _int(env, count_key, minimum=0)
    present = sorted(
        int(m.group(1))
        for k in env
        if (m := re.match(rf"^{prefix}_(\d+)_", k)) is not None
    )
    highest = present[-1] if present else -1
    if count is None:
        if present:
            raise EnvError(f"{count_key} is not set but {prefix}_{present[0]}_* variables are")
        return 0
    if highest >= count:
        raise EnvError(
            f"{count_key}={count} but {prefix}_{highest}_* is set: the counts do not match"
        )
    for i in range(count):
        if not env.get(f"{prefix}_{i}_{item_key}"):
            raise EnvError(f"{count_key}={count} but {prefix}_{i}_{item_key} is not set")
    return count


def check_path(key: str, path: str) -> str:
    """An absolute path of at most MAX_PATH characters without control characters (newlines …)."""
    if not path.startswith("/"):
        raise EnvError(f"{key}={quote(path)} is not an absolute path")
    if len(path) > MAX_PATH:
        raise EnvError(f"{key}={quote(path)} is longer than {MAX_PATH} characters")
    if _CONTROL_RE.search(path):
        raise EnvError(f"{key}={quote(path)} contains a control character")
    return path


def parse_disk(env: Mapping[str, str], i: int) -> Disk:
    p = f"DISK_{i}_"
    path = _require(env, p + "PATH")
    check_path(p + "PATH", path)
    access = _opt(env, p + "ACCESS")
    if access is not None and access not in ("rw", "ro"):
        raise EnvError(f"{p}ACCESS={quote(access)} must be rw or ro")
    return Disk(
        index=i,
        path=path,
        size_mib=_int(env, p + "SIZE", minimum=0),
        uuid=_opt(env, p + "UUID"),
        name=_opt(env, p + "NAME"),
        access=access,
        backend_type=_opt(env, p + "BACKEND_TYPE"),
        uri=_opt(env, p + "URI"),
        frontend_type=_opt(env, p + "FRONTEND_TYPE"),
    )


def parse_nic(env: Mapping[str, str], i: int) -> Nic:
    p = f"NIC_{i}_"
    mac = _require(env, p + "MAC").strip().lower()
    if not _MAC_RE.match(mac):
        raise EnvError(f"{p}MAC={quote(mac)} is not a MAC address such as aa:00:00:12:34:56")
    if int(mac[:2], 16) & 1:
        raise EnvError(f"{p}MAC={mac} is a multicast address (the lowest bit of its first byte is set): "
                       "a NIC needs a unicast MAC")
    if mac == "00:00:00:00:00:00":
        raise EnvError(f"{p}MAC={mac} is the all-zero address: a NIC needs a real MAC")
    mode = _opt(env, p + "MODE")
    if mode is not None and mode not in ("bridged", "routed", "openvswitch"):
        raise EnvError(f"{p}MODE={quote(mode)} must be bridged, routed or openvswitch")
    np = p + "NETWORK_"
    network = None
    if any(k.startswith(np) for k in env):
        tags_raw = _opt(env, np + "TAGS") or ""
        network = Network(
            name=_opt(env, np + "NAME"),
            uuid=_opt(env, np + "UUID"),
            tags=tuple(t for t in re.split(r"[\s,]+", tags_raw) if t),
            subnet=_net4(env, np + "SUBNET"),
            gateway=_addr4(env, np + "GATEWAY"),
            subnet6=_net6(env, np + "SUBNET6"),
            gateway6=_addr6(env, np + "GATEWAY6"),
            mac_prefix=_opt(env, np + "MAC_PREFIX"),
        )
        if network.subnet and network.gateway and network.gateway not in network.subnet:
            raise EnvError(
                f"{np}GATEWAY={network.gateway} is outside {np}SUBNET={network.subnet}"
            )
        if network.subnet6 and network.gateway6 and network.gateway6 not in network.subnet6:
            raise EnvError(
                f"{np}GATEWAY6={network.gateway6} is outside {np}SUBNET6={network.subnet6}"
            )
    ip = _ip(env, p + "IP")
    if ip is not None:
        subnet = None
        if network is not None:
            subnet = network.subnet if ip.version == 4 else network.subnet6
            if subnet is not None and ip not in subnet:
                raise EnvError(f"{p}IP={ip} is outside {np}SUBNET{'6' if ip.version == 6 else ''}={subnet}")
        check_host_address(p + "IP", ip, subnet)
    if network is not None:
        for key, gw, net in ((np + "GATEWAY", network.gateway, network.subnet),
                             (np + "GATEWAY6", network.gateway6, network.subnet6)):
            if gw is not None:
                check_host_address(key, gw, net)
    return Nic(
        index=i,
        mac=mac,
        ip=ip,
        mode=mode,
        link=_opt(env, p + "LINK"),
        bridge=_opt(env, p + "BRIDGE"),
        uuid=_opt(env, p + "UUID"),
        name=_opt(env, p + "NAME"),
        vlan=_opt(env, p + "VLAN"),
        network=network,
    )


def host_address_problem(ip: IPAddress, subnet=None) -> str | None:
    """Why ``ip`` cannot be a host's own address (on a NIC, as a gateway), or None."""
    if ip.is_unspecified:
        return "the unspecified address"
    if ip.is_multicast:
        return "a multicast address"
    if ip.is_loopback:
        return "a loopback address"
    if ip.version == 4 and ip == ipaddress.IPv4Address("255.255.255.255"):
        return "the broadcast address"
    if subnet is not None and subnet.version == 4 and subnet.prefixlen <= 30:
        if ip == subnet.broadcast_address:
            return f"the broadcast address of {subnet}"
        if ip == subnet.network_address:
            return f"the network address of {subnet}"
    return None


def check_host_address(key: str, ip: IPAddress, subnet=None) -> None:
    problem = host_address_problem(ip, subnet)
    if problem:
        raise EnvError(f"{key}={ip} is {problem}, not a host address")


def check_lengths(env: Mapping[str, str]) -> None:
    """Every value at most MAX_VALUE characters, before any of them is parsed or echoed."""
    for key, value in env.items():
        if len(value) > MAX_VALUE:
            raise EnvError(f"{key} is {len(value)} characters long (at most {MAX_VALUE}): refusing to use it")


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


def load_instance(env: Mapping[str, str], script: str) -> Instance:
    """Build the Instance a given script needs, or raise EnvError naming the variable."""
    if script not in SCRIPTS:
        raise ValueError(f"unknown script {script!r}")
    check_lengths(env)
    version = api_version(env)
    debug = _int(env, "DEBUG_LEVEL", minimum=0) or 0
    base = dict(
        api_version=version,
        os_name=_opt(env, "OS_NAME"),
        variant=variant_name(env),
        debug_level=debug,
        os_params=os_params(env),
    )
    if script == "verify":
        return Instance(**base)

    name = _require(env, "INSTANCE_NAME")
    if not valid_hostname(name):
        raise EnvError(
            f"INSTANCE_NAME={quote(name)} is not a valid host name (RFC 1123: letters, digits, '-', "
            "dot-separated labels of at most 63 characters)"
        )
    disk_count = _count(env, "DISK", "PATH")
    if script in ("create", "rename") and disk_count == 0:
        raise EnvError("DISK_COUNT=0: the instance has no disk to work on")
    nic_count = _count(env, "NIC", "MAC")
    old_name = None
    if script == "rename":
        old_name = _require(env, "OLD_INSTANCE_NAME", "rename needs the old name")
        if not valid_hostname(old_name):
            raise EnvError(f"OLD_INSTANCE_NAME={quote(old_name)} is not a valid host name")
    uuid = _opt(env, "INSTANCE_UUID")
    if uuid is not None and not _UUID_RE.match(uuid):
        raise EnvError(f"INSTANCE_UUID={quote(uuid)} is not a UUID")
    return Instance(
        **base,
        name=name.lower(),
        os=_opt(env, "INSTANCE_OS"),
        uuid=uuid,
        hypervisor=_opt(env, "HYPERVISOR"),
        primary_node=_opt(env, "INSTANCE_PRIMARY_NODE"),
        secondary_nodes=tuple(s for s in (env.get("INSTANCE_SECONDARY_NODES") or "").split(",") if s),
        ctime=_float(env, "INSTANCE_CTIME"),
        mtime=_float(env, "INSTANCE_MTIME"),
        be_params={k[len("INSTANCE_BE_"):]: v for k, v in env.items() if k.startswith("INSTANCE_BE_")},
        hv_params={k[len("INSTANCE_HV_"):]: v for k, v in env.items() if k.startswith("INSTANCE_HV_")},
        disks=tuple(parse_disk(env, i) for i in range(disk_count)),
        nics=tuple(parse_nic(env, i) for i in range(nic_count)),
        reinstall=_bool_flag(env, "INSTANCE_REINSTALL"),
        old_name=old_name.lower() if old_name else None,
    )


def _size_fd(env: Mapping[str, str]) -> int | None:
    fd = _int(env, "EXP_SIZE_FD", minimum=0)
    return fd


def load_export_target(env: Mapping[str, str]) -> ExportTarget:
    device = check_path("EXPORT_DEVICE", _require(env, "EXPORT_DEVICE"))
    return ExportTarget(
        device=device,
        index=_int(env, "EXPORT_INDEX", required=True, minimum=0) or 0,
        disk_path=_opt(env, "EXPORT_DISK_PATH"),
        size_fd=_size_fd(env),
    )


def load_import_target(env: Mapping[str, str]) -> ImportTarget:
    device = check_path("IMPORT_DEVICE", _require(env, "IMPORT_DEVICE"))
    return ImportTarget(
        device=device,
        index=_int(env, "IMPORT_INDEX", required=True, minimum=0) or 0,
        disk_path=_opt(env, "IMPORT_DISK_PATH"),
        size_fd=_size_fd(env),
    )
