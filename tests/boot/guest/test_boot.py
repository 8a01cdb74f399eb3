"""The created disk boots: debian-12 (DIB filesystem image) → create → qemu (TCG) → `<hostname> login:`.

After the boot the disk is read back through libguestfs: the first-boot
steps ran (fresh SSH host keys, a new machine-id, on BIOS grub-pc's install
device in debconf).  Two boots cover
BIOS on gpt with osdef's own grub.cfg, and EFI (OVMF) on msdos with the guest's
update-grub.  The BIOS disk is the image's second create: its boot area comes
from the cache the first create's grub-install filled (osdef.create.bootarea).
The disk that boots is the created one after a filesystem-aware export and an import onto a
fresh file (what a move between nodes does to it). It is a test-owned temp file, so qemu runs
without -snapshot and is powered down over QMP.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from osdef.errors import ImageError
from osdef.create.bootarea import MBR_CODE, BootAreaCache
from osdef.create.pipeline import ImageData, install_root
from osdef.create.plan import CreatePlan

from tests.support.guest import allocated, read_back, sparse_file
from tests.support.qemu import Qemu
from tests.support.stream import export_to_file, import_from_file

pytestmark = [pytest.mark.guestfs, pytest.mark.boot]
GiB = 1 << 30
OVMF_CODE = Path("/usr/share/OVMF/OVMF_CODE_4M.fd")
OVMF_VARS = Path("/usr/share/OVMF/OVMF_VARS_4M.fd")
LOGIN_TIMEOUT = 240  # s; ~60 s on an idle 2-core machine under TCG
GRUB_PC_MESSAGE = b"osdef: grub-pc upgrades install GRUB to /dev/vda"
DEBCONF_CONFIG = "/var/cache/debconf/config.dat"


def _debian12():
    try:
        from tests.support.image_cache import ensure_test_image

        return ensure_test_image("debian-12")
    except ImageError as exc:
        pytest.skip(f"no debian-12 test image (build: osdef image build debian-12): {exc}")


@pytest.mark.skipif(shutil.which("qemu-system-x86_64") is None, reason="qemu-system-x86 not installed")
@pytest.mark.parametrize("table,boot,grub_config", [
    ("gpt", "bios", "osdef"),
    ("msdos", "efi", "update-grub"),
])
def test_created_disk_boots_to_a_login_prompt(tmp_path, settings, table, boot, grub_config):
    firmware = []
    if boot == "efi":
        if not OVMF_CODE.is_file():
            pytest.skip(f"EFI boot needs {OVMF_CODE} (apt package ovmf)")
        shutil.copy(OVMF_VARS, tmp_path / "vars.fd")
        firmware = ["-drive", f"if=pflash,format=raw,readonly=on,file={OVMF_CODE}",
                    "-drive", f"if=pflash,format=raw,file={tmp_path / 'vars.fd'}"]
    artifact = _debian12()
    logs: list[str] = []
    cache = BootAreaCache(tmp_path / "bootareas", artifact.sha256, logs.append)
    disk = sparse_file(tmp_path / "disk0.img", 4 * GiB)

    def create(target: Path, hostname: str):
        with artifact.open() as stream:
            plan = CreatePlan(layout="fs-image", hostname=hostname, fs_type="ext4", table=table, boot=boot,
                              grub_config=grub_config, serial_console=True).with_boot_cache(cache)
            return install_root(target, ImageData(stream, artifact.size), plan, settings, logs.append,
                                boot_cache=cache)

    if boot == "bios":  # the first create runs grub-install and fills the cache
        first = sparse_file(tmp_path / "first.img", 2 * GiB)
        assert not create(first, "first.example.org").boot_area_from_cache
        assert any("boot area cached in" in line for line in logs)
    report = create(disk, "boot-test.example.org")
    assert "bootloader" in report.steps_run
    assert report.boot_area_from_cache == (boot == "bios")
    if boot == "bios":  # same boot code and core.img (BIOS boot partition: 1-2 MiB)
        a, b = (open(d, "rb").read(2 << 20) for d in (first, disk))
        assert a[:MBR_CODE] == b[:MBR_CODE] and a[1 << 20:] == b[1 << 20:]
        assert b[:MBR_CODE].strip(b"\0") and b[1 << 20:].strip(b"\0")
    assert any("update-grub skipped" in line for line in logs) == (grub_config == "osdef")
    assert allocated(disk) < artifact.manifest.used_size + 256 * (1 << 20)  # sparse: ≈ the image's data

    # What boots is what Ganeti moves between nodes: the filesystem-aware export of the created disk
    # (ext4 root, BIOS boot partition or vfat ESP), imported onto a fresh disk (issue 15).
    disk = _exported_and_imported(disk, tmp_path)

    qemu = Qemu(disk, tmp_path, firmware)
    try:
        booted = qemu.wait_for(b"boot-test login:", LOGIN_TIMEOUT)
        assert booted, f"no 'boot-test login:' within {LOGIN_TIMEOUT} s; serial log ends:\n{qemu.tail()}"
        # key generation may still run after the prompt (RSA under TCG is slow)
        keys = qemu.wait_for(b"osdef: SSH host keys generated:", LOGIN_TIMEOUT)
        assert keys, f"no SSH host key message on the console; serial log ends:\n{qemu.tail()}"
        if boot == "bios":  # printed before logins are allowed
            assert qemu.wait_for(GRUB_PC_MESSAGE, 1), f"no grub-pc message; serial log ends:\n{qemu.tail()}"
    finally:
        qemu.powerdown()

    debconf: dict[str, str | None] = {}
    view = read_back(disk, settings, paths=("/etc/ssh/ssh_host_ed25519_key",
                                            "/etc/systemd/system/osdef-ssh-host-keys.service"),
                     then=lambda s: debconf.update(config=s.read_text_or_none(DEBCONF_CONFIG)))
    assert view.files["/etc/hostname"] == "boot-test\n"
    assert re.fullmatch(r"[0-9a-f]{32}\n", view.files["/etc/machine-id"] or ""), view.files["/etc/machine-id"]
    assert view.exists["/etc/ssh/ssh_host_ed25519_key"]  # made on first boot by osdef's unit
    assert "console=ttyS0,115200" in view.files["/etc/default/grub"]
    if boot == "efi":
        assert "/boot/efi\tvfat" in view.files["/etc/fstab"]
    # a grub-pc upgrade in this guest reinstalls GRUB on its virtio disk without asking (BIOS)
    stanza = _debconf_stanza(debconf["config"] or "", "grub-pc/install_devices")
    if boot == "bios":
        assert stanza.get("Value") == "/dev/vda" and "seen" in stanza.get("Flags", ""), stanza
    else:
        assert not stanza.get("Value"), stanza


def _exported_and_imported(disk: Path, work: Path) -> Path:
    """export (sparse, filesystem-aware, with the size announced as Ganeti asks) → import; the copy."""
    warnings: list[str] = []
    stream, copy = work / "disk0.stream", sparse_file(work / "imported.img", disk.stat().st_size)
    sent, announced = export_to_file(disk, stream, warn=warnings.append)
    assert sent == announced == stream.stat().st_size
    assert not warnings, warnings  # every filesystem on a created disk has a map
    assert sent <= allocated(disk)  # what the filesystems use, never more than the file holds
    result, _ = import_from_file(stream, copy, with_size_fd=False)
    assert result.kind == "stream"
    stream.unlink()
    return copy


def _debconf_stanza(config: str, name: str) -> dict[str, str]:
    """One question's fields from debconf's config.dat (RFC 822-like stanzas)."""
    for block in config.split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        if fields.get("Name") == name:
            return fields
    return {}
