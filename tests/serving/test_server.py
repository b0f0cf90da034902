"""`accelbench serve` over real HTTP: a server process on an ephemeral loopback port with a tiny model.

Each server is the real command in its own process (replica processes, signals, exit codes included),
started and stopped by a fixture.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from accelbench.serving.variant import VariantSpec, build_variant, sample_items

START_TIMEOUT_S = 90


class ServerProcess:
    def __init__(self, proc: subprocess.Popen, log: Path):
        self.proc, self.log = proc, log
        self.url = ""

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_ready(self) -> ServerProcess:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            m = re.search(r"serving \S+ at (http://127\.0\.0\.1:\d+)", self.output())
            if m:
                self.url = m.group(1)
                return self
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited with {self.proc.returncode}:\n{self.output()[-3000:]}")
            time.sleep(0.05)
        raise AssertionError(f"server not ready in {START_TIMEOUT_S} s:\n{self.output()[-3000:]}")

    def stop(self, timeout: float = 30) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        return self.proc.returncode


def _env(data_root: Path, tmp_path_factory) -> dict[str, str]:
    env = dict(os.environ)
    env.update(ACCELBENCH_DATA_DIR=str(data_root), ACCELBENCH_CACHE=str(tmp_path_factory.getbasetemp() / "cache"),
               HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", TOKENIZERS_PARALLELISM="false")  # fmt: skip
    return env


@contextlib.contextmanager
def serve(args: list[str], env: dict[str, str], log: Path, ready: bool = True):
    cmd = [sys.executable, "-m", "accelbench", "serve", "--port", "0", *args]
    with log.open("w") as out:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT)
    server = ServerProcess(proc, log)
    try:
        yield server.wait_ready() if ready else server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def env(data_root, tmp_path_factory):
    return _env(data_root, tmp_path_factory)


@pytest.fixture(scope="module")
def clf(tiny_bert, env, tmp_path_factory):
    """Two replicas, batches up to 8 after at most 30 ms, small limits so every limit can be hit."""
    args = ["--task", "sst2", "--model", str(tiny_bert), "--replicas", "2", "--threads", "1",
            "--max-batch-size", "8", "--max-wait-ms", "30", "--max-texts", "4", "--max-chars", "300",
            "--max-body-bytes", "4096"]  # fmt: skip
    with serve(args, env, tmp_path_factory.mktemp("clf") / "log") as s:
        yield s


def metric(url: str, name: str) -> float:
    text = httpx.get(f"{url}/metrics").text
    m = re.search(rf"^{re.escape(name)} (\S+)$", text, re.M)
    return float(m.group(1)) if m else 0.0


def test_predictions_over_http_equal_in_process_ones(clf, tiny_bert):
    texts = sample_items("sst2", 4)
    r = httpx.post(f"{clf.url}/predict", json={"inputs": texts})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["task"] == "sst2" and body["variant"].endswith(":fp32") and len(body["outputs"]) == 4
    local = build_variant(VariantSpec("sst2", str(tiny_bert), "fp32", threads=1)).predict(texts)
    for got, want in zip(body["outputs"], local, strict=True):
        assert got["label"] == want["label"] and got["label_id"] == want["label_id"]
        assert got["scores"] == pytest.approx(want["scores"], abs=1e-5)
    pair = httpx.post(f"{clf.url}/predict", json={"inputs": [{"text": texts[0], "text_pair": texts[1]}]})
    assert pair.status_code == 200 and len(pair.json()["outputs"]) == 1


def test_concurrent_requests_are_merged_into_batches(clf):
    before_batches = metric(clf.url, "accelbench_batch_size_count")
    before_items = metric(clf.url, "accelbench_batch_size_sum")

    async def burst():
        async with httpx.AsyncClient(base_url=clf.url) as c:
            return await asyncio.gather(
                *(c.post("/predict", json={"inputs": [f"text {i}"]}) for i in range(12))
            )

    responses = asyncio.run(burst())
    assert [r.status_code for r in responses] == [200] * 12
    batches = metric(clf.url, "accelbench_batch_size_count") - before_batches
    items = metric(clf.url, "accelbench_batch_size_sum") - before_items
    assert items == 12 and batches < 12  # some batch held more than one request's item


@pytest.mark.parametrize(
    "content, status, says",
    [
        (b"{oops", 400, "not valid JSON"),
        (b'{"inputs": ["caf\xe9"]}', 400, "UTF-8"),
        (b'{"inputs": "a text"}', 400, "must be a list"),
        (b'{"inputs": []}', 400, "empty list"),
        (b'{"inputs": [1]}', 400, "inputs[0] must be a string or an object"),
        (b'{"inputs": ["a", "b", "c", "d", "e"]}', 422, "too many texts"),
        (b'{"inputs": ["' + b"x" * 301 + b'"]}', 422, "too long"),
        (b'{"inputs": ["' + b"x" * 5000 + b'"]}', 413, "too large"),
    ],
)
def test_bad_requests_get_a_4xx_json_error_and_the_server_keeps_serving(clf, content, status, says):
    r = httpx.post(f"{clf.url}/predict", content=content, headers={"content-type": "application/json"})
    assert r.status_code == status and says in r.json()["error"] and r.json()["fix"]
    assert httpx.post(f"{clf.url}/predict", json={"inputs": ["still serving"]}).status_code == 200


def test_chunked_body_over_the_limit_is_413(clf):
    def chunks():
        yield b'{"inputs": ["'
        for _ in range(10):
            yield b"x" * 1000
        yield b'"]}'

    r = httpx.post(f"{clf.url}/predict", content=chunks())
    assert r.status_code == 413 and "too large" in r.json()["error"]


def test_health_metrics_and_unknown_paths(clf):
    h = httpx.get(f"{clf.url}/health")
    assert h.status_code == 200
    body = h.json()
    assert body["status"] == "ok" and body["replicas"] == 2 and body["max_batch_size"] == 8
    assert body["load_balancing"] == "least-outstanding-items" and body["max_queue"] == 64
    assert body["kind"] == "classification" and len(set(body["replica_pids"])) == 2
    httpx.post(f"{clf.url}/predict", content=b"[]")
    text = httpx.get(f"{clf.url}/metrics").text
    for series in ('accelbench_requests_total{status="200"}', 'accelbench_requests_total{status="400"}',
                   "accelbench_request_latency_seconds_bucket", 'accelbench_inflight{replica="1"}',
                   "accelbench_queue_depth ", 'accelbench_batch_size_bucket{le="8.0"}',
                   'accelbench_errors_total{cause="bad_request"}', 'accelbench_replica_up{replica="0"} 1.0'):  # fmt: skip
        assert series in text, series
    missing = httpx.get(f"{clf.url}/nope")
    assert missing.status_code == 404 and "fix" in missing.json()
    assert httpx.get(f"{clf.url}/noop").status_code == 404  # only with --noop


@pytest.mark.slow
def test_seq2seq_over_http_equals_in_process(tiny_t5, env, tmp_path):
    args = ["--task", "multi30k", "--model", str(tiny_t5), "--replicas", "1", "--threads", "1",
            "--max-new-tokens", "4"]  # fmt: skip
    texts = ["a man rides a bike .", "two dogs play in the snow ."]
    with serve(args, env, tmp_path / "log") as s:
        r = httpx.post(f"{s.url}/predict", json={"inputs": texts})
    assert r.status_code == 200, r.text
    local = build_variant(VariantSpec("multi30k", str(tiny_t5), "fp32", threads=1, max_new_tokens=4))
    assert r.json()["outputs"] == local.predict(texts)


@pytest.mark.slow
def test_overload_gets_503_with_retry_after_and_sigterm_lets_in_flight_requests_finish(
    tiny_bert, env, tmp_path
):
    args = ["--task", "sst2", "--model", str(tiny_bert), "--threads", "1", "--max-batch-size", "1",
            "--max-queue", "2", "--delay-ms", "400"]  # fmt: skip

    async def burst(url: str):
        async with httpx.AsyncClient(base_url=url, timeout=30) as c:
            return await asyncio.gather(*(c.post("/predict", json={"inputs": [f"t{i}"]}) for i in range(6)))

    with serve(args, env, tmp_path / "log") as s:
        responses = asyncio.run(burst(s.url))
        codes = sorted(r.status_code for r in responses)
        assert codes.count(200) >= 2 and codes.count(503) >= 2 and set(codes) == {200, 503}
        shed = [r for r in responses if r.status_code == 503]
        assert all(int(r.headers["retry-after"]) >= 1 for r in shed)
        assert "overloaded: queue full" in shed[0].json()["error"]
        assert metric(s.url, 'accelbench_requests_total{status="503"}') == len(shed)

        async def drain():
            async with httpx.AsyncClient(base_url=s.url, timeout=30) as c:
                inflight = asyncio.ensure_future(c.post("/predict", json={"inputs": ["finish me"]}))
                await asyncio.sleep(0.15)  # it is in the replica now (400 ms per batch)
                s.proc.send_signal(signal.SIGTERM)
                await asyncio.sleep(0.1)
                late = await c.post("/predict", json={"inputs": ["too late"]})
                health = await c.get("/health")
                return await inflight, late, health

        done, late, health = asyncio.run(drain())
        assert done.status_code == 200 and len(done.json()["outputs"]) == 1
        assert late.status_code == 503 and "draining" in late.json()["error"] and late.headers["retry-after"]
        assert health.status_code == 503 and health.json()["status"] == "draining"
        assert s.proc.wait(20) == 0, s.output()[-2000:]


def test_noop_answers_at_once(env, tmp_path):
    with serve(["--noop"], env, tmp_path / "log") as s:
        assert httpx.get(f"{s.url}/noop").json() == {}
        assert httpx.post(f"{s.url}/predict", json={"inputs": ["x"]}).json() == {"outputs": []}
        assert httpx.get(f"{s.url}/health").json()["status"] == "ok"
        assert s.stop() == 0


@pytest.mark.slow
def test_a_replica_that_dies_fails_its_requests_and_the_others_serve_on(tiny_bert, env, tmp_path):
    args = ["--task", "sst2", "--model", str(tiny_bert), "--replicas", "2", "--threads", "1",
            "--max-batch-size", "1", "--delay-ms", "500"]  # fmt: skip
    with serve(args, env, tmp_path / "log") as s:

        async def main():
            async with httpx.AsyncClient(base_url=s.url, timeout=30) as c:
                pids = (await c.get("/health")).json()["replica_pids"]
                first = asyncio.ensure_future(c.post("/predict", json={"inputs": ["doomed"]}))
                await asyncio.sleep(0.2)  # replica 0 (both idle; the first in order) computes it
                os.kill(pids[0], signal.SIGKILL)
                lost = await first
                after = await c.post("/predict", json={"inputs": ["served by the other"]})
                return lost, after, (await c.get("/health")).json()

        lost, after, health = asyncio.run(main())
        assert lost.status_code == 503 and "exited" in lost.json()["error"]
        assert after.status_code == 200 and health["replicas"] == 1 and health["status"] == "ok"
        assert "serving on with the other replicas" in s.output()


def test_a_replica_that_cannot_build_ends_the_server_with_exit_2(env, tmp_path):
    with serve(
        ["--task", "sst2", "--model", str(tmp_path / "missing")], env, tmp_path / "log", ready=False
    ) as s:
        assert s.proc.wait(START_TIMEOUT_S) == 2
        out = s.output()
    assert "error: replica 0 failed to start" in out and "\nfix: " in out


def _cli(argv: list[str], capsys) -> tuple[int, str]:
    from accelbench.cli import main

    code = main(["serve", *argv])
    return code, capsys.readouterr().err


def test_cli_refuses_a_port_in_use(tiny_bert, capsys):
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        code, err = _cli(["--task", "sst2", "--model", str(tiny_bert), "--port", str(port)], capsys)
    assert code == 2 and f"error: port {port} is in use" in err and "fix: pass --port 0" in err


@pytest.mark.parametrize(
    "argv, says",
    [
        (["--task", "sst2", "--model", "m", "--replicas", "0"], "--replicas must be at least 1"),
        (["--task", "sst2", "--model", "m", "--method", "no-such-method"], "unknown method"),
        (["--task", "no-such-task", "--model", "m"], "unknown task"),
        (["--task", "sst2", "--model", "m", "--threads", "0"], "--threads must be at least 1"),
        (["--task", "sst2", "--model", "m", "--max-batch-size", "0"], "--max-batch-size must be at least 1"),
        (["--task", "sst2", "--model", "m", "--max-wait-ms", "-1"], "--max-wait-ms must be 0 or more"),
        (["--model", "m"], "--task and --model are required"),
    ],
)
def test_cli_bad_input_is_one_error_and_one_fix_line_and_exit_2(argv, says, capsys):
    code, err = _cli(argv, capsys)
    assert code == 2 and err.startswith("error: ") and says in err and "\nfix: " in err
