"""The serving process's state: its settings (checked when built), its replicas and batcher, and its lifecycle.

``status`` moves starting -> ok -> draining (or failed); the endpoints in ``server.py`` read it, the runner's
signal handling and a failed start write it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from ..exceptions import AccelbenchError, ConfigError
from .batching import Batcher, BatchPolicy
from .http_limits import Limits
from .metrics import ServiceMetrics
from .replicas import LOAD_BALANCING, ReplicaDied, ReplicaPool
from .variant import VariantSpec

logger = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
DEFAULT_REPLICAS = 1
DEFAULT_DRAIN_TIMEOUT_S = 30.0
DEFAULT_STARTUP_TIMEOUT_S = 600.0


@dataclass
class ServeSettings:
    """Everything ``accelbench serve`` takes; checked when built, so a bad value fails before any process starts."""

    spec: VariantSpec | None  # None with noop
    replicas: int = DEFAULT_REPLICAS
    policy: BatchPolicy = field(default_factory=BatchPolicy)
    limits: Limits = field(default_factory=Limits)
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    noop: bool = False
    in_thread: bool = False  # one predictor in a thread of the front process instead of a replica process
    drain_timeout_s: float = DEFAULT_DRAIN_TIMEOUT_S
    startup_timeout_s: float = DEFAULT_STARTUP_TIMEOUT_S
    delay_ms: float = 0.0  # added to every batch in the replicas: a slower model, for tests and rehearsals

    def __post_init__(self) -> None:
        if self.replicas < 1:
            raise ConfigError(
                f"--replicas must be at least 1, got {self.replicas}", "pass --replicas 1 or more"
            )
        if self.in_thread and self.replicas != 1:
            raise ConfigError(
                "--in-thread serves exactly one predictor", "drop --in-thread or pass --replicas 1"
            )
        if not 0 <= self.port <= 65535:
            raise ConfigError(f"--port must be 0..65535, got {self.port}", "pass --port 0 for a free port")
        if self.spec is None and not self.noop:
            raise ConfigError("nothing to serve", "pass --task, --model and --method, or --noop")

    @property
    def label(self) -> str:
        return "noop" if self.noop else self.spec.label

    @property
    def threads(self) -> int | None:
        return None if self.spec is None else self.spec.threads


class ServiceState:
    """What the endpoints read: status, replicas, batcher, metrics, and the error that ends a failed start."""

    def __init__(self, settings: ServeSettings):
        self.settings = settings
        self.status = "ok" if settings.noop else "starting"
        self.metrics = ServiceMetrics()
        self.pool: ReplicaPool | None = None
        self.batcher: Batcher | None = None
        self.fatal: AccelbenchError | None = None
        self.inflight = 0
        self.drain_deadline = 0.0
        self.url = ""
        self.request_exit: Any = None  # set by the runner: stops the HTTP server
        self._starting: asyncio.Task | None = None
        s = settings
        self.meta = {"variant": s.label, "task": None if s.noop else s.spec.task}

    async def start(self) -> None:
        s = self.settings
        if s.noop:
            self._announce()
            return
        self.pool = ReplicaPool.of(s.spec, s.replicas, s.in_thread, s.delay_ms)
        self.pool.on_death = self._replica_died
        self._starting = asyncio.current_task()
        try:
            await asyncio.wait_for(self.pool.start(), s.startup_timeout_s)
        except TimeoutError:
            self._fail(ConfigError(f"replicas not ready after {s.startup_timeout_s:.0f} s",
                                   "pass a larger --startup-timeout-s, or fewer --replicas"))  # fmt: skip
            return
        except AccelbenchError as e:
            self._fail(e)
            return
        self.batcher = Batcher(self.pool, s.policy, on_batch=self.metrics.batch)
        self.batcher.start()
        self.metrics.watch(self.batcher)
        kinds = {r.info.get("kind") for r in self.pool}
        self.meta["kind"] = kinds.pop() if len(kinds) == 1 else None
        if self.status == "starting":
            self.status = "ok"
            self._announce()

    def _announce(self) -> None:
        s, p = self.settings, self.settings.policy
        detail = (
            "no model"
            if s.noop
            else f"{s.replicas} replica{'s' if s.replicas > 1 else ''}{' in-thread' if s.in_thread else ''} x "
            f"{s.threads} thread{'s' if s.threads != 1 else ''}, batches up to {p.max_batch_size}, "
            f"wait {p.max_wait_ms:g} ms"
        )
        print(f"serving {s.label} at {self.url} ({detail})", flush=True)

    def _fail(self, error: AccelbenchError) -> None:
        self.fatal = error
        self.status = "failed"
        if self.request_exit:
            self.request_exit()

    def _replica_died(self, replica: Any) -> None:
        if self.pool.alive == 0 and self.batcher is not None:
            logger.error("no replica is left; answering 503 until restarted")
            self.status = "failed"
            self.batcher.fail_all(ReplicaDied("every replica has exited"))

    def begin_drain(self) -> None:
        if self.status != "draining":
            self.status = "draining"
            self.drain_deadline = time.monotonic() + self.settings.drain_timeout_s
            logger.warning("draining: %d request(s) in flight; new requests get 503", self.inflight)

    def drained(self) -> bool:
        return self.inflight == 0 or time.monotonic() > self.drain_deadline

    async def shutdown(self) -> None:
        if self._starting is not None and not self._starting.done():
            self._starting.cancel()
        if self.batcher is not None:
            await self.batcher.stop()
        if self.pool is not None:
            self.pool.stop()  # blocks the loop for the replicas' exit: nothing else is served any more

    def health(self) -> tuple[int, dict[str, Any]]:
        if self.status != "ok":
            return 503, {"status": self.status, **self.meta}
        s, p = self.settings, self.settings.policy
        body = {"status": "ok", **self.meta, "noop": s.noop}
        if self.pool is not None:
            body.update(
                replicas=self.pool.alive, replicas_configured=s.replicas, threads=s.threads,
                in_thread=s.in_thread, max_batch_size=p.max_batch_size, max_wait_ms=p.max_wait_ms,
                max_queue=self.batcher.max_queue, queue_depth=self.batcher.depth, load_balancing=LOAD_BALANCING,
                replica_pids=[r.info.get("pid") for r in self.pool],
                limits={"max_body_bytes": s.limits.max_body_bytes, "max_texts": s.limits.max_texts,
                        "max_chars": s.limits.max_chars},
            )  # fmt: skip
        return 200, body
