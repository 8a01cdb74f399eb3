"""data_disks → disks 1..N formatted (whole disk, no partition table) and mounted by UUID at /srv/diskN.

Never destroys data: a disk that already carries a filesystem, a partition
table or any other signature (LVM, RAID …) is not formatted; one with a
filesystem is mounted as it is (so reinstall keeps the data).  fstab lines
have `nofail`, so a missing disk does not stop the boot.
"""

from osdef.errors import GuestError
from osdef.guest.mkfs import make_filesystem
from osdef.guest.fstab import data_disk_entry, data_disk_mountpoint
from osdef.vocab import ROOT_FILESYSTEMS

NAME = "data-disks"
EXCLUDABLE = True  # a variant may skip it
AFTER = ("fstab",)  # adds its lines to the fstab that step wrote


def _has_partitions(g, device):
    # /dev/sdaa1 is /dev/sdaa's, not /dev/sda's
    return any(p.startswith(device) and p[len(device):].isdigit() for p in g.partitions())


def run(ctx):
    fs_type = ctx.plan.params.data_disks
    if fs_type == "keep":
        return
    g = ctx.guest
    devices = g.devices()
    instance = ctx.plan.instance
    wanted = len(instance.disks) if instance is not None else len(devices)
    if wanted <= 1:
        ctx.log(f"data disks: data_disks={fs_type} but the instance has no disk besides disk 0")
        return
    if len(devices) < wanted:
        raise GuestError(f"data_disks={fs_type}: only {len(devices)} of the instance's {wanted} disks"
                         " are attached to the appliance (osdef bug: please report)")
    if fs_type != "ext4" and not g.has_feature(fs_type):
        raise GuestError(f"data_disks={fs_type}: the libguestfs appliance cannot make {fs_type}"
                         f" (install the {fs_type} tools on the node) or use data_disks=ext4")
    fstab = g.read_text_or_none("/etc/fstab") or ""
    for index in range(1, wanted):
        device = g.device(index)
        found = g.signature(device)
        if _has_partitions(g, device):
            ctx.log(f"data disks: disk {index} has a partition table: left untouched, not mounted")
            continue
        if found and found not in ROOT_FILESYSTEMS + ("vfat",):
            ctx.log(f"data disks: disk {index} carries {found}: left untouched, not mounted")
            continue
        if found:
            ctx.log(f"data disks: disk {index} already has {found}: kept (not formatted)")
            disk_fs = found
        else:
            make_filesystem(g, fs_type, device, ctx.plan.mkfs_profile, f"make {fs_type} on disk {index}")
            disk_fs = fs_type
            ctx.log(f"data disks: disk {index} formatted {fs_type}")
        uuid = g.uuid(device, f"read the UUID of disk {index}")
        mountpoint = data_disk_mountpoint(index)
        g.mkdir(mountpoint)
        fstab = data_disk_entry(fstab, uuid, index, disk_fs)
    g.write_text("/etc/fstab", fstab)
