"""The dynamic batcher and the load-balancing rule, against fake replicas whose timing the test controls."""

from __future__ import annotations

import asyncio
import time

import pytest

from accelbench.exceptions import ConfigError
from accelbench.serving.batching import Batcher, BatchPolicy, QueueFull
from accelbench.serving.replicas import Replica, ReplicaDied, ReplicaPool


class FakeReplica(Replica):
    """Answers ``item * 10`` after ``delay`` seconds; records every batch it got."""

    def __init__(self, index: int, delay: float = 0.0, fail: bool = False):
        super().__init__(index)
        self.alive, self.delay, self.fail = True, delay, fail
        self.batches: list[list] = []

    async def run(self, items: list) -> list:
        self.batches.append(list(items))
        await asyncio.sleep(self.delay)
        if self.fail:
            raise ReplicaDied(f"replica {self.index} exited")
        return [x * 10 for x in items]

    def stop(self, timeout: float = 0) -> None:
        self.alive = False


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 10))


async def _batcher(replicas, **policy) -> Batcher:
    b = Batcher(ReplicaPool(replicas), BatchPolicy(**policy))
    b.start()
    return b


def test_policy_refuses_bad_values():
    with pytest.raises(ConfigError, match="max-batch-size"):
        BatchPolicy(max_batch_size=0)
    with pytest.raises(ConfigError, match="max-wait-ms"):
        BatchPolicy(max_wait_ms=-1)
    with pytest.raises(ConfigError, match="max-queue"):
        BatchPolicy(max_queue=0)
    assert BatchPolicy(max_batch_size=4).queue_bound(3) == 48 and BatchPolicy(max_queue=5).queue_bound(3) == 5


def test_items_that_wait_while_the_replica_is_busy_are_merged_and_answered_in_order():
    async def main():
        rep = FakeReplica(0, delay=0.05)
        b = await _batcher([rep], max_batch_size=4, max_wait_ms=0)
        first = b.submit([1])  # goes at once: the replica is idle and the wait is 0
        await asyncio.sleep(0.01)
        rest = [b.submit([i, i + 100]) for i in range(2, 5)]  # 6 items arrive while it computes
        outs = await asyncio.gather(first, *rest)
        await b.stop()
        return rep.batches, outs

    batches, outs = run(main())
    assert batches[0] == [1]
    assert [len(x) for x in batches[1:]] == [4, 2]  # merged up to the maximum, the request split over two
    assert outs == [[10], [20, 1020], [30, 1030], [40, 1040]]


def test_a_lone_request_waits_for_company_at_most_max_wait():
    async def main():
        rep = FakeReplica(0)
        b = await _batcher([rep], max_batch_size=8, max_wait_ms=60)
        t0 = time.perf_counter()
        a = b.submit([1])
        await asyncio.sleep(0.02)
        c = b.submit([2])
        await asyncio.gather(a, c)
        waited = time.perf_counter() - t0
        d0 = time.perf_counter()
        full = [b.submit([i]) for i in range(8)]  # a full batch leaves without waiting
        await asyncio.gather(*full)
        await b.stop()
        return rep.batches, waited, time.perf_counter() - d0

    batches, waited, full_s = run(main())
    assert batches[0] == [1, 2] and 0.055 < waited < 0.5
    assert batches[1] == list(range(8)) and full_s < 0.05


def test_batch_size_one_and_no_wait_is_no_batching():
    async def main():
        rep = FakeReplica(0, delay=0.005)
        b = await _batcher([rep], max_batch_size=1, max_wait_ms=0, max_queue=10)
        await asyncio.gather(*(b.submit([i]) for i in range(5)))
        await b.stop()
        return rep.batches

    assert run(main()) == [[0], [1], [2], [3], [4]]


def test_bounded_queue_refuses_with_retry_after_and_admits_a_big_request_into_an_empty_queue():
    async def main():
        rep = FakeReplica(0, delay=0.2)
        b = await _batcher([rep], max_batch_size=1, max_queue=3)
        big = b.submit(list(range(5)))  # larger than the bound, but the queue is empty
        with pytest.raises(QueueFull) as e:
            b.submit([9])
        assert e.value.depth >= 3 and e.value.retry_after_s >= 1 and isinstance(e.value.retry_after_s, int)
        big.cancel()
        await b.stop()

    run(main())


def test_least_outstanding_items_and_idle_longest_on_ties():
    reps = [FakeReplica(i) for i in range(3)]
    pool = ReplicaPool(reps, depth=2)
    reps[0].outstanding_items, reps[0].outstanding_batches = 5, 1
    reps[1].outstanding_items, reps[1].outstanding_batches = 2, 1
    reps[2].outstanding_items, reps[2].outstanding_batches = 3, 1
    assert pool.pick() is reps[1]
    reps[1].outstanding_batches = 2  # no free slot
    assert pool.pick() is reps[2]
    reps[2].alive = False
    assert pool.pick() is reps[0]
    for r in reps:
        r.outstanding_items = r.outstanding_batches = 0
        r.alive = True
    reps[0].last_dispatch, reps[1].last_dispatch, reps[2].last_dispatch = 3.0, 1.0, 2.0
    assert pool.pick() is reps[1]


def test_two_replicas_share_the_load():
    async def main():
        reps = [FakeReplica(0, delay=0.03), FakeReplica(1, delay=0.03)]
        b = await _batcher(reps, max_batch_size=2)
        await asyncio.gather(*(b.submit([i]) for i in range(8)))
        await b.stop()
        return reps

    reps = run(main())
    assert all(r.batches for r in reps)
    assert sum(len(x) for r in reps for x in r.batches) == 8


def test_a_failed_batch_fails_its_requests_and_the_batcher_goes_on():
    async def main():
        bad, good = FakeReplica(0, fail=True), FakeReplica(1, delay=0.01)
        b = await _batcher([bad, good], max_batch_size=1)
        res = await asyncio.gather(*(b.submit([i]) for i in range(4)), return_exceptions=True)
        bad.alive = False
        after = await b.submit([7])
        await b.stop()
        return res, after

    res, after = run(main())
    assert any(isinstance(r, ReplicaDied) for r in res) and after == [70]


def test_fail_all_and_cancelled_requests_are_not_computed():
    async def main():
        rep = FakeReplica(0, delay=0.1)
        b = await _batcher([rep], max_batch_size=1)
        first = b.submit([1])
        await asyncio.sleep(0.01)
        gone = b.submit([2])
        gone.cancel()
        kept = b.submit([3])
        await asyncio.gather(first, kept)
        waiting = b.submit([4, 5])
        b.fail_all(ReplicaDied("every replica has exited"))  # [4] may already be on its way; [5] is not
        with pytest.raises(ReplicaDied):
            await waiting
        await b.stop()
        return rep.batches

    batches = run(main())
    assert [2] not in batches and [3] in batches
