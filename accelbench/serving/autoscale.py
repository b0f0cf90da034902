"""Autoscaling settings a user pastes into a real system, derived from a planned deployment.

- SageMaker target tracking on ``SageMakerVariantInvocationsPerInstance``: AWS's load-testing guide sets the
  target to ``MAX_RPS x SAFETY_FACTOR x 60`` (invocations per minute per instance) and suggests starting
  with a safety factor of 0.5; MAX_RPS here is the planner's sustainable rate per machine.
- Ray Serve ``autoscaling_config``: replicas between the hourly minimum and the peak, and a target of
  ongoing requests per replica from Little's law (rate per replica x mean latency at the planned load), never
  below one; ``max_ongoing_requests`` leaves room for a full batch twice over.
- A KubeRay ``RayService`` manifest holding that deployment (text only: nothing is pulled or applied).

Every function takes the planner's deployment row (a mapping) and returns plain data or text.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

import yaml

SAGEMAKER_SAFETY_FACTOR = 0.5
SAGEMAKER_METRIC = "SageMakerVariantInvocationsPerInstance"
SCALE_IN_COOLDOWN_S = 300
SCALE_OUT_COOLDOWN_S = 60
RAY_UPSCALE_DELAY_S = 30.0
RAY_DOWNSCALE_DELAY_S = 600.0
RAY_APP_NAME = "accelbench"
RAY_DEPLOYMENT = "Predictor"
# The Ray Serve application the Ray helper builds (accelbench serve --ray); change here if it moves.
RAY_IMPORT_PATH = "accelbench.serving.ray_serve:app"
RAY_VERSION = "2.40.0"
KUBERAY_API_VERSION = "ray.io/v1"
IMAGE = "accelbench:latest"  # built from the repository's Dockerfile; a placeholder, never pulled by us


def _int(dep: Mapping[str, Any], key: str) -> int:
    return int(dep[key])


def sagemaker_scaling(
    dep: Mapping[str, Any],
    endpoint: str = "accelbench-endpoint",
    variant: str = "AllTraffic",
    safety_factor: float = SAGEMAKER_SAFETY_FACTOR,
) -> dict[str, Any]:
    """The two Application Auto Scaling calls: ``register_scalable_target`` and ``put_scaling_policy``
    arguments (boto3 / ``aws application-autoscaling`` JSON)."""
    resource = f"endpoint/{endpoint}/variant/{variant}"
    hourly = list(dep.get("machines_per_hour") or [dep["machines"]])
    target = float(dep["sustainable_rate_per_machine"]) * safety_factor * 60.0
    dimension = "sagemaker:variant:DesiredInstanceCount"
    return {
        "register_scalable_target": {
            "ServiceNamespace": "sagemaker",
            "ResourceId": resource,
            "ScalableDimension": dimension,
            "MinCapacity": max(1, min(hourly)),
            "MaxCapacity": max(_int(dep, "machines"), max(hourly)),
        },
        "put_scaling_policy": {
            "PolicyName": f"{endpoint}-invocations-target",
            "ServiceNamespace": "sagemaker",
            "ResourceId": resource,
            "ScalableDimension": dimension,
            "PolicyType": "TargetTrackingScaling",
            "TargetTrackingScalingPolicyConfiguration": {
                "TargetValue": round(target, 1),
                "PredefinedMetricSpecification": {"PredefinedMetricType": SAGEMAKER_METRIC},
                "ScaleInCooldown": SCALE_IN_COOLDOWN_S,
                "ScaleOutCooldown": SCALE_OUT_COOLDOWN_S,
            },
        },
        "instance_type_hint": dep.get("machine"),
        "safety_factor": safety_factor,
    }


def target_ongoing_requests(dep: Mapping[str, Any]) -> float:
    """Little's law per replica: requests in a replica's queue and batch = its rate x mean latency."""
    per_replica = float(dep["rate_per_machine"]) / _int(dep, "replicas_per_machine")
    latency_s = float(dep.get("predicted_mean_ms") or dep["predicted_p50_ms"]) / 1e3
    return max(1.0, round(per_replica * latency_s, 1))


def ray_autoscaling_config(dep: Mapping[str, Any]) -> dict[str, Any]:
    """A Ray Serve ``autoscaling_config`` for the deployment: replicas from the quietest hour to the peak."""
    replicas = list(
        dep.get("replicas_per_hour") or [_int(dep, "machines") * _int(dep, "replicas_per_machine")]
    )
    peak = max(max(replicas), _int(dep, "machines") * _int(dep, "replicas_per_machine"))
    return {
        "min_replicas": max(1, min(replicas)),
        "initial_replicas": max(1, min(replicas)),
        "max_replicas": peak,
        "target_ongoing_requests": target_ongoing_requests(dep),
        "upscale_delay_s": RAY_UPSCALE_DELAY_S,
        "downscale_delay_s": RAY_DOWNSCALE_DELAY_S,
    }


def ray_deployment(dep: Mapping[str, Any]) -> dict[str, Any]:
    """The deployment entry of a Serve config: CPUs per replica, batching and autoscaling."""
    batch = _int(dep, "max_batch_size")
    auto = ray_autoscaling_config(dep)
    return {
        "name": RAY_DEPLOYMENT,
        "max_ongoing_requests": max(2 * batch, math.ceil(2 * auto["target_ongoing_requests"])),
        "autoscaling_config": auto,
        "ray_actor_options": {"num_cpus": _int(dep, "threads")},
        "user_config": {
            "max_batch_size": batch,
            "batch_wait_timeout_s": round(float(dep["max_wait_ms"]) / 1e3, 4),
            "threads": _int(dep, "threads"),
        },
    }


def serve_config(dep: Mapping[str, Any]) -> dict[str, Any]:
    """A Ray Serve config file (``serve deploy``) with one application serving the variant."""
    return {
        "applications": [
            {
                "name": RAY_APP_NAME,
                "import_path": RAY_IMPORT_PATH,
                "route_prefix": "/",
                "args": {"task": dep.get("task"), "model": dep.get("model"), "method": dep.get("method")},
                "deployments": [ray_deployment(dep)],
            }
        ]
    }


class _Literal(str):
    """A string dumped as a YAML block (``|``), as serveConfigV2 is written by hand."""


def _literal(dumper: yaml.SafeDumper, data: _Literal) -> yaml.ScalarNode:
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style="|")


class _Dumper(yaml.SafeDumper):
    def ignore_aliases(self, data: Any) -> bool:  # no &id001 anchors: a manifest people read and edit
        return True


_Dumper.add_representer(_Literal, _literal)


def _pod(name: str, dep: Mapping[str, Any]) -> dict[str, Any]:
    cores, memory = _int(dep, "machine_cores"), float(dep["machine_memory_gb"])
    res = {"cpu": str(cores), "memory": f"{max(1, int(memory * 0.9))}Gi"}  # room for the node's own daemons
    resources = {"requests": res, "limits": dict(res)}
    return {"spec": {"containers": [{"name": name, "image": IMAGE, "resources": resources}]}}


def kuberay_rayservice(dep: Mapping[str, Any], name: str = "accelbench") -> str:
    """A KubeRay ``RayService`` manifest (YAML text): the Serve config above, a head group with the machine's
    cores, and a worker group sized from the quietest hour to the peak (one pod per machine)."""
    hourly = list(dep.get("machines_per_hour") or [dep["machines"]])
    machines = max(_int(dep, "machines"), max(hourly))
    manifest = {
        "apiVersion": KUBERAY_API_VERSION,
        "kind": "RayService",
        "metadata": {"name": name, "labels": {"app.kubernetes.io/part-of": "accelbench"}},
        "spec": {
            "serveConfigV2": _Literal(yaml.safe_dump(serve_config(dep), sort_keys=False)),
            "rayClusterConfig": {
                "rayVersion": RAY_VERSION,
                "enableInTreeAutoscaling": True,
                "headGroupSpec": {
                    "rayStartParams": {"num-cpus": str(_int(dep, "machine_cores"))},
                    "template": _pod("ray-head", dep),
                },
                "workerGroupSpecs": [
                    {
                        "groupName": "cpu-workers",
                        "replicas": max(0, min(hourly) - 1),
                        "minReplicas": max(0, min(hourly) - 1),
                        "maxReplicas": max(0, machines - 1),  # the head is one machine too
                        "rayStartParams": {"num-cpus": str(_int(dep, "machine_cores"))},
                        "template": _pod("ray-worker", dep),
                    }
                ],
            },
        },
    }
    return yaml.dump(manifest, Dumper=_Dumper, sort_keys=False)


def autoscaling_files(dep: Mapping[str, Any]) -> dict[str, str]:
    """File name -> text of every autoscaling setting, ready to write next to the plan."""
    return {
        "sagemaker_scaling.json": json.dumps(sagemaker_scaling(dep), indent=2) + "\n",
        "ray_serve_config.yaml": yaml.safe_dump(serve_config(dep), sort_keys=False),
        "rayservice.yaml": kuberay_rayservice(dep),
    }
