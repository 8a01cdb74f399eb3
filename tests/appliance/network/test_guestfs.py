"""The network, DNS, OS-parameter and cloud-init steps on real appliances, read back through libguestfs.

Three launches: (1) six synthetic guests (one per backend, cloud-init on/off)
attached to one appliance and customized in turn; (2) reading the SSH host
keys of an "old installation"; (3) a guest with two data disks: every OS
parameter, then the old host keys restored.
"""

from __future__ import annotations

import stat
import pytest
import yaml

from osdef.create.context import StepContext
from osdef.create.layout.base import MountedRoot
from osdef.create.steps import load_builtin_hooks
from osdef.create.runner import run_steps
from osdef.create.plan import CreatePlan
from osdef.guest.network.model import build as build_network
from osdef.errors import OsdefError
from osdef.ganeti.params import resolve
from osdef.guest import cloudinit
from osdef.guest.hostkeys import read_host_keys
from osdef.guest.network import dns, ifupdown, model, netplan, networkmanager, render
from osdef.guest.session import GuestSession

from tests.support.guest import only_steps
from tests.support.network_cases import CASES
from tests.support.network import GUESTS, MiB, ext4_image, make_tree, sparse

pytestmark = pytest.mark.guestfs

MINE = {"network", "dns", "ssh-authorized-keys", "root-password", "timezone", "ssh-host-keys-restore",
        "swap", "data-disks", "cloud-init"}
FQDN = "web1.example.org"
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJcppsXuqZiKuPx82xZJvEH9Lkagj0B4h0bW+Zo+Ap/E admin@example"
HASH = "$6$saltsalt$" + "b" * 86


def _customize(session, device, instance, params, **extra):
    session.mount(device, "/")
    logs: list[str] = []
    plan = CreatePlan(layout="fs-image", hostname=FQDN, boot="none", params=params, instance=instance,
                      network=build_network(instance, params), steps=only_steps(*MINE), **extra)
    ctx = StepContext.of(plan, session, MountedRoot(device=device, fs_type="ext4"), logs.append)
    ran = run_steps(ctx)
    return ran, logs


def _mode(session, path):
    st = session.g.lstatns(path)
    return stat.S_IMODE(st["st_mode"]), st["st_uid"]


def _errors(session, instance):
    hooks = {h.name: h for h in load_builtin_hooks()}
    out = {}
    for hook, given in (("timezone", {"timezone": "America/New_York"}),  # valid, not in this guest
                        ("cloud-init", {"cloud_init": "on"}),
                        ("swap", {"swap_size": "1G"})):
        plan = CreatePlan(layout="fs-image", hostname=FQDN, params=resolve(given), instance=instance,
                          network=build_network(instance, resolve(given)))
        ctx = StepContext.of(plan, session, MountedRoot(fs_type="ext4"))
        with pytest.raises(OsdefError) as err:
            hooks[hook].run(ctx)
        out[hook] = str(err.value)
    return out


def _read_all(session, patterns):
    out = {}
    for pattern in patterns:
        for path in session.glob(pattern):
            out[path] = session.read_text(path) if session.is_file(path) else None
    return out


# -- launch 1: every backend ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def backends(guest_disks, libguestfs_settings):
    inst, _ = CASES["static-2nics-v4-v6"]
    routed, _ = CASES["routed"]
    names = list(GUESTS)
    seen = {}
    with GuestSession([guest_disks[n] for n in names] + [guest_disks["btrfs"]],
                      libguestfs_settings) as s:
        for i, name in enumerate(names):
            params = resolve({"dns_servers": "198.51.100.53", "dns_search": "example.org",
                              "ssh_authorized_keys": KEY,
                              "cloud_init": "off" if name == "cloud-init-off" else "auto"})
            ran, logs = _customize(s, s.device(i), routed if name.endswith("-routed") else inst, params)
            files = _read_all(s, ["/etc/network/interfaces", "/etc/network/interfaces.d/*",
                                  "/etc/systemd/network/*", "/etc/netplan/*",
                                  "/etc/NetworkManager/system-connections/*",
                                  "/etc/systemd/resolved.conf.d/*", "/etc/resolv.conf",
                                  "/var/lib/cloud/seed/nocloud/*", "/etc/cloud/cloud.cfg.d/*"])
            modes = {p: _mode(s, p) for p in files}
            wants = {p: s.g.readlink(p) for p in s.glob("/etc/systemd/system/*.wants/*")}
            seen[name] = dict(ran=ran, logs=logs, files=files, modes=modes, wants=wants)
            if name == "networkd":  # guest-side refusals, one line each
                seen[name]["errors"] = _errors(s, inst)
            if name == "cloud-init":  # what rename does to the seed
                seen[name]["renamed"] = cloudinit.update_seed_hostname(s, "db2.example.org", logs.append)
                seen[name]["meta_after_rename"] = s.read_text(cloudinit.META_DATA)
            s.unmount_all()
        # swap on a btrfs root: a No_COW file
        btrfs = s.device(len(names))
        s.mount(btrfs, "/")
        plan = CreatePlan(layout="fs-image", hostname=FQDN, params=resolve({"swap_size": "16M"}),
                          instance=inst, network=build_network(inst, resolve({"swap_size": "16M"})), steps=only_steps("swap"))
        run_steps(StepContext.of(plan, s, MountedRoot(device=btrfs, fs_type="btrfs"), lambda _m: None))
        g = s.g
        seen["btrfs"] = dict(size=g.filesize("/swapfile"), attrs=g.get_e2attrs("/swapfile"),
                             kind=g.file("/swapfile"), fstab=s.read_text("/etc/fstab"))
        s.unmount_all()
    return seen


def test_every_step_ran_in_order(backends):
    assert backends["ifupdown"]["ran"] == ["network", "dns", "ssh-authorized-keys", "root-password",
                                           "timezone", "ssh-host-keys-restore", "swap", "data-disks",
                                           "cloud-init"]


def test_ifupdown_guest(backends):
    got = backends["ifupdown"]
    files = got["files"]
    inst, _ = CASES["static-2nics-v4-v6"]
    expected = render("ifupdown", model.build(inst, resolve({"dns_servers": "198.51.100.53",
                                                             "dns_search": "example.org"})))
    assert {p: files.get(p) for p in expected} == expected
    assert "PermanentMACAddress=aa:00:00:11:22:33\n" in files["/etc/systemd/network/10-osdef-nic0.link"]
    assert "Name=nic1" in files["/etc/systemd/network/10-osdef-nic1.link"]
    main = files["/etc/network/interfaces"]
    assert "iface lo inet loopback" in main and "#osdef-disabled# iface ens3 inet dhcp" in main
    assert main.endswith("source /etc/network/interfaces.d/*\n")
    assert "#osdef-disabled# iface eth0 inet dhcp" in files["/etc/network/interfaces.d/eth0"]
    assert files["/etc/resolv.conf"].endswith("nameserver 198.51.100.53\nsearch example.org\n")
    assert not any(p.endswith(".network") for p in files)
    summary = "network: ifupdown: nic0=198.51.100.10/24, nic1=10.20.3.4/16 (3 file(s))"
    assert summary in got["logs"], got["logs"]


def test_netplan_guest(backends):
    got = backends["netplan"]
    files = got["files"]
    assert "/etc/netplan/50-cloud-init.yaml" not in files
    assert "/etc/netplan/50-cloud-init.yaml.osdef-disabled" in files
    plan = yaml.safe_load(files[netplan.NETPLAN_FILE])["network"]
    assert plan["ethernets"]["nic0"]["match"] == {"macaddress": "aa:00:00:11:22:33"}
    assert got["modes"][netplan.NETPLAN_FILE] == (0o600, 0)
    # /etc/resolv.conf links to resolved's stub: DNS goes to a resolved drop-in, the link stays
    assert files[dns.RESOLVED_DROPIN].endswith("DNS=198.51.100.53\nDomains=example.org\n")
    assert files["/etc/resolv.conf"] is None  # still the (dangling in the appliance) link


def test_networkmanager_guest_wins_over_ifupdown_when_enabled(backends):
    got = backends["networkmanager"]
    files = got["files"]
    path = f"{networkmanager.CONNECTIONS_DIR}/osdef-nic0.nmconnection"
    assert "mac-address=AA:00:00:11:22:33\n" in files[path] and "address1=198.51.100.10/24\n" in files[path]
    assert got["modes"][path] == (0o600, 0)
    assert "/etc/network/interfaces.d/50-osdef" not in files
    # ifupdown is installed too: it must not bring ens3 up (NM would leave it unmanaged)
    assert files["/etc/network/interfaces"] == ("auto lo\niface lo inet loopback\n"
                                                "#osdef-disabled# allow-hotplug ens3\n"
                                                "#osdef-disabled# iface ens3 inet dhcp\n")


def test_networkd_guest_is_enabled(backends):
    got = backends["networkd"]
    files = got["files"]
    assert "MACAddress=aa:00:00:44:55:66\n" in files["/etc/systemd/network/10-osdef-nic1.network"]
    assert got["wants"]["/etc/systemd/system/multi-user.target.wants/systemd-networkd.service"] == \
        "/lib/systemd/system/systemd-networkd.service"
    assert "/etc/systemd/system/sockets.target.wants/systemd-networkd.socket" in got["wants"]


def test_swap_file_on_btrfs_is_no_cow(backends):
    got = backends["btrfs"]
    assert got["size"] == 16 * MiB and "C" in got["attrs"] and "swap" in got["kind"].lower()
    assert "/swapfile\tnone\tswap\tsw\t0\t0" in got["fstab"]


def test_guest_side_refusals_are_one_line(backends):
    errors = backends["networkd"]["errors"]
    assert errors["timezone"].startswith("timezone=America/New_York: the guest has no"
                                         " /usr/share/zoneinfo/America/New_York")
    assert errors["cloud-init"].startswith("cloud_init=on but the guest has no cloud-init")
    assert errors["swap"].startswith("swap_size=1024M does not fit")
    assert all("\n" not in e for e in errors.values())


def test_cloud_init_guest_gets_a_seed_instead_of_network_files(backends):
    got = backends["cloud-init"]
    files = got["files"]
    inst, _ = CASES["static-2nics-v4-v6"]
    assert ifupdown.INTERFACES_FILE not in files
    assert yaml.safe_load(files[cloudinit.META_DATA]) == {"instance-id": inst.uuid,
                                                          "local-hostname": FQDN}
    user = files[cloudinit.USER_DATA]
    assert user.startswith("#cloud-config\n") and yaml.safe_load(user)["ssh_authorized_keys"] == [KEY]
    net = yaml.safe_load(files[cloudinit.NETWORK_CONFIG])
    assert net["version"] == 2 and net["ethernets"]["nic1"]["addresses"][0] == "10.20.3.4/16"
    assert got["modes"][cloudinit.META_DATA][0] == 0o600
    assert "NoCloud" in files[cloudinit.DATASOURCE_CFG]
    assert got["renamed"] and yaml.safe_load(got["meta_after_rename"]) == {
        "instance-id": inst.uuid, "local-hostname": "db2.example.org"}
    assert backends["ifupdown"]["files"].get(cloudinit.META_DATA) is None


def test_cloud_init_guest_without_netplan_and_routed_nics_gets_osdef_files(backends):
    files = backends["cloud-init-routed"]["files"]
    assert "up ip route replace default via 169.254.1.1 dev nic0 onlink" in files[ifupdown.INTERFACES_FILE]
    assert cloudinit.NETWORK_CONFIG not in files and cloudinit.META_DATA in files
    assert files[cloudinit.NETWORK_DISABLED_CFG].endswith("network: {config: disabled}\n")


def test_cloud_init_off_writes_files_and_keeps_cloud_init_away(backends):
    files = backends["cloud-init-off"]["files"]
    assert "/etc/systemd/network/10-osdef-nic0.network" in files
    assert files[cloudinit.NETWORK_DISABLED_CFG].endswith("network: {config: disabled}\n")
    assert cloudinit.META_DATA not in files


# -- launches 2 and 3: reinstall with every OS parameter and two data disks -------------------------

OLD_KEYS = {"/etc/ssh/ssh_host_ed25519_key": "OLD PRIVATE\n",
            "/etc/ssh/ssh_host_ed25519_key.pub": "ssh-ed25519 AAAA old-host\n"}


@pytest.fixture(scope="module")
def reinstalled(tmp_path_factory, libguestfs_settings):
    base = tmp_path_factory.mktemp("reinstall")
    files, links = GUESTS["ifupdown"]
    old = make_tree(base / "old", {**files, **{k.lstrip("/"): v for k, v in OLD_KEYS.items()},
                                   "etc/ssh/sshd_config": "\n"}, links)
    (old / "etc/ssh/ssh_host_ed25519_key").chmod(0o600)
    old_disk = ext4_image(old, base / "old.ext4", 16)
    new_disk = ext4_image(make_tree(base / "new", files, links), base / "new.ext4", 96)
    blank = sparse(base / "data1.img", 64 * MiB)
    (base / "data2").mkdir()
    (base / "data2/keep-me").write_text("precious\n")
    used = ext4_image(base / "data2", base / "data2.ext4", 32)

    logs: list[str] = []
    keys = read_host_keys(old_disk, libguestfs_settings, log=logs.append)
    inst, _ = CASES["static-2nics-v4-v6"]
    inst = type(inst)(**{**inst.__dict__, "reinstall": True,
                         "disks": inst.disks + (type(inst.disks[0])(1, "/dev/d1"),
                                                type(inst.disks[0])(2, "/dev/d2"))})
    params = resolve({"ssh_authorized_keys": KEY, "root_password_hash": HASH, "timezone": "Europe/Berlin",
                      "swap_size": "16M", "data_disks": "ext4"})
    with GuestSession([new_disk, blank, used], libguestfs_settings) as s:
        ran, hook_logs = _customize(s, s.device(0), inst, params, saved_host_keys=keys)
        g = s.g
        view = dict(
            fstab=s.read_text("/etc/fstab"), shadow=s.read_text("/etc/shadow"),
            shadow_mode=_mode(s, "/etc/shadow"),
            authorized=s.read_text("/root/.ssh/authorized_keys"),
            ssh_modes=(_mode(s, "/root/.ssh"), _mode(s, "/root/.ssh/authorized_keys")),
            localtime=g.readlink("/etc/localtime"), timezone=s.read_text("/etc/timezone"),
            swap=(g.filesize("/swapfile"), _mode(s, "/swapfile"), g.file("/swapfile")),
            host_keys={p: s.read_text(p) for p in OLD_KEYS},
            host_key_mode=_mode(s, "/etc/ssh/ssh_host_ed25519_key"),
            srv=sorted(g.ls("/srv")),
            uuids=[g.vfs_uuid(s.device(1)), g.vfs_uuid(s.device(2))],
            types=[g.vfs_type(s.device(1)), g.vfs_type(s.device(2))],
        )
        s.unmount_all()
        g.mount_ro(s.device(2), "/")
        view["kept"] = s.read_text("/keep-me")
    return keys, logs, ran, hook_logs, view


def test_host_keys_read_and_restored(reinstalled):
    keys, logs, _, hook_logs, view = reinstalled
    assert {p: b.decode() for p, b in keys.items()} == OLD_KEYS
    assert view["host_keys"] == OLD_KEYS and view["host_key_mode"] == (0o600, 0)
    assert "restored 2 SSH host key file(s) of the previous installation" in hook_logs
    assert not any("OLD PRIVATE" in line for line in logs + hook_logs)


def test_root_password_keys_timezone(reinstalled):
    *_, hook_logs, view = reinstalled
    root = view["shadow"].splitlines()[0].split(":")
    assert root[1] == HASH and root[2] != "0"
    assert view["shadow_mode"] == (0o640, 0)
    assert not any(HASH in line for line in hook_logs)
    assert view["authorized"] == KEY + "\n"
    assert view["ssh_modes"] == ((0o700, 0), (0o600, 0))
    assert view["localtime"] == "/usr/share/zoneinfo/Europe/Berlin" and view["timezone"] == "Europe/Berlin\n"


def test_swap_file(reinstalled):
    *_, view = reinstalled
    size, mode, kind = view["swap"]
    assert size == 16 * MiB and mode == (0o600, 0) and "swap" in kind.lower()
    assert "/swapfile\tnone\tswap\tsw\t0\t0" in view["fstab"]


def test_data_disks_formatted_or_kept_and_mounted_by_uuid(reinstalled):
    *_, hook_logs, view = reinstalled
    assert view["types"] == ["ext4", "ext4"]
    u1, u2 = view["uuids"]
    assert f"UUID={u1}\t/srv/disk1\text4\tdefaults,nofail\t0\t2" in view["fstab"]
    assert f"UUID={u2}\t/srv/disk2\text4\tdefaults,nofail\t0\t2" in view["fstab"]
    assert view["srv"] == ["disk1", "disk2"]
    assert view["kept"] == "precious\n"
    assert "data disks: disk 1 formatted ext4" in hook_logs
    assert "data disks: disk 2 already has ext4: kept (not formatted)" in hook_logs
