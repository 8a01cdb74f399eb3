"""The harness itself: `GH_NODES=2 up` gives a working two-node cluster, `down` leaves nothing behind.

Runs its own short-lived cluster (own state dir and namespace handles) before
the scenario's; node2 joins with `gnt-node add`; it makes an `ext` instance
on node2 without installing an OS (so a loop device is attached), runs a
command on node2 (`GH_EXEC_NODE`) and checks that `down` ends every process
of both nodes' namespaces (daemons, sshd), detaches the loop devices and
removes namespaces and state, and that the host's /etc/ganeti, /etc/ssh
and /root/.ssh were not written.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.cluster.ganeti.conftest import HARNESS, NODE, NODE2, _prerequisites

pytestmark = pytest.mark.ganeti


def test_up_then_down_leaves_nothing(tmp_path):
    reason = _prerequisites()
    if reason:
        pytest.skip(f"ganeti tier: {reason}")
    state = Path(os.environ.get("OSDEF_GANETI_HARNESS_STATE", "/var/tmp/osdef-ganeti-harness-test"))
    nsdir = Path(os.environ.get("OSDEF_GANETI_HARNESS_NSDIR", "/run/osdef-ganeti-harness-test"))
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root", "LANG": "C.UTF-8",
           "GH_STATE": str(state), "GH_NSDIR": str(nsdir), "GH_NODES": "2"}

    def harness(*args: str, check: bool = True, **extra: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(HARNESS), *args], env={**env, **extra}, capture_output=True,
                              text=True, timeout=600, check=check)

    # the packages' own files (ganeti's /etc/ganeti, openssh-server's host keys) are the one host side
    # effect: on a fresh machine they appear with the install, before the harness's work is looked at
    harness("packages")
    host_before = {d: _listing(Path(d)) for d in ("/etc/ganeti", "/etc/ssh", "/root/.ssh")}

    try:
        harness("up")
        assert harness("status", check=False).returncode == 0
        netns = {os.stat(nsdir / "net").st_ino, os.stat(nsdir / "node2" / "net").st_ino}
        nodes = harness("exec", "gnt-node", "list", "--no-headers", "-o", "name").stdout.split()
        assert nodes == [NODE, NODE2]
        assert harness("exec", "hostname", GH_EXEC_NODE=NODE2).stdout.strip() == NODE2
        assert harness("exec", "hostname").stdout.strip() == NODE
        harness("exec", "gnt-instance", "add", "-t", "ext", "--disk", "0:size=16M,provider=loopfile",
                "-o", "image+debian-12", "--no-install", "--no-start", "--no-name-check", "--no-ip-check", "-n", NODE2,
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
    assert {d: _listing(Path(d)) for d in host_before} == host_before, "the host's own files changed"
    assert subprocess.run(["losetup", "-j", str(volumes[0]), "-n"], capture_output=True,
                          text=True).stdout == ""
    left = [p for p in Path("/proc").iterdir() if p.name.isdigit() and _netns_ino(p) in netns]
    assert not left, f"processes left in the cluster's network namespaces: {[p.name for p in left]}"


def _listing(d: Path) -> dict[str, float]:
    """Names and mtimes in d ({} when d is missing: the harness may add an empty mount point)."""
    try:
        return {p.name: p.lstat().st_mtime for p in d.iterdir()}
    except FileNotFoundError:
        return {}


def _netns_ino(proc: Path) -> int | None:
    try:
        return os.stat(proc / "ns" / "net").st_ino
    except OSError:
        return None
