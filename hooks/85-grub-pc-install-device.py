"""BIOS guests: name the boot disk in debconf on first boot, so grub-pc upgrades reinstall GRUB there.

Debian's grub-pc postinst reinstalls the boot code on every grub-pc upgrade,
onto the disks listed in debconf's grub-pc/install_devices.  The Debian
installer fills that in; osdef's grub-install (in the appliance, or the cached
boot area) cannot, and with the list empty a grub-pc upgrade asks which disk
(interactive) or fails with "You must correct your GRUB install devices"
(apt-get -y, unattended-upgrades), leaving dpkg half-configured.  The disk's
name exists only in the booted guest (vda with virtio, sda with scsi), so a
oneshot unit asks grub-probe on the first boot, prefers a /dev/disk/by-id name
as the installer does, stores it with debconf-set-selections (which marks the
question seen) and prints it on the console.  It runs before logins are
allowed, once (a marker in /var/lib/osdef); a failure leaves no marker, so it
retries on the next boot.  EFI guests need nothing: without
/boot/grub/i386-pc/core.img grub-pc's postinst leaves the boot code alone.
"""

from osdef.guest.units import oneshot

NAME = "grub-pc-install-device"
EXCLUDABLE = True  # a variant may skip it

SCRIPT_PATH = "/usr/local/sbin/osdef-grub-pc-install-device"
DONE_MARKER = "/var/lib/osdef/grub-pc-install-device"
SCRIPT = f"""#!/bin/sh
# osdef: record the disk GRUB boots from as grub-pc's install device, as the Debian
# installer does, so that grub-pc upgrades reinstall GRUB there instead of asking or
# failing. Run once by osdef-grub-pc-install-device.service; safe to run again.
set -e
marker={DONE_MARKER}
disk=$(grub-probe --target=disk /boot/grub)
device=$disk
for link in /dev/disk/by-id/*; do
    case $link in *-part[0-9]*) continue ;; esac
    if [ -e "$link" ] && [ "$(readlink -f "$link")" = "$disk" ]; then
        device=$link
        break
    fi
done
echo "grub-pc grub-pc/install_devices multiselect $device" | debconf-set-selections
mkdir -p "${{marker%/*}}"
echo "$device" > "$marker"
echo "osdef: grub-pc upgrades install GRUB to $device"
"""

UNIT_NAME = "osdef-grub-pc-install-device.service"
UNIT = oneshot("Record the boot disk for grub-pc upgrades (osdef)", SCRIPT_PATH,
               unit=("After=local-fs.target", "Before=systemd-user-sessions.service",
                     f"ConditionPathExists=!{DONE_MARKER}", "ConditionPathExists=/boot/grub/i386-pc/core.img"))


def run(ctx):
    g = ctx.guest
    if ctx.plan.boot != "bios":
        return
    if not g.exists("/var/lib/dpkg/info/grub-pc.postinst"):
        ctx.log("grub-pc is not a package of this guest: no install device to record")
        return
    if not ctx.facts.has_systemd:
        ctx.log("warning: the guest has no systemd; before upgrading grub-pc in it, run "
                "`dpkg-reconfigure grub-pc` and choose the boot disk")
        return
    g.write_text(SCRIPT_PATH, SCRIPT, mode=0o755)
    g.install_unit(UNIT_NAME, UNIT, "multi-user.target")
    ctx.log("grub-pc's install device is recorded on first boot (osdef-grub-pc-install-device.service)")
