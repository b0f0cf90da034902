"""Request checks of POST /predict, as pure functions of the body bytes (the HTTP tests cover the wiring)."""

from __future__ import annotations

import json

import pytest

from accelbench.exceptions import ConfigError
from accelbench.serving.http_limits import Limits, RequestError, parse_predict_body

LIMITS = Limits(max_body_bytes=2000, max_texts=3, max_chars=50)


def parse(body) -> list:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return parse_predict_body(raw, LIMITS)


def test_strings_and_pairs_become_items():
    assert parse({"inputs": ["a", {"text": "b"}, {"text": "c", "text_pair": "d"}], "parameters": {}}) == [
        "a",
        "b",
        ("c", "d"),
    ]
    assert parse({"inputs": ["ü ñ 字"]}) == ["ü ñ 字"]


@pytest.mark.parametrize(
    "body, status, says",
    [
        (b"{not json", 400, "not valid JSON"),
        (b'{"inputs": ["caf\xe9"]}', 400, "not valid UTF-8"),
        (["a"], 400, "must be a JSON object, got a list"),
        ({"texts": ["a"]}, 400, "no `inputs`"),
        ({"inputs": ["a"], "extra": 1}, 400, "unknown field(s) in body: extra"),
        ({"inputs": "a"}, 400, "`inputs` must be a list, got a string"),
        ({"inputs": []}, 400, "empty list"),
        ({"inputs": ["a", 3]}, 400, "inputs[1] must be a string or an object, got a number"),
        ({"inputs": [None]}, 400, "got null"),
        ({"inputs": [{"txt": "a"}]}, 400, "unknown key(s): txt"),
        ({"inputs": [{"text": "a", "text_pair": 1}]}, 400, "text_pair must be a string"),
        ({"inputs": ["a"], "parameters": []}, 400, "`parameters` must be an object"),
        ({"inputs": ["a"] * 4}, 422, "too many texts: 4, the limit is 3"),
        ({"inputs": ["a", "x" * 51]}, 422, "inputs[1].text is too long: 51 characters"),
        ({"inputs": [{"text": "a", "text_pair": "x" * 51}]}, 422, "inputs[0].text_pair is too long"),
        (b'{"inputs": ["' + b"x" * 2000 + b'"]}', 413, "body too large"),
    ],
)
def test_bad_bodies_are_refused_with_what_is_wrong_and_a_fix(body, status, says):
    with pytest.raises(RequestError) as e:
        parse(body)
    assert e.value.status == status and says in e.value.error
    assert set(e.value.body()) == {"error", "fix"} and e.value.fix


def test_limits_must_be_positive():
    with pytest.raises(ConfigError, match="--max-texts"):
        Limits(max_texts=0)
