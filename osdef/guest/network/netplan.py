"""netplan renderer: /etc/netplan/90-osdef.yaml; the same v2 mapping feeds cloud-init's network-config."""

from __future__ import annotations

from typing import Any

import yaml

from osdef.guest.network.header import HEADER
from osdef.guest.network.model import NetworkState, NicConfig

NETPLAN_FILE = "/etc/netplan/90-osdef.yaml"


def _ethernet(nic: NicConfig, state: NetworkState) -> dict[str, Any]:
    eth: dict[str, Any] = {"match": {"macaddress": nic.mac}, "dhcp4": nic.dhcp4,
                           "accept-ra": nic.accept_ra}
    if nic.addresses:
        eth["addresses"] = [str(a) for a in nic.addresses]
    routes = []
    for route in nic.routes:
        entry: dict[str, Any] = {"to": str(route.to), "via": str(route.via)}
        if route.on_link:
            entry["on-link"] = True
        routes.append(entry)
    if routes:
        eth["routes"] = routes
    nameservers: dict[str, Any] = {}
    if state.dns_servers:
        nameservers["addresses"] = list(state.dns_servers)
    if state.dns_search:
        nameservers["search"] = list(state.dns_search)
    if nameservers:
        eth["nameservers"] = nameservers
    return eth


def v2_config(state: NetworkState) -> dict[str, Any]:
    """The netplan / cloud-init "version 2" mapping (without the top-level `network:` key)."""
    return {"version": 2,
            "ethernets": {nic.name: _ethernet(nic, state) for nic in state.nics}}


def dump(data: dict[str, Any]) -> str:
    return yaml.safe_dump(data, default_flow_style=False, sort_keys=False)


def render(state: NetworkState) -> dict[str, str]:
    if not state.configures_network:
        return {}
    return {NETPLAN_FILE: HEADER + dump({"network": v2_config(state)})}
