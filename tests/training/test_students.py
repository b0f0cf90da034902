"""Distillation: layer maps, copied weights, the losses on hand-made tensors, bad input, tiny teacher->student runs."""

from __future__ import annotations

import json
import math

import pytest
import torch

from accelbench import models, notebook, recipes
from accelbench.exceptions import ConfigError
from accelbench.models import ModelSpec, register_model, resolve_model
from accelbench.training import load_model, losses, students, teacher

from ..conftest import QUICK


def test_spaced_layers_and_default_map():
    assert recipes.spaced_layers(6, 3) == [0, 2, 5]  # DistilBART's 6 -> 3
    assert recipes.spaced_layers(3, 1) == [0]
    assert recipes.spaced_layers(3, 2) == [0, 2]
    assert recipes.spaced_layers(4, 4) == [0, 1, 2, 3]
    assert recipes.default_layer_map(3, 6) == [
        1,
        3,
        5,
    ]  # last student layer learns from the last teacher layer
    assert recipes.default_layer_map(2, 2) == [0, 1]
    with pytest.raises(ConfigError):
        recipes.spaced_layers(3, 4)


# --- losses on hand-made tensors -------------------------------------------------------------------


def test_kd_loss_matches_hand_computation():
    s = torch.tensor([[1.0, 0.0], [0.0, 0.0]])
    t = torch.tensor([[0.0, 1.0], [0.0, 0.0]])
    assert losses.kd_loss(t, t, 2.0).item() == pytest.approx(0.0, abs=1e-7)
    # row 1: p = softmax([0, 1]), q = softmax([1, 0]); KL(p||q) = (p1 - p0) * 1; row 2 is 0
    p1 = math.exp(1) / (1 + math.exp(1))
    expected = ((p1 - (1 - p1)) + 0.0) / 2
    assert losses.kd_loss(s, t, 1.0).item() == pytest.approx(expected, rel=1e-5)
    # temperature: softened by T, scaled by T^2
    pT = 1 / (1 + math.exp(-0.5))
    assert losses.kd_loss(s, t, 2.0).item() == pytest.approx(4 * (2 * pT - 1) * 0.5 / 2, rel=1e-5)
    # a mask keeps only the chosen rows (T5 target tokens)
    assert losses.kd_loss(s, t, 1.0, mask=torch.tensor([True, False])).item() == pytest.approx(
        2 * expected, rel=1e-5
    )


def test_hidden_and_attention_losses():
    a = [
        torch.zeros(1, 2, 4),
        torch.ones(1, 2, 4),
        torch.full((1, 2, 4), 3.0),
    ]  # embeddings, layer 0, layer 1
    b = [torch.zeros(1, 2, 4), torch.zeros(1, 2, 4)]  # student: embeddings, its layer 0
    assert losses.hidden_loss(b, a, [0]).item() == pytest.approx(1.0)  # (0 - 1)^2
    assert losses.hidden_loss(b, a, [1]).item() == pytest.approx(9.0)
    proj = torch.nn.Linear(4, 4)
    torch.nn.init.zeros_(proj.weight)
    torch.nn.init.constant_(proj.bias, 3.0)
    assert losses.hidden_loss(b, a, [1], projection=proj).item() == pytest.approx(0.0)
    mask = torch.tensor([[True, False]])
    c = [torch.zeros(1, 2, 4), torch.tensor([[[1.0] * 4, [100.0] * 4]])]
    assert losses.hidden_loss(c, a, [0], mask=mask).item() == pytest.approx(
        0.0
    )  # the padded position is ignored
    s = [torch.full((1, 2, 3, 3), 0.5)]
    t = [torch.full((1, 2, 3, 3), 0.5), torch.zeros(1, 2, 3, 3)]
    assert losses.attention_loss(s, t, [0]).item() == pytest.approx(0.0)
    assert losses.attention_loss(s, t, [1]).item() == pytest.approx(0.25)
    t4 = [torch.full((1, 4, 3, 3), 0.5)]  # different head counts: compared averaged over heads
    assert losses.attention_loss(s, t4, [0]).item() == pytest.approx(0.0)


# --- building students -------------------------------------------------------------------------------


def _bert(layers: int = 4, hidden: int = 32):
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=100, hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=2,
                     intermediate_size=64, max_position_embeddings=64, num_labels=2)  # fmt: skip
    return BertForSequenceClassification(cfg).eval()


def test_copied_layers_equal_their_teachers():
    teacher = _bert(4)
    r = recipes.DistillClassifierRecipe(teacher="t", layers=[1, 3])
    student = students.build_classifier_student(teacher, r)
    assert student.config.num_hidden_layers == 2
    t, s = teacher.state_dict(), student.state_dict()
    for j, i in enumerate([1, 3]):
        for key in [k for k in t if k.startswith(f"bert.encoder.layer.{i}.")]:
            assert torch.equal(s[key.replace(f"layer.{i}.", f"layer.{j}.")], t[key]), key
    for key in ("bert.embeddings.word_embeddings.weight", "classifier.weight", "bert.pooler.dense.weight"):
        assert torch.equal(s[key], t[key])
    x = torch.randint(1, 100, (2, 7))
    assert student(input_ids=x).logits.shape == (2, 2)


def test_config_built_student_is_smaller_and_shares_embeddings_when_same_width():
    teacher = _bert(4)
    narrow = students.build_classifier_student(teacher, recipes.DistillClassifierRecipe(
        teacher="t", layers=None, num_layers=2, hidden_size=16, num_heads=2))  # fmt: skip
    assert narrow.config.hidden_size == 16 and narrow.config.intermediate_size == 64
    same = students.build_classifier_student(
        teacher, recipes.DistillClassifierRecipe(teacher="t", layers=None, num_layers=1)
    )
    assert torch.equal(
        same.bert.embeddings.word_embeddings.weight, teacher.bert.embeddings.word_embeddings.weight
    )


def test_t5_student_copies_blocks_and_moves_the_position_bias():
    from transformers import T5Config, T5ForConditionalGeneration

    torch.manual_seed(0)
    cfg = T5Config(vocab_size=50, d_model=32, d_kv=16, d_ff=64, num_layers=2, num_decoder_layers=4, num_heads=2,
                   pad_token_id=0, eos_token_id=1, decoder_start_token_id=0)  # fmt: skip
    teacher = T5ForConditionalGeneration(cfg).eval()
    r = recipes.DistillT5Recipe(teacher="t", decoder_layers=[1, 3])
    student = students.build_t5_student(teacher, r).eval()
    assert student.config.num_decoder_layers == 2 and student.config.num_layers == 2
    t, s = teacher.state_dict(), student.state_dict()
    assert torch.equal(
        s["decoder.block.1.layer.2.DenseReluDense.wi.weight"],
        t["decoder.block.3.layer.2.DenseReluDense.wi.weight"],
    )
    assert torch.equal(
        s["decoder.block.0.layer.0.SelfAttention.q.weight"],
        t["decoder.block.1.layer.0.SelfAttention.q.weight"],
    )
    bias = "decoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight"
    assert torch.equal(s[bias], t[bias])  # only block 0 holds it: the student's new first block gets it
    assert torch.equal(
        s["encoder.block.1.layer.1.DenseReluDense.wo.weight"],
        t["encoder.block.1.layer.1.DenseReluDense.wo.weight"],
    )
    out = student.generate(input_ids=torch.tensor([[5, 6, 7, 1]]), max_new_tokens=4)  # cache indices fit
    assert out.shape[1] <= 5
    # "half" keeps n // 2 maximally spaced decoder blocks
    assert recipes.resolve_layers(recipes.DistillT5Recipe(teacher="t"), cfg) == ([0, 1], [0, 3])


# --- bad input, refused before any training --------------------------------------------------------


@pytest.fixture(scope="session")
def sharp_bert(tiny_bert, tmp_path_factory):
    """The tiny BERT with a classifier scaled up, so its soft targets are far from uniform (KD has work to do)."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    out = tmp_path_factory.mktemp("sharp-bert")
    m = AutoModelForSequenceClassification.from_pretrained(tiny_bert)
    with torch.no_grad():
        m.classifier.weight.mul_(40.0)
    m.save_pretrained(out)
    AutoTokenizer.from_pretrained(tiny_bert).save_pretrained(out)
    return out


@pytest.fixture
def tiny_teacher(sharp_bert):
    return register_model(ModelSpec(name="tiny-teacher", base=str(sharp_bert), task="sst2"), overwrite=True)


@pytest.mark.parametrize("train, match", [
    ({"layers": [0, 5]}, "does not fit teacher 'tiny-teacher': it has 2 layers"),
    ({"layers": [1, 0]}, "increasing order"),
    ({"layers": None, "num_layers": 1, "hidden_size": 64, "num_heads": 2}, "wider than its teacher"),
    ({"layers": None, "num_layers": 3}, "deeper than its teacher"),
    ({"losses": {"kd": 1.0, "cosine": 1.0}}, "unknown loss"),
    ({"losses": {"kd": 0.0}}, "every loss weight is 0"),
    ({"layer_map": [0, 1]}, "layer_map .* has 2 entries"),
    ({"temperature": 0}, "temperature must be positive"),
    ({"layers": [0], "hidden_size": 16}, "copied layers keep the teacher's width"),
])  # fmt: skip
def test_bad_students_are_refused_with_the_reason(tiny_teacher, train, match):
    with pytest.raises(ConfigError, match=match) as e:
        spec = ModelSpec(name="bad-student", family="bert", task="sst2",
                         recipe={"kind": "distill-classifier", "teacher": "tiny-teacher", "layers": [0]})  # fmt: skip
        models.check_recipe(spec.with_overrides(train=train))
    assert e.value.fix


def test_wrong_family_teacher_and_self_teacher_are_refused(tiny_teacher, tiny_t5):
    register_model(ModelSpec(name="tiny-t5-teacher", base=str(tiny_t5), task="multi30k"), overwrite=True)
    spec = ModelSpec(
        name="s", recipe={"kind": "distill-classifier", "teacher": "tiny-t5-teacher", "layers": [0]}
    )
    with pytest.raises(ConfigError, match="needs a bert-family teacher"):
        models.check_recipe(spec)
    with pytest.raises(ConfigError, match="does not fit teacher"):
        models.check_recipe(ModelSpec(name="s", recipe={"kind": "distill-t5", "teacher": "tiny-t5-teacher",
                                                         "decoder_layers": [0, 1]}))  # fmt: skip
    with pytest.raises(ConfigError, match="names itself"):
        models.check_recipe(
            ModelSpec(name="me", recipe={"kind": "distill-classifier", "teacher": "me", "layers": [0]})
        )


def test_student_key_follows_its_teacher(tiny_bert, tmp_path):
    register_model(ModelSpec(name="teacher-a", base=str(tiny_bert)), overwrite=True)
    spec = ModelSpec(
        name="stu",
        family="bert",
        recipe={"kind": "distill-classifier", "teacher": "teacher-a", "layers": [0]},
    )
    k1 = spec.key
    register_model(
        ModelSpec(name="teacher-a", base=str(tmp_path)), overwrite=True
    )  # another teacher, same name
    assert spec.key != k1  # a retrained teacher means a new student


def test_builtin_students_fit_their_teachers():
    for name in ("minilm-sst2-l3", "t5-multi30k-half"):
        models.check_recipe(resolve_model(name))
    cfg = models.planned_config(resolve_model("t5-multi30k-half"))
    assert (cfg.num_layers, cfg.num_decoder_layers) == (3, 1)


# --- tiny teacher -> student runs --------------------------------------------------------------------


def _falls(curve) -> bool:
    first, last = curve[0], curve[-1]
    return last < first


def test_tiny_classifier_distillation_all_losses(tiny_teacher):
    # a narrower student from a config: the hidden loss goes through a learned projection (16 -> 32)
    recipe = {"kind": "distill-classifier", "teacher": "tiny-teacher", "layers": None, "num_layers": 1,
              "hidden_size": 16, "num_heads": 2, "batch_size": 8, "epochs": 6, "lr": 3e-3,
              "losses": {"kd": 1.0, "ce": 0.1, "hidden": 0.1, "attention": 0.1}}  # fmt: skip
    spec = register_model(
        ModelSpec(name="tiny-student", family="bert", task="sst2", recipe=recipe), overwrite=True
    )
    loaded = load_model("tiny-student", progress=False)
    assert loaded.model.config.num_hidden_layers == 1
    info = json.loads((spec.checkpoint_dir() / "accelbench.json").read_text())
    log = info["training"]
    assert log["teacher"] == "tiny-teacher" and log["hidden_size"] == 16 and log["layer_map"] == [1]
    assert log["train_examples"] == 64 and log["steps"] == log["planned_steps"] == 48  # 6 epochs of 8 batches
    assert info["recipe"]["losses"]["attention"] == 0.1
    assert _falls([loss for _, loss in log["loss_curve"]]), log["loss_curve"]
    assert set(log["loss_parts"][-1][1]) == {"kd", "ce", "hidden", "attention"}
    assert _falls([p["kd"] for _, p in log["loss_parts"]])
    # teacher logits were cached once: a second student reuses them
    assert list(
        (teacher.cache_file("teacher-logits", resolve_model("tiny-teacher"), {}, "").parent).glob("*.pt")
    )


def test_tiny_t5_distillation_with_pseudo_labels(tiny_t5, tmp_path):
    from transformers import AutoTokenizer, T5Config, T5ForConditionalGeneration

    torch.manual_seed(0)  # a 1+2-layer teacher, so the 1-block student really differs from it
    cfg = T5Config.from_pretrained(
        tiny_t5, num_layers=2, num_decoder_layers=2
    )  # (transformers 5 sizes the generation cache by num_layers)
    m = T5ForConditionalGeneration(cfg)
    with torch.no_grad():
        m.decoder.final_layer_norm.weight.mul_(
            5.0
        )  # sharper next-token distributions than a random init gives
    m.save_pretrained(tmp_path / "sharp-t5")
    AutoTokenizer.from_pretrained(tiny_t5).save_pretrained(tmp_path / "sharp-t5")
    register_model(
        ModelSpec(name="tiny-t5-teacher2", base=str(tmp_path / "sharp-t5"), task="multi30k"), overwrite=True
    )
    recipe = {"kind": "distill-t5", "teacher": "tiny-t5-teacher2", "decoder_layers": "half", "targets": "pseudo",
              "losses": {"kd": 1.0, "ce": 0.1}, "batch_size": 8, "epochs": 8, "lr": 3e-3, "max_length": 16}  # fmt: skip
    spec = register_model(
        ModelSpec(name="tiny-t5-student", family="t5", task="multi30k", recipe=recipe), overwrite=True
    )
    loaded = load_model("tiny-t5-student", progress=False)
    log = json.loads((spec.checkpoint_dir() / "accelbench.json").read_text())["training"]
    assert (
        log["decoder_layers"] == [0] and log["targets"] == "pseudo" and log["teacher"] == "tiny-t5-teacher2"
    )
    assert _falls([p["kd"] for _, p in log["loss_parts"]]), log["loss_parts"]
    out = loaded.model.generate(
        **loaded.tokenizer(["a man rides a bike ."], return_tensors="pt"), max_new_tokens=5
    )
    assert out.shape[0] == 1


@pytest.mark.slow  # measures a variant end to end (peaks, scenarios) or compiles
def test_student_records_hold_the_recipe_and_compare_with_teacher(tiny_teacher, tmp_path):
    from accelbench.experiment import run_experiment
    from accelbench.records import read_current

    recipe = {"kind": "distill-classifier", "teacher": "tiny-teacher", "layers": [0], "batch_size": 16}
    register_model(ModelSpec(name="tiny-student2", family="bert", task="sst2", recipe=recipe), overwrite=True)
    notebook.ensure_teacher_baseline("sst2", "tiny-teacher", tmp_path, QUICK)
    n = len(read_current(tmp_path))
    notebook.ensure_teacher_baseline("sst2", "tiny-teacher", tmp_path, {**QUICK, "batch_sizes": [2]})
    assert len(read_current(tmp_path)) == n  # already there (other settings): not measured twice
    recs = run_experiment("sst2", "tiny-student2", ["fp32", "dynamic-int8"], tmp_path, QUICK, progress=False)
    assert (recs["status"] == "ok").all()
    assert set(recs["teacher"]) == {"tiny-teacher"}
    saved = json.loads(recs["model_recipe"].iloc[0])
    assert (
        saved["layers"] == [0]
        and saved["teacher"] == "tiny-teacher"
        and saved["losses"] == {"kd": 1.0, "ce": 0.5}
    )
    cmp = notebook.compare_with_teacher(
        read_current(tmp_path, "sst2"), "tiny-teacher", batch_size=32
    )  # not measured: 4
    assert set(cmp["variant"]) == {"tiny-teacher:fp32", "tiny-student2:fp32", "tiny-student2:dynamic-int8"}
    row = cmp.set_index("variant").loc["tiny-teacher:fp32"]
    assert (
        row["throughput x"] == pytest.approx(1.0)
        and row["batch"] == 4
        and row["share of teacher"] == pytest.approx(1.0)
    )
    from accelbench.analysis import plots

    assert plots.teacher_vs_students(cmp) is not None
    with pytest.raises(Exception, match="no fp32 record of teacher"):
        notebook.compare_with_teacher(read_current(tmp_path, "sst2"), "someone-else")


def test_student_entry_builds_overrides():
    assert notebook.student_entry("minilm-sst2-l3") == "minilm-sst2-l3"
    e = notebook.student_entry("minilm-sst2-l3", layers=[0, 5], temperature=None, losses={"kd": 1.0})
    assert e == {"name": "minilm-sst2-l3", "train": {"layers": [0, 5], "losses": {"kd": 1.0}}}
    e = notebook.student_entry("minilm-sst2-l3", num_layers=2, hidden_size=192)
    spec = resolve_model(e)
    assert spec.recipe["layers"] is None and spec.recipe["num_layers"] == 2
    models.check_recipe(spec)  # MiniLM is 384 wide: a 192-wide student fits


def test_a_bad_student_in_a_config_stops_the_run_before_any_work(tiny_bert, tmp_path, capsys):
    from accelbench.cli import main

    cfg = tmp_path / "bad.yaml"
    cfg.write_text(f"""
run: bad
results_dir: {tmp_path / "results"}
models:
  too-deep:
    family: bert
    task: sst2
    recipe: {{kind: distill-classifier, teacher: "{tiny_bert}", layers: [0, 9]}}
experiments:
  - task: sst2
    models: [too-deep]
""")
    assert main(["run", "--config", str(cfg), "-q"]) == 2
    err = capsys.readouterr().err
    assert "layers [0, 9] does not fit teacher" in err and "fix:" in err
    assert not (tmp_path / "results" / "bad" / "records.jsonl").exists()


@pytest.mark.slow  # measures a variant end to end (peaks, scenarios) or compiles
def test_a_retrained_model_gets_its_own_baseline_predictions(tiny_bert, sharp_bert, tmp_path):
    from accelbench.experiment import run_experiment
    from accelbench.records import read_current

    register_model(ModelSpec(name="same-name", base=str(tiny_bert), task="sst2"), overwrite=True)
    first = run_experiment("sst2", "same-name", ["fp32"], tmp_path, QUICK, progress=False)
    register_model(ModelSpec(name="same-name", base=str(sharp_bert), task="sst2"), overwrite=True)
    second = run_experiment("sst2", "same-name", ["fp32"], tmp_path, QUICK, progress=False)
    saved = json.loads((tmp_path / "predictions" / "sst2__same-name__fp32.json").read_text())
    assert saved["model_key"] == resolve_model("same-name").key != first["model_key"].iloc[0]
    assert set(read_current(tmp_path)["model_key"]) == {
        second["model_key"].iloc[0]
    }  # the old weights' rows hidden
