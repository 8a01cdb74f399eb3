"""A NIC as Ganeti describes it (NIC_N_*, NIC_N_NETWORK_*), checked: a unicast MAC, addresses
a host can have, inside their network's subnet."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from collections.abc import Mapping

from osdef.errors import EnvError, quote
from osdef.ganeti.envfields import (IPAddress, addr4, addr6, ip_address, net4, net6, optional,
                                    require)

_MAC_RE = re.compile(r"[0-9a-f]{2}(:[0-9a-f]{2}){5}\Z")
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


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


def parse_nic(env: Mapping[str, str], i: int) -> Nic:
    p = f"NIC_{i}_"
    mac = require(env, p + "MAC").strip().lower()
    if not _MAC_RE.match(mac):
        raise EnvError(f"{p}MAC={quote(mac)} is not a MAC address such as aa:00:00:12:34:56")
    if int(mac[:2], 16) & 1:
        raise EnvError(f"{p}MAC={mac} is a multicast address (the lowest bit of its first byte is set): "
                       "a NIC needs a unicast MAC")
    if mac == "00:00:00:00:00:00":
        raise EnvError(f"{p}MAC={mac} is the all-zero address: a NIC needs a real MAC")
    mode = optional(env, p + "MODE")
    if mode is not None and mode not in ("bridged", "routed", "openvswitch"):
        raise EnvError(f"{p}MODE={quote(mode)} must be bridged, routed or openvswitch")
    np = p + "NETWORK_"
    network = None
    if any(k.startswith(np) for k in env):
        tags_raw = optional(env, np + "TAGS") or ""
        network = Network(
            name=optional(env, np + "NAME"),
            uuid=optional(env, np + "UUID"),
            tags=tuple(t for t in re.split(r"[\s,]+", tags_raw) if t),
            subnet=net4(env, np + "SUBNET"),
            gateway=addr4(env, np + "GATEWAY"),
            subnet6=net6(env, np + "SUBNET6"),
            gateway6=addr6(env, np + "GATEWAY6"),
            mac_prefix=optional(env, np + "MAC_PREFIX"),
        )
        if network.subnet and network.gateway and network.gateway not in network.subnet:
            raise EnvError(
                f"{np}GATEWAY={network.gateway} is outside {np}SUBNET={network.subnet}"
            )
        if network.subnet6 and network.gateway6 and network.gateway6 not in network.subnet6:
            raise EnvError(
                f"{np}GATEWAY6={network.gateway6} is outside {np}SUBNET6={network.subnet6}"
            )
    ip = ip_address(env, p + "IP")
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
        link=optional(env, p + "LINK"),
        bridge=optional(env, p + "BRIDGE"),
        uuid=optional(env, p + "UUID"),
        name=optional(env, p + "NAME"),
        vlan=optional(env, p + "VLAN"),
        network=network,
    )


def host_address_problem(ip: IPAddress, subnet: IPNetwork | None = None) -> str | None:
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


def check_host_address(key: str, ip: IPAddress, subnet: IPNetwork | None = None) -> None:
    problem = host_address_problem(ip, subnet)
    if problem:
        raise EnvError(f"{key}={ip} is {problem}, not a host address")
