#!/usr/bin/env python3
"""osdef export/import of an RBD image against `rbd export` / `rbd import` and `qemu-img convert` (issue 24).

    python bench/rbd_bench.py [--repeat 1] [--workdir /var/tmp/osdef-rbd-bench]

A throw-away Ceph (tests/support/ceph.py: one mon, one bluestore OSD on a
sparse file, cephx, in a network namespace of its own) holds one 10 GiB RBD
image: a GPT, a BIOS boot partition and the cached debian-12 test image as
the ext4 root filesystem, grown to the disk, and 1 GiB of random bytes in its
free blocks (what deleted files leave).  On that same image, in one run:

* export to a pipe (read by ``dd bs=1M`` as under Ganeti): osdef
  (filesystem-aware, the default; and ``export_content=allocated``, the
  diff_iterate map), ``rbd export`` (format 1, what a pipe gets: every byte),
  ``rbd export --export-format 2`` (its own sparse format), and ``qemu-img
  convert`` to a local sparse file (no pipe output: the file's allocated bytes
  are its "bytes sent");
* a copy to a fresh image (export piped into import): osdef, rbd, qemu-img
  (rbd: to rbd:), each followed by ``rbd du`` of the copy.

Page cache dropped before every run.  Results replace the "## RBD" section of
docs/benchmarks.md.  Targets: osdef sends fewer bytes than ``rbd export`` in
no more than 1.2× its wall time.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from benchlib import GiB, MiB, SINK, TOOL, drop_caches, fmt_size, sh, sink_bytes, publish  # noqa: E402
from stream_bench import Run  # noqa: E402

from fsaware_bench import find_image  # noqa: E402
from tests.support.ceph import CephCluster, ext_blocks  # noqa: E402

SECTION = "## RBD (issue 24)"
SIZE = 10 * GiB
GARBAGE = GiB


def build_image(ceph: CephCluster, work: Path) -> dict:
    """The guest disk built in a local sparse file, then written onto the image (data extents only)."""
    local = work / "guest.raw"
    with open(local, "wb") as f:
        f.truncate(SIZE)
    end = SIZE // 512 - 2048
    sh(f"sgdisk -n1:2048:4095 -t1:ef02 -n2:4096:{end - 1} -t2:8300 {local}")
    image, _ = find_image()
    sh(f"zstd -dc {image} | dd of={local} bs=1M seek=2 conv=notrunc,sparse status=none")
    # grown to its partition on a loop device limited to it (resize2fs on "FILE?offset=" truncates the file)
    part = sh(f"losetup -f --show -o {2 * MiB} --sizelimit {(end - 4096) * 512} {local}").stdout.strip()
    try:
        sh(f"e2fsck -fy {part} >/dev/null 2>&1 || true; resize2fs {part} >/dev/null 2>&1")
    finally:
        sh(f"losetup -d {part}")
    fs = ext_blocks(local, 2 * MiB)
    ceph.rbd("create", "--size", f"{SIZE // MiB}M", f"{ceph.pool}/src")
    import rados
    import rbd

    with rados.Rados(conffile=str(ceph.conf)) as cluster, cluster.open_ioctx(ceph.pool) as ioctx, \
            rbd.Image(ioctx, "src") as img, open(local, "rb") as f:
        offset = 0
        while True:
            try:
                offset = os.lseek(f.fileno(), offset, os.SEEK_DATA)
            except OSError:
                break
            end_ = os.lseek(f.fileno(), offset, os.SEEK_HOLE)
            while offset < end_:
                chunk = os.pread(f.fileno(), min(8 * MiB, end_ - offset), offset)
                if chunk.strip(b"\0"):
                    img.write(chunk, offset)
                offset += len(chunk)
        written = 0
        for first, last in fs.free:  # deleted-file garbage in the free blocks
            n = min((last - first + 1) * fs.size, GARBAGE - written, 16 * MiB)
            if n <= 0:
                break
            img.write(os.urandom(n), 2 * MiB + first * fs.size)
            written += n
    local.unlink()
    return {"image": image.name, "fs_used": fs.used_bytes, "garbage": written}


def measure(run: Run, cmd: str, repeat: int, count: bool = True, before=None) -> Run:
    for _ in range(repeat):
        if before:
            before()
        drop_caches()
        t0 = time.perf_counter()
        sh(cmd)
        run.times.append(time.perf_counter() - t0)
        if count:
            run.stream = sink_bytes()
    return run


def run_all(ceph: CephCluster, work: Path, repeat: int) -> tuple[list[Run], list[tuple[Run, int]]]:
    tool = " ".join(TOOL)
    src = f"rbd:{ceph.pool}/src:conf={ceph.conf}"
    env = f"CEPH_CONF={ceph.conf}"
    out = work / "qemu-img.raw"
    exports = [
        measure(Run("osdef export (filesystem-aware, the default)"), f"{tool} export {src} | {SINK}", repeat),
        measure(Run("osdef export (`export_content=allocated`: the diff_iterate map)"),
                f"{tool} export {src} --content allocated | {SINK}", repeat),
        measure(Run("`rbd export` to a pipe"), f"{env} rbd export --no-progress {ceph.pool}/src - | {SINK}", repeat),
        measure(Run("`rbd export --export-format 2` to a pipe"),
                f"{env} rbd export --no-progress --export-format 2 {ceph.pool}/src - | {SINK}", repeat),
    ]
    qemu = measure(Run("`qemu-img convert` to a local sparse file"),
                   f"rm -f {out}; qemu-img convert -O raw '{src}' {out}", repeat, count=False)
    qemu.stream = os.stat(out).st_blocks * 512
    qemu.note = "no pipe output: the file's allocated bytes"
    out.unlink()
    exports.append(qemu)

    copies = []
    for name, target, create, cmd in (
        ("osdef export | osdef import", "c1", True,
         f"{tool} export {src} | {tool} import rbd:{ceph.pool}/c1:conf={ceph.conf}"),
        ("`rbd export - | rbd import -`", "c2", False,
         f"{env} rbd export --no-progress {ceph.pool}/src - | {env} rbd import --no-progress - {ceph.pool}/c2"),
        ("`rbd export --export-format 2 - | rbd import --export-format 2 -`", "c3", False,
         f"{env} rbd export --no-progress --export-format 2 {ceph.pool}/src - | "
         f"{env} rbd import --no-progress --export-format 2 - {ceph.pool}/c3"),
        ("`qemu-img convert` rbd: → rbd:", "c4", True,
         f"qemu-img convert -n -O raw '{src}' 'rbd:{ceph.pool}/c4:conf={ceph.conf}'"),
    ):
        def before(target=target, create=create):
            ceph.rbd("rm", "--no-progress", f"{ceph.pool}/{target}", check=False)
            if create:  # osdef and qemu-img -n write into an existing image, as Ganeti's import does
                ceph.rbd("create", "--size", f"{SIZE // MiB}M", f"{ceph.pool}/{target}")
        run = measure(Run(name), cmd, repeat, count=False, before=before)
        copies.append((run, ceph.du(target)))
    return exports, copies


def render(info: dict, exports: list[Run], copies: list[tuple[Run, int]], repeat: int, started: str) -> str:
    ref = next(r for r in exports if r.name.startswith("`rbd export` to"))
    osdef = exports[0]
    lines = [SECTION, "",
             f"Measured {started} by `bench/rbd_bench.py --repeat {repeat}` (median wall time), on this 2-core "
             "machine, one Ceph (one mon, one bluestore OSD on a sparse file, cephx) in a network namespace. "
             f"The image: 10 GiB, a GPT, a BIOS boot partition and the debian-12 test image ({info['image']}) "
             f"as the ext4 root filesystem grown to the disk ({fmt_size(info['fs_used'])} used, per dumpe2fs), "
             f"with {fmt_size(info['garbage'])} of random bytes in its free blocks (deleted files).", "",
             "### Export to a pipe (read by `dd bs=1M`, as under Ganeti)", "",
             "| exporter | bytes sent | wall (s) | note |", "|---|---|---|---|"]
    for r in exports:
        lines.append(f"| {r.name} | {fmt_size(r.stream)} | {r.wall:.1f} | {r.note} |")
    lines += ["", "### Copy to a fresh image (export piped into import)", "",
              "| copy | wall (s) | `rbd du` of the copy |", "|---|---|---|"]
    for r, du in copies:
        lines.append(f"| {r.name.replace('|', chr(92) + '|')} | {r.wall:.1f} | {fmt_size(du)} |")
    fewer = osdef.stream < ref.stream
    fast = osdef.wall <= 1.2 * ref.wall
    lines += ["", "### Targets", "",
              f"- fewer bytes than `rbd export`: {fmt_size(osdef.stream)} vs {fmt_size(ref.stream)} — "
              f"{'met' if fewer else 'NOT met'}",
              f"- wall time ≤ 1.2 × `rbd export`'s: {osdef.wall:.1f} s vs {ref.wall:.1f} s "
              f"({osdef.wall / ref.wall:.2f}×) — {'met' if fast else 'NOT met'}", ""]
    return "\n".join(lines)


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--repeat", type=int, default=1)
    p.add_argument("--workdir", default="/var/tmp/osdef-rbd-bench")
    p.add_argument("--no-doc", action="store_true", help="print the section, do not write docs/benchmarks.md")
    a = p.parse_args()
    work = Path(a.workdir)
    work.mkdir(parents=True, exist_ok=True)
    ceph = CephCluster(work / "ceph")
    started = time.strftime("%Y-%m-%d %H:%M")
    try:
        ceph.start()
        ceph.enter_netns()
        info = build_image(ceph, work)
        exports, copies = run_all(ceph, work, a.repeat)
    finally:
        ceph.stop()
    text = render(info, exports, copies, a.repeat, started)
    publish(SECTION, text, doc=not a.no_doc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
