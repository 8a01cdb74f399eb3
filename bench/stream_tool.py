"""Command-line wrapper around osdef.stream for the benchmark's shell pipelines.

    stream_tool.py export DEVICE [--fmt sparse|raw] [--compression none|zstd] [--content used|allocated]
                   [--no-size] [--unmapped] > stream
    stream_tool.py import DEVICE < stream
    stream_tool.py read-extents DEVICE      (baseline: read only the data extents, discard them)

Prints one JSON line on stderr: bytes, announced size, peak RSS (KiB) of this process.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys


def peak_rss_kib() -> int:
    """VmHWM of this process image (ru_maxrss would include the parent's RSS inherited over fork+exec)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("op", choices=["export", "import", "read-extents"])
    p.add_argument("device")
    p.add_argument("--fmt", default="sparse")
    p.add_argument("--compression", default="none")
    p.add_argument("--no-size", action="store_true", help="export without EXP_SIZE_FD (nothing announced)")
    p.add_argument("--content", default="used", help="export_content: used (filesystem-aware) or allocated")
    p.add_argument("--unmapped", action="store_true",
                   help="ignore a loop device's backing file (what a DRBD or LVM device gets)")
    a = p.parse_args()
    if a.unmapped:
        from osdef.disk import filemap

        filemap.LoopMap.of = classmethod(lambda cls, disk: None)  # every loop device: filemap.NoMap
    out: dict = {}
    if a.op == "export":
        from osdef.stream import export_disk

        r = w = None
        if not a.no_size:
            r, w = os.pipe()
        out["bytes"] = export_disk(a.device, 1, size_fd=w, fmt=a.fmt, compression=a.compression,
                                   content=a.content)
        if w is not None:
            os.close(w)
            out["announced"] = int(os.read(r, 100))
    elif a.op == "import":
        from osdef.stream import import_disk

        r, w = os.pipe()
        res = import_disk(0, a.device, size_fd=w)
        os.close(w)
        line = os.read(r, 100)
        out.update(bytes=res.input_bytes, data_bytes=res.data_bytes, kind=res.kind,
                   announced=int(line) if line else None)
    else:
        from osdef.disk.device import read_at
        from osdef.stream.blockio import open_disk
        from osdef.stream.extents import READ_SIZE, spans

        buf = memoryview(bytearray(READ_SIZE))
        total = 0
        with open_disk(a.device, write=False) as disk:
            os.posix_fadvise(disk.fd, 0, 0, os.POSIX_FADV_SEQUENTIAL)
            for off, n in spans(disk):
                read_at(disk, buf[:n], off)
                total += n
        out["bytes"] = total
    out["maxrss_kib"] = peak_rss_kib()
    sys.stderr.write(json.dumps(out) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
