"""Boot check: debian-12 created with two NICs (routed, and static v4+v6 on a Ganeti network),
customized by the network/OS-parameter steps, booted under qemu (TCG) with those MACs on PCI
slots in the reverse order of the NIC indices (user-mode networks with restrict=on).

A test-only unit prints `ip -br addr` and the routes to the serial console
after network-online.target; /etc/issue shows `\\4{nic0}` in the login banner.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from osdef.create.context import StepContext
from osdef.create.layout.base import MountedRoot
from osdef.create.runner import run_steps
from osdef.create.plan import CreatePlan
from osdef.guest.network.model import build as build_network
from osdef.errors import ImageError
from osdef.ganeti.params import resolve
from osdef.create.pipeline import ImageData, install_root
from osdef.guest.session import GuestSession

from tests.support.guest import only_steps
from tests.support.network_cases import NET_A, instance, nic
from tests.support.network import sparse
from tests.support.qemu import getty_text
from tests.boot.network.dhcpnet import stop

pytestmark = [pytest.mark.guestfs, pytest.mark.boot]
MINE = {"network", "dns", "ssh-authorized-keys", "root-password", "timezone", "ssh-host-keys-restore",
        "swap", "data-disks", "cloud-init"}
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJcppsXuqZiKuPx82xZJvEH9Lkagj0B4h0bW+Zo+Ap/E admin@example"
MACS = ("aa:00:00:77:88:99", "aa:00:00:11:22:33")
TIMEOUT = 400  # s, under TCG on a busy 2-core machine
PRINT_UNIT = """[Unit]
Description=osdef test: print the network state on the console
After=network-online.target
Wants=network-online.target
[Service]
Type=oneshot
ExecStart=/bin/sh -c 'echo OSDEF-NET; ip -br addr; ip route; ip -6 route; swapon --show --noheadings; \
readlink /etc/localtime; echo OSDEF-END'
StandardOutput=journal+console
[Install]
WantedBy=multi-user.target
"""


def _debian12():
    try:
        from tests.support.image_cache import ensure_test_image

        return ensure_test_image("debian-12")
    except ImageError as exc:
        pytest.skip(f"no debian-12 test image (build: osdef image build debian-12): {exc}")


def _console(serial: Path) -> str:
    text = serial.read_bytes().decode(errors="replace") if serial.exists() else ""
    return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", text)


@pytest.mark.skipif(shutil.which("qemu-system-x86_64") is None, reason="qemu-system-x86 not installed")
def test_static_and_routed_nics_come_up_at_boot(tmp_path, libguestfs_settings):
    artifact = _debian12()
    disk = sparse(tmp_path / "disk0.img", 3 << 30)
    fqdn = "net-test.example.org"
    with artifact.open() as stream:
        install_root(disk, ImageData(stream, artifact.size),
                     CreatePlan(layout="fs-image", hostname=fqdn, serial_console=True),
                     libguestfs_settings, lambda _m: None)
    # until the create pipeline passes the Instance to the steps, run them in a second appliance
    inst = instance(nic(0, MACS[0], "203.0.113.7", mode="routed"),
                    nic(1, MACS[1], "198.51.100.10", network=NET_A))
    params = resolve({"dns_servers": "198.51.100.53", "ssh_authorized_keys": KEY,
                      "timezone": "Europe/Berlin", "swap_size": "64M"})
    logs: list[str] = []
    with GuestSession([disk], libguestfs_settings) as s:
        root = s.mount_inspected_root()
        plan = CreatePlan(layout="fs-image", hostname=fqdn, params=params, instance=inst,
                          network=build_network(inst, params), steps=only_steps(*MINE))
        run_steps(StepContext.of(plan, s, MountedRoot(device=root, fs_type="ext4"), logs.append))
        s.write_text("/etc/systemd/system/osdef-print-net.service", PRINT_UNIT)
        s.symlink("/etc/systemd/system/osdef-print-net.service",
                  "/etc/systemd/system/multi-user.target.wants/osdef-print-net.service")
        s.write_text("/etc/issue", "Debian \\n \\l nic0=\\4{nic0} nic1=\\4{nic1}\n\n")

    serial = tmp_path / "serial.log"
    # PCI slots in the reverse order of the NIC indices: the nicN names must follow the MACs
    nics = [a for mac in reversed(MACS) for a in ("-nic", f"user,restrict=on,model=virtio-net-pci,mac={mac}")]
    qemu = subprocess.Popen(
        ["qemu-system-x86_64", "-machine", "accel=tcg", "-cpu", "max", "-m", "1024", "-display", "none",
         "-serial", f"file:{serial}", "-drive", f"file={disk},format=raw,if=virtio", *nics],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline and qemu.poll() is None:
            if serial.exists() and "net-test login:" in getty_text(serial.read_bytes().decode(errors="replace")):
                break
            time.sleep(2)
    finally:
        stop(qemu)
    console = _console(serial)
    assert "net-test login:" in getty_text(console), console[-2000:]
    report = console[console.index("OSDEF-NET"):console.index("OSDEF-END")]
    assert re.search(r"nic0\s+UP\s+203\.0\.113\.7/32", report), report
    assert re.search(r"nic1\s+UP\s+198\.51\.100\.10/24 2001:db8:10:0:a800:ff:fe11:2233/64", report), report
    # routed: on-link default via 169.254.1.1; the v4 gateway of nic1 is not a second default
    assert "default via 169.254.1.1 dev nic0 onlink" in report and "via 198.51.100.1" not in report
    assert "default via 2001:db8:10::1 dev nic1" in report  # first NIC with an IPv6 gateway
    assert "/swapfile" in report and "/usr/share/zoneinfo/Europe/Berlin" in report
    assert "nic0=203.0.113.7 nic1=198.51.100.10" in console  # /etc/issue's \4{nicN}
