"""Flow-log readers: one module per format, each naming the upstream format it follows.

| module | format |
|---|---|
| `calico.py` | Calico open-source flow logs (Goldmane `Flow`, Whisker `/flows`), JSON lines |
| `envoy.py` | Istio/Envoy access logs of sidecars and waypoints, Istio's text format or JSON |
| `hubble.py` | Cilium Hubble, `hubble observe -o jsonpb` / `-o json` lines |
| `ztunnel.py` | Istio ambient ztunnel access logs, its text lines and JSON lines |

`read_flows(paths)` streams `FlowRecord`s from plain or gzip files (or stdin), one line at a
time (constant memory), detecting each file's format from its first line unless one is given.
A line that is not a record of its format is counted in `FlowStats` with its line number
(`E140`); the first `MAX_BAD` are kept as diagnostics. A file that cannot be read is `E141`.
"""

from __future__ import annotations

import gzip
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

from kubezt.dialects.flows._fields import BadLine
from kubezt.dialects.flows._lines import JSONDecodeError, Progress, loads, numbered_lines
from kubezt.dialects.flows.calico import parse_calico
from kubezt.dialects.flows.envoy import parse_envoy_fields, parse_envoy_text
from kubezt.dialects.flows.hubble import parse_hubble
from kubezt.dialects.flows.ztunnel import TEXT_START, parse_ztunnel_fields, parse_ztunnel_text
from kubezt.errors import Diagnostic, Location, Severity
from kubezt.ir.flows import FlowFormat, FlowRecord

MAX_BAD = 20


@dataclass(slots=True)
class FlowStats:
    """What reading the flow logs found: lines, records, skipped and bad lines."""

    files: int = 0
    lines: int = 0
    records: int = 0
    skipped: int = 0
    """Lines that are valid but not a connection (replies, L7 responses, ICMP, blank)."""
    bad: int = 0
    diagnostics: list[Diagnostic] = field(default_factory=list)
    formats: dict[str, str] = field(default_factory=dict)
    """File → the format it was read as."""

    def add_bad(self, file: str, line: int, message: str, code: str = "E140") -> None:
        self.bad += 1
        if len(self.diagnostics) < MAX_BAD:
            self.diagnostics.append(Diagnostic(Severity.ERROR, code, message, Location(file, line)))


def detect_format(line: str) -> FlowFormat | None:
    """The format one line is written in, or None."""
    stripped = line.lstrip()
    if stripped.startswith("[") and '"' in stripped:
        return FlowFormat.ENVOY
    if TEXT_START.match(stripped):
        return FlowFormat.ZTUNNEL
    if not stripped.startswith("{"):
        return None
    try:
        doc = loads(stripped)
    except JSONDecodeError:
        return None
    if not isinstance(doc, dict):
        return None
    if "flow" in doc and isinstance(doc["flow"], dict) and "verdict" in doc["flow"]:
        return FlowFormat.HUBBLE
    if "verdict" in doc or "node_status" in doc or "lost_events" in doc:
        return FlowFormat.HUBBLE
    if "upstream_cluster" in doc or "downstream_remote_address" in doc:
        return FlowFormat.ENVOY
    if "scope" in doc and "level" in doc and "message" in doc:
        return FlowFormat.ZTUNNEL
    if any(k in doc for k in ("Key", "key", "dest_name", "source_name", "dest_port", "flow")):
        return FlowFormat.CALICO
    return None


Parser = Callable[[str, str, int], "FlowRecord | None"]


def _json(parse: Callable[..., FlowRecord | None]) -> Parser:
    def parser(line: str, file: str, number: int) -> FlowRecord | None:
        try:
            doc = loads(line)
        except JSONDecodeError:
            raise BadLine(f"not JSON: {line[:40]!r}") from None
        return parse(doc, file, number)

    return parser


def _envoy(line: str, file: str, number: int) -> FlowRecord | None:
    if line.lstrip().startswith("{"):
        return _json(parse_envoy_fields)(line, file, number)
    return parse_envoy_text(line, file, number)


def _ztunnel(line: str, file: str, number: int) -> FlowRecord | None:
    if line.lstrip().startswith("{"):
        return _json(parse_ztunnel_fields)(line, file, number)
    return parse_ztunnel_text(line, file, number)


PARSERS: dict[FlowFormat, Parser] = {
    FlowFormat.CALICO: _json(parse_calico),
    FlowFormat.ENVOY: _envoy,
    FlowFormat.HUBBLE: _json(parse_hubble),
    FlowFormat.ZTUNNEL: _ztunnel,
}


def read_flows(
    paths: Sequence[str],
    stats: FlowStats,
    *,
    flow_format: FlowFormat | None = None,
    progress: Callable[[str], Progress] | None = None,
) -> Iterator[FlowRecord]:
    """Every flow record of every file, in file and line order. `progress(path)` returns the
    callback that file's reader reports its byte position to."""
    for path in paths:
        stats.files += 1
        parser: Parser | None = PARSERS[flow_format] if flow_format else None
        try:
            for number, line in numbered_lines(path, progress(path) if progress else None):
                stats.lines += 1
                if not line.strip():
                    stats.skipped += 1
                    continue
                if parser is None:
                    detected = detect_format(line)
                    if detected is None:
                        stats.add_bad(
                            path,
                            number,
                            "not a flow record of a known format (Calico, Envoy, Hubble or "
                            "ztunnel); "
                            "use --format",
                        )
                        continue
                    stats.formats[path] = detected.value
                    parser = PARSERS[detected]
                try:
                    record = parser(line, path, number)
                except BadLine as exc:
                    stats.add_bad(path, number, str(exc))
                    continue
                if record is None:
                    stats.skipped += 1
                    continue
                stats.records += 1
                yield record
        except (OSError, EOFError, gzip.BadGzipFile) as exc:
            message = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
            stats.add_bad(path, 0, f"cannot read flow log: {message}", code="E141")
        if flow_format:
            stats.formats[path] = flow_format.value
