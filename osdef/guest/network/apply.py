"""Write a rendered network configuration into the mounted guest, with what each backend needs around it.

- netplan: the image's other /etc/netplan/*.yaml are renamed *.yaml.osdef-disabled
  (netplan merges all files; an image's `eth0: dhcp4` would still match);
- NetworkManager: keyfiles 0600 root (NM ignores others);
- systemd-networkd: the service (and its socket, wait-online) enabled when it was not;
- ifupdown: the image's non-loopback stanzas commented out, interfaces.d sourced;
  with another backend and ifupdown installed, the stanzas are commented out too.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from osdef.guest.network import ifupdown, netplan, render
from osdef.guest.network.model import NetworkState
from osdef.guest.network.select import NetworkFacts

DISABLED_SUFFIX = ".osdef-disabled"
UNIT_DIRS = ("/lib/systemd/system", "/usr/lib/systemd/system")
NETWORKD_UNITS = (
    ("systemd-networkd.service", "multi-user.target.wants"),
    ("systemd-networkd.socket", "sockets.target.wants"),
    ("systemd-networkd-wait-online.service", "network-online.target.wants"),
)
PRIVATE = {"netplan", "networkmanager"}  # files that must be 0600


def apply(session: Any, backend: str, state: NetworkState, facts: NetworkFacts,
          log: Callable[[str], None]) -> list[str]:
    """Write the files for `backend`; return their paths."""
    files = render(backend, state)
    if backend == "netplan":
        _disable_other_netplan_files(session, log)
    if backend == "ifupdown":
        _disable_image_stanzas(session, log)
    elif "ifupdown" in facts.installed:
        # ifupdown would still bring the image's eth0/ens3 up (and NetworkManager leaves
        # interfaces listed there unmanaged): only the loopback stays in its files
        _disable_image_stanzas(session, log, add_source=False)
    if backend == "networkd" and "networkd" not in facts.enabled:
        _enable_networkd(session, log)
    mode = 0o600 if backend in PRIVATE else 0o644
    for path, text in files.items():
        session.write_text(path, text, mode=mode)
        if mode == 0o600:
            session.call(f"chown {path}", session.g.chown, 0, 0, path)
    return sorted(files)


def _disable_other_netplan_files(session: Any, log: Callable[[str], None]) -> None:
    for path in session.glob("/etc/netplan/*.yaml"):
        if path != netplan.NETPLAN_FILE:
            session.call(f"rename {path}", session.g.mv, path, path + DISABLED_SUFFIX)
            log(f"network: the image's {path} renamed to {path}{DISABLED_SUFFIX}")


def _disable_image_stanzas(session: Any, log: Callable[[str], None], add_source: bool = True) -> None:
    main = "/etc/network/interfaces"
    text = session.read_text_or_none(main)
    if text is None:
        new = ifupdown.MINIMAL_INTERFACES if add_source else None
    else:
        new = ifupdown.disable_foreign_stanzas(text)
        if add_source:
            new = ifupdown.ensure_sources_dir(new)
    if new is not None and new != text:
        session.write_text(main, new, mode=0o644)
        log(f"network: {main}: only the loopback is configured there now")
    for path in session.glob("/etc/network/interfaces.d/*"):
        if path == ifupdown.INTERFACES_FILE or not session.is_file(path):
            continue
        text = session.read_text(path)
        new = ifupdown.disable_foreign_stanzas(text)
        if new != text:
            session.write_text(path, new)
            log(f"network: {path}: the image's interface stanzas commented out")


def _enable_networkd(session: Any, log: Callable[[str], None]) -> None:
    unit_dir = next((d for d in UNIT_DIRS if session.exists(f"{d}/systemd-networkd.service")), None)
    if unit_dir is None:
        log("network: systemd-networkd.service not found; enable it in the image")
        return
    for unit, wants in NETWORKD_UNITS:
        if session.exists(f"{unit_dir}/{unit}"):
            session.symlink(f"{unit_dir}/{unit}", f"/etc/systemd/system/{wants}/{unit}")
    log("network: systemd-networkd enabled")
