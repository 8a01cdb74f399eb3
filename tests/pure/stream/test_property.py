"""The whole import rule as a property (issue 14): a mutated export is refused or restores the source.

hypothesis mutates real exported streams — bit flips anywhere, truncations anywhere, insertions,
concatenations, the result wrapped in zstd — and import must either refuse (one line; the target
untouched and saying so, or its first and last MiB zero) or leave the target byte-identical to the
source.  Never anything else.

A raw dump has no checksum of its own, so a changed byte in an uncompressed raw dump cannot be
noticed by anyone (docs/stream.md); the property covers raw dumps inside zstd (its checksum and
framing) for flips, cuts and insertions, and random byte strings, which import either refuses or
writes exactly (a raw dump is what it is).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
import zstandard
from hypothesis import HealthCheck, given, settings, strategies as st

from osdef.errors import StreamError
from tests.support.stream import MiB, Layout, assert_refused, export_to_file, fill_random, import_bytes, read_all

DISK = 2 * MiB
LAYOUT = Layout(DISK, ((0, 5000, "random"), (300_000, 4096, "pattern"), (MiB - 100, 70_000, "random"),
                       (DISK - 512, 512, "random")), 77)


@pytest.fixture(scope="module")
def exports(tmp_path_factory) -> dict[str, bytes]:
    d = tmp_path_factory.mktemp("property")
    src = LAYOUT.create(d / "src")
    out = {"source": read_all(src)}
    for name, kwargs in (("sparse", {}), ("sparse+zstd", {"compression": "zstd"}),
                         ("raw+zstd", {"fmt": "raw", "compression": "zstd"})):
        export_to_file(src, d / name, **kwargs)
        out[name] = read_all(d / name)
    return out


@st.composite
def mutations(draw, data: bytes, *, concatenate: bool = True):
    """(description, mutated bytes) of one to three mutations of ``data``."""
    steps = []
    for _ in range(draw(st.integers(1, 3))):
        kinds = ["flip", "flip", "truncate", "insert"] + (["concat"] if concatenate else [])
        kind = draw(st.sampled_from(kinds))
        if kind == "flip":
            pos = draw(st.one_of(st.integers(0, 15), st.integers(0, max(0, len(data) - 1))))
            if pos < len(data):
                data = data[:pos] + bytes([data[pos] ^ (1 << draw(st.integers(0, 7)))]) + data[pos + 1:]
        elif kind == "truncate":
            pos = draw(st.one_of(st.integers(0, 40), st.integers(0, max(0, len(data) - 1))))
            data = data[:pos]
        elif kind == "insert":
            pos = draw(st.one_of(st.integers(0, 12), st.integers(0, len(data))))
            extra = draw(st.binary(min_size=1, max_size=600))
            data = data[:pos] + extra + data[pos:]
        else:
            other = draw(st.one_of(st.just(data), st.binary(min_size=1, max_size=4096)))
            data = data + other if draw(st.booleans()) else other + data
        steps.append(kind)
    return "+".join(steps), data


def check(source: bytes, data: bytes) -> None:
    with tempfile.TemporaryDirectory() as d:
        tgt = fill_random(Path(d) / "tgt", DISK + MiB, seed=len(data))
        before = read_all(tgt)
        try:
            import_bytes(data, tgt)
        except StreamError as e:
            assert_refused(tgt, before, str(e))
            return
        after = read_all(tgt)
        assert after[:DISK] == source and after[DISK:] == bytes(MiB), "import exited 0 with a different disk"


@pytest.mark.parametrize("kind", ["sparse", "sparse+zstd"])
@settings(max_examples=120, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow,
                                                                                   HealthCheck.data_too_large])
@given(data=st.data(), wrap=st.booleans())
def test_mutated_streams_are_refused_or_exact(exports, kind, data, wrap):
    _, mutated = data.draw(mutations(exports[kind]))
    if wrap and kind == "sparse":
        mutated = zstandard.ZstdCompressor(write_checksum=True).compress(mutated)
    check(exports["source"], mutated)


@settings(max_examples=60, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow,
                                                                                  HealthCheck.data_too_large])
@given(data=st.data())
def test_mutated_zstd_raw_dumps_are_refused_or_exact(exports, data):
    # no concatenation: two whole zstd frames of a raw dump are a valid raw dump of twice the data
    _, mutated = data.draw(mutations(exports["raw+zstd"], concatenate=False))
    check(exports["source"], mutated)


@settings(max_examples=60, deadline=None, database=None)
@given(st.one_of(st.binary(max_size=5000), st.integers(1, 2 * MiB).map(os.urandom),
                 st.integers(2, 4).map(lambda k: os.urandom(k * 512 * 1024))), st.booleans())
def test_random_bytes_are_refused_or_written_exactly(blob, compress):
    data = zstandard.ZstdCompressor(write_checksum=True).compress(blob) if compress else blob
    with tempfile.TemporaryDirectory() as d:
        tgt = fill_random(Path(d) / "tgt", 3 * MiB)
        before = read_all(tgt)
        try:
            result = import_bytes(data, tgt)
        except StreamError as e:
            assert_refused(tgt, before, str(e))
            return
        assert result.kind == "raw" and len(blob) % 512 == 0 and len(blob) >= MiB
        after = read_all(tgt)
        assert after[:len(blob)] == blob and after[len(blob):] == bytes(len(after) - len(blob))
