"""osdef.disk.loop's losetup helper and osdef.disk.filemap's loop-device map on real loop devices,
judged by the kernel: sysfs for what a device is, reads through the device for what it holds."""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from osdef.disk import filemap, loop
from osdef.disk.units import MiB
from osdef.stream import blockio
from tests.support.stream import Layout, LoopDevices, backing_file_of, fill_random, read_all

pytestmark = pytest.mark.blockdev


def _sys(device: str, name: str) -> str:
    return Path(f"/sys/block/{os.path.basename(device)}/{name}").read_text().strip()


def _size(device: str) -> int:
    return int(subprocess.run(["blockdev", "--getsize64", device], capture_output=True, text=True,
                              check=True).stdout)


@pytest.mark.parametrize("options", [{}, {"read_only": True}, {"offset": MiB, "sizelimit": 2 * MiB},
                                     {"offset": 512, "read_only": True}, {"sector_size": 4096}])
def test_attach_sets_up_what_the_kernel_then_shows(loops, tmp_path, options):
    backing = fill_random(tmp_path / "v.img", 4 * MiB)
    dev = loops.attach(backing, **options)
    assert _sys(dev, "loop/backing_file") == str(backing)
    assert int(_sys(dev, "loop/offset")) == options.get("offset", 0)
    assert int(_sys(dev, "loop/sizelimit")) == options.get("sizelimit", 0)
    assert _sys(dev, "ro") == ("1" if options.get("read_only") else "0")
    assert int(_sys(dev, "queue/logical_block_size")) == options.get("sector_size", 512)
    assert _size(dev) == (options.get("sizelimit") or 4 * MiB - options.get("offset", 0))
    assert loop.devices_of(backing) == [dev]
    loops.detach(dev)
    # losetup -d on a device someone still has open (a short-lived prober) only marks it autoclear:
    # the kernel lets it go when the last opener closes it (CI saw /dev/loop0 still listed once)
    deadline = time.monotonic() + 10
    while loop.devices_of(backing) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert loop.devices_of(backing) == []
    assert backing_file_of(dev) != str(backing)  # unbound, or already another test's (CI saw loop0 reused)


def test_attached_detaches_and_refresh_capacity_shows_a_grown_file(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("loop devices need root")
    backing = fill_random(tmp_path / "v.img", 2 * MiB)
    with loop.attached(backing) as dev:
        os.truncate(backing, 5 * MiB)
        assert _size(dev) == 2 * MiB
        loop.refresh_capacity(dev)
        assert _size(dev) == 5 * MiB
    assert loop.devices_of(backing) == []


def test_losetup_failures_are_one_line(tmp_path, loops):
    with pytest.raises(loop.LoopError) as info:
        loops.attach(tmp_path / "missing.img")
    assert str(info.value) == (f"cannot attach {tmp_path}/missing.img to a loop device: "
                               f"losetup: {tmp_path}/missing.img: failed to set up loop device: No such file or directory")
    not_loop = fill_random(tmp_path / "plain", MiB)
    with pytest.raises(loop.LoopError, match=f"^cannot detach {not_loop}: losetup: .*No such device$"):
        loop.detach(str(not_loop))
    assert loop.devices_of(tmp_path / "missing.img") == []


def _nonzero_bytes(data: bytes) -> set[int]:
    return {i for i, b in enumerate(data) if b}


@settings(max_examples=15, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.integers(0, 255), st.integers(1, 40)), max_size=6),
       st.integers(0, 255), st.integers(0, 255), st.booleans())
def test_a_loop_devices_map_holds_what_the_device_shows_and_reads_it_from_the_file(loops, writes, start, limit,
                                                                                    read_only):
    """Offset and size limit in 4 KiB blocks of a 1 MiB file: every non-zero byte read through the device lies
    in the map, the map lies in the device, and its source at the shift holds the device's bytes."""
    block = 4096
    with tempfile.TemporaryDirectory() as d:
        backing = Layout(MiB, tuple((b * block, n * block, "random") for b, n in writes), 5).create(Path(d) / "v")
        offset = start * block
        sizelimit = min(limit * block, MiB - offset)
        try:
            dev = loops.attach(backing, read_only=read_only, offset=offset, sizelimit=sizelimit)
            shown = read_all(dev)
            with blockio.open_disk(dev, write=False) as disk, filemap.filemap(disk) as found:
                assert (found.kind, found.shift, disk.size) == ("loop", offset, len(shown))
                got = list(found.ranges())
                assert all(o >= 0 and o + n <= disk.size for o, n in got)
                covered = {b for o, n in got for b in range(o, o + n)}
                assert _nonzero_bytes(shown) <= covered
                for o, n in got:
                    assert os.pread(found.source.fd, n, o + found.shift) == shown[o:o + n]
        finally:
            loops.detach_all()


def test_the_map_closes_its_backing_file(loops, tmp_path):
    dev = loops.attach(fill_random(tmp_path / "v.img", MiB))
    with blockio.open_disk(dev, write=False) as disk:
        found = filemap.filemap(disk)
        held = found.source.fd
        assert found.kind == "loop" and held != disk.fd
        found.close()
        with pytest.raises(OSError) as info:
            os.fstat(held)
        assert info.value.errno == errno.EBADF


def test_a_partition_of_a_loop_device_has_no_map(loops, tmp_path):
    if shutil.which("partx") is None:
        pytest.skip("needs partx")
    image = fill_random(tmp_path / "d.img", 4 * MiB)
    subprocess.run(["sfdisk", "-q", str(image)], input="start=2048, size=4096\n", text=True, check=True)
    dev = loops.attach(image)
    subprocess.run(["partx", "-a", dev], check=True, capture_output=True)
    try:
        with blockio.open_disk(f"{dev}p1", write=False) as part:
            found = filemap.filemap(part)
            assert (found.kind, list(found.ranges())) == ("none", [(0, 2 * MiB)])
    finally:  # partitions added by partx outlive the detach (no partscan flag): the next user of dev would see them
        subprocess.run(["partx", "-d", dev], check=True, capture_output=True)


def test_a_replaced_backing_file_or_a_loop_over_a_device_has_no_map(loops, tmp_path):
    """The file at the path the driver names must be the inode it holds, and a regular file."""
    backing = fill_random(tmp_path / "v.img", MiB)
    dev = loops.attach(backing)
    fill_random(tmp_path / "other.img", MiB, seed=2).rename(backing)  # the driver's path now reads "… (deleted)"
    assert _sys(dev, "loop/backing_file") == f"{backing} (deleted)"
    fill_random(tmp_path / "v.img (deleted)", MiB, seed=3)  # a file by that name: another inode
    over_device = loops.attach(dev)  # a loop device backed by a block device
    for device in (dev, over_device):
        with blockio.open_disk(device, write=False) as disk:
            assert filemap.filemap(disk).kind == "none"


def test_loop_devices_of_the_manager_are_detached(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("loop devices need root")
    manager = LoopDevices()
    backing = fill_random(tmp_path / "v.img", MiB)
    manager.attach(backing)
    manager.attach(backing, read_only=True)
    assert len(loop.devices_of(backing)) == 2
    manager.detach_all()
    assert loop.devices_of(backing) == [] and manager.devices == []
