"""hooks/85-grub-pc-install-device: the first-boot script (run on the host with stub tools) and the step's choices.

The real first boot is tests/boot/guest/test_boot.py (debconf read back after qemu booted the disk).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from osdef.create.steps import BUILTIN_HOOKS_DIR, _load_module

HOOK = _load_module(BUILTIN_HOOKS_DIR / "85-grub-pc-install-device.py")


def _stub(bin_dir: Path, name: str, body: str) -> None:
    path = bin_dir / name
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)


def _run_script(tmp_path: Path, disk: str, by_id: dict[str, str], probe_fails: bool = False):
    """Run SCRIPT with grub-probe/debconf-set-selections stubbed, by-id links in a temp dir."""
    bin_dir, links = tmp_path / "bin", tmp_path / "by-id"
    bin_dir.mkdir()
    links.mkdir()
    for name, target in by_id.items():
        (links / name).symlink_to(target)
    selections = tmp_path / "selections"
    marker = tmp_path / "state" / "done"
    _stub(bin_dir, "grub-probe", "echo 'grub-probe: error: cannot find a device' >&2; exit 1\n" if probe_fails
          else f'[ "$*" = "--target=disk /boot/grub" ] || exit 2\necho {disk}\n')
    _stub(bin_dir, "debconf-set-selections", f"cat >> {selections}\n")
    script = HOOK.SCRIPT.replace("/dev/disk/by-id", str(links)).replace(HOOK.DONE_MARKER, str(marker))
    (tmp_path / "script").write_text(script)
    proc = subprocess.run(["sh", str(tmp_path / "script")], capture_output=True, text=True,
                          env={"PATH": f"{bin_dir}:{os.environ['PATH']}"})
    return proc, (selections.read_text() if selections.exists() else None), marker


def test_script_records_the_disk_grub_probe_names(tmp_path):
    proc, selections, marker = _run_script(tmp_path, "/dev/vda", {})
    assert proc.returncode == 0, proc.stderr
    assert selections == "grub-pc grub-pc/install_devices multiselect /dev/vda\n"
    assert marker.read_text() == "/dev/vda\n"
    assert proc.stdout == "osdef: grub-pc upgrades install GRUB to /dev/vda\n"


def test_script_prefers_the_by_id_name_of_that_disk(tmp_path):
    disk = tmp_path / "sda"
    disk.write_bytes(b"")
    other = tmp_path / "sdb"
    other.write_bytes(b"")
    proc, selections, _ = _run_script(tmp_path, str(disk), {
        "scsi-0QEMU_other": str(other),
        "scsi-0QEMU_disk-part1": str(disk),  # a partition's link never names the disk
        "scsi-0QEMU_disk": str(disk),
    })
    assert proc.returncode == 0, proc.stderr
    assert selections == f"grub-pc grub-pc/install_devices multiselect {tmp_path}/by-id/scsi-0QEMU_disk\n"


def test_script_failure_leaves_no_marker_so_the_next_boot_retries(tmp_path):
    proc, selections, marker = _run_script(tmp_path, "", {}, probe_fails=True)
    assert proc.returncode != 0 and "cannot find a device" in proc.stderr
    assert selections is None and not marker.exists()


def test_unit_runs_once_before_logins_only_on_a_grub_pc_bios_install():
    unit = HOOK.UNIT
    assert f"ConditionPathExists=!{HOOK.DONE_MARKER}" in unit
    assert "ConditionPathExists=/boot/grub/i386-pc/core.img" in unit
    assert "Before=systemd-user-sessions.service" in unit  # gettys and sshd logins wait for it
    assert f"ExecStart={HOOK.SCRIPT_PATH}" in unit


class RecordingGuest:
    """The few GuestSession calls the step makes, on an in-memory file set."""

    def __init__(self, files: set[str]):
        self.files = set(files)
        self.written: dict[str, tuple[str, int | None]] = {}
        self.links: dict[str, str] = {}

    def exists(self, path: str) -> bool:
        return path in self.files

    def write_text(self, path: str, text: str, mode: int | None = None) -> None:
        self.written[path] = (text, mode)

    def symlink(self, target: str, linkname: str) -> None:
        self.links[linkname] = target

    def install_unit(self, name: str, text: str, *targets: str) -> None:  # as GuestSession's
        self.write_text(f"/etc/systemd/system/{name}", text, 0o644)
        for target in targets:
            self.symlink(f"/etc/systemd/system/{name}", f"/etc/systemd/system/{target}.wants/{name}")


DEBIAN = {"/var/lib/dpkg/info/grub-pc.postinst", "/usr/lib/systemd/systemd"}


def _ctx(guest, boot):
    from osdef.create.context import StepContext
    from osdef.create.plan import CreatePlan

    logs: list[str] = []
    plan = CreatePlan(layout="fs-image", hostname="h.example.org", boot=boot)
    return StepContext.of(plan, guest, log=logs.append), logs


def test_step_installs_script_and_unit_on_a_bios_debian_guest():
    guest = RecordingGuest(DEBIAN)
    ctx, logs = _ctx(guest, "bios")
    HOOK.run(ctx)
    assert guest.written[HOOK.SCRIPT_PATH] == (HOOK.SCRIPT, 0o755)
    assert guest.written[f"/etc/systemd/system/{HOOK.UNIT_NAME}"] == (HOOK.UNIT, 0o644)
    assert guest.links == {f"/etc/systemd/system/multi-user.target.wants/{HOOK.UNIT_NAME}":
                           f"/etc/systemd/system/{HOOK.UNIT_NAME}"}


@pytest.mark.parametrize("boot,files,logged", [
    ("efi", DEBIAN, None),
    ("none", DEBIAN, None),
    ("bios", {"/usr/lib/systemd/systemd"}, "grub-pc is not a package"),
    ("bios", {"/var/lib/dpkg/info/grub-pc.postinst"}, "warning: the guest has no systemd"),
])
def test_step_does_nothing_elsewhere(boot, files, logged):
    guest = RecordingGuest(files)
    ctx, logs = _ctx(guest, boot)
    HOOK.run(ctx)
    assert not guest.written and not guest.links
    assert (logged is None and not logs) or any(logged in line for line in logs)
