"""Which network backend a guest uses: a priority list of self-describing backend modules.

Each backend module (netplan, networkmanager, networkd, ifupdown) names its
marker paths (`MARKERS`) and unit (`UNIT`), and says from the facts whether the
image already runs it (`in_charge`) and whether osdef could make it run
(`available`).  The chosen backend is the first in PRIORITY that is in charge,
else the first that is available (as cloud-init's cloudinit/net/renderers.py
searches its priority list):

1. netplan         installed: the front end that generates networkd/NetworkManager
                   config (Ubuntu).
2. NetworkManager  installed and enabled.
3. networkd        enabled.
4. ifupdown        installed (Debian's default).
then: networkd installed but not enabled, and no ifupdown: the step enables it.
None: no backend found.

cloud-init is not a backend here: the network step first asks
osdef.guest.cloudinit whether cloud-init renders the seed's network-config
(itself, through netplan or its own renderers), and only otherwise selects.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from osdef.guest.network import dns, ifupdown, netplan, networkd, networkmanager
from osdef.guest.network.facts import NetworkFacts
from osdef.guest.network.model import NetworkState

if TYPE_CHECKING:  # the network package runs without libguestfs (its tests give it fakes)
    from osdef.guest.session import GuestSession

__all__ = ["BACKENDS", "PRIORITY", "Backend", "NetworkFacts", "facts_from_paths", "read_facts", "select"]


class Backend(Protocol):
    """What a backend module provides (the modules below are its implementations)."""

    @property
    def NAME(self) -> str: ...
    @property
    def MARKERS(self) -> tuple[str, ...]: ...
    @property
    def UNIT(self) -> str | None: ...
    @property
    def FILE_MODE(self) -> int: ...
    def in_charge(self, facts: NetworkFacts, /) -> bool: ...
    def available(self, facts: NetworkFacts, /) -> bool: ...
    def render(self, state: NetworkState, /) -> dict[str, str]: ...
    def prepare(self, session: Any, facts: NetworkFacts, log: Callable[[str], None], /) -> None: ...
    def stand_down(self, session: Any, log: Callable[[str], None], /) -> None: ...


PRIORITY: tuple[Backend, ...] = (netplan, networkmanager, networkd, ifupdown)
BACKENDS: dict[str, Backend] = {b.NAME: b for b in PRIORITY}

PRESENCE: dict[str, tuple[str, ...]] = {**{b.NAME: b.MARKERS for b in PRIORITY}, **dns.MARKERS}
WANTS_DIR = "/etc/systemd/system/multi-user.target.wants"
UNITS: dict[str, str] = {**{b.NAME: b.UNIT for b in PRIORITY if b.UNIT}, **dns.UNITS}
ALL_PATHS = tuple(sorted({p for paths in PRESENCE.values() for p in paths}))


def facts_from_paths(present: set[str] | frozenset[str], wanted_units: set[str] | frozenset[str],
                     resolv_conf_link: str | None = None) -> NetworkFacts:
    """Build the facts from the marker paths that exist and the unit names in WANTS_DIR."""
    installed = {name for name, paths in PRESENCE.items() if any(p in present for p in paths)}
    enabled = {name for name, unit in UNITS.items() if unit in wanted_units and name in installed}
    return NetworkFacts.of(installed, enabled, resolv_conf_link)


def select(facts: NetworkFacts) -> str | None:
    """The backend to render for (a key of BACKENDS), or None."""
    for backend in PRIORITY:
        if backend.in_charge(facts):
            return backend.NAME
    for backend in PRIORITY:
        if backend.available(facts):
            return backend.NAME
    return None


def read_facts(session: GuestSession) -> NetworkFacts:
    """Read the facts from the mounted guest (osdef.guest.session.GuestSession)."""
    present = {p for p in ALL_PATHS if session.exists(p)}
    wanted: set[str] = set()
    if session.exists(WANTS_DIR):
        wanted = set(session.ls(WANTS_DIR))
    link = symlink_target(session, "/etc/resolv.conf")
    return facts_from_paths(present, wanted, link)


def symlink_target(session: GuestSession, path: str) -> str | None:
    """The target of a symlink in the guest (may dangle: /run is empty in the appliance), else None."""
    if not session.is_symlink(path):
        return None
    return session.readlink(path)
