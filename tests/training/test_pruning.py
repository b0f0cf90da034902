"""Structured pruning: kept parts unchanged, importance ranks heads, plans keep a head per layer, bad recipes
refused before work, and a tiny prune-classifier run whose checkpoint every runtime applies to."""

from __future__ import annotations

import json

import pytest
import torch

from accelbench import models, recipes
from accelbench.exceptions import ConfigError
from accelbench.models import ModelSpec, register_model
from accelbench.training import pruning


@pytest.fixture(scope="module")
def bert(tiny_bert):
    """The tiny BERT (2 layers, 2 heads of 16, 64 FFN neurons) with non-zero biases and a sharp classifier."""
    from transformers import AutoModelForSequenceClassification

    torch.manual_seed(1)
    m = AutoModelForSequenceClassification.from_pretrained(tiny_bert).eval()
    with torch.no_grad():
        for name, p in m.named_parameters():
            if name.endswith("bias") and "LayerNorm" not in name:
                p.normal_(0, 0.1)
        m.classifier.weight.mul_(20.0)
    return m


def _inputs():
    x = torch.tensor([[101, 2023, 2143, 2003, 2307, 102, 0], [101, 1037, 11771, 6752, 4830, 2099, 102]])
    return {"input_ids": x, "attention_mask": (x != 0).long()}


def test_nothing_pruned_gives_the_same_logits(bert):
    pruned = pruning.prune_model(bert, pruning.full_plan(bert))
    assert type(pruned).__name__ == "PrunedBertForSequenceClassification"
    assert pruning.n_params(pruned) == pruning.n_params(bert)
    with torch.no_grad():
        assert torch.allclose(pruned(**_inputs()).logits, bert(**_inputs()).logits, atol=1e-6)


def test_pruned_model_equals_the_original_with_removed_parts_zeroed(bert):
    import copy

    plan = pruning.PrunePlan(
        layers=[0, 1], heads=[[1], [0, 1]], neurons=[list(range(0, 64, 2)), list(range(40))]
    )
    pruned = pruning.prune_model(bert, plan)
    d = 16
    masked = copy.deepcopy(bert)
    with (
        torch.no_grad()
    ):  # head 0 of layer 0 gives a zero context (V rows); dropped neurons output gelu(0) = 0
        v = masked.bert.encoder.layer[0].attention.self.value
        v.weight[:d] = 0
        v.bias[:d] = 0
        for li, kept in enumerate(plan.neurons):
            dense = masked.bert.encoder.layer[li].intermediate.dense
            drop = [i for i in range(64) if i not in kept]
            dense.weight[drop] = 0
            dense.bias[drop] = 0
    with torch.no_grad():
        assert torch.allclose(pruned(**_inputs()).logits, masked(**_inputs()).logits, atol=1e-5)
        assert not torch.allclose(pruned(**_inputs()).logits, bert(**_inputs()).logits, atol=1e-4)
    removed = 3 * (32 * d + d) + d * 32 + 32 * (24 + 32) + (24 + 32) + (24 + 32) * 32
    assert (
        plan.params_before - plan.params_after == removed == pruning.n_params(bert) - pruning.n_params(pruned)
    )
    assert pruned.config.heads_per_layer == [1, 2] and pruned.config.intermediate_per_layer == [32, 40]


def test_dropping_layers_keeps_the_chosen_ones(bert):
    pruned = pruning.prune_model(bert, pruning.full_plan(bert, [1]))
    assert pruned.config.num_hidden_layers == 1
    assert torch.equal(
        pruned.bert.encoder.layer[0].output.dense.weight, bert.bert.encoder.layer[1].output.dense.weight
    )


def test_a_pruned_model_prunes_again(bert):
    once = pruning.prune_model(
        bert, pruning.PrunePlan([0, 1], [[0, 1], [1]], [list(range(40)), list(range(64))])
    )
    assert pruning.layer_shapes(once) == ([2, 1], [40, 64])
    twice = pruning.prune_model(once, pruning.full_plan(once, [1]))  # keeps layer 1 with its one head
    assert twice.config.heads_per_layer == [1] and twice.config.attention_head_size == 16
    assert torch.equal(twice.bert.encoder.layer[0].attention.self.query.weight,
                       bert.bert.encoder.layer[1].attention.self.query.weight[16:])  # fmt: skip
    with torch.no_grad():
        full = pruning.prune_model(once, pruning.full_plan(once))
        assert torch.allclose(full(**_inputs()).logits, once(**_inputs()).logits, atol=1e-6)


def test_importance_ranks_a_scaled_up_head_above_a_zeroed_one(bert):
    import copy

    m = copy.deepcopy(bert)
    with torch.no_grad():  # layer 0: head 0's output columns zeroed, head 1's scaled up
        w = m.bert.encoder.layer[0].attention.output.dense.weight
        w[:, :16] = 0
        w[:, 16:] *= 10
    x = _inputs()
    batches = [{**x, "labels": torch.tensor([0, 1])}, {**x, "labels": torch.tensor([1, 1])}]
    before = {k: v.clone() for k, v in m.state_dict().items()}
    heads, ffn = pruning.importance_scores(m, batches)
    assert heads[0][0] == 0 and heads[0][1] > 0
    assert [h.shape[0] for h in heads] == [2, 2] and [f.shape[0] for f in ffn] == [64, 64]
    assert all(torch.equal(before[k], v) for k, v in m.state_dict().items())  # scoring changes nothing
    assert not m.bert.encoder.layer[0].attention.self._forward_hooks  # hooks removed
    pseudo, _ = pruning.importance_scores(m, batches, loss="pseudo")
    assert pseudo[0][1] > pseudo[0][0] == 0


def test_plans_never_empty_a_layer():
    scores = [torch.tensor([0.1, 0.2]), torch.tensor([5.0, 6.0])]
    assert pruning.keep_indices(scores, 2) == [[1], [1]]  # the global lowest two would empty layer 0
    assert pruning.keep_indices(scores, [1, 0]) == [[1], [0, 1]]
    normed = pruning.normalise(scores)
    assert torch.allclose(normed[1].norm(), torch.tensor(1.0))
    with pytest.raises(ConfigError):
        pruning.keep_indices(scores, 3)


@pytest.fixture
def tiny_teacher(tiny_bert):
    return register_model(ModelSpec(name="prune-teacher", base=str(tiny_bert), task="sst2"), overwrite=True)


def _spec(**train):
    recipe = {"kind": "prune-classifier", "teacher": "prune-teacher", **train}
    return ModelSpec(name="pruned-student", family="bert", task="sst2", recipe=recipe)


@pytest.mark.parametrize("train, match", [
    ({"heads": -0.1}, r"heads is the share .* in \[0, 1\)"),
    ({"ffn": 1.0}, r"ffn is the share"),
    ({"heads": True}, r"heads is the share"),
    ({"scope": "model"}, "scope must be one of"),
    ({"importance_batches": 0}, "importance_batches must be a positive"),
    ({"losses": {"kd": 1.0, "hidden": 1.0}}, "unknown loss"),
])  # fmt: skip
def test_bad_prune_recipes_are_refused_when_built(train, match):
    with pytest.raises(ConfigError, match=match) as e:
        recipes.build_recipe({"kind": "prune-classifier", **train})
    assert e.value.fix


@pytest.mark.parametrize("train, match", [
    ({"layers": [0, 2]}, "does not fit teacher 'prune-teacher': it has 2 layers"),
    ({"heads": 0.9}, "would remove 3 of the 4 heads .* leaving a layer without any"),
    ({"layers": [0, 1], "heads": 0.75}, "would remove 3 of the 4 heads"),
])  # fmt: skip
def test_prune_plans_that_do_not_fit_the_teacher_are_refused_before_work(tiny_teacher, train, match):
    with pytest.raises(ConfigError, match=match) as e:
        models.check_recipe(_spec(**train))
    assert e.value.fix
    assert not _spec(**train).checkpoint_dir().exists()


def test_planned_config_of_a_pruned_student(tiny_teacher):
    models.check_recipe(_spec(heads=0.5, ffn=0.25, scope="layer"))
    cfg = models.planned_config(_spec(heads=0.5, ffn=0.25, scope="layer", layers=[1]))
    assert cfg.model_type == "accelbench-pruned-bert"
    assert (cfg.num_hidden_layers, cfg.heads_per_layer, cfg.intermediate_per_layer) == (1, [1], [48])
    models.check_recipe(models.resolve_model("minilm-sst2-pruned"))  # the built-in fits its teacher's config


@pytest.mark.slow  # trains (a few steps) and exports to ONNX: ~15 s
def test_tiny_prune_classifier_run_gives_a_checkpoint_every_runtime_applies_to(tiny_teacher):
    import numpy as np

    from accelbench.methods import get_method
    from accelbench.training import load_model

    spec = register_model(_spec(heads=0.5, ffn=0.5, importance_batches=2, batch_size=8, max_steps=4, lr=1e-3),
                          overwrite=True)  # fmt: skip
    loaded = load_model(spec, progress=False)
    assert type(loaded.model).__name__ == "PrunedBertForSequenceClassification"
    log = json.loads((spec.checkpoint_dir() / "accelbench.json").read_text())["training"]
    plan = log["prune_plan"]
    assert (
        plan["layers"] == [0, 1] and sum(plan["heads_per_layer"]) == 2 and min(plan["heads_per_layer"]) == 1
    )
    assert sum(plan["intermediate_per_layer"]) == 64 and plan["params_after"] == log["student_params"]
    assert plan["params_before"] == log["teacher_params"] > plan["params_after"]
    assert log["steps"] == 4 and log["teacher"] == "prune-teacher"
    again = models.load_checkpoint(spec.checkpoint_dir().as_posix())  # by path, through the Auto classes
    texts = ["a joy to watch", "boring and far too long , a dull mess"]
    enc = loaded.tokenizer(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        ref = loaded.model(**enc).logits.numpy()
        assert np.allclose(again.model(**enc).logits.numpy(), ref)
    fp32 = get_method("ort-fp32").apply(loaded)
    assert fp32.details["optimizer"]["attention_fused"]  # each layer's own head count, read from the graph
    assert np.allclose(fp32.predictor.logits(texts), ref, atol=1e-4)
    for name in ("ort-dynamic-int8", "dynamic-int8"):
        predictor = get_method(name).apply(loaded).predictor
        assert np.asarray(predictor.logits(texts)).shape == (2, 2)


def test_onnx_runtime_fuses_each_layer_with_its_own_head_count(bert, tiny_bert, tmp_path):
    import numpy as np
    from transformers import AutoTokenizer

    from accelbench.methods import get_method
    from accelbench.models import LoadedModel

    plan = pruning.PrunePlan(layers=[0, 1], heads=[[0, 1], [1]], neurons=[list(range(50)), list(range(20))])
    pruned = pruning.prune_model(bert, plan)
    tok = AutoTokenizer.from_pretrained(tiny_bert)
    loaded = LoadedModel(spec=ModelSpec(name="uneven", family="bert"), model=pruned, tokenizer=tok, family="bert",
                         path=str(tmp_path))  # fmt: skip
    texts = ["a joy to watch", "boring and far too long , a dull mess", "flat"]
    with torch.no_grad():
        ref = pruned(**tok(texts, padding=True, return_tensors="pt")).logits.numpy()
    variant = get_method("ort-fp32").apply(loaded)
    opt = variant.details["optimizer"]
    assert opt["num_heads"] == 0 and opt["heads_per_layer"] == [2, 1] and "attention_note" not in opt
    assert opt["fusions"]["Attention"] == 2
    assert np.allclose(variant.predictor.logits(texts), ref, atol=1e-4)
    quantized = get_method("ort-dynamic-int8").apply(loaded).predictor.logits(texts)
    assert (np.argmax(quantized, -1) == np.argmax(ref, -1)).mean() >= 2 / 3


def test_a_distilled_student_is_pruned_like_any_teacher(tiny_teacher):
    from accelbench.training import load_model

    register_model(ModelSpec(name="prune-student", family="bert", task="sst2", recipe={
        "kind": "distill-classifier", "teacher": "prune-teacher", "layers": [1], "batch_size": 8, "max_steps": 2}),
        overwrite=True)  # fmt: skip
    spec = register_model(ModelSpec(name="pruned-of-student", family="bert", task="sst2", recipe={
        "kind": "prune-classifier", "teacher": "prune-student", "heads": 0.5, "ffn": 0.5, "scope": "layer",
        "importance_batches": 1, "batch_size": 8, "max_steps": 2}), overwrite=True)  # fmt: skip
    loaded = load_model(spec, progress=False)
    assert loaded.model.config.heads_per_layer == [1] and loaded.model.config.intermediate_per_layer == [32]
    assert models.planned_config(spec).heads_per_layer == [1]  # now read from the checkpoint
    # and the other way round: a pruned model is the teacher of a distilled student that copies its layers
    again = register_model(ModelSpec(name="student-of-pruned", family="bert", task="sst2", recipe={
        "kind": "distill-classifier", "teacher": "pruned-of-student", "layers": [0], "batch_size": 8,
        "max_steps": 2}), overwrite=True)  # fmt: skip
    student = load_model(again, progress=False).model
    assert student.config.heads_per_layer == [1] and student.config.intermediate_per_layer == [32]


def test_a_graph_without_head_counts_stays_unfused_and_right(bert, tiny_bert, tmp_path, monkeypatch):
    """The stock reshape (-1 heads) leaves no count in the graph: attention stays unfused, the note says why."""
    from transformers import AutoTokenizer
    from transformers.models.bert.modeling_bert import BertSelfAttention

    from accelbench.architectures.pruned_bert import PrunedBertSelfAttention
    from accelbench.export.onnx_classifier import export_classifier
    from accelbench.export.onnx_graph import optimize_graph
    from accelbench.runtimes.onnxruntime import make_session

    monkeypatch.setattr(PrunedBertSelfAttention, "forward", BertSelfAttention.forward)
    pruned = pruning.prune_model(bert, pruning.PrunePlan([0, 1], [[1], [0, 1]], [list(range(64))] * 2))
    tok = AutoTokenizer.from_pretrained(tiny_bert)
    export_classifier(pruned, tok, tmp_path / "exported.onnx")
    opt = optimize_graph(tmp_path / "exported.onnx", tmp_path / "optimized.onnx", pruned.config)
    assert not opt["attention_fused"] and "attention not fused" in opt["attention_note"]
    enc = tok(["a joy to watch", "flat"], padding=True, return_tensors="np")
    session = make_session(tmp_path / "optimized.onnx")
    out = session.run(None, {i.name: enc[i.name] for i in session.get_inputs()})[0]
    with torch.no_grad():
        ref = pruned(**tok(["a joy to watch", "flat"], padding=True, return_tensors="pt")).logits.numpy()
    assert abs(out - ref).max() < 1e-4


@pytest.mark.slow  # measures variants end to end
def test_pruned_model_records_compare_with_the_teacher(tiny_teacher, tmp_path):
    from accelbench import notebook
    from accelbench.experiment import run_experiment
    from accelbench.records import read_current

    from ..conftest import QUICK

    register_model(
        _spec(heads=0.5, ffn=0.5, importance_batches=1, batch_size=16, max_steps=2), overwrite=True
    )
    notebook.ensure_teacher_baseline("sst2", "prune-teacher", tmp_path, QUICK)
    recs = run_experiment("sst2", "pruned-student", ["fp32", "ort-fp32"], tmp_path, QUICK, progress=False)
    assert (recs["status"] == "ok").all() and set(recs["teacher"]) == {"prune-teacher"}
    assert json.loads(recs["model_recipe"].iloc[0])["kind"] == "prune-classifier"
    cmp = notebook.compare_with_teacher(read_current(tmp_path, "sst2"), "prune-teacher", batch_size=32)
    assert set(cmp["variant"]) == {"prune-teacher:fp32", "pruned-student:fp32", "pruned-student:ort-fp32"}


# T5: FFN neurons of each encoder and decoder block (prune-t5)


def _t5(ffn: str = "relu", n_enc: int = 2, n_dec: int = 2):
    """A tiny T5 (d_model 32, d_ff 64) with a sharp output layer, so removed neurons change the logits."""
    from transformers import T5Config, T5ForConditionalGeneration

    torch.manual_seed(2)
    cfg = T5Config(vocab_size=60, d_model=32, d_kv=8, d_ff=64, num_layers=n_enc, num_decoder_layers=n_dec,
                   num_heads=4, feed_forward_proj=ffn, pad_token_id=0, eos_token_id=1,
                   decoder_start_token_id=0)  # fmt: skip
    m = T5ForConditionalGeneration(cfg).eval()
    with torch.no_grad():
        m.lm_head.weight.mul_(5.0)
    return m


def _t5_batch():
    x = torch.tensor([[5, 9, 13, 22, 1, 0], [7, 8, 30, 41, 50, 1]])
    y = torch.tensor([[4, 17, 33, 1, -100], [6, 19, 26, 12, 1]])
    return {"input_ids": x, "attention_mask": (x != 0).long(), "labels": y}


def _t5_logits(m):
    b = _t5_batch()
    with torch.no_grad():
        return m(input_ids=b["input_ids"], attention_mask=b["attention_mask"], labels=b["labels"]).logits


@pytest.mark.parametrize("ffn", ["relu", "gated-gelu"])
def test_pruned_t5_equals_the_original_with_removed_neurons_zeroed(ffn):
    import copy

    m = _t5(ffn)
    plan = pruning.T5PrunePlan(encoder=[list(range(0, 64, 2)), list(range(64))],
                               decoder=[[3, 10, 60], list(range(50))])  # fmt: skip
    pruned = pruning.prune_t5(m, plan)
    assert type(pruned).__name__ == "PrunedT5ForConditionalGeneration"
    assert pruned.config.encoder_ff_per_layer == [32, 64] and pruned.config.decoder_ff_per_layer == [3, 50]
    masked = copy.deepcopy(m)
    with torch.no_grad():  # a neuron whose wo column is zero adds nothing, whatever its activation
        for stack, kept in (("encoder", plan.encoder), ("decoder", plan.decoder)):
            for block, keep in zip(getattr(masked, stack).block, kept, strict=True):
                drop = [i for i in range(64) if i not in keep]
                block.layer[-1].DenseReluDense.wo.weight[:, drop] = 0
    assert torch.allclose(_t5_logits(pruned), _t5_logits(masked), atol=1e-5)
    assert not torch.allclose(_t5_logits(pruned), _t5_logits(m), atol=1e-3)
    kept = pruned.decoder.block[0].layer[-1].DenseReluDense
    assert torch.equal(kept.wo.weight, m.decoder.block[0].layer[-1].DenseReluDense.wo.weight[:, [3, 10, 60]])
    n_in = 2 if ffn.startswith("gated") else 1
    removed = (32 + 0 + 61 + 14) * 32 * (n_in + 1)
    assert plan.params_before - plan.params_after == removed == pruning.n_params(m) - pruning.n_params(pruned)
    full = pruning.prune_t5(m, pruning.full_t5_plan(m))  # nothing removed: the same model
    assert torch.allclose(_t5_logits(full), _t5_logits(m), atol=1e-6)
    assert pruning.t5_ffn_shapes(pruning.prune_t5(pruned, pruning.full_t5_plan(pruned))) == (
        [32, 64],
        [3, 50],
    )


def test_t5_importance_ranks_a_scaled_up_neuron_above_a_zeroed_one():
    m = _t5()
    with torch.no_grad():  # decoder block 1: neuron 5's output column zeroed, neuron 6's scaled up
        wo = m.decoder.block[1].layer[-1].DenseReluDense.wo.weight
        wo[:, 5] = 0
        wo[:, 6] *= 10
    before = {k: v.clone() for k, v in m.state_dict().items()}
    enc, dec = pruning.t5_importance_scores(m, [_t5_batch(), _t5_batch()])
    assert [s.shape[0] for s in enc + dec] == [64] * 4
    assert dec[1][5] == 0 and dec[1][6] > dec[1].median() > 0
    assert all(torch.equal(before[k], v) for k, v in m.state_dict().items())  # scoring changes nothing
    assert not m.decoder.block[1].layer[-1].DenseReluDense.wo._forward_pre_hooks  # hooks removed
    _, pseudo = pruning.t5_importance_scores(m, [_t5_batch()], loss="pseudo")
    assert pseudo[1][5] == 0 and pseudo[1][6] > 0
    plan = pruning.make_t5_plan(enc, dec, {"remove_encoder_ffn": 0, "remove_decoder_ffn": [0, 32]}, "layer")
    assert plan.encoder_ff_per_layer == [64, 64] and plan.decoder_ff_per_layer == [64, 32]
    assert 6 in plan.decoder[1] and 5 not in plan.decoder[1] and plan.decoder[1] == sorted(plan.decoder[1])


def test_bad_prune_t5_recipes_are_refused_when_built():
    for train, match in (({"decoder_ffn": 1.0}, r"prune-t5: decoder_ffn is the share .* in \[0, 1\)"),
                         ({"encoder_ffn": -0.1}, "encoder_ffn is the share"),
                         ({"scope": "model"}, "scope must be one of"),
                         ({"importance_loss": "kd"}, "zero gradient"),
                         ({"importance_batches": 0}, "importance_batches must be a positive"),
                         ({"losses": {"hidden": 1.0}}, "unknown loss"),
                         ({"targets": "teacher"}, "targets must be one of")):  # fmt: skip
        with pytest.raises(ConfigError, match=match) as e:
            recipes.build_recipe({"kind": "prune-t5", **train})
        assert e.value.fix


def test_prune_t5_counts_refuse_what_does_not_fit_the_teacher():
    from transformers import BertConfig, T5Config

    r = recipes.PruneT5Recipe(teacher="t", decoder_ffn=0.9)
    with pytest.raises(ConfigError, match="prune-t5 prunes T5 models") as e:
        recipes.prune_t5_counts(r, BertConfig())
    assert "prune-classifier" in e.value.fix
    narrow = T5Config(d_ff=2, num_layers=3, num_decoder_layers=3)
    with pytest.raises(ConfigError, match="would remove 5 of the 6 FFN neurons") as e:
        recipes.prune_t5_counts(r, narrow)  # global: 5 would leave a block without any
    assert "decoder_ffn <= 0.500" in e.value.fix
    per_block = recipes.prune_t5_counts(
        recipes.PruneT5Recipe(teacher="t", decoder_ffn=0.9, scope="layer"), narrow
    )
    assert per_block["remove_decoder_ffn"] == [1, 1, 1] and per_block["remove_encoder_ffn"] == [0, 0, 0]


@pytest.fixture(scope="module")
def trained_t5(tiny_t5, tmp_path_factory):
    """The tiny T5 (1+1 blocks, 64 FFN neurons) trained 100 steps on EN->DE (a second), so greedy outputs
    differ by source and end before the limit."""
    from transformers import AutoTokenizer, T5ForConditionalGeneration

    from accelbench.training.loop import pad

    from ..conftest import DE, EN

    torch.manual_seed(0)
    m = T5ForConditionalGeneration.from_pretrained(tiny_t5).train()
    tok = AutoTokenizer.from_pretrained(tiny_t5)
    x, y = pad(tok(EN)["input_ids"], 0), pad(tok(DE)["input_ids"], -100)
    opt = torch.optim.AdamW(m.parameters(), lr=1e-2)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny matrices: threads only wait on each other on a busy machine
    try:
        for _ in range(100):
            loss = m(input_ids=x, attention_mask=(x != 0).long(), labels=y).loss
            opt.zero_grad()
            loss.backward()
            opt.step()
    finally:
        torch.set_num_threads(threads)
    out = tmp_path_factory.mktemp("trained-t5")
    m.eval().save_pretrained(out)
    tok.save_pretrained(out)
    return out


@pytest.fixture
def t5_teacher(trained_t5):
    return register_model(ModelSpec(name="prune-t5-teacher", base=str(trained_t5), task="multi30k"),
                          overwrite=True)  # fmt: skip


@pytest.fixture
def untrained_t5_teacher(tiny_t5):
    return register_model(ModelSpec(name="prune-t5-teacher", base=str(tiny_t5), task="multi30k"),
                          overwrite=True)  # fmt: skip


def _t5_spec(name="pruned-t5-student", **train):
    recipe = {"kind": "prune-t5", "teacher": "prune-t5-teacher", **train}
    return ModelSpec(name=name, family="t5", task="multi30k", recipe=recipe)


def test_prune_t5_students_are_checked_and_planned_before_work(untrained_t5_teacher, tiny_bert):
    cfg = models.planned_config(_t5_spec(decoder_ffn=0.5, encoder_ffn=0.25))
    assert cfg.model_type == "accelbench-pruned-t5"
    assert (cfg.encoder_ff_per_layer, cfg.decoder_ff_per_layer) == ([48], [32])
    assert models.model_family(_t5_spec()) == "t5"
    register_model(ModelSpec(name="prune-bert-teacher", base=str(tiny_bert), task="sst2"), overwrite=True)
    bad = ModelSpec(name="s", family="t5", recipe={"kind": "prune-t5", "teacher": "prune-bert-teacher"})
    with pytest.raises(ConfigError, match="needs a t5-family teacher") as e:
        models.check_recipe(bad)
    assert "prune-classifier" in e.value.fix and not bad.checkpoint_dir().exists()
    models.check_recipe(models.resolve_model("t5-multi30k-pruned"))  # the built-in fits its teacher's config
    planned = models.planned_config(models.resolve_model("t5-multi30k-pruned"))
    assert planned.decoder_ff_per_layer == [512] * 3 and planned.encoder_ff_per_layer == [1024] * 3


def test_a_pruned_t5_converts_to_ctranslate2_and_generates_what_torch_does(tmp_path, trained_t5):
    pytest.importorskip("ctranslate2")
    import dataclasses

    from transformers import AutoTokenizer, T5ForConditionalGeneration

    from accelbench.methods import get_method
    from accelbench.runtimes import TorchGenerator

    from ..conftest import EN

    m = T5ForConditionalGeneration.from_pretrained(trained_t5).eval()
    pruned = pruning.prune_t5(m, pruning.T5PrunePlan([list(range(1, 64, 3))], [list(range(0, 64, 2))]))
    pruned.save_pretrained(tmp_path / "pruned")
    AutoTokenizer.from_pretrained(trained_t5).save_pretrained(tmp_path / "pruned")
    loaded = models.load_checkpoint(str(tmp_path / "pruned"))
    loaded = dataclasses.replace(loaded, spec=loaded.spec.with_overrides(prefix=""))  # trained without one
    assert loaded.model.config.encoder_ff_per_layer == [21]
    texts = EN + ["a dog rides the snow .", "two women play a book ."]
    ref = TorchGenerator(loaded.model, loaded.tokenizer, "t5", loaded.spec.prefix).generate(
        texts, max_new_tokens=8
    )
    assert len(set(ref.texts)) >= 2  # the check can fail: outputs depend on the source
    assert get_method("ct2-fp32").unavailable_reason() is None  # every CPU build of ctranslate2 runs float32
    for name in ("ct2-fp32", "ct2-int8"):
        if get_method(name).unavailable_reason():
            continue
        variant = get_method(name).apply(loaded)
        try:
            out = variant.predictor.generate(texts, max_new_tokens=8)
            if name == "ct2-fp32":
                assert out.texts == ref.texts and out.new_tokens == ref.new_tokens
            assert len(out.texts) == len(texts)
        finally:
            variant.predictor.close()


@pytest.mark.slow  # trains (a few steps) and exports to ONNX twice: 3-10 s
def test_tiny_prune_t5_run_gives_a_checkpoint_the_runtimes_apply_to(t5_teacher):
    from accelbench.methods import get_method
    from accelbench.runtimes import TorchGenerator
    from accelbench.training import load_model

    from ..conftest import EN

    spec = register_model(_t5_spec(decoder_ffn=0.5, encoder_ffn=0.25, importance_batches=2, batch_size=8,
                                   max_steps=3, warmup_steps=1), overwrite=True)  # fmt: skip
    loaded = load_model(spec, progress=False)
    assert type(loaded.model).__name__ == "PrunedT5ForConditionalGeneration"
    log = json.loads((spec.checkpoint_dir() / "accelbench.json").read_text())["training"]
    plan = log["prune_plan"]
    assert plan["encoder_ff_per_layer"] == [48] and plan["decoder_ff_per_layer"] == [32]
    assert log["decoder_ff_per_layer"] == [32] and log["importance_batches_used"] == 2
    assert plan["params_after"] == log["student_params"] < plan["params_before"] == log["teacher_params"]
    assert log["steps"] == 3 and log["teacher"] == "prune-t5-teacher"
    assert len(log["decoder_ffn_importance"]) == 1 and log["decoder_ffn_importance"][0] > 0
    again = models.load_checkpoint(spec.checkpoint_dir().as_posix())  # by path, through the Auto classes
    assert again.family == "t5" and again.model.config.decoder_ff_per_layer == [32]
    ref = TorchGenerator(loaded.model, loaded.tokenizer, "t5", loaded.spec.prefix).generate(
        EN, max_new_tokens=6
    )
    fp32 = get_method("ort-fp32").apply(loaded)  # the export checks greedy tokens against model.generate
    assert fp32.predictor.generate(EN, max_new_tokens=6).texts == ref.texts
    for name in ("ort-dynamic-int8", "dynamic-int8"):
        out = get_method(name).apply(loaded).predictor.generate(EN, max_new_tokens=6)
        assert len(out.texts) == len(EN)


def test_a_pruned_t5_teaches_a_distilled_student_and_is_pruned_again():
    from accelbench.training import students

    pruned = pruning.prune_t5(_t5(), pruning.T5PrunePlan([list(range(10)), list(range(20))],
                                                        [list(range(30)), list(range(5, 10))]))  # fmt: skip
    student = students.build_t5_student(pruned, recipes.DistillT5Recipe(teacher="t", decoder_layers=[1]))
    assert type(student).__name__ == "PrunedT5ForConditionalGeneration"
    assert student.config.encoder_ff_per_layer == [10, 20] and student.config.decoder_ff_per_layer == [5]
    assert torch.equal(student.decoder.block[0].layer[-1].DenseReluDense.wo.weight,
                       pruned.decoder.block[1].layer[-1].DenseReluDense.wo.weight)  # fmt: skip
    counts = recipes.prune_t5_counts(recipes.PruneT5Recipe(teacher="t", scope="layer"), pruned.config)
    assert counts["decoder_ff_per_layer"] == [30, 5] and counts["remove_decoder_ffn"] == [15, 2]
