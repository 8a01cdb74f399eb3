"""Guest network configuration: one model (model.py), one self-describing module per backend, selection.

Each backend module (ifupdown, netplan, networkd, networkmanager) owns its
detection (`MARKERS`, `UNIT`, `in_charge(facts)`, `available(facts)`), its pure
`render(state) -> dict[path, content]`, its `FILE_MODE`, and its side effects in
the mounted guest (`prepare`: what it installs or enables around its files;
`stand_down`: what it needs when installed but not chosen).  select.py picks
one from its priority list; apply.py writes it (hooks/60-network.py).
"""

from __future__ import annotations

from collections.abc import Callable

from osdef.guest.network.model import NetworkState
from osdef.guest.network.select import BACKENDS

RENDERERS: dict[str, Callable[[NetworkState], dict[str, str]]] = {
    name: backend.render for name, backend in BACKENDS.items()}


def render(backend: str, state: NetworkState) -> dict[str, str]:
    """The files (guest path → content) that configure `state` on `backend`."""
    return BACKENDS[backend].render(state)
