"""The installed provider scripts on real sparse files and loop devices, with Ganeti's environment."""

from __future__ import annotations

import os
import subprocess
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.support.extstorage import ok, one_error_line
from tests.support.stream import backing_file_of

pytestmark = pytest.mark.blockdev

MIB = 1 << 20


def devsize(dev: str) -> int:
    return int(subprocess.run(["blockdev", "--getsize64", dev], capture_output=True, text=True,
                              check=True).stdout)


def test_volume_lifecycle(provider, vol_name):
    ok(provider.run("create", VOL_NAME=vol_name, VOL_SIZE="64", VOL_UUID="u0"))
    img = provider.image(vol_name)
    assert img.stat().st_size == 64 * MIB
    assert img.stat().st_blocks == 0  # sparse
    assert oct(img.stat().st_mode & 0o777) == "0o600"

    dev = ok(provider.run("attach", VOL_NAME=vol_name, VOL_UUID="u0")).strip()
    assert dev.startswith("/dev/loop") and devsize(dev) == 64 * MIB
    assert backing_file_of(dev) == str(img)
    # idempotent: the same device every time, nothing else on stdout
    for _ in range(3):
        assert ok(provider.run("attach", VOL_NAME=vol_name, VOL_UUID="u0")) == dev + "\n"
    ok(provider.run("open", VOL_NAME=vol_name, VOL_UUID="u0", VOL_OPEN_EXCLUSIVE="True"))
    ok(provider.run("setinfo", VOL_NAME=vol_name, VOL_UUID="u0",
                    VOL_METADATA="originstname+inst1.example.test"))
    assert provider.data_dir.joinpath(f"{vol_name}.meta").read_text() == "originstname+inst1.example.test\n"

    with open(dev, "r+b") as f:
        f.seek(5 * MIB)
        f.write(b"osdef-es-marker")
        os.fsync(f.fileno())

    ok(provider.run("grow", VOL_NAME=vol_name, VOL_UUID="u0", VOL_SIZE="64", VOL_NEW_SIZE="96"))
    assert img.stat().st_size == 96 * MIB
    assert devsize(dev) == 96 * MIB  # the attached device sees the new size

    snap = f"{vol_name}.snap"
    ok(provider.run("snapshot", VOL_NAME=vol_name, VOL_SNAPSHOT_NAME=snap, VOL_SNAPSHOT_SIZE="96"))
    snap_img = provider.image(snap)
    assert snap_img.stat().st_size == 96 * MIB
    assert snap_img.stat().st_blocks * 512 < 8 * MIB  # stayed sparse
    with open(snap_img, "rb") as f:
        f.seek(5 * MIB)
        assert f.read(15) == b"osdef-es-marker"
    snap_dev = ok(provider.run("attach", VOL_NAME=snap)).strip()
    assert snap_dev != dev
    ok(provider.run("detach", VOL_NAME=snap))
    ok(provider.run("remove", VOL_NAME=snap))
    assert not snap_img.exists()

    ok(provider.run("close", VOL_NAME=vol_name, VOL_UUID="u0"))
    ok(provider.run("detach", VOL_NAME=vol_name, VOL_UUID="u0"))
    assert backing_file_of(dev) != str(img)
    ok(provider.run("detach", VOL_NAME=vol_name, VOL_UUID="u0"))  # idempotent
    # attached again after a detach, then removed while attached: remove detaches
    ok(provider.run("attach", VOL_NAME=vol_name, VOL_UUID="u0"))
    ok(provider.run("remove", VOL_NAME=vol_name, VOL_UUID="u0"))
    assert not img.exists()
    assert subprocess.run(["losetup", "-j", str(img), "-n"], capture_output=True, text=True).stdout == ""
    ok(provider.run("remove", VOL_NAME=vol_name, VOL_UUID="u0"))  # idempotent


def test_concurrent_attaches_share_one_device(provider, vol_name):
    ok(provider.run("create", VOL_NAME=vol_name, VOL_SIZE="8", VOL_UUID="u1"))
    with ThreadPoolExecutor(4) as pool:
        outs = list(pool.map(lambda _: provider.run("attach", VOL_NAME=vol_name, VOL_UUID="u1"), range(6)))
    devices = {ok(p).strip() for p in outs}
    assert len(devices) == 1
    listed = subprocess.run(["losetup", "-j", str(provider.image(vol_name)), "-n", "-O", "NAME"],
                            capture_output=True, text=True).stdout.split()
    assert listed == list(devices)


def test_preallocate_parameter(provider, vol_name):
    ok(provider.run("create", VOL_NAME=vol_name, VOL_SIZE="16", VOL_UUID="u2", EXTP_PREALLOCATE="yes"))
    assert provider.image(vol_name).stat().st_blocks * 512 >= 16 * MIB


def test_errors_are_one_line(provider, vol_name):
    line = one_error_line(provider.run("attach", VOL_NAME=vol_name, VOL_UUID="u3"))
    assert line.startswith("loopfile attach: error:") and "does not exist" in line

    ok(provider.run("create", VOL_NAME=vol_name, VOL_SIZE="8", VOL_UUID="u3"))
    assert "already exists" in one_error_line(provider.run("create", VOL_NAME=vol_name, VOL_SIZE="8"))
    assert "never shrink" in one_error_line(
        provider.run("grow", VOL_NAME=vol_name, VOL_SIZE="8", VOL_NEW_SIZE="4"))
    assert "VOL_NEW_SIZE" in one_error_line(provider.run("grow", VOL_NAME=vol_name, VOL_SIZE="8"))
    assert "VOL_SIZE" in one_error_line(provider.run("create", VOL_NAME="other.ext.disk0"))
    assert "not a valid volume name" in one_error_line(
        provider.run("create", VOL_NAME="../../etc/passwd", VOL_SIZE="8"))
    assert "VOL_NAME is not set" in one_error_line(provider.run("attach"))
    assert "unknown parameter tier" in one_error_line(provider.run("verify", VOL_NAME=vol_name, EXTP_TIER="x"))
    ok(provider.run("verify", VOL_NAME=vol_name))
    snap = f"{vol_name}.snap"
    ok(provider.run("snapshot", VOL_NAME=vol_name, VOL_SNAPSHOT_NAME=snap))
    assert "already exists" in one_error_line(
        provider.run("snapshot", VOL_NAME=vol_name, VOL_SNAPSHOT_NAME=snap))
