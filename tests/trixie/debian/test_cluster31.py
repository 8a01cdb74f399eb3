"""The .deb under a real two-node Ganeti 3.1 cluster in a Debian 13 root: the lifecycle.

Debian 13's Ganeti (3.1.0~rc2, with the upstream #1840 fix applied by the
fixture) runs the package's OS dir /usr/share/ganeti/os/image and its
loopfile provider.  Instance names are short, as Ganeti 3.1 passes them; the
`domain` OS parameter qualifies them.  A debian-12 guest is made on this
Debian 13 node (its appliance runs trixie's mke2fs): its data disk gets the
debian-12 feature set, e2fsck from Debian 12 (this host) accepts its
filesystems and it boots under qemu with the data disk mounted.  Then
rename (no -f in 3.1), reinstall, an ext instance, and gnt-backup export to
node2 and import there, with the guest read back (host libguestfs, read-only)
after each.  The steps share `state` and run in order.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from osdef.fsprofiles import PROFILES
from tests.cluster.ganeti import guestdisk
from tests.support.guest import host_fsck
from tests.support.qemu import Qemu
from tests.trixie.debian.conftest import NODE, NODE2, Cluster31

pytestmark = [pytest.mark.ganeti, pytest.mark.guestfs, pytest.mark.boot]
OS = "image+debian-12"
DOMAIN = "example.test"
FILE, RENAMED, IMPORTED, EXT = "web1", "web2", "web3", "ext1"
LOGIN_TIMEOUT = 300


@pytest.fixture(scope="module")
def state() -> dict:
    return {}


def disks(cluster: Cluster31, name: str, node: str = NODE) -> list[Path]:
    found = sorted(cluster.host_path(f"/srv/ganeti/file-storage/{name}", node).glob("*.disk*"),
                   key=lambda p: p.name[-1])
    assert found, f"no disk files of {name} on {node}"
    return found


def features(image: Path) -> set[str]:
    out = subprocess.run(["dumpe2fs", "-h", str(image)], capture_output=True, text=True, check=True).stdout
    return set(next(ln for ln in out.splitlines() if ln.startswith("Filesystem features:")).split(":")[1].split())


def root_partition(disk: Path) -> tuple[int, int]:
    table = json.loads(subprocess.run(["sfdisk", "-J", str(disk)], capture_output=True, text=True,
                                      check=True).stdout)["partitiontable"]
    part = max(table["partitions"], key=lambda p: p["size"])
    return part["start"] * 512, part["size"] * 512


def test_os_and_provider_are_valid_on_both_nodes(cluster31):
    out = cluster31.gnt("gnt-os", "diagnose", step="gnt-os diagnose").stdout
    image = out.split("OS: image ", 1)[1].split("\nOS: ", 1)[0]
    assert "[global status: valid]" in image
    nodes = [ln for ln in image.splitlines() if ln.strip().startswith("Node:")]
    assert len(nodes) == 2 and all("(path: /usr/share/ganeti/os/image)" in ln for ln in nodes), image
    out = cluster31.gnt("gnt-storage", "diagnose", step="gnt-storage diagnose").stdout
    assert "loopfile" in out and "/usr/share/ganeti/extstorage/loopfile" in out, out


def test_add_a_short_named_debian_12_guest_on_debian_13(cluster31, state):
    cluster31.gnt("gnt-instance", "add", "-t", "file", "--disk", "0:size=4G", "--disk", "1:size=256M",
                  "-o", OS, "-O", f"data_disks=ext4,domain={DOMAIN},serial_console=yes", "--no-start", "-n", NODE, FILE,
                  step="add (file, short name, data disk)")
    cluster31.gnt("gnt-instance", "add", "-t", "ext", "--disk", "0:size=4G,provider=loopfile",
                  "-o", OS, "-O", f"domain={DOMAIN}", "--no-start", "-n", NODE, EXT, step="add (ext)")
    state["added"] = True
    volumes = sorted(cluster31.host_path("/srv/ganeti/extstorage-data").glob("*.img"))
    assert len(volumes) == 1
    web, ext = guestdisk.read_guests([disks(cluster31, FILE)[0], volumes[0]], cluster31_settings())
    assert (web.hostname, ext.hostname) == (FILE, EXT)
    assert f"127.0.1.1\t{FILE}.{DOMAIN} {FILE}" in web.hosts.splitlines()
    assert f"127.0.1.1\t{EXT}.{DOMAIN} {EXT}" in ext.hosts.splitlines()
    assert "/data1" in web.fstab or "disk1" in web.fstab or web.fstab.count("UUID=") >= 2, web.fstab
    state["web_digest"] = web.digest
    # nothing was written into the package's OS dir (hooks are loaded without bytecode)
    assert cluster31.root.run("find", "/usr/share/ganeti/os/image", "-name", "__pycache__").stdout == ""
    cluster31.root.run("dpkg", "--verify", "osdef")


def cluster31_settings():
    from osdef.config import LibguestfsSettings

    return LibguestfsSettings(backend_settings=("force_tcg",))


def test_the_debian_13_node_gave_the_data_disk_debian_12s_features(cluster31, state, tmp_path):
    if not state.get("added"):
        pytest.skip("add failed")
    disk0, disk1 = disks(cluster31, FILE)
    made = features(disk1)  # made by trixie's mke2fs in the node's appliance
    assert made == set(PROFILES["debian-12"]["ext4"]), made
    assert not {"orphan_file", "metadata_csum_seed"} & made
    subprocess.run(["e2fsck", "-f", "-n", str(disk1)], check=True, capture_output=True)  # Debian 12's
    host_fsck(disk0, *root_partition(disk0), tmp_path)


def test_the_debian_12_guest_made_on_debian_13_boots(cluster31, state, tmp_path):
    if not state.get("added"):
        pytest.skip("add failed")
    disk0, disk1 = disks(cluster31, FILE)
    qemu = Qemu(disk0, tmp_path, ["-snapshot", "-drive", f"file={disk1},format=raw,if=virtio"])
    try:
        booted = qemu.wait_for(f"{FILE} login:".encode(), LOGIN_TIMEOUT)
    finally:
        qemu.stop()
    assert booted, qemu.tail()
    assert "emergency" not in qemu.tail().lower()


def test_rename_without_force(cluster31, state):
    if not state.get("added"):
        pytest.skip("add failed")
    cluster31.gnt("gnt-instance", "rename", FILE, RENAMED, step="rename (no -f)")
    state["renamed"] = True


def test_reinstall(cluster31, state):
    if not state.get("renamed"):
        pytest.skip("rename failed")
    cluster31.gnt("gnt-instance", "reinstall", "-f", "-O", f"data_disks=ext4,domain={DOMAIN},serial_console=yes", RENAMED,
                  step="reinstall")
    state["reinstalled"] = True


def test_export_to_node2_and_import_there(cluster31, state):
    if not state.get("reinstalled"):
        pytest.skip("reinstall failed")
    cluster31.gnt("gnt-backup", "export", "-n", NODE2, RENAMED, step="gnt-backup export (node1 → node2)")
    cluster31.gnt("gnt-backup", "import", "-n", NODE2, "--src-node", NODE2, "--src-dir",
                  f"/var/lib/ganeti/export/{RENAMED}", "-t", "file", "--net", "0:mac=generate",
                  IMPORTED, step="gnt-backup import (on node2)")
    source, imported = guestdisk.read_guests([disks(cluster31, RENAMED)[0],
                                              disks(cluster31, IMPORTED, NODE2)[0]], cluster31_settings())
    assert source.hostname == RENAMED and f"{RENAMED}.{DOMAIN} {RENAMED}" in source.hosts
    assert imported.hostname == IMPORTED and f"{IMPORTED}.{DOMAIN} {IMPORTED}" in imported.hosts
    assert imported.digest == source.digest  # all but the renamed files came across
    assert imported.image_digest == source.image_digest
    listed = cluster31.gnt("gnt-instance", "list", "--no-headers", "-o", "name,pnode,os").stdout
    assert f"{IMPORTED} {NODE2} {OS}" in " ".join(listed.split()), listed
