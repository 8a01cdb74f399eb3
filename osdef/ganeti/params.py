"""The OS parameters, declared once.

Every parameter is declared here with its type, default and one-line
description.  From this single table come ``parameters.list`` (which Ganeti
reads), ``verify parameters``, the README table and the typed values that
create/export/import use (``OsParams``, a frozen dataclass whose fields are the
table's names).  Secret parameters are never echoed.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from collections.abc import Callable, Mapping

from osdef.disk.units import MiB, parse_size
from osdef.errors import ParamError, quote
from osdef.ganeti.nics import host_address_problem
from osdef.vocab import FILESYSTEMS, PARTITION_TABLES, valid_hostname, valid_zone_name

ZONEINFO = Path("/usr/share/zoneinfo")


class Invalid(ValueError):
    """A value failed its type; the message says what is allowed (never the value)."""


# -- value types ----------------------------------------------------------------

@dataclass(frozen=True)
class Choice:
    values: tuple[str, ...]

    def parse(self, raw: str) -> str:
        value = raw.strip().lower()
        if value not in self.values:
            raise Invalid("allowed: " + ", ".join(v if v else '"" (empty)' for v in self.values))
        return value

    def allowed(self) -> str:
        return ", ".join(v if v else '""' for v in self.values)


_TRUE = ("yes", "true", "on", "1")
_FALSE = ("no", "false", "off", "0")


@dataclass(frozen=True)
class YesNo:
    def parse(self, raw: str) -> bool:
        value = raw.strip().lower()
        if value in _TRUE:
            return True
        if value in _FALSE:
            return False
        raise Invalid("allowed: yes or no")

    def allowed(self) -> str:
        return "yes, no"


MAX_SIZE = 1 << 50  # 1 PiB: anything larger is a typo (create also bounds sizes by the disk)


@dataclass(frozen=True)
class Size:
    """A byte size such as 0, 512M, 2G (a bare number means MiB, like Ganeti)."""

    def parse(self, raw: str) -> int:
        size = parse_size(raw, bare=MiB)
        if size is None:
            raise Invalid("allowed: a size such as 0, 512M or 2G (plain numbers are MiB)")
        if size > MAX_SIZE:
            raise Invalid("allowed: a size such as 0, 512M or 2G, at most 1P")
        return size

    def allowed(self) -> str:
        return "size: 0, 512M, 2G …"


@dataclass(frozen=True)
class IpList:
    def parse(self, raw: str) -> tuple[str, ...]:
        out = []
        for item in _split_list(raw):
            try:
                ip = ipaddress.ip_address(item)
            except ValueError:
                raise Invalid(f"{quote(item)} is not an IPv4 or IPv6 address") from None
            problem = host_address_problem(ip)
            if problem and not ip.is_loopback:  # a local resolver (127.0.0.53) can be meant
                raise Invalid(f"{ip} is {problem}, not a server's address")
            out.append(str(ip))
        return tuple(out)

    def allowed(self) -> str:
        return "IP addresses, separated by spaces or ';'"


@dataclass(frozen=True)
class DomainList:
    def parse(self, raw: str) -> tuple[str, ...]:
        out = []
        for item in _split_list(raw):
            if not valid_hostname(item):
                raise Invalid(f"{quote(item)} is not a domain name")
            out.append(item.lower())
        return tuple(out)

    def allowed(self) -> str:
        return "domain names, separated by spaces or ';'"


@dataclass(frozen=True)
class Domain:
    def parse(self, raw: str) -> str:
        value = raw.strip().rstrip(".").lower()
        if value and not valid_hostname(value):
            raise Invalid(f"{quote(value)} is not a domain name")
        return value

    def allowed(self) -> str:
        return "a domain name such as example.org, or empty"


def _split_list(raw: str) -> list[str]:
    # Ganeti's -O splits on commas (escape as \,), so spaces and ';' separate items.
    return [item for item in re.split(r"[\s;,]+", raw.strip()) if item]


@dataclass(frozen=True)
class Timezone:
    def parse(self, raw: str) -> str:
        value = raw.strip()
        if value == "":
            return ""
        if not valid_zone_name(value):
            raise Invalid("allowed: a tz database name such as UTC or Europe/Berlin")
        if ZONEINFO.is_dir() and not (ZONEINFO / value).is_file():
            raise Invalid("unknown time zone; allowed: a tz database name such as UTC or Europe/Berlin")
        return value

    def allowed(self) -> str:
        return "tz name (UTC, Europe/Berlin …)"


# OpenSSH public key types and the type string inside their base64 blob.
SSH_KEY_TYPES = (
    "ssh-ed25519", "ssh-rsa", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521", "sk-ssh-ed25519@openssh.com", "sk-ecdsa-sha2-nistp256@openssh.com",
)


def parse_ssh_key(line: str) -> str:
    """Validate one OpenSSH public key line ("type base64 [comment]")."""
    parts = line.split(None, 2)
    if len(parts) < 2 or parts[0] not in SSH_KEY_TYPES:
        raise Invalid("an SSH key must look like 'ssh-ed25519 AAAA… comment' "
                      f"(types: {', '.join(SSH_KEY_TYPES[:3])} …)")
    try:
        blob = base64.b64decode(parts[1], validate=True)
    except (binascii.Error, ValueError):
        raise Invalid(f"the {parts[0]} key's base64 part is corrupt") from None
    if len(blob) < 4:
        raise Invalid(f"the {parts[0]} key is too short")
    n = int.from_bytes(blob[:4], "big")
    if blob[4:4 + n].decode("ascii", "replace") != parts[0]:
        raise Invalid(f"the {parts[0]} key's data does not match its type")
    return " ".join(parts)


@dataclass(frozen=True)
class SshKeys:
    def parse(self, raw: str) -> tuple[str, ...]:
        keys = [k.strip() for k in re.split(r"[\n|]+", raw) if k.strip()]
        return tuple(parse_ssh_key(k) for k in keys)

    def allowed(self) -> str:
        return "OpenSSH public keys, separated by '|' or newlines"


# crypt(3) formats accepted for the root password, with their shapes.
_B64 = r"[./A-Za-z0-9]"
HASH_FORMATS = {
    "sha512crypt ($6$)": re.compile(rf"^\$6\$(rounds=\d+\$)?{_B64}{{1,16}}\${_B64}{{86}}\Z"),
    "sha256crypt ($5$)": re.compile(rf"^\$5\$(rounds=\d+\$)?{_B64}{{1,16}}\${_B64}{{43}}\Z"),
    "yescrypt ($y$)": re.compile(rf"^\$y\${_B64}+\${_B64}+\${_B64}{{43}}\Z"),
    "bcrypt ($2b$)": re.compile(rf"^\$2[aby]\$\d\d\${_B64}{{53}}\Z"),
}


@dataclass(frozen=True)
class PasswordHash:
    def parse(self, raw: str) -> str:
        value = raw.strip()
        if value == "":
            return ""
        if any(fmt.match(value) for fmt in HASH_FORMATS.values()):
            return value
        raise Invalid("allowed: a crypt(3) hash: " + ", ".join(HASH_FORMATS)
                      + " (make one with: mkpasswd -m sha-512)")

    def allowed(self) -> str:
        return "crypt hash ($6$, $5$, $y$, $2b$)"


# -- the declarations -----------------------------------------------------------

@dataclass(frozen=True)
class OsParam:
    name: str
    type: Any  # one of the value types above
    default: str
    description: str
    secret: bool = False  # never echo the value

    def parse(self, raw: str) -> Any:
        return self.type.parse(raw)


PARAMETERS: tuple[OsParam, ...] = (
    OsParam("root_password_hash", PasswordHash(), "",
            "crypt(3) hash for root's password (empty: root login by password stays locked)",
            secret=True),
    OsParam("ssh_authorized_keys", SshKeys(), "",
            "OpenSSH public keys for root, separated by '|'"),
    OsParam("dns_servers", IpList(), "",
            "DNS servers (space or ';' separated); empty: from DHCP or the network's defaults"),
    OsParam("dns_search", DomainList(), "",
            "DNS search domains (space or ';' separated)"),
    OsParam("domain", Domain(), "",
            "domain of a short instance name (Ganeti 3.1 passes names as given): NAME.DOMAIN in "
            "/etc/hosts and mailname; empty: the first dns_search, else the guest's resolv.conf"),
    OsParam("timezone", Timezone(), "",
            "time zone such as Europe/Berlin (empty: keep the image's, normally UTC)"),
    OsParam("serial_console", Choice(("auto", "yes", "no")), "auto",
            "serial console on ttyS0 (auto: follow the hypervisor's serial_console)"),
    OsParam("filesystem", Choice(("",) + FILESYSTEMS), "",
            "root filesystem for tarball images (empty: the variant's)"),
    OsParam("partition_table", Choice(("",) + PARTITION_TABLES), "",
            "partition table of disk 0 (empty: the variant's)"),
    OsParam("swap_size", Size(), "0",
            "swap file size such as 512M or 2G (0: no swap)"),
    OsParam("data_disks", Choice(("keep",) + FILESYSTEMS), "keep",
            "disks 1..N: keep them untouched, or format with this filesystem and mount by UUID"),
    OsParam("network", Choice(("auto", "static", "dhcp", "none")), "auto",
            "NIC configuration: auto (static if the NIC has an IP, else DHCP), static, dhcp, none"),
    OsParam("cloud_init", Choice(("auto", "on", "off")), "auto",
            "write a NoCloud seed when the guest has cloud-init (auto/on) or never (off)"),
    OsParam("keep_ssh_host_keys", YesNo(), "yes",
            "on reinstall keep the old installation's SSH host keys (yes/no)"),
    OsParam("export_format", Choice(("sparse", "raw")), "sparse",
            "export stream: sparse (osdef stream, holes skipped) or raw (plain dd-compatible dump)"),
    OsParam("export_compression", Choice(("none", "zstd")), "none",
            "compress the export stream with zstd (for clusters that turn transit compression off)"),
    OsParam("export_content", Choice(("used", "allocated")), "used",
            "sparse export sends what the guest's filesystems use (used) or every allocated non-zero byte"),
    OsParam("import_format", Choice(("auto", "stream", "raw")), "auto",
            "what import accepts: auto (osdef stream, or a raw dump that cannot be a damaged stream), "
            "stream (osdef streams only), raw (a raw dump expected)"),
)

BY_NAME: dict[str, OsParam] = {p.name: p for p in PARAMETERS}


def parameters_list() -> str:
    """The text of parameters.list: `name description`, one per line, nothing else."""
    return "".join(f"{p.name} {p.description}\n" for p in PARAMETERS)


@dataclass(frozen=True)
class ParamProblem:
    name: str
    message: str  # already safe to show (secret values omitted)


def check(values: Mapping[str, str], *, origin: Callable[[str], str] = lambda n: "") -> list[ParamProblem]:
    """Validate raw values; one problem per bad parameter, secret values never echoed."""
    problems = []
    for name, raw in sorted(values.items()):
        param = BY_NAME.get(name)
        if param is None:
            problems.append(ParamProblem(
                name, f"{name if len(name) <= 40 and name.isidentifier() else quote(name, 40)}{origin(name)}: "
                      "unknown OS parameter (known: "
                      + ", ".join(p.name for p in PARAMETERS) + ")"))
            continue
        try:
            param.parse(raw)
        except Invalid as exc:
            shown = "(value hidden: secret)" if param.secret else quote(raw)
            problems.append(ParamProblem(name, f"{name}{origin(name)}={shown} is invalid: {exc}"))
    return problems


@dataclass(frozen=True)
class Merged:
    """Raw values in force for each parameter, and where non-given ones came from."""

    values: dict[str, str]
    origins: dict[str, str]

    def problems(self) -> list[ParamProblem]:
        return check(self.values, origin=lambda n: self.origins.get(n, ""))


def merge(given: Mapping[str, str], *, variant_defaults: Mapping[str, str] | None = None,
          site_defaults: Mapping[str, str] | None = None, site_source: str = "site config") -> Merged:
    """given > variant default > site default > declared default (unknown names kept, to be reported)."""
    layers = (
        (given, ""),
        (variant_defaults or {}, " (variant default)"),
        (site_defaults or {}, f" (default in {site_source})"),
    )
    values: dict[str, str] = {}
    origins: dict[str, str] = {}
    for layer, label in layers:
        for name, raw in layer.items():
            if name not in values:
                values[name] = raw
                if label:
                    origins[name] = label
    for p in PARAMETERS:
        values.setdefault(p.name, p.default)
    return Merged(values, origins)


@dataclass(frozen=True)
class OsParams(Mapping[str, Any]):
    """The typed values in force for one instance, parsed once from PARAMETERS (its defaults live
    there, not here: see defaults()).  Read them as attributes; the mapping view
    (`params["swap_size"]`, `.get`) is for the code that takes any mapping (the network model)."""

    root_password_hash: str = field(repr=False)  # secret: never in a repr or a message
    ssh_authorized_keys: tuple[str, ...]
    dns_servers: tuple[str, ...]
    dns_search: tuple[str, ...]
    domain: str
    timezone: str
    serial_console: str
    filesystem: str
    partition_table: str
    swap_size: int
    data_disks: str
    network: str
    cloud_init: str
    keep_ssh_host_keys: bool
    export_format: str
    export_compression: str
    export_content: str
    import_format: str

    @classmethod
    def defaults(cls) -> OsParams:
        """Every parameter at its declared default."""
        return cls(**{p.name: p.parse(p.default) for p in PARAMETERS})

    @classmethod
    def of(cls, **typed: Any) -> OsParams:
        """The defaults with some typed values replaced (for callers that build values in code)."""
        return replace(cls.defaults(), **typed)

    def __getitem__(self, name: str) -> Any:
        if name not in BY_NAME:
            raise KeyError(name)
        return getattr(self, name)

    def __iter__(self) -> Iterator[str]:
        return iter(BY_NAME)

    def __len__(self) -> int:
        return len(BY_NAME)


def resolve(given: Mapping[str, str], **defaults: Any) -> OsParams:
    """Typed values for every parameter (see merge); ParamError listing every bad one."""
    merged = merge(given, **defaults)
    problems = merged.problems()
    if problems:
        raise ParamError("; ".join(p.message for p in problems))
    return OsParams(**{p.name: p.parse(merged.values[p.name]) for p in PARAMETERS})



def markdown_table() -> str:
    """The README's OS-parameter table, generated from the declarations."""
    rows = ["| parameter | values | default | description |", "|---|---|---|---|"]
    for p in PARAMETERS:
        default = f"`{p.default}`" if p.default else "(empty)"
        desc = p.description + (" **Secret-safe: never logged.**" if p.secret else "")
        cells = (f"`{p.name}`", p.type.allowed(), default, desc)
        rows.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(rows) + "\n"
