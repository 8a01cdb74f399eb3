"""A real, throw-away Ceph cluster for the ceph tier: one mon, one OSD, cephx on, in a network namespace of its own.

Recipe: ../shared/reference/ceph.md (no mgr, no ceph-volume, no kernel rbd).
The OSD is bluestore on a sparse file (memstore would hold every byte the tier
writes in RAM).  The namespace has a veth ``cephlan0`` with ``ADDRESS`` on it:
the monitor listens there, and its peer can be moved into another namespace
(the Ganeti harness's LAN, tests/ceph/ganeti) so that cluster nodes reach the
same Ceph.  The namespace's name is unique per run; ``stop`` ends the daemons
by PID (TERM, then KILL), deletes the namespace and the state dir, and is safe
to call twice.

``enter_netns``/``leave_netns`` move the calling thread (the pytest process)
into the namespace and back (setns(2) through libc: Python 3.11 has no
os.setns), so in-process librbd, libguestfs' qemu and the installed scripts
it starts all reach the cluster.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import shutil
import signal
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

PACKAGES = ("ceph-mon", "ceph-osd", "ceph-common", "python3-rbd", "python3-rados", "qemu-block-extra")
ADDRESS = "192.0.2.50"  # on the Ganeti harness's LAN (192.0.2.0/24; nodes are .10+, the cluster IP .100)
NETMASK = 24
LAN_IF = "cephlan0"
USER = "ganeti"  # a cephx user with the rbd profile on the pool (besides client.admin)
CLONE_NEWNET = 0x40000000
BLOCK_BYTES = 40 << 30  # sparse bluestore file
CONF = """\
[global]
fsid = {fsid}
mon host = [v2:{addr}:3300,v1:{addr}:6789]
public network = {addr}/32
ms bind ipv6 = false
auth cluster required = cephx
auth service required = cephx
auth client required = cephx
auth allow insecure global id reclaim = false
keyring = {dir}/keyring
run dir = {dir}/run
admin socket = {dir}/run/$name.asok
pid file = {dir}/run/$name.pid
log file = {dir}/log/$name.log
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
mon allow pool size one = true
mon allow pool delete = true
paxos propose interval = 0.05
mon osd prime pg temp = false
mon warn on pool no redundancy = false
mon data avail warn = 1
mon data avail crit = 0
osd crush chooseleaf type = 0
client mount timeout = 30
rados mon op timeout = 60
[mon]
mon data = {dir}/mon/$id
mon cluster log file = {dir}/log/cluster.log
[osd]
osd data = {dir}/osd/$id
osd objectstore = bluestore
bluestore block path = {dir}/osd/$id/block.img
bluestore block create = true
bluestore block size = {block}
bluestore fsck on mkfs = false
bluestore cache size = 134217728
osd memory target = 939524096
"""

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


def missing_packages() -> list[str]:
    out = []
    for p in PACKAGES:
        q = subprocess.run(["dpkg-query", "-W", "-f=${Status}", p], capture_output=True, text=True)
        if q.stdout != "install ok installed":
            out.append(p)
    return out


def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns: {os.strerror(err)}")


@dataclass
class CephCluster:
    """One running cluster; ``conf`` is what clients (and osdef's site config) name."""

    dir: Path
    netns: str = field(default_factory=lambda: f"osdef-ceph-{os.getpid()}-{uuid.uuid4().hex[:6]}")
    address: str = ADDRESS
    pool: str = "rbd"
    started: float = 0.0
    _saved_netns: int | None = None

    @property
    def conf(self) -> Path:
        return self.dir / "ceph.conf"

    @property
    def keyring(self) -> Path:
        return self.dir / "keyring"

    @property
    def env(self) -> dict[str, str]:
        return {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "CEPH_CONF": str(self.conf), "LC_ALL": "C"}

    def ns(self, *argv: str, check: bool = True, timeout: float = 120, **kw) -> subprocess.CompletedProcess:
        """Run argv inside the cluster's namespace (with CEPH_CONF)."""
        return subprocess.run(["ip", "netns", "exec", self.netns, *argv], env=self.env, capture_output=True,
                              text=True, check=check, timeout=timeout, **kw)

    def rbd(self, *args: str, check: bool = True) -> str:
        return self.ns("rbd", *args, check=check).stdout

    def du(self, image: str) -> int:
        """Bytes `rbd du` says the image uses (whole RADOS objects)."""
        import json

        out = json.loads(self.rbd("du", "--format", "json", f"{self.pool}/{image}"))
        return sum(i["used_size"] for i in out["images"] if i["name"] == image and "snapshot" not in i)

    def key(self, user: str = "admin") -> str:
        """client.<user>'s cephx key (tests check that it never shows up in any output)."""
        return subprocess.run(["ceph-authtool", str(self.keyring), "-n", f"client.{user}", "-p"],
                              capture_output=True, text=True, check=True).stdout.strip()

    def start(self) -> CephCluster:
        started = time.monotonic()
        d = self.dir
        for sub in ("run", "log", "mon/a", "osd/0"):
            (d / sub).mkdir(parents=True, exist_ok=True)
        subprocess.run(["ip", "netns", "add", self.netns], check=True)
        self._net("ip link set lo up",
                  f"ip link add {LAN_IF} type veth peer name {LAN_IF}p",
                  f"ip addr add {self.address}/{NETMASK} dev {LAN_IF}", f"ip link set {LAN_IF} up")
        self.conf.write_text(CONF.format(fsid=uuid.uuid4(), addr=self.address, dir=d, block=BLOCK_BYTES))
        k = str(self.keyring)
        self._run("ceph-authtool", "--create-keyring", k, "--gen-key", "-n", "mon.", "--cap", "mon", "allow *")
        self._run("ceph-authtool", k, "--gen-key", "-n", "client.admin", "--cap", "mon", "allow *",
                  "--cap", "osd", "allow *", "--cap", "mgr", "allow *", "--cap", "mds", "allow *")
        self._run("ceph-authtool", k, "--gen-key", "-n", "osd.0", "--cap", "mon", "allow profile osd",
                  "--cap", "osd", "allow *", "--cap", "mgr", "allow profile osd")
        self._run("monmaptool", "--create", "--fsid", self._fsid(), "--addv", "a",
                  f"[v2:{self.address}:3300,v1:{self.address}:6789]", str(d / "monmap"))
        self.ns("ceph-mon", "-c", str(self.conf), "--mkfs", "-i", "a", "--monmap", str(d / "monmap"),
                "--keyring", k)
        self.ns("ceph-mon", "-c", str(self.conf), "-i", "a")
        osd_uuid = str(uuid.uuid4())
        self.ns("ceph", "--connect-timeout", "20", "osd", "new", osd_uuid, "0")
        self.ns("ceph-osd", "-c", str(self.conf), "-i", "0", "--mkfs", "--osd-uuid", osd_uuid, "--keyring", k)
        self.ns("ceph-osd", "-c", str(self.conf), "-i", "0")
        deadline = time.monotonic() + 60
        while '"num_up_osds":1' not in self.ns("ceph", "osd", "stat", "-f", "json", check=False).stdout:
            if time.monotonic() > deadline:
                raise RuntimeError(f"the OSD did not come up; see {d}/log")
            time.sleep(0.2)
        self.ns("ceph", "osd", "pool", "create", self.pool, "8", "8")
        self.ns("rbd", "pool", "init", self.pool)
        # a user with only what an RBD client needs (Ganeti's :id=ganeti), its key in the same keyring
        user = self.ns("ceph", "auth", "get-or-create", f"client.{USER}", "mon", "profile rbd",
                       "osd", f"profile rbd pool={self.pool}").stdout
        with open(self.keyring, "a") as f:
            f.write(user)
        self.started = time.monotonic() - started
        return self

    def _fsid(self) -> str:
        for line in self.conf.read_text().splitlines():
            if line.startswith("fsid = "):
                return line.split(" = ", 1)[1]
        raise RuntimeError("no fsid in the conf")

    def _run(self, *argv: str) -> None:
        proc = subprocess.run(argv, capture_output=True, text=True, env=self.env)
        if proc.returncode != 0:
            raise RuntimeError(f"{argv[0]} failed (rc {proc.returncode}): {proc.stderr[-2000:]}")

    def _net(self, *commands: str) -> None:
        for command in commands:
            subprocess.run(["ip", "netns", "exec", self.netns, *command.split()], check=True)

    def join_lan(self, pid: int, bridge: str) -> None:
        """Plug the cluster into another namespace's bridge (the Ganeti harness's LAN): the peer of
        ``cephlan0`` moves into the network namespace of process ``pid`` and becomes a port of ``bridge``."""
        self._net(f"ip link set {LAN_IF}p netns {pid}")
        for command in (f"ip link set {LAN_IF}p master {bridge}", f"ip link set {LAN_IF}p up"):
            subprocess.run(["nsenter", f"--net=/proc/{pid}/ns/net", *command.split()], check=True)

    def leave_lan(self, pid: int) -> None:
        """Bring the LAN port back from process ``pid``'s namespace (before that namespace goes away:
        deleting one end of a veth deletes both, and the monitor's address with it)."""
        subprocess.run(["nsenter", f"--net=/proc/{pid}/ns/net", "ip", "link", "set", f"{LAN_IF}p", "netns",
                        self.netns], check=False, capture_output=True)

    def pids(self) -> list[int]:
        out = []
        for name in ("osd.0", "mon.a"):
            try:
                out.append(int((self.dir / "run" / f"{name}.pid").read_text().strip()))
            except (OSError, ValueError):
                pass
        return out

    def stop(self) -> None:
        """End the daemons by PID, delete the namespace and the state; never raises."""
        self.leave_netns()
        for pid in self.pids():
            _end(pid)
        subprocess.run(["ip", "netns", "del", self.netns], capture_output=True)
        shutil.rmtree(self.dir, ignore_errors=True)

    def enter_netns(self) -> None:
        """Move the calling thread (and what it starts later) into the cluster's namespace."""
        if self._saved_netns is not None:
            return
        self._saved_netns = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        fd = os.open(f"/run/netns/{self.netns}", os.O_RDONLY | os.O_CLOEXEC)
        try:
            _setns(fd)
        finally:
            os.close(fd)

    def leave_netns(self) -> None:
        if self._saved_netns is None:
            return
        try:
            _setns(self._saved_netns)
        finally:
            os.close(self._saved_netns)
            self._saved_netns = None


def _end(pid: int, wait: float = 10) -> None:
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


# -- the environment Ganeti gives the OS scripts for a userspace-only (URI) disk --------------------

_CAPTURED = {"create": "24-add-ext", "rename": "07-rename-file", "export": "32-export-ext",
             "import": "36-import-ext"}


def ganeti_uri_env(script: str, disks: list[tuple[str, int]], *, name: str, index: int = 0,
                   variant: str = "debian-12", **extra: str) -> dict[str, str]:
    """A real Ganeti 3.0.2 environment for ``script`` (tests/fixtures/ganeti-env), its disks
    replaced by URI-only ones as Ganeti passes them for access=userspace: DISK_N_URI and no
    DISK_N_PATH (lib/backend.py OSEnvironment), EXPORT_DISK_URI / IMPORT_DISK_URI and no
    *_DEVICE (_GetImportExportIoCommand).  ``disks``: (uri, size in MiB); no NICs and no OS
    parameters unless ``extra`` has them."""
    from tests.ganeti_env import captured

    env = next(e for step, e in captured(script) if step == _CAPTURED[script])
    env = {k: v for k, v in env.items()
           if not k.startswith(("DISK_", "EXPORT_DEVICE", "EXPORT_DISK_", "IMPORT_DEVICE", "IMPORT_DISK_",
                                "OSP_", "NIC_"))}
    env.update({"OS_NAME": "image", "OS_VARIANT": variant, "INSTANCE_OS": f"image+{variant}",
                "INSTANCE_NAME": name, "HYPERVISOR": "kvm", "DISK_COUNT": str(len(disks)), "NIC_COUNT": "0"})
    for i, (uri, size_mib) in enumerate(disks):
        env.update({f"DISK_{i}_URI": uri, f"DISK_{i}_SIZE": str(size_mib), f"DISK_{i}_ACCESS": "rw",
                    f"DISK_{i}_BACKEND_TYPE": "block", f"DISK_{i}_UUID": str(uuid.uuid5(uuid.NAMESPACE_URL, uri))})
    if script in ("export", "import"):
        kind = script.upper()
        env.update({f"{kind}_DISK_URI": disks[index][0], f"{kind}_INDEX": str(index), "EXP_SIZE_FD": "11"})
    env.update(extra)
    return env


# -- independent readers of what is on an image: rbd(8), util-linux, e2fsprogs -------------------------

def raw_copy(cluster: CephCluster, image: str, path: Path) -> Path:
    """The image's bytes in a sparse file, written by rbd(8) itself."""
    cluster.rbd("export", f"{cluster.pool}/{image}", str(path))
    return path


def last_partition(raw: Path) -> int:
    """Byte offset of the disk's last partition (the root filesystem), as sfdisk reads the table."""
    import json

    table = json.loads(subprocess.run(["sfdisk", "--json", str(raw)], capture_output=True, text=True,
                                      check=True).stdout)["partitiontable"]
    return max(p["start"] for p in table["partitions"]) * 512


@dataclass(frozen=True)
class ExtBlocks:
    """An ext filesystem's blocks as dumpe2fs reads them: size, count, and the free ones (first, last)."""

    size: int
    count: int
    free: list[tuple[int, int]]

    @property
    def used_bytes(self) -> int:
        return (self.count - sum(b - a + 1 for a, b in self.free)) * self.size

    def used(self) -> list[tuple[int, int]]:
        """(first, last) block runs the filesystem uses: the complement of the free ones."""
        out, pos = [], 0
        for a, b in sorted(self.free):
            if a > pos:
                out.append((pos, a - 1))
            pos = b + 1
        if pos < self.count:
            out.append((pos, self.count - 1))
        return out


def ext_blocks(raw: Path, offset: int) -> ExtBlocks:
    """dumpe2fs (e2fsprogs) on the filesystem at ``offset`` of ``raw``."""
    import re

    out = subprocess.run(["dumpe2fs", f"{raw}?offset={offset}"], capture_output=True, text=True, check=True).stdout
    head = dict(line.split(":", 1) for line in out.split("\n\n", 1)[0].splitlines() if ":" in line)
    free = []
    for line in re.findall(r"^\s+Free blocks: (.*)$", out, re.M):
        for part in filter(None, (p.strip() for p in line.split(","))):
            a, _, b = part.partition("-")
            free.append((int(a), int(b or a)))
    return ExtBlocks(int(head["Block size"]), int(head["Block count"]), free)


def ext_files(raw: Path, offset: int, into: Path) -> dict[str, str]:
    """sha256 of every regular file of the filesystem, extracted by debugfs (e2fsprogs, no mount)."""
    import hashlib

    into.mkdir()
    subprocess.run(["debugfs", "-R", f"rdump / {into}", f"{raw}?offset={offset}"], check=True, capture_output=True)
    sums = {}
    for path in into.rglob("*"):
        if path.is_file() and not path.is_symlink():
            with open(path, "rb") as f:
                sums[str(path.relative_to(into))] = hashlib.file_digest(f, "sha256").hexdigest()
    shutil.rmtree(into)
    return sums


def fsck_clean(raw: Path, offset: int) -> None:
    """e2fsck -fn finds nothing to fix (raises with its output otherwise)."""
    proc = subprocess.run(["e2fsck", "-fn", f"{raw}?offset={offset}"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-1000:]
