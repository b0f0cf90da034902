"""``accelbench serve``: one HTTP port (FastAPI on uvicorn) in front of N replica processes with dynamic batching.

The front process only parses, validates, batches and answers; model code runs in the replicas
(``replicas.py``), batches form in ``batching.py``, request checks live in ``http_limits.py``. FastAPI and
uvicorn because they are the common, well-kept Python serving stack (ASGI, uvloop + httptools event loop and
parser, graceful shutdown) and add well under a millisecond per request. The endpoints and their JSON follow
the serving contract: ``POST /predict``, ``GET /health``, ``GET /metrics``, and ``GET /noop`` with ``noop``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import json
import logging
import os
import socket
import sys
import time
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import Response
from starlette.exceptions import HTTPException

from ..exceptions import ConfigError
from ..methods import get_method
from ..tasks import get_task
from .batching import DEFAULT_MAX_BATCH_SIZE, DEFAULT_MAX_WAIT_MS, BatchPolicy, QueueFull
from .http_limits import (
    DEFAULT_MAX_BODY_BYTES,
    DEFAULT_MAX_CHARS,
    DEFAULT_MAX_TEXTS,
    Limits,
    RequestError,
    parse_predict_body,
    too_large,
)
from .metrics import CONTENT_TYPE
from .replicas import PredictionFailed, ReplicaDied
from .service import (
    DEFAULT_DRAIN_TIMEOUT_S,
    DEFAULT_HOST,
    DEFAULT_PORT,
    DEFAULT_REPLICAS,
    DEFAULT_STARTUP_TIMEOUT_S,
    ServeSettings,
    ServiceState,
)
from .variant import DEFAULT_MAX_NEW_TOKENS, DEFAULT_NUM_BEAMS, VariantSpec

logger = logging.getLogger(__name__)

JSON = "application/json"


def _json(status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(json.dumps(body, ensure_ascii=False).encode(), status, headers=headers, media_type=JSON)


def _unavailable(state: ServiceState) -> RequestError:
    why = {"starting": "the replicas are still loading the model", "draining": "the server is shutting down",
           "failed": "no replica is running"}.get(state.status, state.status)  # fmt: skip
    return RequestError(
        503, f"{state.status}: {why}", "retry after the Retry-After seconds", {"Retry-After": "1"}
    )


async def _read_body(request: Request, limits: Limits) -> bytes:
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > limits.max_body_bytes:
        raise too_large(int(length), limits)
    if length is not None:
        return await request.body()
    chunks, size = [], 0  # chunked: count while reading
    async for chunk in request.stream():
        size += len(chunk)
        if size > limits.max_body_bytes:
            raise too_large(size, limits)
        chunks.append(chunk)
    return b"".join(chunks)


def create_app(settings: ServeSettings) -> tuple[FastAPI, ServiceState]:
    """The ASGI app and its state; replicas start in the lifespan, while /health already answers 'starting'."""
    state = ServiceState(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        starting = asyncio.get_running_loop().create_task(state.start())
        yield
        await state.shutdown()
        if not starting.done():
            starting.cancel()

    app = FastAPI(
        title="accelbench serve", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None
    )

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        fix = "use POST /predict, GET /health or GET /metrics" + (" or GET /noop" if settings.noop else "")
        return _json(
            exc.status_code, {"error": f"{request.method} {request.url.path}: {exc.detail}", "fix": fix}
        )

    @app.post("/predict")
    async def predict(request: Request) -> Response:
        t0 = time.perf_counter()
        cause = None
        try:
            if state.status != "ok":
                raise _unavailable(state)
            if settings.noop:
                await request.body()
                return _json(200, {"outputs": []})
            items = parse_predict_body(await _read_body(request, settings.limits), settings.limits)
            try:
                future = state.batcher.submit(items)
            except QueueFull as e:
                raise RequestError(503, f"overloaded: queue full ({e.depth} waiting)",
                                   "retry after the Retry-After seconds", {"Retry-After": str(e.retry_after_s)}) from None  # fmt: skip
            state.inflight += 1
            try:
                outputs = await future
            finally:
                state.inflight -= 1
            response = _json(200, {"outputs": outputs, **state.meta})
        except RequestError as e:
            cause = {400: "bad_request", 413: "too_large", 422: "too_many_or_too_long"}.get(
                e.status, state.status
            )
            if e.status == 503 and state.status == "ok":
                cause = "overloaded"
            response = _json(e.status, e.body(), e.headers)
        except ReplicaDied as e:
            cause = "replica_died"
            response = _json(503, {"error": str(e), "fix": "retry; the server serves on with its other replicas"},
                             {"Retry-After": "1"})  # fmt: skip
        except PredictionFailed as e:
            cause = "prediction_failed"
            logger.error("prediction failed: %s", e)
            response = _json(
                500, {"error": f"prediction failed: {e}", "fix": "check the inputs; see the server log"}
            )
        state.metrics.request(response.status_code, time.perf_counter() - t0, cause)
        return response

    @app.get("/health")
    async def health() -> Response:
        status, body = state.health()
        return _json(status, body, None if status == 200 else {"Retry-After": "1"})

    @app.get("/metrics")
    async def metrics() -> Response:
        return Response(state.metrics.render(), media_type=CONTENT_TYPE)

    if settings.noop:

        @app.get("/noop")
        async def noop() -> Response:
            return _json(200, {})

    return app, state


class DrainingServer(uvicorn.Server):
    """uvicorn, but the first SIGTERM/SIGINT drains (503 to new requests, in-flight ones finish) and exits 0;
    a second signal exits at once."""

    def __init__(self, config: uvicorn.Config, state: ServiceState):
        super().__init__(config)
        self.state = state

    def handle_exit(self, sig: int, frame: Any) -> None:
        if self.state.status == "draining":
            self.should_exit = self.force_exit = True
        else:
            self.state.begin_drain()

    async def on_tick(self, counter: int) -> bool:
        if self.state.status == "draining" and self.state.drained():
            self.should_exit = True
        return await super().on_tick(counter)


def bind_socket(host: str, port: int) -> socket.socket:
    """Bind before any replica starts, so a busy port fails in a second, and ``--port 0`` learns its port."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as e:
        sock.close()
        if e.errno == 98 or "in use" in str(e).lower():
            raise ConfigError(f"port {port} is in use on {host}",
                              "pass --port 0 for a free port or stop the other server") from None  # fmt: skip
        raise ConfigError(f"cannot bind {host}:{port}: {e.strerror or e}",
                          "pass --host 127.0.0.1, or a host address of this machine") from None  # fmt: skip
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def run_server(settings: ServeSettings, sock: socket.socket | None = None) -> int:
    """Serve until SIGTERM/SIGINT (exit 0 after draining); a start that fails raises its error."""
    sock = sock or bind_socket(settings.host, settings.port)
    host, port = sock.getsockname()[:2]
    app, state = create_app(settings)
    state.url = f"http://{host if ':' not in host else f'[{host}]'}:{port}"
    config = uvicorn.Config(app, loop="auto", http="auto", lifespan="on", log_level="warning", access_log=False,
                            timeout_graceful_shutdown=int(settings.drain_timeout_s) + 1)  # fmt: skip
    server = DrainingServer(config, state)

    def request_exit() -> None:
        server.should_exit = True

    state.request_exit = request_exit
    server.run(sockets=[sock])
    if state.fatal is not None:
        raise state.fatal
    logger.info("stopped")
    return 0


def settings_from_args(args: argparse.Namespace) -> ServeSettings:
    """Check the variant's names here (fast, in the front) before replicas spend seconds loading."""
    policy = BatchPolicy(args.max_batch_size, args.max_wait_ms, args.max_queue)
    limits = Limits(args.max_body_bytes, args.max_texts, args.max_chars)
    spec = None
    if not args.noop:
        if not (args.task and args.model):
            raise ConfigError(
                "--task and --model are required", "e.g. accelbench serve --task sst2 --model minilm-sst2"
            )
        if args.config:
            from ..config import use_config

            use_config(args.config)
        get_task(args.task)
        get_method(args.method)
        if args.replicas < 1:
            raise ConfigError(
                f"--replicas must be at least 1, got {args.replicas}", "pass --replicas 1 or more"
            )
        threads = args.threads or max(1, len(os.sched_getaffinity(0)) // args.replicas)
        if threads < 1:
            raise ConfigError(f"--threads must be at least 1, got {threads}", "pass --threads 1 or more")
        spec = VariantSpec(args.task, args.model, args.method, threads=threads, config=args.config,
                           max_new_tokens=args.max_new_tokens, num_beams=args.num_beams)  # fmt: skip
    return ServeSettings(spec, args.replicas, policy, limits, args.host, args.port, args.noop, args.in_thread,
                         args.drain_timeout_s, args.startup_timeout_s, args.delay_ms)  # fmt: skip


def cmd_serve(args: argparse.Namespace) -> int:
    if args.threads is not None and args.threads < 1:
        raise ConfigError(f"--threads must be at least 1, got {args.threads}", "pass --threads 1 or more")
    settings = settings_from_args(args)
    if args.ray:
        try:
            from .ray_serve import run_ray_serve
        except ImportError as e:
            raise ConfigError(f"Ray Serve is not available ({e})", "pip install 'accelbench[ray]'") from None
        p = settings.policy
        return run_ray_serve(settings.spec, replicas=settings.replicas, num_cpus=settings.threads,
                             max_batch_size=p.max_batch_size, max_wait_ms=p.max_wait_ms, host=settings.host,
                             port=settings.port)  # fmt: skip
    if not is_loopback(settings.host):
        print(f"warning: binding {settings.host}: the service is reachable from the network and has no "
              "authentication", file=sys.stderr)  # fmt: skip
    return run_server(settings)


def add_subcommand(sub: Any) -> None:
    s = sub.add_parser("serve", help="serve a variant over HTTP: replicas, dynamic batching, /metrics")
    s.add_argument("--task", help="e.g. sst2")
    s.add_argument("--model", help="a built-in model (accelbench list) or a checkpoint folder")
    s.add_argument("--method", default="fp32", help="compression method, e.g. fp32, dynamic-int8, pt2e-int8")
    s.add_argument("--config", help="a sweep YAML whose user tasks and models to register first")
    s.add_argument(
        "--replicas", type=int, default=DEFAULT_REPLICAS, help="replica processes, one predictor each"
    )
    s.add_argument("--threads", type=int, help="intra-op threads per replica; default: cores / replicas")
    s.add_argument("--max-batch-size", type=int, default=DEFAULT_MAX_BATCH_SIZE, help="1: no batching")
    s.add_argument("--max-wait-ms", type=float, default=DEFAULT_MAX_WAIT_MS,
                   help="how long the oldest item may wait for a fuller batch; 0: only merge what already waits")  # fmt: skip
    s.add_argument(
        "--max-queue", type=int, help="items that may wait before 503; default 4 x batch x replicas"
    )
    s.add_argument(
        "--host",
        default=DEFAULT_HOST,
        help="loopback by default; another address is reachable from the network",
    )
    s.add_argument("--port", type=int, default=DEFAULT_PORT, help="0: a free port (the URL is printed)")
    s.add_argument("--max-body-bytes", type=int, default=DEFAULT_MAX_BODY_BYTES)
    s.add_argument("--max-texts", type=int, default=DEFAULT_MAX_TEXTS, help="texts per request")
    s.add_argument("--max-chars", type=int, default=DEFAULT_MAX_CHARS, help="characters per text")
    s.add_argument("--max-new-tokens", type=int, default=DEFAULT_MAX_NEW_TOKENS, help="seq2seq output length")
    s.add_argument("--num-beams", type=int, default=DEFAULT_NUM_BEAMS, help="seq2seq beam search width")
    s.add_argument("--drain-timeout-s", type=float, default=DEFAULT_DRAIN_TIMEOUT_S,
                   help="on SIGTERM, how long in-flight requests may take to finish")  # fmt: skip
    s.add_argument("--startup-timeout-s", type=float, default=DEFAULT_STARTUP_TIMEOUT_S)
    s.add_argument(
        "--in-thread", action="store_true", help="one predictor in a thread of the front (comparison)"
    )
    s.add_argument(
        "--delay-ms", type=float, default=0.0, help="testing: add this to every batch (a slower model)"
    )
    s.add_argument(
        "--noop",
        action="store_true",
        help="no model: /predict and /noop answer at once (load-generator ceiling)",
    )
    s.add_argument(
        "--ray", action="store_true", help="serve on Ray Serve instead (pip install 'accelbench[ray]')"
    )
    s.set_defaults(fn=cmd_serve)
