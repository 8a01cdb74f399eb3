"""The network model's decisions, backend selection, DNS placement and the pure OS-parameter editors."""

from __future__ import annotations

import ipaddress

import pytest
import yaml

from osdef.errors import EnvError, GuestError, ParamError
from osdef.ganeti.params import resolve
from osdef.guest import cloudinit
from osdef.guest.network import dns, ifupdown, model
from osdef.guest.network.select import NetworkFacts, facts_from_paths, select
from osdef.guest.fstab import data_disk_entry, swap_entry
from osdef.guest.osparams import merge_authorized_keys, set_root_hash, swap_size_bytes

from tests.support.network_cases import NET_A, instance, nic

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJcppsXuqZiKuPx82xZJvEH9Lkagj0B4h0bW+Zo+Ap/E admin@example"
HASH = "$6$saltsalt$" + "a" * 86


def _build(*nics, **params):
    params.setdefault("network", "auto")
    return model.build(instance(*nics), params)


def test_static_nic_gets_subnet_prefix_gateway_and_eui64_v6():
    state = _build(nic(0, "aa:00:00:11:22:33", "198.51.100.10", network=NET_A))
    (n,) = state.nics
    assert [str(a) for a in n.addresses] == ["198.51.100.10/24", "2001:db8:10:0:a800:ff:fe11:2233/64"]
    assert [(str(r.to), str(r.via), r.on_link) for r in n.routes] == [
        ("0.0.0.0/0", "198.51.100.1", False), ("::/0", "2001:db8:10::1", False)]
    assert not n.dhcp4 and not n.accept_ra and n.name == "nic0"


def test_no_ip_means_dhcp_and_ip_without_network_means_slash32_without_gateway():
    state = _build(nic(0, "aa:00:00:11:22:33"), nic(1, "aa:00:00:11:22:34", "192.0.2.9"))
    assert state.nics[0].dhcp4 and state.nics[0].addresses == () and state.nics[0].accept_ra
    assert [str(a) for a in state.nics[1].addresses] == ["192.0.2.9/32"] and state.nics[1].routes == ()


def test_routed_is_slash32_with_on_link_default_via_169_254_1_1_or_the_network_gateway():
    a = _build(nic(0, "aa:00:00:11:22:33", "203.0.113.7", mode="routed")).nics[0]
    assert [str(x) for x in a.addresses] == ["203.0.113.7/32"]
    assert a.routes == (model.Route(model.DEFAULT4, ipaddress.IPv4Address("169.254.1.1"), True),)
    b = _build(nic(0, "aa:00:00:11:22:33", "198.51.100.7", mode="routed", network=NET_A)).nics[0]
    assert str(b.addresses[0]) == "198.51.100.7/32"
    assert (str(b.routes[0].via), b.routes[0].on_link) == ("198.51.100.1", True)


def test_routed_v6():
    a = _build(nic(0, "aa:00:00:11:22:33", "198.51.100.7", mode="routed", network=NET_A)).nics[0]
    assert [a.version for a in a.addresses] == [4]  # no EUI-64 guess: Ganeti routes only the NIC's IP
    b = _build(nic(0, "aa:00:00:11:22:33", "2001:db8:10::7", mode="routed", network=NET_A)).nics[0]
    assert [str(x) for x in b.addresses] == ["2001:db8:10::7/128"]
    assert (str(b.routes[0].via), b.routes[0].on_link) == ("2001:db8:10::1", True)


def test_only_the_first_nic_with_a_gateway_gets_the_default_route():
    state = _build(nic(0, "aa:00:00:00:00:01"),
                   nic(1, "aa:00:00:00:00:02", "198.51.100.10", network=NET_A),
                   nic(2, "aa:00:00:00:00:03", "198.51.100.11", network=NET_A))
    defaults = [(n.index, r.to.version) for n in state.nics for r in n.routes if r.is_default]
    assert defaults == [(1, 4), (1, 6)]


def test_v6_nic_ip_is_static():
    n = _build(nic(0, "aa:00:00:11:22:33", "2001:db8:10::5", network=NET_A)).nics[0]
    assert n.dhcp4 and [str(a) for a in n.addresses] == ["2001:db8:10::5/64"]


def test_static_requires_an_ip_on_every_nic_naming_the_index():
    with pytest.raises(ParamError, match=r"NIC 1 \(aa:00:00:00:00:02\) has no IP \(NIC_1_IP\)"):
        _build(nic(0, "aa:00:00:00:00:01", "192.0.2.1"), nic(1, "aa:00:00:00:00:02"), network="static")


def test_dhcp_forces_dhcp_and_none_configures_nothing():
    nics = (nic(0, "aa:00:00:11:22:33", "198.51.100.10", network=NET_A),)
    state = _build(*nics, network="dhcp")
    assert state.nics[0].dhcp4 and state.nics[0].addresses == () and state.nics[0].accept_ra
    none = _build(*nics, network="none", dns_servers=("192.0.2.53",))
    assert none.nics == () and not none.configures_network and none.dns_servers == ("192.0.2.53",)
    with pytest.raises(ParamError, match="network='bogus'"):
        _build(*nics, network="bogus")


@pytest.mark.parametrize("extra, message", [
    ({"NIC_0_IP": "300.1.2.3"}, "NIC_0_IP='300.1.2.3' is not an IP address"),
    ({"NIC_0_MAC": "aa:00:00:11:22"}, "NIC_0_MAC"),
    ({"NIC_0_NETWORK_SUBNET": "198.51.100.0/33"}, "NIC_0_NETWORK_SUBNET"),
    ({"NIC_0_IP": "192.0.2.1", "NIC_0_NETWORK_SUBNET": "198.51.100.0/24"}, "outside"),
    ({"NIC_COUNT": "2"}, "NIC_COUNT=2"),
])
def test_malformed_nic_variables_are_one_line_env_errors(extra, message):
    with pytest.raises(EnvError, match=message) as err:
        instance({**nic(0, "aa:00:00:11:22:33"), **extra})
    assert "\n" not in str(err.value)


def test_eui64():
    assert str(model.eui64("52:54:00:12:34:56", ipaddress.IPv6Network("2001:db8::/64"))) == \
        "2001:db8::5054:ff:fe12:3456"


@pytest.mark.parametrize("installed, enabled, expected", [
    ({"netplan", "networkd", "ifupdown"}, set(), "netplan"),
    ({"networkmanager", "ifupdown", "networkd"}, {"networkmanager"}, "networkmanager"),
    ({"networkmanager", "ifupdown", "networkd"}, set(), "ifupdown"),  # NM installed, not enabled
    ({"ifupdown", "networkd"}, {"networkd"}, "networkd"),
    ({"ifupdown", "networkd"}, set(), "ifupdown"),  # Debian 12 default
    ({"networkd"}, set(), "networkd"),
    (set(), set(), None),
])
def test_backend_priority(installed, enabled, expected):
    assert select(NetworkFacts.of(installed, enabled)) == expected


def test_every_backend_describes_itself():
    from osdef.guest.network.select import BACKENDS, PRIORITY

    assert [b.NAME for b in PRIORITY] == ["netplan", "networkmanager", "networkd", "ifupdown"]
    for name, backend in BACKENDS.items():
        assert name == backend.NAME and backend.MARKERS and backend.FILE_MODE in (0o600, 0o644)
        for attr in ("in_charge", "available", "render", "prepare", "stand_down"):
            assert callable(getattr(backend, attr)), (name, attr)
    # in charge implies available: the fallback pass never un-chooses a backend in charge
    everything = NetworkFacts.of(set(BACKENDS), set(BACKENDS))
    assert all(b.available(everything) for b in PRIORITY if b.in_charge(everything))


def test_facts_from_paths():
    facts = facts_from_paths({"/usr/sbin/NetworkManager", "/sbin/ifup"},
                             {"NetworkManager.service", "systemd-networkd.service"})
    assert facts.installed == {"networkmanager", "ifupdown"} and facts.enabled == {"networkmanager"}


def test_dns_goes_where_the_resolver_reads():
    state = _build(nic(0, "aa:00:00:11:22:33"), dns_servers=("192.0.2.53", "2001:db8::53"),
                   dns_search=("example.org",))
    stub = NetworkFacts.of({"resolved"}, set(), "../run/systemd/resolve/stub-resolv.conf")
    assert dns.render(state, stub) == {dns.RESOLVED_DROPIN: dns.HEADER + (
        "[Resolve]\nDNS=192.0.2.53 2001:db8::53\nDomains=example.org\n")}
    plain = dns.render(state, NetworkFacts.of())
    assert plain[dns.RESOLV_CONF].endswith(
        "nameserver 192.0.2.53\nnameserver 2001:db8::53\nsearch example.org\n")
    assert list(dns.render(state, NetworkFacts.of({"resolvconf"}, set(), "/run/resolvconf/resolv.conf"))) \
        == [dns.RESOLVCONF_BASE]
    assert dns.render(_build(nic(0, "aa:00:00:11:22:33")), NetworkFacts.of()) == {}


def test_ifupdown_disables_the_images_stanzas_but_keeps_loopback():
    text = ("auto lo eth0\niface lo inet loopback\n\nallow-hotplug ens3\niface ens3 inet dhcp\n"
            "    hostname x\n# comment\nsource /etc/network/interfaces.d/*\n")
    out = ifupdown.disable_foreign_stanzas(text)
    assert "auto lo\n" in out and "iface lo inet loopback\n" in out
    assert "#osdef-disabled# iface ens3 inet dhcp\n#osdef-disabled#     hostname x\n" in out
    assert "#osdef-disabled# allow-hotplug ens3\n" in out and "source /etc/network/interfaces.d/*" in out
    assert ifupdown.disable_foreign_stanzas(out) == out
    assert ifupdown.ensure_sources_dir("auto lo\n").endswith("source /etc/network/interfaces.d/*\n")
    assert ifupdown.ensure_sources_dir(text) == text


def test_cloud_init_seed():
    inst = instance(nic(0, "aa:00:00:11:22:33", "198.51.100.10", network=NET_A))
    state = model.build(inst, {"network": "auto"})
    files = cloudinit.seed_files(iid=cloudinit.instance_id(inst.uuid, inst.name), fqdn=inst.name,
                                 state=state, ssh_keys=(KEY,))
    meta = yaml.safe_load(files[cloudinit.META_DATA])
    assert meta == {"instance-id": inst.uuid, "local-hostname": "web1.example.org"}
    user = files[cloudinit.USER_DATA]
    assert user.startswith("#cloud-config\n")
    data = yaml.safe_load(user)
    assert data["ssh_authorized_keys"] == [KEY] and data["disable_root"] is False
    # host keys: removed by osdef, made on first boot by osdef's unit, never by cloud-init
    assert data["ssh_deletekeys"] is False and data["ssh_genkeytypes"] == []
    assert yaml.safe_load(files[cloudinit.NETWORK_CONFIG])["ethernets"]["nic0"]["match"] == {
        "macaddress": "aa:00:00:11:22:33"}
    renamed = yaml.safe_load(cloudinit.with_hostname(files[cloudinit.META_DATA], "db2.example.org"))
    assert renamed == {"instance-id": inst.uuid, "local-hostname": "db2.example.org"}
    assert cloudinit.instance_id(None, "web1.example.org") == "web1.example.org"
    assert cloudinit.wanted("auto", True) and not cloudinit.wanted("auto", False)
    assert not cloudinit.wanted("off", True)
    with pytest.raises(GuestError, match="cloud_init=on"):
        cloudinit.wanted("on", False)


def test_cloud_init_configures_the_network_unless_on_link_routes_without_netplan():
    static = _build(nic(0, "aa:00:00:11:22:33", "198.51.100.10", network=NET_A))
    routed = _build(nic(0, "aa:00:00:11:22:33", "203.0.113.7", mode="routed"))
    assert cloudinit.configures_network(static, has_netplan=False)
    assert not cloudinit.configures_network(routed, has_netplan=False)
    assert cloudinit.configures_network(routed, has_netplan=True)
    assert not cloudinit.configures_network(_build(nic(0, "aa:00:00:11:22:33"), network="none"), True)


def test_authorized_keys_are_appended_once():
    existing = "# mine\nfrom=\"10.0.0.1\" " + KEY.replace("admin@example", "old") + "\n"
    out = merge_authorized_keys(existing, (KEY,))
    assert out == existing  # same key (type + data), other options/comment: not added twice
    other = "ssh-rsa AAAAC3NzaC1lZDI1NTE5 x"  # blob of another type: refused once, by the table
    with pytest.raises(ParamError, match="ssh_authorized_keys=.*does not match its type"):
        resolve({"ssh_authorized_keys": other})
    assert merge_authorized_keys("", (KEY,)) == KEY + "\n"


def test_root_hash_is_set_and_never_shown():
    shadow = "root:*:0:0:99999:7:::\ndaemon:*:19000:0:99999:7:::\n"
    out = set_root_hash(shadow, HASH, today=20000)
    assert out.splitlines()[0] == f"root:{HASH}:20000:0:99999:7:::"
    assert out.splitlines()[1] == "daemon:*:19000:0:99999:7:::"
    secret = "$6$bad:hash"
    with pytest.raises(ParamError) as err:
        set_root_hash(shadow, secret, today=1)
    assert "bad" not in str(err.value) and "hidden" in str(err.value)
    with pytest.raises(GuestError, match="no root entry"):
        set_root_hash("daemon:*:1:0:::::\n", HASH, today=1)


def test_fstab_entries_replace_their_own_line():
    fstab = "UUID=r\t/\text4\terrors=remount-ro\t0\t1\n/swapfile none swap sw 0 0\n"
    out = swap_entry(fstab)
    assert out.count("/swapfile") == 1 and out.endswith("/swapfile\tnone\tswap\tsw\t0\t0\n")
    out = data_disk_entry(data_disk_entry(out, "u1", 1, "ext4"), "u2", 1, "xfs")
    assert "UUID=u1" not in out and out.endswith("UUID=u2\t/srv/disk1\txfs\tdefaults,nofail\t0\t0\n")
    # one rule for every entry: any line naming the mount point is replaced, however short
    assert data_disk_entry("/dev/vdb /srv/disk1\n", "u3", 1, "ext4") == \
        "UUID=u3\t/srv/disk1\text4\tdefaults,nofail\t0\t2\n"
    assert swap_size_bytes(1) == 1 << 20 and swap_size_bytes(0) == 0
