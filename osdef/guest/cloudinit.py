"""cloud-init NoCloud seed: meta-data, user-data and network-config v2 from the same network model.

The seed lives in /var/lib/cloud/seed/nocloud, where cloud-init's NoCloud
datasource finds it without any disk or network.  A cloud.cfg.d drop-in limits
the datasources to NoCloud, so first boot does not wait for cloud metadata
services that Ganeti does not have.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import yaml

from osdef.errors import GuestError
from osdef.guest.network.model import NetworkState
from osdef.guest.network.netplan import v2_config

CLOUD_INIT_MARKERS = ("/usr/bin/cloud-init",)
SEED_DIR = "/var/lib/cloud/seed/nocloud"
META_DATA = f"{SEED_DIR}/meta-data"
USER_DATA = f"{SEED_DIR}/user-data"
NETWORK_CONFIG = f"{SEED_DIR}/network-config"
DATASOURCE_CFG = "/etc/cloud/cloud.cfg.d/90-osdef-datasource.cfg"
NETWORK_DISABLED_CFG = "/etc/cloud/cloud.cfg.d/99-osdef-disable-network-config.cfg"
_COMMENT = "# Written by osdef (Ganeti OS definition).\n"


def wanted(cloud_init: str, has_cloud_init: bool) -> bool:
    """Write a seed? auto: when the guest has cloud-init; on: required; off: never."""
    if cloud_init == "off":
        return False
    if cloud_init == "on" and not has_cloud_init:
        raise GuestError("cloud_init=on but the guest has no cloud-init (/usr/bin/cloud-init);"
                         " use cloud_init=auto or off, or an image with cloud-init")
    return has_cloud_init


def needs_on_link(state: NetworkState) -> bool:
    return any(r.on_link for nic in state.nics for r in nic.routes)


def configures_network(state: NetworkState, has_netplan: bool) -> bool:
    """Should cloud-init configure the NICs from the seed's network-config?

    cloud-init hands v2 config to netplan unchanged, but its own renderers
    (ifupdown, networkd, sysconfig) drop a route's `on-link` flag, so routed
    NICs would lose their default route: then osdef writes the network files
    itself and tells cloud-init to keep off the network.
    """
    return state.configures_network and (has_netplan or not needs_on_link(state))


def instance_id(uuid: str | None, name: str) -> str:
    """INSTANCE_UUID when Ganeti gives one (stable across renames), else the instance name."""
    return uuid or name


def meta_data(iid: str, fqdn: str) -> str:
    return _COMMENT + _dump({"instance-id": iid, "local-hostname": fqdn})


def user_data(fqdn: str, ssh_keys: Sequence[str]) -> str:
    """#cloud-config keeping root usable with the given keys and the host keys osdef placed."""
    data: dict[str, Any] = {
        "hostname": fqdn.split(".", 1)[0],
        "fqdn": fqdn,
        # cloud-init would otherwise prefix root's keys with "Please login as the user …"
        "disable_root": False,
        # osdef already removed the image's host keys (or restored the old ones on reinstall)
        "ssh_deletekeys": False,
        # and its first-boot unit makes them (and prints the fingerprints on the console): without
        # this, cloud-init makes them first, with a DSA key, and the unit never runs (seen at boot)
        "ssh_genkeytypes": [],
    }
    if ssh_keys:
        data["ssh_authorized_keys"] = list(ssh_keys)
    return "#cloud-config\n" + _COMMENT + _dump(data)


def network_config(state: NetworkState, for_netplan: bool = True) -> str | None:
    """network-config (v2) for the seed; None when osdef leaves networking alone (network=none).

    cloud-init hands v2 to netplan unchanged (`for_netplan`).  Its own renderers
    turn `routes:` into `post-up route add … || true`, which needs net-tools'
    `route` and fails silently without it (Debian 12's cloud images have none:
    seen by the debian-12-cloud boot), so for them a default route is written as
    `gateway4`/`gateway6`, which ENI renders as the stanza's `gateway` line
    (ifupdown adds it with ip).  Routes that are not default routes stay in
    `routes:`; osdef makes none that are not on-link, and configures_network
    keeps on-link ones away from those renderers.
    """
    if not state.configures_network:
        return None
    config = v2_config(state)
    if not for_netplan:
        for eth in config["ethernets"].values():
            _gateways_instead_of_default_routes(eth)
    return _COMMENT + _dump(config)


def _gateways_instead_of_default_routes(eth: dict[str, Any]) -> None:
    kept = []
    for route in eth.get("routes", []):
        key = {"0.0.0.0/0": "gateway4", "::/0": "gateway6"}.get(route["to"])
        if key is not None and not route.get("on-link") and key not in eth:
            eth[key] = route["via"]
        else:
            kept.append(route)
    if kept:
        eth["routes"] = kept
    else:
        eth.pop("routes", None)


def seed_files(*, iid: str, fqdn: str, state: NetworkState, ssh_keys: Sequence[str],
               with_network: bool = True, for_netplan: bool = True) -> dict[str, str]:
    """Every file the seed consists of (path → content); network-config only `with_network`,
    rendered for netplan or for cloud-init's own renderers (network_config)."""
    files = {
        META_DATA: meta_data(iid, fqdn),
        USER_DATA: user_data(fqdn, ssh_keys),
        DATASOURCE_CFG: _COMMENT + "datasource_list: [ NoCloud, None ]\n",
    }
    net = network_config(state, for_netplan) if with_network else None
    if net is not None:
        files[NETWORK_CONFIG] = net
    return files


def disabled_network_files() -> dict[str, str]:
    """With cloud_init=off on a guest that has cloud-init: keep it from rewriting osdef's network files."""
    return {NETWORK_DISABLED_CFG: _COMMENT + "network: {config: disabled}\n"}


def with_hostname(meta: str, fqdn: str) -> str:
    """meta-data with a new local-hostname (instance-id kept, so cloud-init does not re-run first boot)."""
    data = yaml.safe_load(meta) or {}
    if not isinstance(data, dict):
        raise GuestError(f"{META_DATA} is not a YAML mapping; remove it or reinstall the instance")
    data["local-hostname"] = fqdn
    return _COMMENT + _dump(data)


def update_seed_hostname(session: Any, fqdn: str, log: Callable[[str], None]) -> bool:
    """For rename: point an existing seed at the new name; False when the guest has no osdef seed."""
    meta = session.read_text_or_none(META_DATA)
    if meta is None:
        return False
    session.write_text(META_DATA, with_hostname(meta, fqdn))
    user = session.read_text_or_none(USER_DATA)
    if user is not None:
        data = yaml.safe_load(user) or {}
        if isinstance(data, dict):
            data["hostname"], data["fqdn"] = fqdn.split(".", 1)[0], fqdn
            session.write_text(USER_DATA, "#cloud-config\n" + _COMMENT + _dump(data))
    log(f"cloud-init seed: local-hostname is now {fqdn}")
    return True


def write_files(session: Any, files: Mapping[str, str]) -> None:
    for path, text in files.items():
        session.write_text(path, text, mode=0o600 if path.startswith(SEED_DIR) else 0o644)


def _dump(data: Any) -> str:
    return yaml.safe_dump(data, default_flow_style=False, sort_keys=False)
