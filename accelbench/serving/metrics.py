"""The service's Prometheus metrics, in a registry of its own (two servers in one process never mix counts).

Latency buckets are fine from 1 ms to 500 ms, where a CPU classifier's p50 and p99 lie. Queue depth and
in-flight items are read when scraped (``set_function``), so the request path pays nothing for them.
"""

from __future__ import annotations

import logging
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

logger = logging.getLogger(__name__)

LATENCY_BUCKETS = (0.0005, 0.001, 0.0015, 0.002, 0.003, 0.004, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.04,
                   0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.0, 5.0)  # fmt: skip
BATCH_BUCKETS = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 128, 256)
CONTENT_TYPE = CONTENT_TYPE_LATEST


class ServiceMetrics:
    """``accelbench_*`` series of the serving contract; ``request(status, seconds)`` per answered /predict."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "accelbench_requests", "POST /predict requests by HTTP status", ["status"], registry=r
        )
        self.errors = Counter(
            "accelbench_errors", "refused or failed /predict requests by cause", ["cause"], registry=r
        )
        self.latency = Histogram(
            "accelbench_request_latency_seconds",
            "POST /predict latency inside the server, from request to response body",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.batch_size = Histogram(
            "accelbench_batch_size", "items per batch sent to a replica", buckets=BATCH_BUCKETS, registry=r
        )
        self.batch_seconds = Histogram(
            "accelbench_batch_seconds",
            "a batch's round trip to its replica",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.items = Counter("accelbench_items", "items predicted", registry=r)
        self.queue_depth = Gauge("accelbench_queue_depth", "items waiting for a batch", registry=r)
        self.inflight = Gauge(
            "accelbench_inflight", "items in a replica's current batches", ["replica"], registry=r
        )
        self.replica_up = Gauge(
            "accelbench_replica_up", "1 while the replica's process serves", ["replica"], registry=r
        )
        self._by_status: dict[int, Any] = {}

    def watch(self, batcher: Any) -> None:
        """Gauges read from the batcher and its replicas at scrape time."""
        self.queue_depth.set_function(lambda: batcher.depth)
        for rep in batcher.pool.replicas:
            self.inflight.labels(replica=str(rep.index)).set_function(lambda rep=rep: rep.outstanding_items)
            self.replica_up.labels(replica=str(rep.index)).set_function(lambda rep=rep: float(rep.alive))

    def request(self, status: int, seconds: float, cause: str | None = None) -> None:
        child = self._by_status.get(status)
        if child is None:
            child = self._by_status[status] = self.requests.labels(status=str(status))
        child.inc()
        self.latency.observe(seconds)
        if cause:
            self.errors.labels(cause=cause).inc()

    def batch(self, replica: Any, size: int, seconds: float) -> None:
        self.batch_size.observe(size)
        self.batch_seconds.observe(seconds)
        self.items.inc(size)

    def render(self) -> bytes:
        return generate_latest(self.registry)
