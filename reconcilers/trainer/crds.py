"""Kubeflow Trainer v2.3.0's CustomResourceDefinitions, as the release ships them.

``crds/*.yaml`` are ``manifests/base/crds/trainer.kubeflow.org_*.yaml`` of kubeflow/trainer
v2.3.0, copied unchanged by ``tools/deploy/vendor_trainer.py`` (which also writes the copies in
``deploy/crds/`` and ``deploy/helm/kubetrain/crds/``). The runtimes' schemas embed JobSet's
``JobSetSpec`` whole, so the files are about 0.9 MB each: install them server-side.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import yaml

from kubetrain.base.jsoncopy import json_copy

__all__ = ["CRD_FILES", "CRD_NAMES", "GROUP", "VERSION", "trainer_crds"]

GROUP = "trainer.kubeflow.org"
VERSION = "v1alpha1"
#: The vendored files, in the order they are installed.
CRD_FILES = (
    "trainer.kubeflow.org_trainjobs.yaml",
    "trainer.kubeflow.org_trainingruntimes.yaml",
    "trainer.kubeflow.org_clustertrainingruntimes.yaml",
)
CRD_NAMES = tuple(f"{name.split('_', 1)[1].removesuffix('.yaml')}.{GROUP}" for name in CRD_FILES)
CRD_DIR = Path(__file__).with_name("crds")


@functools.cache
def _loaded() -> tuple[dict[str, Any], ...]:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    crds: list[dict[str, Any]] = []
    for name in CRD_FILES:
        with (CRD_DIR / name).open(encoding="utf-8") as fh:
            crds.extend(doc for doc in yaml.load_all(fh, Loader=loader) if doc)
    return tuple(crds)


def trainer_crds() -> list[dict[str, Any]]:
    """The three CRD manifests (TrainJob, TrainingRuntime, ClusterTrainingRuntime): private
    copies, parsed once per process."""
    return [json_copy(crd) for crd in _loaded()]
