"""Fixtures for tests against a real kube-apiserver (every test module under tests/live/).

* `kube_cluster` (session): a `kube_testenv.TestCluster` — etcd + kube-apiserver on random
  loopback ports with the vendored Calico (`crd.projectcalico.org/v1` and
  `projectcalico.org/v3`), Istio and Gateway API CRDs installed. Useful attributes:
  `server`, `ca_file`, `kubeconfig` (contexts `kubezt-admin`, the current one, and
  `kubezt-restricted`), `admin_token`, `restricted_token`; methods `request()` (raw REST as
  admin or a token), `apply()` / `apply_documents()` (server-side apply as admin),
  `create_namespace()`, `delete_namespace()`, `write_kubeconfig(path, token)`.
  Stopped at the end of the session, also when tests fail.
* `kube_namespace` (function): a fresh namespace name (created, and deleted with everything in
  it afterwards).
* `kube_apply` (function): `kube_apply(*paths_or_objects)` server-side applies YAML files,
  directories or object dicts as admin and returns the objects; everything it created
  (namespaces with their contents) is deleted afterwards, so the cluster is as before.
* `kube_env` (function): `os.environ` plus `KUBECONFIG` pointing at the cluster, for running
  the CLI in a subprocess.

The binaries come from `KUBEZT_APISERVER` / `KUBEZT_ETCD` or the cache `scripts/testenv.sh`
fills (`scripts/test.sh` runs it when Go is installed). Without them the live tests are
skipped with one line saying how to enable them, except under `CI=true`, where that is an
error. The `kubernetes` client (the `live` extra) is required the same way.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kube_testenv import NoBinaries, TestCluster, find_binaries, manifests, running_cluster

_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
_unavailable: list[str] = []


def _availability() -> str | None:
    """Why the live tests cannot run here, or None."""
    try:
        import kubernetes  # noqa: F401
    except ImportError:
        return "live tests need the `live` extra: pip install -e '.[live]'"
    try:
        find_binaries()
    except NoBinaries as exc:
        return str(exc)
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    live = [item for item in items if "tests/live/" in item.nodeid.replace("\\", "/")]
    if not live:
        return
    reason = _availability()
    if reason is None:
        return
    if _CI:
        raise pytest.UsageError(f"CI=true and {reason}")
    _unavailable.append(reason)
    for item in live:
        item.add_marker(pytest.mark.skip(reason=reason))


_started: list[TestCluster] = []


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    for reason in _unavailable:
        terminalreporter.write_line(f"skipped the live tests: {reason}")
    for cluster in _started:
        terminalreporter.write_line(
            f"live tests: etcd + kube-apiserver ready in {cluster.startup_seconds:.1f} s, "
            f"CRDs installed in {cluster.crd_seconds:.1f} s"
        )


@pytest.fixture(scope="session")
def kube_cluster() -> Iterator[TestCluster]:
    with running_cluster() as cluster:
        _started.append(cluster)
        yield cluster


_counter = itertools.count(1)


@pytest.fixture
def kube_namespace(kube_cluster: TestCluster, request: pytest.FixtureRequest) -> Iterator[str]:
    base = "".join(c if c.isalnum() else "-" for c in request.node.name.lower())[:40].strip("-")
    name = f"t{next(_counter)}-{base}"
    kube_cluster.create_namespace(name)
    try:
        yield name
    finally:
        kube_cluster.delete_namespace(name)


@pytest.fixture
def kube_apply(kube_cluster: TestCluster) -> Iterator[Callable[..., list[dict[str, Any]]]]:
    created: list[dict[str, Any]] = []

    def apply(*items: Path | str | dict[str, Any]) -> list[dict[str, Any]]:
        objects: list[dict[str, Any]] = []
        for item in items:
            objects += [item] if isinstance(item, dict) else manifests(Path(item))
        for obj in objects:
            if not kube_cluster.exists(obj):
                created.append(obj)
            kube_cluster.apply(obj)
        return objects

    try:
        yield apply
    finally:
        for obj in reversed(created):
            kube_cluster.delete(obj)


@pytest.fixture
def kube_env(kube_cluster: TestCluster) -> dict[str, str]:
    env = dict(os.environ)
    env["KUBECONFIG"] = str(kube_cluster.kubeconfig)
    return env


@pytest.fixture
def server_service(kube_cluster: TestCluster, tmp_path: Path) -> Path:
    """The API server's own Service (`default/kubernetes`) as a file: it names the server's
    port, a cut of the port space, so files compared with the cluster must hold it too."""
    import json

    from kubezt.live.read import plan, read_objects
    from kubezt.live.session import Target, connect

    session = connect(Target(kubeconfig=str(kube_cluster.kubeconfig)))
    own = [
        o
        for o in read_objects(session, plan(session))
        if o.get("kind") == "Service"
        and o["metadata"].get("namespace") == "default"
        and o["metadata"].get("name") == "kubernetes"
    ]
    assert len(own) == 1
    path = tmp_path / "kubernetes-service.json"
    path.write_text(json.dumps(own[0]), "utf-8")
    return path
