"""The resources the TrainJob controller reads and writes, and the names Trainer v2.3.0 uses."""

from __future__ import annotations

from kubetrain.informers.resource import (
    CONFIGMAPS,
    PODGROUPS_SCHEDULER_PLUGINS,
    PODGROUPS_VOLCANO,
    SECRETS,
    ResourceRef,
)

__all__ = [
    "CLUSTER_TRAINING_RUNTIMES",
    "JOBSETS",
    "MANAGED_BY_SELF",
    "SIDE_OBJECT_RESOURCES",
    "TRAINER_GROUP",
    "TRAINING_RUNTIMES",
    "TRAINJOBS",
]

TRAINER_GROUP = "trainer.kubeflow.org"
TRAINJOBS = ResourceRef(TRAINER_GROUP, "v1alpha1", "trainjobs", True, "TrainJob")
TRAINING_RUNTIMES = ResourceRef(
    TRAINER_GROUP, "v1alpha1", "trainingruntimes", True, "TrainingRuntime"
)
CLUSTER_TRAINING_RUNTIMES = ResourceRef(
    TRAINER_GROUP, "v1alpha1", "clustertrainingruntimes", False, "ClusterTrainingRuntime"
)
JOBSETS = ResourceRef("jobset.x-k8s.io", "v1alpha2", "jobsets", True, "JobSet")

#: ``spec.managedBy`` of a TrainJob this controller runs (absent means this one too).
MANAGED_BY_SELF = "trainer.kubeflow.org/trainjob-controller"

#: The resource of each kind a plugin may build beside the JobSet, by ``(apiVersion, kind)``.
SIDE_OBJECT_RESOURCES: dict[tuple[str, str], ResourceRef] = {
    (ref.api_version, ref.kind): ref
    for ref in (CONFIGMAPS, SECRETS, PODGROUPS_SCHEDULER_PLUGINS, PODGROUPS_VOLCANO)
}
