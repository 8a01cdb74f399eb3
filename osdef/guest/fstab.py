"""The one editor of /etc/fstab: the root, ESP, swap and data-disk entries, other lines kept.

Pure text in, text out; the hooks read the file through the appliance and
write the result back.  Every entry replaces the lines it supersedes (the same
mount point; for swap, the same device or file), so running a step twice
leaves one line.
"""

from __future__ import annotations

from dataclasses import dataclass

SWAPFILE = "/swapfile"
DATA_MOUNT_ROOT = "/srv"
ROOT_OPTIONS = {"ext2": "errors=remount-ro", "ext3": "errors=remount-ro",
                "ext4": "errors=remount-ro", "xfs": "defaults", "btrfs": "defaults"}
FSCK_PASS = {"ext4": "2", "ext3": "2", "ext2": "2", "xfs": "0", "btrfs": "0"}


@dataclass(frozen=True)
class Entry:
    spec: str
    mountpoint: str
    fs_type: str
    options: str
    passno: str = "0"

    def line(self) -> str:
        return f"{self.spec}\t{self.mountpoint}\t{self.fs_type}\t{self.options}\t0\t{self.passno}"

    def replaces(self, fields: list[str]) -> bool:
        """Whether this entry supersedes the (non-comment) line split into `fields`."""
        if self.fs_type == "swap":
            return len(fields) >= 3 and fields[2] == "swap" and fields[0] == self.spec
        return len(fields) >= 2 and fields[1] == self.mountpoint


def _fields(line: str) -> list[str]:
    fields = line.split()
    return [] if not fields or fields[0].startswith("#") else fields


def _edit(text: str, entries: list[Entry], *, first: bool) -> str:
    """`text` without the lines `entries` replace, the entries added before the first
    entry line (`first`) or at the end."""
    out = [line for line in text.splitlines()
           if not any(entry.replaces(_fields(line)) for entry in entries)]
    while out and not out[-1].strip():
        out.pop()
    at = next((i for i, line in enumerate(out) if _fields(line)), len(out)) if first else len(out)
    out[at:at] = [entry.line() for entry in entries]
    return "\n".join(out) + "\n"


def render_fstab(text: str, root_uuid: str, root_fs_type: str, esp_uuid: str | None = None) -> str:
    """fstab with `/` (and `/boot/efi` when esp_uuid) mounted by UUID, as its first entries.

    An existing `/` line keeps its options; images often carry LABEL= or
    /dev/ names that do not survive osdef's fresh UUID and partitioning.
    """
    root_options = ROOT_OPTIONS.get(root_fs_type, "defaults")
    for line in text.splitlines():
        fields = _fields(line)
        if len(fields) >= 4 and fields[1] == "/":
            root_options = fields[3]
    entries = [Entry(f"UUID={root_uuid}", "/", root_fs_type, root_options, "1")]
    if esp_uuid:
        entries.append(Entry(f"UUID={esp_uuid}", "/boot/efi", "vfat", "umask=0077", "1"))
    return _edit(text, entries, first=True)


def swap_entry(text: str, path: str = SWAPFILE) -> str:
    """fstab with one swap line for `path`, at the end."""
    return _edit(text, [Entry(path, "none", "swap", "sw")], first=False)


def data_disk_mountpoint(index: int) -> str:
    return f"{DATA_MOUNT_ROOT}/disk{index}"


def data_disk_entry(text: str, uuid: str, index: int, fs_type: str) -> str:
    """fstab with disk `index` mounted by UUID at /srv/diskN, at the end.

    nofail: a missing or broken data disk must not stop the instance from booting."""
    entry = Entry(f"UUID={uuid}", data_disk_mountpoint(index), fs_type, "defaults,nofail",
                  FSCK_PASS.get(fs_type, "0"))
    return _edit(text, [entry], first=False)
