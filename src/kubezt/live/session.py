"""A connection to one API server through the official `kubernetes` client: kubeconfig or
in-cluster configuration, raw JSON requests (never the client's model objects, which are slow
for large lists), pagination, and every failure turned into a `ClusterError` that says what to
do about it."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from kubezt.errors import ClusterError, ClusterForbiddenError, ClusterUnavailableError

PAGE_SIZE = 500
CONNECT_TIMEOUT = 10.0
READ_TIMEOUT = 120.0

try:  # orjson parses large lists several times faster; the standard library is the fallback
    import orjson

    def _loads(raw: bytes) -> Any:
        return orjson.loads(raw)

except ImportError:  # pragma: no cover - depends on the environment

    def _loads(raw: bytes) -> Any:
        return json.loads(raw)


class NotFound(ClusterError):
    """The object or collection does not exist (404)."""


class Conflict(ClusterError):
    """The server rejected a write as conflicting (409): another field manager owns a field."""


class Rejected(ClusterError):
    """The server refused an object as invalid (400/422), or by an admission webhook."""


@dataclass(frozen=True, slots=True)
class Target:
    """Which cluster to talk to: a kubeconfig (None: $KUBECONFIG or ~/.kube/config) and a
    context (None: the current one). With neither a kubeconfig nor a context and no kubeconfig
    file, the in-cluster service-account configuration is used."""

    kubeconfig: str | None = None
    context: str | None = None


@dataclass
class Session:
    """An authenticated connection. `context` names it in origins (`cluster:CONTEXT`)."""

    api: Any  # kubernetes.client.ApiClient
    context: str
    server: str
    _requests: int = field(default=0, repr=False)

    # -- requests -------------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        query: dict[str, str] | None = None,
        body: Any = None,
        content_type: str = "application/json",
        *,
        verb: str = "",
        resource: str = "",
    ) -> Any:
        """One request; the decoded JSON answer. `verb`/`resource` name the request in errors."""
        import urllib3

        url = self.server + path + (f"?{urlencode(query)}" if query else "")
        headers = {"Accept": "application/json", "Content-Type": content_type}
        self.api.update_params_for_auth(headers, [], ["BearerToken"], path, method, body)
        payload = None
        if body is not None:
            payload = body if isinstance(body, (bytes, str)) else json.dumps(body)
        self._requests += 1
        try:
            response = self.api.rest_client.pool_manager.request(
                method,
                url,
                body=payload,
                headers=headers,
                preload_content=True,
                timeout=urllib3.Timeout(connect=CONNECT_TIMEOUT, read=READ_TIMEOUT),
                retries=False,
            )
        except urllib3.exceptions.HTTPError as exc:
            raise ClusterUnavailableError(
                f"cannot reach the API server {self.server} (context {self.context}): "
                f"{_reason(exc)}"
            ) from None
        status = response.status
        data = response.data
        if 200 <= status < 300:
            return _loads(data) if data else None
        raise self._error(status, data, method, path, verb or method.lower(), resource)

    def _error(
        self, status: int, data: bytes, method: str, path: str, verb: str, resource: str
    ) -> ClusterError:
        try:
            body = _loads(data)
            message = body.get("message", "") if isinstance(body, dict) else str(body)
        except ValueError:
            message = data.decode(errors="replace").strip()
        where = f"{self.server} (context {self.context})"
        if status == 401:
            return ClusterForbiddenError(
                f"the API server {where} rejected the credentials (401 Unauthorized): they are "
                "missing, invalid or expired; log in again or choose another --context"
            )
        if status == 403:
            what = f"{verb} {resource}" if resource else f"{method} {path}"
            return ClusterForbiddenError(
                f"forbidden (403) to {what} on {where}: {message}; nothing was evaluated "
                "(kubezt never evaluates with a policy kind missing). `kubezt rbac` prints the "
                "ClusterRole kubezt needs"
            )
        if status == 404:
            return NotFound(f"{method} {path}: not found (404) on {where}: {message}")
        if status == 409:
            return Conflict(f"{message} (409 Conflict)")
        if status in (400, 422):
            return Rejected(f"{message} ({status})")
        if status in (429, 500, 502, 503, 504):
            return ClusterUnavailableError(
                f"the API server {where} answered {status} to {method} {path}: {message}"
            )
        return ClusterError(
            f"the API server {where} answered {status} to {method} {path}: {message}"
        )

    def get(self, path: str, *, resource: str = "") -> Any:
        return self.request("GET", path, verb="get", resource=resource)

    def list(self, path: str, *, resource: str = "", page_size: int = PAGE_SIZE) -> Iterator[Any]:
        """Every item of a collection, page by page (`limit` / `continue`)."""
        token = ""
        while True:
            query = {"limit": str(page_size)}
            if token:
                query["continue"] = token
            page = self.request("GET", path, query, verb="list", resource=resource)
            yield from page.get("items") or ()
            token = (page.get("metadata") or {}).get("continue") or ""
            if not token:
                return

    @property
    def request_count(self) -> int:
        return self._requests


def _reason(exc: Exception) -> str:
    reason = getattr(exc, "reason", None)
    text = str(reason or exc)
    if "Connection refused" in text:
        return "connection refused"
    if "timed out" in text.lower():
        return "timed out"
    if "CERTIFICATE_VERIFY_FAILED" in text:
        return "its certificate is not trusted (check the cluster's certificate-authority)"
    return text


def connect(target: Target) -> Session:
    """Open a session for `target`; a `ClusterError` when no configuration fits."""
    try:
        from kubernetes import client, config
        from kubernetes.config.config_exception import ConfigException
    except ImportError:
        raise ClusterError(
            "reading a cluster needs the official Kubernetes client: pip install 'kubezt[live]'"
        ) from None
    configuration = client.Configuration()
    kubeconfig = target.kubeconfig or os.environ.get("KUBECONFIG") or ""
    default_file = os.path.expanduser("~/.kube/config")
    use_file = bool(target.kubeconfig or target.context or kubeconfig) or os.path.exists(
        default_file
    )
    try:
        if use_file or "KUBERNETES_SERVICE_HOST" not in os.environ:
            files = kubeconfig or default_file
            first = files.split(os.pathsep)[0]
            if not os.path.exists(first):
                raise ClusterError(
                    f"no kubeconfig at {first} and not running in a cluster: pass --kubeconfig "
                    "FILE or set KUBECONFIG"
                )
            contexts, current = config.list_kube_config_contexts(config_file=first)  # type: ignore[no-untyped-call]
            names = [c["name"] for c in contexts]
            name = target.context or (current or {}).get("name")
            if not name:
                raise ClusterError(f"{first} has no current context: pass --context NAME")
            if name not in names:
                raise ClusterError(
                    f"no context {name!r} in {first} (contexts: {', '.join(names) or 'none'})"
                )
            config.load_kube_config(  # type: ignore[no-untyped-call]
                config_file=first, context=name, client_configuration=configuration
            )
        else:
            config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
            name = "in-cluster"
    except ConfigException as exc:
        raise ClusterError(f"cannot use the cluster configuration: {exc}") from None
    api = client.ApiClient(configuration)
    return Session(api=api, context=name, server=configuration.host.rstrip("/"))
