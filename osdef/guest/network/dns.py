"""DNS servers and search domains where the guest's resolver reads them.

- /etc/resolv.conf links into /run/systemd/resolve, or systemd-resolved is
  enabled: a drop-in /etc/systemd/resolved.conf.d/50-osdef.conf.
- /etc/resolv.conf links into /run/resolvconf (resolvconf package): its
  /etc/resolvconf/resolv.conf.d/base.
- otherwise: /etc/resolv.conf itself (a dangling link is replaced by a file).
Nothing is written when neither dns_servers nor dns_search is set: the guest
then keeps what DHCP or the image gives.  The network renderers also put the
servers on each NIC for backends that take them per link.
"""

from __future__ import annotations

from osdef.guest.network.facts import NetworkFacts
from osdef.guest.network.header import HEADER
from osdef.guest.network.model import NetworkState

MARKERS = {  # resolver → the paths that show it is installed (read with the backends' MARKERS)
    "resolved": ("/lib/systemd/systemd-resolved", "/usr/lib/systemd/systemd-resolved"),
    "resolvconf": ("/sbin/resolvconf", "/usr/sbin/resolvconf"),
}
UNITS = {"resolved": "systemd-resolved.service"}
RESOLVED_DROPIN = "/etc/systemd/resolved.conf.d/50-osdef.conf"
RESOLVCONF_BASE = "/etc/resolvconf/resolv.conf.d/base"
RESOLV_CONF = "/etc/resolv.conf"


def method(facts: NetworkFacts) -> str:
    """"resolved", "resolvconf" or "file"."""
    link = facts.resolv_conf_link or ""
    if "systemd/resolve" in link or "resolved" in facts.enabled:
        return "resolved"
    if "resolvconf" in link and "resolvconf" in facts.installed:
        return "resolvconf"
    return "file"


def resolv_conf(state: NetworkState) -> str:
    lines = [f"nameserver {s}" for s in state.dns_servers[:3]]  # the libc resolver reads 3
    if state.dns_search:
        lines.append("search " + " ".join(state.dns_search))
    return HEADER + "\n".join(lines) + "\n"


def resolved_dropin(state: NetworkState) -> str:
    lines = ["[Resolve]"]
    if state.dns_servers:
        lines.append("DNS=" + " ".join(state.dns_servers))
    if state.dns_search:
        lines.append("Domains=" + " ".join(state.dns_search))
    return HEADER + "\n".join(lines) + "\n"


def render(state: NetworkState, facts: NetworkFacts) -> dict[str, str]:
    """The resolver files to write (path → content); empty when no DNS parameter is set."""
    if not state.dns_servers and not state.dns_search:
        return {}
    how = method(facts)
    if how == "resolved":
        return {RESOLVED_DROPIN: resolved_dropin(state)}
    if how == "resolvconf":
        return {RESOLVCONF_BASE: resolv_conf(state)}
    return {RESOLV_CONF: resolv_conf(state)}
