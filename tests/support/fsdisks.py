"""Disks with real filesystems for the filesystem-aware export tests, made without mounting anything.

A disk is a file filled with random bytes (old data, as on an LVM volume
that was never wiped), a partition table written by sfdisk, and
filesystems made in place by mke2fs (``-E offset``, ``-d`` to populate, no
discard so the free space keeps its garbage), mkfs.vfat (``--offset``,
populated by mcopy) or mkswap.  Files are compared by reading them back with
debugfs ``rdump`` / mtools, again without a mount.
"""

from __future__ import annotations

import hashlib
import os
import random
import subprocess
from dataclasses import dataclass
from pathlib import Path

MiB = 1 << 20
SECTOR = 512


def run(*argv, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([str(a) for a in argv], check=True, capture_output=True, text=True, **kw)


def fill_random(path: Path, size: int, seed: int = 7) -> Path:
    from tests.support.stream import fill_random as fill

    return fill(path, size, seed)


def make_tree(root: Path, seed: int = 3, files: int = 40, max_size: int = 300_000) -> Path:
    """A directory of files of random sizes and contents (some empty, some nested)."""
    rng = random.Random(seed)
    for i in range(files):
        d = root / f"dir{i % 5}" / ("sub" if i % 3 == 0 else "")
        d.mkdir(parents=True, exist_ok=True)
        size = 0 if i % 11 == 0 else rng.randint(1, max_size)
        (d / f"file{i}.bin").write_bytes(rng.randbytes(size))
    (root / "link").symlink_to("dir0/file0.bin")
    return root


def tree_sums(root: Path) -> dict[str, str]:
    """path → sha256 of every file under ``root``, "-> target" for every symlink (to a directory too)."""
    sums = {}
    for dirpath, dirs, names in os.walk(root):
        for name in names + dirs:
            p = Path(dirpath) / name
            if p.is_symlink():
                sums[str(p.relative_to(root))] = "-> " + os.readlink(p)
            elif p.is_file():
                sums[str(p.relative_to(root))] = hashlib.sha256(p.read_bytes()).hexdigest()
    return sums


@dataclass(frozen=True)
class Part:
    start: int  # bytes
    size: int  # bytes
    fs: str  # "ext2", "ext3", "ext4", "vfat", "swap", "bios", "raw"


GPT_TYPES = {"bios": "21686148-6449-6E6F-744E-656564454649", "vfat": "C12A7328-F81F-11D2-BA4B-00A0C93EC93B",
             "swap": "0657FD6D-A4AB-43C4-84E5-0933C84B4F4F"}
LINUX_DATA = "0FC63DAF-8483-4772-8E79-3D69D8477DE4"
MBR_TYPES = {"vfat": "ef", "swap": "82", "bios": "da"}


def gpt(path: Path, parts: list[Part]) -> None:
    """A GPT (protective MBR, primary and backup) by sfdisk (sgdisk calls sync(): a second on a busy machine)."""
    lines = ["label: gpt"] + [f"start={p.start // SECTOR}, size={p.size // SECTOR}, type={GPT_TYPES.get(p.fs, LINUX_DATA)}"
                              for p in parts]
    run("sfdisk", "-q", path, input="\n".join(lines) + "\n")


def mbr(path: Path, parts: list[Part], logical_from: int | None = None) -> None:
    """An msdos table; partitions from index ``logical_from`` on go into an extended partition."""
    lines = ["label: dos"]
    for i, p in enumerate(parts):
        if logical_from is not None and i == logical_from:
            ext_start = p.start - MiB
            lines.append(f"start={ext_start // SECTOR}, type=5")
        lines.append(f"start={p.start // SECTOR}, size={p.size // SECTOR}, type={MBR_TYPES.get(p.fs, '83')}")
    run("sfdisk", "-q", path, input="\n".join(lines) + "\n")


def make_fs(path: Path, part: Part, tree: Path | None = None, blocksize: int | None = None,
            options: tuple[str, ...] = ()) -> None:
    """Make ``part.fs`` at ``part.start`` of ``path`` (populated from ``tree``); ``options`` go to mke2fs or
    mkfs.vfat (an ``-E`` list is merged into the offset mke2fs gets, ``-S`` sets mkfs.vfat's offset unit)."""
    opts = list(options)
    if part.fs.startswith("ext"):
        extended = f"offset={part.start},nodiscard"
        if "-E" in opts:
            at = opts.index("-E")
            extended += "," + opts.pop(at + 1)
            opts.pop(at)
        argv = ["mke2fs", "-q", "-F", "-t", part.fs, "-E", extended, *opts]
        if blocksize:
            argv += ["-b", str(blocksize)]
        if tree is not None:
            argv += ["-d", tree]
        run(*argv, path, f"{part.size // 1024}k")
    elif part.fs == "vfat":
        sector = int(opts[opts.index("-S") + 1]) if "-S" in opts else SECTOR
        run("mkfs.vfat", f"--offset={part.start // sector}", *opts, path, part.size // 1024)
        if tree is not None:
            _fill_vfat(path, part, tree)
    elif part.fs == "swap":
        swap = path.with_suffix(".swap")
        swap.unlink(missing_ok=True)
        with open(swap, "wb") as f:
            f.truncate(part.size)
        run("mkswap", *opts, swap)
        run("dd", f"if={swap}", f"of={path}", "bs=4096", f"seek={part.start // 4096}", "conv=notrunc,sparse")
        swap.unlink()


def _fill_vfat(path: Path, part: Part, tree: Path) -> None:
    """Copy ``tree`` in with mtools, or with tests/support/fatwrite where mtools cannot (a small FAT32)."""
    from tests.support import fatwrite

    if fatwrite.small_fat32(path, part.start):
        fatwrite.write_tree(path, part.start, tree)
        return
    env = dict(os.environ, MTOOLS_SKIP_CHECK="1")
    for child in sorted(tree.iterdir()):
        if not child.is_symlink():
            run("mcopy", "-s", "-i", f"{path}@@{part.start}", child, "::", env=env)


def ext_ref(path: Path, part: Part) -> str:
    return f"{path}?offset={part.start}"


def e2fsck(path: Path, part: Part) -> subprocess.CompletedProcess:
    return subprocess.run(["e2fsck", "-fn", ext_ref(path, part)], capture_output=True, text=True)


def ext_files(path: Path, part: Part, out: Path) -> dict[str, str]:
    """The filesystem's files (debugfs rdump, no mount) as path → sha256."""
    out.mkdir()
    run("debugfs", "-R", f"rdump / {out}", ext_ref(path, part))
    return tree_sums(out)


def vfat_files(path: Path, part: Part, out: Path) -> dict[str, str]:
    out.mkdir()
    env = dict(os.environ, MTOOLS_SKIP_CHECK="1")
    run("mcopy", "-s", "-n", "-i", f"{path}@@{part.start}", "::*", out, env=env)
    return tree_sums(out)


def without_symlinks(sums: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in sums.items() if not v.startswith("-> ")}
