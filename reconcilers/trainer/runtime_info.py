"""What a training runtime is, read without building anything: its ML policy's name, the
resources per node (GPUs, CPUs) the plugins size themselves by, and the two errors a build
raises. A leaf module: ``jobset_build.py`` and the runtime plugins both import it, so neither
imports the other for these.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import ROUND_UP
from typing import Any

from kubetrain.reconcilers.gang.quantity import parse_quantity

__all__ = [
    "BuildError",
    "UnsupportedRuntime",
    "cpus_per_node",
    "gpus_per_node",
    "ml_policy_name",
]


class UnsupportedRuntime(ValueError):
    """The runtime asks for what this port does not build (``policy``: ``mpi`` or ``flux``);
    the controller marks the TrainJob Failed rather than retrying."""

    def __init__(self, policy: str, detail: str) -> None:
        super().__init__(f"unsupported runtime: mlPolicy {policy}: {detail}")
        self.policy = policy


class BuildError(ValueError):
    """The build failed where Trainer's ``NewObjects`` returns an error (an ``envInjection``
    target that does not exist, a patch strategic merge cannot apply, a resource quantity that
    does not parse): Go emits a Warning event and retries."""


def ml_policy_name(ml_policy: Mapping[str, Any] | None) -> str:
    """Which plugin enforces ``mlPolicy``: ``torch``, ``mpi``, ``jax``, ``xgboost``, ``flux``, or
    ``plainml`` when none of those is set (the CRD allows at most one)."""
    if ml_policy:
        for name in ("torch", "mpi", "jax", "xgboost", "flux"):
            if ml_policy.get(name) is not None:
                return name
    return "plainml"


def gpus_per_node(resources: Mapping[str, Any] | None) -> int:
    """``runtime.GetNumGPUPerNode``: the first request whose name contains ``gpu`` (case
    folded), else the first such limit, as an integer rounded up; 0 without one."""
    if not resources:
        return 0
    count = _first_gpu(resources.get("requests"), "requests")
    return count or _first_gpu(resources.get("limits"), "limits")


def cpus_per_node(resources: Mapping[str, Any] | None) -> int:
    """The torch plugin's ``getNumCPUPerNode``: the CPU request rounded up, or when that is
    absent or zero the CPU limit rounded up, else 0."""
    if not resources:
        return 0
    request = _quantity_value((resources.get("requests") or {}).get("cpu"), "requests.cpu")
    if request:
        return request
    return _quantity_value((resources.get("limits") or {}).get("cpu"), "limits.cpu")


def _first_gpu(resource_list: Mapping[str, Any] | None, where: str) -> int:
    for name, quantity in (resource_list or {}).items():
        if "gpu" in name.lower():
            return _quantity_value(quantity, f"{where}.{name}")
    return 0


def _quantity_value(quantity: Any, field_path: str) -> int:
    """Go's ``Quantity.Value()``: rounded up, away from zero; 0 for an absent quantity."""
    if quantity is None:
        return 0
    try:
        amount, _ = parse_quantity(quantity, field_path=f"resourcesPerNode.{field_path}")
    except ValueError as err:
        raise BuildError(str(err)) from None
    return int(amount.to_integral_value(rounding=ROUND_UP))
