"""Validation is total (issue 14): every value bounded and matched whole, echoed quoted and short.

Driven through the installed OS dir as Ganeti drives it.  Each case: exit 1, one line on stderr,
no traceback or internal error, and the pre-filled disk byte-identical afterwards.
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
import subprocess

import pytest

from osdef.errors import EnvError, quote
from osdef.ganeti import environment as genv
from osdef.ganeti.nics import host_address_problem
from osdef.ganeti import params
from tests.conftest import clean_env

MiB = 1 << 20


def run(os_dir, script, env, *args, stdin=subprocess.DEVNULL):
    return subprocess.run([str(os_dir / script), *args], cwd=os_dir, env=env, stdin=stdin,
                          capture_output=True, text=True, timeout=60)


@pytest.fixture
def disk(tmp_path):
    path = tmp_path / "disk0"
    path.write_bytes(bytes([0xAB]) * (4 * MiB))
    return path


def create_env(disk, **over):
    env = clean_env(OS_API_VERSION="20", OS_NAME="image", OS_VARIANT="debian-12", DEBUG_LEVEL="0",
                    INSTANCE_NAME="web1.example.org", INSTANCE_OS="image+debian-12",
                    INSTANCE_UUID="6adf4155-38b1-4a21-b873-6870f58b9c95",
                    DISK_COUNT="1", DISK_0_PATH=str(disk), DISK_0_SIZE="4", NIC_COUNT="0")
    env.update(over)
    return env


NIC = {"NIC_COUNT": "1", "NIC_0_MAC": "aa:00:00:12:34:56", "NIC_0_MODE": "bridged"}
NET = {"NIC_0_NETWORK_NAME": "pub", "NIC_0_NETWORK_SUBNET": "198.51.100.0/24",
       "NIC_0_NETWORK_GATEWAY": "198.51.100.1"}

CASES = [
    ({"INSTANCE_NAME": "web1.example.org\n"}, "INSTANCE_NAME='web1.example.org\\n' is not a valid host name"),
    ({"INSTANCE_UUID": "6adf4155-38b1-4a21-b873-6870f58b9c95\n"}, "is not a UUID"),
    ({"OSP_TIMEZONE": "Europe/" + "B" * 300}, "timezone="),
    ({"OSP_TIMEZONE": "a" * 256}, "timezone="),
    ({"OSP_DNS_SEARCH": "x" * 100_000}, "OSP_DNS_SEARCH is 100000 characters long"),
    ({"OSP_DNS_SEARCH": "_" * 60_000}, "(60000 characters)"),
    ({"DISK_0_PATH": "/tmp/a\nb"}, "DISK_0_PATH='/tmp/a\\nb' contains a control character"),
    ({"DISK_0_SIZE": "10240"}, "DISK_0_SIZE=10240 (MiB) but"),
    ({**NIC, "NIC_0_IP": "0.0.0.0"}, "NIC_0_IP=0.0.0.0 is the unspecified address"),
    ({**NIC, "NIC_0_IP": "255.255.255.255"}, "is the broadcast address"),
    ({**NIC, "NIC_0_IP": "224.0.0.5"}, "is a multicast address"),
    ({**NIC, "NIC_0_IP": "127.0.0.1"}, "is a loopback address"),
    ({**NIC, "NIC_0_IP": "::"}, "is the unspecified address"),
    ({**NIC, "NIC_0_IP": "ff02::1"}, "is a multicast address"),
    ({**NIC, **NET, "NIC_0_IP": "198.51.100.255"}, "is the broadcast address of 198.51.100.0/24"),
    ({**NIC, **NET, "NIC_0_IP": "198.51.100.0"}, "is the network address of 198.51.100.0/24"),
    ({**NIC, **NET, "NIC_0_NETWORK_GATEWAY": "198.51.100.255"}, "NIC_0_NETWORK_GATEWAY=198.51.100.255"),
    ({**NIC, "NIC_0_MAC": "01:00:5e:00:00:01"}, "is a multicast address"),
    ({**NIC, "NIC_0_MAC": "00:00:00:00:00:00"}, "is the all-zero address"),
    ({"OSP_SWAP_SIZE": "99999999T"}, "swap_size='99999999T' is invalid"),
    ({"OSP_SWAP_SIZE": "8M"}, "swap_size=8M does not fit on disk 0 (4 MiB)"),
    ({"OSP_DNS_SERVERS": "0.0.0.0"}, "dns_servers='0.0.0.0' is invalid: 0.0.0.0 is the unspecified address"),
    ({"OSP_ROOT_PASSWORD_HASH": "$6$salt$" + "a" * 85 + "\na"}, "root_password_hash=(value hidden: secret)"),
]


@pytest.mark.parametrize("over, needle", CASES, ids=[str(i) for i in range(len(CASES))])
def test_create_refuses_with_one_quoted_line_and_the_disk_untouched(installed_os_dir, disk, over, needle):
    before = hashlib.sha256(disk.read_bytes()).hexdigest()
    r = run(installed_os_dir, "create", create_env(disk, **over))
    assert r.returncode == 1, r.stderr
    assert len(r.stderr.splitlines()) == 1, r.stderr
    assert needle in r.stderr, r.stderr
    assert "internal error" not in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr) < 2000  # values are cut, never echoed whole
    assert hashlib.sha256(disk.read_bytes()).hexdigest() == before


def test_verify_refuses_a_long_timezone_with_one_line(installed_os_dir):
    for zone in ("Europe/" + "B" * 300, "x" * 5000):
        r = run(installed_os_dir, "verify", clean_env(OS_API_VERSION="20", OS_VARIANT="debian-12",
                                                      OSP_TIMEZONE=zone), "parameters")
        assert r.returncode == 1 and len(r.stderr.splitlines()) == 1, r.stderr
        assert "timezone=" in r.stderr and "internal error" not in r.stderr and len(r.stderr) < 400


def test_export_of_a_fifo_is_refused_at_once(installed_os_dir, tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    env = create_env(fifo, EXPORT_DEVICE=str(fifo), EXPORT_INDEX="0")
    del env["DISK_0_SIZE"]
    r = run(installed_os_dir, "export", env)  # used to block in open() forever (timeout=60 here)
    assert r.returncode == 1 and "is neither a file nor a block device" in r.stderr


def test_import_device_of_another_size_than_disk_n_size(installed_os_dir, disk):
    before = disk.read_bytes()
    env = create_env(disk, IMPORT_DEVICE=str(disk), IMPORT_INDEX="0", DISK_0_SIZE="4096")
    r = run(installed_os_dir, "import", env)
    assert r.returncode == 1 and "DISK_0_SIZE=4096 (MiB) but" in r.stderr and "IMPORT_DEVICE" in r.stderr
    assert disk.read_bytes() == before


def test_disk_larger_than_declared_within_lvm_rounding_is_fine(tmp_path):
    from osdef.create.request import check_disk
    path = tmp_path / "d"
    with open(path, "wb") as f:
        f.truncate(12 * MiB)  # an LV of 10 MiB asked, rounded up to 4 MiB extents
    assert check_disk(genv.Disk(0, str(path), size_mib=10)) == 12 * MiB
    with pytest.raises(EnvError, match="is DISK_0_PATH the instance's disk"):
        check_disk(genv.Disk(0, str(path), size_mib=13))


def test_a_loaded_create_request_carries_each_disks_measured_size(installed_os_dir, disk, tmp_path):
    """check_disk measures each disk once; create's size check before the first write uses that."""
    from osdef.create import request as requests
    data = tmp_path / "disk1"
    with open(data, "wb") as f:
        f.truncate(12 * MiB)
    env = create_env(disk, DISK_COUNT="2", DISK_1_PATH=str(data), DISK_1_SIZE="10")
    loaded = requests.load("create", installed_os_dir, env)
    assert loaded.sizes == (disk.stat().st_size, 12 * MiB)
    assert requests.load("export", installed_os_dir, env).sizes == ()  # export measures its one disk itself


# -- pure: the validators match whole strings -------------------------------------------------

@pytest.mark.parametrize("name", ["web1.example.org\n", "web1\n", "-web1", "a" * 64, "a..b"])
def test_hostnames_match_whole(name):
    assert not genv.valid_hostname(name)


def test_regexes_do_not_accept_a_final_newline():
    assert params.Size().parse("2G") == 2 << 30
    for typ, value in ((params.Size(), "2G\n"), (params.Timezone(), "UTC\n")):
        with pytest.raises(params.Invalid):
            # a value ends where Ganeti's does: internal newlines are never part of a valid one
            typ.parse(value.replace("\n", "\nx"))
    hash_ = "$6$salt$" + "a" * 86
    assert params.PasswordHash().parse(hash_) == hash_
    assert not any(fmt.match(hash_ + "\n") for fmt in params.HASH_FORMATS.values())


def test_quote_is_short_and_one_line():
    assert quote("a\nb") == "'a\\nb'"
    long = quote("x" * 100_000)
    assert long.endswith("… (100000 characters)") and len(long) < 130 and "\n" not in long


@pytest.mark.parametrize("ip", ["0.0.0.0", "255.255.255.255", "224.0.0.1", "127.0.0.1", "::", "::1", "ff02::1"])
def test_non_host_addresses(ip):
    assert host_address_problem(ipaddress.ip_address(ip)) is not None


@pytest.mark.parametrize("ip", ["198.51.100.20", "10.0.0.1", "2001:db8::1", "fe80::1", "169.254.1.1"])
def test_host_addresses(ip):
    assert host_address_problem(ipaddress.ip_address(ip)) is None


def test_point_to_point_subnets_have_no_broadcast_to_refuse():
    net = ipaddress.ip_network("198.51.100.0/31")
    assert host_address_problem(ipaddress.ip_address("198.51.100.1"), net) is None
    assert host_address_problem(ipaddress.ip_address("198.51.100.0"), net) is None


# -- checks that used to run after the first write ---------------------------------------------

def _own_os_dir(tmp_path, site_config_file, extra_config: str = ""):
    import sys
    config = tmp_path / "osdef.yaml"
    config.write_text(site_config_file.read_text() + extra_config)
    os_dir = tmp_path / "os" / "image"
    subprocess.run([sys.executable, "-m", "osdef.cli", "install", "--os-dir", str(os_dir),
                    "--config", str(config)], check=True, capture_output=True)
    return os_dir


@pytest.fixture
def big_disk(tmp_path):
    """A sparse 4 GiB disk, large enough for the debian-12 image: only checks stop a create on it."""
    path = tmp_path / "big0"
    with open(path, "wb") as f:
        f.truncate(4096 * MiB)
        f.write(b"\xab" * MiB)
        f.seek(4095 * MiB)
        f.write(b"\xcd" * MiB)
    return path


def _ends(path):
    with open(path, "rb") as f:
        head = f.read(4 * MiB)
        f.seek(-4 * MiB, os.SEEK_END)
        return head + f.read(), os.stat(path).st_blocks


@pytest.mark.parametrize("skip, needle", [
    ("no-such-step", "cannot skip unknown customization step(s) no-such-step"),
    ("fstab", "customization step(s) fstab may not be skipped"),
], ids=["unknown", "not-excludable"])
def test_a_bad_skip_name_in_a_variant_leaves_the_disk_untouched(tmp_path, site_config_file, big_disk, skip, needle):
    os_dir = _own_os_dir(tmp_path, site_config_file)
    text = (os_dir / "variants" / "debian-12.yaml").read_text()
    (os_dir / "variants" / "badskip.yaml").write_text(text + f"skip_hooks: [{skip}]\n")
    before = _ends(big_disk)
    r = run(os_dir, "create", create_env(big_disk, OS_VARIANT="badskip", INSTANCE_OS="image+badskip",
                                         DISK_0_SIZE="4096"))
    assert r.returncode == 1 and needle in r.stderr, r.stderr
    assert "Traceback" not in r.stderr
    assert _ends(big_disk) == before


@pytest.mark.parametrize("name, text, needle", [
    ("10-broken.py", "this is not python\n", "10-broken.py: cannot be loaded"),
    ("10-early.py", "BEFORE = ('bootloadr',)\ndef run(ctx):\n    pass\n",
     "BEFORE names unknown step 'bootloadr'"),  # an order declaration, checked when the steps load
], ids=["broken", "bad-order"])
def test_broken_site_hook_leaves_the_disk_untouched(tmp_path, site_config_file, big_disk, name, text, needle):
    hooks = tmp_path / "site-hooks"
    hooks.mkdir()
    (hooks / name).write_text(text)
    os_dir = _own_os_dir(tmp_path, site_config_file, f"hooks_dir: {hooks}\n")
    before = _ends(big_disk)
    r = run(os_dir, "create", create_env(big_disk, DISK_0_SIZE="4096"))
    assert r.returncode == 1 and needle in r.stderr, r.stderr
    assert len(r.stderr.splitlines()) == 1 and "Traceback" not in r.stderr
    assert _ends(big_disk) == before


def test_nic_the_network_model_refuses_leaves_the_disk_untouched(tmp_path, site_config_file, big_disk):
    os_dir = _own_os_dir(tmp_path, site_config_file)
    before = _ends(big_disk)
    r = run(os_dir, "create", create_env(big_disk, DISK_0_SIZE="4096", OSP_NETWORK="static", **NIC))
    assert r.returncode == 1 and "NIC 0 (aa:00:00:12:34:56) has no IP (NIC_0_IP)" in r.stderr, r.stderr
    assert len(r.stderr.splitlines()) == 1
    assert _ends(big_disk) == before
