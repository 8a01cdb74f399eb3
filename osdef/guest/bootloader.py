"""Install grub from the guest's own packages, through the appliance (g.command chroot).

libguestfs bind-mounts /dev, /proc and /sys for g.command, so grub-install and
update-grub run offline exactly as they would on the booted guest.  Serial
console settings are a pure edit of /etc/default/grub (a marked block at the
end: the file is sourced by shell, the last assignment wins).

Speed note: update-grub costs ~10 s under TCG (os-prober off, it is mostly
grub-probe and shell).  Ideas: ship a grub.cfg template in the image and only
rewrite the root UUID, or keep a prebuilt boot area per image.
"""

from __future__ import annotations

from collections.abc import Callable

from osdef.errors import GuestError
from osdef.guest.session import GuestSession

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


def install(session: GuestSession, disk_device: str, boot: str,
            log: Callable[[str], None]) -> None:
    """grub-install for `boot` ("bios" | "efi"; "none" does nothing) and regenerate grub.cfg."""
    if boot == "none":
        log("boot: none, bootloader left as the image has it")
        return
    if not session.exists("/usr/sbin/grub-install"):
        package = "grub-pc" if boot == "bios" else "grub-efi-amd64"
        raise GuestError(f"the image has no grub-install: add the {package} package to the image"
                         " or use boot: none")
    if boot == "bios":
        session.run(["grub-install", "--target=i386-pc", disk_device], what="grub-install (BIOS)")
    elif boot == "efi":
        if not session.exists("/boot/efi"):
            raise GuestError("boot: efi needs the EFI system partition mounted on /boot/efi")
        session.run(["grub-install", "--target=x86_64-efi", "--efi-directory=/boot/efi",
                     "--bootloader-id=debian", "--removable", "--no-nvram"],
                    what="grub-install (EFI)")
    else:
        raise GuestError(f"unknown boot mode {boot!r} (use bios, efi or none)")
    if session.exists("/usr/sbin/update-grub"):
        session.run(["update-grub"], what="update-grub")
    else:
        session.run(["grub-mkconfig", "-o", "/boot/grub/grub.cfg"], what="grub-mkconfig")
