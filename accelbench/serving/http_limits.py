"""Checking a ``POST /predict`` body before it reaches the batcher: size, UTF-8, JSON shape, counts, lengths.

Every refusal is a ``RequestError`` carrying the HTTP status and the contract's ``{"error", "fix"}`` body, so
the server answers a bad request with a message that says what is wrong and keeps serving. The checks are pure
functions of the bytes, testable without a server.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

from ..exceptions import ConfigError

logger = logging.getLogger(__name__)

DEFAULT_MAX_BODY_BYTES = 1024 * 1024
DEFAULT_MAX_TEXTS = 256
DEFAULT_MAX_CHARS = 10_000

Item = str | tuple[str, str]


class RequestError(Exception):
    """A refused request: ``status`` (400, 413, 422, 503) and the JSON body the client gets."""

    def __init__(self, status: int, error: str, fix: str, headers: dict[str, str] | None = None):
        super().__init__(error)
        self.status, self.error, self.fix = status, error, fix
        self.headers = headers or {}

    def body(self) -> dict[str, str]:
        return {"error": self.error, "fix": self.fix}


@dataclass(frozen=True)
class Limits:
    """Per-request limits; a request over any of them is refused whole (nothing of it is queued)."""

    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    max_texts: int = DEFAULT_MAX_TEXTS
    max_chars: int = DEFAULT_MAX_CHARS

    def __post_init__(self) -> None:
        for name in ("max_body_bytes", "max_texts", "max_chars"):
            if getattr(self, name) < 1:
                flag = "--" + name.replace("_", "-")
                raise ConfigError(
                    f"{flag} must be at least 1, got {getattr(self, name)}", f"pass {flag} 1 or more"
                )


def too_large(size: int, limits: Limits) -> RequestError:
    return RequestError(
        413,
        f"request body too large: {size} bytes, the limit is {limits.max_body_bytes}",
        f"send at most {limits.max_texts} texts per request and split larger inputs over several requests",
    )


def parse_predict_body(raw: bytes, limits: Limits) -> list[Item]:
    """The validated items of a ``/predict`` body: a str, or a ``(text, pair)`` tuple per item."""
    if len(raw) > limits.max_body_bytes:
        raise too_large(len(raw), limits)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise RequestError(
            400, f"body is not valid UTF-8 ({e.reason} at byte {e.start})", "encode the JSON body as UTF-8"
        ) from None
    try:
        body = json.loads(text)
    except json.JSONDecodeError as e:
        raise RequestError(
            400,
            f"body is not valid JSON: {e.msg} at line {e.lineno} column {e.colno}",
            'send a JSON object like {"inputs": ["a great film"]}',
        ) from None
    if not isinstance(body, dict):
        raise RequestError(
            400,
            f"body must be a JSON object, got {_json_type(body)}",
            'send a JSON object like {"inputs": ["a great film"]}',
        )
    if "inputs" not in body:
        raise RequestError(400, "body has no `inputs` field", 'send {"inputs": ["text", ...]}')
    unknown = sorted(set(body) - {"inputs", "parameters"})
    if unknown:
        raise RequestError(
            400,
            f"unknown field(s) in body: {', '.join(unknown)}",
            "send only `inputs` (and optional `parameters`)",
        )
    if "parameters" in body and not isinstance(body["parameters"], dict):
        raise RequestError(
            400,
            f"`parameters` must be an object, got {_json_type(body['parameters'])}",
            "send `parameters: {}`",
        )
    inputs = body["inputs"]
    if not isinstance(inputs, list):
        raise RequestError(
            400, f"`inputs` must be a list, got {_json_type(inputs)}", 'send {"inputs": ["text", ...]}'
        )
    if not inputs:
        raise RequestError(400, "`inputs` is an empty list", "send at least one text")
    if len(inputs) > limits.max_texts:
        raise RequestError(
            422,
            f"too many texts: {len(inputs)}, the limit is {limits.max_texts} per request",
            f"split the texts over requests of at most {limits.max_texts}",
        )
    return [_item(i, x, limits) for i, x in enumerate(inputs)]


def _item(i: int, x: Any, limits: Limits) -> Item:
    if isinstance(x, str):
        _check_length(i, "text", x, limits)
        return x
    if isinstance(x, dict):
        extra = sorted(set(x) - {"text", "text_pair"})
        if extra or not isinstance(x.get("text"), str):
            raise RequestError(
                400,
                f"inputs[{i}] must be a string or an object with a string `text` (and optional `text_pair`)"
                + (f"; unknown key(s): {', '.join(extra)}" if extra else ""),
                'send items like "a text" or {"text": "a premise", "text_pair": "a hypothesis"}',
            )
        _check_length(i, "text", x["text"], limits)
        if "text_pair" not in x:
            return x["text"]
        if not isinstance(x["text_pair"], str):
            raise RequestError(
                400,
                f"inputs[{i}].text_pair must be a string, got {_json_type(x['text_pair'])}",
                "send `text_pair` as a string, or leave it out",
            )
        _check_length(i, "text_pair", x["text_pair"], limits)
        return (x["text"], x["text_pair"])
    raise RequestError(
        400,
        f"inputs[{i}] must be a string or an object, got {_json_type(x)}",
        'send items like "a text" or {"text": "...", "text_pair": "..."}',
    )


def _check_length(i: int, key: str, s: str, limits: Limits) -> None:
    if len(s) > limits.max_chars:
        raise RequestError(
            422,
            f"inputs[{i}].{key} is too long: {len(s)} characters, the limit is {limits.max_chars}",
            f"shorten or split texts to at most {limits.max_chars} characters",
        )


def _json_type(x: Any) -> str:
    if x is None:
        return "null"
    return {bool: "a boolean", int: "a number", float: "a number", str: "a string", list: "a list",
            dict: "an object"}.get(type(x), type(x).__name__)  # fmt: skip
