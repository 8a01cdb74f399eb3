"""A private DHCP network for a boot test: a tap device in a network namespace of its own, dnsmasq on it.

qemu's user-mode network with restrict=on offers no router and no DNS server
in its DHCP answers (libslirp's bootp.c), so a DHCP NIC's default route and
DHCP-given DNS cannot be seen there.  Here the namespace holds only `lo` and
the tap; dnsmasq (DNS disabled: --port=0) answers DHCP on the tap with a
router and a DNS server address, and qemu runs inside the namespace (its
user-mode NICs are in-process and need no host network).  Nothing has a route
out of the namespace; it is deleted afterwards.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

TAP = "tap0"
HOST = "10.77.0.1"  # the tap's address in the namespace, offered as the router
PREFIX = "10.77.0."
ROUTER = HOST
DNS_SERVER = "10.77.0.53"  # offered by DHCP; nothing answers there (the guest only records it)
RANGE = ("10.77.0.50", "10.77.0.99")


@dataclass(frozen=True)
class DhcpNet:
    netns: str
    tap: str = TAP

    def wrap(self, argv: list[str]) -> list[str]:
        """argv run inside the namespace."""
        return ["ip", "netns", "exec", self.netns, *argv]

    def netdev(self, netdev_id: str) -> str:
        return f"tap,id={netdev_id},ifname={self.tap},script=no,downscript=no"


def missing() -> str | None:
    """Why a DHCP network cannot be made here, or None."""
    if os.geteuid() != 0:
        return "not root (ip netns, tap devices)"
    for tool in ("ip", "dnsmasq"):
        if shutil.which(tool) is None:
            return f"{tool} not installed (dnsmasq-base: make deps)"
    if not os.path.exists("/dev/net/tun"):
        return "no /dev/net/tun"
    return None


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)


@contextmanager
def dhcp_network(name: str, log_path: str | os.PathLike[str]) -> Iterator[DhcpNet]:
    """A namespace `osdef-<pid>-<name>` with the tap up and dnsmasq serving it (its log in log_path)."""
    net = DhcpNet(f"osdef-{os.getpid()}-{name}")
    _ip("netns", "add", net.netns)
    dnsmasq = None
    try:
        _ip("-n", net.netns, "link", "set", "lo", "up")
        _ip("-n", net.netns, "tuntap", "add", "dev", net.tap, "mode", "tap")
        _ip("-n", net.netns, "addr", "add", f"{HOST}/24", "dev", net.tap)
        _ip("-n", net.netns, "link", "set", net.tap, "up")
        with open(log_path, "wb") as log:
            dnsmasq = subprocess.Popen(net.wrap([
                "dnsmasq", "--keep-in-foreground", "--conf-file=/dev/null", "--port=0",
                f"--interface={net.tap}", "--bind-interfaces", "--leasefile-ro",
                "--pid-file=", "--log-dhcp", "--log-facility=-",
                f"--dhcp-range={RANGE[0]},{RANGE[1]},255.255.255.0,1h",
                f"--dhcp-option=option:router,{ROUTER}", f"--dhcp-option=option:dns-server,{DNS_SERVER}"]),
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        yield net
    finally:
        if dnsmasq is not None:
            stop(dnsmasq)
        subprocess.run(["ip", "netns", "del", net.netns], capture_output=True)


def stop(proc: subprocess.Popen) -> None:
    """Terminate a process this test started (qemu, dnsmasq); kill it after 10 s."""
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
