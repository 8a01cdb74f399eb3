"""systemd-networkd backend: one .network file per NIC, matched by MAC address.

In charge when enabled (systemd-networkd.service in multi-user.target.wants);
available whenever installed: chosen then only when no other backend is in
charge or available before it (Debian 12 images ship the networkd binary next
to ifupdown, not enabled).  Chosen while not enabled, it is enabled: the
service, its socket and systemd-networkd-wait-online, as `systemctl enable` does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from osdef.guest.network.facts import NetworkFacts, when_enabled, when_installed
from osdef.guest.network.header import HEADER, one_file_per_nic
from osdef.guest.network.model import NetworkState, NicConfig

NAME = "networkd"
MARKERS = ("/lib/systemd/systemd-networkd", "/usr/lib/systemd/systemd-networkd")
UNIT = "systemd-networkd.service"
FILE_MODE = 0o644
NETWORK_DIR = "/etc/systemd/network"
UNIT_DIRS = ("/lib/systemd/system", "/usr/lib/systemd/system")
ENABLED_UNITS = (  # unit → the .wants directory `systemctl enable` links it from
    ("systemd-networkd.service", "multi-user.target.wants"),
    ("systemd-networkd.socket", "sockets.target.wants"),
    ("systemd-networkd-wait-online.service", "network-online.target.wants"),
)


in_charge = when_enabled(NAME)  # the image runs networkd: enabled
available = when_installed(NAME)  # installed: osdef can enable it


def network_path(nic: NicConfig) -> str:
    # sorts before distribution and image defaults (e.g. 50-dhcp.network): networkd uses the first match
    return f"{NETWORK_DIR}/10-osdef-{nic.name}.network"


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def render_nic(nic: NicConfig, state: NetworkState) -> str:
    lines = [HEADER.rstrip("\n"), "[Match]", f"MACAddress={nic.mac}", "", "[Network]",
             f"DHCP={'ipv4' if nic.dhcp4 else 'no'}", f"IPv6AcceptRA={_yes(nic.accept_ra)}"]
    lines += [f"Address={a}" for a in nic.addresses]
    lines += [f"Gateway={r.via}" for r in nic.routes if r.is_default and not r.on_link]
    lines += [f"DNS={s}" for s in state.dns_servers]
    if state.dns_search:
        lines.append("Domains=" + " ".join(state.dns_search))
    for route in nic.routes:
        if route.is_default and not route.on_link:
            continue
        lines += ["", "[Route]"]
        if not route.is_default:
            lines.append(f"Destination={route.to}")
        lines.append(f"Gateway={route.via}")
        if route.on_link:
            lines.append("GatewayOnLink=yes")
    return "\n".join(lines) + "\n"


def render(state: NetworkState) -> dict[str, str]:
    return one_file_per_nic(state, network_path, render_nic)


def prepare(session: Any, facts: NetworkFacts, log: Callable[[str], None]) -> None:
    """Enable networkd (service, socket, wait-online) when the image has not."""
    if NAME in facts.enabled:
        return
    unit_dir = next((d for d in UNIT_DIRS if session.exists(f"{d}/{UNIT}")), None)
    if unit_dir is None:
        log(f"network: {UNIT} not found; enable it in the image")
        return
    for unit, wants in ENABLED_UNITS:
        if session.exists(f"{unit_dir}/{unit}"):
            session.symlink(f"{unit_dir}/{unit}", f"/etc/systemd/system/{wants}/{unit}")
    log("network: systemd-networkd enabled")


def stand_down(session: Any, log: Callable[[str], None]) -> None:
    """Nothing: a networkd that is not chosen is not enabled, or netplan drives it."""
