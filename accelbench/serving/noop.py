"""A no-op HTTP endpoint in its own process: what the load generator's ceiling is measured against.

A load test only says something about a server if the generator is not the bottleneck. Against an endpoint that
answers at once, whatever limits the rate is the generator (and the HTTP stack both sides share), so the
highest rate sustained here is the generator's ceiling. It is built with the real server's stack (FastAPI +
uvicorn) so the per-request cost of HTTP is the same, and runs in a subprocess (its own interpreter, GIL and,
with ``cpu``, its own cores) on an ephemeral loopback port.

``delay_ms`` and ``serial`` turn it into a predictable slow server for tests: each ``POST /predict`` takes
``delay_ms``, one at a time when ``serial`` (a single-server FIFO queue with a fixed service time).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import select
import socket
import subprocess
import sys
import time
import urllib.request
from typing import Any

logger = logging.getLogger(__name__)

HOST = "127.0.0.1"
STARTUP_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 5.0
BACKLOG = 4096
_OUTPUTS = b'{"outputs":[]}'
_PORT_LINE = "NOOP_PORT "


def make_app(delay_ms: float = 0.0, serial: bool = False, task: str | None = None) -> Any:
    """The FastAPI app: ``POST /predict`` -> ``{"outputs": []}``, ``GET /health``, ``GET /noop`` -> ``{}``."""
    from fastapi import FastAPI, Response

    app = FastAPI(title="accelbench noop endpoint")
    lock = asyncio.Lock()
    health = json.dumps(
        {"status": "ok", "variant": "noop", "task": task, "replicas": 1, "max_batch_size": 1}
    ).encode()

    async def work() -> None:
        if delay_ms > 0:
            await asyncio.sleep(delay_ms / 1000.0)

    @app.post("/predict")
    async def predict() -> Response:  # the body is not read: a no-op costs only HTTP
        if serial:
            async with lock:
                await work()
        else:
            await work()
        return Response(_OUTPUTS, media_type="application/json")

    @app.get("/health")
    async def get_health() -> Response:
        return Response(health, media_type="application/json")

    @app.get("/noop")
    async def noop() -> Response:
        return Response(b"{}", media_type="application/json")

    return app


def pin(cores: list[int] | None) -> str | None:
    """Pin this process to ``cores``; returns why that was not possible, or None when pinned (or not asked)."""
    if not cores:
        return None
    if not hasattr(os, "sched_setaffinity"):
        return "this OS has no sched_setaffinity: not pinned"
    try:
        os.sched_setaffinity(0, set(cores))
    except (OSError, ValueError) as e:
        return f"could not pin to cores {cores}: {e}"
    return None


class NoopServer:
    """Starts ``python -m accelbench.serving.noop`` on an ephemeral loopback port; stops it on exit."""

    def __init__(
        self,
        delay_ms: float = 0.0,
        serial: bool = False,
        cpu: list[int] | None = None,
        task: str | None = None,
    ):
        self.delay_ms, self.serial, self.cpu, self.task = delay_ms, serial, cpu, task
        self.proc: subprocess.Popen | None = None
        self.port: int | None = None

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def start(self) -> NoopServer:
        cmd = [sys.executable, "-m", "accelbench.serving.noop", "--delay-ms", str(self.delay_ms)]
        cmd += ["--serial"] if self.serial else []
        cmd += ["--cpu", ",".join(map(str, self.cpu))] if self.cpu else []
        cmd += ["--task", self.task] if self.task else []
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        try:
            line = ""
            while not line.startswith(_PORT_LINE):
                left = deadline - time.monotonic()
                ready, _, _ = select.select([self.proc.stdout], [], [], max(0.0, left))
                if not ready or self.proc.poll() is not None:
                    raise RuntimeError(f"the noop endpoint did not start within {STARTUP_TIMEOUT_S:.0f} s")
                line = self.proc.stdout.readline()
            self.port = int(line[len(_PORT_LINE) :])
            while True:  # the socket listens before uvicorn serves: wait for a real answer
                try:
                    with urllib.request.urlopen(self.url + "/health", timeout=1.0) as r:
                        if r.status == 200:
                            break
                except OSError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.05)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stdout:
            self.proc.stdout.close()
        self.proc = None

    def __enter__(self) -> NoopServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> None:
    import uvicorn

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--port", type=int, default=0, help="0: an ephemeral port, printed as 'NOOP_PORT <n>'")
    p.add_argument("--delay-ms", type=float, default=0.0)
    p.add_argument("--serial", action="store_true")
    p.add_argument("--cpu", default=None, help="cores to pin to, e.g. 1 or 0,1")
    p.add_argument("--task", default=None, help="the task /health reports (a stand-in for a real variant)")
    args = p.parse_args(argv)
    why = pin([int(c) for c in args.cpu.split(",")] if args.cpu else None)
    if why:
        print(f"noop: {why}", file=sys.stderr)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((HOST, args.port))
    sock.listen(BACKLOG)
    app = make_app(args.delay_ms, args.serial, args.task)
    config = uvicorn.Config(app, log_level="warning", access_log=False, backlog=BACKLOG)
    print(f"{_PORT_LINE}{sock.getsockname()[1]}", flush=True)
    uvicorn.Server(config).run(sockets=[sock])


if __name__ == "__main__":
    main()
