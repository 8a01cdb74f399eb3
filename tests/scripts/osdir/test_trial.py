"""`osdef try` builds the environment Ganeti builds (compared with real captures)."""

import re
import subprocess
import sys

import pytest

from osdef.scripts import trial as t
from tests.ganeti_env import captured


def _shape(env):
    """Variable names with indices generalised: DISK_0_PATH → DISK_N_PATH."""
    return {re.sub(r"_(\d+)_", "_N_", k) for k in env}


def _trial(tmp_path, **kw):
    disks = [t.DiskSpec(tmp_path / "d0", 1 << 20), t.DiskSpec(tmp_path / "d1", 1 << 20)]
    tr = t.Trial(os_dir=tmp_path / "image", variant="debian-12", name="inst1.example.test", disks=disks,
                 nics=[{"IP": "198.51.100.11", "LINK": "gntbr0"}, {"IP": "198.51.100.12", "MODE": "routed",
                                                                    "LINK": "100"}],
                 os_params={"network": "dhcp"}, **kw)
    t.prepare_disks(tr)
    return tr


def test_create_env_has_every_variable_ganeti_passes(tmp_path):
    ours = t.ganeti_environment(_trial(tmp_path), "create")
    step, theirs = captured("create")[0]
    missing = _shape(theirs) - _shape(ours) - {"OSP_FOO", "OSP_BAR", "OSP_PRIV", "OSP_SEC"}
    assert missing == set()
    assert ours["PATH"] == "/sbin:/bin:/usr/sbin:/usr/bin"
    assert ours["DISK_0_SIZE"] == "1" and ours["DISK_0_BACKEND_TYPE"] == "file:loop"
    assert ours["NIC_0_BRIDGE"] == "gntbr0" and "NIC_1_BRIDGE" not in ours
    assert ours["OSP_NETWORK"] == "dhcp"


def test_rename_export_import_verify_shapes(tmp_path):
    tr = _trial(tmp_path, old_name="old.example.test")
    for script in ("rename", "export", "import", "verify"):
        ours = t.ganeti_environment(tr, script)
        step, theirs = captured(script)[0]
        theirs = {k: v for k, v in theirs.items() if not k.startswith("OSP_")}
        assert _shape(theirs) - _shape(ours) == set(), script
    exp = t.ganeti_environment(tr, "export")
    assert exp["EXP_SIZE_FD"] == "11" and exp["EXPORT_INDEX"] == "0" and exp["LC_ALL"] == "C"
    assert t.ganeti_environment(tr, "rename")["OLD_INSTANCE_NAME"] == "old.example.test"
    assert set(t.ganeti_environment(tr, "verify")) == {"PATH", "OS_API_VERSION", "OS_NAME", "DEBUG_LEVEL",
                                                      "OS_VARIANT", "OSP_NETWORK"}


def test_try_verify_cli(installed_os_dir):
    r = subprocess.run([sys.executable, "-m", "osdef.cli", "try", "verify", "--os-dir", str(installed_os_dir),
                        "-o", "debian-12", "-O", "network=bogus"], capture_output=True, text=True)
    assert r.returncode == 1 and "network='bogus' is invalid" in r.stderr


def test_try_create_runs_verify_first(installed_os_dir, tmp_path):
    disk = tmp_path / "disk0"
    r = subprocess.run([sys.executable, "-m", "osdef.cli", "try", "create", "--os-dir", str(installed_os_dir),
                        "-o", "debian-12", "--disk", f"{disk}:64M", "-O", "swap_size=huge"],
                       capture_output=True, text=True)
    assert r.returncode == 1
    assert "swap_size='huge' is invalid" in r.stderr and "verify failed" in r.stderr
    assert disk.stat().st_size == 64 << 20 and disk.stat().st_blocks == 0  # created sparse, untouched


def test_try_size_parsing():
    assert t.parse_size("10G") == 10 << 30 and t.parse_size("512m") == 512 << 20


def test_an_rbd_disk_is_passed_as_ganeti_passes_a_userspace_disk(tmp_path):
    """DISK_N_URI and no DISK_N_PATH (lib/backend.py OSEnvironment); EXPORT_DISK_URI / IMPORT_DISK_URI and no
    device (_GetImportExportIoCommand); compared with the captured ext-disk environments."""
    uri = "rbd:pool/web1-disk0:id=ganeti"
    spec = t.DiskSpec.parse(uri)
    assert spec.path is None and spec.location == uri
    spec.size = 3 << 30  # what prepare_disks reads through librbd (tests/ceph: osdef try on a real Ceph)
    tr = t.Trial(os_dir=tmp_path / "image", variant="debian-12", name="inst1.example.test", disks=[spec])
    create = t.ganeti_environment(tr, "create")
    assert create["DISK_0_URI"] == uri and create["DISK_0_SIZE"] == "3072" and "DISK_0_PATH" not in create
    for script, key in (("export", "EXPORT_DISK_URI"), ("import", "IMPORT_DISK_URI")):
        env = t.ganeti_environment(tr, script)
        assert env[key] == uri and not any(k.endswith(("_DEVICE", "_DISK_PATH")) for k in env), script
        theirs = {k for k in _shape(dict(captured(script)[0][1])) if not k.startswith(("OSP_", "NIC_"))}
        ours = _shape(env) | {f"{script.upper()}_DEVICE", f"{script.upper()}_DISK_PATH", "DISK_N_PATH"}
        assert theirs - ours == set(), script


def test_disk_arguments_paths_sizes_and_uris(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert t.DiskSpec.parse("disk0.img:10G") == t.DiskSpec(tmp_path / "disk0.img", 10 << 30)  # a path, not a URI
    assert t.DiskSpec.parse("RBD:pool/img").uri == "RBD:pool/img"
    with pytest.raises(t.TrialError, match="only paths and rbd:pool/image URIs"):
        t.DiskSpec.parse("gluster://host/vol/img")
