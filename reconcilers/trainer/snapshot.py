"""The runtime snapshot: the training runtime a TrainJob was first built from, kept beside it.

Why: a TrainJob is built again while it is suspended (Kueue's admission patches, a resume), and
an administrator may have edited the runtime since. Trainer v2.3.0 (KEP-2599) writes the runtime,
as YAML, into ConfigMap ``<trainjob>-runtime-snapshot`` (key ``runtime``, a controller
ownerReference to the TrainJob) on the first build and reads it on every later one, so a runtime
edit never reaches an existing TrainJob. This module builds that ConfigMap and reads it back
with Trainer's checks (the owner, the key, the runtime's kind, group and name); both pure.

kubetrain adds one label, ``objects.TRAINJOB_NAME_LABEL``, so the operator watches only its own
ConfigMaps (the snapshot is read from that cache, never with a GET per reconcile).
"""

from __future__ import annotations

from typing import Any

import yaml

from kubetrain.base.objects import Obj

from .jobset_build import RuntimeRef
from .side_objects import side_object_metadata

__all__ = [
    "RUNTIME_DATA_KEY",
    "SNAPSHOT_SUFFIX",
    "InvalidSnapshot",
    "read_snapshot",
    "snapshot_configmap",
    "snapshot_name",
]

SNAPSHOT_SUFFIX = "-runtime-snapshot"
RUNTIME_DATA_KEY = "runtime"


class InvalidSnapshot(ValueError):
    """The snapshot ConfigMap exists but cannot be used (Go's ``invalid runtime snapshot``)."""


def snapshot_name(trainjob_name: str) -> str:
    return trainjob_name + SNAPSHOT_SUFFIX


def snapshot_configmap(trainjob: Obj, runtime: Obj) -> Obj:
    """The ConfigMap holding ``runtime`` (a TrainingRuntime or ClusterTrainingRuntime as read)
    for ``trainjob``. Server-side fields of the runtime (resourceVersion, uid, managedFields)
    are left out: they describe the stored runtime, not what the TrainJob was built from."""
    meta = runtime.get("metadata") or {}
    kept_meta = {k: meta[k] for k in ("name", "namespace", "labels", "annotations") if meta.get(k)}
    document = {
        "apiVersion": runtime.get("apiVersion", ""),
        "kind": runtime.get("kind", ""),
        "metadata": kept_meta,
        "spec": runtime.get("spec") or {},
    }
    name = str((trainjob.get("metadata") or {}).get("name", ""))
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": side_object_metadata(trainjob, snapshot_name(name)),
        "data": {RUNTIME_DATA_KEY: yaml.safe_dump(document, sort_keys=False)},
    }


def read_snapshot(configmap: Obj, *, trainjob_uid: str, ref: RuntimeRef) -> Obj:
    """The runtime stored in ``configmap``, checked as Trainer checks it: the ConfigMap is
    controlled by the TrainJob, has the ``runtime`` key, parses, and names the runtime the
    TrainJob refers to. Raises ``InvalidSnapshot`` with Go's message otherwise."""
    owners = (configmap.get("metadata") or {}).get("ownerReferences") or []
    controller = next((o for o in owners if o.get("controller")), None)
    if controller is None or controller.get("uid") != trainjob_uid:
        raise InvalidSnapshot(
            "invalid runtime snapshot: a snapshot configmap exists but is owned by another object"
        )
    data = configmap.get("data") or {}
    if RUNTIME_DATA_KEY not in data:
        raise InvalidSnapshot(
            f'invalid runtime snapshot: snapshot ConfigMap missing "{RUNTIME_DATA_KEY}" data key'
        )
    try:
        runtime: Any = yaml.safe_load(data[RUNTIME_DATA_KEY])
    except yaml.YAMLError as err:
        raise InvalidSnapshot(
            f"invalid runtime snapshot: unable to unmarshal the snapshot: {err}"
        ) from None
    if not isinstance(runtime, dict):
        raise InvalidSnapshot(
            "invalid runtime snapshot: unable to unmarshal the snapshot: not a map"
        )
    api_version = str(runtime.get("apiVersion") or "")
    group = api_version.rpartition("/")[0] if "/" in api_version else ""
    kind = str(runtime.get("kind") or "")
    name = str((runtime.get("metadata") or {}).get("name") or "")
    if (kind, group, name) != (ref.kind, ref.api_group, ref.name):
        raise InvalidSnapshot(
            "invalid runtime snapshot: the snapshot refers to the wrong runtime: expecting a "
            "runtime with name, api group and kind of "
            f'"{ref.name}", "{ref.api_group}", "{ref.kind}" but found runtime with name, api '
            f'group and kind of "{name}", "{group}", "{kind}"'
        )
    return runtime
