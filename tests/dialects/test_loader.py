"""The manifest loader: paths, stdin, YAML streams, JSON, lists, Helm output, source lines, the
namespaces and the workloads it builds."""

from __future__ import annotations

import io
import json
import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

import kubezt
from kubezt.cli.main import app
from kubezt.errors import Location, Severity
from kubezt.ir.ports import Protocol
from kubezt.ir.topology import ContainerPort, Workload


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def namespace(name: str) -> str:
    return f"apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {name}\n"


def pod(name: str, ns: str = "shop", labels: str = "{app: web}") -> str:
    return textwrap.dedent(
        f"""\
        apiVersion: v1
        kind: Pod
        metadata:
          name: {name}
          namespace: {ns}
          labels: {labels}
        spec:
          containers: [{{name: c, image: nginx}}]
        """
    )


def workloads(result: kubezt.LoadResult) -> dict[str, Workload]:
    return {w.id: w for w in result.model.topology.workloads}


def where(w: Workload) -> tuple[str, int]:
    assert w.source is not None and w.source.location is not None
    return w.source.location.file, w.source.location.line


# -- paths ----------------------------------------------------------------------------------------


def test_directory_is_read_recursively_for_yaml_yml_and_json(tmp_path: Path) -> None:
    root = tmp_path / "manifests"
    write(root / "a.yaml", pod("a"))
    write(root / "sub" / "b.yml", pod("b"))
    write(
        root / "sub" / "deeper" / "c.json",
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": "c", "namespace": "shop"},
                "spec": {"containers": [{"name": "c", "image": "nginx"}]},
            }
        ),
    )
    write(root / "sub" / "D.YAML", pod("d"))
    write(root / "notes.txt", "kind: this is not read\n")
    write(root / "README.md", "# manifests\n")
    write(root / "chart" / "values.yaml.tpl", "{{ .Values.x }}\n")
    write(root / ".hidden" / "e.yaml", "this: [is not read\n")
    write(root / "sub" / ".f.yaml", "nor: [this\n")

    result = kubezt.load([str(root)])

    assert sorted(workloads(result)) == ["shop/a", "shop/b", "shop/c", "shop/d"]
    assert [Path(f).relative_to(root).as_posix() for f in result.files] == [
        "a.yaml",
        "sub/D.YAML",
        "sub/b.yml",
        "sub/deeper/c.json",
    ]


def test_files_and_directories_mix_in_argument_order(tmp_path: Path) -> None:
    single = write(tmp_path / "one.yaml", pod("one"))
    write(tmp_path / "dir" / "two.yaml", pod("two"))
    result = kubezt.load([str(tmp_path / "dir"), str(single)])
    assert result.files == (str(tmp_path / "dir" / "two.yaml"), str(single))
    assert sorted(workloads(result)) == ["shop/one", "shop/two"]


def test_a_file_given_by_name_is_read_whatever_its_suffix(tmp_path: Path) -> None:
    path = write(tmp_path / "rendered.txt", pod("web"))
    assert list(workloads(kubezt.load([str(path)]))) == ["shop/web"]


def test_an_empty_directory_is_a_warning_not_an_error(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    write(tmp_path / "empty" / "notes.txt", "nothing\n")
    result = kubezt.load([str(tmp_path / "empty")])
    assert [d.code for d in result.warnings] == ["W001"]
    assert result.model.topology.workloads == ()


def test_stdin_is_read_for_a_dash(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("# from a pipe\n" + pod("web")))
    result = kubezt.load(["-"])
    web = workloads(result)["shop/web"]
    assert where(web) == ("<stdin>", 2)


def test_stdin_may_be_json(monkeypatch: pytest.MonkeyPatch) -> None:
    obj = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}}
    monkeypatch.setattr("sys.stdin", io.StringIO(json.dumps(obj, indent=2)))
    result = kubezt.load(["-"])
    assert result.model.topology.namespaces["shop"].declared


def test_stdin_yaml_flow_mapping_is_still_yaml(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        "sys.stdin", io.StringIO("{apiVersion: v1, kind: Namespace, metadata: {name: shop}}\n")
    )
    result = kubezt.load(["-"])
    assert result.model.topology.namespaces["shop"].declared


def test_cli_reads_stdin() -> None:
    result = CliRunner().invoke(app, ["reach", "-o", "json", "-"], input=pod("web"))
    assert result.exit_code == 0, result.output
    assert "shop/web" in result.stdout


def test_stdin_and_files_together(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path / "a.yaml", pod("a"))
    monkeypatch.setattr("sys.stdin", io.StringIO(pod("b")))
    result = kubezt.load([str(path), "-"])
    assert sorted(workloads(result)) == ["shop/a", "shop/b"]
    assert where(workloads(result)["shop/b"]) == ("<stdin>", 1)


# -- documents and their lines -------------------------------------------------------------------


def test_multi_document_yaml_remembers_each_object_line(tmp_path: Path) -> None:
    path = write(
        tmp_path / "all.yaml",
        """
        # three objects
        apiVersion: v1
        kind: Namespace
        metadata:
          name: shop
        ---
        apiVersion: v1
        kind: Service
        metadata: {name: web, namespace: shop}
        spec:
          selector: {app: web}
          ports: [{port: 80, targetPort: 8080}]
        ---

        # the third document starts after a blank line and a comment
        apiVersion: v1
        kind: Pod
        metadata:
          name: web
          namespace: shop
          labels: {app: web}
        spec:
          containers: [{name: c, image: nginx}]
        """,
    )
    topology = kubezt.load([str(path)]).model.topology
    ns = topology.namespaces["shop"]
    assert ns.source is not None and ns.source.location == Location(str(path), 2, 1)
    service = topology.services[0]
    assert service.source is not None and service.source.location == Location(str(path), 7, 1)
    assert where(topology.workloads[0]) == (str(path), 16)


def test_policy_and_rule_sources_point_into_the_file(tmp_path: Path) -> None:
    path = write(
        tmp_path / "policy.yaml",
        pod("web")
        + """---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: allow
  namespace: shop
spec:
  podSelector: {}
  ingress:
    - from:
        - podSelector: {matchLabels: {app: web}}
      ports: [{port: 80}]
""",
    )
    policy = kubezt.load([str(path)]).model.policies.policies[0]
    assert policy.source is not None and policy.source.location == Location(str(path), 10, 1)
    origin = policy.ingress[0].origin
    assert origin is not None and origin.location is not None
    assert origin.location.line == 18
    assert origin.path == "spec.ingress[0].from[0]"


def test_helm_output_with_source_comments_and_empty_documents(tmp_path: Path) -> None:
    path = write(
        tmp_path / "helm.yaml",
        """
        ---
        # Source: shop/templates/namespace.yaml
        apiVersion: v1
        kind: Namespace
        metadata:
          name: shop
        ---
        # Source: shop/templates/disabled.yaml
        ---
        ---
        # Source: shop/templates/web.yaml
        apiVersion: apps/v1
        kind: Deployment
        metadata:
          name: web
          namespace: shop
          labels:
            helm.sh/chart: shop-1.0.0
        spec:
          replicas: 2
          template:
            metadata:
              labels: {app: web}
            spec:
              containers:
                - name: web
                  image: "nginx:1.27"
                  ports:
                    - name: http
                      containerPort: 8080
        ---
        # Source: shop/templates/empty.yaml

        ...
        """,
    )
    result = kubezt.load([str(path)])
    web = workloads(result)["shop/web"]
    assert where(web) == (str(path), 12)
    assert web.replicas == 2
    assert web.ports == (ContainerPort(8080, Protocol.TCP, "http"),)
    assert result.model.topology.namespaces["shop"].declared
    assert result.diagnostics == ()


def test_a_file_of_only_comments_is_empty(tmp_path: Path) -> None:
    path = write(tmp_path / "nothing.yaml", "# nothing rendered\n---\n---\n")
    result = kubezt.load([str(path)])
    assert result.model.topology.workloads == ()
    assert result.diagnostics == ()


def test_yaml_list_kind_and_typed_lists(tmp_path: Path) -> None:
    path = write(
        tmp_path / "lists.yaml",
        """
        apiVersion: v1
        kind: List
        items:
          - apiVersion: v1
            kind: Namespace
            metadata: {name: shop}
          - apiVersion: v1
            kind: Pod
            metadata: {name: a, namespace: shop}
            spec: {containers: [{name: c, image: nginx}]}
        ---
        apiVersion: v1
        kind: PodList
        metadata: {resourceVersion: "1"}
        items:
        - apiVersion: v1
          kind: Pod
          metadata:
            name: b
            namespace: shop
          spec: {containers: [{name: c, image: nginx}]}
        ---
        apiVersion: v1
        kind: List
        items: []
        """,
    )
    result = kubezt.load([str(path)])
    found = workloads(result)
    assert where(found["shop/a"]) == (str(path), 7)
    assert where(found["shop/b"]) == (str(path), 16)
    assert result.model.topology.namespaces["shop"].declared
    assert result.skipped == ()


def test_json_object_and_json_list(tmp_path: Path) -> None:
    single = write(
        tmp_path / "ns.json",
        json.dumps({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}}),
    )
    listing = {
        "apiVersion": "v1",
        "kind": "List",
        "items": [
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": name, "namespace": "shop", "labels": {"app": name}},
                "spec": {"containers": [{"name": "c", "image": "nginx"}]},
            }
            for name in ("a", "b")
        ],
    }
    many = write(tmp_path / "pods.json", json.dumps(listing, indent=2) + "\n")
    result = kubezt.load([str(single), str(many)])
    found = workloads(result)
    lines = many.read_text(encoding="utf-8").splitlines()
    starts = [i + 1 for i, text in enumerate(lines) if text == "    {"]
    assert [where(found["shop/a"]), where(found["shop/b"])] == [(str(many), n) for n in starts]
    assert result.model.topology.namespaces["shop"].declared


def test_tab_indented_json(tmp_path: Path) -> None:
    obj = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}}
    path = write(tmp_path / "ns.json", json.dumps(obj, indent="\t"))
    assert kubezt.load([str(path)]).model.topology.namespaces["shop"].declared


def test_a_stream_of_json_values_as_jq_prints_them(tmp_path: Path) -> None:
    objs = [
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name, "namespace": "shop"},
            "spec": {
                "containers": [{"name": "c", "image": "nginx", "ports": [{"containerPort": 80}]}]
            },
        }
        for name in ("a", "b", "c")
    ]
    text = "\n".join(json.dumps(o, indent=2) for o in objs) + "\n"
    path = write(tmp_path / "pods.json", text)
    found = workloads(kubezt.load([str(path)]))
    starts = [i + 1 for i, line in enumerate(text.splitlines()) if line == "{"]
    assert [where(found[f"shop/{n}"]) for n in "abc"] == [(str(path), n) for n in starts]


def test_json_errors_point_into_the_right_value_of_a_stream(tmp_path: Path) -> None:
    good = json.dumps({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}})
    bad = '{"apiVersion": "v1", "kind": "Namespace",\n "metadata": {"name": "Bad_Name"}}'
    path = write(tmp_path / "two.json", good + "\n" + bad + "\n")
    with pytest.raises(kubezt.InputError) as info:
        kubezt.load([str(path)])
    (diag,) = info.value.diagnostics
    assert (diag.code, diag.path) == ("E007", "metadata.name")
    assert diag.location == Location(str(path), 3, 15)


def test_byte_order_mark_is_ignored(tmp_path: Path) -> None:
    path = tmp_path / "bom.yaml"
    path.write_bytes(b"\xef\xbb\xbf" + namespace("shop").encode())
    assert kubezt.load([str(path)]).model.topology.namespaces["shop"].declared


def test_windows_line_endings_keep_lines(tmp_path: Path) -> None:
    path = tmp_path / "crlf.yaml"
    path.write_bytes(
        ("# c\n" + namespace("a") + "---\n" + pod("web")).replace("\n", "\r\n").encode()
    )
    assert where(workloads(kubezt.load([str(path)]))["shop/web"]) == (str(path), 7)


def test_anchors_aliases_and_merge_keys_are_not_duplicate_keys(tmp_path: Path) -> None:
    path = write(
        tmp_path / "anchors.yaml",
        """
        apiVersion: v1
        kind: Pod
        metadata:
          name: web
          namespace: shop
          labels:
            app: web
            tier: front
        spec:
          containers:
            - &container
              name: a
              image: nginx
              ports: [{containerPort: 80}]
            - <<: *container
              name: b
              ports: [{containerPort: 81}]
        ---
        apiVersion: v1
        kind: Service
        metadata: {name: web, namespace: shop, labels: &labels {app: web, tier: front}}
        spec:
          selector: *labels
          ports: [{port: 80}]
        """,
    )
    result = kubezt.load([str(path)])
    web = workloads(result)["shop/web"]
    assert [p.port for p in web.ports] == [80, 81]
    assert result.model.topology.services[0].selector == {"app": "web", "tier": "front"}


def test_duplicate_key_in_a_list_item_names_the_item(tmp_path: Path) -> None:
    path = write(
        tmp_path / "list.yaml",
        """
        apiVersion: v1
        kind: List
        items:
          - apiVersion: v1
            kind: Namespace
            metadata:
              name: a
          - apiVersion: v1
            kind: Namespace
            metadata:
              name: b
              name: c
        """,
    )
    with pytest.raises(kubezt.InputError) as info:
        kubezt.load([str(path)])
    (diag,) = info.value.diagnostics
    assert (diag.code, diag.obj, diag.path) == ("E023", "Namespace c", "metadata.name")
    assert diag.location == Location(str(path), 12, 7)


# -- unknown kinds --------------------------------------------------------------------------------

UNKNOWN = """
apiVersion: v1
kind: LimitRange
metadata: {name: settings, namespace: shop}
spec: {limits: []}
---
apiVersion: example.com/v1
kind: Widget
metadata: {name: w}
spec: {anything: [goes]}
---
"""


def test_unknown_kinds_are_skipped_and_remembered(tmp_path: Path) -> None:
    path = write(tmp_path / "mixed.yaml", UNKNOWN + pod("web"))
    result = kubezt.load([str(path)])
    assert list(workloads(result)) == ["shop/web"]
    assert result.skipped == (
        f"{path}:1:1: v1 LimitRange shop/settings",
        f"{path}:6:1: example.com/v1 Widget w",
    )
    assert result.diagnostics == ()


def test_a_known_kind_of_another_api_group_is_unknown(tmp_path: Path) -> None:
    path = write(
        tmp_path / "other.yaml",
        "apiVersion: example.com/v1\nkind: Pod\nmetadata: {name: web}\nspec: 3\n",
    )
    result = kubezt.load([str(path)])
    assert result.model.topology.workloads == ()
    assert len(result.skipped) == 1


def test_skipped_kinds_are_listed_only_with_verbose(tmp_path: Path) -> None:
    path = write(tmp_path / "mixed.yaml", UNKNOWN + pod("web"))
    quiet = CliRunner().invoke(app, ["reach", str(path)])
    loud = CliRunner().invoke(app, ["reach", "--verbose", str(path)])
    assert quiet.exit_code == loud.exit_code == 0
    assert "LimitRange" not in quiet.stderr
    assert "skipped" not in quiet.stderr
    assert f"{path}:1:1: v1 LimitRange shop/settings" in loud.stderr
    assert f"{path}:6:1: example.com/v1 Widget w" in loud.stderr


# -- namespaces -----------------------------------------------------------------------------------


def test_referenced_namespace_exists_with_its_name_label(tmp_path: Path) -> None:
    path = write(
        tmp_path / "x.yaml",
        pod("web", ns="undeclared") + "---\n" + namespace("declared") + "  labels: {team: a}\n",
    )
    namespaces = kubezt.load([str(path)]).model.topology.namespaces
    implicit = namespaces["undeclared"]
    assert not implicit.declared
    assert dict(implicit.labels) == {"kubernetes.io/metadata.name": "undeclared"}
    explicit = namespaces["declared"]
    assert explicit.declared
    assert dict(explicit.labels) == {"team": "a", "kubernetes.io/metadata.name": "declared"}


def test_objects_without_namespace_are_in_default(tmp_path: Path) -> None:
    path = write(
        tmp_path / "x.yaml",
        "apiVersion: v1\nkind: Pod\nmetadata: {name: web, namespace: ''}\n"
        "spec: {containers: [{name: c, image: nginx}]}\n---\n"
        "apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: api}\n",
    )
    topology = kubezt.load([str(path)]).model.topology
    assert list(workloads(kubezt.load([str(path)]))) == ["default/web"]
    assert ("default", "api") in topology.service_accounts
    assert not topology.namespaces["default"].declared


def test_generate_name_objects_never_collide(tmp_path: Path) -> None:
    policy = (
        "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n"
        "metadata: {generateName: deny-}\nspec: {podSelector: {}}\n"
    )
    path = write(tmp_path / "x.yaml", policy + "---\n" + policy)
    assert len(kubezt.load([str(path)]).model.policies.policies) == 2


# -- workloads ------------------------------------------------------------------------------------

CONTROLLERS = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop}
spec:
  replicas: 3
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}, annotations: {sidecar.istio.io/inject: "true"}}
    spec:
      serviceAccountName: web-sa
      containers:
        - name: web
          image: nginx
          ports:
            - {name: http, containerPort: 8080}
            - {name: metrics, containerPort: 9090, protocol: TCP}
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db, namespace: shop}
spec:
  replicas: 0
  template:
    metadata: {labels: {app: db}}
    spec:
      initContainers:
        - {name: init, image: busybox, ports: [{containerPort: 5000, name: init}]}
      containers:
        - {name: db, image: postgres, ports: [{containerPort: 5432, name: pg}]}
---
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: agent, namespace: kube-system}
spec:
  template:
    metadata: {labels: {app: agent}}
    spec:
      hostNetwork: true
      serviceAccount: agent
      containers:
        - {name: agent, image: agent, ports: [{containerPort: 53, protocol: UDP, name: dns}]}
---
apiVersion: apps/v1
kind: ReplicaSet
metadata: {name: cache, namespace: shop}
spec:
  replicas: 2
  template:
    metadata: {labels: {app: cache}}
    spec:
      containers: [{name: c, image: redis, ports: [{containerPort: 6379}]}]
---
apiVersion: batch/v1
kind: Job
metadata: {name: migrate, namespace: shop}
spec:
  template:
    metadata: {labels: {app: migrate}}
    spec:
      restartPolicy: Never
      containers: [{name: m, image: migrate}]
---
apiVersion: batch/v1
kind: CronJob
metadata: {name: backup, namespace: shop}
spec:
  schedule: "0 3 * * *"
  jobTemplate:
    spec:
      template:
        metadata: {labels: {app: backup}}
        spec:
          containers: [{name: b, image: backup, ports: [{containerPort: 7000, protocol: SCTP}]}]
---
apiVersion: v1
kind: ReplicationController
metadata: {name: legacy, namespace: shop}
spec:
  replicas: 4
  template:
    metadata: {labels: {app: legacy}}
    spec:
      containers: [{name: l, image: legacy}]
---
apiVersion: v1
kind: Pod
metadata: {name: client, namespace: shop, labels: {app: client}}
spec:
  containers: [{name: c, image: curl}]
status:
  podIP: 10.0.0.7
  podIPs:
    - ip: 10.0.0.7
    - ip: fd00::7
"""


def test_workloads_from_every_controller(tmp_path: Path) -> None:
    path = write(tmp_path / "controllers.yaml", CONTROLLERS)
    found = workloads(kubezt.load([str(path)]))
    summary = {
        wid: (w.kind, w.replicas, w.service_account, w.host_network, dict(w.labels))
        for wid, w in found.items()
    }
    assert summary == {
        "shop/web": ("Deployment", 3, "web-sa", False, {"app": "web"}),
        "shop/db": ("StatefulSet", 0, "default", False, {"app": "db"}),
        "kube-system/agent": ("DaemonSet", 1, "agent", True, {"app": "agent"}),
        "shop/cache": ("ReplicaSet", 2, "default", False, {"app": "cache"}),
        "shop/migrate": ("Job", 1, "default", False, {"app": "migrate"}),
        "shop/backup": ("CronJob", 1, "default", False, {"app": "backup"}),
        "shop/legacy": ("ReplicationController", 4, "default", False, {"app": "legacy"}),
        "shop/client": ("Pod", 1, "default", False, {"app": "client"}),
    }
    assert found["shop/web"].ports == (
        ContainerPort(8080, Protocol.TCP, "http"),
        ContainerPort(9090, Protocol.TCP, "metrics"),
    )
    assert found["shop/web"].named_port("metrics") == ContainerPort(9090, Protocol.TCP, "metrics")
    assert dict(found["shop/web"].annotations) == {"sidecar.istio.io/inject": "true"}
    assert found["shop/db"].ports == (
        ContainerPort(5000, Protocol.TCP, "init"),
        ContainerPort(5432, Protocol.TCP, "pg"),
    )
    assert found["kube-system/agent"].ports == (ContainerPort(53, Protocol.UDP, "dns"),)
    assert found["shop/backup"].ports == (ContainerPort(7000, Protocol.SCTP, ""),)
    assert found["shop/client"].ips == ("10.0.0.7", "fd00::7")
    assert found["shop/client"].ip == "10.0.0.7"
    assert found["shop/web"].ips == ()
    lines = {wid: where(w)[1] for wid, w in found.items()}
    assert lines == {
        "shop/web": 1,
        "shop/db": 18,
        "kube-system/agent": 31,
        "shop/cache": 43,
        "shop/migrate": 53,
        "shop/backup": 63,
        "shop/legacy": 75,
        "shop/client": 85,
    }


def test_a_pod_without_status_has_no_ip(tmp_path: Path) -> None:
    path = write(tmp_path / "p.yaml", pod("web"))
    assert workloads(kubezt.load([str(path)]))["shop/web"].ips == ()


def test_warnings_do_not_stop_loading(tmp_path: Path) -> None:
    path = write(
        tmp_path / "dr.yaml",
        "apiVersion: networking.istio.io/v1\nkind: DestinationRule\n"
        "metadata: {name: r, namespace: a}\n"
        "spec:\n  host: web\n  subsets:\n  - name: v1\n    labels: {version: v1}\n",
    )
    result = kubezt.load([str(path)])
    (warning,) = result.warnings
    assert warning.severity is Severity.WARNING
    assert (warning.code, warning.path) == ("W040", "spec.subsets")
    assert warning.location == Location(str(path), 6, 3)
    assert len(result.model.mesh.destination_rules) == 1
