#!/usr/bin/env python3
"""Export safety (issue 25): the filesystem-aware export before and after, interleaved in one run.

    python bench/exportsafety_bench.py [--before DIR] [--repeat 3 --workdir /var/tmp/osdef-safety-bench]

DIR is a checkout of the code before the change (default: a git worktree of BEFORE_COMMIT, the
last commit before issue 25, made under the workdir); its
``bench/stream_tool.py`` runs with ``PYTHONPATH=DIR`` under this checkout's venv, so the
only difference between the two rows of a table is osdef's code.  Before and after alternate
run by run, page cache dropped before each.  Three unmapped block devices (loop devices over
deleted files: what an LV or a DRBD device gives), each over old random bytes:

* ext4: the cached debian-12 test image as the root of a 10 GiB GPT disk (as
  bench/fsaware_bench.py builds it), against ``dump -0``;
* vfat: a 1 GiB GPT disk whose one partition, a FAT32 ESP, holds ~600 MiB of files, against
  ``partclone.vfat -c``;
* ext4 with 100,000 files (8 GiB disk, mke2fs -d), against ``dump -0``.

For each, the cost of the inode walk (osdef.stream.fsmap.ext_walk) is measured in-process:
the plan with the walk minus the plan without it, page cache dropped, median of the runs,
as a share of the after export's wall.  Results replace the "## Export safety (issue 25)"
section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import sys
import time
from pathlib import Path

from fsaware_bench import TIME_FILE, Row, build_block_disk, measure_once, table
from benchlib import GiB, MiB, TOOL, drop_caches, fmt_size, sh, publish

SECTION = "## Export safety (issue 25)"
BEFORE_COMMIT = "47230b4"  # main before issue 25's first change


def interleaved(device: str, before: Path, reference: tuple[str, str], repeat: int) -> dict[str, Row]:
    """before / after / reference rows, alternating run by run."""
    q = " ".join(TOOL)
    rows = {"before": Row("osdef before (`export_content=used`)"),
            "after": Row("osdef after (`export_content=used`)"),
            "ref": Row(reference[0])}
    for _ in range(repeat):
        measure_once(rows["before"], f"{TOOL[0]} {before}/bench/stream_tool.py export {device}", f"PYTHONPATH={before}")
        measure_once(rows["after"], f"{q} export {device}")
        measure_once(rows["ref"], reference[1])
    return rows


def walk_cost(device: str, repeat: int) -> tuple[float, float]:
    """(plan seconds with the inode walk, without it): cold cache, median of the runs, this checkout's code."""
    from osdef.stream.blockio import open_disk
    from osdef.stream.content import plan_content
    from osdef.stream.fsmap import ext_walk

    def plan_time() -> float:
        drop_caches()
        with open_disk(device, write=False) as disk:
            t0 = time.perf_counter()
            plan_content(disk, lambda _line: None)
            return time.perf_counter() - t0

    with_walk, without = [], []
    original = ext_walk.Walk.outside
    for _ in range(repeat):
        with_walk.append(plan_time())
        ext_walk.Walk.outside = lambda self, index: None
        try:
            without.append(plan_time())
        finally:
            ext_walk.Walk.outside = original
    return statistics.median(with_walk), statistics.median(without)


def _unmapped(work: Path, name: str, size: int) -> tuple[Path, str]:
    """A file of random bytes, attached as a loop device; the file is deleted (no allocation map left)."""
    path = work / name
    sh(f"head -c {size} /dev/urandom > {path}")
    return path, sh(f"losetup -f --show {path}").stdout.strip()


def build_vfat_disk(work: Path) -> dict:
    """1 GiB of random bytes, GPT with one partition, a FAT32 ESP from 1 MiB to the end, ~600 MiB of files."""
    path = work / "vfat.img"
    sh(f"head -c {GiB} /dev/urandom > {path}")
    end = GiB // 512 - 34  # the backup GPT's array and header take the last 33 sectors
    sh(f"sgdisk -n1:2048:{end - 1} -t1:ef00 {path}")
    esp_size = (end - 2048) * 512
    esp = f"{path}@@{MiB}"
    sh(f"mkfs.vfat -F 32 --offset=2048 {path} {esp_size // 1024}")
    stage = work / "vfat-stage"
    shutil.rmtree(stage, ignore_errors=True)
    stage.mkdir()
    rng = random.Random(11)
    total = 0
    for i in range(300):
        size = rng.randint(64 * 1024, 4 * MiB)
        (stage / f"f{i:03d}.bin").write_bytes(rng.randbytes(size))
        total += size
    sh(f"MTOOLS_SKIP_CHECK=1 mcopy -s -i {esp} {stage}/* ::")
    shutil.rmtree(stage)
    dev = sh(f"losetup -f --show {path}").stdout.strip()
    path.unlink()
    part = sh(f"losetup -r -f --show -o {MiB} --sizelimit {esp_size} {dev}").stdout.strip()
    return {"device": dev, "part": part, "files": total}


def build_many_files_disk(work: Path, files: int = 100_000) -> dict:
    """8 GiB of random bytes, GPT with one ext4 partition made by mke2fs -d from ``files`` small files."""
    path = work / "many.img"
    sh(f"head -c {8 * GiB} /dev/urandom > {path}")
    sh(f"sgdisk -n1:2048:0 -t1:8300 {path}")
    stage = work / "many-stage"
    shutil.rmtree(stage, ignore_errors=True)
    rng = random.Random(5)
    total = 0
    for i in range(files):
        d = stage / f"d{i // 5000}" / f"e{i // 250}"
        if i % 250 == 0:
            d.mkdir(parents=True)
        size = rng.choice((0, 100, 1000, 4000, 9000, 20000, 70000))
        (d / f"f{i}").write_bytes(rng.randbytes(size))
        total += size
    end = 8 * GiB // 512 - 34
    sh(f"mke2fs -q -F -t ext4 -E offset={MiB},nodiscard -d {stage} {path} {(end - 2048) * 512 // 1024}k")
    shutil.rmtree(stage)
    dev = sh(f"losetup -f --show {path}").stdout.strip()
    path.unlink()
    part = sh(f"losetup -r -f --show -o {MiB} --sizelimit {(end - 2048) * 512} {dev}").stdout.strip()
    return {"device": dev, "part": part, "files": files, "bytes": total}


def targets(rows: dict[str, Row], ref: str) -> list[str]:
    after, before, r = rows["after"], rows["before"], rows["ref"]
    ok = lambda b: "**met**" if b else "**not met**"  # noqa: E731
    return ["| target (after) | measured | |", "|---|---|---|",
            f"| stream ≤ 1.1 × {ref}'s | {after.stream / r.stream:.2f} × | {ok(after.stream <= 1.1 * r.stream)} |",
            f"| wall ≤ 0.5 × {ref}'s | {after.wall / r.wall:.2f} × | {ok(after.wall <= 0.5 * r.wall)} |",
            f"| after ÷ before: stream {after.stream / before.stream:.3f} ×, wall {after.wall / before.wall:.2f} × "
            f"| | |"]


def walk_lines(cost: tuple[float, float], rows: dict[str, Row]) -> list[str]:
    with_walk, without = cost
    share = (with_walk - without) / rows["after"].wall
    ok = "**met**" if share <= 0.15 else "**not met**"
    return [f"Inode walk: plan {with_walk:.3f} s with it, {without:.3f} s without (cold cache): "
            f"{with_walk - without:.3f} s = {share:.1%} of the after export's wall (target ≤ 15 %: {ok}).", ""]


def _ext_guest_disk(work: Path) -> dict:
    """bench/fsaware_bench.py's disk, with a read-only loop device over its root filesystem."""
    blk = build_block_disk(work, 10 * GiB)
    blk["part"] = sh(f"losetup -r -f --show -o {blk['fs_start']} --sizelimit {blk['fs_size']} {blk['device']}"
                     ).stdout.strip()
    return blk


def _bench_disk(work: Path, build, reference, before: Path, repeat: int, walk: bool):
    """Build a disk, measure it (rows, walk cost or None), always detach its loop devices."""
    disk = build(work)
    try:
        name, command = reference
        rows = interleaved(disk["device"], before, (name, command.format(part=disk["part"])), repeat)
        return disk, rows, (walk_cost(disk["device"], repeat) if walk else None)
    finally:
        for dev in (disk["part"], disk["device"]):
            sh(f"losetup -d {dev} || true")


def run(work: Path, before: Path, repeat: int) -> str:
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    work.mkdir(parents=True, exist_ok=True)
    try:
        blk, ext_rows, ext_walk = _bench_disk(work, _ext_guest_disk, ("`dump -0` of the root filesystem",
                                                                      "dump -0 -q -f - {part}"), before, repeat, True)
        vfat, vfat_rows, _ = _bench_disk(work, build_vfat_disk, ("`partclone.vfat -c` of the ESP",
                                                                 "partclone.vfat -c -q -s {part} -o -"),
                                         before, repeat, False)
        many, many_rows, many_walk = _bench_disk(work, build_many_files_disk, ("`dump -0` of the filesystem",
                                                                               "dump -0 -q -f - {part}"),
                                                 before, repeat, True)
    finally:
        for name in ("random.img", "vfat.img", "many.img"):
            (work / name).unlink(missing_ok=True)
        TIME_FILE.unlink(missing_ok=True)
    lines = [SECTION, "",
             f"Generated by `python bench/exportsafety_bench.py --before DIR --repeat {repeat}` on {started} "
             f"(2 vCPU, shared machine), DIR = the code before issue 25 ({_commit(before)}). Before and after "
             "alternate run by run, page cache dropped before each; medians. Exports write to a pipe read by "
             "`dd bs=1M of=/dev/null`, with EXP_SIZE_FD given. Every disk is an unmapped loop device over "
             "random bytes (an LV that held older data).", "",
             "### ext4: debian-12 guest on 10 GiB", "",
             f"GPT, BIOS boot partition, the cached test image `{blk['image']}` as the root, grown; "
             f"root filesystem used: {fmt_size(blk['fs_used'])}.", ""]
    lines += table(ext_rows) + [""] + targets(ext_rows, "dump") + [""] + walk_lines(ext_walk, ext_rows)
    lines += ["### vfat: a FAT32 ESP filling a 1 GiB disk", "",
              f"GPT, FAT32 made by `mkfs.vfat -F 32`, {fmt_size(vfat['files'])} of files copied in by mcopy.", ""]
    lines += table(vfat_rows) + [""] + targets(vfat_rows, "partclone.vfat") + [""]
    lines += ["### ext4 with 100,000 files on 8 GiB", "",
              f"GPT, one ext4 partition made by `mke2fs -d` from {many['files']:,} files "
              f"({fmt_size(many['bytes'])}, 0 to 70 KB each, 250 per directory).", ""]
    lines += table(many_rows) + [""] + targets(many_rows, "dump") + [""] + walk_lines(many_walk, many_rows)
    return "\n".join(lines) + "\n"


def _commit(path: Path) -> str:
    try:
        return sh(f"git -C {path} log -1 --format=%h").stdout.strip()
    except Exception:
        return "a copy"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--before", type=Path, help=f"a checkout of the code before the change (default: a worktree "
                                               f"of {BEFORE_COMMIT} under the workdir)")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--workdir", type=Path, default=Path("/var/tmp/osdef-safety-bench"))
    p.add_argument("--no-doc", action="store_true", help="print the section instead of writing docs/benchmarks.md")
    args = p.parse_args()
    if os.geteuid() != 0:
        sys.exit("exportsafety_bench needs root (drop_caches, losetup)")
    if args.before is None:
        args.before = args.workdir / f"before-{BEFORE_COMMIT}"
        if not args.before.exists():
            args.workdir.mkdir(parents=True, exist_ok=True)
            sh(f"git -C {Path(__file__).resolve().parent} worktree add --detach {args.before} {BEFORE_COMMIT}")
    if not (args.before / "bench" / "stream_tool.py").exists():
        sys.exit(f"{args.before}: no bench/stream_tool.py (give a checkout of osdef)")
    text = run(args.workdir, args.before.resolve(), args.repeat)
    publish(SECTION, text, doc=not args.no_doc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
