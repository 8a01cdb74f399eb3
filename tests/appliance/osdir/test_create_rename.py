"""The installed create and rename scripts, end to end on the real debian-12 image.

Runs the OS dir's scripts through `osdef try` (Ganeti's clean environment,
cwd = OS dir) with 2 disks, 2 NICs and OS parameters, then reads the disks
back through a read-only libguestfs appliance (never a host mount).
One test function per appliance-heavy flow to keep launches few.
"""

from __future__ import annotations

import subprocess
import sys

import guestfs
import pytest

from osdef import config as siteconfig
from osdef.guest.session import configure
from tests.support.image_cache import ensure_test_image

pytestmark = [pytest.mark.guestfs]

KEY = ("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDzVXq3nnp7+6RkWTrCtRvqOa2mELHO7hlm4JF1B3aGO "
       "admin@example")
SECRET = "$6$saltsalt$" + "Q" * 86


@pytest.fixture(scope="module")
def image():
    return ensure_test_image("debian-12")


def osdef_try(os_dir, *args):
    return subprocess.run([sys.executable, "-m", "osdef.cli", "try", *args, "--os-dir", str(os_dir)],
                          capture_output=True, text=True, timeout=900)


def read_guest(disks, site_config_file):
    settings = siteconfig.load_file(site_config_file).libguestfs
    g = guestfs.GuestFS(python_return_dict=True)
    configure(g, settings)
    for d in disks:
        g.add_drive_opts(str(d), format="raw", readonly=True)
    g.launch()
    try:
        root = g.inspect_os()[0]
        g.mount_ro(root, "/")
        out = {p: g.cat(p) for p in ("/etc/hostname", "/etc/hosts", "/etc/fstab", "/etc/shadow",
                                     "/root/.ssh/authorized_keys", "/etc/timezone")}
        out["network"] = {f: g.cat(f"/etc/network/interfaces.d/{f}")
                          for f in g.ls("/etc/network/interfaces.d")}
        out["root_uuid"] = g.vfs_uuid(root)
        out["disk1_fs"] = g.vfs_type("/dev/sdb")
        out["disk1_uuid"] = g.vfs_uuid("/dev/sdb")
        out["parts"] = g.part_list("/dev/sda")
        out["disk0_size"] = g.blockdev_getsize64("/dev/sda")
        out["fs_size"] = g.statvfs("/")["blocks"] * g.statvfs("/")["bsize"]
        return out
    finally:
        g.close()


def test_create_then_rename(image, installed_os_dir, site_config_file, tmp_path):
    d0, d1 = tmp_path / "disk0", tmp_path / "disk1"
    r = osdef_try(installed_os_dir, "create", "-o", "debian-12", "-n", "web1.example.org",
                  "--disk", f"{d0}:3G", "--disk", f"{d1}:128M",
                  "--nic", "ip=198.51.100.20,subnet=198.51.100.0/24,gateway=198.51.100.1",
                  "--nic", "mode=bridged",
                  "-O", "data_disks=ext4", "-O", f"ssh_authorized_keys={KEY}",
                  "-O", "timezone=Europe/Berlin", "-O", f"root_password_hash={SECRET}")
    assert r.returncode == 0, r.stderr[-3000:]
    assert SECRET not in r.stderr and "Traceback" not in r.stderr
    st = d0.stat()
    assert st.st_blocks * 512 < st.st_size / 2, "the target must stay sparse"

    r = osdef_try(installed_os_dir, "rename", "-o", "debian-12", "--disk", str(d0), "--disk", str(d1),
                  "--old-name", "web1.example.org", "-n", "web2.example.org")
    assert r.returncode == 0, r.stderr[-3000:]

    g = read_guest([d0, d1], site_config_file)
    assert g["/etc/hostname"].strip() == "web2"
    assert "127.0.1.1\tweb2.example.org web2" in g["/etc/hosts"] or \
        "127.0.1.1 web2.example.org web2" in g["/etc/hosts"]
    assert f"UUID={g['root_uuid']}" in g["/etc/fstab"]
    assert g["disk1_fs"] == "ext4" and f"UUID={g['disk1_uuid']}" in g["/etc/fstab"]
    assert KEY in g["/root/.ssh/authorized_keys"]
    assert g["/etc/shadow"].startswith(f"root:{SECRET}:")
    assert g["/etc/timezone"].strip() == "Europe/Berlin"
    net = "\n".join(g["network"].values())
    assert "198.51.100.20" in net and "dhcp" in net
    last = g["parts"][-1]
    assert last["part_end"] >= g["disk0_size"] - (1 << 20) - 34 * 512 - 1, "root partition grown to the disk"
    assert g["fs_size"] > 2.5 * (1 << 30), "filesystem grown to the partition"


def test_bad_input_leaves_disk_untouched(installed_os_dir, tmp_path):
    d0 = tmp_path / "disk0"
    d0.write_bytes(b"\xab" * (4 << 20))
    before = d0.read_bytes()
    cases = [
        (["-o", "debian-12", "-O", "network=static", "--nic", "mode=bridged"], "has no IP"),
        (["-o", "debian-12"], "smaller"),  # a 4 MiB disk cannot hold the image
    ]
    for args, needle in cases:
        r = osdef_try(installed_os_dir, "create", "-n", "web1.example.org", "--disk", str(d0), *args)
        assert r.returncode != 0
        errors = [ln for ln in r.stderr.splitlines() if ln.startswith("osdef create: error:")]
        assert len(errors) == 1 and needle in errors[0], r.stderr
    assert d0.read_bytes() == before
