"""`ClassIndex.add_peers` (the incremental engine's new classes): an index grown by peers after
its tables were read answers every address query as an index built on all peers at once,
whichever CIDRs were cached before the peers came (a cached CIDR once kept its old bits, and
a relabelled pod in a Calico network set lost its ingress)."""

from __future__ import annotations

import ipaddress

from hypothesis import given
from hypothesis import strategies as st

from kubezt.engine.index import ClassIndex, Peer, PeerKind
from kubezt.ir.policy import PolicySet
from kubezt.ir.topology import Topology

ADDRESSES = (None, "10.0.0.20", "10.0.0.200", "192.168.1.7", "fd00::5", "10.0.1.1")
NETS = tuple(
    ipaddress.ip_network(n)
    for n in ("0.0.0.0/0", "10.0.0.0/24", "10.0.0.128/25", "fd00::/64", "10.0.0.20/32", "::/0")
)
peers = st.lists(
    st.sampled_from(ADDRESSES).map(
        lambda a: Peer(
            PeerKind.ENDPOINT,
            "ns",
            service_account="default",
            ip=None if a is None else ipaddress.ip_address(a),
        )
    ),
    max_size=8,
)


@given(
    first=peers,
    more=st.lists(peers, max_size=3),
    cached=st.sets(st.sampled_from(NETS)),
    asked=st.lists(st.sampled_from(NETS), min_size=1, max_size=3),
)
def test_grown_index_answers_address_queries_as_a_fresh_one(
    first: list[Peer],
    more: list[list[Peer]],
    cached: set[ipaddress.IPv4Network | ipaddress.IPv6Network],
    asked: list[ipaddress.IPv4Network | ipaddress.IPv6Network],
) -> None:
    topology, policies = Topology({}, {}, ()), PolicySet()
    grown = ClassIndex(first, topology, policies)
    for net in sorted(cached, key=str):
        grown.with_address_in((net,))
    everyone = list(first)
    for batch in more:
        grown.add_peers(batch, ClassIndex(batch, topology, policies))
        everyone.extend(batch)
        fresh = ClassIndex(everyone, topology, policies)
        assert grown.with_address_in(tuple(asked)) == fresh.with_address_in(tuple(asked))
