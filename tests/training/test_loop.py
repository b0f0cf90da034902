"""The shared training loop: the step budget, the explicit wall-clock budget, what the log records, seeding."""

from __future__ import annotations

import random
import time
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from accelbench.training.loop import (
    adamw,
    length_batches,
    pair_lengths,
    reproducible,
    train_loop,
    weights_digest,
)


class Tiny(torch.nn.Module):
    """A linear classifier behind dropout: the dropout masks come from torch's global RNG."""

    def __init__(self) -> None:
        super().__init__()
        self.drop = torch.nn.Dropout(0.3)
        self.lin = torch.nn.Linear(4, 2)

    def forward(self, x, labels):
        return SimpleNamespace(loss=torch.nn.functional.cross_entropy(self.lin(self.drop(x)), labels))


def _data(seed: int = 0):
    """Three batches per pass, in an order drawn from a seeded RNG (as length_batches does)."""
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(12, 4, generator=g), torch.randint(0, 2, (12,), generator=g)
    rng = random.Random(seed)

    def batches():
        order = list(range(3))
        rng.shuffle(order)
        for i in order:
            yield {"x": x[4 * i : 4 * i + 4], "labels": y[4 * i : 4 * i + 4]}

    return batches


def _train(total: int, seed: int = 0, delay_s: float = 0.0, time_budget_s: float | None = None):
    def loss_fn(model, batch):
        time.sleep(delay_s)
        return model(**batch).loss

    with reproducible(seed):
        model = Tiny()
        log = train_loop(model, _data(seed), total, lr=0.1, warmup_steps=2, time_budget_s=time_budget_s,
                         progress=False, loss_fn=loss_fn, seed=seed)  # fmt: skip
    return model, log


def test_the_step_budget_is_obeyed_exactly_across_passes():
    _, log = _train(7, seed=3)  # 3 batches a pass: the third pass stops after its first batch
    assert (log["steps"], log["planned_steps"], log["stopped_by"], log["budget"]) == (7, 7, "steps", "steps")
    assert log["time_budget_s"] is None and log["seed"] == 3
    assert log["threads"] == torch.get_num_threads() and log["wall_s"] >= 0


def test_an_explicit_time_budget_stops_early_and_says_so():
    _, log = _train(10_000, delay_s=0.02, time_budget_s=0.3)
    assert log["budget"] == "time" and log["stopped_by"] == "budget" and log["time_budget_s"] == 0.3
    assert 3 <= log["steps"] < 100 and log["planned_steps"] == 10_000
    assert 0.3 <= log["wall_s"] < 5


def test_the_weights_do_not_depend_on_the_speed_of_the_machine():
    fast, _ = _train(25)  # more steps than the loop times before re-planning under a time budget
    slow, _ = _train(25, delay_s=0.01)
    assert weights_digest(fast.state_dict()) == weights_digest(slow.state_dict())
    other, _ = _train(25, seed=1)  # another seed: other init, dropout masks and batch order
    assert weights_digest(other.state_dict()) != weights_digest(fast.state_dict())


def test_reproducible_seeds_everything_and_restores_it_after():
    random.seed(123)
    np.random.seed(123)
    torch.manual_seed(123)
    before = random.random(), np.random.rand(), torch.rand(1).item()
    random.seed(123)
    np.random.seed(123)
    torch.manual_seed(123)
    was = torch.are_deterministic_algorithms_enabled()
    with reproducible(7):
        inside = random.random(), np.random.rand(), torch.rand(1).item()
        assert torch.are_deterministic_algorithms_enabled()
    with reproducible(7):
        assert (random.random(), np.random.rand(), torch.rand(1).item()) == inside
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == before  # the caller's streams go on
    assert torch.are_deterministic_algorithms_enabled() == was


def test_weights_digest_sees_one_changed_bit():
    sd = Tiny().state_dict()
    same = {k: v.clone() for k, v in reversed(list(sd.items()))}  # another dict order, copied tensors
    assert weights_digest(same) == weights_digest(sd)
    changed = {k: v.clone() for k, v in sd.items()}
    changed["lin.bias"].view(torch.int32)[0] ^= 1  # the lowest mantissa bit
    assert weights_digest(changed) != weights_digest(sd)


@pytest.mark.parametrize("time_budget_s", [None, 60.0])
def test_the_schedule_ends_at_the_planned_steps(time_budget_s, monkeypatch):
    """Linear warm-up, then decay towards the planned steps; a time budget the run does not reach changes nothing."""
    lrs = []
    step = torch.optim.AdamW.step

    def spy(self, *args, **kwargs):
        lrs.append(self.param_groups[0]["lr"])
        return step(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.AdamW, "step", spy)
    with reproducible(0):
        train_loop(Tiny(), _data(), 30, lr=1.0, warmup_steps=5, time_budget_s=time_budget_s, progress=False)
    assert len(lrs) == 30
    assert lrs[:5] == pytest.approx([0.2, 0.4, 0.6, 0.8, 1.0])
    assert lrs[5] == pytest.approx(1 - 5 / 30) and lrs[-1] == pytest.approx(1 - 29 / 30)


def test_pair_lengths_bucket_both_sides_of_a_seq2seq_batch():
    """Bucketing on the source alone leaves targets padded; pairs keep both sides close, still shuffled."""
    rng = random.Random(0)
    src = [[1] * rng.randint(3, 30) for _ in range(2000)]
    tgt = [[1] * max(2, len(s) + rng.randint(-8, 8)) for s in src]

    def fill(batches, seqs):  # real tokens over padded positions
        return sum(len(seqs[i]) for b in batches for i in b) / sum(
            len(b) * max(len(seqs[i]) for i in b) for b in batches
        )

    by_source = length_batches(len(src), 32, [len(s) for s in src], random.Random(1))
    by_pair = length_batches(len(src), 32, pair_lengths(src, tgt), random.Random(1))
    assert sorted(i for b in by_pair for i in b) == list(range(len(src)))  # every example once
    assert fill(by_pair, tgt) > 0.9 > fill(by_source, tgt)
    assert fill(by_pair, src) > 0.7  # the source side keeps most of its bucketing
    assert fill(by_pair, src) + fill(by_pair, tgt) > fill(by_source, src) + fill(by_source, tgt)
    again = length_batches(len(src), 32, pair_lengths(src, tgt), random.Random(2))
    assert again != by_pair  # another pass, another order and other batch members
    assert length_batches(len(src), 32, pair_lengths(src, tgt), random.Random(1)) == by_pair


def test_adamw_is_the_fused_kernel_and_updates_as_the_default_does():
    torch.manual_seed(0)
    a, b = torch.nn.Linear(8, 8), torch.nn.Linear(8, 8)
    b.load_state_dict(a.state_dict())
    fused = adamw(list(a.parameters()), 1e-2, 0.01)
    plain = torch.optim.AdamW(b.parameters(), lr=1e-2, weight_decay=0.01)
    assert fused.defaults.get("fused")
    x = torch.randn(16, 8)
    for _ in range(5):
        for m, opt in ((a, fused), (b, plain)):
            opt.zero_grad()
            m(x).square().mean().backward()
            opt.step()
    for p, q in zip(a.parameters(), b.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)


def test_a_model_trains_with_the_attention_asked_and_is_served_with_its_own_after():
    from transformers import T5Config, T5ForConditionalGeneration

    cfg = T5Config(
        vocab_size=32, d_model=16, d_kv=4, d_ff=32, num_layers=1, num_heads=4, decoder_start_token_id=0
    )
    model = T5ForConditionalGeneration(cfg)
    served = model.config._attn_implementation
    seen = []

    def loss_fn(m, batch):
        seen.append(m.config._attn_implementation)
        return m(**batch).loss

    x = torch.randint(2, 32, (4, 6))
    log = train_loop(model, lambda: iter([{"input_ids": x, "labels": x}]), 2, lr=1e-3, warmup_steps=1,
                     progress=False, loss_fn=loss_fn, optimizer="adafactor", attention="eager")  # fmt: skip
    assert seen == ["eager", "eager"] and served != "eager"
    assert model.config._attn_implementation == served and log["attention"] == "eager"
