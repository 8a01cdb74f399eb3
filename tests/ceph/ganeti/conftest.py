"""A real two-node Ganeti cluster (tests/cluster/ganeti/harness.sh) wired to the tier's Ceph, for tests/ceph/ganeti/.

Its own state dir and namespaces, unique per run (another cluster may be up
on this machine: the cluster tier's, another agent's); always taken down.
The Ceph's LAN port is plugged into the harness's LAN bridge, so both nodes
reach the monitor at 192.0.2.50; each node gets the `rbd` ExtStorage
provider (user client.ganeti) and the OS dir with the tier's site config
(its ceph.conf); the cluster enables the kvm hypervisor (kernel_path empty:
boot from the disk; kvm_flag=disabled: TCG) beside fake, for access=userspace.
"""

from __future__ import annotations

import os
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import REPO, TEST_IMAGE_CACHE
from tests.support.ceph import USER

HARNESS = REPO / "tests" / "cluster" / "ganeti" / "harness.sh"
OSDEF = str(REPO / ".venv" / "bin" / "osdef")
NODE, NODE2 = "node1.example.test", "node2.example.test"
PROVIDER_DIR = "/srv/ganeti/extstorage/rbd"


@dataclass
class RbdCluster:
    env: dict[str, str]
    state: Path
    timings: list[tuple[str, float]] = field(default_factory=list)

    def harness(self, *args: str, timeout: float = 900, node: str | None = None) -> subprocess.CompletedProcess:
        env = {**self.env, "GH_EXEC_NODE": node} if node else self.env
        return subprocess.run([str(HARNESS), *args], env=env, capture_output=True, text=True, timeout=timeout)

    def gnt(self, *args: str, step: str | None = None, node: str | None = None, check: bool = True,
            timeout: float = 900) -> subprocess.CompletedProcess:
        started = time.monotonic()
        proc = self.harness("exec", *args, timeout=timeout, node=node)
        if step:
            self.timings.append((step, time.monotonic() - started))
        if check and proc.returncode != 0:
            pytest.fail(f"{' '.join(args[:3])} … failed (rc {proc.returncode}):\n{proc.stdout[-3000:]}\n"
                        f"{proc.stderr[-3000:]}", pytrace=False)
        return proc

    def logs(self) -> list[Path]:
        """Every file Ganeti logged on either node (os/, extstorage/, the daemons')."""
        return [p for d in (self.state / "log", self.state / "node2" / "log") for p in d.rglob("*") if p.is_file()]

    def node_path(self, node: str, inside: str) -> Path:
        """A path under /var/lib/ganeti or /var/log/ganeti of a node, on the host."""
        base = self.state if node == NODE else self.state / "node2"
        for prefix, outside in (("/var/lib/ganeti", "lib"), ("/var/log/ganeti", "log")):
            if inside.startswith(prefix):
                return base / outside / inside[len(prefix) + 1:]
        raise ValueError(inside)


@pytest.fixture(scope="package")
def rbd_cluster(ceph, ceph_site_config, request) -> RbdCluster:
    if not Path(OSDEF).exists():
        pytest.skip("no .venv/bin/osdef: run make venv")
    run_id = f"{os.getpid()}"
    state = Path(f"/var/tmp/osdef-ganeti-ceph-{run_id}")
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root", "LANG": "C.UTF-8",
           "GH_STATE": str(state), "GH_NSDIR": f"/run/osdef-ganeti-ceph-{run_id}", "GH_NODES": "2",
           "GH_SITE_CONFIG": str(ceph_site_config), "GH_NODE_CACHE": str(TEST_IMAGE_CACHE)}
    cluster = RbdCluster(env, state)

    noded = state / "run" / "ganeti-noded.pid"

    def down():
        if noded.exists():  # the Ceph stays up for the rest of the tier: its port must not die with node1
            ceph.leave_lan(int(noded.read_text()))
        proc = cluster.harness("down", timeout=120)
        if proc.returncode != 0:
            print(f"harness down failed:\n{proc.stderr}")
        print("\nganeti on rbd, timings:\n" + "\n".join(f"  {s}: {t:.1f} s" for s, t in cluster.timings))

    request.addfinalizer(down)
    started = time.monotonic()
    proc = cluster.harness("up")
    if proc.returncode != 0:
        pytest.fail(f"harness up failed:\n{proc.stderr[-4000:]}", pytrace=False)
    cluster.timings.append(("cluster up (2 nodes)", time.monotonic() - started))
    ceph.join_lan(int(noded.read_text()), "gntlan")
    for node in (NODE, NODE2):
        cluster.gnt(OSDEF, "install-extstorage", "--provider", "rbd", "--dir", PROVIDER_DIR, "--conf",
                    str(ceph.conf), "--user", USER, "--connect-timeout", "10", node=node)
    cluster.gnt("gnt-cluster", "modify", "--enabled-hypervisors=fake,kvm",
                "-H", "kvm:kernel_path=,initrd_path=,kvm_flag=disabled", step="enable kvm")
    return cluster
