"""Teacher outputs a student trains on, computed once and cached: logits (classifiers), translations (T5)."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from ..paths import cache_dir
from ..records import config_hash
from .loop import pad

logger = logging.getLogger(__name__)


def cache_file(kind: str, teacher_spec, payload: dict[str, Any], suffix: str) -> Path:
    return cache_dir() / kind / f"{teacher_spec.name}-{teacher_spec.key}-{config_hash(payload)}{suffix}"


def teacher_logits(teacher, ids: list[list[int]], pad_id: int, cache: Path, batch_size: int = 64,
                   progress: bool = True, bf16: bool = False):  # fmt: skip
    """The teacher's logits for every training example (under bf16 autocast with ``bf16``, as the student
    trains), computed once and kept in ``cache``."""
    import torch
    from tqdm.auto import tqdm

    if cache.exists():
        out = torch.load(cache)
        if out.shape[0] == len(ids):
            logger.info("teacher logits from cache %s", cache)
            return out
    order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
    out = torch.empty(len(ids), teacher.config.num_labels)
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        for k in tqdm(
            range(0, len(order), batch_size), desc="teacher logits", disable=not progress, unit="batch"
        ):
            b = order[k : k + batch_size]
            x = pad([ids[i] for i in b], pad_id)
            out[b] = teacher(input_ids=x, attention_mask=(x != pad_id).long()).logits.float()
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_suffix(".tmp")
    torch.save(out, tmp)
    tmp.replace(cache)
    return out


def pseudo_labels(teacher, tok, sources: list[str], max_length: int, cache: Path, batch_size: int = 64,
                  progress: bool = True) -> list[str]:  # fmt: skip
    """The teacher's greedy translations of ``sources`` (sequence-level KD targets), cached."""
    import torch
    from tqdm.auto import tqdm

    if cache.exists():
        out = json.loads(cache.read_text())
        if len(out) == len(sources):
            logger.info("pseudo-labels from cache %s", cache)
            return out
    order = sorted(range(len(sources)), key=lambda i: len(sources[i]))
    out: list[str] = [""] * len(sources)
    with torch.inference_mode():
        for k in tqdm(range(0, len(order), batch_size), desc="teacher pseudo-labels", disable=not progress,
                      unit="batch"):  # fmt: skip
            b = order[k : k + batch_size]
            enc = tok([sources[i] for i in b], return_tensors="pt", padding=True, truncation=True,
                      max_length=max_length)  # fmt: skip
            gen = teacher.generate(**enc, max_new_tokens=max_length, num_beams=1, do_sample=False)
            for i, text in zip(b, tok.batch_decode(gen, skip_special_tokens=True), strict=True):
                out[i] = text
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps(out))
    return out
