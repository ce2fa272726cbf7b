"""Constants and the component catalogue the synthetic clusters are made from."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

Obj = dict[str, Any]

POD_CIDR_BLOCKS = 4096  # 10.0.0.0/12 cut into /24 node blocks: 10.<0-15>.<0-255>.0/24
NODE_SUBNET = "10.240.0.0/16"
PRIVATE_RANGES = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"]
METADATA_IP = "169.254.169.254/32"
PARTNER_NETS = ["198.51.100.0/24", "203.0.113.0/25"]
MAX_PODS_PER_NODE = 110
PODS_PER_NODE_TARGET = 90
HASH_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # k8s.io/apimachinery rand.SafeEncodeString
BASE_TIME = datetime(2024, 11, 4, 8, 0, 0, tzinfo=UTC)
K8S_VERSION = "v1.30.4"
NS_NAME_LABEL = "kubernetes.io/metadata.name"
PART_OF = "app.kubernetes.io/part-of"

DOMAINS = [
    "payments", "checkout", "catalog", "search", "inventory", "shipping", "orders", "accounts",
    "auth", "billing", "notify", "recommend", "reviews", "cart", "pricing", "fraud", "analytics",
    "reporting", "media", "messaging", "profile", "loyalty", "ads", "geo", "ledger", "identity",
    "support", "content", "booking", "warehouse", "returns", "tax", "promotions", "email", "sms",
    "feeds", "chat", "video", "maps", "risk", "kyc", "compliance", "audit", "partners", "webhooks",
]  # fmt: skip
FRONTEND_DOMAINS = {"checkout", "catalog", "search", "cart", "media", "content", "video", "maps"}
DATA_DOMAINS = {"analytics", "reporting", "ledger", "audit", "warehouse"}
PCI_DOMAINS = {"payments", "billing", "ledger", "fraud", "checkout"}
QUALIFIERS = [
    "core", "events", "sync", "export", "import", "admin", "public", "internal", "batch",
    "stream", "audit", "report", "edge", "query", "ingest", "rules", "state", "router",
]  # fmt: skip
ENVS = ["prod", "staging", "dev"]
HTTP_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]


@dataclass(frozen=True)
class PortSpec:
    name: str
    port: int
    protocol: str = "TCP"


@dataclass(frozen=True)
class Component:
    kind: str
    tier: str
    ports: tuple[PortSpec, ...]
    image: str
    stateful: bool = False


def ps(name: str, port: int, protocol: str = "TCP") -> PortSpec:
    return PortSpec(name, port, protocol)


COMPONENTS: dict[str, list[Component]] = {
    "web": [
        Component("web", "web", (ps("http", 8080), ps("metrics", 9102)), "nginx-unprivileged"),
        Component("frontend", "web", (ps("http", 3000), ps("metrics", 9102)), "node-frontend"),
        Component("bff", "web", (ps("http", 8000), ps("metrics", 9102)), "bff"),
    ],
    "api": [
        Component("api", "api", (ps("http", 8080), ps("grpc", 9090), ps("metrics", 9102)), "api"),
        Component("grpc", "api", (ps("grpc", 9090), ps("http-health", 8081), ps("metrics", 9102)),
                  "grpc-server"),
        Component("service", "api",
                  (ps("http", 8080), ps("metrics", 9102), ps("statsd", 8125, "UDP")), "service"),
        Component("gateway", "api", (ps("http", 8080), ps("https", 8443), ps("metrics", 9102)),
                  "envoy-gateway"),
    ],
    "worker": [
        Component("worker", "worker", (ps("metrics", 9102), ps("http-health", 8081)), "worker"),
        Component("consumer", "worker", (ps("metrics", 9102),), "kafka-consumer"),
        Component("scheduler", "worker", (ps("metrics", 9102), ps("http-health", 8081)), "cron"),
        Component("indexer", "worker", (ps("metrics", 9102), ps("statsd", 8125, "UDP")), "indexer"),
    ],
    "data": [
        Component("postgres", "data", (ps("tcp-postgres", 5432), ps("metrics", 9187)),
                  "postgres:16.4", stateful=True),
        Component("mysql", "data", (ps("tcp-mysql", 3306), ps("metrics", 9104)), "mysql:8.4.2",
                  stateful=True),
        Component("mongodb", "data", (ps("tcp-mongodb", 27017), ps("metrics", 9216)),
                  "mongo:7.0.14", stateful=True),
        Component("elasticsearch", "data", (ps("http", 9200), ps("transport", 9300)),
                  "elasticsearch:8.15.1", stateful=True),
    ],
    "cache": [
        Component("redis", "cache", (ps("tcp-redis", 6379), ps("metrics", 9121)), "redis:7.4.0"),
        Component("memcached", "cache",
                  (ps("tcp-memcache", 11211), ps("udp-memcache", 11211, "UDP"),
                   ps("metrics", 9150)), "memcached:1.6.29"),
    ],
    "media": [
        Component("turn", "media",
                  (ps("turn-udp", 3478, "UDP"), ps("turn-tcp", 3478), ps("metrics", 9102)),
                  "coturn:4.6.2"),
    ],
}  # fmt: skip
TIER_WEIGHTS = {"api": 34, "worker": 24, "web": 12, "data": 12, "cache": 10, "media": 2}
REPLICAS = {
    "web": [2, 2, 3, 3, 4, 6, 8, 10],
    "api": [1, 2, 2, 3, 3, 3, 4, 5, 6, 8, 10, 12, 15, 20],
    "worker": [1, 1, 2, 2, 3, 4, 6],
    "data": [1, 1, 3],
    "cache": [1, 1, 3, 3, 6],
    "media": [2, 4],
}
