"""Small synthetic guests for the network/OS-parameter appliance tests: ext4 images made with
`mkfs.ext4 -d`, each carrying the markers of one network backend (merged-/usr layout, like Debian 12).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from osdef import config

MiB = 1 << 20

COMMON = {
    "etc/os-release": 'ID=debian\nVERSION_ID="12"\nPRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\n',
    "etc/hostname": "image-host\n",
    "etc/fstab": "# static file system information\nUUID=0000\t/\text4\terrors=remount-ro\t0\t1\n",
    "etc/shadow": "root:*:0:0:99999:7:::\ndaemon:*:19000:0:99999:7:::\n",
    "etc/resolv.conf": "nameserver 10.0.2.3\n",
    "usr/lib/systemd/systemd": "",
    "usr/lib/systemd/systemd-networkd": "",
    "usr/lib/systemd/system/systemd-networkd.service": "[Unit]\n",
    "usr/lib/systemd/system/systemd-networkd.socket": "[Unit]\n",
    "usr/lib/systemd/system/systemd-networkd-wait-online.service": "[Unit]\n",
}
IFUPDOWN = {
    "usr/sbin/ifup": "",
    "etc/network/interfaces": ("auto lo\niface lo inet loopback\n\nallow-hotplug ens3\n"
                               "iface ens3 inet dhcp\n"),
    "etc/network/interfaces.d/eth0": "auto eth0\niface eth0 inet dhcp\n",
}
NETPLAN = {
    "usr/sbin/netplan": "",
    "etc/netplan/50-cloud-init.yaml": "network:\n  version: 2\n  ethernets:\n    eth0: {dhcp4: true}\n",
    "usr/lib/systemd/systemd-resolved": "",
}
NETWORKMANAGER = {
    "usr/sbin/NetworkManager": "",
    "usr/sbin/ifup": "",
    "etc/network/interfaces": "auto lo\niface lo inet loopback\nallow-hotplug ens3\niface ens3 inet dhcp\n",
    "usr/lib/systemd/system/NetworkManager.service": "[Unit]\n",
}
CLOUD_INIT = {"usr/bin/cloud-init": "", "etc/cloud/cloud.cfg": "datasource_list: [Ec2]\n"}

# name → (files, symlinks {link: target})
GUESTS: dict[str, tuple[dict[str, str], dict[str, str]]] = {
    "ifupdown": ({**COMMON, **IFUPDOWN}, {}),
    "netplan": ({**COMMON, **NETPLAN}, {"etc/resolv.conf": "../run/systemd/resolve/stub-resolv.conf"}),
    "networkmanager": ({**COMMON, **NETWORKMANAGER}, {
        "etc/systemd/system/multi-user.target.wants/NetworkManager.service":
            "/lib/systemd/system/NetworkManager.service"}),
    "networkd": (dict(COMMON), {}),
    "cloud-init": ({**COMMON, **IFUPDOWN, **CLOUD_INIT}, {}),
    "cloud-init-off": ({**COMMON, **CLOUD_INIT}, {}),
    "cloud-init-routed": ({**COMMON, **IFUPDOWN, **CLOUD_INIT}, {}),  # customized with CASES["routed"]
}


def make_tree(root: Path, files: dict[str, str], links: dict[str, str]) -> Path:
    root.mkdir(parents=True)
    for d in ("usr/bin", "usr/sbin", "usr/lib", "etc", "root", "tmp", "run", "srv"):
        (root / d).mkdir(parents=True, exist_ok=True)
    for name in ("bin", "sbin", "lib"):
        (root / name).symlink_to(f"usr/{name}")
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    (root / "etc/shadow").chmod(0o640)
    zone = root / "usr/share/zoneinfo/Europe/Berlin"
    zone.parent.mkdir(parents=True)
    shutil.copyfile("/usr/share/zoneinfo/Europe/Berlin", zone)
    (root / "usr/share/zoneinfo/UTC").write_bytes(Path("/usr/share/zoneinfo/UTC").read_bytes())
    for rel, target in links.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists() or path.is_symlink():
            path.unlink()
        path.symlink_to(target)
    return root


def ext4_image(tree: Path, image: Path, size_mib: int) -> Path:
    subprocess.run(["mkfs.ext4", "-q", "-F", "-d", str(tree), str(image), f"{size_mib}M"],
                   check=True, capture_output=True)
    return image


def btrfs_image(tree: Path, image: Path, size_mib: int) -> Path:
    sparse(image, size_mib * MiB)
    subprocess.run(["mkfs.btrfs", "-q", "--rootdir", str(tree), str(image)], check=True,
                   capture_output=True)
    return image


def sparse(path: Path, size: int) -> Path:
    with open(path, "wb") as f:
        f.truncate(size)
    return path


@pytest.fixture(scope="module")
def guest_disks(tmp_path_factory) -> dict[str, Path]:
    """One small ext4 disk per synthetic guest (name → image file), plus a btrfs root ("btrfs");
    removed with the temp dir."""
    base = tmp_path_factory.mktemp("net-guests")
    disks = {name: ext4_image(make_tree(base / name, files, links), base / f"{name}.ext4", 16)
             for name, (files, links) in GUESTS.items()}
    files, links = GUESTS["ifupdown"]
    disks["btrfs"] = btrfs_image(make_tree(base / "btrfs", files, links), base / "btrfs.img", 160)
    return disks


@pytest.fixture(scope="module")
def libguestfs_settings(site_config_file) -> config.LibguestfsSettings:
    return config.load_file(site_config_file).libguestfs
