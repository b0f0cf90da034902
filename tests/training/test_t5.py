"""The T5 tokenizer: trained the same way every time, whatever order the trainer's hash sets come out in."""

from __future__ import annotations

import json
import random

from accelbench.training.t5 import canonical_unigram, train_tokenizer

from ..conftest import DE, EN


def _tokenizer_json(vocab: list[list]) -> str:
    return json.dumps({"model": {"type": "Unigram", "unk_id": 2, "vocab": vocab}})


def test_canonical_unigram_ignores_order_score_noise_and_the_added_characters_ladder():
    specials = [["<pad>", 0.0], ["</s>", 0.0], ["<unk>", 0.0]]
    learned = [["▁a", -2.0], ["e", -2.5], ["ein", -6.0]]  # "ein" holds the lowest learned score
    one = specials + learned + [["x", -6.0], ["y", -6.0 + 1e-4], ["z", -6.0 + 2e-4]]
    rng = random.Random(0)
    rest = [
        ["e", -2.5 + 3e-15],
        ["▁a", -2.0],
        ["ein", -6.0],
        ["z", -6.0],
        ["x", -6.0 + 1e-4],
        ["y", -6.0 + 2e-4],
    ]
    rng.shuffle(rest)  # another run: another order, the ladder's scores dealt to other characters
    two = specials + rest
    a, b = canonical_unigram(_tokenizer_json(one)), canonical_unigram(_tokenizer_json(two))
    assert a == b
    vocab = json.loads(a)["model"]["vocab"]
    assert vocab[:3] == specials and vocab[3:5] == [["▁a", -2.0], ["e", -2.5]]
    assert vocab[5:] == [["ein", -6.0], ["x", -6.0], ["y", -6.0], ["z", -6.0]]  # one shared score, then text


def test_a_learned_character_above_the_ladder_keeps_its_score():
    vocab = [["<pad>", 0.0], ["</s>", 0.0], ["<unk>", 0.0], ["ab", -3.0], ["q", -3.0 + 5e-4], ["x", -3.0]]
    out = json.loads(canonical_unigram(_tokenizer_json(vocab)))["model"]["vocab"]
    assert ["q", -2.9995] in out and ["x", -3.0] in out  # q is not on the ladder's next rung (-2.9999)


def test_train_tokenizer_gives_the_same_tokenizer_every_time():
    texts = [EN[i % len(EN)] for i in range(48)] + [DE[i % len(DE)] for i in range(48)]
    first = train_tokenizer(texts, 100)
    for _ in range(4):  # the raw trainer's ids and scores differ between these runs
        assert train_tokenizer(texts, 100).backend_tokenizer.to_str() == first.backend_tokenizer.to_str()
    assert [first.convert_ids_to_tokens(i) for i in range(3)] == ["<pad>", "</s>", "<unk>"]
    assert first("ein mann .").input_ids[-1] == 1
