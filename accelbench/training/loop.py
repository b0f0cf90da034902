"""The training loop every recipe shares, and the helpers around it: length-bucketed batches, padding, saving.

The loop runs AdamW or Adafactor with linear warm-up and decay, stopped by a step count or a wall-clock
budget, with a progress bar; a checkpoint is written to a temporary folder and renamed, and its
``accelbench.json`` (recipe, steps, loss curve, wall time) marks it finished.
"""

from __future__ import annotations

import json
import logging
import random
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)


def length_batches(n: int, batch_size: int, lengths: list[int], rng: random.Random) -> list[list[int]]:
    """Length-bucketed batches in random order: little padding, still shuffled."""
    order = sorted(range(n), key=lambda i: lengths[i] + rng.random() * 2)
    batches = [order[i : i + batch_size] for i in range(0, n, batch_size)]
    rng.shuffle(batches)
    return batches


def train_loop(
    model,
    batches: Callable[[], Iterator[dict]],
    total_steps: int,
    lr: float,
    warmup_steps: int,
    time_budget_s: float,
    weight_decay: float = 0.01,
    bf16: bool = False,
    progress: bool = True,
    desc: str = "train",
    optimizer: str = "adamw",
    loss_fn: Callable[[Any, dict], Any] | None = None,
    extra_params: list | None = None,
) -> dict[str, Any]:
    """AdamW (or Adafactor) with linear warm-up and linear decay, stopped by steps or wall-clock budget.

    The schedule decays towards the step count that the budget allows, re-estimated from the measured
    step time, so a budget-limited run still ends at a low learning rate. ``loss_fn(model, batch)``
    replaces ``model(**batch).loss`` and may return ``(loss, {part: value})``; the parts' running means
    are logged beside the total (``loss_parts``). ``extra_params`` (e.g. a projection) train alongside.
    """
    import torch
    from tqdm.auto import tqdm

    params = [p for p in model.parameters() if p.requires_grad] + list(extra_params or [])
    if optimizer == "adafactor":  # T5's own optimizer: updates relative to each parameter's scale
        from transformers.optimization import Adafactor

        opt = Adafactor(params, lr=lr, scale_parameter=True, relative_step=False, warmup_init=False,
                        weight_decay=weight_decay)  # fmt: skip
    else:
        opt = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    model.train()
    losses: list[tuple[int, float]] = []
    parts_curve: list[tuple[int, dict[str, float]]] = []
    parts_running: dict[str, float] = {}
    step, start, planned, running = 0, time.perf_counter(), total_steps, None
    bar = tqdm(
        total=total_steps if total_steps < 10**8 else None, desc=desc, disable=not progress, unit="step"
    )
    done = False
    while not done:
        for batch in batches():
            elapsed = time.perf_counter() - start
            if step >= 20:  # budget-aware schedule length
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
            if step >= total_steps or time.perf_counter() - start > time_budget_s:
                done = True
                break
    bar.close()
    model.eval()
    wall = time.perf_counter() - start
    stopped = "budget" if step < total_steps else "steps"
    logger.info("%s: %d steps in %.0f s (stopped by %s), final loss %.3f", desc, step, wall, stopped, running)
    return {"steps": step, "planned_steps": total_steps, "wall_s": round(wall, 1), "stopped_by": stopped,
            "final_loss": running, "loss_curve": losses, **({"loss_parts": parts_curve} if parts_curve else {})}  # fmt: skip


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
    (tmp / "accelbench.json").write_text(json.dumps({"recipe": asdict(recipe), "training": log}, indent=1))
    shutil.rmtree(out_dir, ignore_errors=True)
    tmp.rename(out_dir)
