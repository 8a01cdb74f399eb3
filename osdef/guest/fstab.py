"""Pure rendering of /etc/fstab: the root (and ESP) entries by UUID, other lines kept."""

from __future__ import annotations

ROOT_OPTIONS = {"ext2": "errors=remount-ro", "ext3": "errors=remount-ro",
                "ext4": "errors=remount-ro", "xfs": "defaults", "btrfs": "defaults"}


def render_fstab(text: str, root_uuid: str, root_fs_type: str, esp_uuid: str | None = None) -> str:
    """fstab with `/` (and `/boot/efi` when esp_uuid) mounted by UUID.

    An existing `/` line keeps its options; images often carry LABEL= or
    /dev/ names that do not survive osdef's fresh UUID and partitioning.
    """
    out: list[str] = []
    root_options = ROOT_OPTIONS.get(root_fs_type, "defaults")
    for line in text.splitlines():
        fields = line.split()
        if fields and not fields[0].startswith("#") and len(fields) >= 2:
            if fields[1] == "/":
                if len(fields) >= 4:
                    root_options = fields[3]
                continue
            if fields[1] == "/boot/efi" and esp_uuid:
                continue
        out.append(line)
    while out and not out[-1].strip():
        out.pop()
    entries = [f"UUID={root_uuid}\t/\t{root_fs_type}\t{root_options}\t0\t1"]
    if esp_uuid:
        entries.append(f"UUID={esp_uuid}\t/boot/efi\tvfat\tumask=0077\t0\t1")
    first_data = next((i for i, l in enumerate(out) if l.strip() and not l.lstrip().startswith("#")),
                      len(out))
    out[first_data:first_data] = entries
    return "\n".join(out) + "\n"
