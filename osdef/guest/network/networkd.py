"""systemd-networkd renderer: one .network file per NIC, matched by MAC address."""

from __future__ import annotations

from osdef.guest.network.header import HEADER
from osdef.guest.network.model import NetworkState, NicConfig

NETWORK_DIR = "/etc/systemd/network"


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
    if not state.configures_network:
        return {}
    return {network_path(nic): render_nic(nic, state) for nic in state.nics}
