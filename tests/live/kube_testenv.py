"""A real etcd + kube-apiserver on loopback for the live tests.

`find_binaries()` locates the two binaries (`KUBEZT_APISERVER` / `KUBEZT_ETCD`, else the cache
that `scripts/testenv.sh` fills); `TestCluster.start()` runs them on random free loopback ports
with a throwaway CA, serving certificate and service-account signing key, and a static token
file with two users:

* `admin` (group `system:masters`): everything;
* `restricted` (no groups): only what a test grants it with RBAC (used to prove `kubezt rbac`).

`stop()` always ends both processes and removes the temporary directory. Nothing here talks to
anything but 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import secrets
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
CRD_DIR = Path(__file__).resolve().parent / "crds"
CRD_FILES = (
    "calico-crd.projectcalico.org-v1.yaml",
    "calico-projectcalico.org-v3.yaml",
    "istio.yaml",
    "gateway-api-standard.yaml",
    "policy-api-clusternetworkpolicies.yaml",
    "tigera-operator.yaml",
    "spire-controller-manager.yaml",
)
ENABLE_HINT = (
    "live tests need a kube-apiserver and etcd: install Go (then `bash scripts/testenv.sh` "
    "builds them once) or set KUBEZT_APISERVER and KUBEZT_ETCD to the binaries"
)


class NoBinaries(RuntimeError):
    """The binaries are neither configured nor cached."""


def find_binaries() -> tuple[Path, Path]:
    """(kube-apiserver, etcd) from the environment, else from scripts/testenv.sh's cache."""
    api, etcd = os.environ.get("KUBEZT_APISERVER"), os.environ.get("KUBEZT_ETCD")
    if not (api and etcd):
        done = subprocess.run(
            ["bash", str(ROOT / "scripts" / "testenv.sh"), "--check"],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise NoBinaries(ENABLE_HINT)
        found = dict(line.split("=", 1) for line in done.stdout.splitlines() if "=" in line)
        api = api or found.get("KUBEZT_APISERVER")
        etcd = etcd or found.get("KUBEZT_ETCD")
    for path in (api, etcd):
        if not path or not os.access(path, os.X_OK):
            raise NoBinaries(f"{path!r} is not an executable; {ENABLE_HINT}")
    assert api and etcd
    return Path(api), Path(etcd)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _write_pki(directory: Path) -> None:
    """A CA, a serving certificate for 127.0.0.1/localhost, and a service-account key pair."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    from cryptography.x509.oid import NameOID

    def pem_key(key: Any) -> bytes:
        return bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )

    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kubezt-test-ca")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kube-apiserver")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.DNSName("localhost"),
                    x509.DNSName("kubernetes.default.svc"),
                    x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                ]
            ),
            critical=False,
        )
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    sa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    (directory / "ca.crt").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    (directory / "serving.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (directory / "serving.key").write_bytes(pem_key(key))
    (directory / "sa.key").write_bytes(pem_key(sa_key))
    (directory / "sa.pub").write_bytes(
        sa_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )


@dataclass
class TestCluster:
    """One etcd + kube-apiserver pair; see the module docstring."""

    __test__ = False  # not a test class, despite the name

    apiserver: Path
    etcd: Path
    workdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="kubezt-live-")))
    server: str = ""
    admin_token: str = field(default_factory=lambda: secrets.token_hex(16))
    restricted_token: str = field(default_factory=lambda: secrets.token_hex(16))
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    startup_seconds: float = 0.0
    crd_seconds: float = 0.0
    _ssl: ssl.SSLContext | None = None
    _collections: list[str] = field(default_factory=list)

    @property
    def ca_file(self) -> Path:
        return self.workdir / "ca.crt"

    @property
    def kubeconfig(self) -> Path:
        return self.workdir / "kubeconfig"

    # -- lifecycle -------------------------------------------------------------------------

    def start(self, timeout: float = 120.0) -> None:
        began = time.monotonic()
        _write_pki(self.workdir)
        (self.workdir / "tokens.csv").write_text(
            f'{self.admin_token},admin,uid-admin,"system:masters"\n'
            f"{self.restricted_token},restricted,uid-restricted\n"
        )
        etcd_client, etcd_peer, api_port = free_port(), free_port(), free_port()
        self._spawn(
            "etcd",
            [
                str(self.etcd),
                "--name=kubezt-test",
                f"--data-dir={self.workdir / 'etcd'}",
                f"--listen-client-urls=http://127.0.0.1:{etcd_client}",
                f"--advertise-client-urls=http://127.0.0.1:{etcd_client}",
                f"--listen-peer-urls=http://127.0.0.1:{etcd_peer}",
                f"--initial-advertise-peer-urls=http://127.0.0.1:{etcd_peer}",
                f"--initial-cluster=kubezt-test=http://127.0.0.1:{etcd_peer}",
                "--unsafe-no-fsync",
                "--quota-backend-bytes=4294967296",
                "--log-level=warn",
            ],
        )
        self._wait(f"http://127.0.0.1:{etcd_client}/health", began + timeout, tls=False)
        w = self.workdir
        self._spawn(
            "kube-apiserver",
            [
                str(self.apiserver),
                f"--etcd-servers=http://127.0.0.1:{etcd_client}",
                "--bind-address=127.0.0.1",
                "--advertise-address=127.0.0.1",
                f"--secure-port={api_port}",
                f"--cert-dir={w / 'certs'}",
                f"--tls-cert-file={w / 'serving.crt'}",
                f"--tls-private-key-file={w / 'serving.key'}",
                f"--token-auth-file={w / 'tokens.csv'}",
                "--authorization-mode=RBAC",
                "--service-account-issuer=https://kubernetes.default.svc",
                f"--service-account-key-file={w / 'sa.pub'}",
                f"--service-account-signing-key-file={w / 'sa.key'}",
                "--service-cluster-ip-range=10.96.0.0/16",
                # No controller manager runs, so nothing creates the `default` service
                # accounts the ServiceAccount admission plugin insists on.
                "--disable-admission-plugins=ServiceAccount",
                "--max-requests-inflight=1000",
                "--max-mutating-requests-inflight=500",
                "--v=0",
            ],
        )
        self.server = f"https://127.0.0.1:{api_port}"
        self._wait(f"{self.server}/readyz", began + timeout, tls=True)
        self._write_kubeconfig()
        self.startup_seconds = time.monotonic() - began

    def _spawn(self, name: str, argv: list[str]) -> None:
        log = open(self.workdir / f"{name}.log", "wb")  # noqa: SIM115 - closed with the process
        self.procs.append(
            subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        )
        log.close()

    def _wait(self, url: str, deadline: float, *, tls: bool) -> None:
        context = ssl.create_default_context(cafile=str(self.ca_file)) if tls else None
        last = ""
        while time.monotonic() < deadline:
            for proc in self.procs:
                if proc.poll() is not None:
                    raise RuntimeError(
                        f"{proc.args[0]} exited with {proc.returncode}: {self.log_tail()}"
                    )
            request = urllib.request.Request(url)
            if tls:
                request.add_header("Authorization", f"Bearer {self.admin_token}")
            try:
                with urllib.request.urlopen(request, timeout=5, context=context) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, OSError) as exc:
                last = str(exc)
            time.sleep(0.2)
        raise RuntimeError(f"{url} not ready in time ({last}): {self.log_tail()}")

    def log_tail(self, lines: int = 30) -> str:
        out = []
        for name in ("etcd", "kube-apiserver"):
            path = self.workdir / f"{name}.log"
            if path.exists():
                text = path.read_text(errors="replace").splitlines()[-lines:]
                out.append(f"--- {name}.log\n" + "\n".join(text))
        return "\n".join(out)

    def stop(self) -> None:
        for proc in reversed(self.procs):
            if proc.poll() is None:
                proc.terminate()
        for proc in reversed(self.procs):
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.procs.clear()
        shutil.rmtree(self.workdir, ignore_errors=True)

    # -- access ----------------------------------------------------------------------------

    def _write_kubeconfig(self) -> None:
        users = {"admin": self.admin_token, "restricted": self.restricted_token}
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "kubezt-test",
                    "cluster": {"server": self.server, "certificate-authority": str(self.ca_file)},
                }
            ],
            "users": [{"name": n, "user": {"token": t}} for n, t in users.items()],
            "contexts": [
                {"name": f"kubezt-{n}", "context": {"cluster": "kubezt-test", "user": n}}
                for n in users
            ],
            "current-context": "kubezt-admin",
        }
        self.kubeconfig.write_text(yaml.safe_dump(config))

    def write_kubeconfig(self, path: Path, token: str, context: str = "kubezt-other") -> Path:
        """A kubeconfig with one context whose user authenticates with `token`."""
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "kubezt-test",
                    "cluster": {"server": self.server, "certificate-authority": str(self.ca_file)},
                }
            ],
            "users": [{"name": "u", "user": {"token": token}}],
            "contexts": [{"name": context, "context": {"cluster": "kubezt-test", "user": "u"}}],
            "current-context": context,
        }
        path.write_text(yaml.safe_dump(config))
        return path

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        token: str | None = None,
        content_type: str = "application/json",
        query: str = "",
    ) -> tuple[int, Any]:
        """A raw HTTP call as admin (or `token`): (status, decoded JSON body)."""
        data = None
        if body is not None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
        url = f"{self.server}{path}" + (f"?{query}" if query else "")
        request = urllib.request.Request(url, data=data, method=method)
        request.add_header("Authorization", f"Bearer {token or self.admin_token}")
        request.add_header("Content-Type", content_type)
        request.add_header("Accept", "application/json")
        if self._ssl is None:
            self._ssl = ssl.create_default_context(cafile=str(self.ca_file))
        try:
            with urllib.request.urlopen(request, timeout=60, context=self._ssl) as response:
                raw = response.read()
                return response.status, json.loads(raw) if raw else None
        except urllib.error.HTTPError as exc:
            raw = exc.read()
            try:
                return exc.code, json.loads(raw)
            except ValueError:
                return exc.code, raw.decode(errors="replace")

    def apply(self, obj: dict[str, Any], manager: str = "kubezt-tests") -> dict[str, Any]:
        """Server-side apply one object as admin; raises on any error status."""
        path = resource_path(self, obj)
        status, body = self.request(
            "PATCH",
            path,
            json.dumps(obj).encode(),
            content_type="application/apply-patch+yaml",
            query=f"fieldManager={manager}&force=true",
        )
        if status >= 300:
            raise RuntimeError(f"apply {obj.get('kind')} {path}: {status} {body}")
        return dict(body)

    def apply_documents(self, docs: Iterable[dict[str, Any]]) -> None:
        for doc in docs:
            if doc:
                self.apply(doc)

    def install_crds(self, files: Iterable[Path] | None = None) -> None:
        """Install the vendored CRDs and wait until every one is established and served."""
        crds = [
            doc
            for path in files or [CRD_DIR / name for name in CRD_FILES]
            for doc in yaml.load_all(path.read_text(), Loader=yaml.CSafeLoader)
            if doc and doc.get("kind") == "CustomResourceDefinition"
        ]
        names = [doc["metadata"]["name"] for doc in crds]

        def create(doc: dict[str, Any]) -> None:
            # A plain create: server-side apply of a large schema is several times slower.
            path = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
            status, body = self.request("POST", path, doc)
            if status == 409:
                self.apply(doc)
            elif status >= 300:
                raise RuntimeError(f"create CRD {doc['metadata']['name']}: {status} {body}")

        with ThreadPoolExecutor(4) as pool:
            list(pool.map(create, crds))
        deadline = time.monotonic() + 60
        for name in names:
            while True:
                _, crd = self.request(
                    "GET", f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}"
                )
                conditions = {
                    c["type"]: c["status"]
                    for c in (crd.get("status") or {}).get("conditions") or []
                }
                if conditions.get("Established") == "True":
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"CRD {name} not established: {crd.get('status')}")
                time.sleep(0.1)
        self._resources.clear()
        self._collections = []

    # -- discovery and namespaces -----------------------------------------------------------

    _resources: dict[tuple[str, str], tuple[str, bool]] = field(default_factory=dict)

    def resource_for(self, api_version: str, kind: str) -> tuple[str, bool]:
        """(plural, namespaced) of a kind, from the server's discovery."""
        key = (api_version, kind)
        if key not in self._resources:
            base = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
            status, body = self.request("GET", base)
            if status != 200:
                raise RuntimeError(f"discovery {base}: {status} {body}")
            for res in body["resources"]:
                if "/" not in res["name"]:
                    self._resources[(api_version, res["kind"])] = (
                        res["name"],
                        res["namespaced"],
                    )
        return self._resources[key]

    def namespaced_resources(self) -> list[str]:
        """Collection paths (with a `{ns}` placeholder) of every namespaced, deletable
        resource (cached until CRDs change)."""
        if not self._collections:
            self._collections = list(self._namespaced_resources())
        return self._collections

    def _namespaced_resources(self) -> Iterator[str]:
        paths = ["/api/v1"]
        _, groups = self.request("GET", "/apis")
        paths += [f"/apis/{g['preferredVersion']['groupVersion']}" for g in groups["groups"]]
        for base in paths:
            status, body = self.request("GET", base)
            if status != 200:
                continue
            for res in body["resources"]:
                if (
                    res["namespaced"]
                    and "/" not in res["name"]
                    and "deletecollection" in res.get("verbs", [])
                ):
                    yield f"{base}/namespaces/{{ns}}/{res['name']}"

    def delete(self, obj: dict[str, Any]) -> None:
        """Delete one object (gone already is fine); a namespace with everything in it."""
        if obj.get("apiVersion") == "v1" and obj.get("kind") == "Namespace":
            self.delete_namespace(obj["metadata"]["name"])
            return
        # Background propagation: the default for some kinds (orphan) adds a finalizer that
        # only the garbage collector of kube-controller-manager (not run here) removes.
        status, body = self.request(
            "DELETE", resource_path(self, obj), query="propagationPolicy=Background"
        )
        if status >= 300 and status != 404:
            raise RuntimeError(f"delete {obj.get('kind')} {obj['metadata']}: {status} {body}")

    def exists(self, obj: dict[str, Any]) -> bool:
        return self.request("GET", resource_path(self, obj))[0] == 200

    def create_namespace(self, name: str, labels: dict[str, str] | None = None) -> None:
        self.apply(
            {
                "apiVersion": "v1",
                "kind": "Namespace",
                "metadata": {"name": name, "labels": labels or {}},
            }
        )

    def delete_namespace(self, name: str) -> None:
        """Delete a namespace and everything in it now: no controller manager runs here, so
        this does the namespace controller's work (delete every namespaced resource, then
        finalize)."""
        with ThreadPoolExecutor(8) as pool:
            list(
                pool.map(
                    lambda t: self.request("DELETE", t.format(ns=name)),
                    self.namespaced_resources(),
                )
            )
        self.request("DELETE", f"/api/v1/namespaces/{name}")
        status, ns = self.request("GET", f"/api/v1/namespaces/{name}")
        if status == 200:
            ns["spec"]["finalizers"] = []
            self.request("PUT", f"/api/v1/namespaces/{name}/finalize", ns)
        deadline = time.monotonic() + 30
        while self.request("GET", f"/api/v1/namespaces/{name}")[0] == 200:
            if time.monotonic() > deadline:
                raise RuntimeError(f"namespace {name} not deleted")
            time.sleep(0.1)


def resource_path(cluster: TestCluster, obj: dict[str, Any], *, collection: bool = False) -> str:
    """The REST path of an object (or its collection)."""
    api_version, kind = obj["apiVersion"], obj["kind"]
    plural, namespaced = cluster.resource_for(api_version, kind)
    base = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
    meta = obj.get("metadata", {})
    ns = f"/namespaces/{meta.get('namespace') or 'default'}" if namespaced else ""
    tail = "" if collection else f"/{meta['name']}"
    return f"{base}{ns}/{plural}{tail}"


def manifests(*paths: Path) -> list[dict[str, Any]]:
    """The objects of YAML files or directories (sorted file names), in order."""
    docs: list[dict[str, Any]] = []
    for path in paths:
        files = sorted(path.rglob("*.yaml")) if path.is_dir() else [path]
        for file in files:
            docs += [d for d in yaml.safe_load_all(file.read_text()) if d]
    return docs


@contextlib.contextmanager
def running_cluster() -> Iterator[TestCluster]:
    api, etcd = find_binaries()
    cluster = TestCluster(apiserver=api, etcd=etcd)
    try:
        cluster.start()
        began = time.monotonic()
        cluster.install_crds()
        cluster.crd_seconds = time.monotonic() - began
        yield cluster
    finally:
        cluster.stop()
