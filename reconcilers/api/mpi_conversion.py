"""The conversion webhook of ``mpijobs.kubeflow.org``: MPIJob between ``kubeflow.org/v1`` (the
storage version) and ``kubeflow.org/v2beta1``.

Why the identity: both versions are the same document shape (v2beta1 names four fields v1 does
not, and the v1 schema keeps them through storage, ``crds.py``), so converting changes only
``apiVersion``; which semantics a job has is not in its fields but in the version it was written
in, which this conversion records in ``ORIGIN_ANNOTATION`` (``mpi_v2beta1.py``): an object
without it takes the version it is converted *from* (v2beta1 -> v1 stamps ``v2beta1``, v1 ->
v2beta1 stamps ``v1``); an object with it keeps it. So whatever path a job travels (created as
v2beta1, stored as v1, read as either, written back as either) it keeps its origin, and the
admission webhooks and the controller read it from any version.

The API server sends this webhook every object it must convert (``engine/webhook/conversion.py``
serves the ConversionReview), and checks that name, namespace, uid and kind stay as they were
and restores the rest of ``metadata`` except labels and annotations; the annotation is the one
metadata change made here.

Served at ``CONVERSION_PATH`` (``/convert``) by ``webhooks.register_job_webhooks`` when MPIJob is
among the kinds; the CRD's ``spec.conversion`` points there (``crds.crd``).
"""

from __future__ import annotations

from kubetrain.base.objects import Obj
from kubetrain.engine.webhook.conversion import ConversionError
from kubetrain.reconcilers.api.kinds import MPIJOB
from kubetrain.reconcilers.api.mpi_v2beta1 import (
    API_VERSION_V1,
    API_VERSION_V2BETA1,
    ORIGIN_ANNOTATION,
    V1,
    V2BETA1,
)

__all__ = ["CONVERSION_PATH", "MPIJOB_VERSIONS", "convert_mpijob"]

#: Where the webhook server answers the CRD's ConversionReviews.
CONVERSION_PATH = "/convert"

#: apiVersion -> the version name recorded in the annotation.
MPIJOB_VERSIONS = {API_VERSION_V1: V1, API_VERSION_V2BETA1: V2BETA1}


def convert_mpijob(obj: Obj, desired_api_version: str) -> Obj:
    """``obj`` (an MPIJob, not modified) as ``desired_api_version``: a new object, ``spec`` and
    ``status`` shared with ``obj``, ``ORIGIN_ANNOTATION`` set to the source version when absent.

    Raises ``ConversionError`` for a version or kind this webhook does not convert."""
    if desired_api_version not in MPIJOB_VERSIONS:
        raise ConversionError(
            f"cannot convert to {desired_api_version}: MPIJob is served as "
            + " and ".join(MPIJOB_VERSIONS)
        )
    if obj.get("kind") != MPIJOB.kind:
        raise ConversionError(f"cannot convert kind {obj.get('kind')!r}: only MPIJob")
    source = obj.get("apiVersion")
    if source not in MPIJOB_VERSIONS:
        raise ConversionError(f"cannot convert from {source!r}")
    out = dict(obj)
    out["apiVersion"] = desired_api_version
    if source == desired_api_version:
        return out
    raw_meta = obj.get("metadata")
    meta: Obj = dict(raw_meta) if isinstance(raw_meta, dict) else {}
    raw_annotations = meta.get("annotations")
    annotations: Obj = dict(raw_annotations) if isinstance(raw_annotations, dict) else {}
    if annotations.get(ORIGIN_ANNOTATION) is None:
        annotations[ORIGIN_ANNOTATION] = MPIJOB_VERSIONS[str(source)]
        meta["annotations"] = annotations
        out["metadata"] = meta
    return out
