"""Shared fixtures: tiny BERT and T5 checkpoints built from configs, tiny task data, no network."""

from __future__ import annotations

import gzip
import os
import random
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("MPLBACKEND", "Agg")

POS = ["a wonderful , moving film", "great acting and a clever script", "a joy to watch", "funny and warm",
       "one of the best films of the year", "beautifully made", "smart , tender and true"]  # fmt: skip
NEG = ["a dull , lifeless mess", "boring and far too long", "the worst script in years", "flat and tedious",
       "a waste of a good cast", "clumsy and stupid", "painful to sit through"]  # fmt: skip
EN = ["a man rides a bike .", "two dogs play in the snow .", "a woman reads a book .", "children run on the beach .",
      "a man plays the guitar .", "a girl eats an apple ."]  # fmt: skip
DE = ["ein mann fährt fahrrad .", "zwei hunde spielen im schnee .", "eine frau liest ein buch .",
      "kinder laufen am strand .", "ein mann spielt gitarre .", "ein mädchen isst einen apfel ."]  # fmt: skip


def _write_sst2(folder: Path, n_train: int = 64, n_dev: int = 40) -> None:
    rng = random.Random(0)
    folder.mkdir(parents=True, exist_ok=True)
    for name, n in (("train.tsv", n_train), ("dev.tsv", n_dev)):
        rows = ["sentence\tlabel"]
        for i in range(n):
            label = i % 2
            rows.append(f"{rng.choice(POS if label else NEG)} {'indeed' * (i % 3)}\t{label}")
        (folder / name).write_text("\n".join(rows) + "\n")


def _write_multi30k(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for split, n in (("train", 48), ("val", 12), ("test_2016_flickr", 12)):
        for lang, lines in (("en", EN), ("de", DE)):
            with gzip.open(folder / f"{split}.{lang}.gz", "wt", encoding="utf-8") as f:
                f.write("\n".join(lines[i % len(lines)] for i in range(n)) + "\n")


@pytest.fixture(scope="session")
def data_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("data")
    _write_sst2(root / "sst2")
    _write_multi30k(root / "multi30k")
    return root


@pytest.fixture
def restore_registries():
    """Tasks and models registered by a test are gone after it (other tests list the known names).

    Opt in per module with ``pytestmark = pytest.mark.usefixtures("restore_registries")``.
    """
    from accelbench.models import MODELS
    from accelbench.tasks import TASKS

    saved = {r: dict(r._entries) for r in (TASKS, MODELS)}
    yield
    for r, entries in saved.items():
        r._entries.clear()
        r._entries.update(entries)


@pytest.fixture(autouse=True)
def _isolated(data_root, tmp_path_factory, monkeypatch):
    """Every test reads the tiny data and writes checkpoints to a private cache."""
    monkeypatch.setenv("ACCELBENCH_DATA_DIR", str(data_root))
    monkeypatch.setenv("ACCELBENCH_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory) -> Path:
    """A 2-layer, 32-wide BERT classifier with the MiniLM tokenizer, saved like any checkpoint."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    from accelbench.models import minilm_path

    torch.manual_seed(0)
    out = tmp_path_factory.mktemp("tiny-bert")
    tok = AutoTokenizer.from_pretrained(minilm_path())
    cfg = BertConfig(vocab_size=tok.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=64, max_position_embeddings=128, num_labels=2)  # fmt: skip
    BertForSequenceClassification(cfg).save_pretrained(out)
    tok.save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def tiny_t5(tmp_path_factory) -> Path:
    """A 1+1-layer, 32-wide T5 with a 120-piece unigram tokenizer trained on the tiny corpus."""
    import torch
    from transformers import T5Config, T5ForConditionalGeneration

    from accelbench.training.t5 import train_tokenizer

    torch.manual_seed(0)
    out = tmp_path_factory.mktemp("tiny-t5")
    tok = train_tokenizer(EN + DE, vocab_size=120)
    cfg = T5Config(vocab_size=len(tok), d_model=32, d_kv=16, d_ff=64, num_layers=1, num_decoder_layers=1, num_heads=2,
                   pad_token_id=0, eos_token_id=1, decoder_start_token_id=0)  # fmt: skip
    T5ForConditionalGeneration(cfg).save_pretrained(out)
    tok.save_pretrained(out)
    return out


QUICK = {"batch_sizes": [1, 4], "min_time_s": 0.05, "warmup": 1, "max_requests": 5, "n_bootstrap": 50,
         "max_new_tokens": 8}  # fmt: skip
