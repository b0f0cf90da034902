"""Server-side dynamic batching: the items of all requests wait in one bounded queue; one dispatcher forms
batches.

A batch leaves when a replica has a free slot and either ``max_batch_size`` items wait or the oldest has
waited ``max_wait_ms``. With a wait of 0 nothing is held back: a lone request goes at once, and items that
arrive while every replica is busy are merged into the next batch (the batching that costs no latency at low
load). A request's items may be split over batches; its outputs are put back in order. The queue is bounded:
a request that would push it past ``max_queue`` items is refused (``QueueFull``) instead of waiting without
limit, with a Retry-After estimated from the recent service rate.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

from ..exceptions import ConfigError
from .replicas import ReplicaPool

logger = logging.getLogger(__name__)

DEFAULT_MAX_BATCH_SIZE = 8
DEFAULT_MAX_WAIT_MS = 0.0
QUEUE_PER_SLOT = 4  # default bound: this many full batches per replica
MAX_RETRY_AFTER_S = 30
EWMA_WEIGHT = 0.2


class QueueFull(Exception):
    def __init__(self, depth: int, retry_after_s: int):
        super().__init__(f"queue full ({depth} waiting)")
        self.depth, self.retry_after_s = depth, retry_after_s


@dataclass(frozen=True)
class BatchPolicy:
    max_batch_size: int = DEFAULT_MAX_BATCH_SIZE
    max_wait_ms: float = DEFAULT_MAX_WAIT_MS
    max_queue: int | None = None  # None: QUEUE_PER_SLOT x max_batch_size x replicas

    def __post_init__(self) -> None:
        if self.max_batch_size < 1:
            raise ConfigError(
                f"--max-batch-size must be at least 1, got {self.max_batch_size}",
                "pass --max-batch-size 1 (no batching) or more",
            )
        if not self.max_wait_ms >= 0:
            raise ConfigError(
                f"--max-wait-ms must be 0 or more, got {self.max_wait_ms}",
                "pass --max-wait-ms 0 (no waiting) or more",
            )
        if self.max_queue is not None and self.max_queue < 1:
            raise ConfigError(
                f"--max-queue must be at least 1, got {self.max_queue}", "pass --max-queue 1 or more"
            )

    def queue_bound(self, replicas: int) -> int:
        return self.max_queue or QUEUE_PER_SLOT * self.max_batch_size * replicas


class _Request:
    """One request's outputs, filled in by the batches that carry its items."""

    __slots__ = ("outputs", "remaining", "future")

    def __init__(self, n: int, future: asyncio.Future):
        self.outputs: list[Any] = [None] * n
        self.remaining = n
        self.future = future

    def done(self, index: int, output: Any) -> None:
        self.outputs[index] = output
        self.remaining -= 1
        if self.remaining == 0 and not self.future.done():
            self.future.set_result(self.outputs)

    def fail(self, error: BaseException) -> None:
        if not self.future.done():
            self.future.set_exception(error)


class Batcher:
    """Owns the queue and the dispatcher task; ``submit`` returns a future of the request's outputs."""

    def __init__(self, pool: ReplicaPool, policy: BatchPolicy, on_batch: Any = None):
        self.pool, self.policy = pool, policy
        self.max_queue = policy.queue_bound(len(pool.replicas))
        self.queue: deque[tuple[Any, _Request, int, float]] = deque()  # (item, request, index, enqueued at)
        self.on_batch = on_batch  # called with (replica, batch size, seconds) after each batch
        self.batches_running = 0
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._seconds_per_item = 0.0  # EWMA of batch time / batch size, for Retry-After

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._dispatch_loop(), name="dispatcher")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass

    @property
    def depth(self) -> int:
        return len(self.queue)

    @property
    def idle(self) -> bool:
        return not self.queue and self.batches_running == 0

    def retry_after(self) -> int:
        alive = max(1, self.pool.alive)
        return min(MAX_RETRY_AFTER_S, max(1, math.ceil(self.depth * self._seconds_per_item / alive)))

    def submit(self, items: list) -> asyncio.Future:
        """Queue the items (all or none); raises ``QueueFull`` when they do not fit. An empty queue always
        admits one request, so a request larger than the bound is not refused forever."""
        if self.queue and len(self.queue) + len(items) > self.max_queue:
            raise QueueFull(len(self.queue), self.retry_after())
        fut = asyncio.get_running_loop().create_future()
        req = _Request(len(items), fut)
        now = time.perf_counter()
        self.queue.extend((item, req, i, now) for i, item in enumerate(items))
        self._wake.set()
        return fut

    async def _dispatch_loop(self) -> None:
        b, wait_s = self.policy.max_batch_size, self.policy.max_wait_ms / 1000
        while True:
            self._wake.clear()
            self._drop_cancelled()
            timeout = None
            if self.queue:
                replica = self.pool.pick()
                if replica is not None:
                    left = self.queue[0][3] + wait_s - time.perf_counter()
                    if len(self.queue) >= b or left <= 0:
                        batch = [self.queue.popleft() for _ in range(min(b, len(self.queue)))]
                        self.batches_running += 1
                        answer = self.pool.run(replica, [e[0] for e in batch])
                        asyncio.get_running_loop().create_task(self._run(replica, batch, answer))
                        continue
                    timeout = left
            await self._sleep(timeout)

    async def _sleep(self, timeout: float | None) -> None:
        """Until a request arrives, a batch ends (a slot frees), or the oldest item's wait is over."""
        timer = None if timeout is None else asyncio.get_running_loop().call_later(timeout, self._wake.set)
        await self._wake.wait()
        if timer is not None:
            timer.cancel()

    def fail_all(self, error: BaseException) -> None:
        """Every waiting request gets ``error`` (no replica is left to compute it)."""
        while self.queue:
            self.queue.popleft()[1].fail(error)

    def _drop_cancelled(self) -> None:
        # Items of requests whose client went away are not computed.
        while self.queue and self.queue[0][1].future.done():
            self.queue.popleft()

    async def _run(self, replica: Any, batch: list, answer: Any) -> None:
        t0 = time.perf_counter()
        try:
            outputs = await answer
        except Exception as e:  # noqa: BLE001 - the error goes to every request in the batch
            for _, req, _, _ in batch:
                req.fail(e)
        else:
            for (_, req, i, _), out in zip(batch, outputs, strict=True):
                req.done(i, out)
            seconds = time.perf_counter() - t0
            per_item = seconds / len(batch)
            s = self._seconds_per_item
            self._seconds_per_item = per_item if s == 0 else (1 - EWMA_WEIGHT) * s + EWMA_WEIGHT * per_item
            if self.on_batch:
                self.on_batch(replica, len(batch), seconds)
        finally:
            self.batches_running -= 1
            self._wake.set()
