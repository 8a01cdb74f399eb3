"""ifupdown backend: /etc/network/interfaces.d/50-osdef, plus a systemd .link file per NIC.

ifupdown addresses interfaces by name, so each NIC gets a stable name (nicN)
from a .link file that matches its permanent MAC address; udev applies it when
the device appears (systemd-udevd, as on Debian 10 and later).

In charge whenever installed (/sbin/ifup or /usr/sbin/ifup; ifupdown.service
brings up what the files say).  Around its files: the image's non-loopback
stanzas are commented out and interfaces.d is sourced.  Installed while
another backend is chosen, it stands down: the image's stanzas are commented
out too, so ifupdown does not also bring the NIC up (and NetworkManager does
not leave an interface listed there unmanaged).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from osdef.guest.network.facts import NetworkFacts, when_installed
from osdef.guest.network.header import HEADER
from osdef.guest.network.model import NetworkState, NicConfig, Route

NAME = "ifupdown"
MARKERS = ("/sbin/ifup", "/usr/sbin/ifup")
UNIT = None
FILE_MODE = 0o644
MAIN_FILE = "/etc/network/interfaces"
INTERFACES_FILE = "/etc/network/interfaces.d/50-osdef"  # no dot: source-directory skips such names
LINK_DIR = "/etc/systemd/network"


in_charge = when_installed(NAME)  # the image runs ifupdown: it is installed
available = when_installed(NAME)  # osdef writes its files


def link_path(nic: NicConfig) -> str:
    return f"{LINK_DIR}/10-osdef-{nic.name}.link"


def render_link(nic: NicConfig) -> str:
    return (f"{HEADER}[Match]\nPermanentMACAddress={nic.mac}\n\n"
            f"[Link]\nName={nic.name}\n")


def _onlink_up(nic: NicConfig, route: Route) -> str:
    family = "-6 " if route.to.version == 6 else ""
    to = "default" if route.is_default else str(route.to)
    return f"    up ip {family}route replace {to} via {route.via} dev {nic.name} onlink"


def _route_lines(nic: NicConfig, version: int) -> list[str]:
    lines = []
    for route in nic.routes_for(version):
        if route.is_default and not route.on_link:
            lines.append(f"    gateway {route.via}")
        else:
            lines.append(_onlink_up(nic, route))
    return lines


def _dns_lines(state: NetworkState) -> list[str]:
    # read by the resolvconf package when installed; ignored otherwise (dns.py covers that case)
    lines = []
    if state.dns_servers:
        lines.append("    dns-nameservers " + " ".join(state.dns_servers))
    if state.dns_search:
        lines.append("    dns-search " + " ".join(state.dns_search))
    return lines


def render_nic(nic: NicConfig, state: NetworkState) -> str:
    lines = [f"# NIC {nic.index} ({nic.mac})", f"auto {nic.name}"]
    if nic.dhcp4:
        lines.append(f"iface {nic.name} inet dhcp")
    else:
        lines.append(f"iface {nic.name} inet static")
        lines += [f"    address {a}" for a in nic.ipv4_addresses]
        lines += _route_lines(nic, 4)
    lines += _dns_lines(state)
    v6 = nic.ipv6_addresses
    if v6:
        lines.append(f"iface {nic.name} inet6 static")
        lines += [f"    address {a}" for a in v6]
        lines.append(f"    accept_ra {1 if nic.accept_ra else 0}")
        lines += _route_lines(nic, 6)
    # no static IPv6: nothing to write, the kernel accepts router advertisements (SLAAC) by default
    return "\n".join(lines) + "\n"


def render(state: NetworkState) -> dict[str, str]:
    if not state.configures_network:
        return {}
    files = {link_path(nic): render_link(nic) for nic in state.nics}
    files[INTERFACES_FILE] = HEADER + "\n".join(render_nic(nic, state) for nic in state.nics)
    return files


# -- the image's own stanzas -------------------------------------------------------

DISABLED_PREFIX = "#osdef-disabled# "
_TOP_LEVEL = ("iface", "mapping", "auto", "source", "source-directory", "rename")
_SOURCES_DIR = re.compile(r"^\s*source(-directory)?\s+(/etc/network/)?interfaces\.d\b", re.MULTILINE)
MINIMAL_INTERFACES = ("# interfaces(5) file used by ifup(8) and ifdown(8)\n"
                      "auto lo\niface lo inet loopback\n\nsource /etc/network/interfaces.d/*\n")


def disable_foreign_stanzas(text: str) -> str:
    """Comment out every interface stanza except the loopback's (the image's eth0/ens3 DHCP, …).

    `auto`/`allow-*` lines keep only `lo`; `iface`/`mapping` blocks of other
    interfaces are commented out with their option lines.
    """
    out: list[str] = []
    disabled_block = False
    for line in text.splitlines():
        words = line.split()
        if not words or words[0].startswith("#"):
            out.append(line)
            continue
        keyword = words[0]
        if keyword in _TOP_LEVEL or keyword.startswith("allow-"):
            disabled_block = False
            if (keyword == "iface" and len(words) > 1 and words[1] != "lo") or keyword == "mapping":
                disabled_block = True
            elif keyword == "auto" or keyword.startswith("allow-"):
                kept = [w for w in words[1:] if w == "lo"]
                if len(kept) != len(words) - 1:
                    out.append(DISABLED_PREFIX + line)
                    if kept:
                        out.append(" ".join([keyword] + kept))
                    continue
        if disabled_block:
            out.append(DISABLED_PREFIX + line)
        else:
            out.append(line)
    return "\n".join(out) + ("\n" if out else "")


def ensure_sources_dir(text: str) -> str:
    """/etc/network/interfaces that includes interfaces.d (Debian's default does)."""
    if _SOURCES_DIR.search(text):
        return text
    return text.rstrip("\n") + "\n\nsource /etc/network/interfaces.d/*\n"


# -- side effects in the mounted guest ----------------------------------------------

def prepare(session: Any, facts: NetworkFacts, log: Callable[[str], None]) -> None:
    """Before osdef's files are written: only the loopback left in the image's files, interfaces.d sourced."""
    _disable_image_stanzas(session, log, add_source=True)


def stand_down(session: Any, log: Callable[[str], None]) -> None:
    """Another backend is chosen: the image's stanzas commented out (the loopback stays)."""
    _disable_image_stanzas(session, log, add_source=False)


def _disable_image_stanzas(session: Any, log: Callable[[str], None], add_source: bool) -> None:
    text = session.read_text_or_none(MAIN_FILE)
    if text is None:
        new = MINIMAL_INTERFACES if add_source else None
    else:
        new = disable_foreign_stanzas(text)
        if add_source:
            new = ensure_sources_dir(new)
    if new is not None and new != text:
        session.write_text(MAIN_FILE, new, mode=0o644)
        log(f"network: {MAIN_FILE}: only the loopback is configured there now")
    for path in session.glob("/etc/network/interfaces.d/*"):
        if path == INTERFACES_FILE or not session.is_file(path):
            continue
        text = session.read_text(path)
        new = disable_foreign_stanzas(text)
        if new != text:
            session.write_text(path, new)
            log(f"network: {path}: the image's interface stanzas commented out")
