"""A debian-12 guest on RBD images, end to end through the installed scripts with Ganeti's environment.

The disks are URIs only (DISK_N_URI, EXPORT_DISK_URI, IMPORT_DISK_URI; no
path), as Ganeti passes them for access=userspace.  In order, sharing one
module's state: create (disk 0 an image full of old random data, disk 1 a
data disk formatted by data_disks=ext4, a static NIC) → rename → export →
import onto another image full of old data → the two read back in one
appliance → the imported copy boots under qemu through its rbd driver.

Oracles: util-linux and e2fsprogs on raw copies made by `rbd export` (the
table, the filesystem's used blocks, e2fsck), `rbd du` (what an image
allocates), libguestfs (the guest's files), qemu's own librbd and the
guest's kernel (the boot).
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.boot.network.dhcpnet import stop
from tests.support.ceph import ext_blocks, ext_files, fsck_clean, ganeti_uri_env, last_partition, raw_copy
from tests.support.qemu import getty_text, report_unit
from tests.support.stream import run_script

pytestmark = [pytest.mark.guestfs, pytest.mark.boot]
MiB = 1 << 20
DISK0_MIB = 3072
DISK1_MIB = 256
OLD_NAME = "rbd1.example.test"
NEW_NAME = "rbd2.example.test"
NIC = {"NIC_COUNT": "1", "NIC_0_MAC": "aa:00:00:24:00:01", "NIC_0_IP": "198.51.100.24", "NIC_0_MODE": "bridged",
       "NIC_0_LINK": "gntbr0", "NIC_0_BRIDGE": "gntbr0", "NIC_0_NETWORK_NAME": "pub",
       "NIC_0_NETWORK_SUBNET": "198.51.100.0/24", "NIC_0_NETWORK_GATEWAY": "198.51.100.1"}


@dataclass
class Guest:
    """What the module's steps made and measured."""

    images: dict[str, str]  # role → image name
    uris: dict[str, str]
    work: Path
    outputs: list[str] = field(default_factory=list)  # every script's stderr (checked for secrets)
    stream: Path | None = None
    sent: int = 0


def _fill_old_data(ceph, image: str, size_mib: int) -> None:
    """Every byte of the image random: what an earlier volume left (64 MiB of random bytes, repeated)."""
    import rados
    import rbd

    block = os.urandom(64 * MiB)
    with rados.Rados(conffile=str(ceph.conf)) as cluster, cluster.open_ioctx(ceph.pool) as ioctx, \
            rbd.Image(ioctx, image) as img:
        for offset in range(0, size_mib * MiB, len(block)):
            img.write(block[:size_mib * MiB - offset], offset)


@pytest.fixture(scope="module")
def guest(ceph, tmp_path_factory) -> Guest:
    roles = {"disk0": DISK0_MIB, "disk1": DISK1_MIB, "copy": DISK0_MIB}
    names = {role: f"guest-{role}-{os.getpid()}" for role in roles}
    for role, size in roles.items():
        ceph.rbd("create", "--size", f"{size}M", f"{ceph.pool}/{names[role]}")
    _fill_old_data(ceph, names["disk0"], DISK0_MIB)
    _fill_old_data(ceph, names["copy"], DISK0_MIB)
    uris = {role: f"rbd:{ceph.pool}/{name}" for role, name in names.items()}
    return Guest(names, uris, tmp_path_factory.mktemp("rbd-guest"))


def _script(os_dir: Path, script: str, env: dict[str, str], guest: Guest, stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, timeout: float = 900) -> subprocess.CompletedProcess:
    proc = subprocess.run([str(os_dir / script)], cwd=os_dir, env=env, stdin=stdin, stdout=stdout,
                          stderr=subprocess.PIPE, text=True, timeout=timeout)
    guest.outputs.append(proc.stderr)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    return proc


def test_create_on_rbd_uris(guest, rbd_os_dir, ceph):
    env = ganeti_uri_env("create", [(guest.uris["disk0"], DISK0_MIB), (guest.uris["disk1"], DISK1_MIB)],
                         name=OLD_NAME, OSP_DATA_DISKS="ext4", OSP_NETWORK="static", OSP_SERIAL_CONSOLE="yes",
                         **NIC)
    started = time.monotonic()
    proc = _script(rbd_os_dir, "create", env, guest)
    print(f"create on RBD: {time.monotonic() - started:.1f} s\n{proc.stderr[-1500:]}")
    assert f"done: {OLD_NAME} on rbd:{ceph.pool}/{guest.images['disk0']}" in proc.stderr


def test_rename_on_rbd_uris(guest, rbd_os_dir):
    env = ganeti_uri_env("rename", [(guest.uris["disk0"], DISK0_MIB), (guest.uris["disk1"], DISK1_MIB)],
                         name=NEW_NAME, OLD_INSTANCE_NAME=OLD_NAME, **NIC)
    proc = _script(rbd_os_dir, "rename", env, guest)
    assert f"rename {OLD_NAME} → {NEW_NAME}" in proc.stderr


def _scribble_free_space(ceph, image: str, work: Path, limit: int = 384 * MiB) -> int:
    """Random bytes into free blocks of the root filesystem (what deleted files leave); bitmaps untouched."""
    import rados
    import rbd

    raw = raw_copy(ceph, image, work / "before.raw")
    start = last_partition(raw)
    fs = ext_blocks(raw, start)
    raw.unlink()
    written = 0
    with rados.Rados(conffile=str(ceph.conf)) as cluster, cluster.open_ioctx(ceph.pool) as ioctx, \
            rbd.Image(ioctx, image) as img:
        for first, last in fs.free:
            length = min((last - first + 1) * fs.size, limit - written, 16 * MiB)
            if length <= 0:
                break
            img.write(os.urandom(length), start + first * fs.size)
            written += length
    return written


def test_export_sends_what_the_filesystem_uses(guest, rbd_os_dir, ceph):
    """EXPORT_DISK_URI only, free space full of old data: the exact size announced, no more than the used
    blocks plus metadata, the same filesystem-aware plan as for the same bytes in a file (the block-device
    rules apply unchanged)."""
    from osdef.disk.device import open_disk
    from osdef.errors import StreamError
    from osdef.stream.content import plan_content

    garbage = _scribble_free_space(ceph, guest.images["disk0"], guest.work)
    env = ganeti_uri_env("export", [(guest.uris["disk0"], DISK0_MIB)], name=NEW_NAME)
    guest.stream = guest.work / "disk0.stream"
    started = time.monotonic()
    with open(guest.stream, "wb") as out:
        rc, err, announced = run_script(rbd_os_dir, "export", env, subprocess.DEVNULL, out)
    seconds = time.monotonic() - started
    guest.outputs.append(err)
    assert rc == 0, err
    guest.sent = guest.stream.stat().st_size
    assert announced == b"%d\n" % guest.sent
    assert "sent at block level" not in err, err  # ext4 root, BIOS boot partition: every map usable

    raw = raw_copy(ceph, guest.images["disk0"], guest.work / "disk0.raw")
    start = last_partition(raw)
    used = ext_blocks(raw, start).used_bytes
    print(f"export of a {DISK0_MIB} MiB RBD disk with {garbage >> 20} MiB of old data in its free space: "
          f"{guest.sent >> 20} MiB sent in {seconds:.1f} s; the root filesystem uses {used >> 20} MiB (dumpe2fs)")
    assert guest.sent <= used + start + 8 * MiB  # + the table and BIOS boot partition, the stream's framing

    warnings: list[str] = []
    with open_disk(guest.uris["disk0"], write=False, error=StreamError) as rbd_disk, \
            open_disk(raw, write=False, error=StreamError) as file_disk:
        assert plan_content(rbd_disk, warnings.append) == plan_content(file_disk, warnings.append)
    assert not warnings, warnings


def test_import_leaves_the_image_thin(guest, rbd_os_dir, ceph):
    assert guest.stream is not None, "the export step did not run"
    env = ganeti_uri_env("import", [(guest.uris["copy"], DISK0_MIB)], name=NEW_NAME)
    with open(guest.stream, "rb") as stream:
        rc, err, announced = run_script(rbd_os_dir, "import", env, stream, subprocess.DEVNULL)
    guest.outputs.append(err)
    assert rc == 0, err
    assert announced == b"%d\n" % guest.sent
    assert "every record CRC, the stream digest and the trailer verified" in err
    used = ceph.du(guest.images["copy"])
    print(f"import onto an RBD image full of old data: rbd du {used >> 20} MiB for {guest.sent >> 20} MiB sent")
    assert used <= guest.sent + 256 * MiB < DISK0_MIB * MiB // 2  # the data (object-granular), not the disk


REPORT = """#!/bin/sh
# osdef test (tests/ceph/osdir/test_rbd_guest.py): what the guest booted from RBD has, on the console
systemctl is-system-running --wait >/dev/null
echo "OSDEF-RBD-REPORT"
echo "hostname: $(hostname)"
ip -o -4 addr show
findmnt -n -o SOURCE,FSTYPE /srv/disk1
echo "OSDEF-RBD-REPORT-END"
"""
REPORT_UNIT = report_unit("report the guest's state on the serial console", "/usr/local/sbin/osdef-rbd-report")


def _free_blocks_are_zero(raw: Path, offset: int, fs) -> None:
    """The old data of the original's free blocks did not travel: the copy's free blocks read as zeros."""
    with open(raw, "rb") as f:
        for first, last in fs.free:
            for block in range(first, last + 1, 4096):
                n = min(last + 1 - block, 4096) * fs.size
                assert not os.pread(f.fileno(), n, offset + block * fs.size).strip(b"\0"), f"free block {block}"


def test_the_imported_copy_is_file_identical(guest, ceph, ceph_site_config):
    """Every file of the root filesystem is the renamed original's (debugfs), e2fsck finds it clean, the
    same blocks are free (dumpe2fs) and read as zeros there (not the old data); in one appliance over
    libguestfs' rbd protocol: host name, NIC and data disk as create and rename set them."""
    from osdef import config as siteconfig
    from osdef.guest.session import GuestSession

    original = guest.work / "disk0.raw"
    copy = raw_copy(ceph, guest.images["copy"], guest.work / "copy.raw")
    start = last_partition(original)
    assert last_partition(copy) == start
    fs = ext_blocks(original, start)
    assert ext_blocks(copy, start) == fs
    _free_blocks_are_zero(copy, start, fs)
    fsck_clean(copy, start)
    files = ext_files(original, start, guest.work / "original-files")
    assert files and ext_files(copy, start, guest.work / "copy-files") == files
    for raw in (original, copy):
        raw.unlink()

    site = siteconfig.load_file(ceph_site_config)
    uris = [f"{guest.uris[role]}:conf={site.ceph.conf}" for role in ("copy", "disk1")]
    with GuestSession(uris, site.libguestfs) as s:
        assert s.fs_type("/dev/sdb") == "ext4"
        data_uuid = s.g.vfs_uuid("/dev/sdb")
        s.mount("/dev/sda2")
        assert s.read_text("/etc/hostname") == "rbd2\n"
        assert NEW_NAME in s.read_text("/etc/hosts")
        assert f"UUID={data_uuid}" in s.read_text("/etc/fstab")
        assert "198.51.100.24" in s.sh("cat /etc/network/interfaces /etc/network/interfaces.d/* 2>/dev/null",
                                       check=False)
        # the boot below reports its state on the console
        s.write_text("/usr/local/sbin/osdef-rbd-report", REPORT, mode=0o755)
        s.write_text("/etc/systemd/system/osdef-rbd-report.service", REPORT_UNIT)
        s.symlink("/etc/systemd/system/osdef-rbd-report.service",
                  "/etc/systemd/system/multi-user.target.wants/osdef-rbd-report.service")


BOOT_TIMEOUT = 300  # s; ~60-90 s on an idle 2-core machine under TCG


def test_the_imported_copy_boots_through_qemus_rbd_driver(guest, ceph, tmp_path):
    serial = tmp_path / "serial.log"
    drives = []
    for role in ("copy", "disk1"):  # qemu's own librbd, the cluster's conf (monitors, keyring)
        drives += ["-drive", f"file={guest.uris[role]}:id=admin:conf={ceph.conf},format=raw,if=virtio,cache=writeback"]
    qemu = subprocess.Popen(
        ["qemu-system-x86_64", "-machine", "accel=tcg", "-cpu", "max", "-m", "1024", "-display", "none",
         "-serial", f"file:{serial}", *drives, "-netdev", "user,id=n0,restrict=on",
         "-device", f"virtio-net-pci,netdev=n0,mac={NIC['NIC_0_MAC']}"],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    started = time.monotonic()
    text = ""
    try:
        while time.monotonic() - started < BOOT_TIMEOUT and qemu.poll() is None:
            text = serial.read_bytes().decode(errors="replace") if serial.exists() else ""
            if "OSDEF-RBD-REPORT-END" in text and " login:" in getty_text(text):
                break
            time.sleep(2)
    finally:
        stop(qemu)
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", text).replace("\r", "")
    print(f"boot from RBD: {time.monotonic() - started:.0f} s")
    assert "rbd2 login:" in getty_text(text), f"no login prompt; qemu: {qemu.stdout.read()[-500:]!r}; console ends:\n{text[-2000:]}"
    report = text.split("OSDEF-RBD-REPORT\n", 1)[-1].split("OSDEF-RBD-REPORT-END", 1)[0]
    assert "hostname: rbd2" in report, report
    assert "198.51.100.24/24" in report, report
    assert re.search(r"/dev/vdb\s+ext4", report), report


def test_no_output_shows_a_cephx_key(guest, ceph):
    key = ceph.key()
    assert guest.outputs and not any(key in out for out in guest.outputs)
