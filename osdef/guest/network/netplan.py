"""netplan backend: /etc/netplan/90-osdef.yaml (0600); the same v2 mapping feeds cloud-init's network-config.

In charge whenever it is installed (/usr/sbin/netplan or /etc/netplan): netplan
is then the front end that generates networkd or NetworkManager configuration
(Ubuntu).  Around its file: the image's other /etc/netplan/*.yaml are renamed
*.yaml.osdef-disabled (netplan merges all files; an image's `eth0: dhcp4` would
still match).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import yaml

from osdef.guest.network.facts import NetworkFacts, when_installed
from osdef.guest.network.header import HEADER
from osdef.guest.network.model import NetworkState, NicConfig

NAME = "netplan"
MARKERS = ("/usr/sbin/netplan", "/etc/netplan")
UNIT = None
FILE_MODE = 0o600  # netplan warns about (and future versions refuse) world-readable files
NETPLAN_FILE = "/etc/netplan/90-osdef.yaml"
DISABLED_SUFFIX = ".osdef-disabled"


in_charge = when_installed(NAME)  # the image runs netplan: it is installed
available = when_installed(NAME)  # osdef writes its file


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


def prepare(session: Any, facts: NetworkFacts, log: Callable[[str], None]) -> None:
    """Before osdef's file is written: the image's other netplan files renamed out of the way."""
    for path in session.glob("/etc/netplan/*.yaml"):
        if path != NETPLAN_FILE:
            session.rename(path, path + DISABLED_SUFFIX)
            log(f"network: the image's {path} renamed to {path}{DISABLED_SUFFIX}")


def stand_down(session: Any, log: Callable[[str], None]) -> None:
    """Nothing: an installed netplan is always the backend chosen."""
