"""Errors, diagnostics and source locations shared by every layer of kubezt.

This module owns the exception tree and the `Diagnostic` value that readers collect. It must not
import any other kubezt module.

```
KubeztError
├── InputError          bad YAML/shape/semantics in inputs; carries tuple[Diagnostic, ...]
│   └── SelectorSyntaxError
├── UnsupportedError    a generator can't express a construct in the target dialect
└── ClusterError        live adapter
    ├── ClusterUnavailableError   (retry)
    └── ClusterForbiddenError     (stop)
```
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"


@dataclass(frozen=True, slots=True, order=True)
class Location:
    """Where something was written: file, 1-based line and column (0 when unknown)."""

    file: str
    line: int = 0
    column: int = 0

    def __str__(self) -> str:
        if self.line and self.column:
            return f"{self.file}:{self.line}:{self.column}"
        if self.line:
            return f"{self.file}:{self.line}"
        return self.file


@dataclass(frozen=True, slots=True)
class Diagnostic:
    """One message about an input: an error stops the run, a warning is reported with results.

    `obj` names the object as `Kind ns/name` (or `Kind name` for cluster-scoped objects) and
    `path` the field inside it (`spec.ingress[0].ports[1].port`).
    """

    severity: Severity
    code: str
    message: str
    location: Location | None = None
    obj: str = ""
    path: str = ""
    hint: str = ""

    def render(self) -> str:
        where = f"{self.location}: " if self.location else ""
        head = f"{where}{self.severity.value} {self.code}: "
        if self.obj:
            head += f"{self.obj}: "
        if self.path:
            head += f"{self.path}: "
        text = head + self.message
        if self.hint:
            text += f"; {self.hint}"
        return text

    def sort_key(self) -> tuple[str, int, int, str, str]:
        loc = self.location or Location("")
        return (loc.file, loc.line, loc.column, self.code, self.message)


class KubeztError(Exception):
    """Base of every error kubezt raises on purpose."""


class InputError(KubeztError):
    """One or more inputs are invalid; `diagnostics` holds every error found, in file order."""

    def __init__(self, diagnostics: Sequence[Diagnostic]) -> None:
        self.diagnostics: tuple[Diagnostic, ...] = tuple(diagnostics)
        first = self.diagnostics[0].render() if self.diagnostics else "invalid input"
        more = len(self.diagnostics) - 1
        super().__init__(first + (f" (and {more} more)" if more > 0 else ""))


class SelectorSyntaxError(InputError):
    """A Calico selector expression does not parse; `column` is 1-based within the expression."""

    def __init__(self, expression: str, column: int, message: str) -> None:
        self.expression = expression
        self.column = column
        self.reason = message
        diag = Diagnostic(
            Severity.ERROR,
            "E031",
            f"{message} at column {column} in {expression!r}",
        )
        super().__init__([diag])


class UnsupportedError(KubeztError):
    """A generator cannot express a construct in the target dialect."""


class ClusterError(KubeztError):
    """Talking to a live cluster failed."""


class ClusterUnavailableError(ClusterError):
    """The API server could not be reached or timed out: retrying may help."""


class ClusterForbiddenError(ClusterError):
    """Credentials are missing or lack permission: retrying will not help."""


@dataclass(slots=True)
class DiagnosticSink:
    """Collects diagnostics across files; readers append, `load()` raises once at the end."""

    items: list[Diagnostic] = field(default_factory=list)

    def add(self, diagnostic: Diagnostic) -> None:
        self.items.append(diagnostic)

    def extend(self, diagnostics: Iterable[Diagnostic]) -> None:
        self.items.extend(diagnostics)

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.items if d.severity is Severity.ERROR]

    @property
    def warnings(self) -> list[Diagnostic]:
        return [d for d in self.items if d.severity is Severity.WARNING]

    def raise_if_errors(self) -> None:
        errors = self.errors
        if errors:
            raise InputError(sorted(errors, key=Diagnostic.sort_key))


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """A "did you mean 'x'?" hint for an unknown name, or "" when nothing is close.

    >>> did_you_mean("podSelecter", ["podSelector", "policyTypes"])
    "did you mean 'podSelector'?"
    """
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f"did you mean {close[0]!r}?" if close else ""
