"""An `ext` instance on the `rbd` provider with access=userspace, through a real two-node Ganeti 3.0 cluster.

Ganeti's kvm hypervisor is enabled for it (--no-start; kvm_flag=disabled);
the provider's attach prints an empty line and ``kvm:rbd:<pool>/<volume>:id=
ganeti:conf=…``, so the OS scripts get DISK_0_URI / EXPORT_DISK_URI /
IMPORT_DISK_URI and no path.  In order: add on node1, Ganeti's own kvm opens
the URI (started paused), a live export to node2 from the provider's
snapshot, import onto node2 (Ganeti runs rename after it), reinstall; no log
of either node holds a cephx key.  Oracles: rbd(8) (du, info, snap ls,
export), util-linux and e2fsprogs on its raw copies (sfdisk, dumpe2fs, e2fsck, debugfs), /proc (kvm's
command line).
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from tests.ceph.ganeti.conftest import NODE, NODE2
from tests.support.ceph import USER, ext_blocks, ext_files, fsck_clean, last_partition, raw_copy
from tests.support.steps import need

pytestmark = [pytest.mark.ganeti, pytest.mark.guestfs]
MiB = 1 << 20
INST = "rbdvm1.example.test"
IMPORTED = "rbdvm2.example.test"
DISK = "0:size=3G,provider=rbd,access=userspace"
COMMON = ("--no-name-check", "--no-ip-check")
RENAMED_FILES = ("etc/hostname", "etc/hosts", "etc/mailname")  # what Ganeti's rename after the import rewrites


@pytest.fixture(scope="module")
def state() -> dict:
    return {}


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
    raw = raw_copy(ceph, volume, tmp_path / "original.raw")
    start = last_partition(raw)
    used = ext_blocks(raw, start).used_bytes
    state["files"] = ext_files(raw, start, tmp_path / "original")
    raw.unlink()
    print(f"export of the 3 GiB RBD volume: {sent >> 20} MiB; its root filesystem uses {used >> 20} MiB")
    assert sent <= used + start + 8 * MiB  # the guest's used blocks + the table, BIOS boot area, framing
    rbd_cluster.gnt("gnt-instance", "shutdown", "--timeout=0", INST)
    state["exported"] = sent


def test_import_onto_node2_is_thin_and_file_identical(rbd_cluster, ceph, state, tmp_path):
    """Imported on node2 (librbd over the cluster's LAN), renamed by Ganeti: thin, e2fsck-clean, and every
    file the original's but those rename rewrites (read by debugfs from rbd(8)'s copy)."""
    need(state, "exported", "files")
    rbd_cluster.gnt("gnt-backup", "import", "-n", NODE2, "--src-node", NODE2, "--src-dir",
                    f"/var/lib/ganeti/export/{INST}", "-t", "ext", "--disk", DISK, "-H", "kvm",
                    "--net", "0:ip=198.51.100.41", *COMMON, IMPORTED, step="gnt-backup import onto node2 (+ rename)")
    copy = volume_of(rbd_cluster, IMPORTED)
    os_logs = rbd_cluster.node_path(NODE2, "/var/log/ganeti/os")
    assert "every record CRC, the stream digest and the trailer verified" in newest(os_logs, f"import-*{IMPORTED}*.log")
    assert f"rename {INST} → {IMPORTED}" in newest(os_logs, f"rename-*{IMPORTED}*.log")
    du = ceph.du(copy)
    print(f"imported volume: rbd du {du >> 20} MiB of 3072 MiB for {state['exported'] >> 20} MiB sent")
    assert du <= state["exported"] + 256 * MiB

    raw = raw_copy(ceph, copy, tmp_path / "copy.raw")
    start = last_partition(raw)
    fsck_clean(raw, start)
    files = ext_files(raw, start, tmp_path / "copy")
    original = state["files"]
    changed = {p for p in original.keys() | files.keys() if original.get(p) != files.get(p)}
    assert changed <= set(RENAMED_FILES) and "etc/hostname" in changed, changed
    assert subprocess.run(["debugfs", "-R", "cat /etc/hostname", f"{raw}?offset={start}"], capture_output=True,
                          text=True, check=True).stdout == "rbdvm2\n"


def test_reinstall(rbd_cluster, state):
    need(state, "volume")
    rbd_cluster.gnt("gnt-instance", "reinstall", "-f", INST, step="gnt-instance reinstall (rbd)")
    log = newest(rbd_cluster.node_path(NODE, "/var/log/ganeti/os"), f"add-*{INST}*.log")
    assert f"reinstall {INST}: variant debian-12" in log and f"done: {INST} on {state['uri']} " in log, log[-2000:]


def test_no_ganeti_log_holds_a_cephx_key(rbd_cluster, ceph):
    keys = [ceph.key("admin"), ceph.key(USER)]
    leaks = [str(p) for p in rbd_cluster.logs() for key in keys if key.encode() in p.read_bytes()]
    assert not leaks, leaks
