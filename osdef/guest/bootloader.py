"""Install grub from the guest's own packages, through the appliance (g.command chroot).

libguestfs bind-mounts /dev, /proc and /sys for g.command, so grub-install and
update-grub run offline exactly as they would on the booted guest.  Serial
console settings are a pure edit of /etc/default/grub (a marked block at the
end: the file is sourced by shell, the last assignment wins).

grub.cfg: update-grub costs 10–19 s under TCG (mostly forks of grub-probe and
shell).  When the guest is simple (the root filesystem holds /boot, ext2/3/4,
kernels named /boot/vmlinuz-VERSION) osdef renders an equivalent grub.cfg
itself from /etc/default/grub (`grub_config="osdef"`, the default; ≈0.3 s).
Anything else, or `grub_config="update-grub"`, runs the guest's update-grub.
The guest's own update-grub (run by every kernel upgrade) later replaces the
file with Debian's full one built from the same /etc/default/grub.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from osdef.errors import GuestError
from osdef.guest.session import GuestSession, one_line

GRUB_DEFAULTS = "/etc/default/grub"
SERIAL_MARK_BEGIN = "# osdef: serial console (begin)"
SERIAL_MARK_END = "# osdef: serial console (end)"
SERIAL_BLOCK = "\n".join([
    SERIAL_MARK_BEGIN,
    'GRUB_CMDLINE_LINUX="$GRUB_CMDLINE_LINUX console=tty0 console=ttyS0,115200"',
    'GRUB_TERMINAL="console serial"',
    'GRUB_SERIAL_COMMAND="serial --speed=115200 --unit=0 --word=8 --parity=no --stop=1"',
    SERIAL_MARK_END,
])


def _without_block(text: str) -> list[str]:
    out: list[str] = []
    inside = False
    for line in text.splitlines():
        if line.strip() == SERIAL_MARK_BEGIN:
            inside = True
        elif line.strip() == SERIAL_MARK_END:
            inside = False
        elif not inside:
            out.append(line)
    return out


def grub_defaults_with_serial(text: str) -> str:
    """/etc/default/grub with osdef's serial console block (replaced if already there)."""
    lines = _without_block(text)
    while lines and not lines[-1].strip():
        lines.pop()
    return "\n".join([*lines, "", SERIAL_BLOCK]) + "\n"


def set_serial_console(session: GuestSession, log: Callable[[str], None]) -> bool:
    """Edit /etc/default/grub for a serial console; False when the guest has no such file."""
    text = session.read_text_or_none(GRUB_DEFAULTS)
    if text is None:
        log(f"no {GRUB_DEFAULTS} in the guest: kernel command line left unchanged")
        return False
    session.write_text(GRUB_DEFAULTS, grub_defaults_with_serial(text))
    return True


GRUB_CONFIGS = ("osdef", "update-grub")
_DEFAULTS_QUERY = (". /etc/default/grub >/dev/null 2>&1; "
                   'printf "%s\\n" "$GRUB_CMDLINE_LINUX" "$GRUB_CMDLINE_LINUX_DEFAULT" '
                   '"${GRUB_TIMEOUT:-5}" "$GRUB_TERMINAL" "$GRUB_SERIAL_COMMAND" "$GRUB_DISTRIBUTOR"')


@dataclass(frozen=True)
class GrubDefaults:
    """The /etc/default/grub values grub.cfg depends on (after shell evaluation)."""

    cmdline: str = ""
    cmdline_default: str = ""
    timeout: str = "5"
    terminal: str = ""
    serial_command: str = ""
    distributor: str = ""


def parse_defaults_query(output: str) -> GrubDefaults:
    """The six lines printed by _DEFAULTS_QUERY."""
    lines = (output.split("\n") + [""] * 6)[:6]
    cmdline, default, timeout, terminal, serial, distributor = (" ".join(l.split()) for l in lines)
    return GrubDefaults(cmdline, default, timeout if timeout.lstrip("-").isdigit() else "5",
                        terminal, serial, distributor)


def _version_key(version: str) -> tuple:
    return tuple(int(p) if p.isdigit() else p for p in re.split(r"(\d+)", version) if p)


def newest_kernel(boot_entries: list[str]) -> tuple[str, str | None] | None:
    """(kernel, initrd or None) file names of the newest vmlinuz-VERSION in /boot, or None."""
    versions = [name[len("vmlinuz-"):] for name in boot_entries
                if name.startswith("vmlinuz-") and not name.endswith((".old", ".bak"))]
    if not versions:
        return None
    version = max(versions, key=_version_key)
    initrd = f"initrd.img-{version}"
    return f"vmlinuz-{version}", initrd if initrd in boot_entries else None


def render_grub_cfg(defaults: GrubDefaults, root_uuid: str, kernel: str, initrd: str | None,
                    os_name: str = "GNU/Linux") -> str:
    """A grub.cfg equivalent to what update-grub writes for one kernel on the root fs."""
    cmdline = " ".join(f"root=UUID={root_uuid} ro {defaults.cmdline} {defaults.cmdline_default}".split())
    terminals = defaults.terminal.split() or ["console"]
    lines = [
        "# written by osdef at create time; the guest's update-grub replaces it on kernel upgrades",
        f"set default=0",
        f"set timeout={defaults.timeout}",
    ]
    if "serial" in terminals:
        lines.append(defaults.serial_command or "serial --speed=115200 --unit=0")
    lines += [
        f"terminal_input {' '.join(terminals)}",
        f"terminal_output {' '.join(terminals)}",
        "insmod part_gpt",
        "insmod part_msdos",
        "insmod ext2",
        f"search --no-floppy --fs-uuid --set=root {root_uuid}",
        f"menuentry '{os_name}' --class gnu-linux --class os {{",
        "\tinsmod gzio",
        f"\tlinux /boot/{kernel} {cmdline}",
    ]
    if initrd:
        lines.append(f"\tinitrd /boot/{initrd}")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _write_grub_cfg(session: GuestSession, root_uuid: str, root_fs_type: str,
                    log: Callable[[str], None]) -> bool:
    """Render grub.cfg without update-grub; False when the guest is not simple enough."""
    if root_fs_type not in ("ext2", "ext3", "ext4") or not root_uuid:
        return False
    mounts = session.call("list mounts", session.g.mountpoints)
    if "/boot" in mounts.values() or not session.exists("/boot/grub"):
        return False
    kernel = newest_kernel(session.call("list /boot", session.g.ls, "/boot"))
    if kernel is None:
        return False
    defaults = parse_defaults_query(session.sh(_DEFAULTS_QUERY, what="read /etc/default/grub"))
    name = f"{defaults.distributor} GNU/Linux".strip() if defaults.distributor else "GNU/Linux"
    session.write_text("/boot/grub/grub.cfg", render_grub_cfg(defaults, root_uuid, *kernel, name),
                       mode=0o444)
    log(f"grub.cfg written for {kernel[0]} (update-grub skipped)")
    return True


def grub_install_device(session: GuestSession, disk_device: str, log: Callable[[str], None]) -> str:
    """The appliance kernel's name of `disk_device`, the argument grub-install needs.

    libguestfs API names (/dev/sda = the first drive added) are translated by
    its daemon, but a command run in the guest sees the kernel's names, and the
    kernel does not number virtio-scsi disks in the order they were added: the
    appliance's own (ext2) root disk can be /dev/sda.  grub-install given the
    wrong disk fails with "embedding is not possible, but this is required for
    cross-disk install".  grub-probe names the disk holding /boot/grub, the very
    disk grub-install compares its target with; its size is checked against
    DISK_0 so a wrong answer stops here instead of writing a boot sector elsewhere.
    """
    out = session.run(["grub-probe", "--target=disk", "/boot/grub"], what="grub-probe (disk of /boot/grub)")
    found = [line.strip() for line in out.splitlines() if line.strip().startswith("/dev/")]
    if not found:
        raise GuestError(f"grub-probe did not name the disk holding /boot/grub: {one_line(out) or 'no output'}")
    kernel_device = found[-1]
    if kernel_device != disk_device:
        want = session.call(f"size of {disk_device}", session.g.blockdev_getsize64, disk_device)
        size_out = session.run(["blockdev", "--getsize64", kernel_device], what=f"size of {kernel_device}")
        have = int(size_out.split()[-1]) if size_out.split() and size_out.split()[-1].isdigit() else -1
        if have != want:
            raise GuestError(f"grub-probe puts /boot/grub on {kernel_device} ({have} bytes), "
                             f"not on the instance's disk {disk_device} ({want} bytes): bootloader not installed")
        log(f"grub-install target {kernel_device} (the appliance kernel's name of {disk_device})")
    return kernel_device


def install(session: GuestSession, disk_device: str, boot: str,
            log: Callable[[str], None], *, root_uuid: str = "", root_fs_type: str = "",
            grub_config: str = "osdef") -> None:
    """grub-install for `boot` ("bios" | "efi"; "none" does nothing) and write grub.cfg."""
    if grub_config not in GRUB_CONFIGS:
        raise GuestError(f"unknown grub_config {grub_config!r} (use one of: {', '.join(GRUB_CONFIGS)})")
    if boot == "none":
        log("boot: none, bootloader left as the image has it")
        return
    if not session.exists("/usr/sbin/grub-install"):
        package = "grub-pc" if boot == "bios" else "grub-efi-amd64"
        raise GuestError(f"the image has no grub-install: add the {package} package to the image"
                         " or use boot: none")
    if boot == "bios":
        target = grub_install_device(session, disk_device, log)
        session.run(["grub-install", "--target=i386-pc", target], what="grub-install (BIOS)")
    elif boot == "efi":
        if not session.exists("/boot/efi"):
            raise GuestError("boot: efi needs the EFI system partition mounted on /boot/efi")
        session.run(["grub-install", "--target=x86_64-efi", "--efi-directory=/boot/efi",
                     "--bootloader-id=debian", "--removable", "--no-nvram"],
                    what="grub-install (EFI)")
    else:
        raise GuestError(f"unknown boot mode {boot!r} (use bios, efi or none)")
    if grub_config == "osdef" and _write_grub_cfg(session, root_uuid, root_fs_type, log):
        return
    if session.exists("/usr/sbin/update-grub"):
        session.run(["update-grub"], what="update-grub")
    else:
        session.run(["grub-mkconfig", "-o", "/boot/grub/grub.cfg"], what="grub-mkconfig")
