"""Kubeflow Trainer v2.3.0's built-in ClusterTrainingRuntimes, as the release ships them.

``runtimes/`` is ``manifests/base/runtimes/`` of kubeflow/trainer v2.3.0 as far as its
``kustomization.yaml`` reaches (torch, deepspeed, mlx, jax, xgboost and the torchtune
ones), copied unchanged by ``tools/deploy/vendor_trainer.py``, which appends the release
overlay's ``labels`` (``trainer.kubeflow.org/webhook-validation: disabled``: validated ahead of
time, so installing them never waits for a webhook) and ``images`` (the release's tags) to the
top kustomization; ``deploy/runtimes/`` is the same tree (``kubectl apply --server-side -k
deploy/runtimes``), and a test keeps the two equal. ``kubetrain up`` installs these, and
``builtin_runtimes`` applies the two transformations as kustomize does.
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


def _transformed(objects: list[dict[str, Any]], kustomization: dict[str, Any]) -> None:
    """The top kustomization's ``labels`` (pairs into ``metadata.labels``; no selectors) and
    ``images`` (``newTag`` on every container image of that name)."""
    labels: dict[str, str] = {}
    for entry in kustomization.get("labels") or []:
        labels.update(entry.get("pairs") or {})
    tags = {i["name"]: i["newTag"] for i in kustomization.get("images") or [] if "newTag" in i}
    for obj in objects:
        if labels:
            obj.setdefault("metadata", {}).setdefault("labels", {}).update(labels)
        for rjob in ((obj.get("spec") or {}).get("template") or {}).get("spec", {}).get(
            "replicatedJobs"
        ) or []:
            pod = (((rjob.get("template") or {}).get("spec") or {}).get("template") or {}).get(
                "spec"
            ) or {}
            for container in [*(pod.get("initContainers") or []), *(pod.get("containers") or [])]:
                image = container.get("image")
                if isinstance(image, str) and image in tags:
                    container["image"] = f"{image}:{tags[image]}"


@functools.cache
def _loaded() -> tuple[dict[str, Any], ...]:
    objects = _resources(RUNTIME_DIR)
    (kustomization,) = _load(RUNTIME_DIR / "kustomization.yaml")
    _transformed(objects, kustomization)
    return tuple(objects)


def builtin_runtimes() -> list[dict[str, Any]]:
    """The ClusterTrainingRuntime manifests: private copies, parsed once per process."""
    return [json_copy(runtime) for runtime in _loaded()]
