"""One network model for every backend: Ganeti's NIC variables + OS params → NetworkState.

Pure: no guest access.  The renderers (ifupdown, networkd, netplan,
networkmanager, and cloud-init's network-config v2) only read this model, so
every backend gets the same decisions, which are documented in docs/network.md:

- every NIC is matched by its MAC address and given a stable name nicN;
- IPv4: NIC_N_IP with the prefix of NIC_N_NETWORK_SUBNET and its gateway;
  an IP without a Ganeti network gets /32 and no gateway; no IP → DHCP;
- routed NICs (NIC_N_MODE=routed): IP/32 and an on-link default route via the
  network's gateway, else via 169.254.1.1 (the host answers by proxy ARP);
- IPv6: a v6 NIC_N_IP is static; else a /64 NIC_N_NETWORK_SUBNET6 gives the
  EUI-64 address of the MAC; otherwise router advertisements (SLAAC);
- only the first NIC with a gateway (per address family) gets a default route.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from osdef.errors import ParamError

ROUTED_GATEWAY = ipaddress.IPv4Address("169.254.1.1")
DEFAULT4 = ipaddress.IPv4Network("0.0.0.0/0")
DEFAULT6 = ipaddress.IPv6Network("::/0")
MODES = ("auto", "static", "dhcp", "none")

Interface = ipaddress.IPv4Interface | ipaddress.IPv6Interface
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True)
class Route:
    """A route; `on_link` means the gateway is reached directly, without a covering prefix."""

    to: ipaddress.IPv4Network | ipaddress.IPv6Network
    via: Address
    on_link: bool = False

    @property
    def is_default(self) -> bool:
        return self.to.prefixlen == 0


@dataclass(frozen=True)
class NicConfig:
    """How one NIC is configured inside the guest."""

    index: int
    mac: str  # lower case aa:bb:cc:dd:ee:ff
    dhcp4: bool
    accept_ra: bool  # IPv6 router advertisements (SLAAC, and the router when no GATEWAY6)
    addresses: tuple[Interface, ...] = ()
    routes: tuple[Route, ...] = ()
    routed: bool = False

    @property
    def name(self) -> str:
        """The stable interface name osdef gives this NIC (ifupdown needs one; others use it as an id)."""
        return f"nic{self.index}"

    @property
    def ipv4_addresses(self) -> tuple[ipaddress.IPv4Interface, ...]:
        return tuple(a for a in self.addresses if a.version == 4)

    @property
    def ipv6_addresses(self) -> tuple[ipaddress.IPv6Interface, ...]:
        return tuple(a for a in self.addresses if a.version == 6)

    def routes_for(self, version: int) -> tuple[Route, ...]:
        return tuple(r for r in self.routes if r.to.version == version)


@dataclass(frozen=True)
class NetworkState:
    """Everything the renderers need; `nics` is empty when network=none."""

    mode: str
    nics: tuple[NicConfig, ...] = ()
    dns_servers: tuple[str, ...] = ()
    dns_search: tuple[str, ...] = ()

    @property
    def configures_network(self) -> bool:
        return self.mode != "none" and bool(self.nics)


def eui64(mac: str, subnet: ipaddress.IPv6Network) -> ipaddress.IPv6Address:
    """The modified EUI-64 address of `mac` in a /64 (what SLAAC without privacy extensions gives)."""
    octets = bytes(int(b, 16) for b in mac.split(":"))
    iid = bytes([octets[0] ^ 0x02]) + octets[1:3] + b"\xff\xfe" + octets[3:6]
    return subnet.network_address + int.from_bytes(iid, "big")


def _nic_config(nic: Any, mode: str) -> NicConfig:
    net = nic.network
    ip = nic.ip
    routed = nic.mode == "routed"
    addresses: list[Interface] = []
    routes: list[Route] = []
    if mode == "static" and ip is None:
        raise ParamError(f"network=static but NIC {nic.index} ({nic.mac}) has no IP (NIC_{nic.index}_IP);"
                         " give every NIC an IP or use network=auto")
    use_ip = ip if mode in ("auto", "static") else None

    # IPv4
    dhcp4 = True
    if use_ip is not None and use_ip.version == 4:
        dhcp4 = False
        subnet = net.subnet if net is not None else None
        gateway = net.gateway if net is not None else None
        if routed:
            addresses.append(ipaddress.IPv4Interface(f"{use_ip}/32"))
            routes.append(Route(DEFAULT4, gateway or ROUTED_GATEWAY, on_link=True))
        elif subnet is not None:
            addresses.append(ipaddress.IPv4Interface(f"{use_ip}/{subnet.prefixlen}"))
            if gateway is not None:
                routes.append(Route(DEFAULT4, gateway))
        else:
            addresses.append(ipaddress.IPv4Interface(f"{use_ip}/32"))

    # IPv6
    accept_ra = True
    subnet6 = net.subnet6 if net is not None else None
    gateway6 = net.gateway6 if net is not None else None
    address6: ipaddress.IPv6Interface | None = None
    if use_ip is not None and use_ip.version == 6:
        prefix = subnet6.prefixlen if subnet6 is not None and not routed else 128
        address6 = ipaddress.IPv6Interface(f"{use_ip}/{prefix}")
    elif mode in ("auto", "static") and not routed and subnet6 is not None \
            and subnet6.prefixlen == 64:
        address6 = ipaddress.IPv6Interface(f"{eui64(nic.mac, subnet6)}/64")
    if address6 is not None:
        addresses.append(address6)
        if gateway6 is not None:
            accept_ra = False
            routes.append(Route(DEFAULT6, gateway6, on_link=address6.network.prefixlen == 128))
    return NicConfig(index=nic.index, mac=nic.mac.lower(), dhcp4=dhcp4, accept_ra=accept_ra,
                     addresses=tuple(addresses), routes=tuple(routes), routed=routed)


def _one_default_route(nics: list[NicConfig]) -> list[NicConfig]:
    """Keep the default route (per family) only on the first NIC that has one."""
    seen: set[int] = set()
    out = []
    for nic in nics:
        kept = []
        for route in nic.routes:
            if route.is_default:
                if route.to.version in seen:
                    continue
                seen.add(route.to.version)
            kept.append(route)
        out.append(dataclasses.replace(nic, routes=tuple(kept)))
    return out


def dns_only(params: Mapping[str, Any]) -> NetworkState:
    """The DNS part of the params alone (the DNS step does not need the NICs)."""
    return NetworkState("none", (), tuple(str(s) for s in params.get("dns_servers") or ()),
                        tuple(str(s) for s in params.get("dns_search") or ()))


def build(instance: Any, params: Mapping[str, Any]) -> NetworkState:
    """The NetworkState for an Instance (osdef.ganeti.environment) and the typed OS params.

    Raises ParamError (one line, naming the NIC) when network=static and a NIC has no IP.
    """
    mode = str(params.get("network") or "auto")
    if mode not in MODES:
        raise ParamError(f"network={mode!r} is invalid: allowed: {', '.join(MODES)}")
    dns_servers = tuple(str(s) for s in params.get("dns_servers") or ())
    dns_search = tuple(str(s) for s in params.get("dns_search") or ())
    if mode == "none":
        return NetworkState(mode, (), dns_servers, dns_search)
    nics = [_nic_config(nic, mode) for nic in (instance.nics if instance is not None else ())]
    return NetworkState(mode, tuple(_one_default_route(nics)), dns_servers, dns_search)
