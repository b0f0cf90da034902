"""Per-unit sensitivity and the mixed-precision search on a tiny BERT with one layer made fragile on purpose.

The tiny model is random, so the test data are labelled with its own fp32 predictions (fp32 accuracy 1.0);
layer.1's feed-forward block then gets two extra channels whose contributions cancel exactly in float but
not after int8 rounding, which leaves fp32 untouched and wrecks any variant that quantizes layer.1.
"""

from __future__ import annotations

import pytest
import torch

from accelbench.exceptions import ConfigError, MethodNotApplicableError, UnknownNameError
from accelbench.records import read_records
from accelbench.sensitivity import (
    block_settings,
    check_block,
    layer_sensitivity,
    mixed_precision_search,
    run_block,
    sensitivity_order,
)

from .conftest import NEG, POS

SETTINGS = {"batch_sizes": [8], "realtime": False, "repeats": 2, "min_time_s": 0.02, "warmup": 1,
            "n_bootstrap": 20}  # fmt: skip
BIG = 1e4  # the extra channels' scale: their int8 rounding error dwarfs the hidden states


def _texts(n: int, seed: int) -> list[str]:
    import random

    rng = random.Random(seed)
    words = [w for t in POS + NEG for w in t.split()]
    return [" ".join(rng.choice(words) for _ in range(rng.randint(3, 9))) for _ in range(n)]


@pytest.fixture(scope="module")
def fragile(tmp_path_factory):
    """(checkpoint, data root): a 2-layer BERT whose layer.1 breaks under int8; sst2 labelled by its fp32."""
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    from accelbench.models import minilm_path

    torch.manual_seed(0)
    tok = AutoTokenizer.from_pretrained(minilm_path())
    cfg = BertConfig(
        vocab_size=tok.vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
        num_labels=2,
        hidden_act="relu",
        initializer_range=0.2,
    )  # fmt: skip  (wider than BERT's 0.02: logits that differ by input)
    model = BertForSequenceClassification(cfg).eval()
    ffn = model.bert.encoder.layer[1]
    with torch.no_grad():
        # channels 62, 63 become a pair: relu(2a) * w - relu(a) * 2w = 0 in float (powers of two are exact)
        row = torch.randn(32)
        ffn.intermediate.dense.weight[62], ffn.intermediate.dense.bias[62] = 2 * BIG * row, 0.0
        ffn.intermediate.dense.weight[63], ffn.intermediate.dense.bias[63] = BIG * row, 0.0
        w = torch.randn(32)
        ffn.output.dense.weight[:, 62], ffn.output.dense.weight[:, 63] = w, -2 * w
    candidates, train = _texts(150, 1), _texts(32, 2)
    with torch.no_grad():
        logits = model(**tok(candidates + train, padding=True, return_tensors="pt")).logits
    # a classifier bias that splits the examples in two halves; the 60 furthest from the boundary are the dev
    # set (ordinary int8 noise flips none of them), labelled with fp32's own predictions
    diff = logits[:, 1] - logits[:, 0]
    shift = float(diff.median())
    margin = (diff[: len(candidates)] - shift).abs()
    dev = [candidates[i] for i in sorted(margin.argsort(descending=True)[:60].tolist())]
    with torch.no_grad():
        model.classifier.bias[1] -= shift
        labels = model(**tok(dev + train, padding=True, return_tensors="pt")).logits.argmax(-1).tolist()
    out = tmp_path_factory.mktemp("fragile-bert")
    model.save_pretrained(out)
    tok.save_pretrained(out)
    root = tmp_path_factory.mktemp("fragile-data")
    (root / "sst2").mkdir()
    for name, texts, labs in (("dev.tsv", dev, labels[:60]), ("train.tsv", train, labels[60:])):
        rows = ["sentence\tlabel"] + [f"{t}\t{lab}" for t, lab in zip(texts, labs, strict=True)]
        (root / "sst2" / name).write_text("\n".join(rows) + "\n")
    return out, root


@pytest.fixture
def env(fragile, monkeypatch):
    import accelbench.experiment as ex

    monkeypatch.setenv("ACCELBENCH_DATA_DIR", str(fragile[1]))
    monkeypatch.setattr(ex, "measure_peaks", lambda run_dir=None: {})  # percent of peak is not under test
    return str(fragile[0])


@pytest.mark.slow
def test_sensitivity_ranks_the_fragile_layer_first_and_search_stops_at_the_floor(env, tmp_path):
    run = tmp_path / "run"
    table = layer_sensitivity("sst2", env, "dynamic-int8", run, SETTINGS, progress=False)
    assert list(table["unit"]) == ["layer.0", "layer.1", "pooler", "classifier"]
    assert table.attrs["fp32_metric"] == 1.0 and table.attrs["full_int8_delta"] < -0.15
    fragile = table.set_index("unit").loc["layer.1"]
    assert fragile["delta_quantized_alone"] < -0.15 and fragile["delta_fp32_alone"] > -0.05
    assert sensitivity_order(table)[0] == "layer.1"
    assert table["throughput_quantized_alone"].gt(0).all() and table["throughput_fp32_alone"].gt(0).all()
    assert table["speedup_quantized_alone"].gt(0).all() and table.attrs["full_int8_speedup"] > 0
    records = read_records(run)
    assert records["method"].nunique() == 2 + 2 * 4  # fp32, full int8, two per unit
    assert (records["status"] == "ok").all()

    search = mixed_precision_search("sst2", env, "dynamic-int8", run, SETTINGS, fraction=0.9, progress=False)
    assert list(search["k"]) == [0, 1] and list(search["meets_floor"]) == [False, True]
    assert list(search["chosen"]) == [False, True] and search.attrs["chosen"] == search["variant"].iloc[1]
    assert search["fp32_units"].iloc[1] == "layer.1" and "keeps" in search.attrs["message"]
    after = read_records(run)
    assert set(search["variant"]) <= set(after["method"])  # every attempt is a record
    assert after["method"].nunique() == 10  # both attempts were already recorded by the sensitivity pass
    assert len(after) == len(records)  # and were not measured again


@pytest.mark.slow
def test_search_where_nothing_meets_the_floor_keeps_every_attempt_and_says_so(env, tmp_path, caplog):
    run = tmp_path / "run"
    # layer.1 is not a candidate, so it stays quantized in every attempt (run as a notebook's block)
    block = {
        "methods": ["dynamic-int8"],
        "fraction": 0.95,
        "units": ["layer.0", "classifier"],
        "settings": SETTINGS,
    }
    ((label, (table, search)),) = run_block("sst2", env, run, block, progress=False).items()
    assert label == "dynamic-int8" and list(table["unit"]) == ["layer.0", "classifier"]
    assert list(search["k"]) == [0, 1, 2] and not search["meets_floor"].any() and not search["chosen"].any()
    assert search.attrs["chosen"] is None and "no attempt of 3 met the floor" in search.attrs["message"]
    assert "none is chosen" in caplog.text
    assert set(search["variant"]) <= set(read_records(run)["method"])


def test_bad_input_fails_before_any_work(tiny_bert, tiny_t5, tmp_path):
    run = tmp_path / "run"
    model = str(tiny_bert)
    with pytest.raises(UnknownNameError):
        layer_sensitivity("sst2", model, "no-such-method", run, SETTINGS)
    with pytest.raises(ConfigError, match="no fp32_units option") as e:
        mixed_precision_search("sst2", model, "bf16", run, SETTINGS)
    assert "dynamic-int8" in e.value.fix
    with pytest.raises(ConfigError, match="already names fp32_units"):
        layer_sensitivity("sst2", model, {"name": "dynamic-int8", "fp32_units": ["layer.0"]}, run, SETTINGS)
    for bad in (0, 1.5, -0.1):
        with pytest.raises(ConfigError, match="fraction"):
            mixed_precision_search("sst2", model, "dynamic-int8", run, SETTINGS, fraction=bad)
    with pytest.raises(ConfigError, match="max_attempts"):
        mixed_precision_search("sst2", model, "dynamic-int8", run, SETTINGS, max_attempts=0)
    with pytest.raises(ConfigError, match=r"no unit\(s\) layer.9.*layer.0, layer.1, pooler, classifier"):
        layer_sensitivity("sst2", model, "dynamic-int8", run, SETTINGS, units=["layer.9"])
    with pytest.raises(MethodNotApplicableError):
        layer_sensitivity("multi30k", str(tiny_t5), "pt2e-int8", run, SETTINGS)  # bert only
    assert not run.exists()  # nothing was recorded


def test_sensitivity_block_is_checked_and_filled_in():
    assert check_block(None) is None
    block = check_block({"methods": ["dynamic-int8", {"name": "ort-dynamic-int8", "per_channel": True}],
                         "n_eval": 300})  # fmt: skip
    assert block["fraction"] == 0.99 and block["max_attempts"] is None and block["units"] is None
    s = block_settings(block, {"batch_sizes": [1, 8, 32], "threads": 4, "n_eval": 1000})
    assert s.batch_sizes == [32] and not s.realtime and s.repeats == 2 and s.n_eval == 300 and s.threads == 4
    assert block_settings({**block, "settings": {"repeats": 3}}, None).repeats == 3
    for bad, match in (({"methods": "dynamic-int8"}, "non-empty list"), ({"methods": ["bf16"]}, "no fp32_units"),
                       ({"methods": ["dynamic-int8"], "fraction": 2}, "fraction"),
                       ({"methods": ["dynamic-int8"], "max_attempts": -1}, "max_attempts"),
                       ({"methods": ["dynamic-int8"], "n_eval": 0}, "n_eval"),
                       ({"methods": ["dynamic-int8"], "fractoin": 0.9}, "unknown key"), ([1], "mapping")):  # fmt: skip
        with pytest.raises(ConfigError, match=match):
            check_block(bad)
