"""Ray Serve: the same predictor and HTTP contract, server-side batching, on a local one-node Ray."""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest

from accelbench.exceptions import ConfigError
from accelbench.serving.ray_serve import build_app, run_ray_serve, start_ray_serve
from accelbench.serving.variant import VariantSpec, build_variant, sample_items


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _post(url: str, body: bytes) -> tuple[int, dict]:
    req = urllib.request.Request(url + "/predict", data=body, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


@pytest.fixture(scope="module")
def served_url(tiny_bert, data_root):
    """One local Ray and one deployment (1 replica, half a CPU, batches up to 8) for the module."""
    ray = pytest.importorskip("ray")
    from ray import serve

    mp = pytest.MonkeyPatch()  # the replica's warm-up reads the tiny data: forwarded to workers from here
    mp.setenv("ACCELBENCH_DATA_DIR", str(data_root))
    ray.init(num_cpus=2, object_store_memory=200 * 1024**2, include_dashboard=False, log_to_driver=False)
    spec = VariantSpec("sst2", str(tiny_bert), "fp32", threads=1)
    try:
        yield start_ray_serve(spec, port=_free_port(), num_cpus=0.5, max_batch_size=8, max_wait_ms=50)
    finally:
        serve.shutdown()
        ray.shutdown()
        mp.undo()


@pytest.mark.slow
def test_predictions_equal_in_process_and_concurrent_requests_batch(served_url, tiny_bert):
    texts = sample_items("sst2", 12)
    status, body = _post(served_url, json.dumps({"inputs": texts}).encode())
    assert status == 200 and body["task"] == "sst2" and body["variant"].endswith(":fp32")
    expected = build_variant(VariantSpec("sst2", str(tiny_bert), "fp32", threads=1)).predict(texts)
    assert [o["label_id"] for o in body["outputs"]] == [e["label_id"] for e in expected]
    assert [o["score"] for o in body["outputs"]] == pytest.approx([e["score"] for e in expected], abs=1e-5)

    with ThreadPoolExecutor(16) as pool:  # single-text requests at once: the replica merges them
        answers = list(pool.map(lambda t: _post(served_url, json.dumps({"inputs": [t]}).encode()), texts * 2))
    assert all(s == 200 and len(b["outputs"]) == 1 for s, b in answers)
    assert [b["outputs"][0]["label_id"] for _, b in answers] == [e["label_id"] for e in expected] * 2
    with urllib.request.urlopen(served_url + "/health", timeout=30) as r:
        health = json.loads(r.read())
    assert health["status"] == "ok" and health["max_batch_size"] == 8 and health["replicas"] == 1
    sizes = {int(k): v for k, v in health["batch_sizes"].items()}
    assert max(sizes) > 1 and max(sizes) <= 8  # batches formed, never above the maximum


@pytest.mark.slow
def test_bad_requests_get_the_contract_error_and_serving_goes_on(served_url):
    status, body = _post(served_url, b"{not json")
    assert status == 400 and "not valid JSON" in body["error"] and body["fix"]
    status, body = _post(served_url, json.dumps({"inputs": []}).encode())
    assert status == 400 and "empty" in body["error"]
    status, body = _post(served_url, json.dumps({"inputs": ["x" * 20_000]}).encode())
    assert status == 422
    assert _post(served_url, json.dumps({"inputs": ["fine"]}).encode())[0] == 200


def test_bad_settings_fail_before_ray_starts(tiny_bert):
    spec = VariantSpec("sst2", str(tiny_bert))
    with pytest.raises(ConfigError, match="--replicas"):
        run_ray_serve(spec, replicas=0)
    with pytest.raises(ConfigError, match="--max-batch-size"):
        build_app(spec, max_batch_size=0)
    with pytest.raises(ConfigError, match="unknown key.*max_replica\\b") as e:
        build_app(spec, autoscaling={"min_replicas": 1, "max_replica": 2})
    assert "target_ongoing_requests" in e.value.fix
    with socket.socket() as s:  # a port in use
        s.bind(("127.0.0.1", 0))
        s.listen()
        with pytest.raises(ConfigError, match="cannot listen") as e:
            run_ray_serve(spec, port=s.getsockname()[1], duration_s=1)
        assert "--port" in e.value.fix
