"""Every network stack osdef renders for, proven by a real boot (issue 16).

One test-only image (images/debian-12-netstacks.yaml) has netplan,
systemd-networkd, systemd-resolved, NetworkManager and cloud-init installed
side by side.  From it, libguestfs derives one image per stack by removing or
disabling what that stack does not have (cached next to the base image, keyed
by its sha256): osdef's own detection (osdef.guest.network.select) then picks
the stack at create.

Each stack gets a Ganeti-built `create` (`osdef try create` on a test OS dir
with one test-only variant per derived image), with NICs matched by MAC, and
boots under qemu (TCG) with its MACs in the opposite order of the NIC indices,
on qemu user-mode networks with restrict=on (DHCP answered inside qemu,
nothing leaves the machine).  A test-only unit prints the state to the serial
console once `systemctl is-system-running --wait` returns.  All creates run
first, then all boots at once (2 at a time): the tests only read the consoles.

Stacks:
- netplan: netplan + systemd-networkd + systemd-resolved (Ubuntu's server
  stack), with cloud-init installed and cloud_init=off (it must stay out of
  the way);
- networkmanager: NetworkManager alone, no resolved (it writes resolv.conf);
- networkd: systemd-networkd alone (osdef enables it), no resolved; this one
  also carries the routed NIC (first NIC, so its on-link default is kept);
- cloud-init: the netplan image with cloud_init=auto: cloud-init's NoCloud
  datasource applies osdef's seed through netplan (as in Debian 13's cloud
  images), then the guest changes its hostname, netplan file and keys and
  reboots: the second boot must keep them;
- cloud-ifupdown: the real debian-12-cloud image (its recipe built in the
  test cache, only the report unit added): cloud-init renders the seed
  through ifupdown.

The netplan, networkmanager and networkd guests have their DHCP NIC on a
private network of its own (tests/boot/network/dhcpnet.py: a tap in a network
namespace, dnsmasq offering a router and a DNS server), so the DHCP NIC's
default route and DHCP-given DNS are checked there as well.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from osdef import config as siteconfig
from osdef.errors import ImageError
from osdef.guest.session import configure

from . import dhcpnet
from tests.support.qemu import getty_text, report_unit
from tests.boot.network.dhcpnet import DhcpNet, dhcp_network, stop

pytestmark = [pytest.mark.guestfs, pytest.mark.boot, pytest.mark.dib]

PREP_VERSION = 3  # bump when derive() changes (REPORT, REMOVE and DERIVED are hashed in by prep_key)
BOOT_TIMEOUT = 900  # s per boot, under TCG on a busy 2-core machine (not an assertion on speed)
PARALLEL_BOOTS = 2
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJcppsXuqZiKuPx82xZJvEH9Lkagj0B4h0bW+Zo+Ap/E admin@example"
DNS = ("198.51.100.53", "2001:db8:10::53")

MAC_STATIC, MAC_DHCP, MAC_ROUTED = "aa:00:00:11:22:33", "aa:00:00:44:55:66", "aa:00:00:77:88:99"
STATIC_V4, STATIC_V6 = "198.51.100.10/24", "2001:db8:10:0:a800:ff:fe11:2233/64"  # EUI-64 of MAC_STATIC
ROUTED_V4 = "203.0.113.7/32"
NIC_STATIC = (f"mac={MAC_STATIC},ip=198.51.100.10,network=front,subnet=198.51.100.0/24,"
              "gateway=198.51.100.1,subnet6=2001:db8:10::/64,gateway6=2001:db8:10::1")
NIC_DHCP = f"mac={MAC_DHCP}"
NIC_ROUTED = f"mac={MAC_ROUTED},ip=203.0.113.7,mode=routed,link=100"

REPORT = r"""#!/bin/sh
# osdef test (tests/boot/network/test_stacks.py): the guest's network state on the serial console
state=$(systemctl is-system-running --wait)
boot=$(( $(cat /var/lib/osdef-test-boots 2>/dev/null || echo 0) + 1 ))
echo $boot > /var/lib/osdef-test-boots
echo "OSDEF-REPORT boot=$boot"
echo "hostname: $(hostname)"
echo "system: $state"
echo "== failed"; systemctl --failed --no-legend --plain
echo "== links"; ip -br link
echo "== addr"; ip -o addr show
echo "== route4"; ip -4 route
echo "== route6"; ip -6 route
echo "== resolv.conf"; cat /etc/resolv.conf
echo "== resolvectl"; resolvectl dns 2>&1
echo "== netplan"; ls /etc/netplan 2>&1; grep -h osdef-admin-edit /etc/netplan/*.yaml 2>&1
echo "== cloud-init"; cloud-init status --long 2>&1
grep -c 'Writing to /root/.ssh/authorized_keys' /var/log/cloud-init.log 2>&1
echo "== keys"; cat /root/.ssh/authorized_keys 2>&1
echo "== nm"; nmcli -t -f DEVICE,STATE,CONNECTION device 2>&1 | grep -v '^lo:'
journalctl -b -u NetworkManager --no-pager -o cat 2>&1 | grep -i 'ipv6\|ip6\|dhcp6\|rdisc\|ndisc' | tail -15
echo "OSDEF-REPORT-END boot=$boot"
if [ "$boot" = 1 ] && [ -e /var/lib/cloud/seed/nocloud/meta-data ] && [ ! -e /etc/cloud/cloud-init.disabled ]; then
    # what an admin does after the first boot; cloud-init must not undo it on the next one
    echo admin-set > /etc/hostname
    for f in /etc/netplan/*.yaml; do echo '# osdef-admin-edit' >> "$f"; done
    echo 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAdminAddedKeyAdminAddedKeyAdminAdded admin-added' \
        >> /root/.ssh/authorized_keys
    sync
    systemctl reboot
fi
"""
REPORT_UNIT = report_unit("print the network state on the serial console", "/usr/local/sbin/osdef-net-report")
WANTS = "/etc/systemd/system/multi-user.target.wants"


@dataclass(frozen=True)
class Stack:
    name: str
    image: str  # derived image (see DERIVED)
    nics: tuple[str, ...]  # --nic specs, NIC 0 first
    params: tuple[str, ...] = ()
    resolved: bool = False  # DNS through systemd-resolved (else /etc/resolv.conf)
    boots: int = 1
    dhcp_net: bool = False  # the DHCP NIC on dnsmasq's network (router + DNS), else restrict=on slirp
    dhcp_dns: bool = False  # the DNS server from DHCP reaches the resolver (resolved, NetworkManager)

    @property
    def fqdn(self) -> str:
        return f"net-{self.name}.example.org"

    @property
    def host(self) -> str:
        return f"net-{self.name}"


STACKS = {  # in boot order: cloud-init's two boots first (the longest job; 2 boots run at once)
    s.name: s for s in (
        Stack("cloud-init", "netstacks-cloud", (NIC_STATIC, NIC_DHCP), ("cloud_init=auto",), resolved=True,
              boots=2),
        Stack("netplan", "netstacks-cloud", (NIC_STATIC, NIC_DHCP), ("cloud_init=off",), resolved=True,
              dhcp_net=True, dhcp_dns=True),
        # dhcp_dns=False: osdef's /etc/resolv.conf (dns_servers) stays, NetworkManager leaves it alone
        Stack("networkmanager", "netstacks-nm", (NIC_STATIC, NIC_DHCP), dhcp_net=True),
        Stack("networkd", "netstacks-networkd", (NIC_ROUTED, NIC_STATIC, NIC_DHCP), dhcp_net=True),
        Stack("cloud-ifupdown", "cloud-ifupdown", (NIC_STATIC, NIC_DHCP), ("cloud_init=auto",)),
    )
}

# derived image → (the test image it is made from, what is removed or disabled in it: see derive())
DERIVED = {
    "netstacks-cloud": ("debian-12-netstacks", ("networkmanager",)),
    "netstacks-nm": ("debian-12-netstacks", ("netplan", "resolved", "cloud-init")),
    "netstacks-networkd": ("debian-12-netstacks", ("netplan", "networkmanager", "resolved", "cloud-init")),
    # the real recipe (images/debian-12-cloud.yaml): cloud-init rendering through ifupdown
    "cloud-ifupdown": ("debian-12-cloud", ()),
}
REMOVE = {
    # `systemctl disable` of the unit: its [Install] links
    "networkmanager": ("/etc/systemd/system/multi-user.target.wants/NetworkManager.service",
                       "/etc/systemd/system/network-online.target.wants/NetworkManager-wait-online.service",
                       "/etc/systemd/system/dbus-org.freedesktop.nm-dispatcher.service"),
    "resolved": ("/etc/systemd/system/multi-user.target.wants/systemd-resolved.service",
                 "/etc/systemd/system/sysinit.target.wants/systemd-resolved.service",
                 "/etc/systemd/system/dbus-org.freedesktop.resolve1.service"),
    # the package's programs and generator, as if it were not installed
    "netplan": ("/usr/sbin/netplan", "/usr/lib/systemd/system-generators/netplan",
                "/usr/share/netplan/netplan.script"),
    "cloud-init": ("/usr/bin/cloud-init",),
}


def derive(g, removed: tuple[str, ...]) -> None:
    """In the mounted image: take out the stacks in `removed`, add the report unit."""
    for what in removed:
        for path in REMOVE[what]:
            g.rm_f(path)
    if "netplan" in removed:
        g.rm_rf("/etc/netplan")
    if "resolved" in removed:  # /etc/resolv.conf a plain file, as without systemd-resolved
        g.rm_f("/etc/resolv.conf")
        g.write("/etc/resolv.conf", b"")
    if "cloud-init" in removed:
        g.write("/etc/cloud/cloud-init.disabled", b"")
    g.mkdir_p("/usr/local/sbin")
    g.write("/usr/local/sbin/osdef-net-report", REPORT.encode())
    g.chmod(0o755, "/usr/local/sbin/osdef-net-report")
    g.write("/etc/systemd/system/osdef-net-report.service", REPORT_UNIT.encode())
    g.ln_sf("/etc/systemd/system/osdef-net-report.service", f"{WANTS}/osdef-net-report.service")


def prep_key(name: str, base_sha256: str) -> str:
    """What a derived image is made from: its base image and everything derive() writes or removes in it."""
    removed = DERIVED[name][1]
    what = repr((PREP_VERSION, REPORT, REPORT_UNIT, DERIVED[name], [REMOVE[r] for r in removed]))
    return f"{base_sha256[:16]}-{hashlib.sha256(what.encode()).hexdigest()[:12]}"


def _derived_images(settings, work: Path) -> None:
    """Make (or reuse) every image in DERIVED in the shared test cache."""
    import guestfs

    from tests.support.image_cache import ensure_test_image, test_image_store

    bases = {}
    for base_name in sorted({base for base, _ in DERIVED.values()}):
        try:
            bases[base_name] = ensure_test_image(base_name)
        except ImageError as exc:
            pytest.skip(f"no {base_name} test image (build: osdef image build {base_name}): {exc}")
    store = test_image_store()
    missing = {}
    for name, (base_name, _) in DERIVED.items():
        key = prep_key(name, bases[base_name].sha256)
        art = store.artifact(name)
        if art is None or not (art.manifest.origin or "").endswith(f"{name}-{key}.raw"):
            missing[name] = work / f"{name}-{key}.raw"
    if not missing:
        return
    for name, path in missing.items():
        with bases[DERIVED[name][0]].open() as src, open(path, "wb") as dst:
            while chunk := src.read(8 << 20):
                if chunk.count(0) == len(chunk):
                    dst.seek(len(chunk), 1)
                else:
                    dst.write(chunk)
            dst.truncate()
    g = guestfs.GuestFS(python_return_dict=True)
    configure(g, settings)
    for path in missing.values():
        g.add_drive_opts(str(path), format="raw")
    g.launch()
    try:
        for device, name in zip(g.list_devices(), missing):
            g.mount(device, "/")
            derive(g, DERIVED[name][1])
            g.umount_all()
        g.shutdown()
    finally:
        g.close()
    for name, path in missing.items():
        store.add(name, path)
        path.unlink()


def _install_os_dir(base: Path, site_config: Path) -> Path:
    os_dir = base / "image"
    subprocess.run([sys.executable, "-m", "osdef.cli", "install", "--os-dir", str(os_dir),
                    "--config", str(site_config)], check=True, capture_output=True)
    names = []
    for image in DERIVED:
        (os_dir / "variants" / f"{image}.yaml").write_text(
            f"description: test-only ({image})\nimage: {image}\nfilesystem: ext4\n"
            "partition_table: gpt\nboot: bios\n")
        names.append(image)
    with open(os_dir / "variants.list", "a") as f:
        f.write("".join(f"{n}\n" for n in names))
    return os_dir


def _create(os_dir: Path, stack: Stack, disk: Path) -> subprocess.CompletedProcess:
    args = [sys.executable, "-m", "osdef.cli", "try", "create", "--os-dir", str(os_dir),
            "-o", stack.image, "-n", stack.fqdn, "--disk", f"{disk}:3G", "--serial-console",
            "-O", "dns_servers=" + " ".join(DNS), "-O", f"ssh_authorized_keys={KEY}"]
    for spec in stack.nics:
        args += ["--nic", spec]
    for p in stack.params:
        args += ["-O", p]
    return subprocess.run(args, capture_output=True, text=True, timeout=1800)


def _macs(stack: Stack) -> list[str]:
    return [re.search(r"mac=([0-9a-f:]+)", spec).group(1) for spec in stack.nics]


def _qemu_nics(stack: Stack, net: DhcpNet | None) -> list[str]:
    """-netdev/-device pairs: the PCI slots (0x10 up) in the opposite order of the NIC indices."""
    args = []
    for slot, mac in enumerate(reversed(_macs(stack)), 0x10):
        n = f"n{slot}"
        netdev = net.netdev(n) if net is not None and mac == MAC_DHCP else f"user,id={n},restrict=on"
        args += ["-netdev", netdev, "-device", f"virtio-net-pci,netdev={n},mac={mac},addr={slot:#x}"]
    return args


def _boot(stack: Stack, disk: Path, serial: Path, net: DhcpNet | None = None) -> str:
    """Boot until the last report (and its login prompt), return the console text.

    With `net`, qemu runs in its namespace and the DHCP NIC is on its tap."""
    argv = ["qemu-system-x86_64", "-machine", "accel=tcg", "-cpu", "max", "-m", "1024", "-display", "none",
            "-serial", f"file:{serial}", "-drive", f"file={disk},format=raw,if=virtio",
            *_qemu_nics(stack, net)]
    qemu = subprocess.Popen(net.wrap(argv) if net is not None else argv,
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    done = f"OSDEF-REPORT-END boot={stack.boots}".encode()
    try:
        deadline = time.monotonic() + BOOT_TIMEOUT * stack.boots
        while time.monotonic() < deadline and qemu.poll() is None:
            text = serial.read_bytes() if serial.exists() else b""
            if done in text and getty_text(text.decode(errors="replace")).count(" login:") >= stack.boots:
                time.sleep(2)
                break
            time.sleep(3)
    finally:
        stop(qemu)
    return _console(serial)


def _console(serial: Path) -> str:
    text = serial.read_bytes().decode(errors="replace") if serial.exists() else ""
    return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", text).replace("\r", "")


@dataclass
class Outcome:
    create: subprocess.CompletedProcess
    console: str
    seconds: float


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory, site_config_file) -> dict[str, Outcome]:
    """Create every stack's disk, boot them all, keep the consoles (stack name → Outcome)."""
    if shutil.which("qemu-system-x86_64") is None:
        pytest.skip("qemu-system-x86 not installed")
    if why := dhcpnet.missing():
        pytest.skip(f"no private DHCP network: {why}")
    settings = siteconfig.load_file(site_config_file).libguestfs
    base = tmp_path_factory.mktemp("netstacks")
    _derived_images(settings, Path(tempfile.mkdtemp(dir=base)))
    os_dir = _install_os_dir(base, site_config_file)
    chosen = [n for n in STACKS if n in os.environ.get("OSDEF_NETSTACKS", n).split(",")]  # for reruns
    disks = {name: base / f"{name}.img" for name in chosen}
    started = time.monotonic()
    with ThreadPoolExecutor(PARALLEL_BOOTS) as pool:
        creates = dict(zip(chosen, pool.map(lambda n: _create(os_dir, STACKS[n], disks[n]), chosen)))
    created = time.monotonic()
    sys.stderr.write(f"netstacks: {len(chosen)} creates in {created - started:.0f} s\n")

    def boot(name: str) -> tuple[str, float]:
        if creates[name].returncode != 0:
            return "", 0.0
        t = time.monotonic()
        serial = base / f"{name}.serial.log"
        if STACKS[name].dhcp_net:
            with dhcp_network(name, base / f"{name}.dnsmasq.log") as net:
                text = _boot(STACKS[name], disks[name], serial, net)
        else:
            text = _boot(STACKS[name], disks[name], serial)
        return text, time.monotonic() - t

    with ThreadPoolExecutor(PARALLEL_BOOTS) as pool:
        boots = dict(zip(chosen, pool.map(boot, chosen)))
    sys.stderr.write(f"netstacks: boots in {time.monotonic() - created:.0f} s: "
                     + ", ".join(f"{n} {s:.0f} s" for n, (_, s) in boots.items()) + "\n")
    return {n: Outcome(creates[n], *boots[n]) for n in chosen}


REPORT_LINE = re.compile(r"osdef-net-report\[\d+\]: (.*)$", re.M)  # journald's console format


def reports(console: str) -> dict[int, str]:
    """boot number → the report text printed in that boot (other console output left out)."""
    text = "\n".join(REPORT_LINE.findall(console)) + "\n"
    out = {}
    for m in re.finditer(r"^OSDEF-REPORT boot=(\d+)\n(.*?)^OSDEF-REPORT-END boot=\1$", text, re.S | re.M):
        out[int(m.group(1))] = m.group(2)
    return out


def section(report: str, name: str) -> str:
    m = re.search(rf"^== {re.escape(name)}\n(.*?)(?=^== |\Z)", report, re.S | re.M)
    return m.group(1) if m else ""


def interfaces(report: str) -> dict[str, str]:
    """MAC → interface name, from `ip -br link`."""
    out = {}
    for line in section(report, "links").splitlines():
        parts = line.split()
        if len(parts) >= 3 and re.fullmatch(r"[0-9a-f:]{17}", parts[2]):
            out[parts[2]] = parts[0]
    return out


def addresses(report: str, ifname: str) -> list[str]:
    """`ip -o addr` lines of one interface (address + flags)."""
    return [line for line in section(report, "addr").splitlines()
            if re.match(rf"\d+: {re.escape(ifname)}\s", line)]


def check_network(stack: Stack, report: str) -> None:
    """Everything item 2 of issue 16 asks, for one report."""
    assert re.search(r"^system: running$", report, re.M), report  # not degraded
    assert not section(report, "failed").strip(), report
    names = interfaces(report)
    macs = _macs(stack)
    assert set(macs) <= set(names), report
    static, dhcp = names[MAC_STATIC], names[MAC_DHCP]
    if [names[m] for m in macs] != [f"nic{i}" for i in range(len(macs))]:  # not renamed by MAC
        # the MACs are on PCI slots in reverse order: matching by name order would swap them
        assert sorted(names[m] for m in macs) == [names[m] for m in reversed(macs)], names

    static_addrs = " ".join(addresses(report, static))
    assert f"inet {STATIC_V4} " in static_addrs, report
    assert f"inet6 {STATIC_V6} " in static_addrs, report
    lease_net = dhcpnet.PREFIX if stack.dhcp_net else "10.0.2."
    dhcp_v4 = [a for a in addresses(report, dhcp) if f" inet {lease_net}" in a]
    assert dhcp_v4 and "dynamic" in dhcp_v4[0], report  # a DHCP lease (lifetime), not a static address
    assert "198.51.100" not in " ".join(addresses(report, dhcp)), report

    route4, route6 = section(report, "route4"), section(report, "route6")
    if stack.dhcp_net:  # dnsmasq's lease: its router is the DHCP NIC's default route
        assert re.search(rf"^default via {re.escape(dhcpnet.ROUTER)} dev {dhcp}\b", route4, re.M), report
    else:
        # restrict=on: qemu's DHCP server then offers no router and no DNS server (libslirp
        # bootp.c), so the lease gives the address alone and every default route below is osdef's
        assert not re.search(rf"^default via \S+ dev {dhcp}\b", route4, re.M), report
    # a single route, or one nexthop of a multipath default (with the routers of RAs)
    assert re.search(rf"(^default|nexthop) via 2001:db8:10::1 dev {static}\b", route6, re.M), report
    if MAC_ROUTED in macs:
        routed = names[MAC_ROUTED]
        assert f"inet {ROUTED_V4} " in " ".join(addresses(report, routed)), report
        assert re.search(rf"^default via 169\.254\.1\.1 dev {routed}\b.*onlink", route4, re.M), report
        assert "via 198.51.100.1" not in route4, report  # only the first NIC's gateway is a default
    else:
        assert re.search(rf"^default via 198\.51\.100\.1 dev {static}\b", route4, re.M), report
        assert len(re.findall(r"^default via 198\.51\.100\.1 ", route4, re.M)) == 1, report
        if stack.dhcp_net:  # the first NIC with a gateway has the default route; the lease's is a fallback
            assert _metric(route4, static) < _metric(route4, dhcp), report

    if stack.resolved:
        dns = section(report, "resolvectl")
        assert "127.0.0.53" in section(report, "resolv.conf"), report
    else:
        dns = section(report, "resolv.conf")
    for server in DNS:
        assert server in dns, report
    if stack.dhcp_dns:
        assert dhcpnet.DNS_SERVER in dns, report
    if stack.resolved:  # the DHCP server's DNS on its link, osdef's dns_servers on the static NIC
        link = {m.group(1): m.group(2) for m in re.finditer(r"^Link \d+ \((\S+)\): ?(.*)$", dns, re.M)}
        assert all(s in link.get(static, "") for s in DNS), report
        if stack.dhcp_dns:
            assert dhcpnet.DNS_SERVER in link.get(dhcp, ""), report


def _outcome(outcomes, name: str) -> tuple[Stack, Outcome]:
    if name not in outcomes:
        pytest.skip(f"{name} not in OSDEF_NETSTACKS")
    stack, out = STACKS[name], outcomes[name]
    assert out.create.returncode == 0, out.create.stderr[-3000:]
    assert "Traceback" not in out.create.stderr
    assert f"{stack.host} login:" in getty_text(out.console), out.console[-3000:]
    return stack, out


@pytest.mark.parametrize("name", ["netplan", "networkmanager", "networkd"])
def test_stack_boots_with_its_network(outcomes, name):
    stack, out = _outcome(outcomes, name)
    backend = {"netplan": "netplan", "networkmanager": "networkmanager", "networkd": "networkd"}[name]
    assert f"network: {backend}:" in out.create.stderr, out.create.stderr[-3000:]  # osdef's choice
    got = reports(out.console)
    assert 1 in got, out.console[-3000:]
    report = got[1]
    assert f"hostname: {stack.host}\n" in report, report
    check_network(stack, report)
    if name == "netplan":  # cloud_init=off: cloud-init stays out of the way
        assert "90-osdef.yaml" in section(report, "netplan"), report
        assert "50-cloud-init.yaml" not in section(report, "netplan"), report
        assert re.search(r"status: (disabled|not run)", section(report, "cloud-init")), report
    if name == "networkmanager":  # NetworkManager runs osdef's keyfiles, each on its MAC's device
        nm = section(report, "nm")
        names = interfaces(report)
        assert f"{names[MAC_STATIC]}:connected:osdef-nic0" in nm, report
        assert f"{names[MAC_DHCP]}:connected:osdef-nic1" in nm, report
    assert KEY in section(report, "keys"), report


def test_cloud_init_applies_the_seed_once(outcomes):
    stack, out = _outcome(outcomes, "cloud-init")
    assert "left to cloud-init's network-config" in out.create.stderr, out.create.stderr[-3000:]
    got = reports(out.console)
    assert set(got) == {1, 2}, out.console[-3000:]
    first, second = got[1], got[2]
    # first boot: cloud-init's NoCloud datasource rendered the network through netplan
    ci = section(first, "cloud-init")
    assert "status: done" in ci and "DataSourceNoCloud" in ci, first
    assert "50-cloud-init.yaml" in section(first, "netplan"), first
    assert "90-osdef.yaml" not in section(first, "netplan"), first
    assert re.search(r"^[1-9]\d*$", ci.strip().splitlines()[-1]), first  # cloud-init wrote the keys
    assert KEY in section(first, "keys"), first
    assert f"hostname: {stack.host}\n" in first, first
    # the host keys are osdef's first-boot unit's (fingerprints on the console), not cloud-init's
    assert "osdef: SSH host keys generated:" in out.console, out.console[-3000:]
    assert "Generating public/private" not in out.console, out.console[-3000:]
    check_network(stack, first)
    # second boot: what the admin changed after the first boot is kept
    assert "hostname: admin-set\n" in second, second
    assert "admin-set login:" in getty_text(out.console)
    assert "# osdef-admin-edit" in section(second, "netplan"), second
    keys = section(second, "keys")
    assert KEY in keys and "admin-added" in keys, second
    assert "status: done" in section(second, "cloud-init"), second
    check_network(stack, second)


def _metric(routes: str, dev: str) -> int:
    """The metric of the IPv4 default route through `dev` (none written: 0)."""
    line = re.search(rf"^default via \S+ dev {dev}\b.*$", routes, re.M)
    assert line, routes
    metric = re.search(r"\bmetric (\d+)", line.group(0))
    return int(metric.group(1)) if metric else 0


def test_cloud_init_through_ifupdown(outcomes):
    """debian-12-cloud (the real recipe): cloud-init renders osdef's seed for ifupdown (ENI),
    finding each NIC by its MAC."""
    stack, out = _outcome(outcomes, "cloud-ifupdown")
    assert "left to cloud-init's network-config" in out.create.stderr, out.create.stderr[-3000:]
    got = reports(out.console)
    assert 1 in got, out.console[-3000:]
    first = got[1]
    ci = section(first, "cloud-init")
    assert "status: done" in ci and "DataSourceNoCloud" in ci, first
    assert f"hostname: {stack.host}\n" in first, first
    assert KEY in section(first, "keys"), first
    # cloud-init finds each seed NIC by its MAC and keeps the kernel's name (ENI names it so)
    names = interfaces(first)
    assert sorted([names[MAC_STATIC], names[MAC_DHCP]]) == [names[MAC_DHCP], names[MAC_STATIC]], first
    assert f"inet {STATIC_V4} " in " ".join(addresses(first, names[MAC_STATIC])), first
    assert f"inet6 {STATIC_V6} " in " ".join(addresses(first, names[MAC_STATIC])), first
    # the default routes come from the seed's gateway4/gateway6 (cloudinit.network_config): the
    # first boot showed cloud-init's ENI `routes:` lines need net-tools, which the image lacks
    check_network(stack, first)
