"""Create and rename through a real appliance, on sparse files and a loop device; read back through libguestfs."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import zstandard

from osdef.config import SiteConfig
from osdef.errors import GuestError
from osdef.create.steps import load_steps
from osdef.create.pipeline import ImageData, install_root, rename
from osdef.create.partitioning import GPT_TYPES
from osdef.create.plan import CreatePlan
from osdef.create.request import Request
from osdef.ganeti.environment import Instance
from osdef.ganeti.params import OsParams
from osdef.guest.distro import read_facts
from osdef.guest.rename import rename_guest

from tests.pure.guest.test_pure import MY_STEPS, in_order
from tests.support.guest import FS_IMAGE_SIZE, MiB, allocated, host_fsck, read_back, sparse_file

pytestmark = pytest.mark.guestfs
DISK = 1024 * MiB
SSH_UNIT = "/etc/systemd/system/osdef-ssh-host-keys.service"
NO_FSCK = "checked when the image was built, not mounted since; no e2fsck"


def _create(disk, stream, size, fmt, settings, logs, site_hooks_dir=None, **kw):
    kw.setdefault("hostname", "web1.example.org")
    kw.setdefault("boot", "none")
    plan = CreatePlan(layout=fmt, steps=load_steps(site_dir=site_hooks_dir), **kw)
    return install_root(disk, ImageData(stream, size), plan, settings, logs.append)


def _rename_request(disk, old, new, settings):
    """What requests.load("rename", …) gives the pipeline, for a disk and the appliance settings."""
    instance = Instance(api_version=20, os_name="image", variant="default", debug_level=0, name=new, old_name=old)
    return Request("rename", Path("/nonexistent"), {}, SiteConfig(libguestfs=settings), instance, None,
                   OsParams.defaults(), (str(disk),))


def _root_partition_reaches_the_end(view, table):
    last = max(view.partitions, key=lambda p: p["part_start"])
    slack = view.disk_bytes - (last["part_end"] + 1)
    assert 0 <= slack <= (MiB + 34 * 512 if table == "gpt" else MiB), slack
    return last


def _fs_fills(view, part):
    # ext4 reserves some metadata: the fs must be close to the partition, far above the image's 64 MiB
    assert view.root_fs_bytes > 0.9 * part["part_size"], (view.root_fs_bytes, part["part_size"])


def _check_customized(view, fqdn="web1.example.org"):
    short = fqdn.split(".")[0]
    assert view.files["/etc/hostname"] == f"{short}\n"
    hosts = view.files["/etc/hosts"]
    assert f"127.0.1.1\t{fqdn} {short}\n" in hosts and "127.0.0.1\tlocalhost" in hosts
    assert "image-host" not in hosts and hosts.count("127.0.1.1") == 1
    assert view.files["/etc/mailname"] == f"{fqdn}\n"
    fstab = view.files["/etc/fstab"]
    assert f"UUID={view.root_uuid}\t/\t{view.root_fs_type}\t" in fstab
    assert "LABEL=cloudimg-rootfs" not in fstab
    assert view.files["/etc/machine-id"] == ""


# -- 1. filesystem image on a sparse file (gpt), then rename: 3 launches -------------------------

@pytest.fixture(scope="module")
def fs_disk(tmp_path_factory, guest_images, settings):
    tmp = tmp_path_factory.mktemp("fs-disk")
    disk = sparse_file(tmp / "disk0.img", DISK)
    site = tmp / "hooks.d"
    site.mkdir()
    (site / "10-marker.py").write_text(
        "def run(ctx):\n    ctx.guest.write_text('/etc/osdef-site-py', ctx.plan.hostname + '\\n')\n")
    (site / "20-shell").write_text(
        "#!/bin/sh\necho \"$OSDEF_HOSTNAME $OSDEF_SERIAL_CONSOLE\" > /etc/osdef-site-sh\necho hello from the guest\n")
    (site / "20-shell").chmod(0o755)
    logs: list[str] = []
    with open(guest_images.fs_image, "rb") as stream:
        report = _create(disk, stream, FS_IMAGE_SIZE, "fs-image", settings, logs,
                         table="gpt", serial_console=True, site_hooks_dir=site)
    return disk, report, logs


def test_filesystem_image_create_then_rename(fs_disk, settings):
    disk, report, logs = fs_disk
    assert report.layout == "fs-image" and report.bytes_read == FS_IMAGE_SIZE
    assert report.bytes_written < FS_IMAGE_SIZE  # zero blocks were skipped
    assert in_order(report.steps_run, MY_STEPS)
    assert report.steps_run[-3:] == ["bootloader", "site:10-marker.py", "site:20-shell"]
    assert any("20-shell: hello from the guest" in line for line in logs)
    # mkfs -d made the image and nothing mounted it since: no second e2fsck per create…
    assert any(NO_FSCK in line for line in logs), logs
    assert disk.stat().st_size == DISK and allocated(disk) < 40 * MiB  # still sparse

    rename_logs: list[str] = []
    rename(_rename_request(disk, "web1.example.org", "db2.example.com", settings), rename_logs.append)
    # no warning: create had set the hostname the rename expects
    assert not any("warning" in line for line in rename_logs), rename_logs

    view = read_back(disk, settings, paths=(
        "/etc/ssh/ssh_host_ed25519_key", "/etc/ssh/ssh_host_rsa_key", SSH_UNIT,
        f"/etc/systemd/system/ssh.service.wants/{SSH_UNIT.rsplit('/', 1)[1]}",
        "/etc/systemd/system/getty.target.wants/serial-getty@ttyS0.service",
        "/var/lib/systemd/random-seed", "/etc/osdef-site-py", "/etc/osdef-site-sh"))
    _check_customized(view, "db2.example.com")
    assert view.root_uuid == report.root.uuid and view.root_device == "/dev/sda2"
    assert view.table == "gpt"
    last = _root_partition_reaches_the_end(view, "gpt")
    assert [p["part_num"] for p in view.partitions] == [1, 2]
    assert view.partitions[0]["part_start"] == MiB and view.partitions[0]["part_size"] == MiB
    _fs_fills(view, last)
    assert view.exists == {
        "/etc/ssh/ssh_host_ed25519_key": False, "/etc/ssh/ssh_host_rsa_key": False, SSH_UNIT: True,
        f"/etc/systemd/system/ssh.service.wants/{SSH_UNIT.rsplit('/', 1)[1]}": True,
        "/etc/systemd/system/getty.target.wants/serial-getty@ttyS0.service": True,
        "/var/lib/systemd/random-seed": False, "/etc/osdef-site-py": True, "/etc/osdef-site-sh": True,
    }
    # as `systemctl enable serial-getty@ttyS0` links it: the instance's name, the template's file
    assert view.links["/etc/systemd/system/getty.target.wants/serial-getty@ttyS0.service"].endswith(
        "/systemd/system/serial-getty@.service")
    assert "console=ttyS0,115200" in view.files["/etc/default/grub"]
    assert allocated(disk) < 40 * MiB
    # …and the new UUID, the grown filesystem and both customizations left it consistent
    host_fsck(disk, last["part_start"], last["part_size"], disk.parent)


def test_bios_boot_partition_type(fs_disk):
    from osdef.create.partitioning import read_table
    # partition types read on the host (sfdisk, no mount): EF02 first
    disk = fs_disk[0]
    import subprocess
    out = subprocess.run(["sfdisk", "--part-type", str(disk), "1"], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out.upper() == GPT_TYPES["bios"]
    assert read_table(disk)[2].start == 2 * MiB


# -- 2. filesystem image onto a reused loop device (msdos): 2 launches ----------------------------

@pytest.mark.blockdev
def test_filesystem_image_on_a_loop_device(loop_device, unchecked_fs_image, settings):
    logs: list[str] = []
    with open(unchecked_fs_image, "rb") as stream:
        _create(loop_device, stream, FS_IMAGE_SIZE, "fs-image", settings, logs,
                table="msdos")
    assert not any(NO_FSCK in line for line in logs)  # mounted since its check: e2fsck ran
    view = read_back(loop_device, settings)
    _check_customized(view)
    assert view.table == "msdos" and view.root_device == "/dev/sda1"
    assert view.partitions[0]["part_start"] == MiB
    _fs_fills(view, _root_partition_reaches_the_end(view, "msdos"))
    # every old 0xa5 MiB planted by the fixture was inside a zeroed or rewritten range
    with open(loop_device, "rb") as dev:
        for offset in range(0, DISK, 32 * MiB):
            dev.seek(offset)
            assert b"\xa5" * 4096 not in dev.read(MiB), f"old data left at {offset // MiB} MiB"


# -- 3. partitioned disk image: 2 launches ---------------------------------------------------------

def test_partitioned_disk_image_is_grown(tmp_path, guest_images, settings):
    disk = sparse_file(tmp_path / "disk0.img", DISK)
    logs: list[str] = []
    size = guest_images.disk_image.stat().st_size
    with open(guest_images.disk_image, "rb") as stream:
        report = _create(disk, stream, size, "disk-raw", settings, logs, hostname="files.example.org")
    assert report.layout == "disk-raw" and report.bytes_read == size
    view = read_back(disk, settings)
    _check_customized(view, "files.example.org")
    assert view.table == "gpt" and view.root_device == "/dev/sda2"
    last = _root_partition_reaches_the_end(view, "gpt")
    _fs_fills(view, last)
    assert allocated(disk) < 40 * MiB


# -- 4. tarball (.tar.zst, streamed), plus rename of a guest with another name: 2 launches -----------

def test_tarball_create_and_rename_warning(tmp_path, guest_images, settings):
    disk = sparse_file(tmp_path / "disk0.img", DISK)
    compressed = tmp_path / "root.tar.zst"
    with open(guest_images.tarball, "rb") as src, open(compressed, "wb") as dst:
        zstandard.ZstdCompressor().copy_stream(src, dst)
    logs: list[str] = []
    with open(compressed, "rb") as raw:
        stream = zstandard.ZstdDecompressor().stream_reader(raw)
        report = _create(disk, stream, guest_images.tarball.stat().st_size, "tar", settings, logs,
                         table="gpt", fs_type="ext4")
    assert report.layout == "tar" and report.root.fs_type == "ext4"
    assert report.bytes_read == guest_images.tarball.stat().st_size

    rename_logs: list[str] = []
    hosts_after: list[str] = []
    facts = []

    def rename_someone_else(session):
        facts.append(read_facts(session))
        rename_guest(session, "someone-else.example.com", "new.example.com", rename_logs.append)
        hosts_after.append(session.read_text("/etc/hosts"))

    view = read_back(disk, settings, paths=("/bin/sh", "/etc/debian_version"), then=rename_someone_else)
    _check_customized(view)
    assert view.exists == {"/bin/sh": True, "/etc/debian_version": True}
    assert view.dev_entries == []  # the tarball's ./dev/null was dropped
    _fs_fills(view, _root_partition_reaches_the_end(view, "gpt"))
    assert allocated(disk) < 80 * MiB
    assert any("warning" in l and "'web1'" in l and "someone-else" in l for l in rename_logs), rename_logs
    assert "127.0.1.1\tnew.example.com new\n" in hosts_after[0]
    assert (facts[0].os_id, facts[0].version_id) == ("debian", "12")
    assert facts[0].has_systemd and not facts[0].has_grub and not facts[0].has_cloud_init


# -- 5. bad input and failure: 1 launch ---------------------------------------------------------------

@pytest.mark.parametrize("fmt", ["fs-image", "disk-raw", "tar"])
def test_disk_too_small_is_refused_before_any_write(tmp_path, guest_images, settings, fmt):
    disk = tmp_path / "small.img"
    disk.write_bytes(b"\x5a" * (40 * MiB))
    before = hashlib.sha256(disk.read_bytes()).hexdigest()
    image = {"fs-image": guest_images.fs_image, "disk-raw": guest_images.disk_image,
             "tar": guest_images.fs_image}[fmt]
    with open(image, "rb") as stream, pytest.raises(GuestError) as info:
        _create(disk, stream, image.stat().st_size, fmt, settings, [])
    message = str(info.value)
    assert "40 MiB" in message and f"{image.stat().st_size // MiB} MiB" in message
    assert "\n" not in message
    assert hashlib.sha256(disk.read_bytes()).hexdigest() == before


def test_invalid_hostname_is_refused_before_any_write(tmp_path, guest_images, settings):
    disk = tmp_path / "d.img"
    disk.write_bytes(b"\x5a" * MiB)
    with open(guest_images.fs_image, "rb") as stream, pytest.raises(GuestError, match="invalid hostname"):
        _create(disk, stream, FS_IMAGE_SIZE, "fs-image", settings, [], hostname="bad_name.example")
    assert disk.read_bytes() == b"\x5a" * MiB


def test_a_failed_create_leaves_the_disk_invalid(tmp_path, guest_images, settings):
    disk = sparse_file(tmp_path / "disk0.img", 256 * MiB)
    site = tmp_path / "hooks.d"
    site.mkdir()
    (site / "99-fail").write_text("#!/bin/sh\necho cannot do it >&2\nexit 3\n")
    (site / "99-fail").chmod(0o755)
    logs: list[str] = []
    with open(guest_images.fs_image, "rb") as stream, pytest.raises(GuestError) as info:
        _create(disk, stream, FS_IMAGE_SIZE, "fs-image", settings, logs, site_hooks_dir=site)
    assert "site hook 99-fail failed in the guest (exit 3): cannot do it" in str(info.value)
    assert any("invalidating" in line for line in logs)
    with open(disk, "rb") as f:
        assert f.read(MiB) == bytes(MiB)  # no partition table, no protective MBR
        f.seek(-MiB, 2)
        assert f.read(MiB) == bytes(MiB)  # no backup GPT
