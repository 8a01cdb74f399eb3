"""The Ganeti environment model, fed with environments captured from Ganeti 3.0.2."""

import ipaddress

import pytest

from osdef.errors import EnvError
from osdef.ganeti import environment as genv
from tests.ganeti_env import captured


@pytest.mark.parametrize("script", ["create", "rename", "export", "import", "verify"])
def test_every_captured_environment_loads(script):
    calls = captured(script)
    assert calls, f"no captured {script} environment"
    for step, env in calls:
        inst = genv.load_instance(env, script)
        assert inst.api_version == 20
        assert inst.variant == env["OS_VARIANT"]
        assert inst.os_params == {k[4:].lower(): v for k, v in env.items() if k.startswith("OSP_")}
        if script == "verify":
            continue
        assert inst.name == env["INSTANCE_NAME"]
        assert len(inst.disks) == int(env["DISK_COUNT"])
        assert len(inst.nics) == int(env["NIC_COUNT"])
        for d in inst.disks:
            assert d.path == env[f"DISK_{d.index}_PATH"]
            assert d.size_mib == int(env[f"DISK_{d.index}_SIZE"])
            assert d.access == "rw"


def test_create_environment_details():
    step, env = captured("create")[0]
    inst = genv.load_instance(env, "create")
    assert inst.primary_node == env["INSTANCE_PRIMARY_NODE"]
    assert inst.be_params["vcpus"] == "1"
    assert inst.hv_params["migration_mode"] == "live"
    assert inst.disks[0].backend_type == "file:loop"
    nic0, nic1 = inst.nics
    assert nic0.mac == "aa:00:00:00:00:11" and nic0.mode == "bridged" and nic0.bridge == "gntbr0"
    assert nic1.mode == "routed" and nic1.ip == ipaddress.ip_address("198.51.100.12")
    assert inst.reinstall is False
    assert inst.short_name == "inst1"
    # secret and private parameters arrive as ordinary OSP_* values
    assert inst.os_params["sec"] == "secretvalue"


def test_reinstall_flag_and_ext_disks():
    envs = dict(captured("create"))
    assert genv.load_instance(envs["08-reinstall-file"], "create").reinstall is True
    ext = genv.load_instance(envs["24-add-ext"], "create")
    assert ext.disks[0].backend_type == "block"
    assert ext.disks[0].path.startswith("/dev/loop")


def test_rename_has_old_name():
    for step, env in captured("rename"):
        inst = genv.load_instance(env, "rename")
        assert inst.old_name == env["OLD_INSTANCE_NAME"]


def test_export_and_import_targets():
    for step, env in captured("export"):
        t = genv.load_export_target(env)
        assert t.size_fd == 11 and t.device == env["EXPORT_DEVICE"]
        assert t.index == int(env["EXPORT_INDEX"])
    for step, env in captured("import"):
        t = genv.load_import_target(env)
        assert t.size_fd == 11 and t.device == env["IMPORT_DEVICE"]


def _base():
    return dict(captured("create")[0][1])


@pytest.mark.parametrize("change, needle", [
    ({"OS_API_VERSION": "5"}, "OS_API_VERSION=5 is not supported"),
    ({"OS_API_VERSION": "twenty"}, "OS_API_VERSION='twenty' is not an integer"),
    ({"OS_API_VERSION": None}, "OS_API_VERSION is not set"),
    ({"INSTANCE_NAME": None}, "INSTANCE_NAME is not set"),
    ({"INSTANCE_NAME": "bad_name.example"}, "INSTANCE_NAME='bad_name.example' is not a valid host name"),
    ({"DISK_COUNT": "1"}, "DISK_COUNT=1 but DISK_1_* is set"),
    ({"DISK_COUNT": "3"}, "DISK_COUNT=3 but DISK_2_PATH is not set"),
    ({"DISK_COUNT": "x"}, "DISK_COUNT='x' is not an integer"),
    ({"DISK_0_PATH": "relative/path"}, "DISK_0_PATH='relative/path' is not an absolute path"),
    ({"DISK_0_SIZE": "big"}, "DISK_0_SIZE='big' is not an integer"),
    ({"NIC_COUNT": "1"}, "NIC_COUNT=1 but NIC_1_* is set"),
    ({"NIC_0_MAC": "zz:00:00:00:00:11"}, "NIC_0_MAC='zz:00:00:00:00:11' is not a MAC address"),
    ({"NIC_1_IP": "198.51.100.300"}, "NIC_1_IP='198.51.100.300' is not an IP address"),
    ({"NIC_0_MODE": "magic"}, "NIC_0_MODE='magic' must be bridged, routed or openvswitch"),
    ({"NIC_0_NETWORK_SUBNET": "198.51.100.0/33"}, "NIC_0_NETWORK_SUBNET='198.51.100.0/33' is not an IPv4 network"),
    ({"NIC_0_NETWORK_SUBNET": "10.0.0.0/24"}, "NIC_0_IP=198.51.100.11 is outside NIC_0_NETWORK_SUBNET=10.0.0.0/24"),
    ({"NIC_0_NETWORK_SUBNET": "198.51.100.0/24", "NIC_0_NETWORK_GATEWAY": "10.0.0.1"},
     "NIC_0_NETWORK_GATEWAY=10.0.0.1 is outside NIC_0_NETWORK_SUBNET=198.51.100.0/24"),
    ({"NIC_0_NETWORK_SUBNET6": "2001:db8::/64", "NIC_0_NETWORK_GATEWAY6": "2001:db9::1"},
     "NIC_0_NETWORK_GATEWAY6=2001:db9::1 is outside"),
    ({"INSTANCE_REINSTALL": "maybe"}, "INSTANCE_REINSTALL='maybe' must be 0 or 1"),
    ({"INSTANCE_UUID": "not-a-uuid"}, "INSTANCE_UUID='not-a-uuid' is not a UUID"),
])
def test_malformed_values_name_the_variable(change, needle):
    env = _base()
    for k, v in change.items():
        if v is None:
            env.pop(k, None)
        else:
            env[k] = v
    with pytest.raises(EnvError) as info:
        genv.load_instance(env, "create")
    message = str(info.value)
    assert needle in message
    assert "\n" not in message


def test_network_and_ipv6_parsed():
    env = _base()
    env.update({
        "NIC_0_NETWORK_NAME": "pub", "NIC_0_NETWORK_SUBNET": "198.51.100.0/24",
        "NIC_0_NETWORK_GATEWAY": "198.51.100.1", "NIC_0_NETWORK_SUBNET6": "2001:db8::/64",
        "NIC_0_NETWORK_GATEWAY6": "2001:db8::1", "NIC_0_NETWORK_TAGS": "a b",
        "NIC_0_NETWORK_MAC_PREFIX": "aa:00:00",
    })
    nic = genv.load_instance(env, "create").nics[0]
    assert nic.network.subnet.prefixlen == 24
    assert str(nic.network.gateway6) == "2001:db8::1"
    assert nic.network.tags == ("a", "b")


def test_rename_requires_old_name():
    env = _base()
    with pytest.raises(EnvError, match="OLD_INSTANCE_NAME is not set"):
        genv.load_instance(env, "rename")


def test_api_10_variant_from_instance_os():
    env = _base()
    env["OS_API_VERSION"] = "10"
    del env["OS_VARIANT"]
    env["INSTANCE_OS"] = "image+debian-12"
    assert genv.load_instance(env, "create").variant == "debian-12"
    env["INSTANCE_OS"] = "image"
    assert genv.load_instance(env, "create").variant is None


def test_verify_needs_only_os_variables():
    inst = genv.load_instance({"OS_API_VERSION": "15", "OSP_NETWORK": "dhcp"}, "verify")
    assert inst.api_version == 15 and inst.os_params == {"network": "dhcp"}


@pytest.mark.parametrize("name, ok", [
    ("a.example.org", True), ("web-1", True), ("x" * 63 + ".org", True), ("x" * 64 + ".org", False),
    ("-bad.org", False), ("bad-.org", False), ("a..b", False), ("", False), ("a.b.", False),
    ("under_score.org", False), ("é.org", False),
])
def test_valid_hostname(name, ok):
    assert genv.valid_hostname(name) is ok
