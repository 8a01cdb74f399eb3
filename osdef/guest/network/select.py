"""Which network backend a guest uses, from what is installed and enabled in it.

Priority (first match wins):
1. netplan       /etc/netplan or /usr/sbin/netplan: netplan is then the front end
                 that generates networkd/NetworkManager config (Ubuntu).
2. NetworkManager  installed (/usr/sbin/NetworkManager) and enabled
                 (NetworkManager.service wanted by multi-user.target).
3. networkd      enabled (systemd-networkd.service wanted by multi-user.target).
4. ifupdown      /sbin/ifup or /usr/sbin/ifup (Debian's default).
5. networkd      installed but not enabled, and no ifupdown: the step enables it.
None: no backend found.
"""

from __future__ import annotations

from dataclasses import dataclass

PRESENCE = {
    "netplan": ("/usr/sbin/netplan", "/etc/netplan"),
    "networkmanager": ("/usr/sbin/NetworkManager",),
    "networkd": ("/lib/systemd/systemd-networkd", "/usr/lib/systemd/systemd-networkd"),
    "ifupdown": ("/sbin/ifup", "/usr/sbin/ifup"),
    "resolved": ("/lib/systemd/systemd-resolved", "/usr/lib/systemd/systemd-resolved"),
    "resolvconf": ("/sbin/resolvconf", "/usr/sbin/resolvconf"),
}
WANTS_DIR = "/etc/systemd/system/multi-user.target.wants"
UNITS = {
    "networkmanager": "NetworkManager.service",
    "networkd": "systemd-networkd.service",
    "resolved": "systemd-resolved.service",
}
ALL_PATHS = tuple(sorted({p for paths in PRESENCE.values() for p in paths}))


@dataclass(frozen=True)
class NetworkFacts:
    """What is installed (by PRESENCE key) and enabled (by UNITS key) in the guest."""

    installed: frozenset[str]
    enabled: frozenset[str]
    resolv_conf_link: str | None = None  # target of /etc/resolv.conf when it is a symlink

    @classmethod
    def of(cls, installed: set[str] | frozenset[str] = frozenset(),
           enabled: set[str] | frozenset[str] = frozenset(),
           resolv_conf_link: str | None = None) -> "NetworkFacts":
        return cls(frozenset(installed), frozenset(enabled), resolv_conf_link)


def facts_from_paths(present: set[str] | frozenset[str], wanted_units: set[str] | frozenset[str],
                     resolv_conf_link: str | None = None) -> NetworkFacts:
    """Build the facts from the marker paths that exist and the unit names in WANTS_DIR."""
    installed = {name for name, paths in PRESENCE.items() if any(p in present for p in paths)}
    enabled = {name for name, unit in UNITS.items() if unit in wanted_units and name in installed}
    return NetworkFacts.of(installed, enabled, resolv_conf_link)


def select(facts: NetworkFacts) -> str | None:
    """The backend to render for (a key of osdef.guest.network.RENDERERS), or None."""
    if "netplan" in facts.installed:
        return "netplan"
    if "networkmanager" in facts.enabled:
        return "networkmanager"
    if "networkd" in facts.enabled:
        return "networkd"
    if "ifupdown" in facts.installed:
        return "ifupdown"
    if "networkd" in facts.installed:
        return "networkd"
    return None


def read_facts(session) -> NetworkFacts:
    """Read the facts from the mounted guest (osdef.guest.session.GuestSession)."""
    present = {p for p in ALL_PATHS if session.exists(p)}
    wanted: set[str] = set()
    if session.exists(WANTS_DIR):
        wanted = set(session.call(f"list {WANTS_DIR}", session.g.ls, WANTS_DIR))
    link = symlink_target(session, "/etc/resolv.conf")
    return facts_from_paths(present, wanted, link)


def symlink_target(session, path: str) -> str | None:
    """The target of a symlink in the guest (may dangle: /run is empty in the appliance), else None."""
    try:
        if session.g.is_symlink(path):
            return str(session.g.readlink(path))
    except RuntimeError:  # no such file
        return None
    return None
