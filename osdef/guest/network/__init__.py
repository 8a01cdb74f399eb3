"""Guest network configuration: one model (model.py), one renderer per backend, backend selection.

Each renderer module has `render(state) -> dict[path, content]`, pure; the
network step (hooks/60-network.py) picks the backend with select.select()
and writes the files through the appliance.
"""

from __future__ import annotations

from collections.abc import Callable

from osdef.guest.network import ifupdown, netplan, networkd, networkmanager
from osdef.guest.network.model import NetworkState

from osdef.guest.network.header import HEADER  # noqa: F401 - re-exported

RENDERERS: dict[str, Callable[[NetworkState], dict[str, str]]] = {
    "netplan": netplan.render,
    "networkmanager": networkmanager.render,
    "networkd": networkd.render,
    "ifupdown": ifupdown.render,
}


def render(backend: str, state: NetworkState) -> dict[str, str]:
    """The files (guest path → content) that configure `state` on `backend`."""
    return RENDERERS[backend](state)
