"""e2fsprogs' own regression images (tests/f_*/image.gz) through export and import (opt-in).

Skipped unless OSDEF_E2FSPROGS_TESTS names a directory of ``f_*/image.gz``
(tests/differential/e2fsprogs-images.sh unpacks them from a clone of
e2fsprogs; they are never part of this repository).  Each image is a whole
disk without a partition table, broken on purpose.  It is exported and
imported (tests/support/differential.roundtrip), then ``e2fsck -fy`` repairs
a copy of the source and a copy of the import: whatever e2fsck recovers from
the source (every file's contents and debugfs ``stat``) must be on the import
too.  An image whose repair is not deterministic (two runs on the source
disagree; the clock is fixed with E2FSCK_TIME and E2FSPROGS_FAKE_TIME) is
skipped with the reason, and so is one larger than 512 MiB unpacked
(f_big_sparse: 60 GiB of holes, which every import would fill).
"""

from __future__ import annotations

import gzip
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support import extoracle
from tests.support.differential import roundtrip

CORPUS = os.environ.get("OSDEF_E2FSPROGS_TESTS", "")
LIMIT = 512 << 20  # f_big_sparse unpacks to 60 GiB
FIXED_TIME = {"E2FSCK_TIME": "1700000000", "E2FSPROGS_FAKE_TIME": "1700000000", "E2FSCK_CONFIG": "/dev/null",
              "TZ": "UTC"}

pytestmark = [pytest.mark.blockdev,
              pytest.mark.skipif(not CORPUS, reason="set OSDEF_E2FSPROGS_TESTS to a directory of e2fsprogs' "
                                                    "f_*/image.gz (tests/differential/e2fsprogs-images.sh)")]


def _images() -> list[str]:
    return sorted(p.parent.name for p in Path(CORPUS).glob("f_*/image.gz")) if CORPUS else ["none"]


def _repaired_view(image: Path, work: Path, name: str) -> tuple[int, dict]:
    """e2fsck -fy on a copy of ``image``; its exit code and what debugfs then shows (contents, stat)."""
    copy = work / f"{name}.img"
    shutil.copyfile(image, copy)
    env = dict(os.environ, **FIXED_TIME)
    rc = subprocess.run(["e2fsck", "-fy", str(copy)], capture_output=True, env=env, timeout=300).returncode
    view = extoracle.files(copy, work / name)
    copy.unlink()
    return rc, {"contents": view["contents"], "stat": view["stat"]}


def _missing(source: dict, copy: dict) -> list[str]:
    """Paths whose contents or stat e2fsck recovers from the source but not (or otherwise) from the import."""
    lost = []
    for key in ("contents", "stat"):
        lost += [f"{key} {path}" for path, want in source[key].items() if copy[key].get(path) != want]
    return lost


def _unpack(image_gz: Path, out: Path) -> bool:
    """Unpack sparsely (some images are mostly holes); False if the image is larger than LIMIT."""
    size = 0
    with gzip.open(image_gz) as src, open(out, "wb") as dst:
        while chunk := src.read(1 << 20):
            if chunk.count(0) == len(chunk):
                dst.seek(len(chunk), os.SEEK_CUR)
            else:
                dst.write(chunk)
            size += len(chunk)
            if size > LIMIT:
                return False
        dst.truncate(-(-size // 4096) * 4096)  # whole 4 KiB blocks, as a disk (a loop device) has them
    return True


@pytest.mark.parametrize("name", _images())
def test_e2fsprogs_image(work, loops, name):
    source = work / "source.img"
    if not _unpack(Path(CORPUS) / name / "image.gz", source):
        pytest.skip(f"larger than {LIMIT >> 20} MiB: every export is imported onto a random-filled copy")
    rc, repaired = _repaired_view(source, work, "source-a")
    if _repaired_view(source, work, "source-b")[1] != repaired:
        pytest.skip("e2fsck -fy does not repair this image the same way twice")
    result = roundtrip(source, work, loops)
    rc_import, imported = _repaired_view(result.target, work, "repaired-import")
    lost = _missing(repaired, imported)
    assert not lost, (f"{len(lost)} of {sum(map(len, repaired.values()))} things e2fsck recovers from the "
                      f"source differ on the import (e2fsck -fy: {rc} on the source, {rc_import} on the import): "
                      f"{lost[:6]}; osdef said: {result.warnings}")
