"""Create's host-side layout steps on a loop device: the volume stays sparse, as an import leaves it.

The volume is simulated as on this machine's LVM stand-in: a file of random
bytes (old data everywhere), attached as a loop device, its path deleted.
Its allocation is read through an fd held on the backing file.  No appliance.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest

from osdef.disk import loop
from osdef.disk.filemap import seek_extents
from osdef.create.layout.diskimage import DiskImageLayout
from osdef.create.layout.fsimage import FilesystemImageLayout
from osdef.create.target import wipe
from tests.support.guest import MiB, Images

pytestmark = pytest.mark.blockdev

VOLUME = 256 * MiB


@pytest.fixture
def volume(tmp_path: Path):
    """(loop device, fd of its deleted backing file): 256 MiB of random bytes, all allocated."""
    if os.geteuid() != 0:
        pytest.skip("loop devices need root")
    backing = tmp_path / "volume"
    rng = random.Random(18)
    with open(backing, "wb") as f:
        for _ in range(VOLUME // (4 * MiB)):
            f.write(rng.randbytes(4 * MiB))
    with loop.attached(backing) as dev:
        held = os.open(backing, os.O_RDONLY)
        backing.unlink()
        try:
            yield Path(dev), held
        finally:
            os.close(held)


def _allocated(fd: int, start: int = 0, end: int = VOLUME) -> int:
    """Bytes of the backing file allocated in [start, end) (its SEEK_DATA map)."""
    return sum(length for _, length in seek_extents(fd, start, end))


def _nonzero_mib(path: Path) -> int:
    """Bytes in the 1 MiB chunks of ``path`` that hold any non-zero byte (what the copy writes)."""
    total = 0
    with open(path, "rb") as f:
        while chunk := f.read(MiB):
            total += MiB if chunk.count(0) != len(chunk) else 0
    return total


def _run_host_steps(layout) -> None:
    for step in layout.host_steps():
        step.run()


@pytest.mark.parametrize("kind", ["filesystem image", "disk image"])
def test_create_layout_on_a_loop_device_keeps_its_volume_sparse(volume, guest_images: Images, kind):
    dev, held = volume
    assert _allocated(held) >= VOLUME
    image = guest_images.fs_image if kind == "filesystem image" else guest_images.disk_image
    size = image.stat().st_size
    with open(image, "rb") as stream:
        cls = FilesystemImageLayout if kind == "filesystem image" else DiskImageLayout
        layout = cls(dev, stream, size)
        layout.check(VOLUME)
        _run_host_steps(layout)
    if kind == "filesystem image":
        extent = layout.root_extent()
        start, end = extent.start, extent.start + extent.size
    else:
        start, end = 0, size
    with open(dev, "rb") as f:
        f.seek(start)
        assert f.read(size) == image.read_bytes()  # the image, byte for byte
        assert f.read(min(end - start - size, 32 * MiB)).count(0) == min(end - start - size, 32 * MiB)
    # what the layout defined holds the image's data and the partition table's sectors: not the
    # old bytes, nor the zeroed rest (BLKZEROOUT on a loop device would have allocated all of it);
    # a disk image's layout leaves the volume past the image to the guest's grow, as before
    allocated = _allocated(held, 0, end)
    assert allocated <= _nonzero_mib(image) + 2 * MiB, (allocated, _nonzero_mib(image))
    if kind == "filesystem image":  # the partition runs to the backup GPT: the whole volume is sparse
        assert os.fstat(held).st_blocks * 512 <= _nonzero_mib(image) + 3 * MiB

    wipe(dev)  # a failed create's undo: head and tail zeroed, still without allocating
    with open(dev, "rb") as f:
        assert f.read(MiB) == bytes(MiB)
        f.seek(VOLUME - MiB)
        assert f.read(MiB) == bytes(MiB)
    assert _allocated(held, 0, end) <= allocated
