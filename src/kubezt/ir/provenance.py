"""Where an IR value came from: the object and the file/line it was read from."""

from __future__ import annotations

from dataclasses import dataclass

from kubezt.errors import Location


@dataclass(frozen=True, slots=True)
class Source:
    """The manifest object an IR value was lowered from.

    `path` points inside the object (`spec.ingress[1].from[0]`) when the value is a part of it.
    """

    kind: str
    name: str
    namespace: str | None = None
    location: Location | None = None
    path: str = ""

    @property
    def ref(self) -> str:
        """`Kind ns/name`, or `Kind name` for cluster-scoped objects."""
        return (
            f"{self.kind} {self.namespace}/{self.name}"
            if self.namespace
            else (f"{self.kind} {self.name}")
        )

    def at(self, path: str, location: Location | None = None) -> Source:
        """The same object, pointing at a field inside it."""
        return Source(self.kind, self.name, self.namespace, location or self.location, path)
