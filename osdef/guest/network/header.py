"""What every backend's rendered files share: the comment they start with, one file per NIC."""

from __future__ import annotations

from collections.abc import Callable

from osdef.guest.network.model import NetworkState, NicConfig

HEADER = "# Written by osdef from the instance's Ganeti NIC settings; reinstall rewrites it.\n"


def one_file_per_nic(state: NetworkState, path: Callable[[NicConfig], str],
                     render_nic: Callable[[NicConfig, NetworkState], str]) -> dict[str, str]:
    """path(nic) → render_nic(nic, state) for every NIC; nothing when osdef leaves the network alone."""
    if not state.configures_network:
        return {}
    return {path(nic): render_nic(nic, state) for nic in state.nics}
