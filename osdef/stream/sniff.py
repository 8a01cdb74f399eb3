"""What an import's input is: an osdef stream, zstd, a raw disk dump — or something to refuse.

A raw dump has no header and no checksum, so "raw" must never be the answer
for a damaged stream: a stream whose magic lost one bit would otherwise be
written onto the disk as its own bytes.  The rule (docs/stream.md, "What
import accepts"):

0. An input shorter than ``MAGIC`` (8 bytes) is refused as truncated: it
   is too short to be anything, and a guess at what it was cut from would
   rest on one or two bytes.
1. ``MAGIC`` at byte 0: an osdef stream (its header, record CRCs, digest and
   trailer are checked as it is read).  The zstd frame magic at byte 0: a
   zstd-compressed input, whose decompressed bytes get this rule once more.
2. Refused as a damaged osdef stream: the first 8 bytes within
   ``NEAR_MAGIC_BITS`` bits of ``MAGIC``; ``MAGIC`` anywhere in the first
   ``MAGIC_SEARCH`` bytes, or within ``NEAR_SHIFTED_BITS`` bits of it at any
   offset of the first ``NEAR_SEARCH`` bytes (bytes inserted before it); any
   4 consecutive bytes of ``MAGIC`` in the first ``WINDOW_SEARCH`` bytes
   (bytes inserted into it); the input starting with the tail of ``MAGIC``
   and the version and flags fields (its head cut off).  Refused as a damaged zstd
   input: the first 4 bytes within ``NEAR_ZSTD_BITS`` bits of the zstd magic.
3. Refused as foreign: containers that are certainly no raw disk (qcow2,
   VMDK, VHDX, gzip, xz, lz4), and zstd inside zstd.
4. Anything else is a raw dump, accepted only as a whole number of 512-byte
   sectors and at least ``MIN_RAW`` bytes (checked by the importer: the
   length is known at the end).  A raw disk starts with boot code, zeros, a
   partition table or a filesystem; the chance that random data (an encrypted
   volume) trips rule 2 is below 2e-6, and ``import_format=raw`` then says
   that the input is raw: rule 2 is skipped, the exact magics still count.

``import_format=stream`` refuses every raw input.
"""

from __future__ import annotations

from osdef.disk.units import SECTOR, MiB
from osdef.errors import StreamError
from osdef.stream.format import MAGIC, VERSION, ZSTD_MAGIC

MIN_RAW = MiB  # Ganeti disks are whole MiB; a dd of one is at least this long
PEEK = 8192  # bytes looked at before deciding (a slow sender: import starts after these)

NEAR_MAGIC_BITS = 8  # random 8 bytes come this close to MAGIC with p ≈ 3e-10
MAGIC_SEARCH = PEEK
NEAR_SHIFTED_BITS = 4
NEAR_SEARCH = 4096
WINDOW = 4
WINDOW_SEARCH = 64
NEAR_ZSTD_BITS = 3  # random 4 bytes: p ≈ 1.3e-6

EXPECT = ("auto", "stream", "raw")
HEADER_AFTER_MAGIC = VERSION.to_bytes(2, "big") + bytes(2)  # version, flags

# Containers that are certainly not a raw disk (a disk starts with boot code, zeros or a filesystem).
FOREIGN_MAGICS = (
    (b"QFI\xfb", "qcow2 image"),
    (b"KDMV", "VMDK image"),
    (b"vhdxfile", "VHDX image"),
    (b"\x1f\x8b", "gzip file"),
    (b"\xfd7zXZ\x00", "xz file"),
    (b"\x04\x22\x4d\x18", "lz4 file"),
)


class InputRefused(StreamError):
    """The input is not something import can restore faithfully."""


def _bits(a: bytes, b: bytes) -> int:
    return (int.from_bytes(a, "big") ^ int.from_bytes(b, "big")).bit_count()


def damaged_stream_at(prefix: bytes) -> str | None:
    """Why ``prefix`` (not starting with MAGIC) looks like a damaged osdef stream, or None."""
    head = prefix[:len(MAGIC)]
    if len(head) == len(MAGIC) and (d := _bits(head, MAGIC)) <= NEAR_MAGIC_BITS:
        return f"its first 8 bytes differ from the osdef stream magic in {d} bits"
    at = prefix.find(MAGIC, 1, MAGIC_SEARCH + len(MAGIC))
    if at > 0:
        return f"the osdef stream magic is at byte {at} instead of byte 0"
    window = prefix[:NEAR_SEARCH + len(MAGIC) - 1]
    for at in range(1, len(window) - len(MAGIC) + 1):
        if _bits(window[at:at + len(MAGIC)], MAGIC) <= NEAR_SHIFTED_BITS:
            return f"something close to the osdef stream magic is at byte {at}"
    for cut in range(1, len(MAGIC)):  # the head of the magic lost: its tail, then version 1, flags 0
        if prefix.startswith(MAGIC[cut:] + HEADER_AFTER_MAGIC):
            return f"it starts with the last {len(MAGIC) - cut} bytes of the osdef stream magic"
    start = prefix[:WINDOW_SEARCH]
    for i in range(len(MAGIC) - WINDOW + 1):
        at = start.find(MAGIC[i:i + WINDOW])
        if at >= 0:
            return f"bytes {i}-{i + WINDOW - 1} of the osdef stream magic are at byte {at}"
    return None


def damaged_zstd(prefix: bytes) -> str | None:
    """Why ``prefix`` (not starting with the zstd magic) looks like a damaged zstd input, or None."""
    head = prefix[:len(ZSTD_MAGIC)]
    if len(head) == len(ZSTD_MAGIC) and (d := _bits(head, ZSTD_MAGIC)) <= NEAR_ZSTD_BITS:
        return f"its first 4 bytes differ from the zstd frame magic in {d} bits"
    return None


def classify(prefix: bytes, *, expect: str = "auto", compressed: bool = False) -> str:
    """'stream', 'zstd' or 'raw' for the first PEEK (or all) bytes of an input; InputRefused otherwise.

    ``compressed``: prefix is what a zstd input decompressed to.
    """
    what = "the decompressed import input" if compressed else "the import input"
    if len(prefix) < len(MAGIC):  # PEEK > len(MAGIC): such a prefix is the whole input
        raise InputRefused(f"{what} is only {len(prefix)} bytes: too short for an osdef stream, a zstd "
                           f"input or a raw disk dump (at least {MIN_RAW >> 20} MiB); it is truncated")
    if prefix.startswith(MAGIC):
        return "stream"
    if prefix.startswith(ZSTD_MAGIC):
        if compressed:
            raise InputRefused("the import input is compressed twice with zstd: decompress it once first")
        return "zstd"
    for magic, name in FOREIGN_MAGICS:
        if prefix.startswith(magic):
            raise InputRefused(f"{what} is a {name}, not an osdef stream or a raw disk dump: "
                               "convert it to a raw disk first (e.g. qemu-img convert -O raw)")
    if expect == "stream":
        raise InputRefused(f"{what} is not an osdef stream (import_format=stream refuses raw dumps)")
    if expect != "raw":
        found = [(kind, why) for kind, why in (("zstd input", None if compressed else damaged_zstd(prefix)),
                                               ("osdef stream", damaged_stream_at(prefix)))
                 if why]
        if found:
            kind, why = found[0]
            raise InputRefused(f"{what} looks like a damaged {kind} ({why}), not a raw disk dump: "
                               "nothing was imported from it; export it again (import_format=raw "
                               "takes it as a raw disk)")
    return "raw"


def check_raw_length(length: int, *, compressed: bool = False) -> None:
    """A raw dump is whole 512-byte sectors and at least MIN_RAW bytes; InputRefused otherwise."""
    what = "decompressed raw import input" if compressed else "raw import input"
    if length < MIN_RAW:
        raise InputRefused(f"the {what} is only {length} bytes: a raw disk dump is at least "
                           f"{MIN_RAW >> 20} MiB (Ganeti disks are whole MiB); the input is truncated or "
                           "not a disk")
    if length % SECTOR:
        raise InputRefused(f"the {what} is {length} bytes, not a whole number of 512-byte sectors: "
                           "it is truncated or not a disk dump")
