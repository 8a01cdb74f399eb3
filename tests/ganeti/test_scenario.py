"""The `image` OS definition and the `loopfile` ExtStorage provider under a real Ganeti 3.0 cluster.

One cluster for the module; the steps run in order and share `state`
(reinstall comes last, so that a failing reinstall cannot take the
export/import chain down with it).  Each
step asserts on what Ganeti reports and on the guest disk itself, read
through a read-only libguestfs appliance.  A step whose prerequisite failed
is skipped, not failed again.  Features that belong to other parts of osdef
(network, DNS, time zone, root password, SSH host-key keeping) have their
own steps, skipped while their hook is not installed.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from tests.ganeti import guestdisk
from tests.ganeti.conftest import NODE, Cluster

pytestmark = [pytest.mark.ganeti, pytest.mark.guestfs]

MIB = 1 << 20
OS = "image+debian-12"
INST = "inst1.example.test"
RENAMED = "inst1b.example.test"
IMPORTED = "inst2.example.test"
EXT = "ext1.example.test"
# crypt(3) sha512 of "S3cretPw"; the secret OS parameter must never reach a log
SECRET_HASH = "$6$osdefsalt$nvMgZlvLE9Nrsu9CBLStelRivfTttdwOfHyRNR1zJhlBr/Rbqrqz71OCpY/76.yHQzpKtSCr/0tKxu0iliulz1"
STATIC_IP = "198.51.100.11"
DNS_SERVER = "198.51.100.53"
TIMEZONE = "Europe/Berlin"
COMMON = ("--no-name-check", "--no-ip-check", "-n", NODE)
EXPORT_DIR = "/var/lib/ganeti/export"


@pytest.fixture(scope="module")
def state() -> dict:
    return {}


def need(state: dict, *keys: str) -> None:
    missing = [k for k in keys if k not in state]
    if missing:
        pytest.skip(f"an earlier step did not finish ({', '.join(missing)} missing)")


def hooks_installed(cluster: Cluster) -> set[str]:
    hooks = cluster.host_path("/srv/ganeti/os/image/hooks")
    return {p.stem.split("-", 1)[1] for p in hooks.glob("*.py") if "-" in p.stem}


def file_disks(cluster: Cluster, instance: str) -> list[Path]:
    """The file-template disk files of an instance, disk 0 first."""
    disks = sorted(cluster.host_path(f"/srv/ganeti/file-storage/{instance}").glob("*.file.disk*"),
                   key=lambda p: int(p.name.rsplit("disk", 1)[1]))
    assert disks, f"no disk files for {instance}"
    return disks


def ext_disks(cluster: Cluster, instance: str) -> list[Path]:
    """The loopfile volumes of an ext instance, found by the metadata Ganeti gave to setinfo."""
    data = cluster.host_path("/srv/ganeti/extstorage-data")
    vols = [m.with_suffix(".img") for m in data.glob("*.meta")
            if m.read_text().strip() == f"originstname+{instance}"]
    vols.sort(key=lambda p: int(p.stem.rsplit("disk", 1)[1]))
    assert vols, f"no loopfile volumes for {instance} in {data}"
    return vols


def export_files(cluster: Cluster, instance: str) -> list[Path]:
    d = cluster.host_path(f"{EXPORT_DIR}/{instance}")
    assert (d / "config.ini").is_file(), f"no export of {instance} in {d}"
    return sorted((p for p in d.iterdir() if p.name != "config.ini"), key=lambda p: p.stat().st_size)


def read(cluster: Cluster, paths: list[Path], what: str) -> list[guestdisk.GuestView]:
    started = time.monotonic()
    views = guestdisk.read_guests(paths, cluster.libguestfs)
    cluster.timings.append((f"libguestfs read-only check: {what}", time.monotonic() - started, 0))
    return views


def os_log(cluster: Cluster, kind: str, instance: str) -> str:
    """The newest /var/log/ganeti/os log of create (kind add) or rename for an instance."""
    logs = sorted((cluster.log_dir / "os").glob(f"{kind}-{OS}-*{instance}*.log"), key=lambda p: p.stat().st_mtime)
    return logs[-1].read_text() if logs else ""


def check_secret_not_logged(cluster: Cluster) -> None:
    proc = subprocess.run(["grep", "-rlF", "-e", SECRET_HASH, "-e", SECRET_HASH.rsplit("$", 1)[1],
                           str(cluster.log_dir)], capture_output=True, text=True)
    assert proc.stdout == "", f"the secret root_password_hash appears in {proc.stdout.split()}"


# -- the steps ------------------------------------------------------------------------

def test_os_and_provider_diagnose(cluster):
    out = cluster.gnt("gnt-os", "diagnose", step="gnt-os diagnose").stdout
    image = out.split("OS: image ", 1)[1].split("\nOS: ", 1)[0]
    assert "[global status: valid]" in image
    assert "debian-12" in image
    out = cluster.gnt("gnt-storage", "diagnose", step="gnt-storage diagnose").stdout
    assert "Provider: loopfile" in out and "status: valid" in out and "preallocate" in out


def test_bad_os_param_rejected_by_verify(cluster):
    proc = cluster.gnt("gnt-instance", "add", "-t", "file", "--disk", "0:size=1G", "-o", OS,
                       "-O", "network=bogus", "--no-start", *COMMON, "bad.example.test",
                       step="add with a bad OS param (rejected)", check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "OS Parameters validation failed" in out, out
    assert "network" in out and "allowed: auto, static, dhcp, none" in out, out
    listed = cluster.gnt("gnt-instance", "list", "--no-headers", "-o", "name").stdout
    assert "bad.example.test" not in listed


def test_add(cluster, state):
    cluster.gnt("gnt-instance", "add", "-t", "file", "--disk", "0:size=2G", "--disk", "1:size=256M",
                "-o", OS, "-B", "memory=128M,vcpus=1",
                "--net", f"0:ip={STATIC_IP},mac=aa:00:00:00:00:11", "--net", "1:mac=aa:00:00:00:00:12",
                "-O", f"timezone={TIMEZONE}",
                "--os-parameters-private", f"dns_servers={DNS_SERVER}",
                "--os-parameters-secret", f"root_password_hash={SECRET_HASH}",
                "--no-start", *COMMON, INST, step=f"gnt-instance add -o {OS} (2 disks, 2 NICs)")
    disks = file_disks(cluster, INST)
    assert len(disks) == 2 and disks[0].stat().st_size == 2048 * MIB
    [view] = read(cluster, disks[:1], "after add")
    assert view.hostname == "inst1"
    assert INST in view.hosts
    assert view.root_uuid and view.root_uuid in view.fstab
    state["add"] = view


def needs_hook(cluster: Cluster, hook: str) -> None:
    if hook not in hooks_installed(cluster):
        pytest.skip(f"the {hook} hook is not installed (not implemented yet)")


def test_add_network_static_and_dhcp(cluster, state):
    need(state, "add")
    needs_hook(cluster, "network")
    text = "\n".join(state["add"].network_config.values())
    if STATIC_IP not in text and "no NIC information from Ganeti" in os_log(cluster, "add", INST):
        pytest.xfail("create does not hand Ganeti's NIC_* variables to the network hook yet "
                     "(its log: 'network: no NIC information from Ganeti')")
    assert STATIC_IP in text, state["add"].network_config
    assert "dhcp" in text.lower(), state["add"].network_config


def test_add_private_dns_servers(cluster, state):
    need(state, "add")
    needs_hook(cluster, "dns")
    assert DNS_SERVER in state["add"].resolv_conf, state["add"].resolv_conf


def test_add_public_timezone(cluster, state):
    need(state, "add")
    needs_hook(cluster, "timezone")
    assert TIMEZONE in state["add"].timezone


def test_add_secret_root_password(cluster, state):
    need(state, "add")
    needs_hook(cluster, "root-password")
    assert state["add"].root_shadow.split(":")[1] == SECRET_HASH


def test_secret_not_in_ganeti_logs(cluster, state):
    need(state, "add")
    check_secret_not_logged(cluster)


def test_rename(cluster, state):
    need(state, "add")
    proc = cluster.gnt("gnt-instance", "rename", "-f", "--no-name-check", "--no-ip-check", INST, RENAMED,
                       step="gnt-instance rename -f")
    [view] = read(cluster, file_disks(cluster, RENAMED)[:1], "after rename")
    state["rename"] = view  # the instance is renamed in Ganeti: later steps can go on
    # Ganeti only warns when the OS rename script fails: look at the guest
    assert view.hostname == "inst1b", (
        f"the guest was not renamed; Ganeti said:\n{proc.stdout[-1500:]}{proc.stderr[-1500:]}")
    assert RENAMED in view.hosts and INST not in view.hosts


@pytest.mark.parametrize("compression", ["none", "gzip"])
def test_export(cluster, state, compression):
    need(state, "rename")
    args = ["gnt-backup", "export", "-n", NODE]
    if compression != "none":
        args.append(f"--transport-compression={compression}")
    cluster.gnt(*args, RENAMED, step=f"gnt-backup export (transport compression {compression})")
    source = file_disks(cluster, RENAMED)
    stored = export_files(cluster, RENAMED)
    assert len(stored) == 2
    data = guestdisk.allocated_bytes(source[0])
    size0 = stored[-1].stat().st_size  # disk 0, the larger stream
    # the stream carries the data, not the 2 GiB disk
    assert size0 <= data * 1.1 + 32 * MIB, (size0, data)
    assert size0 < source[0].stat().st_size * 0.6, (size0, source[0].stat().st_size)
    assert stored[0].stat().st_size < 8 * MIB  # the empty 256 MiB data disk
    cluster.notes.append(f"export, transport compression {compression}: disk 0 stored as {size0 / MIB:.0f} MiB "
                         f"for {data / MIB:.0f} MiB allocated of a {source[0].stat().st_size / MIB:.0f} MiB disk")
    state["export"] = True


def test_import_file_template(cluster, state):
    need(state, "export")
    cluster.gnt("gnt-backup", "import", "-t", "file", "--src-node", NODE,
                "--src-dir", f"{EXPORT_DIR}/{RENAMED}",
                "--net", "0:mac=generate,ip=198.51.100.21", "--net", "1:mac=generate",
                *COMMON, IMPORTED, step="gnt-backup import -t file")
    state["import_file"] = file_disks(cluster, IMPORTED)


def test_import_ext_template(cluster, state):
    need(state, "export")
    cluster.gnt("gnt-backup", "import", "-t", "ext", "--src-node", NODE,
                "--src-dir", f"{EXPORT_DIR}/{RENAMED}",
                "--disk", "0:size=2G,provider=loopfile", "--disk", "1:size=256M,provider=loopfile",
                "--net", "0:mac=generate,ip=198.51.100.31", "--net", "1:mac=generate",
                *COMMON, EXT, step="gnt-backup import -t ext (loopfile)")
    vols = ext_disks(cluster, EXT)
    assert len(vols) == 2 and vols[0].stat().st_size == 2048 * MIB
    cluster.notes.append(f"ext import: volume of disk 0 has {guestdisk.allocated_bytes(vols[0]) / MIB:.0f} MiB "
                         "allocated (sparse file behind the loop device)")
    state["import_ext"] = vols


def test_imported_contents(cluster, state):
    need(state, "rename", "import_file", "import_ext")
    views = read(cluster, [state["import_file"][0], state["import_ext"][0]], "both imports")
    state["imported"] = views
    for view, fqdn in zip(views, (IMPORTED, EXT)):
        assert view.digest == state["rename"].digest, f"{fqdn}: filesystem contents differ from the export's source"
        assert view.listing_entries == state["rename"].listing_entries


def test_imports_renamed_automatically(cluster, state):
    need(state, "imported")
    for view, short, fqdn in zip(state["imported"], ("inst2", "ext1"), (IMPORTED, EXT)):
        assert view.hostname == short, (f"{fqdn}: the automatic rename after import did not rename the guest; "
                                        f"rename log: {os_log(cluster, 'rename', fqdn)[-600:]!r}")
        assert fqdn in view.hosts


def test_live_export_from_snapshot(cluster, state):
    need(state, "import_ext")
    cluster.gnt("gnt-instance", "start", EXT, step="gnt-instance start (fake hypervisor)")
    try:
        cluster.gnt("gnt-backup", "export", "-n", NODE, EXT, step="gnt-backup export of a running ext instance")
        status = cluster.gnt("gnt-instance", "list", "--no-headers", "-o", "status", EXT).stdout.strip()
        assert status == "running"
    finally:
        cluster.gnt("gnt-instance", "stop", EXT, check=False)
    logs = list((cluster.log_dir / "extstorage").glob("snapshot-loopfile-*"))
    assert logs, "Ganeti did not snapshot the ext disks"
    data = cluster.host_path("/srv/ganeti/extstorage-data")
    assert not list(data.glob("*.snap*")), "the snapshot volumes were not removed after the export"
    stored = export_files(cluster, EXT)
    assert stored[-1].stat().st_size <= guestdisk.allocated_bytes(state["import_ext"][0]) * 1.1 + 32 * MIB


def test_remove_instances(cluster, state):
    need(state, "import_ext")
    cluster.gnt("gnt-instance", "remove", "-f", EXT, step="gnt-instance remove -t ext")
    for vol in state["import_ext"]:
        assert not vol.exists()
        assert subprocess.run(["losetup", "-j", str(vol), "-n"], capture_output=True, text=True).stdout == ""


def test_reinstall(cluster, state, tmp_path):
    need(state, "rename")
    disk0 = file_disks(cluster, RENAMED)[0]
    # stand in for the first boot, which would have made the host keys
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "root@inst1b",
                    "-f", str(tmp_path / "key")], check=True)
    planted = {"ssh_host_ed25519_key": (tmp_path.joinpath("key").read_text(), 0o600),
               "ssh_host_ed25519_key.pub": (tmp_path.joinpath("key.pub").read_text(), 0o644)}
    started = time.monotonic()
    guestdisk.plant_files(disk0, {f"/etc/ssh/{k}": v for k, v in planted.items()}, cluster.libguestfs)
    cluster.timings.append(("libguestfs write: SSH host keys (stands in for a first boot)",
                            time.monotonic() - started, 0))

    cluster.gnt("gnt-instance", "reinstall", "-f", RENAMED, step="gnt-instance reinstall -f")
    [view] = read(cluster, [disk0], "after reinstall")
    assert view.hostname == "inst1b"
    assert view.root_uuid != state["add"].root_uuid, "reinstall did not write a fresh root filesystem"
    assert view.root_uuid in view.fstab
    state["reinstall"] = view
    state["planted_keys"] = {name: text for name, (text, _) in planted.items()}


def test_reinstall_kept_ssh_host_keys(cluster, state):
    need(state, "reinstall")
    needs_hook(cluster, "ssh-host-keys-restore")
    for name, text in state["planted_keys"].items():
        assert state["reinstall"].ssh_host_keys.get(name) == text, f"host key {name} not kept"


def test_cluster_clean(cluster):
    out = cluster.gnt("gnt-os", "diagnose", step="gnt-os diagnose (end)").stdout
    assert "OS: image [global status: valid]" in out
    proc = cluster.gnt("gnt-cluster", "verify", "--error-codes", "--ignore-errors=ENODESETUP",
                       "--ignore-errors=ENODESSH", step="gnt-cluster verify", check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    check_secret_not_logged(cluster)
