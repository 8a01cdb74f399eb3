"""The installed `export` and `import` scripts, run as Ganeti runs them: clean environment, cwd = OS dir,
EXP_SIZE_FD on fd 11 (an inherited pipe), stdout/stdin the stream."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.stream import (SIZE_FD, MiB, Layout, assert_restored, assert_wiped, fill_random, read_all,
                                  run_script)

@pytest.fixture(scope="module")
def os_dir(tmp_path_factory) -> Path:
    target = tmp_path_factory.mktemp("osdir") / "image"
    osdef = Path(sys.executable).parent / "osdef"
    subprocess.run([str(osdef), "install", "--os-dir", str(target)], check=True, capture_output=True)
    return target


def ganeti_env(script: str, device: Path | str, **extra: str) -> dict[str, str]:
    """The variables Ganeti 3.0 gives export/import (see reference/ganeti-env/12-export-*, 16-import-*)."""
    env = {
        "PATH": "/sbin:/bin:/usr/sbin:/usr/bin", "LANG": "C.UTF-8", "LC_ALL": "C", "HOME": "/root",
        "OS_API_VERSION": "20", "OS_NAME": "image", "OS_VARIANT": "debian-12", "DEBUG_LEVEL": "0",
        "HYPERVISOR": "kvm", "INSTANCE_NAME": "inst1.example.test", "INSTANCE_OS": "image+debian-12",
        "INSTANCE_UUID": "6adf4155-38b1-4a21-b873-6870f58b9c95",
        "INSTANCE_PRIMARY_NODE": "f75fda96-becb-401e-b354-d2dd97315336", "INSTANCE_SECONDARY_NODES": "",
        "INSTANCE_BE_vcpus": "1", "INSTANCE_BE_maxmem": "128", "INSTANCE_BE_minmem": "128",
        "DISK_COUNT": "1", "DISK_0_PATH": str(device), "DISK_0_SIZE": "8", "DISK_0_ACCESS": "rw",
        "DISK_0_BACKEND_TYPE": "file:loop", "DISK_0_UUID": "a7c7d8ed-31d0-43e0-8dd5-c374e9ab5f27",
        "NIC_COUNT": "0", "EXP_SIZE_FD": str(SIZE_FD),
    }
    kind = "EXPORT" if script == "export" else "IMPORT"
    env.update({f"{kind}_DEVICE": str(device), f"{kind}_DISK_PATH": str(device), f"{kind}_INDEX": "0"})
    env.update(extra)
    return env


def layout() -> Layout:
    return Layout(8 * MiB + 4096, ((0, 70_000, "random"), (3 * MiB, 2 * MiB, "random"), (6 * MiB, MiB, "zeros"),
                                   (8 * MiB, 4096, "pattern")), 42)


@pytest.mark.parametrize("fmt,compression", [("sparse", "none"), ("raw", "none"), ("sparse", "zstd")])
def test_export_then_import_through_the_scripts(os_dir, tmp_path, fmt, compression):
    src = layout().create(tmp_path / "disk0")
    params = {"OSP_EXPORT_FORMAT": fmt, "OSP_EXPORT_COMPRESSION": compression}
    with open(os.devnull, "rb") as devnull, open(tmp_path / "stream", "wb") as out:
        rc, err, announced = run_script(os_dir, "export", ganeti_env("export", src, **params), devnull, out)
    assert rc == 0, err
    size = (tmp_path / "stream").stat().st_size
    if compression == "none":
        assert announced == b"%d\n" % size
    else:
        assert int(announced) > 0
    if fmt == "raw":
        assert size == src.stat().st_size
    else:  # the allocated bytes (the zero MiB at 6 MiB included: a file is streamed by its map)
        assert size < src.stat().st_blocks * 512 + 4096

    tgt = fill_random(tmp_path / "target", src.stat().st_size + MiB)
    with open(tmp_path / "stream", "rb") as stream, open(tmp_path / "import.log", "wb") as log:
        rc, err, announced = run_script(os_dir, "import", ganeti_env("import", tgt), stream, log)
    assert rc == 0, err + read_all(tmp_path / "import.log").decode()
    if fmt == "sparse" and compression == "none":
        assert announced == b"%d\n" % size
    assert_restored(src, tgt)


def test_failed_import_is_one_line_and_wipes_the_disk(os_dir, tmp_path):
    src = layout().create(tmp_path / "disk0")
    with open(os.devnull, "rb") as devnull, open(tmp_path / "stream", "wb") as out:
        rc, err, _ = run_script(os_dir, "export", ganeti_env("export", src), devnull, out)
    assert rc == 0, err
    with open(tmp_path / "stream", "r+b") as f:
        f.truncate((tmp_path / "stream").stat().st_size - 100)
    tgt = fill_random(tmp_path / "target", src.stat().st_size)
    with open(tmp_path / "stream", "rb") as stream, open(tmp_path / "import.log", "wb") as log:
        rc, err, _ = run_script(os_dir, "import", ganeti_env("import", tgt), stream, log)
    assert rc != 0
    lines = (err + read_all(tmp_path / "import.log").decode()).strip().splitlines()
    assert any("truncated" in line for line in lines), lines
    assert "Traceback" not in err
    assert_wiped(tgt)


def test_two_sigterms_never_cost_the_import_script_its_line(os_dir, tmp_path):
    """Ganeti (or an admin) stopping an import twice in a row: every time the disk is wiped, the
    script exits 1 and its one line reaches stderr (no second signal ends it before it prints)."""
    import signal
    import time

    src = Layout(8 * MiB, tuple((i * 256 * 1024, 4096, "random") for i in range(32)), 5).create(tmp_path / "disk0")
    with open(os.devnull, "rb") as devnull, open(tmp_path / "stream", "wb") as out:
        assert run_script(os_dir, "export", ganeti_env("export", src), devnull, out)[0] == 0
    half = read_all(tmp_path / "stream")[:(tmp_path / "stream").stat().st_size // 2]
    for attempt in range(6):
        tgt = fill_random(tmp_path / "target", 8 * MiB, seed=100 + attempt)
        before = read_all(tgt)[:4096]
        proc = subprocess.Popen(["/bin/bash", "-c", f'exec "$0" {SIZE_FD}>/dev/null', "./import"], cwd=os_dir,
                                env=ganeti_env("import", tgt), stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE)
        proc.stdin.write(half)  # then nothing: the import waits for the rest
        proc.stdin.flush()
        deadline = time.monotonic() + 60
        while read_all(tgt)[:4096] == before and time.monotonic() < deadline:
            time.sleep(0.02)
        proc.send_signal(signal.SIGTERM)
        time.sleep(0.002 * attempt)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 1, (attempt, proc.returncode, err)
        assert b"SIGTERM" in err and b"were zeroed" in err and b"Traceback" not in err, err
        assert_wiped(tgt)


def test_sigterm_ends_an_export_in_one_line(os_dir, tmp_path):
    """Ganeti aborting an export: the script stops (128 + SIGTERM) with one line, having taken down
    what it set up (its with/finally blocks run: actions.ExportStopped), and a second signal is ignored."""
    import signal
    import time

    src = fill_random(tmp_path / "disk0", 64 * MiB)
    proc = subprocess.Popen(["/bin/bash", "-c", f'exec "$0" {SIZE_FD}>/dev/null', "./export"], cwd=os_dir,
                            env=ganeti_env("export", src, DISK_0_SIZE="64"), stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None
    proc.stdout.read(4096)  # it is streaming; nothing more is read, so it blocks on a full pipe
    time.sleep(0.3)
    proc.send_signal(signal.SIGTERM)
    proc.send_signal(signal.SIGTERM)
    err = proc.stderr.read().decode()  # until it exits (its stdout stays open: no EPIPE to race the signal)
    assert proc.wait(timeout=60) == 128 + signal.SIGTERM, err
    proc.stdout.close()
    assert err.strip().splitlines() == ["osdef export: interrupted by signal SIGTERM"], err


@pytest.mark.blockdev
def test_export_of_a_loop_device_through_the_script(os_dir, tmp_path, loops):
    src = layout().create(tmp_path / "disk0")
    dev = loops.attach(src)
    with open(os.devnull, "rb") as devnull, open(tmp_path / "stream", "wb") as out:
        rc, err, announced = run_script(os_dir, "export", ganeti_env("export", dev), devnull, out)
    assert rc == 0, err
    assert announced == b"%d\n" % (tmp_path / "stream").stat().st_size
    tgt_dev = loops.attach(fill_random(tmp_path / "target", src.stat().st_size))
    with open(tmp_path / "stream", "rb") as stream, open(tmp_path / "import.log", "wb") as log:
        rc, err, _ = run_script(os_dir, "import", ganeti_env("import", tgt_dev), stream, log)
    assert rc == 0, err
    assert_restored(src, tgt_dev)


@pytest.mark.parametrize("content", ["used", "allocated"])
def test_export_content_through_the_script(os_dir, tmp_path, content):
    """A disk whose ext4 needs recovery: one stderr line naming the partition (used), none (allocated)."""
    from tests.support.fsdisks import Part, gpt, make_fs, make_tree, run

    bios, root = Part(MiB, MiB, "bios"), Part(2 * MiB, 20 * MiB, "ext4")
    src = fill_random(tmp_path / "disk0", 24 * MiB)
    gpt(src, [bios, root])
    make_fs(src, root, make_tree(tmp_path / "tree", files=5))
    run("debugfs", "-w", "-R", "feature needs_recovery", f"{src}?offset={root.start}")
    env = ganeti_env("export", src, OSP_EXPORT_CONTENT=content)
    with open(os.devnull, "rb") as devnull, open(tmp_path / "stream", "wb") as out:
        rc, err, announced = run_script(os_dir, "export", env, devnull, out)
    assert rc == 0, err
    assert announced == b"%d\n" % (tmp_path / "stream").stat().st_size
    fallbacks = [ln for ln in err.splitlines() if "sent at block level" in ln]
    if content == "used":
        assert len(fallbacks) == 1 and "partition 2" in fallbacks[0] and "recovery" in fallbacks[0], err
    else:
        assert fallbacks == []
    tgt = fill_random(tmp_path / "target", 24 * MiB, seed=3)
    with open(tmp_path / "stream", "rb") as stream, open(tmp_path / "import.log", "wb") as log:
        rc, err, _ = run_script(os_dir, "import", ganeti_env("import", tgt), stream, log)
    assert rc == 0, err
    assert_restored(src, tgt)  # the one partition fell back: everything is byte-identical
    plan = [ln.split("as exported: ", 1)[1] for ln in err.splitlines() if "as exported: " in ln]
    if content == "used":  # the stored export says what it holds, one line per partition
        assert plan[0] == "partition table: gpt" and len(plan) == 3
        assert plan[1].startswith("partition 1 (1.0 MiB at 1.0 MiB): block level: BIOS boot partition")
        assert plan[2].startswith("partition 2 (ext4 20.0 MiB at 2.0 MiB): block level: ") and "recovery" in plan[2]
    else:
        assert plan == []
