"""Model resolution, the training recipes (tiny budgets), caching by recipe, and bad input."""

from __future__ import annotations

import json

import pytest

from accelbench.exceptions import ConfigError, ModelError
from accelbench.models import (
    ModelSpec,
    check_fits_task,
    model_family,
    register_model,
    resolve_model,
)
from accelbench.tasks import get_task
from accelbench.training import load_model


def test_resolve_builtin_and_unknown():
    spec = resolve_model("minilm-sst2")
    assert spec.family == "bert" and spec.recipe["kind"] == "classifier"
    with pytest.raises(ModelError) as e:  # not registered, no such folder, no hub here
        model_family(resolve_model("minilm-sst3"))
    assert "t5-multi30k" in e.value.fix and "minilm-sst3" in str(e.value)


def test_recipe_overrides_change_the_cache_key():
    a = resolve_model("minilm-sst2")
    b = resolve_model({"name": "minilm-sst2", "train": {"train_size": 100}})
    c = resolve_model({"name": "minilm-sst2", "train": {"train_size": 20000}})  # the default, spelled out
    assert a.key != b.key and a.key == c.key
    d = resolve_model({"name": "minilm-sst2", "train": {"epochs": 1}})  # int spelling of 1.0
    assert d.key == a.key
    t5 = resolve_model("t5-multi30k")
    assert resolve_model({"name": "t5-multi30k", "train": {"max_steps": 1700.0}}).key == t5.key  # whole float
    assert resolve_model({"name": "t5-multi30k", "train": {"max_steps": 1701}}).key != t5.key
    timed = resolve_model({"name": "t5-multi30k", "train": {"time_budget_s": 780}})  # an old YAML's budget
    assert timed.key != t5.key and timed.full_recipe["time_budget_s"] == 780.0


def test_builtin_budgets_are_steps():
    from accelbench.recipes import budget, build_recipe, planned_steps

    expected = {"minilm-sst2": 625, "minilm-sst2-l3": 800, "t5-multi30k": 1700, "t5-multi30k-half": 1000}
    for name, steps in expected.items():
        r = build_recipe(resolve_model(name).recipe)
        assert budget(r) == "steps" and r.time_budget_s is None
        n = getattr(r, "train_size", None) or (67349 if r.FAMILY == "bert" else 29000)  # the train splits
        assert planned_steps(r, n) == steps, name
    r = build_recipe({"kind": "classifier", "train_size": 100, "batch_size": 32, "epochs": 2.0})
    assert planned_steps(r, 100) == 8  # 2 x ceil(100 / 32)
    r = build_recipe(
        {"kind": "classifier", "train_size": 100, "epochs": 2.0, "max_steps": 5, "time_budget_s": 9}
    )
    assert planned_steps(r, 100) == 5 and budget(r) == "time"  # the smaller rule wins
    r = build_recipe({"kind": "distill-t5", "epochs": 1.0})
    assert planned_steps(r, 640) == 10  # one pass of 64 is fewer than max_steps 1000


@pytest.mark.parametrize("model, train, match", [("minilm-sst2", {"epochs": -1}, "epochs must be positive"),
                                                 ("t5-multi30k", {"time_budget_s": 0}, "time_budget_s must be positive"),
                                                 ("t5-multi30k", {"max_steps": 0}, "max_steps must be a positive whole"),
                                                 ("minilm-sst2", {"max_steps": 2.5}, "max_steps must be a positive whole"),
                                                 ("minilm-sst2", {"max_steps": True}, "max_steps must be a positive whole"),
                                                 ("t5-multi30k", {"max_steps": None, "time_budget_s": 600},
                                                  "max_steps is null, so no step count ends"),
                                                 ("minilm-sst2", {"epochs": None}, "max_steps and epochs are null"),
                                                 ("minilm-sst2-l3", {"max_steps": None, "epochs": None},
                                                  "max_steps and epochs are null"),
                                                 ("t5-multi30k", {"d_model": 250}, "not divisible by num_heads"),
                                                 ("t5-multi30k", {"optimizer": "sgd"}, "optimizer must be one of"),
                                                 ("t5-multi30k", {"colour": 1}, "unknown training setting")])  # fmt: skip
def test_bad_training_settings(model, train, match):
    with pytest.raises(ConfigError, match=match) as e:
        resolve_model({"name": model, "train": train})
    assert e.value.fix
    if "null" in match:
        assert "set max_steps" in e.value.fix and "time_budget_s" in e.value.fix


def test_train_tiny_classifier_and_reuse_cache(tiny_bert):
    spec = register_model(ModelSpec(name="tiny-clf", family="bert", base=str(tiny_bert),
                                    recipe={"kind": "classifier", "task": "sst2", "train_size": 48, "batch_size": 8,
                                            "epochs": 2, "lr": 1e-3}), overwrite=True)  # fmt: skip
    loaded = load_model("tiny-clf", progress=False)
    info = json.loads((spec.checkpoint_dir() / "accelbench.json").read_text())
    assert info["training"]["steps"] == 12 and info["recipe"]["train_size"] == 48
    assert info["training"]["budget"] == "steps" and info["training"]["stopped_by"] == "steps"
    assert info["recipe"]["max_steps"] is None and info["recipe"]["time_budget_s"] is None
    assert (spec.checkpoint_dir() / "model.safetensors").exists()
    curve = [loss for _, loss in info["training"]["loss_curve"]]
    assert curve[-1] < curve[0]  # it learned something
    assert loaded.model.config.id2label == {0: "negative", 1: "positive"}
    mtime = (spec.checkpoint_dir() / "model.safetensors").stat().st_mtime
    load_model("tiny-clf", progress=False)  # second load: cached, not retrained
    assert (spec.checkpoint_dir() / "model.safetensors").stat().st_mtime == mtime


def test_train_tiny_t5_from_scratch():
    register_model(ModelSpec(name="tiny-t5-scratch", family="t5",
                             recipe={"kind": "t5-scratch", "task": "multi30k", "vocab_size": 100, "d_model": 32,
                                     "num_layers": 1, "num_heads": 2, "d_ff": 64, "batch_size": 8, "max_steps": 30,
                                     "lr": 3e-3, "warmup_steps": 5}), overwrite=True)  # fmt: skip
    loaded = load_model("tiny-t5-scratch", progress=False)
    assert loaded.family == "t5" and loaded.info["training"]["steps"] == 30
    tok = loaded.tokenizer
    assert (tok.pad_token_id, tok.eos_token_id) == (0, 1)
    assert tok("a man .").input_ids[-1] == 1  # </s> appended, as T5 expects
    curve = [loss for _, loss in loaded.info["training"]["loss_curve"]]
    assert curve[-1] < curve[0]


def test_untrained_builtin_refused_without_training():
    with pytest.raises(ModelError, match="not trained yet"):
        load_model({"name": "minilm-sst2", "train": {"train_size": 7}}, train=False)


def test_model_task_mismatch(tiny_t5, tiny_bert):
    with pytest.raises(ModelError, match="is a t5 model but task 'sst2' is classification"):
        check_fits_task(load_model(str(tiny_t5)), get_task("sst2"))
    loaded = load_model(str(tiny_bert))
    assert loaded.spec.name == tiny_bert.name  # a local path is shown by its folder name


def test_unloadable_path(tmp_path):
    (tmp_path / "empty-model").mkdir()
    with pytest.raises(ModelError) as e:
        load_model(str(tmp_path / "empty-model"))
    assert "local checkpoint" in e.value.fix
