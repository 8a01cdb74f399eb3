"""The .deb under a real two-node Ganeti 3.1 cluster in a Debian 13 root: the lifecycle.

Debian 13's Ganeti (3.1.0~rc2, with the upstream #1840 fix applied by the
fixture) runs the package's OS dir /usr/share/ganeti/os/image and its
loopfile provider.  Instance names are short, as Ganeti 3.1 passes them; the
`domain` OS parameter qualifies them.  A debian-12 guest is made on this
Debian 13 node (its appliance runs trixie's mke2fs): its data disk gets the
debian-12 feature set, e2fsck from Debian 12 (this host) accepts its
filesystems and it boots under qemu and mounts the data disk.  Then
rename (no -f in 3.1), reinstall, an ext instance, and gnt-backup export to
node2 and import there, with the guest's files read back after each with the
host's e2fsprogs (guestext: debugfs, no mount, no appliance): host name and
/etc/hosts, the data disk in fstab, everything else unchanged by a rename and
carried over by export/import, a reinstall that lays the image down again and
keeps the data disk.  The steps share `state` and run in order.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from osdef.fsprofiles import PROFILES
from tests.support.guest import host_fsck
from tests.support.qemu import Qemu
from tests.trixie.debian.conftest import NODE, NODE2, Cluster31
from tests.trixie.debian.guestext import ExtFs, filesystem_uuid, read_guest, root_partition

pytestmark = [pytest.mark.ganeti, pytest.mark.guestfs, pytest.mark.boot]
OS = "image+debian-12"
DOMAIN = "example.test"
FILE, RENAMED, IMPORTED, EXT = "web1", "web2", "web3", "ext1"
LOGIN_TIMEOUT = 300
MARKER = "/root/osdef-trixie-marker"  # on the root before a reinstall: gone after it
DATA_MARKER = "/osdef-trixie-marker"  # on the data disk before a reinstall: kept by it and by export/import


@pytest.fixture(scope="module")
def state() -> dict:
    return {}


def disks(cluster: Cluster31, name: str, node: str = NODE) -> list[Path]:
    found = sorted(cluster.host_path(f"/srv/ganeti/file-storage/{name}", node).glob("*.disk*"),
                   key=lambda p: p.name[-1])
    assert found, f"no disk files of {name} on {node}"
    return found


def features(image: Path) -> set[str]:
    return set(superblock(image)["Filesystem features"].split())


def hosts_line(name: str) -> str:
    return f"127.0.1.1\t{name}.{DOMAIN} {name}"


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
    disk0, disk1 = disks(cluster31, FILE)
    web, ext = read_guest(disk0), read_guest(volumes[0])
    assert (web.hostname, ext.hostname) == (FILE, EXT)
    assert hosts_line(FILE) in web.hosts.splitlines() and hosts_line(EXT) in ext.hosts.splitlines()
    assert f"UUID={filesystem_uuid(disk1)}" in web.fstab, web.fstab  # the data disk, mounted by UUID
    assert web.image_digest == ext.image_digest  # both laid down from the debian-12 image
    state["web"] = web
    # nothing was written into the package's OS dir (hooks are loaded without bytecode)
    assert cluster31.root.run("find", "/usr/share/ganeti/os/image", "-name", "__pycache__").stdout == ""
    cluster31.root.run("dpkg", "--verify", "osdef")


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
    """It boots to a login prompt on copies of its disks; after a clean power-down Debian 12's
    dumpe2fs finds the data disk mounted by the guest (its mount count up by one, a new mount
    time) and cleanly unmounted."""
    if not state.get("added"):
        pytest.skip("add failed")
    copies = []
    for n, disk in enumerate(disks(cluster31, FILE)):
        copies.append(tmp_path / f"disk{n}.img")
        subprocess.run(["cp", "--sparse=always", str(disk), str(copies[-1])], check=True)
    before = superblock(copies[1])
    qemu = Qemu(copies[0], tmp_path, ["-drive", f"file={copies[1]},format=raw,if=virtio"])
    try:
        booted = qemu.wait_for(f"{FILE} login:".encode(), LOGIN_TIMEOUT)
    finally:
        qemu.powerdown()
    assert booted, qemu.tail()
    assert "emergency" not in qemu.tail().lower()
    data = superblock(copies[1])
    assert int(data["Mount count"]) == int(before["Mount count"]) + 1, (before, data)
    assert data["Last mount time"] not in ("n/a", before["Last mount time"]), (before, data)
    assert data["Filesystem state"] == "clean", data  # unmounted at the power-down


def superblock(image: Path) -> dict[str, str]:
    out = subprocess.run(["dumpe2fs", "-h", str(image)], capture_output=True, text=True, check=True).stdout
    return {k.strip(): v.strip() for k, _, v in (ln.partition(":") for ln in out.splitlines()) if v}


def test_rename_without_force(cluster31, state):
    if not state.get("added"):
        pytest.skip("add failed")
    cluster31.gnt("gnt-instance", "rename", FILE, RENAMED, step="rename (no -f)")
    disk0, disk1 = disks(cluster31, RENAMED)
    guest = read_guest(disk0)
    assert guest.hostname == RENAMED and hosts_line(RENAMED) in guest.hosts.splitlines()
    assert FILE not in guest.hosts, guest.hosts
    assert guest.digest == state["web"].digest  # nothing but the name changed
    state["renamed"] = True
    # what a reinstall must lay down anew (root) and keep (the data disk it does not format)
    ExtFs.root_of(disk0).write(MARKER, "planted before the reinstall\n")
    ExtFs(disk1).write(DATA_MARKER, "on the data disk\n")


def test_reinstall(cluster31, state):
    if not state.get("renamed"):
        pytest.skip("rename failed")
    cluster31.gnt("gnt-instance", "reinstall", "-f", "-O", f"data_disks=ext4,domain={DOMAIN},serial_console=yes",
                  RENAMED, step="reinstall")
    disk0, disk1 = disks(cluster31, RENAMED)
    guest = read_guest(disk0)
    assert guest.hostname == RENAMED and hosts_line(RENAMED) in guest.hosts.splitlines()
    assert guest.image_digest == state["web"].image_digest
    assert ExtFs.root_of(disk0).cat(MARKER) is None  # the image was laid down again
    assert ExtFs(disk1).cat(DATA_MARKER) == "on the data disk\n"  # kept, not formatted
    assert f"UUID={filesystem_uuid(disk1)}" in guest.fstab, guest.fstab
    state["reinstalled"] = True


def test_export_to_node2_and_import_there(cluster31, state):
    if not state.get("reinstalled"):
        pytest.skip("reinstall failed")
    cluster31.gnt("gnt-backup", "export", "-n", NODE2, RENAMED, step="gnt-backup export (node1 → node2)")
    cluster31.gnt("gnt-backup", "import", "-n", NODE2, "--src-node", NODE2, "--src-dir",
                  f"/var/lib/ganeti/export/{RENAMED}", "-t", "file", "--net", "0:mac=generate",
                  IMPORTED, step="gnt-backup import (on node2)")
    source_disks, imported_disks = disks(cluster31, RENAMED), disks(cluster31, IMPORTED, NODE2)
    source, imported = read_guest(source_disks[0]), read_guest(imported_disks[0])
    assert source.hostname == RENAMED and hosts_line(RENAMED) in source.hosts.splitlines()
    assert imported.hostname == IMPORTED and hosts_line(IMPORTED) in imported.hosts.splitlines()
    assert imported.digest == source.digest  # all but the renamed files came across
    assert imported.image_digest == source.image_digest
    assert ExtFs(imported_disks[1]).cat(DATA_MARKER) == "on the data disk\n"
    assert filesystem_uuid(imported_disks[1]) == filesystem_uuid(source_disks[1])
    listed = cluster31.gnt("gnt-instance", "list", "--no-headers", "-o", "name,pnode,os").stdout
    assert f"{IMPORTED} {NODE2} {OS}" in " ".join(listed.split()), listed
