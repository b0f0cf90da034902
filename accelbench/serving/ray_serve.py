"""The same predictor as a Ray Serve deployment: ``accelbench serve --ray`` on one machine or a Ray cluster.

Why Ray Serve beside the built-in server: when one machine is not enough, Ray Serve places replicas over a
cluster, autoscales them (the planner's ``autoscaling_config`` pastes in unchanged) and sheds load with 503s,
while the predictor stays the one ``variant.build_variant`` builds and the HTTP contract stays the same
(``POST /predict``, ``GET /health``; requests are checked by ``http_limits`` like the built-in server's).
Replicas ask for a fraction of a CPU so that several fit a 2-core machine; each request's items enter
``@serve.batch`` one by one, so ``max_batch_size`` counts items, as in the built-in server.
"""

# No `from __future__ import annotations` here: FastAPI reads the route methods' annotations (``Request``, a
# name local to build_app) at run time.
import asyncio
import logging
import socket
import time
from collections import Counter
from typing import Any

from ..exceptions import ConfigError
from .http_limits import Limits, RequestError, parse_predict_body
from .ray_session import ray_session, require_ray, worker_env
from .variant import VariantSpec, build_variant

logger = logging.getLogger(__name__)

APP_NAME = "accelbench"
DEFAULT_REPLICAS = 1
DEFAULT_NUM_CPUS = 0.5
DEFAULT_MAX_BATCH_SIZE = 8
DEFAULT_MAX_WAIT_MS = 5.0
DEFAULT_MAX_QUEUED = 64  # per replica's router queue; beyond it Ray Serve answers 503 (a bounded queue)
AUTOSCALING_KEYS = {"min_replicas", "max_replicas", "initial_replicas", "target_ongoing_requests",
                    "upscale_delay_s", "downscale_delay_s", "metrics_interval_s", "look_back_period_s",
                    "upscaling_factor", "downscaling_factor"}  # fmt: skip


def _check(
    replicas: int, num_cpus: float, max_batch_size: int, max_wait_ms: float, autoscaling: dict | None
) -> None:
    if replicas < 1:
        raise ConfigError(f"--replicas must be at least 1, got {replicas}", "pass --replicas 1 or more")
    if num_cpus <= 0:
        raise ConfigError(f"CPUs per replica must be above 0, got {num_cpus}", "pass e.g. 0.5")
    if max_batch_size < 1:
        raise ConfigError(f"--max-batch-size must be at least 1, got {max_batch_size}", "pass 1 or more")
    if max_wait_ms < 0:
        raise ConfigError(f"--max-wait-ms must be 0 or more, got {max_wait_ms}", "pass e.g. --max-wait-ms 5")
    if autoscaling is not None:
        unknown = sorted(set(autoscaling) - AUTOSCALING_KEYS)
        if unknown or not {"min_replicas", "max_replicas"} <= set(autoscaling):
            raise ConfigError(
                f"autoscaling config: unknown key(s) {', '.join(unknown)}"
                if unknown
                else "autoscaling config needs min_replicas and max_replicas",
                "paste the planner's ray_serve autoscaling_config (min_replicas, max_replicas, "
                "target_ongoing_requests)",
            )


def build_app(
    spec: VariantSpec,
    replicas: int = DEFAULT_REPLICAS,
    num_cpus: float = DEFAULT_NUM_CPUS,
    max_batch_size: int = DEFAULT_MAX_BATCH_SIZE,
    max_wait_ms: float = DEFAULT_MAX_WAIT_MS,
    autoscaling: dict[str, Any] | None = None,
    max_queued: int = DEFAULT_MAX_QUEUED,
    limits: Limits | None = None,
) -> Any:
    """The Serve application (``Deployment.bind(...)``), ready for ``serve.run``."""
    _check(replicas, num_cpus, max_batch_size, max_wait_ms, autoscaling)
    require_ray()
    from fastapi import FastAPI, Request
    from fastapi.responses import JSONResponse
    from ray import serve

    limits = limits or Limits()
    api = FastAPI(title="accelbench (Ray Serve)")
    info = {"variant": spec.label, "task": spec.task, "max_batch_size": max_batch_size, "max_wait_ms": max_wait_ms,
            "replicas": autoscaling or replicas, "runtime": "ray-serve"}  # fmt: skip
    scaling: dict[str, Any] = (
        {"autoscaling_config": autoscaling} if autoscaling else {"num_replicas": replicas}
    )

    @serve.deployment(
        name="AccelbenchVariant",
        ray_actor_options={"num_cpus": num_cpus, **({"runtime_env": env} if (env := worker_env()) else {})},
        max_ongoing_requests=max(16, 4 * max_batch_size),  # enough in flight to fill a batch
        max_queued_requests=max_queued,
        **scaling,
    )
    @serve.ingress(api)
    class AccelbenchVariant:
        """One replica: one ``Served``; items of concurrent requests merge into batches."""

        def __init__(self) -> None:
            self.served = build_variant(spec)
            self.batch_sizes: Counter[int] = Counter()

        @api.post("/predict")
        async def predict(self, request: Request) -> Any:
            try:
                items = parse_predict_body(await request.body(), limits)
            except RequestError as e:
                return JSONResponse(e.body(), status_code=e.status, headers=e.headers)
            outputs = await asyncio.gather(*(self.one(item) for item in items))
            return {"outputs": outputs, "variant": info["variant"], "task": info["task"]}

        @api.get("/health")
        async def health(self) -> dict[str, Any]:
            batches = {str(k): v for k, v in sorted(self.batch_sizes.items())}
            return {"status": "ok", **info, "batch_sizes": batches}  # batch_sizes: of the replica answering

        @serve.batch(max_batch_size=max_batch_size, batch_wait_timeout_s=max_wait_ms / 1000)
        async def one(self, items: list) -> list[dict[str, Any]]:
            self.batch_sizes[len(items)] += 1
            # off the event loop, so requests keep arriving (and the next batch forms) while this one runs
            return await asyncio.to_thread(self.served.predict, list(items))

    return AccelbenchVariant.bind()


def _check_port(host: str, port: int) -> None:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as e:
            raise ConfigError(
                f"cannot listen on {host}:{port} ({e.strerror})",
                "pass a free --port, or stop what uses this one",
            ) from None


def start_ray_serve(spec: VariantSpec, host: str = "127.0.0.1", port: int = 8000, **app_kw: Any) -> str:
    """Deploy on the current Ray (Serve's HTTP proxy on ``host:port``); the service URL once it answers."""
    require_ray()
    from ray import serve

    app = build_app(spec, **app_kw)
    _check_port(host, port)
    serve.start(http_options={"host": host, "port": port})
    serve.run(app, name=APP_NAME, route_prefix="/")
    return f"http://{host}:{port}"


def run_ray_serve(
    spec: VariantSpec,
    replicas: int = DEFAULT_REPLICAS,
    num_cpus: float = DEFAULT_NUM_CPUS,
    max_batch_size: int = DEFAULT_MAX_BATCH_SIZE,
    max_wait_ms: float = DEFAULT_MAX_WAIT_MS,
    host: str = "127.0.0.1",
    port: int = 8000,
    autoscaling: dict[str, Any] | None = None,
    duration_s: float | None = None,
) -> int:
    """Serve until Ctrl-C (or ``duration_s``), then shut Serve (and a Ray started here) down; the exit code."""
    _check(replicas, num_cpus, max_batch_size, max_wait_ms, autoscaling)
    if duration_s is not None and duration_s <= 0:
        raise ConfigError(
            f"duration must be above 0 s, got {duration_s}", "pass a positive duration, or none"
        )
    _check_port(host, port)  # before Ray starts: a port in use is a one-line error, not a hung proxy
    with ray_session() as session:
        wanted = (autoscaling or {}).get("min_replicas", replicas) * num_cpus
        if session.address == "local" and wanted > session.cpus:
            raise ConfigError(
                f"{wanted:g} CPUs asked for ({num_cpus:g} per replica) but local Ray has {session.cpus:g}",
                "pass fewer replicas or a smaller CPU fraction per replica",
            )
        require_ray()
        from ray import serve

        try:
            url = start_ray_serve(
                spec, host, port, replicas=replicas, num_cpus=num_cpus, max_batch_size=max_batch_size,
                max_wait_ms=max_wait_ms, autoscaling=autoscaling,
            )  # fmt: skip
            print(
                f"serving {spec.label} for {spec.task} on Ray Serve ({session.address}) at {url}", flush=True
            )
            end = time.monotonic() + duration_s if duration_s else None
            while end is None or time.monotonic() < end:
                time.sleep(0.2)
        except KeyboardInterrupt:
            print("stopping: Ray Serve drains in-flight requests", flush=True)
        finally:
            serve.shutdown()
    return 0
