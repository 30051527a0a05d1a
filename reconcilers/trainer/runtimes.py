"""Kubeflow Trainer v2.3.0's built-in ClusterTrainingRuntimes, as the release ships them.

``runtimes/`` is ``manifests/base/runtimes/`` of kubeflow/trainer v2.3.0 as far as its
``kustomization.yaml`` reaches (torch, deepspeed, mlx, jax, xgboost and the torchtune
ones), copied unchanged by ``tools/deploy/vendor_trainer.py``; ``deploy/runtimes/`` is the same
tree (``kubectl apply --server-side -k deploy/runtimes``), and a test keeps the two equal.
``kubetrain up`` installs these.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import yaml

from kubetrain.base.jsoncopy import json_copy

__all__ = ["FRAMEWORK_LABEL", "RUNTIME_DIR", "builtin_runtimes"]

RUNTIME_DIR = Path(__file__).with_name("runtimes")
#: The label each runtime carries (the Kubeflow SDK requires it).
FRAMEWORK_LABEL = "trainer.kubeflow.org/framework"


def _load(path: Path) -> list[dict[str, Any]]:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    with path.open(encoding="utf-8") as fh:
        return [doc for doc in yaml.load_all(fh, Loader=loader) if doc]


def _resources(folder: Path) -> list[dict[str, Any]]:
    """What ``kubectl kustomize folder`` lists, for a kustomization of plain resources."""
    (kustomization,) = _load(folder / "kustomization.yaml")
    objects: list[dict[str, Any]] = []
    for resource in kustomization.get("resources") or []:
        path = folder / resource
        objects.extend(_resources(path) if path.is_dir() else _load(path))
    return objects


@functools.cache
def _loaded() -> tuple[dict[str, Any], ...]:
    return tuple(_resources(RUNTIME_DIR))


def builtin_runtimes() -> list[dict[str, Any]]:
    """The ClusterTrainingRuntime manifests: private copies, parsed once per process."""
    return [json_copy(runtime) for runtime in _loaded()]
