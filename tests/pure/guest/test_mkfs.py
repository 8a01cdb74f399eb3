"""The ext features osdef gives a guest's filesystems come from the variant's profile, never
from the node's mke2fs.conf (checked with e2fsprogs itself: mke2fs makes, dumpe2fs reads)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from osdef import fsprofiles as mkfs
from osdef.paths import data_dir
from osdef.variants import load_dir

pytestmark = pytest.mark.skipif(shutil.which("mke2fs", path="/sbin:/usr/sbin") is None,
                                reason="e2fsprogs missing")

# a Debian 13 node's /etc/mke2fs.conf as far as features go (e2fsprogs 1.47.2-3)
TRIXIE_CONF = """\
[defaults]
	base_features = sparse_super,large_file,filetype,resize_inode,dir_index,ext_attr
	default_mntopts = acl,user_xattr
	enable_periodic_fsck = 0
	blocksize = 4096
	inode_size = 256
	inode_ratio = 16384
[fs_types]
	ext3 = {
		features = has_journal
	}
	ext4 = {
		features = has_journal,extent,huge_file,flex_bg,metadata_csum,metadata_csum_seed,64bit,dir_nlink,extra_isize,orphan_file
	}
"""


def features(image: Path) -> set[str]:
    out = subprocess.run(["dumpe2fs", "-h", str(image)], capture_output=True, text=True, check=True).stdout
    line = next(ln for ln in out.splitlines() if ln.startswith("Filesystem features:"))
    return set(line.split(":", 1)[1].split())


def make(tmp_path: Path, fs_type: str, extra: list[str], env: dict[str, str] | None = None) -> Path:
    image = tmp_path / f"{fs_type}.img"
    image.unlink(missing_ok=True)
    subprocess.run(["truncate", "-s", "64M", str(image)], check=True)
    subprocess.run(["mke2fs", "-q", "-F", "-t", fs_type, *extra, str(image)], check=True,
                   env={"PATH": "/sbin:/usr/sbin:/bin:/usr/bin", **(env or {})})
    return image


@pytest.mark.parametrize("profile", sorted(mkfs.PROFILES))
@pytest.mark.parametrize("fs_type", ["ext2", "ext3", "ext4"])
def test_a_trixie_nodes_defaults_do_not_leak_into_the_profile(tmp_path, profile, fs_type):
    conf = tmp_path / "mke2fs.conf"
    conf.write_text(TRIXIE_CONF)
    opts = mkfs.mkfs_options(profile, fs_type)
    image = make(tmp_path, fs_type, ["-O", opts["features"]], {"MKE2FS_CONFIG": str(conf)})
    assert features(image) == set(mkfs.PROFILES[profile][fs_type])
    subprocess.run(["e2fsck", "-fn", str(image)], check=True, capture_output=True)


def test_the_debian_12_profile_is_what_debian_12s_own_mke2fs_makes(tmp_path):
    # this machine is Debian 12: its plain mke2fs (its /etc/mke2fs.conf) is the oracle
    if "bookworm" not in Path("/etc/os-release").read_text() and \
            not Path("/etc/debian_version").read_text().startswith("12"):
        pytest.skip("needs a Debian 12 host")
    for fs_type in ("ext2", "ext3", "ext4"):
        assert features(make(tmp_path, fs_type, [])) == set(mkfs.PROFILES["debian-12"][fs_type])


def test_each_shipped_variant_names_its_guests_profile():
    catalog = load_dir(data_dir("variants"))
    assert {v.name: v.mkfs for v in catalog.variants} == {
        "debian": "debian-13", "debian-12": "debian-12", "debian-13": "debian-13"}


def test_only_ext_gets_feature_options():
    assert mkfs.mkfs_options("debian-12", "xfs") == {}
    assert mkfs.mkfs_options("debian-12", "ext4")["features"].startswith("none,")
    with pytest.raises(Exception, match="unknown mkfs profile 'rhel-9'"):
        mkfs.ext_features("rhel-9", "ext4")


def xfs_superblock(tmp_path: Path, *options: str) -> bytes:
    """The first 512 bytes of an XFS made by this host's mkfs.xfs (the oracle) with options."""
    image = tmp_path / "xfs.img"
    image.unlink(missing_ok=True)
    subprocess.run(["truncate", "-s", "512M", str(image)], check=True)
    subprocess.run(["mkfs.xfs", "-q", "-f", *options, str(image)], check=True,
                   env={"PATH": "/sbin:/usr/sbin:/bin:/usr/bin"})
    return image.read_bytes()[:512]


@pytest.mark.skipif(shutil.which("mkfs.xfs", path="/sbin:/usr/sbin") is None, reason="xfsprogs missing")
def test_an_xfs_root_debian_12s_grub_cannot_read_is_named(tmp_path):
    # Debian 13's mkfs.xfs (6.13) turns on nrext64 by default; GRUB 2.06 (Debian 12) predates it
    from osdef.disk.ondisk import Damaged, xfs

    trixie_default = xfs.incompat_features(xfs_superblock(tmp_path, "-m", "rmapbt=1", "-i", "nrext64=1"))
    assert mkfs.unreadable_xfs_features("debian-12", trixie_default) == ["nrext64"]
    assert mkfs.unreadable_xfs_features("debian-13", trixie_default) == []
    bookworm_default = xfs.incompat_features(xfs_superblock(tmp_path))  # this Debian 12 host's defaults
    assert mkfs.unreadable_xfs_features("debian-12", bookworm_default) == []
    v4 = xfs.incompat_features(xfs_superblock(tmp_path, "-m", "crc=0"))
    assert v4 is None and mkfs.unreadable_xfs_features("debian-12", v4) == []
    with pytest.raises(Damaged, match="not an XFS superblock"):
        xfs.incompat_features(b"\0" * 512)


def test_create_stops_on_an_xfs_root_the_guest_cannot_boot(tmp_path):
    from osdef.errors import GuestError
    from osdef.guest.mkfs import check_root_readable

    superblock = bytearray(512)
    superblock[:4], superblock[100:102], superblock[216:220] = b"XFSB", (0xB4A5).to_bytes(2, "big"), \
        (0x2B).to_bytes(4, "big")

    class Session:
        def read_device(self, device, size, offset=0):
            return bytes(superblock)[offset:offset + size]

    check_root_readable(Session(), "ext4", "/dev/sda2", "debian-12")  # ext: its own profile
    check_root_readable(Session(), "xfs", "/dev/sda2", "debian-13")
    with pytest.raises(GuestError, match=r"mkfs.xfs made the root with nrext64, which the debian-12 guest's "
                                         r"boot loader cannot read: use filesystem=ext4"):
        check_root_readable(Session(), "xfs", "/dev/sda2", "debian-12")
    superblock[:4] = b"\0\0\0\0"  # what mkfs.xfs left is not an XFS superblock: one line, no traceback
    with pytest.raises(GuestError, match=r"^the root just made on /dev/sda2: not an XFS superblock$"):
        check_root_readable(Session(), "xfs", "/dev/sda2", "debian-12")


def test_a_tarball_layout_gets_the_plans_profile(tmp_path):
    import io

    from osdef.create.pipeline import ImageData, make_layout
    from osdef.create.plan import CreatePlan

    plan = CreatePlan(layout="tar", hostname="web1.example.org", boot="none", table="gpt", fs_type="xfs",
                      mkfs_profile="debian-13")
    layout = make_layout(tmp_path / "disk", ImageData(io.BytesIO(b""), 0), plan)
    assert (layout.fs_type, layout.mkfs_profile) == ("xfs", "debian-13")
