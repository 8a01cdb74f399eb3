"""NetworkManager backend: one keyfile per NIC in system-connections, bound by MAC address.

In charge when installed (/usr/sbin/NetworkManager) and enabled
(NetworkManager.service in multi-user.target.wants); an installed but disabled
NetworkManager does not run, so osdef never picks it.  Keyfiles are 0600 and
owned by root, or NetworkManager ignores them; nothing else is installed or
enabled.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from osdef.guest.network.facts import NetworkFacts, when_enabled
from osdef.guest.network.header import HEADER, one_file_per_nic
from osdef.guest.network.model import NetworkState, NicConfig

NAME = "networkmanager"
MARKERS = ("/usr/sbin/NetworkManager",)
UNIT = "NetworkManager.service"
FILE_MODE = 0o600
CONNECTIONS_DIR = "/etc/NetworkManager/system-connections"
DHCP_ROUTE_METRIC = 1024  # networkd's default for DHCP routes; static gateways keep NM's 100
_UUID_NAMESPACE = uuid.UUID("6f5cfa44-5c5e-4c6e-9a0e-0d1f3e0a7a11")


in_charge = when_enabled(NAME)  # the image runs NetworkManager: installed and enabled
available = when_enabled(NAME)  # only when enabled: osdef never enables it


def keyfile_path(nic: NicConfig) -> str:
    return f"{CONNECTIONS_DIR}/osdef-{nic.name}.nmconnection"


def connection_uuid(nic: NicConfig) -> str:
    """Stable per MAC, so a reinstall writes the same connection."""
    return str(uuid.uuid5(_UUID_NAMESPACE, nic.mac))


def _family(nic: NicConfig, state: NetworkState, version: int) -> list[str]:
    addresses = nic.ipv4_addresses if version == 4 else nic.ipv6_addresses
    if version == 4:
        method = "auto" if nic.dhcp4 else "manual"
    else:
        method = "manual" if addresses and not nic.accept_ra else "auto"
    lines = [f"[ipv{version}]", f"method={method}"]
    if version == 6:
        lines.append("addr-gen-mode=eui64")
    lines += [f"address{i}={a}" for i, a in enumerate(addresses, 1)]
    n = 0
    for route in nic.routes_for(version):
        if route.is_default and not route.on_link:
            lines.append(f"gateway={route.via}")
            continue
        n += 1
        lines.append(f"route{n}={route.to},{route.via}")
        if route.on_link:
            lines.append(f"route{n}_options=onlink=true")
    if version == 4 and nic.dhcp4 and not any(r.is_default for r in nic.routes_for(4)):
        # NetworkManager gives every ethernet default route metric 100 (+1 per device), so a
        # DHCP NIC's router could win over osdef's static gateway (seen at boot); networkd
        # gives DHCP routes 1024 and static ones 0: the same here keeps the rule that the
        # first NIC with a gateway has the default route (the lease's is the fallback)
        lines.append(f"route-metric={DHCP_ROUTE_METRIC}")
    servers = [s for s in state.dns_servers if (":" in s) == (version == 6)]
    if servers:
        lines.append("dns=" + "".join(f"{s};" for s in servers))
    if version == 4 and state.dns_search:
        lines.append("dns-search=" + "".join(f"{d};" for d in state.dns_search))
    return lines


def render_nic(nic: NicConfig, state: NetworkState) -> str:
    lines = [HEADER.rstrip("\n"), "[connection]", f"id=osdef-{nic.name}",
             f"uuid={connection_uuid(nic)}", "type=ethernet", "autoconnect=true",
             "autoconnect-priority=100", "", "[ethernet]", f"mac-address={nic.mac.upper()}", ""]
    lines += _family(nic, state, 4) + [""] + _family(nic, state, 6)
    return "\n".join(lines) + "\n"


def render(state: NetworkState) -> dict[str, str]:
    """Keyfiles must be 0600 and owned by root, or NetworkManager ignores them (FILE_MODE; apply chowns)."""
    return one_file_per_nic(state, keyfile_path, render_nic)


def prepare(session: Any, facts: NetworkFacts, log: Callable[[str], None]) -> None:
    """Nothing around the keyfiles: NetworkManager is already enabled when it is chosen."""


def stand_down(session: Any, log: Callable[[str], None]) -> None:
    """Nothing: a NetworkManager that is not chosen is not enabled, or netplan drives it."""
