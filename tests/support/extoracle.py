"""What e2fsprogs says an ext2/3/4 filesystem image holds: its used blocks, its files, its fsck verdict.

Used blocks are the complement of ``dumpe2fs``'s free-block lists: libext2fs
reads the bitmaps by the kernel's rules (a ``BLOCK_UNINIT`` group is
synthesised only when its descriptor checksum verifies, ignored without
group checksums), so this is what the guest's kernel and e2fsck would
protect.  What may arrive as zeros (docs/stream.md, "What identical means"):
free blocks, with group checksums the inode-table tail past
``bg_itable_unused``, and the blocks of an empty journal past its first.

Files: walking the directories by inode number, ``ls -p`` of each, ``stat``
of every entry and reserved inode (metadata, block maps) and ``dump`` of
every regular file (contents; what ``rdump`` does, without writing a sparse
file of a huge size as zeros); the verdict is ``e2fsck -fn``'s exit code and
output.  debugfs runs with ``-c -n`` (no bitmaps, no checksum checks) so that
a damaged filesystem still shows what its inodes hold.
"""

from __future__ import annotations

import hashlib
import re
import resource
import shutil
import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path


RESERVED_INODES = range(1, 11)
FILE_LIMIT = 256 << 20  # the largest file dumped (and written): larger ones are compared by stat


@dataclass
class ExtLayout:
    """The filesystem's blocks as dumpe2fs reads them (block runs are [start, end))."""

    block_size: int
    blocks: int
    used: list[tuple[int, int]]
    may_be_zero: list[tuple[int, int]] = field(default_factory=list)


def _header(text: str) -> dict[str, str]:
    fields = {}
    for line in text.splitlines():
        if line.startswith("Group 0:"):
            break
        key, sep, value = line.partition(":")
        if sep:
            fields.setdefault(key.strip(), value.strip())
    return fields


def _runs(listing: str) -> list[tuple[int, int]]:
    runs = []
    for part in listing.replace(",", " ").split():
        a, _, b = part.partition("-")
        runs.append((int(a), int(b or a) + 1))
    return runs


def _complement(free: list[tuple[int, int]], total: int) -> list[tuple[int, int]]:
    used, pos = [], 0
    for a, b in sorted(free):
        if a > pos:
            used.append((pos, a))
        pos = max(pos, b)
    if pos < total:
        used.append((pos, total))
    return used


def _itable_tails(text: str, ipg: int, inode_size: int, bs: int) -> list[tuple[int, int]]:
    """Inode-table blocks past each group's ``bg_itable_unused`` (dumpe2fs: "N unused inodes")."""
    tails = []
    for first, last, unused in re.findall(r"Inode table at (\d+)-(\d+).*?\n.*?(\d+) unused inodes", text):
        live_end = int(first) + -(-(ipg - int(unused)) * inode_size // bs)
        if live_end <= int(last):
            tails.append((live_end, int(last) + 1))
    return tails


def _debugfs(image: Path, commands: list[str], **kw) -> subprocess.CompletedProcess:
    script = image.parent / f".{image.name}.debugfs"
    script.write_text("".join(c + "\n" for c in commands))
    try:
        return subprocess.run(["debugfs", "-c", "-n", "-f", str(script), str(image)], capture_output=True, text=True,
                              errors="surrogateescape", **kw)
    finally:
        script.unlink()


def debugfs(image: Path, *commands: str) -> str:
    """Run debugfs read-only (-c -n) with ``commands``; its stdout (each command echoed as "debugfs: ...")."""
    return _debugfs(image, list(commands)).stdout


def _empty_journal_tail(image: Path, head: dict[str, str]) -> list[tuple[int, int]]:
    """The journal's blocks past its first, if the journal superblock says it is empty (s_start 0)."""
    inode = head.get("Journal inode")
    if not inode or head.get("Journal start") != "0":
        return []
    out = debugfs(image, f"bmap <{inode}> 0", f"blocks <{inode}>").split("debugfs: ")
    first = next((ln.split()[0] for ln in out[1].splitlines()[1:] if ln.strip()), None)
    blocks = [int(b) for b in out[2].split("\n", 1)[1].split()] if len(out) > 2 else []
    runs: list[tuple[int, int]] = []
    for b in sorted(b for b in blocks if str(b) != first):
        if runs and runs[-1][1] == b:
            runs[-1] = (runs[-1][0], b + 1)
        else:
            runs.append((b, b + 1))
    return runs


def layout(image: Path) -> ExtLayout | None:
    """Used blocks and documented exceptions; None if dumpe2fs lists no free blocks for some group."""
    out = subprocess.run(["dumpe2fs", str(image)], capture_output=True, text=True, errors="surrogateescape")
    groups = len(re.findall(r"^Group \d+:", out.stdout, re.M))
    if not groups or len(re.findall(r"^  Free blocks:", out.stdout, re.M)) != groups:
        return None  # it could not read the bitmaps (a bitmap whose checksum fails is still read and listed)
    head = _header(out.stdout)
    bs, total = int(head["Block size"]), int(head["Block count"])
    free = [run for listing in re.findall(r"^  Free blocks: ?(.*)$", out.stdout, re.M) for run in _runs(listing)]
    result = ExtLayout(bs, total, _complement(free, total))
    features = head.get("Filesystem features", "").split()
    if "metadata_csum" in features or "uninit_bg" in features:
        result.may_be_zero += _itable_tails(out.stdout, int(head["Inodes per group"]), int(head["Inode size"]), bs)
    if "has_journal" in features:
        result.may_be_zero += _empty_journal_tail(image, head)
    return result


@dataclass(frozen=True)
class Entry:
    inode: int
    mode: str  # octal, as ls -p prints it
    size: int


def _entries(listing: str) -> list[tuple[str, Entry]]:
    """(name, entry) of ``ls -p`` lines "/ino/mode/uid/gid/name/size/"."""
    entries = []
    for line in listing.splitlines():
        parts = line.split("/")
        if len(parts) < 8 or not parts[1].isdigit():
            continue
        name = "/".join(parts[5:-2])
        if name not in (".", ".."):
            entries.append((name, Entry(int(parts[1]), parts[2], int(parts[-2] or 0))))
    return entries


def _walk(image: Path) -> tuple[dict[str, Entry], dict[str, str]]:
    """Every path reachable from the root (directories by inode number, each once) with its ``stat`` text,
    and the reserved inodes' ``stat``."""
    paths: dict[str, Entry] = {}
    meta: dict[str, str] = {}
    level, seen = [(2, "")], {2}
    while level:
        out = debugfs(image, *(f"ls -p <{ino}>" for ino, _ in level)).split("debugfs: ")[1:]
        found = [(f"{path}/{name}", entry) for (_, path), text in zip(level, out) for name, entry in _entries(text)]
        stats = debugfs(image, *(f"stat <{e.inode}>" for _, e in found)).split("debugfs: ")[1:]
        paths.update(found)
        meta.update({path: text for (path, _), text in zip(found, stats)})
        level = [(e.inode, path) for path, e in found if e.mode.startswith("04") and e.inode not in seen]
        seen.update(ino for ino, _ in level)
    reserved = debugfs(image, *(f"stat <{i}>" for i in RESERVED_INODES)).split("debugfs: ")[1:]
    meta.update({f"<{i}>": text for i, text in zip(RESERVED_INODES, reserved)})
    return paths, meta


def _bounded_writes() -> None:
    """In the child: no file written larger than FILE_LIMIT; a write past it fails (EFBIG), no signal."""
    resource.setrlimit(resource.RLIMIT_FSIZE, (FILE_LIMIT, FILE_LIMIT))
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)


def files(image: Path, out: Path) -> dict[str, object]:
    """What debugfs shows: every regular file's contents (``dump``), every entry's and reserved inode's
    ``stat``, and what debugfs complained about.  A file over FILE_LIMIT (a sparse file of a huge size in
    a small image would be dumped as zeros until the disk is full) is compared by its stat, block map
    included."""
    out.mkdir()
    paths, meta = _walk(image)
    inodes = sorted({e.inode for e in paths.values() if e.mode.startswith("10") and e.size <= FILE_LIMIT})
    dump = _debugfs(image, [f"dump <{ino}> {out}/{ino}" for ino in inodes], preexec_fn=_bounded_writes)
    contents = {path: hashlib.sha256((out / str(e.inode)).read_bytes()).hexdigest()
                for path, e in paths.items() if e.inode in inodes and (out / str(e.inode)).exists()}
    complaints = [ln.replace(str(out), "OUT") for ln in dump.stderr.splitlines()[1:]]
    shutil.rmtree(out)
    return {"contents": contents, "stat": meta, "debugfs": complaints}


def verdict(image: Path) -> tuple[int, str]:
    """``e2fsck -fn``: exit code and output (the image's name replaced)."""
    out = subprocess.run(["e2fsck", "-fn", str(image)], capture_output=True, text=True, errors="surrogateescape")
    return out.returncode, (out.stdout + out.stderr).replace(str(image), "IMAGE")
