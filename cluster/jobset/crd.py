"""JobSet's CustomResourceDefinition, as the release ships it.

``crd.yaml`` is ``config/components/crd/bases/jobset.x-k8s.io_jobsets.yaml`` of
sigs.k8s.io/jobset v0.12.0, copied unchanged (the module cache is not on a user's machine): the
embedded server then prunes, defaults (``replicas`` 1, ``groupName`` default) and validates
JobSets by the real schema. Its CEL rules (immutable fields, InOrder versus dependsOn) are not
evaluated by the embedded server's schema; ``validation.py`` words them as kube does.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import yaml

from kubetrain.base.jsoncopy import json_copy

__all__ = ["CRD_NAME", "jobset_crd"]

CRD_NAME = "jobsets.jobset.x-k8s.io"
_PATH = Path(__file__).with_name("crd.yaml")


@functools.cache
def _loaded() -> dict[str, Any]:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    with _PATH.open(encoding="utf-8") as fh:
        crd: dict[str, Any] = yaml.load(fh, Loader=loader)
    return crd


def jobset_crd() -> dict[str, Any]:
    """A private copy of the CRD manifest."""
    return json_copy(_loaded())
