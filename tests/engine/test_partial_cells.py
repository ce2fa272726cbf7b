"""`PartialCells` answers like the mapping it stands for: every (port, destination, source) entry
written out one by one (the brute-force oracle)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from kubezt.engine.partial import PartialCells
from kubezt.engine.requests import RequestSpace, Some, string_glob
from kubezt.ir.ports import PortKey, Protocol

SPACE = RequestSpace(methods=frozenset({string_glob("GET"), string_glob("POST")}))
PORTS = [PortKey(80, Protocol.TCP, "http"), PortKey(9090, Protocol.TCP, None)]


@st.composite
def cells(draw: st.DrawFn) -> list[tuple[PortKey, int, list[tuple[int, int]]]]:
    """Cells with disjoint source bitsets, each group naming one of two request sets."""
    out = []
    for key in PORTS:
        for d in draw(st.sets(st.integers(0, 6), max_size=4)):
            owner = draw(st.lists(st.integers(-1, 2), min_size=0, max_size=70))
            groups: dict[int, int] = {}
            for s, g in enumerate(owner):
                if g >= 0:
                    groups[g] = groups.get(g, 0) | 1 << s
            out.append((key, d, [(bits, g % 2) for g, bits in groups.items()]))
    return out


def _some(i: int) -> Some:
    return Some((SPACE.witnesses()[i],), SPACE)


@settings(max_examples=200, deadline=None)
@given(
    drawn=cells(),
    probes=st.lists(st.tuples(st.integers(0, 1), st.integers(0, 7), st.integers(0, 75))),
)
def test_partial_cells_answer_like_the_written_out_mapping(drawn, probes) -> None:
    lazy = PartialCells()
    oracle: dict[tuple[PortKey, int, int], Some] = {}
    for key, d, groups in drawn:
        lazy.set_cell(key, d, [(bits, _some(r)) for bits, r in groups])
        for bits, r in groups:
            for s in range(bits.bit_length()):
                if bits >> s & 1:
                    oracle[(key, d, s)] = _some(r)
    assert dict(lazy) == oracle
    assert len(lazy) == len(oracle)
    assert list(lazy) == list(oracle)
    for p, d, s in probes:
        item = (PORTS[p], d, s)
        assert (item in lazy) == (item in oracle)
        assert lazy.get(item) == oracle.get(item)
    copy = lazy.copy()
    for key, d, _ in drawn:
        popped = lazy.pop_cell(key, d)
        assert popped == {s: r for (k, dd, s), r in oracle.items() if (k, dd) == (key, d)}
    assert not lazy and len(lazy) == 0
    assert dict(copy) == oracle  # the copy does not share cells with the original
