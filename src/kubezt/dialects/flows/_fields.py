"""Small helpers the flow readers share: typed field reads that raise `BadLine` with the field
name, time stamps, label lists."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from kubezt.ir.ports import Protocol


class BadLine(ValueError):
    """A line that is not a record of its format; the message names the field and the value."""


PROTOCOL_NUMBERS = {"6": Protocol.TCP, "17": Protocol.UDP, "132": Protocol.SCTP}


def field(doc: Mapping[str, Any], *names: str) -> Any:
    """The first of `names` present (and not null) in `doc` (upstream spellings differ between
    the proto field name and its JSON name), else None. Readers are handed `dict`s (JSON
    objects, regex groups)."""
    for name in names:
        value = doc.get(name)
        if value is not None:
            return value
    return None


def text(doc: Mapping[str, Any], *names: str) -> str:
    for name in names:
        value = doc.get(name)
        if value is not None:
            if isinstance(value, str):
                return value
            raise BadLine(f"{names[0]}: expected a string, got {value!r}")
    return ""


def integer(doc: Mapping[str, Any], *names: str, required: bool = False) -> int:
    value = field(doc, *names)
    if value is None or value == "":
        if required:
            raise BadLine(f"{names[0]}: missing")
        return 0
    if isinstance(value, bool):
        raise BadLine(f"{names[0]}: expected an integer, got {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    raise BadLine(f"{names[0]}: expected an integer, got {value!r}")


def port(value: int, name: str) -> int:
    if not 1 <= value <= 65535:
        raise BadLine(f"{name}: expected a port 1-65535, got {value}")
    return value


def protocol(value: str, name: str) -> Protocol:
    upper = value.strip().upper()
    if upper in PROTOCOL_NUMBERS:
        return PROTOCOL_NUMBERS[upper]
    if upper in PORT_PROTOCOLS:
        return Protocol(upper)
    raise BadLine(f"{name}: expected TCP, UDP or SCTP, got {value!r}")


PORT_PROTOCOLS = ("TCP", "UDP", "SCTP")
PORTLESS_PROTOCOLS = frozenset({"ICMP", "ICMPV6", "1", "58"})
"""Protocols without ports: their flows are not connections kubezt evaluates (skipped)."""


def timestamp(value: Any, name: str) -> float | None:
    """Seconds since the epoch from an integer/float, an RFC 3339 string or a protobuf
    Timestamp JSON object (`{"seconds", "nanos"}`)."""
    if value is None or value == "" or value == "-":
        return None
    if isinstance(value, bool):
        raise BadLine(f"{name}: expected a time, got {value!r}")
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, dict):
        return float(value.get("seconds", 0)) + float(value.get("nanos", 0)) / 1e9
    if isinstance(value, str):
        if value.isdigit():
            return float(value)
        try:
            return dt.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
        except ValueError:
            pass
    raise BadLine(f"{name}: expected a time (RFC 3339 or seconds), got {value!r}")


def labels(value: Any, name: str) -> tuple[tuple[str, str], ...]:
    """Labels as a list of `key=value` strings, a `k=v | k=v` string, or an object."""
    if value is None or value == "":
        return ()
    items: list[str]
    if isinstance(value, dict):
        return tuple(sorted((str(k), str(v)) for k, v in value.items()))
    if isinstance(value, str):
        items = [part.strip() for part in value.split("|")]
    elif isinstance(value, list) and all(isinstance(v, str) for v in value):
        items = list(value)
    else:
        raise BadLine(f"{name}: expected labels, got {value!r}")
    out = []
    for item in items:
        key, _, val = item.partition("=")
        if key:
            out.append((key, val))
    return tuple(sorted(out))


def host_port(value: str, name: str) -> tuple[str, int]:
    """`10.0.0.1:8080` or `[fd00::1]:8080` → (address, port); `-` or "" → ("", 0)."""
    if not value or value == "-":
        return "", 0
    address, sep, number = value.rpartition(":")
    if not sep or not number.isdigit():
        raise BadLine(f"{name}: expected address:port, got {value!r}")
    return address.strip("[]"), int(number)
