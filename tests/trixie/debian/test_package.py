"""The .deb on Debian 13 and on a clean Debian 12 root: what it installs, and that it runs on
each release's own Python packages (Debian 12: python3-zstandard 0.20, no python3-isal)."""

from __future__ import annotations

import shutil

from tests.conftest import REPO
from tests.trixie.debian.conftest import INSIDE, Root

OS_DIR = "/usr/share/ganeti/os/image"
SCRIPTS = ("create", "export", "import", "rename", "verify")


def _installed_layout(root: Root) -> None:
    for script in SCRIPTS:
        head = root.run("head", "-1", f"{OS_DIR}/{script}").stdout
        assert head == "#!/usr/bin/python3 -I\n"
    assert root.run("readlink", f"{OS_DIR}/variants.list").stdout.strip() == "/etc/osdef/variants.list"
    out = root.run("osdef", "diagnose").stdout  # runs each launcher's /usr/bin/python3
    assert out.strip() == f"{OS_DIR}: OK"
    root.run("test", "-x", "/usr/share/ganeti/extstorage/loopfile/attach")
    root.run("test", "-d", "/var/log/ganeti/extstorage")
    root.run("test", "-d", "/var/cache/osdef/images")
    conffiles = root.run("dpkg-query", "-W", "-f=${Conffiles}", "osdef").stdout
    assert "/etc/osdef/osdef.yaml" in conffiles and "/etc/osdef/variants.list" in conffiles
    root.run("dpkg", "--verify", "osdef")


def test_the_package_on_debian_13(trixie):
    _installed_layout(trixie)
    versions = trixie.run("dpkg-query", "-W", "-f=${Package} ${Version}\\n", "python3-zstandard",
                          "python3-isal", "python3-crc32c", "ganeti").stdout
    assert "python3-isal " in versions and "ganeti 3.1" in versions


def test_the_package_on_debian_12(bookworm):
    _installed_layout(bookworm)
    zstd = bookworm.run("dpkg-query", "-W", "-f=${Version}", "python3-zstandard").stdout
    assert zstd.startswith("0.20"), zstd
    assert bookworm.run("python3", "-c", "import isal", check=False).returncode != 0  # not in Debian 12


def test_the_stream_runs_on_debian_12s_own_packages(bookworm):
    """tests/pure/stream with /usr/bin/python3 and Debian 12's zstandard 0.20 (no isal; its one test
    that asserts isal is in use is left out): the
    installed package, not the checkout (the tests are copied without osdef/)."""
    dest = bookworm.state / "tests"
    shutil.rmtree(dest, ignore_errors=True)
    shutil.copytree(REPO / "tests", dest, ignore=shutil.ignore_patterns("__pycache__", "trixie"))
    (bookworm.state / "pyproject.toml").write_text('[tool.pytest.ini_options]\naddopts = "-p no:cacheprovider"\n'
                                                   'markers = ["pure", "scripts", "appliance", "cluster", '
                                                   '"guestfs", "dib", "ganeti", "boot", "blockdev", "trixie"]\n')
    proc = bookworm.run("sh", "-c", f"cd {INSIDE} && python3 -c 'import osdef; print(osdef.__file__)' && "
                        "python3 -m pytest -q -x --tb=short tests/pure/stream -k 'not accelerated_crc' 2>&1 | tail -80",
                        step="tests/pure/stream on Debian 12 (zstandard 0.20)")
    assert "/usr/lib/python3/dist-packages/osdef/__init__.py" in proc.stdout
    summary = proc.stdout.strip().splitlines()[-1]  # pytest's last line; the lines above say why, if it failed
    assert " passed" in summary and "failed" not in summary and "error" not in summary, proc.stdout


def test_zstd_export_and_import_through_the_installed_scripts_on_debian_12(bookworm):
    script = f"""set -e
cd {INSIDE}
truncate -s 64M src.img && mkfs.ext4 -q -F src.img && debugfs -w -R 'write /etc/os-release os' src.img >/dev/null
osdef try export --os-dir /usr/share/ganeti/os/image --disk src.img -O export_compression=zstd --output s.zst
truncate -s 64M dst.img
osdef try import --os-dir /usr/share/ganeti/os/image --disk dst.img --input s.zst
cmp src.img dst.img && head -c4 s.zst | od -An -tx1
"""
    out = bookworm.run("sh", "-c", script, step="zstd export/import on Debian 12").stdout
    assert "28 b5 2f fd" in out  # a zstd frame, decoded by Debian 12's zstandard 0.20


def test_upgrade_keeps_config_agreement_and_cache_and_purge_removes_them(bookworm, deb):
    state = bookworm.state
    bookworm.run("sh", "-c", "echo '# site change' >> /etc/osdef/osdef.yaml && "
                 "echo '{}' > /etc/osdef/images-agreed.json && "
                 "echo cached > /var/cache/osdef/images/marker")
    # the same package as a higher version: what an upgrade does to conffiles and state
    work = state / "upgrade"
    shutil.rmtree(work, ignore_errors=True)
    bookworm.run("sh", "-c", f"cd {INSIDE} && dpkg-deb -R {deb.name} upgrade && "
                 "sed -i 's/^Version: .*/&+test1/' upgrade/DEBIAN/control && "
                 "dpkg-deb -b upgrade osdef-upgrade.deb >/dev/null && "
                 "apt-get install -y -q ./osdef-upgrade.deb", step="upgrade (dpkg)")
    assert "+test1" in bookworm.run("dpkg-query", "-W", "-f=${Version}", "osdef").stdout
    kept = bookworm.run("sh", "-c", "tail -1 /etc/osdef/osdef.yaml; cat /etc/osdef/images-agreed.json "
                        "/var/cache/osdef/images/marker").stdout.split("\n")
    assert kept[:3] == ["# site change", "{}", "cached"]
    bookworm.run("apt-get", "remove", "-y", "-q", "osdef")
    assert bookworm.run("cat", "/var/cache/osdef/images/marker").stdout == "cached\n"  # kept on remove
    bookworm.run("dpkg", "--purge", "osdef")
    gone = bookworm.run("sh", "-c", "ls -d /var/cache/osdef /etc/osdef/images-agreed.json "
                        "/etc/osdef/osdef.yaml 2>/dev/null; true").stdout
    assert gone == ""
