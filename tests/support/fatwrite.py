"""Write a directory tree into an empty FAT32 made by mkfs.vfat, for the FAT32s mtools cannot write.

mtools 4.0.32 (Debian 12) refuses a FAT32 with fewer than 65525 clusters
("No directory slots"), the layout mkfs.vfat gives an ESP with large clusters
or 4 KiB sectors, while Linux, dosfstools, EDK2 and 7-Zip read it as FAT32.
This writes short (8.3) names only, allocates clusters in order from the
first free one, updates every FAT copy and the FSInfo sector.  The caller
checks the result with ``fsck.fat -n`` and reads it back with 7-Zip, so a
bug here fails a test's precondition; it can never make a test pass.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path

EOC = 0x0FFFFFFF
STAMP = struct.pack("<HH", (12 << 11), ((2024 - 1980) << 9) | (1 << 5) | 1)  # 12:00, 2024-01-01


@dataclass
class _Fat32:
    image: Path
    offset: int
    sector: int
    cluster: int
    fat_start: int
    fat_bytes: int
    fats: int
    data_start: int
    clusters: int
    root: int
    fsinfo: int
    chains: dict[int, int] = field(default_factory=dict)
    next_free: int = 3

    @classmethod
    def open(cls, image: Path, offset: int) -> _Fat32:
        with open(image, "rb") as f:
            f.seek(offset)
            boot = f.read(512)
        bps, spc, reserved, fats, _, total16 = struct.unpack_from("<HBHBHH", boot, 11)
        total32, fat_sectors, _, _, root, fsinfo = struct.unpack_from("<IIHHIH", boot, 32)
        total = total16 or total32  # mkfs.vfat puts a small count in the 16-bit field, FAT32 or not
        assert struct.unpack_from("<H", boot, 22)[0] == 0, "not a FAT32 (BPB_FATSz16 is not 0)"
        data = reserved + fats * fat_sectors
        return cls(image, offset, bps, bps * spc, reserved * bps, fat_sectors * bps, fats, data * bps,
                   (total - data) // spc, root, fsinfo * bps)

    def allocate(self, count: int) -> int:
        """A chain of ``count`` new clusters (0 for none): its first cluster."""
        if count == 0:
            return 0
        first = self.next_free
        assert first + count <= self.clusters + 2, "the FAT32 is full"
        for c in range(first, first + count):
            self.chains[c] = c + 1 if c + 1 < first + count else EOC
        self.next_free += count
        return first

    def write_cluster_data(self, first: int, data: bytes) -> None:
        with open(self.image, "r+b") as f:
            for i in range(0, len(data), self.cluster):
                f.seek(self.offset + self.data_start + (first + i // self.cluster - 2) * self.cluster)
                f.write(data[i:i + self.cluster])

    def close(self) -> None:
        """Write the chains into every FAT and the free count into FSInfo."""
        with open(self.image, "r+b") as f:
            for n in range(self.fats):
                for c, value in self.chains.items():
                    f.seek(self.offset + self.fat_start + n * self.fat_bytes + 4 * c)
                    f.write(struct.pack("<I", value))
            f.seek(self.offset + self.fsinfo + 488)
            f.write(struct.pack("<II", self.clusters - (self.next_free - 2), self.next_free))


def _short_name(name: str) -> bytes:
    base, _, ext = name.upper().rpartition(".") if "." in name else (name.upper(), "", "")
    assert 0 < len(base) <= 8 and len(ext) <= 3, f"{name!r} is not an 8.3 name"
    return base.ljust(8).encode() + ext.ljust(3).encode()


def _entry(name: bytes, attr: int, cluster: int, size: int, lower: bool = False) -> bytes:
    """A directory entry; ``lower``: the name is shown in lower case (NTRes 0x18, as Windows NT, Linux, 7-Zip read it)."""
    return struct.pack("<11sBBB4s2sH4sHI", name, attr, 0x18 if lower else 0, 0, STAMP, STAMP[2:], cluster >> 16,
                       STAMP, cluster & 0xFFFF, size)


def _dir_clusters(fat: _Fat32, directory: Path, dots: int) -> int:
    entries = dots + sum(1 for c in directory.iterdir() if not c.is_symlink())
    return -(-entries * 32 // fat.cluster)


def _write_dir(fat: _Fat32, directory: Path, cluster: int, parent: int, clusters: int) -> int:
    """Write ``directory``'s children (recursively); its entries fill the ``clusters`` from ``cluster`` on."""
    entries = [] if cluster == fat.root else [_entry(b".".ljust(11), 0x10, cluster, 0),
                                              _entry(b"..".ljust(11), 0x10, parent, 0)]
    written = 0
    for child in sorted(directory.iterdir()):
        if child.is_symlink():
            continue
        if child.is_dir():
            count = _dir_clusters(fat, child, 2)
            first = fat.allocate(count)
            written += _write_dir(fat, child, first, 0 if cluster == fat.root else cluster, count) + 1
            entries.append(_entry(_short_name(child.name), 0x10, first, 0, child.name.islower()))
        else:
            data = child.read_bytes()
            first = fat.allocate(-(-len(data) // fat.cluster))
            fat.write_cluster_data(first, data)
            entries.append(_entry(_short_name(child.name), 0x20, first, len(data), child.name.islower()))
            written += 1
    fat.write_cluster_data(cluster, b"".join(entries).ljust(clusters * fat.cluster, b"\0"))
    return written


def small_fat32(image: Path, offset: int) -> bool:
    """A FAT32 (BPB_FATSz16 0, as mkfs.vfat -F 32 makes it) with fewer than 65525 clusters?"""
    with open(image, "rb") as f:
        f.seek(offset)
        boot = f.read(512)
    if struct.unpack_from("<H", boot, 22)[0] != 0:
        return False
    return _Fat32.open(image, offset).clusters < 65525


def write_tree(image: Path, offset: int, tree: Path) -> int:
    """Copy ``tree`` into the empty FAT32 at ``offset`` of ``image``; the number of files and directories."""
    fat = _Fat32.open(image, offset)
    clusters = max(1, _dir_clusters(fat, tree, 0))
    if clusters > 1:  # the root's first cluster exists (mkfs.vfat): chain more to it
        fat.chains[fat.root] = fat.allocate(clusters - 1)
    written = _write_dir(fat, tree, fat.root, 0, clusters)
    fat.close()
    return written
