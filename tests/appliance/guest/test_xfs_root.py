"""An XFS root made in the appliance is checked against the guest's boot loader (osdef.guest.mkfs).

The appliance's mkfs.xfs makes the filesystem; its superblock is read back through the
session and judged by disk/ondisk/xfs. xfs_db on the host, reading the same disk,
is the oracle for the feature mask.
"""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from osdef.disk.ondisk import xfs
from osdef.errors import GuestError
from osdef.guest.mkfs import check_root_readable, make_filesystem
from osdef.guest.session import GuestSession

from tests.support.guest import MiB, sparse_file

pytestmark = pytest.mark.guestfs


@pytest.mark.skipif(shutil.which("xfs_db", path="/sbin:/usr/sbin") is None, reason="xfsprogs missing")
def test_an_xfs_root_made_in_the_appliance_is_read_and_judged(tmp_path, settings, monkeypatch):
    disk = sparse_file(tmp_path / "disk.img", 512 * MiB)
    with GuestSession([disk], settings) as session:
        device = session.device(0)
        make_filesystem(session, "xfs", device, "debian-12", "make the root")
        superblock = session.read_device(device, xfs.SUPERBLOCK_SIZE, 0)
        check_root_readable(session, "xfs", device, "debian-12")  # this Debian 12 appliance's defaults
        # a boot loader that reads no incompatible feature at all: the appliance's (ftype …) are named
        from osdef import fsprofiles

        monkeypatch.setitem(fsprofiles.XFS_ROOT_READABLE, "debian-12", ())
        with pytest.raises(GuestError, match=r"^this node's mkfs.xfs made the root with ftype"):
            check_root_readable(session, "xfs", device, "debian-12")
    out = subprocess.run(["xfs_db", "-r", "-c", "sb 0", "-c", "print features_incompat", str(disk)],
                         capture_output=True, text=True, check=True).stdout
    assert xfs.incompat_features(superblock) == int(re.search(r"= (0x[0-9a-f]+|\d+)", out).group(1), 0)
