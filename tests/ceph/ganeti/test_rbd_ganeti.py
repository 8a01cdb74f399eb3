"""An `ext` instance on the `rbd` provider with access=userspace, through a real two-node Ganeti 3.0 cluster.

Ganeti's kvm hypervisor is enabled for it (--no-start; kvm_flag=disabled);
the provider's attach prints an empty line and ``kvm:rbd:<pool>/<volume>:id=
ganeti:conf=…``, so the OS scripts get DISK_0_URI / EXPORT_DISK_URI /
IMPORT_DISK_URI and no path.  In order: add on node1, Ganeti's own kvm opens
the URI (started paused), a live export to node2 from the provider's
snapshot, import onto node2 (Ganeti runs rename after it), reinstall; no log
of either node holds a cephx key.  Oracles: rbd(8) (du, info, snap ls,
export), dumpe2fs, libguestfs (the files), /proc (kvm's command line).
"""

from __future__ import annotations

import json
import re
import subprocess
import tempfile
from pathlib import Path

import pytest

from tests.ceph.ganeti.conftest import NODE, NODE2
from tests.support.ceph import USER

pytestmark = [pytest.mark.ganeti, pytest.mark.guestfs]
MiB = 1 << 20
INST = "rbdvm1.example.test"
IMPORTED = "rbdvm2.example.test"
DISK = "0:size=3G,provider=rbd,access=userspace"
COMMON = ("--no-name-check", "--no-ip-check")
RENAMED_FILES = ("/etc/hostname", "/etc/hosts", "/etc/mailname")


@pytest.fixture(scope="module")
def state() -> dict:
    return {}


def need(state: dict, *keys: str) -> None:
    missing = [k for k in keys if k not in state]
    if missing:
        pytest.skip(f"an earlier step did not finish ({', '.join(missing)} missing)")


def volume_of(cluster, instance: str) -> str:
    info = cluster.gnt("gnt-instance", "info", instance).stdout
    return re.search(r"logical_id: \['rbd', '([^']+)'\]", info).group(1)


def newest(directory: Path, pattern: str) -> str:
    return max(directory.glob(pattern), key=lambda p: p.stat().st_mtime).read_text()


def test_add_an_ext_instance_with_userspace_access(rbd_cluster, ceph, state):
    rbd_cluster.gnt("gnt-instance", "add", "-t", "ext", "--disk", DISK, "-H", "kvm", "-B", "memory=256M",
                    "-o", "image+debian-12", "--no-start", "--net", "0:ip=198.51.100.40", *COMMON, "-n", NODE, INST,
                    step="gnt-instance add -t ext (rbd, access=userspace, kvm)")
    volume = volume_of(rbd_cluster, INST)
    log = newest(rbd_cluster.node_path(NODE, "/var/log/ganeti/os"), f"add-*{INST}*.log")
    uri = f"rbd:{ceph.pool}/{volume}:id={USER}:conf={ceph.conf}"
    assert f"done: {INST} on {uri} " in log, log[-2000:]  # DISK_0_URI, as the provider's attach printed it
    assert json.loads(ceph.rbd("info", "--format", "json", f"{ceph.pool}/{volume}"))["size"] == 3 << 30
    assert ceph.rbd("image-meta", "get", f"{ceph.pool}/{volume}", "ganeti.metadata").strip() == f"originstname+{INST}"
    state["volume"], state["uri"] = volume, uri


def test_ganetis_kvm_opens_the_uri(rbd_cluster, state):
    """Started paused (the guest never runs): kvm's -drive is the provider's URI, and qemu opened it."""
    need(state, "volume")
    rbd_cluster.gnt("gnt-instance", "startup", "--paused", INST, step="gnt-instance startup --paused (kvm)")
    cmdlines = []
    for proc in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            args = proc.read_bytes().split(b"\0")
        except OSError:
            continue
        if b"-name" in args and INST.encode() in args:
            cmdlines.append([a.decode() for a in args])
    assert cmdlines, "no kvm process for the instance"
    assert any(a.startswith(f"file={state['uri']},format=raw") for a in cmdlines[0]), cmdlines[0]
    state["running"] = True


def _used_bytes(ceph, volume: str, work: Path) -> tuple[int, int]:
    """(root partition start, bytes its ext4 uses) of a volume, by sfdisk and dumpe2fs on rbd(8)'s copy."""
    raw = work / f"{volume}.raw"
    ceph.rbd("export", f"{ceph.pool}/{volume}", str(raw))
    table = json.loads(subprocess.run(["sfdisk", "--json", str(raw)], capture_output=True, text=True,
                                      check=True).stdout)["partitiontable"]
    start = max(p["start"] for p in table["partitions"]) * 512
    out = subprocess.run(["dumpe2fs", "-h", f"{raw}?offset={start}"], capture_output=True, text=True,
                         check=True).stdout
    f = dict(line.split(":", 1) for line in out.splitlines() if ":" in line)
    used = (int(f["Block count"]) - int(f["Free blocks"])) * int(f["Block size"])
    raw.unlink()
    return start, used


def test_live_export_to_node2_reads_the_providers_snapshot(rbd_cluster, ceph, state, tmp_path):
    need(state, "running")
    out = rbd_cluster.gnt("gnt-backup", "export", "--noshutdown", "-n", NODE2, INST,
                          step="gnt-backup export --noshutdown (snapshot) to node2").stdout
    assert "Creating a snapshot of disk/0" in out and "Removing snapshot of disk/0" in out, out
    volume = state["volume"]
    es_logs = rbd_cluster.node_path(NODE, "/var/log/ganeti/extstorage")
    assert f"@{volume}.snap (volume {volume}.snap)" in newest(es_logs, f"snapshot-rbd-{volume}-*.log")
    assert "removed the snapshot" in newest(es_logs, f"remove-rbd-{volume}.snap-*.log")
    assert not ceph.rbd("snap", "ls", f"{ceph.pool}/{volume}").strip()
    export_log = newest(rbd_cluster.node_path(NODE, "/var/log/ganeti/os"), f"export-*{INST}-disk0-*.log")
    assert "block level" not in export_log, export_log
    sent = int(re.search(r"exported disk 0: (\d+) bytes written", export_log).group(1))
    stored = [p for p in rbd_cluster.node_path(NODE2, f"/var/lib/ganeti/export/{INST}").iterdir()
              if p.name != "config.ini"]
    assert len(stored) == 1 and stored[0].stat().st_size == sent
    start, used = _used_bytes(ceph, volume, tmp_path)
    print(f"export of the 3 GiB RBD volume: {sent >> 20} MiB; its root filesystem uses {used >> 20} MiB")
    assert sent <= used + start + 8 * MiB  # the guest's used blocks + the table, BIOS boot area, framing
    rbd_cluster.gnt("gnt-instance", "shutdown", "--timeout=0", INST)
    state["exported"] = sent


def test_import_onto_node2_is_thin_and_file_identical(rbd_cluster, ceph, ceph_site_config, state):
    need(state, "exported")
    rbd_cluster.gnt("gnt-backup", "import", "-n", NODE2, "--src-node", NODE2, "--src-dir",
                    f"/var/lib/ganeti/export/{INST}", "-t", "ext", "--disk", DISK, "-H", "kvm",
                    "--net", "0:ip=198.51.100.41", *COMMON, IMPORTED, step="gnt-backup import onto node2 (+ rename)")
    copy = volume_of(rbd_cluster, IMPORTED)
    os_logs = rbd_cluster.node_path(NODE2, "/var/log/ganeti/os")
    assert "every record CRC, the stream digest and the trailer verified" in newest(os_logs, f"import-*{IMPORTED}*.log")
    assert f"rename {INST} → {IMPORTED}" in newest(os_logs, f"rename-*{IMPORTED}*.log")
    du = json.loads(ceph.rbd("du", "--format", "json", f"{ceph.pool}/{copy}"))["images"][0]["used_size"]
    print(f"imported volume: rbd du {du >> 20} MiB of 3072 MiB for {state['exported'] >> 20} MiB sent")
    assert du <= state["exported"] + 256 * MiB

    from osdef import config as siteconfig
    from osdef.guest.session import GuestSession

    site = siteconfig.load_file(ceph_site_config)
    uris = [f"rbd:{ceph.pool}/{v}:conf={ceph.conf}" for v in (state["volume"], copy)]
    sums = []
    with GuestSession(uris, site.libguestfs, readonly=True) as s:
        for device in ("/dev/sda2", "/dev/sdb2"):
            s.g.mount_ro(device, "/")
            with tempfile.NamedTemporaryFile() as f:
                s.g.checksums_out("sha256", "/", f.name)
                sums.append({line.split("  ", 1)[1]: line.split("  ", 1)[0]
                             for line in Path(f.name).read_text().splitlines()})
            if device == "/dev/sdb2":
                hostname = s.read_text("/etc/hostname")
            s.g.umount_all()
    original, imported = sums
    changed = {p for p in original.keys() | imported.keys() if original.get(p) != imported.get(p)}
    assert changed == {f"./{p.lstrip('/')}" for p in RENAMED_FILES} & changed and changed, changed
    assert hostname == "rbdvm2\n"


def test_reinstall(rbd_cluster, state):
    need(state, "volume")
    rbd_cluster.gnt("gnt-instance", "reinstall", "-f", INST, step="gnt-instance reinstall (rbd)")
    log = newest(rbd_cluster.node_path(NODE, "/var/log/ganeti/os"), f"add-*{INST}*.log")
    assert f"reinstall {INST}: variant debian-12" in log and f"done: {INST} on {state['uri']} " in log, log[-2000:]


def test_no_ganeti_log_holds_a_cephx_key(rbd_cluster, ceph):
    keys = [ceph.key("admin"), ceph.key(USER)]
    leaks = [str(p) for p in rbd_cluster.logs() for key in keys if key.encode() in p.read_bytes()]
    assert not leaks, leaks
