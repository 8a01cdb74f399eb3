"""The harness itself: `up` gives a working cluster, `down` leaves nothing behind.

Runs its own short-lived cluster (own state dir and namespace handles) before
the scenario's; it makes an `ext` instance without installing an OS (so a
loop device is attached) and checks that `down` ends every process of the
namespace, detaches the loop devices and removes namespaces and state.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.ganeti.conftest import HARNESS, NODE, _prerequisites

pytestmark = pytest.mark.ganeti


def test_up_then_down_leaves_nothing(tmp_path):
    reason = _prerequisites()
    if reason:
        pytest.skip(f"ganeti tier: {reason}")
    state, nsdir = Path("/var/tmp/osdef-ganeti-harness-test"), Path("/run/osdef-ganeti-harness-test")
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root", "LANG": "C.UTF-8",
           "GH_STATE": str(state), "GH_NSDIR": str(nsdir)}

    def harness(*args: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run([str(HARNESS), *args], env=env, capture_output=True, text=True,
                              timeout=600, check=check)

    try:
        harness("up")
        assert harness("status", check=False).returncode == 0
        netns = os.stat(nsdir / "net").st_ino
        harness("exec", "gnt-instance", "add", "-t", "ext", "--disk", "0:size=16M,provider=loopfile",
                "-o", "image+debian-12", "--no-install", "--no-start", "--no-name-check", "--no-ip-check", "-n", NODE,
                "t1.example.test")
        harness("exec", "gnt-instance", "activate-disks", "t1.example.test")
        volumes = list((state / "srv" / "extstorage-data").glob("*.img"))
        assert len(volumes) == 1
        loops = subprocess.run(["losetup", "-j", str(volumes[0]), "-n", "-O", "NAME"],
                               capture_output=True, text=True).stdout.split()
        assert len(loops) == 1
        # the host itself is untouched: hostname, /srv/ganeti/os
        assert os.uname().nodename != NODE
    finally:
        harness("down", check=False)

    assert not nsdir.exists() and not state.exists()
    assert not Path("/etc/ganeti/file-storage-paths").exists()
    assert subprocess.run(["losetup", "-j", str(volumes[0]), "-n"], capture_output=True,
                          text=True).stdout == ""
    left = [p for p in Path("/proc").iterdir() if p.name.isdigit() and _netns_ino(p) == netns]
    assert not left, f"processes left in the cluster's network namespace: {[p.name for p in left]}"


def _netns_ino(proc: Path) -> int | None:
    try:
        return os.stat(proc / "ns" / "net").st_ino
    except OSError:
        return None
