#!/usr/bin/env python3
"""Benchmark osdef's export/import stream against dd, qemu-img and ganeti-instance-debootstrap's dump.

    python bench/stream_bench.py [--size-gib 10 --data-gib 1 --repeat 1 --workdir /var/tmp/osdef-stream-bench]
    python bench/stream_bench.py --fs-aware [--repeat 1]   (filesystem-aware export vs dump/partclone/e2image)

Builds a SIZE_GIB ext4 filesystem image holding ~DATA_GIB: ~70 % real files from /usr (mkfs.ext4 -d) and
~30 % "deleted file" data scattered in free blocks (as on any used filesystem). Every measured command
runs after `sync; echo 3 > /proc/sys/vm/drop_caches`. Results replace the "## Export / import" section
of docs/benchmarks.md (other sections are left alone). Needs root, losetup, qemu-img, dump and
ganeti-instance-debootstrap (apt).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from benchlib import COUNT_FILE, MiB, SINK, TOOL, build_disk, drop_caches, fmt_size, sh, sink_bytes, publish

SECTION = "## Export / import"
GID_DIR = Path("/usr/share/ganeti/os/debootstrap")


@dataclass
class Run:
    """One measured method: median wall time, stream size, peak RSS of our process if known."""

    name: str
    times: list[float] = field(default_factory=list)
    stream: int | None = None
    rss_kib: int | None = None
    data_bytes: int | None = None
    note: str = ""

    @property
    def wall(self) -> float:
        return statistics.median(self.times)


def measure(run: Run, cmd: str, repeat: int, before=None, parse_json: bool = False, count_stdout: bool = False):
    for _ in range(repeat):
        if before:
            before()
        drop_caches()
        t0 = time.perf_counter()
        p = sh(cmd)
        run.times.append(time.perf_counter() - t0)
        if count_stdout:
            run.stream = sink_bytes()
        if parse_json:
            info = json.loads(p.stderr.strip().splitlines()[-1])
            run.rss_kib = max(run.rss_kib or 0, info["maxrss_kib"])
            run.data_bytes = info.get("data_bytes", run.data_bytes)
            if not count_stdout and run.stream is None:
                run.stream = info.get("bytes")
            run.note = run.note or (f"announced {info['announced']}" if info.get("announced") is not None else "")
    return run


# ---------------------------------------------------------------- runs

def write_dense(path: Path, size: int) -> None:
    """`size` bytes of incompressible non-zero data (the reference writes of real data)."""
    rng = random.Random(7)
    with open(path, "wb") as f:
        left = size
        while left > 0:
            n = min(left, 16 * MiB)
            f.write(rng.randbytes(n))
            left -= n

def fresh_target(path: Path, size: int):
    def make():
        path.unlink(missing_ok=True)
        with open(path, "wb") as f:
            f.truncate(size)
    return make


def make_dirty(device: str, size: int, pieces: int = 32, piece: int = 8 * MiB) -> None:
    """Scatter old data over a target (256 MiB by default), as on a reused LV."""
    rng = random.Random(5)
    fd = os.open(device, os.O_WRONLY)
    try:
        for i in range(pieces):
            os.pwrite(fd, rng.randbytes(piece), (size // pieces) * i + rng.randrange(0, size // pieces - piece))
        os.fsync(fd)
    finally:
        os.close(fd)


def optional(run: Run, fn) -> Run | None:
    """Run a baseline that may not work on this machine; record why instead of aborting the benchmark."""
    try:
        return fn()
    except (subprocess.CalledProcessError, OSError) as e:
        err = getattr(e, "stderr", "") or str(e)
        print(f"{run.name}: failed: {err.strip().splitlines()[-1] if err.strip() else e}", file=sys.stderr)
        return None


def gid_env(device: str) -> str:
    env = {"PATH": "/sbin:/bin:/usr/sbin:/usr/bin", "OS_API_VERSION": "20", "OS_VARIANT": "default",
           "INSTANCE_NAME": "bench.example.test", "HYPERVISOR": "kvm", "DISK_COUNT": "1", "DISK_0_PATH": device,
           "EXPORT_DEVICE": device, "EXPORT_INDEX": "0", "PARTITION_STYLE": "none"}
    return "env -i " + " ".join(f"{k}={v}" for k, v in env.items())


def run_all(disk: dict, work: Path, repeat: int) -> dict:
    src = disk["path"]
    size = disk["size"]
    tgt = work / "target.img"
    res: dict[str, Run] = {}
    q = " ".join(TOOL)

    # Streams to import from (made untimed).
    sh(f"{q} export {src} > {work}/s.osdef")
    sh(f"{q} export {src} --compression zstd > {work}/s.osdef.zst")

    # --- export, file
    res["e_dd"] = measure(Run("`dd bs=4M` (raw)"), f"dd if={src} bs=4M status=none | {SINK}", repeat,
                          count_stdout=True)
    res["e_osdef"] = measure(Run("osdef sparse"), f"{q} export {src} | {SINK}", repeat, parse_json=True,
                             count_stdout=True)
    res["e_osdef_nosize"] = measure(Run("osdef sparse, no EXP_SIZE_FD (single pass, zero blocks dropped)"),
                                    f"{q} export {src} --no-size | {SINK}", repeat, parse_json=True,
                                    count_stdout=True)
    res["e_zstd"] = measure(Run("osdef sparse + zstd"), f"{q} export {src} --compression zstd | {SINK}", repeat,
                            parse_json=True, count_stdout=True)
    res["e_raw"] = measure(Run("osdef raw"), f"{q} export {src} --fmt raw | {SINK}", repeat, parse_json=True,
                           count_stdout=True)
    qcow = work / "out.qcow2"
    res["e_qemu"] = measure(Run("`qemu-img convert -O qcow2` (to a file)"),
                            f"qemu-img convert -O qcow2 {src} {qcow} && sync -f {qcow}", repeat)
    res["e_qemu"].stream = qcow.stat().st_size
    if (GID_DIR / "export").exists() and shutil.which("dump"):
        gid = Run("ganeti-instance-debootstrap `export` (dump -0)")
        if optional(gid, lambda: measure(gid, f"cd {GID_DIR} && {gid_env(str(src))} ./export | {SINK}", repeat,
                                         count_stdout=True)):
            res["e_gid"] = gid
    res["read_extents"] = measure(Run("read data extents only (pread, discard)"), f"{q} read-extents {src}",
                                  repeat, parse_json=True)

    # --- import, file (fresh sparse 10 GiB target each time; everything fsync'ed)
    make_t = fresh_target(tgt, size)
    res["i_dd"] = measure(Run("`dd bs=4M conv=fsync` (raw)"),
                          f"dd if={src} of={tgt} bs=4M conv=notrunc,fsync status=none", repeat, before=make_t)
    res["i_dd"].data_bytes = size
    res["i_osdef"] = measure(Run("osdef sparse"), f"{q} import {tgt} < {work}/s.osdef", repeat, before=make_t,
                             parse_json=True)
    sh(f"cmp {src} {tgt}")
    res["i_zstd"] = measure(Run("osdef sparse + zstd"), f"{q} import {tgt} < {work}/s.osdef.zst", repeat,
                            before=make_t, parse_json=True)
    res["i_raw"] = measure(Run("osdef, raw dump on stdin (`dd bs=4M |`)"),
                           f"dd if={src} bs=4M status=none | {q} import {tgt}", repeat, before=make_t,
                           parse_json=True)
    sh(f"cmp {src} {tgt}")
    # the device's write rate for data: dd writing as many non-zero bytes as the stream carries
    dense = work / "dense.bin"
    write_dense(dense, disk["allocated"])
    res["i_dd_data"] = measure(Run(f"`dd bs=4M conv=fsync` of {fmt_size(disk['allocated'])} of non-zero data "
                                   "(reference: the device's write rate for data)"),
                               f"dd if={dense} of={tgt} bs=4M conv=notrunc,fsync status=none", repeat,
                               before=make_t)
    res["i_dd_data"].data_bytes = disk["allocated"]
    res["i_qemu"] = measure(Run("`qemu-img convert -n` qcow2 → raw"),
                            f"qemu-img convert -n -O raw {qcow} {tgt} && sync -f {tgt}", repeat, before=make_t)
    res["i_qemu"].data_bytes = disk["allocated"]

    # --- loop devices
    loop = sh(f"losetup -r -f --show {src}").stdout.strip()
    ltgt_file = work / "ltarget.img"
    fresh_target(ltgt_file, size)()
    ltgt = sh(f"losetup -f --show {ltgt_file}").stdout.strip()
    try:
        res["l_dd"] = measure(Run("`dd bs=4M` (raw)"), f"dd if={loop} bs=4M status=none | {SINK}", repeat,
                              count_stdout=True)
        res["l_osdef"] = measure(Run("osdef sparse (backing file's map, one pass)"), f"{q} export {loop} | {SINK}",
                                 repeat, parse_json=True, count_stdout=True)
        res["l_unmapped"] = measure(Run("osdef sparse, as an unmapped block device (pre-scan + stream)"),
                                    f"{q} export {loop} --unmapped | {SINK}", repeat, parse_json=True,
                                    count_stdout=True)
        res["l_unmapped_nosize"] = measure(Run("osdef sparse, unmapped, no EXP_SIZE_FD (single pass)"),
                                           f"{q} export {loop} --unmapped --no-size | {SINK}", repeat,
                                           parse_json=True, count_stdout=True)
        lq = work / "loop.qcow2"
        res["l_qemu"] = measure(Run("`qemu-img convert -O qcow2` (to a file)"),
                                f"qemu-img convert -O qcow2 {loop} {lq} && sync -f {lq}", repeat)
        res["l_qemu"].stream = lq.stat().st_size
        lq.unlink()
        def fresh_loop_target() -> None:  # every writer below starts from an all-hole backing file
            sh(f"fallocate -p -o 0 -l {size} {ltgt_file} && blockdev --flushbufs {ltgt}")

        res["li_dd"] = measure(Run("`dd bs=4M conv=fsync` (raw)"),
                               f"dd if={src} of={ltgt} bs=4M conv=fsync status=none", repeat,
                               before=fresh_loop_target)
        res["li_dd"].data_bytes = size
        res["li_dd_data"] = measure(Run(f"`dd bs=4M conv=fsync` of {fmt_size(disk['allocated'])} of non-zero "
                                        "data (reference)"),
                                    f"dd if={dense} of={ltgt} bs=4M conv=fsync status=none", repeat,
                                    before=fresh_loop_target)
        res["li_dd_data"].data_bytes = disk["allocated"]
        res["li_osdef_fresh"] = measure(Run("osdef sparse onto a fresh target (sparse backing file)"),
                                        f"{q} import {ltgt} < {work}/s.osdef", repeat, parse_json=True,
                                        before=fresh_loop_target)
        sh(f"cmp {src} {ltgt}")
        res["li_osdef"] = measure(Run("osdef sparse onto a dirty target (holes: discard)"),
                                  f"{q} import {ltgt} < {work}/s.osdef", repeat, parse_json=True,
                                  before=lambda: make_dirty(ltgt, size))
        sh(f"cmp {src} {ltgt}")
    finally:
        sh(f"losetup -d {ltgt}; losetup -d {loop}")
    for p in (tgt, ltgt_file, qcow, dense, work / "s.osdef", work / "s.osdef.zst"):
        p.unlink(missing_ok=True)
    return res


# ---------------------------------------------------------------- report

def table(rows: list[Run], alloc: int, ref: Run | None = None) -> list[str]:
    out = ["| method | wall (s) | stream / output | × allocated | peak RSS |", "|---|---|---|---|---|"]
    for r in rows:
        ratio = f"{r.stream / alloc:.3f}" if r.stream else "—"
        rss = f"{r.rss_kib / 1024:.0f} MiB" if r.rss_kib else "—"
        out.append(f"| {r.name} | {r.wall:.2f} | {fmt_size(r.stream)} | {ratio} | {rss} |")
    return out


def dense_rate(run: Run) -> float:
    return run.data_bytes / run.wall


def verdict(ok: bool) -> str:
    return "**met**" if ok else "**not met**"


def render(disk: dict, res: dict, args, started: str) -> str:
    alloc = disk["allocated"]
    r = res
    load = os.getloadavg()
    lines = [SECTION, "",
             f"Generated by `python bench/stream_bench.py --size-gib {args.size_gib} --data-gib {args.data_gib} "
             f"--repeat {args.repeat}` on {started} (2 vCPU, ext4 on virtio; load average at the end "
             f"{load[0]:.1f}); median of {args.repeat} run(s) each, page cache dropped before every run. "
             "Absolute times on this shared machine are noisy: compare the ratios.", "",
             f"Test disk: a {fmt_size(disk['size'])} ext4 image made by `mkfs.ext4 -d` from {disk['files'] / MiB:,.0f} "
             f"MiB of real files from /usr, plus {disk['garbage'] / MiB:,.0f} MiB of file data written into "
             f"scattered free blocks (what deleted files leave behind). Allocated: {fmt_size(alloc)} in "
             f"{disk['extents']} extents.", "",
             "Exports write to a pipe read by `dd bs=1M of=/dev/null`, as in Ganeti's pipeline; "
             "osdef exports announce their size on EXP_SIZE_FD unless marked (a file or loop device: counted "
             "from its allocation map, read once; an unmapped block device: a pre-scan first). "
             "Imports read the stream from a file "
             "and end with fsync; file targets are fresh sparse files of the disk's size.", "",
             "### Export, file disk", ""]
    lines += table([r[k] for k in ("e_dd", "e_osdef", "e_osdef_nosize", "e_zstd", "e_raw", "e_qemu", "e_gid",
                                   "read_extents") if k in r], alloc)
    lines += ["", "### Import, file disk", ""]
    lines += table([r[k] for k in ("i_dd", "i_dd_data", "i_osdef", "i_zstd", "i_raw", "i_qemu") if k in r], alloc)
    lines += ["", "### Loop block device", "",
              "Export from a read-only loop device over the same image: osdef maps it through its backing "
              "file (SEEK_DATA on the file); \"unmapped\" rows ignore the backing file, as for a DRBD or LVM "
              "device (no SEEK_DATA on block devices: the whole device is read, all-zero 4 KiB blocks "
              "skipped). Import onto a loop device over a sparse file.", ""]
    lines += table([r[k] for k in ("l_dd", "l_osdef", "l_unmapped", "l_unmapped_nosize", "l_qemu", "li_dd",
                                   "li_dd_data", "li_osdef_fresh", "li_osdef") if k in r], alloc)

    # Targets from issue 5.
    e, dd = r["e_osdef"], r["e_dd"]
    data = r["read_extents"].stream or alloc
    rate_ours = data / e.wall
    rate_read = data / r["read_extents"].wall
    rate_single = data / r["e_osdef_nosize"].wall
    i, idd = r["i_osdef"], r["i_dd"]
    imp_ours = (i.data_bytes or alloc) / i.wall
    imp_dd = idd.data_bytes / idd.wall
    le, ldd = r["l_osdef"], r["l_dd"]
    li, lidd = r["li_osdef_fresh"], r["li_dd"]  # a new instance's disk is fresh, like dd's target
    lid = r["li_osdef"]
    prescan = r["l_unmapped"].wall - r["l_unmapped_nosize"].wall
    lines += ["", "### Targets (issue 5)", "",
              "| target | measured | |", "|---|---|---|",
              f"| stream ≤ 1.02 × allocated bytes | {e.stream / alloc:.3f} × | {verdict(e.stream <= 1.02 * alloc)} |",
              f"| export ≤ 0.2 × dd's wall time (file) | {e.wall / dd.wall:.3f} × ({e.wall:.2f} s vs "
              f"{dd.wall:.2f} s) | {verdict(e.wall <= 0.2 * dd.wall)} |",
              f"| export ≥ 0.8 × raw read rate of the data extents | {rate_ours / MiB:,.0f} vs {rate_read / MiB:,.0f} "
              f"MiB/s = {rate_ours / rate_read:.2f} × | {verdict(rate_ours >= 0.8 * rate_read)} |",
              f"| same, export without EXP_SIZE_FD (single pass, zero blocks dropped) | {rate_single / MiB:,.0f} "
              f"vs {rate_read / MiB:,.0f} MiB/s = {rate_single / rate_read:.2f} × | "
              f"{verdict(rate_single >= 0.8 * rate_read)} |",
              f"| import ≥ 0.8 × dd's write rate per data byte (file) | {imp_ours / MiB:,.0f} vs {imp_dd / MiB:,.0f} "
              f"MiB/s = {imp_ours / imp_dd:.2f} × | {verdict(imp_ours >= 0.8 * imp_dd)} |",
              f"| loop device: export ≤ 0.2 × dd | {le.wall / ldd.wall:.3f} × ({le.wall:.2f} s vs {ldd.wall:.2f} s) | "
              f"{verdict(le.wall <= 0.2 * ldd.wall)} |",
              f"| loop device: stream ≤ 1.02 × allocated | {le.stream / alloc:.3f} × | "
              f"{verdict(le.stream <= 1.02 * alloc)} |",
              f"| loop device: import ≥ 0.8 × dd per data byte (fresh target) | "
              f"{(li.data_bytes or alloc) / li.wall / MiB:,.0f} vs "
              f"{lidd.data_bytes / lidd.wall / MiB:,.0f} MiB/s = "
              f"{((li.data_bytes or alloc) / li.wall) / (lidd.data_bytes / lidd.wall):.2f} × | "
              f"{verdict((li.data_bytes or alloc) / li.wall >= 0.8 * lidd.data_bytes / lidd.wall)} |",
              f"| same, onto a dirty target (old data zeroed too) | "
              f"{((lid.data_bytes or alloc) / lid.wall) / (lidd.data_bytes / lidd.wall):.2f} × | "
              f"{verdict((lid.data_bytes or alloc) / lid.wall >= 0.8 * lidd.data_bytes / lidd.wall)} |",
              f"| reference: import ÷ dd writing the same amount of non-zero data (file) | "
              f"{imp_ours / MiB:,.0f} vs {dense_rate(r['i_dd_data']) / MiB:,.0f} MiB/s = "
              f"{imp_ours / dense_rate(r['i_dd_data']):.2f} × | — |",
              f"| reference: same, loop device (fresh target) | "
              f"{(li.data_bytes or alloc) / li.wall / dense_rate(r['li_dd_data']):.2f} × | — |",
              f"| peak RSS ≤ 100 MiB | {max(x.rss_kib or 0 for x in r.values()) / 1024:.0f} MiB | "
              f"{verdict(max(x.rss_kib or 0 for x in r.values()) <= 100 * 1024)} |",
              "",
              "EXP_SIZE_FD cost: on a file or loop device none beyond listing the extents (~1 ms; the size is "
              f"counted from the map). On an unmapped block device the pre-scan costs {prescan:+.2f} s "
              f"({r['l_unmapped'].wall:.2f} s with it vs {r['l_unmapped_nosize'].wall:.2f} s without; it reads the "
              "whole device once, the streaming pass then re-reads only the chunks that held data). "
              + ("A negative figure means the cost was below this machine's run-to-run noise. "
                 if prescan < 0 else "")
              + "Nothing is sent during the pre-scan, so it delays the transfer by its duration. "
              f"Against Ganeti's ~45 MB/s transport, sending this disk's {fmt_size(e.stream)} takes "
              f"≈{e.stream / 45e6:.0f} s and a raw dump ≈{disk['size'] / 45e6:.0f} s.",
              ""]
    lines += NOTES
    return "\n".join(lines) + "\n"


NOTES = [
    "Notes:",
    "- What is sent with EXP_SIZE_FD: a file or loop device sends exactly its allocated extents (the size "
    "is known from the map, the data read once); allocated-but-zero blocks (journal, zeroed files) are sent "
    "as they are — guests shrink their exports with fstrim (discard punches holes), or Ganeti's transit "
    "compression squeezes them. Until 2026-12 osdef pre-scanned files too, to drop those blocks; on this disk "
    "that saved nothing (the stream was 1,030 MiB either way: the 65 MiB between SEEK_DATA's extents and the "
    "allocated size are unwritten extents mkfs fallocated, which SEEK_DATA already skips), but the data was "
    "read twice. Reads run one 8 MiB span ahead on a helper thread, overlapping the CRC; since 2026-12-01 "
    "the checksummed data goes into the pipe by sendfile from the page cache the read left it in, copied "
    "once instead of twice (export 1.44 s → 1.28 s and 0.72 × → 0.82 × the raw extent read rate in the "
    "runs before and after the change; 0.77-1.12 × in the five runs of that day, median 0.90 ×, the reference read itself "
    "varying 1.05-1.45 s; a raw export is not read into the process at all: 10.76 s → 5.70 s).",
    "- Block devices other than loop devices have no allocation map (SEEK_DATA fails with EINVAL), so every "
    "exporter — dd, qemu-img, osdef — must read the whole device; 0.2 × dd is out of reach there (see the "
    "unmapped rows), and what osdef saves is the bytes sent (stream ≈ data, not the device size). The pre-scan "
    "reads the device once; the streaming pass re-reads only the chunks that held data (zero chunks are "
    "dropped from the page cache as they are scanned).",
    "- Import onto a loop device writes its backing file (loop offset 0, no size limit; the device's cached "
    "pages are dropped afterwards). Through the device, the loop driver's page cache is written out into the "
    "file's page cache and then to disk, one after the other: 1.1 GiB from memory with fsync took 2.2-2.9 s "
    "onto a fresh loop device, 1.3-1.9 s with O_DIRECT, 1.1-1.3 s into the file (dd, 2026-12-01). Since that "
    "day the `dd` raw loop import rows also start from an all-hole backing file every run; before, runs 2-3 "
    "overwrote the blocks run 1 had allocated, which flattered dd (904 MiB/s then). In the four runs of "
    "2026-12-01 after the change the loop import measured 0.76-0.87 × dd's raw rate (0.67-0.69 × before): "
    "a 1 GiB import reads ~1 GiB and writes ~1 GiB on the same virtual disk (reading the stream alone: "
    "~1.0 s, cache dropped), where dd's 10 GiB stream keeps the disk writing while it reads; against dd "
    "writing the same non-zero bytes it is at or above 1 ×. Record CRCs are computed by ISA-L (isal) since "
    "that day: 0.45-0.51 s → 0.07 s per GiB imported. Tried without a clear gain: a writer thread, a "
    "read-ahead thread for the stream (1.36-1.55 s vs 1.52-1.8 s, within this machine's noise), WILLNEED "
    "read-ahead. Kept: starting the write-out every 8 MiB (sync_file_range; 2.0 s → 1.7 s when added).",
    "- ganeti-instance-debootstrap's export is `dump -0` of the ext filesystem: it sends only files (not the "
    "deleted-file blocks, no partition table, no boot sector), announces no size on EXP_SIZE_FD, and needs an "
    "ext2/3/4 filesystem directly on the disk (`PARTITION_STYLE=none`; its msdos path needs kpartx/device-mapper, "
    "absent on this kernel). Its import (`restore -r`) needs mkfs and a host mount of the target filesystem, so "
    "it is not measured here: osdef never mounts guest filesystems on the host.",
    "- `qemu-img convert` cannot write to a pipe, so it is measured writing a qcow2 file; its import converts "
    "that file back onto the target.",
    "- The zstd EXP_SIZE_FD figure is an estimate (compression of the first 64 KiB of every data run during the "
    "pre-scan); uncompressed modes announce the exact byte count.",
    "- Stored Ganeti exports keep exactly the stream the script wrote, so the stream size is also the size of the "
    "export on the backup node.",
]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size-gib", type=float, default=10)
    p.add_argument("--data-gib", type=float, default=1)
    p.add_argument("--repeat", type=int, default=1)
    p.add_argument("--workdir", type=Path, default=Path("/var/tmp/osdef-stream-bench"))
    p.add_argument("--no-doc", action="store_true", help="print the section instead of writing docs/benchmarks.md")
    p.add_argument("--fs-aware", action="store_true",
                   help="only the filesystem-aware export rows (bench/fsaware_bench.py, its own section)")
    args = p.parse_args()
    if os.geteuid() != 0:
        sys.exit("stream_bench needs root (drop_caches, losetup)")
    if args.fs_aware:
        import fsaware_bench

        print(fsaware_bench.run(args.workdir, args.repeat, doc=not args.no_doc))
        return 0
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    args.workdir.mkdir(parents=True, exist_ok=True)
    try:
        disk = build_disk(args.workdir, args.size_gib, args.data_gib)
        res = run_all(disk, args.workdir, args.repeat)
    finally:
        (args.workdir / "disk.img").unlink(missing_ok=True)
        COUNT_FILE.unlink(missing_ok=True)
    text = render(disk, res, args, started)
    publish(SECTION, text, doc=not args.no_doc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
