"""The ceph tier: one real Ceph cluster (tests/support/ceph.py) for all of tests/ceph/, torn down when it is done.

The `ceph` fixture starts the cluster in a network namespace of its own and
moves this pytest process into it (so librbd in-process, libguestfs' qemu
and the installed scripts reach it), and always ends with the daemons ended
by PID, the namespace deleted and its state removed — also when a test
failed or was interrupted.  Every test names its own images (`image_name`).
tests/parallel.py keeps the whole tier on one worker: one cluster per run.
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

import pytest

from tests.conftest import install_os_dir, write_site_config
from tests.support.ceph import CephCluster, missing_packages


def _prerequisites() -> str | None:
    if os.geteuid() != 0:
        return "needs root (network namespaces)"
    missing = missing_packages()
    if missing:
        return f"needs the Debian packages {' '.join(missing)} (make test installs them)"
    if shutil.which("ip") is None:
        return "ip (iproute2) not found"
    return None


@pytest.fixture(scope="package")  # torn down as soon as tests/ceph/ is done, not at the end of the run
def ceph(tmp_path_factory, request) -> CephCluster:
    reason = _prerequisites()
    if reason:
        pytest.skip(f"ceph tier: {reason}")
    # the tier's guests are made from debian-12: on a fresh machine it is built here, before this worker
    # enters the namespace (the build needs the mirror), under the cache's lock (another tier may be at it)
    from tests.support.image_cache import ensure_test_image

    ensure_test_image("debian-12")
    cluster = CephCluster(tmp_path_factory.mktemp("ceph"))
    request.addfinalizer(cluster.stop)
    cluster.start()
    cluster.enter_netns()
    print(f"\nceph tier: cluster up in {cluster.started:.1f} s (netns {cluster.netns})")
    return cluster


@pytest.fixture(scope="package")
def ceph_site_config(ceph, tmp_path_factory) -> Path:
    """The test site config (TCG, test image cache) plus the cluster's ceph.conf and a short connect timeout."""
    return write_site_config(tmp_path_factory.mktemp("ceph-site") / "osdef.yaml",
                             extra=f"ceph:\n  conf: {ceph.conf}\n  connect_timeout: 10\n")


@pytest.fixture(scope="package")
def rbd_os_dir(ceph_site_config, tmp_path_factory) -> Path:
    """`osdef install` with that site config: the OS dir Ganeti would run."""
    return install_os_dir(tmp_path_factory, ceph_site_config)


@pytest.fixture
def image_name() -> str:
    return f"t-{uuid.uuid4().hex[:12]}"


@pytest.fixture(autouse=True)
def _ceph_settings(ceph):
    """Every test talks to the tier's cluster with its conf unless it says otherwise; restored afterwards."""
    from osdef.config import CephSettings
    from osdef.disk import ceph as cephmod

    saved = cephmod.settings()
    cephmod.configure(CephSettings(conf=ceph.conf, connect_timeout=10))
    yield
    cephmod.configure(saved)
