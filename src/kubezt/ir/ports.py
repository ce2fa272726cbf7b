"""Protocols, port ranges and port sets (numbers, ranges and named ports)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class Protocol(StrEnum):
    """Transport protocols, valued with the upstream spelling."""

    TCP = "TCP"
    UDP = "UDP"
    SCTP = "SCTP"
    ICMP = "ICMP"
    ICMPV6 = "ICMPv6"
    UDPLITE = "UDPLite"

    # A member equals its value, so it hashes as its value; str's hash is also computed in C,
    # where Enum's (by name) runs Python code on every lookup of a PortKey.
    __hash__ = str.__hash__

    @property
    def number(self) -> int:
        return PROTOCOL_NUMBERS[self]


PROTOCOL_NUMBERS: dict[Protocol, int] = {
    Protocol.TCP: 6,
    Protocol.UDP: 17,
    Protocol.SCTP: 132,
    Protocol.ICMP: 1,
    Protocol.ICMPV6: 58,
    Protocol.UDPLITE: 136,
}


@dataclass(frozen=True, slots=True, order=True)
class PortRange:
    """Inclusive port range; first == last for a single port."""

    first: int
    last: int

    def contains(self, port: int) -> bool:
        return self.first <= port <= self.last

    def __str__(self) -> str:
        return str(self.first) if self.first == self.last else f"{self.first}-{self.last}"


@dataclass(frozen=True, slots=True)
class PortSet:
    """A set of destination ports: numeric ranges plus named ports.

    Named ports are resolved against the destination endpoint's declared container ports when a
    packet is matched (`matches(port, name)`): a name matches only a port declared with that name.
    """

    ranges: tuple[PortRange, ...] = ()
    names: frozenset[str] = frozenset()

    @classmethod
    def of(
        cls,
        ranges: list[PortRange] | tuple[PortRange, ...],
        names: frozenset[str] | set[str] = frozenset(),
    ) -> PortSet:
        """Sort and merge overlapping or adjacent ranges, so equal sets compare equal."""
        merged: list[PortRange] = []
        for r in sorted(ranges):
            if merged and r.first <= merged[-1].last + 1:
                last = merged[-1]
                merged[-1] = PortRange(last.first, max(last.last, r.last))
            else:
                merged.append(r)
        return cls(tuple(merged), frozenset(names))

    def matches(self, port: int, name: str = "") -> bool:
        if name and name in self.names:
            return True
        return any(r.contains(port) for r in self.ranges)

    @property
    def is_empty(self) -> bool:
        return not self.ranges and not self.names

    def __str__(self) -> str:
        parts = [str(r) for r in self.ranges] + sorted(self.names)
        return ",".join(parts)


@dataclass(frozen=True, slots=True, order=True)
class PortKey:
    """A destination port as a connection sees it: number, protocol and the name the destination
    gives it ("" when the destination declares no name for it)."""

    port: int
    protocol: Protocol
    name: str = ""
    _hash: int = field(init=False, repr=False, compare=False)
    """Computed once: the matrices key millions of cells by port."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "_hash", hash((self.port, self.protocol, self.name)))

    def __hash__(self) -> int:
        return self._hash

    def __str__(self) -> str:
        return f"{self.port}/{self.protocol.value}"
