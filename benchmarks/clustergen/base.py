"""Generator state and the helpers every part uses (ids, timestamps, metadata)."""

from __future__ import annotations

import argparse
import random
import uuid
from collections import defaultdict
from datetime import datetime, timedelta

from .catalog import BASE_TIME, HASH_ALPHABET, Obj
from .model import Namespace, Node, fmt_time, valid_label_value


class GeneratorBase:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.rng = random.Random(args.seed)
        self.pods_total: int = args.pods
        self.policies_total: int = args.policies
        self.calico = args.calico_share > 0
        self.istio_only: str | None = getattr(args, "istio_only", None)
        self.istio: bool = args.istio or self.istio_only is not None
        self.authz_total: int | None = getattr(args, "authz", None)
        self.lean: bool = args.lean
        self.resource_version = 4_181_000
        self.namespaces: list[Namespace] = []
        self.ns_by_name: dict[str, Namespace] = {}
        self.nodes: list[Node] = []
        self.docs: dict[str, list[Obj]] = defaultdict(list)  # file stem -> objects
        self.cluster_docs: list[Obj] = []
        self.used_service_ips: set[int] = set()
        self.policy_names: dict[str, set[str]] = defaultdict(set)
        self.pod_names: dict[str, set[str]] = defaultdict(set)
        self.counts: dict[str, int] = defaultdict(int)
        self.calico_np_count = 0
        self.k8s_np_count = 0
        self.owner_uids: dict[tuple[str, str, str], str] = {}

    # ---- small helpers ---------------------------------------------------------------------

    def rand_hash(self, n: int) -> str:
        return "".join(self.rng.choice(HASH_ALPHABET) for _ in range(n))

    def uid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def instant(self, max_days: float = 120.0, min_days: float = 0.0) -> datetime:
        seconds = self.rng.uniform(min_days * 86400, max_days * 86400)
        return BASE_TIME - timedelta(seconds=int(seconds))

    def timestamp(self, max_days: float = 120.0, min_days: float = 0.0) -> str:
        return fmt_time(self.instant(max_days, min_days))

    def owner_uid(self, kind: str, namespace: str, name: str) -> str:
        key = (kind, namespace, name)
        if key not in self.owner_uids:
            self.owner_uids[key] = self.uid()
        return self.owner_uids[key]

    def rv(self) -> str:
        self.resource_version += self.rng.randint(1, 40)
        return str(self.resource_version)

    def meta(
        self,
        name: str,
        namespace: str | None = None,
        labels: dict[str, str] | None = None,
        annotations: dict[str, str] | None = None,
        generation: bool = False,
        created: str | None = None,
    ) -> Obj:
        m: Obj = {
            "name": name,
            "uid": self.uid(),
            "resourceVersion": self.rv(),
            "creationTimestamp": created or self.timestamp(),
        }
        if namespace is not None:
            m["namespace"] = namespace
        if labels:
            for value in labels.values():
                valid_label_value(value)
            m["labels"] = dict(labels)
        if annotations:
            m["annotations"] = dict(annotations)
        if generation:
            m["generation"] = self.rng.choice([1, 1, 1, 2, 3])
        return m

    def emit(self, stem: str, obj: Obj) -> None:
        self.docs[stem].append(obj)
        self.counts[f"{obj['apiVersion']}/{obj['kind']}"] += 1

    def service_ip(self) -> str:
        # 10.96.0.0/12; .1 (kubernetes) and .10 (kube-dns) are reserved up front.
        while True:
            n = self.rng.randrange(256, 1 << 20)
            if n not in self.used_service_ips:
                self.used_service_ips.add(n)
                return f"10.{96 + (n >> 16)}.{(n >> 8) & 255}.{n & 255}"
