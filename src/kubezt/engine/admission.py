"""Which requests on an allowed connection pass: all of them, none, or some (listed).

One closed union serves the mesh decision of a source group (`reach`), the rows of a
reachability result, and every analysis that compares them (`verify`, `diff`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import assert_never

from kubezt.ir.requests import HttpRequest

RequestSet = tuple[HttpRequest, ...] | None
"""None: every request passes; a tuple: only these representative requests pass."""


@dataclass(frozen=True, slots=True)
class AllRequests:
    """Every request passes (or the verdict cannot depend on the request)."""


@dataclass(frozen=True, slots=True)
class NoRequest:
    """No request passes."""


@dataclass(frozen=True, slots=True)
class SomeRequests:
    """Only these representative requests pass."""

    requests: tuple[HttpRequest, ...]


Admission = AllRequests | NoRequest | SomeRequests

ALL = AllRequests()
NONE = NoRequest()


def admission(requests: RequestSet) -> AllRequests | SomeRequests:
    """The admission of an allowed connection from its request set."""
    return ALL if requests is None else SomeRequests(requests)


def request_set(admitted: AllRequests | SomeRequests) -> RequestSet:
    """The request set of an allowed connection (None: every request)."""
    match admitted:
        case AllRequests():
            return None
        case SomeRequests(requests):
            return requests
        case _:
            assert_never(admitted)
