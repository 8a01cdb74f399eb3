"""The block-range helpers of the maps against a plain set-of-blocks model (hypothesis)."""

from __future__ import annotations

from hypothesis import given, settings, strategies as st

from osdef.stream.fsmap.ranges import Runs, contains_all, cut

_spans = st.lists(st.tuples(st.integers(0, 300), st.integers(0, 40)), max_size=25)


def _blocks(ranges) -> set[int]:
    return {b for a, n in ranges for b in range(a, a + n)}


@settings(max_examples=300, deadline=None)
@given(used=_spans, holes=_spans, bits=st.integers(0, (1 << 64) - 1), first=st.integers(0, 500))
def test_runs_merge_cut_and_bits_match_the_set_model(used, holes, bits, first):
    runs = Runs()
    for a, n in used:
        runs.add(a, n)
    runs.add_bits(first, bits)
    merged = runs.merged([(a, a + n) for a, n in holes])
    model = (_blocks(used) | {first + i for i in range(64) if bits >> i & 1}) - _blocks(holes)
    assert _blocks((a, b - a) for a, b in merged) == model
    assert all(a < b for a, b in merged) and all(p[1] < q[0] for p, q in zip(merged, merged[1:]))


@settings(max_examples=300, deadline=None)
@given(used=_spans, wanted=_spans)
def test_contains_all_finds_a_block_outside_or_none(used, wanted):
    runs = Runs()
    for a, n in used:
        runs.add(a, n)
    merged = runs.merged()
    outside = contains_all(merged, iter([(a, n) for a, n in wanted if n]))
    missing = _blocks(wanted) - _blocks(used)
    if not missing:
        assert outside is None
    else:
        assert outside in missing


def test_cut_ignores_empty_holes():
    assert cut([(0, 10)], [(5, 5), (12, 20)]) == [(0, 10)]
