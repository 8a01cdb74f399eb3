"""The real-cluster tier: one throw-away two-node Ganeti cluster for the whole test session.

The `cluster` fixture runs tests/cluster/ganeti/harness.sh (`down`, then `GH_NODES=2
up` with the test site config: libguestfs under TCG, the shared test image
cache on node 1, an empty private cache at the same path on node 2) and
always ends with `down`: processes ended by PID, loop devices detached,
namespaces and state removed, also when a test failed or was interrupted.
Each `gnt` call's wall time is recorded; the table is printed at the end of
the session and written to $OSDEF_GANETI_TIMINGS (default
/var/tmp/osdef-ganeti-timings.md).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from osdef import config as siteconfig
from tests.conftest import TEST_IMAGE_CACHE, write_site_config

HARNESS = Path(__file__).with_name("harness.sh")
STATE = Path(os.environ.get("OSDEF_GANETI_STATE", "/var/tmp/osdef-ganeti-test"))
NSDIR = Path(os.environ.get("OSDEF_GANETI_NSDIR", "/run/osdef-ganeti-test"))
TIMINGS = Path(os.environ.get("OSDEF_GANETI_TIMINGS", "/var/tmp/osdef-ganeti-timings.md"))
NODE = "node1.example.test"  # the master
NODE2 = "node2.example.test"
NODES = (NODE, NODE2)
SRV = "/srv/ganeti"  # as the cluster sees it; $STATE/srv on the host (node 2: $STATE/node2/srv)
SHARED = (f"{SRV}/shared-file-storage", f"{SRV}/extstorage-data")  # node 1's, on every node
REPO = Path(siteconfig.__file__).resolve().parents[1]
OSDEF = str(REPO / ".venv" / "bin" / "osdef")


@dataclass
class Cluster:
    env: dict[str, str]
    site_config: Path
    timings: list[tuple[str, float, int]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # measurements worth keeping next to the times

    def harness(self, *args: str, timeout: float = 900) -> subprocess.CompletedProcess:
        return subprocess.run([str(HARNESS), *args], env=self.env, capture_output=True, text=True,
                              timeout=timeout)

    def gnt(self, *args: str, step: str | None = None, check: bool = True,
            timeout: float = 600, node: str = NODE) -> subprocess.CompletedProcess:
        """Run a command inside the cluster (on node); record its wall time under `step`."""
        started = time.monotonic()
        if node == NODE:
            proc = self.harness("exec", *args, timeout=timeout)
        else:
            proc = subprocess.run([str(HARNESS), "exec", *args],
                                  env={**self.env, "GH_EXEC_NODE": node}, capture_output=True,
                                  text=True, timeout=timeout)
        elapsed = time.monotonic() - started
        if step:
            self.timings.append((step, elapsed, proc.returncode))
        if check and proc.returncode != 0:
            pytest.fail(f"{' '.join(args[:3])} … failed (rc {proc.returncode}):\n"
                        f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}", pytrace=False)
        return proc

    def host_path(self, cluster_path: str, node: str = NODE) -> Path:
        """Where a path under /srv/ganeti, /var/lib|log/ganeti or /etc/osdef of node is on the host."""
        state = node_state(node)
        if any(cluster_path == d or cluster_path.startswith(d + "/") for d in SHARED):
            state = STATE  # the NAS: node 1's dirs, bind-mounted on every node
        for inside, outside in ((SRV, state / "srv"), ("/var/lib/ganeti", state / "lib"),
                                ("/var/log/ganeti", state / "log"), ("/etc/osdef", state / "etc-osdef")):
            if cluster_path == inside or cluster_path.startswith(inside + "/"):
                return outside / cluster_path[len(inside) + 1:]
        raise ValueError(f"{cluster_path} is not inside the cluster's private dirs")

    def log_dir_of(self, node: str) -> Path:
        return node_state(node) / "log"

    @property
    def log_dir(self) -> Path:
        return STATE / "log"

    def image_cache(self, node: str) -> Path:
        """A node's image cache on the host: the shared test cache on node 1, a private dir on node 2."""
        return TEST_IMAGE_CACHE if node == NODE else node_state(node) / "node-cache"

    @property
    def libguestfs(self) -> siteconfig.LibguestfsSettings:
        return siteconfig.load_file(self.site_config).libguestfs

    def timings_table(self) -> str:
        rows = ["| step | wall (s) | rc |", "|---|---:|---:|"]
        rows += [f"| {name} | {secs:.1f} | {rc} |" for name, secs, rc in self.timings]
        total = sum(secs for _, secs, _ in self.timings)
        rows.append(f"| **total of the steps above** | **{total:.1f}** | |")
        return "\n".join(rows) + "\n" + "".join(f"\n- {n}" for n in self.notes) + ("\n" if self.notes else "")


def node_state(node: str) -> Path:
    """The harness's state dir of a node on the host."""
    return STATE if node == NODE else STATE / node.split(".")[0]


def _prerequisites() -> str | None:
    if os.geteuid() != 0:
        return "needs root (namespaces, loop devices, apt)"
    for tool in ("unshare", "nsenter", "losetup", "ip"):
        if shutil.which(tool) is None:
            return f"{tool} not found"
    if not Path(siteconfig.__file__).resolve().parents[1].joinpath(".venv/bin/osdef").exists():
        return "no .venv/bin/osdef: run make venv"
    return None


def _ensure_image(name: str, config: Path) -> None:
    """The image the scenario installs, built into the shared test cache if missing (~2 min once)."""
    try:
        from tests.support.image_cache import ensure_test_image
    except ImportError:
        ensure_test_image = None
    if ensure_test_image is not None:
        ensure_test_image(name)
        return
    repo = Path(siteconfig.__file__).resolve().parents[1]
    subprocess.run([str(repo / ".venv/bin/osdef"), "image", "build", name],
                   env={**os.environ, "OSDEF_CONFIG": str(config)}, check=True)


@pytest.fixture(scope="package")  # torn down as soon as tests/cluster/ganeti/ is done, not at the end of the run
def cluster(tmp_path_factory, request) -> Cluster:
    reason = _prerequisites()
    if reason:
        pytest.skip(f"ganeti tier: {reason}")
    conf = write_site_config(tmp_path_factory.mktemp("ganeti-site") / "osdef.yaml", cache_dir=TEST_IMAGE_CACHE)
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root", "LANG": "C.UTF-8",
           "GH_STATE": str(STATE), "GH_NSDIR": str(NSDIR), "GH_SITE_CONFIG": str(conf),
           "GH_NODES": str(len(NODES)), "GH_NODE_CACHE": str(TEST_IMAGE_CACHE)}
    c = Cluster(env=env, site_config=conf)

    def teardown():
        proc = c.harness("down", timeout=120)
        if proc.returncode != 0:
            print(f"harness down failed:\n{proc.stderr}")
        if c.timings:
            TIMINGS.write_text(c.timings_table())
            print(f"\nGaneti scenario timings (also in {TIMINGS}):\n{c.timings_table()}")

    request.addfinalizer(teardown)
    c.harness("down", timeout=120)  # leftovers of an interrupted run
    started = time.monotonic()
    proc = c.harness("up", timeout=900)
    c.timings.append(("cluster up: 2 nodes (namespaces, sshd, gnt-cluster init, gnt-node add, "
                      "osdef install on each)",
                      time.monotonic() - started, proc.returncode))
    if proc.returncode != 0:
        pytest.fail(f"harness up failed:\n{proc.stderr[-4000:]}", pytrace=False)
    _ensure_image("debian-12", conf)
    return c
