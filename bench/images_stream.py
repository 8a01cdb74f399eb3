#!/usr/bin/env python3
"""Benchmark the image cache's two data paths on a real artifact.

1. store: `zstd -d` the cached artifact to a plain file, then time
   `ingest_file` (sniff + sizes + multi-threaded zstd L3 + sha256 + fsync).
2. read: time `Artifact.open()` streaming the whole image with 1 MiB reads and
   zero-chunk detection (what create does before pwrite), plus `zstd -dc >
   /dev/null` for comparison.

Usage: bench/images_stream.py [NAME]   (default debian-12, from the shared test
cache at $OSDEF_TEST_IMAGE_CACHE or /var/tmp/osdef-test-images).  Prints
Markdown table rows.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from osdef.config import ImageSettings
from osdef.images import ImageStore
from osdef.images.cachefiles import remove_quietly
from osdef.images.ingest import ingest_file

CACHE = Path(os.environ.get("OSDEF_TEST_IMAGE_CACHE", "/var/tmp/osdef-test-images"))
REPO = Path(__file__).resolve().parents[1]
MIB = 1 << 20


def main() -> int:
    name = sys.argv[1] if len(sys.argv) > 1 else "debian-12"
    store = ImageStore(ImageSettings(cache_dir=CACHE), REPO / "images", progress=None)
    art = store.artifact(name)
    if art is None:
        print(f"{name} is not in {CACHE}: run the dib test or `osdef image build {name}`",
              file=sys.stderr)
        return 1
    print(f"image {name}: {art.size / MIB:.0f} MiB apparent, {art.manifest.used_size / MIB:.0f} MiB used, "
          f"{art.manifest.stored_size / MIB:.0f} MiB stored\n")
    print("| step | wall | throughput (apparent) |\n|---|---|---|")

    t = time.monotonic()
    subprocess.run(["zstd", "-q", "-d", "-c", str(art.path)], stdout=subprocess.DEVNULL,
                   check=True)
    row("`zstd -dc > /dev/null` (CLI reference)", time.monotonic() - t, art.size)

    zero = bytes(MIB)
    t = time.monotonic()
    data = 0
    with art.open() as f:
        while chunk := f.read(MIB):
            if chunk != zero:
                data += len(chunk)
    row(f"`Artifact.open()` read + zero skip + verify ({data / MIB:.0f} MiB non-zero)",
        time.monotonic() - t, art.size)

    with tempfile.TemporaryDirectory(dir=CACHE) as tmp:
        plain = Path(tmp) / "plain.raw"
        subprocess.run(["zstd", "-q", "-d", "--sparse", str(art.path), "-o", str(plain)],
                       check=True)
        t = time.monotonic()
        stored = ingest_file(plain, Path(tmp), name)
        row(f"`ingest_file` (zstd L3, threads={os.cpu_count()}, sha256, fsync) → "
            f"{stored.stored_size / MIB:.0f} MiB", time.monotonic() - t, art.size)
        remove_quietly(stored.path)
    return 0


def row(what: str, seconds: float, size: int) -> None:
    print(f"| {what} | {seconds:.1f} s | {size / MIB / seconds:.0f} MiB/s |")


if __name__ == "__main__":
    sys.exit(main())
