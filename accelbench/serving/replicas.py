"""Replicas that hold one predictor each, and the rule that picks which one gets the next batch.

A process replica is a ``spawn``-ed child that builds the variant once (``build_variant``, with its own
intra-op thread count) and then answers batches sent over a pipe: the front's event loop never runs model
code, so parsing, batching and responding are not slowed by the GIL while a batch computes, and a replica that
crashes takes only its own in-flight batch with it. A thread replica (one, in the front process) exists to
measure what the process boundary costs. The pool sends a batch to the live replica with the fewest
outstanding items among those with a free slot (``LOAD_BALANCING``); ties go to the replica idle longest.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing as mp
import os
import signal
import time
from collections.abc import Awaitable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ..exceptions import AccelbenchError, ModelError
from .variant import Served, VariantSpec, build_variant

logger = logging.getLogger(__name__)

LOAD_BALANCING = "least-outstanding-items"
DEFAULT_DEPTH = 1  # batches a replica holds at once: 1 keeps waiting items in the front, where they batch
STOP_TIMEOUT_S = 10.0


class ReplicaDied(Exception):
    """The replica's process ended while it held a batch."""


class PredictionFailed(Exception):
    """``Served.predict`` raised inside the replica; the message names the exception."""


def _replica_main(index: int, spec: VariantSpec, delay_s: float, conn: Any) -> None:
    """A replica process: build once, then answer ``(batch_id, items)`` until ``None`` or the front is gone."""
    # Ctrl+C reaches the whole process group; the front drains first and then stops its replicas itself.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    try:
        served = build_variant(spec)
    except AccelbenchError as e:
        conn.send(("error", type(e).__name__, e.message, e.fix))
        return
    except Exception as e:  # noqa: BLE001 - any build failure is reported to the front, which exits with it
        conn.send(("error", type(e).__name__, f"{type(e).__name__}: {e}", None))
        return
    conn.send(("ready", {"pid": os.getpid(), "kind": served.kind, "method_label": served.method_label}))
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):
            break
        if msg is None:
            break
        batch_id, items = msg
        try:
            if delay_s:
                time.sleep(delay_s)
            conn.send((batch_id, True, served.predict(items)))
        except Exception as e:  # noqa: BLE001 - one bad batch must not end the replica
            conn.send((batch_id, False, f"{type(e).__name__}: {e}"))
    served.close()


class Replica:
    """Bookkeeping shared by both kinds: outstanding items and batches, liveness, last dispatch time."""

    def __init__(self, index: int):
        self.index = index
        self.alive = False
        self.outstanding_items = 0
        self.outstanding_batches = 0
        self.last_dispatch = 0.0
        self.info: dict[str, Any] = {}

    async def start(self) -> None:
        raise NotImplementedError

    async def run(self, items: list) -> list[dict[str, Any]]:
        raise NotImplementedError

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> None:
        raise NotImplementedError


class ProcessReplica(Replica):
    def __init__(self, index: int, spec: VariantSpec, delay_s: float = 0.0, on_death: Any = None):
        super().__init__(index)
        self.spec, self.delay_s, self.on_death = spec, delay_s, on_death
        self.process: Any = None
        self.conn: Any = None
        self._pending: dict[int, asyncio.Future] = {}
        self._ready: asyncio.Future | None = None
        self._next_id = 0
        self._loop: asyncio.AbstractEventLoop | None = None

    async def start(self) -> None:
        """Spawn the process and wait for its ``ready`` (raises the replica's own build error)."""
        ctx = mp.get_context("spawn")
        self._loop = asyncio.get_running_loop()
        self.conn, child = ctx.Pipe(duplex=True)
        self.process = ctx.Process(
            target=_replica_main,
            args=(self.index, self.spec, self.delay_s, child),
            name=f"replica-{self.index}",
        )
        self.process.daemon = True  # a front that dies hard does not leave replicas behind
        self.process.start()
        child.close()  # the child's end lives in the child only, so its exit reads as EOF here
        self._ready = self._loop.create_future()
        self._loop.add_reader(self.conn.fileno(), self._on_readable)
        await self._ready
        self.alive = True

    def _on_readable(self) -> None:
        try:
            while self.conn.poll():
                self._handle(self.conn.recv())
        except (EOFError, OSError):
            self._died()

    def _handle(self, msg: tuple) -> None:
        if msg[0] == "ready":
            self.info = msg[1]
            if self._ready and not self._ready.done():
                self._ready.set_result(None)
        elif msg[0] == "error":
            _, kind, message, fix = msg
            if self._ready and not self._ready.done():
                self._ready.set_exception(ModelError(f"replica {self.index} failed to start: {message}", fix))
        else:
            batch_id, ok, payload = msg
            fut = self._pending.pop(batch_id, None)
            if fut is not None and not fut.done():
                if ok:
                    fut.set_result(payload)
                else:
                    fut.set_exception(PredictionFailed(payload))

    def _died(self) -> None:
        if self._loop is not None and self.conn is not None:
            self._loop.remove_reader(self.conn.fileno())
        was_alive, self.alive = self.alive, False
        self.process.join(0.5)
        code = self.process.exitcode
        err = ReplicaDied(f"replica {self.index} (pid {self.process.pid}) exited with code {code}")
        if self._ready and not self._ready.done():
            self._ready.set_exception(
                ModelError(
                    f"replica {self.index} exited with code {code} while starting",
                    "run the same variant in-process (accelbench serve --replicas 1 -v) to see the cause",
                )
            )
        for fut in self._pending.values():
            if not fut.done():
                fut.set_exception(err)
        self._pending.clear()
        if was_alive:
            logger.error("%s; serving on with the other replicas", err)
            if self.on_death:
                self.on_death(self)

    async def run(self, items: list) -> list[dict[str, Any]]:
        if not self.alive:
            raise ReplicaDied(f"replica {self.index} is not running")
        self._next_id += 1
        fut = self._loop.create_future()
        self._pending[self._next_id] = fut
        try:
            self.conn.send((self._next_id, items))
        except (BrokenPipeError, OSError):
            self._died()
        return await fut

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> None:
        if self.process is None:
            return
        if self._loop is not None and self.conn is not None and not self.conn.closed:
            try:
                self._loop.remove_reader(self.conn.fileno())
            except (ValueError, OSError):
                pass
        was_ready, self.alive = self.alive, False
        if not was_ready:  # still building (another replica failed) or already dead: nothing to finish
            timeout = 0.0
        try:
            self.conn.send(None)
        except (BrokenPipeError, OSError):
            pass
        self.process.join(timeout)
        if self.process.is_alive():
            if was_ready:
                logger.warning("replica %d did not stop within %.0f s; killing it", self.index, timeout)
            self.process.kill()
            self.process.join(2)
        self.conn.close()


class ThreadReplica(Replica):
    """The predictor in one worker thread of the front process (for comparison: shares the front's GIL)."""

    def __init__(self, index: int, spec: VariantSpec, delay_s: float = 0.0):
        super().__init__(index)
        self.spec, self.delay_s = spec, delay_s
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="predictor")
        self._served: Served | None = None

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._served = await loop.run_in_executor(self._pool, build_variant, self.spec)
        self.info = {"pid": os.getpid(), "kind": self._served.kind, "method_label": self._served.method_label}
        self.alive = True

    def _predict(self, items: list) -> list[dict[str, Any]]:
        if self.delay_s:
            time.sleep(self.delay_s)
        try:
            return self._served.predict(items)
        except Exception as e:  # noqa: BLE001 - same contract as a process replica
            raise PredictionFailed(f"{type(e).__name__}: {e}") from e

    async def run(self, items: list) -> list[dict[str, Any]]:
        return await asyncio.get_running_loop().run_in_executor(self._pool, self._predict, items)

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> None:
        self.alive = False
        self._pool.shutdown(wait=True)
        if self._served is not None:
            self._served.close()


class ReplicaPool:
    """The replicas behind one port and the load-balancing rule; ``on_death(replica)`` hears of lost ones."""

    rule = LOAD_BALANCING

    def __init__(self, replicas: list[Replica], depth: int = DEFAULT_DEPTH):
        self.replicas = replicas
        self.depth = depth
        self.on_death: Any = None

    @classmethod
    def of(cls, spec: VariantSpec, n: int, in_thread: bool = False, delay_ms: float = 0.0) -> ReplicaPool:
        delay = delay_ms / 1000
        if in_thread:
            return cls([ThreadReplica(0, spec, delay)])
        pool = cls([])
        pool.replicas = [ProcessReplica(i, spec, delay, on_death=pool._died) for i in range(n)]
        return pool

    def _died(self, replica: Replica) -> None:
        if self.on_death:
            self.on_death(replica)

    async def start(self) -> None:
        """Start all replicas in parallel; the first failure stops the others and is raised."""
        tasks = [asyncio.ensure_future(r.start()) for r in self.replicas]
        try:
            await asyncio.gather(*tasks)
        except BaseException:
            for t in tasks:
                t.cancel()
            self.stop()
            raise
        logger.info("%d replica(s) ready: pids %s", len(self.replicas), [r.info.get("pid") for r in self])

    def __iter__(self):
        return iter(self.replicas)

    @property
    def alive(self) -> int:
        return sum(r.alive for r in self.replicas)

    def pick(self) -> Replica | None:
        """The live replica with a free slot and the fewest outstanding items (then: idle longest)."""
        free = [r for r in self.replicas if r.alive and r.outstanding_batches < self.depth]
        return min(free, key=lambda r: (r.outstanding_items, r.last_dispatch)) if free else None

    def run(self, replica: Replica, items: list) -> Awaitable[list[dict[str, Any]]]:
        """Count the batch against the replica now (so the next ``pick`` sees it), then await its answer."""
        replica.outstanding_items += len(items)
        replica.outstanding_batches += 1
        replica.last_dispatch = time.perf_counter()
        return self._finish(replica, items)

    async def _finish(self, replica: Replica, items: list) -> list[dict[str, Any]]:
        try:
            return await replica.run(items)
        finally:
            replica.outstanding_items -= len(items)
            replica.outstanding_batches -= 1

    def stop(self) -> None:
        for r in self.replicas:
            try:
                r.stop()
            except Exception:  # noqa: BLE001 - stopping the rest matters more
                logger.exception("stopping replica %d", r.index)
