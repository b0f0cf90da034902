"""The training loop every recipe shares, and its helpers: seeding, length-bucketed batches, padding, saving.

The loop runs AdamW or Adafactor with linear warm-up and decay over a planned number of steps, optionally
capped by an explicit wall-clock budget, with a progress bar. ``reproducible`` seeds every random source and
asks torch for deterministic kernels, so a recipe, seed and thread count give byte-identical weights. A
checkpoint is written to a temporary folder and renamed, and its ``accelbench.json`` (recipe, budget, steps,
threads, seed, loss curve, wall time, weights digest) marks it finished.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

SCHEDULE_PROBE_STEPS = 20  # under a wall-clock budget, steps timed before the schedule is re-planned
# T5 trains with eager attention: its relative position bias reaches SDPA as a float mask, and the CPU
# flash-attention backward with a mask made a step of the compact T5 11% slower (0.286 vs 0.255 s, 4 interleaved
# rounds of 20 steps, batch 64, bf16 autocast, 2 cores). BERT-family models saw no difference either way.
T5_TRAINING_ATTENTION = "eager"


@contextmanager
def reproducible(seed: int) -> Iterator[None]:
    """Seed ``random``, numpy and torch and use deterministic torch kernels inside; restore all of it after.

    With the same seed and ``torch.get_num_threads()`` the same training gives byte-identical weights on one
    kind of CPU (kernels differ in rounding between instruction sets, and reductions with the thread count).
    """
    import numpy as np
    import torch

    states = random.getstate(), np.random.get_state(), torch.get_rng_state()
    deterministic = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(deterministic, warn_only=warn_only)
        random.setstate(states[0])
        np.random.set_state(states[1])
        torch.set_rng_state(states[2])


def weights_digest(state_dict: dict[str, Any]) -> str:
    """sha256 over every tensor's name, dtype, shape and bytes, in name order: equal digests, equal weights."""
    import torch

    h = hashlib.sha256()
    for name in sorted(state_dict):
        t = state_dict[name].detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def length_batches(
    n: int, batch_size: int, lengths: list[int] | list[tuple[int, ...]], rng: random.Random
) -> list[list[int]]:
    """Length-bucketed batches in random order: little padding, still shuffled.

    ``lengths`` holds one length per example, or a tuple per example (a seq2seq pair: target, then source):
    examples are then ordered by the first length (jittered by 0 or 1), then the next, so both sides of a
    batch are nearly the same length (bucketing on the source alone pads Multi30k's targets by a third).
    """
    if lengths and isinstance(lengths[0], tuple):
        keys = [(lengths[i][0] + rng.randrange(2), *lengths[i][1:], rng.random()) for i in range(n)]
        order = sorted(range(n), key=keys.__getitem__)
    else:
        order = sorted(range(n), key=lambda i: lengths[i] + rng.random() * 2)
    batches = [order[i : i + batch_size] for i in range(0, n, batch_size)]
    rng.shuffle(batches)
    return batches


def pair_lengths(src: list[list[int]], tgt: list[list[int]]) -> list[tuple[int, int]]:
    """A seq2seq example's lengths for ``length_batches``: target first (the decoder and the vocabulary
    projection run on every target position), then source."""
    return [(len(t), len(s)) for s, t in zip(src, tgt, strict=True)]


def use_bf16(recipe: Any) -> bool:
    """A recipe's ``bf16``: autocast where asked, and with ``null`` where the CPU has native bf16."""
    from ..environment import supports_bf16

    return supports_bf16() if recipe.bf16 is None else bool(recipe.bf16)


def _attention_of(model) -> str | None:
    """The attention implementation a transformers model runs with, if it can be switched; else None."""
    if not hasattr(model, "set_attn_implementation"):
        return None
    return getattr(getattr(model, "config", None), "_attn_implementation", None)


def adamw(params: list, lr: float, weight_decay: float):
    """AdamW, fused into one kernel where this torch build has it (the same update; on a 2-core CPU the
    per-tensor loop over MiniLM's 22.7 M parameters took a quarter of each step, the fused kernel a twentieth)."""
    import torch

    try:
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay, fused=True)
    except (RuntimeError, TypeError, ValueError) as e:  # an older torch, or a device without the kernel
        logger.info("fused AdamW unavailable (%s); using the default implementation", e)
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)


def train_loop(
    model,
    batches: Callable[[], Iterator[dict]],
    total_steps: int,
    lr: float,
    warmup_steps: int,
    time_budget_s: float | None = None,
    weight_decay: float = 0.01,
    bf16: bool = False,
    progress: bool = True,
    desc: str = "train",
    optimizer: str = "adamw",
    loss_fn: Callable[[Any, dict], Any] | None = None,
    extra_params: list | None = None,
    seed: int | None = None,
    attention: str | None = None,
) -> dict[str, Any]:
    """AdamW (or Adafactor) with linear warm-up and linear decay over ``total_steps`` optimizer steps.

    ``batches()`` is called again for each pass over the data until ``total_steps`` are done. With an
    explicit ``time_budget_s`` the run also stops when the budget is spent, and the schedule decays towards
    the step count the budget allows, re-estimated from the measured step time (machine-dependent: the log
    says ``budget: "time"``). ``loss_fn(model, batch)`` replaces ``model(**batch).loss`` and may return
    ``(loss, {part: value})``; the parts' running means are logged beside the total (``loss_parts``).
    ``extra_params`` (e.g. a projection) train alongside. ``seed`` is only recorded (see ``reproducible``).
    ``attention`` (e.g. ``"eager"``) is the model's attention implementation while it trains; the one it had
    is restored after, so the checkpoint is saved and served as before.
    """
    import torch
    from tqdm.auto import tqdm

    params = [p for p in model.parameters() if p.requires_grad] + list(extra_params or [])
    if optimizer == "adafactor":  # T5's own optimizer: updates relative to each parameter's scale
        from transformers.optimization import Adafactor

        opt = Adafactor(params, lr=lr, scale_parameter=True, relative_step=False, warmup_init=False,
                        weight_decay=weight_decay)  # fmt: skip
    else:
        opt = adamw(params, lr, weight_decay)
    model.train()
    served_attention = _attention_of(model) if attention else None  # None: nothing to switch
    if served_attention:
        model.set_attn_implementation(attention)
    losses: list[tuple[int, float]] = []
    parts_curve: list[tuple[int, dict[str, float]]] = []
    parts_running: dict[str, float] = {}
    timed = time_budget_s is not None
    step, start, planned, running = 0, time.perf_counter(), total_steps, None
    bar = tqdm(total=total_steps, desc=desc, disable=not progress, unit="step")
    done = False
    while not done:
        for batch in batches():
            elapsed = time.perf_counter() - start
            if timed and step >= SCHEDULE_PROBE_STEPS:  # the schedule ends where the time budget will
                planned = min(total_steps, max(step + 1, int(time_budget_s / (elapsed / step))))
                if step % 50 == 0:
                    bar.total = planned  # the bar shows the steps the budget allows
            warm = min(1.0, (step + 1) / max(1, warmup_steps))
            decay = max(0.0, 1 - step / max(1, planned)) if step >= warmup_steps else 1.0
            for g in opt.param_groups:
                g["lr"] = lr * warm * max(decay, 0.02)
            parts: dict[str, float] = {}
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                loss = model(**batch).loss if loss_fn is None else loss_fn(model, batch)
            if isinstance(loss, tuple):
                loss, parts = loss
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            step += 1
            value = float(loss.detach())
            running = value if running is None else 0.95 * running + 0.05 * value
            for k, v in parts.items():
                parts_running[k] = v if k not in parts_running else 0.95 * parts_running[k] + 0.05 * v
            if step % 10 == 0 or step == 1:
                losses.append((step, round(running, 4)))
                if parts_running:
                    parts_curve.append((step, {k: round(v, 5) for k, v in parts_running.items()}))
                bar.set_postfix(loss=f"{running:.3f}", lr=f"{opt.param_groups[0]['lr']:.1e}")
            bar.update(1)
            if step >= total_steps or (timed and time.perf_counter() - start > time_budget_s):
                done = True
                break
    bar.close()
    model.eval()
    if served_attention:
        model.set_attn_implementation(served_attention)
    wall = time.perf_counter() - start
    stopped = "budget" if step < total_steps else "steps"
    threads = torch.get_num_threads()
    logger.info("%s: %d of %d steps in %.0f s on %d threads (stopped by %s), final loss %.3f", desc, step,
                total_steps, wall, threads, stopped, running)  # fmt: skip
    return {"budget": "time" if timed else "steps", "planned_steps": total_steps, "steps": step,
            "stopped_by": stopped, "time_budget_s": time_budget_s, "threads": threads, "seed": seed,
            "wall_s": round(wall, 1), "final_loss": running, "loss_curve": losses,
            **({"attention": attention} if attention else {}),
            **({"loss_parts": parts_curve} if parts_curve else {})}  # fmt: skip


def pad(seqs: list[list[int]], value: int):
    import torch

    n = max(map(len, seqs))
    return torch.tensor([s + [value] * (n - len(s)) for s in seqs])


def save_checkpoint(model, tok, out_dir: Path, recipe, log: dict[str, Any]) -> None:
    """Write to a temporary folder and rename, so an interrupted run never leaves a half checkpoint."""
    tmp = out_dir.with_name(out_dir.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    model.save_pretrained(tmp, safe_serialization=True)
    tok.save_pretrained(tmp)
    log["weights_sha256"] = weights_digest(model.state_dict())
    (tmp / "accelbench.json").write_text(json.dumps({"recipe": asdict(recipe), "training": log}, indent=1))
    shutil.rmtree(out_dir, ignore_errors=True)
    tmp.rename(out_dir)
