"""Shared helpers for the stream tests: sparse disk layouts, loop devices, export/import plumbing."""

from __future__ import annotations

import contextlib
import os
import random
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path
from unittest import mock

import pytest
from hypothesis import strategies as st

from osdef.disk import filemap, loop

MiB = 1024 * 1024
SIZE_FD = 11  # where Ganeti's export/import pipeline hands the scripts EXP_SIZE_FD


@dataclass(frozen=True)
class Layout:
    """A disk to create: its size and what to write where (b"\\0" runs are allocated zeros)."""

    size: int
    writes: tuple[tuple[int, int, str], ...]  # (offset, length, "random" | "zeros" | "pattern")
    seed: int

    def create(self, path: Path) -> Path:
        rng = random.Random(self.seed)
        with open(path, "wb") as f:
            f.truncate(self.size)
            for offset, length, kind in self.writes:
                length = min(length, self.size - offset)
                if kind == "random":
                    data = rng.randbytes(length)
                elif kind == "zeros":
                    data = bytes(length)
                else:
                    data = (b"osdef" * (length // 5 + 1))[:length]
                f.seek(offset)
                f.write(data)
        return path


RAW_ALIGN = 512  # a raw dump is whole sectors, at least 1 MiB (osdef.stream.sniff)
RAW_MIN = MiB


@st.composite
def layouts(draw, max_size: int = 12 * MiB, align: int = 1, min_size: int = 1) -> Layout:
    """Disks with holes at start/end, tiny and huge extents, allocated zeros and unaligned sizes."""
    size = draw(st.integers(-(-min_size // align), max_size // align)) * align
    n = draw(st.integers(0, 6))
    writes = []
    for _ in range(n):
        where = draw(st.sampled_from(["start", "end", "any"]))
        length = draw(st.one_of(st.integers(1, 16), st.integers(1, 300_000), st.integers(MiB, 4 * MiB)))
        length = min(length, size)
        if where == "start":
            offset = 0
        elif where == "end":
            offset = size - length
        else:
            offset = draw(st.integers(0, size - 1))
        kind = draw(st.sampled_from(["random", "random", "zeros", "pattern"]))
        writes.append((offset, length, kind))
    return Layout(size, tuple(writes), draw(st.integers(0, 2**32)))


def fill_random(path: Path, size: int, seed: int = 1) -> Path:
    """A dirty target: every byte random."""
    rng = random.Random(seed)
    with open(path, "wb") as f:
        left = size
        while left:
            n = min(left, 4 * MiB)
            f.write(rng.randbytes(n))
            left -= n
    return path


class SizeFdPipe:
    """A pipe standing in for Ganeti's EXP_SIZE_FD: hand ``fd`` to the writer, then ``announced()``;
    both ends are closed when the ``with`` block ends."""

    def __enter__(self) -> SizeFdPipe:
        self.read_end, self.fd = os.pipe()
        return self

    def announced(self) -> bytes:
        """What was written on it (the write end is closed first: the read ends there)."""
        os.close(self.fd)
        self.fd = -1
        return os.read(self.read_end, 100)

    def __exit__(self, *exc: object) -> None:
        os.close(self.read_end)
        if self.fd >= 0:
            os.close(self.fd)


def run_script(os_dir: Path, script: str, env: dict[str, str], stdin, stdout) -> tuple[int, str, bytes]:
    """Run DIR/script with fd 11 a pipe (as Ganeti's import-export daemon does); return (rc, stderr, fd 11 text)."""
    with SizeFdPipe() as size_fd:
        w = size_fd.fd  # bash moves our pipe to fd 11, as Ganeti's bash pipeline hands it down.
        proc = subprocess.run(["/bin/bash", "-c", f'exec "$0" {SIZE_FD}>&{w} {w}>&-', f"./{script}"],
                              cwd=os_dir, env=env, stdin=stdin, stdout=stdout, stderr=subprocess.PIPE,
                              pass_fds=(w,), timeout=120)
        announced = size_fd.announced()
    return proc.returncode, proc.stderr.decode(), announced


def export_to_file(src, out: Path, **kwargs) -> tuple[int, int | None]:
    """Export into a regular file; return (bytes returned by export_disk, size announced on size_fd)."""
    from osdef.stream import export_disk

    with SizeFdPipe() as size_fd, open(out, "wb") as f:
        n = export_disk(src, f.fileno(), size_fd=size_fd.fd, **kwargs)
        announced = size_fd.announced()
    assert announced.endswith(b"\n")
    return n, int(announced)


def import_from_file(stream: Path, target, with_size_fd: bool = True):
    """Import from a regular file; return (ImportResult, text announced on size_fd)."""
    from osdef.stream import import_disk

    with SizeFdPipe() as size_fd, open(stream, "rb") as f:
        result = import_disk(f.fileno(), target, size_fd=size_fd.fd if with_size_fd else None)
        announced = size_fd.announced()
    return result, announced


def import_bytes(data: bytes, target, **kwargs):
    """Import ``data`` fed through a real pipe by a writer thread."""
    from osdef.stream import import_disk

    r, w = os.pipe()

    def feed():
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(w, view):]
        except BrokenPipeError:
            pass
        finally:
            os.close(w)

    t = threading.Thread(target=feed)
    t.start()
    try:
        return import_disk(r, target, size_fd=None, **kwargs)
    finally:
        os.close(r)
        t.join()


def read_all(path) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def assert_restored(source: Path, target) -> None:
    """target = source's bytes, then zeros up to its end."""
    src = read_all(source)
    tgt = read_all(target)
    assert len(tgt) >= len(src)
    assert tgt[:len(src)] == src
    assert tgt.count(0, len(src)) == len(tgt) - len(src)


def assert_wiped(target) -> None:
    """First and last MiB of the target are zero."""
    data = read_all(target)
    head, tail = data[:MiB], data[-MiB:]
    assert head == bytes(len(head))
    assert tail == bytes(len(tail))


def assert_refused(target, before: bytes, message: str) -> None:
    """A failed import: one line; the target untouched if it says so, else its first and last MiB zero."""
    assert "\n" not in message
    if "nothing was written" in message:
        assert read_all(target) == before, "the import said it wrote nothing but the target changed"
    else:
        assert "were zeroed" in message
        assert_wiped(target)


class LoopDevices:
    """Attaches files as loop devices (osdef.disk.loop) and always detaches them."""

    def __init__(self):
        self.devices: list[str] = []

    def attach(self, path: Path | str, **options) -> str:
        """A loop device over ``path``; ``options`` as osdef.disk.loop.attach's (read_only, offset, sizelimit,
        sector_size)."""
        dev = loop.attach(path, **options)
        self.devices.append(dev)
        return dev

    def attach_unmapped(self, path: Path, *, read_only: bool = False) -> str:
        """A loop device over ``path`` that osdef cannot map: an LVM/DRBD volume's view of the same bytes.

        A hard link is attached and removed, so the device's backing file reads
        "... (deleted)" (osdef.disk.loop refuses it) while ``path`` stays.
        """
        link = path.with_name(f".{path.name}.unmapped")
        os.link(path, link)
        try:
            return self.attach(link, read_only=read_only)
        finally:
            link.unlink()

    def detach(self, dev: str) -> None:
        self.devices.remove(dev)
        loop.detach(dev)

    def detach_all(self) -> None:
        while self.devices:
            with contextlib.suppress(loop.LoopError):
                loop.detach(self.devices.pop())


def backing_file_of(dev: str) -> str | None:
    """The file the kernel shows behind loop device ``dev`` (sysfs), or None once it is unbound.

    Tests run in parallel and ``losetup -f`` hands out the lowest free device: a device just
    detached may at once hold another test's file, so "detached" means "no longer holds mine".
    """
    try:
        return Path(f"/sys/block/{os.path.basename(dev)}/loop/backing_file").read_text().rstrip("\n")
    except FileNotFoundError:
        return None


@contextlib.contextmanager
def unmapped():
    """Every disk without an allocation map (osdef.disk.filemap.NoMap), as an LVM or DRBD volume has none."""
    with mock.patch.object(filemap.FileMap, "of", return_value=None), \
            mock.patch.object(filemap.LoopMap, "of", return_value=None):
        yield


@pytest.fixture
def loops():
    if os.geteuid() != 0:
        pytest.skip("loop devices need root")
    manager = LoopDevices()
    try:
        yield manager
    finally:
        manager.detach_all()
