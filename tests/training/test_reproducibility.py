"""Reproducible training: the same recipe and seed train the same weights, into two empty caches; another seed not.

Each tiny model trains a handful of steps, with dropout on, so init, data order and dropout masks all count.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import subprocess
import sys

import numpy as np
import pytest
import torch

from accelbench.models import ModelSpec, register_model
from accelbench.training import load_model


def tensor_hashes(folder) -> dict[str, str]:
    """sha256 of each tensor's bytes in the checkpoint's model.safetensors."""
    from safetensors.torch import load_file

    tensors = load_file(folder / "model.safetensors")
    return {k: hashlib.sha256(v.contiguous().numpy().tobytes()).hexdigest() for k, v in tensors.items()}


def train_in(cache, monkeypatch, spec: ModelSpec, seed: int) -> tuple[dict[str, str], dict]:
    """Train ``spec`` with ``seed`` into an empty cache folder; the tensors' hashes and the training log.

    The global random streams are left somewhere else before each training: only the recipe's seed may count.
    """
    monkeypatch.setenv("ACCELBENCH_CACHE", str(cache))
    noise = len(str(cache)) + ord(str(cache)[-1])
    random.seed(noise)
    np.random.seed(noise)
    torch.manual_seed(noise)
    spec = register_model(spec.with_overrides(train={"seed": seed}), overwrite=True)
    loaded = load_model(spec.name, progress=False)
    assert loaded.path.startswith(str(cache))  # trained here, not found in another cache
    return tensor_hashes(spec.checkpoint_dir()), loaded.info["training"]


def check_reproducible(tmp_path, monkeypatch, spec: ModelSpec, steps: int) -> None:
    first, log = train_in(tmp_path / "a", monkeypatch, spec, seed=0)
    second, log2 = train_in(tmp_path / "b", monkeypatch, spec, seed=0)
    assert first == second
    assert log["weights_sha256"] == log2["weights_sha256"]
    assert (log["budget"], log["steps"], log["planned_steps"], log["stopped_by"]) == (
        "steps",
        steps,
        steps,
        "steps",
    )
    assert log["seed"] == 0 and log["threads"] >= 1
    other, log3 = train_in(tmp_path / "c", monkeypatch, spec, seed=1)
    assert other != first and log3["weights_sha256"] != log["weights_sha256"] and log3["seed"] == 1


def test_a_classifier_trains_the_same_weights_twice(tiny_bert, tmp_path, monkeypatch):
    spec = ModelSpec(name="repro-clf", family="bert", base=str(tiny_bert),
                     recipe={"kind": "classifier", "task": "sst2", "train_size": 48, "batch_size": 8, "epochs": None,
                             "max_steps": 5, "lr": 1e-3})  # fmt: skip
    check_reproducible(tmp_path, monkeypatch, spec, steps=5)


def test_a_t5_and_its_tokenizer_train_the_same_twice(tmp_path, monkeypatch):
    spec = ModelSpec(name="repro-t5", family="t5",
                     recipe={"kind": "t5-scratch", "task": "multi30k", "vocab_size": 100, "d_model": 32,
                             "num_layers": 1, "num_heads": 2, "d_ff": 64, "dropout": 0.1, "batch_size": 8,
                             "max_steps": 5, "lr": 3e-3, "warmup_steps": 2})  # fmt: skip
    check_reproducible(tmp_path, monkeypatch, spec, steps=5)
    a, b = (json.loads((tmp_path / c / "models").glob("repro-t5-*/tokenizer.json").__next__().read_text())
            for c in ("a", "b"))  # fmt: skip
    assert a == b


def test_a_student_trains_the_same_weights_twice(tiny_bert, tmp_path, monkeypatch):
    register_model(ModelSpec(name="repro-teacher", base=str(tiny_bert), task="sst2"), overwrite=True)
    spec = ModelSpec(name="repro-student", family="bert", task="sst2",
                     recipe={"kind": "distill-classifier", "teacher": "repro-teacher", "layers": [1],
                             "batch_size": 8, "max_steps": 4, "lr": 1e-3})  # fmt: skip
    check_reproducible(tmp_path, monkeypatch, spec, steps=4)


SCRIPT = """
from accelbench.models import ModelSpec, register_model
from accelbench.training import load_model
register_model(ModelSpec(name="repro-t5", family="t5", recipe={"kind": "t5-scratch", "task": "multi30k",
    "vocab_size": 100, "d_model": 32, "num_layers": 1, "num_heads": 2, "d_ff": 64, "dropout": 0.1,
    "batch_size": 8, "max_steps": 5, "lr": 3e-3, "warmup_steps": 2}))
loaded = load_model("repro-t5", progress=False)
print(loaded.info["training"]["weights_sha256"])
print(loaded.tokenizer.backend_tokenizer.to_str())
"""


@pytest.mark.slow  # two fresh interpreters
def test_two_processes_train_the_same_t5(tmp_path, data_root):
    """Hash seeds differ between processes (Python's and the tokenizer trainer's): weights and tokenizer must not."""
    outputs = []
    for i, hash_seed in enumerate(("1", "2")):
        env = {**os.environ, "ACCELBENCH_DATA_DIR": str(data_root), "ACCELBENCH_CACHE": str(tmp_path / str(i)),
               "PYTHONHASHSEED": hash_seed, "TOKENIZERS_PARALLELISM": "true"}  # fmt: skip
        out = subprocess.run(
            [sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=300
        )
        assert out.returncode == 0, out.stderr[-2000:]
        digest, tokenizer = out.stdout.strip().splitlines()[-2:]
        assert len(digest) == 64 and json.loads(tokenizer)["model"]["type"] == "Unigram"
        outputs.append((digest, tokenizer))
    assert outputs[0] == outputs[1]
