"""A cursor over one object's data that reports located, typed diagnostics.

Readers navigate with `cursor["spec"]["ingress"]` and read typed values with `str()`, `int()`,
`list()`, `map()`. A wrong type becomes an error `file:line: E010: Kind ns/name: spec.path:
expected …, got …` in the shared sink, and the read returns None, so a reader carries on and
every problem in every file is reported together.
"""

from __future__ import annotations

import builtins
import ipaddress
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from kubezt.dialects._yaml import Document, PathPart, dotted, type_name
from kubezt.errors import Diagnostic, DiagnosticSink, Location, Severity, did_you_mean
from kubezt.ir.policy import Network

_MISSING: Any = object()
_NUMBER_LITERAL = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")
"""A number as JSON or YAML 1.2 write it (YAML 1.1 leaves `1e5` a string)."""


@dataclass(slots=True)
class ObjectContext:
    doc: Document
    obj: str
    sink: DiagnosticSink
    failed: bool = field(default=False)


class Cursor:
    """A position inside one object; `value` is `MISSING` when the field is absent."""

    __slots__ = ("ctx", "path", "value")

    def __init__(self, ctx: ObjectContext, value: Any, path: tuple[PathPart, ...] = ()) -> None:
        self.ctx = ctx
        self.value = value
        self.path = path

    # navigation -----------------------------------------------------------------------------
    def __getitem__(self, key: PathPart) -> Cursor:
        value = self.value
        if isinstance(key, builtins.str) and isinstance(value, dict):
            child = value.get(key, _MISSING)
        elif isinstance(key, builtins.int) and isinstance(value, builtins.list):
            child = value[key] if 0 <= key < len(value) else _MISSING
        else:
            child = _MISSING
        return Cursor(self.ctx, child, (*self.path, key))

    @property
    def present(self) -> builtins.bool:
        """The field is written and not null."""
        return self.value is not _MISSING and self.value is not None

    @property
    def written(self) -> builtins.bool:
        """The field is written, possibly as null."""
        return self.value is not _MISSING

    @property
    def dotted(self) -> builtins.str:
        return dotted(self.path)

    @property
    def location(self) -> Location:
        return self.ctx.doc.locate(self.path)

    # diagnostics ----------------------------------------------------------------------------
    def error(
        self,
        expected: builtins.str,
        code: builtins.str = "E010",
        got: builtins.str | None = None,
        hint: builtins.str = "",
    ) -> None:
        """Report `expected …, got …`; `got` defaults to a description of the value found."""
        shown = got if got is not None else type_name(None if not self.written else self.value)
        self.ctx.failed = True
        self.ctx.sink.add(
            Diagnostic(
                Severity.ERROR,
                code,
                f"expected {expected}, got {shown}",
                self.location,
                self.ctx.obj,
                self.dotted,
                hint,
            )
        )

    def problem(
        self,
        message: builtins.str,
        code: builtins.str,
        severity: Severity = Severity.ERROR,
        hint: builtins.str = "",
    ) -> None:
        if severity is Severity.ERROR:
            self.ctx.failed = True
        self.ctx.sink.add(
            Diagnostic(severity, code, message, self.location, self.ctx.obj, self.dotted, hint)
        )

    def warn(self, message: builtins.str, code: builtins.str, hint: builtins.str = "") -> None:
        self.problem(message, code, Severity.WARNING, hint)

    # typed reads ----------------------------------------------------------------------------
    def str(
        self, required: builtins.bool = False, default: builtins.str | None = None
    ) -> builtins.str | None:
        if not self.present:
            if required:
                self.error("a string")
            return default
        if isinstance(self.value, builtins.str):
            return self.value
        self.error("a string")
        return None

    def int(
        self,
        required: builtins.bool = False,
        lo: builtins.int | None = None,
        hi: builtins.int | None = None,
        what: builtins.str = "an integer",
    ) -> builtins.int | None:
        if not self.present:
            if required:
                self.error(what)
            return None
        v = self.value
        if isinstance(v, builtins.bool) or not isinstance(v, builtins.int):
            self.error(what)
            return None
        if (lo is not None and v < lo) or (hi is not None and v > hi):
            self.error(what)
            return None
        return v

    def number(self, what: builtins.str = "a number") -> float | None:
        """A finite float64: the API server stores no NaN or infinity (JSON has neither), and
        a literal beyond the float64 range (`1e400`) is an error, not a string."""
        if not self.present:
            return None
        v = self.value
        if isinstance(v, builtins.str) and _NUMBER_LITERAL.fullmatch(v.strip()):
            if not math.isfinite(float(v)):
                self.error(f"{what} within the range of a 64-bit float", got=v.strip())
            else:
                self.error(
                    what,
                    hint="YAML 1.1 reads a number with an exponent and no dot as a string: "
                    "write it with a dot (1.0e+5) or in full",
                )
            return None
        if isinstance(v, builtins.bool) or not isinstance(v, builtins.int | float):
            self.error(what)
            return None
        if isinstance(v, float) and not math.isfinite(v):
            shown = (
                "NaN (.nan)"
                if math.isnan(v)
                else ("infinity (.inf)" if v > 0 else "minus infinity (-.inf)")
            )
            finite = (
                what.replace("a number", "a finite number", 1)
                if "a number" in what
                else f"{what} (finite)"
            )
            self.error(finite, got=shown)
            return None
        return float(v)

    def bool(self, default: builtins.bool = False) -> builtins.bool:
        if not self.present:
            return default
        if isinstance(self.value, builtins.bool):
            return self.value
        self.error("true or false")
        return default

    def list(
        self, required: builtins.bool = False, what: builtins.str = "a list"
    ) -> builtins.list[Cursor] | None:
        """The items of a list field, or None when absent (an empty list stays [])."""
        if not self.present:
            if required:
                self.error(what)
            return None
        if not isinstance(self.value, builtins.list):
            self.error(what)
            return None
        return [Cursor(self.ctx, item, (*self.path, i)) for i, item in enumerate(self.value)]

    def map(
        self, required: builtins.bool = False, what: builtins.str = "a mapping"
    ) -> dict[builtins.str, Cursor] | None:
        if not self.present:
            if required:
                self.error(what)
            return None
        if not isinstance(self.value, dict):
            self.error(what)
            return None
        out: dict[builtins.str, Cursor] = {}
        for key, value in self.value.items():
            if not isinstance(key, builtins.str):
                Cursor(self.ctx, key, (*self.path, builtins.str(key))).error("a string key")
                continue
            out[key] = Cursor(self.ctx, value, (*self.path, key))
        return out

    def str_list(
        self, what: builtins.str = "a list of strings"
    ) -> builtins.list[builtins.str] | None:
        items = self.list(what=what)
        if items is None:
            return None
        out: builtins.list[builtins.str] = []
        for item in items:
            if isinstance(item.value, builtins.str):
                out.append(item.value)
            else:
                item.error("a string")
        return out

    def str_map(
        self, what: builtins.str = "a mapping of strings to strings"
    ) -> dict[builtins.str, builtins.str] | None:
        fields = self.map(what=what)
        if fields is None:
            return None
        out: dict[builtins.str, builtins.str] = {}
        for key, cur in fields.items():
            if isinstance(cur.value, builtins.str):
                out[key] = cur.value
            else:
                cur.error("a string value")
        return out

    def cidr(self) -> Network | None:
        text = self.str(required=True)
        if text is None:
            return None
        try:
            return ipaddress.ip_network(text, strict=False)
        except ValueError:
            self.error("a CIDR such as 10.0.0.0/8 or 2001:db8::/32")
            return None

    def unknown_fields(
        self,
        allowed: Iterable[builtins.str],
        severity: Severity | None = None,
        code: builtins.str = "W002",
    ) -> builtins.bool:
        """Report fields that this reader does not know; True when there was any.

        With an `E…` code (or `severity=Severity.ERROR`) an unknown field is an error, as the
        API server's strict field validation would make it; with a `W…` code it is a warning
        that the field was ignored.
        """
        if not isinstance(self.value, dict):
            return False
        allowed = tuple(allowed)
        if severity is None:
            severity = Severity.ERROR if code.startswith("E") else Severity.WARNING
        found = False
        for key in self.value:
            if isinstance(key, builtins.str) and key not in allowed:
                found = True
                child = self[key]
                hint = did_you_mean(key, allowed)
                if severity is Severity.ERROR:
                    child.error(
                        f"one of the fields {', '.join(allowed)}",
                        code if code.startswith("E") else "E012",
                        got=f'the unknown field "{key}"',
                        hint=hint,
                    )
                else:
                    child.warn(
                        f"field {key!r} is not modelled by kubezt and was ignored", code, hint=hint
                    )
        return found
