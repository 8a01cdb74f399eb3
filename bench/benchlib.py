"""What the benchmarks share: shell runs, cold caches, the stream sink, sizes, the test disk, docs/benchmarks.md.

bench/stream_bench.py, fsaware_bench.py and exportsafety_bench.py import from here (and
from one another only downwards), so no two benchmarks import each other.
"""

from __future__ import annotations

import os
import random
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV_PYTHON = ROOT / ".venv" / "bin" / "python"
TOOL = [str(VENV_PYTHON if VENV_PYTHON.exists() else sys.executable), str(ROOT / "bench" / "stream_tool.py")]
DOC = ROOT / "docs" / "benchmarks.md"
GiB = 1 << 30
MiB = 1 << 20
STAGE_SOURCES = ["/usr/lib/x86_64-linux-gnu", "/usr/lib/python3", "/usr/lib/gcc", "/usr/lib/modules",
                 "/usr/share", "/usr/lib/jvm"]


def sh(cmd: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "-o", "pipefail", "-c", cmd], check=True, capture_output=True, text=True, **kw)


def drop_caches() -> None:
    os.sync()
    Path("/proc/sys/vm/drop_caches").write_text("3\n")


COUNT_FILE = Path("/tmp/osdef-stream-bench.count")
SINK = f"dd bs=1M of=/dev/null 2>{COUNT_FILE}"  # what reads the script's stdout under Ganeti: dd bs=1M


def sink_bytes() -> int:
    """Bytes the SINK dd copied (from its statistics line)."""
    for line in reversed(COUNT_FILE.read_text().splitlines()):
        if "bytes" in line:
            return int(line.split()[0])
    raise RuntimeError(f"no byte count in {COUNT_FILE}")


# ---------------------------------------------------------------- the test disk

def stage_files(dst: Path, budget: int) -> int:
    """Hard-link real files (unique inodes) into dst until their size reaches budget."""
    total, seen = 0, set()
    for root in STAGE_SOURCES:
        for d, dirs, files in os.walk(root):
            dirs.sort()
            for name in sorted(files):
                p = os.path.join(d, name)
                try:
                    st = os.lstat(p)
                except OSError:
                    continue
                if not (st.st_mode & 0o170000 == 0o100000) or st.st_ino in seen or st.st_size == 0:
                    continue
                seen.add(st.st_ino)
                t = dst / p.lstrip("/")
                t.parent.mkdir(parents=True, exist_ok=True)
                os.link(p, t)
                total += st.st_size
                if total >= budget:
                    return total
    return total


def free_ranges(img: Path) -> list[tuple[int, int]]:
    """Free block ranges (first, last) of an ext4 image, from dumpe2fs."""
    out = sh(f"dumpe2fs {img} 2>/dev/null").stdout
    ranges = []
    for line in out.splitlines():
        line = line.strip()
        if line.startswith("Free blocks:"):
            for part in line.split(":", 1)[1].split(","):
                part = part.strip()
                if part:
                    a, _, b = part.partition("-")
                    ranges.append((int(a), int(b or a)))
    return ranges


def scatter_garbage(img: Path, budget: int, seed: int = 7) -> int:
    """Write real file bytes into random free blocks: the leftovers of deleted files."""
    rng = random.Random(seed)
    ranges = [r for r in free_ranges(img) if r[1] - r[0] > 1024]
    donors = [p for p in Path("/usr/lib/x86_64-linux-gnu").glob("*.so*") if p.is_file() and p.stat().st_size > MiB]
    written = 0
    with open(img, "r+b") as f:
        while written < budget:
            first, last = rng.choice(ranges)
            nblocks = rng.randint(16, 512)  # 64 KiB .. 2 MiB
            start = rng.randint(first, max(first, last - nblocks))
            donor = rng.choice(donors).read_bytes()
            data = donor[:nblocks * 4096]
            f.seek(start * 4096)
            f.write(data)
            written += len(data)
    return written


def build_disk(work: Path, size_gib: float, data_gib: float, garbage: bool = True) -> dict:
    img = work / "disk.img"
    stage = work / "stage"
    shutil.rmtree(stage, ignore_errors=True)
    stage.mkdir(parents=True)
    try:
        files = stage_files(stage, int(data_gib * GiB * 0.7))
        img.unlink(missing_ok=True)
        sh(f"mkfs.ext4 -q -F -O ^flex_bg -E lazy_itable_init=1 -d {stage} {img} {int(size_gib * 1024)}M")
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    garbage = scatter_garbage(img, int(data_gib * GiB * 0.3)) if garbage else 0
    return {"path": img, "size": img.stat().st_size, "allocated": img.stat().st_blocks * 512,
            "extents": count_extents(img), "files": files, "garbage": garbage}


def count_extents(img: Path) -> int:
    """Number of SEEK_DATA/SEEK_HOLE data extents of a file."""
    n, pos, size = 0, 0, img.stat().st_size
    fd = os.open(img, os.O_RDONLY)
    try:
        while pos < size:
            try:
                pos = os.lseek(fd, pos, os.SEEK_DATA)
            except OSError:
                break
            pos = os.lseek(fd, pos, os.SEEK_HOLE)
            n += 1
    finally:
        os.close(fd)
    return n


def fmt_size(n: int | None) -> str:
    if n is None:
        return "—"
    return f"{n / MiB:,.0f} MiB" if n < 10 * GiB else f"{n / GiB:.2f} GiB"


def write_section(section: str, text: str) -> None:
    """Replace ``section`` (a "## " heading and what follows up to the next one) of docs/benchmarks.md."""
    DOC.parent.mkdir(parents=True, exist_ok=True)
    doc = DOC.read_text() if DOC.exists() else "# Benchmarks\n\n"
    pattern = re.compile(rf"^{re.escape(section)}\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(doc):
        doc = pattern.sub(lambda _m: text + "\n", doc, count=1)
    else:
        doc = doc.rstrip("\n") + "\n\n" + text
    DOC.write_text(doc.rstrip("\n") + "\n")


def publish(section: str, text: str, *, doc: bool = True) -> None:
    """Print a bench's results and, unless told not to (--no-doc), make them its section of
    docs/benchmarks.md."""
    print(text)
    if doc:
        write_section(section, text)
