"""Where Ray work runs: the cluster named by ``RAY_ADDRESS`` when it is set, else a small local Ray.

Why one place: batch inference and Ray Serve must behave the same on a laptop and on a cluster, so the choice
(connect or start), the local instance's modest footprint (a 2-core box shared with other work) and the
environment the workers need (where data and checkpoints live) are decided here once.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from ..exceptions import ConfigError

logger = logging.getLogger(__name__)

LOCAL_OBJECT_STORE_BYTES = 200 * 1024**2
# Settings a worker needs to find what the driver finds (data, trained checkpoints, offline hub mode).
FORWARDED_ENV = (
    "ACCELBENCH_DATA_DIR",
    "ACCELBENCH_CACHE",
    "HF_HOME",
    "HF_HUB_OFFLINE",
    "HF_DATASETS_OFFLINE",
    "TRANSFORMERS_OFFLINE",
    "TOKENIZERS_PARALLELISM",
)


@dataclass(frozen=True)
class RaySession:
    """The Ray this process talks to: ``address`` ("local" when started here), total CPUs and nodes."""

    address: str
    cpus: float
    nodes: int
    started_here: bool

    def to_dict(self) -> dict[str, Any]:
        return {"address": self.address, "cpus": self.cpus, "nodes": self.nodes}


def require_ray() -> Any:
    """The ``ray`` module, or a ConfigError that says how to install it (Ray is an optional extra)."""
    try:
        import ray
    except ImportError:
        raise ConfigError(
            "Ray is not installed", "pip install 'accelbench[ray]' (Ray Serve and Ray Data)"
        ) from None
    return ray


def worker_env() -> dict[str, Any]:
    """A ``runtime_env`` that carries the driver's data, cache and offline settings to every worker."""
    env = {k: os.environ[k] for k in FORWARDED_ENV if os.environ.get(k)}
    return {"env_vars": env} if env else {}


@contextmanager
def ray_session(num_cpus: int | None = None) -> Iterator[RaySession]:
    """Use the running Ray, connect to ``RAY_ADDRESS``, or start a local one; shut down only what it started."""
    ray = require_ray()
    started = False
    if not ray.is_initialized():
        address = os.environ.get("RAY_ADDRESS")
        if address:
            ray.init(address=address, log_to_driver=False, logging_level=logging.WARNING)
        else:
            ray.init(
                num_cpus=num_cpus or os.cpu_count() or 1,
                object_store_memory=LOCAL_OBJECT_STORE_BYTES,
                include_dashboard=False,
                log_to_driver=False,
                logging_level=logging.WARNING,
            )
        started = True
    session = RaySession(
        address=os.environ.get("RAY_ADDRESS") or "local",
        cpus=float(ray.cluster_resources().get("CPU", 0)),
        nodes=sum(1 for n in ray.nodes() if n.get("Alive")),
        started_here=started,
    )
    logger.info("ray: %s, %d node(s), %.1f CPU(s)", session.address, session.nodes, session.cpus)
    try:
        yield session
    finally:
        if started:
            ray.shutdown()
