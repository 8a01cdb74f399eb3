"""Export and import of RBD images (URIs) on a real Ceph: byte-identical, thin, exact, and every failure one line.

In-process (osdef.stream on ``rbd:`` URIs, images written and read back with
python3-rbd) and through the installed scripts with Ganeti's environment
for a userspace-only disk (EXPORT_DISK_URI / IMPORT_DISK_URI, no device).
Oracles: librbd's own reads, ``rbd export`` (the bytes it sends) and
``diff_iterate`` (what an image allocates).
"""

from __future__ import annotations

import hashlib
import os
import random
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from tests.support.ceph import ganeti_uri_env
from tests.support.stream import export_to_file, import_from_file, layouts, run_script

MiB = 1 << 20
OBJECT = 4 * MiB


class Images:
    """python3-rbd on the tier's cluster: make, write, read and list images; removes what it made."""

    def __init__(self, ceph):
        import rados
        import rbd

        self.rbd = rbd
        self.ceph = ceph
        self.cluster = rados.Rados(conffile=str(ceph.conf))
        self.cluster.connect()
        self.ioctx = self.cluster.open_ioctx(ceph.pool)
        self.made: list[str] = []

    def create(self, size: int, fill: str = "none") -> str:
        name = f"s-{uuid.uuid4().hex[:16]}"  # not `random`: hypothesis seeds it
        self.rbd.RBD().create(self.ioctx, name, size)
        self.made.append(name)
        if fill == "random":
            self.write(name, 0, os.urandom(size))
        return name

    def write(self, name: str, offset: int, data: bytes) -> None:
        with self.rbd.Image(self.ioctx, name) as img:
            img.write(data, offset)

    def read(self, name: str, length: int | None = None) -> bytes:
        with self.rbd.Image(self.ioctx, name, read_only=True) as img:
            return img.read(0, img.size() if length is None else length)

    def tail(self, name: str, length: int) -> bytes:
        with self.rbd.Image(self.ioctx, name, read_only=True) as img:
            return img.read(img.size() - length, length)

    def objects(self, name: str) -> set[int]:
        """Indexes of the image's RADOS objects that exist (diff_iterate, whole objects)."""
        found: set[int] = set()
        with self.rbd.Image(self.ioctx, name, read_only=True) as img:
            img.diff_iterate(0, img.size(), None, lambda o, n, e: found.update(range(o // OBJECT, -(-(o + n) // OBJECT))),
                             whole_object=True)
        return found

    def close(self) -> None:
        for name in self.made:
            try:
                self.rbd.RBD().remove(self.ioctx, name)
            except self.rbd.Error:
                pass
        self.ioctx.close()
        self.cluster.shutdown()


@pytest.fixture(scope="module")
def images(ceph):
    store = Images(ceph)
    yield store
    store.close()


def uri(ceph, name: str) -> str:
    return f"rbd:{ceph.pool}/{name}"


def write_layout(images: Images, layout) -> str:
    name = images.create(layout.size)
    rng = random.Random(layout.seed)
    for offset, length, kind in layout.writes:
        length = min(length, layout.size - offset)
        data = rng.randbytes(length) if kind == "random" else bytes(length) if kind == "zeros" else \
            (b"osdef" * (length // 5 + 1))[:length]
        images.write(name, offset, data)
    return name


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(layout=layouts(max_size=12 * MiB, align=512, min_size=MiB),
       options=st.sampled_from([{}, {"content": "allocated"}, {"fmt": "raw"}, {"compression": "zstd"}]))
def test_round_trip_onto_an_image_full_of_old_data(images, ceph, tmp_path_factory, layout, options):
    """Byte-identical, the announced size exact, and only objects holding data allocated afterwards."""
    source = write_layout(images, layout)
    target = images.create(layout.size + MiB, fill="random")
    stream = tmp_path_factory.mktemp("rt") / "stream"
    sent, announced = export_to_file(uri(ceph, source), stream, **options)
    assert sent == stream.stat().st_size
    if options.get("compression") != "zstd":
        assert announced == sent
    result, _ = import_from_file(stream, uri(ceph, target))
    original = images.read(source)
    copy = images.read(target)
    assert copy[:len(original)] == original and not copy[len(original):].strip(b"\0")
    # thin: holes and zero runs were zeroed without writing data, so the copy allocates no object the source
    # does not (write_zeroes removed the old data's); the image's last object, cut by its end, is zeroed in place
    whole = (layout.size + MiB) // OBJECT
    assert {i for i in images.objects(target) if i < whole} <= images.objects(source)


def test_export_sends_fewer_bytes_than_rbd_export(images, ceph, tmp_path):
    """Objects partly written (zeros inside them) and unwritten objects: rbd export sends the whole image."""
    name = images.create(64 * MiB)
    for offset in (0, 9 * MiB + 4096, 40 * MiB):
        images.write(name, offset, random.randbytes(300_000))
    sent, announced = export_to_file(uri(ceph, name), tmp_path / "s")
    rbd_export = subprocess.run(["rbd", "export", f"{ceph.pool}/{name}", "-"], env=ceph.env,
                                capture_output=True, check=True).stdout
    assert sent == announced < len(rbd_export) // 10
    assert hashlib.sha256(rbd_export).digest() == hashlib.sha256(images.read(name)).digest()


def test_a_snapshot_is_exported_as_it_was(images, ceph, tmp_path):
    name = images.create(8 * MiB)
    images.write(name, MiB, b"before" * 1000)
    ceph.rbd("snap", "create", f"{ceph.pool}/{name}@s1")
    images.write(name, MiB, b"after!" * 1000)
    export_to_file(f"{uri(ceph, name)}@s1", tmp_path / "s")
    copy = images.create(8 * MiB, fill="random")
    import_from_file(tmp_path / "s", uri(ceph, copy))
    assert images.read(copy)[MiB:MiB + 6000] == b"before" * 1000
    ceph.rbd("snap", "purge", f"{ceph.pool}/{name}")


# -- the installed scripts: one line per failure, nothing half-written, no key ------------------------

@pytest.fixture(scope="module")
def bad_confs(ceph, tmp_path_factory) -> dict[str, Path]:
    """ceph.conf variants: a keyring with a wrong key for client.admin, a monitor nobody answers at."""
    d = tmp_path_factory.mktemp("confs")
    subprocess.run(["ceph-authtool", "--create-keyring", str(d / "wrong.keyring"), "--gen-key", "-n", "client.admin"],
                   check=True, capture_output=True)
    text = ceph.conf.read_text()
    (d / "wrongkey.conf").write_text(text.replace(f"keyring = {ceph.keyring}", f"keyring = {d / 'wrong.keyring'}"))
    (d / "nomon.conf").write_text(text.replace(ceph.address, "192.0.2.51"))  # on the LAN, nobody there
    return {"wrongkey": d / "wrongkey.conf", "nomon": d / "nomon.conf"}


def _run(os_dir: Path, script: str, env: dict[str, str], stdin_data: bytes = b"") -> tuple[int, str, float]:
    import tempfile

    started = time.monotonic()
    with tempfile.TemporaryFile() as stdin, open(os.devnull, "wb") as out:
        stdin.write(stdin_data)
        stdin.seek(0)
        rc, err, _ = run_script(os_dir, script, env, stdin, out)
    return rc, err, time.monotonic() - started


def one_line(rc: int, err: str, key: str) -> str:
    assert rc != 0
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert key not in err
    return lines[0]


@pytest.mark.parametrize("script", ["export", "import", "create"])
@pytest.mark.parametrize("case,words", [
    ("bad-uri", "must be rbd:<pool>/<image>"),
    ("gluster", "libguestfs 1.54 removed gluster"),
    ("key-in-uri", "cephx secret"),
    ("unknown-pool", "pool 'nopool' does not exist"),
    ("unknown-image", "does not exist"),
    ("wrong-key", "refused client.admin"),
    ("unreachable-monitor", "answered within 3 s"),
])
def test_every_failure_is_one_line_and_touches_nothing(images, ceph, rbd_os_dir, bad_confs, script, case, words):
    key = ceph.key()
    name = images.create(8 * MiB, fill="random")
    before = images.read(name)
    good = uri(ceph, name)
    target, extra = {
        "bad-uri": (f"rbd:{ceph.pool}", {}),
        "gluster": ("gluster://host/vol/img", {}),
        "key-in-uri": (f"{good}:key={key}", {}),
        "unknown-pool": ("rbd:nopool/img", {}),
        "unknown-image": (f"rbd:{ceph.pool}/no-such-image", {}),
        "wrong-key": (f"{good}:conf={bad_confs['wrongkey']}", {}),
        "unreachable-monitor": (f"{good}:conf={bad_confs['nomon']}", {}),
    }[case]
    env = ganeti_uri_env(script, [(target, 8)], name="err.example.test", **extra)
    env["OSDEF_CONFIG"] = str(rbd_os_dir / "osdef.yaml")
    if case == "unreachable-monitor":
        conf = rbd_os_dir.parent / "short-timeout.yaml"
        conf.write_text((rbd_os_dir / "osdef.yaml").read_text().replace("connect_timeout: 10", "connect_timeout: 3"))
        env["OSDEF_CONFIG"] = str(conf)
    stream = b""
    if script == "import":
        src = images.create(8 * MiB, fill="random")
        stream_path = rbd_os_dir.parent / f"{case}.stream"
        export_to_file(uri(ceph, src), stream_path)
        stream = stream_path.read_bytes()
    names_before = set(ceph.rbd("ls", ceph.pool).split())
    rc, err, seconds = _run(rbd_os_dir, script, env, stream)
    line = one_line(rc, err, key)
    assert words in line, line
    assert images.read(name) == before  # the disk is as it was: refused before anything was written
    assert set(ceph.rbd("ls", ceph.pool).split()) == names_before  # no image appeared
    if case == "unreachable-monitor":
        assert seconds < 20, f"the connect timeout did not bound the wait: {seconds:.0f} s"


def test_import_refusals_and_failures_on_an_image(images, ceph, rbd_os_dir, tmp_path):
    """Garbage: refused before the first write (untouched).  A stream cut short: the first and last MiB wiped."""
    key = ceph.key()
    src = images.create(16 * MiB, fill="random")
    export_to_file(uri(ceph, src), tmp_path / "s")
    stream = (tmp_path / "s").read_bytes()
    target = images.create(16 * MiB, fill="random")
    before = images.read(target)
    env = ganeti_uri_env("import", [(uri(ceph, target), 16)], name="imp.example.test")
    line = one_line(*_run(rbd_os_dir, "import", env, b"\x01" * 1000)[:2], key)
    assert "nothing was written" in line and images.read(target) == before
    line = one_line(*_run(rbd_os_dir, "import", env, stream[:len(stream) - 1000])[:2], key)
    assert "were zeroed" in line
    assert not images.read(target, MiB).strip(b"\0") and not images.tail(target, MiB).strip(b"\0")
    snap_env = ganeti_uri_env("import", [(f"{uri(ceph, target)}@nosnap", 16)], name="imp.example.test")
    line = one_line(*_run(rbd_os_dir, "import", snap_env, stream)[:2], key)
    assert line.endswith("@nosnap is a snapshot: it can only be read")


def test_export_and_import_through_the_scripts_with_debug_on(images, ceph, rbd_os_dir, tmp_path):
    """DEBUG_LEVEL=1 changes nothing of the above: the key is in no output."""
    key = ceph.key()
    src = images.create(16 * MiB)
    images.write(src, 5 * MiB, random.randbytes(2 * MiB))
    env = ganeti_uri_env("export", [(uri(ceph, src), 16)], name="dbg.example.test", DEBUG_LEVEL="1")
    with open(tmp_path / "s", "wb") as out:
        rc, err, announced = run_script(rbd_os_dir, "export", env, subprocess.DEVNULL, out)
    assert rc == 0 and key not in err, err
    # the 2 MiB of data and the zeros before it in their RADOS object (diff_iterate is object-granular)
    assert int(announced) == (tmp_path / "s").stat().st_size < 3 * MiB + 4096
    target = images.create(16 * MiB, fill="random")
    env = ganeti_uri_env("import", [(uri(ceph, target), 16)], name="dbg.example.test", DEBUG_LEVEL="1")
    with open(tmp_path / "s", "rb") as stream:
        rc, err, _ = run_script(rbd_os_dir, "import", env, stream, subprocess.DEVNULL)
    assert rc == 0 and key not in err, err
    assert images.read(target) == images.read(src)


def test_osdef_try_exports_and_imports_rbd_uris(images, ceph, rbd_os_dir, ceph_site_config, tmp_path):
    """`osdef try` with --disk rbd:…: the scripts get the URI (the size read through librbd), the copy is
    librbd-identical, EXP_SIZE_FD said the bytes sent, and a missing image is one line."""
    src = images.create(16 * MiB)
    images.write(src, 9 * MiB, random.randbytes(MiB))
    target = images.create(16 * MiB, fill="random")
    common = ["--os-dir", str(rbd_os_dir), "--config", str(ceph_site_config)]

    def try_(*argv: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "osdef.cli", "try", *argv[:1], *common, *argv[1:]],
                              capture_output=True, text=True, timeout=300)

    plan = try_("export", "--plan", "--disk", uri(ceph, src))
    assert plan.returncode == 0, plan.stderr
    out = try_("export", "--disk", uri(ceph, src), "--output", str(tmp_path / "s"))
    sent = (tmp_path / "s").stat().st_size
    assert out.returncode == 0 and f"{sent} bytes on stdout; EXP_SIZE_FD (fd 11) said {sent}" in out.stderr, out.stderr
    assert sent < 4 * MiB + 4096  # the one RADOS object written (diff_iterate is object-granular)
    imp = try_("import", "--disk", uri(ceph, target), "--input", str(tmp_path / "s"))
    assert imp.returncode == 0 and "import exited 0" in imp.stderr, imp.stderr
    assert images.read(target) == images.read(src)
    missing = try_("export", "--disk", uri(ceph, "no-such-image"), "--output", str(tmp_path / "m"))
    assert missing.returncode != 0 and "Traceback" not in missing.stderr
    assert len(missing.stderr.strip().splitlines()) == 1 and "no-such-image" in missing.stderr, missing.stderr


def test_an_xfs_on_an_rbd_image_goes_at_block_level_in_one_line(images, ceph, tmp_path):
    """partclone needs a kernel device: the xfs partition is sent at block level, said once, restored exactly."""
    local = tmp_path / "xfs.img"
    with open(local, "wb") as f:
        f.truncate(320 * MiB)
    subprocess.run(["mkfs.xfs", "-q", str(local)], check=True)
    name = images.create(320 * MiB)
    data = local.read_bytes()
    for offset in range(0, len(data), 8 * MiB):
        if data[offset:offset + 8 * MiB].strip(b"\0"):
            images.write(name, offset, data[offset:offset + 8 * MiB])
    warnings: list[str] = []
    export_to_file(uri(ceph, name), tmp_path / "s", warn=warnings.append)
    assert warnings == [f"rbd:{ceph.pool}/{name}: whole disk: its xfs filesystem is on an RBD image, which "
                        "partclone.xfs cannot read (no kernel device): sent at block level"]
    copy = images.create(320 * MiB, fill="random")
    import_from_file(tmp_path / "s", uri(ceph, copy))
    assert images.read(copy) == data
