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

BIOS: grub-probe, a size check and grub-install run as one guest command
(every command costs about a second under TCG).  When osdef.create.bootarea
holds this image's boot area for the layout, its boot code is already on the
disk and grub-install is skipped: /boot/grub is unpacked from the cache.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from osdef.errors import GuestError
from osdef.guest.grubdefaults import (DEFAULTS_QUERY, GRUB_DEFAULTS, GRUB_DEFAULTS_D, GrubDefaults,
                                      evaluate, parse_defaults_query)
from osdef.guest.session import GuestSession, one_line
from osdef.vocab import EXT_FAMILY

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


def _version_key(version: str) -> tuple[int | str, ...]:
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
        "set default=0",
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
    if root_fs_type not in EXT_FAMILY or not root_uuid:
        return False
    if "/boot" in session.mountpoints() or not session.exists("/boot/grub"):
        return False
    kernel = newest_kernel(session.ls("/boot"))
    if kernel is None:
        return False
    defaults = read_defaults(session)
    name = f"{defaults.distributor} GNU/Linux".strip() if defaults.distributor else "GNU/Linux"
    session.write_text("/boot/grub/grub.cfg", render_grub_cfg(defaults, root_uuid, *kernel, name),
                       mode=0o444)
    log(f"grub.cfg written for {kernel[0]} (update-grub skipped)")
    return True


def read_defaults(session: GuestSession) -> GrubDefaults:
    """/etc/default/grub and grub.d/*.cfg: parsed in Python when plain, else through the guest's shell."""
    texts = [session.read_text_or_none(GRUB_DEFAULTS) or ""]
    texts += [session.read_text(path) for path in sorted(session.glob(GRUB_DEFAULTS_D))]
    found = evaluate(texts, lambda: session.read_text_or_none("/etc/os-release"))
    if found is not None:
        return found
    return parse_defaults_query(session.sh(DEFAULTS_QUERY, what="read /etc/default/grub"))


_MARK = "__osdef_grub "


def bios_install_script(want_size: int) -> str:
    """grub-probe, the size check and grub-install as one guest command (each costs ≈1 s under TCG).

    libguestfs API names (/dev/sda = the first drive added) are translated by
    its daemon, but a command run in the guest sees the kernel's names, and the
    kernel does not number virtio-scsi disks in the order they were added: the
    appliance's own (ext2) root disk can be /dev/sda.  grub-install given the
    wrong disk fails with "embedding is not possible, but this is required for
    cross-disk install".  grub-probe names the disk holding /boot/grub, the very
    disk grub-install compares its target with; its size must equal DISK_0's,
    so a wrong answer stops before a boot sector is written anywhere.
    """
    return (
        'dev=$(grub-probe --target=disk /boot/grub 2>/dev/null | grep "^/dev/" | tail -n 1); '
        f'if [ -z "$dev" ]; then '
        f'echo "{_MARK}no-disk $(grub-probe --target=disk /boot/grub 2>&1 | tail -n 1)"; exit 0; fi; '
        # /sys (bind-mounted by libguestfs) counts 512-byte sectors whatever the sector size
        'sectors=$(cat "/sys/class/block/${dev#/dev/}/size" 2>/dev/null || echo 0); '
        'size=$((sectors * 512)); '
        f'if [ "$size" != "{want_size}" ]; then echo "{_MARK}wrong-disk $dev $size"; exit 0; fi; '
        f'echo "{_MARK}target $dev"; '
        'grub-install --target=i386-pc "$dev"'
    )


def check_bios_install(output: str, disk_device: str, want_size: int) -> str:
    """The kernel device grub-install ran on, from bios_install_script's output; else GuestError."""
    for line in output.splitlines():
        if not line.startswith(_MARK):
            continue
        kind, _, rest = line[len(_MARK):].partition(" ")
        if kind == "target":
            return rest.strip()
        if kind == "no-disk":
            raise GuestError(f"grub-probe did not name the disk holding /boot/grub: {rest.strip() or 'no output'}")
        if kind == "wrong-disk":
            device, _, size = rest.partition(" ")
            raise GuestError(f"grub-probe puts /boot/grub on {device} ({size.strip()} bytes), "
                             f"not on the instance's disk {disk_device} ({want_size} bytes): "
                             "bootloader not installed")
    raise GuestError(f"grub-install (BIOS) gave no answer: {one_line(output) or 'no output'}")


def _install_bios(session: GuestSession, disk_device: str, log: Callable[[str], None],
                  cached_grub_tree: Path | None, capture: Path | None) -> None:
    if cached_grub_tree is not None:
        session.mkdir("/boot/grub")
        session.tar_in(str(cached_grub_tree), "/boot/grub", what="unpack /boot/grub from the cached boot area")
        log(f"grub boot area from the cache {cached_grub_tree.parent} (grub-install skipped)")
        return
    want = session.device_size(disk_device)
    before = _stat_files(session, "/boot/grub") if capture is not None else {}
    out = session.sh(bios_install_script(want), what="grub-install (BIOS)")
    target = check_bios_install(out, disk_device, want)
    if target != disk_device:
        log(f"grub-install target {target} (the appliance kernel's name of {disk_device})")
    if capture is not None:
        # files of the image that grub-install left alone are on every create of it: not cached
        after = _stat_files(session, "/boot/grub", list(before))
        untouched = [name for name, stat in before.items() if after.get(name) == stat]
        excludes = ["./grub.cfg", *(f"./{name}" for name in sorted(untouched))]
        session.tar_out("/boot/grub", str(capture), what="keep /boot/grub for the boot area cache",
                        excludes=excludes)


def _stat_files(session: GuestSession, directory: str,
                names: list[str] | None = None) -> dict[str, tuple[int, int, int]]:
    """name → (size, mtime s, mtime ns) of the regular files in `directory` (or of `names`).

    Top level only: grub-install's own directories (i386-pc, fonts, locale) are always kept.
    """
    if names is None:
        if not session.exists(directory):
            return {}
        names = session.ls(directory)
    if not names:
        return {}
    stats = session.lstat_files(directory, names)
    return {name: (st["st_size"], st["st_mtime_sec"], st["st_mtime_nsec"])
            for name, st in zip(names, stats, strict=True)
            if st["st_ino"] >= 0 and st["st_mode"] & 0o170000 == 0o100000}


def install(session: GuestSession, disk_device: str, boot: str,
            log: Callable[[str], None], *, root_uuid: str = "", root_fs_type: str = "",
            grub_config: str = "osdef", cached_grub_tree: Path | None = None,
            capture: Path | None = None) -> None:
    """grub-install for `boot` ("bios" | "efi"; "none" does nothing) and write grub.cfg.

    ``boot`` and ``grub_config`` were checked where they were decided (the create plan).  BIOS: with
    ``cached_grub_tree`` (a boot area from the cache, osdef.create.bootarea: its boot code is already
    on the disk) only /boot/grub is unpacked from it; else grub-install runs and, with ``capture``,
    /boot/grub (without grub.cfg) is saved there as a tar.
    """
    if boot == "none":
        log("boot: none, bootloader left as the image has it")
        return
    if not session.exists("/usr/sbin/grub-install"):
        package = "grub-pc" if boot == "bios" else "grub-efi-amd64"
        raise GuestError(f"the image has no grub-install: add the {package} package to the image"
                         " or use boot: none")
    if boot == "bios":
        _install_bios(session, disk_device, log, cached_grub_tree, capture)
    else:
        if not session.exists("/boot/efi"):
            raise GuestError("boot: efi needs the EFI system partition mounted on /boot/efi")
        session.run(["grub-install", "--target=x86_64-efi", "--efi-directory=/boot/efi",
                     "--bootloader-id=debian", "--removable", "--no-nvram"],
                    what="grub-install (EFI)")
    if grub_config == "osdef" and _write_grub_cfg(session, root_uuid, root_fs_type, log):
        return
    if session.exists("/usr/sbin/update-grub"):
        session.run(["update-grub"], what="update-grub")
    else:
        session.run(["grub-mkconfig", "-o", "/boot/grub/grub.cfg"], what="grub-mkconfig")
