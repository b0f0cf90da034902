"""Labels as they come: mapped (ints from 1, strings), listed (names or indices), inferred; errors name the
value, the file, the line and the fix."""

from __future__ import annotations

import logging

import pytest

from accelbench.exceptions import ConfigError, DataError
from accelbench.taskdata.labels import infer_label_map, label_key, label_map, map_labels

WHERE = [("train.csv", n) for n in range(1, 10)]


def test_a_mapping_maps_file_values_in_any_type_to_indices_in_mapping_order():
    m = label_map("news", {1: "World", 2: "Sports", 3: "Business", 4: "Sci/Tech"})
    assert m.names == ["World", "Sports", "Business", "Sci/Tech"] and m.given_as == "mapping"
    assert map_labels("news", ["1", 2, 3.0, " 4 ", "1.0", "Sports"], m, WHERE) == [0, 1, 2, 3, 0, 1]


def test_a_list_takes_names_or_indices():
    m = label_map("sst", ["negative", "positive"])
    assert map_labels("sst", [0, "1", "negative", "positive", 1.0], m, WHERE) == [0, 1, 0, 1, 1]
    numbered = label_map("x", ["1", "0"])  # a name wins over an index
    assert map_labels("x", ["1", "0"], numbered, WHERE) == [0, 1]


def test_inferred_labels_are_sorted_numerically_when_integers_and_logged(caplog):
    with caplog.at_level(logging.INFO, logger="accelbench.taskdata.labels"):
        m = infer_label_map("t", [10, "2", 1, 2, "10"], "train.csv")
    assert m.names == ["1", "2", "10"] and m.inferred
    assert "inferred from the training split: ['1', '2', '10']" in caplog.text
    assert infer_label_map("t", ["pos", "neg", "neutral", "pos"], "f").names == ["neg", "neutral", "pos"]
    assert label_key(True) == "true" and label_key(3.0) == "3" and label_key(" a ") == "a"


def test_a_value_outside_the_map_names_value_file_line_and_fix():
    m = label_map("news", {1: "World", 2: "Sports"})
    with pytest.raises(DataError) as e:
        map_labels("news", [1, 2, 5], m, WHERE)
    assert "label 5 in train.csv line 3 is not in the label map (1 -> World, 2 -> Sports)" in e.value.message
    assert "add `5: <name>` to the `label_names:` mapping" in e.value.fix
    inferred = infer_label_map("t", ["a", "b"], "train.csv")
    with pytest.raises(DataError) as e:
        map_labels("t", ["a", "c"], inferred, WHERE)
    assert "label 'c' in train.csv line 2" in e.value.message and "training split" in e.value.fix


def test_a_header_row_in_a_headerless_file_is_named_in_the_fix():
    m = label_map("news", {1: "World", 2: "Sports"})
    with pytest.raises(DataError) as e:
        map_labels("news", ["class", 1], m, WHERE, header_hint=True)
    assert "label 'class' in train.csv line 1" in e.value.message and "header: true" in e.value.fix


@pytest.mark.parametrize("spec, match", [
    (["one"], "at least two label_names"),
    ({1: "a", "1": "b"}, "maps the same value twice"),
    (["a", "a"], "repeats a name"),
    ("a,b", "must be a list or a mapping"),
])  # fmt: skip
def test_bad_label_names(spec, match):
    with pytest.raises(ConfigError, match=match):
        label_map("t", spec)


def test_omitted_label_names_and_a_single_inferred_class():
    assert label_map("t", None) is None and label_map("t", []) is None
    with pytest.raises(DataError, match="holds 1 distinct label value"):
        infer_label_map("t", ["a", "a"], "train.csv")
