"""The installed `rbd` ExtStorage provider's scripts on a real Ceph, with the environment Ganeti passes.

Oracle: rbd(8) (info, image-meta, snap ls, ls) and librbd reads of the images.
"""

from __future__ import annotations

import json
import subprocess
import uuid
from pathlib import Path

import pytest

from osdef.extstorage.rbd import install as rbdinstall
from osdef.extstorage.rbd.config import Placement
from tests.support.extstorage import ganeti_env, ok, one_error_line

MiB = 1 << 20


@pytest.fixture(scope="module")
def provider(ceph, tmp_path_factory) -> Path:
    report = rbdinstall.install(tmp_path_factory.mktemp("es") / "rbd",
                                defaults=Placement(conf=str(ceph.conf), connect_timeout=5))
    return report.provider_dir


def run(provider: Path, action: str, **variables: str) -> subprocess.CompletedProcess:
    env = ganeti_env(action, EXTP_PROVIDER="rbd", EXTP_ACCESS="userspace", **variables)
    return subprocess.run([str(provider / action)], cwd=provider, env=env, capture_output=True, text=True,
                          timeout=60)


def info(ceph, spec: str) -> dict:
    return json.loads(ceph.rbd("info", "--format", "json", spec))


def test_volume_lifecycle(provider, ceph):
    vol = f"{uuid.uuid4()}.ext.disk0"
    pool = ceph.pool
    ok(run(provider, "create", VOL_NAME=vol, VOL_SIZE="64", VOL_UUID="u0"))
    assert info(ceph, f"{pool}/{vol}")["size"] == 64 * MiB
    assert one_error_line(run(provider, "create", VOL_NAME=vol, VOL_SIZE="64")).endswith(f"volume {vol} already exists in pool {pool}")

    uri = f"kvm:rbd:{pool}/{vol}:conf={ceph.conf}"
    for _ in range(3):  # idempotent, and userspace only: an empty first line, then the URI
        assert ok(run(provider, "attach", VOL_NAME=vol, VOL_UUID="u0")) == f"\n{uri}\n"
    assert ok(run(provider, "attach", VOL_NAME=vol, EXTP_USER="ganeti")) == f"\nkvm:rbd:{pool}/{vol}:id=ganeti:conf={ceph.conf}\n"
    ok(run(provider, "open", VOL_NAME=vol, VOL_OPEN_EXCLUSIVE="True"))
    ok(run(provider, "setinfo", VOL_NAME=vol, VOL_METADATA="originstname+inst1.example.test"))
    assert ceph.rbd("image-meta", "get", f"{pool}/{vol}", "ganeti.metadata").strip() == "originstname+inst1.example.test"

    _write(ceph, vol, 5 * MiB, b"before")
    ok(run(provider, "grow", VOL_NAME=vol, VOL_SIZE="64", VOL_NEW_SIZE="96"))
    assert info(ceph, f"{pool}/{vol}")["size"] == 96 * MiB
    assert "never shrink" in one_error_line(run(provider, "grow", VOL_NAME=vol, VOL_SIZE="96", VOL_NEW_SIZE="32"))

    snap = f"{vol}.snap"  # Ganeti's name for it: the volume name + .snap
    ok(run(provider, "snapshot", VOL_NAME=vol, VOL_SNAPSHOT_NAME=snap, VOL_SNAPSHOT_SIZE="96"))
    _write(ceph, vol, 5 * MiB, b"after!")
    assert ok(run(provider, "attach", VOL_NAME=snap)) == f"\nkvm:rbd:{pool}/{vol}@{snap}:conf={ceph.conf}\n"
    assert _read(ceph, f"{vol}@{snap}", 5 * MiB, 6) == b"before"  # the snapshot keeps the old bytes
    assert "already exists" in one_error_line(run(provider, "snapshot", VOL_NAME=vol, VOL_SNAPSHOT_NAME=snap))
    ok(run(provider, "detach", VOL_NAME=snap))
    ok(run(provider, "remove", VOL_NAME=snap))
    assert snap not in ceph.rbd("snap", "ls", f"{pool}/{vol}")
    assert "does not exist" in one_error_line(run(provider, "attach", VOL_NAME=snap))

    ok(run(provider, "snapshot", VOL_NAME=vol, VOL_SNAPSHOT_NAME=snap))  # left over by a failed export
    ok(run(provider, "detach", VOL_NAME=vol))
    ok(run(provider, "close", VOL_NAME=vol))
    ok(run(provider, "remove", VOL_NAME=vol))  # takes the snapshot it made with it
    assert vol not in ceph.rbd("ls", pool).split()
    ok(run(provider, "remove", VOL_NAME=vol))  # a missing volume is not an error
    assert "does not exist" in one_error_line(run(provider, "attach", VOL_NAME=vol))


def _write(ceph, image: str, offset: int, data: bytes) -> None:
    import rados
    import rbd

    with rados.Rados(conffile=str(ceph.conf)) as c, c.open_ioctx(ceph.pool) as io, rbd.Image(io, image) as img:
        img.write(data, offset)


def _read(ceph, spec: str, offset: int, length: int) -> bytes:
    import rados
    import rbd

    image, _, snap = spec.partition("@")
    with rados.Rados(conffile=str(ceph.conf)) as c, c.open_ioctx(ceph.pool) as io, \
            rbd.Image(io, image, snapshot=snap or None, read_only=True) as img:
        return img.read(offset, length)


@pytest.mark.parametrize("variables,words", [
    ({"EXTP_POOL": "nopool"}, "pool 'nopool' does not exist"),
    ({"EXTP_TIER": "fast"}, "unknown parameter tier for the rbd provider"),
    ({"EXTP_POOL": "a/b"}, "EXTP_POOL='a/b' is not a pool name"),
    ({"EXTP_CONF": "/nonexistent/ceph.conf"}, "cannot read the Ceph config /nonexistent/ceph.conf"),
    ({"EXTP_USER": "nobody"}, "refused client.nobody"),
    ({"VOL_NAME": "../etc"}, "is not a valid volume name"),
])
def test_failures_are_one_line(provider, ceph, variables, words):
    env = {"VOL_NAME": f"{uuid.uuid4()}.ext.disk0", "VOL_SIZE": "8", **variables}
    line = one_error_line(run(provider, "create", **env))
    assert line.startswith("rbd create: error: ") and words in line, line
    assert ceph.key() not in line


def test_unreachable_monitor_is_bounded(provider, ceph, tmp_path):
    conf = tmp_path / "nomon.conf"
    conf.write_text(ceph.conf.read_text().replace(ceph.address, "192.0.2.51"))
    proc = run(provider, "attach", VOL_NAME="v.ext.disk0", EXTP_CONF=str(conf))
    assert "no Ceph monitor named in" in one_error_line(proc) and "within 5 s" in proc.stderr


def test_verify_and_the_provider_dir(provider):
    ok(run(provider, "verify", VOL_NAME="v.ext.disk0", EXTP_POOL="rbd", EXTP_USER="admin"))
    assert "unknown parameter" in one_error_line(run(provider, "verify", VOL_NAME="v", EXTP_SIZE="1"))
    assert rbdinstall.diagnose(provider) == []
    assert (provider / "parameters.list").read_text().splitlines()[0].startswith("pool ")
