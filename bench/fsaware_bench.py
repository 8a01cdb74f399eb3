#!/usr/bin/env python3
"""Filesystem-aware export against dump(8), partclone and e2image (issue 15).

    python bench/stream_bench.py --fs-aware [--repeat 1 --workdir /var/tmp/osdef-stream-bench]

Two disks:

* an unmapped block device: a loop device over a 10 GiB file filled with random
  bytes (an LV that held older data) and then deleted, with a GPT (BIOS boot
  partition, ext4 root) whose root filesystem is the cached debian-12 test image
  (written with ``dd conv=sparse`` so the random bytes stay in its free space,
  then grown with resize2fs to fill the partition);
* the file disk of the "Export / import" section: a 10 GiB ext4 image with 1 GiB of
  files and deleted-file garbage in its free blocks;
* the same without garbage (osdef only: filesystem-aware against today's block level).

For each: osdef filesystem-aware, osdef block level (``export_content=allocated``),
``dump -0``, ``partclone.ext4 -c``, ``e2image -ra`` (the last three read a
read-only loop device over the filesystem).  Measured: stream bytes (what the
pipe reader got), wall time, bytes read from storage and peak RSS of the
exporting process (GNU time: ``%I`` block inputs, ``%M`` max RSS), page cache
dropped before every run.  Results replace the "## Filesystem-aware export"
section of docs/benchmarks.md.
"""

from __future__ import annotations

import json
import re
import os
import shutil
import statistics
import time
from pathlib import Path

from benchlib import GiB, MiB, SINK, TOOL, build_disk, drop_caches, fmt_size, sh, sink_bytes, write_section

SECTION = "## Filesystem-aware export"
IMAGE_CACHE = Path(os.environ.get("OSDEF_TEST_IMAGE_CACHE", "/var/tmp/osdef-test-images"))
TIME_FILE = Path("/tmp/osdef-fsaware-bench.time")


def find_image() -> tuple[Path, dict]:
    """The newest cached debian-12 fs-image (ext4) of the shared test cache."""
    best = None
    for meta in sorted(IMAGE_CACHE.glob("debian-12*.json")):
        info = json.loads(meta.read_text())
        art = IMAGE_CACHE / info.get("artifact", "")
        if info.get("format") == "fs-image" and info.get("fs_type") == "ext4" and art.exists():
            if best is None or info["created_at"] > best[1]["created_at"]:
                best = (art, info)
    if best is None:
        raise SystemExit(f"no debian-12 ext4 fs-image in {IMAGE_CACHE}: run the image tests once")
    return best


def build_block_disk(work: Path, size: int) -> dict:
    """10 GiB of random bytes, a GPT, the debian-12 image as partition 2, grown; the backing file deleted."""
    backing = work / "random.img"
    sh(f"head -c {size} /dev/urandom > {backing}")
    end = size // 512 - 2048  # partition 2 ends 1 MiB before the disk's end (the GPT backup lies there)
    sh(f"sgdisk -n1:2048:4095 -t1:ef02 -n2:4096:{end - 1} -t2:8300 {backing}")
    image, info = find_image()
    sh(f"zstd -dc {image} | dd of={backing} bs=1M seek=2 conv=notrunc,sparse status=none")
    dev = sh(f"losetup -f --show {backing}").stdout.strip()
    backing.unlink()
    part = sh(f"losetup -f --show -o {2 * MiB} --sizelimit {(end - 4096) * 512} {dev}").stdout.strip()
    try:
        sh(f"e2fsck -fy {part} >/dev/null 2>&1 || true; resize2fs {part} >/dev/null 2>&1")
        used = sh(f"dumpe2fs -h {part} 2>/dev/null").stdout
    finally:
        sh(f"losetup -d {part}")
    blocks = int(re.search(r"Block count:\s+(\d+)", used).group(1))
    free = int(re.search(r"Free blocks:\s+(\d+)", used).group(1))
    bs = int(re.search(r"Block size:\s+(\d+)", used).group(1))
    return {"device": dev, "size": size, "image": image.name, "image_used": info.get("used_size"),
            "fs_used": (blocks - free) * bs, "fs_start": 2 * MiB, "fs_size": (end - 4096) * 512}


class Row:
    def __init__(self, name: str):
        self.name = name
        self.walls: list[float] = []
        self.stream = self.read = self.rss_kib = None

    @property
    def wall(self) -> float:
        return statistics.median(self.walls)


def measure_once(row: Row, exporter: str, env: str = "") -> None:
    """Run ``exporter | SINK`` once with the page cache dropped, exporter under GNU time; add it to ``row``."""
    drop_caches()
    t0 = time.perf_counter()
    sh(f"{env} /usr/bin/time -f '%I %M' -o {TIME_FILE} {exporter} | {SINK}")
    row.walls.append(time.perf_counter() - t0)
    row.stream = sink_bytes()
    inputs, rss = TIME_FILE.read_text().split()[-2:]
    row.read, row.rss_kib = int(inputs) * 512, int(rss)


def measure(name: str, exporter: str, repeat: int) -> Row:
    """``repeat`` runs of ``exporter | SINK``."""
    row = Row(name)
    for _ in range(repeat):
        measure_once(row, exporter)
    return row


def rows_for(source: str, fs_dev: str, repeat: int) -> dict[str, Row]:
    q = " ".join(TOOL)
    return {
        "fs": measure("osdef, filesystem-aware (`export_content=used`)", f"{q} export {source}", repeat),
        "block": measure("osdef, block level (`export_content=allocated`)",
                         f"{q} export {source} --content allocated", repeat),
        "dump": measure("`dump -0 -f -` of the root filesystem", f"dump -0 -q -f - {fs_dev}", repeat),
        "partclone": measure("`partclone.ext4 -c` of the root filesystem",
                             f"partclone.ext4 -c -q -s {fs_dev} -o -", repeat),
        "e2image": measure("`e2image -ra` of the root filesystem (to a pipe: holes become zeros)",
                           f"e2image -ra {fs_dev} -", repeat),
    }


def table(rows: dict[str, Row]) -> list[str]:
    out = ["| exporter | stream | wall (s) | read from storage | read ÷ sent | peak RSS |", "|---|---|---|---|---|---|"]
    for r in rows.values():
        out.append(f"| {r.name} | {r.stream:,} B ({fmt_size(r.stream)}) | {r.wall:.2f} | {fmt_size(r.read)} | "
                   f"{r.read / r.stream:.2f} | {r.rss_kib / 1024:.0f} MiB |")
    return out


def verdict_text(ok: bool) -> str:
    return "**met**" if ok else "**not met**"


def targets(rows: dict[str, Row]) -> list[str]:
    fs, dump = rows["fs"], rows["dump"]
    ok = lambda b: "**met**" if b else "**not met**"  # noqa: E731
    return [f"| stream ≤ 1.1 × dump's | {fs.stream / dump.stream:.2f} × | {ok(fs.stream <= 1.1 * dump.stream)} |",
            f"| wall ≤ 1.5 × dump's | {fs.wall / dump.wall:.2f} × | {ok(fs.wall <= 1.5 * dump.wall)} |",
            f"| bytes read ≤ 1.3 × bytes sent | {fs.read / fs.stream:.2f} × | {ok(fs.read <= 1.3 * fs.stream)} |",
            f"| peak RSS ≤ 100 MiB | {fs.rss_kib / 1024:.0f} MiB | {ok(fs.rss_kib <= 100 * 1024)} |"]


def run(work: Path, repeat: int, doc: bool = True) -> str:
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    work.mkdir(parents=True, exist_ok=True)
    loops: list[str] = []
    try:
        blk = build_block_disk(work, 10 * GiB)
        loops.append(blk["device"])
        part = sh(f"losetup -r -f --show -o {blk['fs_start']} --sizelimit {blk['fs_size']} {blk['device']}"
                  ).stdout.strip()
        loops.append(part)
        block_rows = rows_for(blk["device"], part, repeat)
        filedisk = build_disk(work, 10, 1)
        floop = sh(f"losetup -r -f --show {filedisk['path']}").stdout.strip()
        loops.append(floop)
        file_rows = rows_for(str(filedisk["path"]), floop, repeat)
        sh(f"losetup -d {floop}")
        loops.remove(floop)
        clean = build_disk(work, 10, 1, garbage=False)  # the same files, no deleted-file data
        q = " ".join(TOOL)
        clean_rows = {"fs": measure("osdef, filesystem-aware (`export_content=used`)",
                                    f"{q} export {clean['path']}", repeat),
                      "block": measure("osdef, block level (`export_content=allocated`, today's export)",
                                       f"{q} export {clean['path']} --content allocated", repeat)}
    finally:
        for dev in reversed(loops):
            sh(f"losetup -d {dev} || true")
        (work / "disk.img").unlink(missing_ok=True)
        (work / "random.img").unlink(missing_ok=True)
        TIME_FILE.unlink(missing_ok=True)
    lines = [SECTION, "",
             f"Generated by `python bench/stream_bench.py --fs-aware --repeat {repeat}` on {started} (2 vCPU, "
             "shared machine); page cache dropped before every run; median of the runs. Each exporter writes "
             "to a pipe read by `dd bs=1M of=/dev/null`. \"Read from storage\" and peak RSS are the exporting "
             "process's block inputs and max RSS (GNU time `%I`, `%M`); osdef's EXP_SIZE_FD is given "
             "(exact size announced). dump, partclone and e2image read a read-only loop device over the root "
             "filesystem; osdef reads the whole disk.", "",
             "### Unmapped block device: 10 GiB of random bytes with a debian-12 guest", "",
             f"A loop device over a deleted 10 GiB file of random bytes (an LV that held older data), GPT with "
             f"a BIOS boot partition and the cached test image `{blk['image']}` as its ext4 root "
             f"(written with `dd conv=sparse`, so its free space keeps the random bytes; grown to fill the "
             f"partition by resize2fs). Root filesystem used: {fmt_size(blk['fs_used'])}.", ""]
    lines += table(block_rows) + ["", "| target (osdef filesystem-aware) | measured | |", "|---|---|---|"]
    lines += targets(block_rows)
    lines += ["", "### File disk with deleted-file garbage", "",
              f"The disk of \"Export / import\": a {fmt_size(filedisk['size'])} ext4 image (no partition table) "
              f"with {filedisk['files'] / MiB:,.0f} MiB of files and {filedisk['garbage'] / MiB:,.0f} MiB of "
              "deleted-file data in free blocks.", ""]
    lines += table(file_rows) + ["", "| target (osdef filesystem-aware) | measured | |", "|---|---|---|"]
    lines += targets(file_rows)
    lines += ["", "### File disk without garbage", "",
              f"The same kind of image with {clean['files'] / MiB:,.0f} MiB of files and no deleted-file data "
              "(target: no slower than today's export).", ""]
    lines += table(clean_rows)
    lines += ["", f"Filesystem-aware ÷ block level wall: {clean_rows['fs'].wall / clean_rows['block'].wall:.2f} × "
              f"({verdict_text(clean_rows['fs'].wall <= 1.1 * clean_rows['block'].wall)}, within 10 %)."]
    lines += ["", "Notes:",
              "- dump sends files only (a new filesystem is made on restore); osdef sends the filesystem's "
              "used blocks as they are (metadata, inode tables up to the last used inode, directories), plus "
              "the bytes outside the filesystem at block level (partition table, BIOS boot partition).",
              "- `e2image -ra` to a pipe cannot seek, so it writes the whole filesystem size (free space as zeros).",
              ""]
    text = "\n".join(lines) + "\n"
    if doc:
        write_section(SECTION, text)
    shutil.rmtree(work / "stage", ignore_errors=True)
    return text
