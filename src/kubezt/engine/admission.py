"""Which requests on an allowed connection pass: all of them, none, or some.

The one request-set type lives in `engine.requests` (`RequestSet` = `AllRequests` | `Some` |
`NoRequests`, built from complete witnesses); this module names it for the callers that speak
of the admission of a connection.
"""

from __future__ import annotations

from kubezt.engine.requests import ALL, NONE, AllRequests, NoRequests, RequestSet, Some

Admission = RequestSet
NoRequest = NoRequests
SomeRequests = Some

__all__ = [
    "ALL",
    "NONE",
    "Admission",
    "AllRequests",
    "NoRequest",
    "NoRequests",
    "RequestSet",
    "Some",
    "SomeRequests",
]
