"""The trixie tier: the freshly built .deb on Debian 13 (a real Ganeti 3.1 cluster) and Debian 12.

`deb` builds osdef_<version>_all.deb with `make deb` (lintian must accept
it).  `trixie` enters a fresh overlay of the cached Debian 13 root
(debroot.sh: debootstrap + ganeti + the .deb's dependencies from the Debian
mirror, rebuilt when stale), installs the .deb with apt, and applies the
upstream fix of ganeti/ganeti#1839 (PR #1840, commit 69f4dcba) to its Ganeti
3.1.0~rc2, saying so.  `cluster31` runs tests/cluster/ganeti/harness.sh
inside that root with GH_OSDEF=package: two nodes, the package's OS dir and
providers, the test image hard-linked into node 1's cache.  The Debian 12
root is checked (and built when stale) in the background meanwhile, so a cold
run waits on the mirror once, not twice in a row.  Everything is torn down at
the end, also after a failure.  Own handles and state dirs
(DR_NSDIR, GH_NSDIR, GH_STATE), so other clusters on the machine are not
touched.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import REPO, TEST_IMAGE_CACHE

HERE = Path(__file__).resolve().parent
DEBROOT = HERE / "debroot.sh"
HARNESS = REPO / "tests" / "cluster" / "ganeti" / "harness.sh"
PATCH = REPO / "tests" / "trixie" / "ganeti" / "ganeti-pr1840.patch"
DR_ENV = {
    "PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root", "LANG": "C.UTF-8",
    "DR_NSDIR": os.environ.get("OSDEF_DEBROOT_NSDIR", "/run/osdef-debroot-deb"),
    "DR_WORK": os.environ.get("OSDEF_DEBROOT_WORK", "/var/tmp/osdef-debroot-run"),
    "DR_CACHE": os.environ.get("OSDEF_DEBROOT_CACHE", "/var/tmp/osdef-debroot"),
}
INSIDE = "/var/lib/osdef-test"  # the state bind mount, as the root sees it
TRIXIE_PACKAGES = ("ganeti", "lzop", "openssh-server", "patch", "python3-isal")
BOOKWORM_PACKAGES = ("python3-pytest", "python3-hypothesis")  # to run the stream tests there
GH_NSDIR = "/run/osdef-ganeti-deb"  # inside the trixie root (its own tmpfs /run)
GH_STATE = f"{INSIDE}/ganeti"
NODE, NODE2 = "node1.example.test", "node2.example.test"


def _prerequisites() -> str | None:
    if os.geteuid() != 0:
        return "needs root (debootstrap, namespaces, loop devices)"
    for tool in ("debootstrap", "unshare", "nsenter", "dpkg-deb"):
        if shutil.which(tool) is None:
            return f"{tool} not found"
    if not Path("/sys/module/overlay").exists() and "overlay" not in Path("/proc/filesystems").read_text():
        return "no overlayfs"
    return None


@dataclass
class Root:
    """One entered Debian root (debroot.sh): run commands in it, see its state dir from the host."""

    name: str
    base: Path
    timings: list[tuple[str, float, int]] = field(default_factory=list)

    @property
    def state(self) -> Path:
        return Path(DR_ENV["DR_WORK"]) / self.name / "state"

    def run(self, *argv: str, step: str | None = None, check: bool = True, timeout: float = 900,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        extra = [f"{k}={v}" for k, v in (env or {}).items()]
        started = time.monotonic()
        proc = subprocess.run([str(DEBROOT), "run", self.name, *(["env", *extra] if extra else []), *argv],
                              env=DR_ENV, capture_output=True, text=True, timeout=timeout)
        if step:
            self.timings.append((step, time.monotonic() - started, proc.returncode))
        if check and proc.returncode != 0:
            pytest.fail(f"in the {self.name} root: {' '.join(argv[:4])} … failed (rc {proc.returncode}):\n"
                        f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}", pytrace=False)
        return proc


def debroot(*args: str, timeout: float = 1800) -> subprocess.CompletedProcess:
    return subprocess.run([str(DEBROOT), *args], env=DR_ENV, capture_output=True, text=True,
                          timeout=timeout)


def say(text: str) -> None:
    """A line in the tier's output (pytest -s shows it; the report's captured stderr keeps it)."""
    print(f"[trixie tier] {text}", flush=True)


@pytest.fixture(scope="package")
def deb(request) -> Path:
    reason = _prerequisites()
    if reason:
        pytest.skip(f"trixie tier: {reason}")
    proc = subprocess.run(["make", "-C", str(REPO), "deb"], capture_output=True, text=True, timeout=900)
    if proc.returncode != 0:
        pytest.fail(f"make deb failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-2000:]}", pytrace=False)
    debs = sorted((REPO / "build" / "deb").glob("osdef_*_all.deb"))
    assert len(debs) == 1, debs
    if any("bookworm" in item.fixturenames for item in request.session.items):
        _build_in_background(request, "bookworm", BOOKWORM_PACKAGES, debs[0])
    return debs[0]


_BACKGROUND: dict[str, subprocess.Popen] = {}  # release -> `debroot.sh base` still running


def _build_in_background(request, release: str, packages: tuple[str, ...], deb: Path) -> None:
    """Start checking (and, when stale, building) the RELEASE root now, while the Debian 13
    cluster runs: a cold build is mostly waiting on the mirror.  Ended by pid if unused."""
    proc = subprocess.Popen([str(DEBROOT), "base", release, *packages, str(deb)], env=DR_ENV,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    _BACKGROUND[release] = proc

    def end() -> None:  # the root was never asked for (e.g. -k chose none of its tests)
        if _BACKGROUND.pop(release, None) is proc:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)  # its own session: debroot.sh and its children
            proc.communicate()

    request.addfinalizer(end)


def _base(release: str, packages: tuple[str, ...], deb: Path) -> tuple[int, str, str]:
    """The cached RELEASE root (debroot.sh base): the background run's, else one run now."""
    proc = _BACKGROUND.pop(release, None)
    if proc is not None:
        out, err = proc.communicate(timeout=1800)
        return proc.returncode, out, err
    done = debroot("base", release, *packages, str(deb))
    return done.returncode, done.stdout, done.stderr


def entered_root(request, name: str, release: str, packages: tuple[str, ...], deb: Path) -> Root:
    """A fresh overlay of the cached RELEASE root (built when stale) with the .deb installed by apt."""
    started = time.monotonic()
    rc, out, err = _base(release, packages, deb)
    if rc != 0:
        pytest.fail(f"the {release} root: {err[-3000:]}", pytrace=False)
    root = Root(name, Path(out.strip()))
    root.timings.append((f"{release} root ({err.strip().splitlines()[-1].split('] ', 1)[-1]})",
                         time.monotonic() - started, 0))
    request.addfinalizer(lambda: _leave(root))
    proc = debroot("enter", name, str(root.base))
    if proc.returncode != 0:
        pytest.fail(f"entering the {release} root: {proc.stderr[-3000:]}", pytrace=False)
    shutil.copy2(deb, root.state / deb.name)
    root.run("apt-get", "install", "-y", "-q", "--no-install-recommends", f"{INSIDE}/{deb.name}",
             step=f"apt-get install ./{deb.name} ({release})")
    return root


def _leave(root: Root) -> None:
    debroot("leave", root.name)
    say(f"{root.name} timings:\n" + "\n".join(f"  {secs:7.1f} s  rc={rc}  {step}"
                                              for step, secs, rc in root.timings))


@pytest.fixture(scope="package")
def trixie(request, deb) -> Root:
    root = entered_root(request, "trixie-deb", "trixie", TRIXIE_PACKAGES, deb)
    apply_ganeti_fix(root)
    return root


@pytest.fixture(scope="package")
def bookworm(request, deb) -> Root:
    return entered_root(request, "bookworm-deb", "bookworm", BOOKWORM_PACKAGES, deb)


def apply_ganeti_fix(root: Root) -> None:
    """Debian's ganeti 3.1.0~rc2-3 lacks upstream's fix of #1839 (gnt-backup export fails where a
    node's IP reverse-resolves): apply that exact upstream commit to the root's Ganeti."""
    version = root.run("dpkg-query", "-W", "-f=${Version}", "ganeti").stdout
    if not version.startswith("3.1.0~rc"):
        say(f"ganeti {version}: no local fix applied (only 3.1.0~rc* lacks ganeti/ganeti#1840)")
        return
    shutil.copy2(PATCH, root.state / PATCH.name)
    root.run("patch", "-p2", "-d", "/usr/share/ganeti/3.1/ganeti", "-i", f"{INSIDE}/{PATCH.name}",
             step="apply ganeti/ganeti PR #1840")
    say(f"ganeti {version}: applied the upstream fix of ganeti/ganeti#1839 (PR #1840, commit 69f4dcba) "
        "to lib/impexpd/__init__.py; without it gnt-backup export fails (docs/ganeti.md, Debian 13)")


@dataclass
class Cluster31:
    root: Root

    def gnt(self, *argv: str, step: str | None = None, check: bool = True, node: str = NODE,
            timeout: float = 900) -> subprocess.CompletedProcess:
        env = {"GH_STATE": GH_STATE, "GH_NSDIR": GH_NSDIR, "GH_OSDEF": "package", "GH_NODES": "2",
               "GH_EXEC_NODE": "" if node == NODE else node}
        return self.root.run("bash", f"{INSIDE}/harness.sh", "exec", "timeout", str(int(timeout)), *argv,
                             step=step, check=check, env=env, timeout=timeout + 30)

    def host_path(self, inside: str, node: str = NODE) -> Path:
        """A path under /srv/ganeti or /var/lib/ganeti of a node, as the host sees it."""
        state = self.root.state / "ganeti" / ("" if node == NODE else node.split(".")[0])
        for prefix, sub in (("/srv/ganeti/", "srv"), ("/var/lib/ganeti/", "lib")):
            if inside.startswith(prefix):
                return state / sub / inside[len(prefix):]
        raise ValueError(inside)


SITE_CONFIG = f"""\
# the trixie tier's site config (libguestfs under TCG: no nested KVM here)
libguestfs:
  backend_settings: [force_tcg]
images:
  cache_dir: {INSIDE}/cache
"""


def _seed_image_cache(root: Root, name: str = "debian-12") -> None:
    """Node 1's image cache: the shared test image, hard-linked (same filesystem) or copied."""
    from tests.support.image_cache import ensure_test_image

    art = ensure_test_image(name)
    cache = root.state / "cache"
    cache.mkdir(exist_ok=True)
    manifest = TEST_IMAGE_CACHE / f"{name}.json"
    for src in (art.path, manifest):
        dest = cache / src.name
        dest.unlink(missing_ok=True)
        try:
            os.link(src, dest)
        except OSError:
            shutil.copy2(src, dest)
    assert json.loads((cache / manifest.name).read_text())["artifact"] == art.path.name


@pytest.fixture(scope="package")
def cluster31(request, trixie) -> Cluster31:
    shutil.copy2(HARNESS, trixie.state / "harness.sh")
    (trixie.state / "osdef.yaml").write_text(SITE_CONFIG)
    _seed_image_cache(trixie)
    env = {"GH_STATE": GH_STATE, "GH_NSDIR": GH_NSDIR, "GH_OSDEF": "package", "GH_NODES": "2",
           "GH_SITE_CONFIG": f"{INSIDE}/osdef.yaml", "GH_NODE_CACHE": f"{INSIDE}/cache"}

    request.addfinalizer(lambda: trixie.run("bash", f"{INSIDE}/harness.sh", "down", env=env,
                                            check=False, timeout=300))
    trixie.run("bash", f"{INSIDE}/harness.sh", "up", env=env, step="Ganeti 3.1 cluster up (2 nodes)")
    return Cluster31(trixie)
