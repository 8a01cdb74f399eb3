"""The differential check of the filesystem-aware export: osdef exports and imports, independent tools judge.

``roundtrip`` runs osdef's real export and import with EXP_SIZE_FD (which must
be exact): the image is exported as a file (mapped by SEEK_DATA) and as an
unmapped loop device over the same bytes (what an LVM or DRBD volume is to
osdef), and each stream is imported onto a reused volume full of other random
data (a file, and an unmapped loop device).  The two imports must be equal.

``problems`` then compares the import with its source using only util-linux,
e2fsprogs, dosfstools and 7-Zip (never osdef's parsers):

- the guest's kernel sees the same partitions on both (tests/support/kernelview);
- every byte outside them is identical, and every byte of the import is the
  source's or zero (free space arrives as zeros, never as the target's old data);
- each partition is identical (sent at block level: a valid outcome for
  anything ambiguous), or its filesystem's oracle vouches for the copy: every
  block the tools call used is identical (the documented exceptions aside), the
  files and their metadata are identical, and so is the fsck -n verdict.  A
  partition whose filesystem no oracle knows must be identical.
"""

from __future__ import annotations

import os
import shutil
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.support import extoracle, fatoracle
from tests.support.bytecompare import differences, extract, identical, subtract
from tests.support.kernelview import Region, outside, partitions, probe
from tests.support.stream import export_to_file, fill_random, import_from_file

SWAP_HEADER = 4096  # the page a swap area's signature, UUID and label live in


@dataclass
class Roundtrip:
    target: Path  # the import (of the file's export, onto a random-filled file)
    warnings: list[str] = field(default_factory=list)
    sent: dict[str, int] = field(default_factory=dict)  # stream bytes: "file", "device"


def _export(source, stream: Path, warnings: list[str]) -> int:
    n, announced = export_to_file(source, stream, warn=warnings.append)
    assert n == announced == stream.stat().st_size, f"EXP_SIZE_FD said {announced}, export wrote {n}"
    return n


def _import(stream: Path, target) -> None:
    _, announced = import_from_file(stream, target)
    assert announced == b"%d\n" % stream.stat().st_size, f"import announced {announced!r}"
    stream.unlink()


def roundtrip(source: Path, work: Path, loops) -> Roundtrip:
    """Export ``source`` from its file and from an unmapped device, import both onto reused volumes."""
    result = Roundtrip(work / "import.img")
    size, seed = source.stat().st_size, zlib.crc32(source.name.encode())
    device = loops.attach_unmapped(source, read_only=True)
    result.sent["device"] = _export(device, work / "device.stream", result.warnings)
    loops.detach(device)
    result.sent["file"] = _export(source, work / "file.stream", result.warnings)
    _import(work / "file.stream", fill_random(result.target, size, seed=seed + 1))
    second = fill_random(work / "import-device.img", size, seed=seed + 2)
    target = loops.attach_unmapped(second)
    _import(work / "device.stream", target)
    loops.detach(target)
    same = differences(result.target, second, [(0, size)])
    second.unlink()
    assert same is None, f"the file's and the device's exports import differently: {same}"
    return result


def _ext(a: Path, b: Path, length: int, work: Path) -> list[str]:
    problems = []
    lay = extoracle.layout(a)
    if lay is None:
        problems.append("dumpe2fs cannot read its bitmaps, so all of it had to arrive, and it did not")
    else:
        bs = lay.block_size
        keep = [(x * bs, y * bs) for x, y in subtract(lay.used, lay.may_be_zero)] + [(lay.blocks * bs, length)]
        diff = differences(a, b, keep)
        if diff:
            problems.append(f"in the blocks e2fsprogs calls used, {diff} (block {diff.first // bs})")
    return problems + _same_view("e2fsck -fn", extoracle.verdict(a), extoracle.verdict(b)) + \
        _same_files(extoracle.files(a, work / "src"), extoracle.files(b, work / "dst"))


def _fat(a: Path, b: Path, length: int, work: Path) -> list[str]:
    problems = []
    lay = fatoracle.layout(a)
    if lay is None:
        problems.append("fsck.fat cannot read its boot sector, so all of it had to arrive, and it did not")
    else:
        diff = differences(a, b, lay.used(a) + [(lay.size, length)])
        if diff:
            problems.append(f"in what dosfstools calls used (reserved sectors, FATs, root, used clusters), {diff}")
    return problems + _same_view("fsck.fat -n", fatoracle.verdict(a), fatoracle.verdict(b)) + \
        _same_files(fatoracle.files(a, work / "src"), fatoracle.files(b, work / "dst"))


def _swap(a: Path, b: Path, length: int, work: Path) -> list[str]:
    problems = _same_view("blkid -p", probe(a), probe(b))
    diff = differences(a, b, [(0, SWAP_HEADER)])
    return problems + ([f"in its header page, {diff}"] if diff else [])


ORACLES = {"ext2": _ext, "ext3": _ext, "ext4": _ext, "vfat": _fat, "msdos": _fat, "swap": _swap}


def _same_view(tool: str, source, copy) -> list[str]:
    if source == copy:
        return []
    if isinstance(source, tuple):
        lines = [ln for ln in copy[1].splitlines() if ln not in source[1].splitlines()][:2]
        return [f"{tool}: exit {source[0]} on the source, {copy[0]} on the import; the import adds {lines}"]
    return [f"{tool}: {source} on the source, {copy} on the import"]


def _same_files(source: dict, copy: dict) -> list[str]:
    problems = []
    for key, want in source.items():
        got = copy[key]
        if want == got:
            continue
        if isinstance(want, dict):
            wrong = sorted(k for k in want if got.get(k) != want[k])
            extra = sorted(set(got) - set(want))
            problems.append(f"{key}: {len(wrong)} of {len(want)} paths missing or different (e.g. {wrong[:3]})"
                            + (f", {len(extra)} new ({extra[:3]})" if extra else ""))
        else:
            problems.append(f"{key}: {_first_difference(str(want), str(got))}")
    return problems


def _first_difference(source: str, copy: str) -> str:
    a, b = source.splitlines(), copy.splitlines()
    i = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
    return (f"line {i + 1} of {len(a)} is {a[i] if i < len(a) else '(none)'!r} on the source, "
            f"{b[i] if i < len(b) else '(none)'!r} on the import")


def _region(source: Path, target: Path, region: Region, work: Path) -> list[str]:
    if identical(source, target, region.start, region.length):
        return []
    found = probe(source, region.start, region.length)
    kind = "ambivalent" if "AMBIVALENT" in found else found.get("TYPE", "")
    label = f"{region.name} ({kind or 'no filesystem'} at byte {region.start})"
    oracle = ORACLES.get(kind)
    if oracle is None:
        diff = differences(source, target, [(region.start, region.end)])
        return [f"{label}: no oracle vouches for a partial copy, and {diff}"]
    part = work / f"p{region.number}"
    part.mkdir()
    try:
        a = extract(source, region.start, region.length, part / "source.img")
        b = extract(target, region.start, region.length, part / "import.img")
        return [f"{label}: {p}" for p in oracle(a, b, region.length, part)]
    finally:
        shutil.rmtree(part)


def problems(source: Path, target: Path, work: Path) -> list[str]:
    """Everything the independent tools see differently on the import; [] if they vouch for it."""
    size = source.stat().st_size
    regions, imported = partitions(source), partitions(target)
    found = []
    if imported != regions:
        found.append(f"the kernel would see other partitions: {imported} instead of {regions}")
    gaps = differences(source, target, [(a, a + n) for a, n in outside(regions, size)])
    if gaps:
        found.append(f"outside the partitions, {gaps}")
    stray = differences(source, target, [(0, size)], allow_zero=True)
    if stray:
        found.append(f"bytes that are neither the source's nor zero: {stray}")
    for region in regions:
        found += _region(source, target, region, work)
    return found


def check(source: Path, work: Path, loops) -> Roundtrip:
    """roundtrip + problems: fails the test with every problem found, and osdef's warnings."""
    result = roundtrip(source, work, loops)
    found = problems(source, result.target, work)
    assert not found, "\n".join(found + [f"osdef said: {w}" for w in result.warnings])
    return result


@pytest.fixture
def work(tmp_path, loops):
    """A case's directory, with loop devices at hand; its images (up to hundreds of MiB: pytest keeps its
    temp dirs) are removed afterwards unless OSDEF_KEEP_DIFFERENTIAL is set."""
    yield tmp_path
    if not os.environ.get("OSDEF_KEEP_DIFFERENTIAL"):
        for path in tmp_path.rglob("*"):
            if path.is_file() and path.stat().st_size > (1 << 20):
                path.unlink()
