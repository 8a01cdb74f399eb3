"""create/reinstall refuse an image that is not the one the cluster agreed on.

Through the installed create script (`osdef try`, Ganeti's clean environment):
the check runs before any write, before any build or download, and its one
line names the node, the image, both digests and `osdef image sync NAME`.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import tarfile

import pytest

from osdef.config import ImageSettings
from osdef.images import ImageStore, agreement


@pytest.fixture
def node(tmp_path):
    """A node's cache holding a (tiny, tar) debian-12, its config and agreement file."""
    src = tmp_path / "root"
    (src / "etc").mkdir(parents=True)
    (src / "etc" / "hostname").write_text("drift\n")
    tar = tmp_path / "root.tar"
    with tarfile.open(tar, "w") as t:
        t.add(src, arcname=".")
    settings = ImageSettings(cache_dir=tmp_path / "cache", agreement_file=tmp_path / "agreed.json")
    art = ImageStore(settings, tmp_path / "recipes", progress=None).add("debian-12", tar)
    conf = tmp_path / "osdef.yaml"
    conf.write_text(f"libguestfs:\n  backend_settings: [force_tcg]\nimages:\n"
                    f"  cache_dir: {settings.cache_dir}\n  agreement_file: {settings.agreement_file}\n"
                    "  fetch_on_demand: false\n")
    return settings, art, conf


def agree(settings, sha):
    agreement.save(settings.agreement_file, {"debian-12": agreement.Agreed(
        "debian-12", sha, f"debian-12.{sha[:16]}.zst", "2026-12-01T00:00:00+00:00",
        "node1.example.test")})


def try_create(os_dir, conf, disk, *extra):
    return subprocess.run([sys.executable, "-m", "osdef.cli", "try", "create", "-o", "debian-12",
                           "-n", "web1.example.org", "--disk", str(disk), "--config", str(conf),
                           "--os-dir", str(os_dir), *extra],
                          capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("reinstall", [False, True])
def test_differing_image_is_refused_before_any_write(installed_os_dir, node, tmp_path, reinstall):
    settings, art, conf = node
    agreed = "0123456789abcdef" * 4
    agree(settings, agreed)
    disk = tmp_path / "disk0"
    disk.write_bytes(b"\xab" * (4 << 20))
    r = try_create(installed_os_dir, conf, disk, *(["--reinstall"] if reinstall else []))
    assert r.returncode != 0
    errors = [ln for ln in r.stderr.splitlines() if "error:" in ln]
    assert len(errors) == 1, r.stderr
    line = errors[0]
    for needle in (socket.gethostname(), "debian-12", art.sha256, agreed,
                   "osdef image sync debian-12"):
        assert needle in line, line
    assert "Traceback" not in r.stderr
    assert disk.read_bytes() == b"\xab" * (4 << 20)


def test_missing_image_is_refused_and_not_fetched(installed_os_dir, node, tmp_path):
    settings, art, conf = node
    agree(settings, art.sha256)
    (settings.cache_dir / "debian-12.json").unlink()
    disk = tmp_path / "disk0"
    disk.write_bytes(b"\xcd" * (1 << 20))
    r = try_create(installed_os_dir, conf, disk)
    assert r.returncode != 0
    line = next(ln for ln in r.stderr.splitlines() if "error:" in ln)
    assert "lacks image debian-12" in line and art.sha256 in line
    assert "osdef image sync debian-12" in line
    assert disk.read_bytes() == b"\xcd" * (1 << 20)


def test_agreed_image_passes_the_check(installed_os_dir, node, tmp_path):
    settings, art, conf = node
    agree(settings, art.sha256)
    disk = tmp_path / "disk0"
    disk.write_bytes(b"\xab" * (4 << 20))
    r = try_create(installed_os_dir, conf, disk)
    # past the agreement: it fails later, on the tiny disk, before writing
    assert "cluster" not in r.stderr and "sync" not in r.stderr, r.stderr
    assert disk.read_bytes() == b"\xab" * (4 << 20)
