"""The instances the renderer golden files are made from, built as Ganeti builds them (env → Instance)."""

from __future__ import annotations

from osdef.ganeti.environment import load_instance

BASE = {
    "OS_API_VERSION": "20", "OS_NAME": "image", "OS_VARIANT": "debian-12", "DEBUG_LEVEL": "0",
    "INSTANCE_NAME": "web1.example.org", "INSTANCE_UUID": "0b1c7a0e-4f0a-4c55-9d0e-6a3c2e1f5b7d",
    "DISK_COUNT": "1", "DISK_0_PATH": "/dev/xenvg/disk0",
}

NET_A = {  # a Ganeti network with v4 and v6
    "NETWORK_NAME": "front", "NETWORK_SUBNET": "198.51.100.0/24", "NETWORK_GATEWAY": "198.51.100.1",
    "NETWORK_SUBNET6": "2001:db8:10::/64", "NETWORK_GATEWAY6": "2001:db8:10::1",
}
NET_B = {
    "NETWORK_NAME": "back", "NETWORK_SUBNET": "10.20.0.0/16", "NETWORK_GATEWAY": "10.20.0.1",
    "NETWORK_SUBNET6": "2001:db8:20::/64", "NETWORK_GATEWAY6": "2001:db8:20::1",
}


def nic(i: int, mac: str, ip: str | None = None, mode: str = "bridged", network: dict | None = None,
        ) -> dict[str, str]:
    env = {f"NIC_{i}_MAC": mac, f"NIC_{i}_MODE": mode, f"NIC_{i}_LINK": "br0" if mode != "routed" else "100"}
    if ip:
        env[f"NIC_{i}_IP"] = ip
    for key, value in (network or {}).items():
        env[f"NIC_{i}_{key}"] = value
    return env


def instance(*nics: dict[str, str], **extra: str):
    env = dict(BASE, NIC_COUNT=str(len(nics)), **extra)
    for n in nics:
        env.update(n)
    return load_instance(env, "create")


# case name → (instance, OS params)
CASES = {
    "static-2nics-v4-v6": (
        instance(nic(0, "aa:00:00:11:22:33", "198.51.100.10", network=NET_A),
                 nic(1, "aa:00:00:44:55:66", "10.20.3.4", network=NET_B)),
        {"network": "auto", "dns_servers": ("198.51.100.53", "2001:db8:10::53"),
         "dns_search": ("example.org",)},
    ),
    "dhcp": (
        instance(nic(0, "aa:00:00:11:22:33"), nic(1, "aa:00:00:44:55:66", "10.20.3.4", network=NET_B)),
        {"network": "dhcp", "dns_servers": (), "dns_search": ()},
    ),
    "routed": (
        instance(nic(0, "aa:00:00:77:88:99", "203.0.113.7", mode="routed"),
                 nic(1, "aa:00:00:44:55:66", "198.51.100.20", mode="routed",
                     network={"NETWORK_SUBNET": "198.51.100.0/24",
                              "NETWORK_GATEWAY": "198.51.100.1"})),
        {"network": "auto", "dns_servers": ("192.0.2.53",), "dns_search": ()},
    ),
}
