"""Making an embedded API server serve JobSets: the CRD created in process (before the server
serves, as the gang CRDs are) and the webhooks' admission plugins appended to its admission
list. Idempotent: a ``--data`` cluster keeps its CRD, and plugins are added once."""

from __future__ import annotations

from typing import Any

from kubetrain.cluster.apiserver.rest_common import WriteOptions

from .admission import JobSetDefaulter, JobSetValidator
from .crd import CRD_NAME, jobset_crd

__all__ = ["install_jobset"]


async def install_jobset(api: Any) -> None:
    """``api``: an ``ApiServer`` (bootstrapped, not necessarily serving)."""
    crds = api.registry.lookup("apiextensions.k8s.io", "v1", "customresourcedefinitions")
    assert crds is not None  # a built-in resource
    if api.store.get(crds.storage_key, "", CRD_NAME) is None:
        await api.rest.create(crds, "", jobset_crd(), WriteOptions())
    if not any(isinstance(p, (JobSetDefaulter, JobSetValidator)) for p in api.admission):
        api.admission.extend([JobSetDefaulter(), JobSetValidator()])
