"""Namespaces, ServiceAccounts, Pods, controllers' pod templates and Services → topology IR."""

from __future__ import annotations

import ipaddress
import re
from typing import Any

from kubezt.dialects._labels import is_label_key, is_label_value, is_port_name, read_labels
from kubezt.dialects._reader import Cursor
from kubezt.dialects.context import ReadContext
from kubezt.ir.ports import Protocol
from kubezt.ir.provenance import Source
from kubezt.ir.topology import (
    ContainerPort,
    Labels,
    Namespace,
    Service,
    ServiceAccount,
    ServicePort,
    Workload,
)

PORT_PROTOCOLS = {"TCP": Protocol.TCP, "UDP": Protocol.UDP, "SCTP": Protocol.SCTP}


def protocol_hint(text: str) -> str:
    """A hint for a protocol written in the wrong case ("tcp")."""
    return f"did you mean '{text.upper()}'?" if text.upper() in PORT_PROTOCOLS else ""


# kind -> path of the pod template inside the object
TEMPLATE_PATHS: dict[str, tuple[str, ...]] = {
    "Deployment": ("spec", "template"),
    "StatefulSet": ("spec", "template"),
    "DaemonSet": ("spec", "template"),
    "ReplicaSet": ("spec", "template"),
    "ReplicationController": ("spec", "template"),
    "Job": ("spec", "template"),
    "CronJob": ("spec", "jobTemplate", "spec", "template"),
}


def read_namespace(root: Cursor, meta: Cursor, src: Source, rc: ReadContext) -> None:
    labels = read_labels(meta["labels"])
    # The control plane always sets this label to the namespace's name (GA since 1.22).
    labels["kubernetes.io/metadata.name"] = src.name
    rc.namespaces.append(Namespace(src.name, Labels(labels), True, src))


def read_service_account(root: Cursor, meta: Cursor, src: Source, rc: ReadContext) -> None:
    assert src.namespace is not None
    rc.service_accounts.append(
        ServiceAccount(src.namespace, src.name, Labels(read_labels(meta["labels"])), True, src)
    )


def read_pod(root: Cursor, meta: Cursor, src: Source, rc: ReadContext) -> None:
    assert src.namespace is not None
    workload = _plain_pod(root.value, src)
    if workload is not None:
        rc.workloads.append(workload)
        return
    ips: list[str] = []
    status = root["status"]
    for ip_cur in [status["podIP"]] + [c["ip"] for c in status["podIPs"].list() or []]:
        ip = ip_cur.str()
        if ip is None:
            continue
        try:
            ipaddress.ip_address(ip)
        except ValueError:
            ip_cur.error("an IP address", "E014")
            continue
        if ip not in ips:
            ips.append(ip)
    workload = _workload_from_template(root, src, "Pod", rc, replicas=1, ips=tuple(ips))
    if workload is not None:
        rc.workloads.append(workload)


_IPV4 = re.compile(
    r"(?:(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\.){3}"
    r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
)
"""A dotted-quad IPv4 address as `ipaddress.ip_address` accepts it (no leading zeros)."""
_LABELS: dict[tuple[tuple[str, str], ...], Labels] = {}
"""Label sets read and checked (`_plain_labels(..., True)`)."""
_ANNOTATIONS: dict[tuple[tuple[str, str], ...], Labels] = {}
_LABEL_KEYS: set[str] = set()
_LABEL_VALUES: set[str] = set()
_PORTS: dict[tuple[Any, Any, Any], ContainerPort] = {}


def _plain_labels(value: Any, check: bool) -> Labels | None:
    """`Labels` of a mapping of strings whose every key and value is valid (as a label when
    `check`), shared between the many pods written alike; None for anything else."""
    if value is None:
        return EMPTY
    if type(value) is not dict:
        return None
    items = tuple(value.items())
    cache = _LABELS if check else _ANNOTATIONS
    try:
        found = cache.get(items)
    except TypeError:  # a value that is not a string (a list, a mapping)
        return None
    if found is not None:
        return found
    for k, v in items:
        if type(k) is not str or type(v) is not str:
            return None
        if check and not (
            (k in _LABEL_KEYS or is_label_key(k)) and (v in _LABEL_VALUES or is_label_value(v))
        ):
            return None
        if check:
            _LABEL_KEYS.add(k)
            _LABEL_VALUES.add(v)
    if len(cache) > 1 << 16:  # (a long watch meets ever new label sets: stay bounded)
        cache.clear()
        _LABEL_KEYS.clear()
        _LABEL_VALUES.clear()
        _PORTS.clear()
    labels = cache[items] = Labels(value)
    return labels


EMPTY = Labels()


def _plain_pod(data: Any, src: Source) -> Workload | None:
    """The workload of a Pod written the way every well-formed Pod is (each field of the type
    its reader wants, every label, port and address valid): what `_workload_from_template`
    reads from it, without cursors and with the pieces many pods share (labels, ports)
    built once. None for anything else, which the cursor readers then read and report."""
    status = data.get("status")
    ips: list[str] = []
    if status is not None:
        if type(status) is not dict:
            return None
        ip = status.get("podIP")
        if ip is not None:
            if type(ip) is not str or not _IPV4.fullmatch(ip):
                return None
            ips.append(ip)
        listed = status.get("podIPs")
        if listed is not None:
            if type(listed) is not list:
                return None
            for item in listed:
                if type(item) is not dict:
                    return None
                ip = item.get("ip")
                if ip is None:
                    continue
                if type(ip) is not str or not _IPV4.fullmatch(ip):
                    return None
                if ip not in ips:
                    ips.append(ip)
    meta = data["metadata"]
    spec = data.get("spec")
    if type(spec) is not dict or any(type(k) is not str for k in spec):
        return None
    labels = _plain_labels(meta.get("labels"), True)
    annotations = _plain_labels(meta.get("annotations"), False)
    if labels is None or annotations is None:
        return None
    sa_name, sa = spec.get("serviceAccountName"), spec.get("serviceAccount")
    host_network = spec.get("hostNetwork")
    if (
        (sa_name is not None and type(sa_name) is not str)
        or (sa is not None and type(sa) is not str)
        or (host_network is not None and type(host_network) is not bool)
    ):
        return None
    ports: list[ContainerPort] = []
    names: set[str] = set()
    for group in ("initContainers", "containers"):
        containers = spec.get(group)
        if containers is None:
            if group == "containers":
                return None
            continue
        if type(containers) is not list:
            return None
        for container in containers:
            if type(container) is not dict:
                return None
            listed_ports = container.get("ports")
            if listed_ports is None:
                continue
            if type(listed_ports) is not list:
                return None
            for port in listed_ports:
                if type(port) is not dict or any(type(k) is not str for k in port):
                    return None
                key = (port.get("containerPort"), port.get("protocol"), port.get("name"))
                if type(key[0]) is not int:  # (True and 1.0 would find the port 1)
                    return None
                try:
                    cp = _PORTS.get(key)
                except TypeError:  # a protocol or name that is not a string
                    return None
                if cp is None:
                    cp = _plain_port(port, key)
                    if cp is None:
                        return None
                if cp.name:
                    if cp.name in names:
                        return None
                    names.add(cp.name)
                if cp not in ports:
                    ports.append(cp)
    return Workload(
        namespace=src.namespace or "default",
        name=src.name,
        kind="Pod",
        labels=labels,
        service_account=sa_name or sa or "default",
        ports=tuple(sorted(ports)),
        ips=tuple(ips),
        host_network=bool(host_network),
        annotations=annotations,
        replicas=1,
        source=src,
    )


def _plain_port(port: dict[Any, Any], key: tuple[Any, Any, Any]) -> ContainerPort | None:
    number, proto_text, name = key
    if type(number) is not int or not 1 <= number <= 65535:
        return None
    if proto_text is not None and type(proto_text) is not str:
        return None
    protocol = PORT_PROTOCOLS.get(proto_text or "TCP")
    if protocol is None or (name is not None and type(name) is not str):
        return None
    if name and not is_port_name(name):
        return None
    cp = _PORTS[key] = ContainerPort(number, protocol, name or "")
    return cp


def read_controller(root: Cursor, meta: Cursor, src: Source, rc: ReadContext) -> None:
    path = TEMPLATE_PATHS[src.kind]
    template = root
    for part in path:
        template = template[part]
    if template.map(required=True, what="a pod template") is None:
        return
    replicas = 1
    if src.kind in ("Deployment", "StatefulSet", "ReplicaSet", "ReplicationController"):
        replicas_value = root["spec"]["replicas"].int(lo=0, what="a replica count ≥ 0")
        replicas = 1 if replicas_value is None else replicas_value
    workload = _workload_from_template(template, src, src.kind, rc, replicas=replicas, ips=())
    if workload is not None:
        rc.workloads.append(workload)


def _workload_from_template(
    template: Cursor, src: Source, kind: str, rc: ReadContext, replicas: int, ips: tuple[str, ...]
) -> Workload | None:
    meta = template["metadata"]
    spec = template["spec"]
    labels = read_labels(meta["labels"])
    annotations = meta["annotations"].str_map() or {}
    if spec.map(required=True, what="a pod spec") is None:
        return None
    sa = spec["serviceAccountName"].str() or spec["serviceAccount"].str() or "default"
    ports: list[ContainerPort] = []
    seen_names: dict[str, Cursor] = {}
    for group in ("initContainers", "containers"):
        containers = spec[group].list(required=(group == "containers"), what="a list of containers")
        for container in containers or []:
            for port in container["ports"].list() or []:
                cp = _read_container_port(port)
                if cp is None:
                    continue
                if cp.name:
                    if cp.name in seen_names:
                        first = seen_names[cp.name]["name"].location.line
                        port["name"].error(
                            "a port name unique within the pod",
                            "E015",
                            got=f'"{cp.name}" again (first at line {first})',
                        )
                        continue
                    seen_names[cp.name] = port
                if cp not in ports:
                    ports.append(cp)
    return Workload(
        namespace=src.namespace or "default",
        name=src.name,
        kind=kind,
        labels=Labels(labels),
        service_account=sa,
        ports=tuple(sorted(ports)),
        ips=ips,
        host_network=spec["hostNetwork"].bool(),
        annotations=Labels(annotations),
        replicas=replicas,
        source=src,
    )


def _read_container_port(port: Cursor) -> ContainerPort | None:
    if port.map(what="a container port") is None:
        return None
    number = port["containerPort"].int(required=True, lo=1, hi=65535, what="a port number 1-65535")
    proto_text = port["protocol"].str() or "TCP"
    protocol = PORT_PROTOCOLS.get(proto_text)
    if protocol is None:
        port["protocol"].error("one of TCP, UDP, SCTP", "E016", hint=protocol_hint(proto_text))
        return None
    name = port["name"].str() or ""
    if name and not is_port_name(name):
        port["name"].error(
            "a port name (IANA_SVC_NAME: at most 15 lower-case letters, digits "
            "and inner dashes, with at least one letter)",
            "E017",
        )
        return None
    if number is None:
        return None
    return ContainerPort(number, protocol, name)


def read_service(root: Cursor, meta: Cursor, src: Source, rc: ReadContext) -> None:
    assert src.namespace is not None
    spec = root["spec"]
    selector_map = spec["selector"].str_map() if spec["selector"].present else None
    ports: list[ServicePort] = []
    for port in spec["ports"].list() or []:
        if port.map(what="a service port") is None:
            continue
        number = port["port"].int(required=True, lo=1, hi=65535, what="a port number 1-65535")
        target_cur = port["targetPort"]
        target: int | str | None
        if not target_cur.present:
            target = number
        elif isinstance(target_cur.value, int) and not isinstance(target_cur.value, bool):
            target = target_cur.int(lo=1, hi=65535, what="a port number 1-65535 or a port name")
        elif isinstance(target_cur.value, str) and target_cur.value.isdigit():
            target = int(target_cur.value)
        elif isinstance(target_cur.value, str) and is_port_name(target_cur.value):
            target = target_cur.value
        else:
            target_cur.error("a port number 1-65535 or a port name", "E012")
            target = None
        proto_text = port["protocol"].str() or "TCP"
        protocol = PORT_PROTOCOLS.get(proto_text)
        if protocol is None:
            port["protocol"].error("one of TCP, UDP, SCTP", "E016", hint=protocol_hint(proto_text))
            continue
        if number is None or target is None:
            continue
        ports.append(
            ServicePort(
                number, target, protocol, port["name"].str() or "", port["appProtocol"].str() or ""
            )
        )
    rc.services.append(
        Service(
            src.namespace,
            src.name,
            Labels(selector_map) if selector_map is not None else None,
            tuple(ports),
            Labels(read_labels(meta["labels"])),
            src,
            _cluster_ip(spec["clusterIP"]),
        )
    )


def _cluster_ip(cur: Cursor) -> str | None:
    """`spec.clusterIP`: an address, "None" (headless), or absent / empty (not yet allocated:
    unknown)."""
    text = cur.str()
    if not text:
        return None
    if text != "None":
        try:
            ipaddress.ip_address(text)
        except ValueError:
            cur.error('an IP address or "None"', "E012")
            return None
    return text
