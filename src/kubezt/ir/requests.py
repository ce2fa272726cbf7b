"""What a client sends beyond the 5-tuple: the HTTP request attributes of one request."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class HttpRequest:
    method: str = "GET"
    path: str = "/"
    host: str = ""
    headers: tuple[tuple[str, str], ...] = ()
    """Header names are compared case-insensitively; repeated headers are joined with ','."""
    _hash: int = field(init=False, repr=False, compare=False)
    """Computed once: requests key the caches of every batched decision."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "_hash", hash((self.method, self.path, self.host, self.headers)))

    def __hash__(self) -> int:
        return self._hash

    def header(self, name: str) -> str | None:
        values = [v for k, v in self.headers if k.lower() == name.lower()]
        return ",".join(values) if values else None


@dataclass(frozen=True, slots=True)
class ServiceAddress:
    """The client addressed this Service (its VIP or name) rather than a pod IP."""

    namespace: str
    name: str
    port: int
