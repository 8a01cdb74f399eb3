"""Facts about the guest OS: pure parsing of its files, plus a thin reader through the appliance."""

from __future__ import annotations

import shlex
from dataclasses import dataclass

from osdef.guest.session import GuestSession

# path in the guest → what its presence says
NETWORK_MARKERS: dict[str, tuple[str, ...]] = {
    "ifupdown": ("/sbin/ifup", "/usr/sbin/ifup"),
    "netplan": ("/usr/sbin/netplan", "/etc/netplan"),
    "networkd": ("/lib/systemd/systemd-networkd", "/usr/lib/systemd/systemd-networkd"),
    "networkmanager": ("/usr/sbin/NetworkManager",),
}
SYSTEMD_MARKERS = ("/lib/systemd/systemd", "/usr/lib/systemd/systemd")
CLOUD_INIT_MARKERS = ("/usr/bin/cloud-init",)
SSHD_MARKERS = ("/usr/sbin/sshd",)
GRUB_MARKERS = ("/usr/sbin/grub-install",)
ALL_MARKERS = tuple(sorted({p for group in NETWORK_MARKERS.values() for p in group}
                           | set(SYSTEMD_MARKERS) | set(CLOUD_INIT_MARKERS)
                           | set(SSHD_MARKERS) | set(GRUB_MARKERS)))


@dataclass(frozen=True)
class DistroFacts:
    """What osdef needs to know about a guest to customize it."""

    os_id: str  # os-release ID, e.g. "debian"; "" when unknown
    version_id: str  # e.g. "12"; "" for testing/sid
    pretty_name: str
    network_backends: frozenset[str]
    has_systemd: bool
    has_cloud_init: bool
    has_sshd: bool
    has_grub: bool


def parse_os_release(text: str) -> dict[str, str]:
    """KEY=value lines of os-release(5), with shell quoting removed; bad lines are ignored."""
    result: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, raw = line.partition("=")
        try:
            parts = shlex.split(raw)
        except ValueError:
            continue
        result[key.strip()] = parts[0] if parts else ""
    return result


def facts_from(os_release: str | None, present: set[str] | frozenset[str]) -> DistroFacts:
    """Build the facts from the os-release text and the set of marker paths that exist."""
    rel = parse_os_release(os_release or "")
    backends = frozenset(name for name, paths in NETWORK_MARKERS.items()
                         if any(p in present for p in paths))
    return DistroFacts(
        os_id=rel.get("ID", ""),
        version_id=rel.get("VERSION_ID", ""),
        pretty_name=rel.get("PRETTY_NAME", rel.get("NAME", "")),
        network_backends=backends,
        has_systemd=any(p in present for p in SYSTEMD_MARKERS),
        has_cloud_init=any(p in present for p in CLOUD_INIT_MARKERS),
        has_sshd=any(p in present for p in SSHD_MARKERS),
        has_grub=any(p in present for p in GRUB_MARKERS),
    )


def has_systemd(session: GuestSession) -> bool:
    """The mounted guest boots with systemd (one of SYSTEMD_MARKERS exists)."""
    return any(session.exists(p) for p in SYSTEMD_MARKERS)


def read_facts(session: GuestSession) -> DistroFacts:
    """Read the facts from the mounted guest."""
    os_release = (session.read_text_or_none("/etc/os-release")
                  or session.read_text_or_none("/usr/lib/os-release"))
    present = {p for p in ALL_MARKERS if session.exists(p)}
    return facts_from(os_release, present)
